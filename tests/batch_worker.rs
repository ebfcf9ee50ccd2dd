//! The batch worker on LocalStack S3: JSON-lines inputs in a bucket (one of them partitioned
//! by day), a view and an aggregation written as partitioned Parquet, read back; a retry of the
//! same scheduled time replaces its files; and the `tributary worker batch` binary prints the
//! summary.

use std::process::Command;

use parquet::file::reader::{FileReader, SerializedFileReader};
use tributary_crds::batch_job::{BatchInput, BatchOutput, BatchStep, OutputMode, PartitionColumn};
use tributary_crds::common::{DataFormat, FieldType};
use tributary_tests::{aws_config, tributary_binary, unique_name};
use tributary_workers::batch::config::{BatchWorkerConfig, OutputSummary};

async fn put(s3: &aws_sdk_s3::Client, bucket: &str, key: &str, lines: &[&str]) {
    s3.put_object()
        .bucket(bucket)
        .key(key)
        .body((lines.join("\n") + "\n").into_bytes().into())
        .send()
        .await
        .unwrap_or_else(|e| panic!("put {key}: {e}"));
}

async fn keys(s3: &aws_sdk_s3::Client, bucket: &str, prefix: &str) -> Vec<String> {
    let listed = s3
        .list_objects_v2()
        .bucket(bucket)
        .prefix(prefix)
        .send()
        .await
        .expect("a listing");
    let mut keys: Vec<String> = listed
        .contents()
        .iter()
        .filter_map(|object| object.key().map(str::to_owned))
        .collect();
    keys.sort();
    keys
}

async fn parquet_rows(s3: &aws_sdk_s3::Client, bucket: &str, key: &str) -> i64 {
    let body = s3
        .get_object()
        .bucket(bucket)
        .key(key)
        .send()
        .await
        .unwrap_or_else(|e| panic!("get {key}: {e}"))
        .body
        .collect()
        .await
        .expect("the body")
        .into_bytes();
    SerializedFileReader::new(body)
        .expect("a Parquet file")
        .metadata()
        .file_metadata()
        .num_rows()
}

fn config(bucket: &str) -> BatchWorkerConfig {
    BatchWorkerConfig {
        batch_job: "test/pinterest".into(),
        inputs: vec![
            BatchInput {
                name: "pin".into(),
                url: format!("s3://{bucket}/raw/pin/"),
                format: DataFormat::JsonLines,
                partition_columns: vec![PartitionColumn {
                    name: "dt".into(),
                    data_type: FieldType::Date,
                }],
                schema: None,
            },
            BatchInput {
                name: "geo".into(),
                url: format!("s3://{bucket}/raw/geo"),
                format: DataFormat::JsonLines,
                partition_columns: vec![],
                schema: None,
            },
        ],
        steps: vec![
            BatchStep {
                name: "clean_pin".into(),
                sql: "SELECT \"index\" AS ind, parse_count(follower_count) AS follower_count, \
                      category FROM pin \
                      WHERE dt = CAST(scheduled_time() - INTERVAL '1 day' AS DATE)"
                    .into(),
                output: None,
            },
            BatchStep {
                name: "category_by_country".into(),
                sql: "SELECT g.country, p.category, count(*) AS category_count, \
                      max(p.follower_count) AS top_followers \
                      FROM clean_pin p JOIN geo g ON p.ind = g.ind \
                      GROUP BY g.country, p.category"
                    .into(),
                output: Some(BatchOutput {
                    url: format!("s3://{bucket}/results/category_by_country/"),
                    format: DataFormat::Parquet,
                    partition_by: vec!["country".into()],
                    mode: OutputMode::ReplaceRun,
                }),
            },
        ],
    }
}

#[tokio::test]
async fn a_job_reads_and_writes_the_bucket_and_a_retry_replaces_its_files() {
    let s3 = tributary_workers::connect::s3(&aws_config().await);
    let bucket = unique_name("batch");
    s3.create_bucket()
        .bucket(&bucket)
        .send()
        .await
        .expect("create bucket");
    put(
        &s3,
        &bucket,
        "raw/pin/dt=2024-01-01/pin+0+0+3.json",
        &[
            r#"{"index": 1, "follower_count": "3k", "category": "art"}"#,
            r#"{"index": 2, "follower_count": "User Info Error", "category": "art"}"#,
            r#"{"index": 3, "follower_count": "1.5M", "category": "travel"}"#,
            r#"{"index": 4, "follower_count": "640", "category": "art"}"#,
        ],
    )
    .await;
    put(
        &s3,
        &bucket,
        "raw/pin/dt=2024-01-02/pin+0+4+4.json",
        &[r#"{"index": 5, "follower_count": "9M", "category": "art"}"#],
    )
    .await;
    put(
        &s3,
        &bucket,
        "raw/geo/geo+0+0+4.json",
        &[
            r#"{"ind": 1, "country": "India"}"#,
            r#"{"ind": 2, "country": "India"}"#,
            r#"{"ind": 3, "country": "India"}"#,
            r#"{"ind": 4, "country": "Peru"}"#,
            r#"{"ind": 5, "country": "Peru"}"#,
        ],
    )
    .await;

    let config = config(&bucket);
    let scheduled: jiff::Timestamp = "2024-01-02T00:00:00Z".parse().unwrap();
    let expected = vec![OutputSummary {
        step: "category_by_country".into(),
        rows: 3,
        url: format!("s3://{bucket}/results/category_by_country/"),
    }];
    let expected_keys = [
        "results/category_by_country/country=India/part-1704153600-0.parquet",
        "results/category_by_country/country=Peru/part-1704153600-1.parquet",
    ];
    for _attempt in 0..2 {
        let summaries = tributary_workers::batch::run(&config, scheduled)
            .await
            .expect("the run");
        assert_eq!(summaries, expected);
        assert_eq!(keys(&s3, &bucket, "results/").await, expected_keys);
        assert_eq!(parquet_rows(&s3, &bucket, expected_keys[0]).await, 2);
        assert_eq!(parquet_rows(&s3, &bucket, expected_keys[1]).await, 1);
    }

    // The binary runs the next day and prints its summary.
    let dir = tempfile_dir();
    let config_file = dir.join("job.json");
    std::fs::write(&config_file, config.to_json()).unwrap();
    let output = Command::new(tributary_binary())
        .args([
            "worker",
            "batch",
            "--scheduled-time",
            "2024-01-03T00:00:00Z",
        ])
        .arg("--config-file")
        .arg(&config_file)
        .output()
        .expect("the binary runs");
    assert!(
        output.status.success(),
        "{}",
        String::from_utf8_lossy(&output.stderr)
    );
    let line: OutputSummary = serde_json::from_slice(&output.stdout).expect("one JSON line");
    assert_eq!(line.rows, 1);
    let mut all = expected_keys.map(str::to_owned).to_vec();
    all.push("results/category_by_country/country=Peru/part-1704240000-0.parquet".into());
    assert_eq!(keys(&s3, &bucket, "results/").await, all);
    std::fs::remove_dir_all(dir).unwrap();
}

fn tempfile_dir() -> std::path::PathBuf {
    let dir = std::env::temp_dir().join(unique_name("batch-worker"));
    std::fs::create_dir_all(&dir).unwrap();
    dir
}
