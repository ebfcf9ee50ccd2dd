//! A record's partition path: the Sink's `partitioning.path` template, parsed once when the
//! worker starts and rendered for every record, and the record's time it is rendered with.
//!
//! # Template
//!
//! Literal text with tokens in braces:
//!
//! | token | renders |
//! |---|---|
//! | `{time:FORMAT}` | the record's time in UTC, written by jiff's strftime with `FORMAT` (`%Y-%m-%d`, `%H`, ...) |
//! | `{field:NAME}` | the value of the record's field `NAME`; a dotted name (`user.country`) reaches into nested objects |
//! | `{source}` | the topic or stream name |
//! | `{partition}` | the Kafka partition number or the Kinesis shard id |
//!
//! For example `dt={time:%Y-%m-%d}/hr={time:%H}/country={field:country}`. A brace always
//! opens or closes a token: S3 advises against braces in keys, so there is no escape for a
//! literal one. [`PathTemplate::parse`] checks everything a spec can get wrong, and its
//! error names the character and what to change: unbalanced or unknown tokens, time formats
//! jiff cannot write, malformed field names, empty path segments (a leading, trailing or
//! doubled `/`: the path is joined to the prefix and to the object name with one `/` each),
//! `.` and `..` segments (a `file://` destination would resolve them) and control characters.
//! The empty template puts objects directly under the prefix.
//!
//! Times are written in UTC: a path must not depend on where the worker runs, and UTC has no
//! hour that repeats or vanishes, so every `hr=` partition is one hour long. A time format's
//! output is written as it is — the format comes from the spec, not from data — so
//! `{time:%Y/%m/%d}` makes three levels.
//!
//! # Field values
//!
//! Values come from data, so they are made safe for one path segment:
//!
//! - A string stays as it is, except that every ASCII character other than letters, digits,
//!   `-`, `.` and `_`, and every non-ASCII control, white space or invisible formatting
//!   character, is percent-encoded as UTF-8 (`/` → `%2F`, space → `%20`, `=` → `%3D`,
//!   `%` → `%25`). This is Hive's escaping — the `key=value` layout Athena, Spark, Trino and
//!   DuckDB read — with a stricter safe set, so `=` cannot split a `key=value` segment and no
//!   character S3 advises against (`:`, `*`, `~`, `\`, ...) reaches a key. Other non-ASCII
//!   text stays raw (S3 keys are UTF-8): `country=Côte d'Ivoire` becomes
//!   `country=Côte%20d%27Ivoire`, because Hive and Spark decode `%XX` one byte at a time and
//!   would garble an encoded `ô`. Decoding undoes the encoding (`%` itself is encoded), so
//!   two values never share a segment.
//! - The empty string is `__empty__` ([`EMPTY_SEGMENT`]), since an empty segment would double
//!   a `/`; `.` and `..` are `%2E` and `%2E%2E`.
//! - A number is written as JSON writes it, escaped like a string (`42`, `-1.5`, `1e+300` →
//!   `1e%2B300`); a boolean as `true` or `false`.
//! - A missing or null field is `__null__` ([`NULL_SEGMENT`]). A string that is itself
//!   `__null__` or `__empty__` has its underscores encoded, so the placeholders stay
//!   unambiguous. Kafka Connect's `FieldPartitioner` throws instead, which stops the task (or,
//!   tolerating errors, dead-letters the record): one event without an optional field halts
//!   the pipeline or hides the event from the lake. Here the record is written, in one
//!   partition that a reader can map to NULL, as Hive does with `__HIVE_DEFAULT_PARTITION__`.
//! - An object or an array has no single segment to be: the record is rejected with a
//!   [`RecordError`], which is the reason the worker gives the dead letter. So is a record in
//!   which a dotted name crosses a value that is neither an object nor null (a null parent is
//!   a missing field), and one whose path would be longer than [`MAX_PATH_BYTES`].
//!
//! # The record's time
//!
//! [`RecordTime`] reads `partitioning.timeField` and `timeFormat`. Without a field, a record's
//! time is when it arrived (its Kafka or Kinesis timestamp). `epochMillis` and `epochSeconds`
//! take a number or a numeric string, fractions allowed. Any other format is a strftime format
//! read with jiff's strptime, in UTC unless the format has an offset (`%z`) or a time zone
//! (`%Q`). Without a format the field is RFC 3339, which carries its offset. A missing or
//! unreadable time is a [`RecordError`]. The wall clock is never used: a path is a function of
//! the record alone, which is what lets recovery rewrite a batch to the same objects (see
//! [`super::keys`]).

use std::fmt::{self, Write as _};

use jiff::fmt::strtime::{self, BrokenDownTime};
use jiff::tz::{Offset, TimeZone};
use jiff::{SignedDuration, Timestamp};
use serde_json::Value;
use tributary_crds::sink::SinkPartitioning;

/// The path segment of a missing or null field.
pub const NULL_SEGMENT: &str = "__null__";

/// The path segment of an empty string.
pub const EMPTY_SEGMENT: &str = "__empty__";

/// The longest path a record may have. S3 keys hold at most 1024 bytes, and the prefix and the
/// object name need the rest; a longer path comes from an outsized field value.
pub const MAX_PATH_BYTES: usize = 512;

/// `timeFormat` for milliseconds since the Unix epoch.
const EPOCH_MILLIS: &str = "epochMillis";

/// `timeFormat` for seconds since the Unix epoch.
const EPOCH_SECONDS: &str = "epochSeconds";

/// The times a format is tried on when it is parsed: 2024-02-29T13:45:56.123456789Z, where no
/// field is zero, and the Unix epoch, where every field is as small as it gets (and `%.f`
/// writes nothing). A format that writes both (and, for `timeFormat`, reads both back) works
/// for any time, and a template whose segments are proper for both is proper for any time.
const SAMPLE_TIMES: [Timestamp; 2] = [
    Timestamp::constant(1_709_214_356, 123_456_789),
    Timestamp::UNIX_EPOCH,
];

/// Longest excerpt of a bad value in a dead-letter reason.
const MAX_VALUE_EXCERPT: usize = 64;

/// What is wrong with `spec.partitioning`. Each message names the field, where in it the
/// problem is (characters count from 1) and what to change; all of them wait for a spec change.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum PartitioningError {
    /// A `{` without its `}`.
    #[error(
        "partitioning.path: '{{' at character {position} is never closed; end the token with '}}'"
    )]
    Unclosed {
        /// Where the `{` is.
        position: usize,
    },
    /// A `}` that closes no token.
    #[error(
        "partitioning.path: '}}' at character {position} closes no token; remove it (object keys should not hold braces)"
    )]
    UnexpectedClose {
        /// Where the `}` is.
        position: usize,
    },
    /// A `{` inside a token.
    #[error(
        "partitioning.path: '{{' at character {position} is inside another token; close that token with '}}' first"
    )]
    NestedOpen {
        /// Where the inner `{` is.
        position: usize,
    },
    /// A token that is none of the four.
    #[error(
        "partitioning.path: unknown token {{{token}}} at character {position}; use {{time:FORMAT}}, {{field:NAME}}, {{source}} or {{partition}}"
    )]
    UnknownToken {
        /// Where the token starts.
        position: usize,
        /// What is between the braces.
        token: String,
    },
    /// A `{time:FORMAT}` whose format jiff cannot write.
    #[error(
        "partitioning.path: {{time:{format}}} at character {position}: {reason}; write a strftime format such as %Y-%m-%d or %H"
    )]
    TimeFormat {
        /// Where the token starts.
        position: usize,
        /// The format.
        format: String,
        /// Why it cannot be written.
        reason: String,
    },
    /// A `{field:NAME}` whose name names no field.
    #[error(
        "partitioning.path: {{field:{name}}} at character {position}: {problem}; write NAME, or PARENT.CHILD for a nested field"
    )]
    FieldName {
        /// Where the token starts.
        position: usize,
        /// The name.
        name: String,
        /// What is wrong with it.
        problem: &'static str,
    },
    /// A leading, trailing or doubled `/`.
    #[error(
        "partitioning.path: '/' at character {position} makes an empty path segment; remove it (the path is joined to the prefix and the object name with one '/' each)"
    )]
    EmptySegment {
        /// Where the `/` is (or the time token that writes it).
        position: usize,
    },
    /// A segment that is `.` or `..`.
    #[error(
        "partitioning.path: the path segment at character {position} is '.' or '..', which a file:// destination would resolve as a directory; rename it"
    )]
    DotSegment {
        /// Where the segment starts.
        position: usize,
    },
    /// A control character, typed or written by a time format (`%n`, `%t`).
    #[error(
        "partitioning.path: a control character at character {position} would go into object keys; remove it"
    )]
    ControlCharacter {
        /// Where the character is (or the time token that writes it).
        position: usize,
    },
    /// `timeField` names no field.
    #[error(
        "partitioning.timeField {name:?}: {problem}; write NAME, or PARENT.CHILD for a nested field"
    )]
    TimeField {
        /// `timeField`.
        name: String,
        /// What is wrong with it.
        problem: &'static str,
    },
    /// `timeFormat` without `timeField`: the arrival time has no format.
    #[error(
        "partitioning.timeFormat is set but timeField is not; set timeField to the field that holds the time, or remove timeFormat"
    )]
    TimeFormatWithoutField,
    /// `timeFormat` is neither an epoch unit nor a strftime format that reads a time.
    #[error(
        "partitioning.timeFormat {format:?} cannot read times: {reason}; use epochMillis, epochSeconds or a strftime format such as %Y-%m-%d %H:%M:%S"
    )]
    TimeParseFormat {
        /// `timeFormat`.
        format: String,
        /// Why it does not read a time.
        reason: String,
    },
}

/// Why a record has no path. The message is the reason the worker gives the dead letter.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum RecordError {
    /// A dotted field name crosses a value that is not an object.
    #[error("{parent} is {kind}, not an object, so it has no field {field}")]
    NotAnObject {
        /// The whole field name.
        field: String,
        /// `the record` or `field NAME`: what should have been an object.
        parent: String,
        /// What it is instead.
        kind: &'static str,
    },
    /// A `{field:NAME}` whose value is an object or an array.
    #[error("field {field} is {kind}; a path segment needs a string, a number or a boolean")]
    NotScalar {
        /// The field name.
        field: String,
        /// What it is instead.
        kind: &'static str,
    },
    /// The rendered path is longer than [`MAX_PATH_BYTES`].
    #[error(
        "the path would be {bytes} bytes, more than {MAX_PATH_BYTES}; a field value is too long for an object key"
    )]
    PathTooLong {
        /// Its length.
        bytes: usize,
    },
    /// Writing the record's time failed, which a parsed template prevents; kept as an error
    /// rather than a panic so that a surprise costs one record, not the worker.
    #[error("writing the record time with {format:?} failed: {reason}")]
    TimeFormat {
        /// The time format.
        format: String,
        /// jiff's explanation.
        reason: String,
    },
    /// The time field is absent or null.
    #[error("time field {field} is missing or null")]
    MissingTime {
        /// `timeField`.
        field: String,
    },
    /// The time field holds something that is not a time in `timeFormat`.
    #[error("time field {field} holds {value}, which is not {expected}: {reason}")]
    BadTime {
        /// `timeField`.
        field: String,
        /// The value, as JSON, shortened.
        value: String,
        /// What `timeFormat` expects.
        expected: &'static str,
        /// Why it does not read.
        reason: String,
    },
}

/// A field of a JSON record: top-level, or nested through objects (`user.country`). A field
/// whose own name contains a dot cannot be named.
#[derive(Clone, Debug, PartialEq, Eq)]
struct FieldPath {
    parts: Vec<String>,
}

impl FieldPath {
    /// Split a dotted name; the problem, if it names no field.
    fn parse(name: &str) -> Result<Self, &'static str> {
        let parts: Vec<String> = name.split('.').map(str::to_owned).collect();
        if parts.iter().any(String::is_empty) {
            return Err("the name is empty or has an empty part around a '.'");
        }
        if parts.iter().any(|p| p.trim() != p) {
            return Err("a part of the name starts or ends with white space");
        }
        Ok(Self { parts })
    }

    /// The field's value; `None` when it or an object on the way is missing or null.
    fn lookup<'v>(&self, record: &'v Value) -> Result<Option<&'v Value>, RecordError> {
        let mut value = record;
        for (depth, part) in self.parts.iter().enumerate() {
            let object = match value {
                Value::Object(object) => object,
                Value::Null => return Ok(None),
                other => {
                    let parent = match depth {
                        0 => "the record".to_owned(),
                        _ => format!("field {}", self.parts[..depth].join(".")),
                    };
                    return Err(RecordError::NotAnObject {
                        field: self.to_string(),
                        parent,
                        kind: kind(other),
                    });
                }
            };
            match object.get(part) {
                Some(inner) => value = inner,
                None => return Ok(None),
            }
        }
        Ok(Some(value).filter(|v| !v.is_null()))
    }
}

impl fmt::Display for FieldPath {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.parts.join("."))
    }
}

/// One piece of a template.
#[derive(Clone, Debug, PartialEq, Eq)]
enum Segment {
    Literal(String),
    Time(String),
    Field(FieldPath),
    Source,
    Partition,
}

/// A parsed `partitioning.path`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct PathTemplate {
    segments: Vec<Segment>,
}

impl PathTemplate {
    /// Parse and check a template (see the [module documentation](self)); `""` is the empty
    /// path.
    pub fn parse(template: &str) -> Result<Self, PartitioningError> {
        let mut segments = Vec::new();
        let mut literal = String::new();
        // What the template renders for each sample time, each character with the one of the
        // template (counting from 1) it comes from: to check the path's shape, and to say
        // where a problem is.
        let mut shapes: [Vec<(char, usize)>; 2] = Default::default();
        let mut chars = template.chars().zip(1..);
        while let Some((c, position)) = chars.next() {
            match c {
                '{' => {
                    let mut token = String::new();
                    loop {
                        match chars.next() {
                            None => return Err(PartitioningError::Unclosed { position }),
                            Some(('}', _)) => break,
                            Some(('{', inner)) => {
                                return Err(PartitioningError::NestedOpen { position: inner });
                            }
                            Some((c, _)) => token.push(c),
                        }
                    }
                    if !literal.is_empty() {
                        segments.push(Segment::Literal(std::mem::take(&mut literal)));
                    }
                    let (segment, rendered) = parse_token(&token, position)?;
                    segments.push(segment);
                    for (shape, rendered) in shapes.iter_mut().zip(rendered) {
                        shape.extend(rendered.chars().map(|c| (c, position)));
                    }
                }
                '}' => return Err(PartitioningError::UnexpectedClose { position }),
                c => {
                    literal.push(c);
                    for shape in &mut shapes {
                        shape.push((c, position));
                    }
                }
            }
        }
        if !literal.is_empty() {
            segments.push(Segment::Literal(literal));
        }
        for shape in &shapes {
            check_shape(shape)?;
        }
        Ok(Self { segments })
    }

    /// Whether the path depends on the record's time, which is then worth reading.
    fn uses_time(&self) -> bool {
        self.segments.iter().any(|s| matches!(s, Segment::Time(_)))
    }

    fn uses_fields(&self) -> bool {
        self.segments.iter().any(|s| matches!(s, Segment::Field(_)))
    }

    /// The path of a record with this `time`, read from `partition` of `source`.
    pub fn render(
        &self,
        time: Timestamp,
        record: &Value,
        source: &str,
        partition: &str,
    ) -> Result<String, RecordError> {
        let mut path = String::with_capacity(64);
        // Broken down once, when the first time token needs it.
        let mut utc: Option<BrokenDownTime> = None;
        for segment in &self.segments {
            match segment {
                Segment::Literal(text) => path.push_str(text),
                Segment::Time(format) => utc
                    .get_or_insert_with(|| BrokenDownTime::from(&time.to_zoned(TimeZone::UTC)))
                    .format(format, &mut path)
                    .map_err(|e| RecordError::TimeFormat {
                        format: format.clone(),
                        reason: e.to_string(),
                    })?,
                Segment::Field(field) => push_field(field, record, &mut path)?,
                Segment::Source => push_escaped(source, &mut path),
                Segment::Partition => push_escaped(partition, &mut path),
            }
        }
        if path.len() > MAX_PATH_BYTES {
            return Err(RecordError::PathTooLong { bytes: path.len() });
        }
        Ok(path)
    }
}

/// The segment a token (what is between `{` and `}`) stands for, and what stands for it in
/// the path's shapes: the sample times for a time, else one character, since values are never
/// empty and never hold a `/` or a control character once escaped.
fn parse_token(token: &str, position: usize) -> Result<(Segment, [String; 2]), PartitioningError> {
    let value = || ["x".to_owned(), "x".to_owned()];
    match token.split_once(':') {
        None if token == "source" => Ok((Segment::Source, value())),
        None if token == "partition" => Ok((Segment::Partition, value())),
        Some(("time", format)) => {
            let rendered = match format {
                "" => Err("the format is empty".to_owned()),
                _ => samples(format),
            };
            match rendered {
                Ok(rendered) => Ok((Segment::Time(format.to_owned()), rendered)),
                Err(reason) => Err(PartitioningError::TimeFormat {
                    position,
                    format: format.to_owned(),
                    reason,
                }),
            }
        }
        Some(("field", name)) => match FieldPath::parse(name) {
            Ok(field) => Ok((Segment::Field(field), value())),
            Err(problem) => Err(PartitioningError::FieldName {
                position,
                name: name.to_owned(),
                problem,
            }),
        },
        _ => Err(PartitioningError::UnknownToken {
            position,
            token: token.to_owned(),
        }),
    }
}

/// [`SAMPLE_TIMES`] written with `format`, or why they cannot be.
fn samples(format: &str) -> Result<[String; 2], String> {
    let [busy, epoch] = SAMPLE_TIMES.map(|time| {
        BrokenDownTime::from(&time.to_zoned(TimeZone::UTC))
            .to_string(format)
            .map_err(|e| e.to_string())
    });
    Ok([busy?, epoch?])
}

/// Check that a path with this shape is a sequence of proper segments. A time format writes
/// its `/` and control characters in the same places for every time, and only `%.f` writes
/// nothing for some times, so the shapes of the two sample times stand for all.
fn check_shape(shape: &[(char, usize)]) -> Result<(), PartitioningError> {
    if let Some(&(_, position)) = shape.iter().find(|(c, _)| c.is_control()) {
        return Err(PartitioningError::ControlCharacter { position });
    }
    if shape.is_empty() {
        return Ok(());
    }
    let mut segment_start = 0;
    for end in 0..=shape.len() {
        if end < shape.len() && shape[end].0 != '/' {
            continue;
        }
        let segment = &shape[segment_start..end];
        if segment.is_empty() {
            // A leading or doubled `/` is the one at `end`; a trailing one is the last.
            let slash = shape[end.min(shape.len() - 1)].1;
            return Err(PartitioningError::EmptySegment { position: slash });
        }
        if segment.iter().all(|(c, _)| *c == '.') && segment.len() <= 2 {
            return Err(PartitioningError::DotSegment {
                position: segment[0].1,
            });
        }
        segment_start = end + 1;
    }
    Ok(())
}

/// Append the value of `field` in `record` as one path segment.
fn push_field(field: &FieldPath, record: &Value, path: &mut String) -> Result<(), RecordError> {
    match field.lookup(record)? {
        None => path.push_str(NULL_SEGMENT),
        Some(Value::String(text)) => push_escaped(text, path),
        Some(Value::Number(number)) => push_escaped(&number.to_string(), path),
        Some(Value::Bool(flag)) => path.push_str(if *flag { "true" } else { "false" }),
        Some(other) => {
            return Err(RecordError::NotScalar {
                field: field.to_string(),
                kind: kind(other),
            });
        }
    }
    Ok(())
}

/// Append `value` as one safe path segment (see the [module documentation](self)).
fn push_escaped(value: &str, path: &mut String) {
    match value {
        "" => path.push_str(EMPTY_SEGMENT),
        NULL_SEGMENT | EMPTY_SEGMENT => path.push_str(&value.replace('_', "%5F")),
        "." | ".." => path.push_str(&value.replace('.', "%2E")),
        _ => {
            for c in value.chars() {
                let keep = if c.is_ascii() {
                    c.is_ascii_alphanumeric() || matches!(c, '-' | '.' | '_')
                } else {
                    !(c.is_control() || c.is_whitespace() || is_invisible(c))
                };
                if keep {
                    path.push(c);
                } else {
                    let mut utf8 = [0; 4];
                    for byte in c.encode_utf8(&mut utf8).bytes() {
                        // Writing to a String cannot fail.
                        let _ = write!(path, "%{byte:02X}");
                    }
                }
            }
        }
    }
}

/// Characters that show nothing or reorder the text around them: zero-width spaces and
/// joiners, direction marks and overrides, the word joiner and invisible operators, and the
/// byte-order mark. In a key they make two different keys look the same.
fn is_invisible(c: char) -> bool {
    matches!(
        c,
        '\u{200B}'..='\u{200F}' | '\u{202A}'..='\u{202E}' | '\u{2060}'..='\u{206F}' | '\u{FEFF}'
    )
}

/// How a JSON value is described in an error.
fn kind(value: &Value) -> &'static str {
    match value {
        Value::Null => "null",
        Value::Bool(_) => "a boolean",
        Value::Number(_) => "a number",
        Value::String(_) => "a string",
        Value::Array(_) => "an array",
        Value::Object(_) => "an object",
    }
}

/// How `timeFormat` reads the time field.
#[derive(Clone, Debug, PartialEq, Eq)]
enum TimeFormat {
    Rfc3339,
    EpochMillis,
    EpochSeconds,
    Strptime(String),
}

impl TimeFormat {
    /// What a value in this format looks like, for errors.
    fn expected(&self) -> &'static str {
        match self {
            Self::Rfc3339 => "an RFC 3339 time with an offset",
            Self::EpochMillis => "milliseconds since the Unix epoch",
            Self::EpochSeconds => "seconds since the Unix epoch",
            Self::Strptime(_) => "a time in partitioning.timeFormat",
        }
    }
}

/// Where a record's time comes from: a parsed `partitioning.timeField` and `timeFormat`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct RecordTime {
    field: Option<FieldPath>,
    format: TimeFormat,
}

impl RecordTime {
    /// Parse and check `timeField` and `timeFormat` (see the [module documentation](self)). A
    /// strftime format must write a time and read it back as an instant, so a format that
    /// lacks the date (`%H:%M`), is written only (`%c`) or is no strftime format at all
    /// (`yyyy-MM-dd`) is refused here rather than with every record.
    pub fn parse(
        time_field: Option<&str>,
        time_format: Option<&str>,
    ) -> Result<Self, PartitioningError> {
        let Some(name) = time_field else {
            return match time_format {
                Some(_) => Err(PartitioningError::TimeFormatWithoutField),
                None => Ok(Self {
                    field: None,
                    format: TimeFormat::Rfc3339,
                }),
            };
        };
        let field = FieldPath::parse(name).map_err(|problem| PartitioningError::TimeField {
            name: name.to_owned(),
            problem,
        })?;
        let format = match time_format {
            None => TimeFormat::Rfc3339,
            Some(EPOCH_MILLIS) => TimeFormat::EpochMillis,
            Some(EPOCH_SECONDS) => TimeFormat::EpochSeconds,
            Some(format) => {
                let reads_back = samples(format).and_then(|texts| {
                    texts
                        .iter()
                        .try_for_each(|text| match strptime(format, text) {
                            Ok(_) => Ok(()),
                            Err(e) => Err(e.to_string()),
                        })
                });
                if let Err(reason) = reads_back {
                    return Err(PartitioningError::TimeParseFormat {
                        format: format.to_owned(),
                        reason,
                    });
                }
                TimeFormat::Strptime(format.to_owned())
            }
        };
        Ok(Self {
            field: Some(field),
            format,
        })
    }

    /// Whether the time is read from the record rather than its arrival.
    pub fn reads_record(&self) -> bool {
        self.field.is_some()
    }

    /// The time of `record`, which arrived (in Kafka or Kinesis) at `arrival`.
    pub fn record_time(
        &self,
        record: &Value,
        arrival: Timestamp,
    ) -> Result<Timestamp, RecordError> {
        let Some(field) = &self.field else {
            return Ok(arrival);
        };
        let Some(value) = field.lookup(record)? else {
            return Err(RecordError::MissingTime {
                field: field.to_string(),
            });
        };
        let bad = |reason: String| RecordError::BadTime {
            field: field.to_string(),
            value: excerpt(value),
            expected: self.format.expected(),
            reason,
        };
        match (&self.format, value) {
            (TimeFormat::EpochMillis, Value::Number(_) | Value::String(_)) => {
                epoch(value, 1_000.0, Timestamp::from_millisecond).map_err(bad)
            }
            (TimeFormat::EpochSeconds, Value::Number(_) | Value::String(_)) => {
                epoch(value, 1.0, Timestamp::from_second).map_err(bad)
            }
            (TimeFormat::Rfc3339, Value::String(text)) => {
                text.parse::<Timestamp>().map_err(|e| bad(e.to_string()))
            }
            (TimeFormat::Strptime(format), Value::String(text)) => {
                strptime(format, text).map_err(|e| bad(e.to_string()))
            }
            (TimeFormat::EpochMillis | TimeFormat::EpochSeconds, other) => Err(bad(format!(
                "it is {}, not a number or a numeric string",
                kind(other)
            ))),
            (_, other) => Err(bad(format!("it is {}, not a string", kind(other)))),
        }
    }
}

/// A time from a number (or numeric string) of units since the Unix epoch, `per_second` of
/// them a second. Whole numbers are exact, even written as floats (`1709214356789.0`);
/// fractions (`1709214356.25` seconds, as Python's `time.time()` writes) are as exact as an
/// `f64` of seconds, which is about a microsecond today.
fn epoch(
    value: &Value,
    per_second: f64,
    from_integer: fn(i64) -> Result<Timestamp, jiff::Error>,
) -> Result<Timestamp, String> {
    let (integer, float) = match value {
        Value::Number(number) => (number.as_i64(), number.as_f64()),
        Value::String(text) => (text.parse::<i64>().ok(), text.parse::<f64>().ok()),
        _ => (None, None),
    };
    // Below 2^53 an f64 holds every whole number exactly, so the conversion loses nothing.
    let whole_float = float.filter(|f| f.fract() == 0.0 && f.abs() < 9_007_199_254_740_992.0);
    if let Some(integer) = integer.or(whole_float.map(|f| f as i64)) {
        return from_integer(integer).map_err(|e| e.to_string());
    }
    match float {
        Some(float) if float.is_finite() => SignedDuration::try_from_secs_f64(float / per_second)
            .and_then(Timestamp::from_duration)
            .map_err(|e| e.to_string()),
        _ => Err("it is not a finite number".to_owned()),
    }
}

/// Read `text` with the strftime `format`: an instant if the text has one (`%s`), an offset
/// (`%z`) or a time zone (`%Q`), else the civil time it names in UTC.
fn strptime(format: &str, text: &str) -> Result<Timestamp, jiff::Error> {
    let time = strtime::parse(format, text)?;
    if time.timestamp().is_some() || time.offset().is_some() {
        time.to_timestamp()
    } else if time.iana_time_zone().is_some() {
        Ok(time.to_zoned()?.timestamp())
    } else {
        Offset::UTC.to_timestamp(time.to_datetime()?)
    }
}

/// `value` as JSON, cut to [`MAX_VALUE_EXCERPT`] characters so a reason stays short.
fn excerpt(value: &Value) -> String {
    let json = value.to_string();
    match json.char_indices().nth(MAX_VALUE_EXCERPT) {
        Some((cut, _)) => format!("{}...", &json[..cut]),
        None => json,
    }
}

/// A Sink's `spec.partitioning`, parsed: the path of every record.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Partitioning {
    path: PathTemplate,
    time: RecordTime,
}

impl Partitioning {
    /// Parse and check `spec.partitioning`; an absent path is the empty one.
    pub fn new(spec: &SinkPartitioning) -> Result<Self, PartitioningError> {
        Ok(Self {
            path: PathTemplate::parse(spec.path.as_deref().unwrap_or_default())?,
            time: RecordTime::parse(spec.time_field.as_deref(), spec.time_format.as_deref())?,
        })
    }

    /// Whether [`Partitioning::path`] reads the record at all: a path of literals, `{source}`,
    /// `{partition}` and arrival-time tokens does not, and the worker then need not parse it.
    pub fn reads_record(&self) -> bool {
        self.path.uses_fields() || (self.path.uses_time() && self.time.reads_record())
    }

    /// The path of `record`, which arrived at `arrival` in `partition` of `source`. The time
    /// field is read only when the path uses it, so a path without `{time:...}` never rejects
    /// a record for its time.
    pub fn path(
        &self,
        record: &Value,
        arrival: Timestamp,
        source: &str,
        partition: &str,
    ) -> Result<String, RecordError> {
        let time = if self.path.uses_time() {
            self.time.record_time(record, arrival)?
        } else {
            arrival
        };
        self.path.render(time, record, source, partition)
    }
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    /// When the test records arrived: 2024-02-29 (a leap day, a Thursday) at 13:45:56.789 UTC.
    const ARRIVAL: &str = "2024-02-29T13:45:56.789Z";

    fn at(time: &str) -> Timestamp {
        time.parse().unwrap_or_else(|e| panic!("{time}: {e}"))
    }

    fn template(text: &str) -> PathTemplate {
        PathTemplate::parse(text).unwrap_or_else(|e| panic!("{text}: {e}"))
    }

    fn render(text: &str, record: &Value) -> Result<String, RecordError> {
        template(text).render(at(ARRIVAL), record, "pin", "3")
    }

    fn rendered(text: &str, record: &Value) -> String {
        render(text, record).unwrap_or_else(|e| panic!("{text} with {record}: {e}"))
    }

    fn parse_error(text: &str) -> PartitioningError {
        PathTemplate::parse(text).expect_err(text)
    }

    /// The segment of a value of the field `v`.
    fn segment(value: Value) -> String {
        rendered("{field:v}", &json!({ "v": value }))
    }

    /// Percent-decoding as a reader of the lake does it (UTF-8 aware).
    fn decode(segment: &str) -> String {
        let bytes = segment.as_bytes();
        let mut out = Vec::new();
        let mut i = 0;
        while i < bytes.len() {
            if bytes[i] == b'%' {
                let hex = std::str::from_utf8(&bytes[i + 1..i + 3]).unwrap();
                out.push(u8::from_str_radix(hex, 16).unwrap());
                i += 3;
            } else {
                out.push(bytes[i]);
                i += 1;
            }
        }
        String::from_utf8(out).unwrap()
    }

    #[test]
    fn the_empty_template_is_the_empty_path() {
        assert_eq!(rendered("", &json!({})), "");
        assert_eq!(rendered("raw/pin", &json!({})), "raw/pin");
    }

    #[test]
    fn times_are_written_in_utc() {
        let record = json!({});
        let time = at("2024-02-29T23:30:00-05:00");
        let path = template("dt={time:%Y-%m-%d}/hr={time:%H}").render(time, &record, "pin", "3");
        assert_eq!(path.unwrap(), "dt=2024-03-01/hr=04");
    }

    #[test]
    fn time_formats_are_jiffs_strftime() {
        let record = json!({});
        let cases = [
            ("{time:%Y/%m/%d}", "2024/02/29".to_owned()),
            (
                "year={time:%Y}/month={time:%m}",
                "year=2024/month=02".to_owned(),
            ),
            ("{time:%G-W%V}", "2024-W09".to_owned()),
            ("{time:%j}", "060".to_owned()),
            ("{time:%A}", "Thursday".to_owned()),
            ("{time:%H%M%S.%3f}", "134556.789".to_owned()),
            ("{time:%z}", "+0000".to_owned()),
            ("{time:%Q}", "UTC".to_owned()),
            ("{time:%%}", "%".to_owned()),
            ("{time:%s}", at(ARRIVAL).as_second().to_string()),
        ];
        for (text, expected) in cases {
            assert_eq!(rendered(text, &record), expected, "{text}");
        }
    }

    #[test]
    fn source_and_partition() {
        let path = template("{source}/shard={partition}").render(
            at(ARRIVAL),
            &json!({}),
            "pin-stream",
            "shardId-000000000001",
        );
        assert_eq!(path.unwrap(), "pin-stream/shard=shardId-000000000001");
        assert_eq!(
            rendered("topic={source}/p={partition}", &json!({})),
            "topic=pin/p=3"
        );
    }

    #[test]
    fn every_token_together() {
        let record = json!({ "country": "Fiji", "user": { "id": 7 } });
        assert_eq!(
            rendered(
                "{source}/dt={time:%F}/country={field:country}/user={field:user.id}/{partition}",
                &record
            ),
            "pin/dt=2024-02-29/country=Fiji/user=7/3"
        );
    }

    #[test]
    fn strings_are_escaped_for_one_segment() {
        let cases = [
            ("Fiji", "Fiji"),
            ("plain-text_1.0", "plain-text_1.0"),
            ("a/b", "a%2Fb"),
            ("New York", "New%20York"),
            ("k=v", "k%3Dv"),
            ("100%", "100%25"),
            ("a+b", "a%2Bb"),
            ("what?#&", "what%3F%23%26"),
            ("C:\\x", "C%3A%5Cx"),
            ("~*'\"`", "%7E%2A%27%22%60"),
            ("{}[]<>|^", "%7B%7D%5B%5D%3C%3E%7C%5E"),
            ("Côte d'Ivoire", "Côte%20d%27Ivoire"),
            ("東京", "東京"),
            ("tab\there\n", "tab%09here%0A"),
            ("\u{7f}", "%7F"),
            ("nbsp\u{a0}", "nbsp%C2%A0"),
            ("\u{85}", "%C2%85"),
            ("a\u{200b}b", "a%E2%80%8Bb"),
            ("\u{202e}txt", "%E2%80%AEtxt"),
            ("\u{feff}bom", "%EF%BB%BFbom"),
            (".", "%2E"),
            ("..", "%2E%2E"),
            ("...", "..."),
            ("", EMPTY_SEGMENT),
            ("__null__", "%5F%5Fnull%5F%5F"),
            ("__empty__", "%5F%5Fempty%5F%5F"),
            ("__other__", "__other__"),
        ];
        for (value, expected) in cases {
            assert_eq!(segment(json!(value)), expected, "{value:?}");
        }
    }

    #[test]
    fn escaping_decodes_back_and_never_merges_two_values() {
        let values = [
            "Fiji",
            "a/b",
            "a%2Fb",
            "a b",
            "a+b",
            "k=v",
            "Côte d'Ivoire",
            "a\u{200b}b",
            ".",
            "..",
            "__null__",
            "__empty__",
            "100%",
            "%",
            "%25",
            "\n",
            "東京",
        ];
        let mut seen = std::collections::HashSet::from([NULL_SEGMENT.to_owned()]);
        for value in values {
            let escaped = segment(json!(value));
            assert_eq!(decode(&escaped), value);
            assert!(!escaped.contains('/') && !escaped.is_empty(), "{escaped}");
            assert!(seen.insert(escaped.clone()), "{value:?} shares {escaped:?}");
        }
        assert!(
            seen.insert(segment(json!(""))),
            "the empty string is distinct"
        );
    }

    #[test]
    fn numbers_and_booleans_are_written_out() {
        let cases = [
            (json!(42), "42"),
            (json!(-7), "-7"),
            (json!(0), "0"),
            (json!(1.5), "1.5"),
            (json!(-0.25), "-0.25"),
            (json!(1e300), "1e%2B300"),
            (json!(u64::MAX), "18446744073709551615"),
            (json!(true), "true"),
            (json!(false), "false"),
        ];
        for (value, expected) in cases {
            assert_eq!(segment(value.clone()), expected, "{value}");
        }
    }

    #[test]
    fn missing_and_null_fields_are_the_null_segment() {
        assert_eq!(rendered("c={field:country}", &json!({})), "c=__null__");
        assert_eq!(
            rendered("c={field:country}", &json!({ "country": null })),
            "c=__null__"
        );
        assert_eq!(segment(json!(null)), NULL_SEGMENT);
    }

    #[test]
    fn dotted_names_reach_into_nested_objects() {
        let text = "{field:user.address.country}";
        let nested = json!({ "user": { "address": { "country": "Fiji" } } });
        assert_eq!(rendered(text, &nested), "Fiji");
        assert_eq!(rendered(text, &json!({ "user": {} })), NULL_SEGMENT);
        assert_eq!(rendered(text, &json!({ "user": null })), NULL_SEGMENT);
        assert_eq!(
            rendered(text, &json!({ "user": { "address": null } })),
            NULL_SEGMENT
        );
        // A top-level name with a dot is not a path through objects.
        assert_eq!(rendered("{field:a.b}", &json!({ "a.b": 1 })), NULL_SEGMENT);
    }

    #[test]
    fn crossing_a_value_that_is_not_an_object_rejects_the_record() {
        let error = render("{field:user.country}", &json!({ "user": "bob" })).unwrap_err();
        assert_eq!(
            error,
            RecordError::NotAnObject {
                field: "user.country".into(),
                parent: "field user".into(),
                kind: "a string",
            }
        );
        assert_eq!(
            error.to_string(),
            "field user is a string, not an object, so it has no field user.country"
        );
        let error = render("{field:country}", &json!(["Fiji"])).unwrap_err();
        assert_eq!(
            error.to_string(),
            "the record is an array, not an object, so it has no field country"
        );
        let error = render("{field:a.b.c}", &json!({ "a": { "b": 3 } })).unwrap_err();
        assert_eq!(
            error.to_string(),
            "field a.b is a number, not an object, so it has no field a.b.c"
        );
    }

    #[test]
    fn objects_and_arrays_reject_the_record() {
        let error = render("{field:v}", &json!({ "v": { "a": 1 } })).unwrap_err();
        assert_eq!(
            error.to_string(),
            "field v is an object; a path segment needs a string, a number or a boolean"
        );
        let error = render("{field:v}", &json!({ "v": [1, 2] })).unwrap_err();
        assert_eq!(
            error,
            RecordError::NotScalar {
                field: "v".into(),
                kind: "an array"
            }
        );
    }

    #[test]
    fn a_path_without_fields_takes_any_record() {
        assert_eq!(rendered("raw/{source}", &json!([1, 2])), "raw/pin");
        assert_eq!(rendered("raw", &json!("not an object")), "raw");
    }

    #[test]
    fn paths_longer_than_the_limit_reject_the_record() {
        let longest = "a".repeat(MAX_PATH_BYTES);
        assert_eq!(segment(json!(longest)), longest);
        let error = render("x/{field:v}", &json!({ "v": longest })).unwrap_err();
        assert_eq!(
            error,
            RecordError::PathTooLong {
                bytes: MAX_PATH_BYTES + 2
            }
        );
        assert_eq!(
            error.to_string(),
            "the path would be 514 bytes, more than 512; a field value is too long for an object key"
        );
        // Escaping counts: 200 slashes are 600 bytes.
        let error = render("{field:v}", &json!({ "v": "/".repeat(200) })).unwrap_err();
        assert_eq!(error, RecordError::PathTooLong { bytes: 600 });
    }

    #[test]
    fn a_time_format_that_fails_while_rendering_rejects_the_record() {
        // Parsing refuses such a format; a template built past it shows the worker survives.
        let unchecked = PathTemplate {
            segments: vec![Segment::Time("%Y%K".into())],
        };
        let error = unchecked
            .render(at(ARRIVAL), &json!({}), "pin", "3")
            .unwrap_err();
        assert!(
            matches!(&error, RecordError::TimeFormat { format, .. } if format == "%Y%K"),
            "{error}"
        );
        assert!(
            error
                .to_string()
                .starts_with("writing the record time with \"%Y%K\" failed: ")
        );
    }

    #[test]
    fn unbalanced_braces_are_refused_where_they_are() {
        assert_eq!(
            parse_error("dt={time:%Y"),
            PartitioningError::Unclosed { position: 4 }
        );
        assert_eq!(
            parse_error("a}b"),
            PartitioningError::UnexpectedClose { position: 2 }
        );
        assert_eq!(
            parse_error("{time:{x}}"),
            PartitioningError::NestedOpen { position: 7 }
        );
        assert_eq!(
            parse_error("{source}}"),
            PartitioningError::UnexpectedClose { position: 9 }
        );
        // Positions count characters, not bytes.
        assert_eq!(
            parse_error("é/ü/{"),
            PartitioningError::Unclosed { position: 5 }
        );
        assert_eq!(
            parse_error("dt={time:%Y").to_string(),
            "partitioning.path: '{' at character 4 is never closed; end the token with '}'"
        );
        assert_eq!(
            parse_error("a}b").to_string(),
            "partitioning.path: '}' at character 2 closes no token; remove it (object keys should not hold braces)"
        );
        assert_eq!(
            parse_error("{time:{x}}").to_string(),
            "partitioning.path: '{' at character 7 is inside another token; close that token with '}' first"
        );
    }

    #[test]
    fn unknown_tokens_are_refused() {
        for (text, token, position) in [
            ("{foo}", "foo", 1),
            ("a/{}", "", 3),
            ("{time}", "time", 1),
            ("{field}", "field", 1),
            ("{source:pin}", "source:pin", 1),
            ("{partition:x}", "partition:x", 1),
            ("{Source}", "Source", 1),
            ("{ source }", " source ", 1),
            ("{date:%Y}", "date:%Y", 1),
        ] {
            assert_eq!(
                parse_error(text),
                PartitioningError::UnknownToken {
                    position,
                    token: token.into()
                },
                "{text}"
            );
        }
        assert_eq!(
            parse_error("x/{foo}").to_string(),
            "partitioning.path: unknown token {foo} at character 3; use {time:FORMAT}, {field:NAME}, {source} or {partition}"
        );
    }

    #[test]
    fn time_formats_are_checked_when_parsed() {
        let error = parse_error("dt={time:}");
        assert_eq!(
            error,
            PartitioningError::TimeFormat {
                position: 4,
                format: String::new(),
                reason: "the format is empty".into(),
            }
        );
        assert_eq!(
            error.to_string(),
            "partitioning.path: {time:} at character 4: the format is empty; write a strftime format such as %Y-%m-%d or %H"
        );
        for text in ["{time:%K}", "{time:%Y-%}", "{time:%E}"] {
            assert!(
                matches!(
                    parse_error(text),
                    PartitioningError::TimeFormat { position: 1, .. }
                ),
                "{text}"
            );
        }
        // A time format may hold ':' (only the first one separates the token's name).
        assert_eq!(rendered("{time:%H:%M}", &json!({})), "13:45");
        // Next to other text, `%.f` is fine.
        assert_eq!(rendered("s={time:%S%.f}", &json!({})), "s=56.789");
    }

    #[test]
    fn field_names_are_checked_when_parsed() {
        for (text, name) in [
            ("{field:}", ""),
            ("x/{field:a..b}", "a..b"),
            ("{field:.a}", ".a"),
            ("{field:a.}", "a."),
        ] {
            assert!(
                matches!(parse_error(text), PartitioningError::FieldName { name: n, problem, .. }
                    if n == name && problem.contains("empty part")),
                "{text}"
            );
        }
        assert_eq!(
            parse_error("c={field: country}").to_string(),
            "partitioning.path: {field: country} at character 3: a part of the name starts or ends with white space; write NAME, or PARENT.CHILD for a nested field"
        );
        // Names are what JSON allows otherwise, ':' included.
        assert_eq!(rendered("{field:a:b}", &json!({ "a:b": 1 })), "1");
    }

    #[test]
    fn empty_path_segments_are_refused() {
        for (text, position) in [
            ("/raw", 1),
            ("raw/", 4),
            ("a//b", 3),
            ("{source}/", 9),
            ("/{source}", 1),
            ("{source}//{partition}", 10),
            ("{time:/%Y}", 1),
            ("a/{time:%Y/}", 3),
            ("a/{time:%Y}/{time:/%m}", 13),
            ("{time:%Y//%m}", 1),
            // `%.f` writes nothing when the time has no fraction of a second.
            ("a/{time:%.f}/b", 13),
        ] {
            assert_eq!(
                parse_error(text),
                PartitioningError::EmptySegment { position },
                "{text}"
            );
        }
        assert_eq!(
            parse_error("a//b").to_string(),
            "partitioning.path: '/' at character 3 makes an empty path segment; remove it (the path is joined to the prefix and the object name with one '/' each)"
        );
    }

    #[test]
    fn dot_segments_are_refused() {
        for (text, position) in [
            ("./a", 1),
            ("a/../b", 3),
            ("a/.", 3),
            ("{time:%Y/..}", 1),
            ("a/.{time:%.f}", 3),
        ] {
            assert_eq!(
                parse_error(text),
                PartitioningError::DotSegment { position },
                "{text}"
            );
        }
        assert_eq!(
            parse_error("a/../b").to_string(),
            "partitioning.path: the path segment at character 3 is '.' or '..', which a file:// destination would resolve as a directory; rename it"
        );
        // Dots next to other text, or a token, are ordinary names.
        assert_eq!(
            rendered("a/.../.{source}/v1.2", &json!({})),
            "a/.../.pin/v1.2"
        );
    }

    #[test]
    fn control_characters_are_refused() {
        assert_eq!(
            parse_error("a\tb"),
            PartitioningError::ControlCharacter { position: 2 }
        );
        assert_eq!(
            parse_error("x/{time:%Y%n}"),
            PartitioningError::ControlCharacter { position: 3 }
        );
        assert_eq!(
            parse_error("a\tb").to_string(),
            "partitioning.path: a control character at character 2 would go into object keys; remove it"
        );
    }

    fn record_time(
        field: &str,
        format: Option<&str>,
        record: Value,
    ) -> Result<Timestamp, RecordError> {
        RecordTime::parse(Some(field), format)
            .unwrap_or_else(|e| panic!("{e}"))
            .record_time(&record, at(ARRIVAL))
    }

    fn time_of(format: Option<&str>, value: Value) -> Timestamp {
        record_time("t", format, json!({ "t": value.clone() }))
            .unwrap_or_else(|e| panic!("{format:?} {value}: {e}"))
    }

    fn bad_time(format: Option<&str>, value: Value) -> RecordError {
        record_time("t", format, json!({ "t": value.clone() }))
            .expect_err(&format!("{format:?} {value}"))
    }

    #[test]
    fn without_a_time_field_the_time_is_the_arrival() {
        let time = RecordTime::parse(None, None).unwrap();
        assert_eq!(
            time.record_time(&json!({ "t": 1 }), at(ARRIVAL)),
            Ok(at(ARRIVAL))
        );
        assert_eq!(
            time.record_time(&json!("not an object"), at(ARRIVAL)),
            Ok(at(ARRIVAL))
        );
    }

    #[test]
    fn epoch_millis() {
        let millis = Some("epochMillis");
        assert_eq!(
            time_of(millis, json!(1_709_214_356_789_i64)),
            at("2024-02-29T13:45:56.789Z")
        );
        assert_eq!(
            time_of(millis, json!("1709214356789")),
            at("2024-02-29T13:45:56.789Z")
        );
        assert_eq!(time_of(millis, json!(-1)), at("1969-12-31T23:59:59.999Z"));
        assert_eq!(time_of(millis, json!("-1")), at("1969-12-31T23:59:59.999Z"));
        // Whole numbers written as floats stay exact.
        assert_eq!(
            time_of(millis, json!(1_709_214_356_789.0)),
            at("2024-02-29T13:45:56.789Z")
        );
        assert_eq!(
            time_of(millis, json!("1709214356789.0")),
            at("2024-02-29T13:45:56.789Z")
        );
        assert_eq!(
            time_of(millis, json!("1.709214356789e12")),
            at("2024-02-29T13:45:56.789Z")
        );
        let fractional = time_of(millis, json!(1_709_214_356_789.5));
        let error = fractional
            .duration_since(at("2024-02-29T13:45:56.7895Z"))
            .abs();
        assert!(error < SignedDuration::from_micros(1), "{fractional}");
    }

    #[test]
    fn epoch_seconds() {
        let seconds = Some("epochSeconds");
        assert_eq!(
            time_of(seconds, json!(1_709_214_356)),
            at("2024-02-29T13:45:56Z")
        );
        assert_eq!(
            time_of(seconds, json!("1709214356")),
            at("2024-02-29T13:45:56Z")
        );
        assert_eq!(
            time_of(seconds, json!(1_709_214_356.25)),
            at("2024-02-29T13:45:56.25Z")
        );
        assert_eq!(
            time_of(seconds, json!("1709214356.25")),
            at("2024-02-29T13:45:56.25Z")
        );
        assert_eq!(time_of(seconds, json!(0)), Timestamp::UNIX_EPOCH);
    }

    #[test]
    fn bad_epoch_values_reject_the_record() {
        for format in [Some("epochMillis"), Some("epochSeconds")] {
            for value in [
                json!("abc"),
                json!(""),
                json!(" 12"),
                json!("NaN"),
                json!("inf"),
            ] {
                let error = bad_time(format, value.clone());
                assert!(
                    matches!(&error, RecordError::BadTime { reason, .. } if reason == "it is not a finite number"),
                    "{value}: {error}"
                );
            }
            for (value, kind) in [
                (json!(true), "a boolean"),
                (json!([1]), "an array"),
                (json!({}), "an object"),
            ] {
                let error = bad_time(format, value);
                assert!(
                    error
                        .to_string()
                        .ends_with(&format!("it is {kind}, not a number or a numeric string")),
                    "{error}"
                );
            }
            // Beyond the years jiff represents (-9999 to 9999).
            for value in [json!(i64::MAX), json!(1e20), json!("-99999999999999999")] {
                assert!(matches!(
                    bad_time(format, value),
                    RecordError::BadTime { .. }
                ));
            }
        }
        assert_eq!(
            bad_time(Some("epochMillis"), json!("abc")).to_string(),
            "time field t holds \"abc\", which is not milliseconds since the Unix epoch: it is not a finite number"
        );
    }

    #[test]
    fn strftime_formats_read_utc_unless_they_have_an_offset() {
        let format = Some("%Y-%m-%d %H:%M:%S");
        assert_eq!(
            time_of(format, json!("2024-02-29 13:45:56")),
            at("2024-02-29T13:45:56Z")
        );
        let with_offset = Some("%Y-%m-%d %H:%M:%S %z");
        assert_eq!(
            time_of(with_offset, json!("2024-02-29 13:45:56 +0530")),
            at("2024-02-29T08:15:56Z")
        );
        let with_zone = Some("%Y-%m-%d %H:%M %Q");
        assert_eq!(
            time_of(with_zone, json!("2024-02-29 13:45 America/New_York")),
            at("2024-02-29T18:45:00Z")
        );
        assert_eq!(
            time_of(Some("%Y-%m-%d"), json!("2024-02-29")),
            at("2024-02-29T00:00:00Z")
        );
        assert_eq!(
            time_of(Some("%d/%m/%Y %H:%M"), json!("29/02/2024 13:45")),
            at("2024-02-29T13:45:00Z")
        );
        assert_eq!(
            time_of(Some("%s"), json!("1709214356")),
            at("2024-02-29T13:45:56Z")
        );
        let fractional = Some("%Y-%m-%dT%H:%M:%S%.f");
        assert_eq!(
            time_of(fractional, json!("2024-02-29T13:45:56.123456")),
            at("2024-02-29T13:45:56.123456Z")
        );
    }

    #[test]
    fn values_that_do_not_match_the_strftime_format_reject_the_record() {
        let format = Some("%Y-%m-%d %H:%M:%S");
        for value in [
            "29/02/2024 13:45:56",
            "2024-02-30 13:45:56",
            "2024-02-29",
            "",
            "2024-02-29 13:45:56 extra",
        ] {
            let error = bad_time(format, json!(value));
            assert!(
                error.to_string().starts_with(&format!(
                    "time field t holds {}, which is not a time in partitioning.timeFormat: ",
                    json!(value)
                )),
                "{error}"
            );
        }
        assert!(
            bad_time(format, json!(1_709_214_356))
                .to_string()
                .ends_with("it is a number, not a string")
        );
    }

    #[test]
    fn rfc_3339_is_the_default_and_keeps_its_offset() {
        assert_eq!(
            time_of(None, json!("2024-02-29T13:45:56Z")),
            at("2024-02-29T13:45:56Z")
        );
        assert_eq!(
            time_of(None, json!("2024-02-29T13:45:56.123+02:00")),
            at("2024-02-29T11:45:56.123Z")
        );
        assert_eq!(
            time_of(None, json!("2024-02-29T23:45:56-08:00")),
            at("2024-03-01T07:45:56Z")
        );
        assert_eq!(
            time_of(None, json!("2024-02-29 13:45:56z")),
            at("2024-02-29T13:45:56Z")
        );
        for value in ["2024-02-29T13:45:56", "2024-02-29", "yesterday", ""] {
            let error = bad_time(None, json!(value));
            assert!(
                error
                    .to_string()
                    .contains("which is not an RFC 3339 time with an offset: "),
                "{value}: {error}"
            );
        }
        assert_eq!(
            bad_time(None, json!(1_709_214_356)).to_string(),
            "time field t holds 1709214356, which is not an RFC 3339 time with an offset: it is a number, not a string"
        );
    }

    #[test]
    fn a_missing_time_rejects_the_record() {
        for record in [json!({}), json!({ "t": null })] {
            let error = record_time("t", None, record).unwrap_err();
            assert_eq!(error, RecordError::MissingTime { field: "t".into() });
            assert_eq!(error.to_string(), "time field t is missing or null");
        }
    }

    #[test]
    fn the_time_field_may_be_nested() {
        let record = json!({ "meta": { "ts": 1_709_214_356 } });
        assert_eq!(
            record_time("meta.ts", Some("epochSeconds"), record),
            Ok(at("2024-02-29T13:45:56Z"))
        );
        let error = record_time("meta.ts", None, json!({ "meta": 5 })).unwrap_err();
        assert!(matches!(error, RecordError::NotAnObject { .. }), "{error}");
    }

    #[test]
    fn long_bad_values_are_shortened_in_the_reason() {
        let error = bad_time(None, json!("x".repeat(500)));
        let RecordError::BadTime { value, .. } = &error else {
            panic!("{error}");
        };
        assert_eq!(
            value,
            &format!("\"{}...", "x".repeat(MAX_VALUE_EXCERPT - 1))
        );
        assert_eq!(excerpt(&json!("short")), "\"short\"");
    }

    #[test]
    fn time_settings_are_checked_when_parsed() {
        assert_eq!(
            RecordTime::parse(None, Some("epochMillis")),
            Err(PartitioningError::TimeFormatWithoutField)
        );
        assert_eq!(
            PartitioningError::TimeFormatWithoutField.to_string(),
            "partitioning.timeFormat is set but timeField is not; set timeField to the field that holds the time, or remove timeFormat"
        );
        for name in ["", "a..b", " ts"] {
            assert!(
                matches!(
                    RecordTime::parse(Some(name), None),
                    Err(PartitioningError::TimeField { .. })
                ),
                "{name:?}"
            );
        }
        // Formats that do not read a whole instant back: Java patterns, no date, write-only
        // directives, a misspelt epoch unit.
        for format in [
            "yyyy-MM-dd HH:mm:ss",
            "%H:%M",
            "%c",
            "%Y-%m-%d %Z",
            "epochmillis",
            "%K",
            "",
        ] {
            let error = RecordTime::parse(Some("t"), Some(format)).unwrap_err();
            let PartitioningError::TimeParseFormat { format: named, .. } = &error else {
                panic!("{format}: {error}");
            };
            assert_eq!(named, format);
        }
        let error = RecordTime::parse(Some("t"), Some("%H:%M")).unwrap_err();
        assert!(
            error
                .to_string()
                .starts_with("partitioning.timeFormat \"%H:%M\" cannot read times: "),
            "{error}"
        );
        assert!(
            error.to_string().ends_with(
                "; use epochMillis, epochSeconds or a strftime format such as %Y-%m-%d %H:%M:%S"
            ),
            "{error}"
        );
    }

    fn partitioning(spec: Value) -> Result<Partitioning, PartitioningError> {
        let spec: SinkPartitioning = serde_json::from_value(spec).unwrap();
        Partitioning::new(&spec)
    }

    #[test]
    fn partitioning_from_a_spec() {
        let spec = json!({
            "path": "dt={time:%Y-%m-%d}/hr={time:%H}/country={field:country}",
            "timeField": "ts",
            "timeFormat": "epochMillis",
        });
        let partitioning = partitioning(spec).unwrap();
        let record = json!({ "ts": 1_709_250_000_000_i64, "country": "Fiji" });
        assert_eq!(
            partitioning.path(&record, at(ARRIVAL), "pin", "3"),
            Ok("dt=2024-02-29/hr=23/country=Fiji".into())
        );
        assert_eq!(
            partitioning.path(&json!({ "country": "Fiji" }), at(ARRIVAL), "pin", "3"),
            Err(RecordError::MissingTime { field: "ts".into() })
        );
    }

    #[test]
    fn partitioning_by_arrival_time() {
        let partitioning = partitioning(json!({ "path": "dt={time:%F}/hr={time:%H}" })).unwrap();
        assert_eq!(
            partitioning.path(&json!({}), at("2024-03-01T00:00:00+01:00"), "pin", "3"),
            Ok("dt=2024-02-29/hr=23".into())
        );
    }

    #[test]
    fn a_path_without_time_never_reads_the_time_field() {
        let spec = json!({ "path": "{field:country}", "timeField": "ts" });
        let partitioning = partitioning(spec).unwrap();
        assert_eq!(
            partitioning.path(&json!({ "country": "Fiji" }), at(ARRIVAL), "pin", "3"),
            Ok("Fiji".into())
        );
    }

    #[test]
    fn the_default_partitioning_is_the_empty_path() {
        let partitioning = partitioning(json!({})).unwrap();
        assert_eq!(
            partitioning.path(&json!([]), at(ARRIVAL), "pin", "3"),
            Ok(String::new())
        );
    }

    #[test]
    fn partitioning_errors_name_the_field() {
        assert_eq!(
            partitioning(json!({ "path": "{nope}" })),
            Err(PartitioningError::UnknownToken {
                position: 1,
                token: "nope".into()
            })
        );
        assert_eq!(
            partitioning(json!({ "path": "{source}", "timeFormat": "epochSeconds" })),
            Err(PartitioningError::TimeFormatWithoutField)
        );
        let error = partitioning(json!({ "timeField": "t", "timeFormat": "%H" })).unwrap_err();
        assert!(
            error.to_string().starts_with("partitioning.timeFormat"),
            "{error}"
        );
    }
}
