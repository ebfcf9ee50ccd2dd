//! Which Kafka topics and Kinesis streams the gateway serves: those of the `Topic` and `Stream`
//! objects in its namespaces that match its label selector, kept by one reflector per namespace
//! and kind so a request never calls the API server. A Topic's Kafka name is `spec.topicName`,
//! a Stream's Kinesis name `spec.streamName`, else their `metadata.name`; an object being
//! deleted is no longer served.

use std::collections::BTreeSet;
use std::fmt::Debug;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

use futures::StreamExt;
use kube::api::{Api, ListParams};
use kube::core::NamespaceResourceScope;
use kube::runtime::reflector::Store;
use kube::runtime::{WatchStreamExt, reflector, watcher};
use kube::{Resource, ResourceExt};
use serde::de::DeserializeOwned;
use tokio::task::JoinHandle;
use tributary_crds::{Stream, Topic};

/// A kind of object whose existence lets the gateway serve a destination.
pub trait Served:
    Resource<DynamicType = (), Scope = NamespaceResourceScope>
    + Clone
    + Debug
    + DeserializeOwned
    + Send
    + Sync
    + 'static
{
    /// The destination's name outside Kubernetes (the Kafka topic, the Kinesis stream).
    fn served_name(&self) -> &str;
}

impl Served for Topic {
    fn served_name(&self) -> &str {
        self.kafka_name()
    }
}

impl Served for Stream {
    fn served_name(&self) -> &str {
        self.kinesis_name()
    }
}

/// The objects a gateway is allowed to serve.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Scope {
    /// Namespaces; empty: all.
    pub namespaces: Vec<String>,
    /// A label selector (`k=v,k2!=v2`), if any.
    pub selector: Option<String>,
}

impl Scope {
    /// "`kind` objects in ... with labels ...".
    pub fn describe(&self, kind: &str) -> String {
        let mut text = match self.namespaces.as_slice() {
            [] => format!("{kind} objects in all namespaces"),
            [one] => format!("{kind} objects in namespace {one}"),
            many => format!("{kind} objects in namespaces {}", many.join(", ")),
        };
        if let Some(selector) = &self.selector {
            text.push_str(&format!(" with labels {selector}"));
        }
        text
    }
}

/// What a lookup found.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Lookup {
    /// The destination is served.
    Served,
    /// It is not.
    NotServed,
    /// The object list has not been read yet.
    NotSynced,
}

/// The set of served destinations of one kind: a fixed one, or the one the reflectors keep.
#[derive(Clone)]
pub enum AllowList<K: Served> {
    /// These names (tests; a gateway without Kubernetes).
    Fixed(BTreeSet<String>),
    /// The objects of a [`Scope`].
    Watched(Watched<K>),
}

/// The reflectors' stores, one per watched namespace.
#[derive(Clone)]
pub struct Watched<K: Served> {
    scope: Scope,
    stores: Vec<Store<K>>,
    synced: Arc<AtomicBool>,
}

impl<K: Served> AllowList<K> {
    /// A fixed set of names.
    pub fn fixed<'a>(names: impl IntoIterator<Item = &'a str>) -> Self {
        Self::Fixed(names.into_iter().map(str::to_owned).collect())
    }

    /// A watched list whose first read has not finished.
    #[cfg(test)]
    pub(crate) fn unsynced() -> Self {
        let (store, _writer) = reflector::store::<K>();
        Self::Watched(Watched {
            scope: Scope::default(),
            stores: vec![store],
            synced: Arc::new(AtomicBool::new(false)),
        })
    }

    /// Whether `name` (a Kafka topic or Kinesis stream name) is served.
    pub fn lookup(&self, name: &str) -> Lookup {
        match self {
            Self::Fixed(names) if names.contains(name) => Lookup::Served,
            Self::Fixed(_) => Lookup::NotServed,
            Self::Watched(watched) if !watched.synced.load(Ordering::Acquire) => Lookup::NotSynced,
            Self::Watched(watched) => {
                let served = watched.stores.iter().any(|store| {
                    store
                        .find(|o| o.served_name() == name && o.meta().deletion_timestamp.is_none())
                        .is_some()
                });
                if served {
                    Lookup::Served
                } else {
                    Lookup::NotServed
                }
            }
        }
    }

    /// Whether the list has been read (always, for a fixed one).
    pub fn is_synced(&self) -> bool {
        match self {
            Self::Fixed(_) => true,
            Self::Watched(watched) => watched.synced.load(Ordering::Acquire),
        }
    }

    /// What is served, for messages.
    pub fn describe(&self) -> String {
        match self {
            Self::Fixed(names) if names.is_empty() => format!("no {}", K::plural(&())),
            Self::Fixed(names) => format!(
                "the {} {}",
                K::plural(&()),
                names.iter().cloned().collect::<Vec<_>>().join(", ")
            ),
            Self::Watched(watched) => watched.scope.describe(&K::kind(&())),
        }
    }
}

/// The objects cannot be watched.
#[derive(Debug, thiserror::Error)]
pub enum WatchError {
    /// The first list failed: no CRD, no permission, a bad selector, no API server.
    #[error(
        "cannot list {}s{}{}: {}; {}",
        .kind,
        .namespace.as_ref().map(|n| format!(" in namespace {n}")).unwrap_or_default(),
        .selector.as_ref().map(|s| format!(" with labels {s}")).unwrap_or_default(),
        summary(.source),
        hint(.source, .plural)
    )]
    List {
        /// The kind listed.
        kind: String,
        /// Its plural, for the RBAC hint.
        plural: String,
        /// The namespace (`None`: all).
        namespace: Option<String>,
        /// The selector.
        selector: Option<String>,
        /// The API server's answer.
        #[source]
        source: kube::Error,
    },
}

/// The API server's message, without the whole status object.
fn summary(error: &kube::Error) -> String {
    match error {
        kube::Error::Api(status) => format!("{} {}", status.code, status.message),
        other => other.to_string(),
    }
}

/// What to do about a failed list.
fn hint(error: &kube::Error, plural: &str) -> String {
    match error {
        kube::Error::Api(status) if status.code == 400 => {
            "check --selector: it must be a label selector such as tributary.dev/gateway=public"
                .into()
        }
        kube::Error::Api(status) if status.code == 401 || status.is_forbidden() => format!(
            "the gateway's service account needs get, list and watch on {plural}.tributary.dev \
             there"
        ),
        kube::Error::Api(status) if status.is_not_found() => {
            "the Tributary CRDs are not installed: apply crds/yaml/ (`tributary crds` prints them)"
                .into()
        }
        _ => "check that the API server is reachable with this Kubernetes configuration".into(),
    }
}

/// The reflector tasks; aborted when dropped.
pub struct Reflectors(Vec<JoinHandle<()>>);

impl Drop for Reflectors {
    fn drop(&mut self) {
        for task in &self.0 {
            task.abort();
        }
    }
}

/// Start watching the objects of kind `K` in `scope`. Each namespace is listed once first, so a missing
/// CRD, missing permissions or a bad selector stop the start with a clear error instead of a
/// gateway that never becomes ready.
pub async fn watch<K: Served>(
    client: kube::Client,
    scope: Scope,
) -> Result<(AllowList<K>, Reflectors), WatchError> {
    let namespaces: Vec<Option<String>> = if scope.namespaces.is_empty() {
        vec![None]
    } else {
        scope.namespaces.iter().cloned().map(Some).collect()
    };
    let mut config = watcher::Config::default();
    let mut probe = ListParams::default().limit(1);
    if let Some(selector) = &scope.selector {
        config = config.labels(selector);
        probe = probe.labels(selector);
    }
    let mut stores = Vec::new();
    let mut tasks = Vec::new();
    for namespace in namespaces {
        let api: Api<K> = match &namespace {
            Some(ns) => Api::namespaced(client.clone(), ns),
            None => Api::all(client.clone()),
        };
        api.list_metadata(&probe)
            .await
            .map_err(|source| WatchError::List {
                kind: K::kind(&()).into_owned(),
                plural: K::plural(&()).into_owned(),
                namespace: namespace.clone(),
                selector: scope.selector.clone(),
                source,
            })?;
        let (store, writer) = reflector::store::<K>();
        // managedFields are most of an object's size and the gateway never reads them.
        let stream = watcher(api, config.clone())
            .default_backoff()
            .modify(|t| t.managed_fields_mut().clear());
        let events = reflector(writer, stream);
        tasks.push(tokio::spawn(async move {
            events
                .for_each(|event| async move {
                    if let Err(error) = event {
                        tracing::warn!(%error, kind = %K::kind(&()), "watching failed; retrying");
                    }
                })
                .await;
        }));
        stores.push(store);
    }
    let synced = Arc::new(AtomicBool::new(false));
    let ready = stores.clone();
    let flag = synced.clone();
    let description = scope.describe(&K::kind(&()));
    tasks.push(tokio::spawn(async move {
        for store in &ready {
            if store.wait_until_ready().await.is_err() {
                return;
            }
        }
        flag.store(true, Ordering::Release);
        let objects: usize = ready.iter().map(|store| store.len()).sum();
        tracing::info!(objects, scope = %description, "object list synced");
    }));
    let allow_list = AllowList::Watched(Watched {
        scope,
        stores,
        synced,
    });
    Ok((allow_list, Reflectors(tasks)))
}

#[cfg(test)]
mod tests {
    use kube::runtime::watcher::Event;

    use super::*;

    fn topic(namespace: &str, name: &str, kafka_name: Option<&str>) -> Topic {
        let mut spec = serde_json::json!({"clusterRef": {"name": "local"}});
        if let Some(kafka_name) = kafka_name {
            spec["topicName"] = kafka_name.into();
        }
        serde_json::from_value(serde_json::json!({
            "apiVersion": "tributary.dev/v1alpha1",
            "kind": "Topic",
            "metadata": {"name": name, "namespace": namespace},
            "spec": spec
        }))
        .unwrap()
    }

    fn being_deleted(mut topic: Topic) -> Topic {
        topic.metadata = serde_json::from_value(serde_json::json!({
            "name": topic.metadata.name,
            "namespace": topic.metadata.namespace,
            "deletionTimestamp": "2026-11-29T00:00:00Z",
            "finalizers": ["tributary.dev/topic"]
        }))
        .unwrap();
        topic
    }

    fn watched(topics: &[Topic], synced: bool) -> AllowList<Topic> {
        let mut writer = reflector::store::Writer::<Topic>::default();
        for topic in topics {
            writer.apply_watcher_event(&Event::Apply(topic.clone()));
        }
        AllowList::Watched(Watched {
            scope: Scope {
                namespaces: vec!["a".into(), "b".into()],
                selector: Some("tributary.dev/gateway=public".into()),
            },
            stores: vec![writer.as_reader()],
            synced: Arc::new(AtomicBool::new(synced)),
        })
    }

    #[test]
    fn a_fixed_list_serves_its_topics() {
        let list = AllowList::<Topic>::fixed(["pin", "geo"]);
        assert_eq!(list.lookup("pin"), Lookup::Served);
        assert_eq!(list.lookup("user"), Lookup::NotServed);
        assert!(list.is_synced());
        assert_eq!(list.describe(), "the topics geo, pin");
    }

    #[test]
    fn watched_topics_are_served_by_their_kafka_name() {
        let list = watched(
            &[
                topic("a", "pin", None),
                topic("b", "users", Some("User_Events")),
                being_deleted(topic("a", "old", None)),
            ],
            true,
        );
        assert_eq!(list.lookup("pin"), Lookup::Served);
        assert_eq!(list.lookup("User_Events"), Lookup::Served);
        assert_eq!(list.lookup("users"), Lookup::NotServed);
        assert_eq!(list.lookup("old"), Lookup::NotServed);
        assert_eq!(
            list.describe(),
            "Topic objects in namespaces a, b with labels tributary.dev/gateway=public"
        );
    }

    #[test]
    fn nothing_is_decided_before_the_list_is_read() {
        let list = watched(&[topic("a", "pin", None)], false);
        assert_eq!(list.lookup("pin"), Lookup::NotSynced);
        assert!(!list.is_synced());
    }

    #[test]
    fn a_failed_first_list_says_what_to_fix() {
        let failed = |code, reason| WatchError::List {
            namespace: Some("data".into()),
            selector: Some("a=b=c".into()),
            kind: "Topic".into(),
            plural: "topics".into(),
            source: kube::Error::Api(
                kube::core::Status::failure("the server says no", reason)
                    .with_code(code)
                    .boxed(),
            ),
        };
        let bad_selector = failed(400, "BadRequest").to_string();
        assert_eq!(
            bad_selector,
            "cannot list Topics in namespace data with labels a=b=c: 400 the server says no; \
             check --selector: it must be a label selector such as tributary.dev/gateway=public"
        );
        assert!(
            failed(403, "Forbidden")
                .to_string()
                .contains("service account")
        );
        assert!(
            failed(404, "NotFound")
                .to_string()
                .contains("CRDs are not installed")
        );
    }

    #[test]
    fn the_scope_says_what_is_served() {
        let all = Scope::default();
        assert_eq!(all.describe("Topic"), "Topic objects in all namespaces");
        let one = Scope {
            namespaces: vec!["data".into()],
            selector: None,
        };
        assert_eq!(one.describe("Stream"), "Stream objects in namespace data");
    }
}
