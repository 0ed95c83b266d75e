use super::cluster::publish;
use super::*;
use crate::ids::graph::{ConditionView, EastWestKind};

fn name(n: &str) -> ClusterName {
    ClusterName::new(n).expect("name")
}

fn labels(kv: &[(&str, &str)]) -> Labels {
    kv.iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect()
}

fn store<V>(entries: Vec<(&str, V)>) -> Store<V> {
    entries
        .into_iter()
        .map(|(k, v)| (k.to_string(), v))
        .collect()
}

fn eastwest(address: &str) -> EastWestState {
    EastWestState {
        kind: EastWestKind::LoadBalancer,
        addresses: vec![address.into()],
        address_override: None,
        programmed: None,
        cluster_label: Some("c1".into()),
    }
}

fn peer(n: &str) -> PeerGatewayState {
    PeerGatewayState {
        name: n.into(),
        ..Default::default()
    }
}

fn api_error(code: u16) -> kube::Error {
    kube::Error::Api(Box::new(
        kube::core::Status::failure(
            "the server could not find the requested resource",
            "NotFound",
        )
        .with_code(code),
    ))
}

#[test]
fn the_control_plane_watches_follow_the_install_namespace_and_hold_the_snapshot_until_they_listed()
{
    let ids = IN_ISTIO_NAMESPACE.map(|id| in_istio(id, ISTIO_NAMESPACE));
    let mut st = State::new(ids.clone());
    for id in &ids {
        st.pending.remove(id);
    }
    st.published = true;
    st.stores.cacerts = store(vec![("istio-system/cacerts", Some("abcd".to_string()))]);
    assert_eq!(st.reconcile_istio(), None, "no controller: istio-system");
    assert!(!st.moving());
    st.stores.smc = store(vec![(
        "gloo-mesh/managed-istio",
        SmcState {
            install_namespace: Some("istio-custom".into()),
            ..Default::default()
        },
    )]);
    assert_eq!(st.reconcile_istio().as_deref(), Some("istio-custom"));
    assert_eq!(st.reconcile_istio(), None, "once");
    assert!(
        st.stores.cacerts.is_empty(),
        "what istio-system held is forgotten"
    );
    assert!(
        !st.is_live("cacerts @istio-system"),
        "the old watches' late events"
    );
    assert!(st.is_live("cacerts @istio-custom"));
    assert!(st.moving(), "the snapshot waits for the new watches");
    for id in IN_ISTIO_NAMESPACE {
        st.pending.remove(&in_istio(id, "istio-custom"));
    }
    assert!(!st.moving());
    st.stores.smc.clear();
    assert_eq!(
        st.reconcile_istio().as_deref(),
        Some(ISTIO_NAMESPACE),
        "the controller gone: back to istio-system"
    );
}

#[test]
fn the_snapshot_is_made_of_what_the_watches_keep() {
    let mut st = State::new([]);
    let s = &mut st.stores;
    s.gateways = store(vec![
        (
            "istio-eastwest/another-eastwest",
            GatewayEntry::EastWest(eastwest("10.0.0.9"), None),
        ),
        (
            "istio-eastwest/istio-eastwest",
            GatewayEntry::EastWest(eastwest("10.0.0.1"), Some("eu-west-1".into())),
        ),
        (
            "istio-eastwest/istio-remote-peer-c3",
            GatewayEntry::Peer(peer("istio-remote-peer-c3")),
        ),
        (
            "istio-eastwest/istio-remote-peer-c2",
            GatewayEntry::Peer(peer("istio-remote-peer-c2")),
        ),
    ]);
    s.istiod = store(vec![
        (
            "istio-system/istiod-gloo",
            IstiodState {
                pods: WorkloadState {
                    desired: 2,
                    ready: 1,
                },
                revision: Some("gloo".into()),
            },
        ),
        (
            "istio-system/istiod-next",
            IstiodState {
                pods: WorkloadState {
                    desired: 1,
                    ready: 1,
                },
                revision: Some("next".into()),
            },
        ),
    ]);
    s.daemonsets = store(vec![
        (
            "istio-system/ztunnel",
            WorkloadState {
                desired: 3,
                ready: 3,
            },
        ),
        (
            "istio-system/other",
            WorkloadState {
                desired: 1,
                ready: 0,
            },
        ),
    ]);
    s.cacerts = store(vec![("istio-system/cacerts", Some("abcd".to_string()))]);
    s.mesh_config.insert(
        "istio",
        store(vec![("istio-system/istio", "old.local".to_string())]),
    );
    s.mesh_config.insert(
        "istio-gloo",
        store(vec![("istio-system/istio-gloo", "c1".to_string())]),
    );
    let snap = st.snapshot(&name("c1"));
    assert_eq!(
        snap.eastwest,
        Some(eastwest("10.0.0.1")),
        "the one named istio-eastwest"
    );
    assert_eq!(snap.region.as_deref(), Some("eu-west-1"));
    let peers: Vec<&str> = snap.peers.iter().map(|p| p.name.as_str()).collect();
    assert_eq!(peers, ["istio-remote-peer-c2", "istio-remote-peer-c3"]);
    assert_eq!(
        snap.istiod,
        Some(IstiodState {
            pods: WorkloadState {
                desired: 3,
                ready: 2
            },
            revision: Some("gloo".into())
        })
    );
    assert_eq!(
        snap.ztunnel,
        Some(WorkloadState {
            desired: 3,
            ready: 3
        })
    );
    assert_eq!(snap.cni, None);
    assert_eq!(snap.root_fingerprint.as_deref(), Some("abcd"));
    assert_eq!(snap.trust_domain.as_deref(), Some("c1"), "istio-gloo first");
    assert_eq!(
        (snap.smc, snap.operator, snap.unreachable),
        (None, None, None)
    );

    // A relist of `istio` (gone now) leaves what the `istio-gloo` watch keeps.
    Change::Replace(Store::new()).apply_to(st.stores.mesh_config.entry("istio").or_default());
    assert_eq!(st.snapshot(&name("c1")).trust_domain.as_deref(), Some("c1"));
}

#[test]
fn namespaces_join_their_services_and_meshed_ones_get_a_service_watch() {
    let mut st = State::new([]);
    let s = &mut st.stores;
    s.namespaces.insert(
        ISTIO_NAMESPACE_KEY,
        store(vec![("istio-system", labels(&[(NETWORK_LABEL, "net1")]))]),
    );
    let shop = labels(&[
        ("istio.io/dataplane-mode", "ambient"),
        (SERVICE_SCOPE_LABEL, "global"),
    ]);
    s.namespaces.insert(
        NAMESPACE_SELECTORS[0].0,
        store(vec![("shop", shop.clone())]),
    );
    s.namespaces.insert(
        SERVICE_SCOPE_LABEL,
        store(vec![
            ("shop", shop.clone()),
            ("public", labels(&[(SERVICE_SCOPE_LABEL, "global-only")])),
            ("local", labels(&[(SERVICE_SCOPE_LABEL, "cluster")])),
        ]),
    );
    assert_eq!(
        st.reconcile_services(),
        [
            ServiceWatch::Start("public".into()),
            ServiceWatch::Start("shop".into())
        ]
    );
    assert!(st.pending.contains("services in shop"));
    assert!(st.reconcile_services().is_empty(), "nothing changed");
    let exported = labels(&[(SERVICE_SCOPE_LABEL, "global")]);
    st.stores.services.insert(
        "exported services".into(),
        store(vec![
            ("shop/cart", exported.clone()),
            ("plain/api", exported.clone()),
        ]),
    );
    st.stores.services.insert(
        "services in shop".into(),
        store(vec![
            ("shop/cart", exported.clone()),
            ("shop/admin", Labels::new()),
        ]),
    );
    let snap = st.snapshot(&name("c1"));
    assert_eq!(snap.network.as_deref(), Some("net1"));
    let names: Vec<&str> = snap.namespaces.iter().map(|n| n.name.as_str()).collect();
    assert_eq!(names, ["istio-system", "local", "plain", "public", "shop"]);
    let shop_ns = &snap.namespaces[4];
    assert_eq!(shop_ns.labels, shop);
    let svcs: Vec<&str> = shop_ns.services.iter().map(|s| s.name.as_str()).collect();
    assert_eq!(svcs, ["admin", "cart"]);
    assert!(
        snap.namespaces[2].labels.is_empty(),
        "known only through its Service"
    );
    assert!(snap.namespaces[2].exports(&snap.namespaces[2].services[0]));

    // The namespace leaves the mesh: its Service watch stops and what it sent is forgotten.
    for s in st.stores.namespaces.values_mut() {
        s.remove("shop");
    }
    assert_eq!(st.reconcile_services(), [ServiceWatch::Stop("shop".into())]);
    assert!(!st.stores.services.contains_key("services in shop"));
    assert!(!st.is_live("services in shop"));
    assert!(st.is_live("gateways"));
}

#[test]
fn failures_say_whether_the_cluster_is_unreachable() {
    use watcher::Error as W;
    assert_eq!(
        Failure::of(&W::InitialListFailed(api_error(404))),
        Failure::NotInstalled
    );
    assert!(matches!(
        Failure::of(&W::WatchStartFailed(api_error(403))),
        Failure::Forbidden(_)
    ));
    assert_eq!(
        Failure::of(&W::WatchError(Box::new(
            kube::core::Status::failure("too old", "Expired").with_code(410)
        ))),
        Failure::Interrupted
    );
    assert_eq!(Failure::of(&W::NoResourceVersion), Failure::Interrupted);
    assert!(matches!(
        Failure::of(&W::InitialListFailed(api_error(401))),
        Failure::Unreachable(Problem::Unauthorized(_))
    ));
    assert!(matches!(
        Failure::of(&W::WatchError(Box::new(
            kube::core::Status::failure("boom", "InternalError").with_code(500)
        ))),
        Failure::Unreachable(Problem::Other(_))
    ));
    let m = unreachable_message(
        &name("c3"),
        "Gateways in istio-eastwest",
        &Problem::Unreachable("tcp connect error: Connection refused".into()),
    );
    assert_eq!(
        m,
        "cluster c3: cannot reach the API server (tcp connect error: Connection refused); check the server address \
             and that this machine can connect to it (while watching Gateways in istio-eastwest; Meshdeck keeps the \
             state last seen and reconnects on its own, waiting up to 30 s between attempts)"
    );
}

#[test]
fn objects_are_read_into_what_the_topology_needs() {
    let d: Deployment = serde_json::from_value(serde_json::json!({
            "metadata": {"name": "istiod-gloo", "namespace": "istio-system", "labels": {"app": "istiod", "istio.io/rev": "gloo"}},
            "spec": {"replicas": 2, "selector": {}, "template": {}},
            "status": {"readyReplicas": 1}
        }))
        .expect("deployment");
    assert_eq!(
        keep_istiod(&d),
        Some(IstiodState {
            pods: WorkloadState {
                desired: 2,
                ready: 1
            },
            revision: Some("gloo".into())
        })
    );
    let ds: DaemonSet = serde_json::from_value(serde_json::json!({
            "metadata": {"name": "ztunnel", "namespace": "istio-system"},
            "status": {"desiredNumberScheduled": 3, "numberReady": 2, "currentNumberScheduled": 3, "numberMisscheduled": 0}
        }))
        .expect("daemonset");
    assert_eq!(
        keep_daemonset(&ds),
        Some(WorkloadState {
            desired: 3,
            ready: 2
        })
    );
    let cm = |mesh: Option<&str>| -> ConfigMap {
        serde_json::from_value(serde_json::json!({
            "metadata": {"name": "istio", "namespace": "istio-system"},
            "data": mesh.map(|m| serde_json::json!({"mesh": m})).unwrap_or(serde_json::json!({}))
        }))
        .expect("configmap")
    };
    assert_eq!(
        keep_trust_domain(&cm(Some("trustDomain: c1\ndefaultConfig: {}\n"))).as_deref(),
        Some("c1")
    );
    assert_eq!(
        keep_trust_domain(&cm(Some("accessLogFile: /dev/stdout\n"))).as_deref(),
        Some("cluster.local")
    );
    assert_eq!(
        keep_trust_domain(&cm(None)).as_deref(),
        Some("cluster.local")
    );
    let smc: DynamicObject = serde_json::from_value(serde_json::json!({
            "apiVersion": "operator.gloo.solo.io/v1", "kind": "ServiceMeshController",
            "metadata": {"name": "managed-istio", "namespace": "gloo-mesh"},
            "spec": {"version": "1.28.1-patch0"},
            "status": {"phase": "SUCCEEDED", "conditions": [{"type": "Ready", "status": "True", "reason": "SystemReady", "message": "All conditions are met"}]}
        }))
        .expect("smc");
    assert_eq!(
        keep_smc(&smc),
        Some(SmcState {
            phase: Some("SUCCEEDED".into()),
            conditions: vec![ConditionView {
                type_: "Ready".into(),
                status: "True".into(),
                reason: "SystemReady".into(),
                message: "All conditions are met".into()
            }],
            version: Some("1.28.1-patch0".into()),
            install_namespace: None,
        })
    );
    let other: DynamicObject = serde_json::from_value(serde_json::json!({
        "apiVersion": "gateway.networking.k8s.io/v1", "kind": "Gateway",
        "metadata": {"name": "ingress", "namespace": "istio-eastwest"},
        "spec": {"gatewayClassName": "istio"}
    }))
    .expect("gateway");
    assert_eq!(keep_gateway(&other), None);
}

#[tokio::test]
async fn a_burst_of_changes_is_published_once_and_only_after_every_watch_listed() {
    let (services, _rx) = mpsc::unbounded_channel();
    let shared = Arc::new(Shared {
        name: name("c1"),
        state: Mutex::new(State::new(["a".to_string(), "b".to_string()])),
        dirty: Notify::new(),
        services,
    });
    let (tx, mut rx) = watch::channel(ClusterSnapshot::new(name("c1")));
    let generation = Arc::new(watch::channel(0).0);
    let mut counter = generation.subscribe();
    let task = tokio::spawn(publish(shared.clone(), tx, Some(generation.clone())));
    let reached = |id: &'static str| move |st: &mut State| Shared::reached(st, id, &name("c1"), id);
    shared.update("a", reached("a"));
    tokio::time::sleep(DEBOUNCE * 3).await;
    assert!(!rx.has_changed().expect("open"), "b has not listed yet");
    shared.update("b", reached("b"));
    rx.changed().await.expect("first snapshot");
    rx.borrow_and_update();
    for i in 0..10u32 {
        shared.update("a", |st| {
            st.stores.operator = store(vec![(
                "gloo-mesh/gloo-operator",
                WorkloadState {
                    desired: 1,
                    ready: i,
                },
            )]);
        });
    }
    let start = tokio::time::Instant::now();
    rx.changed().await.expect("changed");
    assert!(start.elapsed() < Duration::from_millis(500));
    assert_eq!(
        rx.borrow_and_update().operator,
        Some(WorkloadState {
            desired: 1,
            ready: 9
        })
    );
    tokio::time::sleep(DEBOUNCE * 3).await;
    assert!(
        !rx.has_changed().expect("open"),
        "one publication for the burst"
    );
    assert_eq!(*counter.borrow_and_update(), 2);
    // Nothing new: nothing published.
    shared.update("a", |_| {});
    tokio::time::sleep(DEBOUNCE * 3).await;
    assert!(!rx.has_changed().expect("open"));
    task.abort();
}
