//! The sink worker's Prometheus metrics, served on `/metrics`. Names follow
//! `tributary_sink_<noun>_<unit>[_total]`; the only labels are the flush trigger (six values)
//! and the partition or Kinesis shard (as many as the worker holds).

use std::sync::atomic::AtomicU64;

use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::metrics::histogram::Histogram;
use prometheus_client::registry::Registry;

use super::batch::Trigger;

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct TriggerLabel {
    trigger: &'static str,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct PartitionLabel {
    partition: i32,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct ShardLabel {
    shard: String,
}

/// Counters and gauges of one sink worker process.
pub struct SinkMetrics {
    registry: Registry,
    /// Records read from Kafka.
    pub records_in: Counter,
    /// Payload bytes read from Kafka.
    pub bytes_in: Counter,
    /// Records written into data objects.
    pub records_out: Counter,
    /// Bytes of the data and dead-letter objects uploaded.
    pub bytes_out: Counter,
    /// Objects uploaded.
    pub objects: Counter,
    /// Records written to the dead letter.
    pub dead_letters: Counter,
    /// Records dropped because their partition had already taken their offset.
    pub redeliveries: Counter,
    /// Payload bytes held in buffers now.
    pub buffered_bytes: Gauge<i64, std::sync::atomic::AtomicI64>,
    flushes: Family<TriggerLabel, Counter>,
    flush_seconds: Histogram,
    lag: Family<PartitionLabel, Gauge<i64, std::sync::atomic::AtomicI64>>,
    millis_behind: Family<ShardLabel, Gauge<i64, std::sync::atomic::AtomicI64>>,
    last_flush: Gauge<f64, AtomicU64>,
}

impl Default for SinkMetrics {
    fn default() -> Self {
        let mut registry = Registry::with_prefix("tributary_sink");
        let metrics = Self {
            registry: Registry::default(),
            records_in: Counter::default(),
            bytes_in: Counter::default(),
            records_out: Counter::default(),
            bytes_out: Counter::default(),
            objects: Counter::default(),
            dead_letters: Counter::default(),
            redeliveries: Counter::default(),
            buffered_bytes: Gauge::default(),
            flushes: Family::default(),
            flush_seconds: Histogram::new([0.01, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0]),
            lag: Family::default(),
            millis_behind: Family::default(),
            last_flush: Gauge::default(),
        };
        let m = &metrics;
        registry.register(
            "records_in",
            "Records read from Kafka",
            m.records_in.clone(),
        );
        registry.register(
            "bytes_in",
            "Payload bytes read from Kafka",
            m.bytes_in.clone(),
        );
        registry.register(
            "records_out",
            "Records written into data objects",
            m.records_out.clone(),
        );
        registry.register(
            "bytes_out",
            "Bytes of data and dead-letter objects uploaded",
            m.bytes_out.clone(),
        );
        registry.register("objects", "Objects uploaded", m.objects.clone());
        registry.register(
            "dead_letters",
            "Records written to the dead letter",
            m.dead_letters.clone(),
        );
        registry.register(
            "redeliveries",
            "Records dropped as re-deliveries of offsets already taken",
            m.redeliveries.clone(),
        );
        registry.register(
            "buffered_bytes",
            "Payload bytes held in buffers",
            m.buffered_bytes.clone(),
        );
        registry.register(
            "flushes",
            "Flushes, by what triggered them",
            m.flushes.clone(),
        );
        registry.register(
            "flush_duration_seconds",
            "Time from a flush's start to its offsets' commit",
            m.flush_seconds.clone(),
        );
        registry.register(
            "lag_records",
            "Records of a partition not yet read, as the consumer last reported",
            m.lag.clone(),
        );
        registry.register(
            "millis_behind_latest",
            "How far the reading of a Kinesis shard is behind its tip, from the last GetRecords",
            m.millis_behind.clone(),
        );
        registry.register(
            "last_flush_timestamp_seconds",
            "When the last flush committed, in seconds since the Unix epoch",
            m.last_flush.clone(),
        );
        Self {
            registry,
            ..metrics
        }
    }
}

impl SinkMetrics {
    /// Count a flush that `trigger` started and that took `seconds`, ending at `unix_seconds`.
    pub fn flushed(&self, trigger: Trigger, seconds: f64, unix_seconds: f64) {
        self.flushes
            .get_or_create(&TriggerLabel {
                trigger: trigger.label(),
            })
            .inc();
        self.flush_seconds.observe(seconds);
        self.last_flush.set(unix_seconds);
    }

    /// When the last flush committed, if one has.
    pub fn last_flush(&self) -> Option<jiff::Timestamp> {
        let seconds = self.last_flush.get();
        if seconds <= 0.0 {
            return None;
        }
        // Milliseconds, as the flush stamped them.
        jiff::Timestamp::from_millisecond((seconds * 1000.0).round() as i64).ok()
    }

    /// Record the consumer's lag on `partition`.
    pub fn set_lag(&self, partition: i32, lag: i64) {
        self.lag
            .get_or_create(&PartitionLabel { partition })
            .set(lag);
    }

    /// Forget the lag of a partition the worker no longer holds.
    pub fn forget_partition(&self, partition: i32) {
        self.lag.remove(&PartitionLabel { partition });
    }

    /// Record how far the reading of Kinesis `shard` is behind its tip.
    pub fn set_millis_behind(&self, shard: &str, millis: i64) {
        self.millis_behind
            .get_or_create(&ShardLabel {
                shard: shard.to_owned(),
            })
            .set(millis);
    }

    /// Forget a shard the worker no longer reads.
    pub fn forget_shard(&self, shard: &str) {
        self.millis_behind.remove(&ShardLabel {
            shard: shard.to_owned(),
        });
    }

    /// The flushes `trigger` started so far.
    pub fn flushes(&self, trigger: Trigger) -> u64 {
        self.flushes
            .get_or_create(&TriggerLabel {
                trigger: trigger.label(),
            })
            .get()
    }

    /// The metrics in the Prometheus text format.
    pub fn encode(&self) -> String {
        crate::http::render(&self.registry)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_follow_the_convention() {
        let metrics = SinkMetrics::default();
        metrics.records_in.inc_by(3);
        metrics.flushed(Trigger::MaxAge, 0.2, 1.0);
        metrics.set_lag(4, 17);
        let text = metrics.encode();
        for line in [
            "tributary_sink_records_in_total 3",
            "tributary_sink_flushes_total{trigger=\"max_age\"} 1",
            "tributary_sink_lag_records{partition=\"4\"} 17",
            "tributary_sink_last_flush_timestamp_seconds 1.0",
        ] {
            assert!(text.contains(line), "{line} missing from\n{text}");
        }
        assert_eq!(metrics.flushes(Trigger::MaxAge), 1);
        assert_eq!(
            metrics.last_flush().map(|t| t.to_string()).as_deref(),
            Some("1970-01-01T00:00:01Z")
        );
        assert_eq!(SinkMetrics::default().last_flush(), None);
        metrics.forget_partition(4);
        assert!(!metrics.encode().contains("partition=\"4\""));
    }
}
