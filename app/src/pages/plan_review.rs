//! A plan as the pages show it before anything is applied (the setup's review, a re-apply, an onboarding, a
//! portal request): per cluster, accessible tabs with the objects' YAML, their diff against what is live and
//! the commands by hand; the preflight's findings; the plan as a downloadable archive.

use leptos::prelude::*;

use super::CheckBadge;
use super::setup::Copyable;
use crate::model::{ClusterPlan, PreflightView};

#[component]
pub(super) fn PreflightTable(list: Vec<PreflightView>) -> impl IntoView {
    list.into_iter()
        .map(|p| {
            let rows = p
                .findings
                .into_iter()
                .map(|f| view! {
                    <tr class="border-t border-slate-200 align-top dark:border-slate-800" data-finding=f.key.clone()>
                        <td class="whitespace-nowrap px-3 py-1"><CheckBadge status=f.status /></td>
                        <td class="px-3 py-1 font-medium">{f.title.clone()}</td>
                        <td class="px-3 py-1 text-sm">
                            {f.message.clone()}
                            {f.remediation.clone().map(|r| view! { <p class="font-medium">{format!("What to do: {r}")}</p> })}
                        </td>
                    </tr>
                })
                .collect_view();
            view! {
                <div class="mt-3" data-preflight=p.cluster.clone()>
                    <h3 class="font-semibold">{format!("Cluster {}", p.cluster)}{if p.blocked { " — ✕ blocked" } else { " — ✓ ready" }}</h3>
                    <table class="mt-1 w-full text-left">
                        <tbody>{rows}</tbody>
                    </table>
                </div>
            }
        })
        .collect_view()
}

/// The plan as a `data:` link to a tar archive (built here, in the browser).
pub(super) fn plan_download(list: &[ClusterPlan]) -> String {
    use crate::model::plan_archive::{base64, plan_files, tar};
    #[cfg(feature = "hydrate")]
    let now = (web_sys::js_sys::Date::now() / 1000.0) as u64;
    #[cfg(not(feature = "hydrate"))]
    let now = 0;
    format!(
        "data:application/x-tar;base64,{}",
        base64(&tar(&plan_files(list), now))
    )
}

/// The review's tabs, in order: key (for ids) and label.
const PLAN_TABS: [(&str, &str); 3] = [
    ("yaml", "YAML"),
    ("diff", "Diff against live"),
    ("commands", "CLI commands"),
];

/// Accessible tabs (WAI-ARIA tabs pattern): a tablist of buttons, each controlling one panel; the arrow keys,
/// Home and End move between tabs (and focus follows); only the selected tab is in the tab order. The first
/// panel is the one open as rendered on the server, so it reads without JavaScript.
#[component]
fn Tabs(id: String, label: String, panels: Vec<AnyView>) -> impl IntoView {
    let selected = RwSignal::new(0usize);
    let refs: [NodeRef<leptos::html::Button>; 3] = [NodeRef::new(), NodeRef::new(), NodeRef::new()];
    let n = PLAN_TABS.len();
    let on_key = move |ev: leptos::ev::KeyboardEvent| {
        let cur = selected.get_untracked();
        let next = match ev.key().as_str() {
            "ArrowRight" | "ArrowDown" => (cur + 1) % n,
            "ArrowLeft" | "ArrowUp" => (cur + n - 1) % n,
            "Home" => 0,
            "End" => n - 1,
            _ => return,
        };
        ev.prevent_default();
        selected.set(next);
        if let Some(b) = refs[next].get() {
            let _ = b.focus();
        }
    };
    let tabs = PLAN_TABS
        .iter()
        .enumerate()
        .map(|(i, (key, name))| {
            let tab_id = format!("{id}-tab-{key}");
            let panel_id = format!("{id}-panel-{key}");
            view! {
                <button
                    type="button"
                    role="tab"
                    id=tab_id
                    node_ref=refs[i]
                    data-tab=*key
                    aria-controls=panel_id
                    aria-selected=move || if selected.get() == i { "true" } else { "false" }
                    tabindex=move || if selected.get() == i { "0" } else { "-1" }
                    class=move || format!(
                        "-mb-px border-b-2 px-3 py-1 text-sm focus-visible:outline-2 focus-visible:outline-offset-2 focus-visible:outline-sky-600 {}",
                        if selected.get() == i { "border-sky-700 font-semibold dark:border-sky-400" } else { "border-transparent" }
                    )
                    on:click=move |_| selected.set(i)
                    on:keydown=on_key
                >
                    {*name}
                </button>
            }
        })
        .collect_view();
    let panels = panels
        .into_iter()
        .zip(PLAN_TABS)
        .enumerate()
        .map(|(i, (panel, (key, _)))| {
            view! {
                <div
                    role="tabpanel"
                    id=format!("{id}-panel-{key}")
                    aria-labelledby=format!("{id}-tab-{key}")
                    data-panel=key
                    tabindex="0"
                    hidden=move || selected.get() != i
                    class="pt-2 focus-visible:outline-2 focus-visible:outline-offset-2 focus-visible:outline-sky-600"
                >
                    {panel}
                </div>
            }
        })
        .collect_view();
    view! {
        <div role="tablist" aria-label=label class="mt-2 flex gap-1 border-b border-slate-200 dark:border-slate-800">
            {tabs}
        </div>
        {panels}
    }
}

/// An object as the plan names it: `Kind namespace/name`.
fn object_label(o: &crate::model::PlanObject) -> String {
    match &o.namespace {
        Some(ns) => format!("{} {ns}/{}", o.kind, o.name),
        None => format!("{} {}", o.kind, o.name),
    }
}

#[component]
pub(super) fn PlanView(list: Vec<ClusterPlan>) -> impl IntoView {
    list.into_iter()
        .map(|c| {
            let heading = |s: &crate::model::PlanStep| {
                let changes = s.objects.iter().filter(|o| o.change != "unchanged").count();
                view! { <h4 class="mt-3 font-medium">{format!("{} — {changes} to change", s.title)}</h4> }
            };
            let yaml = c
                .steps
                .iter()
                .map(|s| {
                    let objects = s
                        .objects
                        .iter()
                        .map(|o| {
                            let label = object_label(o);
                            let key = label.clone();
                            view! {
                                <div class="mt-2" data-object=key>
                                    <p class="text-sm"><span class="font-medium">{o.change.clone()}</span>" "{label}</p>
                                    <Copyable text=o.yaml.clone() />
                                </div>
                            }
                        })
                        .collect_view();
                    view! { <div data-step=s.title.clone()>{heading(s)}{objects}</div> }
                })
                .collect_view()
                .into_any();
            let diff = c
                .steps
                .iter()
                .map(|s| {
                    let objects = s
                        .objects
                        .iter()
                        .map(|o| {
                            let label = object_label(o);
                            let body = match (o.change.as_str(), &o.detail) {
                                (_, Some(d)) => view! { <Copyable text=d.clone() /> }.into_any(),
                                ("create", None) => view! { <p class="text-sm">"Not in the cluster yet: created as shown under YAML."</p> }.into_any(),
                                (_, None) => view! { <p class="text-sm">"✓ The same as the live object."</p> }.into_any(),
                            };
                            let key = label.clone();
                            view! {
                                <div class="mt-2" data-diff=key>
                                    <p class="text-sm"><span class="font-medium">{o.change.clone()}</span>" "{label}</p>
                                    {body}
                                </div>
                            }
                        })
                        .collect_view();
                    view! { <div>{heading(s)}{objects}</div> }
                })
                .collect_view()
                .into_any();
            let script = c
                .steps
                .iter()
                .map(|s| format!("# {}\n{}\n", s.title, s.commands.join("\n")))
                .collect::<Vec<_>>()
                .join("\n");
            let commands = c
                .steps
                .iter()
                .map(|s| view! { <div>{heading(s)}<Copyable text=s.commands.join("\n") /></div> })
                .collect_view();
            let commands = view! {
                <Copyable text=script label="Every step, in order" />
                {commands}
            }
            .into_any();
            let has_steps = !c.steps.is_empty();
            let id = format!("plan-{}", c.cluster);
            let label = format!("Plan for cluster {}", c.cluster);
            view! {
                <div class="mt-4 rounded border border-slate-200 p-2 dark:border-slate-800" data-plan=c.cluster.clone()>
                    <h3 class="font-semibold">{format!("Cluster {}", c.cluster)}</h3>
                    {c.error.map(|e| view! { <p role="alert" class="text-red-800 dark:text-red-300">{format!("✕ {e}")}</p> })}
                    {has_steps.then(|| view! { <Tabs id=id label=label panels=vec![yaml, diff, commands] /> })}
                </div>
            }
        })
        .collect_view()
}

#[cfg(all(test, feature = "ssr"))]
mod tests {
    use super::*;
    use crate::model::{PlanObject, PlanStep};

    #[test]
    fn the_review_renders_accessible_tabs_with_the_yaml_open_on_the_server() {
        let plan = ClusterPlan {
            cluster: "c3".into(),
            error: None,
            steps: vec![PlanStep {
                title: "Control plane".into(),
                objects: vec![PlanObject {
                    kind: "ServiceMeshController".into(),
                    namespace: None,
                    name: "managed-istio".into(),
                    yaml: "kind: ServiceMeshController\n".into(),
                    change: "update".into(),
                    detail: Some("-  scalingProfile: Default\n+  scalingProfile: Large\n".into()),
                }],
                commands: vec!["kubectl --context c3 apply --server-side -f smc.yaml".into()],
            }],
        };
        let owner = Owner::new();
        let html = owner.with(|| view! { <PlanView list=vec![plan] /> }.to_html());
        assert!(html.contains(r#"data-plan="c3""#), "{html}");
        assert!(html.contains(r#"role="tablist""#), "{html}");
        for (key, label) in PLAN_TABS {
            assert!(
                html.contains(&format!(r#"id="plan-c3-tab-{key}""#)),
                "{key}: {html}"
            );
            assert!(
                html.contains(&format!(r#"aria-controls="plan-c3-panel-{key}""#)),
                "{key}"
            );
            assert!(
                html.contains(&format!(r#"aria-labelledby="plan-c3-tab-{key}""#)),
                "{key}"
            );
            assert!(html.contains(label), "{label}");
        }
        assert_eq!(html.matches(r#"role="tab""#).count(), 3);
        assert_eq!(html.matches(r#"aria-selected="true""#).count(), 1);
        assert_eq!(
            html.matches(r#"tabindex="-1""#).count(),
            2,
            "only the selected tab is in the tab order"
        );
        // The YAML panel is the open one; the diff and the commands are in the page but hidden.
        let yaml_panel = html.find(r#"id="plan-c3-panel-yaml""#).expect("yaml panel");
        let start = html[..yaml_panel].rfind('<').expect("tag");
        let open_tag = &html[start..yaml_panel + html[yaml_panel..].find('>').expect("end")];
        assert!(!open_tag.contains("hidden"), "{open_tag}");
        assert_eq!(html.matches(" hidden").count(), 2, "{html}");
        assert!(html.contains("scalingProfile: Large") && html.contains("apply --server-side"));
    }
}
