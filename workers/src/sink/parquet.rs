//! The Parquet encoder: one flush's records, JSON objects, as one Parquet file in memory.
//!
//! # With a schema
//!
//! When `spec.format.schema` lists the columns, every file has exactly those columns, in that
//! order, and fields of a record that the schema does not list are dropped. A field that is
//! missing or `null` is written as null if its column is `nullable` (the default); otherwise
//! the record is refused. A refused record goes to the dead letter with a short reason, such
//! as `field "price": expected a number, found the string "abc"`. Each type takes:
//!
//! | type | Parquet column | accepts |
//! |---|---|---|
//! | `String` | `BYTE_ARRAY` (`STRING`) | strings only |
//! | `Int64` | `INT64` | integers from -2⁶³ to 2⁶³-1, and numbers without a fraction such as `3.0` or `1e3` |
//! | `Float64` | `DOUBLE` | any number |
//! | `Boolean` | `BOOLEAN` | `true` and `false` |
//! | `Timestamp` | `INT64` (`TIMESTAMP(MICROS, UTC)`) | RFC 3339 strings with an offset, such as `2024-06-01T12:00:00Z` or `2024-06-01T14:00:00.5+02:00`, and integer epoch milliseconds (integral as for `Int64`) |
//! | `Date` | `INT32` (`DATE`) | `YYYY-MM-DD` strings |
//!
//! A given schema is a contract, so values are not coerced across JSON types: `5` for a
//! `String` column, `"5"` for an `Int64` one and `"true"` for a `Boolean` one are refused,
//! as a silent conversion would hide a producer that changed its output. (To keep mixed values
//! as text, leave the schema out.) `Int64` takes `3.0` because many JSON encoders know only
//! doubles and write every number that way, and nothing is lost; `3.5` is refused, not
//! rounded. A timestamp without an offset is refused, as its time zone is unknown; digits below
//! the microsecond are dropped. Epoch numbers are milliseconds, never seconds. Timestamps must
//! lie in the years -9999 to 9999.
//!
//! # Without a schema
//!
//! The columns are inferred from the records, and the encoder keeps the widest schema it has
//! seen, so every file is written with a schema at least as wide as the one before:
//!
//! - A column seen once stays, in the order it was first seen; new columns are appended. A
//!   record without the field has null there. Every inferred column is nullable.
//! - `true` and `false` make `Boolean`, integers `Int64`, other numbers (fractions, exponents,
//!   integers beyond the `Int64` range) `Float64`, and strings `Utf8`.
//! - Types widen, never narrow: `Int64` and `Float64` make `Float64`; any other pair of types,
//!   such as a number and a string or a boolean and a number, makes `Utf8`. In a `Utf8` column a
//!   string is written as itself and any other value as its JSON text as the record has it:
//!   `1.50` stays `1.50`, not `1.5`, and `true` is `true`.
//! - Objects and arrays are not flattened: they make `Utf8` and are written as their JSON text,
//!   spacing included.
//! - A column that has held only nulls has Arrow's `Null` type (in Parquet an `INT32` column of
//!   the `UNKNOWN` logical type, which is all null) until a value gives it a type. Unlike an
//!   all-null `Utf8` column, a `Null` column merges with whatever type the column takes later
//!   when a reader unifies the files' schemas: Arrow's `Schema::try_merge` (which DataFusion
//!   uses to read a directory of files) and pyarrow's `unify_schemas` both take the other type.
//!
//! Files written before a column widened keep their narrower type, so a reader that merges
//! file schemas must promote `Int64` to `Float64` and anything to `Utf8`, or be given the
//! final schema. The widest schema lives in the worker's memory: after a restart the worker
//! infers again from the records it reads, so its first files may be narrower than its last
//! ones before the restart. Give a schema when every file must have the same one.
//!
//! # Compression
//!
//! `spec.format.compression` compresses each page: `Snappy` (the default), `Zstd` (level 3),
//! `Gzip` (level 6) or `None`. The levels are those the JSON-lines objects use too. The
//! codec is recorded in the file's metadata, so readers need no setting.
//!
//! # Batches
//!
//! Each batch is one file. An empty batch is refused ([`ParquetError::NoRecords`]):
//! a flush whose records all went to the dead letter writes no data object. Records without any
//! field, before the encoder knows any column, make a file without columns, which has no rows
//! either (Parquet counts rows in columns); once a column is known they are rows of nulls.
//!
//! # Speed
//!
//! A record is parsed once, into borrowed slices of its bytes (one per field, with no
//! `serde_json::Value` and no allocation for a string without escapes), and the columns are
//! built from those slices once the batch's types are known.

use std::borrow::Cow;
use std::collections::HashMap;
use std::sync::Arc;

use arrow_array::builder::{
    ArrayBuilder, BooleanBuilder, Date32Builder, Float64Builder, Int64Builder, StringBuilder,
    TimestampMicrosecondBuilder,
};
use arrow_array::{ArrayRef, NullArray, RecordBatch, RecordBatchOptions};
use arrow_schema::{ArrowError, DataType, Field, Schema, SchemaRef, TimeUnit};
use bytes::Bytes;
use parquet::arrow::ArrowWriter;
use parquet::basic::{Compression as Codec, GzipLevel, ZstdLevel};
use parquet::file::properties::WriterProperties;
use serde::de::{Deserialize, Deserializer, IgnoredAny, MapAccess, Visitor};
use serde_json::Value;
use serde_json::value::RawValue;
use tributary_crds::common::{DataFormat, FieldSchema, FieldType};
use tributary_crds::sink::{Compression, SinkFormat};

/// The time zone of every timestamp column: values are instants, written adjusted to UTC.
const UTC: &str = "UTC";

/// 2⁶³, the first integral `f64` above `i64::MAX`.
const I64_END: f64 = 9_223_372_036_854_775_808.0;

/// The longest string a reason quotes, in characters.
const QUOTE_CHARS: usize = 40;

/// Why the encoder cannot be built or a batch not be encoded.
#[derive(Debug, thiserror::Error)]
pub enum ParquetError {
    /// A format other than Parquet.
    #[error("spec.format.type is {format:?}; the Parquet encoder writes only type Parquet")]
    NotParquet {
        /// The format asked for.
        format: DataFormat,
    },
    /// `schema: []`, which would write files without columns.
    #[error(
        "spec.format.schema lists no fields; list the columns, or leave schema out to infer them from the records"
    )]
    EmptySchema,
    /// Two fields of the schema with one name.
    #[error("spec.format.schema lists the field {name:?} more than once; keep one of them")]
    DuplicateField {
        /// The name.
        name: String,
    },
    /// A batch without records.
    #[error(
        "no records to encode: a flush whose records all went to the dead letter writes no data object"
    )]
    NoRecords,
    /// A record that does not fit, which [`ParquetEncoder::check`] would have refused.
    #[error(
        "record {index} of the batch cannot be written: {reason}; records must pass ParquetEncoder::check first"
    )]
    Record {
        /// Its position in the batch.
        index: usize,
        /// Why.
        reason: String,
    },
    /// The columns do not make a batch, which is a bug.
    #[error("cannot assemble the Arrow record batch: {source}")]
    Batch {
        /// Why.
        #[source]
        source: ArrowError,
    },
    /// The Parquet writer failed.
    #[error("cannot write the Parquet file: {source}")]
    Write {
        /// Why.
        #[source]
        source: parquet::errors::ParquetError,
    },
}

impl ParquetError {
    /// A fixed label for metrics and Events, as [`super::store::StoreError::category`] has:
    /// `config` waits for a spec change, `encode` is a bug or an exhausted machine.
    pub fn category(&self) -> &'static str {
        match self {
            Self::NotParquet { .. } | Self::EmptySchema | Self::DuplicateField { .. } => "config",
            Self::NoRecords | Self::Record { .. } | Self::Batch { .. } | Self::Write { .. } => {
                "encode"
            }
        }
    }
}

/// Writes batches of JSON records as Parquet files, with a given schema or one inferred and
/// widened across batches (see the module documentation).
#[derive(Debug)]
pub struct ParquetEncoder {
    /// Whether the columns are inferred (and widened) rather than given.
    inferred: bool,
    columns: Columns,
    schema: SchemaRef,
    properties: WriterProperties,
}

impl ParquetEncoder {
    /// The encoder of `format` (`spec.format`): its compression and, if given, its schema.
    pub fn new(format: &SinkFormat) -> Result<Self, ParquetError> {
        if format.format != DataFormat::Parquet {
            return Err(ParquetError::NotParquet {
                format: format.format,
            });
        }
        let columns = match &format.schema {
            None => Columns::default(),
            Some(fields) => Columns::given(fields)?,
        };
        let codec = match format.compression.unwrap_or(Compression::Snappy) {
            Compression::Snappy => Codec::SNAPPY,
            Compression::Zstd => Codec::ZSTD(
                ZstdLevel::try_new(zstd::zstd_safe::CLEVEL_DEFAULT)
                    .expect("zstd's default level is in its range"),
            ),
            Compression::Gzip => Codec::GZIP(GzipLevel::default()),
            Compression::None => Codec::UNCOMPRESSED,
        };
        Ok(Self {
            inferred: format.schema.is_none(),
            schema: columns.schema(),
            columns,
            properties: WriterProperties::builder().set_compression(codec).build(),
        })
    }

    /// Whether `record` can be written; if not, a short reason for the dead letter. A record
    /// must be a JSON object; with a given schema each of its fields must also fit its column,
    /// and every column that is not nullable must have a value.
    pub fn check(&self, record: &Value) -> Result<(), String> {
        let Value::Object(fields) = record else {
            let found = match record {
                Value::Array(_) => "an array",
                Value::String(_) => "a string",
                Value::Number(_) => "a number",
                Value::Bool(_) => "a boolean",
                _ => "null",
            };
            return Err(format!("the record is {found}, not a JSON object"));
        };
        if self.inferred {
            return Ok(());
        }
        for column in &self.columns.list {
            match fields.get(&column.name) {
                Some(value) => {
                    column.cell(Scalar::from_value(value))?;
                }
                None if !column.nullable => {
                    return Err(format!(
                        "field {:?} is missing and is not nullable",
                        column.name
                    ));
                }
                None => {}
            }
        }
        Ok(())
    }

    /// `records` (each the bytes of one JSON object that passed [`Self::check`]) as one
    /// Parquet file. Without a given schema, the batch widens the encoder's schema first, but
    /// only if the file is written: a batch that fails leaves the encoder as it was.
    pub fn encode(&mut self, records: &[Vec<u8>]) -> Result<Bytes, ParquetError> {
        let (batch, widened) = self.batch(records)?;
        let bytes = self.write_batches(batch.schema(), std::slice::from_ref(&batch))?;
        if let Some(columns) = widened {
            self.columns = columns;
            self.schema = batch.schema();
        }
        Ok(bytes)
    }

    /// `records` (each the bytes of one JSON object that passed [`Self::check`]) as one Arrow
    /// record batch of the given schema: the rows a SQL transform reads
    /// ([`super::transform`]). Without a given schema the columns are inferred and the
    /// encoder widened, as [`Self::encode`] does.
    pub fn record_batch(&mut self, records: &[Vec<u8>]) -> Result<RecordBatch, ParquetError> {
        let (batch, widened) = self.batch(records)?;
        if let Some(columns) = widened {
            self.columns = columns;
            self.schema = batch.schema();
        }
        Ok(batch)
    }

    /// The batch of `records`, and the widened columns if the batch widened them.
    fn batch(&self, records: &[Vec<u8>]) -> Result<(RecordBatch, Option<Columns>), ParquetError> {
        if records.is_empty() {
            return Err(ParquetError::NoRecords);
        }
        // Borrowed until the batch adds or widens a column, so a steady stream of records of
        // one shape never copies the columns.
        let mut columns = Cow::Borrowed(&self.columns);
        let cells = parse(records, &mut columns, self.inferred)?;
        let arrays = build(&columns, &cells, records.len())?;
        let schema = match &columns {
            Cow::Borrowed(_) => self.schema.clone(),
            Cow::Owned(columns) => columns.schema(),
        };
        let options = RecordBatchOptions::new().with_row_count(Some(records.len()));
        let batch = RecordBatch::try_new_with_options(schema, arrays, &options)
            .map_err(|source| ParquetError::Batch { source })?;
        let widened = match columns {
            Cow::Borrowed(_) => None,
            Cow::Owned(columns) => Some(columns),
        };
        Ok((batch, widened))
    }

    /// `batches`, all of `schema`, as one Parquet file with this encoder's compression: how a
    /// SQL transform's result is written.
    pub fn write_batches(
        &self,
        schema: SchemaRef,
        batches: &[RecordBatch],
    ) -> Result<Bytes, ParquetError> {
        write(schema, batches, self.properties.clone())
            .map_err(|source| ParquetError::Write { source })
    }

    /// The schema of the next file: the given one, or the widest inferred so far (empty before
    /// the first batch).
    pub fn schema(&self) -> SchemaRef {
        self.schema.clone()
    }
}

fn write(
    schema: SchemaRef,
    batches: &[RecordBatch],
    properties: WriterProperties,
) -> Result<Bytes, parquet::errors::ParquetError> {
    let mut writer = ArrowWriter::try_new(Vec::new(), schema, Some(properties))?;
    for batch in batches {
        writer.write(batch)?;
    }
    Ok(writer.into_inner()?.into())
}

/// The type of a column. The given types are the [`FieldType`]s; inferred columns take
/// `Null`, `Boolean`, `Int64`, `Float64` and `Json`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum ColumnType {
    Null,
    Boolean,
    Int64,
    Float64,
    /// Given `String`: strings only.
    String,
    /// Inferred `Utf8`: strings as they are, any other value as its JSON text.
    Json,
    Timestamp,
    Date,
}

impl ColumnType {
    fn given(field_type: FieldType) -> Self {
        match field_type {
            FieldType::String => Self::String,
            FieldType::Int64 => Self::Int64,
            FieldType::Float64 => Self::Float64,
            FieldType::Boolean => Self::Boolean,
            FieldType::Timestamp => Self::Timestamp,
            FieldType::Date => Self::Date,
        }
    }

    /// The inferred type of a value, from its JSON text (never empty, as serde_json trims it).
    fn of(raw: &RawValue) -> Self {
        let text = raw.get();
        match text.as_bytes()[0] {
            b'n' => Self::Null,
            b't' | b'f' => Self::Boolean,
            b'"' | b'{' | b'[' => Self::Json,
            _ if text.parse::<i64>().is_ok() => Self::Int64,
            _ => Self::Float64,
        }
    }

    /// The narrowest inferred type that holds values of both.
    fn widen(self, other: Self) -> Self {
        match (self, other) {
            (a, b) if a == b => a,
            (Self::Null, other) | (other, Self::Null) => other,
            (Self::Int64, Self::Float64) | (Self::Float64, Self::Int64) => Self::Float64,
            _ => Self::Json,
        }
    }

    fn data_type(self) -> DataType {
        match self {
            Self::Null => DataType::Null,
            Self::Boolean => DataType::Boolean,
            Self::Int64 => DataType::Int64,
            Self::Float64 => DataType::Float64,
            Self::String | Self::Json => DataType::Utf8,
            Self::Timestamp => DataType::Timestamp(TimeUnit::Microsecond, Some(UTC.into())),
            Self::Date => DataType::Date32,
        }
    }
}

#[derive(Clone, Debug)]
struct Column {
    name: String,
    ty: ColumnType,
    nullable: bool,
}

impl Column {
    /// What `scalar` is written as in this column (`None` for null), or why it cannot be.
    fn cell<'a>(&self, scalar: Result<Scalar<'a>, String>) -> Result<Option<Cell<'a>>, String> {
        let scalar = scalar.map_err(|reason| format!("field {:?}: {reason}", self.name))?;
        if let Scalar::Null = scalar {
            return if self.nullable {
                Ok(None)
            } else {
                Err(format!("field {:?} is null and is not nullable", self.name))
            };
        }
        self.convert(scalar)
            .map(Some)
            .map_err(|reason| format!("field {:?}: {reason}", self.name))
    }

    fn convert<'a>(&self, scalar: Scalar<'a>) -> Result<Cell<'a>, String> {
        let expected = |what: &str| format!("expected {what}, found {}", scalar.describe());
        match self.ty {
            ColumnType::Boolean => match scalar {
                Scalar::Bool(value) => Ok(Cell::Bool(value)),
                _ => Err(expected("true or false")),
            },
            ColumnType::Int64 => scalar.integer().map(Cell::Int).ok_or_else(|| {
                expected("an integer from -9223372036854775808 to 9223372036854775807")
            }),
            ColumnType::Float64 => match scalar {
                Scalar::Int(value) => Ok(Cell::Float(value as f64)),
                Scalar::Float(value) => Ok(Cell::Float(value)),
                _ => Err(expected("a number")),
            },
            // `Builder::append` writes inferred text columns from the JSON text, without
            // converting, so only given `String` columns really come here.
            ColumnType::String | ColumnType::Json => match scalar {
                Scalar::Str(text) => Ok(Cell::Text(text)),
                _ => Err(expected("a string")),
            },
            ColumnType::Timestamp => match &scalar {
                Scalar::Str(text) => text
                    .parse::<jiff::Timestamp>()
                    .map(|at| Cell::Int(at.as_microsecond()))
                    .map_err(|_| expected("an RFC 3339 timestamp such as 2024-06-01T12:00:00Z")),
                _ => {
                    let millis = scalar.integer().ok_or_else(|| {
                        expected("an RFC 3339 timestamp or integer epoch milliseconds")
                    })?;
                    jiff::Timestamp::from_millisecond(millis)
                        .map(|at| Cell::Int(at.as_microsecond()))
                        .map_err(|_| {
                            format!(
                                "epoch milliseconds {millis} are outside the years -9999 to 9999"
                            )
                        })
                }
            },
            ColumnType::Date => match &scalar {
                Scalar::Str(text) => date_days(text)
                    .map(Cell::Day)
                    .ok_or_else(|| expected("a date such as 2024-06-01")),
                _ => Err(expected("a date such as 2024-06-01")),
            },
            // Only nulls reach a `Null` column, and `cell` writes those before converting.
            ColumnType::Null => Err(expected("null")),
        }
    }
}

/// Days from 1970-01-01 to `text`, if it is a real date written `YYYY-MM-DD`.
fn date_days(text: &str) -> Option<i32> {
    let bytes = text.as_bytes();
    let shaped = bytes.len() == 10
        && bytes.iter().enumerate().all(|(i, b)| match i {
            4 | 7 => *b == b'-',
            _ => b.is_ascii_digit(),
        });
    if !shaped {
        return None;
    }
    // Digits only now, so the parses cannot fail and the values fit.
    let number = |range: std::ops::Range<usize>| text[range].parse::<i16>().ok();
    let date =
        jiff::civil::Date::new(number(0..4)?, number(5..7)? as i8, number(8..10)? as i8).ok()?;
    let seconds = date.duration_since(jiff::civil::date(1970, 1, 1)).as_secs();
    i32::try_from(seconds / 86_400).ok()
}

/// The columns of an encoder, with an index by name.
#[derive(Clone, Debug, Default)]
struct Columns {
    list: Vec<Column>,
    by_name: HashMap<String, usize>,
}

impl Columns {
    fn given(fields: &[FieldSchema]) -> Result<Self, ParquetError> {
        if fields.is_empty() {
            return Err(ParquetError::EmptySchema);
        }
        let mut columns = Self::default();
        for field in fields {
            if columns.find(&field.name, None).is_some() {
                return Err(ParquetError::DuplicateField {
                    name: field.name.clone(),
                });
            }
            columns.push(Column {
                name: field.name.clone(),
                ty: ColumnType::given(field.data_type),
                nullable: field.nullable,
            });
        }
        Ok(columns)
    }

    /// The column named `name`. `hint` is where it probably is: producers write their fields
    /// in the same order record after record, and comparing one name is cheaper than hashing.
    fn find(&self, name: &str, hint: Option<usize>) -> Option<usize> {
        hint.filter(|&at| self.list.get(at).is_some_and(|column| column.name == name))
            .or_else(|| self.by_name.get(name).copied())
    }

    fn push(&mut self, column: Column) -> usize {
        let at = self.list.len();
        self.by_name.insert(column.name.clone(), at);
        self.list.push(column);
        at
    }

    fn schema(&self) -> SchemaRef {
        let fields: Vec<Field> = self
            .list
            .iter()
            .map(|column| Field::new(&column.name, column.ty.data_type(), column.nullable))
            .collect();
        Arc::new(Schema::new(fields))
    }
}

/// The fields of a batch's records, as JSON text borrowed from the records.
struct Cells<'a> {
    /// `(column, value)` for every field, record after record, one per column and record.
    values: Vec<(usize, &'a RawValue)>,
    /// Where each record's fields end in `values`.
    ends: Vec<usize>,
}

impl<'a> Cells<'a> {
    fn record(&self, index: usize) -> &[(usize, &'a RawValue)] {
        let start = index.checked_sub(1).map_or(0, |before| self.ends[before]);
        &self.values[start..self.ends[index]]
    }
}

/// Reads every record once into [`Cells`], adding (when inferring) new columns and widening
/// the types of `columns` to hold its values.
fn parse<'a>(
    records: &'a [Vec<u8>],
    columns: &mut Cow<'_, Columns>,
    inferred: bool,
) -> Result<Cells<'a>, ParquetError> {
    let mut cells = Cells {
        values: Vec::with_capacity(records.len() * columns.list.len()),
        ends: Vec::with_capacity(records.len()),
    };
    let mut state = ParseState {
        row: 0,
        last_row: vec![usize::MAX; columns.list.len()],
        previous_keys: Vec::new(),
        keys: Vec::new(),
    };
    for (index, record) in records.iter().enumerate() {
        let start = cells.values.len();
        let mut json = serde_json::Deserializer::from_slice(record);
        let visitor = RecordVisitor {
            columns: &mut *columns,
            inferred,
            values: &mut cells.values,
            start,
            state: &mut state,
        };
        json.deserialize_map(visitor)
            .and_then(|()| json.end())
            .map_err(|error| ParquetError::Record {
                index,
                reason: error.to_string(),
            })?;
        if inferred {
            for &(column, raw) in &cells.values[start..] {
                let current = columns.list[column].ty;
                // Nothing is wider than text, so its values need no look.
                if current == ColumnType::Json {
                    continue;
                }
                let widened = current.widen(ColumnType::of(raw));
                if widened != current {
                    columns.to_mut().list[column].ty = widened;
                }
            }
        }
        cells.ends.push(cells.values.len());
        state.row += 1;
        std::mem::swap(&mut state.previous_keys, &mut state.keys);
        state.keys.clear();
    }
    Ok(cells)
}

/// What [`parse`] carries from one record to the next.
struct ParseState {
    /// The record being read.
    row: usize,
    /// For each column, the last record that had it, to find repeated keys.
    last_row: Vec<usize>,
    /// The column of each key of the previous record, in order (`usize::MAX` for keys not in a
    /// given schema): the hints for this one's.
    previous_keys: Vec<usize>,
    /// The same for the record being read.
    keys: Vec<usize>,
}

struct RecordVisitor<'v, 'c, 'a> {
    columns: &'v mut Cow<'c, Columns>,
    inferred: bool,
    values: &'v mut Vec<(usize, &'a RawValue)>,
    /// Where this record's fields start in `values`.
    start: usize,
    state: &'v mut ParseState,
}

impl<'a> Visitor<'a> for RecordVisitor<'_, '_, 'a> {
    type Value = ();

    fn expecting(&self, formatter: &mut std::fmt::Formatter) -> std::fmt::Result {
        formatter.write_str("a JSON object")
    }

    fn visit_map<M: MapAccess<'a>>(self, mut map: M) -> Result<(), M::Error> {
        while let Some(Key(name)) = map.next_key()? {
            let hint = self.state.previous_keys.get(self.state.keys.len()).copied();
            let found = self.columns.find(&name, hint);
            let column = match found {
                Some(column) => column,
                None if self.inferred => {
                    self.state.last_row.push(usize::MAX);
                    self.columns.to_mut().push(Column {
                        name: name.into_owned(),
                        ty: ColumnType::Null,
                        nullable: true,
                    })
                }
                None => {
                    self.state.keys.push(usize::MAX);
                    map.next_value::<IgnoredAny>()?;
                    continue;
                }
            };
            self.state.keys.push(column);
            let raw: &'a RawValue = map.next_value()?;
            if self.state.last_row[column] == self.state.row {
                // A repeated key keeps its last value, as in the serde_json `Value` that
                // `check` saw. Rare, so a scan of the record's fields is enough.
                if let Some(cell) = self.values[self.start..]
                    .iter_mut()
                    .find(|(at, _)| *at == column)
                {
                    cell.1 = raw;
                }
            } else {
                self.state.last_row[column] = self.state.row;
                self.values.push((column, raw));
            }
        }
        Ok(())
    }
}

/// A key, borrowed from the record unless it has escapes.
struct Key<'a>(Cow<'a, str>);

impl<'de> Deserialize<'de> for Key<'de> {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        struct KeyVisitor;
        impl<'de> Visitor<'de> for KeyVisitor {
            type Value = Key<'de>;

            fn expecting(&self, formatter: &mut std::fmt::Formatter) -> std::fmt::Result {
                formatter.write_str("a field name")
            }

            fn visit_borrowed_str<E>(self, name: &'de str) -> Result<Key<'de>, E> {
                Ok(Key(Cow::Borrowed(name)))
            }

            fn visit_str<E>(self, name: &str) -> Result<Key<'de>, E> {
                Ok(Key(Cow::Owned(name.to_owned())))
            }

            fn visit_string<E>(self, name: String) -> Result<Key<'de>, E> {
                Ok(Key(Cow::Owned(name)))
            }
        }
        deserializer.deserialize_str(KeyVisitor)
    }
}

/// A JSON value as the conversions see it, whether from a record's text or from a `Value`.
#[derive(Debug)]
enum Scalar<'a> {
    Null,
    Bool(bool),
    /// A number in the `i64` range written without fraction or exponent.
    Int(i64),
    /// Any other number.
    Float(f64),
    Str(Cow<'a, str>),
    /// An object or an array: `"an object"` or `"an array"`.
    Nested(&'static str),
}

impl<'a> Scalar<'a> {
    fn from_raw(raw: &'a RawValue) -> Result<Self, String> {
        let text = raw.get();
        Ok(match text.as_bytes()[0] {
            b'n' => Self::Null,
            b't' => Self::Bool(true),
            b'f' => Self::Bool(false),
            b'"' => Self::Str(json_string(text)?),
            b'{' => Self::Nested("an object"),
            b'[' => Self::Nested("an array"),
            _ => match text.parse::<i64>() {
                Ok(value) => Self::Int(value),
                Err(_) => Self::float(text.parse().ok(), text)?,
            },
        })
    }

    /// The same as [`Self::from_raw`] of the value's text: serde_json's `Value` holds an
    /// integer as `i64` or `u64` exactly when `i64` or `u64` parses its text.
    fn from_value(value: &'a Value) -> Result<Self, String> {
        Ok(match value {
            Value::Null => Self::Null,
            Value::Bool(value) => Self::Bool(*value),
            Value::Number(number) => match number.as_i64() {
                Some(value) => Self::Int(value),
                None => Self::float(number.as_f64(), number)?,
            },
            Value::String(text) => Self::Str(Cow::Borrowed(text)),
            Value::Array(_) => Self::Nested("an array"),
            Value::Object(_) => Self::Nested("an object"),
        })
    }

    fn float(value: Option<f64>, text: impl std::fmt::Display) -> Result<Self, String> {
        match value {
            Some(value) if value.is_finite() => Ok(Self::Float(value)),
            _ => Err(format!("the number {text} is out of range")),
        }
    }

    /// The value as an `i64`, if it is an integer in range (also when written `3.0`).
    fn integer(&self) -> Option<i64> {
        match *self {
            Self::Int(value) => Some(value),
            Self::Float(value) if value.fract() == 0.0 && (-I64_END..I64_END).contains(&value) => {
                Some(value as i64)
            }
            _ => None,
        }
    }

    fn describe(&self) -> String {
        match self {
            Self::Null => "null".to_owned(),
            Self::Bool(value) => value.to_string(),
            Self::Int(value) => format!("the number {value}"),
            Self::Float(value) => format!("the number {value}"),
            Self::Str(text) if text.chars().count() > QUOTE_CHARS => {
                let start: String = text.chars().take(QUOTE_CHARS).collect();
                format!("the string {start:?}…")
            }
            Self::Str(text) => format!("the string {text:?}"),
            Self::Nested(what) => (*what).to_owned(),
        }
    }
}

/// The string that `text`, a JSON string literal, stands for: borrowed unless it has escapes.
fn json_string(text: &str) -> Result<Cow<'_, str>, String> {
    let inner = &text[1..text.len() - 1];
    if inner.contains('\\') {
        let unescaped = serde_json::from_str(text).map_err(|error| error.to_string())?;
        Ok(Cow::Owned(unescaped))
    } else {
        Ok(Cow::Borrowed(inner))
    }
}

/// A value converted for its column.
enum Cell<'a> {
    Bool(bool),
    /// An `Int64`, or a `Timestamp` in microseconds.
    Int(i64),
    Float(f64),
    Text(Cow<'a, str>),
    /// A `Date`, in days from 1970-01-01.
    Day(i32),
}

/// The columns of the batch's file, built from its [`Cells`].
fn build(columns: &Columns, cells: &Cells<'_>, rows: usize) -> Result<Vec<ArrayRef>, ParquetError> {
    let mut builders: Vec<Builder> = columns
        .list
        .iter()
        .map(|column| Builder::new(column.ty, rows))
        .collect();
    let record_error = |index, reason| ParquetError::Record { index, reason };
    for row in 0..rows {
        for &(at, raw) in cells.record(row) {
            let column = &columns.list[at];
            builders[at]
                .fill_to(row, column)
                .map_err(|(index, reason)| record_error(index, reason))?;
            builders[at]
                .append(column, raw)
                .map_err(|reason| record_error(row, reason))?;
        }
    }
    builders
        .iter_mut()
        .zip(&columns.list)
        .map(|(builder, column)| {
            builder
                .fill_to(rows, column)
                .map_err(|(index, reason)| record_error(index, reason))?;
            Ok(builder.finish())
        })
        .collect()
}

/// One column's values as they are appended.
enum Builder {
    /// How many nulls.
    Null(usize),
    Boolean(BooleanBuilder),
    Int64(Int64Builder),
    Float64(Float64Builder),
    String(StringBuilder),
    Json(StringBuilder),
    Timestamp(TimestampMicrosecondBuilder),
    Date(Date32Builder),
}

impl Builder {
    fn new(ty: ColumnType, rows: usize) -> Self {
        match ty {
            ColumnType::Null => Self::Null(0),
            ColumnType::Boolean => Self::Boolean(BooleanBuilder::with_capacity(rows)),
            ColumnType::Int64 => Self::Int64(Int64Builder::with_capacity(rows)),
            ColumnType::Float64 => Self::Float64(Float64Builder::with_capacity(rows)),
            // The string bytes grow as needed; a guess would be wrong for most columns.
            ColumnType::String => Self::String(StringBuilder::with_capacity(rows, 0)),
            ColumnType::Json => Self::Json(StringBuilder::with_capacity(rows, 0)),
            ColumnType::Timestamp => {
                Self::Timestamp(TimestampMicrosecondBuilder::with_capacity(rows).with_timezone(UTC))
            }
            ColumnType::Date => Self::Date(Date32Builder::with_capacity(rows)),
        }
    }

    fn len(&self) -> usize {
        match self {
            Self::Null(len) => *len,
            Self::Boolean(builder) => builder.len(),
            Self::Int64(builder) => builder.len(),
            Self::Float64(builder) => builder.len(),
            Self::String(builder) | Self::Json(builder) => builder.len(),
            Self::Timestamp(builder) => builder.len(),
            Self::Date(builder) => builder.len(),
        }
    }

    /// Nulls up to `rows` values, for the records that lack the field; the index of the first
    /// such record and a reason if the column is not nullable.
    fn fill_to(&mut self, rows: usize, column: &Column) -> Result<(), (usize, String)> {
        let len = self.len();
        if len == rows {
            return Ok(());
        }
        if !column.nullable {
            return Err((
                len,
                format!("field {:?} is missing and is not nullable", column.name),
            ));
        }
        self.append_nulls(rows - len);
        Ok(())
    }

    fn append_nulls(&mut self, nulls: usize) {
        match self {
            Self::Null(len) => *len += nulls,
            Self::Boolean(builder) => builder.append_nulls(nulls),
            Self::Int64(builder) => builder.append_nulls(nulls),
            Self::Float64(builder) => builder.append_nulls(nulls),
            Self::String(builder) | Self::Json(builder) => builder.append_nulls(nulls),
            Self::Timestamp(builder) => builder.append_nulls(nulls),
            Self::Date(builder) => builder.append_nulls(nulls),
        }
    }

    fn append(&mut self, column: &Column, raw: &RawValue) -> Result<(), String> {
        if let Self::Json(builder) = self {
            let text = raw.get();
            match text.as_bytes()[0] {
                b'n' => builder.append_null(),
                b'"' => builder.append_value(json_string(text)?),
                _ => builder.append_value(text),
            }
            return Ok(());
        }
        let Some(cell) = column.cell(Scalar::from_raw(raw))? else {
            self.append_nulls(1);
            return Ok(());
        };
        match (self, cell) {
            (Self::Boolean(builder), Cell::Bool(value)) => builder.append_value(value),
            (Self::Int64(builder), Cell::Int(value)) => builder.append_value(value),
            (Self::Float64(builder), Cell::Float(value)) => builder.append_value(value),
            (Self::String(builder), Cell::Text(value)) => builder.append_value(value),
            (Self::Timestamp(builder), Cell::Int(value)) => builder.append_value(value),
            (Self::Date(builder), Cell::Day(value)) => builder.append_value(value),
            _ => unreachable!("`Column::convert` makes a cell of its column's type"),
        }
        Ok(())
    }

    fn finish(&mut self) -> ArrayRef {
        match self {
            Self::Null(len) => Arc::new(NullArray::new(*len)),
            Self::Boolean(builder) => Arc::new(builder.finish()),
            Self::Int64(builder) => Arc::new(builder.finish()),
            Self::Float64(builder) => Arc::new(builder.finish()),
            Self::String(builder) | Self::Json(builder) => Arc::new(builder.finish()),
            Self::Timestamp(builder) => Arc::new(builder.finish()),
            Self::Date(builder) => Arc::new(builder.finish()),
        }
    }
}

#[cfg(test)]
mod tests {
    use arrow_array::Array;
    use arrow_array::cast::AsArray;
    use arrow_array::types::{Date32Type, Float64Type, Int64Type, TimestampMicrosecondType};
    use parquet::arrow::arrow_reader::ParquetRecordBatchReaderBuilder;
    use parquet::file::reader::{FileReader, SerializedFileReader};
    use serde_json::json;

    use super::*;

    fn format(compression: Option<Compression>, schema: Option<Value>) -> SinkFormat {
        SinkFormat {
            format: DataFormat::Parquet,
            compression,
            schema: schema.map(|schema| serde_json::from_value(schema).unwrap()),
        }
    }

    fn inferred() -> ParquetEncoder {
        ParquetEncoder::new(&format(None, None)).unwrap()
    }

    fn given(schema: Value) -> ParquetEncoder {
        ParquetEncoder::new(&format(None, Some(schema))).unwrap()
    }

    fn records(values: &[Value]) -> Vec<Vec<u8>> {
        values
            .iter()
            .map(|value| value.to_string().into_bytes())
            .collect()
    }

    /// The file's one record batch, read back by the parquet crate's Arrow reader.
    fn read(bytes: Bytes) -> RecordBatch {
        let reader = ParquetRecordBatchReaderBuilder::try_new(bytes)
            .unwrap()
            .build()
            .unwrap();
        let batches: Vec<RecordBatch> = reader.collect::<Result<_, _>>().unwrap();
        assert_eq!(batches.len(), 1);
        batches.into_iter().next().unwrap()
    }

    fn types(batch: &RecordBatch) -> Vec<(String, DataType)> {
        batch
            .schema()
            .fields()
            .iter()
            .map(|field| (field.name().clone(), field.data_type().clone()))
            .collect()
    }

    fn ints(batch: &RecordBatch, name: &str) -> Vec<Option<i64>> {
        let column = batch.column_by_name(name).unwrap();
        column.as_primitive::<Int64Type>().iter().collect()
    }

    fn floats(batch: &RecordBatch, name: &str) -> Vec<Option<f64>> {
        let column = batch.column_by_name(name).unwrap();
        column.as_primitive::<Float64Type>().iter().collect()
    }

    fn texts(batch: &RecordBatch, name: &str) -> Vec<Option<String>> {
        let column = batch.column_by_name(name).unwrap();
        column
            .as_string::<i32>()
            .iter()
            .map(|value| value.map(str::to_owned))
            .collect()
    }

    fn bools(batch: &RecordBatch, name: &str) -> Vec<Option<bool>> {
        batch
            .column_by_name(name)
            .unwrap()
            .as_boolean()
            .iter()
            .collect()
    }

    fn encode(encoder: &mut ParquetEncoder, values: &[Value]) -> RecordBatch {
        read(encoder.encode(&records(values)).unwrap())
    }

    fn utc() -> DataType {
        DataType::Timestamp(TimeUnit::Microsecond, Some(UTC.into()))
    }

    #[test]
    fn inferred_columns_take_the_types_of_their_values() {
        let mut encoder = inferred();
        // Raw text, as `json!` would sort the keys.
        let raw = [
            r#"{"id": 1, "price": 2.5, "ok": true, "name": "a", "tags": ["x"], "at": {"lat": 1}}"#,
            r#"{"id": -2, "price": 3, "ok": false, "name": "b\"\u00e9\n", "tags": [], "at": null}"#,
        ];
        let raw: Vec<Vec<u8>> = raw
            .iter()
            .map(|record| record.as_bytes().to_vec())
            .collect();
        let batch = read(encoder.encode(&raw).unwrap());
        assert_eq!(
            types(&batch),
            [
                ("id".to_owned(), DataType::Int64),
                ("price".to_owned(), DataType::Float64),
                ("ok".to_owned(), DataType::Boolean),
                ("name".to_owned(), DataType::Utf8),
                ("tags".to_owned(), DataType::Utf8),
                ("at".to_owned(), DataType::Utf8),
            ]
        );
        assert!(
            batch
                .schema()
                .fields()
                .iter()
                .all(|field| field.is_nullable())
        );
        assert_eq!(ints(&batch, "id"), [Some(1), Some(-2)]);
        assert_eq!(floats(&batch, "price"), [Some(2.5), Some(3.0)]);
        assert_eq!(bools(&batch, "ok"), [Some(true), Some(false)]);
        assert_eq!(
            texts(&batch, "name"),
            [Some("a".to_owned()), Some("b\"\u{e9}\n".to_owned())]
        );
        assert_eq!(
            texts(&batch, "tags"),
            [Some(r#"["x"]"#.to_owned()), Some("[]".to_owned())]
        );
        assert_eq!(
            texts(&batch, "at"),
            [Some(r#"{"lat": 1}"#.to_owned()), None]
        );
        assert_eq!(encoder.schema(), batch.schema());
    }

    #[test]
    fn missing_fields_are_null() {
        let mut encoder = inferred();
        let batch = encode(
            &mut encoder,
            &[
                json!({"a": 1}),
                json!({"b": "x"}),
                json!({}),
                json!({"a": 3, "b": null}),
            ],
        );
        assert_eq!(ints(&batch, "a"), [Some(1), None, None, Some(3)]);
        assert_eq!(texts(&batch, "b"), [None, Some("x".to_owned()), None, None]);
    }

    #[test]
    fn int_then_float_widens_to_float64_and_never_narrows() {
        let mut encoder = inferred();
        let first = encode(&mut encoder, &[json!({"n": 1}), json!({"n": 2})]);
        assert_eq!(types(&first), [("n".to_owned(), DataType::Int64)]);
        let second = encode(&mut encoder, &[json!({"n": 1.5}), json!({"n": 4})]);
        assert_eq!(types(&second), [("n".to_owned(), DataType::Float64)]);
        assert_eq!(floats(&second, "n"), [Some(1.5), Some(4.0)]);
        assert_eq!(encoder.schema().field(0).data_type(), &DataType::Float64);
        let third = encode(&mut encoder, &[json!({"n": 7})]);
        assert_eq!(floats(&third, "n"), [Some(7.0)]);
    }

    #[test]
    fn int_then_string_widens_to_utf8_with_json_text() {
        let mut encoder = inferred();
        encode(&mut encoder, &[json!({"v": 1})]);
        let raw = [
            br#"{"v": "x"}"#.to_vec(),
            br#"{"v": 1.50}"#.to_vec(),
            br#"{"v": true}"#.to_vec(),
            br#"{"v": {"k": [1, 2]}}"#.to_vec(),
            br#"{"v": null}"#.to_vec(),
        ];
        let batch = read(encoder.encode(&raw).unwrap());
        assert_eq!(types(&batch), [("v".to_owned(), DataType::Utf8)]);
        assert_eq!(
            texts(&batch, "v"),
            [
                Some("x".to_owned()),
                Some("1.50".to_owned()),
                Some("true".to_owned()),
                Some(r#"{"k": [1, 2]}"#.to_owned()),
                None,
            ]
        );
        // A later integer stays text.
        let later = encode(&mut encoder, &[json!({"v": 5})]);
        assert_eq!(texts(&later, "v"), [Some("5".to_owned())]);
    }

    #[test]
    fn conflicts_within_one_batch_widen_the_whole_column() {
        let mut encoder = inferred();
        let batch = encode(
            &mut encoder,
            &[
                json!({"b": true, "i": 1, "big": 1}),
                json!({"b": 1, "i": 2.5, "big": 18_446_744_073_709_551_615_u64}),
            ],
        );
        assert_eq!(
            texts(&batch, "b"),
            [Some("true".to_owned()), Some("1".to_owned())]
        );
        assert_eq!(floats(&batch, "i"), [Some(1.0), Some(2.5)]);
        assert_eq!(
            floats(&batch, "big"),
            [Some(1.0), Some(18_446_744_073_709_551_615.0)]
        );
    }

    #[test]
    fn new_columns_are_appended_in_first_seen_order() {
        let mut encoder = inferred();
        encode(&mut encoder, &[json!({"a": 1, "b": "x"})]);
        let second = read(
            encoder
                .encode(&[br#"{"d": 1, "c": true, "a": 2}"#.to_vec()])
                .unwrap(),
        );
        let names: Vec<String> = types(&second).into_iter().map(|(name, _)| name).collect();
        assert_eq!(names, ["a", "b", "d", "c"]);
        assert_eq!(texts(&second, "b"), [None]);
        assert_eq!(ints(&second, "a"), [Some(2)]);
        assert_eq!(bools(&second, "c"), [Some(true)]);
        assert_eq!(encoder.schema().fields().len(), 4);
    }

    #[test]
    fn null_only_columns_stay_null_typed_until_a_value_comes() {
        let mut encoder = inferred();
        let first = encode(&mut encoder, &[json!({"a": 1, "z": null}), json!({"a": 2})]);
        assert_eq!(
            types(&first),
            [
                ("a".to_owned(), DataType::Int64),
                ("z".to_owned(), DataType::Null)
            ]
        );
        assert_eq!(first.column_by_name("z").unwrap().len(), 2);
        let second = encode(&mut encoder, &[json!({"a": 3}), json!({"z": 1.5})]);
        assert_eq!(floats(&second, "z"), [None, Some(1.5)]);
        // A null never narrows what a column has become.
        let third = encode(&mut encoder, &[json!({"z": null})]);
        assert_eq!(floats(&third, "z"), [None]);
    }

    #[test]
    fn a_repeated_key_keeps_its_last_value() {
        let mut encoder = inferred();
        let raw = [br#"{"a": "x", "a": 2}"#.to_vec()];
        let batch = read(encoder.encode(&raw).unwrap());
        assert_eq!(types(&batch), [("a".to_owned(), DataType::Int64)]);
        assert_eq!(ints(&batch, "a"), [Some(2)]);
    }

    #[test]
    fn keys_in_any_order_and_with_escapes_find_their_columns() {
        let mut encoder = inferred();
        let raw = [
            br#"{"a": 1, "b": "x"}"#.to_vec(),
            br#"{"b": "y", "a": 2}"#.to_vec(),
            br#"{"\u0061": 3, "\u0062\n": "z"}"#.to_vec(),
        ];
        let batch = read(encoder.encode(&raw).unwrap());
        let names: Vec<String> = types(&batch).into_iter().map(|(name, _)| name).collect();
        assert_eq!(names, ["a", "b", "b\n"]);
        assert_eq!(ints(&batch, "a"), [Some(1), Some(2), Some(3)]);
        assert_eq!(texts(&batch, "b\n"), [None, None, Some("z".to_owned())]);
    }

    #[test]
    fn records_of_one_shape_reuse_the_schema() {
        let mut encoder = inferred();
        encode(&mut encoder, &[json!({"a": 1, "b": "x"})]);
        let before = encoder.schema();
        let values: Vec<Value> = (0..100)
            .map(|i| json!({"a": i, "b": format!("p{i}")}))
            .collect();
        let batch = encode(&mut encoder, &values);
        assert!(Arc::ptr_eq(&before, &encoder.schema()));
        assert_eq!(batch.num_rows(), 100);
        assert_eq!(ints(&batch, "a")[99], Some(99));
    }

    #[test]
    fn a_failed_batch_leaves_the_schema_as_it_was() {
        let mut encoder = inferred();
        encode(&mut encoder, &[json!({"a": 1})]);
        let bad = [br#"{"a": "x", "b": 1}"#.to_vec(), b"[1]".to_vec()];
        let error = encoder.encode(&bad).unwrap_err();
        assert!(
            matches!(error, ParquetError::Record { index: 1, .. }),
            "{error}"
        );
        assert_eq!(encoder.schema().fields().len(), 1);
        assert_eq!(encoder.schema().field(0).data_type(), &DataType::Int64);
    }

    #[test]
    fn records_without_fields_before_any_column_make_a_file_without_columns() {
        let mut encoder = inferred();
        let bytes = encoder.encode(&records(&[json!({}), json!({})])).unwrap();
        let reader = SerializedFileReader::new(bytes).unwrap();
        assert_eq!(
            reader
                .metadata()
                .file_metadata()
                .schema_descr()
                .num_columns(),
            0
        );
        // Once a column is known, such records are rows of nulls.
        encode(&mut encoder, &[json!({"a": 1})]);
        let batch = encode(&mut encoder, &[json!({}), json!({})]);
        assert_eq!(ints(&batch, "a"), [None, None]);
    }

    #[test]
    fn an_empty_batch_is_refused() {
        let error = inferred().encode(&[]).unwrap_err();
        assert!(matches!(error, ParquetError::NoRecords), "{error}");
        assert_eq!(error.category(), "encode");
    }

    fn every_type() -> ParquetEncoder {
        given(json!([
            {"name": "s", "type": "String"},
            {"name": "i", "type": "Int64", "nullable": false},
            {"name": "f", "type": "Float64"},
            {"name": "b", "type": "Boolean"},
            {"name": "t", "type": "Timestamp"},
            {"name": "d", "type": "Date"},
        ]))
    }

    #[test]
    fn a_given_schema_writes_every_type() {
        let mut encoder = every_type();
        let values = [
            json!({"s": "a", "i": 1, "f": 1.5, "b": true, "t": "2024-06-01T12:00:00Z", "d": "2024-02-29", "extra": 1}),
            json!({"i": 3.0, "f": 2, "b": false, "t": 1_717_243_200_123_i64, "d": "1969-12-31"}),
            json!({"s": null, "i": -4, "f": null, "t": "2024-06-01T14:00:00.123456789+02:00"}),
        ];
        for value in &values {
            encoder.check(value).unwrap();
        }
        let batch = encode(&mut encoder, &values);
        assert_eq!(
            types(&batch),
            [
                ("s".to_owned(), DataType::Utf8),
                ("i".to_owned(), DataType::Int64),
                ("f".to_owned(), DataType::Float64),
                ("b".to_owned(), DataType::Boolean),
                ("t".to_owned(), utc()),
                ("d".to_owned(), DataType::Date32),
            ]
        );
        assert_eq!(batch.schema(), encoder.schema());
        assert!(!batch.schema().field(1).is_nullable());
        assert!(batch.schema().field(0).is_nullable());
        assert_eq!(texts(&batch, "s"), [Some("a".to_owned()), None, None]);
        assert_eq!(ints(&batch, "i"), [Some(1), Some(3), Some(-4)]);
        assert_eq!(floats(&batch, "f"), [Some(1.5), Some(2.0), None]);
        assert_eq!(bools(&batch, "b"), [Some(true), Some(false), None]);
        let t = batch.column_by_name("t").unwrap();
        let t: Vec<Option<i64>> = t
            .as_primitive::<TimestampMicrosecondType>()
            .iter()
            .collect();
        assert_eq!(
            t,
            [
                Some(1_717_243_200_000_000),
                Some(1_717_243_200_123_000),
                Some(1_717_243_200_123_456),
            ]
        );
        let d = batch.column_by_name("d").unwrap();
        let d: Vec<Option<i32>> = d.as_primitive::<Date32Type>().iter().collect();
        assert_eq!(d, [Some(19_782), Some(-1), None]);
    }

    #[test]
    fn check_explains_what_does_not_fit() {
        let encoder = every_type();
        let reason = |value: Value| encoder.check(&value).unwrap_err();
        assert_eq!(
            reason(json!({"i": "abc"})),
            r#"field "i": expected an integer from -9223372036854775808 to 9223372036854775807, found the string "abc""#
        );
        assert_eq!(
            reason(json!({"s": "x"})),
            r#"field "i" is missing and is not nullable"#
        );
        assert_eq!(
            reason(json!({"i": null})),
            r#"field "i" is null and is not nullable"#
        );
        assert_eq!(
            reason(json!([1])),
            "the record is an array, not a JSON object"
        );
        assert_eq!(
            reason(json!("x")),
            "the record is a string, not a JSON object"
        );
        assert!(reason(json!({"i": 3.5})).contains("found the number 3.5"));
        assert!(reason(json!({"i": 1, "s": 5})).contains("expected a string, found the number 5"));
        assert!(reason(json!({"i": 1, "f": "1.5"})).contains("expected a number"));
        assert!(reason(json!({"i": 1, "b": "true"})).contains("expected true or false"));
        assert!(reason(json!({"i": 1, "t": "yesterday"})).contains("RFC 3339"));
        // Without an offset the instant is unknown.
        assert!(reason(json!({"i": 1, "t": "2024-06-01T12:00:00"})).contains("RFC 3339"));
        assert!(reason(json!({"i": 1, "t": 1.5})).contains("epoch milliseconds"));
        assert!(reason(json!({"i": 1, "t": i64::MAX})).contains("outside the years -9999 to 9999"));
        assert!(reason(json!({"i": 1, "d": "2023-02-29"})).contains("a date such as"));
        assert!(reason(json!({"i": 1, "d": "2024-6-1"})).contains("a date such as"));
        assert!(reason(json!({"i": 1, "d": "2024-06-01T00:00:00Z"})).contains("a date such as"));
        assert!(reason(json!({"i": 1, "s": {"a": 1}})).contains("found an object"));
        let long = "x".repeat(100);
        assert!(reason(json!({"i": 1, "b": long})).ends_with("xxx\"…"));
        assert!(encoder.check(&json!({"i": 1e3, "extra": [1]})).is_ok());
    }

    #[test]
    fn check_without_a_schema_refuses_only_non_objects() {
        let encoder = inferred();
        assert!(
            encoder
                .check(&json!({"a": [1, {"b": null}], "c": "x"}))
                .is_ok()
        );
        assert!(encoder.check(&json!({})).is_ok());
        for value in [json!(null), json!(1), json!(true), json!([{}])] {
            assert!(encoder.check(&value).is_err(), "{value}");
        }
    }

    #[test]
    fn encode_refuses_a_record_that_check_would_refuse() {
        let mut encoder = every_type();
        let values = [json!({"i": 1}), json!({"s": "x"})];
        let error = encoder.encode(&records(&values)).unwrap_err();
        assert!(
            matches!(error, ParquetError::Record { index: 1, .. }),
            "{error}"
        );
        assert!(
            error.to_string().contains(r#"field "i" is missing"#),
            "{error}"
        );
        let values = [json!({"i": 1}), json!({"i": 2, "d": "soon"})];
        let error = encoder.encode(&records(&values)).unwrap_err();
        assert!(
            matches!(error, ParquetError::Record { index: 1, .. }),
            "{error}"
        );
    }

    #[test]
    fn a_bad_schema_is_refused() {
        let duplicate = ParquetEncoder::new(&format(
            None,
            Some(json!([{"name": "a", "type": "String"}, {"name": "a", "type": "Int64"}])),
        ))
        .unwrap_err();
        assert!(
            matches!(&duplicate, ParquetError::DuplicateField { name } if name == "a"),
            "{duplicate}"
        );
        assert_eq!(duplicate.category(), "config");
        let empty = ParquetEncoder::new(&format(None, Some(json!([])))).unwrap_err();
        assert!(matches!(empty, ParquetError::EmptySchema), "{empty}");
        let json_lines = SinkFormat {
            format: DataFormat::JsonLines,
            compression: None,
            schema: None,
        };
        let error = ParquetEncoder::new(&json_lines).unwrap_err();
        assert!(matches!(error, ParquetError::NotParquet { .. }), "{error}");
    }

    #[test]
    fn every_codec_is_recorded_in_the_file() {
        let values: Vec<Value> = (0..50).map(|i| json!({"a": i, "b": "text"})).collect();
        for (compression, expected) in [
            (None, "SNAPPY"),
            (Some(Compression::Snappy), "SNAPPY"),
            (Some(Compression::Zstd), "ZSTD"),
            (Some(Compression::Gzip), "GZIP"),
            (Some(Compression::None), "UNCOMPRESSED"),
        ] {
            let mut encoder = ParquetEncoder::new(&format(compression, None)).unwrap();
            let bytes = encoder.encode(&records(&values)).unwrap();
            let reader = SerializedFileReader::new(bytes.clone()).unwrap();
            let row_group = reader.metadata().row_group(0);
            for column in row_group.columns() {
                let codec = column.compression().to_string();
                assert!(codec.starts_with(expected), "{codec} for {compression:?}");
            }
            assert_eq!(ints(&read(bytes), "a")[49], Some(49));
        }
    }
}
