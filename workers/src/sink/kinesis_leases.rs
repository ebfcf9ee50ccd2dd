//! Shard leases: how several sink workers share the shards of one Kinesis stream
//! (decision 0042).
//!
//! A lease is a small JSON object per shard, [`Lease`], written next to the lake with S3
//! conditional writes: created with `If-None-Match: *`, renewed, taken over and released with
//! `If-Match: <etag>`. Two workers racing for one lease cannot both win: the loser's write is
//! refused and it leaves the shard alone. Each worker also keeps a heartbeat object, rewritten at
//! every round, so the others know how many workers share the shards before it holds any.
//!
//! # Time
//!
//! No worker trusts another's clock. A lease (or heartbeat) is *expired* when the holder and
//! counter a worker reads have stood still for the lease duration on the reader's own monotonic
//! clock — as the Kinesis Client Library does. The holder stops reading and uploading a shard
//! once its last successful renewal started more than [`Leases::safe_for`] ago (two thirds of the
//! duration), so it has stopped before anyone may take the shard over.
//!
//! # Balance
//!
//! [`plan`] is the pure decision of one round: take free shards (no lease, a released one, an
//! expired one) up to `ceil(readable shards / live workers)`, and, when nothing is free and this
//! worker holds more than one shard above the least-loaded live worker, release one. A released
//! shard is flushed first — its objects are in the lake before the lease says it is free — so
//! the next holder rewrites its newest range and goes on exactly where this one stopped.
//!
//! # Finished shards
//!
//! A shard read to `SHARD_END` keeps its lease with `finished: true`, written after its last
//! flush is in the lake. That flag is what lets any worker start its children.

use std::collections::{BTreeMap, BTreeSet};
use std::sync::Arc;
use std::time::{Duration, Instant};

use futures::StreamExt;
use object_store::path::Path;
use object_store::{ObjectStore, ObjectStoreExt, PutMode, PutOptions, PutPayload, UpdateVersion};
use serde::{Deserialize, Serialize};

use super::store::{LakeLocation, StoreError};

/// How long a lease lasts without renewal, unless configured.
pub const DEFAULT_LEASE_DURATION: Duration = Duration::from_secs(10);

/// The lease object of one shard.
#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq, Eq)]
#[serde(rename_all = "camelCase")]
pub struct Lease {
    /// The worker holding the shard; empty once released.
    #[serde(default)]
    pub owner: String,
    /// Bumped at every write: a lease whose owner and counter stand still for the lease
    /// duration has expired.
    #[serde(default)]
    pub counter: u64,
    /// The shard was read to `SHARD_END` and everything read from it is in the lake.
    #[serde(default)]
    pub finished: bool,
    /// How far the holder's reading is behind the tip of the shard, from its last
    /// `GetRecords` (`MillisBehindLatest`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub millis_behind_latest: Option<i64>,
    /// When the holder's last flush of this shard finished (RFC 3339).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub last_flush_time: Option<String>,
}

/// Why a lease operation failed, other than losing a race.
#[derive(Debug, thiserror::Error)]
pub enum LeaseError {
    /// The lease location does not open.
    #[error(transparent)]
    Store(#[from] StoreError),
    /// The store refused or failed a call.
    #[error("shard leases at {location}: {what}: {source}")]
    Call {
        /// The lease location.
        location: String,
        /// What was being done.
        what: &'static str,
        /// The store's error.
        #[source]
        source: object_store::Error,
    },
    /// The store cannot write conditionally (a local directory).
    #[error(
        "shard leases at {location} need an object store with conditional writes (s3://): {reason}; a Sink reading a Stream into a local directory runs one worker, without leases"
    )]
    NotSupported {
        /// The lease location.
        location: String,
        /// What the store said.
        reason: String,
    },
    /// A lease object is not a lease.
    #[error("shard lease {key} is not a lease document: {source}")]
    Corrupt {
        /// The object's key.
        key: String,
        /// The parser's error.
        #[source]
        source: serde_json::Error,
    },
}

/// What a round knows of one shard's lease.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum LeaseState {
    /// No lease, a released one, or an expired one: anybody may take it.
    Free,
    /// Held by a live worker, maybe this one.
    Held(String),
    /// Read to its end.
    Finished,
}

/// One round's decision for this worker.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Plan {
    /// Free shards to take, in order.
    pub take: Vec<String>,
    /// A held shard to hand back, to make room for a worker with fewer.
    pub release: Option<String>,
}

/// The decision of one round for worker `me`, which reads the shards `held`: `readable` are the
/// shards whose parents are finished and that are not finished themselves, `leases` what the
/// round read of them, `workers` the live workers it saw (heartbeats), besides itself.
pub fn plan(
    me: &str,
    readable: &[String],
    leases: &BTreeMap<String, LeaseState>,
    held: &BTreeSet<String>,
    workers: &BTreeSet<String>,
) -> Plan {
    let mut load: BTreeMap<&str, usize> = workers.iter().map(|w| (w.as_str(), 0)).collect();
    load.insert(me, held.len());
    let mut free = Vec::new();
    for shard in readable {
        if held.contains(shard) {
            continue;
        }
        match leases.get(shard) {
            Some(LeaseState::Held(owner)) if owner != me => *load.entry(owner).or_default() += 1,
            Some(LeaseState::Finished) => {}
            // No lease, a free one, or one this worker's name holds but this process does not
            // read: a previous run of this worker (the same pod, restarted) left it.
            _ => free.push(shard.clone()),
        }
    }
    let total = readable
        .iter()
        .filter(|shard| leases.get(*shard) != Some(&LeaseState::Finished))
        .count();
    let target = total.div_ceil(load.len());
    let take: Vec<String> = free
        .into_iter()
        .take(target.saturating_sub(held.len()))
        .collect();
    let least = load
        .iter()
        .filter(|(worker, _)| **worker != me)
        .map(|(_, count)| *count)
        .min();
    let release = match least {
        Some(least)
            if take.is_empty() && held.len() > least + 1 && free_none(readable, leases, held) =>
        {
            held.iter().next_back().cloned()
        }
        _ => None,
    };
    Plan { take, release }
}

/// Whether every readable shard is held or finished.
fn free_none(
    readable: &[String],
    leases: &BTreeMap<String, LeaseState>,
    held: &BTreeSet<String>,
) -> bool {
    readable.iter().all(|shard| {
        held.contains(shard)
            || matches!(
                leases.get(shard),
                Some(LeaseState::Held(_) | LeaseState::Finished)
            )
    })
}

/// When each lease and heartbeat last changed, on this worker's clock.
#[derive(Debug, Default)]
pub struct Watch {
    seen: BTreeMap<String, (String, Instant)>,
}

impl Watch {
    /// Note that `key` reads `fingerprint` at `now`; the instant it last changed.
    pub fn observe(&mut self, key: &str, fingerprint: String, now: Instant) -> Instant {
        match self.seen.get(key) {
            Some((seen, since)) if *seen == fingerprint => *since,
            _ => {
                self.seen.insert(key.to_owned(), (fingerprint, now));
                now
            }
        }
    }

    /// Forget `key` (its object is gone).
    pub fn forget(&mut self, key: &str) {
        self.seen.remove(key);
    }
}

/// A lease this worker holds.
#[derive(Clone, Debug)]
struct Held {
    lease: Lease,
    version: UpdateVersion,
    /// When the last successful renewal (or the take) started.
    renewed: Instant,
}

/// What a round found.
#[derive(Debug, Default)]
pub struct Round {
    /// Shards taken this round: start reading them.
    pub taken: Vec<String>,
    /// Shards lost this round (another worker took them, or renewals failed for too long):
    /// stop reading them at once and drop what is buffered.
    pub lost: Vec<String>,
    /// A shard to release: flush it, then call [`Leases::release`].
    pub release: Option<String>,
    /// Every shard known to be finished.
    pub finished: BTreeSet<String>,
}

/// This worker's side of the shard leases of one stream.
pub struct Leases {
    store: Arc<dyn ObjectStore>,
    /// `<prefix>/<stream>`: leases under `shards/`, heartbeats under `workers/`.
    base: String,
    location: String,
    me: String,
    duration: Duration,
    watch: Watch,
    held: BTreeMap<String, Held>,
    finished: BTreeSet<String>,
    heartbeat: u64,
    /// Progress to write at the next renewal, per shard.
    progress: BTreeMap<String, (Option<i64>, Option<String>)>,
}

impl Leases {
    /// The leases of `stream` under `url` (`s3://bucket/prefix`), for worker `me`.
    pub fn open(url: &str, stream: &str, me: &str, duration: Duration) -> Result<Self, LeaseError> {
        if !url.starts_with("s3://") {
            return Err(LeaseError::NotSupported {
                location: url.to_owned(),
                reason: "not an s3:// location".to_owned(),
            });
        }
        let lake = LakeLocation::parse(url)?;
        Ok(Self::new(
            lake.store,
            &lake.prefix,
            url,
            stream,
            me,
            duration,
        ))
    }

    /// The leases of `stream` under `prefix` of `store`.
    pub fn new(
        store: Arc<dyn ObjectStore>,
        prefix: &str,
        location: &str,
        stream: &str,
        me: &str,
        duration: Duration,
    ) -> Self {
        let base = if prefix.is_empty() {
            stream.to_owned()
        } else {
            format!("{prefix}/{stream}")
        };
        Self {
            store,
            base,
            location: location.to_owned(),
            me: me.to_owned(),
            duration,
            watch: Watch::default(),
            held: BTreeMap::new(),
            finished: BTreeSet::new(),
            heartbeat: 0,
            progress: BTreeMap::new(),
        }
    }

    /// This worker's name.
    pub fn me(&self) -> &str {
        &self.me
    }

    /// How often a round should run: five times per lease duration.
    pub fn interval(&self) -> Duration {
        self.duration / 5
    }

    /// How long after its last renewal started this worker may still read and upload a shard:
    /// two thirds of the lease duration, so it stops before another worker may take over.
    pub fn safe_for(&self) -> Duration {
        self.duration * 2 / 3
    }

    /// Whether this worker holds `shard` and may still upload its records.
    pub fn valid(&self, shard: &str, now: Instant) -> bool {
        self.held
            .get(shard)
            .is_some_and(|held| now.duration_since(held.renewed) < self.safe_for())
    }

    /// The shards this worker holds.
    pub fn held(&self) -> BTreeSet<String> {
        self.held.keys().cloned().collect()
    }

    /// Note a shard's reading progress, written with its next renewal.
    pub fn set_progress(
        &mut self,
        shard: &str,
        millis_behind: Option<i64>,
        last_flush: Option<String>,
    ) {
        let entry = self.progress.entry(shard.to_owned()).or_default();
        if millis_behind.is_some() {
            entry.0 = millis_behind;
        }
        if last_flush.is_some() {
            entry.1 = last_flush;
        }
    }

    fn shard_path(&self, shard: &str) -> Path {
        Path::from(format!("{}/shards/{shard}.json", self.base))
    }

    fn worker_path(&self, worker: &str) -> Path {
        Path::from(format!("{}/workers/{worker}.json", self.base))
    }

    fn call(&self, what: &'static str) -> impl FnOnce(object_store::Error) -> LeaseError + '_ {
        move |source| match source {
            object_store::Error::NotImplemented { .. } => LeaseError::NotSupported {
                location: self.location.clone(),
                reason: source.to_string(),
            },
            source => LeaseError::Call {
                location: self.location.clone(),
                what,
                source,
            },
        }
    }

    /// Read the lease of `shard`, with the version a conditional write needs.
    async fn read(&self, shard: &str) -> Result<Option<(Lease, UpdateVersion)>, LeaseError> {
        let path = self.shard_path(shard);
        let result = match self.store.get(&path).await {
            Ok(result) => result,
            Err(object_store::Error::NotFound { .. }) => return Ok(None),
            Err(error) => return Err(self.call("reading a lease")(error)),
        };
        let version = UpdateVersion {
            e_tag: result.meta.e_tag.clone(),
            version: result.meta.version.clone(),
        };
        let bytes = result.bytes().await.map_err(self.call("reading a lease"))?;
        let lease = serde_json::from_slice(&bytes).map_err(|source| LeaseError::Corrupt {
            key: path.to_string(),
            source,
        })?;
        Ok(Some((lease, version)))
    }

    /// Write `lease` for `shard`: create it (`version` absent) or replace the version read.
    /// `None` when another worker wrote first.
    async fn write(
        &self,
        shard: &str,
        lease: &Lease,
        version: Option<UpdateVersion>,
    ) -> Result<Option<UpdateVersion>, LeaseError> {
        let body = serde_json::to_vec(lease).expect("a lease serializes");
        let mode = match version {
            Some(version) => PutMode::Update(version),
            None => PutMode::Create,
        };
        let options = PutOptions {
            mode,
            ..PutOptions::default()
        };
        match self
            .store
            .put_opts(&self.shard_path(shard), PutPayload::from(body), options)
            .await
        {
            Ok(result) => Ok(Some(UpdateVersion {
                e_tag: result.e_tag,
                version: result.version,
            })),
            Err(
                object_store::Error::Precondition { .. }
                | object_store::Error::AlreadyExists { .. },
            ) => Ok(None),
            Err(error) => Err(self.call("writing a lease")(error)),
        }
    }

    /// The live workers other than this one, from their heartbeats; this worker's own is
    /// written first.
    async fn workers(&mut self, now: Instant) -> Result<BTreeSet<String>, LeaseError> {
        self.heartbeat += 1;
        let beat = serde_json::to_vec(&Lease {
            owner: self.me.clone(),
            counter: self.heartbeat,
            ..Lease::default()
        })
        .expect("a heartbeat serializes");
        self.store
            .put(&self.worker_path(&self.me), PutPayload::from(beat))
            .await
            .map_err(self.call("writing the heartbeat"))?;
        let prefix = Path::from(format!("{}/workers", self.base));
        let mut listing = self.store.list(Some(&prefix));
        let mut live = BTreeSet::new();
        while let Some(meta) = listing.next().await {
            let meta = meta.map_err(self.call("listing the heartbeats"))?;
            let Some(worker) = meta
                .location
                .filename()
                .and_then(|name| name.strip_suffix(".json"))
                .map(str::to_owned)
            else {
                continue;
            };
            if worker == self.me {
                continue;
            }
            let fingerprint = format!("{:?}/{:?}", meta.e_tag, meta.size);
            let key = format!("worker/{worker}");
            let since = self.watch.observe(&key, fingerprint, now);
            if now.duration_since(since) < self.duration {
                live.insert(worker);
            }
        }
        Ok(live)
    }

    /// One round: write the heartbeat, renew the held leases, read the others, take free
    /// shards among `readable` (the shards whose parents are finished), and decide whether to
    /// release one. `candidates` are every shard that may need a lease read: the listed ones
    /// not known to be finished.
    pub async fn round(
        &mut self,
        candidates: &[String],
        readable: impl Fn(&BTreeSet<String>) -> Vec<String>,
    ) -> Result<Round, LeaseError> {
        let started = Instant::now();
        let mut round = Round::default();
        let workers = self.workers(started).await?;

        // Renew what is held.
        let held: Vec<String> = self.held.keys().cloned().collect();
        for shard in held {
            let Some(mut entry) = self.held.get(&shard).cloned() else {
                continue;
            };
            entry.lease.counter += 1;
            if let Some((behind, flushed)) = self.progress.get(&shard) {
                entry.lease.millis_behind_latest = *behind;
                entry.lease.last_flush_time.clone_from(flushed);
            }
            match self
                .write(&shard, &entry.lease, Some(entry.version.clone()))
                .await
            {
                Ok(Some(version)) => {
                    entry.version = version;
                    entry.renewed = started;
                    self.held.insert(shard, entry);
                }
                Ok(None) => {
                    tracing::warn!(shard, "lease taken over by another worker");
                    self.held.remove(&shard);
                    round.lost.push(shard);
                }
                Err(error) => {
                    tracing::warn!(shard, %error, "renewing a lease failed");
                    if !self.valid(&shard, Instant::now()) {
                        self.held.remove(&shard);
                        round.lost.push(shard);
                    }
                }
            }
        }

        // Read the others.
        let mut states = BTreeMap::new();
        let mut versions = BTreeMap::new();
        let unread: Vec<String> = candidates
            .iter()
            .filter(|shard| !self.finished.contains(*shard) && !self.held.contains_key(*shard))
            .cloned()
            .collect();
        let reads = futures::future::join_all(unread.iter().map(|shard| self.read(shard))).await;
        let now = Instant::now();
        for (shard, read) in unread.into_iter().zip(reads) {
            let key = format!("shard/{shard}");
            let state = match read? {
                None => {
                    self.watch.forget(&key);
                    LeaseState::Free
                }
                Some((lease, version)) => {
                    let state = if lease.finished {
                        self.finished.insert(shard.clone());
                        LeaseState::Finished
                    } else if lease.owner.is_empty() {
                        LeaseState::Free
                    } else {
                        let fingerprint = format!("{}/{}", lease.owner, lease.counter);
                        let since = self.watch.observe(&key, fingerprint, now);
                        if now.duration_since(since) >= self.duration {
                            LeaseState::Free
                        } else {
                            LeaseState::Held(lease.owner.clone())
                        }
                    };
                    versions.insert(shard.clone(), (lease, version));
                    state
                }
            };
            states.insert(shard, state);
        }
        for shard in self.held.keys() {
            states.insert(shard.clone(), LeaseState::Held(self.me.clone()));
        }

        let readable = readable(&self.finished);
        let decision = plan(&self.me, &readable, &states, &self.held(), &workers);
        for shard in decision.take {
            let previous = versions.remove(&shard);
            let counter = previous.as_ref().map_or(0, |(lease, _)| lease.counter) + 1;
            let lease = Lease {
                owner: self.me.clone(),
                counter,
                ..Lease::default()
            };
            let taken_at = Instant::now();
            let written = match self
                .write(&shard, &lease, previous.map(|(_, version)| version))
                .await
            {
                Ok(written) => written,
                // What was taken so far is held: return it, so that it is read.
                Err(error) => {
                    tracing::warn!(shard, %error, "taking a lease failed");
                    break;
                }
            };
            if let Some(version) = written {
                tracing::info!(shard, "lease taken");
                self.progress.remove(&shard);
                self.held.insert(
                    shard.clone(),
                    Held {
                        lease,
                        version,
                        renewed: taken_at,
                    },
                );
                round.taken.push(shard);
            }
        }
        round.release = decision.release;
        round.finished = self.finished.clone();
        Ok(round)
    }

    /// Hand `shard` back (its records are in the lake): the lease stays with no owner, so the
    /// next worker takes it at once.
    pub async fn release(&mut self, shard: &str) -> Result<(), LeaseError> {
        self.end(shard, false).await.map(|_| ())
    }

    /// `shard` was read to its end and everything from it is in the lake.
    /// `false` when the lease was not this worker's any more: its holder marks it.
    pub async fn finish(&mut self, shard: &str) -> Result<bool, LeaseError> {
        let written = self.end(shard, true).await?;
        if written {
            self.finished.insert(shard.to_owned());
        }
        Ok(written)
    }

    /// Write the lease's last version from this worker; whether it was written.
    async fn end(&mut self, shard: &str, finished: bool) -> Result<bool, LeaseError> {
        let Some(held) = self.held.remove(shard) else {
            return Ok(false);
        };
        let (behind, flushed) = self.progress.remove(shard).unwrap_or_default();
        let lease = Lease {
            owner: if finished {
                self.me.clone()
            } else {
                String::new()
            },
            counter: held.lease.counter + 1,
            finished,
            millis_behind_latest: behind,
            last_flush_time: flushed,
        };
        let written = self
            .write(shard, &lease, Some(held.version))
            .await?
            .is_some();
        if !written {
            tracing::warn!(shard, "lease taken over before it was handed back");
        }
        Ok(written)
    }

    /// Forget a shard this worker stopped reading without handing it back.
    pub fn drop_shard(&mut self, shard: &str) {
        self.held.remove(shard);
        self.progress.remove(shard);
    }

    /// Remove this worker's heartbeat, so the others rebalance at once.
    pub async fn leave(&mut self) -> Result<(), LeaseError> {
        match self.store.delete(&self.worker_path(&self.me)).await {
            Ok(()) | Err(object_store::Error::NotFound { .. }) => Ok(()),
            Err(error) => Err(self.call("removing the heartbeat")(error)),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use object_store::memory::InMemory;

    fn ids(names: &[&str]) -> Vec<String> {
        names.iter().map(|name| (*name).to_owned()).collect()
    }

    fn set(names: &[&str]) -> BTreeSet<String> {
        names.iter().map(|name| (*name).to_owned()).collect()
    }

    fn held_by(pairs: &[(&str, &str)]) -> BTreeMap<String, LeaseState> {
        pairs
            .iter()
            .map(|(shard, owner)| {
                let state = match *owner {
                    "" => LeaseState::Free,
                    "finished" => LeaseState::Finished,
                    owner => LeaseState::Held(owner.to_owned()),
                };
                ((*shard).to_owned(), state)
            })
            .collect()
    }

    #[test]
    fn a_lone_worker_takes_every_free_shard() {
        let readable = ids(&["s0", "s1", "s2", "s3"]);
        let plan = plan("a", &readable, &BTreeMap::new(), &set(&[]), &set(&[]));
        assert_eq!(plan.take, readable);
        assert_eq!(plan.release, None);
    }

    #[test]
    fn workers_take_their_share_and_leave_the_rest() {
        let readable = ids(&["s0", "s1", "s2", "s3"]);
        let plan = plan("a", &readable, &BTreeMap::new(), &set(&[]), &set(&["b"]));
        assert_eq!(plan.take, ids(&["s0", "s1"]));
        // Three workers, four shards: at most two each.
        let leases = held_by(&[("s0", "b")]);
        let plan = super::plan("a", &readable, &leases, &set(&[]), &set(&["b", "c"]));
        assert_eq!(plan.take, ids(&["s1", "s2"]));
    }

    #[test]
    fn a_worker_above_its_share_hands_one_shard_back_when_nothing_is_free() {
        let readable = ids(&["s0", "s1", "s2", "s3"]);
        let held = set(&["s0", "s1", "s2", "s3"]);
        let plan = plan("a", &readable, &BTreeMap::new(), &held, &set(&["b"]));
        assert_eq!(plan.take, Vec::<String>::new());
        assert_eq!(plan.release, Some("s3".to_owned()));
        // Balanced, or within one of the least loaded: nothing moves.
        let leases = held_by(&[("s2", "b"), ("s3", "b")]);
        let plan = super::plan("a", &readable, &leases, &set(&["s0", "s1"]), &set(&["b"]));
        assert_eq!(plan, Plan::default());
        let three = ids(&["s0", "s1", "s2"]);
        let leases = held_by(&[("s2", "b")]);
        let plan = super::plan("a", &three, &leases, &set(&["s0", "s1"]), &set(&["b"]));
        assert_eq!(plan, Plan::default());
        // A free shard is taken by the worker with fewer instead.
        let leases = held_by(&[("s3", "")]);
        let plan = super::plan(
            "a",
            &readable,
            &leases,
            &set(&["s0", "s1", "s2"]),
            &set(&["b"]),
        );
        assert_eq!(plan, Plan::default());
    }

    #[test]
    fn a_lease_under_this_workers_name_that_it_does_not_read_is_free_to_it() {
        let readable = ids(&["s0"]);
        let leases = held_by(&[("s0", "a")]);
        let plan = plan("a", &readable, &leases, &set(&[]), &set(&[]));
        assert_eq!(plan.take, ids(&["s0"]));
    }

    #[test]
    fn finished_shards_count_for_nobody() {
        let readable = ids(&["s0", "s1", "s2"]);
        let leases = held_by(&[("s0", "finished"), ("s1", "b")]);
        let plan = plan("a", &readable, &leases, &set(&[]), &set(&["b"]));
        assert_eq!(plan.take, ids(&["s2"]));
    }

    fn worker(store: &Arc<InMemory>, me: &str, duration: Duration) -> Leases {
        let store: Arc<dyn ObjectStore> = store.clone();
        Leases::new(store, "leases", "memory:///leases", "pins", me, duration)
    }

    async fn round(leases: &mut Leases, shards: &[&str]) -> Round {
        let shards = ids(shards);
        leases
            .round(&shards, |finished| {
                shards
                    .iter()
                    .filter(|shard| !finished.contains(*shard))
                    .cloned()
                    .collect()
            })
            .await
            .expect("a round")
    }

    #[tokio::test]
    async fn a_second_worker_gets_half_of_the_shards_handed_over() {
        let store = Arc::new(InMemory::new());
        let shards = ["s0", "s1", "s2", "s3"];
        let long = Duration::from_secs(60);
        let mut a = worker(&store, "a", long);
        assert_eq!(round(&mut a, &shards).await.taken, ids(&shards));
        let mut b = worker(&store, "b", long);
        // b sees every shard held, and takes nothing.
        assert!(round(&mut b, &shards).await.taken.is_empty());
        // a sees b's heartbeat and hands one back per round; b takes it.
        let mut moved = Vec::new();
        for _ in 0..4 {
            let decided = round(&mut a, &shards).await;
            if let Some(shard) = decided.release {
                a.release(&shard).await.expect("released");
            }
            moved.extend(round(&mut b, &shards).await.taken);
        }
        assert_eq!(moved.len(), 2, "{moved:?}");
        assert_eq!(a.held().len() + b.held().len(), 4);
        assert!(a.held().is_disjoint(&b.held()));
        let stored = read_all_in(&a).await;
        for shard in shards {
            let owner = &stored[shard].owner;
            let expected = if a.held().contains(shard) { "a" } else { "b" };
            assert_eq!(owner, expected, "{shard}");
        }
    }

    async fn read_all_in(leases: &Leases) -> BTreeMap<String, Lease> {
        let mut all = BTreeMap::new();
        for shard in ["s0", "s1", "s2", "s3"] {
            if let Some((lease, _)) = leases.read(shard).await.expect("read") {
                all.insert(shard.to_owned(), lease);
            }
        }
        all
    }

    #[tokio::test]
    async fn a_dead_workers_shards_are_taken_over_after_the_lease_duration() {
        let store = Arc::new(InMemory::new());
        let shards = ["s0", "s1"];
        let duration = Duration::from_millis(300);
        let mut a = worker(&store, "a", duration);
        assert_eq!(round(&mut a, &shards).await.taken.len(), 2);
        let mut b = worker(&store, "b", duration);
        assert!(round(&mut b, &shards).await.taken.is_empty());
        // a renews: still held.
        assert!(round(&mut a, &shards).await.lost.is_empty());
        assert!(round(&mut b, &shards).await.taken.is_empty());
        // a dies. Its lease stands still; b takes over once it has seen it unchanged for the
        // lease duration on its own clock — and not before.
        assert!(a.valid("s0", Instant::now()));
        let taken_at = Instant::now();
        let mut taken = Vec::new();
        while taken.len() < 2 {
            taken.extend(round(&mut b, &shards).await.taken);
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        assert!(taken_at.elapsed() >= duration, "{:?}", taken_at.elapsed());
        // By then a knows it may not write any more.
        assert!(!a.valid("s0", Instant::now()));
        // If a comes back, marking a shard finished is refused (b holds it now)...
        assert!(!a.finish("s0").await.expect("a conditional write"));
        // ...and so is its renewal: it learns that the shards are lost.
        let back = round(&mut a, &shards).await;
        assert_eq!(back.lost, ids(&["s1"]));
        assert!(a.held().is_empty());
        assert!(back.finished.is_empty(), "{:?}", back.finished);
    }

    #[tokio::test]
    async fn a_finished_shard_stays_finished_for_every_worker() {
        let store = Arc::new(InMemory::new());
        let long = Duration::from_secs(60);
        let mut a = worker(&store, "a", long);
        round(&mut a, &["s0"]).await;
        a.set_progress("s0", Some(0), Some("2026-11-29T05:00:00Z".into()));
        assert!(a.finish("s0").await.expect("finished"));
        let mut b = worker(&store, "b", long);
        let seen = round(&mut b, &["s0", "s1"]).await;
        assert_eq!(seen.finished, set(&["s0"]));
        assert_eq!(seen.taken, ids(&["s1"]));
        let (lease, _) = b.read("s0").await.expect("read").expect("a lease");
        assert!(lease.finished);
        assert_eq!(
            lease.last_flush_time.as_deref(),
            Some("2026-11-29T05:00:00Z")
        );
    }

    #[test]
    fn a_directory_cannot_hold_leases() {
        let dir = tempfile::tempdir().expect("a directory");
        let url = format!("file://{}", dir.path().display());
        let Err(error) = Leases::open(&url, "pins", "a", DEFAULT_LEASE_DURATION) else {
            panic!("no conditional writes in a directory");
        };
        assert!(
            error
                .to_string()
                .contains("need an object store with conditional writes"),
            "{error}"
        );
    }
}
