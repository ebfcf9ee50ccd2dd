//! A produce request, from its content type and body to the records to send. Pure: no I/O.
//!
//! The body is `{"records": [{"key": ..., "value": ..., "partition": ...}, ...]}`; `key` and
//! `partition` are optional, a missing or `null` key or value sends none (a `null` value is a
//! tombstone). With `application/vnd.kafka.json.v2+json` a key or value is any JSON and is sent
//! as its compact JSON text; with `application/vnd.kafka.binary.v2+json` it is a base64 string
//! and is sent decoded.

use std::borrow::Cow;
use std::fmt;
use std::marker::PhantomData;

use base64::Engine;
use base64::engine::{DecodePaddingMode, GeneralPurpose, GeneralPurposeConfig};
use serde::de::value::MapAccessDeserializer;
use serde::de::{MapAccess, Visitor};
use serde::{Deserialize, Deserializer};
use serde_json::value::RawValue;

use crate::response::ApiError;

/// The content type of JSON records.
pub const JSON_CONTENT_TYPE: &str = "application/vnd.kafka.json.v2+json";
/// The content type of base64 records.
pub const BINARY_CONTENT_TYPE: &str = "application/vnd.kafka.binary.v2+json";

/// How keys and values are embedded in the request.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum EmbeddedFormat {
    /// Any JSON, sent as compact JSON text.
    Json,
    /// Base64 strings, sent decoded.
    Binary,
}

impl EmbeddedFormat {
    /// The format a `Content-Type` header names (parameters such as `charset` are ignored).
    pub fn from_content_type(content_type: Option<&str>) -> Result<Self, ApiError> {
        let accepted = format!(
            "send {JSON_CONTENT_TYPE} (values as JSON) or {BINARY_CONTENT_TYPE} (values as base64)"
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
            BINARY_CONTENT_TYPE => Ok(Self::Binary),
            other => Err(ApiError::unsupported_media_type(format!(
                "Content-Type {other} is not supported: {accepted}; schema formats (Avro, \
                 Protobuf, JSON Schema) and the REST proxy's v1 and v3 APIs are not"
            ))),
        }
    }
}

/// One record to send. Keys and values borrow from the body where they can.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Record<'a> {
    /// The key, if any.
    pub key: Option<Cow<'a, [u8]>>,
    /// The value; `None` is a tombstone.
    pub value: Option<Cow<'a, [u8]>>,
    /// The partition, if the client chose one; otherwise the producer's partitioner (by key).
    pub partition: Option<i32>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawRequest<'a> {
    #[serde(borrow)]
    records: Vec<Object<RawRecord<'a>>>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawRecord<'a> {
    #[serde(borrow, default)]
    key: Option<&'a RawValue>,
    #[serde(borrow, default)]
    value: Option<&'a RawValue>,
    #[serde(default)]
    partition: Option<i32>,
}

/// A `T` written as a JSON object. A derived struct alone also takes the array of its fields in
/// order (`[[[1, 2, 0]]]` would be a produce request), which no client means to send.
pub(crate) struct Object<T>(pub(crate) T);

impl<'de, T: Deserialize<'de>> Deserialize<'de> for Object<T> {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        struct ObjectVisitor<T>(PhantomData<T>);

        impl<'de, T: Deserialize<'de>> Visitor<'de> for ObjectVisitor<T> {
            type Value = T;

            fn expecting(&self, formatter: &mut fmt::Formatter<'_>) -> fmt::Result {
                formatter.write_str("a JSON object")
            }

            fn visit_map<A: MapAccess<'de>>(self, map: A) -> Result<T, A::Error> {
                T::deserialize(MapAccessDeserializer::new(map))
            }
        }

        deserializer
            .deserialize_map(ObjectVisitor(PhantomData))
            .map(Object)
    }
}

/// Deserialize `body`: 400 if it is not JSON, 422 naming `expected` if it is JSON of another
/// shape.
pub(crate) fn from_json<'a, T: Deserialize<'a>>(
    body: &'a [u8],
    expected: &str,
) -> Result<T, ApiError> {
    serde_json::from_slice(body).map_err(|error| {
        if error.is_data() {
            ApiError::invalid_request(format!("the request body is not {expected}: {error}"))
        } else {
            ApiError::malformed_json(format!("the request body is not valid JSON: {error}"))
        }
    })
}

/// A request holds 1 to `max` records in its `field`.
pub(crate) fn check_count(records: usize, field: &str, max: usize) -> Result<(), ApiError> {
    if records == 0 {
        return Err(ApiError::invalid_request(format!(
            "the request has no records: \"{field}\" must hold at least one"
        )));
    }
    if records > max {
        return Err(ApiError::too_many_records(records, max));
    }
    Ok(())
}

/// Base64 as the REST proxy's decoder takes it: the standard alphabet, padding optional.
pub(crate) const BASE64: GeneralPurpose = GeneralPurpose::new(
    &base64::alphabet::STANDARD,
    GeneralPurposeConfig::new().with_decode_padding_mode(DecodePaddingMode::Indifferent),
);

/// Parse a body into its records, refusing the whole request if any record is invalid (as the
/// REST proxy does), or if it has more than `max_records`.
pub fn parse_records(
    format: EmbeddedFormat,
    body: &[u8],
    max_records: usize,
) -> Result<Vec<Record<'_>>, ApiError> {
    let Object(request): Object<RawRequest<'_>> =
        from_json(body, "a produce request ({\"records\": [...]})")?;
    check_count(request.records.len(), "records", max_records)?;
    request
        .records
        .into_iter()
        .enumerate()
        .map(|(index, Object(raw))| {
            if let Some(partition) = raw.partition
                && partition < 0
            {
                return Err(ApiError::invalid_request(format!(
                    "records[{index}].partition is {partition}: a partition is 0 or more"
                )));
            }
            let key = raw
                .key
                .map(|key| embedded(format, key))
                .transpose()
                .map_err(|why| ApiError::invalid_key(format!("records[{index}].key {why}")))?
                .flatten();
            let value = raw
                .value
                .map(|value| embedded(format, value))
                .transpose()
                .map_err(|why| ApiError::invalid_value(format!("records[{index}].value {why}")))?
                .flatten();
            Ok(Record {
                key,
                value,
                partition: raw.partition,
            })
        })
        .collect()
}

/// The bytes of an embedded key or value (`None` for `null`), or why it has none.
fn embedded(format: EmbeddedFormat, raw: &RawValue) -> Result<Option<Cow<'_, [u8]>>, String> {
    let text = raw.get();
    if text == "null" {
        return Ok(None);
    }
    match format {
        EmbeddedFormat::Json => Ok(Some(compact_json(text))),
        EmbeddedFormat::Binary => {
            let encoded = json_string(text)
                .ok_or_else(|| format!("must be a base64 string or null, not {}", kind(text)))?;
            BASE64
                .decode(encoded.as_bytes())
                .map(|bytes| Some(Cow::Owned(bytes)))
                .map_err(|error| format!("is not valid base64: {error}"))
        }
    }
}

/// The contents of a JSON string, or `None` if `text` is not a string.
pub(crate) fn json_string(text: &str) -> Option<Cow<'_, str>> {
    if let Some(inner) = text.strip_prefix('"').and_then(|t| t.strip_suffix('"'))
        && !inner.contains('\\')
    {
        return Some(Cow::Borrowed(inner));
    }
    serde_json::from_str::<String>(text).ok().map(Cow::Owned)
}

/// What kind of JSON value `text` is, for messages.
pub(crate) fn kind(text: &str) -> &'static str {
    match text.as_bytes().first() {
        Some(b'{') => "an object",
        Some(b'[') => "an array",
        Some(b't' | b'f') => "a boolean",
        _ => "a number",
    }
}

/// Valid JSON text without the whitespace outside its strings: the same value, written as
/// compactly as a JSON serializer would, with key order and number spelling kept.
pub(crate) fn compact_json(text: &str) -> Cow<'_, [u8]> {
    let bytes = text.as_bytes();
    let is_space = |b: &u8| matches!(b, b' ' | b'\n' | b'\r' | b'\t');
    if !bytes.iter().any(is_space) {
        return Cow::Borrowed(bytes);
    }
    let mut out = Vec::with_capacity(bytes.len());
    let (mut in_string, mut escaped) = (false, false);
    for &byte in bytes {
        if in_string {
            out.push(byte);
            if escaped {
                escaped = false;
            } else if byte == b'\\' {
                escaped = true;
            } else if byte == b'"' {
                in_string = false;
            }
        } else if !is_space(&byte) {
            in_string = byte == b'"';
            out.push(byte);
        }
    }
    Cow::Owned(out)
}

#[cfg(test)]
mod tests {
    use http::StatusCode;

    use super::*;
    use crate::response::ErrorReason;

    fn parse(format: EmbeddedFormat, body: &str) -> Result<Vec<Record<'_>>, ApiError> {
        parse_records(format, body.as_bytes(), 3)
    }

    fn bytes(record: &Record<'_>) -> (Option<String>, Option<String>) {
        let text = |b: &Option<Cow<'_, [u8]>>| {
            b.as_ref()
                .map(|b| String::from_utf8(b.to_vec()).expect("UTF-8"))
        };
        (text(&record.key), text(&record.value))
    }

    #[test]
    fn content_types_name_the_format() {
        assert_eq!(
            EmbeddedFormat::from_content_type(Some("application/vnd.kafka.json.v2+json")),
            Ok(EmbeddedFormat::Json)
        );
        assert_eq!(
            EmbeddedFormat::from_content_type(Some(
                "Application/VND.Kafka.Binary.v2+JSON; charset=utf-8"
            )),
            Ok(EmbeddedFormat::Binary)
        );
    }

    #[test]
    fn other_content_types_are_415_with_the_accepted_ones() {
        for content_type in [
            None,
            Some("application/json"),
            Some("application/vnd.kafka.avro.v2+json"),
            Some("application/vnd.kafka.json.v1+json"),
            Some("text/plain"),
        ] {
            let error = EmbeddedFormat::from_content_type(content_type).unwrap_err();
            assert_eq!(error.status, StatusCode::UNSUPPORTED_MEDIA_TYPE);
            assert_eq!(error.error_code, 415);
            assert!(
                error.message.contains(JSON_CONTENT_TYPE)
                    && error.message.contains(BINARY_CONTENT_TYPE),
                "{}",
                error.message
            );
        }
    }

    #[test]
    fn json_records_are_sent_as_compact_json_text() {
        let body = r#"{"records": [
            {"key": "k1", "value": {"a": [1, 2.50, "x y"], "b\"": {"c" :null}}},
            {"value": 12345678901234567890123, "partition": 2},
            {"key": null, "value": null},
            {}
        ]}"#;
        let records = parse_records(EmbeddedFormat::Json, body.as_bytes(), 10).unwrap();
        assert_eq!(records.len(), 4);
        assert_eq!(
            bytes(&records[0]),
            (
                Some(r#""k1""#.into()),
                Some(r#"{"a":[1,2.50,"x y"],"b\"":{"c":null}}"#.into())
            )
        );
        assert_eq!(records[0].partition, None);
        assert_eq!(
            bytes(&records[1]),
            (None, Some("12345678901234567890123".into()))
        );
        assert_eq!(records[1].partition, Some(2));
        assert_eq!(bytes(&records[2]), (None, None));
        assert_eq!(bytes(&records[3]), (None, None));
        assert!(
            matches!(records[1].value, Some(Cow::Borrowed(_))),
            "compact text is not copied"
        );
    }

    #[test]
    fn binary_records_are_sent_decoded() {
        let body = r#"{"records": [
            {"key": "a2V5", "value": "AAEC/w=="},
            {"value": "AAEC/w"},
            {"value": "\u0041AEC/w=="}
        ]}"#;
        let records = parse(EmbeddedFormat::Binary, body).unwrap();
        assert_eq!(records[0].key.as_deref(), Some(&b"key"[..]));
        for record in &records {
            assert_eq!(record.value.as_deref(), Some(&[0u8, 1, 2, 255][..]));
        }
    }

    #[test]
    fn bad_json_is_400() {
        let error = parse(EmbeddedFormat::Json, r#"{"records": [{"value": 1}"#).unwrap_err();
        assert_eq!(
            (error.status, error.error_code, error.reason),
            (StatusCode::BAD_REQUEST, 400, ErrorReason::MalformedJson)
        );
        assert!(
            error
                .message
                .starts_with("the request body is not valid JSON")
        );
        let error = parse(EmbeddedFormat::Json, "").unwrap_err();
        assert_eq!(error.error_code, 400);
    }

    #[test]
    fn json_that_is_not_a_produce_request_is_422() {
        for (body, expected) in [
            (r#"{"value": 1}"#, "unknown field `value`"),
            (r#"{}"#, "missing field `records`"),
            (r#"{"records": {}}"#, "invalid type"),
            (
                r#"{"records": [{"value": 1, "partition": "1"}]}"#,
                "invalid type",
            ),
            (r#"{"records": [{"valu": 1}]}"#, "unknown field `valu`"),
            (r#"[1]"#, "invalid type"),
            // The array form of the request and of a record, which serde's structs also take.
            (r#"[[[]]]"#, "expected a JSON object"),
            (r#"{"records": [[1, 2, 0]]}"#, "expected a JSON object"),
        ] {
            let error = parse(EmbeddedFormat::Json, body).unwrap_err();
            assert_eq!(
                (error.status, error.error_code, error.reason),
                (
                    StatusCode::UNPROCESSABLE_ENTITY,
                    422,
                    ErrorReason::InvalidRequest
                ),
                "{body}"
            );
            assert!(
                error.message.contains(expected),
                "{body}: {}",
                error.message
            );
        }
    }

    #[test]
    fn empty_records_are_422() {
        let error = parse(EmbeddedFormat::Binary, r#"{"records": []}"#).unwrap_err();
        assert_eq!(
            (error.error_code, error.reason),
            (422, ErrorReason::InvalidRequest)
        );
        assert!(error.message.contains("no records"), "{}", error.message);
    }

    #[test]
    fn a_negative_partition_is_422() {
        let error = parse(
            EmbeddedFormat::Json,
            r#"{"records": [{"value": 1}, {"value": 2, "partition": -1}]}"#,
        )
        .unwrap_err();
        assert_eq!(error.error_code, 422);
        assert!(
            error.message.starts_with("records[1].partition is -1"),
            "{}",
            error.message
        );
    }

    #[test]
    fn bad_base64_is_42201_for_keys_and_42202_for_values() {
        let error = parse(
            EmbeddedFormat::Binary,
            r#"{"records": [{"value": "AA=="}, {"key": "not base64!", "value": "AA=="}]}"#,
        )
        .unwrap_err();
        assert_eq!(
            (error.status, error.error_code, error.reason),
            (
                StatusCode::UNPROCESSABLE_ENTITY,
                42201,
                ErrorReason::InvalidKey
            )
        );
        assert!(
            error
                .message
                .starts_with("records[1].key is not valid base64"),
            "{}",
            error.message
        );
        let error = parse(EmbeddedFormat::Binary, r#"{"records": [{"value": "A"}]}"#).unwrap_err();
        assert_eq!(
            (error.error_code, error.reason),
            (42202, ErrorReason::InvalidValue)
        );
        assert!(
            error
                .message
                .starts_with("records[0].value is not valid base64")
        );
        let error = parse(
            EmbeddedFormat::Binary,
            r#"{"records": [{"value": {"a": 1}}]}"#,
        )
        .unwrap_err();
        assert_eq!(error.error_code, 42202);
        assert_eq!(
            error.message,
            "records[0].value must be a base64 string or null, not an object"
        );
    }

    #[test]
    fn too_many_records_is_413_naming_the_limit() {
        let error = parse(
            EmbeddedFormat::Json,
            r#"{"records": [{"value": 1}, {"value": 2}, {"value": 3}, {"value": 4}]}"#,
        )
        .unwrap_err();
        assert_eq!(
            (error.status, error.error_code, error.reason),
            (
                StatusCode::PAYLOAD_TOO_LARGE,
                413,
                ErrorReason::TooManyRecords
            )
        );
        assert!(error.message.contains("limit of 3"), "{}", error.message);
    }

    #[test]
    fn compacting_keeps_strings_and_escapes() {
        assert_eq!(
            compact_json("{ \"a b\\\" c\" : [ 1 ,\n\t\"\\\\\" ] }").as_ref(),
            br#"{"a b\" c":[1,"\\"]}"#
        );
    }
}
