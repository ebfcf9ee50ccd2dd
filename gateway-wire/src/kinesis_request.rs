//! A Kinesis-style put request, from its content type and body to the records to send. Pure:
//! no I/O.
//!
//! `PUT /streams/{stream}/record` takes Kinesis's PutRecord shape,
//! `{"Data": ..., "PartitionKey": "...", "ExplicitHashKey": "..."}`, and
//! `PUT /streams/{stream}/records` its PutRecords shape, `{"Records": [{...}, ...]}`; both may
//! name the stream in `StreamName`, which must then be the one in the path. With
//! `application/json` (what an API Gateway Kinesis proxy receives) `Data` is any JSON and is sent
//! as its compact JSON text; with `application/x-amz-json-1.1` (Kinesis's own wire format) it is
//! a base64 string and is sent decoded.

use std::borrow::Cow;
use std::ops::Range;

use base64::Engine;
use serde::Deserialize;
use serde_json::value::RawValue;

use crate::request::{BASE64, Object, check_count, compact_json, from_json, json_string, kind};
use crate::response::ApiError;

/// The content type whose `Data` is any JSON.
pub const JSON_CONTENT_TYPE: &str = "application/json";
/// The content type whose `Data` is base64, as Kinesis's own API has it.
pub const AMZ_JSON_CONTENT_TYPE: &str = "application/x-amz-json-1.1";

/// Kinesis's limits: records per PutRecords call, bytes per record (data and partition key),
/// bytes per call, and the partition key's length in Unicode scalar values.
pub const MAX_RECORDS_PER_CALL: usize = 500;
/// See [`MAX_RECORDS_PER_CALL`].
pub const MAX_RECORD_BYTES: usize = 1024 * 1024;
/// See [`MAX_RECORDS_PER_CALL`].
pub const MAX_CALL_BYTES: usize = 5 * 1024 * 1024;
/// See [`MAX_RECORDS_PER_CALL`].
pub const MAX_PARTITION_KEY_CHARS: usize = 256;

/// How `Data` is embedded in the request.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum DataFormat {
    /// Any JSON, sent as compact JSON text.
    Json,
    /// A base64 string, sent decoded.
    Base64,
}

impl DataFormat {
    /// The format a `Content-Type` header names (parameters such as `charset` are ignored).
    pub fn from_content_type(content_type: Option<&str>) -> Result<Self, ApiError> {
        let accepted = format!(
            "send {JSON_CONTENT_TYPE} (Data as any JSON) or {AMZ_JSON_CONTENT_TYPE} (Data as \
             base64)"
        );
        let Some(content_type) = content_type else {
            return Err(ApiError::unsupported_media_type(format!(
                "the request has no Content-Type: {accepted}"
            )));
        };
        let essence = content_type
            .split(';')
            .next()
            .unwrap_or_default()
            .trim()
            .to_ascii_lowercase();
        match essence.as_str() {
            JSON_CONTENT_TYPE => Ok(Self::Json),
            AMZ_JSON_CONTENT_TYPE => Ok(Self::Base64),
            other => Err(ApiError::unsupported_media_type(format!(
                "Content-Type {other} is not supported on /streams: {accepted}"
            ))),
        }
    }
}

/// One record to put. Data and keys borrow from the body where they can.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct KinesisRecord<'a> {
    /// The record's bytes.
    pub data: Cow<'a, [u8]>,
    /// Chooses the shard (by its MD5 hash), and orders records within it.
    pub partition_key: Cow<'a, str>,
    /// A 128-bit hash key, in decimal, that chooses the shard instead of the partition key's.
    pub explicit_hash_key: Option<Cow<'a, str>>,
}

impl KinesisRecord<'_> {
    /// What the record counts against Kinesis's size limits: data and partition key.
    pub fn size(&self) -> usize {
        self.data.len() + self.partition_key.len()
    }
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields, rename_all = "PascalCase")]
struct RawPutRecord<'a> {
    #[serde(borrow, default)]
    stream_name: Option<Cow<'a, str>>,
    #[serde(borrow, default)]
    data: Option<&'a RawValue>,
    #[serde(borrow, default)]
    partition_key: Option<Cow<'a, str>>,
    #[serde(borrow, default)]
    explicit_hash_key: Option<Cow<'a, str>>,
    #[serde(borrow, default)]
    sequence_number_for_ordering: Option<&'a RawValue>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields, rename_all = "PascalCase")]
struct RawPutRecords<'a> {
    #[serde(borrow, default)]
    stream_name: Option<Cow<'a, str>>,
    #[serde(borrow)]
    records: Vec<Object<RawEntry<'a>>>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields, rename_all = "PascalCase")]
struct RawEntry<'a> {
    #[serde(borrow, default)]
    data: Option<&'a RawValue>,
    #[serde(borrow, default)]
    partition_key: Option<Cow<'a, str>>,
    #[serde(borrow, default)]
    explicit_hash_key: Option<Cow<'a, str>>,
    #[serde(borrow, default)]
    sequence_number_for_ordering: Option<&'a RawValue>,
}

/// Parse a PutRecord body for `stream`.
pub fn parse_put_record<'a>(
    format: DataFormat,
    body: &'a [u8],
    stream: &str,
) -> Result<KinesisRecord<'a>, ApiError> {
    let Object(request) = from_json::<Object<RawPutRecord<'a>>>(
        body,
        "a PutRecord request ({\"Data\": ..., \"PartitionKey\": \"...\"})",
    )?;
    check_stream_name(request.stream_name.as_deref(), stream)?;
    let record = RawEntry {
        data: request.data,
        partition_key: request.partition_key,
        explicit_hash_key: request.explicit_hash_key,
        sequence_number_for_ordering: request.sequence_number_for_ordering,
    };
    entry(format, record, None)
}

/// Parse a PutRecords body for `stream`, refusing the whole request if any record is invalid or
/// if it has more than `max_records`.
pub fn parse_put_records<'a>(
    format: DataFormat,
    body: &'a [u8],
    stream: &str,
    max_records: usize,
) -> Result<Vec<KinesisRecord<'a>>, ApiError> {
    let Object(request) = from_json::<Object<RawPutRecords<'a>>>(
        body,
        "a PutRecords request ({\"Records\": [...]})",
    )?;
    check_stream_name(request.stream_name.as_deref(), stream)?;
    check_count(request.records.len(), "Records", max_records)?;
    request
        .records
        .into_iter()
        .enumerate()
        .map(|(index, Object(raw))| entry(format, raw, Some(index)))
        .collect()
}

/// Split `records` into runs that each fit one PutRecords call: at most
/// [`MAX_RECORDS_PER_CALL`] records and [`MAX_CALL_BYTES`] bytes.
pub fn calls(records: &[KinesisRecord<'_>]) -> Vec<Range<usize>> {
    let mut runs = Vec::new();
    let (mut start, mut bytes) = (0, 0);
    for (index, record) in records.iter().enumerate() {
        let size = record.size();
        if index > start && (index - start == MAX_RECORDS_PER_CALL || bytes + size > MAX_CALL_BYTES)
        {
            runs.push(start..index);
            (start, bytes) = (index, 0);
        }
        bytes += size;
    }
    if start < records.len() {
        runs.push(start..records.len());
    }
    runs
}

fn check_stream_name(named: Option<&str>, stream: &str) -> Result<(), ApiError> {
    match named {
        Some(named) if named != stream => Err(ApiError::invalid_request(format!(
            "StreamName is {named} but the path names the stream {stream}: leave StreamName out \
             or make the two agree"
        ))),
        _ => Ok(()),
    }
}

fn entry<'a>(
    format: DataFormat,
    raw: RawEntry<'a>,
    index: Option<usize>,
) -> Result<KinesisRecord<'a>, ApiError> {
    let at = |field: &str| match index {
        Some(index) => format!("Records[{index}].{field}"),
        None => field.to_owned(),
    };
    if raw.sequence_number_for_ordering.is_some() {
        return Err(ApiError::invalid_request(format!(
            "{} is not supported: records with the same PartitionKey are put in request order",
            at("SequenceNumberForOrdering")
        )));
    }
    let Some(partition_key) = raw.partition_key else {
        return Err(ApiError::invalid_request(format!(
            "{} is missing: every record needs one (it chooses the shard)",
            at("PartitionKey")
        )));
    };
    let chars = partition_key.chars().count();
    if chars == 0 || chars > MAX_PARTITION_KEY_CHARS {
        return Err(ApiError::invalid_request(format!(
            "{} has {chars} characters: Kinesis takes 1 to {MAX_PARTITION_KEY_CHARS}",
            at("PartitionKey")
        )));
    }
    if let Some(hash_key) = &raw.explicit_hash_key
        && !is_hash_key(hash_key)
    {
        return Err(ApiError::invalid_request(format!(
            "{} is {hash_key:?}: it must be a decimal number from 0 to 2^128 - 1",
            at("ExplicitHashKey")
        )));
    }
    let data = match raw.data.map(RawValue::get) {
        None | Some("null") => {
            return Err(ApiError::invalid_value(format!(
                "{} is missing: every record needs data",
                at("Data")
            )));
        }
        Some(text) => match format {
            DataFormat::Json => compact_json(text),
            DataFormat::Base64 => {
                let encoded = json_string(text).ok_or_else(|| {
                    ApiError::invalid_value(format!(
                        "{} must be a base64 string with {AMZ_JSON_CONTENT_TYPE}, not {} (send \
                         {JSON_CONTENT_TYPE} to put JSON as it is)",
                        at("Data"),
                        kind(text)
                    ))
                })?;
                let bytes = BASE64.decode(encoded.as_bytes()).map_err(|error| {
                    ApiError::invalid_value(format!("{} is not valid base64: {error}", at("Data")))
                })?;
                Cow::Owned(bytes)
            }
        },
    };
    let record = KinesisRecord {
        data,
        partition_key,
        explicit_hash_key: raw.explicit_hash_key,
    };
    if record.size() > MAX_RECORD_BYTES {
        return Err(ApiError::invalid_value(format!(
            "{} and its PartitionKey are {} bytes: Kinesis takes at most {MAX_RECORD_BYTES} per \
             record",
            at("Data"),
            record.size()
        )));
    }
    Ok(record)
}

/// A decimal number from 0 to 2^128 - 1, without a sign or leading zeros.
fn is_hash_key(text: &str) -> bool {
    !text.is_empty()
        && text.bytes().all(|b| b.is_ascii_digit())
        && (text == "0" || !text.starts_with('0'))
        && text.parse::<u128>().is_ok()
}

#[cfg(test)]
mod tests {
    use http::StatusCode;

    use super::*;

    fn text(record: &KinesisRecord<'_>) -> String {
        String::from_utf8(record.data.to_vec()).expect("UTF-8")
    }

    fn error(result: Result<impl std::fmt::Debug, ApiError>) -> (u16, u32, String) {
        let error = result.unwrap_err();
        (error.status.as_u16(), error.error_code, error.message)
    }

    #[test]
    fn content_types_name_the_format() {
        assert_eq!(
            DataFormat::from_content_type(Some("application/json; charset=utf-8")),
            Ok(DataFormat::Json)
        );
        assert_eq!(
            DataFormat::from_content_type(Some("application/x-amz-json-1.1")),
            Ok(DataFormat::Base64)
        );
        for other in [
            None,
            Some("text/plain"),
            Some("application/vnd.kafka.json.v2+json"),
        ] {
            let (status, _, message) = error(DataFormat::from_content_type(other));
            assert_eq!(status, 415);
            assert!(message.contains(AMZ_JSON_CONTENT_TYPE), "{message}");
        }
    }

    #[test]
    fn a_put_record_body_as_the_api_gateway_proxy_takes_it() {
        let body = br#"{"StreamName": "pin", "Data": {"index": 7, "title": "a b"},
                        "PartitionKey": "partition-1"}"#;
        let record = parse_put_record(DataFormat::Json, body, "pin").unwrap();
        assert_eq!(text(&record), r#"{"index":7,"title":"a b"}"#);
        assert_eq!(record.partition_key, "partition-1");
        assert_eq!(record.explicit_hash_key, None);
        // A JSON string is sent as JSON text, quotes included, as the proxy's mapping does.
        let quoted = parse_put_record(
            DataFormat::Json,
            br#"{"Data": "x", "PartitionKey": "k"}"#,
            "pin",
        )
        .unwrap();
        assert_eq!(text(&quoted), r#""x""#);
    }

    #[test]
    fn put_records_in_the_kinesis_wire_format_are_base64() {
        let body = br#"{"Records": [
            {"Data": "aGVsbG8=", "PartitionKey": "a"},
            {"Data": "", "PartitionKey": "b", "ExplicitHashKey": "340282366920938463463374607431768211455"}
        ]}"#;
        let records = parse_put_records(DataFormat::Base64, body, "pin", 10).unwrap();
        assert_eq!(records.len(), 2);
        assert_eq!(text(&records[0]), "hello");
        assert_eq!(text(&records[1]), "");
        assert_eq!(
            records[1].explicit_hash_key.as_deref(),
            Some("340282366920938463463374607431768211455")
        );
    }

    #[test]
    fn bad_records_say_which_and_what_to_fix() {
        let records = |body: &str| {
            error(parse_put_records(
                DataFormat::Base64,
                body.as_bytes(),
                "pin",
                2,
            ))
        };
        assert_eq!(
            records(r#"{"Records": [{"Data": "aA=="}]}"#),
            (
                422,
                422,
                "Records[0].PartitionKey is missing: every record needs one (it chooses the shard)"
                    .into()
            )
        );
        assert_eq!(
            records(
                r#"{"Records": [{"Data": "aA==", "PartitionKey": "k"}, {"PartitionKey": "k"}]}"#
            ),
            (
                422,
                42202,
                "Records[1].Data is missing: every record needs data".into()
            )
        );
        assert!(records(r#"{"Records": [{"Data": {"a": 1}, "PartitionKey": "k"}]}"#).2.contains(
            "Records[0].Data must be a base64 string with application/x-amz-json-1.1, not an object"
        ));
        assert!(
            records(r#"{"Records": [{"Data": "!!", "PartitionKey": "k"}]}"#)
                .2
                .contains("not valid base64")
        );
        let long_key = "é".repeat(257);
        assert!(
            records(&format!(
                r#"{{"Records": [{{"Data": "", "PartitionKey": "{long_key}"}}]}}"#
            ))
            .2
            .contains("has 257 characters: Kinesis takes 1 to 256")
        );
        assert!(
            records(r#"{"Records": [{"Data": "", "PartitionKey": ""}]}"#)
                .2
                .contains("has 0 characters")
        );
        for hash_key in [
            "-1",
            "01",
            "340282366920938463463374607431768211456",
            "1e3",
            "",
        ] {
            let body = format!(
                r#"{{"Records": [{{"Data": "", "PartitionKey": "k", "ExplicitHashKey": "{hash_key}"}}]}}"#
            );
            assert!(records(&body).2.contains("ExplicitHashKey"), "{hash_key}");
        }
        assert!(records(r#"{"Records": [{"Data": "", "PartitionKey": "k", "SequenceNumberForOrdering": "1"}]}"#)
            .2
            .contains("SequenceNumberForOrdering is not supported"));
        assert_eq!(records(r#"{"Records": []}"#).0, 422);
        let (status, code, _) = records(
            r#"{"Records": [{"Data": "", "PartitionKey": "k"}, {"Data": "", "PartitionKey": "k"}, {"Data": "", "PartitionKey": "k"}]}"#,
        );
        assert_eq!((status, code), (413, 413));
        assert_eq!(records("{nope").0, 400);
        assert!(
            records(r#"{"Recordz": []}"#)
                .2
                .contains("unknown field `Recordz`")
        );
        // The array forms that serde's structs also take.
        for body in [
            r#"[null, [["aA==", "k"]]]"#,
            r#"{"Records": [["aA==", "k"]]}"#,
        ] {
            assert!(records(body).2.contains("expected a JSON object"), "{body}");
        }
    }

    #[test]
    fn the_stream_name_in_the_body_must_match_the_path() {
        let (status, _, message) = error(parse_put_record(
            DataFormat::Json,
            br#"{"StreamName": "geo", "Data": 1, "PartitionKey": "k"}"#,
            "pin",
        ));
        assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY.as_u16());
        assert!(message.contains("StreamName is geo but the path names the stream pin"));
    }

    #[test]
    fn a_record_over_one_mebibyte_is_refused() {
        let data = BASE64.encode(vec![0u8; MAX_RECORD_BYTES]);
        let body = format!(r#"{{"Data": "{data}", "PartitionKey": "k"}}"#);
        let (status, code, message) =
            error(parse_put_record(DataFormat::Base64, body.as_bytes(), "pin"));
        assert_eq!((status, code), (422, 42202));
        assert!(message.contains("1048577 bytes"), "{message}");
    }

    #[test]
    fn calls_hold_at_most_500_records_and_5_mib() {
        let record = |size: usize| KinesisRecord {
            data: Cow::Owned(vec![0; size - 1]),
            partition_key: Cow::Borrowed("k"),
            explicit_hash_key: None,
        };
        let small: Vec<_> = (0..1201).map(|_| record(10)).collect();
        assert_eq!(calls(&small), vec![0..500, 500..1000, 1000..1201]);
        let large: Vec<_> = (0..11).map(|_| record(MAX_RECORD_BYTES)).collect();
        assert_eq!(calls(&large), vec![0..5, 5..10, 10..11]);
        assert_eq!(calls(&[]), Vec::<Range<usize>>::new());
    }
}
