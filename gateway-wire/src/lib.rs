//! The gateway's wire formats, apart from the workers so they build (and are fuzzed) without
//! Kafka, AWS or DataFusion: a Kafka REST proxy produce body ([`request`]) or a Kinesis
//! PutRecord / PutRecords body ([`kinesis_request`]) parsed into the records to send, and the
//! answers and errors in the REST proxy's shapes ([`response`]). Pure: no I/O.
//!
//! `tributary_workers::gateway` re-exports the three modules under the same names.

pub mod kinesis_request;
pub mod request;
pub mod response;
