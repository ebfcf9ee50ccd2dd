//! What the integration tests share: where the local stack is, and unique names so tests never
//! collide with each other or with an earlier run.

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
    tributary_workers::connect::aws_config(None).await
}

/// A kube client from the stack's kubeconfig.
pub async fn kube_client() -> kube::Client {
    stack_env("KUBECONFIG");
    kube::Client::try_default()
        .await
        .expect("a kube client from KUBECONFIG")
}
