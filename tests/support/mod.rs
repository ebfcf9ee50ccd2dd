//! What the integration tests share: where the local stack is, and unique names so tests never
//! collide with each other or with an earlier run.

pub mod pinterest;

use std::sync::atomic::{AtomicU32, Ordering};
use std::time::{SystemTime, UNIX_EPOCH};

/// The value of an environment variable that `scripts/stack.sh env` sets. Panics with the way
/// to fix it: integration tests need the real services and must not silently pass without them.
pub fn stack_env(name: &str) -> String {
    match std::env::var(name) {
        Ok(value) if !value.is_empty() => value,
        _ => panic!(
            "{name} is not set: the integration tests need the local stack. \
             Run `scripts/stack.sh up` and `eval \"$(scripts/stack.sh env)\"`, or scripts/test.sh"
        ),
    }
}

/// A name unique to this test process and call, lower case, usable as a Kubernetes name, a
/// Kafka topic, an S3 bucket or a Kinesis stream.
pub fn unique_name(prefix: &str) -> String {
    static COUNTER: AtomicU32 = AtomicU32::new(0);
    let nanos = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .expect("clock after 1970")
        .subsec_nanos();
    let n = COUNTER.fetch_add(1, Ordering::Relaxed);
    format!("{prefix}-{}-{nanos:x}-{n}", std::process::id())
}

/// The shared AWS configuration, as the binary loads it, after checking the stack's
/// endpoints are configured.
pub async fn aws_config() -> aws_config::SdkConfig {
    stack_env("AWS_ENDPOINT_URL");
    stack_env("AWS_ENDPOINT_URL_KAFKA");
    tributary_workers::connect::aws_config(&Default::default()).await
}

/// The `tributary` binary next to the test executables (scripts/test.sh builds it first).
pub fn tributary_binary() -> std::path::PathBuf {
    let exe = std::env::current_exe().expect("the test's path");
    let path = exe
        .parent()
        .and_then(|deps| deps.parent())
        .expect("target/<profile>")
        .join("tributary");
    assert!(
        path.exists(),
        "{} is missing: run `cargo build -p tributary` first",
        path.display()
    );
    path
}

/// A child process that is killed when dropped, so a failing test leaves no process behind.
pub struct KillOnDrop(pub std::process::Child);

impl std::ops::Deref for KillOnDrop {
    type Target = std::process::Child;
    fn deref(&self) -> &Self::Target {
        &self.0
    }
}

impl std::ops::DerefMut for KillOnDrop {
    fn deref_mut(&mut self) -> &mut Self::Target {
        &mut self.0
    }
}

impl Drop for KillOnDrop {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// A kube client from the stack's kubeconfig.
pub async fn kube_client() -> kube::Client {
    stack_env("KUBECONFIG");
    kube::Client::try_default()
        .await
        .expect("a kube client from KUBECONFIG")
}

/// The leader Lease duration of operators the tests start.
pub const LEASE_SECONDS: u64 = 6;

/// An operator running in this process for one test namespace; stopped when dropped.
pub struct RunningOperator {
    stop: Option<tokio::sync::oneshot::Sender<()>>,
    task: Option<tokio::task::JoinHandle<()>>,
}

impl RunningOperator {
    /// Stop the operator and wait until its controllers have ended.
    pub async fn stop(mut self) {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
        if let Some(task) = self.task.take() {
            let _ = task.await;
        }
    }
}

impl Drop for RunningOperator {
    fn drop(&mut self) {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
    }
}

/// Create `namespace`.
pub async fn create_namespace(client: &kube::Client, namespace: &str) {
    use k8s_openapi::api::core::v1::Namespace;
    let namespaces: kube::Api<Namespace> = kube::Api::all(client.clone());
    let ns: Namespace =
        serde_json::from_value(serde_json::json!({"metadata": {"name": namespace}}))
            .expect("a namespace");
    namespaces
        .create(&Default::default(), &ns)
        .await
        .expect("namespace created");
}

/// Create `namespace` and start the operator watching only it (so tests running at the same
/// time do not see each other's objects), with a short resync for drift checks.
pub async fn start_operator(
    client: &kube::Client,
    namespace: &str,
    resync: std::time::Duration,
) -> RunningOperator {
    create_namespace(client, namespace).await;
    start_replica(client, namespace, &unique_name("operator"), resync)
}

/// Start one more operator replica for an existing `namespace`, named `identity` in the
/// namespace's leader Lease.
pub fn start_replica(
    client: &kube::Client,
    namespace: &str,
    identity: &str,
    resync: std::time::Duration,
) -> RunningOperator {
    let config = tributary_operator::run::Config {
        namespaces: vec![namespace.to_owned()],
        http_addr: "127.0.0.1:0".parse().expect("an address"),
        resync,
        install_crds: true,
        lease_namespace: namespace.to_owned(),
        lease_name: "tributary-operator".into(),
        identity: identity.to_owned(),
        lease_duration: std::time::Duration::from_secs(LEASE_SECONDS),
        aws: Default::default(),
        workers: Default::default(),
    };
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    let client = client.clone();
    let task = tokio::spawn(async move {
        let shutdown = async move {
            let _ = stopped.await;
        };
        tributary_operator::run::run(client, config, shutdown)
            .await
            .expect("the operator runs");
    });
    RunningOperator {
        stop: Some(stop),
        task: Some(task),
    }
}

/// Poll `check` every 250 ms until it returns `Some`, or panic after `seconds` with `what`.
pub async fn eventually<T, F, Fut>(seconds: u64, what: &str, mut check: F) -> T
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = Option<T>>,
{
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(seconds);
    loop {
        if let Some(value) = check().await {
            return value;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "timed out after {seconds} s waiting for {what}"
        );
        tokio::time::sleep(std::time::Duration::from_millis(250)).await;
    }
}

/// Create a two-broker provisioned MSK cluster `name` directly through the SDK (not through
/// the operator); returns its ARN after checking MSK reports it CREATING.
pub async fn create_msk_cluster(msk: &aws_sdk_kafka::Client, name: &str) -> String {
    use aws_sdk_kafka::types::{BrokerNodeGroupInfo, ClusterState, ProvisionedRequest};
    let nodes = BrokerNodeGroupInfo::builder()
        .instance_type("kafka.m5.large")
        .client_subnets("subnet-a")
        .client_subnets("subnet-b")
        .build();
    let provisioned = ProvisionedRequest::builder()
        .kafka_version("3.6.0")
        .number_of_broker_nodes(2)
        .broker_node_group_info(nodes)
        .build();
    let created = msk
        .create_cluster_v2()
        .cluster_name(name)
        .provisioned(provisioned)
        .send()
        .await
        .expect("an MSK cluster created");
    assert_eq!(created.state(), Some(&ClusterState::Creating));
    created.cluster_arn().expect("an ARN").to_owned()
}

/// Wait (at most 60 s) until the Kinesis stream `stream` is ACTIVE.
pub async fn stream_active(kinesis: &aws_sdk_kinesis::Client, stream: &str) {
    eventually(60, "the Kinesis stream to be ACTIVE", || async {
        let description = kinesis
            .describe_stream_summary()
            .stream_name(stream)
            .send()
            .await
            .ok()?;
        let summary = description.stream_description_summary()?;
        (summary.stream_status() == &aws_sdk_kinesis::types::StreamStatus::Active).then_some(())
    })
    .await;
}

/// A sink worker running in this process until the returned sender is sent to (or dropped).
pub fn spawn_sink(
    config: tributary_workers::sink::config::SinkWorkerConfig,
) -> (
    tokio::sync::oneshot::Sender<()>,
    tokio::task::JoinHandle<Result<(), tributary_workers::sink::worker::WorkerError>>,
) {
    let metrics = std::sync::Arc::new(tributary_workers::sink::metrics::SinkMetrics::default());
    let sink = tributary_workers::sink::worker::Sink::new(config, metrics).expect("a valid sink");
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    let task = tokio::spawn(sink.run(|name| std::env::var(name).ok(), async move {
        let _ = stopped.await;
    }));
    (stop, task)
}

/// Every object under `prefix` in `bucket`: key and body, in key order.
pub async fn s3_objects(
    s3: &aws_sdk_s3::Client,
    bucket: &str,
    prefix: &str,
) -> std::collections::BTreeMap<String, Vec<u8>> {
    let mut out = std::collections::BTreeMap::new();
    let mut pages = s3
        .list_objects_v2()
        .bucket(bucket)
        .prefix(prefix)
        .into_paginator()
        .send();
    while let Some(page) = pages.next().await {
        for object in page.expect("a listing page").contents() {
            let key = object.key().expect("a key").to_owned();
            let body = s3
                .get_object()
                .bucket(bucket)
                .key(&key)
                .send()
                .await
                .expect("get")
                .body
                .collect()
                .await
                .expect("a body")
                .to_vec();
            out.insert(key, body);
        }
    }
    out
}

/// This package's directory, read when the test runs (cargo sets `CARGO_MANIFEST_DIR` for
/// it): the shared target directory may hold a test binary built from another checkout of the
/// same sources, whose compile-time path need not exist here.
pub fn manifest_dir() -> String {
    std::env::var("CARGO_MANIFEST_DIR").unwrap_or_else(|_| env!("CARGO_MANIFEST_DIR").to_owned())
}

/// The repository's root.
pub fn repo() -> std::path::PathBuf {
    std::path::Path::new(&manifest_dir())
        .join("..")
        .canonicalize()
        .expect("the repository")
}

/// One row as comparable JSON: numbers as doubles (the expected files write medians as
/// `3000.0`, Arrow may write `3000`), timestamps as `YYYY-MM-DD HH:MM:SS` (UTC).
pub fn normalize_row(value: serde_json::Value) -> serde_json::Value {
    match value {
        serde_json::Value::Number(number) => {
            serde_json::Value::from(number.as_f64().expect("a finite number"))
        }
        serde_json::Value::String(text) => {
            // Arrow writes a UTC timestamp as `2019-01-02T03:04:05Z` (or `+00:00`).
            let bare = text
                .strip_suffix('Z')
                .or_else(|| text.strip_suffix("+00:00"))
                .unwrap_or(&text);
            let bytes = bare.as_bytes();
            if bare.len() == 19 && bytes[10] == b'T' && bytes[4] == b'-' && bytes[13] == b':' {
                serde_json::Value::String(bare.replacen('T', " ", 1))
            } else {
                serde_json::Value::String(text)
            }
        }
        serde_json::Value::Array(items) => {
            serde_json::Value::Array(items.into_iter().map(normalize_row).collect())
        }
        serde_json::Value::Object(map) => serde_json::Value::Object(
            map.into_iter()
                .map(|(k, v)| (k, normalize_row(v)))
                .collect(),
        ),
        other => other,
    }
}
