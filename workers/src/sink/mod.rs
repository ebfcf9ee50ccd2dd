//! The sink worker, which copies a Topic or a Stream into the lake.
//!
//! So far the pure parts that decide where a record's object goes, with no Kafka and no S3:
//! [`template`] renders a record's partition path from `spec.partitioning` (its field values
//! and its time), and [`keys`] names the objects and finds, in a listing, the newest object of
//! a partition, which is where a restarted worker resumes. [`batch`] buffers each partition's
//! records and decides when they are flushed: by count, size, wall-clock age or the process's
//! memory budget.

pub mod batch;
pub mod keys;
pub mod template;
