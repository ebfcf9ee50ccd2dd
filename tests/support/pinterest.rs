//! The Pinterest cleaning Sinks against the batch cleaning: the Sinks of an
//! `examples/pinterest/` manifest, the fixture's raw records, and the comparison of the
//! Parquet a cleaning Sink writes with `fixture/expected/clean_*.json` — after `DISTINCT`,
//! because a micro-batch removes only the duplicates within itself (decision 0041).
//! `tests/sink_transform.rs` runs it for the Topic Sinks, `tests/stream_clean.rs` for the
//! Stream Sinks.

use std::collections::{BTreeMap, BTreeSet};

use datafusion::arrow::array::RecordBatch;
use datafusion::arrow::datatypes::{DataType, TimeUnit};
use datafusion::arrow::json::WriterBuilder;
use datafusion::arrow::json::writer::LineDelimited;
use parquet::arrow::arrow_reader::ParquetRecordBatchReaderBuilder;
use serde::Deserialize;
use serde_json::Value;
use tributary_crds::Sink;

use crate::{normalize_row, repo};

/// The cleaned tables, in the order of the fixture's directories.
pub const TABLES: [&str; 3] = ["pin", "geo", "user"];

/// The Sinks of `examples/pinterest/<file>`, by name.
pub fn sinks(file: &str) -> BTreeMap<String, Sink> {
    let path = repo().join("examples/pinterest").join(file);
    let yaml = std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    serde_yaml::Deserializer::from_str(&yaml)
        .map(|document| {
            let sink = Sink::deserialize(document)
                .unwrap_or_else(|e| panic!("{}: not a Sink: {e}", path.display()));
            (sink.metadata.name.clone().expect("a name"), sink)
        })
        .collect()
}

/// The fixture's raw records of `table` (`fixture/raw/<table>/part-00000.json`), one JSON
/// line each, in file order.
pub fn raw_records(table: &str) -> Vec<String> {
    let raw = std::fs::read_to_string(repo().join(format!(
        "examples/pinterest/fixture/raw/{table}/part-00000.json"
    )))
    .expect("the fixture");
    raw.lines()
        .filter(|l| !l.is_empty())
        .map(str::to_owned)
        .collect()
}

/// The column types the batch cleaning writes for `table`, in its column order (a list's
/// items nullable).
pub fn column_types(table: &str) -> Vec<DataType> {
    let timestamp = DataType::Timestamp(TimeUnit::Microsecond, Some("UTC".into()));
    match table {
        "pin" => [
            vec![DataType::Int64],
            vec![DataType::Utf8; 3],
            vec![DataType::Int64],
            vec![DataType::Utf8; 6],
        ]
        .concat(),
        "geo" => vec![
            DataType::Int64,
            DataType::Utf8,
            DataType::new_list(DataType::Float64, true),
            timestamp,
        ],
        "user" => vec![DataType::Int64, DataType::Utf8, DataType::Int64, timestamp],
        other => panic!("no cleaned table {other}"),
    }
}

/// The rows of Parquet files, as normalized JSON, with the files' columns and types.
pub fn parquet_rows(
    files: impl IntoIterator<Item = Vec<u8>>,
) -> (Vec<(String, DataType)>, Vec<String>) {
    let mut columns = Vec::new();
    let mut rows = Vec::new();
    for file in files {
        let reader = ParquetRecordBatchReaderBuilder::try_new(bytes::Bytes::from(file))
            .expect("a Parquet file")
            .build()
            .expect("a reader");
        let batches: Vec<RecordBatch> = reader.map(|b| b.expect("a batch")).collect();
        let mut writer = WriterBuilder::new()
            .with_explicit_nulls(true)
            .build::<_, LineDelimited>(Vec::new());
        for batch in &batches {
            columns = batch
                .schema()
                .fields()
                .iter()
                .map(|f| (f.name().clone(), f.data_type().clone()))
                .collect();
            writer.write(batch).expect("rows as JSON");
        }
        writer.finish().expect("rows as JSON");
        for line in String::from_utf8(writer.into_inner()).unwrap().lines() {
            rows.push(normalize_row(serde_json::from_str(line).unwrap()).to_string());
        }
    }
    (columns, rows)
}

/// Check what a cleaning Sink wrote for `table` from `records` raw records (`columns` and
/// `rows` as [`parquet_rows`] reads them) against `fixture/expected/clean_<table>.json`:
/// the batch cleaning's column types and names, between one row per distinct expected row
/// and one per record, and, after `DISTINCT`, exactly the expected rows. The error says
/// what differs.
pub fn check_clean_table(
    table: &str,
    records: usize,
    columns: &[(String, DataType)],
    rows: Vec<String>,
) -> Result<(), String> {
    let types: Vec<DataType> = columns
        .iter()
        .map(|(_, t)| match t {
            DataType::List(item) => DataType::new_list(item.data_type().clone(), true),
            other => other.clone(),
        })
        .collect();
    if types != column_types(table) {
        return Err(format!("{table}: columns {columns:?}"));
    }
    let expected_text = std::fs::read_to_string(repo().join(format!(
        "examples/pinterest/fixture/expected/clean_{table}.json"
    )))
    .expect("the expected table");
    let expected: BTreeSet<String> = expected_text
        .lines()
        .filter(|l| !l.is_empty())
        .map(|l| normalize_row(serde_json::from_str(l).unwrap()).to_string())
        .collect();
    let first: Value = serde_json::from_str(expected_text.lines().next().unwrap()).unwrap();
    let expected_names: BTreeSet<&str> = first
        .as_object()
        .unwrap()
        .keys()
        .map(String::as_str)
        .collect();
    let names: BTreeSet<&str> = columns.iter().map(|(n, _)| n.as_str()).collect();
    if names != expected_names {
        return Err(format!(
            "{table}: columns {names:?}, the batch cleaning's {expected_names:?}"
        ));
    }
    // Per micro-batch DISTINCT: at least the distinct rows, at most one per record.
    if rows.len() < expected.len() || rows.len() > records {
        return Err(format!(
            "{table}: {} rows from {records} records, {} distinct expected",
            rows.len(),
            expected.len()
        ));
    }
    let distinct: BTreeSet<String> = rows.into_iter().collect();
    if distinct != expected {
        let missing: Vec<_> = expected.difference(&distinct).collect();
        let extra: Vec<_> = distinct.difference(&expected).collect();
        return Err(format!(
            "{table}: missing {missing:#?}\nunexpected {extra:#?}"
        ));
    }
    Ok(())
}
