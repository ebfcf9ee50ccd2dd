//! The sink worker: a Kafka consumer group member that copies its partitions into the lake.
//!
//! `config → validate → build clients → run`. [`Sink::new`] checks the configuration without
//! I/O; [`Sink::run`] opens the destination, joins the consumer group and loops: a record is
//! classified (good, with its partition path, or bad, with its reason), pushed into the
//! [`Batcher`], and every batch the batcher hands out — by count, size, wall-clock age or
//! memory budget — is flushed: dead letters first, then one object per path, all named with
//! the batch's offset range, and only then the offset after the range is committed.
//!
//! # Assignment and recovery
//!
//! When Kafka assigns partitions, the consumer pauses them at once (in the rebalance
//! callback), and the loop recovers each before reading it: it lists the destination, finds
//! the partition's newest range (decision 0010) and seeks to its first offset; the records of
//! the range are collected outside the batcher and written again as one batch with the same
//! names — repairing a flush a crash cut short — and the partition goes on after the range.
//! A partition without objects starts at its committed offset, else at `startFrom`. Records
//! fetched before the seek are dropped (librdkafka purges them on seek, and the loop ignores
//! any that slip through while a partition is still pending).
//!
//! # Uploads and revocation
//!
//! A flush is encoded in the loop and uploaded (then committed) in the background, one flush
//! in flight per partition, while the loop reads on ([`super::pipeline`]). When partitions are
//! revoked, the rebalance callback waits for their flushes in flight to upload and commit;
//! their buffered records are dropped uncommitted, and the next owner reads them again after
//! the newest object.
//!
//! # Commits
//!
//! The committed offset (with the flush time, RFC 3339, as commit metadata) is what the
//! operator reads for the Sink's lag and last flush time; the lake, not the commit, is what a
//! worker resumes from, so a commit lost in a crash costs nothing.

use std::collections::BTreeMap;
use std::future::Future;
use std::ops::RangeInclusive;
use std::sync::Arc;
use std::time::{Duration, Instant};

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD as BASE64;
use bytes::Bytes;
use futures::{FutureExt, StreamExt};
use jiff::Timestamp;
use rdkafka::consumer::{
    BaseConsumer, CommitMode, Consumer, ConsumerContext, Rebalance, StreamConsumer,
};
use rdkafka::error::KafkaError;
use rdkafka::message::{BorrowedMessage, Message};
use rdkafka::statistics::Statistics;
use rdkafka::{ClientConfig, ClientContext, Offset, TopicPartitionList};
use serde_json::Value;
use tokio::sync::mpsc;
use tributary_crds::common::DataFormat;
use tributary_crds::sink::{ErrorTolerance, StartPosition};

use super::batch::{Batch, Batcher, Limits, LimitsError, Payload, Record, Trigger};
use super::config::{ConfigError, ENV_GROUP_INSTANCE_ID, SinkWorkerConfig};
use super::keys::{Extension, KeyError, SourcePartition, newest_for_partition};
use super::metrics::SinkMetrics;
use super::parquet::{ParquetEncoder, ParquetError};
use super::pipeline::{Done, FlushJob, InFlight, Uploads};
use super::store::{LakeLocation, StoreError, encode_json_lines, list_keys, put_object};
use super::template::{Partitioning, PartitioningError};
use super::transform::{Metadata, SourceKind, Transform, TransformError};
use crate::connect::ConnectError;

/// How long a blocking Kafka call (watermarks, committed offsets, seek) may take.
const KAFKA_TIMEOUT: Duration = Duration::from_secs(30);
/// How long a revocation waits for the revoked partitions' uploads before the worker stops
/// (the next owner recovers from the lake).
const REVOKE_TIMEOUT: Duration = Duration::from_secs(300);
/// The most messages taken from the consumer's queue in one go, without going back to the
/// loop's `select!`: each trip there registers a timer and a notification again, which cost
/// more than handling a record. Flush deadlines, finished uploads and shutdown wait at most
/// one burst.
const BURST: usize = 1024;

/// Why the worker cannot start or stops.
#[derive(Debug, thiserror::Error)]
pub enum WorkerError {
    /// The configuration is not usable.
    #[error(transparent)]
    Config(#[from] ConfigError),
    /// `batch` is not usable.
    #[error(transparent)]
    Limits(#[from] LimitsError),
    /// `partitioning` is not usable.
    #[error(transparent)]
    Partitioning(#[from] PartitioningError),
    /// The topic name cannot be part of object names, or a key is too long.
    #[error(transparent)]
    Key(#[from] KeyError),
    /// The Parquet settings or an encoding failed.
    #[error(transparent)]
    Parquet(#[from] ParquetError),
    /// The Kafka connection cannot be configured.
    #[error(transparent)]
    Connect(#[from] ConnectError),
    /// A Kafka call failed.
    #[error("Kafka: {what}: {source}")]
    Kafka {
        /// What was being done.
        what: &'static str,
        /// The client's error.
        #[source]
        source: KafkaError,
    },
    /// The lake cannot be opened, written or listed.
    #[error(transparent)]
    Store(#[from] StoreError),
    /// The SQL transform cannot be planned, or failed on a batch.
    #[error(transparent)]
    Transform(#[from] TransformError),
    /// A Kinesis call failed, or the stream cannot be read as a sink's source.
    #[error(transparent)]
    Kinesis(#[from] super::kinesis::KinesisError),
    /// A flush's upload or commit failed.
    #[error("flushing {topic}/{partition} offsets {first}..={last}: {message}")]
    Flush {
        /// The topic.
        topic: String,
        /// The partition.
        partition: i32,
        /// The flush's first offset.
        first: u64,
        /// The flush's last offset.
        last: u64,
        /// Why.
        message: String,
    },
    /// `errors.tolerance: none` and a bad record.
    #[error(
        "record {topic}/{partition}@{offset} cannot be written: {reason}; errors.tolerance is none, so the sink stops here (set it to all to send such records to the dead letter)"
    )]
    BadRecord {
        /// The topic.
        topic: String,
        /// The partition.
        partition: i32,
        /// The offset.
        offset: u64,
        /// Why it is bad.
        reason: String,
    },
    /// The destination holds objects beyond the partition's end: the topic was re-created.
    #[error(
        "the destination holds objects of {topic}/{partition} up to offset {last}, but the partition ends at {end}: was the topic re-created? Point the Sink at a new prefix, or move those objects away"
    )]
    AheadOfTopic {
        /// The topic.
        topic: String,
        /// The partition.
        partition: i32,
        /// The last offset the newest object covers.
        last: u64,
        /// The partition's high watermark.
        end: i64,
    },
}

fn kafka(what: &'static str) -> impl FnOnce(KafkaError) -> WorkerError {
    move |source| WorkerError::Kafka { what, source }
}

/// A record as the batcher holds it: ready to write, or bad with its reason.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Entry {
    /// A record to write at `path` (below the destination prefix).
    Good {
        /// The rendered partition path.
        path: String,
        /// The record's JSON, on one line.
        json: Vec<u8>,
        /// Where the record was in the source, kept only for a SQL transform (its metadata
        /// columns).
        metadata: Option<Metadata>,
    },
    /// A record for the dead letter.
    Bad {
        /// The original value (absent for a tombstone).
        value: Option<Vec<u8>>,
        /// The original key.
        key: Option<Vec<u8>>,
        /// The Kafka timestamp, in milliseconds.
        timestamp: Option<i64>,
        /// Why it cannot be written.
        reason: String,
    },
}

impl Payload for Entry {
    fn size_bytes(&self) -> usize {
        match self {
            Entry::Good { path, json, .. } => path.len() + json.len(),
            Entry::Bad {
                value, key, reason, ..
            } => {
                value.as_ref().map_or(0, Vec::len) + key.as_ref().map_or(0, Vec::len) + reason.len()
            }
        }
    }
}

/// How the objects' bytes are made.
pub(super) enum Encoder {
    JsonLines(Extension),
    Parquet(Box<ParquetEncoder>),
}

impl Encoder {
    pub(super) fn extension(&self) -> Extension {
        match self {
            Encoder::JsonLines(extension) => *extension,
            Encoder::Parquet(_) => Extension::Parquet,
        }
    }

    pub(super) fn encode(&mut self, records: &[Vec<u8>]) -> Result<Bytes, WorkerError> {
        match self {
            Encoder::JsonLines(extension) => Ok(encode_json_lines(records, *extension)?),
            Encoder::Parquet(parquet) => Ok(parquet.encode(records)?),
        }
    }

    fn check(&self, record: &Value) -> Result<(), String> {
        match self {
            Encoder::JsonLines(_) => Ok(()),
            Encoder::Parquet(parquet) => parquet.check(record),
        }
    }

    fn reads_record(&self) -> bool {
        matches!(self, Encoder::Parquet(_))
    }
}

/// The environment variable naming a failpoint, for the crash tests: `after-upload:N` stops
/// the process (as `kill -9` would) after the Nth flush's uploads, before its commit;
/// `mid-flush:N` after the first object of the Nth flush that writes several.
pub const ENV_FAILPOINT: &str = "TRIBUTARY_FAILPOINT";

/// Where a crash test stops the process.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Failpoint {
    AfterUpload(u64),
    MidFlush(u64),
}

impl Failpoint {
    fn parse(text: &str) -> Option<Self> {
        let (point, n) = text.split_once(':')?;
        let n = n.parse().ok()?;
        match point {
            "after-upload" => Some(Self::AfterUpload(n)),
            "mid-flush" => Some(Self::MidFlush(n)),
            _ => None,
        }
    }
}

/// A validated sink, ready to run.
pub struct Sink {
    pub(super) config: SinkWorkerConfig,
    pub(super) limits: Limits,
    partitioning: Partitioning,
    pub(super) encoder: Encoder,
    /// The SQL transform, which then makes the objects' bytes instead of `encoder`.
    transform: Option<Box<Transform>>,
    pub(super) metrics: Arc<SinkMetrics>,
    failpoint: Option<Failpoint>,
    flushes: u64,
    multi_object_flushes: u64,
    /// Background uploads; set when `run` opens the destination.
    uploads: Option<Uploads>,
}

/// Where a partition is after its assignment.
#[derive(Debug)]
enum Phase {
    /// Assigned and paused; its start is being worked out.
    Pending,
    /// Reading the newest range of the lake again, to rewrite it as one batch.
    Recovering {
        first: u64,
        last: u64,
        records: Vec<Record<Entry>>,
    },
    /// Reading new records into the batcher.
    Live,
}

/// Where a newly assigned partition starts.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Start {
    /// Read the newest range `first..=last` again and rewrite it.
    Rewrite {
        /// The range's first offset.
        first: u64,
        /// The range's last offset.
        last: u64,
    },
    /// Start reading at this position.
    At(Offset),
}

/// Where a partition starts: after the `newest` range in the lake (rewriting it), else at the
/// `committed` offset, else at `start_from`. The newest range comes with the partition's
/// watermarks, `low` and `high`, which only a partition with objects needs.
pub fn plan_start(
    topic: &str,
    partition: i32,
    newest: Option<(RangeInclusive<u64>, (i64, i64))>,
    committed: Option<i64>,
    start_from: StartPosition,
) -> Result<Start, WorkerError> {
    if let Some((range, (low, high))) = newest {
        let (first, last) = range.into_inner();
        let last_signed = i64::try_from(last).unwrap_or(i64::MAX);
        if last_signed >= high {
            return Err(WorkerError::AheadOfTopic {
                topic: topic.to_owned(),
                partition,
                last,
                end: high,
            });
        }
        let first_signed = i64::try_from(first).unwrap_or(i64::MAX);
        if first_signed >= low {
            return Ok(Start::Rewrite { first, last });
        }
        // Retention removed the start of the range: it cannot be read again, so it stays as
        // it is, and reading goes on after it.
        return Ok(Start::At(Offset::Offset((last_signed + 1).max(low))));
    }
    Ok(match (committed, start_from) {
        (Some(offset), _) if offset >= 0 => Start::At(Offset::Offset(offset)),
        (_, StartPosition::Earliest) => Start::At(Offset::Beginning),
        (_, StartPosition::Latest) => Start::At(Offset::End),
    })
}

/// What the rebalance callbacks tell the loop.
#[derive(Debug)]
enum Event {
    Assigned(Vec<i32>),
    Revoked(Vec<i32>),
}

/// The consumer's context: it pauses assigned partitions until the loop has recovered them,
/// and reports the consumer lag from librdkafka's statistics.
struct SinkContext {
    topic: String,
    events: mpsc::UnboundedSender<Event>,
    metrics: Arc<SinkMetrics>,
    in_flight: Arc<InFlight>,
}

impl SinkContext {
    fn partitions(&self, list: &TopicPartitionList) -> Vec<i32> {
        list.elements()
            .iter()
            .filter(|element| element.topic() == self.topic)
            .map(|element| element.partition())
            .collect()
    }
}

impl ClientContext for SinkContext {
    fn stats(&self, statistics: Statistics) {
        if let Some(topic) = statistics.topics.get(&self.topic) {
            for (&partition, stats) in &topic.partitions {
                if partition >= 0 && stats.consumer_lag >= 0 {
                    self.metrics.set_lag(partition, stats.consumer_lag);
                }
            }
        }
    }
}

impl ConsumerContext for SinkContext {
    fn pre_rebalance(&self, _consumer: &BaseConsumer<Self>, rebalance: &Rebalance<'_>) {
        if let Rebalance::Revoke(list) = rebalance {
            let partitions = self.partitions(list);
            // The next owner lists the lake after this returns: the revoked partitions'
            // uploads must be in it, and committed, by then.
            if !self.in_flight.wait_for(&partitions, REVOKE_TIMEOUT) {
                tracing::error!(
                    ?partitions,
                    "uploads of revoked partitions did not finish within {REVOKE_TIMEOUT:?}; \
                     stopping so that the next owner recovers from the lake"
                );
                std::process::exit(1);
            }
            let _ = self.events.send(Event::Revoked(partitions));
        }
    }

    fn post_rebalance(&self, consumer: &BaseConsumer<Self>, rebalance: &Rebalance<'_>) {
        match rebalance {
            Rebalance::Assign(list) => {
                if let Err(error) = consumer.pause(list) {
                    tracing::warn!(%error, "pausing newly assigned partitions failed");
                }
                let _ = self.events.send(Event::Assigned(self.partitions(list)));
            }
            Rebalance::Revoke(_) => {}
            Rebalance::Error(error) => tracing::warn!(%error, "rebalance failed"),
        }
    }
}

type SinkConsumer = StreamConsumer<SinkContext>;

impl Sink {
    /// Check `config` without any I/O: limits, partitioning, format and names.
    pub fn new(config: SinkWorkerConfig, metrics: Arc<SinkMetrics>) -> Result<Self, WorkerError> {
        let limits = Limits::from_spec(&config.batch)?;
        let partitioning = Partitioning::new(&config.partitioning)?;
        SourcePartition::new(config.source_name(), "0")?;
        let encoder = match config.format.format {
            DataFormat::Parquet => Encoder::Parquet(Box::new(ParquetEncoder::new(&config.format)?)),
            DataFormat::JsonLines => Encoder::JsonLines(Extension::for_format(
                config.format.format,
                config.format.compression,
            )?),
        };
        let source = match config.kinesis {
            Some(_) => SourceKind::Kinesis,
            None => SourceKind::Kafka,
        };
        let transform = match &config.transform {
            Some(transform) => Some(Box::new(Transform::new(
                &transform.sql,
                &config.format,
                source,
            )?)),
            None => None,
        };
        Ok(Self {
            config,
            limits,
            partitioning,
            encoder,
            transform,
            metrics,
            failpoint: None,
            flushes: 0,
            multi_object_flushes: 0,
            uploads: None,
        })
    }

    /// Classify one record of `partition`: where it goes, or why it cannot be written.
    pub fn classify(
        &self,
        partition: i32,
        value: Option<&[u8]>,
        key: Option<&[u8]>,
        timestamp: Option<i64>,
    ) -> Entry {
        let topic = &self.config.topic;
        self.classify_in(topic, &partition.to_string(), value, key, timestamp)
    }

    /// [`Sink::classify`] for any source and partition (a Kinesis stream and shard id), which
    /// render the path's `{source}` and `{partition}`.
    pub fn classify_in(
        &self,
        source: &str,
        partition: &str,
        value: Option<&[u8]>,
        key: Option<&[u8]>,
        timestamp: Option<i64>,
    ) -> Entry {
        let bad = |reason: String| Entry::Bad {
            value: value.map(<[u8]>::to_vec),
            key: key.map(<[u8]>::to_vec),
            timestamp,
            reason,
        };
        let Some(bytes) = value else {
            return bad("the record has no value (a tombstone)".into());
        };
        let needs_value = self.partitioning.reads_record()
            || self.encoder.reads_record()
            || self.transform.is_some();
        // A value written across lines must be compacted to one (JSON lines). Valid JSON has a
        // raw newline only between tokens; looking for one is a vectorised scan.
        let multi_line = memchr::memchr(b'\n', bytes).is_some();
        let parsed = if needs_value || multi_line {
            match serde_json::from_slice::<Value>(bytes) {
                Ok(value) => Some(value),
                Err(error) => return bad(format!("the value is not JSON: {error}")),
            }
        } else {
            if let Err(error) = serde_json::from_slice::<serde::de::IgnoredAny>(bytes) {
                return bad(format!("the value is not JSON: {error}"));
            }
            None
        };
        let record = parsed.as_ref().unwrap_or(&Value::Null);
        let checked = match &self.transform {
            Some(transform) => transform.check(record),
            None => self.encoder.check(record),
        };
        if let Err(reason) = checked {
            return bad(reason);
        }
        let arrival = timestamp
            .and_then(|millis| Timestamp::from_millisecond(millis).ok())
            .unwrap_or(Timestamp::UNIX_EPOCH);
        let path = match self.partitioning.path(record, arrival, source, partition) {
            Ok(path) => path,
            Err(error) => return bad(error.to_string()),
        };
        let json = match (&parsed, multi_line) {
            (Some(value), true) => value.to_string().into_bytes(),
            _ => bytes.to_vec(),
        };
        Entry::Good {
            path,
            json,
            metadata: None,
        }
    }

    /// Join the consumer group and copy records until `shutdown` completes; then flush what is
    /// buffered, commit and leave. Returns early with an error the worker cannot go past.
    pub async fn run(
        mut self,
        env: impl Fn(&str) -> Option<String>,
        shutdown: impl Future<Output = ()>,
    ) -> Result<(), WorkerError> {
        if let Some(stream) = self.config.kinesis.clone() {
            let worker_id = env(super::config::ENV_WORKER_ID);
            return super::kinesis::run(self, stream, worker_id, shutdown).await;
        }
        self.failpoint = env(ENV_FAILPOINT).as_deref().and_then(Failpoint::parse);
        let lake = LakeLocation::parse(&self.config.destination.url)?;
        let in_flight = Arc::new(InFlight::default());
        let threshold = usize::try_from(self.config.destination.multipart_threshold_bytes)
            .unwrap_or(usize::MAX);
        let uploads = Uploads::new(in_flight.clone(), threshold, || {
            LakeLocation::parse(&self.config.destination.url).map(|lake| lake.store)
        })?;
        let finished = uploads.finished.clone();
        self.uploads = Some(uploads);
        let (events_tx, mut events) = mpsc::unbounded_channel();
        let client = self.client_config(&env)?;
        let context = SinkContext {
            topic: self.config.topic.clone(),
            events: events_tx,
            metrics: self.metrics.clone(),
            in_flight,
        };
        let mut consumer_config = client.clone();
        consumer_config.set("statistics.interval.ms", "5000");
        if let Some(id) = env(ENV_GROUP_INSTANCE_ID).filter(|id| !id.is_empty()) {
            consumer_config.set("group.instance.id", id);
        }
        let consumer: SinkConsumer = consumer_config
            .create_with_context(context)
            .map_err(kafka("creating the consumer"))?;
        // Positions (committed offsets, watermarks) are read by a second client in the same
        // group that never subscribes, so these calls never wait on the group's protocol.
        let positions: Arc<BaseConsumer> = Arc::new(
            client
                .create()
                .map_err(kafka("creating the position reader"))?,
        );
        let consumer = Arc::new(consumer);
        consumer
            .subscribe(&[&self.config.topic])
            .map_err(kafka("subscribing to the topic"))?;
        tracing::info!(
            sink = %self.config.sink,
            topic = %self.config.topic,
            group = %self.config.consumer_group,
            destination = %self.config.destination.url,
            "sink worker started"
        );
        let mut state = LoopState {
            batcher: Batcher::new(self.limits),
            phases: BTreeMap::new(),
        };
        let mut stream = consumer.stream();
        tokio::pin!(shutdown);
        'run: loop {
            let deadline = state.batcher.next_deadline();
            tokio::select! {
                biased;
                () = &mut shutdown => break,
                () = finished.notified() => self.collect_finished()?,
                Some(event) = events.recv() => {
                    self.on_event(event, &consumer, &positions, &lake, &mut state).await?;
                }
                () = sleep_until(deadline) => {
                    for batch in state.batcher.due(Instant::now()) {
                        self.flush_batch(&consumer, &lake, batch, CommitMode::Async).await?;
                    }
                }
                message = stream.next() => {
                    // Then the messages already queued, up to a burst. One reading of the
                    // clock serves the burst: a batch begun in it may count its age from up
                    // to a burst's handling earlier, which only flushes it that much sooner.
                    let now = Instant::now();
                    let mut message = message;
                    let mut taken = 1;
                    loop {
                        // The rebalance callbacks ran while this message was polled. A message
                        // of a partition the recovery moved (seek) was fetched before the seek:
                        // it is read again from the recovered position, so it is dropped here.
                        // Where the recovery kept the consumer's own position, it is the next
                        // record.
                        let mut moved = Vec::new();
                        while let Ok(event) = events.try_recv() {
                            moved.extend(
                                self.on_event(event, &consumer, &positions, &lake, &mut state)
                                    .await?,
                            );
                        }
                        match message {
                            Some(Ok(message)) if moved.contains(&message.partition()) => {}
                            Some(Ok(message)) => {
                                self.on_message(&message, now, &consumer, &lake, &mut state)
                                    .await?;
                            }
                            Some(Err(error)) => tracing::warn!(%error, "Kafka consumer error"),
                            None => break 'run,
                        }
                        // Never take a message the burst has no room for: it would be lost.
                        if taken == BURST {
                            break;
                        }
                        match stream.next().now_or_never() {
                            Some(next) => {
                                message = next;
                                taken += 1;
                            }
                            None => break,
                        }
                    }
                }
            }
            self.metrics
                .buffered_bytes
                .set(i64::try_from(state.batcher.buffered_bytes()).unwrap_or(i64::MAX));
        }
        drop(stream);
        tracing::info!("stopping: flushing what is buffered");
        for batch in state.batcher.drain_all() {
            self.flush_batch(&consumer, &lake, batch, CommitMode::Sync)
                .await?;
        }
        self.wait_until(|in_flight| in_flight.is_empty()).await?;
        consumer.unsubscribe();
        tracing::info!("sink worker stopped");
        Ok(())
    }

    /// The consumer's configuration, shared with the client that reads positions.
    fn client_config(
        &self,
        env: &impl Fn(&str) -> Option<String>,
    ) -> Result<ClientConfig, WorkerError> {
        let mut client = self.config.kafka_connection(env)?.client_config()?;
        let reset = match self.config.start_from {
            StartPosition::Earliest => "earliest",
            StartPosition::Latest => "latest",
        };
        client
            .set("client.id", format!("tributary-sink-{}", self.config.sink))
            // A worker that crashed hands its partitions over after 10 s instead of 45 s.
            .set("session.timeout.ms", "10000")
            .set("heartbeat.interval.ms", "3000");
        // The Sink's own tuning; what exactly-once rests on is refused in them and set last.
        for (name, value) in &self.config.consumer_properties {
            client.set(name, value);
        }
        client
            .set("group.id", &self.config.consumer_group)
            .set("enable.auto.commit", "false")
            .set("enable.auto.offset.store", "false")
            .set("auto.offset.reset", reset)
            .set("allow.auto.create.topics", "false");
        Ok(client)
    }

    /// Apply a rebalance: returns the partitions whose position the recovery moved.
    async fn on_event(
        &self,
        event: Event,
        consumer: &Arc<SinkConsumer>,
        positions: &Arc<BaseConsumer>,
        lake: &LakeLocation,
        state: &mut LoopState,
    ) -> Result<Vec<i32>, WorkerError> {
        match event {
            Event::Revoked(partitions) => {
                let dropped: usize = state
                    .batcher
                    .revoke(partitions.iter().copied())
                    .iter()
                    .map(|batch| batch.records().len())
                    .sum();
                for partition in &partitions {
                    state.phases.remove(partition);
                    self.metrics.forget_partition(*partition);
                }
                tracing::info!(
                    ?partitions,
                    dropped,
                    "partitions revoked; their unflushed records are left to the next owner"
                );
                Ok(Vec::new())
            }
            Event::Assigned(partitions) => {
                for &partition in &partitions {
                    state.phases.insert(partition, Phase::Pending);
                }
                self.recover(&partitions, consumer, positions, lake, state)
                    .await
            }
        }
    }

    /// Work out where each of `partitions` starts, seek there where that is not the position
    /// the consumer starts at by itself, and resume reading. Returns the partitions it moved.
    async fn recover(
        &self,
        partitions: &[i32],
        consumer: &Arc<SinkConsumer>,
        positions: &Arc<BaseConsumer>,
        lake: &LakeLocation,
        state: &mut LoopState,
    ) -> Result<Vec<i32>, WorkerError> {
        if partitions.is_empty() {
            return Ok(Vec::new());
        }
        let keys = list_keys(lake.store.as_ref(), &lake.prefix).await?;
        let topic = self.config.topic.clone();
        let committed = {
            let positions = positions.clone();
            let mut list = TopicPartitionList::new();
            for &partition in partitions {
                list.add_partition(&topic, partition);
            }
            blocking(move || positions.committed_offsets(list, KAFKA_TIMEOUT))
                .await
                .map_err(kafka("reading committed offsets"))?
        };
        let mut seeks = Vec::new();
        for &partition in partitions {
            let committed_offset =
                committed
                    .find_partition(&topic, partition)
                    .and_then(|element| match element.offset() {
                        Offset::Offset(offset) => Some(offset),
                        _ => None,
                    });
            let newest = newest_for_partition(
                keys.iter().map(String::as_str),
                &topic,
                &partition.to_string(),
            )
            .map(|parsed| parsed.first_offset..=parsed.last_offset);
            // The watermarks tell whether the newest range can be read again: a partition
            // without objects needs none, which spares a round trip per partition at start.
            let newest = match newest {
                Some(range) => {
                    let (positions, topic) = (positions.clone(), topic.clone());
                    let watermarks = blocking(move || {
                        positions.fetch_watermarks(&topic, partition, KAFKA_TIMEOUT)
                    })
                    .await
                    .map_err(kafka("reading the partition's watermarks"))?;
                    Some((range, watermarks))
                }
                None => None,
            };
            let watermarks = newest.as_ref().map(|(_, watermarks)| *watermarks);
            let start = plan_start(
                &topic,
                partition,
                newest,
                committed_offset,
                self.config.start_from,
            )?;
            tracing::info!(partition, ?start, ?watermarks, "partition assigned");
            let (phase, offset) = match start {
                Start::Rewrite { first, last } => (
                    Phase::Recovering {
                        first,
                        last,
                        records: Vec::new(),
                    },
                    Offset::Offset(i64::try_from(first).unwrap_or(i64::MAX)),
                ),
                Start::At(offset) => (Phase::Live, offset),
            };
            state.phases.insert(partition, phase);
            // The consumer starts by itself at the committed offset, else at startFrom (its
            // auto.offset.reset). A seek there would only throw away what it has fetched.
            let own_position = match (start, committed_offset) {
                (Start::At(Offset::Offset(offset)), Some(committed)) => offset == committed,
                (Start::At(Offset::Beginning | Offset::End), None) => true,
                _ => false,
            };
            if !own_position {
                seeks.push((partition, offset));
            }
        }
        let mut resume = TopicPartitionList::new();
        for &partition in partitions {
            resume.add_partition(&topic, partition);
        }
        let mut moved = Vec::with_capacity(seeks.len());
        for (partition, offset) in seeks {
            seek(consumer, &topic, partition, offset).await?;
            moved.push(partition);
        }
        consumer
            .resume(&resume)
            .map_err(kafka("resuming the assigned partitions"))?;
        Ok(moved)
    }

    async fn on_message(
        &mut self,
        message: &BorrowedMessage<'_>,
        now: Instant,
        consumer: &Arc<SinkConsumer>,
        lake: &LakeLocation,
        state: &mut LoopState,
    ) -> Result<(), WorkerError> {
        let partition = message.partition();
        let Ok(offset) = u64::try_from(message.offset()) else {
            return Ok(());
        };
        let phase = match state.phases.get_mut(&partition) {
            Some(Phase::Pending) | None => return Ok(()),
            Some(phase) => phase,
        };
        if let Phase::Recovering { first, .. } = phase
            && offset < *first
        {
            return Ok(());
        }
        self.metrics.records_in.inc();
        self.metrics
            .bytes_in
            .inc_by(message.payload_len().try_into().unwrap_or(u64::MAX));
        let mut entry = self.classify(
            partition,
            message.payload(),
            message.key(),
            message.timestamp().to_millis(),
        );
        if let (Some(_), Entry::Good { metadata, .. }) = (&self.transform, &mut entry) {
            *metadata = Some(Metadata::Kafka {
                partition,
                offset,
                timestamp_millis: message.timestamp().to_millis(),
                key: message.key().map(<[u8]>::to_vec),
            });
        }
        if let (Entry::Bad { reason, .. }, ErrorTolerance::None) =
            (&entry, self.config.errors.tolerance)
        {
            let error = WorkerError::BadRecord {
                topic: self.config.topic.clone(),
                partition,
                offset,
                reason: reason.clone(),
            };
            tracing::error!(%error, "stopping at a bad record");
            for batch in state.batcher.drain_all() {
                self.flush_batch(consumer, lake, batch, CommitMode::Sync)
                    .await?;
            }
            return Err(error);
        }
        let record = Record {
            partition,
            offset,
            payload: entry,
        };
        if let Phase::Recovering {
            first,
            last,
            records,
        } = phase
        {
            let (first, last) = (*first, *last);
            if offset <= last {
                records.push(record);
                if offset < last {
                    return Ok(());
                }
                let records = std::mem::take(records);
                state.phases.insert(partition, Phase::Live);
                return self
                    .flush(
                        consumer,
                        lake,
                        partition,
                        first..=last,
                        Trigger::Recovery,
                        records,
                        CommitMode::Async,
                    )
                    .await;
            }
            // The range's last records are gone (compaction): rewrite what was read, if any,
            // then take this record as the first new one.
            let records = std::mem::take(records);
            state.phases.insert(partition, Phase::Live);
            if !records.is_empty() {
                self.flush(
                    consumer,
                    lake,
                    partition,
                    first..=last,
                    Trigger::Recovery,
                    records,
                    CommitMode::Async,
                )
                .await?;
            }
        }
        match state.batcher.push(record, now) {
            Ok(batches) => {
                for batch in batches {
                    self.flush_batch(consumer, lake, batch, CommitMode::Async)
                        .await?;
                }
            }
            Err(redelivered) => {
                self.metrics.redeliveries.inc();
                tracing::debug!(%redelivered);
            }
        }
        Ok(())
    }

    async fn flush_batch(
        &mut self,
        consumer: &Arc<SinkConsumer>,
        lake: &LakeLocation,
        batch: Batch<Entry>,
        mode: CommitMode,
    ) -> Result<(), WorkerError> {
        let (partition, offsets, trigger) = (batch.partition(), batch.offsets(), batch.trigger());
        self.flush(
            consumer,
            lake,
            partition,
            offsets,
            trigger,
            batch.into_records(),
            mode,
        )
        .await
    }

    /// Write `records`, the flush of `offsets` of `partition`: dead letters first, then one
    /// object per path, all named with `offsets`; then commit the offset after the range.
    /// The records are encoded here; the uploads and the commit run in the background after
    /// the partition's previous flush (and within the memory budget). `CommitMode::Sync`
    /// returns only when the flush, and every flush before it, is committed.
    #[allow(clippy::too_many_arguments)]
    async fn flush(
        &mut self,
        consumer: &Arc<SinkConsumer>,
        lake: &LakeLocation,
        partition: i32,
        offsets: RangeInclusive<u64>,
        trigger: Trigger,
        records: Vec<Record<Entry>>,
        mode: CommitMode,
    ) -> Result<(), WorkerError> {
        let started = Instant::now();
        let source = SourcePartition::new(&self.config.topic, &partition.to_string())?;
        let topic = &self.config.topic;
        let Sorted {
            paths,
            good,
            dead,
            first_dead,
        } = Sorted::new(
            records.into_iter().map(|r| (r.offset, r.payload)),
            |offset, bad| {
                dead_letter_line(
                    topic,
                    partition,
                    *offset,
                    bad.timestamp,
                    &bad.reason,
                    bad.key.as_deref(),
                    bad.value.as_deref(),
                )
            },
        );
        let threshold = usize::try_from(self.config.destination.multipart_threshold_bytes)
            .unwrap_or(usize::MAX);
        let dead = match first_dead {
            Some(offset) => {
                let key = source.dead_letter_key(&self.config.dead_letter_prefix, offset)?;
                let bytes = encode_json_lines(&dead, Extension::Json)?;
                self.metrics.bytes_out.inc_by(bytes.len() as u64);
                Some((key, bytes, dead.len() as u64))
            }
            None => None,
        };
        let extension = self.encoder.extension();
        let mut objects = Vec::with_capacity(paths.len());
        for (path, (lines, metadata)) in paths {
            let key = source.object_key(&lake.prefix, &path, offsets.clone(), extension)?;
            let source_name = self.config.source_name().to_owned();
            let Some(bytes) = self.encode_object(&source_name, &lines, &metadata).await? else {
                continue;
            };
            self.metrics.bytes_out.inc_by(bytes.len() as u64);
            objects.push((key, bytes));
        }
        self.flushes += 1;
        if objects.len() > 1 {
            self.multi_object_flushes += 1;
            if self.failpoint == Some(Failpoint::MidFlush(self.multi_object_flushes)) {
                self.wait_until(|in_flight| in_flight.is_empty()).await?;
                let (key, bytes) = &objects[0];
                put_object(lake.store.as_ref(), key, bytes.clone(), threshold).await?;
                tracing::warn!(key, "failpoint mid-flush: stopping after the first object");
                std::process::abort();
            }
        }
        let job = FlushJob {
            partition,
            offsets,
            trigger,
            dead,
            objects,
            good,
            started,
            abort_after_upload: self.failpoint == Some(Failpoint::AfterUpload(self.flushes)),
        };
        // The partition's previous flush commits first; the bytes in flight stay in budget.
        let (bytes, budget) = (job.bytes(), self.limits.memory_budget_bytes);
        self.wait_until(|in_flight| {
            !in_flight.busy(partition)
                && (in_flight.is_empty() || in_flight.bytes() + bytes <= budget)
        })
        .await?;
        let (consumer, topic) = (consumer.clone(), self.config.topic.clone());
        // A synchronous commit (when stopping) blocks an upload thread until the broker has it.
        self.uploads().spawn(job, move |partition, last, now| {
            commit(&consumer, &topic, partition, last, now, mode).map_err(|error| error.to_string())
        });
        if let CommitMode::Sync = mode {
            self.wait_until(|in_flight| in_flight.is_empty()).await?;
        }
        Ok(())
    }

    /// One object's bytes from its records (and, for a SQL transform, their `metadata` from
    /// `source_name`): the transform's result, `None` when it has no rows; else the records
    /// encoded as they are.
    pub(super) async fn encode_object(
        &mut self,
        source_name: &str,
        records: &[Vec<u8>],
        metadata: &[Metadata],
    ) -> Result<Option<Bytes>, WorkerError> {
        match &mut self.transform {
            Some(transform) => Ok(transform.encode(source_name, records, metadata).await?),
            None => self.encoder.encode(records).map(Some),
        }
    }

    fn uploads(&self) -> &Uploads {
        self.uploads
            .as_ref()
            .expect("run opens the uploads before any flush")
    }

    /// Wait, taking in finished flushes, until `ready` holds for the flushes in flight.
    async fn wait_until(&mut self, ready: impl Fn(&InFlight) -> bool) -> Result<(), WorkerError> {
        loop {
            self.collect_finished()?;
            let uploads = self.uploads();
            if ready(&uploads.in_flight) {
                return Ok(());
            }
            let finished = uploads.finished.clone();
            finished.notified().await;
        }
    }

    /// Count the flushes that finished; the first one that failed stops the worker.
    fn collect_finished(&mut self) -> Result<(), WorkerError> {
        for Done { job, result } in self.uploads().take_done() {
            let now = result.map_err(|message| WorkerError::Flush {
                topic: self.config.topic.clone(),
                partition: job.partition,
                first: *job.offsets.start(),
                last: *job.offsets.end(),
                message,
            })?;
            if let Some((key, _, records)) = &job.dead {
                self.metrics.objects.inc();
                self.metrics.dead_letters.inc_by(*records);
                tracing::warn!(
                    partition = job.partition,
                    key,
                    records,
                    "dead letters written"
                );
            }
            self.metrics.objects.inc_by(job.objects.len() as u64);
            self.metrics.records_out.inc_by(job.good);
            self.metrics.flushed(
                job.trigger,
                job.started.elapsed().as_secs_f64(),
                now.as_millisecond() as f64 / 1000.0,
            );
            tracing::debug!(
                partition = job.partition,
                first = job.offsets.start(),
                last = job.offsets.end(),
                trigger = job.trigger.label(),
                objects = job.objects.len(),
                "flushed"
            );
        }
        Ok(())
    }
}

struct LoopState {
    batcher: Batcher<Entry>,
    phases: BTreeMap<i32, Phase>,
}

/// Sleep until `deadline`, or forever without one.
async fn sleep_until(deadline: Option<Instant>) {
    match deadline {
        Some(deadline) => tokio::time::sleep_until(deadline.into()).await,
        None => std::future::pending().await,
    }
}

/// Run a blocking client call off the async threads.
async fn blocking<T: Send + 'static>(call: impl FnOnce() -> T + Send + 'static) -> T {
    tokio::task::spawn_blocking(call)
        .await
        .expect("a blocking Kafka call panicked")
}

/// Seek `partition` to `offset`. Right after an assignment librdkafka may not be fetching
/// the partition yet and refuses the seek as "erroneous state"; that passes within moments.
async fn seek(
    consumer: &Arc<SinkConsumer>,
    topic: &str,
    partition: i32,
    offset: Offset,
) -> Result<(), WorkerError> {
    let mut attempt = 0;
    loop {
        let (consumer, topic_owned) = (consumer.clone(), topic.to_owned());
        let result =
            blocking(move || consumer.seek(&topic_owned, partition, offset, KAFKA_TIMEOUT)).await;
        match result {
            Ok(()) => return Ok(()),
            Err(error) if attempt < 50 => {
                attempt += 1;
                tracing::debug!(%error, partition, attempt, "seek refused; trying again");
                tokio::time::sleep(Duration::from_millis(100)).await;
            }
            Err(source) => {
                return Err(WorkerError::Kafka {
                    what: "seeking to the partition's start",
                    source,
                });
            }
        }
    }
}

/// Commit the offset after `last` with the flush time as metadata.
fn commit(
    consumer: &SinkConsumer,
    topic: &str,
    partition: i32,
    last: u64,
    flushed_at: Timestamp,
    mode: CommitMode,
) -> Result<(), WorkerError> {
    let mut list = TopicPartitionList::new();
    let mut element = list.add_partition(topic, partition);
    let next = i64::try_from(last).unwrap_or(i64::MAX).saturating_add(1);
    element
        .set_offset(Offset::Offset(next))
        .map_err(kafka("preparing the commit"))?;
    element.set_metadata(format!("{flushed_at:.3}"));
    consumer
        .commit(&list, mode)
        .map_err(kafka("committing offsets"))
}

/// One line of a dead-letter object: where the record was, why it was refused, and its
/// original bytes (base64, and as text when they are UTF-8).
/// A record for the dead letter, as [`Entry::Bad`] holds it.
pub(super) struct BadRecord {
    pub(super) value: Option<Vec<u8>>,
    pub(super) key: Option<Vec<u8>>,
    pub(super) timestamp: Option<i64>,
    pub(super) reason: String,
}

/// The records of one flush sorted out: good records by partition path (with their metadata),
/// the dead-letter lines, and the position (`P`: offset, sequence number) of the first dead
/// letter, which names the dead-letter object.
pub(super) struct Sorted<P> {
    pub(super) paths: BTreeMap<String, (Vec<Vec<u8>>, Vec<Metadata>)>,
    pub(super) good: u64,
    pub(super) dead: Vec<Vec<u8>>,
    pub(super) first_dead: Option<P>,
}

impl<P> Sorted<P> {
    /// Sort `records` (position and entry, in source order); `dead_line` writes a bad record's
    /// dead-letter line.
    pub(super) fn new(
        records: impl IntoIterator<Item = (P, Entry)>,
        mut dead_line: impl FnMut(&P, BadRecord) -> Vec<u8>,
    ) -> Self {
        let mut sorted = Self {
            paths: BTreeMap::new(),
            good: 0,
            dead: Vec::new(),
            first_dead: None,
        };
        for (position, entry) in records {
            match entry {
                Entry::Good {
                    path,
                    json,
                    metadata,
                } => {
                    sorted.good += 1;
                    let (lines, metadatas) = sorted.paths.entry(path).or_default();
                    lines.push(json);
                    metadatas.extend(metadata);
                }
                Entry::Bad {
                    value,
                    key,
                    timestamp,
                    reason,
                } => {
                    let bad = BadRecord {
                        value,
                        key,
                        timestamp,
                        reason,
                    };
                    sorted.dead.push(dead_line(&position, bad));
                    sorted.first_dead.get_or_insert(position);
                }
            }
        }
        sorted
    }
}

fn dead_letter_line(
    topic: &str,
    partition: i32,
    offset: u64,
    timestamp: Option<i64>,
    reason: &str,
    key: Option<&[u8]>,
    value: Option<&[u8]>,
) -> Vec<u8> {
    fn text(bytes: Option<&[u8]>) -> Option<&str> {
        bytes.and_then(|b| std::str::from_utf8(b).ok())
    }
    serde_json::json!({
        "topic": topic,
        "partition": partition,
        "offset": offset,
        "timestamp": timestamp,
        "reason": reason,
        "key": text(key),
        "keyBase64": key.map(|k| BASE64.encode(k)),
        "value": text(value),
        "valueBase64": value.map(|v| BASE64.encode(v)),
    })
    .to_string()
    .into_bytes()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn config(extra: serde_json::Value) -> SinkWorkerConfig {
        let mut document = serde_json::json!({
            "sink": "ns/raw",
            "topic": "pin",
            "consumerGroup": "tributary-ns-raw",
            "kafka": {"bootstrapServers": "127.0.0.1:9"},
            "destination": {"url": "file:///tmp/lake", "multipartThresholdBytes": 5242880},
            "deadLetterPrefix": "_dead_letter"
        });
        for (key, value) in extra.as_object().expect("an object") {
            document[key] = value.clone();
        }
        SinkWorkerConfig::from_json(&document.to_string()).expect("a config")
    }

    fn sink(extra: serde_json::Value) -> Sink {
        Sink::new(config(extra), Arc::default()).expect("a valid sink")
    }

    fn reason(entry: Entry) -> String {
        match entry {
            Entry::Bad { reason, .. } => reason,
            good => panic!("expected a bad record, got {good:?}"),
        }
    }

    #[test]
    fn consumer_properties_tune_the_consumer_but_never_its_commits() {
        let tuned = sink(serde_json::json!({
            "consumerProperties": {"fetch.max.bytes": "1000000", "session.timeout.ms": "30000"}
        }));
        let client = tuned.client_config(&|_| None).expect("a client config");
        assert_eq!(client.get("fetch.max.bytes"), Some("1000000"));
        assert_eq!(client.get("session.timeout.ms"), Some("30000"));
        assert_eq!(client.get("enable.auto.commit"), Some("false"));
        // A document that slipped a reserved property past the operator is refused...
        let mut document = serde_json::to_value(config(serde_json::json!({}))).expect("json");
        document["consumerProperties"] = serde_json::json!({"enable.auto.commit": "true"});
        let error = SinkWorkerConfig::from_json(&document.to_string()).unwrap_err();
        assert!(error.to_string().contains("is set by Tributary"), "{error}");
        // ...and even set directly, the sink's own settings come last.
        let mut forced = config(serde_json::json!({}));
        forced.consumer_properties = [("enable.auto.commit".to_owned(), "true".to_owned())].into();
        let forced = Sink::new(forced, Arc::default()).expect("a sink");
        let client = forced.client_config(&|_| None).expect("a client config");
        assert_eq!(client.get("enable.auto.commit"), Some("false"));
    }

    #[test]
    fn a_record_renders_its_path_and_keeps_its_bytes() {
        let sink = sink(serde_json::json!({
            "partitioning": {"path": "dt={time:%Y-%m-%d}/c={field:category}"}
        }));
        // 2024-02-29T13:45:56Z in milliseconds.
        let entry = sink.classify(
            3,
            Some(br#"{"category":"art","n":1}"#),
            None,
            Some(1_709_214_356_000),
        );
        assert_eq!(
            entry,
            Entry::Good {
                path: "dt=2024-02-29/c=art".into(),
                json: br#"{"category":"art","n":1}"#.to_vec(),
                metadata: None
            }
        );
    }

    #[test]
    fn a_record_across_lines_is_compacted_to_one() {
        let sink = sink(serde_json::json!({}));
        let entry = sink.classify(0, Some(b"{\n  \"a\": 1\n}"), None, None);
        assert_eq!(
            entry,
            Entry::Good {
                path: String::new(),
                json: br#"{"a":1}"#.to_vec(),
                metadata: None
            }
        );
    }

    #[test]
    fn bad_records_carry_their_reason() {
        let sink = sink(serde_json::json!({
            "partitioning": {"path": "{field:category}", "timeField": "ts"}
        }));
        assert!(
            reason(sink.classify(0, Some(b"{oops"), None, None))
                .starts_with("the value is not JSON")
        );
        assert_eq!(
            reason(sink.classify(0, None, Some(b"k"), None)),
            "the record has no value (a tombstone)"
        );
        let nested = reason(sink.classify(0, Some(br#"{"category":{"a":1}}"#), None, None));
        assert!(nested.contains("category"), "{nested}");
        // Without a path that reads the record, the time field is never looked at.
        let plain = self::sink(serde_json::json!({"partitioning": {"timeField": "ts"}}));
        assert!(matches!(
            plain.classify(0, Some(b"{}"), None, None),
            Entry::Good { .. }
        ));
    }

    #[test]
    fn parquet_schemas_refuse_records_that_do_not_match() {
        let sink = sink(serde_json::json!({
            "format": {"type": "Parquet", "schema": [{"name": "n", "type": "Int64", "nullable": false}]}
        }));
        assert!(matches!(
            sink.classify(0, Some(br#"{"n":1}"#), None, None),
            Entry::Good { .. }
        ));
        let missing = reason(sink.classify(0, Some(br#"{"m":1}"#), None, None));
        assert!(missing.contains('n'), "{missing}");
    }

    #[test]
    fn bad_batch_and_partitioning_settings_are_refused_before_any_io() {
        let bad_age = Sink::new(
            config(serde_json::json!({"batch": {"maxAge": "soon"}})),
            Arc::default(),
        );
        assert!(matches!(bad_age, Err(WorkerError::Limits(_))));
        let bad_path = Sink::new(
            config(serde_json::json!({"partitioning": {"path": "{nope"}})),
            Arc::default(),
        );
        assert!(matches!(bad_path, Err(WorkerError::Partitioning(_))));
        let bad_topic = Sink::new(config(serde_json::json!({"topic": "a+b"})), Arc::default());
        assert!(matches!(bad_topic, Err(WorkerError::Key(_))));
    }

    #[test]
    fn the_start_follows_the_lake_then_the_commit_then_start_from() {
        let plan = |newest: Option<RangeInclusive<u64>>, watermarks, committed, from| {
            plan_start(
                "pin",
                0,
                newest.map(|range| (range, watermarks)),
                committed,
                from,
            )
        };
        let earliest = StartPosition::Earliest;
        assert_eq!(
            plan(Some(100..=199), (0, 500), Some(200), earliest).unwrap(),
            Start::Rewrite {
                first: 100,
                last: 199
            }
        );
        // A range whose start retention removed is left as it is.
        assert_eq!(
            plan(Some(100..=199), (150, 500), Some(200), earliest).unwrap(),
            Start::At(Offset::Offset(200))
        );
        assert_eq!(
            plan(Some(100..=199), (300, 500), None, earliest).unwrap(),
            Start::At(Offset::Offset(300))
        );
        assert_eq!(
            plan(None, (0, 500), Some(42), earliest).unwrap(),
            Start::At(Offset::Offset(42))
        );
        assert_eq!(
            plan(None, (0, 500), None, earliest).unwrap(),
            Start::At(Offset::Beginning)
        );
        assert_eq!(
            plan(None, (0, 500), None, StartPosition::Latest).unwrap(),
            Start::At(Offset::End)
        );
        let ahead = plan(Some(100..=199), (0, 150), None, earliest)
            .unwrap_err()
            .to_string();
        assert!(ahead.contains("was the topic re-created?"), "{ahead}");
    }

    #[test]
    fn a_dead_letter_keeps_the_original_bytes() {
        let line = dead_letter_line(
            "pin",
            2,
            17,
            Some(5),
            "the value is not JSON",
            None,
            Some(&[0xff, b'x']),
        );
        let value: Value = serde_json::from_slice(&line).unwrap();
        assert_eq!(value["offset"], 17);
        assert_eq!(value["partition"], 2);
        assert_eq!(value["reason"], "the value is not JSON");
        assert_eq!(value["value"], Value::Null, "not UTF-8, so no text");
        assert_eq!(value["valueBase64"], "/3g=");
        assert!(!line.contains(&b'\n'));
    }

    #[test]
    fn failpoints_parse() {
        assert_eq!(
            Failpoint::parse("after-upload:3"),
            Some(Failpoint::AfterUpload(3))
        );
        assert_eq!(
            Failpoint::parse("mid-flush:1"),
            Some(Failpoint::MidFlush(1))
        );
        assert_eq!(Failpoint::parse("sometime"), None);
    }
}
