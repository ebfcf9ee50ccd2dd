//! A REST proxy produce request: its Content-Type and body through
//! `EmbeddedFormat::from_content_type` and `parse_records`.
//!
//! The input's first byte chooses the Content-Type (its low two bits) and `max_records` (the
//! other six, 0 to 63); the rest is the body:
//!
//! | low bits | Content-Type |
//! |---|---|
//! | 0 | the JSON type |
//! | 1 | the binary type |
//! | 2 | none |
//! | 3 | the text up to the first newline, and the body after it |
//!
//! Whatever the input, nothing panics, and every refusal is a 4xx error that answers. A request
//! that parses has 1 to `max_records` records, one per entry of `records` in order, with the
//! entry's partition; with the JSON type each key and value is JSON text of the same value as in
//! the body, with the binary type the bytes its base64 string decodes to.

#![no_main]

use axum_core::response::IntoResponse;
use base64::Engine;
use base64::engine::general_purpose::STANDARD_NO_PAD;
use libfuzzer_sys::fuzz_target;
use serde_json::Value;
use serde_json::value::RawValue;
use tributary_gateway_wire::request::{
    BINARY_CONTENT_TYPE, EmbeddedFormat, JSON_CONTENT_TYPE, Record, parse_records,
};
use tributary_gateway_wire::response::ApiError;

fuzz_target!(|input: &[u8]| {
    let Some((&header, rest)) = input.split_first() else {
        return;
    };
    let max_records = usize::from(header >> 2);
    let (content_type, body) = match header & 3 {
        0 => (Some(JSON_CONTENT_TYPE.to_owned()), rest),
        1 => (Some(BINARY_CONTENT_TYPE.to_owned()), rest),
        2 => (None, rest),
        _ => {
            let end = rest.iter().position(|&b| b == b'\n').unwrap_or(rest.len());
            let line = String::from_utf8_lossy(&rest[..end]).into_owned();
            (Some(line), rest.get(end + 1..).unwrap_or_default())
        }
    };
    let format = match EmbeddedFormat::from_content_type(content_type.as_deref()) {
        Ok(format) => {
            let essence = content_type.as_deref().map(|c| {
                c.split(';')
                    .next()
                    .unwrap_or_default()
                    .trim()
                    .to_ascii_lowercase()
            });
            let expected = match format {
                EmbeddedFormat::Json => JSON_CONTENT_TYPE,
                EmbeddedFormat::Binary => BINARY_CONTENT_TYPE,
            };
            assert_eq!(essence.as_deref(), Some(expected));
            format
        }
        Err(error) => {
            assert_eq!(error.error_code, 415);
            answers(error);
            return;
        }
    };
    match parse_records(format, body, max_records) {
        Ok(records) => check(format, body, max_records, &records),
        Err(error) => answers(error),
    }
});

/// A refusal is a client error, and turns into an answer.
fn answers(error: ApiError) {
    assert!(error.status.is_client_error(), "{error:?}");
    assert!(!error.message.is_empty());
    let status = error.status;
    assert_eq!(error.into_response().status(), status);
}

fn check(format: EmbeddedFormat, body: &[u8], max_records: usize, records: &[Record<'_>]) {
    assert!(!records.is_empty() && records.len() <= max_records);
    for record in records {
        assert!(record.partition.is_none_or(|p| p >= 0));
        if format == EmbeddedFormat::Json {
            for bytes in [&record.key, &record.value].into_iter().flatten() {
                let text = std::str::from_utf8(bytes).expect("compact JSON is UTF-8");
                serde_json::from_str::<&RawValue>(text).expect("compact JSON parses");
            }
        }
    }
    // The body as a whole, to compare entry by entry; a body nested deeper than serde_json's
    // recursion limit (which borrowed raw values do not have) is left at the checks above.
    let Ok(parsed) = serde_json::from_slice::<Value>(body) else {
        return;
    };
    let entries = parsed["records"].as_array().expect("records is an array");
    assert_eq!(entries.len(), records.len());
    for (entry, record) in entries.iter().zip(records) {
        assert_eq!(
            entry.get("partition").and_then(Value::as_i64),
            record.partition.map(i64::from)
        );
        for (field, bytes) in [("key", &record.key), ("value", &record.value)] {
            let sent = entry.get(field).filter(|v| !v.is_null());
            match format {
                EmbeddedFormat::Json => {
                    let text = bytes.as_deref().map(serde_json::from_slice::<Value>);
                    match (sent, text) {
                        (None, None) => {}
                        (Some(sent), Some(Ok(text))) => assert_eq!(sent, &text),
                        (sent, text) => panic!("{field}: {sent:?} was sent as {text:?}"),
                    }
                }
                EmbeddedFormat::Binary => {
                    let sent = sent.map(|v| v.as_str().expect("a base64 string"));
                    let encoded = bytes.as_deref().map(|b| STANDARD_NO_PAD.encode(b));
                    assert_eq!(
                        sent.map(|s| s.trim_end_matches('=')),
                        encoded.as_deref(),
                        "{field}"
                    );
                }
            }
        }
    }
}
