//! The cleaning Sinks of `examples/pinterest/sinks-stream-clean.yaml` against LocalStack
//! Kinesis and S3 (issue 7: the cleaning transform's output equals the batch cleaning's on
//! the same input): the fixture's raw pin, geo and user records are put into three two-shard
//! streams, keyed by the post's number as `tributary emulate --streams` keys them; each
//! Sink's worker runs with the Sink's own format, transform and partitioning, read from the
//! manifest; the Parquet they write equals the tables the cleaning BatchJob writes
//! (`fixture/expected/clean_*.json`) — compared after `DISTINCT`, because a micro-batch
//! removes only the duplicates within itself (decision 0041).

use std::collections::BTreeMap;

use aws_sdk_kinesis::Client;
use aws_sdk_kinesis::primitives::Blob;
use aws_sdk_kinesis::types::PutRecordsRequestEntry;
use serde_json::{Value, json};
use tributary_crds::Sink;
use tributary_tests::{
    aws_config, eventually, pinterest, s3_objects, spawn_sink, stream_active, unique_name,
};
use tributary_workers::sink::config::SinkWorkerConfig;
use tributary_workers::sink::kinesis_keys::{ParsedShardKey, SequenceNumber};

/// The bucket the manifest writes to; the test writes the same paths to a bucket of its own.
const LAKE: &str = "s3://pinterest-lake/";

/// The record field whose value is the post's number: the emulator's partition key.
fn post_number_field(table: &str) -> &'static str {
    if table == "pin" { "index" } else { "ind" }
}

async fn create_stream(kinesis: &Client, stream: &str) {
    kinesis
        .create_stream()
        .stream_name(stream)
        .shard_count(2)
        .send()
        .await
        .expect("stream created");
    stream_active(kinesis, stream).await;
}

/// Put `records` into `stream` in order, 100 per call, each keyed by its post number;
/// returns the last sequence number put into each shard.
async fn put(
    kinesis: &Client,
    stream: &str,
    table: &str,
    records: &[String],
) -> BTreeMap<String, SequenceNumber> {
    let field = post_number_field(table);
    let mut last = BTreeMap::new();
    for chunk in records.chunks(100) {
        let entries = chunk
            .iter()
            .map(|record| {
                let value: Value = serde_json::from_str(record).expect("a JSON record");
                let number = value[field].as_i64().unwrap_or_else(|| panic!("{record}"));
                PutRecordsRequestEntry::builder()
                    .partition_key(number.to_string())
                    .data(Blob::new(record.as_bytes()))
                    .build()
                    .expect("an entry")
            })
            .collect::<Vec<_>>();
        let output = kinesis
            .put_records()
            .stream_name(stream)
            .set_records(Some(entries))
            .send()
            .await
            .expect("records put");
        assert_eq!(output.failed_record_count(), Some(0));
        for entry in output.records() {
            let shard = entry.shard_id().expect("a shard").to_owned();
            let sequence = SequenceNumber::parse(entry.sequence_number().expect("a number"))
                .expect("a sequence number");
            let newest = last.entry(shard).or_insert_with(|| sequence.clone());
            if *newest < sequence {
                *newest = sequence;
            }
        }
    }
    last
}

/// The worker configuration of `sink` reading `stream` into `bucket`, as the operator
/// resolves it (the manifest's paths, format, transform, partitioning, errors and start),
/// with batches of 10 records: about twenty micro-batches a shard. The fixture's duplicates
/// are consecutive records with one partition key, so most fall into one micro-batch, whose
/// `DISTINCT` removes them, and a few straddle two, which write them twice.
fn config(sink: &Sink, stream: &str, bucket: &str) -> (SinkWorkerConfig, String, String) {
    let spec = &sink.spec;
    let path = spec
        .destination
        .url
        .strip_prefix(LAKE)
        .unwrap_or_else(|| panic!("{} is not in {LAKE}", spec.destination.url));
    let prefix = path.trim_matches('/').to_owned();
    let dead_letter_prefix = match &spec.dead_letter.prefix {
        Some(given) => given.trim_matches('/').to_owned(),
        None => format!("{prefix}/_dead_letter"),
    };
    let mut destination = serde_json::to_value(&spec.destination).expect("a destination");
    destination["url"] = json!(format!("s3://{bucket}/{path}"));
    destination["createBucket"] = json!(false);
    let document = json!({
        "sink": format!("test/{}", sink.metadata.name.as_deref().expect("a name")),
        "kinesis": {"streamName": stream},
        "startFrom": spec.source.start_from,
        "destination": destination,
        "deadLetterPrefix": dead_letter_prefix,
        "format": spec.format,
        "transform": spec.transform,
        "partitioning": spec.partitioning,
        "errors": spec.errors,
        "batch": {"maxRecords": 10, "maxAge": "1s"},
    });
    let config = SinkWorkerConfig::from_json(&document.to_string()).expect("a config");
    (config, prefix, dead_letter_prefix)
}

/// Run the worker until the data objects under `prefix` reach the `last` sequence number of
/// every shard, stop it (a clean stop finishes its uploads), and return the data objects and
/// the dead letters.
async fn run_until_written(
    s3: &aws_sdk_s3::Client,
    bucket: &str,
    config: SinkWorkerConfig,
    prefix: &str,
    dead_letter_prefix: &str,
    last: &BTreeMap<String, SequenceNumber>,
) -> (BTreeMap<String, Vec<u8>>, BTreeMap<String, Vec<u8>>) {
    let (stop, task) = spawn_sink(config);
    let data = |objects: BTreeMap<String, Vec<u8>>| -> BTreeMap<String, Vec<u8>> {
        objects
            .into_iter()
            .filter(|(key, _)| !key.starts_with(&format!("{dead_letter_prefix}/")))
            .collect()
    };
    eventually(
        45,
        "the last sequence number of every shard in S3",
        || async {
            let objects = data(s3_objects(s3, bucket, &format!("{prefix}/")).await);
            let mut newest = BTreeMap::<String, SequenceNumber>::new();
            for key in objects.keys() {
                let parsed = ParsedShardKey::parse(key).unwrap_or_else(|e| panic!("{key}: {e}"));
                let slot = newest
                    .entry(parsed.shard.to_owned())
                    .or_insert_with(|| parsed.last.clone());
                if *slot < parsed.last {
                    *slot = parsed.last;
                }
            }
            (&newest == last).then_some(())
        },
    )
    .await;
    stop.send(()).expect("the worker runs");
    task.await.expect("the worker task").expect("a clean stop");
    let written = data(s3_objects(s3, bucket, &format!("{prefix}/")).await);
    let dead = s3_objects(s3, bucket, &format!("{dead_letter_prefix}/")).await;
    (written, dead)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn the_stream_cleaning_sinks_write_the_batch_cleaning_s_rows() {
    let sinks = pinterest::sinks("sinks-stream-clean.yaml");
    assert_eq!(
        sinks.keys().collect::<Vec<_>>(),
        ["geo-stream-clean", "pin-stream-clean", "user-stream-clean"]
    );
    let config_aws = aws_config().await;
    let kinesis = tributary_workers::connect::kinesis(&config_aws);
    let s3 = tributary_workers::connect::s3(&config_aws);
    let bucket = unique_name("stream-clean");
    s3.create_bucket()
        .bucket(&bucket)
        .send()
        .await
        .expect("bucket created");

    let mut tasks = Vec::new();
    for table in pinterest::TABLES {
        let sink = sinks[&format!("{table}-stream-clean")].clone();
        assert_eq!(
            sink.spec
                .source
                .stream_ref
                .as_ref()
                .map(|r| r.name.as_str()),
            Some(table),
            "{table}-stream-clean reads the {table} Stream"
        );
        assert!(sink.spec.transform.is_some(), "{table}-stream-clean");
        let (kinesis, s3, bucket) = (kinesis.clone(), s3.clone(), bucket.clone());
        tasks.push(tokio::spawn(async move {
            let records = pinterest::raw_records(table);
            let stream = unique_name(&format!("stream-clean-{table}"));
            create_stream(&kinesis, &stream).await;
            let last = put(&kinesis, &stream, table, &records).await;
            assert_eq!(last.len(), 2, "{table}: records in both shards");
            let (config, prefix, dead_letter_prefix) = config(&sink, &stream, &bucket);
            let (written, dead) =
                run_until_written(&s3, &bucket, config, &prefix, &dead_letter_prefix, &last).await;
            kinesis
                .delete_stream()
                .stream_name(&stream)
                .send()
                .await
                .expect("stream deleted");
            if !dead.is_empty() {
                let dead: Vec<String> = dead
                    .into_iter()
                    .map(|(key, body)| format!("{key}: {}", String::from_utf8_lossy(&body)))
                    .collect();
                return Err(format!("{table}: dead letters {dead:#?}"));
            }
            let (columns, rows) = pinterest::parquet_rows(written.into_values());
            pinterest::check_clean_table(table, records.len(), &columns, rows)
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
