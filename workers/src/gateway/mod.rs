//! The gateway: HTTP ingest compatible with the Kafka REST Proxy v2 produce API
//! (`POST /topics/{topic}`), in front of one idempotent Kafka producer.
//!
//! A request goes through [`server`]: the API key is checked ([`auth`]), the topic must be one
//! of the `Topic` objects the gateway serves ([`topics`], a reflector, so requests never call
//! the API server), the body is read within its size limit and parsed into records
//! ([`request`]), the records are produced concurrently and awaited ([`producer`]), and the
//! answer lists each record's partition and offset or its error ([`response`]). [`config`]
//! holds the limits, [`metrics`] counts requests, records and errors.

pub mod auth;
pub mod config;
pub mod kinesis;
pub mod metrics;
pub mod producer;
pub mod served;
pub mod server;

// The wire formats live in their own small crate so the fuzz targets build without the workers.
pub use tributary_gateway_wire::{kinesis_request, request, response};
