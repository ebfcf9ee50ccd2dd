//! The sink worker with a SQL transform (`spec.transform`), against the local broker and
//! LocalStack S3:
//!
//! - the transform reads the records' fields and the Kafka metadata columns, filters rows, and
//!   its result is written as JSON lines under the exactly-once object names (the input
//!   offsets), with records that do not match the schema in the dead letter;
//! - the cleaning Sinks of `examples/pinterest/sinks-clean.yaml`, run on the fixture's raw
//!   records, write the tables the cleaning BatchJob writes (`fixture/expected/clean_*.json`)
//!   — compared after `DISTINCT`, because a micro-batch removes only the duplicates within
//!   itself, and exact de-duplication is the daily BatchJob's.

use std::collections::BTreeMap;
use std::time::Duration;

use rdkafka::admin::{AdminClient, AdminOptions, NewTopic, TopicReplication};
use rdkafka::client::DefaultClientContext;
use rdkafka::producer::{FutureProducer, FutureRecord};
use serde_json::{Value, json};
use tributary_tests::{
    aws_config, eventually, pinterest, s3_objects, spawn_sink, stack_env, unique_name,
};
use tributary_workers::connect::KafkaConnection;
use tributary_workers::sink::config::SinkWorkerConfig;
use tributary_workers::sink::keys::ParsedKey;

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

/// Produce `values` (with their keys) to `partition` of `topic`, in order.
async fn produce(topic: &str, partition: i32, values: &[(Option<String>, Vec<u8>)]) {
    let producer: FutureProducer = connection()
        .client_config()
        .expect("a config")
        .set("linger.ms", "5")
        .create()
        .expect("a producer");
    for (key, value) in values {
        let mut record = FutureRecord::<str, [u8]>::to(topic)
            .partition(partition)
            .payload(value);
        if let Some(key) = key {
            record = record.key(key);
        }
        producer
            .send(record, Duration::from_secs(10))
            .await
            .map_err(|(e, _)| e)
            .expect("produced");
    }
}

async fn create_bucket(s3: &aws_sdk_s3::Client) -> String {
    let bucket = unique_name("transform");
    s3.create_bucket()
        .bucket(&bucket)
        .send()
        .await
        .expect("bucket created");
    bucket
}

/// A worker configuration for `topic` into `s3://bucket/<prefix>`, with `extra` on top.
fn config(topic: &str, bucket: &str, prefix: &str, extra: Value) -> SinkWorkerConfig {
    let mut document = json!({
        "sink": format!("test/{topic}"),
        "topic": topic,
        "consumerGroup": unique_name("group"),
        "kafka": {"bootstrapServers": stack_env("TRIBUTARY_KAFKA_BOOTSTRAP")},
        "destination": {"url": format!("s3://{bucket}/{prefix}"), "multipartThresholdBytes": 5_242_880},
        "deadLetterPrefix": format!("{prefix}/_dead_letter"),
        "batch": {"maxRecords": 100, "maxAge": "1s"}
    });
    for (key, value) in extra.as_object().expect("an object") {
        document[key] = value.clone();
    }
    SinkWorkerConfig::from_json(&document.to_string()).expect("a config")
}

/// Wait until the data objects under `prefix` reach offset `last` of every partition, then
/// stop the worker; returns the data objects.
async fn run_until_written(
    s3: &aws_sdk_s3::Client,
    bucket: &str,
    prefix: &str,
    config: SinkWorkerConfig,
    last: &[u64],
) -> BTreeMap<String, Vec<u8>> {
    let (stop, task) = spawn_sink(config);
    let dead_letters = format!("{prefix}/_dead_letter/");
    let written = eventually(90, "the last offsets in S3", || async {
        let data: BTreeMap<String, Vec<u8>> = s3_objects(s3, bucket, &format!("{prefix}/"))
            .await
            .into_iter()
            .filter(|(key, _)| !key.starts_with(&dead_letters))
            .collect();
        let mut newest = vec![None; last.len()];
        for key in data.keys() {
            let parsed = ParsedKey::parse(key).unwrap_or_else(|e| panic!("{key}: {e}"));
            let partition: usize = parsed.partition.parse().expect("a partition");
            let slot = &mut newest[partition];
            *slot = (*slot).max(Some(parsed.last_offset));
        }
        let done = newest.iter().zip(last).all(|(n, l)| *n == Some(*l));
        done.then_some(data)
    })
    .await;
    stop.send(()).expect("the worker runs");
    task.await.expect("the worker task").expect("the worker");
    written
}

#[tokio::test]
async fn the_transform_reads_fields_and_metadata_and_writes_its_result_exactly_once() {
    let s3 = tributary_workers::connect::s3(&aws_config().await);
    let bucket = create_bucket(&s3).await;
    let topic = unique_name("transform");
    create_topic(&topic, 2).await;
    const PER_PARTITION: u64 = 300;
    for partition in 0..2 {
        let values: Vec<(Option<String>, Vec<u8>)> = (0..PER_PARTITION)
            .map(|n| {
                let id = n * 2 + partition as u64;
                // One record per partition does not match the schema.
                let value = if n == 7 {
                    json!({"id": "seven", "kind": "bad"})
                } else {
                    json!({"id": id, "kind": if id.is_multiple_of(3) { "keep" } else { "drop" }})
                };
                (Some(format!("k{id}")), value.to_string().into_bytes())
            })
            .collect();
        produce(&topic, partition, &values).await;
    }
    let config = config(
        &topic,
        &bucket,
        "out",
        json!({
            "format": {"type": "JsonLines", "schema": [
                {"name": "id", "type": "Int64"}, {"name": "kind", "type": "String"}]},
            "transform": {"sql": "SELECT id, upper(kind) AS kind, _topic, _partition, _offset, \
                _key, _timestamp IS NOT NULL AS timed FROM input WHERE kind = 'keep'"}
        }),
    );
    let last = [PER_PARTITION - 1, PER_PARTITION - 1];
    let written = run_until_written(&s3, &bucket, "out", config, &last).await;
    let mut rows = BTreeMap::new();
    for (key, body) in &written {
        let parsed = ParsedKey::parse(key).unwrap();
        for line in body.split(|&b| b == b'\n').filter(|l| !l.is_empty()) {
            let row: Value = serde_json::from_slice(line).expect("a JSON line");
            let offset = row["_offset"].as_u64().expect("an offset");
            assert!(
                (parsed.first_offset..=parsed.last_offset).contains(&offset),
                "{key}: {row}"
            );
            assert_eq!(row["_partition"].to_string(), parsed.partition, "{row}");
            let id = row["id"].as_i64().expect("an id");
            assert_eq!(
                row,
                json!({"id": id, "kind": "KEEP", "_topic": topic, "_partition": id % 2,
                       "_offset": id / 2, "_key": format!("k{id}"), "timed": true})
            );
            assert!(rows.insert(id, row).is_none(), "id {id} written twice");
        }
    }
    let expected: Vec<i64> = (0..PER_PARTITION as i64 * 2)
        .filter(|id| id % 3 == 0 && id / 2 != 7)
        .collect();
    assert_eq!(rows.keys().copied().collect::<Vec<_>>(), expected);
    let dead = s3_objects(&s3, &bucket, "out/_dead_letter/").await;
    let reasons: Vec<Value> = dead
        .values()
        .flat_map(|body| body.split(|&b| b == b'\n').filter(|l| !l.is_empty()))
        .map(|line| serde_json::from_slice(line).expect("a dead letter"))
        .collect();
    assert_eq!(reasons.len(), 2, "{reasons:?}");
    assert!(
        reasons
            .iter()
            .all(|r| r["offset"] == 7 && r["reason"].as_str().unwrap().contains("\"id\"")),
        "{reasons:?}"
    );
}

#[tokio::test]
async fn the_cleaning_sinks_write_the_batch_cleaning_s_rows() {
    let sinks = pinterest::sinks("sinks-clean.yaml");
    assert_eq!(
        sinks.keys().collect::<Vec<_>>(),
        ["geo-clean", "pin-clean", "user-clean"]
    );
    let s3 = tributary_workers::connect::s3(&aws_config().await);
    let bucket = create_bucket(&s3).await;
    let mut tasks = Vec::new();
    for table in pinterest::TABLES {
        let sink = &sinks[&format!("{table}-clean")];
        let spec = &sink.spec;
        assert_eq!(
            spec.destination.url,
            format!("s3://pinterest-lake/stream-clean/{table}/")
        );
        let lines = pinterest::raw_records(table);
        let topic = unique_name(&format!("clean-{table}"));
        create_topic(&topic, 2).await;
        // Two partitions of alternate records, and batches of 50: duplicates land in
        // different micro-batches, which DISTINCT within a batch does not remove.
        let mut last = Vec::new();
        for partition in 0..2 {
            let values: Vec<(Option<String>, Vec<u8>)> = lines
                .iter()
                .skip(partition)
                .step_by(2)
                .map(|line| (None, line.as_bytes().to_vec()))
                .collect();
            last.push(values.len() as u64 - 1);
            produce(&topic, partition as i32, &values).await;
        }
        let prefix = format!("stream-clean/{table}");
        let config = config(
            &topic,
            &bucket,
            &prefix,
            json!({
                "format": spec.format,
                "transform": spec.transform,
                "batch": {"maxRecords": 50, "maxAge": "1s"},
            }),
        );
        let (s3, bucket, total) = (s3.clone(), bucket.clone(), lines.len());
        tasks.push(tokio::spawn(async move {
            let written = run_until_written(&s3, &bucket, &prefix, config, &last).await;
            let (columns, rows) = pinterest::parquet_rows(written.into_values());
            pinterest::check_clean_table(table, total, &columns, rows)
        }));
    }
    let mut failures = Vec::new();
    for task in tasks {
        if let Err(failure) = task.await.expect("a sink") {
            failures.push(failure);
        }
    }
    assert!(failures.is_empty(), "{}", failures.join("\n"));
}
