//! The wizard's control-plane settings: one form for what every cluster shares, and per cluster a form of
//! overrides (empty = the shared value) plus the east-west address override. Each field says what it does
//! (from the ServiceMeshController reference, mesh-spec.md §4.1/§4.3); problems show next to the field as
//! the user types (the same rules the server applies before planning).

use std::collections::BTreeMap;

use leptos::prelude::*;

use crate::components::INPUT;
use crate::model::{
    ClusterName, ClusterSettings, DISTRIBUTIONS, EastWest, LEGACY_MULTICLUSTER_ENV, MeshSettings,
    ON_CONFLICT, SCALING_PROFILES, SettingProblem, TRAFFIC_CAPTURE_MODES, eastwest_value,
    parse_eastwest, valid_address,
};

const HELP: &str = "mt-0.5 text-xs text-slate-600 dark:text-slate-300";
const ALERT: &str = "mt-0.5 text-sm text-red-800 dark:text-red-300";

/// The problems of one field, as an alert under it (icon + text, not colour alone).
fn field_problems(problems: Memo<Vec<SettingProblem>>, id: String) -> impl IntoView {
    move || {
        problems
            .get()
            .into_iter()
            .filter(|p| p.field == id)
            .map(|p| view! { <p role="alert" class=ALERT data-problem=p.field.clone()>{format!("✕ {}", p.message)}</p> })
            .collect_view()
    }
}

fn empty_none(v: String) -> Option<String> {
    let t = v.trim();
    (!t.is_empty()).then(|| t.to_string())
}

fn split_list(v: &str) -> Vec<String> {
    v.split([',', '\n'])
        .map(str::trim)
        .filter(|s| !s.is_empty())
        .map(String::from)
        .collect()
}

/// `KEY=value` lines into a map; a line without `=` is reported.
pub fn parse_env(text: &str) -> Result<BTreeMap<String, String>, String> {
    let mut out = BTreeMap::new();
    for line in text.lines().map(str::trim).filter(|l| !l.is_empty()) {
        let Some((k, v)) = line.split_once('=') else {
            return Err(format!("{line:?}: write NAME=value, one per line"));
        };
        out.insert(k.trim().to_string(), v.trim().to_string());
    }
    Ok(out)
}

/// A choice among the operator's enum values; the first option leaves the default (or the shared value).
#[allow(clippy::too_many_arguments)]
fn choice(
    value: RwSignal<MeshSettings>,
    problems: Memo<Vec<SettingProblem>>,
    prefix: &str,
    name: &'static str,
    label: &'static str,
    help: &'static str,
    options: &'static [&'static str],
    unset: &'static str,
    get: fn(&MeshSettings) -> Option<String>,
    set: fn(&mut MeshSettings, Option<String>),
) -> impl IntoView + use<> {
    let id = format!("{prefix}{name}");
    let help_id = format!("{id}-help");
    view! {
        <label class="block">
            <span class="text-sm font-medium">{label}</span>
            <select
                class=INPUT
                id=id.clone()
                data-field=id.clone()
                aria-describedby=help_id.clone()
                prop:value=move || value.with(|v| get(v).unwrap_or_default())
                on:change=move |ev| value.update(|v| set(v, empty_none(event_target_value(&ev))))
            >
                <option value="">{unset}</option>
                {options.iter().map(|o| view! { <option value=*o>{*o}</option> }).collect_view()}
            </select>
        </label>
        <p id=help_id class=HELP>{help}</p>
        {field_problems(problems, id)}
    }
}

/// A one-line text field.
#[allow(clippy::too_many_arguments)]
fn text(
    value: RwSignal<MeshSettings>,
    problems: Memo<Vec<SettingProblem>>,
    prefix: &str,
    name: &'static str,
    label: &'static str,
    help: &'static str,
    placeholder: &'static str,
    get: fn(&MeshSettings) -> String,
    set: fn(&mut MeshSettings, String),
) -> impl IntoView + use<> {
    let id = format!("{prefix}{name}");
    let help_id = format!("{id}-help");
    view! {
        <label class="block">
            <span class="text-sm font-medium">{label}</span>
            <input
                class=INPUT
                id=id.clone()
                data-field=id.clone()
                placeholder=placeholder
                aria-describedby=help_id.clone()
                prop:value=move || value.with(get)
                on:input=move |ev| value.update(|v| set(v, event_target_value(&ev)))
            />
        </label>
        <p id=help_id class=HELP>{help}</p>
        {field_problems(problems, id)}
    }
}

/// The settings of one form: `prefix` is `shared.` or `<cluster>.` (field ids and problem names).
/// `overrides` marks a cluster's form: empty fields then take the shared value.
#[component]
pub fn SettingsForm(
    value: RwSignal<MeshSettings>,
    problems: Memo<Vec<SettingProblem>>,
    prefix: String,
    overrides: bool,
) -> impl IntoView {
    let unset = if overrides {
        "(as shared)"
    } else {
        "(operator default)"
    };
    // Starts from the settings given (a running mesh's, when changing them).
    let env_text = RwSignal::new(value.with_untracked(|v| {
        v.istiod_env
            .iter()
            .map(|(k, v)| format!("{k}={v}"))
            .collect::<Vec<_>>()
            .join("\n")
    }));
    let env_error = RwSignal::new(None::<String>);
    let env_id = format!("{prefix}istiod_env");
    let sel_id = format!("{prefix}discovery_selectors");
    let raw_id = format!("{prefix}extensions_yaml");
    let skip_id = format!("{prefix}repository_insecure_skip_verify");
    let p = prefix.clone();
    view! {
        <div class="grid gap-3 md:grid-cols-2">
            <div>
                {choice(value, problems, &p, "distribution", "Distribution",
                    "Standard, or FIPS for FIPS 140-2 validated builds of Istio's images.",
                    &DISTRIBUTIONS, unset, |v| v.distribution.clone(), |v, x| v.distribution = x)}
            </div>
            <div>
                {choice(value, problems, &p, "scaling_profile", "Scaling profile",
                    "Resources of the control plane: Default for most meshes, Demo for small test clusters, Large for many workloads.",
                    &SCALING_PROFILES, unset, |v| v.scaling_profile.clone(), |v, x| v.scaling_profile = x)}
            </div>
            <div>
                {choice(value, problems, &p, "on_conflict", "On conflict",
                    "What the operator does when Istio is already installed: Abort leaves it untouched and stops; Force takes it over.",
                    &ON_CONFLICT, unset, |v| v.on_conflict.clone(), |v, x| v.on_conflict = x)}
            </div>
            <div>
                {choice(value, problems, &p, "traffic_capture_mode", "Traffic capture mode",
                    "How pods' traffic is captured: Auto picks the most suitable way (the Istio CNI). InitContainer is not offered: it works only with the Sidecar data plane mode, and a multicluster mesh runs Ambient.",
                    &TRAFFIC_CAPTURE_MODES, unset, |v| v.traffic_capture_mode.clone(), |v, x| v.traffic_capture_mode = x)}
            </div>
            <div>
                {text(value, problems, &p, "trust_domain", "Trust domain",
                    "The SPIFFE trust domain of workload identities. By default the cluster name; peers read it from each cluster when linking.",
                    if overrides { "(as shared)" } else { "the cluster name" },
                    |v| v.trust_domain.clone().unwrap_or_default(), |v, x| v.trust_domain = empty_none(x))}
            </div>
            <div>
                {text(value, problems, &p, "install_namespace", "Install namespace",
                    "Where istiod, ztunnel and the cacerts Secret live. Outside gloo-system, gloo-mesh and istio-system, Meshdeck sets the operator's WATCH_NAMESPACES to it. It cannot change on a running mesh.",
                    if overrides { "(as shared)" } else { "istio-system" },
                    |v| v.install_namespace.clone().unwrap_or_default(), |v, x| v.install_namespace = empty_none(x))}
            </div>
            <div>
                {text(value, problems, &p, "image_repository", "Image repository",
                    "A private registry that mirrors Istio's images, e.g. registry.example.com/istio. Empty: Solo's public registry.",
                    if overrides { "(as shared)" } else { "Solo's registry" },
                    |v| v.image_repository.clone().unwrap_or_default(), |v, x| v.image_repository = empty_none(x))}
            </div>
            <div>
                {text(value, problems, &p, "image_secrets", "Image pull secrets",
                    "dockerconfigjson Secrets in the install namespace for that registry, comma-separated.",
                    "", |v| v.image_secrets.join(", "), |v, x| v.image_secrets = split_list(&x))}
            </div>
            <div>
                {text(value, problems, &p, "repository_secrets", "Manifest repository secrets",
                    "dockerconfigjson Secrets the operator uses to pull Istio's manifests, comma-separated.",
                    "", |v| v.repository_secrets.join(", "), |v, x| v.repository_secrets = split_list(&x))}
            </div>
            <div>
                <label class="block">
                    <span class="text-sm font-medium">"Skip TLS verification of the manifest repository"</span>
                    <select
                        class=INPUT
                        id=skip_id.clone()
                        data-field=skip_id.clone()
                        prop:value=move || value.with(|v| match v.repository_insecure_skip_verify { None => "", Some(true) => "yes", Some(false) => "no" })
                        on:change=move |ev| {
                            let x = match event_target_value(&ev).as_str() { "yes" => Some(true), "no" => Some(false), _ => None };
                            value.update(|v| v.repository_insecure_skip_verify = x);
                        }
                    >
                        <option value="">{unset}</option>
                        <option value="no">"no"</option>
                        <option value="yes">"yes (a registry with a self-signed certificate)"</option>
                    </select>
                </label>
            </div>
        </div>
        <fieldset class="mt-3">
            <legend class="text-sm font-medium">"Extensions (gloo-extensions-config)"</legend>
            <div class="grid gap-3 md:grid-cols-2">
                <div>
                    <label class="block">
                        <span class="text-sm font-medium">"istiod environment"</span>
                        <textarea
                            class=INPUT
                            rows="3"
                            id=env_id.clone()
                            data-field=env_id.clone()
                            placeholder="PILOT_TRACE_SAMPLING=1.0"
                            prop:value=move || env_text.get()
                            on:input=move |ev| {
                                let t = event_target_value(&ev);
                                env_text.set(t.clone());
                                match parse_env(&t) {
                                    Ok(env) => { env_error.set(None); value.update(|v| v.istiod_env = env); }
                                    Err(e) => env_error.set(Some(e)),
                                }
                            }
                        ></textarea>
                    </label>
                    <p class=HELP>{format!("NAME=value per line, written to values.istiod (env). Use only when you know the variable; PEERING_AUTOMATIC_LOCAL_GATEWAY follows the linking choice. Meshdeck sets {LEGACY_MULTICLUSTER_ENV}=true, as the guide advises for fresh installs (istiod then ignores legacy remote secrets, which must not mix with peering): write {LEGACY_MULTICLUSTER_ENV}=false here to keep them.")}</p>
                    {move || env_error.get().map(|e| view! { <p role="alert" class=ALERT>{format!("✕ {e}")}</p> })}
                    {field_problems(problems, env_id.clone())}
                </div>
                <div>
                    <label class="block">
                        <span class="text-sm font-medium">"Discovery selectors"</span>
                        <textarea
                            class=INPUT
                            rows="3"
                            id=sel_id.clone()
                            data-field=sel_id.clone()
                            placeholder="istio-discovery=enabled"
                            prop:value=move || value.with(|v| v.discovery_selectors.join("\n"))
                            on:input=move |ev| { let t = event_target_value(&ev); value.update(|v| v.discovery_selectors = split_list(&t)); }
                        ></textarea>
                    </label>
                    <p class=HELP>"key=value per line: istiod only watches namespaces with one of these labels (stable → istiod.discoverySelectors). Empty: every namespace."</p>
                    {field_problems(problems, sel_id.clone())}
                </div>
            </div>
            <div class="mt-3 grid gap-3 md:grid-cols-2">
                <div>
                    {text(value, problems, &p, "cni_conf_dir", "CNI configuration directory",
                        "Only where the platform keeps the node's CNI configuration elsewhere than /etc/cni/net.d (k3s, some managed platforms): beta → cni.confDir.",
                        if overrides { "(as shared)" } else { "/etc/cni/net.d" },
                        |v| v.cni_conf_dir.clone().unwrap_or_default(), |v, x| v.cni_conf_dir = empty_none(x))}
                </div>
                <div>
                    {text(value, problems, &p, "cni_bin_dir", "CNI binary directory",
                        "Only where the platform keeps the CNI plugins elsewhere than /opt/cni/bin (e.g. /home/kubernetes/bin on GKE): beta → cni.binDir.",
                        if overrides { "(as shared)" } else { "/opt/cni/bin" },
                        |v| v.cni_bin_dir.clone().unwrap_or_default(), |v, x| v.cni_bin_dir = empty_none(x))}
                </div>
            </div>
            <details class="mt-2">
                <summary class="cursor-pointer text-sm font-medium">"Raw YAML (escape hatch)"</summary>
                <label class="mt-1 block">
                    <span class="text-sm">"More keys of the ConfigMap: stable or values.istio-ztunnel, each as YAML text"</span>
                    <textarea
                        class=format!("{INPUT} font-mono")
                        rows="5"
                        id=raw_id.clone()
                        data-field=raw_id.clone()
                        placeholder="values.istio-ztunnel: |\n  logLevel: debug"
                        prop:value=move || value.with(|v| v.extensions_yaml.clone())
                        on:input=move |ev| { let t = event_target_value(&ev); value.update(|v| v.extensions_yaml = t); }
                    ></textarea>
                </label>
                <p class=HELP>"Checked on the server when you run the preflight or show the plan; the guide advises values.* keys only when necessary."</p>
                {field_problems(problems, raw_id.clone())}
            </details>
        </fieldset>
    }
}

/// One cluster's part of a settings form: name, control-plane overrides, east-west address override and
/// east-west variant (None = the shared choice).
pub type PerCluster = (
    String,
    RwSignal<MeshSettings>,
    RwSignal<String>,
    RwSignal<Option<EastWest>>,
);

/// The per-cluster settings of the clusters `keep` accepts, as a request carries them: only those that differ
/// from "everything as shared".
pub fn per_cluster_settings(
    per: &[PerCluster],
    keep: impl Fn(&str) -> bool,
) -> BTreeMap<ClusterName, ClusterSettings> {
    per.iter()
        .filter(|(n, _, _, _)| keep(n))
        .filter_map(|(n, m, a, e)| {
            let s = ClusterSettings {
                mesh: m.get(),
                address_override: Some(a.get().trim().to_string()).filter(|a| !a.is_empty()),
                eastwest: e.get(),
            };
            (s != ClusterSettings::default())
                .then(|| ClusterName::new(n).ok().map(|n| (n, s)))
                .flatten()
        })
        .collect()
}

/// One cluster's overrides of the shared settings, its east-west variant (empty = the shared one, named by
/// `shared_variant`) and its east-west address override — in the setup wizard and when changing a running
/// mesh's settings.
#[component]
pub fn ClusterOverrides(
    name: String,
    mesh: RwSignal<MeshSettings>,
    address: RwSignal<String>,
    eastwest: RwSignal<Option<EastWest>>,
    problems: Memo<Vec<SettingProblem>>,
    shared_variant: Signal<&'static str>,
) -> impl IntoView {
    let addr_id = format!("{name}.address_override");
    let addr_id2 = addr_id.clone();
    let ew_id = format!("{name}.eastwest");
    let ew_help = format!("{ew_id}-help");
    let ew_error = RwSignal::new(None::<String>);
    let bad_address = move || {
        let a = address.get();
        (!a.trim().is_empty() && !valid_address(a.trim()))
            .then(|| format!("✕ {:?} is neither an IP address nor a DNS name", a.trim()))
    };
    view! {
        <details class="mt-3 rounded border border-slate-200 p-2 dark:border-slate-800" data-cluster-settings=name.clone()>
            <summary class="cursor-pointer font-medium">{format!("Overrides for {name}")}</summary>
            <SettingsForm value=mesh problems=problems prefix=format!("{name}.") overrides=true />
            <label class="mt-3 block max-w-md">
                <span class="text-sm font-medium">"How peers reach this cluster"</span>
                <select
                    class=INPUT
                    id=ew_id.clone()
                    data-field=ew_id.clone()
                    aria-describedby=ew_help.clone()
                    prop:value=move || eastwest_value(eastwest.get())
                    on:change=move |ev| match parse_eastwest(&event_target_value(&ev)) {
                        Ok(v) => { ew_error.set(None); eastwest.set(v); }
                        Err(e) => ew_error.set(Some(e)),
                    }
                >
                    <option value="">{move || format!("(as shared: {})", shared_variant.get())}</option>
                    <option value="load-balancer">"LoadBalancer"</option>
                    <option value="node-port">"NodePort (alpha)"</option>
                </select>
            </label>
            <p id=ew_help.clone() class=HELP>"This cluster's east-west gateway variant, when it differs from the shared choice: NodePort where this cluster has no load balancer (peers dial its nodes; xDS still needs an address — the gateway's or the override below). Peers linking to it ask for the same variant, and the preflight probes for a load balancer only where LoadBalancer is chosen."</p>
            {move || ew_error.get().map(|m| view! { <p role="alert" class=ALERT>{format!("✕ {m}")}</p> })}
            <label class="mt-3 block max-w-md">
                <span class="text-sm font-medium">"East-west address override"</span>
                <input class=INPUT id=addr_id.clone() data-field=addr_id2.clone() prop:value=move || address.get() on:input=move |ev| address.set(event_target_value(&ev)) />
            </label>
            <p class=HELP>"The address peers dial to reach this cluster, when its load balancer assigns none or a private one (an IP or DNS name). Empty: the gateway's own address."</p>
            {move || bad_address().map(|m| view! { <p role="alert" class=ALERT>{m}</p> })}
        </details>
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn env_lines_parse_and_a_line_without_equals_is_reported() {
        let env = parse_env("A=1\n\n B = two words \n").expect("valid");
        assert_eq!(env["A"], "1");
        assert_eq!(env["B"], "two words");
        assert!(
            parse_env("A=1\nB")
                .expect_err("refused")
                .contains("NAME=value")
        );
        assert_eq!(split_list("a, b\nc,,"), ["a", "b", "c"]);
    }
}
