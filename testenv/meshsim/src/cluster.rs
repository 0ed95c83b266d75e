//! One simulated cluster: its client and watch-fed caches of every kind the simulated controllers read.
//!
//! Controllers read only from these caches (as real controllers read informers), so a reconcile pass costs no
//! API requests unless something has to be written.

use std::sync::Arc;

use futures::StreamExt;
use k8s_openapi::api::apps::v1::{DaemonSet, Deployment};
use k8s_openapi::api::core::v1::{ConfigMap, Namespace, Pod, Secret, Service, ServiceAccount};
use k8s_openapi::apiextensions_apiserver::pkg::apis::apiextensions::v1::CustomResourceDefinition;
use kube::api::{Api, ApiResource, DynamicObject, GroupVersionKind};
use kube::runtime::reflector::{self, Store};
use kube::runtime::{WatchStreamExt, watcher};
use kube::{Client, Resource};
use serde::de::DeserializeOwned;
use tokio::sync::watch;

pub fn gateway_resource() -> ApiResource {
    ApiResource::from_gvk_with_plural(
        &GroupVersionKind::gvk("gateway.networking.k8s.io", "v1", "Gateway"),
        "gateways",
    )
}

pub fn gatewayclass_resource() -> ApiResource {
    ApiResource::from_gvk_with_plural(
        &GroupVersionKind::gvk("gateway.networking.k8s.io", "v1", "GatewayClass"),
        "gatewayclasses",
    )
}

pub fn smc_resource() -> ApiResource {
    ApiResource::from_gvk_with_plural(
        &GroupVersionKind::gvk("operator.gloo.solo.io", "v1", "ServiceMeshController"),
        "servicemeshcontrollers",
    )
}

/// A cluster as the simulator sees it.
pub struct Cluster {
    /// The kubeconfig context name, e.g. `c1`.
    pub name: String,
    pub client: Client,
    pub deployments: Store<Deployment>,
    pub daemonsets: Store<DaemonSet>,
    pub services: Store<Service>,
    pub pods: Store<Pod>,
    pub namespaces: Store<Namespace>,
    pub configmaps: Store<ConfigMap>,
    pub secrets: Store<Secret>,
    pub crds: Store<CustomResourceDefinition>,
    pub serviceaccounts: Store<ServiceAccount>,
    pub gateways: Store<DynamicObject>,
    pub gatewayclasses: Store<DynamicObject>,
    pub smcs: Store<DynamicObject>,
}

fn spawn_typed<K>(client: &Client, changes: &watch::Sender<u64>) -> Store<K>
where
    K: Resource<DynamicType = ()>
        + Clone
        + DeserializeOwned
        + std::fmt::Debug
        + Send
        + Sync
        + 'static,
{
    let (reader, writer) = reflector::store::<K>();
    run_reflector(Api::all(client.clone()), writer, changes);
    reader
}

/// Keeps `writer`'s cache filled from a watch of `api`, counting every change on `changes`.
fn run_reflector<K>(api: Api<K>, writer: reflector::store::Writer<K>, changes: &watch::Sender<u64>)
where
    K: Resource + Clone + DeserializeOwned + std::fmt::Debug + Send + Sync + 'static,
    K::DynamicType: Eq + std::hash::Hash + Clone + Send + Sync,
{
    let changes = changes.clone();
    tokio::spawn(async move {
        watcher(api, watcher::Config::default())
            .default_backoff()
            .reflect(writer)
            .for_each(|ev| {
                if ev.is_ok() {
                    changes.send_modify(|n| *n += 1);
                }
                futures::future::ready(())
            })
            .await;
    });
}

fn spawn_dynamic(
    client: &Client,
    ar: ApiResource,
    changes: &watch::Sender<u64>,
) -> Store<DynamicObject> {
    let writer = reflector::store::Writer::<DynamicObject>::new(ar.clone());
    let reader = writer.as_reader();
    run_reflector(Api::all_with(client.clone(), &ar), writer, changes);
    reader
}

impl Cluster {
    pub fn start(name: String, client: Client, changes: &watch::Sender<u64>) -> Arc<Self> {
        Arc::new(Cluster {
            deployments: spawn_typed(&client, changes),
            daemonsets: spawn_typed(&client, changes),
            services: spawn_typed(&client, changes),
            pods: spawn_typed(&client, changes),
            namespaces: spawn_typed(&client, changes),
            configmaps: spawn_typed(&client, changes),
            secrets: spawn_typed(&client, changes),
            crds: spawn_typed(&client, changes),
            serviceaccounts: spawn_typed(&client, changes),
            gateways: spawn_dynamic(&client, gateway_resource(), changes),
            gatewayclasses: spawn_dynamic(&client, gatewayclass_resource(), changes),
            smcs: spawn_dynamic(&client, smc_resource(), changes),
            name,
            client,
        })
    }

    /// Waits until the caches of the built-in kinds hold a first full list.
    pub async fn wait_synced(&self) {
        let _ = self.deployments.wait_until_ready().await;
        let _ = self.daemonsets.wait_until_ready().await;
        let _ = self.services.wait_until_ready().await;
        let _ = self.pods.wait_until_ready().await;
        let _ = self.namespaces.wait_until_ready().await;
        let _ = self.configmaps.wait_until_ready().await;
        let _ = self.secrets.wait_until_ready().await;
        let _ = self.crds.wait_until_ready().await;
    }

    pub fn configmap(&self, ns: &str, name: &str) -> Option<Arc<ConfigMap>> {
        find(&self.configmaps, ns, name)
    }

    pub fn secret(&self, ns: &str, name: &str) -> Option<Arc<Secret>> {
        find(&self.secrets, ns, name)
    }

    pub fn deployment(&self, ns: &str, name: &str) -> Option<Arc<Deployment>> {
        find(&self.deployments, ns, name)
    }

    pub fn service(&self, ns: &str, name: &str) -> Option<Arc<Service>> {
        find(&self.services, ns, name)
    }

    pub fn namespace(&self, name: &str) -> Option<Arc<Namespace>> {
        self.namespaces
            .state()
            .into_iter()
            .find(|n| n.metadata.name.as_deref() == Some(name))
    }

    pub fn crd_established(&self, name: &str) -> bool {
        self.crds.state().iter().any(|c| {
            c.metadata.name.as_deref() == Some(name)
                && c.status
                    .as_ref()
                    .and_then(|s| s.conditions.as_ref())
                    .is_some_and(|cs| {
                        cs.iter()
                            .any(|c| c.type_ == "Established" && c.status == "True")
                    })
        })
    }

    pub fn gateways_of_class(&self, class: &str) -> Vec<Arc<DynamicObject>> {
        self.gateways
            .state()
            .into_iter()
            .filter(|g| g.data["spec"]["gatewayClassName"].as_str() == Some(class))
            .collect()
    }
}

pub fn find<K>(store: &Store<K>, ns: &str, name: &str) -> Option<Arc<K>>
where
    K: Resource<DynamicType = ()> + Clone + 'static,
{
    store.get(&reflector::ObjectRef::new(name).within(ns))
}

pub fn find_dynamic(
    store: &Store<DynamicObject>,
    ns: &str,
    name: &str,
) -> Option<Arc<DynamicObject>> {
    store.state().into_iter().find(|o| {
        o.metadata.name.as_deref() == Some(name) && o.metadata.namespace.as_deref() == Some(ns)
    })
}
