//! The sink worker, which copies a Topic into the lake.
//!
//! [`worker`] is the Kafka consumer loop. Its parts: [`config`] is the document the operator
//! resolves for a Sink; [`template`] renders a record's partition path from
//! `spec.partitioning` (its field values and its time), and [`keys`] names the objects and
//! finds, in a listing, the newest object of a partition, which is where a restarted worker
//! resumes. [`batch`] buffers each partition's records and decides when they are flushed: by
//! count, size, wall-clock age or the process's memory budget. [`store`] opens the destination
//! (`s3://` or `file://`) through `object_store`, encodes JSON-lines objects, uploads them
//! (multipart above a threshold) and lists a prefix; [`parquet`] encodes Parquet objects.
//! [`transform`] runs a Sink's SQL transform over each flush's records.
//! [`metrics`] counts what the worker does. [`kinesis`] reads a Kinesis stream instead of a
//! topic, naming its objects with [`kinesis_keys`] and sharing the shards with the Sink's
//! other workers through [`kinesis_leases`] (decision 0042).

pub mod batch;
pub mod config;
pub mod keys;
pub mod kinesis;
pub mod kinesis_keys;
pub mod kinesis_leases;
pub mod metrics;
pub mod parquet;
pub mod pipeline;
pub mod store;
pub mod template;
pub mod transform;
pub mod worker;
