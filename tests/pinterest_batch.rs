//! The reference jobs of `examples/pinterest/` on the checked-in fixture: the cleaning
//! BatchJob and the aggregation BatchJob, exactly as the YAML files hold them (only the lake's
//! `s3://` location moved to directories), run by the batch worker; every cleaned table and
//! every result table must equal what `examples/pinterest/fixture/expected.py` — the rules of
//! docs/pinterest.md implemented a second time, in plain Python — wrote from the same raw
//! records. Then both jobs run again for the same day and the tables stay the same (a rerun
//! replaces, never appends).
//!
//! The demo (`scripts/demo.sh`) end to end: posts from the emulator through the gateway, the
//! Sinks and both BatchJobs under `tributary local`, against the local broker, with the lake in
//! LocalStack's S3 and then in a directory; its nine result tables must equal what
//! `expected.py` computes from the same generated posts.

use std::collections::BTreeMap;
use std::path::Path;

use datafusion::arrow::datatypes::{DataType, TimeUnit};
use datafusion::arrow::json::WriterBuilder;
use datafusion::arrow::json::writer::LineDelimited;
use datafusion::prelude::{ParquetReadOptions, SessionContext};
use serde_json::Value;
use tributary_crds::BatchJob;
use tributary_tests::{normalize_row, repo};
use tributary_workers::batch::config::BatchWorkerConfig;

const LAKE: &str = "s3://pinterest-lake/";

fn dir_url(path: &Path) -> String {
    format!(
        "file://{}/",
        path.display().to_string().trim_end_matches('/')
    )
}

/// The worker configuration of `examples/pinterest/<file>`, its inputs under `raw/` read from
/// the fixture and everything else in `lake`.
fn config(file: &str, lake: &Path) -> BatchWorkerConfig {
    let path = repo().join("examples/pinterest").join(file);
    let yaml = std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{path:?}: {e}"));
    let batch_job: BatchJob = serde_yaml::from_str(&yaml).unwrap_or_else(|e| panic!("{file}: {e}"));
    let fixture = repo().join("examples/pinterest/fixture");
    let relocate = |url: &str| {
        let rest = url
            .strip_prefix(LAKE)
            .unwrap_or_else(|| panic!("{file}: {url} is outside {LAKE}"));
        if rest.starts_with("raw/") {
            dir_url(&fixture.join(rest))
        } else {
            dir_url(&lake.join(rest))
        }
    };
    let mut inputs = batch_job.spec.inputs;
    for input in &mut inputs {
        input.url = relocate(&input.url);
    }
    let mut steps = batch_job.spec.steps;
    for output in steps.iter_mut().filter_map(|step| step.output.as_mut()) {
        output.url = relocate(&output.url);
    }
    BatchWorkerConfig {
        batch_job: format!("demo/{}", file.trim_end_matches(".yaml")),
        inputs,
        steps,
    }
}

/// A table the jobs write: its name (and expected file's), its directory under the lake, and
/// its columns in order with their types.
type Table = (&'static str, &'static str, Vec<(&'static str, DataType)>);

/// The tables the jobs write, with their columns as docs/pinterest.md gives them.
fn tables() -> Vec<Table> {
    use DataType::{Float64, Int64, Utf8};
    let timestamp = DataType::Timestamp(TimeUnit::Microsecond, Some("UTC".into()));
    let coordinates = DataType::new_list(Float64, true);
    vec![
        (
            "clean_pin",
            "clean/pin",
            vec![
                ("ind", Int64),
                ("unique_id", Utf8),
                ("title", Utf8),
                ("description", Utf8),
                ("follower_count", Int64),
                ("poster_name", Utf8),
                ("tag_list", Utf8),
                ("is_image_or_video", Utf8),
                ("image_src", Utf8),
                ("save_location", Utf8),
                ("category", Utf8),
            ],
        ),
        (
            "clean_geo",
            "clean/geo",
            vec![
                ("ind", Int64),
                ("country", Utf8),
                ("coordinates", coordinates),
                ("timestamp", timestamp.clone()),
            ],
        ),
        (
            "clean_user",
            "clean/user",
            vec![
                ("ind", Int64),
                ("user_name", Utf8),
                ("age", Int64),
                ("date_joined", timestamp),
            ],
        ),
        (
            "popular_category_by_country",
            "results/popular_category_by_country",
            vec![
                ("country", Utf8),
                ("category", Utf8),
                ("category_count", Int64),
            ],
        ),
        (
            "popular_category_by_year",
            "results/popular_category_by_year",
            vec![
                ("post_year", Int64),
                ("category", Utf8),
                ("category_count", Int64),
            ],
        ),
        (
            "top_user_by_country",
            "results/top_user_by_country",
            vec![
                ("country", Utf8),
                ("poster_name", Utf8),
                ("follower_count", Int64),
            ],
        ),
        (
            "top_country_by_followers",
            "results/top_country_by_followers",
            vec![("country", Utf8), ("follower_count", Int64)],
        ),
        (
            "popular_category_by_age_group",
            "results/popular_category_by_age_group",
            vec![
                ("age_group", Utf8),
                ("category", Utf8),
                ("category_count", Int64),
            ],
        ),
        (
            "median_followers_by_age_group",
            "results/median_followers_by_age_group",
            vec![("age_group", Utf8), ("median_follower_count", Float64)],
        ),
        (
            "users_joined_by_year",
            "results/users_joined_by_year",
            vec![("post_year", Int64), ("number_users_joined", Int64)],
        ),
        (
            "median_followers_by_join_year",
            "results/median_followers_by_join_year",
            vec![("post_year", Int64), ("median_follower_count", Float64)],
        ),
        (
            "median_followers_by_age_group_and_join_year",
            "results/median_followers_by_age_group_and_join_year",
            vec![
                ("age_group", Utf8),
                ("post_year", Int64),
                ("median_follower_count", Float64),
            ],
        ),
    ]
}

/// The rows of `text` (JSON lines), normalized and sorted.
fn rows(text: &str) -> Vec<String> {
    let mut rows: Vec<String> = text
        .lines()
        .filter(|line| !line.trim().is_empty())
        .map(|line| {
            let value: Value = serde_json::from_str(line).unwrap_or_else(|e| panic!("{e}: {line}"));
            normalize_row(value).to_string()
        })
        .collect();
    rows.sort();
    rows
}

/// The Parquet table under `dir`: its columns with their types, and its rows as JSON lines.
async fn read_table(dir: &Path) -> (Vec<(String, DataType)>, String) {
    let ctx = SessionContext::new();
    let frame = ctx
        .read_parquet(dir_url(dir), ParquetReadOptions::default())
        .await
        .unwrap_or_else(|e| panic!("{dir:?}: {e}"));
    let columns = frame
        .schema()
        .fields()
        .iter()
        .map(|field| {
            // Readers may hand strings out as views; the files hold plain UTF-8.
            let data_type = match field.data_type() {
                DataType::Utf8View | DataType::LargeUtf8 => DataType::Utf8,
                other => other.clone(),
            };
            (field.name().clone(), data_type)
        })
        .collect();
    let batches = frame.collect().await.expect("the table reads");
    let mut writer = WriterBuilder::new()
        .with_explicit_nulls(true)
        .build::<_, LineDelimited>(Vec::new());
    for batch in &batches {
        writer.write(batch).expect("rows as JSON");
    }
    writer.finish().expect("rows as JSON");
    let json = String::from_utf8(writer.into_inner()).expect("UTF-8");
    (columns, json)
}

/// Every table equals its expected file, column for column and row for row.
async fn assert_tables_as_expected(lake: &Path) {
    let expected_dir = repo().join("examples/pinterest/fixture/expected");
    let mut failures = Vec::new();
    let mut counts = BTreeMap::new();
    for (name, dir, columns) in tables() {
        let (actual_columns, actual) = read_table(&lake.join(dir)).await;
        let wanted: Vec<(String, DataType)> = columns
            .iter()
            .map(|(column, data_type)| (column.to_string(), data_type.clone()))
            .collect();
        // A list's item field may be named differently by writer and reader.
        let same_columns = actual_columns.len() == wanted.len()
            && actual_columns.iter().zip(&wanted).all(|(a, w)| {
                a.0 == w.0
                    && match (&a.1, &w.1) {
                        (DataType::List(a), DataType::List(w)) => a.data_type() == w.data_type(),
                        (a, w) => a == w,
                    }
            });
        if !same_columns {
            failures.push(format!(
                "{name}: columns {actual_columns:?}, expected {wanted:?}"
            ));
            continue;
        }
        let path = expected_dir.join(format!("{name}.json"));
        let expected = std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{path:?}: {e}"));
        counts.insert(name, rows(&actual).len());
        failures.extend(compare_rows(name, &actual, &expected));
    }
    assert!(failures.is_empty(), "{}", failures.join("\n"));
    assert!(
        counts.values().all(|&n| n > 0),
        "an empty table: {counts:?}"
    );
}

/// Why the JSON-lines rows of table `name` differ from the expected ones, if they do.
fn compare_rows(name: &str, actual: &str, expected: &str) -> Option<String> {
    let (actual, expected) = (rows(actual), rows(expected));
    if actual == expected {
        return None;
    }
    let missing: Vec<_> = expected.iter().filter(|r| !actual.contains(r)).collect();
    let extra: Vec<_> = actual.iter().filter(|r| !expected.contains(r)).collect();
    Some(format!(
        "{name}: {} rows, expected {}\n  missing: {missing:#?}\n  unexpected: {extra:#?}",
        actual.len(),
        expected.len()
    ))
}

/// Run `command`, failing the test with its output if it fails.
fn run(command: &mut std::process::Command) {
    let output = command.output().expect("the command starts");
    assert!(
        output.status.success(),
        "{command:?}: {}\n{}\n{}",
        output.status,
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    );
}

#[test]
fn the_demo_prints_the_tables_the_rules_give_for_its_posts() {
    const POSTS: &str = "400";
    const SEED: &str = "9";
    let work = tempfile::tempdir().expect("a temporary directory");
    let (raw, expected) = (work.path().join("raw"), work.path().join("expected"));
    let binary = tributary_tests::tributary_binary();
    // The same posts (the emulator's defaults in both), as files, and the rules applied to them
    // by the second implementation.
    run(std::process::Command::new(&binary)
        .args(["emulate", "--count", POSTS, "--seed", SEED, "--out"])
        .arg(&raw));
    run(std::process::Command::new("python3")
        .arg(repo().join("examples/pinterest/fixture/expected.py"))
        .args([&raw, &expected]));
    let results: Vec<&str> = tables()
        .into_iter()
        .map(|(name, _, _)| name)
        .filter(|name| !name.starts_with("clean_"))
        .collect();
    assert_eq!(results.len(), 9);
    let lake_dir = work.path().join("lake");
    for (lake, lake_env) in [("S3", None), ("a directory", Some(&lake_dir))] {
        let shown = work.path().join(format!("shown-{}", lake_env.is_some()));
        let mut demo = std::process::Command::new(repo().join("scripts/demo.sh"));
        demo.args([POSTS, SEED])
            .env("TRIBUTARY_BIN", &binary)
            .env("TRIBUTARY_DEMO_OUT", &shown);
        if let Some(dir) = lake_env {
            demo.env("TRIBUTARY_DEMO_LAKE", dir);
        }
        run(&mut demo);
        let mut failures = Vec::new();
        for name in &results {
            let read = |dir: &Path| {
                let path = dir.join(format!("{name}.json"));
                std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{path:?}: {e}"))
            };
            let (actual, wanted) = (read(&shown), read(&expected));
            assert!(!rows(&wanted).is_empty(), "{name}: the rules give no rows");
            failures.extend(compare_rows(name, &actual, &wanted));
        }
        assert!(
            failures.is_empty(),
            "lake in {lake}:\n{}",
            failures.join("\n")
        );
    }
    assert!(
        lake_dir.join("pinterest-lake/raw/pin").is_dir(),
        "the directory lake holds the raw pins"
    );
}

#[tokio::test]
async fn the_pinterest_jobs_compute_the_expected_tables_and_reruns_replace_them() {
    let lake = tempfile::tempdir().expect("a temporary directory");
    let clean = config("batch-clean.yaml", lake.path());
    let aggregate = config("batch-aggregate.yaml", lake.path());
    // The SQL checks the controller runs before any Job starts pass on both jobs.
    for job in [&clean, &aggregate] {
        tributary_workers::batch::check_steps(&job.inputs, &job.steps)
            .await
            .unwrap_or_else(|e| panic!("{}: {e}", job.batch_job));
    }
    let day: jiff::Timestamp = "2026-11-28T01:00:00Z".parse().unwrap();
    for attempt in 1..=2 {
        for job in [&clean, &aggregate] {
            let summaries = tributary_workers::batch::run(job, day)
                .await
                .unwrap_or_else(|e| panic!("{} (attempt {attempt}): {e}", job.batch_job));
            let written: Vec<&str> = summaries.iter().map(|s| s.step.as_str()).collect();
            let outputs: Vec<&str> = job
                .steps
                .iter()
                .filter(|step| step.output.is_some())
                .map(|step| step.name.as_str())
                .collect();
            assert_eq!(written, outputs, "{}", job.batch_job);
        }
        assert_tables_as_expected(lake.path()).await;
    }
}
