//! Running one step on one cluster: what each step writes, its commands by hand, and the waits until what it
//! made is ready.

use super::*;

pub(super) fn namespace(name: &str) -> Value {
    json!({"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": name}})
}

/// Applies objects, reporting whether any changed (a no-op server-side apply keeps the resourceVersion).
pub(super) async fn apply_all(t: &Target, step: Step, objs: &[Value]) -> Result<bool, StepError> {
    let mut changed = false;
    for obj in objs {
        let before = live_version(&t.client, obj).await;
        let after = crate::apply::apply(&t.client, obj, false)
            .await
            .map_err(|e| StepError::apply(&t.name, step.title(), &e))?;
        changed |= before.as_deref() != after.resource_version().as_deref();
    }
    Ok(changed)
}

pub(crate) async fn live_version(client: &Client, obj: &Value) -> Option<String> {
    get_live(client, obj)
        .await
        .and_then(|o| o.resource_version())
}

fn resource_of(obj: &Value) -> Option<(ApiResource, Option<String>, String)> {
    let api_version = obj["apiVersion"].as_str()?;
    let (group, version) = api_version.split_once('/').unwrap_or(("", api_version));
    let kind = obj["kind"].as_str()?;
    let ar = ApiResource::from_gvk(&GroupVersionKind::gvk(group, version, kind));
    Some((
        ar,
        obj["metadata"]["namespace"].as_str().map(String::from),
        obj["metadata"]["name"].as_str()?.to_string(),
    ))
}

pub(super) async fn get_live(client: &Client, obj: &Value) -> Option<DynamicObject> {
    let (ar, ns, name) = resource_of(obj)?;
    let api: Api<DynamicObject> = match ns {
        Some(ns) => Api::namespaced_with(client.clone(), &ns, &ar),
        None => Api::all_with(client.clone(), &ar),
    };
    api.get_opt(&name).await.ok().flatten()
}

/// Runs one step on one cluster.
#[tracing::instrument(skip_all, fields(cluster = %t.name, step = step.key()))]
pub async fn run_step(
    step: Step,
    t: &Target,
    cluster: &ClusterSetup,
    settings: &Settings,
    root: &RootCa,
    progress: Progress<'_>,
) -> StepResult {
    match step {
        Step::RootOfTrust => root_of_trust(t, cluster.istio_namespace(), root, progress).await,
        Step::Operator => {
            progress(format!(
                "helm upgrade --install {} (if needed)",
                operator::RELEASE
            ));
            let outcome = operator::ensure(&cluster.operator_install(settings), &t.creds, &t.client)
                .await
                .map_err(|e| {
                    let advice = match &e {
                        operator::Error::Helm(crate::helm::Error::Missing { .. }) => "Install helm on the Meshdeck server, then retry",
                        operator::Error::NeedsAdmin { .. } => "Have an administrator run that command once with cluster-admin credentials, then retry this cluster: the step finds the release deployed and goes on",
                        operator::Error::Kube { source, .. } => advice_for(source),
                        _ => "Look at the message above, fix the chart settings or the cluster, then retry this cluster",
                    };
                    StepError::new(&t.name, step.title(), e.to_string(), advice)
                })?;
            Ok(Outcome {
                changed: outcome != operator::Outcome::Unchanged,
                summary: format!("operator {outcome:?}, ready"),
            })
        }
        Step::GatewayApi => {
            let plan = crate::gateway_api::apply(&t.client).await.map_err(|e| {
                let advice = match &e {
                    crate::gateway_api::Error::Kube { source, .. } => advice_for(source),
                    _ => "Retry this cluster",
                };
                StepError::new(&t.name, step.title(), e.to_string(), advice)
            })?;
            let notes: Vec<String> = plan
                .actions
                .iter()
                .map(|(crd, a)| a.describe(crd))
                .collect();
            Ok(Outcome {
                changed: plan.writes(),
                summary: notes.join("; "),
            })
        }
        Step::ControlPlane => control_plane(t, cluster, settings, progress).await,
        Step::EastWest => eastwest(t, cluster, settings, progress).await,
    }
}

/// The objects a step writes (what the plan shows). The root of trust shows the Secret's shape without keys.
pub fn objects(step: Step, cluster: &ClusterSetup, settings: &Settings) -> Vec<Value> {
    match step {
        Step::RootOfTrust => vec![
            namespace(cluster.istio_namespace()),
            json!({"apiVersion": "v1", "kind": "Secret", "metadata": {"name": "cacerts", "namespace": cluster.istio_namespace()},
                   "type": "Opaque", "data": {"ca-cert.pem": "<intermediate for this cluster>", "ca-key.pem": "<its key, generated at apply time>",
                   "root-cert.pem": "<the shared root>", "cert-chain.pem": "<intermediate + root>"}}),
        ],
        Step::Operator => {
            let mut v = vec![namespace(OPERATOR_NAMESPACE)];
            if let Some(mut s) = operator::license_secret(&settings.operator.license) {
                s["stringData"]["license-key"] = json!("<the license key>");
                v.push(s);
            }
            v
        }
        Step::GatewayApi => crate::gateway_api::bundle()
            .map(|crds| {
                crds.iter()
                    .filter_map(|c| serde_json::to_value(c).ok())
                    .collect()
            })
            .unwrap_or_default(),
        Step::ControlPlane => vec![
            objects::extensions_config(
                matches!(settings.peering, Peering::Automatic { .. }),
                &cluster.cni,
                &cluster.istiod_env,
                &cluster.extensions,
            ),
            objects::service_mesh_controller(&cluster.mesh_spec(settings)),
        ],
        Step::EastWest => vec![
            namespace(EASTWEST_NAMESPACE),
            objects::eastwest_gateway(
                &cluster.name,
                &cluster.network,
                cluster.data_plane(settings),
                cluster.address_override.as_deref(),
                &cluster.locality,
            ),
        ],
    }
}

/// The commands a user would run by hand for a step.
pub fn commands(step: Step, cluster: &ClusterSetup, settings: &Settings) -> Vec<String> {
    let ctx = cluster.name.as_str();
    let ns = cluster.istio_namespace();
    match step {
        // Meshdeck issues the intermediate itself (the root's key never leaves the console). By hand, without
        // openssl: smallstep's `step` CLI makes what Istio's Makefile.selfsigned.mk makes (§6.2) — CA:true with
        // pathlen 0 (its intermediate-ca profile), the istiod SAN, 10 years — from the root's files.
        Step::RootOfTrust => vec![
            format!(
                "step certificate create \"Intermediate CA\" {ctx}/ca-cert.pem {ctx}/ca-key.pem --profile intermediate-ca \
                 --ca root-cert.pem --ca-key root-key.pem --san istiod.{ns}.svc --not-after 87600h --no-password --insecure"
            ),
            format!(
                "cp root-cert.pem {ctx}/root-cert.pem && cat {ctx}/ca-cert.pem {ctx}/root-cert.pem > {ctx}/cert-chain.pem"
            ),
            format!("kubectl --context {ctx} create namespace {ns}"),
            format!(
                "kubectl --context {ctx} create secret generic cacerts -n {ns} --from-file={ctx}/ca-cert.pem \
                 --from-file={ctx}/ca-key.pem --from-file={ctx}/root-cert.pem --from-file={ctx}/cert-chain.pem"
            ),
        ],
        Step::Operator => {
            let mut v = vec![];
            if matches!(settings.operator.license, operator::License::Key(_)) {
                v.push(format!(
                    "kubectl --context {ctx} create secret generic {} -n {OPERATOR_NAMESPACE} --from-file=license-key=license.txt",
                    operator::LICENSE_SECRET
                ));
            }
            v.push(operator::command(&cluster.operator_install(settings), ctx));
            v
        }
        Step::GatewayApi => vec![format!(
            "kubectl --context {ctx} apply --server-side -f https://github.com/kubernetes-sigs/gateway-api/releases/download/{}/standard-install.yaml",
            crate::gateway_api::BUNDLE_VERSION
        )],
        Step::ControlPlane => vec![
            format!(
                "kubectl --context {ctx} apply --server-side -f gloo-extensions-config.yaml -f servicemeshcontroller.yaml"
            ),
            format!(
                "kubectl --context {ctx} -n {OPERATOR_NAMESPACE} wait servicemeshcontroller/{SMC_NAME} --for=condition=Ready --timeout=10m"
            ),
        ],
        Step::EastWest => vec![
            format!("kubectl --context {ctx} create namespace {EASTWEST_NAMESPACE}"),
            format!(
                "istioctl multicluster expose --namespace {EASTWEST_NAMESPACE} --context {ctx}"
            ) + if cluster.data_plane(settings) == DataPlane::NodePort {
                " --generate | kubectl annotate -f - --local -o yaml peering.solo.io/data-plane-service-type=NodePort | kubectl apply -f -"
            } else {
                ""
            },
            format!(
                "kubectl --context {ctx} -n {EASTWEST_NAMESPACE} wait gateway/{EASTWEST_NAME} --for=condition=Programmed --timeout=5m"
            ),
        ],
    }
}

/// `t`'s cluster's intermediate CA signed by `root`, valid `days`, made off the async workers (an RSA key
/// takes a second or more).
pub(crate) async fn mint_intermediate(
    t: &Target,
    step: &str,
    root: &RootCa,
    days: i64,
) -> Result<crate::ca::Intermediate, StepError> {
    let (issuer, name) = (root.clone(), t.name.clone());
    tokio::task::spawn_blocking(move || issuer.intermediate(&name, days))
        .await
        .map_err(|e| crate::ca::Error::Generate(e.to_string()))
        .and_then(|r| r)
        .map_err(|e| {
            StepError::new(
                &t.name,
                step,
                e.to_string(),
                "Retry; if it persists, report it",
            )
        })
}

async fn root_of_trust(t: &Target, ns: &str, root: &RootCa, progress: Progress<'_>) -> StepResult {
    let step = Step::RootOfTrust.title();
    let secrets = Api::<Secret>::namespaced(t.client.clone(), ns);
    let existing = match crate::apply::retrying(|| secrets.get_opt("cacerts")).await {
        Ok(s) => s,
        // No namespace yet reads as 404 on the secret, handled by get_opt; anything else is an error.
        Err(e) => {
            return Err(StepError::kube(
                &t.name,
                step,
                &format!("reading Secret {ns}/cacerts"),
                &e,
            ));
        }
    };
    let ours = crate::ca::fingerprint(&root.cert_pem);
    if let Some(s) = &existing {
        let theirs = crate::ca::secret_root_fingerprint(s);
        if theirs == ours && ours.is_some() {
            return Ok(Outcome {
                changed: false,
                summary: "cacerts already holds an intermediate of the shared root".into(),
            });
        }
        return Err(StepError::new(
            &t.name,
            step,
            format!(
                "{ns}/cacerts exists with another root of trust ({})",
                theirs
                    .as_deref()
                    .map_or("unreadable".into(), crate::ca::short)
            ),
            "Meshdeck does not overwrite a root of trust: use that root for every cluster (import it), or delete the \
             Secret if nothing uses it yet, then retry",
        ));
    }
    progress("generating this cluster's intermediate CA".into());
    let intermediate = mint_intermediate(t, step, root, crate::ca::DEFAULT_DAYS).await?;
    apply_all(
        t,
        Step::RootOfTrust,
        &[namespace(ns), intermediate.cacerts_secret(ns)],
    )
    .await?;
    Ok(Outcome {
        changed: true,
        summary: "wrote cacerts (intermediate signed by the shared root)".into(),
    })
}

fn conditions_text(v: &Value) -> String {
    v["status"]["conditions"]
        .as_array()
        .map(|cs| {
            cs.iter()
                .map(|c| {
                    format!(
                        "{}={}{}",
                        c["type"].as_str().unwrap_or("?"),
                        c["status"].as_str().unwrap_or("?"),
                        c["reason"]
                            .as_str()
                            .map(|r| format!(" ({r})"))
                            .unwrap_or_default()
                    )
                })
                .collect::<Vec<_>>()
                .join(", ")
        })
        .unwrap_or_else(|| "no conditions yet".into())
}

fn condition_true(v: &Value, ty: &str) -> bool {
    v["status"]["conditions"]
        .as_array()
        .is_some_and(|cs| cs.iter().any(|c| c["type"] == ty && c["status"] == "True"))
}

/// Whether the east-west Service peers read (§2.1) declares the variant `cluster` asks for and the address
/// override its live Gateway `gateway` carries — none once an override was cleared (annotations are copied
/// from the Gateway to its Service, §1.2); otherwise what it shows instead.
async fn service_shows(
    t: &Target,
    cluster: &ClusterSetup,
    settings: &Settings,
    gateway: &Value,
) -> Result<(), String> {
    let (peer, declared) = PeerInfo::read_with_data_plane(&t.client)
        .await
        .map_err(|e| format!("reading the east-west Service: {e}"))?;
    let wanted = cluster.data_plane(settings);
    let shown = declared.unwrap_or(DataPlane::LoadBalancer);
    if shown != wanted {
        return Err(format!(
            "the east-west Service still declares {shown:?}, the gateway asks for {wanted:?}"
        ));
    }
    const OVERRIDE: &str = "istio.io/expose-istiod-address";
    let asked = gateway["metadata"]["annotations"][OVERRIDE].as_str();
    let services = Api::<Service>::namespaced(t.client.clone(), EASTWEST_NAMESPACE)
        .list(&ListParams::default().labels("istio.io/expose-istiod"))
        .await
        .map_err(|e| format!("reading the east-west Service: {e}"))?;
    let shown: Vec<&str> = services
        .items
        .iter()
        .filter_map(|s| s.annotations().get(OVERRIDE).map(String::as_str))
        .collect();
    match asked {
        Some(a) if peer.address != a => Err(format!(
            "the east-west Service still shows address {}, the override is {a}",
            peer.address
        )),
        None if !shown.is_empty() => Err(format!(
            "the east-west Service still carries the address override {} that was cleared",
            shown.join(", ")
        )),
        _ => Ok(()),
    }
}

/// Whether condition `ty` is True and was written for the object's current generation (a condition without
/// `observedGeneration` counts as current).
pub(super) fn current_condition_true(v: &Value, ty: &str) -> bool {
    let generation = v["metadata"]["generation"].as_i64().unwrap_or(0);
    v["status"]["conditions"].as_array().is_some_and(|cs| {
        cs.iter().any(|c| {
            c["type"] == ty
                && c["status"] == "True"
                && c["observedGeneration"]
                    .as_i64()
                    .is_none_or(|g| g >= generation)
        })
    })
}

/// How long a step waits for the cluster before failing with what it saw.
pub const WAIT: Duration = Duration::from_secs(600);

async fn control_plane(
    t: &Target,
    cluster: &ClusterSetup,
    settings: &Settings,
    progress: Progress<'_>,
) -> StepResult {
    let step = Step::ControlPlane;
    let objs = objects(step, cluster, settings);
    let changed = apply_all(t, step, &objs).await?;
    let api = Api::<DynamicObject>::namespaced_with(
        t.client.clone(),
        OPERATOR_NAMESPACE,
        &smc_resource(),
    );
    let start = Instant::now();
    let mut pauses = crate::apply::Pauses::for_waits();
    let mut last = String::new();
    loop {
        let smc = crate::apply::retrying(|| api.get(SMC_NAME))
            .await
            .map_err(|e| {
                StepError::kube(
                    &t.name,
                    step.title(),
                    "reading the ServiceMeshController",
                    &e,
                )
            })?;
        let v = serde_json::to_value(&smc).unwrap_or(Value::Null);
        let phase = v["status"]["phase"].as_str().unwrap_or("").to_string();
        let text = format!(
            "phase {}; {}",
            if phase.is_empty() { "—" } else { &phase },
            conditions_text(&v)
        );
        if text != last {
            progress(text.clone());
            last = text.clone();
        }
        // A status written for an older spec (before this apply's change, e.g. a new version) says nothing
        // yet: wait until the operator has seen this generation.
        let generation = v["metadata"]["generation"].as_i64().unwrap_or(0);
        let seen = v["status"]["observedGeneration"].as_i64().or_else(|| {
            v["status"]["conditions"].as_array().and_then(|cs| {
                cs.iter()
                    .find(|c| c["type"] == "Ready")
                    .and_then(|c| c["observedGeneration"].as_i64())
            })
        });
        let fresh = seen.is_none_or(|g| g >= generation);
        if fresh && phase == "SUCCEEDED" && condition_true(&v, "Ready") {
            return Ok(Outcome {
                changed,
                summary: "ServiceMeshController Ready, phase SUCCEEDED".into(),
            });
        }
        if fresh && phase == "FAILED" {
            let failing = v["status"]["conditions"]
                .as_array()
                .and_then(|cs| cs.iter().find(|c| c["status"] == "False").cloned())
                .unwrap_or(Value::Null);
            return Err(StepError::new(
                &t.name,
                step.title(),
                format!(
                    "the operator reports FAILED: {} {}",
                    failing["reason"].as_str().unwrap_or(""),
                    failing["message"].as_str().unwrap_or("")
                ),
                "Fix the cause in the ServiceMeshController settings (or onConflict: Force to take over an existing Istio), then retry this cluster",
            ));
        }
        if start.elapsed() > WAIT {
            return Err(StepError::new(
                &t.name,
                step.title(),
                format!("not ready after {} s: {text}", WAIT.as_secs()),
                "Look at the operator's log (kubectl -n gloo-mesh logs deploy/gloo-operator), then retry this cluster",
            ));
        }
        pauses.sleep().await;
    }
}

async fn eastwest(
    t: &Target,
    cluster: &ClusterSetup,
    settings: &Settings,
    progress: Progress<'_>,
) -> StepResult {
    let step = Step::EastWest;
    let changed = apply_all(t, step, &objects(step, cluster, settings)).await?;
    let api = Api::<DynamicObject>::namespaced_with(
        t.client.clone(),
        EASTWEST_NAMESPACE,
        &gateway_resource(),
    );
    let start = Instant::now();
    let mut pauses = crate::apply::Pauses::for_waits();
    let mut last = String::new();
    loop {
        let gw = crate::apply::retrying(|| api.get(EASTWEST_NAME))
            .await
            .map_err(|e| {
                StepError::kube(&t.name, step.title(), "reading the east-west gateway", &e)
            })?;
        let v = serde_json::to_value(&gw).unwrap_or(Value::Null);
        let addresses: Vec<String> = v["status"]["addresses"]
            .as_array()
            .map(|a| {
                a.iter()
                    .filter_map(|x| x["value"].as_str().map(String::from))
                    .collect()
            })
            .unwrap_or_default();
        let text = conditions_text(&v);
        if text != last {
            progress(text.clone());
            last = text.clone();
        }
        // Programmed for this generation (a status written for an older spec no longer counts, §1.4), and its
        // Service shows the variant and address override just applied: both are annotations, which leave the
        // generation as it is, and peers are linked from the Service (§1.2, §2.1).
        if current_condition_true(&v, "Programmed") && !addresses.is_empty() {
            match service_shows(t, cluster, settings, &v).await {
                Ok(()) => {
                    return Ok(Outcome {
                        changed,
                        summary: format!("Programmed, address {}", addresses.join(", ")),
                    });
                }
                Err(why) if why != last => {
                    progress(why.clone());
                    last = why;
                }
                Err(_) => {}
            }
        }
        if start.elapsed() > WAIT {
            let no_lb = text.contains("AddressNotAssigned");
            return Err(StepError::new(
                &t.name,
                step.title(),
                format!("not programmed after {} s: {text}", WAIT.as_secs()),
                if no_lb {
                    "No load-balancer address was assigned: set an address override for this cluster or choose NodePort peering, then retry"
                } else {
                    "Look at kubectl -n istio-eastwest describe gateway istio-eastwest, then retry this cluster"
                },
            ));
        }
        pauses.sleep().await;
    }
}
