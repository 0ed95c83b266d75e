//! Linking clusters (peer gateways built from each peer's live state, imported, removed) and the
//! verification that ends a setup.

use super::*;

/// The peer gateway `from` needs to reach `to`, built from `to`'s live state (§2.1). Its NodePort preference
/// follows the variant `to`'s east-west Service declares; `data_plane` (the variant the setup chose for `to`)
/// applies only when the Service declares none, since a peer gateway asking for the wrong variant never gets
/// its data plane programmed.
pub async fn peer_gateway_for(to: &Target, data_plane: DataPlane) -> Result<Value, StepError> {
    let (peer, live) = PeerInfo::read_with_data_plane(&to.client)
        .await
        .map_err(|e| {
            let advice = match &e {
                objects::PeerError::Kube { source, .. } => advice_for(source),
                _ => "Finish the east-west gateway step in this cluster first",
            };
            StepError::new(&to.name, "Link (reading the peer)", e.to_string(), advice)
        })?;
    Ok(objects::peer_gateway(&peer, live.unwrap_or(data_plane)))
}

/// Links one way: `from` gets a peer gateway to reach `to`.
#[tracing::instrument(skip_all, fields(from = %from.name, to = %to.name))]
pub async fn link(from: &Target, to: &Target, data_plane: DataPlane) -> StepResult {
    let gw = peer_gateway_for(to, data_plane).await?;
    import_peer(from, &gw).await
}

/// The peer gateways that reach `targets` (built from their live state), as one multi-document YAML for the
/// owner of a cluster Meshdeck has no credentials for: they apply it in their cluster (`kubectl apply -f`).
pub async fn export_peers(targets: &[Target], data_plane: DataPlane) -> Result<String, StepError> {
    let mut out = String::new();
    for t in targets {
        let gw = peer_gateway_for(t, data_plane).await?;
        out.push_str(&format!(
            "# reaches cluster {} — apply in the cluster that should reach it\n",
            t.name
        ));
        out.push_str(&serde_yaml::to_string(&gw).unwrap_or_default());
        out.push_str("---\n");
    }
    Ok(out)
}

/// Checks every peer gateway of a (multi-document) YAML someone sent before any is applied.
pub fn validate_peer_gateways(text: &str) -> Result<Vec<Value>, String> {
    let docs: Vec<Value> =
        crate::yaml::documents(text, &crate::yaml::Limits::INPUT).map_err(|e| e.to_string())?;
    let mut out = vec![];
    for (i, v) in docs.into_iter().enumerate() {
        if v.is_null() {
            continue;
        }
        let gw = validate_peer_value(v).map_err(|e| format!("document {}: {e}", i + 1))?;
        out.push(gw);
    }
    if out.is_empty() {
        return Err("no peer gateway in it: paste the YAML the cluster's owner sent (one or more istio-remote Gateways)".into());
    }
    Ok(out)
}

/// Checks a peer gateway someone sent (the export/import path) before it is applied.
pub fn validate_peer_gateway(text: &str) -> Result<Value, String> {
    let v: Value =
        crate::yaml::from_str(text, &crate::yaml::Limits::INPUT).map_err(|e| e.to_string())?;
    validate_peer_value(v)
}

fn validate_peer_value(v: Value) -> Result<Value, String> {
    if v["apiVersion"] != "gateway.networking.k8s.io/v1" || v["kind"] != "Gateway" {
        return Err("expected a gateway.networking.k8s.io/v1 Gateway".into());
    }
    if v["spec"]["gatewayClassName"] != "istio-remote" {
        return Err("the gateway's class must be istio-remote".into());
    }
    let name = v["metadata"]["name"].as_str().unwrap_or("");
    let cluster = v["metadata"]["labels"]["topology.istio.io/cluster"]
        .as_str()
        .unwrap_or("");
    if cluster.is_empty() || name != format!("istio-remote-peer-{cluster}") {
        return Err("the gateway must be named istio-remote-peer-<cluster> and carry the topology.istio.io/cluster label".into());
    }
    crate::ids::check_dns1123_label("cluster", cluster).map_err(|e| e.to_string())?;
    if v["metadata"]["labels"]["topology.istio.io/network"]
        .as_str()
        .unwrap_or("")
        .is_empty()
    {
        return Err("the topology.istio.io/network label is missing".into());
    }
    if v["metadata"]["annotations"]["gateway.istio.io/trust-domain"]
        .as_str()
        .unwrap_or("")
        .is_empty()
    {
        return Err("the gateway.istio.io/trust-domain annotation is missing".into());
    }
    let addresses = v["spec"]["addresses"]
        .as_array()
        .cloned()
        .unwrap_or_default();
    if addresses.is_empty()
        || addresses
            .iter()
            .any(|a| a["value"].as_str().unwrap_or("").is_empty())
    {
        return Err(
            "spec.addresses is empty: the peer's east-west gateway had no address yet".into(),
        );
    }
    let listeners: Vec<&str> = v["spec"]["listeners"]
        .as_array()
        .map(|l| l.iter().filter_map(|x| x["name"].as_str()).collect())
        .unwrap_or_default();
    if !listeners.contains(&"cross-network") || !listeners.contains(&"xds-tls") {
        return Err("the listeners cross-network and xds-tls are required".into());
    }
    if v["metadata"]["namespace"]
        .as_str()
        .is_some_and(|n| n != EASTWEST_NAMESPACE)
    {
        return Err(format!(
            "the gateway belongs in namespace {EASTWEST_NAMESPACE}"
        ));
    }
    let mut v = v;
    v["metadata"]["namespace"] = json!(EASTWEST_NAMESPACE);
    Ok(v)
}

/// The peer a (validated) peer gateway points at; refused when it is `from` itself.
fn peer_of(from: &Target, gw: &Value) -> Result<String, StepError> {
    let peer = gw["metadata"]["labels"]["topology.istio.io/cluster"]
        .as_str()
        .unwrap_or("?")
        .to_string();
    if peer == from.name.as_str() {
        return Err(StepError::new(
            &from.name,
            "Link",
            "the peer gateway points at this cluster itself",
            "Import it into the other cluster",
        ));
    }
    Ok(peer)
}

/// The resourceVersions of the gateways `from` holds in istio-eastwest, by name: one list before linking
/// many peers, so that each link is one write ([`link_peer`]).
pub async fn gateway_versions(from: &Target) -> Result<BTreeMap<String, String>, StepError> {
    let api = Api::<DynamicObject>::namespaced_with(
        from.client.clone(),
        EASTWEST_NAMESPACE,
        &gateway_resource(),
    );
    let lp = ListParams::default();
    let list = crate::apply::retrying(|| api.list_metadata(&lp))
        .await
        .map_err(|e| {
            StepError::kube(
                &from.name,
                "Link",
                &format!("listing the gateways in {EASTWEST_NAMESPACE}"),
                &e,
            )
        })?;
    Ok(list
        .items
        .into_iter()
        .filter_map(|g| Some((g.metadata.name?, g.metadata.resource_version?)))
        .collect())
}

/// Applies a (validated) peer gateway in `from` as one write (with its namespace only when that is gone),
/// inside a job whose clusters have the Gateway API served: `before` is the gateway's resourceVersion listed before
/// ([`gateway_versions`]; None when it did not exist), to tell whether the write changed it.
pub async fn link_peer(from: &Target, gw: &Value, before: Option<&str>) -> StepResult {
    let peer = peer_of(from, gw)?;
    let after = match crate::apply::apply_known(&from.client, &gateway_resource(), gw).await {
        Ok(after) => after,
        // istio-eastwest is gone (deleted by hand from a member): made again with the gateway.
        Err(crate::apply::Error::Kube {
            source: kube::Error::Api(s),
            ..
        }) if s.code == 404 => return import_peer(from, gw).await,
        Err(e) => return Err(StepError::apply(&from.name, &format!("Link to {peer}"), &e)),
    };
    Ok(Outcome {
        changed: before != after.resource_version().as_deref(),
        summary: format!("peer gateway istio-remote-peer-{peer} in place"),
    })
}

/// Applies a (validated) peer gateway in `from`, with its namespace (a link made on its own).
pub async fn import_peer(from: &Target, gw: &Value) -> StepResult {
    let peer = peer_of(from, gw)?;
    let changed = apply_all(
        from,
        Step::EastWest,
        &[namespace(EASTWEST_NAMESPACE), gw.clone()],
    )
    .await
    .map_err(|mut e| {
        e.step = format!("Link to {peer}");
        e
    })?;
    Ok(Outcome {
        changed,
        summary: format!("peer gateway istio-remote-peer-{peer} in place"),
    })
}

/// Removes the peer gateway `from` holds for `to`, only if Meshdeck created it.
pub async fn unlink(from: &Target, to: &ClusterName) -> StepResult {
    let api = Api::<DynamicObject>::namespaced_with(
        from.client.clone(),
        EASTWEST_NAMESPACE,
        &gateway_resource(),
    );
    let name = format!("istio-remote-peer-{to}");
    let step = format!("Unlink from {to}");
    let Some(gw) = api
        .get_opt(&name)
        .await
        .map_err(|e| StepError::kube(&from.name, &step, "reading the peer gateway", &e))?
    else {
        return Ok(Outcome {
            changed: false,
            summary: format!("no {name}"),
        });
    };
    let ours = gw
        .managed_fields()
        .iter()
        .any(|m| m.manager.as_deref() == Some(crate::FIELD_MANAGER));
    if !ours {
        return Err(StepError::new(
            &from.name,
            &step,
            format!("{name} was not created by Meshdeck"),
            "Meshdeck only removes what it linked; remove it by hand if you mean to",
        ));
    }
    api.delete(&name, &DeleteParams::default())
        .await
        .map_err(|e| StepError::kube(&from.name, &step, "deleting the peer gateway", &e))?;
    Ok(Outcome {
        changed: true,
        summary: format!("removed {name}"),
    })
}

/// Automatic peering: every cluster holds a peer gateway for every other one (distributed by the
/// management plane). Returns the missing (holder, peer) pairs.
pub async fn missing_automatic_peers(
    targets: &[Target],
) -> Result<Vec<(ClusterName, ClusterName)>, StepError> {
    let mut missing = vec![];
    for t in targets {
        let api = Api::<DynamicObject>::namespaced_with(
            t.client.clone(),
            EASTWEST_NAMESPACE,
            &gateway_resource(),
        );
        let names: Vec<String> = api
            .list(&Default::default())
            .await
            .map_err(|e| StepError::kube(&t.name, "Automatic peering", "listing gateways", &e))?
            .items
            .iter()
            .filter(|g| g.data["spec"]["gatewayClassName"] == "istio-remote")
            .map(|g| g.name_any())
            .collect();
        for other in targets.iter().filter(|o| o.name != t.name) {
            if !names.contains(&format!("istio-remote-peer-{}", other.name)) {
                missing.push((t.name.clone(), other.name.clone()));
            }
        }
    }
    Ok(missing)
}

/// The clusters of a setup that should hold peer gateways: the `from` side of manual pairs; every cluster
/// with automatic peering when there are several.
pub fn holders(
    clusters: &[ClusterName],
    peering: &Peering,
) -> std::collections::BTreeSet<ClusterName> {
    match peering {
        Peering::Manual { pairs } => pairs.iter().map(|(from, _)| from.clone()).collect(),
        Peering::Automatic { .. } if clusters.len() > 1 => clusters.iter().cloned().collect(),
        Peering::Automatic { .. } => Default::default(),
    }
}

/// Runs the checks until every cluster passes or `timeout` passes; `progress` gets a line per round that
/// changed. Returns the last results. Clusters not in `holders` are not meant to hold peer gateways (see
/// [`holders`]): holding none passes for them.
pub async fn verify(
    targets: &[Target],
    holders: &std::collections::BTreeSet<ClusterName>,
    timeout: Duration,
    progress: Progress<'_>,
) -> Vec<ClusterChecks> {
    let start = Instant::now();
    // Each round reads every cluster: 250 ms at first (the peer gateways just written are usually connected
    // within it), then up to a second.
    let mut pauses = crate::apply::Pauses::new(Duration::from_millis(250), Duration::from_secs(1));
    let mut last = String::new();
    loop {
        let mut results = checks::check_all(
            targets
                .iter()
                .map(|t| (t.name.clone(), t.client.clone()))
                .collect(),
        )
        .await;
        for c in results.iter_mut().filter(|c| !holders.contains(&c.cluster)) {
            c.expect_no_peers();
        }
        let summary: Vec<String> = results
            .iter()
            .map(|c| format!("{}: {:?}", c.cluster, c.worst()))
            .collect();
        let summary = summary.join(", ");
        if summary != last {
            progress(summary.clone());
            last = summary;
        }
        if results.iter().all(|c| c.worst() == Status::Pass) || start.elapsed() > timeout {
            return results;
        }
        pauses.sleep().await;
    }
}
