//! The sink worker against the local broker and LocalStack S3: every record lands in exactly
//! one object — across partitions, two workers sharing the group, idle partitions flushed by
//! age, bad records dead-lettered, and a worker killed over and over while records keep coming.

use std::collections::BTreeMap;
use std::process::Command;
use std::time::Duration;

use rdkafka::admin::{AdminClient, AdminOptions, NewTopic, TopicReplication};
use rdkafka::client::DefaultClientContext;
use rdkafka::producer::{FutureProducer, FutureRecord};
use serde_json::{Value, json};
use tributary_tests::{
    KillOnDrop, aws_config, eventually, s3_objects, spawn_sink, stack_env, tributary_binary,
    unique_name,
};
use tributary_workers::connect::KafkaConnection;
use tributary_workers::sink::config::{ENV_CONFIG, ENV_GROUP_INSTANCE_ID, SinkWorkerConfig};
use tributary_workers::sink::keys::ParsedKey;
use tributary_workers::sink::worker::ENV_FAILPOINT;

fn connection() -> KafkaConnection {
    KafkaConnection::plaintext(stack_env("TRIBUTARY_KAFKA_BOOTSTRAP"))
}

async fn create_topic(name: &str, partitions: i32) {
    let admin: AdminClient<DefaultClientContext> = connection()
        .client_config()
        .expect("a config")
        .create()
        .expect("an admin client");
    let topic = NewTopic::new(name, partitions, TopicReplication::Fixed(1));
    for result in admin
        .create_topics([&topic], &AdminOptions::new())
        .await
        .expect("create topics")
    {
        result.expect("topic created");
    }
}

fn producer() -> FutureProducer {
    connection()
        .client_config()
        .expect("a config")
        .set("linger.ms", "5")
        .create()
        .expect("a producer")
}

async fn produce(producer: &FutureProducer, topic: &str, partition: i32, value: &[u8]) {
    producer
        .send(
            FutureRecord::<(), [u8]>::to(topic)
                .partition(partition)
                .payload(value),
            Duration::from_secs(10),
        )
        .await
        .map_err(|(e, _)| e)
        .expect("produced");
}

async fn create_bucket(s3: &aws_sdk_s3::Client) -> String {
    let bucket = unique_name("sink");
    s3.create_bucket()
        .bucket(&bucket)
        .send()
        .await
        .expect("bucket created");
    bucket
}

/// A worker configuration for `topic` into `s3://bucket/raw`, with `extra` fields on top.
fn config(topic: &str, bucket: &str, extra: Value) -> SinkWorkerConfig {
    let mut document = json!({
        "sink": format!("test/{topic}"),
        "topic": topic,
        "consumerGroup": unique_name("group"),
        "kafka": {"bootstrapServers": stack_env("TRIBUTARY_KAFKA_BOOTSTRAP")},
        "destination": {"url": format!("s3://{bucket}/raw"), "multipartThresholdBytes": 5_242_880},
        "deadLetterPrefix": "raw/_dead_letter",
        "batch": {"maxRecords": 200, "maxAge": "1s"}
    });
    for (key, value) in extra.as_object().expect("an object") {
        document[key] = value.clone();
    }
    SinkWorkerConfig::from_json(&document.to_string()).expect("a config")
}

/// The `id`s of the records in the JSON-lines data objects under `raw/` (dead letters
/// excluded), each as often as it was written; checks each object's name against its records.
async fn written_ids(s3: &aws_sdk_s3::Client, bucket: &str) -> BTreeMap<i64, usize> {
    let mut ids = BTreeMap::new();
    for (key, body) in s3_objects(s3, bucket, "raw/").await {
        if key.starts_with("raw/_dead_letter/") {
            continue;
        }
        let parsed = ParsedKey::parse(&key).unwrap_or_else(|e| panic!("{key}: {e}"));
        assert!(parsed.first_offset <= parsed.last_offset);
        for line in body.split(|&b| b == b'\n').filter(|l| !l.is_empty()) {
            let record: Value = serde_json::from_slice(line).expect("a JSON line");
            *ids.entry(record["id"].as_i64().expect("an id"))
                .or_default() += 1;
        }
    }
    ids
}

/// Wait until the objects hold ids `0..count`, then check each is there exactly once.
async fn expect_exactly_once(s3: &aws_sdk_s3::Client, bucket: &str, count: i64, seconds: u64) {
    let ids = eventually(seconds, "every record in S3", || async {
        let ids = written_ids(s3, bucket).await;
        (ids.len() as i64 >= count).then_some(ids)
    })
    .await;
    let duplicated: Vec<_> = ids.iter().filter(|(_, n)| **n > 1).collect();
    assert!(
        duplicated.is_empty(),
        "written more than once: {duplicated:?}"
    );
    assert_eq!(
        ids.keys().copied().collect::<Vec<_>>(),
        (0..count).collect::<Vec<_>>()
    );
}

fn record(id: i64) -> Vec<u8> {
    json!({"id": id, "bucket": (id / 7) % 3, "ts": 1_709_214_356_000_i64 + id * 1000})
        .to_string()
        .into_bytes()
}

#[tokio::test]
async fn records_across_partitions_land_exactly_once() {
    let s3 = tributary_workers::connect::s3(&aws_config().await);
    let bucket = create_bucket(&s3).await;
    let topic = unique_name("sink-parts");
    create_topic(&topic, 4).await;
    let producer = producer();
    const COUNT: i64 = 2_000;
    for id in 0..COUNT {
        produce(&producer, &topic, (id % 4) as i32, &record(id)).await;
    }
    let config = config(
        &topic,
        &bucket,
        json!({"partitioning": {"path": "b={field:bucket}/dt={time:%Y-%m-%d}", "timeField": "ts", "timeFormat": "epochMillis"}}),
    );
    let (stop, task) = spawn_sink(config);
    expect_exactly_once(&s3, &bucket, COUNT, 60).await;
    let keys: Vec<String> = s3_objects(&s3, &bucket, "raw/").await.into_keys().collect();
    assert!(
        keys.iter().any(|k| k.starts_with("raw/b=1/dt=2024-02-29/")),
        "paths follow the template: {keys:?}"
    );
    stop.send(()).expect("the worker runs");
    task.await.expect("joined").expect("a clean stop");
}

#[tokio::test]
async fn two_workers_share_the_partitions_and_write_each_record_once() {
    let s3 = tributary_workers::connect::s3(&aws_config().await);
    let bucket = create_bucket(&s3).await;
    let topic = unique_name("sink-group");
    create_topic(&topic, 4).await;
    let producer = producer();
    let config = config(
        &topic,
        &bucket,
        json!({"batch": {"maxRecords": 50, "maxAge": "1s"}}),
    );
    let (stop_a, task_a) = spawn_sink(config.clone());
    for id in 0..600 {
        produce(&producer, &topic, (id % 4) as i32, &record(id)).await;
    }
    // The second worker joins while the first is busy: the group rebalances.
    let (stop_b, task_b) = spawn_sink(config);
    for id in 600..1_200 {
        produce(&producer, &topic, (id % 4) as i32, &record(id)).await;
    }
    expect_exactly_once(&s3, &bucket, 1_200, 90).await;
    stop_a.send(()).expect("worker a runs");
    stop_b.send(()).expect("worker b runs");
    task_a.await.expect("joined").expect("a clean stop");
    task_b.await.expect("joined").expect("a clean stop");
}

#[tokio::test]
async fn an_idle_partition_is_flushed_by_age() {
    let s3 = tributary_workers::connect::s3(&aws_config().await);
    let bucket = create_bucket(&s3).await;
    let topic = unique_name("sink-idle");
    create_topic(&topic, 2).await;
    let producer = producer();
    for id in 0..5 {
        produce(&producer, &topic, 1, &record(id)).await;
    }
    let config = config(
        &topic,
        &bucket,
        json!({"batch": {"maxRecords": 1_000_000, "maxAge": "2s"}}),
    );
    let (stop, task) = spawn_sink(config);
    // Nothing else arrives: only the age can flush these five records.
    expect_exactly_once(&s3, &bucket, 5, 30).await;
    let keys: Vec<String> = s3_objects(&s3, &bucket, "raw/").await.into_keys().collect();
    let name = format!("raw/{topic}+1+00000000000000000000+00000000000000000004.json");
    assert_eq!(keys, [name]);
    stop.send(()).expect("the worker runs");
    task.await.expect("joined").expect("a clean stop");
}

#[tokio::test]
async fn bad_records_go_to_the_dead_letter_and_the_sink_goes_on() {
    let s3 = tributary_workers::connect::s3(&aws_config().await);
    let bucket = create_bucket(&s3).await;
    let topic = unique_name("sink-dlq");
    create_topic(&topic, 1).await;
    let producer = producer();
    produce(&producer, &topic, 0, &record(0)).await;
    produce(&producer, &topic, 0, b"not json at all").await;
    produce(&producer, &topic, 0, &record(1)).await;
    produce(
        &producer,
        &topic,
        0,
        br#"{"id": 99, "bucket": {"nested": true}}"#,
    )
    .await;
    produce(&producer, &topic, 0, &record(2)).await;
    let config = config(
        &topic,
        &bucket,
        json!({"partitioning": {"path": "b={field:bucket}"}}),
    );
    let (stop, task) = spawn_sink(config);
    expect_exactly_once(&s3, &bucket, 3, 30).await;
    let dead = s3_objects(&s3, &bucket, "raw/_dead_letter/").await;
    let (key, body) = dead.iter().next().expect("a dead-letter object");
    assert_eq!(
        key,
        &format!("raw/_dead_letter/{topic}+0+00000000000000000001.json")
    );
    let lines: Vec<Value> = body
        .split(|&b| b == b'\n')
        .filter(|l| !l.is_empty())
        .map(|l| serde_json::from_slice(l).expect("JSON"))
        .collect();
    assert_eq!(lines.len(), 2, "{lines:?}");
    assert_eq!(lines[0]["offset"], 1);
    assert_eq!(lines[0]["value"], "not json at all");
    assert!(
        lines[0]["reason"]
            .as_str()
            .unwrap()
            .starts_with("the value is not JSON")
    );
    assert_eq!(lines[1]["offset"], 3);
    assert!(
        lines[1]["reason"].as_str().unwrap().contains("bucket"),
        "{}",
        lines[1]
    );
    stop.send(()).expect("the worker runs");
    task.await.expect("joined").expect("a clean stop");
}

#[tokio::test]
async fn tolerance_none_stops_at_the_first_bad_record_after_writing_what_came_before() {
    let s3 = tributary_workers::connect::s3(&aws_config().await);
    let bucket = create_bucket(&s3).await;
    let topic = unique_name("sink-strict");
    create_topic(&topic, 1).await;
    let producer = producer();
    for id in 0..3 {
        produce(&producer, &topic, 0, &record(id)).await;
    }
    produce(&producer, &topic, 0, b"{broken").await;
    produce(&producer, &topic, 0, &record(3)).await;
    let config = config(
        &topic,
        &bucket,
        json!({"errors": {"tolerance": "none"}, "batch": {"maxRecords": 1000, "maxAge": "1h"}}),
    );
    let (_stop, task) = spawn_sink(config);
    let error = tokio::time::timeout(Duration::from_secs(30), task)
        .await
        .expect("the worker stops by itself")
        .expect("joined")
        .expect_err("a bad record stops it");
    let message = error.to_string();
    assert!(message.contains(&format!("{topic}/0@3")), "{message}");
    assert!(message.contains("errors.tolerance is none"), "{message}");
    let ids = written_ids(&s3, &bucket).await;
    assert_eq!(ids.into_keys().collect::<Vec<_>>(), [0, 1, 2]);
    assert!(
        s3_objects(&s3, &bucket, "raw/_dead_letter/")
            .await
            .is_empty()
    );
}

#[tokio::test]
async fn parquet_objects_read_back_with_the_schema_s_types() {
    use arrow_array::{Array, Int64Array, StringArray, TimestampMicrosecondArray};
    use arrow_schema::{DataType, TimeUnit};
    use parquet::arrow::arrow_reader::ParquetRecordBatchReaderBuilder;

    let s3 = tributary_workers::connect::s3(&aws_config().await);
    let bucket = create_bucket(&s3).await;
    let topic = unique_name("sink-parquet");
    create_topic(&topic, 1).await;
    let producer = producer();
    for id in 0..10 {
        let value = json!({"id": id, "title": format!("pin {id}"), "ts": 1_709_214_356_000_i64 + id, "extra": true});
        produce(&producer, &topic, 0, value.to_string().as_bytes()).await;
    }
    produce(
        &producer,
        &topic,
        0,
        br#"{"id": "eleven", "title": "x", "ts": 0}"#,
    )
    .await;
    let config = config(
        &topic,
        &bucket,
        json!({"format": {"type": "Parquet", "compression": "Zstd", "schema": [
            {"name": "id", "type": "Int64", "nullable": false},
            {"name": "title", "type": "String"},
            {"name": "ts", "type": "Timestamp"}
        ]}}),
    );
    let (stop, task) = spawn_sink(config);
    let data = eventually(30, "a Parquet object", || async {
        let objects = s3_objects(&s3, &bucket, "raw/").await;
        let data: Vec<_> = objects
            .into_iter()
            .filter(|(key, _)| key.ends_with(".parquet"))
            .collect();
        (!data.is_empty()).then_some(data)
    })
    .await;
    assert_eq!(data.len(), 1, "one flush of ten good records");
    let (key, body) = &data[0];
    assert!(
        key.ends_with("+0+00000000000000000000+00000000000000000010.parquet"),
        "{key}"
    );
    let reader = ParquetRecordBatchReaderBuilder::try_new(bytes::Bytes::from(body.clone()))
        .expect("a Parquet file");
    let schema = reader.schema().clone();
    let fields: Vec<(&str, &DataType)> = schema
        .fields()
        .iter()
        .map(|f| (f.name().as_str(), f.data_type()))
        .collect();
    assert_eq!(
        fields,
        [
            ("id", &DataType::Int64),
            ("title", &DataType::Utf8),
            (
                "ts",
                &DataType::Timestamp(TimeUnit::Microsecond, Some("UTC".into()))
            )
        ]
    );
    let batches: Vec<_> = reader
        .build()
        .expect("a reader")
        .collect::<Result<_, _>>()
        .expect("batches");
    let batch = &batches[0];
    let ids = batch
        .column(0)
        .as_any()
        .downcast_ref::<Int64Array>()
        .unwrap();
    assert_eq!(ids.values().to_vec(), (0..10).collect::<Vec<i64>>());
    let titles = batch
        .column(1)
        .as_any()
        .downcast_ref::<StringArray>()
        .unwrap();
    assert_eq!(titles.value(3), "pin 3");
    let times = batch
        .column(2)
        .as_any()
        .downcast_ref::<TimestampMicrosecondArray>()
        .unwrap();
    assert_eq!(times.value(2), (1_709_214_356_000 + 2) * 1000);
    assert_eq!(batch.num_rows(), 10);
    assert_eq!(batches.iter().map(|b| b.num_rows()).sum::<usize>(), 10);
    let dead = s3_objects(&s3, &bucket, "raw/_dead_letter/").await;
    let line: Value = serde_json::from_slice(dead.values().next().expect("a dead letter"))
        .expect("one JSON line");
    assert_eq!(line["offset"], 10);
    assert!(line["reason"].as_str().unwrap().contains("id"), "{line}");
    stop.send(()).expect("the worker runs");
    task.await.expect("joined").expect("a clean stop");
}

/// One run of the worker binary, as a pod runs it: the configuration in the environment.
fn start_worker(config: &SinkWorkerConfig, failpoint: Option<String>) -> KillOnDrop {
    let mut command = Command::new(tributary_binary());
    command
        .args(["worker", "sink", "--http-addr", "127.0.0.1:0"])
        .env(ENV_CONFIG, config.to_json())
        // As in a pod, where it is the pod's name: the restarted worker takes over at once.
        .env(ENV_GROUP_INSTANCE_ID, "sink-worker-0")
        .env(
            "RUST_LOG",
            std::env::var("WORKER_LOG").unwrap_or_else(|_| "warn".into()),
        );
    match failpoint {
        Some(point) => command.env(ENV_FAILPOINT, point),
        None => command.env_remove(ENV_FAILPOINT),
    };
    KillOnDrop(command.spawn().expect("the worker starts"))
}

#[tokio::test]
async fn a_worker_killed_again_and_again_loses_and_duplicates_nothing() {
    let s3 = tributary_workers::connect::s3(&aws_config().await);
    let bucket = create_bucket(&s3).await;
    let topic = unique_name("sink-crash");
    create_topic(&topic, 3).await;
    // Three paths per flush, so a crash can fall between a flush's objects.
    let config = config(
        &topic,
        &bucket,
        json!({
            "partitioning": {"path": "b={field:bucket}"},
            "batch": {"maxRecords": 60, "maxAge": "500ms"}
        }),
    );
    const COUNT: i64 = 4_000;
    let producing = tokio::spawn({
        let topic = topic.clone();
        async move {
            let producer = producer();
            for id in 0..COUNT {
                produce(&producer, &topic, (id % 3) as i32, &record(id)).await;
                if id % 100 == 0 {
                    tokio::time::sleep(Duration::from_millis(60)).await;
                }
            }
        }
    });
    // Twelve crashes: a kill -9 after a pseudo-random time, a stop between a flush's uploads
    // and its commit, and a stop between two objects of one flush, in turn.
    let mut seed: u64 = 0x5eed;
    let mut crashes = Vec::new();
    for round in 0..12 {
        seed = seed.wrapping_mul(6_364_136_223_846_793_005).wrapping_add(1);
        let (failpoint, kill_after) = match round % 3 {
            0 => (
                None,
                Some(Duration::from_millis(300 + (seed >> 33) % 1_700)),
            ),
            1 => (Some(format!("after-upload:{}", 1 + (seed >> 33) % 4)), None),
            _ => (Some(format!("mid-flush:{}", 1 + (seed >> 33) % 3)), None),
        };
        let mut child = start_worker(&config, failpoint.clone());
        let status = match kill_after {
            Some(after) => {
                tokio::time::sleep(after).await;
                child.kill().expect("kill -9");
                child.wait().expect("the worker ends")
            }
            None => {
                let status = eventually(60, "the worker to stop at its failpoint", || {
                    let status = child.try_wait().expect("a status");
                    async move { status }
                })
                .await;
                assert!(!status.success(), "a failpoint aborts: {status}");
                status
            }
        };
        crashes.push((failpoint, kill_after, status));
    }
    producing.await.expect("all produced");
    let mut last = start_worker(&config, None);
    expect_exactly_once(&s3, &bucket, COUNT, 120).await;
    last.kill().expect("stop the last worker");
    last.wait().expect("the worker ends");
    assert_eq!(crashes.len(), 12, "{crashes:?}");
}
