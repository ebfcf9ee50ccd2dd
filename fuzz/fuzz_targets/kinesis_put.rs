//! A Kinesis put request: a PutRecord or PutRecords body through `parse_put_record` /
//! `parse_put_records`, and records into PutRecords calls with `calls`.
//!
//! The input's first byte chooses what is fuzzed (its low two bits), the `Data` format (bit 2:
//! JSON, else base64) and `max_records` (the other five, 0 to 31); the rest is the body:
//!
//! | low bits | |
//! |---|---|
//! | 0 | a PutRecord body for the stream `pin` |
//! | 1, 3 | a PutRecords body for the stream `pin` |
//! | 2 | not a body: each two bytes are the size of one record, split into calls |
//!
//! Whatever the input, nothing panics, and every refusal is a 4xx error that answers. A record
//! that parses has a partition key of 1 to 256 characters, an explicit hash key that is a
//! 128-bit number, JSON text as data with the JSON format, and a size of at most 1 MiB; a
//! PutRecords request has 1 to `max_records` of them. The calls cover all records in order,
//! each with 1 to 500 records and at most 5 MiB.

#![no_main]

use std::borrow::Cow;

use axum_core::response::IntoResponse;
use libfuzzer_sys::fuzz_target;
use serde_json::value::RawValue;
use tributary_gateway_wire::kinesis_request::{
    DataFormat, KinesisRecord, MAX_CALL_BYTES, MAX_PARTITION_KEY_CHARS, MAX_RECORD_BYTES,
    MAX_RECORDS_PER_CALL, calls, parse_put_record, parse_put_records,
};
use tributary_gateway_wire::response::ApiError;

/// The data of the synthetic records, borrowed so that sizes cost nothing to fuzz.
static ZEROS: [u8; MAX_RECORD_BYTES] = [0; MAX_RECORD_BYTES];

fuzz_target!(|input: &[u8]| {
    let Some((&header, body)) = input.split_first() else {
        return;
    };
    let format = if header & 4 == 0 {
        DataFormat::Json
    } else {
        DataFormat::Base64
    };
    let max_records = usize::from(header >> 3);
    match header & 3 {
        0 => match parse_put_record(format, body, "pin") {
            Ok(record) => check_record(format, &record),
            Err(error) => answers(error),
        },
        2 => check_calls(&synthetic(body)),
        _ => match parse_put_records(format, body, "pin", max_records) {
            Ok(records) => {
                assert!(!records.is_empty() && records.len() <= max_records);
                records.iter().for_each(|r| check_record(format, r));
                check_calls(&records);
            }
            Err(error) => answers(error),
        },
    }
});

/// A refusal is a client error, and turns into an answer.
fn answers(error: ApiError) {
    assert!(error.status.is_client_error(), "{error:?}");
    assert!(!error.message.is_empty());
    let status = error.status;
    assert_eq!(error.into_response().status(), status);
}

fn check_record(format: DataFormat, record: &KinesisRecord<'_>) {
    let chars = record.partition_key.chars().count();
    assert!((1..=MAX_PARTITION_KEY_CHARS).contains(&chars), "{chars}");
    assert!(record.size() <= MAX_RECORD_BYTES);
    if let Some(hash_key) = &record.explicit_hash_key {
        assert!(hash_key.parse::<u128>().is_ok(), "{hash_key:?}");
    }
    if format == DataFormat::Json {
        let text = std::str::from_utf8(&record.data).expect("compact JSON is UTF-8");
        serde_json::from_str::<&RawValue>(text).expect("compact JSON parses");
    }
}

/// Records of the sizes the input spells, two bytes each (1 byte to 1 MiB).
fn synthetic(input: &[u8]) -> Vec<KinesisRecord<'static>> {
    input
        .chunks_exact(2)
        .map(|pair| {
            let units = usize::from(u16::from_le_bytes([pair[0], pair[1]]));
            let size = (units * (MAX_RECORD_BYTES / 65536)).clamp(1, MAX_RECORD_BYTES);
            KinesisRecord {
                data: Cow::Borrowed(&ZEROS[..size - 1]),
                partition_key: Cow::Borrowed("k"),
                explicit_hash_key: None,
            }
        })
        .collect()
}

fn check_calls(records: &[KinesisRecord<'_>]) {
    let mut next = 0;
    for call in calls(records) {
        assert_eq!(call.start, next, "calls are contiguous");
        assert!(!call.is_empty() && call.len() <= MAX_RECORDS_PER_CALL);
        let bytes: usize = records[call.clone()].iter().map(KinesisRecord::size).sum();
        assert!(bytes <= MAX_CALL_BYTES, "{bytes}");
        next = call.end;
    }
    assert_eq!(next, records.len(), "calls cover every record");
}
