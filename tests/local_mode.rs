//! `tributary local` against the broker and LocalStack's Kinesis and S3: a Stream of the
//! manifests is created as its spec says (the Stream controller's plan and client), the local
//! gateway serves it and puts the emulator's records into it, a Sink reading it writes them
//! through its transform into the lake; a second start with a changed shard count reshards it;
//! the status API reports every object.

use std::net::TcpListener;
use std::path::Path;
use std::process::{Command, Stdio};

use tributary_tests::{
    KillOnDrop, aws_config, eventually, s3_objects, stack_env, tributary_binary, unique_name,
};
use tributary_workers::pinterest::GeneratorConfig;
use tributary_workers::pinterest::send::{SendConfig, send};

fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .expect("a free port")
        .port()
}

/// Manifests: a cluster, a topic, three streams (pin with `shards` shards), and a Sink of the
/// pin stream through a transform into `s3://<bucket>/pin/`.
fn write_manifests(dir: &Path, topic: &str, streams: &[String; 3], shards: i32, bucket: &str) {
    let mut yaml = format!(
        "apiVersion: tributary.dev/v1alpha1\nkind: KafkaCluster\nmetadata: {{name: local}}\n\
         spec: {{external: {{bootstrapServers: [\"ignored:9092\"]}}}}\n---\n\
         apiVersion: tributary.dev/v1alpha1\nkind: Topic\nmetadata: {{name: {topic}}}\n\
         spec: {{clusterRef: {{name: local}}, partitions: 1}}\n"
    );
    for (i, stream) in streams.iter().enumerate() {
        let count = if i == 0 { shards } else { 1 };
        yaml.push_str(&format!(
            "---\napiVersion: tributary.dev/v1alpha1\nkind: Stream\nmetadata: {{name: {stream}}}\n\
             spec: {{mode: Provisioned, shardCount: {count}}}\n"
        ));
    }
    yaml.push_str(&format!(
        r#"---
apiVersion: tributary.dev/v1alpha1
kind: Sink
metadata: {{name: pin-sql}}
spec:
  source: {{streamRef: {{name: {pin}}}}}
  destination: {{url: "s3://{bucket}/pin/", createBucket: true}}
  format:
    type: JsonLines
    schema: [{{name: index, type: Int64}}, {{name: category, type: String}}]
  batch: {{maxAge: 1s}}
  transform: {{sql: 'SELECT "index" AS ind, upper(category) AS category, _shard FROM input'}}
"#,
        pin = streams[0]
    ));
    std::fs::write(dir.join("pipeline.yaml"), yaml).expect("manifests written");
}

struct Local {
    process: KillOnDrop,
    status: String,
    gateway: String,
}

fn start(dir: &Path) -> Local {
    let (gateway, status) = (free_port(), free_port());
    let process = Command::new(tributary_binary())
        .args(["local", "-f"])
        .arg(dir)
        .args([
            "--kafka-bootstrap",
            &stack_env("TRIBUTARY_KAFKA_BOOTSTRAP"),
            "--lake",
            "s3",
        ])
        .args(["--gateway-listen", &format!("127.0.0.1:{gateway}")])
        .args(["--status-addr", &format!("127.0.0.1:{status}")])
        .stdout(Stdio::null())
        .stderr(Stdio::inherit())
        .spawn()
        .expect("tributary local starts");
    Local {
        process: KillOnDrop(process),
        status: format!("127.0.0.1:{status}"),
        gateway: format!("http://127.0.0.1:{gateway}"),
    }
}

/// The status rows, once the status API answers.
async fn status(local: &Local) -> Vec<serde_json::Value> {
    let addr = local.status.clone();
    eventually(120, "the status API", || {
        let addr = addr.clone();
        async move {
            let output = tokio::task::spawn_blocking(move || {
                Command::new(tributary_binary())
                    .args(["local", "status", "--json", "--status-addr", &addr])
                    .output()
            })
            .await
            .ok()?
            .ok()?;
            if !output.status.success() {
                return None;
            }
            serde_json::from_slice::<Vec<serde_json::Value>>(&output.stdout).ok()
        }
    })
    .await
}

async fn open_shards(kinesis: &aws_sdk_kinesis::Client, stream: &str) -> usize {
    let shards = kinesis
        .list_shards()
        .stream_name(stream)
        .send()
        .await
        .expect("shards listed");
    shards
        .shards()
        .iter()
        .filter(|s| {
            s.sequence_number_range()
                .is_some_and(|r| r.ending_sequence_number().is_none())
        })
        .count()
}

fn stop(mut local: Local) {
    let pid = local.process.id().to_string();
    Command::new("kill")
        .args(["-TERM", &pid])
        .status()
        .expect("kill runs");
    let status = local.process.wait().expect("tributary local exits");
    assert!(status.success(), "tributary local exited with {status}");
}

#[tokio::test]
async fn local_mode_provisions_streams_and_its_gateway_serves_them() {
    let kinesis = aws_sdk_kinesis::Client::new(&aws_config().await);
    let dir = tempfile::tempdir().expect("a temporary directory");
    let topic = unique_name("local-topic");
    let streams = [
        unique_name("local-pin"),
        unique_name("local-geo"),
        unique_name("local-user"),
    ];
    let bucket = unique_name("local-lake");
    write_manifests(dir.path(), &topic, &streams, 2, &bucket);

    let local = start(dir.path());
    let rows = status(&local).await;
    let row = |kind: &str, name: &str| {
        rows.iter()
            .find(|r| r["kind"] == kind && r["name"] == name)
            .unwrap_or_else(|| panic!("no {kind} {name} in {rows:?}"))
            .clone()
    };
    let pin = row("Stream", &streams[0]);
    assert_eq!(pin["ready"], true, "{pin}");
    assert!(
        pin["message"].as_str().unwrap().contains("created"),
        "{pin}"
    );
    assert_eq!(row("Topic", &topic)["ready"], true);
    let sink = row("Sink", "pin-sql");
    assert_eq!(sink["ready"], true, "{sink}");
    assert_eq!(sink["source"], format!("stream/{}", streams[0]), "{sink}");
    assert!(sink["lag"].is_null(), "no consumer group, no lag: {sink}");
    assert_eq!(open_shards(&kinesis, &streams[0]).await, 2);
    assert_eq!(open_shards(&kinesis, &streams[1]).await, 1);

    // The local gateway serves the streams: the emulator puts 50 posts into them.
    let sent = send(
        &SendConfig {
            gateway: local.gateway.clone(),
            api_key: None,
            topics: None,
            streams: Some(streams.clone()),
            batch_posts: 10,
            rate: None,
            count: Some(50),
            duration: None,
        },
        GeneratorConfig {
            seed: 3,
            dirty_rate: 0.0,
            duplicate_rate: 0.0,
        },
        |_| {},
    )
    .await
    .expect("the emulator sends through the local gateway");
    assert_eq!(
        (sent.posts, sent.failed, sent.records),
        (50, 0, 150),
        "{sent:?}"
    );

    // The Sink reads the pin stream (both shards) and writes the query's rows.
    let s3 = aws_sdk_s3::Client::new(&aws_config().await);
    let rows = eventually(120, "the 50 pin rows in the lake", || async {
        let rows: Vec<serde_json::Value> = s3_objects(&s3, &bucket, "pin/")
            .await
            .into_iter()
            .filter(|(key, _)| !key.contains("_dead_letter"))
            .flat_map(|(_, body)| {
                body.split(|&b| b == b'\n')
                    .filter(|l| !l.is_empty())
                    .map(|l| serde_json::from_slice(l).expect("a JSON line"))
                    .collect::<Vec<_>>()
            })
            .collect();
        (rows.len() >= 50).then_some(rows)
    })
    .await;
    assert_eq!(rows.len(), 50, "each pin record once");
    for row in &rows {
        assert!(row["ind"].is_i64(), "{row}");
        let category = row["category"].as_str().unwrap_or_default();
        assert_eq!(category, category.to_uppercase(), "{row}");
        assert!(
            row["_shard"]
                .as_str()
                .is_some_and(|s| s.starts_with("shardId-")),
            "{row}"
        );
    }
    // The status counts what the Sink wrote and says when it last flushed.
    let sink = eventually(30, "the Sink's status to count 50 written", || async {
        let rows = status(&local).await;
        rows.into_iter()
            .find(|r| r["kind"] == "Sink" && r["name"] == "pin-sql")
            .filter(|r| r["written"] == 50)
    })
    .await;
    assert!(sink["last"].is_string(), "a last flush: {sink}");
    assert!(sink["lag"].is_null(), "still no lag: {sink}");
    stop(local);

    // A changed spec: the pin stream is resharded 2 → 3 at the next start.
    write_manifests(dir.path(), &topic, &streams, 3, &bucket);
    let local = start(dir.path());
    let rows = status(&local).await;
    let pin = rows
        .iter()
        .find(|r| r["kind"] == "Stream" && r["name"] == streams[0].as_str())
        .expect("the pin stream's row");
    assert!(
        pin["message"]
            .as_str()
            .unwrap()
            .contains("in sync, 1 change(s): 3 open shard(s)"),
        "{pin}"
    );
    assert_eq!(open_shards(&kinesis, &streams[0]).await, 3);
    stop(local);

    for stream in &streams {
        let _ = kinesis.delete_stream().stream_name(stream).send().await;
    }
}
