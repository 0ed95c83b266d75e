//! The operator's reconcile: its CRDs once its pod is ready, then each ServiceMeshController into the control
//! plane (istiod, ztunnel, CNI, the mesh ConfigMap, the network label) with the status conditions of §4.2.

use super::*;

pub async fn reconcile(world: &World, cluster: &Cluster) -> apply::Result<()> {
    let Some(op) = operator_deployment(cluster) else {
        return Ok(());
    };
    // The chart is installed: the operator brings its CRD (issue: "installs the CRD when the chart is installed").
    let live_crd = find_crd(cluster, SMC_CRD);
    apply::apply(cluster, OPERATOR, &crd_ar(), smc_crd(), live_crd).await?;
    if ready_replicas(&op) < 1 {
        return Ok(());
    }
    let op_env = container_env(&op, "manager");
    let mut watched: HashSet<String> = DEFAULT_WATCHED.iter().map(|s| s.to_string()).collect();
    watched.insert(op.namespace().unwrap_or_default());
    for ns in op_env
        .get("WATCH_NAMESPACES")
        .into_iter()
        .flat_map(|v| v.split(','))
    {
        if !ns.trim().is_empty() {
            watched.insert(ns.trim().to_string());
        }
    }
    for smc in cluster.smcs.state() {
        let ns = smc.namespace().unwrap_or_default();
        if !watched.contains(&ns) {
            continue;
        }
        if smc.metadata.deletion_timestamp.is_some() {
            continue;
        }
        reconcile_smc(world, cluster, &smc, &op_env, &watched).await?;
    }
    Ok(())
}

fn find_crd(cluster: &Cluster, name: &str) -> Option<Value> {
    cluster
        .crds
        .state()
        .into_iter()
        .find(|c| c.metadata.name.as_deref() == Some(name))
        .and_then(|c| to_value(&*c))
}

struct Status {
    pub(super) phase: &'static str,
    pub(super) conditions: Vec<Value>,
}

async fn write_status(cluster: &Cluster, smc: &DynamicObject, st: Status) -> apply::Result<()> {
    let ns = smc.namespace().unwrap_or_default();
    let status = json!({
        "phase": st.phase,
        "observedGeneration": smc.metadata.generation,
        "conditions": st.conditions,
    });
    let live = smc.data.get("status");
    apply::apply_status(
        cluster,
        OPERATOR,
        &smc_resource(),
        Some(&ns),
        &smc.name_any(),
        status,
        live,
    )
    .await?;
    Ok(())
}

async fn reconcile_smc(
    world: &World,
    cluster: &Cluster,
    smc: &DynamicObject,
    op_env: &BTreeMap<String, String>,
    watched: &HashSet<String>,
) -> apply::Result<()> {
    let live_conds = smc.data["status"].get("conditions");
    let generation = smc.metadata.generation;
    let cond = |t: &str, s: &str, r: &str, m: &str| condition(live_conds, t, s, r, m, generation);
    let key = format!(
        "{}/{}/{}",
        cluster.name,
        smc.metadata.uid.clone().unwrap_or_default(),
        generation.unwrap_or(0)
    );
    let faults = Faults::read(cluster);
    let failed = |msg: &str, cond_type: &str, reason: &str| Status {
        phase: "FAILED",
        conditions: vec![
            cond(cond_type, "False", reason, msg),
            cond("Ready", "False", "SystemNotReady", msg),
        ],
    };

    // §4.2: reasons for failures are not public; these name what is wrong so a user can act.
    if let Some(reason) = &faults.operator_fail {
        tracing::warn!(cluster = %cluster.name, smc = %smc.name_any(), %reason, "operator fails (fault knob)");
        return write_status(
            cluster,
            smc,
            failed(reason, "Initialized", "ManifestsInitializationFailed"),
        )
        .await;
    }
    let settings = match MeshSettings::from_spec(&smc.data["spec"]) {
        Ok(s) => s,
        Err(msg) => {
            return write_status(cluster, smc, failed(&msg, "Initialized", "InvalidSpec")).await;
        }
    };
    if !watched.contains(&settings.install_ns) {
        let msg = format!(
            "installNamespace {} is not watched by the operator; set manager.env.WATCH_NAMESPACES={}",
            settings.install_ns, settings.install_ns
        );
        return write_status(
            cluster,
            smc,
            failed(&msg, "Initialized", "NamespaceNotWatched"),
        )
        .await;
    }
    let ext = match extensions(cluster, &smc.namespace().unwrap_or_default()) {
        Ok(e) => e,
        Err(msg) => {
            return write_status(
                cluster,
                smc,
                failed(&msg, "Initialized", "InvalidExtensionsConfig"),
            )
            .await;
        }
    };
    // §4.1 onConflict: another Istio control plane in the install namespace.
    let conflicts: Vec<String> = cluster
        .deployments
        .state()
        .iter()
        .filter(|d| d.namespace().as_deref() == Some(settings.install_ns.as_str()))
        .filter(|d| d.labels().get("app").map(String::as_str) == Some("istiod"))
        .filter(|d| {
            d.labels()
                .get("app.kubernetes.io/managed-by")
                .map(String::as_str)
                != Some("gloo-operator")
        })
        .map(|d| format!("Deployment {}/{}", settings.install_ns, d.name_any()))
        .collect();
    if !conflicts.is_empty() && !settings.force {
        let msg = format!(
            "existing Istio installation found ({}) that gloo-operator does not manage; remove it or set onConflict: Force",
            conflicts.join(", ")
        );
        return write_status(
            cluster,
            smc,
            failed(&msg, "ControlPlaneDeployed", "ConflictDetected"),
        )
        .await;
    }

    // Step 1: manifests initialised.
    if !world.held_for(&format!("{key}/init"), true) {
        return write_status(
            cluster,
            smc,
            Status {
                phase: "INSTALLING",
                conditions: vec![
                    cond(
                        "Initialized",
                        "False",
                        "ManifestsInitializing",
                        "Initializing manifests",
                    ),
                    cond(
                        "Ready",
                        "False",
                        "SystemNotReady",
                        "Waiting for Initialized",
                    ),
                ],
            },
        )
        .await;
    }
    let mut conditions = vec![cond(
        "Initialized",
        "True",
        "ManifestsInitialized",
        "Manifests initialized",
    )];

    // Step 2: CRDs.
    for crd in istio_crds() {
        let name = crd["metadata"]["name"]
            .as_str()
            .unwrap_or_default()
            .to_string();
        apply::apply(cluster, OPERATOR, &crd_ar(), crd, find_crd(cluster, &name)).await?;
    }
    let crds_ok = istio_crds()
        .iter()
        .all(|c| cluster.crd_established(c["metadata"]["name"].as_str().unwrap_or_default()));
    if !crds_ok || !world.held_for(&format!("{key}/crds"), crds_ok) {
        conditions.push(cond(
            "CRDInstalled",
            "False",
            "CRDInstalling",
            "Installing CRDs",
        ));
        conditions.push(cond(
            "Ready",
            "False",
            "SystemNotReady",
            "Waiting for CRDInstalled",
        ));
        return write_status(
            cluster,
            smc,
            Status {
                phase: "INSTALLING",
                conditions,
            },
        )
        .await;
    }
    conditions.push(cond(
        "CRDInstalled",
        "True",
        "CRDInstalled",
        "CRDs installed",
    ));

    // Step 3: control plane, CNI and ztunnel.
    deploy_control_plane(cluster, smc, &settings, &ext, op_env).await?;
    let ns = &settings.install_ns;
    let istiod = cluster.deployment(ns, "istiod-gloo");
    let cp_ready = istiod
        .as_ref()
        .is_some_and(|d| ready_replicas(d) >= settings.replicas);
    let ds_ready = |name: &str| {
        find::<DaemonSet>(&cluster.daemonsets, ns, name).is_some_and(|d| {
            d.status.as_ref().is_some_and(|s| {
                s.desired_number_scheduled > 0 && s.number_ready >= s.desired_number_scheduled
            })
        })
    };
    let cni_ready = ds_ready("istio-cni-node");
    let ztunnel_ready = ds_ready("ztunnel");
    let cp_ok = world.held_for(&format!("{key}/cp"), cp_ready);
    let cni_ok = world.held_for(&format!("{key}/cni"), cni_ready);
    conditions.push(if cp_ok {
        cond(
            "ControlPlaneDeployed",
            "True",
            "DeploymentSucceeded",
            "Deployment succeeded",
        )
    } else {
        cond(
            "ControlPlaneDeployed",
            "False",
            "DeploymentInProgress",
            &format!("Waiting for Deployment {ns}/istiod-gloo to be ready"),
        )
    });
    conditions.push(if cni_ok {
        cond(
            "CNIDeployed",
            "True",
            "DeploymentSucceeded",
            "Deployment succeeded",
        )
    } else {
        cond(
            "CNIDeployed",
            "False",
            "DeploymentInProgress",
            &format!("Waiting for DaemonSet {ns}/istio-cni-node to be ready"),
        )
    });
    conditions.push(if cp_ok {
        cond(
            "WebhookDeployed",
            "True",
            "DeploymentSucceeded",
            "Deployment succeeded",
        )
    } else {
        cond(
            "WebhookDeployed",
            "False",
            "DeploymentInProgress",
            "Waiting for the control plane",
        )
    });
    let all = cp_ok && cni_ok && ztunnel_ready;
    let ready = world.held_for(&format!("{key}/ready"), all);
    let phase = if ready {
        conditions.push(cond(
            "Ready",
            "True",
            "SystemReady",
            "All conditions are met",
        ));
        "SUCCEEDED"
    } else {
        let mut waiting = Vec::new();
        if !cp_ok {
            waiting.push("ControlPlaneDeployed")
        }
        if !cni_ok {
            waiting.push("CNIDeployed")
        }
        if !ztunnel_ready {
            waiting.push("ztunnel")
        }
        let msg = if waiting.is_empty() {
            "Finishing".to_string()
        } else {
            format!("Waiting for {}", waiting.join(", "))
        };
        conditions.push(cond("Ready", "False", "SystemNotReady", &msg));
        "INSTALLING"
    };
    write_status(cluster, smc, Status { phase, conditions }).await
}

fn owner_label() -> Value {
    json!({"app.kubernetes.io/managed-by": "gloo-operator"})
}

async fn deploy_control_plane(
    cluster: &Cluster,
    smc: &DynamicObject,
    s: &MeshSettings,
    ext: &Extensions,
    op_env: &BTreeMap<String, String>,
) -> apply::Result<()> {
    let ns = s.install_ns.as_str();
    let ns_ar = ApiResource::erase::<Namespace>(&());
    let cm_ar = ApiResource::erase::<ConfigMap>(&());
    let dep_ar = ApiResource::erase::<Deployment>(&());
    let ds_ar = ApiResource::erase::<DaemonSet>(&());
    let svc_ar = ApiResource::erase::<Service>(&());

    // Install namespace, labelled with the network (§4.2 [INFERRED], needed by expose §1.1).
    let mut ns_labels = json!({});
    if !s.network.is_empty() {
        ns_labels["topology.istio.io/network"] = json!(s.network);
    }
    let live = cluster.namespace(ns).and_then(|n| to_value(&*n));
    apply::apply(
        cluster,
        OPERATOR,
        &ns_ar,
        json!({"apiVersion": "v1", "kind": "Namespace",
        "metadata": {"name": ns, "labels": ns_labels}}),
        live,
    )
    .await?;

    // Mesh config (§2.1: `istio-gloo`, key `mesh`, read for the trust domain).
    let mut mesh = json!({
        "trustDomain": s.trust_domain,
        "rootNamespace": ns,
        "defaultConfig": {"discoveryAddress": format!("istiod-gloo.{ns}.svc:15012"),
                          "proxyMetadata": {"ISTIO_META_DNS_CAPTURE": "true"}},
        "enablePrometheusMerge": true,
    });
    if let Some(sel) = &ext.discovery_selectors {
        mesh["discoverySelectors"] = sel.clone();
    }
    let mesh_yaml = serde_yaml::to_string(&mesh).unwrap_or_default();
    let live = cluster
        .configmap(ns, "istio-gloo")
        .and_then(|c| to_value(&*c));
    apply::apply(cluster, OPERATOR, &cm_ar, json!({"apiVersion": "v1", "kind": "ConfigMap",
        "metadata": {"name": "istio-gloo", "namespace": ns, "labels": {"istio.io/rev": "gloo", "app.kubernetes.io/managed-by": "gloo-operator"}},
        "data": {"mesh": mesh_yaml, "meshNetworks": "networks: {}"}}), live).await?;

    // istiod env (§2.4, §3 check 1, §5 license mapping, §4.3 values.istiod).
    let mut env: BTreeMap<String, String> = BTreeMap::new();
    env.insert(
        "CLUSTER_ID".into(),
        if s.cluster.is_empty() {
            "Kubernetes".into()
        } else {
            s.cluster.clone()
        },
    );
    env.insert("REVISION".into(), "gloo".into());
    env.insert("ENABLE_PEERING_DISCOVERY".into(), "true".into());
    env.insert("PILOT_ENABLE_AMBIENT".into(), s.ambient.to_string());
    env.insert("TRUST_DOMAIN".into(), s.trust_domain.clone());
    if ext.peering_mode {
        env.insert("DISABLE_LEGACY_MULTICLUSTER".into(), "true".into());
    }
    if let Some(k) = op_env
        .get("SOLO_ISTIO_LICENSE_KEY")
        .filter(|k| !k.is_empty())
    {
        env.insert("SOLO_LICENSE_KEY".into(), k.clone());
    }
    if let Some(r) = op_env
        .get("SOLO_ISTIO_LICENSE_KEY_SECRET_REF")
        .filter(|k| !k.is_empty())
    {
        env.insert("SOLO_LICENSE_SECRET".into(), r.clone());
    }
    for (k, v) in &ext.istiod_env {
        env.insert(k.clone(), v.clone());
    }
    let env: Vec<Value> = env
        .into_iter()
        .map(|(k, v)| json!({"name": k, "value": v}))
        .collect();
    let mut pod_annotations = json!({"prometheus.io/port": "15014", "prometheus.io/scrape": "true",
                                     "sidecar.istio.io/inject": "false"});
    for (k, v) in &ext.pod_annotations {
        pod_annotations[k] = json!(v);
    }
    let tag = format!("{}-solo", s.version);
    let pod_labels = json!({"app": "istiod", "istio.io/rev": "gloo", "istio": "pilot"});
    let owner = json!([{"apiVersion": "operator.gloo.solo.io/v1", "kind": "ServiceMeshController",
        "name": smc.name_any(), "uid": smc.metadata.uid.clone().unwrap_or_default()}]);
    // Cross-namespace owner references are not allowed; the operator owns same-namespace objects only.
    let owned = smc.namespace().as_deref() == Some(ns);
    let meta = |name: &str, labels: Value| {
        let mut m = json!({"name": name, "namespace": ns, "labels": labels});
        for (k, v) in owner_label().as_object().into_iter().flatten() {
            m["labels"][k] = v.clone();
        }
        if owned {
            m["ownerReferences"] = owner.clone();
        }
        m
    };
    let live = cluster
        .deployment(ns, "istiod-gloo")
        .and_then(|d| to_value(&*d));
    apply::apply(cluster, OPERATOR, &dep_ar, json!({
        "apiVersion": "apps/v1", "kind": "Deployment",
        "metadata": meta("istiod-gloo", pod_labels.clone()),
        "spec": {
            "replicas": s.replicas,
            "selector": {"matchLabels": {"app": "istiod", "istio.io/rev": "gloo"}},
            "template": {
                "metadata": {"labels": pod_labels, "annotations": pod_annotations},
                "spec": {"containers": [{
                    "name": "discovery",
                    "image": format!("{}/pilot:{tag}", s.image_repo),
                    "args": ["discovery", "--monitoringAddr=:15014", "--log_output_level=default:info"],
                    "ports": [{"name": "http-debug", "containerPort": 8080, "protocol": "TCP"},
                              {"name": "grpc-xds", "containerPort": 15010, "protocol": "TCP"},
                              {"name": "tls-xds", "containerPort": 15012, "protocol": "TCP"},
                              {"name": "https-webhooks", "containerPort": 15017, "protocol": "TCP"},
                              {"name": "http-monitoring", "containerPort": 15014, "protocol": "TCP"}],
                    "env": env,
                }]}
            }
        }
    }), live).await?;
    let live = cluster
        .service(ns, "istiod-gloo")
        .and_then(|d| to_value(&*d));
    apply::apply(
        cluster,
        OPERATOR,
        &svc_ar,
        json!({
            "apiVersion": "v1", "kind": "Service",
            "metadata": meta("istiod-gloo", json!({"app": "istiod", "istio.io/rev": "gloo"})),
            "spec": {"selector": {"app": "istiod", "istio.io/rev": "gloo"}, "ports": [
                {"name": "grpc-xds", "port": 15010, "protocol": "TCP"},
                {"name": "https-dns", "port": 15012, "protocol": "TCP"},
                {"name": "https-webhook", "port": 443, "targetPort": 15017, "protocol": "TCP"},
                {"name": "http-monitoring", "port": 15014, "protocol": "TCP"}]}
        }),
        live,
    )
    .await?;

    for (name, app, image) in [
        ("ztunnel", "ztunnel", "ztunnel"),
        ("istio-cni-node", "istio-cni-node", "install-cni"),
    ] {
        let live = find::<DaemonSet>(&cluster.daemonsets, ns, name).and_then(|d| to_value(&*d));
        apply::apply(cluster, OPERATOR, &ds_ar, json!({
            "apiVersion": "apps/v1", "kind": "DaemonSet",
            "metadata": meta(name, json!({"app": app, "k8s-app": app})),
            "spec": {
                "selector": {"matchLabels": {"k8s-app": app}},
                "template": {
                    "metadata": {"labels": {"app": app, "k8s-app": app, "sidecar.istio.io/inject": "false"}},
                    "spec": {"containers": [{"name": if name == "ztunnel" { "istio-proxy" } else { "install-cni" },
                        "image": format!("{}/{image}:{tag}", s.image_repo)}]}
                }
            }
        }), live).await?;
    }
    Ok(())
}
