//! The third pure step of the Sink reconcile: the ConfigMap with the worker configuration and
//! the worker Deployment, both owned by the Sink.

use std::collections::BTreeMap;

use k8s_openapi::api::apps::v1::Deployment;
use k8s_openapi::api::core::v1::ConfigMap;
use kube::{Resource, ResourceExt};
use serde_json::{Value, json};
use sha2::{Digest, Sha256};
use tributary_crds::Sink;
use tributary_workers::connect::AwsOptions;
use tributary_workers::sink::config::{ENV_CONFIG, ENV_GROUP_INSTANCE_ID, ENV_WORKER_ID};

use super::resolve::Resolved;
use crate::context::Workers;
use crate::worker_pod;

/// The ConfigMap key holding the worker configuration.
pub const CONFIG_KEY: &str = "config.json";
/// The pod-template annotation with the hash of the configuration: a change rolls the pods.
pub const CONFIG_HASH: &str = "tributary.dev/config-hash";
/// `app.kubernetes.io/name` of every worker pod of a Sink.
pub const APP_NAME: &str = "tributary-sink";
/// The label selector of every child of every Sink (for the operator's watches).
pub const CHILDREN: &str =
    "app.kubernetes.io/name=tributary-sink,app.kubernetes.io/managed-by=tributary";
/// The name of the worker container in each pod.
pub const CONTAINER: &str = "sink";
/// The port of the workers' `/healthz`, `/readyz` and `/metrics`.
pub const HTTP_PORT: i32 = 8080;
/// Time a worker has after SIGTERM to flush its buffers and commit.
pub const TERMINATION_GRACE_SECONDS: i64 = 60;

/// What the Sink wants in the cluster.
#[derive(Clone, Debug, PartialEq)]
pub struct Desired {
    /// `<sink>-sink`, with the configuration under [`CONFIG_KEY`].
    pub config_map: ConfigMap,
    /// `<sink>-sink`, the workers.
    pub deployment: Deployment,
}

/// The name of the ConfigMap and of the Deployment of `sink`.
pub fn child_name(sink: &Sink) -> String {
    format!("{}-sink", sink.name_any())
}

/// Worker replicas: `spec.parallelism`, or none while `spec.paused`.
pub fn replicas(sink: &Sink) -> i32 {
    if sink.spec.paused {
        0
    } else {
        sink.spec.parallelism
    }
}

/// The hex SHA-256 of the configuration document.
pub fn config_hash(config_json: &str) -> String {
    Sha256::digest(config_json.as_bytes())
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect()
}

fn labels(sink: &Sink) -> BTreeMap<String, String> {
    BTreeMap::from([
        ("app.kubernetes.io/name".to_owned(), APP_NAME.to_owned()),
        ("app.kubernetes.io/instance".to_owned(), sink.name_any()),
        (
            "app.kubernetes.io/managed-by".to_owned(),
            "tributary".to_owned(),
        ),
    ])
}

/// The pods of one Sink. A Deployment's selector cannot change, so it holds only what never
/// does.
fn selector(sink: &Sink) -> BTreeMap<String, String> {
    let mut labels = labels(sink);
    labels.remove("app.kubernetes.io/managed-by");
    labels
}

/// The label selector of the pods of one Sink (the Deployment's), as a query string value.
pub fn pod_selector(sink: &Sink) -> String {
    selector(sink)
        .iter()
        .map(|(k, v)| format!("{k}={v}"))
        .collect::<Vec<_>>()
        .join(",")
}

fn metadata(sink: &Sink) -> Value {
    json!({
        "name": child_name(sink),
        "namespace": sink.namespace(),
        "labels": labels(sink),
        "ownerReferences": sink.controller_owner_ref(&()).into_iter().collect::<Vec<_>>(),
    })
}

/// The ConfigMap and the Deployment of `sink`, running `image` as `workers` says, with the
/// operator's `aws` settings where the spec has none.
pub fn build(
    sink: &Sink,
    resolved: &Resolved,
    image: &str,
    workers: &Workers,
    aws: &AwsOptions,
) -> Desired {
    let name = child_name(sink);
    let config_json = resolved.config.to_json();
    let hash = config_hash(&config_json);
    let config_map = json!({
        "apiVersion": "v1",
        "kind": "ConfigMap",
        "metadata": metadata(sink),
        "data": { CONFIG_KEY: config_json },
    });

    let mut env = vec![json!({
        "name": ENV_CONFIG,
        "valueFrom": {"configMapKeyRef": {"name": name, "key": CONFIG_KEY}},
    })];
    // Kafka: static group membership by pod name (decision 0012), so a restarted container
    // takes its partitions back without rebalancing the other workers. Kinesis: the owner
    // written in the shard leases (decision 0042), so a restarted container takes its own
    // leases back at once.
    let identity = if resolved.config.kinesis.is_none() {
        ENV_GROUP_INSTANCE_ID
    } else {
        ENV_WORKER_ID
    };
    env.push(json!({
        "name": identity,
        "valueFrom": {"fieldRef": {"fieldPath": "metadata.name"}},
    }));
    env.extend(worker_pod::aws_env(
        sink.spec.destination.region.as_ref(),
        aws,
    ));
    for (variable, secret) in &resolved.secret_env {
        env.push(json!({
            "name": variable,
            "valueFrom": {"secretKeyRef": {"name": secret.name, "key": secret.key}},
        }));
    }

    let probe =
        |path: &str| json!({"httpGet": {"path": path, "port": "http"}, "periodSeconds": 10});
    let mut container = json!({
        "name": CONTAINER,
        "image": image,
        "args": ["worker", "sink"],
        "env": env,
        "ports": [{"name": "http", "containerPort": HTTP_PORT, "protocol": "TCP"}],
        "readinessProbe": probe("/readyz"),
        "livenessProbe": probe("/healthz"),
        "securityContext": worker_pod::container_security_context(),
        "volumeMounts": worker_pod::tmp_volume_mounts(),
    });
    if let Some(resources) = &sink.spec.resources {
        container["resources"] = json!(resources);
    }
    let mut pod = worker_pod::pod_spec(container, workers);
    pod["terminationGracePeriodSeconds"] = json!(TERMINATION_GRACE_SECONDS);
    let deployment = json!({
        "apiVersion": "apps/v1",
        "kind": "Deployment",
        "metadata": metadata(sink),
        "spec": {
            "replicas": replicas(sink),
            "selector": {"matchLabels": selector(sink)},
            "template": {
                "metadata": {"labels": labels(sink), "annotations": {CONFIG_HASH: hash}},
                "spec": pod,
            },
        },
    });
    Desired {
        config_map: serde_json::from_value(config_map).expect("a ConfigMap"),
        deployment: serde_json::from_value(deployment).expect("a Deployment"),
    }
}

#[cfg(test)]
mod tests {
    use k8s_openapi::api::core::v1::{Container, EnvVar};
    use tributary_crds::{KafkaCluster, Stream, Topic};
    use tributary_workers::sink::config::{
        KafkaEndpoint, KinesisSource, LeaseSettings, SinkWorkerConfig,
    };

    use super::*;
    use crate::sink::resolve::{ResolveError, resolve, resolve_stream};
    use crate::sink::validate::{SpecError, validate};
    use crate::test_support::{cluster, from_yaml, sink, topic};

    const IMAGE: &str = "ghcr.io/tributary-dev/tributary:0.1.0";

    fn workers() -> Workers {
        Workers {
            image: Some(IMAGE.into()),
            service_account: None,
        }
    }

    fn resolved(sink: &Sink, topic: &Topic, cluster: &KafkaCluster) -> Resolved {
        let destination = validate(sink).expect("a valid Sink");
        resolve(sink, topic, cluster, &destination).expect("resolved")
    }

    fn desired(sink: &Sink) -> Desired {
        let resolved = resolved(sink, &topic(), &cluster());
        build(sink, &resolved, IMAGE, &workers(), &AwsOptions::default())
    }

    fn config(desired: &Desired) -> SinkWorkerConfig {
        let data = desired.config_map.data.as_ref().expect("data");
        SinkWorkerConfig::from_json(&data[CONFIG_KEY]).expect("the worker reads it")
    }

    fn container(desired: &Desired) -> Container {
        let pod = desired
            .deployment
            .spec
            .as_ref()
            .unwrap()
            .template
            .spec
            .as_ref();
        pod.unwrap().containers[0].clone()
    }

    fn env(desired: &Desired) -> Vec<EnvVar> {
        container(desired).env.unwrap_or_default()
    }

    fn hash(desired: &Desired) -> String {
        let template = &desired.deployment.spec.as_ref().unwrap().template;
        template
            .metadata
            .as_ref()
            .unwrap()
            .annotations
            .as_ref()
            .unwrap()[CONFIG_HASH]
            .clone()
    }

    #[test]
    fn the_config_map_holds_what_the_worker_needs_and_no_secret() {
        let desired = desired(&sink());
        assert_eq!(
            desired.config_map.metadata.name.as_deref(),
            Some("raw-orders-sink")
        );
        let config = config(&desired);
        assert_eq!(config.sink, "demo/raw-orders");
        assert_eq!(
            config.topic, "orders",
            "the Topic's object name: no spec.topicName"
        );
        assert_eq!(config.consumer_group, "tributary-demo-raw-orders");
        assert_eq!(
            config.kafka.bootstrap_servers,
            "kafka-0.kafka.demo:9092,kafka-1.kafka.demo:9092"
        );
        assert!(!config.kafka.tls && config.kafka.sasl_mechanism.is_none());
        assert_eq!(config.destination.url, "s3://lake/raw/orders");
        assert_eq!(config.dead_letter_prefix, "raw/orders/_dead_letter");
        assert_eq!(config.batch.max_age, "30s");
        assert_eq!(
            config.partitioning.path.as_deref(),
            Some("dt={time:%Y-%m-%d}")
        );
    }

    #[test]
    fn consumer_properties_reach_the_workers_unless_they_are_tributarys() {
        let mut sink = sink();
        sink.spec.source.consumer_properties = [
            ("fetch.max.bytes", "104857600"),
            ("receive.message.max.bytes", "209715200"),
        ]
        .into_iter()
        .map(|(k, v)| (k.to_owned(), v.to_owned()))
        .collect();
        let config = resolved(&sink, &topic(), &cluster()).config;
        assert_eq!(
            config.consumer_properties,
            sink.spec.source.consumer_properties
        );

        for (name, value, says) in [
            ("enable.auto.commit", "true", "is set by Tributary"),
            ("sasl.password", "hunter2", "is set by Tributary"),
            ("fetch.max.bites", "1", "No such configuration property"),
            ("fetch.max.bytes", "-5", "fetch.max.bytes=-5"),
        ] {
            let mut bad = sink.clone();
            bad.spec.source.consumer_properties = [(name.to_owned(), value.to_owned())].into();
            let error = validate(&bad).unwrap_err().to_string();
            assert!(
                error.starts_with(&format!("spec.source.consumerProperties: {name}"))
                    && error.contains(says),
                "{name}: {error}"
            );
            // A refused secret is never echoed.
            assert!(!error.contains("hunter2"), "{error}");
        }
    }

    #[test]
    fn names_group_and_dead_letter_come_from_the_spec_when_given() {
        let mut sink = sink();
        sink.spec.source.consumer_group = Some("legacy-raw".into());
        sink.spec.dead_letter.prefix = Some("/errors/raw/".into());
        let mut topic = topic();
        topic.spec.topic_name = Some("Orders_v2".into());
        let config = resolved(&sink, &topic, &cluster()).config;
        assert_eq!(
            (config.consumer_group.as_str(), config.topic.as_str()),
            ("legacy-raw", "Orders_v2")
        );
        assert_eq!(config.dead_letter_prefix, "errors/raw");

        // A local directory has no prefix: dead letters go to a directory inside it.
        sink.spec.destination.url = "file:///var/lake".into();
        sink.spec.dead_letter.prefix = None;
        let destination = validate(&sink).unwrap();
        assert_eq!(
            (destination.bucket, destination.prefix),
            (None, String::new())
        );
        assert_eq!(destination.dead_letter_prefix, "_dead_letter");
        let at_root = {
            let mut sink = sink.clone();
            sink.spec.destination.url = "s3://lake".into();
            validate(&sink).unwrap()
        };
        assert_eq!(
            (
                at_root.bucket.as_deref(),
                at_root.dead_letter_prefix.as_str()
            ),
            (Some("lake"), "_dead_letter")
        );
    }

    #[test]
    fn the_deployment_runs_the_operator_image_as_a_sink_worker() {
        let desired = desired(&sink());
        let deployment = &desired.deployment;
        assert_eq!(deployment.metadata.name.as_deref(), Some("raw-orders-sink"));
        let spec = deployment.spec.as_ref().unwrap();
        assert_eq!(spec.replicas, Some(2), "spec.parallelism");
        let selector = spec.selector.match_labels.as_ref().unwrap();
        assert_eq!(selector["app.kubernetes.io/instance"], "raw-orders");
        assert_eq!(selector["app.kubernetes.io/name"], "tributary-sink");
        assert_eq!(
            pod_selector(&sink()),
            "app.kubernetes.io/instance=raw-orders,app.kubernetes.io/name=tributary-sink",
            "the pods the controller lists are the Deployment's"
        );
        let labels = spec
            .template
            .metadata
            .as_ref()
            .unwrap()
            .labels
            .as_ref()
            .unwrap();
        assert!(selector.iter().all(|(k, v)| labels.get(k) == Some(v)));
        assert_eq!(labels["app.kubernetes.io/managed-by"], "tributary");

        let container = container(&desired);
        assert_eq!(container.image.as_deref(), Some(IMAGE));
        assert_eq!(container.args, Some(vec!["worker".into(), "sink".into()]));
        let port = &container.ports.as_ref().unwrap()[0];
        assert_eq!(
            (port.name.as_deref(), port.container_port),
            (Some("http"), 8080)
        );
        let probe_path = |probe: Option<&k8s_openapi::api::core::v1::Probe>| {
            probe
                .and_then(|p| p.http_get.as_ref())
                .and_then(|h| h.path.clone())
        };
        assert_eq!(
            probe_path(container.readiness_probe.as_ref()).as_deref(),
            Some("/readyz")
        );
        assert_eq!(
            probe_path(container.liveness_probe.as_ref()).as_deref(),
            Some("/healthz")
        );
        assert_eq!(
            container.resources.unwrap().limits.unwrap()["memory"].0,
            "512Mi",
            "spec.resources"
        );

        let config = &env(&desired)[0];
        assert_eq!(config.name, "TRIBUTARY_SINK_CONFIG");
        let from = config
            .value_from
            .as_ref()
            .unwrap()
            .config_map_key_ref
            .as_ref()
            .unwrap();
        assert_eq!(
            (from.name.as_str(), from.key.as_str()),
            ("raw-orders-sink", "config.json")
        );
    }

    #[test]
    fn the_workers_run_locked_down_without_an_api_token() {
        let desired = desired(&sink());
        let pod = desired.deployment.spec.unwrap().template.spec.unwrap();
        assert_eq!(pod.automount_service_account_token, Some(false));
        assert_eq!(pod.service_account_name, None);
        assert_eq!(pod.termination_grace_period_seconds, Some(60));
        let pod_security = pod.security_context.unwrap();
        assert_eq!(pod_security.run_as_non_root, Some(true));
        assert_eq!(
            pod_security.seccomp_profile.unwrap().type_,
            "RuntimeDefault"
        );
        let security = pod.containers[0].security_context.clone().unwrap();
        assert_eq!(
            (security.run_as_user, security.run_as_group),
            (Some(65532), Some(65532))
        );
        assert_eq!(security.read_only_root_filesystem, Some(true));
        assert_eq!(security.allow_privilege_escalation, Some(false));
        assert_eq!(
            security.capabilities.unwrap().drop,
            Some(vec!["ALL".into()])
        );

        let with_account = Workers {
            service_account: Some("tributary-worker".into()),
            ..workers()
        };
        let sink = sink();
        let resolved = resolved(&sink, &topic(), &cluster());
        let desired = build(
            &sink,
            &resolved,
            IMAGE,
            &with_account,
            &AwsOptions::default(),
        );
        let pod = desired.deployment.spec.unwrap().template.spec.unwrap();
        assert_eq!(
            pod.service_account_name.as_deref(),
            Some("tributary-worker")
        );
    }

    #[test]
    fn both_children_are_controlled_by_the_sink() {
        let desired = desired(&sink());
        for owners in [
            desired.config_map.metadata.owner_references,
            desired.deployment.metadata.owner_references,
        ] {
            let owner = &owners.expect("owner references")[0];
            assert_eq!(
                (owner.kind.as_str(), owner.name.as_str()),
                ("Sink", "raw-orders")
            );
            assert_eq!(owner.uid, "7f0c0e1a-0000-4000-8000-0000000000a1");
            assert_eq!(owner.controller, Some(true));
        }
    }

    #[test]
    fn a_paused_sink_keeps_its_deployment_at_zero_replicas() {
        let mut paused = sink();
        paused.spec.paused = true;
        let desired = desired(&paused);
        assert_eq!(desired.deployment.spec.unwrap().replicas, Some(0));
    }

    #[test]
    fn a_config_change_changes_the_pod_template_hash() {
        let before = desired(&sink());
        let mut changed = sink();
        changed.spec.batch.max_records = 10;
        let after = desired(&changed);
        assert_eq!(hash(&before).len(), 64);
        assert_ne!(hash(&before), hash(&after));
        assert_eq!(hash(&before), config_hash(&config(&before).to_json()));
        let mut scaled = sink();
        scaled.spec.parallelism = 5;
        assert_eq!(
            hash(&before),
            hash(&desired(&scaled)),
            "scaling rolls nothing"
        );
    }

    #[test]
    fn aws_settings_come_from_the_spec_else_the_operator() {
        let value = |env: &[EnvVar], name: &str| {
            env.iter()
                .find(|e| e.name == name)
                .and_then(|e| e.value.clone())
        };
        let sink = sink();
        let resolved = resolved(&sink, &topic(), &cluster());
        let operator = AwsOptions {
            region: Some("eu-west-1".into()),
            endpoint_url: Some("http://localstack:4566".into()),
        };
        let from_operator = env(&build(&sink, &resolved, IMAGE, &workers(), &operator));
        assert_eq!(
            value(&from_operator, "AWS_REGION").as_deref(),
            Some("eu-west-1")
        );
        assert_eq!(
            value(&from_operator, "AWS_ENDPOINT_URL").as_deref(),
            Some("http://localstack:4566")
        );

        let mut in_region = sink.clone();
        in_region.spec.destination.region = Some("us-west-2".into());
        let from_spec = env(&build(&in_region, &resolved, IMAGE, &workers(), &operator));
        assert_eq!(
            value(&from_spec, "AWS_REGION").as_deref(),
            Some("us-west-2")
        );

        let from_chain = env(&desired(&sink));
        assert_eq!(
            value(&from_chain, "AWS_REGION"),
            None,
            "the SDK's chain decides"
        );
        assert_eq!(value(&from_chain, "AWS_ENDPOINT_URL"), None);
    }

    #[test]
    fn each_pod_is_a_static_group_member_named_after_itself() {
        let env = env(&desired(&sink()));
        let instance = env
            .iter()
            .find(|e| e.name == ENV_GROUP_INSTANCE_ID)
            .expect("the group instance id");
        let field = instance
            .value_from
            .as_ref()
            .and_then(|from| from.field_ref.as_ref())
            .expect("from the downward API");
        assert_eq!(field.field_path, "metadata.name");
    }

    /// An external cluster with SCRAM credentials and a private CA, as a user would write it.
    fn secured_cluster() -> KafkaCluster {
        from_yaml(
            r#"
apiVersion: tributary.dev/v1alpha1
kind: KafkaCluster
metadata: {name: local, namespace: demo, uid: 7f0c0e1a-0000-4000-8000-0000000000c2}
spec:
  external:
    bootstrapServers: [kafka-0.kafka.demo:9096]
    tls: {caSecretRef: {name: kafka-ca, key: ca.crt}}
    sasl: {mechanism: ScramSha512, secretRef: {name: kafka-credentials, passwordKey: secret}}
"#,
        )
    }

    #[test]
    fn kafka_secrets_reach_the_workers_only_through_secret_key_refs() {
        let sink = sink();
        let resolved = resolved(&sink, &topic(), &secured_cluster());
        let desired = build(&sink, &resolved, IMAGE, &workers(), &AwsOptions::default());
        let config = config(&desired);
        assert!(config.kafka.tls);
        assert_eq!(
            config.kafka.sasl_mechanism,
            Some(tributary_crds::kafka_cluster::SaslMechanism::ScramSha512)
        );
        let from_secrets: Vec<(String, String, String)> = env(&desired)
            .into_iter()
            .filter_map(|e| {
                let secret = e.value_from?.secret_key_ref?;
                Some((e.name, secret.name, secret.key))
            })
            .collect();
        let expected = [
            (
                "TRIBUTARY_KAFKA_SASL_USERNAME",
                "kafka-credentials",
                "username",
            ),
            (
                "TRIBUTARY_KAFKA_SASL_PASSWORD",
                "kafka-credentials",
                "secret",
            ),
            ("TRIBUTARY_KAFKA_CA_PEM", "kafka-ca", "ca.crt"),
        ]
        .map(|(a, b, c)| (a.to_owned(), b.to_owned(), c.to_owned()));
        assert_eq!(from_secrets, expected);
    }

    #[test]
    fn secrets_of_a_cluster_in_another_namespace_cannot_be_used() {
        let mut cluster = secured_cluster();
        cluster.metadata.namespace = Some("kafka".into());
        let sink = sink();
        let destination = validate(&sink).unwrap();
        let error = resolve(&sink, &topic(), &cluster, &destination).unwrap_err();
        assert!(matches!(error, ResolveError::CrossNamespaceSecrets { .. }));
        assert!(error.is_permanent() && error.reason() == "InvalidConnection");
        assert!(
            error.to_string().contains("put the Sink in kafka"),
            "{error}"
        );

        // Without secrets, another namespace is fine.
        let mut plain = crate::test_support::cluster();
        plain.metadata.namespace = Some("kafka".into());
        assert!(resolve(&sink, &topic(), &plain, &destination).is_ok());
    }

    #[test]
    fn msk_clusters_give_their_listener_once_known() {
        let mut msk: KafkaCluster = from_yaml(
            r#"
apiVersion: tributary.dev/v1alpha1
kind: KafkaCluster
metadata: {name: local, namespace: demo}
spec:
  msk:
    provisioned:
      kafkaVersion: 3.6.0
      brokerCount: 2
      instanceType: kafka.m5.large
      subnets: [subnet-a, subnet-b]
"#,
        );
        let sink = sink();
        let destination = validate(&sink).unwrap();
        let error = resolve(&sink, &topic(), &msk, &destination).unwrap_err();
        assert_eq!(
            (error.reason(), error.is_permanent()),
            ("ClusterNotReady", false)
        );

        msk.status = Some(from_yaml(
            "msk: {bootstrapBrokers: {tls: 'b-1.msk:9094,b-2.msk:9094'}}",
        ));
        let config = resolve(&sink, &topic(), &msk, &destination).unwrap().config;
        assert_eq!(config.kafka.bootstrap_servers, "b-1.msk:9094,b-2.msk:9094");
        assert!(config.kafka.tls);
    }

    #[test]
    fn what_the_workers_cannot_run_is_refused_with_the_field() {
        type Breakage = fn(&mut Sink);
        let cases: [(&str, Breakage); 6] = [
            ("spec.partitioning.path", |s| {
                s.spec.partitioning.path = Some("dt={time:%Y".into())
            }),
            ("spec.batch.maxAge", |s| {
                s.spec.batch.max_age = "soon".into()
            }),
            ("spec.destination.url", |s| {
                s.spec.destination.url = "gs://bucket/raw".into()
            }),
            ("spec.transform", |s| {
                s.spec.transform = Some(from_yaml("sql: SELECT * FROM input"))
            }),
            ("spec.parallelism", |s| s.spec.parallelism = 0),
            ("metadata.name", |s| s.metadata.name = Some("x".repeat(64))),
        ];
        for (field, break_it) in cases {
            let mut sink = sink();
            break_it(&mut sink);
            let error = validate(&sink).expect_err(field);
            assert!(error.to_string().contains(field), "{field}: {error}");
        }
    }

    /// A Stream `demo/pin` in its own region, as a user would apply it.
    fn pin_stream() -> Stream {
        from_yaml(
            r#"
apiVersion: tributary.dev/v1alpha1
kind: Stream
metadata: {name: pin, namespace: demo}
spec: {streamName: pinterest-pin, region: eu-west-1, mode: Provisioned, shardCount: 1}
"#,
        )
    }

    fn stream_sink() -> Sink {
        let mut sink = sink();
        sink.spec.source = from_yaml("streamRef: {name: pin}");
        sink.spec.parallelism = 1;
        sink
    }

    #[test]
    fn a_stream_source_gives_a_kinesis_configuration_and_no_kafka() {
        let sink = stream_sink();
        let destination = validate(&sink).expect("a valid Sink");
        let resolved = resolve_stream(&sink, &pin_stream(), &destination, Some("us-east-1"));
        assert!(resolved.secret_env.is_empty());
        let desired = build(&sink, &resolved, IMAGE, &workers(), &AwsOptions::default());
        let config = config(&desired);
        assert_eq!(
            config.kinesis,
            Some(KinesisSource {
                stream_name: "pinterest-pin".into(),
                region: Some("eu-west-1".into()),
                leases: LeaseSettings::for_sink(&sink.spec.destination.url, "demo/raw-orders"),
            })
        );
        assert_eq!(config.source_name(), "pinterest-pin");
        assert_eq!(
            (config.topic.as_str(), config.consumer_group.as_str()),
            ("", "")
        );
        assert_eq!(config.kafka, KafkaEndpoint::default());
        let names: Vec<String> = env(&desired).into_iter().map(|e| e.name).collect();
        assert_eq!(
            names,
            [ENV_CONFIG, ENV_WORKER_ID],
            "no Kafka variables; the lease owner"
        );

        // Without a region of its own, the stream is where the operator created it.
        let mut anywhere = pin_stream();
        anywhere.spec.region = None;
        anywhere.spec.stream_name = None;
        let config = resolve_stream(&sink, &anywhere, &destination, Some("us-east-1")).config;
        let kinesis = config.kinesis.expect("a Kinesis source");
        assert_eq!(
            (kinesis.stream_name.as_str(), kinesis.region.as_deref()),
            ("pin", Some("us-east-1"))
        );
    }

    #[test]
    fn stream_workers_share_shards_through_leases_in_the_destination_bucket() {
        let mut stream = stream_sink();
        stream.spec.parallelism = 2;
        let destination = validate(&stream).expect("several workers on S3");
        let resolved = resolve_stream(&stream, &pin_stream(), &destination, None);
        let leases = resolved.config.kinesis.and_then(|k| k.leases);
        assert_eq!(
            leases.map(|l| (l.url, l.duration_ms)),
            Some((
                format!(
                    "s3://{}/_tributary/leases/demo/{}",
                    destination.bucket.as_deref().expect("a bucket"),
                    stream.name_any()
                ),
                10_000
            ))
        );
        // Each pod is a lease owner named after itself.
        let desired = build(
            &stream,
            &resolve_stream(&stream, &pin_stream(), &destination, None),
            IMAGE,
            &workers(),
            &AwsOptions::default(),
        );
        let owner = env(&desired)
            .into_iter()
            .find(|e| e.name == ENV_WORKER_ID)
            .and_then(|e| e.value_from)
            .and_then(|from| from.field_ref)
            .map(|field| field.field_path);
        assert_eq!(owner.as_deref(), Some("metadata.name"));

        stream.spec.destination.url = "file:///lake/raw".into();
        let error = validate(&stream).unwrap_err();
        assert!(matches!(error, SpecError::StreamParallelism(2, _)));
        assert_eq!(error.reason(), "ParallelismNotSupported");
        let message = error.to_string();
        assert!(
            message.contains("s3:// destination") && message.contains("parallelism: 1"),
            "{message}"
        );
    }

    #[test]
    fn a_stream_source_starts_from_the_oldest_record() {
        let mut latest = stream_sink();
        latest.spec.source.start_from = tributary_crds::sink::StartPosition::Latest;
        let error = validate(&latest).unwrap_err();
        assert!(matches!(error, SpecError::StreamStartFromLatest));
        assert_eq!(error.reason(), "InvalidSpec");

        // A Topic source keeps its parallelism.
        let mut parallel = sink();
        parallel.spec.parallelism = 5;
        assert!(validate(&parallel).is_ok());
    }

    #[test]
    fn a_stream_transform_is_planned_with_the_kinesis_columns() {
        let mut sink = stream_sink();
        sink.spec.format = from_yaml("{type: Parquet, schema: [{name: index, type: Int64}]}");
        sink.spec.transform = Some(from_yaml(
            "sql: SELECT index, _stream, _shard, _sequence_number, _arrival_time, _partition_key FROM input",
        ));
        validate(&sink).expect("the Kinesis columns plan");

        sink.spec.transform = Some(from_yaml("sql: SELECT index, _offset FROM input"));
        let error = validate(&sink).unwrap_err();
        assert_eq!(error.reason(), "InvalidTransform");
        assert!(error.to_string().contains("_offset"), "{error}");
    }

    /// Every Sink of `examples/pinterest/` passes the controller's checks; the cleaning Sinks
    /// of the Streams plan their SQL with the Kinesis columns.
    #[test]
    fn the_pinterest_sinks_are_valid() {
        let mut streams = 0;
        for file in ["sinks.yaml", "sinks-clean.yaml", "sinks-stream-clean.yaml"] {
            let path = format!(
                "{}/../examples/pinterest/{file}",
                crate::test_support::manifest_dir()
            );
            let yaml = std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{path}: {e}"));
            for document in yaml.split("\n---\n") {
                let mut sink: Sink = from_yaml(document);
                sink.metadata.namespace = Some("demo".into());
                if let Err(error) = validate(&sink) {
                    panic!("{file} {}: {error}", sink.name_any());
                }
                streams += usize::from(sink.spec.source.stream_ref.is_some());
            }
        }
        assert_eq!(streams, 3);
    }

    #[test]
    fn a_transform_is_planned_and_handed_to_the_workers() {
        let mut sink = sink();
        sink.spec.format = from_yaml(
            "{type: Parquet, schema: [{name: index, type: Int64}, {name: title, type: String}]}",
        );
        sink.spec.transform = Some(from_yaml(
            "sql: SELECT index AS ind, NULLIF(title, '') AS title, _offset FROM input",
        ));
        let config = config(&desired(&sink));
        assert_eq!(config.transform, sink.spec.transform);

        sink.spec.transform = Some(from_yaml("sql: SELECT nope FROM input"));
        let error = validate(&sink).unwrap_err();
        assert_eq!(error.reason(), "InvalidTransform");
        let message = error.to_string();
        assert!(
            message.starts_with("spec.transform.sql") && message.contains("nope"),
            "{message}"
        );

        sink.spec.format.schema = None;
        sink.spec.transform = Some(from_yaml("sql: SELECT * FROM input"));
        let error = validate(&sink).unwrap_err();
        assert_eq!(error.reason(), "InvalidSpec");
        assert!(error.to_string().contains("spec.format.schema"), "{error}");
    }
}
