//! What every worker pod the operator starts has in common (the Sinks' Deployments and the
//! BatchJobs' Jobs): the operator's AWS settings in the environment, and a locked-down pod that
//! runs as an unprivileged user on a read-only root file system without an API token.

use serde_json::{Value, json};
use tributary_workers::connect::AwsOptions;

use crate::context::Workers;

/// The unprivileged user and group the workers run as.
pub const RUN_AS: i64 = 65532;

/// `AWS_REGION` (`region` of the spec, else the operator's) and `AWS_ENDPOINT_URL` (the
/// operator's), each only when known: otherwise the SDK's chain decides.
pub fn aws_env(region: Option<&String>, aws: &AwsOptions) -> Vec<Value> {
    let mut env = Vec::new();
    if let Some(region) = region.or(aws.region.as_ref()) {
        env.push(json!({"name": "AWS_REGION", "value": region}));
    }
    if let Some(endpoint) = &aws.endpoint_url {
        env.push(json!({"name": "AWS_ENDPOINT_URL", "value": endpoint}));
    }
    env
}

/// The container's security context: non-root, no privilege escalation, no capabilities, a
/// read-only root file system.
pub fn container_security_context() -> Value {
    json!({
        "runAsNonRoot": true,
        "runAsUser": RUN_AS,
        "runAsGroup": RUN_AS,
        "readOnlyRootFilesystem": true,
        "allowPrivilegeEscalation": false,
        "capabilities": {"drop": ["ALL"]},
        "seccompProfile": {"type": "RuntimeDefault"},
    })
}

/// The root file system is read-only; libraries that want a scratch file get `/tmp`.
pub fn tmp_volume_mounts() -> Value {
    json!([{"name": "tmp", "mountPath": "/tmp"}])
}

/// A pod spec running `container` as `workers` says: no service-account token (workers never
/// talk to the API server), the pod security context, the `/tmp` volume, and the service
/// account if one is configured.
pub fn pod_spec(container: Value, workers: &Workers) -> Value {
    let mut pod = json!({
        "automountServiceAccountToken": false,
        "securityContext": {
            "runAsNonRoot": true,
            "runAsUser": RUN_AS,
            "runAsGroup": RUN_AS,
            "seccompProfile": {"type": "RuntimeDefault"},
        },
        "containers": [container],
        "volumes": [{"name": "tmp", "emptyDir": {}}],
    });
    if let Some(account) = &workers.service_account {
        pod["serviceAccountName"] = json!(account);
    }
    pod
}
