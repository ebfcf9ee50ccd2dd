//! Flushes uploaded in the background while the worker keeps reading.
//!
//! A flush is encoded in the loop (the Parquet encoder keeps the schema across batches), then
//! its objects are uploaded and its offset committed by a task on a runtime of its own, so the
//! consumer goes on reading the other partitions — and the same partition's next batch —
//! meanwhile. The rules that keep exactly-once:
//!
//! - At most one flush per partition is in flight: a partition's next flush waits for the one
//!   before, so its commits stay in offset order.
//! - A partition being revoked waits, in the rebalance callback, for its flush in flight to
//!   upload and commit: the next owner lists the lake only after it. That wait blocks the
//!   thread polling the consumer, which is why uploads have their own runtime and their own
//!   connections: they never need that thread.
//! - The bytes in flight count against the memory budget: a flush that would take them past it
//!   waits for one in flight to finish first.

use std::collections::BTreeMap;
use std::ops::RangeInclusive;
use std::panic::AssertUnwindSafe;
use std::sync::{Arc, Condvar, Mutex};
use std::time::{Duration, Instant};

use bytes::Bytes;
use futures::{FutureExt, StreamExt, TryStreamExt};
use jiff::Timestamp;
use object_store::ObjectStore;
use tokio::sync::Notify;

use super::batch::Trigger;
use super::store::{StoreError, put_object};

/// Objects of one flush uploaded at the same time.
pub const UPLOAD_CONCURRENCY: usize = 4;

/// The partitions with a flush in flight, and its bytes; shared by the loop, the upload tasks
/// and the rebalance callback.
#[derive(Default)]
pub struct InFlight {
    partitions: Mutex<BTreeMap<i32, usize>>,
    changed: Condvar,
}

impl InFlight {
    fn start(&self, partition: i32, bytes: usize) {
        self.lock().insert(partition, bytes);
    }

    fn finish(&self, partition: i32) {
        self.lock().remove(&partition);
        self.changed.notify_all();
    }

    /// Whether `partition` has a flush in flight.
    pub fn busy(&self, partition: i32) -> bool {
        self.lock().contains_key(&partition)
    }

    /// The bytes of every flush in flight.
    pub fn bytes(&self) -> usize {
        self.lock().values().sum()
    }

    /// Whether any flush is in flight.
    pub fn is_empty(&self) -> bool {
        self.lock().is_empty()
    }

    /// Block the calling thread until none of `partitions` has a flush in flight, or `timeout`
    /// passes; returns whether they finished.
    pub fn wait_for(&self, partitions: &[i32], timeout: Duration) -> bool {
        let deadline = Instant::now() + timeout;
        let mut guard = self.lock();
        while partitions.iter().any(|p| guard.contains_key(p)) {
            let left = deadline.saturating_duration_since(Instant::now());
            if left.is_zero() {
                return false;
            }
            guard = self
                .changed
                .wait_timeout(guard, left)
                .unwrap_or_else(std::sync::PoisonError::into_inner)
                .0;
        }
        true
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, BTreeMap<i32, usize>> {
        self.partitions
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }
}

/// A flush ready to upload: everything is encoded.
pub struct FlushJob {
    /// The partition.
    pub partition: i32,
    /// The batch's offsets; the commit is `end + 1`.
    pub offsets: RangeInclusive<u64>,
    /// What triggered it.
    pub trigger: Trigger,
    /// The dead-letter object (key, bytes, records), uploaded first.
    pub dead: Option<(String, Bytes, u64)>,
    /// One object per path.
    pub objects: Vec<(String, Bytes)>,
    /// Good records written.
    pub good: u64,
    /// When the flush began (for its duration).
    pub started: Instant,
    /// Test failpoint: abort after the uploads, before the commit.
    pub abort_after_upload: bool,
}

impl FlushJob {
    /// Bytes the job holds.
    pub fn bytes(&self) -> usize {
        self.objects.iter().map(|(_, b)| b.len()).sum::<usize>()
            + self.dead.as_ref().map_or(0, |(_, b, _)| b.len())
    }

    /// Upload the dead letters, then the objects. Returns when every object is stored.
    pub async fn upload(
        &self,
        store: &dyn ObjectStore,
        threshold: usize,
    ) -> Result<(), StoreError> {
        if let Some((key, bytes, _)) = &self.dead {
            put_object(store, key, bytes.clone(), threshold).await?;
        }
        let uploads: Vec<_> = self
            .objects
            .iter()
            .map(|(key, bytes)| {
                let (key, bytes) = (key.clone(), bytes.clone());
                async move { put_object(store, &key, bytes, threshold).await }
            })
            .collect();
        futures::stream::iter(uploads)
            .buffer_unordered(UPLOAD_CONCURRENCY)
            .try_collect::<()>()
            .await
    }
}

/// What a finished background flush reports to the loop.
pub struct Done {
    /// The job (its counts, for the metrics).
    pub job: FlushJob,
    /// The commit time, or why the upload or commit failed.
    pub result: Result<Timestamp, String>,
}

/// The upload runtime and the reports of finished flushes.
pub struct Uploads {
    runtime: Option<tokio::runtime::Runtime>,
    store: Arc<dyn ObjectStore>,
    threshold: usize,
    /// Flushes in flight.
    pub in_flight: Arc<InFlight>,
    done: Arc<Mutex<Vec<Done>>>,
    /// Woken when a flush finishes.
    pub finished: Arc<Notify>,
}

impl Uploads {
    /// A runtime of two threads; `open` builds the store inside it, so its connections live
    /// there.
    pub fn new<E>(
        in_flight: Arc<InFlight>,
        threshold: usize,
        open: impl FnOnce() -> Result<Arc<dyn ObjectStore>, E>,
    ) -> Result<Self, E> {
        let runtime = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(2)
            .thread_name("sink-upload")
            .enable_all()
            .build()
            .expect("a runtime for uploads");
        let store = {
            let _entered = runtime.enter();
            open()?
        };
        Ok(Self {
            runtime: Some(runtime),
            store,
            threshold,
            in_flight,
            done: Arc::default(),
            finished: Arc::new(Notify::new()),
        })
    }

    /// Start `job` in the background: upload, then `commit(partition, last offset, time)`.
    pub fn spawn(
        &self,
        job: FlushJob,
        commit: impl FnOnce(i32, u64, Timestamp) -> Result<(), String> + Send + 'static,
    ) {
        let partition = job.partition;
        self.in_flight.start(partition, job.bytes());
        let (store, threshold) = (self.store.clone(), self.threshold);
        let (in_flight, done, finished) = (
            self.in_flight.clone(),
            self.done.clone(),
            self.finished.clone(),
        );
        let runtime = self
            .runtime
            .as_ref()
            .expect("the runtime lives as long as this");
        runtime.spawn(async move {
            // A panic must still end the flush (the loop and a revocation wait for it).
            let attempt = AssertUnwindSafe(async {
                job.upload(store.as_ref(), threshold)
                    .await
                    .map_err(|error| error.to_string())?;
                if job.abort_after_upload {
                    tracing::warn!(
                        partition,
                        "failpoint after-upload: stopping before the commit"
                    );
                    std::process::abort();
                }
                let now = Timestamp::now();
                commit(partition, *job.offsets.end(), now).map(|()| now)
            });
            let result = attempt
                .catch_unwind()
                .await
                .unwrap_or_else(|_| Err("the upload task panicked".to_owned()));
            done.lock()
                .unwrap_or_else(std::sync::PoisonError::into_inner)
                .push(Done { job, result });
            in_flight.finish(partition);
            finished.notify_one();
        });
    }

    /// The flushes finished since the last call.
    pub fn take_done(&self) -> Vec<Done> {
        std::mem::take(
            &mut *self
                .done
                .lock()
                .unwrap_or_else(std::sync::PoisonError::into_inner),
        )
    }
}

impl Drop for Uploads {
    fn drop(&mut self) {
        // Dropping a runtime waits for its threads, which an async context must not do.
        if let Some(runtime) = self.runtime.take() {
            runtime.shutdown_background();
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn waiting_for_partitions_ends_when_their_flushes_finish() {
        let in_flight = Arc::new(InFlight::default());
        in_flight.start(1, 10);
        in_flight.start(2, 5);
        assert_eq!(in_flight.bytes(), 15);
        assert!(in_flight.wait_for(&[3], Duration::ZERO), "3 is idle");
        assert!(!in_flight.wait_for(&[1], Duration::from_millis(20)));
        let finisher = {
            let in_flight = in_flight.clone();
            std::thread::spawn(move || {
                std::thread::sleep(Duration::from_millis(50));
                in_flight.finish(1);
            })
        };
        assert!(in_flight.wait_for(&[1], Duration::from_secs(10)));
        finisher.join().unwrap();
        assert!(in_flight.busy(2) && !in_flight.busy(1));
        assert_eq!(in_flight.bytes(), 5);
    }
}
