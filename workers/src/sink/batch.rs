//! Batching: which records of a partition go into one flush, and when. Pure bookkeeping — no
//! Kafka, no S3, no timers: every operation is given the time, so the worker owns the clock
//! and the tests are deterministic.
//!
//! # Triggers
//!
//! Each Kafka partition has its own buffer, and whichever of `spec.batch`'s limits
//! ([`Limits`]) comes first flushes it:
//!
//! - **`maxRecords`**: the record that brings the buffer to `maxRecords` is flushed with it.
//! - **`maxBytes`**: a batch never holds more than `maxBytes` payload bytes. A record that
//!   would take a non-empty buffer past `maxBytes` flushes the buffer without it and starts the
//!   next batch; a buffer that reaches `maxBytes` exactly is flushed at once. A single record
//!   larger than `maxBytes` is the one exception: it becomes a batch of its own, flushed at
//!   once. When one record reaches `maxRecords` and `maxBytes` together, the trigger is
//!   [`Trigger::MaxRecords`].
//! - **`maxAge`**: wall-clock time since the buffer's oldest record was pushed, not record
//!   time, so an idle partition still flushes. [`Batcher::due`] hands out the buffers that are
//!   at least `maxAge` old and [`Batcher::next_deadline`] says when to ask again.
//! - **`memoryBudgetBytes`**: one budget for all the worker's buffers. When a push takes the
//!   total past it, the largest buffer is flushed, then the next largest, until the total is
//!   within the budget again — so memory is bounded by the budget, not by the partition count
//!   times `maxBytes` (the heap formula Kafka Connect's S3 sink users must apply). Ties go to
//!   the lowest partition number. As every push ends within the budget, one flush is in fact
//!   always enough: the largest buffer is at least as large as the record just pushed.
//!
//! Flushing by wall clock is safe for exactly-once because object names carry the batch's
//! offset range and recovery re-reads exactly the newest range (decision 0010).
//!
//! # Offsets, re-delivery and revocation
//!
//! A partition's offsets must increase; gaps are fine (compaction, transaction markers). A
//! record at or below the highest offset the partition has taken since it was assigned —
//! buffered or already flushed — is a re-delivery, and [`Batcher::push`] drops it and answers
//! [`Redelivered`] for the worker to count: taking it would put one offset into two batches,
//! whose objects would then overlap.
//!
//! When Kafka revokes partitions, [`Batcher::revoke`] hands back their unflushed buffers and
//! forgets the partitions, positions included. The worker decides what the buffers become:
//! upload them and commit before the rebalance completes, or drop them without committing,
//! and the next owner reads them again from the last commit. Never commit a revoked buffer
//! that was not uploaded. A partition assigned again starts afresh at any offset, which is
//! also how the worker reads a partition again from an earlier offset: revoke it, then seek.
//!
//! # Cost
//!
//! A push costs O(log p) for p partitions (a map lookup and the age index), plus a scan of
//! the partitions for each buffer the memory budget flushes. A worker holds few partitions
//! (well under a thousand), and each such scan frees the largest buffer, at least the
//! average one.

use std::collections::{BTreeMap, BTreeSet};
use std::ops::RangeInclusive;
use std::time::{Duration, Instant};

use tributary_crds::duration::{DurationError, parse_duration};
use tributary_crds::sink::SinkBatch;

/// The limits of a Sink's batches: `spec.batch`, checked and in Rust's units.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Limits {
    /// Records per batch at most.
    pub max_records: usize,
    /// Payload bytes per batch at most (a single larger record is a batch of its own).
    pub max_bytes: usize,
    /// How long the oldest buffered record may wait.
    pub max_age: Duration,
    /// Payload bytes buffered over all partitions at most.
    pub memory_budget_bytes: usize,
}

/// Why `spec.batch` cannot be used.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum LimitsError {
    /// `maxAge` is not a duration.
    #[error("batch.maxAge: {0}")]
    MaxAge(#[source] DurationError),
    /// A count or size below 1 (the CRD's schema refuses these too).
    #[error("batch.{field} is {value}; it must be at least 1")]
    NotPositive {
        /// The field's name in the spec.
        field: &'static str,
        /// Its value.
        value: i64,
    },
}

impl Limits {
    /// The limits `spec.batch` sets.
    pub fn from_spec(spec: &SinkBatch) -> Result<Self, LimitsError> {
        let positive = |field, value: i64| {
            usize::try_from(value)
                .ok()
                .filter(|&value| value > 0)
                .ok_or(LimitsError::NotPositive { field, value })
        };
        Ok(Self {
            max_records: positive("maxRecords", spec.max_records)?,
            max_bytes: positive("maxBytes", spec.max_bytes)?,
            max_age: parse_duration(&spec.max_age).map_err(LimitsError::MaxAge)?,
            memory_budget_bytes: positive("memoryBudgetBytes", spec.memory_budget_bytes)?,
        })
    }
}

/// What a record counts for in `maxBytes` and the memory budget.
pub trait Payload {
    /// The bytes this payload holds: for a raw Kafka value, its length.
    fn size_bytes(&self) -> usize;
}

impl Payload for Vec<u8> {
    fn size_bytes(&self) -> usize {
        self.len()
    }
}

/// One record of a Kafka partition, as the worker pushes it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Record<T> {
    /// The Kafka partition.
    pub partition: i32,
    /// Its offset in the partition.
    pub offset: u64,
    /// What is written: the raw value, or whatever the worker keeps of the record.
    pub payload: T,
}

/// Why a batch was flushed, for the `trigger` label of the flush metrics.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Trigger {
    /// The buffer reached `maxRecords`.
    MaxRecords,
    /// The buffer reached `maxBytes`, or the next record would have taken it past.
    MaxBytes,
    /// The oldest record waited `maxAge`.
    MaxAge,
    /// The buffers together went past `memoryBudgetBytes` and this one was the largest.
    MemoryBudget,
    /// Kafka revoked the partition: the buffer was not flushed, see [`Batcher::revoke`].
    Revoked,
    /// The worker is stopping.
    Shutdown,
    /// Not the batcher's: the worker rewrote the newest range it found in the lake when the
    /// partition was assigned (decision 0010).
    Recovery,
}

impl Trigger {
    /// The metric label: `max_records`, `max_bytes`, `max_age`, `memory_budget`, `revoked`,
    /// `shutdown` or `recovery`.
    pub fn label(self) -> &'static str {
        match self {
            Self::MaxRecords => "max_records",
            Self::MaxBytes => "max_bytes",
            Self::MaxAge => "max_age",
            Self::MemoryBudget => "memory_budget",
            Self::Revoked => "revoked",
            Self::Shutdown => "shutdown",
            Self::Recovery => "recovery",
        }
    }
}

/// The records of one partition that leave the buffer together: one flush, one offset range.
/// Never empty.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Batch<T> {
    partition: i32,
    trigger: Trigger,
    offsets: RangeInclusive<u64>,
    bytes: usize,
    records: Vec<Record<T>>,
}

impl<T> Batch<T> {
    /// The Kafka partition.
    pub fn partition(&self) -> i32 {
        self.partition
    }

    /// Why it was flushed.
    pub fn trigger(&self) -> Trigger {
        self.trigger
    }

    /// The payload bytes of its records.
    pub fn bytes(&self) -> usize {
        self.bytes
    }

    /// Its records, in offset order.
    pub fn records(&self) -> &[Record<T>] {
        &self.records
    }

    /// Its records, in offset order, to write.
    pub fn into_records(self) -> Vec<Record<T>> {
        self.records
    }

    /// The offset of its first record.
    pub fn first_offset(&self) -> u64 {
        *self.offsets.start()
    }

    /// The offset of its last record.
    pub fn last_offset(&self) -> u64 {
        *self.offsets.end()
    }

    /// `first_offset..=last_offset`, the range its objects are named with
    /// ([`super::keys::SourcePartition::object_key`]).
    pub fn offsets(&self) -> RangeInclusive<u64> {
        self.offsets.clone()
    }
}

/// A record dropped because its partition already took its offset or a later one: a
/// re-delivery (after a seek or a consumer restart). Count it; nothing else is needed.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[error(
    "partition {partition}: offset {offset} is not after {last_offset}, which was already taken; dropped as a re-delivery"
)]
pub struct Redelivered {
    /// The Kafka partition.
    pub partition: i32,
    /// The dropped record's offset.
    pub offset: u64,
    /// The highest offset the partition took.
    pub last_offset: u64,
}

/// The buffers of all partitions of one worker process.
#[derive(Debug)]
pub struct Batcher<T> {
    limits: Limits,
    partitions: BTreeMap<i32, PartitionState<T>>,
    /// `(started, partition)` of every non-empty buffer, oldest first.
    ages: BTreeSet<(Instant, i32)>,
    buffered_bytes: usize,
}

#[derive(Debug)]
struct PartitionState<T> {
    /// The highest offset taken since the partition was assigned.
    last_offset: Option<u64>,
    /// `None` when empty, so that an empty buffer has no age.
    buffer: Option<Buffer<T>>,
}

impl<T> Default for PartitionState<T> {
    fn default() -> Self {
        Self {
            last_offset: None,
            buffer: None,
        }
    }
}

#[derive(Debug)]
struct Buffer<T> {
    /// Never empty.
    records: Vec<Record<T>>,
    bytes: usize,
    /// When its oldest record was pushed.
    started: Instant,
}

impl<T: Payload> Batcher<T> {
    /// Empty buffers with `limits`.
    pub fn new(limits: Limits) -> Self {
        Self {
            limits,
            partitions: BTreeMap::new(),
            ages: BTreeSet::new(),
            buffered_bytes: 0,
        }
    }

    /// Buffer `record`, pushed at `now`, and hand out the batches it completes, in the order
    /// they were flushed: its partition's by `maxBytes` or `maxRecords`, then the largest
    /// buffers while the memory budget is exceeded. A re-delivered record is dropped.
    pub fn push(&mut self, record: Record<T>, now: Instant) -> Result<Vec<Batch<T>>, Redelivered> {
        let Self {
            limits,
            partitions,
            ages,
            buffered_bytes,
        } = self;
        let partition = record.partition;
        let size = record.payload.size_bytes();
        let state = partitions.entry(partition).or_default();
        if let Some(last_offset) = state.last_offset
            && record.offset <= last_offset
        {
            return Err(Redelivered {
                partition,
                offset: record.offset,
                last_offset,
            });
        }
        state.last_offset = Some(record.offset);

        let mut flushes = Vec::new();
        if state
            .buffer
            .as_ref()
            .is_some_and(|buffer| buffer.bytes + size > limits.max_bytes)
        {
            flushes.extend(close(
                &mut state.buffer,
                partition,
                Trigger::MaxBytes,
                ages,
                buffered_bytes,
            ));
        }
        let buffer = state.buffer.get_or_insert_with(|| {
            ages.insert((now, partition));
            Buffer {
                records: Vec::new(),
                bytes: 0,
                started: now,
            }
        });
        buffer.records.push(record);
        buffer.bytes += size;
        *buffered_bytes += size;
        let full = if buffer.records.len() >= limits.max_records {
            Some(Trigger::MaxRecords)
        } else if buffer.bytes >= limits.max_bytes {
            Some(Trigger::MaxBytes)
        } else {
            None
        };
        if let Some(trigger) = full {
            flushes.extend(close(
                &mut state.buffer,
                partition,
                trigger,
                ages,
                buffered_bytes,
            ));
        }

        while self.buffered_bytes > self.limits.memory_budget_bytes
            && let Some(largest) = self.largest()
        {
            flushes.extend(self.take(largest, Trigger::MemoryBudget));
        }
        Ok(flushes)
    }

    /// The buffers whose oldest record was pushed at least `maxAge` before `now`, oldest first.
    pub fn due(&mut self, now: Instant) -> Vec<Batch<T>> {
        let mut flushes = Vec::new();
        while let Some(&(started, partition)) = self.ages.first()
            && now.saturating_duration_since(started) >= self.limits.max_age
        {
            self.ages.pop_first();
            flushes.extend(self.take(partition, Trigger::MaxAge));
        }
        flushes
    }

    /// When the oldest buffer becomes due: the time for the worker's timer to call
    /// [`Batcher::due`]. `None` when nothing is buffered, or when `maxAge` reaches beyond what
    /// the clock can represent (then age never flushes).
    pub fn next_deadline(&self) -> Option<Instant> {
        let &(started, _) = self.ages.first()?;
        started.checked_add(self.limits.max_age)
    }

    /// Forget `partitions`, which Kafka revoked, and hand back their unflushed buffers as
    /// [`Trigger::Revoked`] batches. Upload them and commit before the rebalance completes, or
    /// drop them without committing — never commit what was not uploaded.
    #[must_use = "upload the revoked buffers before the rebalance completes, or drop them without committing"]
    pub fn revoke(&mut self, partitions: impl IntoIterator<Item = i32>) -> Vec<Batch<T>> {
        partitions
            .into_iter()
            .filter_map(|partition| {
                let mut state = self.partitions.remove(&partition)?;
                close(
                    &mut state.buffer,
                    partition,
                    Trigger::Revoked,
                    &mut self.ages,
                    &mut self.buffered_bytes,
                )
            })
            .collect()
    }

    /// Hand out every buffer as a [`Trigger::Shutdown`] batch, in partition order, for a
    /// graceful stop. The partitions' positions stay, so re-deliveries are still dropped.
    pub fn drain_all(&mut self) -> Vec<Batch<T>> {
        let Self {
            partitions,
            ages,
            buffered_bytes,
            ..
        } = self;
        partitions
            .iter_mut()
            .filter_map(|(&partition, state)| {
                close(
                    &mut state.buffer,
                    partition,
                    Trigger::Shutdown,
                    ages,
                    buffered_bytes,
                )
            })
            .collect()
    }

    /// The payload bytes buffered over all partitions: never more than the memory budget
    /// after a push.
    pub fn buffered_bytes(&self) -> usize {
        self.buffered_bytes
    }

    /// The partition with the largest buffer; on a tie the lowest partition number. A scan:
    /// it only runs when the budget is exceeded, and the partitions are few.
    fn largest(&self) -> Option<i32> {
        let mut largest: Option<(usize, i32)> = None;
        for (&partition, state) in &self.partitions {
            if let Some(buffer) = &state.buffer
                && largest.is_none_or(|(bytes, _)| buffer.bytes > bytes)
            {
                largest = Some((buffer.bytes, partition));
            }
        }
        largest.map(|(_, partition)| partition)
    }

    fn take(&mut self, partition: i32, trigger: Trigger) -> Option<Batch<T>> {
        let state = self.partitions.get_mut(&partition)?;
        close(
            &mut state.buffer,
            partition,
            trigger,
            &mut self.ages,
            &mut self.buffered_bytes,
        )
    }
}

/// Empty `buffer` into a batch, keeping the age index and the byte total in step.
fn close<T>(
    buffer: &mut Option<Buffer<T>>,
    partition: i32,
    trigger: Trigger,
    ages: &mut BTreeSet<(Instant, i32)>,
    buffered_bytes: &mut usize,
) -> Option<Batch<T>> {
    let buffer = buffer.take()?;
    let offsets = buffer.records.first()?.offset..=buffer.records.last()?.offset;
    ages.remove(&(buffer.started, partition));
    *buffered_bytes -= buffer.bytes;
    Some(Batch {
        partition,
        trigger,
        offsets,
        bytes: buffer.bytes,
        records: buffer.records,
    })
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeMap;

    use super::*;
    use crate::sink::keys::{Extension, SourcePartition};

    /// Limits far from every test's records unless a test lowers one.
    fn limits() -> Limits {
        Limits {
            max_records: 1_000,
            max_bytes: 1_000_000,
            max_age: Duration::from_secs(60),
            memory_budget_bytes: 10_000_000,
        }
    }

    fn batcher(limits: Limits) -> Batcher<Vec<u8>> {
        Batcher::new(limits)
    }

    fn record(partition: i32, offset: u64, bytes: usize) -> Record<Vec<u8>> {
        Record {
            partition,
            offset,
            payload: vec![b'x'; bytes],
        }
    }

    fn push(
        batcher: &mut Batcher<Vec<u8>>,
        record: Record<Vec<u8>>,
        now: Instant,
    ) -> Vec<Batch<Vec<u8>>> {
        let offset = record.offset;
        batcher
            .push(record, now)
            .unwrap_or_else(|e| panic!("offset {offset}: {e}"))
    }

    /// `(partition, offsets, trigger, bytes)` of each batch, for short assertions.
    fn summary<T>(batches: &[Batch<T>]) -> Vec<(i32, RangeInclusive<u64>, Trigger, usize)> {
        batches
            .iter()
            .map(|batch| {
                (
                    batch.partition(),
                    batch.offsets(),
                    batch.trigger(),
                    batch.bytes(),
                )
            })
            .collect()
    }

    fn offsets<T>(batch: &Batch<T>) -> Vec<u64> {
        batch.records().iter().map(|record| record.offset).collect()
    }

    fn secs(start: Instant, seconds: u64) -> Instant {
        start + Duration::from_secs(seconds)
    }

    #[test]
    fn limits_of_the_default_spec() {
        assert_eq!(
            Limits::from_spec(&SinkBatch::default()),
            Ok(Limits {
                max_records: 100_000,
                max_bytes: 64 * 1024 * 1024,
                max_age: Duration::from_secs(60),
                memory_budget_bytes: 256 * 1024 * 1024,
            })
        );
        let spec = SinkBatch {
            max_age: "1m30s".into(),
            ..SinkBatch::default()
        };
        assert_eq!(
            Limits::from_spec(&spec).map(|limits| limits.max_age),
            Ok(Duration::from_secs(90))
        );
    }

    #[test]
    fn a_bad_max_age_is_a_config_error() {
        let spec = SinkBatch {
            max_age: "5d".into(),
            ..SinkBatch::default()
        };
        let error = Limits::from_spec(&spec).expect_err("5d is no duration");
        assert!(matches!(
            &error,
            LimitsError::MaxAge(DurationError::BadUnit { unit, .. }) if unit == "d"
        ));
        assert_eq!(
            error.to_string(),
            r#"batch.maxAge: invalid duration "5d": unknown unit "d" after 5; use ms, s, m or h"#
        );
        assert!(std::error::Error::source(&error).is_some());
    }

    #[test]
    fn limits_below_one_are_config_errors() {
        let cases = [
            (
                SinkBatch {
                    max_records: 0,
                    ..SinkBatch::default()
                },
                "maxRecords",
                0,
            ),
            (
                SinkBatch {
                    max_bytes: -5,
                    ..SinkBatch::default()
                },
                "maxBytes",
                -5,
            ),
            (
                SinkBatch {
                    memory_budget_bytes: 0,
                    ..SinkBatch::default()
                },
                "memoryBudgetBytes",
                0,
            ),
        ];
        for (spec, field, value) in cases {
            assert_eq!(
                Limits::from_spec(&spec),
                Err(LimitsError::NotPositive { field, value })
            );
        }
        assert_eq!(
            LimitsError::NotPositive {
                field: "maxBytes",
                value: -5
            }
            .to_string(),
            "batch.maxBytes is -5; it must be at least 1"
        );
    }

    #[test]
    fn max_records_flushes_with_the_record_that_reaches_it() {
        let t0 = Instant::now();
        let mut batcher = batcher(Limits {
            max_records: 3,
            ..limits()
        });
        assert!(push(&mut batcher, record(0, 10, 5), t0).is_empty());
        assert!(push(&mut batcher, record(0, 11, 5), t0).is_empty());
        let flushed = push(&mut batcher, record(0, 12, 5), t0);
        assert_eq!(summary(&flushed), [(0, 10..=12, Trigger::MaxRecords, 15)]);
        assert_eq!(offsets(&flushed[0]), [10, 11, 12]);
        assert_eq!(batcher.buffered_bytes(), 0);
        assert_eq!(batcher.next_deadline(), None);
    }

    #[test]
    fn max_bytes_reached_exactly_flushes_with_the_record() {
        let t0 = Instant::now();
        let mut batcher = batcher(Limits {
            max_bytes: 10,
            ..limits()
        });
        assert!(push(&mut batcher, record(0, 0, 4), t0).is_empty());
        let flushed = push(&mut batcher, record(0, 1, 6), t0);
        assert_eq!(summary(&flushed), [(0, 0..=1, Trigger::MaxBytes, 10)]);
        assert_eq!(batcher.buffered_bytes(), 0);
    }

    #[test]
    fn the_record_that_would_exceed_max_bytes_starts_the_next_batch() {
        let t0 = Instant::now();
        let mut batcher = batcher(Limits {
            max_bytes: 10,
            ..limits()
        });
        assert!(push(&mut batcher, record(0, 0, 4), t0).is_empty());
        assert!(push(&mut batcher, record(0, 1, 5), t0).is_empty());
        let flushed = push(&mut batcher, record(0, 2, 2), secs(t0, 5));
        assert_eq!(summary(&flushed), [(0, 0..=1, Trigger::MaxBytes, 9)]);
        assert_eq!(batcher.buffered_bytes(), 2);
        // The new batch is as old as the record that started it.
        assert_eq!(batcher.next_deadline(), Some(secs(t0, 65)));
        let drained = batcher.drain_all();
        assert_eq!(summary(&drained), [(0, 2..=2, Trigger::Shutdown, 2)]);
    }

    #[test]
    fn a_record_larger_than_max_bytes_is_a_batch_of_its_own() {
        let t0 = Instant::now();
        let mut batcher = batcher(Limits {
            max_bytes: 10,
            ..limits()
        });
        let alone = push(&mut batcher, record(0, 0, 15), t0);
        assert_eq!(summary(&alone), [(0, 0..=0, Trigger::MaxBytes, 15)]);

        assert!(push(&mut batcher, record(0, 1, 3), t0).is_empty());
        let both = push(&mut batcher, record(0, 2, 15), t0);
        assert_eq!(
            summary(&both),
            [
                (0, 1..=1, Trigger::MaxBytes, 3),
                (0, 2..=2, Trigger::MaxBytes, 15)
            ]
        );
        assert_eq!(batcher.buffered_bytes(), 0);
    }

    #[test]
    fn reaching_both_limits_at_once_counts_as_max_records() {
        let t0 = Instant::now();
        let mut batcher = batcher(Limits {
            max_records: 2,
            max_bytes: 10,
            ..limits()
        });
        assert!(push(&mut batcher, record(0, 0, 5), t0).is_empty());
        let flushed = push(&mut batcher, record(0, 1, 5), t0);
        assert_eq!(summary(&flushed), [(0, 0..=1, Trigger::MaxRecords, 10)]);
    }

    #[test]
    fn empty_payloads_count_records_but_no_bytes() {
        let t0 = Instant::now();
        let mut batcher = batcher(Limits {
            max_records: 2,
            max_bytes: 1,
            ..limits()
        });
        assert!(push(&mut batcher, record(0, 0, 0), t0).is_empty());
        assert_eq!(batcher.buffered_bytes(), 0);
        let flushed = push(&mut batcher, record(0, 1, 0), t0);
        assert_eq!(summary(&flushed), [(0, 0..=1, Trigger::MaxRecords, 0)]);
    }

    #[test]
    fn partitions_fill_separately() {
        let t0 = Instant::now();
        let mut batcher = batcher(Limits {
            max_records: 2,
            ..limits()
        });
        assert!(push(&mut batcher, record(0, 0, 1), t0).is_empty());
        assert!(push(&mut batcher, record(1, 0, 1), t0).is_empty());
        let flushed = push(&mut batcher, record(1, 1, 1), t0);
        assert_eq!(summary(&flushed), [(1, 0..=1, Trigger::MaxRecords, 2)]);
        assert_eq!(batcher.buffered_bytes(), 1);
    }

    #[test]
    fn an_idle_partition_flushes_by_age() {
        let t0 = Instant::now();
        let mut batcher = batcher(limits());
        assert!(push(&mut batcher, record(3, 7, 4), t0).is_empty());
        // Nothing else arrives; only the clock moves.
        assert!(batcher.due(secs(t0, 59)).is_empty());
        let flushed = batcher.due(secs(t0, 60));
        assert_eq!(summary(&flushed), [(3, 7..=7, Trigger::MaxAge, 4)]);
        assert!(batcher.due(secs(t0, 3600)).is_empty());
        assert_eq!(batcher.buffered_bytes(), 0);
    }

    #[test]
    fn age_counts_from_the_oldest_record() {
        let t0 = Instant::now();
        let mut batcher = batcher(limits());
        assert!(push(&mut batcher, record(0, 0, 1), t0).is_empty());
        assert!(push(&mut batcher, record(0, 1, 1), secs(t0, 50)).is_empty());
        let flushed = batcher.due(secs(t0, 60));
        assert_eq!(summary(&flushed), [(0, 0..=1, Trigger::MaxAge, 2)]);

        assert!(push(&mut batcher, record(0, 2, 1), secs(t0, 61)).is_empty());
        assert!(batcher.due(secs(t0, 120)).is_empty());
        assert_eq!(batcher.due(secs(t0, 121)).len(), 1);
    }

    #[test]
    fn due_hands_out_the_oldest_first_and_only_what_is_due() {
        let t0 = Instant::now();
        let mut batcher = batcher(limits());
        assert!(push(&mut batcher, record(5, 0, 1), secs(t0, 10)).is_empty());
        assert!(push(&mut batcher, record(1, 0, 1), secs(t0, 20)).is_empty());
        assert!(push(&mut batcher, record(9, 0, 1), secs(t0, 5)).is_empty());
        assert!(push(&mut batcher, record(2, 0, 1), secs(t0, 40)).is_empty());
        let flushed = batcher.due(secs(t0, 80));
        let partitions: Vec<i32> = flushed.iter().map(Batch::partition).collect();
        assert_eq!(partitions, [9, 5, 1]);
        assert_eq!(batcher.buffered_bytes(), 1);
    }

    #[test]
    fn a_zero_max_age_makes_every_buffer_due_at_once() {
        let t0 = Instant::now();
        let mut batcher = batcher(Limits {
            max_age: Duration::ZERO,
            ..limits()
        });
        assert!(push(&mut batcher, record(0, 0, 1), t0).is_empty());
        assert_eq!(batcher.next_deadline(), Some(t0));
        assert_eq!(batcher.due(t0).len(), 1);
    }

    #[test]
    fn next_deadline_follows_the_oldest_buffer() {
        let t0 = Instant::now();
        let mut batcher = batcher(Limits {
            max_records: 2,
            ..limits()
        });
        assert_eq!(batcher.next_deadline(), None);
        assert!(push(&mut batcher, record(0, 0, 1), secs(t0, 10)).is_empty());
        assert!(push(&mut batcher, record(1, 0, 1), secs(t0, 30)).is_empty());
        assert_eq!(batcher.next_deadline(), Some(secs(t0, 70)));
        // A later record of the oldest buffer does not move its deadline...
        assert_eq!(push(&mut batcher, record(0, 1, 1), secs(t0, 40)).len(), 1);
        // ...but flushing it by size does.
        assert_eq!(batcher.next_deadline(), Some(secs(t0, 90)));
        assert_eq!(batcher.due(secs(t0, 90)).len(), 1);
        assert_eq!(batcher.next_deadline(), None);
    }

    #[test]
    fn a_max_age_beyond_the_clock_never_flushes() {
        let t0 = Instant::now();
        let mut batcher = batcher(Limits {
            max_age: Duration::MAX,
            ..limits()
        });
        assert!(push(&mut batcher, record(0, 0, 1), t0).is_empty());
        assert_eq!(batcher.next_deadline(), None);
        assert!(batcher.due(secs(t0, 1_000_000_000)).is_empty());
        assert_eq!(batcher.buffered_bytes(), 1);
    }

    #[test]
    fn the_memory_budget_flushes_the_largest_buffer() {
        let t0 = Instant::now();
        let mut batcher = batcher(Limits {
            memory_budget_bytes: 100,
            ..limits()
        });
        assert!(push(&mut batcher, record(1, 0, 30), t0).is_empty());
        assert!(push(&mut batcher, record(2, 0, 50), t0).is_empty());
        assert!(push(&mut batcher, record(3, 0, 10), t0).is_empty());
        assert!(push(&mut batcher, record(3, 1, 10), t0).is_empty());
        assert_eq!(batcher.buffered_bytes(), 100);
        // 101 bytes: the largest buffer goes, though another partition went over.
        let flushed = push(&mut batcher, record(3, 2, 1), t0);
        assert_eq!(summary(&flushed), [(2, 0..=0, Trigger::MemoryBudget, 50)]);
        assert_eq!(batcher.buffered_bytes(), 51);
    }

    #[test]
    fn the_pushed_buffer_may_be_the_largest_and_ties_go_to_the_lowest_partition() {
        let t0 = Instant::now();
        let mut batcher = batcher(Limits {
            memory_budget_bytes: 100,
            ..limits()
        });
        assert!(push(&mut batcher, record(1, 0, 40), t0).is_empty());
        assert!(push(&mut batcher, record(2, 0, 35), t0).is_empty());
        assert!(push(&mut batcher, record(3, 0, 20), t0).is_empty());
        let flushed = push(&mut batcher, record(4, 0, 80), t0);
        assert_eq!(summary(&flushed), [(4, 0..=0, Trigger::MemoryBudget, 80)]);
        assert_eq!(batcher.buffered_bytes(), 95);
        let flushed = push(&mut batcher, record(3, 1, 15), t0);
        assert_eq!(summary(&flushed), [(1, 0..=0, Trigger::MemoryBudget, 40)]);
        // Partitions 2 and 3 hold 35 bytes each.
        let tie = push(&mut batcher, record(5, 0, 31), t0);
        assert_eq!(summary(&tie), [(2, 0..=0, Trigger::MemoryBudget, 35)]);
        assert_eq!(batcher.buffered_bytes(), 66);
    }

    #[test]
    fn a_record_larger_than_the_budget_is_flushed_at_once() {
        let t0 = Instant::now();
        let mut batcher = batcher(Limits {
            memory_budget_bytes: 100,
            ..limits()
        });
        assert!(push(&mut batcher, record(1, 0, 10), t0).is_empty());
        let flushed = push(&mut batcher, record(2, 0, 150), t0);
        assert_eq!(summary(&flushed), [(2, 0..=0, Trigger::MemoryBudget, 150)]);
        assert_eq!(batcher.buffered_bytes(), 10);
    }

    /// 500 partitions that could buffer 5 MB under `maxBytes` share a 50 kB budget: every
    /// push leaves at most 50 kB buffered, and the budget only ever flushes the largest buffer,
    /// and only while the total is over.
    #[test]
    fn the_memory_budget_holds_with_500_partitions() {
        const PARTITIONS: u64 = 500;
        const BUDGET: usize = 50_000;
        let t0 = Instant::now();
        let mut batcher = batcher(Limits {
            max_records: 1_000_000,
            max_bytes: 10_000,
            max_age: Duration::from_secs(3600),
            memory_budget_bytes: BUDGET,
        });
        let mut rng = Lcg(500);
        let mut next_offset = BTreeMap::<i32, u64>::new();
        let mut buffered = BTreeMap::<i32, usize>::new();
        let mut budget_flushes = 0;
        let mut peak = 0;
        for step in 0..20_000 {
            let partition = i32::try_from(rng.below(PARTITIONS)).unwrap();
            let size = usize::try_from(1 + rng.below(200)).unwrap();
            let offset = next_offset.entry(partition).or_default();
            let pushed = record(partition, *offset, size);
            *offset += 1;
            *buffered.entry(partition).or_default() += size;
            for batch in push(&mut batcher, pushed, secs(t0, step)) {
                if batch.trigger() == Trigger::MemoryBudget {
                    budget_flushes += 1;
                    assert!(buffered.values().sum::<usize>() > BUDGET);
                    assert_eq!(buffered.values().max(), Some(&batch.bytes()));
                }
                assert_eq!(buffered.remove(&batch.partition()), Some(batch.bytes()));
            }
            let total: usize = buffered.values().sum();
            assert_eq!(batcher.buffered_bytes(), total);
            assert!(total <= BUDGET, "step {step}: {total} bytes buffered");
            peak = peak.max(total);
        }
        assert!(budget_flushes > 100, "{budget_flushes} budget flushes");
        assert!(peak > BUDGET - 200, "the budget was used: peak {peak}");
    }

    #[test]
    fn revoke_hands_back_unflushed_buffers_and_forgets_the_partitions() {
        let t0 = Instant::now();
        let mut batcher = batcher(limits());
        assert!(push(&mut batcher, record(1, 100, 3), t0).is_empty());
        assert!(push(&mut batcher, record(1, 101, 3), t0).is_empty());
        assert!(push(&mut batcher, record(2, 200, 5), secs(t0, 1)).is_empty());
        assert!(push(&mut batcher, record(3, 300, 7), secs(t0, 2)).is_empty());

        // Partition 9 is not held; partition 2 is named twice.
        let revoked = batcher.revoke([2, 1, 9, 2]);
        assert_eq!(
            summary(&revoked),
            [
                (2, 200..=200, Trigger::Revoked, 5),
                (1, 100..=101, Trigger::Revoked, 6)
            ]
        );
        assert_eq!(batcher.buffered_bytes(), 7);
        assert_eq!(batcher.next_deadline(), Some(secs(t0, 62)));
        let due = batcher.due(secs(t0, 1000));
        assert_eq!(summary(&due), [(3, 300..=300, Trigger::MaxAge, 7)]);

        // Assigned again, the partition starts wherever the worker seeks to.
        assert!(push(&mut batcher, record(1, 50, 1), t0).is_empty());
        assert_eq!(
            summary(&batcher.drain_all()),
            [(1, 50..=50, Trigger::Shutdown, 1)]
        );
    }

    #[test]
    fn revoking_an_empty_buffer_hands_back_nothing() {
        let t0 = Instant::now();
        let mut batcher = batcher(Limits {
            max_records: 1,
            ..limits()
        });
        assert_eq!(push(&mut batcher, record(1, 5, 1), t0).len(), 1);
        assert!(batcher.revoke([1]).is_empty());
        // Its position is forgotten all the same.
        assert_eq!(push(&mut batcher, record(1, 5, 1), t0).len(), 1);
    }

    #[test]
    fn drain_all_hands_out_everything_in_partition_order() {
        let t0 = Instant::now();
        let mut batcher = batcher(limits());
        for (partition, offset) in [(4, 40), (0, 1), (4, 41), (2, 20)] {
            assert!(push(&mut batcher, record(partition, offset, 2), t0).is_empty());
        }
        let drained = batcher.drain_all();
        assert_eq!(
            summary(&drained),
            [
                (0, 1..=1, Trigger::Shutdown, 2),
                (2, 20..=20, Trigger::Shutdown, 2),
                (4, 40..=41, Trigger::Shutdown, 4)
            ]
        );
        assert_eq!(batcher.buffered_bytes(), 0);
        assert_eq!(batcher.next_deadline(), None);
        assert!(batcher.drain_all().is_empty());
        assert!(batcher.due(secs(t0, 1000)).is_empty());
        // Positions survive the drain.
        assert!(batcher.push(record(4, 41, 1), t0).is_err());
    }

    #[test]
    fn offsets_must_increase_and_may_skip() {
        let t0 = Instant::now();
        let mut batcher = batcher(limits());
        assert!(push(&mut batcher, record(0, 10, 1), t0).is_empty());
        assert!(push(&mut batcher, record(0, 15, 1), t0).is_empty());
        for offset in [15, 14, 10, 0] {
            assert_eq!(
                batcher.push(record(0, offset, 1), t0),
                Err(Redelivered {
                    partition: 0,
                    offset,
                    last_offset: 15
                })
            );
        }
        // Dropped records leave no trace in the buffer.
        assert_eq!(batcher.buffered_bytes(), 2);
        assert!(push(&mut batcher, record(0, 16, 1), t0).is_empty());
        let drained = batcher.drain_all();
        assert_eq!(offsets(&drained[0]), [10, 15, 16]);
        assert_eq!(
            Redelivered {
                partition: 0,
                offset: 14,
                last_offset: 15
            }
            .to_string(),
            "partition 0: offset 14 is not after 15, which was already taken; dropped as a re-delivery"
        );
    }

    #[test]
    fn a_redelivery_of_flushed_records_is_dropped_too() {
        let t0 = Instant::now();
        let mut batcher = batcher(Limits {
            max_records: 2,
            ..limits()
        });
        assert!(push(&mut batcher, record(0, 0, 1), t0).is_empty());
        assert_eq!(push(&mut batcher, record(0, 1, 1), t0).len(), 1);
        // The consumer seeks back: taking offset 1 again would put it into two objects.
        assert!(batcher.push(record(0, 1, 1), t0).is_err());
        assert!(push(&mut batcher, record(0, 2, 1), t0).is_empty());
        assert_eq!(batcher.buffered_bytes(), 1);
        // Other partitions have their own positions.
        assert!(push(&mut batcher, record(1, 0, 1), t0).is_empty());
    }

    #[test]
    fn a_batch_names_its_object_and_hands_over_its_records() {
        let t0 = Instant::now();
        let mut batcher = batcher(Limits {
            max_records: 2,
            ..limits()
        });
        assert!(push(&mut batcher, record(3, 1200, 2), t0).is_empty());
        let batch = push(&mut batcher, record(3, 1299, 3), t0).remove(0);
        assert_eq!((batch.first_offset(), batch.last_offset()), (1200, 1299));
        let partition = batch.partition().to_string();
        let key = SourcePartition::new("pin", &partition)
            .unwrap()
            .object_key("raw", "", batch.offsets(), Extension::Json)
            .unwrap();
        assert_eq!(
            key,
            "raw/pin+3+00000000000000001200+00000000000000001299.json"
        );
        assert_eq!(
            batch.into_records(),
            [record(3, 1200, 2), record(3, 1299, 3)]
        );
    }

    #[test]
    fn trigger_labels() {
        let labels = [
            Trigger::MaxRecords,
            Trigger::MaxBytes,
            Trigger::MaxAge,
            Trigger::MemoryBudget,
            Trigger::Revoked,
            Trigger::Shutdown,
            Trigger::Recovery,
        ]
        .map(Trigger::label);
        assert_eq!(
            labels,
            [
                "max_records",
                "max_bytes",
                "max_age",
                "memory_budget",
                "revoked",
                "shutdown",
                "recovery"
            ]
        );
    }

    /// A deterministic pseudo-random sequence (Knuth's MMIX linear congruential generator).
    struct Lcg(u64);

    impl Lcg {
        /// A number in `0..bound`.
        fn below(&mut self, bound: u64) -> u64 {
            self.0 = self
                .0
                .wrapping_mul(6_364_136_223_846_793_005)
                .wrapping_add(1_442_695_040_888_963_407);
            (self.0 >> 33) % bound
        }
    }

    /// A payload that remembers which push it came from, so that the property test can tell
    /// two deliveries of one offset apart.
    #[derive(Clone, Debug, PartialEq, Eq)]
    struct Tagged {
        push: usize,
        size: usize,
    }

    impl Payload for Tagged {
        fn size_bytes(&self) -> usize {
            self.size
        }
    }

    /// Random pushes (with re-deliveries, gaps, empty and oversized records), clock steps,
    /// revocations and a final drain, under random limits: every accepted record leaves in
    /// exactly one batch, batches are well-formed and within their limits, a partition's
    /// batches never overlap, and the budget always holds.
    #[test]
    fn every_accepted_record_leaves_in_exactly_one_batch() {
        for seed in 0..40 {
            let mut rng = Lcg(seed);
            let limits = Limits {
                max_records: usize::try_from(1 + rng.below(8)).unwrap(),
                max_bytes: usize::try_from(20 + rng.below(60)).unwrap(),
                max_age: Duration::from_millis(1 + rng.below(5_000)),
                memory_budget_bytes: usize::try_from(50 + rng.below(250)).unwrap(),
            };
            let partitions = 1 + rng.below(12);
            let t0 = Instant::now();
            let mut now = t0;
            let mut batcher = Batcher::new(limits);
            // The highest offset taken since assignment, and the last flushed one.
            let mut taken = BTreeMap::<i32, u64>::new();
            let mut flushed_up_to = BTreeMap::<i32, u64>::new();
            let mut accepted = Vec::new();
            let mut batches = Vec::new();
            let mut pushes = 0;
            let mut redeliveries = 0;

            let mut check = |batches_now: Vec<Batch<Tagged>>,
                             flushed_up_to: &mut BTreeMap<i32, u64>| {
                for batch in &batches_now {
                    let records = batch.records();
                    assert!(!records.is_empty(), "seed {seed}");
                    assert!(records.windows(2).all(|w| w[0].offset < w[1].offset));
                    assert_eq!(batch.first_offset(), records[0].offset);
                    assert_eq!(batch.last_offset(), records[records.len() - 1].offset);
                    assert!(records.iter().all(|r| r.partition == batch.partition()));
                    let bytes: usize = records.iter().map(|r| r.payload.size).sum();
                    assert_eq!(batch.bytes(), bytes, "seed {seed}");
                    assert!(records.len() <= limits.max_records, "seed {seed}");
                    assert!(bytes <= limits.max_bytes || records.len() == 1);
                    if batch.trigger() == Trigger::MaxRecords {
                        assert_eq!(records.len(), limits.max_records);
                    }
                    if let Some(&last) = flushed_up_to.get(&batch.partition()) {
                        assert!(batch.first_offset() > last, "seed {seed}: overlap");
                    }
                    flushed_up_to.insert(batch.partition(), batch.last_offset());
                }
                batches.extend(batches_now);
            };

            for _ in 0..600 {
                match rng.below(100) {
                    0..70 => {
                        let partition = i32::try_from(rng.below(partitions)).unwrap();
                        let last = taken.get(&partition).copied();
                        let redelivery = last.is_some() && rng.below(10) == 0;
                        let offset = match last {
                            Some(last) if redelivery => last - rng.below(last + 1),
                            Some(last) => last + 1 + rng.below(3),
                            None => rng.below(1000),
                        };
                        let size = match rng.below(20) {
                            0 => 0,
                            1 => limits.max_bytes + 10,
                            _ => usize::try_from(1 + rng.below(25)).unwrap(),
                        };
                        let payload = Tagged { push: pushes, size };
                        pushes += 1;
                        let record = Record {
                            partition,
                            offset,
                            payload,
                        };
                        match batcher.push(record.clone(), now) {
                            Ok(flushed) => {
                                assert!(!redelivery, "seed {seed}");
                                taken.insert(partition, offset);
                                accepted.push(record);
                                check(flushed, &mut flushed_up_to);
                            }
                            Err(dropped) => {
                                assert!(redelivery, "seed {seed}");
                                assert_eq!(Some(dropped.last_offset), last);
                                redeliveries += 1;
                            }
                        }
                        assert!(batcher.buffered_bytes() <= limits.memory_budget_bytes);
                    }
                    70..90 => {
                        now += Duration::from_millis(rng.below(2_000));
                        let due = batcher.due(now);
                        assert!(due.iter().all(|b| b.trigger() == Trigger::MaxAge));
                        if let Some(deadline) = batcher.next_deadline() {
                            assert!(deadline > now, "seed {seed}: left a due buffer");
                        }
                        check(due, &mut flushed_up_to);
                    }
                    _ => {
                        let partition = i32::try_from(rng.below(partitions)).unwrap();
                        let revoked = batcher.revoke([partition]);
                        assert!(revoked.iter().all(|b| b.trigger() == Trigger::Revoked));
                        check(revoked, &mut flushed_up_to);
                        taken.remove(&partition);
                        flushed_up_to.remove(&partition);
                    }
                }
            }
            check(batcher.drain_all(), &mut flushed_up_to);
            assert_eq!(batcher.buffered_bytes(), 0);

            let mut out: Vec<Record<Tagged>> =
                batches.into_iter().flat_map(Batch::into_records).collect();
            out.sort_by_key(|record| record.payload.push);
            assert_eq!(out, accepted, "seed {seed}");
            assert!(redeliveries > 0, "seed {seed} tried no re-delivery");
        }
    }
}
