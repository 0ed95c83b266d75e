//! The checks of one cluster, each read-only, each with what to do when it does not pass.

use super::*;

/// Every check of one cluster. Errors reading the cluster become failed checks that name the cluster.
#[tracing::instrument(skip_all, fields(cluster = %name))]
pub async fn check_cluster(name: &ClusterName, client: &Client) -> ClusterChecks {
    let mut results = Vec::new();
    if let Err(e) = client.apiserver_version().await {
        results.push(
            CheckResult::new(
                CheckId::Reachable,
                Status::Fail,
                format!("cluster {name} cannot be reached: {}", crate::connect::classify(&e)),
            )
            .fix("Check the address and credentials of this cluster in Meshdeck (Clusters → Re-test)."),
        );
        return ClusterChecks {
            cluster: name.clone(),
            results,
            root_fingerprint: None,
            trusted_roots: vec![],
        };
    }
    let eastwest_selector = format!("service.istio.io/canonical-name={EASTWEST_NAME}");
    // The control plane's namespace (its ServiceMeshController's installNamespace, as istioctl's
    // --istio-namespace); istio-system when it cannot be read, and the checks reading there say what is missing.
    let ns = crate::objects::istio_namespace(client)
        .await
        .unwrap_or_else(|_| ISTIO_NAMESPACE.to_string());
    let ns = ns.as_str();
    let (env, license, istiod, ztunnel, eastwest, gateways, peers, stale, root) = tokio::join!(
        check_env(client, ns),
        check_license(client, ns),
        check_pods(client, CheckId::IstiodPods, "app=istiod"),
        check_pods(client, CheckId::ZtunnelPods, "app=ztunnel"),
        check_pods(client, CheckId::EastWestPods, &eastwest_selector),
        check_gateways(client),
        check_peers(client, ns),
        check_stale(client, ns),
        check_root(client, ns),
    );
    let (root, fingerprint, trusted_roots) = root;
    results.extend([
        env, license, istiod, ztunnel, eastwest, gateways, peers, stale, root,
    ]);
    ClusterChecks {
        cluster: name.clone(),
        results,
        root_fingerprint: fingerprint,
        trusted_roots,
    }
}

fn read_error(id: CheckId, what: &str, e: &kube::Error) -> CheckResult {
    let forbidden = matches!(e, kube::Error::Api(s) if s.code == 403);
    CheckResult::new(id, Status::Fail, format!("reading {what}: {}", crate::connect::classify(e))).fix(
        if forbidden {
            "Grant Meshdeck's credentials read access (get/list) to these objects; the cluster page lists what is missing."
        } else {
            "Re-run the check; if it persists, look at the cluster's API server."
        },
    )
}

async fn istiod_deployments(client: &Client, ns: &str) -> Result<Vec<Deployment>, kube::Error> {
    Ok(Api::<Deployment>::namespaced(client.clone(), ns)
        .list(&ListParams::default().labels("app=istiod"))
        .await?
        .items)
}

/// The literal environment of a container of a Deployment (`None` for variables set from a reference).
pub(crate) fn env_of(d: &Deployment, container: &str) -> BTreeMap<String, Option<String>> {
    d.spec
        .as_ref()
        .and_then(|s| s.template.spec.as_ref())
        .and_then(|s| s.containers.iter().find(|c| c.name == container))
        .and_then(|c| c.env.as_ref())
        .map(|env| {
            env.iter()
                .map(|e| (e.name.clone(), e.value.clone()))
                .collect()
        })
        .unwrap_or_default()
}

/// Check 1 (§3, §2.4): peering discovery on; workload entry selection not off.
async fn check_env(client: &Client, ns: &str) -> CheckResult {
    let id = CheckId::EnvironmentVariables;
    let deployments = match istiod_deployments(client, ns).await {
        Ok(d) => d,
        Err(e) => return read_error(id, "istiod deployments", &e),
    };
    if deployments.is_empty() {
        return CheckResult::new(id, Status::Fail, format!("no istiod deployment (app=istiod) in {ns}"))
            .fix("Install the control plane: the ServiceMeshController step of the setup creates istiod.");
    }
    let mut problems = vec![];
    for d in &deployments {
        let env = env_of(d, "discovery");
        match env.get("ENABLE_PEERING_DISCOVERY") {
            Some(Some(v)) if v == "true" => {}
            Some(v) => problems.push(format!(
                "{}: ENABLE_PEERING_DISCOVERY is invalid ({:?}); it must be \"true\"",
                d.name_any(),
                v.clone().unwrap_or_default()
            )),
            None => problems.push(format!(
                "{}: ENABLE_PEERING_DISCOVERY is not set; it must be \"true\"",
                d.name_any()
            )),
        }
        if let Some(v) = env.get("PILOT_ENABLE_K8S_SELECT_WORKLOAD_ENTRIES")
            && v.as_deref() != Some("true")
        {
            problems.push(format!(
                "{}: PILOT_ENABLE_K8S_SELECT_WORKLOAD_ENTRIES is invalid ({:?}); peering needs it unset or \"true\"",
                d.name_any(),
                v.clone().unwrap_or_default()
            ));
        }
    }
    if problems.is_empty() {
        CheckResult::new(
            id,
            Status::Pass,
            "all relevant environment variables are valid",
        )
    } else {
        CheckResult::new(id, Status::Fail, problems.join("; ")).fix(
            "Peering needs ENABLE_PEERING_DISCOVERY=true and ambient controllers (dataplaneMode: Ambient in the \
             ServiceMeshController); remove PILOT_ENABLE_K8S_SELECT_WORKLOAD_ENTRIES=false from values.istiod in \
             gloo-extensions-config.",
        )
    }
}

fn running_and_ready(p: &Pod) -> bool {
    let Some(status) = &p.status else {
        return false;
    };
    status.phase.as_deref() == Some("Running")
        && status
            .container_statuses
            .as_ref()
            .is_some_and(|cs| !cs.is_empty() && cs.iter().all(|c| c.ready))
}

/// Checks 3–5: pods with `selector` in all namespaces are Running and ready; none is a warning.
async fn check_pods(client: &Client, id: CheckId, selector: &str) -> CheckResult {
    let pods = match Api::<Pod>::all(client.clone())
        .list(&ListParams::default().labels(selector))
        .await
    {
        Ok(p) => p.items,
        Err(e) => return read_error(id, "pods", &e),
    };
    let what = match id {
        CheckId::IstiodPods => "istiod",
        CheckId::ZtunnelPods => "ztunnel",
        _ => "east-west gateway",
    };
    if pods.is_empty() {
        return CheckResult::new(id, Status::Warn, format!("no {what} pods found ({selector})")).fix(
            match id {
                CheckId::EastWestPods => "Create the east-west gateway (setup step \"East-west gateway\"); it must be named istio-eastwest.",
                _ => "Wait for the ServiceMeshController to finish, or look at its conditions on the cluster page.",
            },
        );
    }
    let unhealthy: Vec<String> = pods
        .iter()
        .filter(|p| !running_and_ready(p))
        .map(|p| {
            format!(
                "{}/{}: {}",
                p.namespace().unwrap_or_default(),
                p.name_any(),
                p.status
                    .as_ref()
                    .and_then(|s| s.phase.clone())
                    .unwrap_or_else(|| "Unknown".into())
            )
        })
        .collect();
    if unhealthy.is_empty() {
        CheckResult::new(
            id,
            Status::Pass,
            format!("all {} {what} pods healthy", pods.len()),
        )
    } else {
        CheckResult::new(
            id,
            Status::Warn,
            format!("found {} unhealthy {what} pods", unhealthy.len()),
        )
        .details(unhealthy)
        .fix(format!(
            "Look at the pods' events and logs: kubectl describe pods -A -l {selector}"
        ))
    }
}

async fn list_gateways(client: &Client) -> Result<Vec<DynamicObject>, kube::Error> {
    Ok(
        Api::<DynamicObject>::all_with(client.clone(), &gateway_resource())
            .list(&ListParams::default())
            .await?
            .items,
    )
}

fn class_of(g: &DynamicObject) -> &str {
    g.data["spec"]["gatewayClassName"].as_str().unwrap_or("")
}

fn condition<'a>(g: &'a DynamicObject, ty: &str) -> Option<&'a Value> {
    g.data["status"]["conditions"]
        .as_array()?
        .iter()
        .find(|c| c["type"] == ty)
}

/// Check 6: every east-west gateway is Programmed; none at all is a failure.
async fn check_gateways(client: &Client) -> CheckResult {
    let id = CheckId::Gateways;
    let gateways = match list_gateways(client).await {
        Ok(g) => g,
        Err(kube::Error::Api(s)) if s.code == 404 => {
            return CheckResult::new(id, Status::Fail, "the Gateway API CRDs are not installed")
                .fix("Install the Gateway API v1.4.0 CRDs (setup step \"Gateway API CRDs\").");
        }
        Err(e) => return read_error(id, "gateways", &e),
    };
    let eastwest: Vec<&DynamicObject> = gateways
        .iter()
        .filter(|g| class_of(g) == "istio-eastwest")
        .collect();
    if eastwest.is_empty() {
        return CheckResult::new(id, Status::Fail, "no configured eastwest gateways")
            .fix("Create the east-west gateway (class istio-eastwest) in istio-eastwest.");
    }
    let mut bad = vec![];
    for g in &eastwest {
        let c = condition(g, "Programmed");
        if c.is_none_or(|c| c["status"] != "True") {
            bad.push(format!(
                "{}/{}: {}",
                g.namespace().unwrap_or_default(),
                g.name_any(),
                c.map_or("not reported yet".to_string(), |c| format!(
                    "{} — {}",
                    c["reason"].as_str().unwrap_or(""),
                    c["message"].as_str().unwrap_or("")
                ))
            ));
        }
    }
    if bad.is_empty() {
        CheckResult::new(id, Status::Pass, "all eastwest gateways programmed")
    } else {
        let no_address = bad.iter().any(|b| b.contains("AddressNotAssigned"));
        CheckResult::new(id, Status::Fail, "found unprogrammed eastwest gateway(s)")
            .details(bad)
            .fix(if no_address {
                "The gateway's LoadBalancer Service has no address: this cluster may have no load-balancer controller. \
                 Set an address override (istio.io/expose-istiod-address) or use NodePort peering."
            } else {
                "Look at the gateway's conditions and the istio-eastwest Service: kubectl get gateway,svc -n istio-eastwest"
            })
    }
}

/// Check 7, corrected: a peer gateway is connected when all its peering conditions are True; one without
/// conditions yet is pending, not connected.
async fn check_peers(client: &Client, ns: &str) -> CheckResult {
    let id = CheckId::Peers;
    let gateways = match list_gateways(client).await {
        Ok(g) => g,
        Err(kube::Error::Api(s)) if s.code == 404 => {
            return CheckResult::new(id, Status::Fail, "the Gateway API CRDs are not installed")
                .fix("Install the Gateway API v1.4.0 CRDs, then link the clusters.");
        }
        Err(e) => return read_error(id, "gateways", &e),
    };
    // istiod ignores a peer gateway for its own cluster (automatic peering creates one locally, §7.2).
    let local = istiod_deployments(client, ns).await.ok().and_then(|ds| {
        ds.iter()
            .find_map(|d| env_of(d, "discovery").get("CLUSTER_ID").cloned().flatten())
    });
    let is_local = |g: &DynamicObject| {
        local.is_some() && g.labels().get("topology.istio.io/cluster") == local.as_ref()
    };
    let peers: Vec<&DynamicObject> = gateways
        .iter()
        .filter(|g| class_of(g) == "istio-remote" && !is_local(g))
        .collect();
    if peers.is_empty() {
        return CheckResult::new(id, Status::Fail, NO_PEERS)
            .fix("Link the clusters (setup step \"Link\"), or with automatic peering wait for the management plane to distribute the peer gateways.");
    }
    let mut details = vec![];
    let (mut failed, mut pending) = (0, 0);
    for g in &peers {
        let name = g.name_any();
        let conds: Vec<&Value> = PEER_CONDITIONS
            .iter()
            .filter_map(|t| condition(g, t))
            .collect();
        if conds.is_empty() {
            pending += 1;
            details.push(format!(
                "{name}: pending — no peering conditions reported yet"
            ));
        } else if let Some(c) = conds.iter().find(|c| c["status"] == "False") {
            failed += 1;
            details.push(format!(
                "{name}: {} is False ({}): {}",
                c["type"].as_str().unwrap_or(""),
                c["reason"].as_str().unwrap_or(""),
                c["message"].as_str().unwrap_or("")
            ));
        } else if conds.len() < PEER_CONDITIONS.len() || conds.iter().any(|c| c["status"] != "True")
        {
            pending += 1;
            let waiting: Vec<&str> = PEER_CONDITIONS
                .iter()
                .copied()
                .filter(|t| condition(g, t).is_none_or(|c| c["status"] != "True"))
                .collect();
            details.push(format!(
                "{name}: pending — waiting for {}",
                waiting.join(", ")
            ));
        } else {
            details.push(format!("{name}: connected"));
        }
    }
    if failed > 0 {
        let invalid = details.iter().any(|d| d.contains("(Invalid)"));
        CheckResult::new(id, Status::Fail, format!("found {failed} disconnected cluster(s)"))
            .details(details)
            .fix(if invalid {
                "A peer gateway is invalid: re-link the pair from Meshdeck, which rebuilds it from the peer's live state."
            } else {
                "Check that both clusters share the root of trust, that the peer's east-west address is reachable from \
                 this cluster, and that the license allows multicluster; then re-run the checks."
            })
    } else if pending > 0 {
        CheckResult::new(id, Status::Pending, format!("{pending} peer(s) not connected yet"))
            .details(details)
            .fix("Peering takes a moment after linking (longer with hostname addresses, while DNS propagates); re-run the checks.")
    } else {
        CheckResult::new(
            id,
            Status::Pass,
            format!("all {} clusters connected", peers.len()),
        )
        .details(details)
    }
}

/// Check 8: flat-network workload entries whose source pods are gone. Needs every source cluster, so per
/// cluster it reports what it found.
async fn check_stale(client: &Client, ns: &str) -> CheckResult {
    let id = CheckId::StaleWorkloads;
    let ar = ApiResource::from_gvk(&GroupVersionKind::gvk(
        "networking.istio.io",
        "v1",
        "WorkloadEntry",
    ));
    match Api::<DynamicObject>::namespaced_with(client.clone(), ns, &ar)
        .list(&ListParams::default().labels("solo.io/source-workload"))
        .await
    {
        Ok(list) => {
            let flat = list
                .items
                .iter()
                .filter(|w| {
                    w.labels()
                        .get("solo.io/source-workload")
                        .is_some_and(|v| v.starts_with("autogenflat."))
                })
                .count();
            CheckResult::new(
                id,
                Status::Pass,
                if flat == 0 {
                    "no autogenflat workload entries found".to_string()
                } else {
                    format!("{flat} flat-network workload entries present")
                },
            )
        }
        Err(kube::Error::Api(s)) if s.code == 404 => CheckResult::new(
            id,
            Status::Pass,
            "no workload entries (the WorkloadEntry API is not served)",
        ),
        Err(e) => read_error(id, "workload entries", &e),
    }
}

/// The root of trust: `cacerts` (what istiod should use) against `istio-ca-root-cert` (what it serves).
async fn check_root(client: &Client, ns: &str) -> (CheckResult, Option<String>, Vec<String>) {
    let id = CheckId::RootOfTrust;
    let restart = format!(
        "Restart istiod so it reads cacerts again: kubectl rollout restart deployment -n {ns} -l app=istiod"
    );
    let served_all = match Api::<ConfigMap>::namespaced(client.clone(), ns)
        .get_opt("istio-ca-root-cert")
        .await
    {
        Ok(cm) => cm
            .and_then(|c| c.data)
            .and_then(|d| d.get("root-cert.pem").cloned())
            .map(|p| crate::ca::fingerprints(&p))
            .unwrap_or_default(),
        Err(e) => {
            return (
                read_error(id, "ConfigMap istio-ca-root-cert", &e),
                None,
                vec![],
            );
        }
    };
    let served = served_all.first().cloned();
    let (plugged, plugged_all) = match Api::<Secret>::namespaced(client.clone(), ns)
        .get_opt("cacerts")
        .await
    {
        Ok(s) => (
            s.as_ref().and_then(crate::ca::secret_root_fingerprint),
            s.as_ref()
                .map(crate::ca::secret_trusted_roots)
                .unwrap_or_default(),
        ),
        Err(e) => return (read_error(id, "Secret cacerts", &e), None, vec![]),
    };
    // istiod serves what it read at start-up: a bundle changed since (a rotation's step) needs a restart.
    let stale_bundle = plugged.is_some() && served.is_some() && plugged_all != served_all;
    let result = match (&plugged, &served) {
        (None, None) => CheckResult::new(id, Status::Fail, "no cacerts and no root served by istiod").fix(
            "Create the shared root of trust (setup step \"Root of trust\") before installing the control plane.",
        ),
        (None, Some(s)) => CheckResult::new(
            id,
            Status::Fail,
            format!("istiod serves its own self-signed root {} (no cacerts)", short(s)),
        )
        .fix(format!(
            "Write a cacerts Secret signed by the shared root in {ns}, then restart istiod \
             (kubectl rollout restart deployment -n {ns} -l app=istiod)."
        )),
        (Some(p), None) => CheckResult::new(
            id,
            Status::Pending,
            format!("cacerts has root {}; istiod does not serve a root yet", short(p)),
        )
        .fix("Wait for istiod to start."),
        (Some(_), Some(_)) if stale_bundle && plugged == served => CheckResult::new(
            id,
            Status::Fail,
            format!(
                "istiod serves the roots {} but cacerts trusts {}: cacerts was changed after istiod started",
                served_all.iter().map(|f| short(f)).collect::<Vec<_>>().join(" and "),
                plugged_all.iter().map(|f| short(f)).collect::<Vec<_>>().join(" and ")
            ),
        )
        .fix(restart.clone()),
        (Some(p), Some(s)) if p != s => CheckResult::new(
            id,
            Status::Fail,
            format!(
                "istiod serves root {} but cacerts holds {}: cacerts was changed after istiod started",
                short(s),
                short(p)
            ),
        )
        .fix(restart),
        (Some(_), Some(_)) if served_all.len() > 1 => CheckResult::new(
            id,
            Status::Pass,
            format!(
                "istiod serves the plugged bundle of roots {}",
                served_all.iter().map(|f| short(f)).collect::<Vec<_>>().join(" and ")
            ),
        ),
        (Some(_), Some(s)) => CheckResult::new(id, Status::Pass, format!("istiod serves the plugged root {}", short(s))),
    };
    let trusted = if served_all.len() > 1 {
        served_all
    } else {
        vec![]
    };
    (result, served, trusted)
}

/// Check 2: istiod's `/debug/license` through a port-forward to its monitoring port (from localhost, so
/// the debug endpoint's authorization does not apply, §9 P17). 404 means Istio before 1.27: not supported,
/// counted as a pass.
async fn check_license(client: &Client, ns: &str) -> CheckResult {
    let id = CheckId::License;
    let pods = match Api::<Pod>::namespaced(client.clone(), ns)
        .list(&ListParams::default().labels("app=istiod"))
        .await
    {
        Ok(p) => p.items,
        Err(e) => return read_error(id, "istiod pods", &e),
    };
    let running: Vec<&Pod> = pods
        .iter()
        .filter(|p| p.status.as_ref().and_then(|s| s.phase.as_deref()) == Some("Running"))
        .collect();
    if running.is_empty() {
        return CheckResult::new(id, Status::Pending, "no running istiod pod to ask")
            .fix("Wait for istiod to run, then re-run the checks.");
    }
    let api = Api::<Pod>::namespaced(client.clone(), ns);
    let mut details = vec![];
    let mut worst_status = Status::Pass;
    let mut unsupported = false;
    for p in running {
        let port: u16 = p
            .annotations()
            .get("prometheus.io/port")
            .and_then(|v| v.parse().ok())
            .unwrap_or(15014);
        let name = p.name_any();
        match tokio::time::timeout(
            Duration::from_secs(15),
            http_get_through_port_forward(&api, &name, port, "/debug/license"),
        )
        .await
        {
            Ok(Ok((404, _))) => {
                unsupported = true;
                details.push(format!("{name}: no license endpoint (Istio before 1.27)"));
            }
            Ok(Ok((200, body))) => {
                let v: Value = serde_json::from_str(&body).unwrap_or(Value::Null);
                let state = v["State"].as_str().unwrap_or("");
                let product = v["Product"].as_str().unwrap_or("");
                let ok = matches!(state, "OK" | "BYPASSED")
                    && !matches!(product, "GlooCore" | "IstioSupportBasic");
                if !ok {
                    worst_status = Status::Fail;
                }
                details.push(format!("{name}: state {state:?}, product {product:?}"));
            }
            Ok(Ok((code, body))) => {
                worst_status = Status::Fail;
                details.push(format!(
                    "{name}: HTTP {code}: {}",
                    body.chars().take(200).collect::<String>()
                ));
            }
            Ok(Err(e)) => {
                worst_status = Status::Fail;
                details.push(format!("{name}: port-forward to {port} failed: {e}"));
            }
            Err(_) => {
                worst_status = Status::Fail;
                details.push(format!("{name}: no answer within 15 s"));
            }
        }
    }
    let forward_failed = details.iter().any(|d| d.contains("port-forward"));
    match worst_status {
        Status::Pass if unsupported => CheckResult::new(
            id,
            Status::Pass,
            "License Check is not supported on Istio versions <1.27",
        )
        .details(details),
        Status::Pass => CheckResult::new(id, Status::Pass, "license is valid for multicluster").details(details),
        _ => CheckResult::new(
            id,
            Status::Fail,
            if forward_failed {
                "could not ask istiod for its license"
            } else {
                "found invalid license for multicluster"
            },
        )
        .details(details)
        .fix(if forward_failed {
            format!("Meshdeck needs create on pods/portforward in {ns} to read istiod's license.")
        } else {
            "Give the operator a valid Solo license that includes multicluster (SOLO_ISTIO_LICENSE_KEY or its secret \
             reference), then restart istiod. GlooCore and IstioSupportBasic licenses do not allow multicluster."
                .to_string()
        }),
    }
}
