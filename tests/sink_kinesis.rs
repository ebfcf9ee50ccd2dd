//! The sink worker's Kinesis source against LocalStack Kinesis and S3: every record lands in
//! exactly one object, across a 2→4 reshard (children read after their parents, so each
//! partition key keeps its order in the lake) and across a worker dropped mid-stream and
//! restarted (it resumes from the lake alone); and two worker processes sharing the shards
//! through leases, one killed with SIGKILL mid-stream and its shards taken over by the other
//! within the lease duration, then restarted and given its share back — every record still
//! exactly once.

use std::collections::BTreeMap;
use std::time::Duration;

use aws_sdk_kinesis::Client;
use aws_sdk_kinesis::primitives::Blob;
use aws_sdk_kinesis::types::{PutRecordsRequestEntry, ScalingType};
use serde_json::{Value, json};
use tributary_tests::{
    KillOnDrop, aws_config, eventually, s3_objects, spawn_sink, stream_active, tributary_binary,
    unique_name,
};
use tributary_workers::sink::config::{ENV_CONFIG, ENV_WORKER_ID, SinkWorkerConfig};
use tributary_workers::sink::kinesis_keys::{ParsedShardKey, SequenceNumber};
use tributary_workers::sink::kinesis_leases::Lease;

const KEYS: i64 = 12;

/// A fresh bucket and a fresh ACTIVE stream of `shards` shards, named after the prefixes.
async fn stream_and_bucket(
    stream_prefix: &str,
    bucket_prefix: &str,
    shards: i32,
) -> (Client, aws_sdk_s3::Client, String, String) {
    let config_aws = aws_config().await;
    let kinesis = tributary_workers::connect::kinesis(&config_aws);
    let s3 = tributary_workers::connect::s3(&config_aws);
    let (stream, bucket) = (unique_name(stream_prefix), unique_name(bucket_prefix));
    s3.create_bucket()
        .bucket(&bucket)
        .send()
        .await
        .expect("bucket created");
    kinesis
        .create_stream()
        .stream_name(&stream)
        .shard_count(shards)
        .send()
        .await
        .expect("stream created");
    stream_active(&kinesis, &stream).await;
    (kinesis, s3, stream, bucket)
}

/// Put records `ids` in order, partition key `k<id % KEYS>`, 50 per call.
async fn put(kinesis: &Client, stream: &str, ids: std::ops::Range<i64>) {
    let ids: Vec<i64> = ids.collect();
    for chunk in ids.chunks(50) {
        let entries = chunk
            .iter()
            .map(|&id| {
                let key = format!("k{}", id % KEYS);
                PutRecordsRequestEntry::builder()
                    .partition_key(&key)
                    .data(Blob::new(json!({"id": id, "key": key}).to_string()))
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
    }
}

fn config(stream: &str, bucket: &str) -> SinkWorkerConfig {
    let document = json!({
        "sink": format!("test/{stream}"),
        "kinesis": {"streamName": stream},
        "destination": {"url": format!("s3://{bucket}/raw"), "multipartThresholdBytes": 5_242_880},
        "deadLetterPrefix": "raw/_dead_letter",
        "format": {"type": "JsonLines"},
        "batch": {"maxRecords": 40, "maxAge": "1s"},
        // Several paths per flush: a crash can cut a flush between its objects.
        "partitioning": {"path": "key={field:key}"}
    });
    SinkWorkerConfig::from_json(&document.to_string()).expect("a config")
}

/// The records in the lake, in lake order: objects by their shard's first sequence number,
/// then line by line. Returns `(id, key)` pairs.
async fn lake(s3: &aws_sdk_s3::Client, bucket: &str) -> Vec<(i64, String)> {
    let mut objects = Vec::new();
    for (key, body) in s3_objects(s3, bucket, "raw/").await {
        assert!(
            !key.starts_with("raw/_dead_letter/"),
            "a dead letter: {key}"
        );
        let parsed = ParsedShardKey::parse(&key).unwrap_or_else(|e| panic!("{key}: {e}"));
        let first: SequenceNumber = parsed.first.clone();
        objects.push((first, key, body));
    }
    objects.sort();
    let mut records = Vec::new();
    for (_, key, body) in objects {
        for line in body.split(|&b| b == b'\n').filter(|l| !l.is_empty()) {
            let record: Value = serde_json::from_slice(line).expect("a JSON line");
            let record_key = record["key"].as_str().expect("a key").to_owned();
            assert!(key.contains(&format!("/key={record_key}/")), "{key}");
            records.push((record["id"].as_i64().expect("an id"), record_key));
        }
    }
    records
}

/// Wait until the lake holds `0..count`, then check each record is there once and each
/// partition key's records are in put order.
async fn expect_exactly_once_in_order(s3: &aws_sdk_s3::Client, bucket: &str, count: i64) {
    let records = eventually(120, "every record in S3", || async {
        let records = lake(s3, bucket).await;
        (records.len() as i64 >= count).then_some(records)
    })
    .await;
    let mut seen = BTreeMap::<i64, usize>::new();
    for (id, _) in &records {
        *seen.entry(*id).or_default() += 1;
    }
    let duplicated: Vec<_> = seen.iter().filter(|(_, n)| **n > 1).collect();
    assert!(
        duplicated.is_empty(),
        "written more than once: {duplicated:?}"
    );
    assert_eq!(
        seen.keys().copied().collect::<Vec<_>>(),
        (0..count).collect::<Vec<_>>()
    );
    let mut per_key = BTreeMap::<String, Vec<i64>>::new();
    for (id, key) in records {
        per_key.entry(key).or_default().push(id);
    }
    for (key, ids) in per_key {
        assert!(ids.is_sorted(), "{key} out of order: {ids:?}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn records_land_exactly_once_across_reshards_and_crashes() {
    let (kinesis, s3, stream, bucket) = stream_and_bucket("sink-kinesis", "sink", 2).await;

    // Two shards.
    put(&kinesis, &stream, 0..300).await;
    let (stop, task) = spawn_sink(config(&stream, &bucket));
    expect_exactly_once_in_order(&s3, &bucket, 300).await;

    // Reshard 2 → 4 while records keep coming: the parents are read to their end before
    // their children.
    put(&kinesis, &stream, 300..400).await;
    kinesis
        .update_shard_count()
        .stream_name(&stream)
        .target_shard_count(4)
        .scaling_type(ScalingType::UniformScaling)
        .send()
        .await
        .expect("resharded");
    put(&kinesis, &stream, 400..500).await;
    stream_active(&kinesis, &stream).await;
    put(&kinesis, &stream, 500..600).await;
    expect_exactly_once_in_order(&s3, &bucket, 600).await;
    let shards = kinesis
        .list_shards()
        .stream_name(&stream)
        .send()
        .await
        .expect("shards");
    let children = shards
        .shards()
        .iter()
        .filter(|shard| shard.parent_shard_id().is_some())
        .count();
    assert_eq!(children, 4, "LocalStack split both shards");

    // Drop the worker mid-stream (buffers and uploads in flight are lost), keep producing,
    // and start another: it resumes from the lake alone.
    let producer = {
        let (kinesis, stream) = (kinesis.clone(), stream.clone());
        tokio::spawn(async move {
            for start in (600..1000).step_by(50) {
                put(&kinesis, &stream, start..start + 50).await;
                tokio::time::sleep(Duration::from_millis(150)).await;
            }
        })
    };
    tokio::time::sleep(Duration::from_millis(700)).await;
    task.abort();
    drop(stop);
    assert!(task.await.is_err_and(|e| e.is_cancelled()));
    tokio::time::sleep(Duration::from_millis(500)).await;
    let (stop, task) = spawn_sink(config(&stream, &bucket));
    producer.await.expect("produced");
    expect_exactly_once_in_order(&s3, &bucket, 1000).await;

    // A clean stop flushes and returns Ok; a restart on a caught-up stream writes nothing new.
    put(&kinesis, &stream, 1000..1010).await;
    tokio::time::sleep(Duration::from_millis(1500)).await;
    stop.send(()).expect("the worker is running");
    task.await.expect("joined").expect("a clean stop");
    expect_exactly_once_in_order(&s3, &bucket, 1010).await;
    let (stop, task) = spawn_sink(config(&stream, &bucket));
    tokio::time::sleep(Duration::from_secs(3)).await;
    stop.send(()).expect("the worker is running");
    task.await.expect("joined").expect("a clean stop");
    expect_exactly_once_in_order(&s3, &bucket, 1010).await;

    kinesis
        .delete_stream()
        .stream_name(&stream)
        .send()
        .await
        .expect("stream deleted");
}

/// A transform over a Kinesis source: the query sees the records' fields and the Kinesis
/// metadata columns, its result is what lands in the lake (named by the input's shard and
/// sequence-number range), and a record the schema refuses goes to the dead letter.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_transform_writes_its_result_with_the_kinesis_metadata() {
    let (kinesis, s3, stream, bucket) = stream_and_bucket("sink-kinesis-sql", "sinksql", 1).await;
    put(&kinesis, &stream, 0..20).await;
    kinesis
        .put_record()
        .stream_name(&stream)
        .partition_key("bad")
        .data(Blob::new(
            json!({"id": "not a number", "key": "bad"}).to_string(),
        ))
        .send()
        .await
        .expect("a bad record put");

    let mut config = config(&stream, &bucket);
    config.partitioning = Default::default();
    config.format = serde_json::from_value(json!({
        "type": "JsonLines",
        "schema": [{"name": "id", "type": "Int64"}, {"name": "key", "type": "String"}]
    }))
    .expect("a format");
    config.transform = Some(
        serde_json::from_value(
            json!({"sql": "SELECT id * 10 AS tenfold, upper(key) AS key, \
             _stream, _shard, _sequence_number, _partition_key, _arrival_time \
             FROM input WHERE id % 2 = 0"}),
        )
        .expect("a transform"),
    );
    let (stop, task) = spawn_sink(config);

    let (rows, dead) = eventually(120, "the transformed rows and the dead letter", || async {
        let mut rows = Vec::new();
        let mut dead = Vec::new();
        for (key, body) in s3_objects(&s3, &bucket, "raw/").await {
            let lines = body
                .split(|&b| b == b'\n')
                .filter(|l| !l.is_empty())
                .map(|l| serde_json::from_slice::<Value>(l).expect("a JSON line"));
            if key.starts_with("raw/_dead_letter/") {
                dead.extend(lines);
            } else {
                let parsed = ParsedShardKey::parse(&key).unwrap_or_else(|e| panic!("{key}: {e}"));
                let range = (parsed.shard.to_owned(), parsed.first, parsed.last);
                rows.extend(lines.map(|row| (range.clone(), row)));
            }
        }
        (rows.len() >= 10 && !dead.is_empty()).then_some((rows, dead))
    })
    .await;
    stop.send(()).expect("the worker is running");
    task.await.expect("joined").expect("a clean stop");

    let mut tenfolds: Vec<i64> = rows
        .iter()
        .map(|(_, row)| row["tenfold"].as_i64().expect("tenfold"))
        .collect();
    tenfolds.sort();
    assert_eq!(
        tenfolds,
        (0..20).step_by(2).map(|id| id * 10).collect::<Vec<_>>()
    );
    for ((shard, first, last), row) in &rows {
        let id = row["tenfold"].as_i64().unwrap() / 10;
        let key = format!("k{}", id % KEYS);
        assert_eq!(row["key"], key.to_uppercase(), "{row}");
        assert_eq!(row["_partition_key"], key, "{row}");
        assert_eq!(row["_stream"], stream.as_str());
        assert_eq!(row["_shard"], shard.as_str(), "{row}");
        let sequence = SequenceNumber::parse(row["_sequence_number"].as_str().expect("a string"))
            .expect("a sequence number");
        assert!(
            first <= &sequence && &sequence <= last,
            "{row} outside its object's range"
        );
        assert!(row["_arrival_time"].is_string(), "{row}");
        assert_eq!(
            row.as_object().unwrap().len(),
            7,
            "the query's columns: {row}"
        );
    }
    assert_eq!(dead.len(), 1, "{dead:?}");
    assert_eq!(dead[0]["partitionKey"], "bad");

    kinesis
        .delete_stream()
        .stream_name(&stream)
        .send()
        .await
        .expect("stream deleted");
}

/// A sink worker process named `worker` among the Sink's workers, as in a pod.
fn start_worker(config: &SinkWorkerConfig, worker: &str) -> KillOnDrop {
    let child = std::process::Command::new(tributary_binary())
        .args(["worker", "sink", "--http-addr", "127.0.0.1:0"])
        .env(ENV_CONFIG, config.to_json())
        .env(ENV_WORKER_ID, worker)
        .env(
            "RUST_LOG",
            std::env::var("WORKER_LOG").unwrap_or_else(|_| "warn".into()),
        )
        .spawn()
        .expect("the worker starts");
    KillOnDrop(child)
}

/// The shard leases in the bucket: shard id → lease.
async fn leases(s3: &aws_sdk_s3::Client, bucket: &str) -> BTreeMap<String, Lease> {
    s3_objects(s3, bucket, "_tributary/leases/")
        .await
        .into_iter()
        .filter_map(|(key, body)| {
            let shard = key.split_once("/shards/")?.1.strip_suffix(".json")?;
            let lease: Lease = serde_json::from_slice(&body).expect("a lease");
            Some((shard.to_owned(), lease))
        })
        .collect()
}

/// How many shards each worker holds, by the leases.
fn owners(leases: &BTreeMap<String, Lease>) -> BTreeMap<String, usize> {
    let mut owners = BTreeMap::new();
    for lease in leases.values().filter(|lease| !lease.finished) {
        *owners.entry(lease.owner.clone()).or_default() += 1;
    }
    owners
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn workers_share_the_shards_and_take_over_a_killed_ones() {
    let (kinesis, s3, stream, bucket) = stream_and_bucket("sink-leases", "leases", 4).await;
    let duration = Duration::from_secs(3);
    let mut config = config(&stream, &bucket);
    config.kinesis.as_mut().expect("a Kinesis source").leases = Some(
        serde_json::from_value(json!({
            "url": format!("s3://{bucket}/_tributary/leases/test/{stream}"),
            "durationMs": duration.as_millis() as u64,
        }))
        .expect("lease settings"),
    );

    // Two workers share the four shards, two each.
    put(&kinesis, &stream, 0..200).await;
    let mut a = start_worker(&config, "worker-a");
    let b = start_worker(&config, "worker-b");
    let balanced = |owners: &BTreeMap<String, usize>| {
        owners.get("worker-a") == Some(&2) && owners.get("worker-b") == Some(&2)
    };
    eventually(60, "two shards each", || async {
        balanced(&owners(&leases(&s3, &bucket).await)).then_some(())
    })
    .await;
    expect_exactly_once_in_order(&s3, &bucket, 200).await;

    // Kill a mid-stream while records keep coming: b takes its shards over once their
    // leases have stood still for the lease duration, and reads on from the lake.
    let producer = {
        let (kinesis, stream) = (kinesis.clone(), stream.clone());
        tokio::spawn(async move {
            for start in (200..1200).step_by(50) {
                put(&kinesis, &stream, start..start + 50).await;
                tokio::time::sleep(Duration::from_millis(150)).await;
            }
        })
    };
    tokio::time::sleep(Duration::from_millis(1200)).await;
    a.kill().expect("SIGKILL");
    a.wait().expect("reaped");
    let killed = std::time::Instant::now();
    eventually(60, "b to hold every shard", || async {
        (owners(&leases(&s3, &bucket).await).get("worker-b") == Some(&4)).then_some(())
    })
    .await;
    let takeover = killed.elapsed();
    println!("takeover {takeover:?} after SIGKILL, lease duration {duration:?}");
    // Expiry is measured on b's clock from when it first saw a's last renewal: at most one
    // round (a fifth of the duration) after it, and b acts at its next round.
    assert!(
        takeover <= duration + duration * 2 / 5 + Duration::from_secs(1),
        "took {takeover:?}"
    );
    producer.await.expect("produced");
    expect_exactly_once_in_order(&s3, &bucket, 1200).await;

    // a comes back under the same name (a restarted container): b hands two shards back.
    let mut a = start_worker(&config, "worker-a");
    eventually(60, "two shards each again", || async {
        balanced(&owners(&leases(&s3, &bucket).await)).then_some(())
    })
    .await;
    put(&kinesis, &stream, 1200..1400).await;
    expect_exactly_once_in_order(&s3, &bucket, 1400).await;

    // Merge 4 → 3 while records keep coming: a child is started — by either worker — only
    // once the leases of all its parents say finished, so per-key order holds across workers.
    put(&kinesis, &stream, 1400..1500).await;
    kinesis
        .update_shard_count()
        .stream_name(&stream)
        .target_shard_count(3)
        .scaling_type(ScalingType::UniformScaling)
        .send()
        .await
        .expect("resharded");
    put(&kinesis, &stream, 1500..1600).await;
    stream_active(&kinesis, &stream).await;
    put(&kinesis, &stream, 1600..1700).await;
    expect_exactly_once_in_order(&s3, &bucket, 1700).await;
    // Every shard the merge closed is marked finished in its lease, and no other.
    let listing = kinesis
        .list_shards()
        .stream_name(&stream)
        .send()
        .await
        .expect("shards");
    let closed: Vec<String> = listing
        .shards()
        .iter()
        .filter(|shard| {
            shard
                .sequence_number_range()
                .and_then(|range| range.ending_sequence_number())
                .is_some()
        })
        .map(|shard| shard.shard_id().to_owned())
        .collect();
    assert!(closed.len() >= 2, "the merge closed shards: {closed:?}");
    eventually(60, "the closed shards' leases finished", || async {
        let finished: Vec<String> = leases(&s3, &bucket)
            .await
            .into_iter()
            .filter(|(_, lease)| lease.finished)
            .map(|(shard, _)| shard)
            .collect();
        (finished == closed).then_some(())
    })
    .await;

    // A clean stop hands the leases back.
    for worker in [&mut a, &mut { b }] {
        let status = std::process::Command::new("kill")
            .args(["-TERM", &worker.id().to_string()])
            .status()
            .expect("kill runs");
        assert!(status.success());
        let exit = worker.wait().expect("the worker exits");
        assert!(exit.success(), "{exit}");
    }
    let released = leases(&s3, &bucket).await;
    let open: Vec<&Lease> = released.values().filter(|lease| !lease.finished).collect();
    assert!(!open.is_empty(), "{released:?}");
    assert!(
        open.iter().all(|lease| lease.owner.is_empty()),
        "{released:?}"
    );
    expect_exactly_once_in_order(&s3, &bucket, 1700).await;

    kinesis
        .delete_stream()
        .stream_name(&stream)
        .send()
        .await
        .expect("stream deleted");
}
