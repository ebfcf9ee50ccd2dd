//! The Kinesis source of the sink worker: reads every shard of a stream with
//! `GetShardIterator`/`GetRecords` and writes the records into the lake exactly once, as the
//! Kafka loop does for a topic (decision 0042).
//!
//! # Shards
//!
//! `ListShards` gives every shard with its parents. A shard is read only after its parents are
//! finished — read to `SHARD_END` — so a partition key's records are read in order across
//! splits and merges ([`readable_shards`]); the listing is refreshed every
//! [`LISTING_INTERVAL`] and at once when a shard ends, which is when its children become
//! readable. Without leases this process reads every readable shard; with them
//! ([`super::kinesis_leases`]) it reads the shards whose leases it holds, sharing the stream
//! with the Sink's other workers, and a shard ends with its lease marked finished once its last
//! flush is in the lake — which is what lets any worker start its children.
//!
//! # Reading
//!
//! Every shard is polled on its own schedule ([`Pacer`]) within Kinesis's per-shard limits of
//! five `GetRecords` calls and 2 MiB per second: at most one call per [`MIN_CALL_INTERVAL`],
//! and after a response of `n` bytes no call before `n` / 2 MiB seconds have passed, both
//! counted from when the previous call was sent. A shard
//! that is caught up is polled every [`IDLE_POLL`]. `ProvisionedThroughputExceeded` (and any
//! other failed call) backs the shard off exponentially, from [`BACKOFF_START`] up to
//! [`BACKOFF_MAX`]; an expired iterator is replaced by one after the last record read.
//!
//! # Exactly once
//!
//! Records go through the Kafka sink's classification, [`Batcher`] (its limits per shard) and
//! background uploads, one flush in flight per shard. The lake is the only checkpoint: when
//! a shard starts, the worker finds its newest object ([`newest_for_shard`]), reads that range
//! again from its first sequence number (`AT_SEQUENCE_NUMBER`), rewrites it under the same
//! names — repairing a flush a crash cut short between two of its objects — and goes on after
//! its last sequence number. A shard without objects starts at `TRIM_HORIZON`. If the range's
//! first record is gone (retention), the range is left as it is and reading goes on after it.

use std::collections::{BTreeMap, BTreeSet};
use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::time::{Duration, Instant};

use aws_sdk_kinesis::Client;
use aws_sdk_kinesis::error::{DisplayErrorContext, SdkError};
use aws_sdk_kinesis::types::ShardIteratorType;
use base64::Engine as _;
use base64::engine::general_purpose::STANDARD as BASE64;
use futures::StreamExt;
use futures::stream::FuturesUnordered;
use serde_json::json;
use tributary_crds::sink::{ErrorTolerance, StartPosition};

use super::batch::{Batch, Batcher, Payload, Record, Trigger};
use super::config::KinesisSource;
use super::kinesis_keys::{SequenceNumber, ShardKeyError, StreamShard, newest_for_shard};
use super::kinesis_leases::{LeaseError, Leases};
use super::pipeline::{Done, FlushJob, InFlight, Uploads};
use super::store::{LakeLocation, encode_json_lines, list_keys};
use super::transform::Metadata;
use super::worker::{Entry, Sink, Sorted, WorkerError};
use crate::connect::{AwsOptions, aws_config, kinesis};

/// The least time between two `GetRecords` calls on one shard: Kinesis allows five a second.
pub const MIN_CALL_INTERVAL: Duration = Duration::from_millis(200);
/// The bytes one shard may return per second.
pub const READ_BYTES_PER_SECOND: u64 = 2 * 1024 * 1024;
/// How often a caught-up shard is polled.
pub const IDLE_POLL: Duration = Duration::from_secs(1);
/// The first back-off after a throttled or failed call.
pub const BACKOFF_START: Duration = Duration::from_millis(500);
/// The longest back-off.
pub const BACKOFF_MAX: Duration = Duration::from_secs(10);
/// How often the shards are listed when none ended.
pub const LISTING_INTERVAL: Duration = Duration::from_secs(30);

/// Why the Kinesis source stops.
#[derive(Debug, thiserror::Error)]
pub enum KinesisError {
    /// A call that the worker cannot go past failed.
    #[error("Kinesis: {what} of stream {stream}: {message}")]
    Call {
        /// What was being done.
        what: &'static str,
        /// The stream.
        stream: String,
        /// The SDK's error, with its causes.
        message: String,
    },
    /// A name, sequence number or key does not fit.
    #[error(transparent)]
    Key(#[from] ShardKeyError),
    /// The shard leases cannot be read or written.
    #[error(transparent)]
    Lease(#[from] LeaseError),
    /// `startFrom: Latest`, which this source does not offer yet.
    #[error(
        "startFrom Latest is not supported for a Kinesis source: a shard without objects starts at TRIM_HORIZON"
    )]
    StartFromLatest,
    /// `errors.tolerance: none` and a bad record.
    #[error(
        "record {stream}/{shard}@{sequence} cannot be written: {reason}; errors.tolerance is none, so the sink stops here"
    )]
    BadRecord {
        /// The stream.
        stream: String,
        /// The shard.
        shard: String,
        /// The record's sequence number.
        sequence: SequenceNumber,
        /// Why.
        reason: String,
    },
    /// A flush's upload failed.
    #[error("flushing {shard} sequence numbers {first}..={last}: {message}")]
    Flush {
        /// The shard.
        shard: String,
        /// The flush's first sequence number.
        first: SequenceNumber,
        /// The flush's last sequence number.
        last: SequenceNumber,
        /// Why.
        message: String,
    },
}

/// A shard as `ListShards` gives it: what [`readable_shards`] needs.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ShardLineage {
    /// The shard id.
    pub id: String,
    /// Its parents: one after a split, two after a merge, none for an original shard.
    pub parents: Vec<String>,
}

/// The shards that may be read now, in listing order: those not `finished` whose parents are
/// all finished. A parent that is not listed any more has aged out of the stream's retention,
/// so it counts as finished; that also lets a listing that starts in the middle of a lineage
/// (a shard whose parent is gone) be read.
pub fn readable_shards(shards: &[ShardLineage], finished: &BTreeSet<String>) -> Vec<String> {
    let listed: BTreeSet<&str> = shards.iter().map(|shard| shard.id.as_str()).collect();
    shards
        .iter()
        .filter(|shard| !finished.contains(&shard.id))
        .filter(|shard| {
            shard
                .parents
                .iter()
                .all(|parent| finished.contains(parent) || !listed.contains(parent.as_str()))
        })
        .map(|shard| shard.id.clone())
        .collect()
}

/// When a shard's next `GetRecords` call may go out, within Kinesis's per-shard limits.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Pacer {
    backoff: Option<Duration>,
}

impl Pacer {
    /// The wait after a response of `bytes` bytes; `caught_up` when the shard has nothing
    /// more for now (no records, or none behind the tip).
    pub fn after_records(&mut self, bytes: u64, caught_up: bool) -> Duration {
        self.backoff = None;
        let transfer = Duration::from_secs_f64(bytes as f64 / READ_BYTES_PER_SECOND as f64);
        let floor = if caught_up {
            IDLE_POLL
        } else {
            MIN_CALL_INTERVAL
        };
        transfer.max(floor)
    }

    /// The wait after a throttled or failed call: doubling from [`BACKOFF_START`] up to
    /// [`BACKOFF_MAX`], until a call succeeds.
    pub fn after_failure(&mut self) -> Duration {
        let next = self
            .backoff
            .map_or(BACKOFF_START, |last| (last * 2).min(BACKOFF_MAX));
        self.backoff = Some(next);
        next
    }
}

/// A record as the batcher holds it for a shard.
#[derive(Clone, Debug, PartialEq, Eq)]
struct ShardEntry {
    sequence: SequenceNumber,
    entry: Entry,
}

impl Payload for ShardEntry {
    fn size_bytes(&self) -> usize {
        self.entry.size_bytes()
    }
}

/// Where a shard's next iterator starts.
#[derive(Clone, Debug, PartialEq, Eq)]
enum Position {
    TrimHorizon,
    At(SequenceNumber),
    After(SequenceNumber),
}

/// Where a shard starts, from its newest object in the lake: read the range `first..=last`
/// again, or from the stream's oldest record.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum ShardStart {
    /// Read `first..=last` again, rewrite it, go on after `last`.
    Rewrite {
        /// The range's first sequence number.
        first: SequenceNumber,
        /// The range's last sequence number.
        last: SequenceNumber,
    },
    /// No object: start at `TRIM_HORIZON`.
    TrimHorizon,
}

/// Where `shard` of `stream` starts, given a listing of the destination.
pub fn plan_shard_start<'k>(
    keys: impl IntoIterator<Item = &'k str>,
    stream: &str,
    shard: &str,
) -> ShardStart {
    match newest_for_shard(keys, stream, shard) {
        Some(newest) => ShardStart::Rewrite {
            first: newest.first,
            last: newest.last,
        },
        None => ShardStart::TrimHorizon,
    }
}

#[derive(Debug)]
enum Phase {
    /// Reading the newest range again; `records` collects it.
    Recovering {
        first: SequenceNumber,
        last: SequenceNumber,
        records: Vec<Record<ShardEntry>>,
    },
    Live,
}

/// One shard being read.
struct Reader {
    names: StreamShard,
    iterator: Option<String>,
    position: Position,
    phase: Phase,
    next_ordinal: u64,
    pacer: Pacer,
    next_poll: Instant,
    polling: bool,
    /// When the poll in flight (or the last one) was sent: the per-shard limits count from
    /// there.
    poll_started: Instant,
    /// `MillisBehindLatest` of the last `GetRecords`.
    millis_behind: Option<i64>,
}

/// What one poll of a shard brought.
enum Polled {
    Records {
        iterator: Option<String>,
        records: Vec<aws_sdk_kinesis::types::Record>,
        millis_behind: Option<i64>,
    },
    Throttled,
    ExpiredIterator,
    Failed(String),
    Gone(String),
}

type PollFuture = Pin<Box<dyn Future<Output = (i32, Polled)> + Send>>;

/// The Kinesis loop's state.
struct Runner {
    sink: Sink,
    client: Client,
    stream: String,
    lake: LakeLocation,
    uploads: Uploads,
    batcher: Batcher<ShardEntry>,
    /// The shard leases shared with the Sink's other workers; absent: read every shard.
    leases: Option<Leases>,
    next_lease_round: Instant,
    lineage: Vec<ShardLineage>,
    finished: BTreeSet<String>,
    /// Every shard this process reads, by its batcher partition number: a new number each
    /// time a shard is started, so nothing of an earlier reading of it is mistaken for it.
    indices: BTreeMap<String, i32>,
    next_index: i32,
    names: BTreeMap<i32, StreamShard>,
    /// When each shard's last flush finished (RFC 3339).
    last_flush: BTreeMap<i32, String>,
    readers: BTreeMap<i32, Reader>,
    /// The range of each shard's flush in flight, for the error if it fails.
    flushing: BTreeMap<i32, (SequenceNumber, SequenceNumber)>,
    next_listing: Instant,
}

/// Copy `source` into the lake until `shutdown` completes, then flush what is buffered.
pub(super) async fn run(
    sink: Sink,
    source: KinesisSource,
    worker_id: Option<String>,
    shutdown: impl Future<Output = ()>,
) -> Result<(), WorkerError> {
    if sink.config.start_from == StartPosition::Latest {
        return Err(KinesisError::StartFromLatest.into());
    }
    StreamShard::new(&source.stream_name, "shardId-0").map_err(KinesisError::from)?;
    let lake = LakeLocation::parse(&sink.config.destination.url)?;
    let threshold =
        usize::try_from(sink.config.destination.multipart_threshold_bytes).unwrap_or(usize::MAX);
    let url = sink.config.destination.url.clone();
    let uploads = Uploads::new(Arc::new(InFlight::default()), threshold, || {
        LakeLocation::parse(&url).map(|lake| lake.store)
    })?;
    let options = AwsOptions {
        region: source.region.clone(),
        endpoint_url: None,
    };
    let client = kinesis(&aws_config(&options).await);
    let leases = match &source.leases {
        Some(settings) => {
            let me = worker_id
                .filter(|id| !id.is_empty())
                .unwrap_or_else(default_worker_id);
            Some(
                Leases::open(
                    &settings.url,
                    &source.stream_name,
                    &me,
                    Duration::from_millis(settings.duration_ms.max(1_000)),
                )
                .map_err(KinesisError::from)?,
            )
        }
        None => None,
    };
    tracing::info!(
        sink = %sink.config.sink,
        stream = %source.stream_name,
        destination = %sink.config.destination.url,
        worker = leases.as_ref().map(Leases::me),
        leases = source.leases.as_ref().map(|settings| settings.url.as_str()),
        "sink worker started on a Kinesis stream"
    );
    let mut runner = Runner {
        batcher: Batcher::new(sink.limits),
        sink,
        client,
        stream: source.stream_name,
        lake,
        uploads,
        leases,
        next_lease_round: Instant::now(),
        lineage: Vec::new(),
        finished: BTreeSet::new(),
        indices: BTreeMap::new(),
        next_index: 0,
        names: BTreeMap::new(),
        last_flush: BTreeMap::new(),
        readers: BTreeMap::new(),
        flushing: BTreeMap::new(),
        next_listing: Instant::now(),
    };
    runner.run(shutdown).await
}

impl Runner {
    async fn run(&mut self, shutdown: impl Future<Output = ()>) -> Result<(), WorkerError> {
        let mut polls: FuturesUnordered<PollFuture> = FuturesUnordered::new();
        let finished = self.uploads.finished.clone();
        tokio::pin!(shutdown);
        loop {
            let now = Instant::now();
            if now >= self.next_listing {
                self.refresh_shards().await?;
            }
            if self.leases.is_some() && now >= self.next_lease_round {
                self.lease_round().await?;
            }
            for (&index, reader) in &mut self.readers {
                if !reader.polling && reader.next_poll <= now {
                    reader.polling = true;
                    reader.poll_started = now;
                    polls.push(poll(&self.client, &self.stream, index, reader));
                }
            }
            let wake = [
                self.batcher.next_deadline(),
                Some(self.next_listing),
                self.leases.as_ref().map(|_| self.next_lease_round),
                self.readers
                    .values()
                    .filter(|reader| !reader.polling)
                    .map(|reader| reader.next_poll)
                    .min(),
            ]
            .into_iter()
            .flatten()
            .min();
            tokio::select! {
                biased;
                () = &mut shutdown => break,
                () = finished.notified() => self.collect_finished()?,
                Some((index, polled)) = polls.next() => self.on_polled(index, polled).await?,
                () = sleep_until(wake) => {
                    for batch in self.batcher.due(Instant::now()) {
                        self.flush_batch(batch).await?;
                    }
                }
            }
            self.sink
                .metrics
                .buffered_bytes
                .set(i64::try_from(self.batcher.buffered_bytes()).unwrap_or(i64::MAX));
        }
        tracing::info!("stopping: flushing what is buffered");
        self.drain().await?;
        tracing::info!("sink worker stopped");
        Ok(())
    }

    /// Flush every buffer and wait for the uploads, then hand the leases back. A range being
    /// recovered is not written: its objects are still in the lake, and a partial rewrite
    /// would lose records.
    async fn drain(&mut self) -> Result<(), WorkerError> {
        for batch in self.batcher.drain_all() {
            self.flush_batch(batch).await?;
        }
        self.wait_until(InFlight::is_empty).await?;
        if let Some(leases) = self.leases.as_mut() {
            // Not handing a lease back only makes the others wait for it to expire.
            for shard in leases.held() {
                if let Err(error) = leases.release(&shard).await {
                    tracing::warn!(shard, %error, "could not hand the lease back");
                }
            }
            if let Err(error) = leases.leave().await {
                tracing::warn!(%error, "could not remove the heartbeat");
            }
        }
        Ok(())
    }

    /// List the shards and, without leases, start reading those that became readable (with
    /// leases, [`Self::lease_round`] starts the shards whose leases it takes).
    async fn refresh_shards(&mut self) -> Result<(), WorkerError> {
        self.lineage = list_shards(&self.client, &self.stream).await?;
        self.next_listing = Instant::now() + LISTING_INTERVAL;
        if self.leases.is_some() {
            return Ok(());
        }
        let readable: Vec<String> = readable_shards(&self.lineage, &self.finished)
            .into_iter()
            .filter(|id| !self.indices.contains_key(id))
            .collect();
        self.start_shards(readable).await
    }

    /// Renew the leases held, take free shards, stop the shards lost and hand one back when
    /// the other workers hold fewer.
    async fn lease_round(&mut self) -> Result<(), WorkerError> {
        let Some(leases) = self.leases.as_mut() else {
            return Ok(());
        };
        for (index, reader) in &self.readers {
            leases.set_progress(
                reader.names.shard(),
                reader.millis_behind,
                self.last_flush.get(index).cloned(),
            );
        }
        let candidates: Vec<String> = self.lineage.iter().map(|s| s.id.clone()).collect();
        let (lineage, local) = (&self.lineage, &self.finished);
        let round = leases
            .round(&candidates, |finished| {
                let all: BTreeSet<String> = finished.union(local).cloned().collect();
                readable_shards(lineage, &all)
            })
            .await;
        self.next_lease_round = Instant::now() + leases.interval();
        let round = match round {
            Ok(round) => round,
            // A store that cannot hold leases, or a lease that is not one: nothing to wait for.
            Err(error @ (LeaseError::NotSupported { .. } | LeaseError::Corrupt { .. })) => {
                return Err(KinesisError::from(error).into());
            }
            // S3 failed this round: try again at the next. A shard whose renewals keep failing
            // is stopped before its lease can expire (Leases::valid), so nothing is written
            // twice meanwhile.
            Err(error) => {
                tracing::warn!(%error, "shard lease round failed; retrying");
                let now = Instant::now();
                let expired: Vec<String> = leases
                    .held()
                    .into_iter()
                    .filter(|shard| !leases.valid(shard, now))
                    .collect();
                for shard in expired {
                    self.stop_shard(&shard);
                }
                self.match_readers_to_leases().await?;
                return Ok(());
            }
        };
        for shard in round.lost {
            self.stop_shard(&shard);
        }
        if !round.finished.is_subset(&self.finished) {
            self.finished.extend(round.finished);
            self.next_listing = Instant::now();
        }
        // The shards taken are held without a reader: this starts them.
        self.match_readers_to_leases().await?;
        if let Some(shard) = round.release {
            self.release_shard(&shard).await?;
        }
        Ok(())
    }

    /// Every shard read has its lease held, and every lease held is read: a reader whose
    /// lease was dropped (a round that failed half-way) stops, and a lease held without a
    /// reader (taken, or a round that failed after taking) is started.
    async fn match_readers_to_leases(&mut self) -> Result<(), WorkerError> {
        let Some(leases) = self.leases.as_ref() else {
            return Ok(());
        };
        let held = leases.held();
        let orphans: Vec<String> = self
            .indices
            .keys()
            .filter(|shard| !held.contains(*shard))
            .cloned()
            .collect();
        let unread: Vec<String> = held
            .into_iter()
            .filter(|shard| !self.indices.contains_key(shard))
            .collect();
        for shard in orphans {
            self.stop_shard(&shard);
        }
        self.start_shards(unread).await
    }

    /// Stop reading `shard` at once and drop what is buffered of it: its lease is lost, and
    /// whoever holds it now reads on from the lake.
    fn stop_shard(&mut self, shard: &str) {
        if let Some(index) = self.indices.remove(shard) {
            tracing::warn!(shard, "stopped reading the shard: its lease is lost");
            self.readers.remove(&index);
            drop(self.batcher.revoke([index]));
            self.sink.metrics.forget_shard(self.names[&index].shard());
        }
        if let Some(leases) = self.leases.as_mut() {
            leases.drop_shard(shard);
        }
    }

    /// Flush `shard`, wait for its uploads and hand its lease back.
    async fn release_shard(&mut self, shard: &str) -> Result<(), WorkerError> {
        let Some(&index) = self.indices.get(shard) else {
            return Ok(());
        };
        tracing::info!(shard, "handing the shard back to balance the workers");
        // From here the shard is neither read nor (once handed back) held.
        self.readers.remove(&index);
        for batch in self.batcher.revoke([index]) {
            self.flush_batch(batch).await?;
        }
        self.wait_until(|in_flight| !in_flight.busy(index)).await?;
        self.indices.remove(shard);
        self.sink.metrics.forget_shard(shard);
        if let Some(leases) = self.leases.as_mut() {
            if let Some(flushed) = self.last_flush.get(&index) {
                leases.set_progress(shard, None, Some(flushed.clone()));
            }
            if let Err(error) = leases.release(shard).await {
                // Not renewed any more, it expires and is taken over then (by this worker too,
                // whose name it still carries).
                tracing::warn!(shard, %error, "could not hand the lease back");
            }
        }
        Ok(())
    }

    /// Start reading `shards`, each from its newest object in the lake.
    async fn start_shards(&mut self, shards: Vec<String>) -> Result<(), WorkerError> {
        if shards.is_empty() {
            return Ok(());
        }
        // An earlier reading of one of these shards in this process (a lease lost and taken
        // back) may still be uploading: the listing must see its objects, or the range they
        // hold would be read and written again under other names.
        for shard in &shards {
            if self.indices.contains_key(shard) {
                self.stop_shard(shard);
            }
        }
        let earlier: Vec<i32> = self
            .names
            .iter()
            .filter(|(_, names)| shards.iter().any(|shard| shard == names.shard()))
            .map(|(&index, _)| index)
            .collect();
        self.wait_until(|in_flight| earlier.iter().all(|&index| !in_flight.busy(index)))
            .await?;
        let keys = list_keys(self.lake.store.as_ref(), &self.lake.prefix).await?;
        for shard in shards {
            let start = plan_shard_start(keys.iter().map(String::as_str), &self.stream, &shard);
            tracing::info!(shard, ?start, "reading shard");
            let index = self.next_index;
            self.next_index += 1;
            self.indices.insert(shard.clone(), index);
            let names = StreamShard::new(&self.stream, &shard).map_err(KinesisError::from)?;
            self.names.insert(index, names.clone());
            let (position, phase) = match start {
                ShardStart::Rewrite { first, last } => (
                    Position::At(first.clone()),
                    Phase::Recovering {
                        first,
                        last,
                        records: Vec::new(),
                    },
                ),
                ShardStart::TrimHorizon => (Position::TrimHorizon, Phase::Live),
            };
            self.readers.insert(
                index,
                Reader {
                    names,
                    iterator: None,
                    position,
                    phase,
                    next_ordinal: 0,
                    pacer: Pacer::default(),
                    next_poll: Instant::now(),
                    polling: false,
                    poll_started: Instant::now(),
                    millis_behind: None,
                },
            );
        }
        Ok(())
    }

    async fn on_polled(&mut self, index: i32, polled: Polled) -> Result<(), WorkerError> {
        let Some(reader) = self.readers.get_mut(&index) else {
            return Ok(());
        };
        reader.polling = false;
        let now = Instant::now();
        let (iterator, records, millis_behind) = match polled {
            Polled::Records {
                iterator,
                records,
                millis_behind,
            } => (iterator, records, millis_behind),
            Polled::Throttled => {
                let wait = reader.pacer.after_failure();
                tracing::debug!(shard = reader.names.shard(), ?wait, "throttled");
                reader.next_poll = now + wait;
                return Ok(());
            }
            Polled::ExpiredIterator => {
                reader.iterator = None;
                reader.next_poll = now;
                return Ok(());
            }
            Polled::Failed(message) => {
                let wait = reader.pacer.after_failure();
                tracing::warn!(
                    shard = reader.names.shard(),
                    ?wait,
                    message,
                    "GetRecords failed"
                );
                reader.iterator = None;
                reader.next_poll = now + wait;
                return Ok(());
            }
            Polled::Gone(message) => {
                return Err(KinesisError::Call {
                    what: "reading",
                    stream: self.stream.clone(),
                    message,
                }
                .into());
            }
        };
        let bytes: u64 = records.iter().map(|r| r.data().as_ref().len() as u64).sum();
        let caught_up = records.is_empty() || millis_behind == Some(0);
        if let Some(behind) = millis_behind {
            reader.millis_behind = Some(behind);
            self.sink
                .metrics
                .set_millis_behind(reader.names.shard(), behind);
        }
        // Five calls and 2 MiB a second, counted from when this call was sent: a large answer
        // that took long to arrive has already used its share of the second.
        reader.next_poll = reader.poll_started + reader.pacer.after_records(bytes, caught_up);
        let ended = iterator.is_none();
        reader.iterator = iterator;
        for record in records {
            self.on_record(index, record).await?;
        }
        if ended {
            self.on_shard_end(index).await?;
        }
        Ok(())
    }

    async fn on_record(
        &mut self,
        index: i32,
        record: aws_sdk_kinesis::types::Record,
    ) -> Result<(), WorkerError> {
        let sequence =
            SequenceNumber::parse(record.sequence_number()).map_err(KinesisError::from)?;
        let arrival = record
            .approximate_arrival_timestamp()
            .and_then(|time| time.to_millis().ok());
        let Some(reader) = self.readers.get_mut(&index) else {
            return Ok(());
        };
        reader.position = Position::After(sequence.clone());
        self.sink.metrics.records_in.inc();
        self.sink
            .metrics
            .bytes_in
            .inc_by(record.data().as_ref().len() as u64);
        let mut entry = self.sink.classify_in(
            &self.stream,
            reader.names.shard(),
            Some(record.data().as_ref()),
            Some(record.partition_key().as_bytes()),
            arrival,
        );
        if let (Some(_), Entry::Good { metadata, .. }) = (&self.sink.config.transform, &mut entry) {
            *metadata = Some(Metadata::Kinesis {
                shard: reader.names.shard().to_owned(),
                sequence_number: sequence.as_str().to_owned(),
                arrival_millis: arrival,
                partition_key: Some(record.partition_key().to_owned()),
            });
        }
        let offset = reader.next_ordinal;
        reader.next_ordinal += 1;
        let record = Record {
            partition: index,
            offset,
            payload: ShardEntry {
                sequence: sequence.clone(),
                entry,
            },
        };
        if let Phase::Recovering {
            first,
            last,
            records,
        } = &mut reader.phase
        {
            if records.is_empty() && sequence != *first {
                // The range's first record is gone (retention): it cannot be rewritten whole,
                // so it stays as it is and reading goes on after it.
                let last = last.clone();
                tracing::warn!(shard = reader.names.shard(), %first, %sequence, "the newest range cannot be read again; keeping it");
                reader.phase = Phase::Live;
                if sequence <= last {
                    reader.position = Position::After(last);
                    reader.iterator = None;
                    return Ok(());
                }
            } else if sequence <= *last {
                let done = sequence == *last;
                records.push(record);
                if !done {
                    return Ok(());
                }
                let (first, last) = (first.clone(), last.clone());
                let records = std::mem::take(records);
                reader.phase = Phase::Live;
                return self
                    .flush(index, first, last, Trigger::Recovery, records)
                    .await;
            } else {
                let (first, last) = (first.clone(), last.clone());
                let records = std::mem::take(records);
                reader.phase = Phase::Live;
                self.flush(index, first, last, Trigger::Recovery, records)
                    .await?;
            }
        }
        if let (Entry::Bad { reason, .. }, ErrorTolerance::None) =
            (&record.payload.entry, self.sink.config.errors.tolerance)
        {
            let error = KinesisError::BadRecord {
                stream: self.stream.clone(),
                shard: self.names[&index].shard().to_owned(),
                sequence,
                reason: reason.clone(),
            };
            tracing::error!(%error, "stopping at a bad record");
            self.drain().await?;
            return Err(error.into());
        }
        match self.batcher.push(record, Instant::now()) {
            Ok(batches) => {
                for batch in batches {
                    self.flush_batch(batch).await?;
                }
            }
            Err(redelivered) => {
                self.sink.metrics.redeliveries.inc();
                tracing::debug!(%redelivered);
            }
        }
        Ok(())
    }

    /// The shard is read to its end: flush it, wait for its uploads and, with leases, mark
    /// its lease finished. Its children may become readable.
    async fn on_shard_end(&mut self, index: i32) -> Result<(), WorkerError> {
        let Some(reader) = self.readers.remove(&index) else {
            return Ok(());
        };
        let shard = reader.names.shard().to_owned();
        if let Phase::Recovering {
            first,
            last,
            records,
        } = reader.phase
            && !records.is_empty()
        {
            self.flush(index, first, last, Trigger::Recovery, records)
                .await?;
        }
        for batch in self.batcher.revoke([index]) {
            self.flush_batch(batch).await?;
        }
        self.wait_until(|in_flight| !in_flight.busy(index)).await?;
        if let Some(leases) = self.leases.as_mut() {
            // Everything read from the shard is in the lake, so marking it finished is right
            // even if renewals lagged meanwhile; the write is conditional, so it fails if
            // another worker took the lease.
            if let Some(flushed) = self.last_flush.get(&index) {
                leases.set_progress(&shard, Some(0), Some(flushed.clone()));
            }
            let marked = leases.finish(&shard).await.unwrap_or_else(|error| {
                tracing::warn!(shard, %error, "could not mark the lease finished");
                false
            });
            if !marked {
                // Its holder (or, once it expires, the next one) reads the end again,
                // rewriting the newest range, and marks it.
                self.stop_shard(&shard);
                return Ok(());
            }
        }
        self.indices.remove(&shard);
        self.sink.metrics.forget_shard(&shard);
        tracing::info!(shard, "shard finished");
        self.finished.insert(shard);
        self.next_listing = Instant::now();
        Ok(())
    }

    async fn flush_batch(&mut self, batch: Batch<ShardEntry>) -> Result<(), WorkerError> {
        let (index, trigger) = (batch.partition(), batch.trigger());
        let records = batch.into_records();
        let (Some(first), Some(last)) = (records.first(), records.last()) else {
            return Ok(());
        };
        let (first, last) = (
            first.payload.sequence.clone(),
            last.payload.sequence.clone(),
        );
        self.flush(index, first, last, trigger, records).await
    }

    /// Write `records`, the flush of `first..=last` of the shard numbered `index`: dead
    /// letters first, then one object per path, all named with the range. The uploads run in
    /// the background after the shard's previous flush and within the memory budget.
    async fn flush(
        &mut self,
        index: i32,
        first: SequenceNumber,
        last: SequenceNumber,
        trigger: Trigger,
        records: Vec<Record<ShardEntry>>,
    ) -> Result<(), WorkerError> {
        let (Some(first_ordinal), Some(last_ordinal)) = (
            records.first().map(|r| r.offset),
            records.last().map(|r| r.offset),
        ) else {
            return Ok(());
        };
        let started = Instant::now();
        let names = self.names[&index].clone();
        if let Some(leases) = &self.leases
            && !leases.valid(names.shard(), started)
        {
            // Renewals failed for too long (or the lease is gone): another worker may hold the
            // shard by now. Nothing of this flush is written; the shard stops here, and its
            // next holder reads it again from the newest object in the lake.
            tracing::warn!(shard = names.shard(), %first, %last, "not flushing a shard whose lease is not held");
            self.stop_shard(names.shard());
            return Ok(());
        }
        let stream = &self.stream;
        let Sorted {
            paths,
            good,
            dead,
            first_dead,
        } = Sorted::new(
            records.into_iter().map(|r| {
                let ShardEntry { sequence, entry } = r.payload;
                (sequence, entry)
            }),
            |sequence, bad| {
                dead_letter_line(
                    stream,
                    names.shard(),
                    sequence,
                    bad.timestamp,
                    &bad.reason,
                    bad.key.as_deref(),
                    bad.value.as_deref(),
                )
            },
        );
        let dead = match first_dead {
            Some(sequence) => {
                let key = names
                    .dead_letter_key(&self.sink.config.dead_letter_prefix, &sequence)
                    .map_err(KinesisError::from)?;
                let bytes = encode_json_lines(&dead, super::keys::Extension::Json)?;
                self.sink.metrics.bytes_out.inc_by(bytes.len() as u64);
                Some((key, bytes, dead.len() as u64))
            }
            None => None,
        };
        let extension = self.sink.encoder.extension();
        let mut objects = Vec::with_capacity(paths.len());
        for (path, (lines, metadata)) in paths {
            let key = names
                .object_key(&self.lake.prefix, &path, &first, &last, extension)
                .map_err(KinesisError::from)?;
            let Some(bytes) = self
                .sink
                .encode_object(&self.stream, &lines, &metadata)
                .await?
            else {
                continue;
            };
            self.sink.metrics.bytes_out.inc_by(bytes.len() as u64);
            objects.push((key, bytes));
        }
        let job = FlushJob {
            partition: index,
            offsets: first_ordinal..=last_ordinal,
            trigger,
            dead,
            objects,
            good,
            started,
            abort_after_upload: false,
        };
        // One flush in flight per shard keeps its objects in order: the newest object in the
        // lake then has every range before it complete.
        let (bytes, budget) = (job.bytes(), self.sink.limits.memory_budget_bytes);
        self.wait_until(|in_flight| {
            !in_flight.busy(index) && (in_flight.is_empty() || in_flight.bytes() + bytes <= budget)
        })
        .await?;
        // The wait above may have been long (uploads before this one): check again.
        if let Some(leases) = &self.leases
            && !leases.valid(names.shard(), Instant::now())
        {
            tracing::warn!(shard = names.shard(), %first, %last, "not flushing a shard whose lease is not held");
            self.stop_shard(names.shard());
            return Ok(());
        }
        tracing::debug!(shard = names.shard(), %first, %last, trigger = trigger.label(), "flushing");
        self.flushing.insert(index, (first, last));
        // Nothing to commit: the lake is the checkpoint.
        self.uploads.spawn(job, |_, _, _| Ok(()));
        Ok(())
    }

    /// Wait, taking in finished flushes, until `ready` holds for the flushes in flight.
    async fn wait_until(&mut self, ready: impl Fn(&InFlight) -> bool) -> Result<(), WorkerError> {
        loop {
            self.collect_finished()?;
            if ready(&self.uploads.in_flight) {
                return Ok(());
            }
            let finished = self.uploads.finished.clone();
            finished.notified().await;
        }
    }

    /// Count the flushes that finished; the first one that failed stops the worker.
    fn collect_finished(&mut self) -> Result<(), WorkerError> {
        for Done { job, result } in self.uploads.take_done() {
            let shard = self.names[&job.partition].shard().to_owned();
            let range = self.flushing.remove(&job.partition);
            let now = result.map_err(|message| {
                let (first, last) = range.unwrap_or_else(|| {
                    let zero = SequenceNumber::parse("0").expect("a sequence number");
                    (zero.clone(), zero)
                });
                KinesisError::Flush {
                    shard: shard.clone(),
                    first,
                    last,
                    message,
                }
            })?;
            if let Some((key, _, records)) = &job.dead {
                self.sink.metrics.objects.inc();
                self.sink.metrics.dead_letters.inc_by(*records);
                tracing::warn!(shard, key, records, "dead letters written");
            }
            self.sink.metrics.objects.inc_by(job.objects.len() as u64);
            self.sink.metrics.records_out.inc_by(job.good);
            self.last_flush.insert(job.partition, now.to_string());
            self.sink.metrics.flushed(
                job.trigger,
                job.started.elapsed().as_secs_f64(),
                now.as_millisecond() as f64 / 1000.0,
            );
        }
        Ok(())
    }
}

/// One poll of a shard: an iterator if it has none, then `GetRecords`.
fn poll(client: &Client, stream: &str, index: i32, reader: &Reader) -> PollFuture {
    let (client, stream, shard) = (
        client.clone(),
        stream.to_owned(),
        reader.names.shard().to_owned(),
    );
    let (iterator, position) = (reader.iterator.clone(), reader.position.clone());
    Box::pin(async move {
        let iterator = match iterator {
            Some(iterator) => iterator,
            None => {
                let request = client
                    .get_shard_iterator()
                    .stream_name(&stream)
                    .shard_id(&shard);
                let request = match &position {
                    Position::TrimHorizon => {
                        request.shard_iterator_type(ShardIteratorType::TrimHorizon)
                    }
                    Position::At(sequence) => request
                        .shard_iterator_type(ShardIteratorType::AtSequenceNumber)
                        .starting_sequence_number(sequence.as_str()),
                    Position::After(sequence) => request
                        .shard_iterator_type(ShardIteratorType::AfterSequenceNumber)
                        .starting_sequence_number(sequence.as_str()),
                };
                match request.send().await {
                    Ok(output) => match output.shard_iterator {
                        Some(iterator) => iterator,
                        None => return (index, Polled::Failed("no shard iterator".into())),
                    },
                    Err(error) => {
                        let throttled = error
                            .as_service_error()
                            .is_some_and(|e| e.is_provisioned_throughput_exceeded_exception());
                        let gone = error
                            .as_service_error()
                            .is_some_and(|e| e.is_resource_not_found_exception());
                        return (index, classify_error(throttled, false, gone, &error));
                    }
                }
            }
        };
        match client.get_records().shard_iterator(iterator).send().await {
            Ok(output) => (
                index,
                Polled::Records {
                    iterator: output.next_shard_iterator,
                    records: output.records,
                    millis_behind: output.millis_behind_latest,
                },
            ),
            Err(error) => {
                let service = error.as_service_error();
                let throttled = service.is_some_and(|e| {
                    e.is_provisioned_throughput_exceeded_exception()
                        || e.is_kms_throttling_exception()
                });
                let expired = service.is_some_and(|e| e.is_expired_iterator_exception());
                let gone = service.is_some_and(|e| e.is_resource_not_found_exception());
                (index, classify_error(throttled, expired, gone, &error))
            }
        }
    })
}

fn classify_error<E, R>(
    throttled: bool,
    expired: bool,
    gone: bool,
    error: &SdkError<E, R>,
) -> Polled
where
    E: std::error::Error + 'static,
    R: std::fmt::Debug,
{
    if throttled {
        Polled::Throttled
    } else if expired {
        Polled::ExpiredIterator
    } else if gone {
        Polled::Gone(DisplayErrorContext(error).to_string())
    } else {
        Polled::Failed(DisplayErrorContext(error).to_string())
    }
}

/// Every shard of `stream` with its parents, following `ListShards`'s pages.
async fn list_shards(client: &Client, stream: &str) -> Result<Vec<ShardLineage>, KinesisError> {
    let mut shards = Vec::new();
    let mut next_token: Option<String> = None;
    loop {
        // A page token carries the stream; the API refuses both together.
        let request = match &next_token {
            Some(token) => client.list_shards().next_token(token),
            None => client.list_shards().stream_name(stream),
        };
        let output = request.send().await.map_err(|error| KinesisError::Call {
            what: "listing the shards",
            stream: stream.to_owned(),
            message: DisplayErrorContext(&error).to_string(),
        })?;
        for shard in output.shards() {
            shards.push(ShardLineage {
                id: shard.shard_id().to_owned(),
                parents: [shard.parent_shard_id(), shard.adjacent_parent_shard_id()]
                    .into_iter()
                    .flatten()
                    .map(str::to_owned)
                    .collect(),
            });
        }
        match output.next_token {
            Some(token) if !token.is_empty() => next_token = Some(token),
            _ => return Ok(shards),
        }
    }
}

/// This process's name among the workers when none is given: `<hostname>-<pid>`.
fn default_worker_id() -> String {
    let host = std::fs::read_to_string("/proc/sys/kernel/hostname")
        .ok()
        .map(|name| name.trim().to_owned())
        .filter(|name| !name.is_empty())
        .unwrap_or_else(|| "worker".to_owned());
    format!("{host}-{}", std::process::id())
}

/// Sleep until `deadline`, or forever without one.
async fn sleep_until(deadline: Option<Instant>) {
    match deadline {
        Some(deadline) => tokio::time::sleep_until(deadline.into()).await,
        None => std::future::pending().await,
    }
}

/// One line of a dead-letter object: where the record was, why it was refused, and its
/// original bytes (base64, and as text when they are UTF-8).
fn dead_letter_line(
    stream: &str,
    shard: &str,
    sequence: &SequenceNumber,
    timestamp: Option<i64>,
    reason: &str,
    key: Option<&[u8]>,
    value: Option<&[u8]>,
) -> Vec<u8> {
    fn text(bytes: Option<&[u8]>) -> Option<&str> {
        bytes.and_then(|b| std::str::from_utf8(b).ok())
    }
    json!({
        "stream": stream,
        "shardId": shard,
        "sequenceNumber": sequence.as_str(),
        "timestamp": timestamp,
        "reason": reason,
        "partitionKey": text(key),
        "value": text(value),
        "valueBase64": value.map(|v| BASE64.encode(v)),
    })
    .to_string()
    .into_bytes()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::sink::keys::Extension;

    fn shard(id: &str, parents: &[&str]) -> ShardLineage {
        ShardLineage {
            id: id.to_owned(),
            parents: parents.iter().map(|p| (*p).to_owned()).collect(),
        }
    }

    fn set(ids: &[&str]) -> BTreeSet<String> {
        ids.iter().map(|id| (*id).to_owned()).collect()
    }

    /// 0 and 1 are split into 2, 3 and 4, 5; then 3 and 4 are merged into 6.
    fn lineage() -> Vec<ShardLineage> {
        vec![
            shard("s0", &[]),
            shard("s1", &[]),
            shard("s2", &["s0"]),
            shard("s3", &["s0"]),
            shard("s4", &["s1"]),
            shard("s5", &["s1"]),
            shard("s6", &["s3", "s4"]),
        ]
    }

    #[test]
    fn children_wait_for_their_parents() {
        let shards = lineage();
        assert_eq!(readable_shards(&shards, &set(&[])), ["s0", "s1"]);
        // A split: s0's children are readable once s0 is finished, s1's are not yet.
        assert_eq!(readable_shards(&shards, &set(&["s0"])), ["s1", "s2", "s3"]);
        assert_eq!(
            readable_shards(&shards, &set(&["s0", "s1"])),
            ["s2", "s3", "s4", "s5"]
        );
    }

    #[test]
    fn a_merge_waits_for_both_parents() {
        let shards = lineage();
        let only_one = readable_shards(&shards, &set(&["s0", "s1", "s3"]));
        assert!(!only_one.contains(&"s6".to_owned()), "{only_one:?}");
        assert_eq!(
            readable_shards(&shards, &set(&["s0", "s1", "s3", "s4"])),
            ["s2", "s5", "s6"]
        );
        let all = set(&["s0", "s1", "s2", "s3", "s4", "s5", "s6"]);
        assert!(readable_shards(&shards, &all).is_empty());
    }

    #[test]
    fn parents_past_retention_count_as_finished() {
        // s0 and s1 aged out of the listing: their children are readable at once; s6 still
        // waits for s3 and s4, which are listed.
        let shards: Vec<_> = lineage().into_iter().skip(2).collect();
        assert_eq!(
            readable_shards(&shards, &set(&[])),
            ["s2", "s3", "s4", "s5"]
        );
    }

    #[test]
    fn polls_stay_within_the_per_shard_limits() {
        let mut pacer = Pacer::default();
        // Behind the tip: as fast as five calls a second allow.
        assert_eq!(pacer.after_records(1000, false), MIN_CALL_INTERVAL);
        // 4 MiB at 2 MiB/s: two seconds before the next call.
        assert_eq!(
            pacer.after_records(4 * 1024 * 1024, false),
            Duration::from_secs(2)
        );
        // Caught up: once a second.
        assert_eq!(pacer.after_records(0, true), IDLE_POLL);
        assert_eq!(
            pacer.after_records(10 * 1024 * 1024, true),
            Duration::from_secs(5)
        );
    }

    #[test]
    fn throttling_backs_off_exponentially_until_a_call_succeeds() {
        let mut pacer = Pacer::default();
        let waits: Vec<_> = (0..7).map(|_| pacer.after_failure()).collect();
        let millis: Vec<_> = waits.iter().map(Duration::as_millis).collect();
        assert_eq!(millis, [500, 1000, 2000, 4000, 8000, 10_000, 10_000]);
        assert_eq!(pacer.after_records(0, false), MIN_CALL_INTERVAL);
        assert_eq!(pacer.after_failure(), BACKOFF_START);
    }

    #[test]
    fn a_shard_resumes_by_rewriting_its_newest_range() {
        let seq = |s: &str| SequenceNumber::parse(s).unwrap();
        let names = StreamShard::new("clicks", "shardId-000000000001").unwrap();
        let key = |first: &str, last: &str, path: &str| {
            names
                .object_key("raw", path, &seq(first), &seq(last), Extension::Json)
                .unwrap()
        };
        let other = StreamShard::new("clicks", "shardId-000000000002")
            .unwrap()
            .object_key("raw", "", &seq("900"), &seq("999"), Extension::Json)
            .unwrap();
        let keys = [
            key("100", "199", "dt=1"),
            key("200", "250", "dt=1"),
            key("200", "250", "dt=2"),
            other,
        ];
        let keys = keys.iter().map(String::as_str);
        assert_eq!(
            plan_shard_start(keys.clone(), "clicks", "shardId-000000000001"),
            ShardStart::Rewrite {
                first: seq("200"),
                last: seq("250")
            }
        );
        assert_eq!(
            plan_shard_start(keys, "clicks", "shardId-000000000003"),
            ShardStart::TrimHorizon
        );
    }
}
