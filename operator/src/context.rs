//! Everything with side effects that the controllers use, in one place.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use k8s_openapi::jiff::Timestamp;
use kube::runtime::events::{Event, EventType, Recorder, Reporter};
use kube::runtime::reflector::Store;
use kube::{Resource, ResourceExt};
use tributary_crds::Topic;

use tributary_workers::connect::AwsOptions;

use crate::buckets::{Buckets, S3Buckets};
use crate::kafka_admin::KafkaAdmins;
use crate::metrics::Metrics;
use crate::msk::{AwsMsk, Msk};
use crate::stream::kinesis::{AwsKinesis, Kinesis};

/// How the operator runs worker pods (the Sinks' Deployments).
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Workers {
    /// The container image of the workers: the operator's own (`--image`). Without it no
    /// worker can be started.
    pub image: Option<String>,
    /// The service account of the worker pods (for IRSA); `None`: the namespace's default.
    pub service_account: Option<String>,
}

/// The time now, as the controllers see it: the system clock, or a fixed one in tests.
pub type Clock = Arc<dyn Fn() -> Timestamp + Send + Sync>;

/// The controllers' shared handles.
pub struct Context {
    /// The Kubernetes client.
    pub client: kube::Client,
    /// Publishes Kubernetes Events.
    pub recorder: Recorder,
    /// The operator's metrics.
    pub metrics: Arc<Metrics>,
    /// Kafka admin clients by connection.
    pub kafka: Arc<dyn KafkaAdmins>,
    /// The Amazon MSK control plane.
    pub msk: Arc<dyn Msk>,
    /// S3 buckets (the Sinks' destinations).
    pub buckets: Arc<dyn Buckets>,
    /// The Kinesis control plane (the Streams).
    pub kinesis: Arc<dyn Kinesis>,
    /// How worker pods are run.
    pub workers: Workers,
    /// The operator's AWS region and endpoint overrides, which the workers get too.
    pub aws: AwsOptions,
    /// Every Topic the operator sees (for conflicts between Topics of one Kafka topic).
    pub topics: Store<Topic>,
    /// How often objects are re-checked against the outside world (drift detection).
    pub resync: Duration,
    /// The time now (the BatchJobs' scheduler reads it).
    pub clock: Clock,
    failures: Mutex<HashMap<String, u32>>,
}

impl Context {
    /// A context over these handles.
    pub fn new(
        client: kube::Client,
        kafka: Arc<dyn KafkaAdmins>,
        topics: Store<Topic>,
        resync: Duration,
    ) -> Self {
        let reporter = Reporter {
            controller: "tributary-operator".into(),
            instance: std::env::var("POD_NAME").ok(),
        };
        Self {
            recorder: Recorder::new(client.clone(), reporter),
            client,
            metrics: Arc::new(Metrics::default()),
            kafka,
            // Clients are built on first use: a context that never provisions MSK never
            // touches AWS.
            msk: Arc::new(AwsMsk::default()),
            buckets: Arc::new(S3Buckets::default()),
            kinesis: Arc::new(AwsKinesis::default()),
            workers: Workers::default(),
            aws: AwsOptions::default(),
            topics,
            resync,
            clock: Arc::new(Timestamp::now),
            failures: Mutex::new(HashMap::new()),
        }
    }

    /// Use `msk` instead of the real MSK API (tests).
    pub fn with_msk(mut self, msk: Arc<dyn Msk>) -> Self {
        self.msk = msk;
        self
    }

    /// Use `buckets` instead of the real S3 API (tests).
    pub fn with_buckets(mut self, buckets: Arc<dyn Buckets>) -> Self {
        self.buckets = buckets;
        self
    }

    /// Use `kinesis` instead of the real Kinesis API (tests).
    pub fn with_kinesis(mut self, kinesis: Arc<dyn Kinesis>) -> Self {
        self.kinesis = kinesis;
        self
    }

    /// Run worker pods as `workers` says, with the operator's `aws` settings.
    pub fn with_workers(mut self, workers: Workers, aws: AwsOptions) -> Self {
        self.workers = workers;
        self.aws = aws;
        self
    }

    /// Read the time from `clock` instead of the system clock (tests).
    pub fn with_clock(mut self, clock: Clock) -> Self {
        self.clock = clock;
        self
    }

    /// The time now.
    pub fn now(&self) -> Timestamp {
        (self.clock)()
    }

    /// Publish an Event about `object`; a failure to publish is logged, never fatal.
    pub async fn event<K: Resource<DynamicType = ()>>(
        &self,
        object: &K,
        warning: bool,
        reason: &str,
        note: String,
    ) {
        let event = Event {
            type_: if warning {
                EventType::Warning
            } else {
                EventType::Normal
            },
            reason: reason.into(),
            note: Some(note),
            action: reason.into(),
            secondary: None,
        };
        if let Err(error) = self.recorder.publish(&event, &object.object_ref(&())).await {
            tracing::warn!(%error, object = %object.name_any(), reason, "could not publish an event");
        }
    }

    /// The delay before retrying `key` after a transient error: 5 s doubling to 5 minutes.
    pub fn backoff(&self, key: String) -> Duration {
        let mut failures = self.failures.lock().expect("backoff lock");
        let n = failures.entry(key).or_insert(0);
        *n = (*n + 1).min(7);
        Duration::from_secs(5 << (*n - 1)).min(Duration::from_secs(300))
    }

    /// Forget the failures of `key` after a successful reconcile.
    pub fn succeeded(&self, key: &str) {
        self.failures.lock().expect("backoff lock").remove(key);
    }
}
