//! The operator against the real API server and broker: KafkaCluster and Topic, end to end.

use std::time::Duration;

use kube::api::{Api, DeleteParams, Patch, PatchParams, PostParams};
use rdkafka::admin::{
    AdminClient, AdminOptions, AlterConfig, NewTopic, ResourceSpecifier, TopicReplication,
};
use rdkafka::client::DefaultClientContext;
use serde_json::json;
use tributary_crds::{KafkaCluster, Topic};
use tributary_tests::{eventually, kube_client, stack_env, start_operator, unique_name};
use tributary_workers::connect::KafkaConnection;

const WAIT: u64 = 60;

fn admin() -> AdminClient<DefaultClientContext> {
    KafkaConnection::plaintext(stack_env("TRIBUTARY_KAFKA_BOOTSTRAP"))
        .client_config()
        .expect("a plaintext config")
        .set("allow.auto.create.topics", "false")
        .create()
        .expect("an admin client")
}

/// Partitions and the value of one config of a topic in Kafka, or `None` if it does not exist.
async fn in_kafka(
    admin: &AdminClient<DefaultClientContext>,
    topic: &str,
    key: &str,
) -> Option<(usize, Option<String>)> {
    let metadata = admin
        .inner()
        .fetch_metadata(Some(topic), Duration::from_secs(10))
        .expect("metadata");
    let found = metadata
        .topics()
        .iter()
        .find(|t| t.name() == topic && t.error().is_none())?;
    let partitions = found.partitions().len();
    if partitions == 0 {
        return None;
    }
    let configs = admin
        .describe_configs(&[ResourceSpecifier::Topic(topic)], &AdminOptions::new())
        .await
        .expect("describe configs");
    let value = configs[0]
        .as_ref()
        .ok()?
        .get(key)
        .and_then(|e| e.value.clone());
    Some((partitions, value))
}

fn ready(
    conditions: Option<&Vec<k8s_openapi::apimachinery::pkg::apis::meta::v1::Condition>>,
) -> Option<(String, String)> {
    conditions?
        .iter()
        .find(|c| c.type_ == "Ready")
        .map(|c| (c.status.clone(), c.reason.clone()))
}

async fn topic_ready(topics: &Api<Topic>, name: &str, status: &str, reason: &str) -> Topic {
    eventually(
        WAIT,
        &format!("Topic {name} Ready={status} {reason}"),
        || async {
            let topic = topics.get(name).await.ok()?;
            let (s, r) = ready(topic.status.as_ref().map(|s| &s.conditions))?;
            (s == status && r == reason).then_some(topic)
        },
    )
    .await
}

fn topic_manifest(name: &str, kafka_name: &str, partitions: i32, policy: &str) -> Topic {
    serde_json::from_value(json!({
        "apiVersion": "tributary.dev/v1alpha1",
        "kind": "Topic",
        "metadata": {"name": name},
        "spec": {
            "clusterRef": {"name": "local"},
            "topicName": kafka_name,
            "partitions": partitions,
            "deletionPolicy": policy,
            "config": {"retention.ms": 3_600_000, "cleanup.policy": "delete"}
        }
    }))
    .expect("a Topic")
}

#[tokio::test]
async fn topics_follow_the_spec_revert_drift_and_delete_by_policy() {
    let client = kube_client().await;
    let namespace = unique_name("optopics");
    let operator = start_operator(&client, &namespace, Duration::from_secs(3)).await;
    let kafka = admin();

    // The cluster: an external one, the local broker.
    let clusters: Api<KafkaCluster> = Api::namespaced(client.clone(), &namespace);
    let cluster: KafkaCluster = serde_json::from_value(json!({
        "apiVersion": "tributary.dev/v1alpha1",
        "kind": "KafkaCluster",
        "metadata": {"name": "local"},
        "spec": {"external": {"bootstrapServers": [stack_env("TRIBUTARY_KAFKA_BOOTSTRAP")]}}
    }))
    .unwrap();
    clusters
        .create(&PostParams::default(), &cluster)
        .await
        .expect("KafkaCluster created");
    let brokers = eventually(WAIT, "KafkaCluster Ready", || async {
        let status = clusters.get("local").await.ok()?.status?;
        let (s, _) = ready(Some(&status.conditions))?;
        (s == "True").then_some(status.broker_count)
    })
    .await;
    assert_eq!(brokers, Some(1), "the broker count is published");

    // Create: the topic appears in Kafka as written.
    let topics: Api<Topic> = Api::namespaced(client.clone(), &namespace);
    let kafka_name = unique_name("Pin_Events");
    topics
        .create(
            &PostParams::default(),
            &topic_manifest("pin", &kafka_name, 3, "Delete"),
        )
        .await
        .expect("Topic created");
    let topic = topic_ready(&topics, "pin", "True", "InSync").await;
    let status = topic.status.expect("a status");
    assert_eq!(
        (status.topic_name.as_deref(), status.partitions),
        (Some(kafka_name.as_str()), Some(3))
    );
    assert_eq!(
        in_kafka(&kafka, &kafka_name, "retention.ms").await,
        Some((3, Some("3600000".into())))
    );

    // Spec changes: Kafka follows.
    let patch = json!({"spec": {"partitions": 5, "config": {"retention.ms": 7_200_000, "cleanup.policy": "delete"}}});
    topics
        .patch("pin", &PatchParams::default(), &Patch::Merge(&patch))
        .await
        .expect("patched");
    eventually(
        WAIT,
        "5 partitions and the new retention in Kafka",
        || async {
            (in_kafka(&kafka, &kafka_name, "retention.ms").await
                == Some((5, Some("7200000".into()))))
            .then_some(())
        },
    )
    .await;

    // Drift: someone changes an owned config in Kafka; the next resync reverts it.
    let alter = AlterConfig::new(ResourceSpecifier::Topic(&kafka_name))
        .set("retention.ms", "1000")
        .set("cleanup.policy", "delete");
    kafka
        .alter_configs(&[alter], &AdminOptions::new())
        .await
        .expect("altered behind the operator's back");
    eventually(WAIT, "the drift reverted", || async {
        let topic = topics.get("pin").await.ok()?;
        let drifted = topic.status?.drifted_keys;
        let reverted = in_kafka(&kafka, &kafka_name, "retention.ms").await
            == Some((5, Some("7200000".into())));
        (reverted && drifted == ["retention.ms"]).then_some(())
    })
    .await;

    // Deleted behind the operator's back: recreated at the next resync.
    kafka
        .delete_topics(&[&kafka_name], &AdminOptions::new())
        .await
        .expect("deleted behind the operator's back");
    eventually(WAIT, "the topic recreated", || async {
        (in_kafka(&kafka, &kafka_name, "retention.ms").await == Some((5, Some("7200000".into()))))
            .then_some(())
    })
    .await;

    // A decrease cannot be carried out (CEL refuses it up front on API servers that enforce it).
    topics
        .patch(
            "pin",
            &PatchParams::default(),
            &Patch::Merge(&json!({"spec": {"partitions": 2}})),
        )
        .await
        .unwrap();
    let blocked = topic_ready(&topics, "pin", "False", "PartitionDecreaseNotSupported").await;
    assert_eq!(blocked.status.unwrap().partitions, Some(5));

    // A second Topic for the same Kafka topic: the newer one reports the conflict.
    topics
        .create(
            &PostParams::default(),
            &topic_manifest("pin-again", &kafka_name, 5, "Delete"),
        )
        .await
        .unwrap();
    topic_ready(&topics, "pin-again", "False", "Conflict").await;
    topics
        .delete("pin-again", &DeleteParams::default())
        .await
        .unwrap();
    eventually(WAIT, "the conflicting Topic gone", || async {
        topics
            .get_opt("pin-again")
            .await
            .ok()?
            .is_none()
            .then_some(())
    })
    .await;
    assert!(
        in_kafka(&kafka, &kafka_name, "retention.ms")
            .await
            .is_some(),
        "deleting the newer Topic keeps the topic"
    );

    // Adoption: a topic that already exists in Kafka is taken over and raised.
    let adopted = unique_name("adopted");
    kafka
        .create_topics(
            &[NewTopic::new(&adopted, 2, TopicReplication::Fixed(1))],
            &AdminOptions::new(),
        )
        .await
        .expect("created directly in Kafka");
    topics
        .create(
            &PostParams::default(),
            &topic_manifest("adopted", &adopted, 4, "Retain"),
        )
        .await
        .unwrap();
    topic_ready(&topics, "adopted", "True", "InSync").await;
    assert_eq!(
        in_kafka(&kafka, &adopted, "retention.ms").await,
        Some((4, Some("3600000".into())))
    );

    // Deletion by policy: Retain keeps the Kafka topic, Delete removes it.
    topics
        .delete("adopted", &DeleteParams::default())
        .await
        .unwrap();
    topics
        .patch(
            "pin",
            &PatchParams::default(),
            &Patch::Merge(&json!({"spec": {"partitions": 5}})),
        )
        .await
        .unwrap();
    topics
        .delete("pin", &DeleteParams::default())
        .await
        .unwrap();
    eventually(WAIT, "both Topic objects gone", || async {
        let gone = topics.get_opt("pin").await.ok()?.is_none()
            && topics.get_opt("adopted").await.ok()?.is_none();
        gone.then_some(())
    })
    .await;
    assert!(
        in_kafka(&kafka, &adopted, "retention.ms").await.is_some(),
        "Retain keeps the Kafka topic"
    );
    assert_eq!(
        in_kafka(&kafka, &kafka_name, "retention.ms").await,
        None,
        "Delete removes the Kafka topic"
    );

    operator.stop().await;
    kafka
        .delete_topics(&[&adopted], &AdminOptions::new())
        .await
        .expect("clean up");
    let namespaces: Api<k8s_openapi::api::core::v1::Namespace> = Api::all(client);
    namespaces
        .delete(&namespace, &DeleteParams::default())
        .await
        .expect("namespace deleted");
}
