//! The Mesh page's root of trust: each member's intermediate CA — valid until when, a warning 30 days before
//! it expires, a root that is not the mesh's — and re-issuing one cluster's intermediate from the mesh's root
//! (plan first, then a job followed on its page), or rotating the whole mesh's root (a new root trusted
//! everywhere, then signing everywhere, then the old one dropped — plan first, then a job). The chains are read
//! by the page (one read for every mesh).

use leptos::prelude::*;

use super::allowed;
use super::answers::{PlanAnswer, StartError};
use super::mesh_take_apart::follow;
use crate::api::{PlanReissue, PlanRotation, StartReissue, StartRotation};
use crate::components::{BUTTON, BUTTON_SECONDARY, DataTable, ErrorBox, TD, TD_NOWRAP, TR};
use crate::model::{AppError, ClusterName, ClusterTrust, MeshSummary, Role, format_time};

/// Every member's chain, read once for the page.
pub type ChainsResource = crate::data::Data<Result<Vec<ClusterTrust>, AppError>>;

/// How a member's intermediate stands: (data-expiry value, text).
fn standing(t: &ClusterTrust) -> (&'static str, String) {
    if let Some(e) = &t.error {
        return ("error", format!("✕ {e}"));
    }
    let Some(i) = &t.intermediate else {
        return (
            "missing",
            "✕ no cacerts: istiod signs with a root of its own".into(),
        );
    };
    if t.problems.iter().any(|p| p.starts_with("expired")) {
        ("expired", format!("✕ {}", t.problems.join("; ")))
    } else if t.problems.iter().any(|p| p.starts_with("expires within")) {
        ("soon", format!("! {}", t.problems.join("; ")))
    } else if !t.problems.is_empty() {
        ("problem", format!("! {}", t.problems.join("; ")))
    } else {
        ("ok", format!("✓ {}", i.key_algorithm))
    }
}

#[component]
pub fn Trust(mesh: MeshSummary, chains: ChainsResource) -> impl IntoView {
    let can_apply = allowed(Role::Operator)();
    let chosen = RwSignal::new(None::<ClusterName>);
    let plan = ServerAction::<PlanReissue>::new();
    let start = ServerAction::<StartReissue>::new();
    follow(move || start.value().get());
    let members = mesh.members.clone();
    let plan_list = Signal::derive(move || plan.value().get().map(|r| r.map(|p| vec![p])));
    let rotation = RwSignal::new(false);
    let plan_rotation = ServerAction::<PlanRotation>::new();
    let start_rotation = ServerAction::<StartRotation>::new();
    follow(move || start_rotation.value().get());
    let rotation_plan = Signal::derive(move || plan_rotation.value().get());
    let mesh_id = mesh.job_id.clone();
    let rotation_ready = move || matches!(plan_rotation.value().get(), Some(Ok(ref p)) if !p.is_empty() && p.iter().all(|c| c.error.is_none()));
    view! {
        <details class="mt-4 border-t border-slate-200 pt-3 dark:border-slate-800" data-testid="trust">
            <summary class="cursor-pointer font-semibold">"Root of trust"</summary>
            <p class="mt-1 text-sm text-slate-600 dark:text-slate-300">
                "Each cluster's intermediate CA (its cacerts), signed by the mesh's root. One expiring within 30 days is flagged; re-issue it alone: a new intermediate from the same root (the peers keep trusting it), then istiod restarted so it signs with it, then the cluster's checks."
            </p>
            <Suspense fallback=|| view! { <p class="mt-2 text-sm">"Reading each cluster's cacerts…"</p> }>
                {move || {
                    let members = members.clone();
                    Suspend::new(async move {
                        match chains.await {
                            Err(e) => view! { <div class="mt-2"><ErrorBox error=e /></div> }.into_any(),
                            Ok(list) => {
                                let rows = list
                                    .into_iter()
                                    .filter(|t| members.contains(&t.cluster))
                                    .map(|t| {
                                        let (state, text) = standing(&t);
                                        let until = t.intermediate.as_ref().map_or("—".to_string(), |i| format_time(i.not_after));
                                        let cluster = t.cluster.clone();
                                        let label = format!("Re-issue {cluster}'s intermediate");
                                        let action = ClusterName::new(&t.cluster).ok().filter(|_| t.intermediate.is_some()).map(|name| {
                                            view! {
                                                <button type="button" class=BUTTON_SECONDARY aria-label=label
                                                    on:click=move |_| { chosen.set(Some(name.clone())); start.clear(); plan.dispatch(PlanReissue { cluster: name.clone() }); }>
                                                    "Re-issue…"
                                                </button>
                                            }
                                        });
                                        view! {
                                            <tr class=TR data-cluster=cluster.clone() data-expiry=state>
                                                <td class=TD_NOWRAP>{cluster.clone()}</td>
                                                <td class=TD_NOWRAP>{until}</td>
                                                <td class=TD>{text}</td>
                                                <td class=TD_NOWRAP>{action}</td>
                                            </tr>
                                        }
                                        .into_any()
                                    })
                                    .collect::<Vec<_>>();
                                view! {
                                    <DataTable
                                        caption="Each cluster's intermediate CA".to_string()
                                        head=vec!["Cluster", "Valid until", "Standing", "Action"]
                                        quiet=vec!["Action"]
                                        rows=rows
                                        empty="No member could be read."
                                        testid="trust-table"
                                    />
                                }
                                .into_any()
                            }
                        }
                    })
                }}
            </Suspense>
            {move || chosen.get().map(|name| {
                let heading = format!("Re-issue {name}'s intermediate — the plan");
                let for_start = name.clone();
                view! {
                    <div class="mt-3" data-testid="reissue" data-cluster=name.to_string()>
                        <h3 class="font-medium">{heading}</h3>
                        <PlanAnswer value=plan_list />
                        {can_apply.then(|| view! {
                            <button
                                type="button"
                                class=format!("{BUTTON} mt-3")
                                disabled=move || !matches!(plan.value().get(), Some(Ok(ref p)) if p.error.is_none()) || start.pending().get()
                                on:click={ let n = for_start.clone(); move |_| { start.dispatch(StartReissue { cluster: n.clone() }); } }
                            >
                                {move || if start.pending().get() { "Starting…" } else { "Re-issue and restart istiod" }}
                            </button>
                        })}
                    </div>
                }
            })}
            <StartError value=start.value() />
            <div class="mt-4">
                <button type="button" class=BUTTON_SECONDARY
                    on:click={ let m = mesh_id.clone(); move |_| { rotation.set(true); start_rotation.clear(); plan_rotation.dispatch(PlanRotation { mesh: m.clone() }); } }>
                    "Rotate the root…"
                </button>
            </div>
            {move || rotation.get().then(|| {
                let m = mesh_id.clone();
                view! {
                    <div class="mt-3" data-testid="rotation">
                        <h3 class="font-medium">"Rotate the mesh's root of trust — the plan"</h3>
                        <p class="mt-1 text-sm text-slate-600 dark:text-slate-300">
                            "A new root is made when the job starts. Three passes, each cluster by cluster with istiod restarted and waited on, each closed by the checks of the whole mesh: every cluster trusts the old and the new root; every cluster signs with an intermediate of the new root (both still trusted); the old root is dropped. Traffic between clusters keeps flowing throughout; a failure stops the job, and a retry continues where it stopped."
                        </p>
                        <PlanAnswer value=rotation_plan />
                        {can_apply.then(|| view! {
                            <button
                                type="button"
                                class=format!("{BUTTON} mt-3")
                                disabled=move || !rotation_ready() || start_rotation.pending().get()
                                on:click={ let m = m.clone(); move |_| { start_rotation.dispatch(StartRotation { mesh: m.clone() }); } }
                            >
                                {move || if start_rotation.pending().get() { "Starting…" } else { "Rotate the root of trust" }}
                            </button>
                        })}
                    </div>
                }
            })}
            <StartError value=start_rotation.value() />
        </details>
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::IntermediateView;

    fn trust(problems: &[&str], error: Option<&str>, has_cacerts: bool) -> ClusterTrust {
        ClusterTrust {
            cluster: "c1".into(),
            intermediate: has_cacerts.then(|| IntermediateView {
                subject: "CN=Intermediate CA".into(),
                issuer: "CN=Root CA".into(),
                not_before: 0,
                not_after: 100,
                key_algorithm: "ECDSA P-256".into(),
                pathlen: Some(0),
                root_fingerprint: None,
                root_matches: true,
                chain_pem: String::new(),
            }),
            planned: None,
            problems: problems.iter().map(|p| p.to_string()).collect(),
            error: error.map(String::from),
        }
    }

    #[test]
    fn an_intermediate_is_flagged_30_days_before_it_expires_and_once_it_has() {
        let cases = [
            (trust(&[], None, true), "ok", "ECDSA P-256"),
            (
                trust(
                    &["expires within 30 days (Dec 20): rotate the intermediate"],
                    None,
                    true,
                ),
                "soon",
                "! expires within 30 days",
            ),
            (
                trust(
                    &["expired: the intermediate was valid until Nov 1"],
                    None,
                    true,
                ),
                "expired",
                "✕ expired",
            ),
            (
                trust(&["root differs: …"], None, true),
                "problem",
                "root differs",
            ),
            (trust(&[], None, false), "missing", "no cacerts"),
            (
                trust(&[], Some("cluster c1 is unreachable"), true),
                "error",
                "unreachable",
            ),
        ];
        for (t, state, text) in cases {
            let (got, said) = standing(&t);
            assert_eq!(got, state, "{said}");
            assert!(said.contains(text), "{said} lacks {text}");
        }
    }
}
