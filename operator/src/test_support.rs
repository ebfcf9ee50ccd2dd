//! Fixtures for the reconcile tests: a [`Context`] over a mock API server that checks every
//! request against a [`Scenario`] and answers it, an in-memory [`FakeKafka`], and the objects a
//! user would write (as YAML) with builders for the states a reconcile meets.

use std::collections::BTreeMap;
use std::fmt;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use http::{Method, Request, Response, StatusCode};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::Time;
use kube::client::Body;
use kube::runtime::reflector::store::Writer;
use kube::runtime::watcher;
use kube::{Resource, ResourceExt};
use rdkafka::error::{KafkaError, RDKafkaErrorCode};
use serde::Serialize;
use serde::de::DeserializeOwned;
use serde_json::{Value, json};
use tributary_crds::{
    DeletionPolicy, KafkaCluster, KafkaClusterStatus, Sink, SinkStatus, Topic, TopicStatus,
};
use tributary_workers::connect::KafkaConnection;

use crate::buckets::{BucketError, BucketState, Buckets};
use crate::context::{Context, Workers};
use crate::kafka_admin::{AdminError, ConfigValue, GroupLag, KafkaAdmin, KafkaAdmins, TopicState};

/// The resync interval of a test [`Context`].
pub const RESYNC: Duration = Duration::from_secs(300);

/// How long a scenario may take before the test fails instead of hanging.
const SCENARIO_TIMEOUT: Duration = Duration::from_secs(10);

type ApiServerHandle = tower_test::mock::Handle<Request<Body>, Response<Body>>;

impl Context {
    /// A context whose client talks to the returned mock API server, with `kafka` as the Kafka
    /// admin and an empty Topic store.
    pub fn test(kafka: FakeKafka) -> (Arc<Self>, ApiServer) {
        Self::test_with_topics(kafka, &[])
    }

    /// [`Context::test`] with `topics` in the Topic store, as the watcher would have put them.
    pub fn test_with_topics(kafka: FakeKafka, topics: &[Topic]) -> (Arc<Self>, ApiServer) {
        let (service, handle) = tower_test::mock::pair::<Request<Body>, Response<Body>>();
        let client = kube::Client::new(service, "default");
        let mut writer = Writer::<Topic>::default();
        for topic in topics {
            writer.apply_watcher_event(&watcher::Event::Apply(topic.clone()));
        }
        let ctx = Context::new(client, Arc::new(kafka), writer.as_reader(), RESYNC);
        (Arc::new(ctx), ApiServer(handle))
    }

    /// [`Context::test`] for Sinks: `buckets` as S3, and worker pods of [`IMAGE`] unless
    /// `image` is `None`.
    pub fn test_sinks(
        kafka: FakeKafka,
        buckets: FakeBuckets,
        image: Option<&str>,
    ) -> (Arc<Self>, ApiServer) {
        let (service, handle) = tower_test::mock::pair::<Request<Body>, Response<Body>>();
        let client = kube::Client::new(service, "default");
        let workers = Workers {
            image: image.map(str::to_owned),
            service_account: None,
        };
        let ctx = Context::new(
            client,
            Arc::new(kafka),
            Writer::default().as_reader(),
            RESYNC,
        )
        .with_buckets(Arc::new(buckets))
        .with_workers(workers, Default::default());
        (Arc::new(ctx), ApiServer(handle))
    }

    /// [`Context::test`] for Streams: `kinesis` as the Kinesis API.
    pub fn test_streams(
        kinesis: Arc<dyn crate::stream::kinesis::Kinesis>,
    ) -> (Arc<Self>, ApiServer) {
        let (service, handle) = tower_test::mock::pair::<Request<Body>, Response<Body>>();
        let client = kube::Client::new(service, "default");
        let ctx = Context::new(
            client,
            Arc::new(FakeKafka::default()),
            Writer::default().as_reader(),
            RESYNC,
        )
        .with_kinesis(kinesis);
        (Arc::new(ctx), ApiServer(handle))
    }

    /// [`Context::test`] for BatchJobs: worker pods of [`IMAGE`] unless `image` is `None`,
    /// the operator's region `eu-west-1`, and the clock standing at `now` (RFC 3339).
    pub fn test_batch_jobs(image: Option<&str>, now: &str) -> (Arc<Self>, ApiServer) {
        let (service, handle) = tower_test::mock::pair::<Request<Body>, Response<Body>>();
        let client = kube::Client::new(service, "default");
        let workers = Workers {
            image: image.map(str::to_owned),
            service_account: None,
        };
        let aws = tributary_workers::connect::AwsOptions {
            region: Some("eu-west-1".into()),
            endpoint_url: None,
        };
        let now: k8s_openapi::jiff::Timestamp = now.parse().expect("an RFC 3339 time");
        let ctx = Context::new(
            client,
            Arc::new(FakeKafka::default()),
            Writer::default().as_reader(),
            RESYNC,
        )
        .with_workers(workers, aws)
        .with_clock(Arc::new(move || now));
        (Arc::new(ctx), ApiServer(handle))
    }
}

/// The worker image of a [`Context::test_sinks`].
pub const IMAGE: &str = "ghcr.io/tributary-dev/tributary:test";

// ---------------------------------------------------------------------------------------------
// The mock API server

/// The API server side of a test [`Context`].
pub struct ApiServer(ApiServerHandle);

impl ApiServer {
    /// Answer the requests of `scenario` in order, checking each, then check that no further
    /// request arrives. Call [`Verifier::done`] after the reconcile returned.
    pub fn run(self, scenario: Scenario) -> Verifier {
        let mut handle = self.0;
        let task = tokio::spawn(async move {
            let expected = scenario.0.len();
            for (i, call) in scenario.0.into_iter().enumerate() {
                let Some((request, respond)) = handle.next_request().await else {
                    panic!(
                        "the reconcile made {i} of the {expected} expected API calls; \
                         missing: {call}"
                    );
                };
                let request = Seen::read(request).await;
                respond.send_response(call.answer(&request, i + 1));
            }
            // The client is dropped with the Context when the reconcile returns: then the mock
            // service closes and `None` arrives, unless another request came first.
            if let Some((request, _)) = handle.next_request().await {
                let request = Seen::read(request).await;
                panic!("an API call beyond the scenario: {request}");
            }
        });
        Verifier(task)
    }
}

/// The running scenario.
pub struct Verifier(tokio::task::JoinHandle<()>);

impl Verifier {
    /// Wait for the scenario to end, failing the test if a call was missing, unexpected or
    /// wrong. Every [`Context`] clone must be dropped first: that ends the client.
    pub async fn done(self) {
        match tokio::time::timeout(SCENARIO_TIMEOUT, self.0).await {
            Ok(Ok(())) => {}
            Ok(Err(error)) if error.is_panic() => std::panic::resume_unwind(error.into_panic()),
            Ok(Err(error)) => panic!("the scenario task failed: {error}"),
            Err(_) => panic!(
                "the scenario did not end within {SCENARIO_TIMEOUT:?}: a call is missing, \
                 or a Context (and so the client) is still alive"
            ),
        }
    }
}

/// The exact API calls one reconcile must make, in order.
pub struct Scenario(Vec<ApiCall>);

impl Scenario {
    /// These calls, in this order, and no other.
    pub fn calls(calls: impl IntoIterator<Item = ApiCall>) -> Self {
        Self(calls.into_iter().collect())
    }

    /// No API call at all.
    pub fn silence() -> Self {
        Self(Vec::new())
    }
}

/// A check of the `status` a status apply sends.
pub type StatusCheck = Box<dyn FnOnce(&Value) + Send>;

/// One API call a reconcile must make, with the answer the API server gives.
pub enum ApiCall {
    /// The finalizer helper adds `finalizer` with a JSON patch (`test` the list, then `add`);
    /// answered with the object carrying it.
    AddFinalizer {
        /// The object as the controller saw it.
        object: Value,
        /// Its URL.
        path: String,
        /// The finalizer.
        finalizer: &'static str,
    },
    /// The finalizer helper removes `finalizer` with a JSON patch (`test` its index, then
    /// `remove`); answered with the object without it.
    RemoveFinalizer {
        /// The object as the controller saw it.
        object: Value,
        /// Its URL.
        path: String,
        /// The finalizer.
        finalizer: &'static str,
    },
    /// A GET of an object: answered with `found`, or 404 when it is `None`.
    Get {
        /// The URL.
        path: String,
        /// The object, if it exists.
        found: Option<Value>,
    },
    /// A LIST of a collection with a label selector: answered with `items`.
    List {
        /// The collection's URL.
        path: String,
        /// The `labelSelector` the request must carry.
        selector: String,
        /// The objects listed.
        items: Vec<Value>,
    },
    /// A LIST of a collection with a label selector that RBAC does not allow: answered 403.
    ListForbidden {
        /// The collection's URL.
        path: String,
        /// The `labelSelector` the request must carry.
        selector: String,
    },
    /// A server-side apply of the status by `field_manager` (forced), with a `Ready` condition
    /// of this status and reason; `check` sees the applied `status`. Answered with the object
    /// carrying that status.
    ApplyStatus {
        /// The object as the controller saw it.
        object: Value,
        /// Its URL.
        path: String,
        /// The controller's field manager.
        field_manager: &'static str,
        /// `Ready`'s status.
        ready: bool,
        /// `Ready`'s reason.
        reason: &'static str,
        /// More checks of the status.
        check: Option<StatusCheck>,
    },
    /// A server-side apply of an object (not its status) by `field_manager` (forced);
    /// `check` sees the applied object. Answered with it, plus `status` if given.
    Apply {
        /// Its URL.
        path: String,
        /// The controller's field manager.
        field_manager: &'static str,
        /// More checks of the applied object.
        check: Option<StatusCheck>,
        /// The status the API server answers with.
        status: Option<Value>,
    },
    /// A DELETE of an object: answered as deleted, or 404 when `found` is false.
    Delete {
        /// Its URL.
        path: String,
        /// Whether it exists.
        found: bool,
    },
    /// A POST creating an object in a collection: answered with it (201), or 409
    /// AlreadyExists when `exists`; `check` sees the object sent.
    Create {
        /// The collection's URL.
        path: String,
        /// The object's name.
        name: String,
        /// Whether an object of that name exists already.
        exists: bool,
        /// More checks of the object sent.
        check: Option<StatusCheck>,
    },
    /// An `events.k8s.io/v1` Event repeating the last one of the same reason about an object:
    /// the recorder patches that Event's series.
    EventAgain {
        /// The events URL of the object's namespace.
        path: String,
        /// The reason.
        reason: &'static str,
    },
    /// An `events.k8s.io/v1` Event about an object, created with a POST.
    Event {
        /// The events URL of the object's namespace.
        path: String,
        /// Kind and name of the object it is about.
        regarding: (String, String),
        /// The reason.
        reason: &'static str,
        /// A Warning rather than Normal.
        warning: bool,
    },
}

impl ApiCall {
    /// The finalizer helper adds `finalizer` to `object`.
    pub fn add_finalizer<K: Fixture>(object: &K, finalizer: &'static str) -> Self {
        Self::AddFinalizer {
            object: to_value(object),
            path: object_path(object),
            finalizer,
        }
    }

    /// The finalizer helper removes `finalizer` from `object`.
    pub fn remove_finalizer<K: Fixture>(object: &K, finalizer: &'static str) -> Self {
        Self::RemoveFinalizer {
            object: to_value(object),
            path: object_path(object),
            finalizer,
        }
    }

    /// A GET of `object`, which exists.
    pub fn get<K: Fixture>(object: &K) -> Self {
        Self::Get {
            path: object_path(object),
            found: Some(to_value(object)),
        }
    }

    /// A GET of the `K` named `name` in `namespace`, which does not exist.
    pub fn get_missing<K: Resource<DynamicType = ()>>(namespace: &str, name: &str) -> Self {
        Self::Get {
            path: format!("{}/{name}", K::url_path(&(), Some(namespace))),
            found: None,
        }
    }

    /// A LIST of the `K`s in `namespace` with the label selector `selector`, answered with
    /// `items`.
    pub fn list<K: Resource<DynamicType = ()>, T: Serialize>(
        namespace: &str,
        selector: &str,
        items: &[T],
    ) -> Self {
        Self::List {
            path: K::url_path(&(), Some(namespace)),
            selector: selector.to_owned(),
            items: items.iter().map(to_value).collect(),
        }
    }

    /// A LIST of the `K`s in `namespace` with the label selector `selector`, which RBAC
    /// forbids.
    pub fn list_forbidden<K: Resource<DynamicType = ()>>(namespace: &str, selector: &str) -> Self {
        Self::ListForbidden {
            path: K::url_path(&(), Some(namespace)),
            selector: selector.to_owned(),
        }
    }

    /// A status apply on `object` by `field_manager` with `Ready` as given.
    pub fn apply_status<K: Fixture>(
        object: &K,
        field_manager: &'static str,
        ready: bool,
        reason: &'static str,
    ) -> Self {
        Self::ApplyStatus {
            object: to_value(object),
            path: format!("{}/status", object_path(object)),
            field_manager,
            ready,
            reason,
            check: None,
        }
    }

    /// More checks of the status a status apply sends.
    pub fn with_status(mut self, more: impl FnOnce(&Value) + Send + 'static) -> Self {
        match &mut self {
            Self::ApplyStatus { check, .. } => *check = Some(Box::new(more)),
            other => panic!("with_status is for status applies, not {other}"),
        }
        self
    }

    /// A server-side apply by `field_manager` of the `K` named `name` in `namespace`.
    pub fn apply<K: Resource<DynamicType = ()>>(
        namespace: &str,
        name: &str,
        field_manager: &'static str,
    ) -> Self {
        Self::Apply {
            path: format!("{}/{name}", K::url_path(&(), Some(namespace))),
            field_manager,
            check: None,
            status: None,
        }
    }

    /// More checks of the object an apply sends.
    pub fn with_object(mut self, more: impl FnOnce(&Value) + Send + 'static) -> Self {
        match &mut self {
            Self::Apply { check, .. } => *check = Some(Box::new(more)),
            other => panic!("with_object is for applies, not {other}"),
        }
        self
    }

    /// The API server answers an apply with this status of the object (YAML).
    pub fn answering_status(mut self, yaml: &str) -> Self {
        match &mut self {
            Self::Apply { status, .. } => *status = Some(from_yaml(yaml)),
            other => panic!("answering_status is for applies, not {other}"),
        }
        self
    }

    /// A DELETE of the `K` named `name` in `namespace`, which exists unless `found` is false.
    pub fn delete<K: Resource<DynamicType = ()>>(namespace: &str, name: &str, found: bool) -> Self {
        Self::Delete {
            path: format!("{}/{name}", K::url_path(&(), Some(namespace))),
            found,
        }
    }

    /// A POST creating the `K` named `name` in `namespace`, which exists already if `exists`.
    pub fn create<K: Resource<DynamicType = ()>>(
        namespace: &str,
        name: &str,
        exists: bool,
    ) -> Self {
        Self::Create {
            path: K::url_path(&(), Some(namespace)),
            name: name.to_owned(),
            exists,
            check: None,
        }
    }

    /// More checks of the object a create sends.
    pub fn with_created(mut self, more: impl FnOnce(&Value) + Send + 'static) -> Self {
        match &mut self {
            Self::Create { check, .. } => *check = Some(Box::new(more)),
            other => panic!("with_created is for creates, not {other}"),
        }
        self
    }

    /// A Normal Event about `object` with `reason`.
    pub fn event<K: Fixture>(object: &K, reason: &'static str) -> Self {
        Self::event_of(object, reason, false)
    }

    /// A Warning Event about `object` with `reason`.
    pub fn warning<K: Fixture>(object: &K, reason: &'static str) -> Self {
        Self::event_of(object, reason, true)
    }

    /// The same Event as the last one with `reason` about `object` again (a series patch).
    pub fn event_again<K: Fixture>(object: &K, reason: &'static str) -> Self {
        Self::EventAgain {
            path: format!(
                "/apis/events.k8s.io/v1/namespaces/{}/events/",
                object.namespace().unwrap_or_default()
            ),
            reason,
        }
    }

    fn event_of<K: Fixture>(object: &K, reason: &'static str, warning: bool) -> Self {
        Self::Event {
            path: format!(
                "/apis/events.k8s.io/v1/namespaces/{}/events",
                object.namespace().unwrap_or_default()
            ),
            regarding: (K::kind(&()).into_owned(), object.name_any()),
            reason,
            warning,
        }
    }

    /// Check `request` (the `n`th of the scenario) against this call and answer it.
    fn answer(self, request: &Seen, n: usize) -> Response<Body> {
        let expected = self.to_string();
        macro_rules! fail {
            ($($what:tt)*) => {
                panic!("API call {n}: {}\n  expected: {expected}\n  got: {request}", format!($($what)*))
            };
        }
        let (method, path) = self.method_and_path();
        let same_path = match &self {
            // The series' Event has a generated name.
            Self::EventAgain { path, .. } => request.path.starts_with(path.as_str()),
            _ => request.path == path,
        };
        if request.method != method || !same_path {
            fail!("another request");
        }
        match self {
            Self::AddFinalizer {
                object, finalizer, ..
            } => {
                if request.content_type.as_deref() != Some("application/json-patch+json") {
                    fail!("a content type other than application/json-patch+json");
                }
                let current = object["metadata"]["finalizers"].clone();
                let wanted = match current.as_array().filter(|f| !f.is_empty()) {
                    None => json!([
                        {"op": "test", "path": "/metadata/finalizers", "value": null},
                        {"op": "add", "path": "/metadata/finalizers", "value": [finalizer]},
                    ]),
                    Some(_) => json!([
                        {"op": "test", "path": "/metadata/finalizers", "value": current},
                        {"op": "add", "path": "/metadata/finalizers/-", "value": finalizer},
                    ]),
                };
                if request.body != wanted {
                    fail!("another JSON patch than {wanted}");
                }
                let mut answer = object;
                let finalizers = answer["metadata"]["finalizers"].take();
                let mut finalizers: Vec<Value> =
                    serde_json::from_value(finalizers).unwrap_or_default();
                finalizers.push(finalizer.into());
                answer["metadata"]["finalizers"] = finalizers.into();
                respond(StatusCode::OK, &answer)
            }
            Self::RemoveFinalizer {
                object, finalizer, ..
            } => {
                if request.content_type.as_deref() != Some("application/json-patch+json") {
                    fail!("a content type other than application/json-patch+json");
                }
                let finalizers = object["metadata"]["finalizers"]
                    .as_array()
                    .cloned()
                    .unwrap_or_default();
                let Some(index) = finalizers.iter().position(|f| f == finalizer) else {
                    fail!("the fixture has no finalizer {finalizer}");
                };
                let at = format!("/metadata/finalizers/{index}");
                let wanted = json!([
                    {"op": "test", "path": at, "value": finalizer},
                    {"op": "remove", "path": at},
                ]);
                if request.body != wanted {
                    fail!("another JSON patch than {wanted}");
                }
                let mut answer = object;
                answer["metadata"]["finalizers"] = finalizers
                    .into_iter()
                    .filter(|f| f != finalizer)
                    .collect::<Vec<_>>()
                    .into();
                respond(StatusCode::OK, &answer)
            }
            Self::Get { found, path } => match found {
                Some(object) => respond(StatusCode::OK, &object),
                None => respond(StatusCode::NOT_FOUND, &not_found(&path)),
            },
            Self::List {
                selector, items, ..
            } => {
                let query = request.query();
                let asked = query.get("labelSelector").map(|s| decode(s));
                if asked.as_deref() != Some(selector.as_str()) {
                    fail!("another labelSelector than {selector}");
                }
                let list = json!({
                    "kind": "List",
                    "apiVersion": "v1",
                    "metadata": {"resourceVersion": "1"},
                    "items": items,
                });
                respond(StatusCode::OK, &list)
            }
            Self::ListForbidden { path, selector } => {
                let query = request.query();
                let asked = query.get("labelSelector").map(|s| decode(s));
                if asked.as_deref() != Some(selector.as_str()) {
                    fail!("another labelSelector than {selector}");
                }
                respond(StatusCode::FORBIDDEN, &forbidden(&path))
            }
            Self::ApplyStatus {
                object,
                field_manager,
                ready,
                reason,
                check,
                ..
            } => {
                if request.content_type.as_deref() != Some("application/apply-patch+yaml") {
                    fail!("a content type other than application/apply-patch+yaml");
                }
                let query = request.query();
                if query.get("fieldManager").map(String::as_str) != Some(field_manager)
                    || query.get("force").map(String::as_str) != Some("true")
                {
                    fail!("another query than fieldManager={field_manager}&force=true");
                }
                for key in ["apiVersion", "kind"] {
                    if request.body[key] != object[key] {
                        fail!("an apply without {key} {}", object[key]);
                    }
                }
                let status = &request.body["status"];
                let condition = status["conditions"]
                    .as_array()
                    .and_then(|c| c.iter().find(|c| c["type"] == "Ready"));
                let Some(condition) = condition else {
                    fail!("a status without a Ready condition");
                };
                let wanted = if ready { "True" } else { "False" };
                if condition["status"] != wanted || condition["reason"] != reason {
                    let field = |key: &str| condition[key].as_str().unwrap_or_default();
                    fail!(
                        "Ready={} reason={} instead of Ready={wanted} reason={reason}",
                        field("status"),
                        field("reason")
                    );
                }
                if let Some(check) = check {
                    check(status);
                }
                let mut answer = object;
                answer["status"] = status.clone();
                respond(StatusCode::OK, &answer)
            }
            Self::Apply {
                field_manager,
                check,
                status,
                ..
            } => {
                if request.content_type.as_deref() != Some("application/apply-patch+yaml") {
                    fail!("a content type other than application/apply-patch+yaml");
                }
                let query = request.query();
                if query.get("fieldManager").map(String::as_str) != Some(field_manager)
                    || query.get("force").map(String::as_str) != Some("true")
                {
                    fail!("another query than fieldManager={field_manager}&force=true");
                }
                if let Some(check) = check {
                    check(&request.body);
                }
                let mut answer = request.body.clone();
                if let Some(status) = status {
                    answer["status"] = status;
                }
                respond(StatusCode::OK, &answer)
            }
            Self::Create {
                path,
                name,
                exists,
                check,
            } => {
                if request.body["metadata"]["name"] != name.as_str() {
                    fail!("another object than {name}");
                }
                if let Some(check) = check {
                    check(&request.body);
                }
                if exists {
                    let status = json!({
                        "kind": "Status",
                        "apiVersion": "v1",
                        "metadata": {},
                        "status": "Failure",
                        "message": format!("{path}/{name} already exists"),
                        "reason": "AlreadyExists",
                        "details": {"name": name},
                        "code": 409,
                    });
                    respond(StatusCode::CONFLICT, &status)
                } else {
                    let mut created = request.body.clone();
                    created["metadata"]["uid"] = json!(format!("uid-of-{name}"));
                    created["metadata"]["creationTimestamp"] = json!("2025-01-01T00:00:00Z");
                    respond(StatusCode::CREATED, &created)
                }
            }
            Self::Delete { path, found } => {
                if request.body["propagationPolicy"] != "Background" && path.contains("/jobs/") {
                    fail!("a Job delete without propagationPolicy Background");
                }
                if found {
                    let status = json!({"kind": "Status", "apiVersion": "v1", "status": "Success", "code": 200});
                    respond(StatusCode::OK, &status)
                } else {
                    respond(StatusCode::NOT_FOUND, &not_found(&path))
                }
            }
            Self::EventAgain { reason, .. } => {
                let body = &request.body;
                if body["reason"] != reason || body["series"].is_null() {
                    fail!("another Event series");
                }
                respond(StatusCode::OK, body)
            }
            Self::Event {
                regarding,
                reason,
                warning,
                ..
            } => {
                let body = &request.body;
                let type_ = if warning { "Warning" } else { "Normal" };
                if body["apiVersion"] != "events.k8s.io/v1"
                    || body["reason"] != reason
                    || body["type"] != type_
                    || body["regarding"]["kind"] != regarding.0
                    || body["regarding"]["name"] != regarding.1
                {
                    fail!("another Event");
                }
                respond(StatusCode::CREATED, body)
            }
        }
    }

    fn method_and_path(&self) -> (Method, &str) {
        match self {
            Self::AddFinalizer { path, .. }
            | Self::RemoveFinalizer { path, .. }
            | Self::ApplyStatus { path, .. }
            | Self::Apply { path, .. }
            | Self::EventAgain { path, .. } => (Method::PATCH, path),
            Self::Get { path, .. } | Self::List { path, .. } | Self::ListForbidden { path, .. } => {
                (Method::GET, path)
            }
            Self::Delete { path, .. } => (Method::DELETE, path),
            Self::Create { path, .. } | Self::Event { path, .. } => (Method::POST, path),
        }
    }
}

impl fmt::Display for ApiCall {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let (method, path) = self.method_and_path();
        write!(f, "{method} {path} ")?;
        match self {
            Self::AddFinalizer { finalizer, .. } => write!(f, "(add finalizer {finalizer})"),
            Self::RemoveFinalizer { finalizer, .. } => {
                write!(f, "(remove finalizer {finalizer})")
            }
            Self::Get { found: Some(_), .. } => write!(f, "(found)"),
            Self::Get { found: None, .. } => write!(f, "(404)"),
            Self::List {
                selector, items, ..
            } => write!(f, "(list {selector}: {} found)", items.len()),
            Self::ListForbidden { selector, .. } => write!(f, "(list {selector}: 403)"),
            Self::Apply { field_manager, .. } => write!(f, "(apply by {field_manager})"),
            Self::Create { name, exists, .. } => write!(
                f,
                "(create {name}{})",
                if *exists { ": 409 AlreadyExists" } else { "" }
            ),
            Self::Delete { found: true, .. } => write!(f, "(deleted)"),
            Self::Delete { found: false, .. } => write!(f, "(404)"),
            Self::ApplyStatus {
                field_manager,
                ready,
                reason,
                ..
            } => write!(
                f,
                "(status apply by {field_manager}: Ready={} reason={reason})",
                if *ready { "True" } else { "False" }
            ),
            Self::EventAgain { reason, .. } => write!(f, "(Event {reason} again)"),
            Self::Event {
                regarding,
                reason,
                warning,
                ..
            } => write!(
                f,
                "({} Event {reason} about {} {})",
                if *warning { "Warning" } else { "Normal" },
                regarding.0,
                regarding.1
            ),
        }
    }
}

/// A request as the mock API server received it.
struct Seen {
    method: Method,
    path: String,
    query: Option<String>,
    content_type: Option<String>,
    body: Value,
}

impl Seen {
    async fn read(request: Request<Body>) -> Self {
        let (parts, body) = request.into_parts();
        let bytes = body.collect_bytes().await.expect("a request body");
        let body = if bytes.is_empty() {
            Value::Null
        } else {
            serde_json::from_slice(&bytes).expect("a JSON request body")
        };
        Self {
            method: parts.method,
            path: parts.uri.path().to_owned(),
            query: parts.uri.query().map(str::to_owned),
            content_type: parts
                .headers
                .get(http::header::CONTENT_TYPE)
                .and_then(|v| v.to_str().ok())
                .map(str::to_owned),
            body,
        }
    }

    fn query(&self) -> BTreeMap<String, String> {
        self.query
            .as_deref()
            .unwrap_or_default()
            .split('&')
            .filter_map(|pair| pair.split_once('='))
            .map(|(k, v)| (k.to_owned(), v.to_owned()))
            .collect()
    }
}

impl fmt::Display for Seen {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} {}", self.method, self.path)?;
        if let Some(query) = &self.query {
            write!(f, "?{query}")?;
        }
        if !self.body.is_null() {
            write!(f, " {}", self.body)?;
        }
        Ok(())
    }
}

/// A query string value as sent: `%XX` escapes decoded.
fn decode(value: &str) -> String {
    let bytes = value.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        match (bytes[i], bytes.get(i + 1..i + 3)) {
            (b'%', Some(hex)) => {
                let hex = std::str::from_utf8(hex).expect("an escape");
                out.push(u8::from_str_radix(hex, 16).expect("a hex escape"));
                i += 3;
            }
            (b'+', _) => {
                out.push(b' ');
                i += 1;
            }
            (b, _) => {
                out.push(b);
                i += 1;
            }
        }
    }
    String::from_utf8(out).expect("UTF-8")
}

fn respond(status: StatusCode, body: &Value) -> Response<Body> {
    Response::builder()
        .status(status)
        .header(http::header::CONTENT_TYPE, "application/json")
        .body(Body::from(serde_json::to_vec(body).expect("JSON")))
        .expect("a response")
}

/// The API server's answer for a missing object.
fn not_found(path: &str) -> Value {
    let name = path.rsplit('/').next().unwrap_or_default();
    json!({
        "kind": "Status",
        "apiVersion": "v1",
        "metadata": {},
        "status": "Failure",
        "message": format!("{name:?} not found"),
        "reason": "NotFound",
        "details": {"name": name},
        "code": 404,
    })
}

/// The API server's answer for a request RBAC does not allow.
fn forbidden(path: &str) -> Value {
    json!({
        "kind": "Status",
        "apiVersion": "v1",
        "metadata": {},
        "status": "Failure",
        "message": format!("forbidden: the operator cannot list {path}"),
        "reason": "Forbidden",
        "code": 403,
    })
}

fn object_path<K: Fixture>(object: &K) -> String {
    format!(
        "{}/{}",
        K::url_path(&(), object.namespace().as_deref()),
        object.name_any()
    )
}

fn to_value<K: Serialize>(object: &K) -> Value {
    serde_json::to_value(object).expect("a resource serializes")
}

// ---------------------------------------------------------------------------------------------
// Fixtures

const TOPIC: &str = r#"
apiVersion: tributary.dev/v1alpha1
kind: Topic
metadata:
  name: orders
  namespace: demo
  uid: 7f0c0e1a-0000-4000-8000-000000000001
  generation: 1
  resourceVersion: "100"
  creationTimestamp: "2025-01-01T00:00:00Z"
spec:
  clusterRef: {name: local}
  partitions: 3
  config:
    retention.ms: 604800000
    cleanup.policy: delete
"#;

const CLUSTER: &str = r#"
apiVersion: tributary.dev/v1alpha1
kind: KafkaCluster
metadata:
  name: local
  namespace: demo
  uid: 7f0c0e1a-0000-4000-8000-0000000000c1
  generation: 1
  resourceVersion: "10"
  creationTimestamp: "2025-01-01T00:00:00Z"
spec:
  external:
    bootstrapServers: [kafka-0.kafka.demo:9092, kafka-1.kafka.demo:9092]
"#;

const SINK: &str = r#"
apiVersion: tributary.dev/v1alpha1
kind: Sink
metadata:
  name: raw-orders
  namespace: demo
  uid: 7f0c0e1a-0000-4000-8000-0000000000a1
  generation: 1
  resourceVersion: "200"
  creationTimestamp: "2025-01-01T00:00:00Z"
spec:
  source: {topicRef: {name: orders}}
  destination: {url: "s3://lake/raw/orders", createBucket: true}
  batch: {maxAge: 30s}
  partitioning: {path: "dt={time:%Y-%m-%d}"}
  parallelism: 2
  resources:
    limits: {memory: 512Mi}
"#;

const BATCH_JOB: &str = r#"
apiVersion: tributary.dev/v1alpha1
kind: BatchJob
metadata:
  name: daily
  namespace: demo
  uid: 7f0c0e1a-0000-4000-8000-0000000000b1
  generation: 1
  resourceVersion: "300"
  creationTimestamp: "2025-01-01T00:00:00Z"
spec:
  schedule: "0 2 * * *"
  inputs:
    - name: pin
      url: s3://lake/clean/pin/
      format: Parquet
  steps:
    - name: top
      sql: SELECT category, count(*) AS n FROM pin GROUP BY category
      output:
        url: s3://lake/results/top/
        partitionBy: [category]
  activeDeadlineSeconds: 3600
  resources:
    limits: {memory: 1Gi}
"#;

/// A BatchJob `demo/daily` running one SQL step at 02:00 UTC every day, created at
/// 2025-01-01T00:00:00Z, as a user would apply it: no status.
pub fn batch_job() -> tributary_crds::BatchJob {
    from_yaml(BATCH_JOB)
}

/// A Sink `demo/raw-orders` of the Topic `orders` into `s3://lake/raw/orders` (created if
/// missing) with two workers, as a user would apply it: no finalizer, no status.
pub fn sink() -> Sink {
    from_yaml(SINK)
}

/// A Topic `demo/orders` of 3 partitions with two configs on the KafkaCluster `local`, as a
/// user would apply it: no finalizer, no status.
pub fn topic() -> Topic {
    from_yaml(TOPIC)
}

/// An external KafkaCluster `demo/local` as a user would apply it: no status.
pub fn cluster() -> KafkaCluster {
    from_yaml(CLUSTER)
}

/// Parse a fixture (or a part of one) from YAML.
pub fn from_yaml<T: DeserializeOwned>(yaml: &str) -> T {
    serde_yaml::from_str(yaml).unwrap_or_else(|e| panic!("fixture YAML: {e}\n{yaml}"))
}

/// Builders for the metadata of any fixture.
pub trait Fixture: Resource<DynamicType = ()> + Serialize + Sized {
    /// With `finalizer` (appended).
    fn with_finalizer(mut self, finalizer: &str) -> Self {
        self.finalizers_mut().push(finalizer.into());
        self
    }

    /// Marked for deletion (the API server waits for the finalizers).
    fn deleting(mut self) -> Self {
        self.meta_mut().deletion_timestamp = Some(time("2025-01-03T00:00:00Z"));
        self
    }

    /// With `tributary.dev/paused: "true"`.
    fn paused(mut self) -> Self {
        self.annotations_mut()
            .insert(crate::reconciler::PAUSED.into(), "true".into());
        self
    }

    /// Another object: `name`, `uid`, created at `created` (RFC 3339).
    fn another(mut self, name: &str, uid: &str, created: &str) -> Self {
        let meta = self.meta_mut();
        meta.name = Some(name.into());
        meta.uid = Some(uid.into());
        meta.creation_timestamp = Some(time(created));
        self
    }
}

impl<K: Resource<DynamicType = ()> + Serialize> Fixture for K {}

fn time(rfc3339: &str) -> Time {
    Time(rfc3339.parse().expect("an RFC 3339 time"))
}

/// Builders for Topics.
pub trait TopicFixture {
    /// With the Topic controller's finalizer.
    fn finalized(self) -> Self;
    /// With this `deletionPolicy`.
    fn deletion_policy(self, policy: DeletionPolicy) -> Self;
    /// With this status (YAML).
    fn status(self, yaml: &str) -> Self;
}

impl TopicFixture for Topic {
    fn finalized(self) -> Self {
        self.with_finalizer(crate::topic::FINALIZER)
    }

    fn deletion_policy(mut self, policy: DeletionPolicy) -> Self {
        self.spec.deletion_policy = policy;
        self
    }

    fn status(mut self, yaml: &str) -> Self {
        self.status = Some(from_yaml::<TopicStatus>(yaml));
        self
    }
}

/// Builders for Sinks.
pub trait SinkFixture {
    /// With `deletionPolicy: Delete` and the Sink controller's finalizer.
    fn deleting_group(self) -> Self;
    /// With this status (YAML).
    fn status(self, yaml: &str) -> Self;
}

impl SinkFixture for Sink {
    fn deleting_group(mut self) -> Self {
        self.spec.deletion_policy = DeletionPolicy::Delete;
        self.with_finalizer(crate::sink::FINALIZER)
    }

    fn status(mut self, yaml: &str) -> Self {
        self.status = Some(from_yaml::<SinkStatus>(yaml));
        self
    }
}

/// Builders for KafkaClusters.
pub trait ClusterFixture {
    /// `Ready=True` as the KafkaCluster controller reports a connected cluster.
    fn ready(self) -> Self;
    /// With this status (YAML).
    fn status(self, yaml: &str) -> Self;
}

impl ClusterFixture for KafkaCluster {
    fn ready(self) -> Self {
        self.status(
            r#"
observedGeneration: 1
bootstrapServers: kafka-0.kafka.demo:9092,kafka-1.kafka.demo:9092
brokerCount: 3
conditions:
- type: Ready
  status: "True"
  reason: Connected
  message: 3 broker(s) answered a metadata request
  observedGeneration: 1
  lastTransitionTime: "2025-01-01T00:01:00Z"
"#,
        )
    }

    fn status(mut self, yaml: &str) -> Self {
        self.status = Some(from_yaml::<KafkaClusterStatus>(yaml));
        self
    }
}

// ---------------------------------------------------------------------------------------------
// Kafka in memory

/// An administrative operation, to make [`FakeKafka`] fail it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Op {
    /// [`KafkaAdmin::broker_count`].
    BrokerCount,
    /// [`KafkaAdmin::describe_topic`].
    Describe,
    /// [`KafkaAdmin::create_topic`].
    Create,
    /// [`KafkaAdmin::create_partitions`].
    CreatePartitions,
    /// [`KafkaAdmin::set_dynamic_configs`].
    SetConfigs,
    /// [`KafkaAdmin::delete_topic`].
    Delete,
    /// [`KafkaAdmin::group_lag`].
    GroupLag,
    /// [`KafkaAdmin::delete_group`].
    DeleteGroup,
}

/// One call a controller made on [`FakeKafka`].
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum AdminCall {
    /// The metadata request.
    BrokerCount,
    /// Describe a topic.
    Describe(String),
    /// Create a topic.
    Create {
        /// The topic.
        topic: String,
        /// Partitions.
        partitions: i32,
        /// Replication factor, `None` for the broker's default.
        replication_factor: Option<i32>,
        /// Configs.
        configs: BTreeMap<String, String>,
    },
    /// Raise the partition count.
    CreatePartitions {
        /// The topic.
        topic: String,
        /// The new total.
        total: i32,
    },
    /// Replace the topic-level overrides.
    SetConfigs {
        /// The topic.
        topic: String,
        /// The complete set.
        configs: BTreeMap<String, String>,
    },
    /// Delete a topic.
    Delete(String),
    /// Read a consumer group's lag on a topic.
    GroupLag {
        /// The consumer group.
        group: String,
        /// The topic.
        topic: String,
    },
    /// Delete a consumer group.
    DeleteGroup(String),
}

impl AdminCall {
    fn op(&self) -> Op {
        match self {
            Self::BrokerCount => Op::BrokerCount,
            Self::Describe(_) => Op::Describe,
            Self::Create { .. } => Op::Create,
            Self::CreatePartitions { .. } => Op::CreatePartitions,
            Self::SetConfigs { .. } => Op::SetConfigs,
            Self::Delete(_) => Op::Delete,
            Self::GroupLag { .. } => Op::GroupLag,
            Self::DeleteGroup(_) => Op::DeleteGroup,
        }
    }
}

/// The broker default of a created topic's replication factor.
const DEFAULT_REPLICATION_FACTOR: i32 = 3;

#[derive(Default)]
struct KafkaState {
    brokers: usize,
    topics: BTreeMap<String, TopicState>,
    /// Consumer groups: their lag by topic.
    groups: BTreeMap<String, BTreeMap<String, GroupLag>>,
    failing: Vec<Op>,
    calls: Vec<AdminCall>,
    connections: Vec<KafkaConnection>,
}

/// A Kafka cluster in memory, serving as both [`KafkaAdmins`] and [`KafkaAdmin`]: it records
/// every call and fails the operations it is told to. Clones share the cluster.
#[derive(Clone)]
pub struct FakeKafka(Arc<Mutex<KafkaState>>);

impl Default for FakeKafka {
    fn default() -> Self {
        Self(Arc::new(Mutex::new(KafkaState {
            brokers: 3,
            ..KafkaState::default()
        })))
    }
}

impl FakeKafka {
    /// With `topic` as Kafka has it.
    pub fn with_topic(self, topic: &str, state: TopicState) -> Self {
        self.state().topics.insert(topic.into(), state);
        self
    }

    /// With the consumer group `group` at `lag` on `topic`.
    pub fn with_group_lag(self, group: &str, topic: &str, lag: GroupLag) -> Self {
        self.state()
            .groups
            .entry(group.into())
            .or_default()
            .insert(topic.into(), lag);
        self
    }

    /// Whether the consumer group `group` exists.
    pub fn has_group(&self, group: &str) -> bool {
        self.state().groups.contains_key(group)
    }

    /// Failing every `op` with a broker error.
    pub fn failing(self, op: Op) -> Self {
        self.state().failing.push(op);
        self
    }

    /// The calls made so far, in order.
    pub fn calls(&self) -> Vec<AdminCall> {
        self.state().calls.clone()
    }

    /// The topic as Kafka has it now.
    pub fn topic(&self, topic: &str) -> Option<TopicState> {
        self.state().topics.get(topic).cloned()
    }

    /// The connections admin clients were asked for, in order.
    pub fn connections(&self) -> Vec<KafkaConnection> {
        self.state().connections.clone()
    }

    fn state(&self) -> std::sync::MutexGuard<'_, KafkaState> {
        self.0.lock().expect("fake Kafka lock")
    }

    /// Record `call`; fail it if told to.
    fn call(&self, call: AdminCall) -> Result<std::sync::MutexGuard<'_, KafkaState>, AdminError> {
        let mut state = self.state();
        let op = call.op();
        state.calls.push(call);
        if state.failing.contains(&op) {
            return Err(AdminError::Kafka {
                operation: "fake",
                source: KafkaError::AdminOp(RDKafkaErrorCode::BrokerTransportFailure),
            });
        }
        Ok(state)
    }
}

/// A topic as Kafka has it: `dynamic` are its topic-level overrides, `defaults` inherited values.
pub fn kafka_topic(
    partitions: i32,
    replication_factor: i32,
    dynamic: &[(&str, &str)],
    defaults: &[(&str, &str)],
) -> TopicState {
    let value = |dynamic: bool| {
        move |(k, v): &(&str, &str)| {
            let config = ConfigValue {
                value: Some((*v).to_owned()),
                dynamic,
            };
            ((*k).to_owned(), config)
        }
    };
    let mut configs: BTreeMap<String, ConfigValue> = defaults.iter().map(value(false)).collect();
    configs.extend(dynamic.iter().map(value(true)));
    TopicState {
        partitions,
        replication_factor,
        configs,
    }
}

/// String pairs as a map.
pub fn map(pairs: &[(&str, &str)]) -> BTreeMap<String, String> {
    pairs
        .iter()
        .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
        .collect()
}

impl KafkaAdmins for FakeKafka {
    fn admin(&self, connection: &KafkaConnection) -> Result<Arc<dyn KafkaAdmin>, AdminError> {
        self.state().connections.push(connection.clone());
        Ok(Arc::new(self.clone()))
    }
}

#[async_trait::async_trait]
impl KafkaAdmin for FakeKafka {
    async fn broker_count(&self) -> Result<usize, AdminError> {
        Ok(self.call(AdminCall::BrokerCount)?.brokers)
    }

    async fn describe_topic(&self, topic: &str) -> Result<Option<TopicState>, AdminError> {
        Ok(self
            .call(AdminCall::Describe(topic.into()))?
            .topics
            .get(topic)
            .cloned())
    }

    async fn create_topic(
        &self,
        topic: &str,
        partitions: i32,
        replication_factor: Option<i32>,
        configs: &BTreeMap<String, String>,
    ) -> Result<(), AdminError> {
        let mut state = self.call(AdminCall::Create {
            topic: topic.into(),
            partitions,
            replication_factor,
            configs: configs.clone(),
        })?;
        let dynamic: Vec<(&str, &str)> = configs
            .iter()
            .map(|(k, v)| (k.as_str(), v.as_str()))
            .collect();
        let created = kafka_topic(
            partitions,
            replication_factor.unwrap_or(DEFAULT_REPLICATION_FACTOR),
            &dynamic,
            &[],
        );
        state.topics.entry(topic.into()).or_insert(created);
        Ok(())
    }

    async fn create_partitions(&self, topic: &str, total: i32) -> Result<(), AdminError> {
        let mut state = self.call(AdminCall::CreatePartitions {
            topic: topic.into(),
            total,
        })?;
        if let Some(t) = state.topics.get_mut(topic) {
            t.partitions = total;
        }
        Ok(())
    }

    async fn set_dynamic_configs(
        &self,
        topic: &str,
        dynamic: &BTreeMap<String, String>,
    ) -> Result<(), AdminError> {
        let mut state = self.call(AdminCall::SetConfigs {
            topic: topic.into(),
            configs: dynamic.clone(),
        })?;
        if let Some(t) = state.topics.get_mut(topic) {
            t.configs.retain(|_, c| !c.dynamic);
            for (k, v) in dynamic {
                let config = ConfigValue {
                    value: Some(v.clone()),
                    dynamic: true,
                };
                t.configs.insert(k.clone(), config);
            }
        }
        Ok(())
    }

    async fn delete_topic(&self, topic: &str) -> Result<(), AdminError> {
        self.call(AdminCall::Delete(topic.into()))?
            .topics
            .remove(topic);
        Ok(())
    }

    /// The lag set with [`FakeKafka::with_group_lag`]; a group without commits on a topic
    /// Kafka has lags by everything in it (3 records per partition here).
    async fn group_lag(&self, group: &str, topic: &str) -> Result<GroupLag, AdminError> {
        let state = self.call(AdminCall::GroupLag {
            group: group.into(),
            topic: topic.into(),
        })?;
        if let Some(lag) = state.groups.get(group).and_then(|g| g.get(topic)) {
            return Ok(lag.clone());
        }
        match state.topics.get(topic) {
            Some(t) => Ok(GroupLag::from_offsets((0..t.partitions).map(|partition| {
                crate::kafka_admin::PartitionOffsets {
                    partition,
                    low: 0,
                    high: 3,
                    committed: None,
                }
            }))),
            None => Err(AdminError::Topic {
                operation: "group lag",
                topic: topic.into(),
                code: RDKafkaErrorCode::UnknownTopicOrPartition,
            }),
        }
    }

    async fn delete_group(&self, group: &str) -> Result<(), AdminError> {
        self.call(AdminCall::DeleteGroup(group.into()))?
            .groups
            .remove(group);
        Ok(())
    }
}

// ---------------------------------------------------------------------------------------------
// S3 in memory

#[derive(Default)]
struct BucketsState {
    buckets: std::collections::BTreeSet<String>,
    failing: bool,
    calls: Vec<(String, bool)>,
    leases: std::collections::BTreeMap<
        (String, String),
        Vec<tributary_workers::sink::kinesis_leases::Lease>,
    >,
}

/// S3 buckets in memory: records every `ensure_bucket` as (bucket, create), and fails them all
/// when told to. Clones share the buckets.
#[derive(Clone, Default)]
pub struct FakeBuckets(Arc<Mutex<BucketsState>>);

impl FakeBuckets {
    /// With `bucket` existing.
    pub fn with_bucket(self, bucket: &str) -> Self {
        self.state().buckets.insert(bucket.into());
        self
    }

    /// With `leases` under `prefix` of `bucket`.
    pub fn with_leases(
        self,
        bucket: &str,
        prefix: &str,
        leases: Vec<tributary_workers::sink::kinesis_leases::Lease>,
    ) -> Self {
        self.state()
            .leases
            .insert((bucket.into(), prefix.into()), leases);
        self
    }

    /// Failing every call.
    pub fn failing(self) -> Self {
        self.state().failing = true;
        self
    }

    /// Whether `bucket` exists.
    pub fn exists(&self, bucket: &str) -> bool {
        self.state().buckets.contains(bucket)
    }

    /// The calls so far: (bucket, create).
    pub fn calls(&self) -> Vec<(String, bool)> {
        self.state().calls.clone()
    }

    fn state(&self) -> std::sync::MutexGuard<'_, BucketsState> {
        self.0.lock().expect("fake S3 lock")
    }
}

#[async_trait::async_trait]
impl Buckets for FakeBuckets {
    async fn ensure_bucket(
        &self,
        _region: Option<&str>,
        bucket: &str,
        create: bool,
    ) -> Result<BucketState, BucketError> {
        let mut state = self.state();
        state.calls.push((bucket.into(), create));
        if state.failing {
            return Err(BucketError {
                operation: "HeadBucket",
                bucket: bucket.into(),
                message: "ServiceUnavailable: try again".into(),
            });
        }
        Ok(if state.buckets.contains(bucket) {
            BucketState::Exists
        } else if create {
            state.buckets.insert(bucket.into());
            BucketState::Created
        } else {
            BucketState::Missing
        })
    }

    async fn shard_leases(
        &self,
        _region: Option<&str>,
        bucket: &str,
        prefix: &str,
    ) -> Result<Vec<tributary_workers::sink::kinesis_leases::Lease>, BucketError> {
        let state = self.state();
        if state.failing {
            return Err(BucketError {
                operation: "ListObjectsV2",
                bucket: bucket.into(),
                message: "ServiceUnavailable: try again".into(),
            });
        }
        Ok(state
            .leases
            .get(&(bucket.to_owned(), prefix.to_owned()))
            .cloned()
            .unwrap_or_default())
    }
}

/// The scenario runner itself: a missing, an unexpected or a wrong call fails the test.
mod checks {
    use kube::Api;
    use tributary_crds::{KafkaCluster, Topic};

    use super::*;

    async fn get_topic(scenario: Scenario) {
        let (ctx, api) = Context::test(FakeKafka::default());
        let verifier = api.run(scenario);
        let topics: Api<Topic> = Api::namespaced(ctx.client.clone(), "demo");
        let _ = topics.get("orders").await;
        drop((topics, ctx));
        verifier.done().await;
    }

    #[tokio::test]
    async fn the_expected_call_passes() {
        get_topic(Scenario::calls([ApiCall::get(&topic())])).await;
    }

    #[tokio::test]
    #[should_panic(
        expected = "an API call beyond the scenario: GET /apis/tributary.dev/v1alpha1/namespaces/demo/topics/orders"
    )]
    async fn an_unexpected_call_fails() {
        get_topic(Scenario::silence()).await;
    }

    #[tokio::test]
    #[should_panic(expected = "made 1 of the 2 expected API calls; missing: GET")]
    async fn a_missing_call_fails() {
        get_topic(Scenario::calls([
            ApiCall::get(&topic()),
            ApiCall::get(&cluster()),
        ]))
        .await;
    }

    #[tokio::test]
    #[should_panic(expected = "API call 1: another request")]
    async fn another_call_fails() {
        get_topic(Scenario::calls([ApiCall::get_missing::<KafkaCluster>(
            "demo", "orders",
        )]))
        .await;
    }

    #[tokio::test]
    #[should_panic(
        expected = "Ready=False reason=ClusterNotFound instead of Ready=False reason=ClusterNotReady"
    )]
    async fn a_wrong_status_fails() {
        let topic = topic().finalized();
        let (ctx, api) = Context::test(FakeKafka::default());
        let verifier = api.run(Scenario::calls([
            ApiCall::get_missing::<KafkaCluster>("demo", "local"),
            ApiCall::apply_status(
                &topic,
                crate::topic::FIELD_MANAGER,
                false,
                "ClusterNotReady",
            ),
        ]));
        let _ = crate::topic::reconcile(Arc::new(topic), ctx).await;
        verifier.done().await;
    }
}

/// This package's directory, read when the test runs (cargo sets `CARGO_MANIFEST_DIR` for it):
/// the shared target directory may hold a test binary built from another checkout of the same
/// sources, whose compile-time path need not exist here.
pub(crate) fn manifest_dir() -> String {
    std::env::var("CARGO_MANIFEST_DIR").unwrap_or_else(|_| env!("CARGO_MANIFEST_DIR").to_owned())
}
