//! The Sink controller against the real API server, broker and LocalStack: the worker
//! ConfigMap and Deployment it applies, the bucket it creates, pausing, re-reconciling on a
//! Topic change, and the status it reads from the consumer group in Kafka. The API server has
//! no kubelet, so worker pods never start (and never become ready) here.

use std::time::Duration;

use k8s_openapi::api::apps::v1::Deployment;
use k8s_openapi::api::core::v1::{ConfigMap, Namespace};
use kube::api::{Api, DeleteParams, Patch, PatchParams, PostParams};
use rdkafka::consumer::{BaseConsumer, CommitMode, Consumer};
use rdkafka::producer::{FutureProducer, FutureRecord};
use rdkafka::{Offset, TopicPartitionList};
use serde_json::json;
use tributary_crds::{KafkaCluster, Sink, Topic};
use tributary_operator::context::Workers;
use tributary_tests::{
    KillOnDrop, aws_config, eventually, kube_client, stack_env, tributary_binary, unique_name,
};
use tributary_workers::connect::{AwsOptions, KafkaConnection};
use tributary_workers::sink::config::{
    ENV_CONFIG, ENV_GROUP_INSTANCE_ID, ENV_WORKER_ID, SinkWorkerConfig,
};

const WAIT: u64 = 60;
const IMAGE: &str = "ghcr.io/tributary-dev/tributary:it";

/// An operator in this process for `namespace` (created here), with a worker image and the
/// stack's AWS endpoint; stopped when the sender is dropped or sent to.
async fn start_operator(
    client: &kube::Client,
    namespace: &str,
) -> tokio::sync::oneshot::Sender<()> {
    let namespaces: Api<Namespace> = Api::all(client.clone());
    let ns: Namespace = serde_json::from_value(json!({"metadata": {"name": namespace}})).unwrap();
    namespaces
        .create(&PostParams::default(), &ns)
        .await
        .expect("namespace created");
    let config = tributary_operator::run::Config {
        namespaces: vec![namespace.to_owned()],
        http_addr: "127.0.0.1:0".parse().unwrap(),
        resync: Duration::from_secs(3),
        install_crds: true,
        lease_namespace: namespace.to_owned(),
        lease_name: "tributary-operator".into(),
        identity: unique_name("operator"),
        lease_duration: Duration::from_secs(6),
        aws: AwsOptions {
            region: Some(stack_env("AWS_REGION")),
            endpoint_url: Some(stack_env("AWS_ENDPOINT_URL")),
        },
        workers: Workers {
            image: Some(IMAGE.into()),
            service_account: Some("tributary-worker".into()),
        },
    };
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    let client_for_wait = client.clone();
    let client = client.clone();
    tokio::spawn(async move {
        let shutdown = async move {
            let _ = stopped.await;
        };
        tributary_operator::run::run(client, config, shutdown)
            .await
            .expect("the operator runs");
    });
    // On a fresh API server the operator installs the CRDs first.
    let sinks: Api<Sink> = Api::namespaced(client_for_wait, namespace);
    eventually(WAIT, "the Sink CRD served", || async {
        sinks.list(&Default::default()).await.ok().map(|_| ())
    })
    .await;
    stop
}

fn connection() -> KafkaConnection {
    KafkaConnection::plaintext(stack_env("TRIBUTARY_KAFKA_BOOTSTRAP"))
}

fn object<K: serde::de::DeserializeOwned>(value: serde_json::Value) -> K {
    serde_json::from_value(value).expect("a manifest")
}

fn ready(
    status: Option<&Vec<k8s_openapi::apimachinery::pkg::apis::meta::v1::Condition>>,
) -> Option<(String, String)> {
    status?
        .iter()
        .find(|c| c.type_ == "Ready")
        .map(|c| (c.status.clone(), c.reason.clone()))
}

async fn create_cluster(client: &kube::Client, namespace: &str) {
    let clusters: Api<KafkaCluster> = Api::namespaced(client.clone(), namespace);
    let cluster = object(json!({
        "apiVersion": "tributary.dev/v1alpha1",
        "kind": "KafkaCluster",
        "metadata": {"name": "local"},
        "spec": {"external": {"bootstrapServers": [stack_env("TRIBUTARY_KAFKA_BOOTSTRAP")]}}
    }));
    clusters
        .create(&PostParams::default(), &cluster)
        .await
        .expect("KafkaCluster created");
}

async fn create_topic(client: &kube::Client, namespace: &str, name: &str, kafka_name: &str) {
    let topics: Api<Topic> = Api::namespaced(client.clone(), namespace);
    let topic = object(json!({
        "apiVersion": "tributary.dev/v1alpha1",
        "kind": "Topic",
        "metadata": {"name": name},
        "spec": {"clusterRef": {"name": "local"}, "topicName": kafka_name, "partitions": 2}
    }));
    topics
        .create(&PostParams::default(), &topic)
        .await
        .expect("Topic created");
    eventually(WAIT, &format!("Topic {name} Ready"), || async {
        let topic = topics.get(name).await.ok()?;
        let (status, _) = ready(topic.status.as_ref().map(|s| &s.conditions))?;
        (status == "True").then_some(())
    })
    .await;
}

async fn sink_status(sinks: &Api<Sink>, name: &str, reason: &str) -> tributary_crds::SinkStatus {
    eventually(
        WAIT,
        &format!("Sink {name} with Ready reason {reason}"),
        || async {
            let status = sinks.get(name).await.ok()?.status?;
            let (_, r) = ready(Some(&status.conditions))?;
            (r == reason).then_some(status)
        },
    )
    .await
}

async fn config_of(config_maps: &Api<ConfigMap>, name: &str) -> Option<SinkWorkerConfig> {
    let data = config_maps.get(name).await.ok()?.data?;
    Some(SinkWorkerConfig::from_json(data.get("config.json")?).expect("the worker reads it"))
}

fn hash(deployment: &Deployment) -> Option<String> {
    let template = &deployment.spec.as_ref()?.template;
    template
        .metadata
        .as_ref()?
        .annotations
        .as_ref()?
        .get("tributary.dev/config-hash")
        .cloned()
}

/// Commit `offset` on `partition` for `group`, with the flush time as the worker writes it.
fn commit(group: &str, topic: &str, partition: i32, offset: i64, flushed_at: &str) {
    let consumer: BaseConsumer = connection()
        .client_config()
        .unwrap()
        .set("group.id", group)
        .set("enable.auto.commit", "false")
        .create()
        .expect("a consumer");
    let mut offsets = TopicPartitionList::new();
    let mut element = offsets.add_partition(topic, partition);
    element.set_offset(Offset::Offset(offset)).unwrap();
    element.set_metadata(flushed_at);
    consumer
        .commit(&offsets, CommitMode::Sync)
        .expect("committed");
}

async fn produce(topic: &str, partition: i32, count: usize) {
    let producer: FutureProducer = connection().client_config().unwrap().create().unwrap();
    for i in 0..count {
        let value = format!("{{\"n\": {i}}}");
        producer
            .send(
                FutureRecord::<(), str>::to(topic)
                    .partition(partition)
                    .payload(&value),
                Duration::from_secs(10),
            )
            .await
            .map_err(|(e, _)| e)
            .expect("produced");
    }
}

#[tokio::test]
async fn a_sink_runs_as_a_deployment_with_its_config_its_bucket_and_its_lag() {
    let client = kube_client().await;
    let namespace = unique_name("opsinks");
    let stop = start_operator(&client, &namespace).await;
    create_cluster(&client, &namespace).await;

    // The Sink comes first: it waits for its Topic.
    let sinks: Api<Sink> = Api::namespaced(client.clone(), &namespace);
    let bucket = unique_name("lake");
    let sink = object(json!({
        "apiVersion": "tributary.dev/v1alpha1",
        "kind": "Sink",
        "metadata": {"name": "raw"},
        "spec": {
            "source": {"topicRef": {"name": "pin"}},
            "destination": {"url": format!("s3://{bucket}/raw"), "createBucket": true},
            "batch": {"maxAge": "30s"},
            "parallelism": 2,
            "resources": {"limits": {"memory": "256Mi"}}
        }
    }));
    sinks
        .create(&PostParams::default(), &sink)
        .await
        .expect("Sink created");
    let waiting = sink_status(&sinks, "raw", "TopicNotFound").await;
    assert_eq!(waiting.source.as_deref(), Some("topic/pin"));

    // The Topic appears: its watch brings the Sink back well before the 30 s re-check.
    let kafka_topic = unique_name("pin");
    create_topic(&client, &namespace, "pin", &kafka_topic).await;
    let config_maps: Api<ConfigMap> = Api::namespaced(client.clone(), &namespace);
    let config = eventually(20, "the ConfigMap raw-sink", || {
        config_of(&config_maps, "raw-sink")
    })
    .await;
    assert_eq!(
        config.kafka.bootstrap_servers,
        stack_env("TRIBUTARY_KAFKA_BOOTSTRAP")
    );
    assert_eq!(config.topic, kafka_topic);
    let group = format!("tributary-{namespace}-raw");
    assert_eq!(config.consumer_group, group);
    assert_eq!(config.dead_letter_prefix, "raw/_dead_letter");
    assert_eq!(config.sink, format!("{namespace}/raw"));

    let deployments: Api<Deployment> = Api::namespaced(client.clone(), &namespace);
    let deployment = eventually(WAIT, "the Deployment raw-sink", || async {
        deployments.get("raw-sink").await.ok()
    })
    .await;
    let owner = &deployment.metadata.owner_references.as_ref().unwrap()[0];
    assert_eq!(
        (owner.kind.as_str(), owner.name.as_str(), owner.controller),
        ("Sink", "raw", Some(true))
    );
    let spec = deployment.spec.clone().unwrap();
    assert_eq!(spec.replicas, Some(2));
    let pod = spec.template.spec.clone().unwrap();
    assert_eq!(pod.automount_service_account_token, Some(false));
    assert_eq!(
        pod.service_account_name.as_deref(),
        Some("tributary-worker")
    );
    let container = &pod.containers[0];
    assert_eq!(container.image.as_deref(), Some(IMAGE));
    assert_eq!(
        container.args.as_deref(),
        Some(&["worker".to_owned(), "sink".to_owned()][..])
    );
    let env = container.env.clone().unwrap();
    let names: Vec<&str> = env.iter().map(|e| e.name.as_str()).collect();
    assert_eq!(
        names,
        [
            ENV_CONFIG,
            ENV_GROUP_INSTANCE_ID,
            "AWS_REGION",
            "AWS_ENDPOINT_URL"
        ]
    );
    let security = container.security_context.clone().unwrap();
    assert_eq!(security.read_only_root_filesystem, Some(true));
    assert_eq!(security.run_as_non_root, Some(true));
    assert_eq!(
        security.capabilities.unwrap().drop,
        Some(vec!["ALL".to_owned()])
    );
    assert_eq!(
        container.resources.clone().unwrap().limits.unwrap()["memory"].0,
        "256Mi"
    );

    // The bucket was created in LocalStack.
    let s3 = tributary_workers::connect::s3(&aws_config().await);
    s3.head_bucket()
        .bucket(&bucket)
        .send()
        .await
        .expect("the bucket exists");

    // No kubelet runs here: the workers never become ready.
    let status = sink_status(&sinks, "raw", "WorkersNotReady").await;
    assert_eq!((status.replicas, status.ready_replicas), (Some(2), Some(0)));
    assert_eq!(status.source.as_deref(), Some("topic/pin"));

    // Lag and last flush come from the group's commits: 5 records, 2 of them flushed.
    produce(&kafka_topic, 0, 5).await;
    commit(&group, &kafka_topic, 0, 2, "2026-11-28T21:04:05.123Z");
    let status = eventually(WAIT, "lag 3 and the last flush in status", || async {
        let status = sinks.get("raw").await.ok()?.status?;
        (status.lag == Some(3) && status.last_flush_time.is_some()).then_some(status)
    })
    .await;
    assert_eq!(
        status.last_flush_time.map(|t| t.0.to_string()).as_deref(),
        Some("2026-11-28T21:04:05Z")
    );

    // A configuration change rolls the pods (a new hash); paused scales to zero.
    let before = hash(&deployment).expect("a config hash");
    let patch = json!({"spec": {"batch": {"maxAge": "30s", "maxRecords": 10}, "paused": true}});
    sinks
        .patch("raw", &PatchParams::default(), &Patch::Merge(&patch))
        .await
        .expect("patched");
    let paused = eventually(WAIT, "the Deployment paused at 0 replicas", || async {
        let d = deployments.get("raw-sink").await.ok()?;
        (d.spec.as_ref()?.replicas == Some(0)).then_some(d)
    })
    .await;
    assert_ne!(hash(&paused), Some(before));
    assert_eq!(
        config_of(&config_maps, "raw-sink")
            .await
            .unwrap()
            .batch
            .max_records,
        10
    );
    let status = sink_status(&sinks, "raw", "Paused").await;
    assert_eq!(status.replicas, Some(0));
    let (ready_status, _) = ready(Some(&status.conditions)).unwrap();
    assert_eq!(ready_status, "True");

    // The children go with the Sink (garbage collection); the bucket stays.
    sinks
        .delete("raw", &DeleteParams::default())
        .await
        .expect("deleted");
    eventually(WAIT, "the Sink gone", || async {
        sinks.get_opt("raw").await.ok()?.is_none().then_some(())
    })
    .await;
    s3.head_bucket()
        .bucket(&bucket)
        .send()
        .await
        .expect("the bucket is kept");
    drop(stop);
}

#[tokio::test]
async fn invalid_and_unsupported_sinks_get_a_condition_and_no_workers() {
    let client = kube_client().await;
    let namespace = unique_name("opsinkbad");
    let stop = start_operator(&client, &namespace).await;
    let sinks: Api<Sink> = Api::namespaced(client.clone(), &namespace);
    let parallel = object(json!({
        "apiVersion": "tributary.dev/v1alpha1",
        "kind": "Sink",
        "metadata": {"name": "parallel-stream"},
        "spec": {
            "source": {"streamRef": {"name": "pin"}},
            "destination": {"url": "file:///var/lake/pin"},
            "parallelism": 2
        }
    }));
    sinks
        .create(&PostParams::default(), &parallel)
        .await
        .expect("created");
    let bad_path = object(json!({
        "apiVersion": "tributary.dev/v1alpha1",
        "kind": "Sink",
        "metadata": {"name": "bad-path"},
        "spec": {
            "source": {"topicRef": {"name": "pin"}},
            "destination": {"url": "s3://lake/pin"},
            "partitioning": {"path": "dt={time:%Y"}
        }
    }));
    sinks
        .create(&PostParams::default(), &bad_path)
        .await
        .expect("created");

    let status = sink_status(&sinks, "parallel-stream", "ParallelismNotSupported").await;
    let message = &status.conditions[0].message;
    assert!(
        message.contains("s3:// destination") && message.contains("set parallelism: 1"),
        "{message}"
    );
    let status = sink_status(&sinks, "bad-path", "InvalidSpec").await;
    assert!(
        status.conditions[0]
            .message
            .starts_with("spec.partitioning.path")
    );

    let deployments: Api<Deployment> = Api::namespaced(client.clone(), &namespace);
    let none = deployments.list(&Default::default()).await.expect("listed");
    assert!(
        none.items.is_empty(),
        "no workers for a Sink that cannot run"
    );
    drop(stop);
}

#[tokio::test]
async fn a_sink_of_a_stream_waits_for_it_then_runs_kinesis_workers_sharing_leases() {
    let client = kube_client().await;
    let namespace = unique_name("opsinkstream");
    let stop = start_operator(&client, &namespace).await;
    let sinks: Api<Sink> = Api::namespaced(client.clone(), &namespace);
    let bucket = unique_name("opsinkstream");
    let sink = object(json!({
        "apiVersion": "tributary.dev/v1alpha1",
        "kind": "Sink",
        "metadata": {"name": "from-stream"},
        "spec": {
            "source": {"streamRef": {"name": "pin"}},
            "destination": {"url": format!("s3://{bucket}/pin"), "createBucket": true},
            "parallelism": 2
        }
    }));
    sinks
        .create(&PostParams::default(), &sink)
        .await
        .expect("created");
    let status = sink_status(&sinks, "from-stream", "StreamNotFound").await;
    assert_eq!(
        status.conditions[0].message,
        format!("Stream {namespace}/pin does not exist")
    );

    // The Stream appears (paused: the Stream controller leaves Kinesis alone here); its watch
    // re-reconciles the Sink.
    let kinesis_name = unique_name("opsink-pin");
    let streams: Api<tributary_crds::Stream> = Api::namespaced(client.clone(), &namespace);
    let stream = object(json!({
        "apiVersion": "tributary.dev/v1alpha1",
        "kind": "Stream",
        "metadata": {"name": "pin", "annotations": {"tributary.dev/paused": "true"}},
        "spec": {"streamName": kinesis_name, "mode": "Provisioned", "shardCount": 1}
    }));
    streams
        .create(&PostParams::default(), &stream)
        .await
        .expect("Stream created");
    let config_maps: Api<ConfigMap> = Api::namespaced(client.clone(), &namespace);
    let config = eventually(WAIT, "the Kinesis worker configuration", || async {
        config_of(&config_maps, "from-stream-sink").await
    })
    .await;
    let kinesis = config.kinesis.expect("a Kinesis source");
    assert_eq!(kinesis.stream_name, kinesis_name);
    assert_eq!(
        kinesis.region.as_deref(),
        Some(stack_env("AWS_REGION").as_str()),
        "the operator's region, where the Stream controller creates streams"
    );
    assert!(config.topic.is_empty() && config.kafka.bootstrap_servers.is_empty());
    let leases = kinesis.leases.expect("shard leases");
    assert_eq!(
        leases.url,
        format!("s3://{bucket}/_tributary/leases/{namespace}/from-stream")
    );

    let deployments: Api<Deployment> = Api::namespaced(client.clone(), &namespace);
    let deployment = eventually(WAIT, "the worker Deployment", || async {
        deployments.get_opt("from-stream-sink").await.ok()?
    })
    .await;
    let spec = deployment.spec.expect("a spec");
    assert_eq!(spec.replicas, Some(2));
    let container = &spec.template.spec.expect("a pod").containers[0];
    let env: Vec<&str> = container
        .env
        .iter()
        .flatten()
        .map(|e| e.name.as_str())
        .collect();
    assert!(!env.contains(&ENV_GROUP_INSTANCE_ID), "{env:?}");
    assert!(env.contains(&ENV_WORKER_ID), "{env:?}");
    let status = sink_status(&sinks, "from-stream", "WorkersNotReady").await;
    assert_eq!(status.source.as_deref(), Some("stream/pin"));
    assert_eq!((status.lag, status.last_flush_time), (None, None));

    // The workers' progress, as they write it into their shard leases, becomes the status.
    let s3 = tributary_workers::connect::s3(&aws_config().await);
    let (lease_bucket, prefix) = leases
        .shards_location(&kinesis_name)
        .expect("a lease location");
    assert_eq!(lease_bucket, bucket);
    for (shard, behind, flushed) in [
        ("shardId-000000000000", 2_500, "2026-11-29T05:00:01.500Z"),
        ("shardId-000000000001", 800, "2026-11-29T05:00:04Z"),
    ] {
        let lease = json!({"owner": "from-stream-sink-0", "counter": 3,
            "millisBehindLatest": behind, "lastFlushTime": flushed});
        s3.put_object()
            .bucket(&bucket)
            .key(format!("{prefix}{shard}.json"))
            .body(lease.to_string().into_bytes().into())
            .send()
            .await
            .expect("a lease written");
    }
    let status = eventually(WAIT, "the progress from the leases", || async {
        let status = sinks.get("from-stream").await.ok()?.status?;
        status.millis_behind_latest.is_some().then_some(status)
    })
    .await;
    assert_eq!(status.millis_behind_latest, Some(2_500));
    assert_eq!(
        status.last_flush_time.map(|t| t.0.to_string()).as_deref(),
        Some("2026-11-29T05:00:04Z")
    );
    assert_eq!(status.lag, None);
    drop(stop);
}

#[tokio::test]
async fn deleting_a_sink_with_delete_deletes_its_consumer_group() {
    let client = kube_client().await;
    let namespace = unique_name("opsinkdel");
    let stop = start_operator(&client, &namespace).await;
    create_cluster(&client, &namespace).await;
    let kafka_topic = unique_name("geo");
    create_topic(&client, &namespace, "geo", &kafka_topic).await;
    let sinks: Api<Sink> = Api::namespaced(client.clone(), &namespace);
    let sink = object(json!({
        "apiVersion": "tributary.dev/v1alpha1",
        "kind": "Sink",
        "metadata": {"name": "geo"},
        "spec": {
            "source": {"topicRef": {"name": "geo"}},
            "destination": {"url": "file:///var/lake/geo"},
            "deletionPolicy": "Delete"
        }
    }));
    sinks
        .create(&PostParams::default(), &sink)
        .await
        .expect("created");
    let group = format!("tributary-{namespace}-geo");
    produce(&kafka_topic, 1, 3).await;
    commit(&group, &kafka_topic, 1, 1, "2026-11-28T21:04:05Z");
    eventually(WAIT, "lag 2 after the commit", || async {
        let status = sinks.get("geo").await.ok()?.status?;
        (status.lag == Some(2) && status.last_flush_time.is_some()).then_some(())
    })
    .await;

    sinks
        .delete("geo", &DeleteParams::default())
        .await
        .expect("deleted");
    eventually(WAIT, "the Sink gone after its group", || async {
        sinks.get_opt("geo").await.ok()?.is_none().then_some(())
    })
    .await;
    // Without the group, nothing is committed any more.
    let consumer: BaseConsumer = connection()
        .client_config()
        .unwrap()
        .set("group.id", &group)
        .create()
        .unwrap();
    let mut partitions = TopicPartitionList::new();
    partitions.add_partition(&kafka_topic, 1);
    let committed = consumer
        .committed_offsets(partitions, Duration::from_secs(10))
        .expect("committed offsets");
    assert_eq!(
        committed.find_partition(&kafka_topic, 1).unwrap().offset(),
        Offset::Invalid
    );
    drop(stop);
}

/// The value of each of `container`'s environment variables as the kubelet would resolve it:
/// literal values, ConfigMap and Secret keys read from the API server, and the downward API's
/// pod name (`pod_name`, as no pod exists here).
async fn resolve_env(
    client: &kube::Client,
    namespace: &str,
    container: &k8s_openapi::api::core::v1::Container,
    pod_name: &str,
) -> Vec<(String, String)> {
    use k8s_openapi::api::core::v1::Secret;
    let config_maps: Api<ConfigMap> = Api::namespaced(client.clone(), namespace);
    let secrets: Api<Secret> = Api::namespaced(client.clone(), namespace);
    let mut resolved = Vec::new();
    for var in container.env.clone().unwrap_or_default() {
        let value = match (var.value, var.value_from) {
            (Some(value), _) => value,
            (None, Some(from)) => {
                if let Some(key) = from.config_map_key_ref {
                    let map = config_maps.get(&key.name).await.expect("the ConfigMap");
                    map.data.expect("data")[&key.key].clone()
                } else if let Some(key) = from.secret_key_ref {
                    let secret = secrets.get(&key.name).await.expect("the Secret");
                    String::from_utf8(secret.data.expect("data")[&key.key].0.clone())
                        .expect("UTF-8")
                } else if let Some(field) = from.field_ref {
                    assert_eq!(field.field_path, "metadata.name", "{}", var.name);
                    pod_name.to_owned()
                } else {
                    panic!("{}: a source the test cannot resolve", var.name)
                }
            }
            (None, None) => String::new(),
        };
        resolved.push((var.name, value));
    }
    resolved
}

/// The `id`s of the JSON-lines records under `prefix` in `bucket`.
async fn ids_in(s3: &aws_sdk_s3::Client, bucket: &str, prefix: &str) -> Vec<i64> {
    let listing = s3
        .list_objects_v2()
        .bucket(bucket)
        .prefix(prefix)
        .send()
        .await
        .expect("a listing");
    let mut ids = Vec::new();
    for object in listing.contents() {
        let body = s3
            .get_object()
            .bucket(bucket)
            .key(object.key().unwrap())
            .send()
            .await
            .expect("get")
            .body
            .collect()
            .await
            .expect("a body")
            .to_vec();
        for line in body.split(|&b| b == b'\n').filter(|l| !l.is_empty()) {
            let record: serde_json::Value = serde_json::from_slice(line).expect("JSON");
            ids.push(record["n"].as_i64().expect("n"));
        }
    }
    ids.sort_unstable();
    ids
}

#[tokio::test]
async fn the_pod_template_runs_the_worker_and_records_arrive_in_s3() {
    let client = kube_client().await;
    let namespace = unique_name("opsinkrun");
    let stop = start_operator(&client, &namespace).await;
    create_cluster(&client, &namespace).await;
    let kafka_topic = unique_name("user");
    create_topic(&client, &namespace, "user", &kafka_topic).await;
    let sinks: Api<Sink> = Api::namespaced(client.clone(), &namespace);
    let bucket = unique_name("lake");
    let sink = object(json!({
        "apiVersion": "tributary.dev/v1alpha1",
        "kind": "Sink",
        "metadata": {"name": "users"},
        "spec": {
            "source": {"topicRef": {"name": "user"}},
            "destination": {"url": format!("s3://{bucket}/raw/user"), "createBucket": true},
            "batch": {"maxRecords": 5, "maxAge": "1h"}
        }
    }));
    sinks
        .create(&PostParams::default(), &sink)
        .await
        .expect("Sink created");
    let deployments: Api<Deployment> = Api::namespaced(client.clone(), &namespace);
    let deployment = eventually(WAIT, "the Deployment users-sink", || async {
        deployments.get("users-sink").await.ok()
    })
    .await;
    let pod = deployment.spec.unwrap().template.spec.unwrap();
    let container = &pod.containers[0];

    // Exactly the container's arguments and environment, nothing inherited; only the AWS
    // credentials stand in for what IRSA injects into a pod in a cluster.
    let env = resolve_env(&client, &namespace, container, "users-sink-0").await;
    let mut worker = std::process::Command::new(tributary_binary());
    worker
        .args(container.args.clone().unwrap_or_default())
        .env_clear()
        .envs(env)
        .env("AWS_ACCESS_KEY_ID", stack_env("AWS_ACCESS_KEY_ID"))
        .env("AWS_SECRET_ACCESS_KEY", stack_env("AWS_SECRET_ACCESS_KEY"));
    let mut worker = KillOnDrop(worker.spawn().expect("the worker starts"));

    // 12 records: two flushes of 5 by maxRecords; the last 2 wait for the hour-long maxAge.
    produce(&kafka_topic, 0, 12).await;
    let s3 = tributary_workers::connect::s3(&aws_config().await);
    let first = eventually(WAIT, "two objects of five records", || async {
        let ids = ids_in(&s3, &bucket, "raw/user/").await;
        (ids.len() == 10).then_some(ids)
    })
    .await;
    assert_eq!(first, (0..10).collect::<Vec<_>>());

    // SIGTERM, as Kubernetes stops a pod: the worker writes what it holds, commits and exits 0.
    let pid = worker.id().to_string();
    let killed = std::process::Command::new("kill")
        .args(["-TERM", &pid])
        .status()
        .expect("kill runs");
    assert!(killed.success());
    let status = eventually(30, "the worker to stop", || {
        let status = worker.try_wait().expect("a status");
        async move { status }
    })
    .await;
    assert!(status.success(), "a graceful stop: {status}");
    assert_eq!(
        ids_in(&s3, &bucket, "raw/user/").await,
        (0..12).collect::<Vec<_>>()
    );
    drop(stop);
}
