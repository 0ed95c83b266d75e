//! The live watches against real apiservers of the test world: a change made through the API reaches the
//! snapshot within a second; an unreachable cluster is marked as such, says what to do, and holds up no other;
//! an idle cluster costs no requests (watches only, no polling); a stopped apiserver is noticed and recovered
//! from. Everything written goes to c3 (other tests and browser runs use c1 and c2), into objects of the
//! test's own, which it deletes.

use std::time::{Duration, Instant};

use k8s_openapi::api::apps::v1::Deployment;
use k8s_openapi::api::core::v1::{ConfigMap, Namespace, Secret};
use k8s_openapi::apiextensions_apiserver::pkg::apis::apiextensions::v1::CustomResourceDefinition;
use kube::Client;
use kube::api::{Api, DeleteParams, DynamicObject};
use mesh::connect;
use mesh::ids::ClusterName;
use mesh::kubeconfig;
use mesh::topology::{self, ClusterSnapshot, Expectation};
use mesh::watch::{ClusterWatch, Watches};
use serde_json::json;
use tokio::sync::watch;

/// The cluster this test may write to.
const CTX: &str = "c3";
const PEER: &str = "istio-remote-peer-zz-test";
/// What the issue asks of a change: shown within a second.
const LATENCY: Duration = Duration::from_secs(1);

fn creds(context: &str, edit: impl Fn(String) -> String) -> kubeconfig::Credentials {
    let text =
        std::fs::read_to_string(testworld::kubeconfig_path()).expect("read the test kubeconfig");
    let kc = kubeconfig::parse(&edit(text)).expect("parse");
    kubeconfig::extract(&kc, context, false).expect("extract")
}

/// A client as the server builds it for watches: counted per API server (connect.rs), no read timeout.
async fn watch_client(context: &str) -> Client {
    connect::watch_client(&creds(context, |s| s))
        .await
        .expect("client")
}

fn name(n: &str) -> ClusterName {
    ClusterName::new(n).expect("name")
}

/// Waits (up to `limit`) until the snapshot satisfies `pred`; returns it.
async fn until(
    rx: &mut watch::Receiver<ClusterSnapshot>,
    limit: Duration,
    what: &str,
    pred: impl Fn(&ClusterSnapshot) -> bool,
) -> ClusterSnapshot {
    let deadline = tokio::time::Instant::now() + limit;
    loop {
        {
            let snap = rx.borrow_and_update();
            if pred(&snap) {
                return snap.clone();
            }
        }
        match tokio::time::timeout_at(deadline, rx.changed()).await {
            Ok(r) => r.expect("the watch stopped"),
            Err(_) => panic!(
                "{what}: not within {limit:?}; last snapshot: {:#?}",
                *rx.borrow()
            ),
        }
    }
}

/// Makes a change through the API and measures until the snapshot shows it; fails past [`LATENCY`].
struct Meter<'a> {
    rx: &'a mut watch::Receiver<ClusterSnapshot>,
    measured: Vec<(String, Duration)>,
}

impl Meter<'_> {
    async fn change<F: Future<Output = ()>>(
        &mut self,
        what: &str,
        write: F,
        shown: impl Fn(&ClusterSnapshot) -> bool,
    ) -> ClusterSnapshot {
        let start = Instant::now();
        write.await;
        let snap = until(self.rx, Duration::from_secs(10), what, shown).await;
        let took = start.elapsed();
        eprintln!("{what}: in the snapshot {took:?} after the write was sent");
        assert!(took < LATENCY, "{what} took {took:?}");
        self.measured.push((what.to_string(), took));
        snap
    }
}

async fn apply(c: &Client, obj: serde_json::Value) {
    mesh::apply::apply(c, &obj, false).await.expect("apply");
}

/// The Gateway API CRDs on c3 (an earlier test may have removed them), and istio-eastwest.
async fn prepare(c: &Client) {
    mesh::gateway_api::apply(c).await.expect("gateway api");
    kube::runtime::wait::await_condition(
        Api::<CustomResourceDefinition>::all(c.clone()),
        "gateways.gateway.networking.k8s.io",
        kube::runtime::conditions::is_crd_established(),
    )
    .await
    .expect("established");
    let namespaces: Api<Namespace> = Api::all(c.clone());
    for ns in ["istio-eastwest", "istio-system"] {
        // Another test's reset may be deleting it: wait until it is gone before creating it again.
        if let Some(old) = namespaces.get_opt(ns).await.expect("get namespace")
            && old.metadata.deletion_timestamp.is_some()
        {
            let uid = old.metadata.uid.clone().unwrap_or_default();
            tokio::time::timeout(
                Duration::from_secs(120),
                kube::runtime::wait::await_condition(
                    namespaces.clone(),
                    ns,
                    kube::runtime::conditions::is_deleted(&uid),
                ),
            )
            .await
            .expect("terminating namespace gone in time")
            .expect("wait");
        }
        apply(
            c,
            json!({"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": ns}}),
        )
        .await;
    }
}

fn peer_gateway() -> serde_json::Value {
    json!({
        "apiVersion": "gateway.networking.k8s.io/v1", "kind": "Gateway",
        "metadata": {
            "name": PEER, "namespace": "istio-eastwest",
            "labels": {"topology.istio.io/cluster": "zz-test", "topology.istio.io/network": "zz-test"},
            "annotations": {"gateway.istio.io/trust-domain": "zz-test", "gateway.istio.io/service-account": "istio-eastwest"}
        },
        "spec": {
            "gatewayClassName": "istio-remote",
            "addresses": [{"type": "IPAddress", "value": "10.9.9.9"}],
            "listeners": [
                {"name": "cross-network", "port": 15008, "protocol": "HBONE", "tls": {"mode": "Passthrough"}},
                {"name": "xds-tls", "port": 15012, "protocol": "TLS", "tls": {"mode": "Passthrough"}}
            ]
        }
    })
}

async fn delete_peer_gateway(c: &Client) {
    let api: Api<DynamicObject> = Api::namespaced_with(
        c.clone(),
        "istio-eastwest",
        &mesh::objects::gateway_resource(),
    );
    let _ = api.delete(PEER, &DeleteParams::default()).await;
}

fn service(ns: &str, svc: &str, labels: serde_json::Value) -> serde_json::Value {
    json!({
        "apiVersion": "v1", "kind": "Service",
        "metadata": {"name": svc, "namespace": ns, "labels": labels},
        "spec": {"ports": [{"name": "http", "port": 80}]}
    })
}

fn namespace(ns: &str, labels: serde_json::Value) -> serde_json::Value {
    json!({"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": ns, "labels": labels}})
}

fn has_peer(s: &ClusterSnapshot) -> bool {
    s.peers.iter().any(|p| p.name == PEER)
}

/// Which of the singletons the test writes are absent from c3.
#[derive(Clone)]
struct Free {
    istiod: bool,
    cacerts: bool,
    mesh_config: bool,
}

impl Free {
    async fn of(c: &Client) -> Free {
        let cms: Api<ConfigMap> = Api::namespaced(c.clone(), "istio-system");
        let free = Free {
            istiod: Api::<Deployment>::namespaced(c.clone(), "istio-system")
                .list(&kube::api::ListParams::default().labels("app=istiod"))
                .await
                .expect("list")
                .items
                .is_empty(),
            cacerts: Api::<Secret>::namespaced(c.clone(), "istio-system")
                .get_opt("cacerts")
                .await
                .expect("get")
                .is_none(),
            mesh_config: cms.get_opt("istio").await.expect("get").is_none()
                && cms.get_opt("istio-gloo").await.expect("get").is_none(),
        };
        if !(free.istiod && free.cacerts && free.mesh_config) {
            eprintln!(
                "c3 holds a control plane (another test's setup): istiod, cacerts and mesh config changes are not tried"
            );
        }
        free
    }
}

/// Runs `body` and then `cleanup`, whether or not `body` panicked.
async fn with_cleanup<B, C>(body: B, cleanup: C)
where
    B: Future<Output = ()> + Send + 'static,
    C: Future<Output = ()>,
{
    let result = tokio::spawn(body).await;
    cleanup.await;
    if let Err(e) = result {
        std::panic::resume_unwind(e.into_panic());
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn changes_made_through_the_api_reach_the_snapshot_within_a_second() {
    let _world = testworld::WORLD_LOCK.lock().await;
    let c = testworld::client(CTX).await;
    prepare(&c).await;
    delete_peer_gateway(&c).await;
    let suffix: u32 = rand::random::<u32>() % 1_000_000;
    let (meshed, plain) = (
        format!("watch-test-{suffix}"),
        format!("watch-plain-{suffix}"),
    );
    // The cluster-wide singletons this test writes (istiod, cacerts, the mesh ConfigMap) are written only
    // when absent, so a setup running on c3 meanwhile is never overwritten, and deleted only by the test
    // that made them.
    let free = Free::of(&c).await;

    let body = {
        let (c, meshed, plain, free) = (c.clone(), meshed.clone(), plain.clone(), free.clone());
        async move {
            let (_watch, mut rx) = ClusterWatch::start(name(CTX), watch_client(CTX).await);
            let first = until(&mut rx, Duration::from_secs(40), "first snapshot", |s| {
                s != &ClusterSnapshot::new(name(CTX))
            })
            .await;
            assert_eq!(first.unreachable, None);
            let smc_crd = Api::<CustomResourceDefinition>::all(c.clone())
                .get_opt("servicemeshcontrollers.operator.gloo.solo.io")
                .await
                .expect("get crd");
            if smc_crd.is_none() {
                // An API not served (no operator CRD yet) reads as "none" and breaks no other watch.
                assert_eq!(first.smc, None);
            }
            let mut m = Meter {
                rx: &mut rx,
                measured: vec![],
            };

            let snap = m
                .change(
                    "a peer gateway created",
                    apply(&c, peer_gateway()),
                    has_peer,
                )
                .await;
            let p = snap.peers.iter().find(|p| p.name == PEER).expect("peer");
            assert_eq!(
                (
                    p.cluster_label.as_deref(),
                    p.trust_domain.as_deref(),
                    p.address.as_deref()
                ),
                (Some("zz-test"), Some("zz-test"), Some("10.9.9.9"))
            );
            m.change("a peer gateway deleted", delete_peer_gateway(&c), |s| {
                !has_peer(s)
            })
            .await;

            let ns_of =
                |s: &ClusterSnapshot, n: &str| s.namespaces.iter().find(|x| x.name == n).cloned();
            let snap = m
                .change(
                    "an ambient namespace created",
                    apply(
                        &c,
                        namespace(&meshed, json!({"istio.io/dataplane-mode": "ambient"})),
                    ),
                    |s| ns_of(s, &meshed).is_some(),
                )
                .await;
            assert!(ns_of(&snap, &meshed).expect("ns").is_meshed());
            m.change(
                "a Service created in the ambient namespace",
                async {
                    apply(&c, service(&meshed, "cart", json!({}))).await;
                    apply(&c, service(&meshed, "admin", json!({}))).await;
                },
                |s| ns_of(s, &meshed).is_some_and(|n| n.services.len() == 2),
            )
            .await;
            let snap = m
                .change(
                    "a Service labelled for export",
                    apply(
                        &c,
                        service(&meshed, "cart", json!({"solo.io/service-scope": "global"})),
                    ),
                    |s| {
                        ns_of(s, &meshed)
                            .is_some_and(|n| n.services.iter().any(|svc| n.exports(svc)))
                    },
                )
                .await;
            let g = topology::compute(std::slice::from_ref(&snap), &Expectation::default());
            let node = g.clusters[0]
                .namespaces
                .iter()
                .find(|n| n.name == meshed)
                .expect("namespace node");
            let cart = node
                .services
                .iter()
                .find(|s| s.name == "cart")
                .expect("cart");
            assert_eq!(
                cart.hostname.as_deref(),
                Some(format!("cart.{meshed}.mesh.internal").as_str())
            );
            m.change(
                "an exported Service in a namespace outside the mesh",
                async {
                    apply(&c, namespace(&plain, json!({}))).await;
                    apply(
                        &c,
                        service(&plain, "api", json!({"solo.io/service-scope": "global"})),
                    )
                    .await;
                },
                |s| {
                    ns_of(s, &plain)
                        .is_some_and(|n| n.services.len() == 1 && n.exports(&n.services[0]))
                },
            )
            .await;
            // Leaving the mesh: only the Service exported by its own label stays in view.
            let snap = m
                .change(
                    "the namespace left the mesh",
                    apply(&c, namespace(&meshed, json!({}))),
                    |s| ns_of(s, &meshed).is_some_and(|n| !n.is_meshed()),
                )
                .await;
            let left = ns_of(&snap, &meshed).expect("ns");
            assert_eq!(
                left.services
                    .iter()
                    .map(|s| s.name.as_str())
                    .collect::<Vec<_>>(),
                ["cart"]
            );

            if free.istiod {
                let before = m.rx.borrow().istiod.clone();
                let snap = m
                .change(
                    "an istiod Deployment created",
                    apply(
                        &c,
                        json!({
                            "apiVersion": "apps/v1", "kind": "Deployment",
                            "metadata": {
                                "name": "istiod-zz-test", "namespace": "istio-system",
                                "labels": {"app": "istiod", "istio.io/rev": "zz-test"}
                            },
                            "spec": {
                                "replicas": 1,
                                "selector": {"matchLabels": {"app": "istiod-zz-test"}},
                                "template": {
                                    "metadata": {"labels": {"app": "istiod-zz-test"}},
                                    "spec": {"containers": [{"name": "discovery", "image": "zz-test"}]}
                                }
                            }
                        }),
                    ),
                    |s| s.istiod != before,
                )
                .await;
                let istiod = snap.istiod.expect("istiod");
                assert!(istiod.pods.desired >= 1, "{istiod:?}");
                assert_eq!(istiod.revision.as_deref(), Some("zz-test"));
                m.change(
                    "the istiod Deployment deleted",
                    async {
                        Api::<Deployment>::namespaced(c.clone(), "istio-system")
                            .delete("istiod-zz-test", &DeleteParams::default())
                            .await
                            .expect("delete deployment");
                    },
                    |s| s.istiod == before,
                )
                .await;
            }

            if free.cacerts {
                let root = mesh::ca::RootCa::generate(mesh::ca::DEFAULT_DAYS).expect("root");
                let fingerprint = mesh::ca::fingerprint(&root.cert_pem).expect("fingerprint");
                let secret = root
                    .intermediate(&name(CTX), mesh::ca::DEFAULT_DAYS)
                    .expect("intermediate")
                    .cacerts_secret("istio-system");
                m.change("cacerts written", apply(&c, secret), |s| {
                    s.root_fingerprint.as_deref() == Some(fingerprint.as_str())
                })
                .await;
                m.change(
                    "cacerts deleted",
                    async {
                        Api::<Secret>::namespaced(c.clone(), "istio-system")
                            .delete("cacerts", &DeleteParams::default())
                            .await
                            .expect("delete cacerts");
                    },
                    |s| s.root_fingerprint.is_none(),
                )
                .await;
            }

            if free.mesh_config {
                m.change(
                    "a mesh ConfigMap written",
                    apply(
                        &c,
                        json!({
                            "apiVersion": "v1", "kind": "ConfigMap",
                            "metadata": {"name": "istio", "namespace": "istio-system"},
                            "data": {"mesh": "trustDomain: zz.test\n"}
                        }),
                    ),
                    |s| s.trust_domain.as_deref() == Some("zz.test"),
                )
                .await;
                m.change(
                    "the mesh ConfigMap deleted",
                    async {
                        Api::<ConfigMap>::namespaced(c.clone(), "istio-system")
                            .delete("istio", &DeleteParams::default())
                            .await
                            .expect("delete configmap");
                    },
                    |s| s.trust_domain.is_none(),
                )
                .await;
            }
            let slowest = m.measured.iter().map(|(_, d)| *d).max().expect("measured");
            eprintln!(
                "{} changes, slowest {slowest:?}, mean {:?}",
                m.measured.len(),
                m.measured.iter().map(|(_, d)| *d).sum::<Duration>() / m.measured.len() as u32
            );
        }
    };
    let cleanup = async {
        delete_peer_gateway(&c).await;
        let ns_api: Api<Namespace> = Api::all(c.clone());
        for ns in [&meshed, &plain] {
            let _ = ns_api.delete(ns, &DeleteParams::default()).await;
        }
        if free.cacerts {
            let _ = Api::<Secret>::namespaced(c.clone(), "istio-system")
                .delete("cacerts", &DeleteParams::default())
                .await;
        }
        let _ = Api::<Deployment>::namespaced(c.clone(), "istio-system")
            .delete("istiod-zz-test", &DeleteParams::default())
            .await;
        if free.mesh_config {
            let _ = Api::<ConfigMap>::namespaced(c.clone(), "istio-system")
                .delete("istio", &DeleteParams::default())
                .await;
        }
    };
    with_cleanup(body, cleanup).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_unreachable_cluster_says_what_to_do_and_the_others_keep_updating() {
    let _world = testworld::WORLD_LOCK.lock().await;
    let c = testworld::client(CTX).await;
    prepare(&c).await;
    delete_peer_gateway(&c).await;
    // c3's context with its server moved to port 1 on loopback, where nothing listens.
    let server = creds(CTX, |s| s).server;
    let dead = creds(CTX, |s| {
        s.replace(&format!("{server}\""), "https://127.0.0.1:1\"")
    });
    assert_eq!(dead.server, "https://127.0.0.1:1");

    let body = {
        let c = c.clone();
        async move {
            let watches = Watches::new();
            let mut changes = watches.changes();
            let start = Instant::now();
            watches.add(
                name("dead"),
                connect::watch_client(&dead).await.expect("client"),
            );
            watches.add(name(CTX), watch_client(CTX).await);
            let deadline = tokio::time::Instant::now() + Duration::from_secs(15);
            let message = loop {
                if let Some(m) = watches.snapshot(&name("dead")).and_then(|s| s.unreachable) {
                    break m;
                }
                tokio::time::timeout_at(deadline, changes.changed())
                    .await
                    .expect("dead marked unreachable in time")
                    .expect("changes");
            };
            eprintln!("unreachable after {:?}: {message}", start.elapsed());
            for part in [
                "cluster dead:",
                "cannot reach the API server",
                "check the server address",
                "reconnects on its own",
            ] {
                assert!(message.contains(part), "{part:?} in {message}");
            }

            // The reachable cluster keeps updating meanwhile.
            let start = Instant::now();
            apply(&c, peer_gateway()).await;
            let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
            loop {
                if watches.snapshot(&name(CTX)).is_some_and(|s| has_peer(&s)) {
                    break;
                }
                tokio::time::timeout_at(deadline, changes.changed())
                    .await
                    .expect("c3's change in time")
                    .expect("changes");
            }
            let took = start.elapsed();
            eprintln!("c3's change shown {took:?} after the write, next to an unreachable cluster");
            assert!(took < LATENCY, "{took:?}");
            let snaps = watches.snapshots();
            assert_eq!(
                snaps.iter().map(|s| s.name.as_str()).collect::<Vec<_>>(),
                ["c3", "dead"]
            );
            assert_eq!(snaps[0].unreachable, None);
            let g = topology::compute(&snaps, &Expectation::default());
            let f = g
                .findings
                .iter()
                .find(|f| f.kind == mesh::ids::graph::FindingKind::Unreachable)
                .expect("unreachable finding");
            assert_eq!(f.clusters, [name("dead")]);

            let generation = *changes.borrow_and_update();
            assert!(watches.remove(&name("dead")));
            assert!(!watches.remove(&name("dead")));
            assert!(*changes.borrow_and_update() > generation);
            assert_eq!(watches.names(), [name(CTX)]);
        }
    };
    with_cleanup(body, delete_peer_gateway(&c)).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_idle_cluster_costs_no_requests_once_listed_only_its_watches() {
    let _world = testworld::WORLD_LOCK.lock().await;
    let creds = creds(CTX, |s| s);
    let client = connect::watch_client(&creds).await.expect("client");
    let counts = || {
        connect::request_counts()
            .into_iter()
            .find(|(server, _, _)| *server == creds.server)
            .map(|(_, requests, watches)| (requests, watches))
            .unwrap_or_default()
    };
    let before = counts();
    let (_watch, mut rx) = ClusterWatch::start(name(CTX), client);
    until(&mut rx, Duration::from_secs(40), "first snapshot", |s| {
        s != &ClusterSnapshot::new(name(CTX))
    })
    .await;
    // Let every watch (the per-namespace ones start after their namespace is seen) settle.
    tokio::time::sleep(Duration::from_secs(1)).await;
    let listed = counts();
    let (lists, watches) = (listed.0 - before.0, listed.1 - before.1);
    eprintln!("after the first snapshot: {lists} plain requests, {watches} watches");
    assert!(lists >= 14, "one list per watched kind at least: {lists}");
    assert!(
        watches >= 13,
        "one watch per watched kind at least: {watches}"
    );
    let idle = Duration::from_secs(20);
    tokio::time::sleep(idle).await;
    let after = counts();
    assert_eq!(
        after, listed,
        "while idle for {idle:?}: no polling and no reconnecting (requests, watches)"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_stopped_apiserver_marks_the_cluster_unreachable_until_it_is_back() {
    let _world = testworld::WORLD_LOCK.lock().await;
    let c = testworld::client(CTX).await;
    prepare(&c).await;
    let (watch, mut rx) = ClusterWatch::start(name(CTX), watch_client(CTX).await);
    let before = until(&mut rx, Duration::from_secs(40), "first snapshot", |s| {
        s != &ClusterSnapshot::new(name(CTX))
    })
    .await;
    assert_eq!(before.unreachable, None);

    let body = {
        let mut rx = rx.clone();
        let before = before.clone();
        async move {
            testworld::stop_apiserver(CTX).await;
            let start = Instant::now();
            let down = until(
                &mut rx,
                Duration::from_secs(15),
                "marked unreachable",
                |s| s.unreachable.is_some(),
            )
            .await;
            eprintln!(
                "unreachable {:?} after the apiserver stopped: {}",
                start.elapsed(),
                down.unreachable.as_deref().unwrap_or_default()
            );
            let message = down.unreachable.clone().expect("message");
            // (Which request failed first, and how, depends on how far the apiserver got in shutting down.)
            assert!(message.starts_with("cluster c3: "), "{message}");
            assert!(message.contains("reconnects on its own"), "{message}");
            // The rest is the state last seen.
            assert_eq!(
                ClusterSnapshot {
                    unreachable: None,
                    ..down
                },
                before
            );
        }
    };
    with_cleanup(body, testworld::start_apiserver(CTX)).await;
    let start = Instant::now();
    let up = until(&mut rx, Duration::from_secs(60), "reachable again", |s| {
        s.unreachable.is_none()
    })
    .await;
    eprintln!(
        "reachable again {:?} after the apiserver was back",
        start.elapsed()
    );
    assert_eq!(up, before);
    // And changes flow again.
    let mut m = Meter {
        rx: &mut rx,
        measured: vec![],
    };
    m.change(
        "a peer gateway created after recovery",
        apply(&c, peer_gateway()),
        has_peer,
    )
    .await;
    delete_peer_gateway(&c).await;
    watch.stop();
}
