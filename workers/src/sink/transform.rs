//! A Sink's SQL transform (`spec.transform.sql`): a DataFusion query over each micro-batch,
//! whose result is what the Sink writes (`docs/sink.md#transform`).
//!
//! # The table `input`
//!
//! The query reads one table, `input`: the records of one object of one flush (one partition's
//! records for one partition path), with the columns of `spec.format.schema` — which a
//! transform requires, so the columns are known before any record arrives — followed by the
//! source's metadata columns ([`SourceKind::metadata_fields`]). A record is turned into a row by
//! the rules of the Parquet encoder's given schemas ([`super::parquet`]): a record whose fields
//! do not fit goes to the dead letter before the transform sees it ([`Transform::check`]).
//!
//! # Functions
//!
//! The batch worker's functions are registered ([`crate::batch::udf`]): `parse_count(text)`,
//! and `scheduled_time()`, which in a Sink is the newest record time of the micro-batch (the
//! largest `_timestamp` / `_arrival_time`; the Unix epoch when no record has one). It depends
//! only on the batch's records, so a flush rewritten after a crash computes the same rows.
//!
//! # Checking without data
//!
//! [`Transform::new`] plans the query against an empty `input`, without I/O, and checks that
//! its result can be written in the Sink's format: the operator calls it when it validates a
//! Sink, and the worker again when it starts. The result's schema ([`Transform::output_schema`])
//! is then fixed: every object a transform writes has exactly those columns.
//!
//! # Sources
//!
//! The metadata columns depend on the source; [`Metadata`] carries one record's values. A
//! Kafka source fills [`Metadata::Kafka`], a Kinesis source [`Metadata::Kinesis`]; the
//! transform itself is the same for both.

use std::sync::Arc;

use arrow_array::builder::{
    Int32Builder, Int64Builder, StringBuilder, TimestampMicrosecondBuilder,
};
use arrow_array::{ArrayRef, RecordBatch, new_null_array};
use arrow_schema::{DataType, Field, Schema, SchemaRef};
use bytes::Bytes;
use datafusion::arrow::json::WriterBuilder;
use datafusion::arrow::json::writer::LineDelimited;
use datafusion::datasource::MemTable;
use datafusion::error::DataFusionError;
use datafusion::logical_expr::ScalarUDF;
use datafusion::prelude::{DataFrame, SessionContext};
use parquet::arrow::ArrowWriter;
use serde_json::Value;
use tributary_crds::batch_job::BatchStep;
use tributary_crds::common::DataFormat;
use tributary_crds::sink::SinkFormat;

use super::keys::{Extension, KeyError};
use super::parquet::{ParquetEncoder, ParquetError};
use super::store::{StoreError, encode_json_lines};
use crate::batch::plan::{BatchPlanError, check_references, query_only, session};
use crate::batch::udf::{ScheduledTime, UTC, timestamp_type};

/// The name of the table a transform reads.
pub const INPUT_TABLE: &str = "input";

/// Why a transform cannot be used, or a micro-batch not be transformed. The messages of the
/// variants found by [`Transform::new`] name the spec field to fix.
#[derive(Debug, thiserror::Error)]
pub enum TransformError {
    /// No `spec.format.schema`: the columns of `input` would be unknown until records arrive.
    #[error(
        "spec.transform needs spec.format.schema: the columns of the table input are the \
         schema's fields (plus the metadata columns), so list the records' fields there"
    )]
    NoSchema,
    /// `spec.format.schema` cannot be used (empty, a field twice).
    #[error(transparent)]
    Schema(ParquetError),
    /// A schema field with the name of a metadata column.
    #[error(
        "spec.format.schema: the field {0:?} has the name of a metadata column of the table \
         input; metadata columns start with an underscore, rename the field"
    )]
    MetadataName(String),
    /// The SQL does not parse, or is more than one statement.
    #[error("spec.transform.sql does not parse: {0}; write one query over the table input")]
    Syntax(String),
    /// A statement other than a query.
    #[error(
        "spec.transform.sql: only a query (SELECT, WITH ... SELECT, VALUES) can be a transform; \
         the Sink writes its result"
    )]
    NotAQuery,
    /// A table other than `input`.
    #[error(
        "spec.transform.sql reads table {0:?}; a transform reads only the table input, the \
         micro-batch"
    )]
    UnknownTable(String),
    /// The query does not plan: an unknown column or function, a type error.
    #[error("spec.transform.sql: {0}; fix the query or spec.format.schema")]
    Plan(String),
    /// The result has a column the Sink's format cannot hold.
    #[error("spec.transform.sql: its result cannot be written as {format:?}: {message}")]
    Output {
        /// `spec.format.type`.
        format: DataFormat,
        /// Why.
        message: String,
    },
    /// `spec.format` names no object extension.
    #[error(transparent)]
    Format(#[from] KeyError),
    /// The query failed on a micro-batch.
    #[error("the transform failed on a batch: {0}")]
    Run(String),
    /// The rows or the result could not be encoded.
    #[error(transparent)]
    Encode(#[from] ParquetError),
    /// The JSON-lines result could not be written.
    #[error(transparent)]
    Store(#[from] StoreError),
    /// Metadata of another source than the transform was built for, which is a bug.
    #[error("the transform reads a {expected:?} source but was handed another source's records")]
    WrongSource {
        /// The source the transform was built for.
        expected: SourceKind,
    },
}

impl TransformError {
    /// The `Ready` condition's reason when the operator refuses a Sink for this.
    pub fn reason(&self) -> &'static str {
        match self {
            Self::NoSchema | Self::Schema(_) | Self::MetadataName(_) | Self::Format(_) => {
                "InvalidSpec"
            }
            _ => "InvalidTransform",
        }
    }
}

/// What a Sink reads, which decides the metadata columns of `input`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum SourceKind {
    /// A Kafka topic.
    Kafka,
    /// A Kinesis stream.
    Kinesis,
}

impl SourceKind {
    /// The metadata columns, after the schema's fields, in this order:
    ///
    /// | Kafka | Kinesis | type |
    /// |---|---|---|
    /// | `_topic` | `_stream` | `Utf8` |
    /// | `_partition` (`Int32`) | `_shard` (`Utf8`) | |
    /// | `_offset` (`Int64`) | `_sequence_number` (`Utf8`) | |
    /// | `_timestamp` | `_arrival_time` | timestamp (µs, UTC), nullable |
    /// | `_key` (nullable) | `_partition_key` | `Utf8`: the key as text, `NULL` when it is not UTF-8 |
    pub fn metadata_fields(self) -> Vec<Field> {
        let time = timestamp_type();
        match self {
            Self::Kafka => vec![
                Field::new("_topic", DataType::Utf8, false),
                Field::new("_partition", DataType::Int32, false),
                Field::new("_offset", DataType::Int64, false),
                Field::new("_timestamp", time, true),
                Field::new("_key", DataType::Utf8, true),
            ],
            Self::Kinesis => vec![
                Field::new("_stream", DataType::Utf8, false),
                Field::new("_shard", DataType::Utf8, false),
                Field::new("_sequence_number", DataType::Utf8, false),
                Field::new("_arrival_time", time, true),
                Field::new("_partition_key", DataType::Utf8, true),
            ],
        }
    }
}

/// One record's metadata: where it was in the source.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Metadata {
    /// A Kafka record.
    Kafka {
        /// The partition.
        partition: i32,
        /// The offset.
        offset: u64,
        /// The record's timestamp, in milliseconds.
        timestamp_millis: Option<i64>,
        /// The key's bytes.
        key: Option<Vec<u8>>,
    },
    /// A Kinesis record.
    Kinesis {
        /// The shard id.
        shard: String,
        /// The sequence number.
        sequence_number: String,
        /// The approximate arrival timestamp, in milliseconds.
        arrival_millis: Option<i64>,
        /// The partition key.
        partition_key: Option<String>,
    },
}

impl Metadata {
    fn time_millis(&self) -> Option<i64> {
        match self {
            Self::Kafka {
                timestamp_millis, ..
            } => *timestamp_millis,
            Self::Kinesis { arrival_millis, .. } => *arrival_millis,
        }
    }
}

/// How the result is written.
enum Output {
    JsonLines(Extension),
    Parquet,
}

/// A planned transform, ready to run on micro-batches.
pub struct Transform {
    sql: String,
    source: SourceKind,
    ctx: SessionContext,
    /// Turns records into rows of the schema's fields; writes Parquet results.
    rows: ParquetEncoder,
    input_schema: SchemaRef,
    output_schema: SchemaRef,
    output: Output,
}

impl std::fmt::Debug for Transform {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Transform")
            .field("sql", &self.sql)
            .field("source", &self.source)
            .field("output_schema", &self.output_schema)
            .finish_non_exhaustive()
    }
}

impl Transform {
    /// Plan `sql` over `input` (the fields of `format.schema` and `source`'s metadata
    /// columns) without data or I/O, and check that its result can be written as `format`.
    pub fn new(sql: &str, format: &SinkFormat, source: SourceKind) -> Result<Self, TransformError> {
        let fields = format.schema.as_ref().ok_or(TransformError::NoSchema)?;
        let metadata = source.metadata_fields();
        if let Some(field) = fields
            .iter()
            .find(|field| metadata.iter().any(|m| m.name() == &field.name))
        {
            return Err(TransformError::MetadataName(field.name.clone()));
        }
        let output = match format.format {
            DataFormat::Parquet => Output::Parquet,
            DataFormat::JsonLines => {
                Output::JsonLines(Extension::for_format(format.format, format.compression)?)
            }
        };
        // The rows' encoder writes the result too when it is Parquet, with the Sink's codec.
        let rows = ParquetEncoder::new(&SinkFormat {
            format: DataFormat::Parquet,
            compression: format
                .compression
                .filter(|_| format.format == DataFormat::Parquet),
            schema: Some(fields.clone()),
        })
        .map_err(TransformError::Schema)?;
        let mut columns: Vec<Field> = rows
            .schema()
            .fields()
            .iter()
            .map(|field| field.as_ref().clone())
            .collect();
        columns.extend(metadata);
        let input_schema = Arc::new(Schema::new(columns));
        let ctx = session(0);
        let step = BatchStep {
            name: "transform".into(),
            sql: sql.to_owned(),
            output: None,
        };
        check_references(&ctx, &step, &[INPUT_TABLE]).map_err(|error| match error {
            BatchPlanError::Syntax { message, .. } => TransformError::Syntax(message),
            BatchPlanError::NotAQuery { .. } => TransformError::NotAQuery,
            BatchPlanError::UnknownTable { table, .. } => TransformError::UnknownTable(table),
            BatchPlanError::Plan { message, .. } => TransformError::Plan(message),
        })?;
        register_input(&ctx, RecordBatch::new_empty(input_schema.clone()))
            .map_err(|error| TransformError::Plan(message(&error)))?;
        // Planning a query over an in-memory table does no I/O and never waits.
        let frame = futures::executor::block_on(ctx.sql_with_options(sql, query_only()))
            .map_err(|error| TransformError::Plan(message(&error)))?;
        // Type coercion runs in the analyzer, after the SQL is planned.
        frame
            .clone()
            .into_optimized_plan()
            .map_err(|error| TransformError::Plan(message(&error)))?;
        let output_schema: SchemaRef = Arc::new(frame.schema().as_arrow().clone());
        check_output(&output_schema, format.format)?;
        Ok(Self {
            sql: sql.to_owned(),
            source,
            ctx,
            rows,
            input_schema,
            output_schema,
            output,
        })
    }

    /// The columns of `input`: the schema's fields, then the metadata columns.
    pub fn input_schema(&self) -> SchemaRef {
        self.input_schema.clone()
    }

    /// The columns of every object the transform writes.
    pub fn output_schema(&self) -> SchemaRef {
        self.output_schema.clone()
    }

    /// Whether `record` can become a row of `input`; if not, the reason for the dead letter.
    pub fn check(&self, record: &Value) -> Result<(), String> {
        self.rows.check(record)
    }

    /// Transform one micro-batch — `records` (JSON objects that passed [`Self::check`]) with
    /// their `metadata`, read from `source_name` (the topic or stream) — and encode the result
    /// in the Sink's format; `None` when the query returns no rows.
    pub async fn encode(
        &mut self,
        source_name: &str,
        records: &[Vec<u8>],
        metadata: &[Metadata],
    ) -> Result<Option<Bytes>, TransformError> {
        let batches = self.run(source_name, records, metadata).await?;
        let Some(schema) = batches
            .iter()
            .find(|batch| batch.num_rows() > 0)
            .map(RecordBatch::schema)
        else {
            return Ok(None);
        };
        let bytes = match self.output {
            Output::Parquet => self.rows.write_batches(schema, &batches)?,
            Output::JsonLines(extension) => {
                let text = json_lines(&batches).map_err(|e| TransformError::Run(e.to_string()))?;
                let lines: Vec<&[u8]> = text
                    .split(|&byte| byte == b'\n')
                    .filter(|line| !line.is_empty())
                    .collect();
                encode_json_lines(&lines, extension)?
            }
        };
        Ok(Some(bytes))
    }

    /// The query's result over one micro-batch, as Arrow batches.
    pub async fn run(
        &mut self,
        source_name: &str,
        records: &[Vec<u8>],
        metadata: &[Metadata],
    ) -> Result<Vec<RecordBatch>, TransformError> {
        let input = self.input_batch(source_name, records, metadata)?;
        let newest_micros = metadata
            .iter()
            .filter_map(Metadata::time_millis)
            .max()
            .unwrap_or(0)
            .saturating_mul(1000);
        let run_error = |error: DataFusionError| TransformError::Run(message(&error));
        register_input(&self.ctx, input).map_err(run_error)?;
        self.ctx
            .register_udf(ScalarUDF::from(ScheduledTime::new(newest_micros)));
        let frame: DataFrame = self
            .ctx
            .sql_with_options(&self.sql, query_only())
            .await
            .map_err(run_error)?;
        frame.collect().await.map_err(run_error)
    }

    /// `records` and their `metadata` as one batch of `input`.
    pub fn input_batch(
        &mut self,
        source_name: &str,
        records: &[Vec<u8>],
        metadata: &[Metadata],
    ) -> Result<RecordBatch, TransformError> {
        if records.is_empty() {
            return Ok(RecordBatch::new_empty(self.input_schema.clone()));
        }
        let fields = self.rows.record_batch(records)?;
        let mut columns: Vec<ArrayRef> = fields.columns().to_vec();
        columns.extend(self.metadata_columns(source_name, metadata)?);
        RecordBatch::try_new(self.input_schema.clone(), columns)
            .map_err(|source| TransformError::Encode(ParquetError::Batch { source }))
    }

    fn metadata_columns(
        &self,
        source_name: &str,
        metadata: &[Metadata],
    ) -> Result<Vec<ArrayRef>, TransformError> {
        let rows = metadata.len();
        let wrong = || TransformError::WrongSource {
            expected: self.source,
        };
        let mut name = StringBuilder::with_capacity(rows, rows * source_name.len());
        let mut time = TimestampMicrosecondBuilder::with_capacity(rows).with_timezone(UTC);
        let mut key = StringBuilder::new();
        let columns: Vec<ArrayRef> = match self.source {
            SourceKind::Kafka => {
                let (mut partition, mut offset) = (
                    Int32Builder::with_capacity(rows),
                    Int64Builder::with_capacity(rows),
                );
                for record in metadata {
                    let Metadata::Kafka {
                        partition: p,
                        offset: o,
                        timestamp_millis,
                        key: k,
                    } = record
                    else {
                        return Err(wrong());
                    };
                    name.append_value(source_name);
                    partition.append_value(*p);
                    offset.append_value(i64::try_from(*o).unwrap_or(i64::MAX));
                    time.append_option(timestamp_millis.map(|ms| ms.saturating_mul(1000)));
                    key.append_option(k.as_deref().and_then(|k| std::str::from_utf8(k).ok()));
                }
                vec![
                    Arc::new(name.finish()),
                    Arc::new(partition.finish()),
                    Arc::new(offset.finish()),
                    Arc::new(time.finish()),
                    Arc::new(key.finish()),
                ]
            }
            SourceKind::Kinesis => {
                let (mut shard, mut sequence) = (StringBuilder::new(), StringBuilder::new());
                for record in metadata {
                    let Metadata::Kinesis {
                        shard: s,
                        sequence_number,
                        arrival_millis,
                        partition_key,
                    } = record
                    else {
                        return Err(wrong());
                    };
                    name.append_value(source_name);
                    shard.append_value(s);
                    sequence.append_value(sequence_number);
                    time.append_option(arrival_millis.map(|ms| ms.saturating_mul(1000)));
                    key.append_option(partition_key.as_deref());
                }
                vec![
                    Arc::new(name.finish()),
                    Arc::new(shard.finish()),
                    Arc::new(sequence.finish()),
                    Arc::new(time.finish()),
                    Arc::new(key.finish()),
                ]
            }
        };
        Ok(columns)
    }
}

/// Register `batch` as the table `input`, replacing the previous one.
fn register_input(ctx: &SessionContext, batch: RecordBatch) -> Result<(), DataFusionError> {
    let table = MemTable::try_new(batch.schema(), vec![vec![batch]])?;
    ctx.deregister_table(INPUT_TABLE)?;
    ctx.register_table(INPUT_TABLE, Arc::new(table))?;
    Ok(())
}

/// Whether a result of `schema` can be written as `format`: a Parquet writer accepts the
/// schema, or the JSON writer a row of nulls of it.
fn check_output(schema: &SchemaRef, format: DataFormat) -> Result<(), TransformError> {
    let refuse = |message: String| TransformError::Output { format, message };
    if schema.fields().is_empty() {
        return Err(refuse("the query returns no columns".into()));
    }
    match format {
        DataFormat::Parquet => {
            ArrowWriter::try_new(Vec::new(), schema.clone(), None)
                .map_err(|error| refuse(error.to_string()))?;
        }
        DataFormat::JsonLines => {
            let nullable: Vec<Field> = schema
                .fields()
                .iter()
                .map(|field| field.as_ref().clone().with_nullable(true))
                .collect();
            let columns = nullable
                .iter()
                .map(|field| new_null_array(field.data_type(), 1))
                .collect();
            let row = RecordBatch::try_new(Arc::new(Schema::new(nullable)), columns)
                .map_err(|error| refuse(error.to_string()))?;
            json_lines(&[row]).map_err(|error| refuse(error.to_string()))?;
        }
    }
    Ok(())
}

/// `batches` as JSON lines, with every column on every line (`null` for NULL).
fn json_lines(batches: &[RecordBatch]) -> Result<Vec<u8>, arrow_schema::ArrowError> {
    let mut writer = WriterBuilder::new()
        .with_explicit_nulls(true)
        .build::<_, LineDelimited>(Vec::new());
    for batch in batches {
        writer.write(batch)?;
    }
    writer.finish()?;
    Ok(writer.into_inner())
}

/// DataFusion's message without the context it sometimes wraps around it.
fn message(error: &DataFusionError) -> String {
    error.find_root().to_string()
}

#[cfg(test)]
mod tests {
    use arrow_array::cast::AsArray;
    use arrow_array::types::{Int64Type, TimestampMicrosecondType};
    use bytes::Buf;
    use parquet::arrow::arrow_reader::ParquetRecordBatchReaderBuilder;

    use super::*;

    fn format(yaml: &str) -> SinkFormat {
        serde_json::from_value(serde_json::from_str::<Value>(yaml).unwrap()).unwrap()
    }

    fn pin_format(kind: &str) -> SinkFormat {
        format(&format!(
            r#"{{"type": "{kind}", "schema": [
                {{"name": "index", "type": "Int64"}},
                {{"name": "title", "type": "String"}},
                {{"name": "follower_count", "type": "String"}}]}}"#
        ))
    }

    fn kafka(offset: u64, millis: i64, key: Option<&str>) -> Metadata {
        Metadata::Kafka {
            partition: 2,
            offset,
            timestamp_millis: Some(millis),
            key: key.map(|k| k.as_bytes().to_vec()),
        }
    }

    fn records(values: &[&str]) -> Vec<Vec<u8>> {
        values.iter().map(|v| v.as_bytes().to_vec()).collect()
    }

    #[tokio::test]
    async fn the_query_reads_fields_metadata_and_the_batch_worker_s_functions() {
        let sql = "SELECT index AS ind, parse_count(follower_count) AS followers, \
                   NULLIF(title, '') AS title, _topic, _partition, _offset, _timestamp, _key, \
                   scheduled_time() AS newest FROM input ORDER BY _offset";
        let mut transform = Transform::new(sql, &pin_format("Parquet"), SourceKind::Kafka).unwrap();
        let names: Vec<_> = transform
            .output_schema()
            .fields()
            .iter()
            .map(|f| f.name().clone())
            .collect();
        assert_eq!(
            names,
            [
                "ind",
                "followers",
                "title",
                "_topic",
                "_partition",
                "_offset",
                "_timestamp",
                "_key",
                "newest"
            ]
        );
        let rows = records(&[
            r#"{"index": 1, "title": "", "follower_count": "3k", "extra": true}"#,
            r#"{"index": 2, "title": "Art", "follower_count": "User Info Error"}"#,
        ]);
        let metadata = [kafka(10, 1_000, Some("k")), kafka(11, 5_000, None)];
        let batches = transform.run("pin", &rows, &metadata).await.unwrap();
        let json = String::from_utf8(json_lines(&batches).unwrap()).unwrap();
        let lines: Vec<Value> = json
            .lines()
            .map(|l| serde_json::from_str(l).unwrap())
            .collect();
        assert_eq!(lines.len(), 2);
        assert_eq!(lines[0]["followers"], 3000);
        assert_eq!(lines[0]["title"], Value::Null);
        assert_eq!(lines[0]["_topic"], "pin");
        assert_eq!(lines[0]["_partition"], 2);
        assert_eq!(lines[0]["_offset"], 10);
        assert_eq!(lines[0]["_key"], "k");
        assert_eq!(lines[1]["followers"], Value::Null);
        assert_eq!(lines[1]["_key"], Value::Null);
        let batch = &batches[0];
        let times = batch.column(6).as_primitive::<TimestampMicrosecondType>();
        assert_eq!(times.value(0), 1_000_000);
        // scheduled_time() is the batch's newest record time, in every row.
        let newest = batch.column(8).as_primitive::<TimestampMicrosecondType>();
        assert_eq!((newest.value(0), newest.value(1)), (5_000_000, 5_000_000));
    }

    #[tokio::test]
    async fn parquet_results_have_the_planned_columns_and_empty_results_write_nothing() {
        let sql = "SELECT DISTINCT index AS ind, title FROM input WHERE index > 1";
        let mut transform = Transform::new(sql, &pin_format("Parquet"), SourceKind::Kafka).unwrap();
        let rows = records(&[
            r#"{"index": 2, "title": "a"}"#,
            r#"{"index": 2, "title": "a"}"#,
            r#"{"index": 1, "title": "b"}"#,
        ]);
        let metadata = [kafka(0, 0, None), kafka(1, 0, None), kafka(2, 0, None)];
        let bytes = transform
            .encode("pin", &rows, &metadata)
            .await
            .unwrap()
            .expect("rows");
        let reader = ParquetRecordBatchReaderBuilder::try_new(bytes.clone())
            .unwrap()
            .build()
            .unwrap();
        let batches: Vec<RecordBatch> = reader.map(Result::unwrap).collect();
        assert_eq!(batches.iter().map(RecordBatch::num_rows).sum::<usize>(), 1);
        let ind = batches[0].column(0).as_primitive::<Int64Type>();
        assert_eq!(ind.value(0), 2);
        assert_eq!(
            batches[0].schema().field(0).name(),
            transform.output_schema().field(0).name()
        );
        let none = transform
            .encode("pin", &rows[2..], &metadata[2..])
            .await
            .unwrap();
        assert!(none.is_none(), "a query without rows writes no object");
        assert!(bytes.chunk().starts_with(b"PAR1"));
    }

    #[tokio::test]
    async fn json_lines_results_are_compressed_as_the_format_says() {
        let mut format = pin_format("JsonLines");
        format.compression = Some(tributary_crds::sink::Compression::Gzip);
        let mut transform = Transform::new(
            "SELECT index, _offset FROM input",
            &format,
            SourceKind::Kafka,
        )
        .unwrap();
        let bytes = transform
            .encode("pin", &records(&[r#"{"index": 7}"#]), &[kafka(3, 0, None)])
            .await
            .unwrap()
            .unwrap();
        let mut text = String::new();
        std::io::Read::read_to_string(&mut flate2::read::GzDecoder::new(&bytes[..]), &mut text)
            .unwrap();
        assert_eq!(text, "{\"index\":7,\"_offset\":3}\n");
    }

    #[test]
    fn records_are_checked_against_the_schema() {
        let transform = Transform::new(
            "SELECT * FROM input",
            &pin_format("Parquet"),
            SourceKind::Kafka,
        )
        .unwrap();
        assert!(transform.check(&serde_json::json!({"index": 1})).is_ok());
        let reason = transform
            .check(&serde_json::json!({"index": "1"}))
            .unwrap_err();
        assert!(reason.contains("index"), "{reason}");
    }

    #[test]
    fn what_does_not_plan_is_refused_with_datafusion_s_message() {
        let new = |sql: &str| Transform::new(sql, &pin_format("Parquet"), SourceKind::Kafka);
        let error = new("SELECT missing FROM input").unwrap_err();
        assert!(matches!(error, TransformError::Plan(_)), "{error}");
        assert!(error.to_string().contains("missing"), "{error}");
        assert_eq!(error.reason(), "InvalidTransform");
        let error = new("SELECT title - 1 FROM input").unwrap_err();
        assert!(matches!(error, TransformError::Plan(_)), "{error}");
        assert!(matches!(
            new("SELEC 1").unwrap_err(),
            TransformError::Syntax(_)
        ));
        assert!(matches!(
            new("DROP TABLE input").unwrap_err(),
            TransformError::NotAQuery
        ));
        let error = new("SELECT * FROM input JOIN geo ON true").unwrap_err();
        assert!(
            matches!(&error, TransformError::UnknownTable(table) if table == "geo"),
            "{error}"
        );
        // Kinesis sources have their own metadata columns.
        let kinesis = Transform::new(
            "SELECT _shard, _sequence_number, _partition_key FROM input",
            &pin_format("Parquet"),
            SourceKind::Kinesis,
        );
        assert!(kinesis.is_ok(), "{kinesis:?}");
    }

    #[test]
    fn a_schema_is_required_and_may_not_shadow_metadata() {
        let no_schema = format(r#"{"type": "Parquet"}"#);
        let error = Transform::new("SELECT 1", &no_schema, SourceKind::Kafka).unwrap_err();
        assert!(matches!(error, TransformError::NoSchema));
        assert_eq!(error.reason(), "InvalidSpec");
        let shadowing = format(r#"{"schema": [{"name": "_offset", "type": "Int64"}]}"#);
        let error = Transform::new("SELECT 1", &shadowing, SourceKind::Kafka).unwrap_err();
        assert!(matches!(error, TransformError::MetadataName(name) if name == "_offset"));
    }

    #[tokio::test]
    async fn records_of_another_source_are_refused() {
        let mut transform = Transform::new(
            "SELECT * FROM input",
            &pin_format("Parquet"),
            SourceKind::Kinesis,
        )
        .unwrap();
        let error = transform
            .run("pin", &records(&[r#"{"index": 1}"#]), &[kafka(0, 0, None)])
            .await
            .unwrap_err();
        assert!(
            matches!(error, TransformError::WrongSource { .. }),
            "{error}"
        );
    }
}
