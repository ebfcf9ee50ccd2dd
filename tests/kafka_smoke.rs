//! The Kafka-protocol broker through the project's Kafka client configuration: create, describe
//! and delete a topic; produce, consume with a consumer group, commit, and resume.

use std::time::Duration;

use futures::StreamExt;
use rdkafka::admin::{AdminClient, AdminOptions, NewTopic, ResourceSpecifier, TopicReplication};
use rdkafka::client::DefaultClientContext;
use rdkafka::consumer::{CommitMode, Consumer, StreamConsumer};
use rdkafka::producer::{FutureProducer, FutureRecord};
use rdkafka::{Message, Offset, TopicPartitionList};
use tributary_tests::{stack_env, unique_name};
use tributary_workers::connect::KafkaConnection;

const PARTITIONS: i32 = 3;
const RECORDS: usize = 30;
const TIMEOUT: Duration = Duration::from_secs(20);

fn connection() -> KafkaConnection {
    KafkaConnection::plaintext(stack_env("TRIBUTARY_KAFKA_BOOTSTRAP"))
}

fn consumer(group: &str) -> StreamConsumer {
    connection()
        .client_config()
        .expect("a plaintext config")
        .set("group.id", group)
        .set("enable.auto.commit", "false")
        .set("auto.offset.reset", "earliest")
        .create()
        .expect("a consumer")
}

/// Read `count` records from `topic` with `group`, commit their offsets, and return the values.
async fn consume_and_commit(topic: &str, group: &str, count: usize) -> Vec<String> {
    let consumer = consumer(group);
    consumer.subscribe(&[topic]).expect("subscribe");
    let mut values = Vec::new();
    let mut offsets = TopicPartitionList::new();
    let mut stream = consumer.stream();
    while values.len() < count {
        let message = tokio::time::timeout(TIMEOUT, stream.next())
            .await
            .unwrap_or_else(|_| panic!("only {} of {count} records arrived", values.len()))
            .expect("the stream goes on")
            .expect("a message");
        values.push(
            String::from_utf8(message.payload().expect("a payload").to_vec()).expect("utf-8"),
        );
        offsets
            .add_partition_offset(
                topic,
                message.partition(),
                Offset::Offset(message.offset() + 1),
            )
            .expect("offset");
    }
    drop(stream);
    // Explicit offsets: reading committed offsets on a subscribed consumer can hang its shutdown.
    consumer.commit(&offsets, CommitMode::Sync).expect("commit");
    values
}

#[tokio::test]
async fn topic_lifecycle_and_consumer_group_resume() {
    let admin: AdminClient<DefaultClientContext> = connection()
        .client_config()
        .expect("a plaintext config")
        .create()
        .expect("an admin client");
    let options = AdminOptions::new().operation_timeout(Some(TIMEOUT));
    let topic = unique_name("smoke");

    let created = admin
        .create_topics(
            &[
                NewTopic::new(&topic, PARTITIONS, TopicReplication::Fixed(1))
                    .set("retention.ms", "3600000"),
            ],
            &options,
        )
        .await
        .expect("create topics request");
    assert!(created[0].is_ok(), "topic created: {created:?}");

    let metadata = admin
        .inner()
        .fetch_metadata(Some(&topic), TIMEOUT)
        .expect("metadata");
    assert_eq!(metadata.topics()[0].partitions().len(), PARTITIONS as usize);
    let configs = admin
        .describe_configs(&[ResourceSpecifier::Topic(&topic)], &options)
        .await
        .expect("describe");
    let config = configs[0].as_ref().expect("topic config");
    let retention = config.get("retention.ms").and_then(|e| e.value.clone());
    assert_eq!(retention.as_deref(), Some("3600000"));

    let producer: FutureProducer = connection()
        .client_config()
        .expect("a plaintext config")
        .set("acks", "all")
        .create()
        .expect("a producer");
    for i in 0..RECORDS {
        let key = format!("user-{}", i % 7);
        let value = format!(r#"{{"ind":{i}}}"#);
        producer
            .send(FutureRecord::to(&topic).key(&key).payload(&value), TIMEOUT)
            .await
            .expect("delivered");
    }

    let group = unique_name("group");
    let first = consume_and_commit(&topic, &group, 20).await;
    // A new consumer of the same group resumes after the committed offsets.
    let rest = {
        let consumer = consumer(&group);
        consumer.subscribe(&[topic.as_str()]).expect("subscribe");
        let mut values = Vec::new();
        let mut stream = consumer.stream();
        while let Ok(Some(message)) =
            tokio::time::timeout(Duration::from_secs(5), stream.next()).await
        {
            let message = message.expect("a message");
            values.push(
                String::from_utf8(message.payload().expect("a payload").to_vec()).expect("utf-8"),
            );
        }
        values
    };
    let mut all: Vec<String> = first.into_iter().chain(rest).collect();
    all.sort();
    let mut expected: Vec<String> = (0..RECORDS).map(|i| format!(r#"{{"ind":{i}}}"#)).collect();
    expected.sort();
    assert_eq!(
        all, expected,
        "every record exactly once across the two consumers"
    );

    let deleted = admin
        .delete_topics(&[&topic], &options)
        .await
        .expect("delete topics request");
    assert!(deleted[0].is_ok(), "topic deleted: {deleted:?}");
}
