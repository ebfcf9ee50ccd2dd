//! The gateway's one Kafka producer: idempotent (`enable.idempotence`, so retries inside the
//! producer never duplicate or reorder a record), `acks=all`, lz4, a 5 ms linger so
//! concurrent requests share batches, and the Java client's partitioner. A request's records are handed over together and
//! awaited together; each one's outcome is reported on its own.
//!
//! The records handed over and not yet acknowledged are bounded (a semaphore of
//! `max_in_flight_records` permits, which is also librdkafka's queue size): a request that
//! cannot get room for its records within [`BACKPRESSURE_WAIT`] is answered 429 before any of
//! them is sent, so a request is never half-queued because the queue was full.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use futures::future::{Either, join_all};
use rdkafka::ClientConfig;
use rdkafka::error::{KafkaError, KafkaResult, RDKafkaErrorCode};
use rdkafka::producer::{FutureProducer, FutureRecord, Producer};
use tokio::sync::{Semaphore, SemaphorePermit};

use super::config::{BACKPRESSURE_WAIT, GatewayConfig};
use super::metrics::GatewayMetrics;
use super::request::Record;
use super::response::{ApiError, ErrorReason, RecordOutcome};
use crate::connect::{ConnectError, KafkaConnection};

/// The producer's librdkafka configuration: the connection's, with the gateway's settings.
pub fn client_config(
    connection: &KafkaConnection,
    config: &GatewayConfig,
) -> Result<ClientConfig, ConnectError> {
    let mut client = connection.client_config()?;
    client
        .set("enable.idempotence", "true")
        .set("acks", "all")
        .set("compression.type", "lz4")
        .set("linger.ms", "5")
        // The Java client's partitioner, which the REST proxy uses: a key lands on the same
        // partition whether it came through the gateway or from a Java producer.
        .set("partitioner", "murmur2_random")
        .set(
            "message.timeout.ms",
            config.delivery_timeout().as_millis().to_string(),
        )
        .set(
            "queue.buffering.max.messages",
            config.max_in_flight_records.to_string(),
        )
        // Topics are the operator's to create; a typo must not create one.
        .set("allow.auto.create.topics", "false");
    Ok(client)
}

/// The producer, its in-flight bound, and whether it has failed for good.
pub struct GatewayProducer {
    producer: FutureProducer,
    in_flight: Semaphore,
    metrics: Arc<GatewayMetrics>,
    fatal: AtomicBool,
}

/// Room for a request's records among the in-flight ones, given back when dropped (also when
/// the request is abandoned).
struct InFlight<'a> {
    _permits: SemaphorePermit<'a>,
    records: i64,
    metrics: &'a GatewayMetrics,
}

impl Drop for InFlight<'_> {
    fn drop(&mut self) {
        self.metrics.in_flight_records.dec_by(self.records);
    }
}

impl GatewayProducer {
    /// A producer from `client` (see [`client_config`]).
    pub fn new(
        client: &ClientConfig,
        config: &GatewayConfig,
        metrics: Arc<GatewayMetrics>,
    ) -> KafkaResult<Self> {
        Ok(Self {
            producer: client.create()?,
            in_flight: Semaphore::new(config.max_in_flight_records),
            metrics,
            fatal: AtomicBool::new(false),
        })
    }

    /// Send `records` to `topic` and wait for each one's outcome, in order. Errors only when
    /// there is no room for the records (429); anything Kafka refuses is a record's outcome.
    pub async fn produce(
        &self,
        topic: &str,
        records: &[Record<'_>],
    ) -> Result<Vec<RecordOutcome>, ApiError> {
        let count = u32::try_from(records.len()).unwrap_or(u32::MAX);
        let permits = tokio::time::timeout(BACKPRESSURE_WAIT, self.in_flight.acquire_many(count))
            .await
            .ok()
            .and_then(Result::ok)
            .ok_or_else(|| ApiError::overloaded(BACKPRESSURE_WAIT))?;
        self.metrics.in_flight_records.inc_by(i64::from(count));
        let _in_flight = InFlight {
            _permits: permits,
            records: i64::from(count),
            metrics: &self.metrics,
        };

        let pending: Vec<_> = records
            .iter()
            .map(|record| {
                let mut message = FutureRecord::<[u8], [u8]>::to(topic);
                if let Some(key) = &record.key {
                    message = message.key(key.as_ref());
                }
                if let Some(value) = &record.value {
                    message = message.payload(value.as_ref());
                }
                if let Some(partition) = record.partition {
                    message = message.partition(partition);
                }
                match self.producer.send_result(message) {
                    Ok(delivery) => Either::Left(delivery),
                    Err((error, _)) => Either::Right(self.failed(&error, topic, record.partition)),
                }
            })
            .collect();
        let outcomes = join_all(pending.into_iter().zip(records).map(
            |(pending, record)| async move {
                match pending {
                    Either::Right(outcome) => outcome,
                    Either::Left(delivery) => match delivery.await {
                        Ok(Ok(delivery)) => {
                            RecordOutcome::delivered(delivery.partition, delivery.offset)
                        }
                        Ok(Err((error, _))) => self.failed(&error, topic, record.partition),
                        Err(_) => RecordOutcome::failed(
                            50002,
                            ErrorReason::Kafka,
                            "Kafka error: the producer closed before the record was acknowledged",
                        ),
                    },
                }
            },
        ))
        .await;
        Ok(outcomes)
    }

    fn failed(&self, error: &KafkaError, topic: &str, partition: Option<i32>) -> RecordOutcome {
        if error.rdkafka_error_code() == Some(RDKafkaErrorCode::Fatal)
            && !self.fatal.swap(true, Ordering::AcqRel)
        {
            tracing::error!(%error, "the producer failed for good; /healthz reports it so the pod is restarted");
        }
        record_error(error, topic, partition)
    }

    /// Whether the producer has failed for good (librdkafka's fatal error, which an idempotent
    /// producer raises when it can no longer guarantee order): only a new process recovers.
    pub fn is_fatal(&self) -> bool {
        self.fatal.load(Ordering::Acquire)
    }

    /// Wait until the brokers answer a metadata request, retrying every second.
    pub async fn wait_connected(&self) {
        loop {
            let producer = self.producer.clone();
            let answer = tokio::task::spawn_blocking(move || {
                producer
                    .client()
                    .fetch_metadata(None, Duration::from_secs(5))
                    .map(|metadata| metadata.brokers().len())
            })
            .await;
            match answer {
                Ok(Ok(brokers)) => {
                    tracing::info!(brokers, "connected to Kafka");
                    return;
                }
                Ok(Err(error)) => tracing::warn!(%error, "Kafka does not answer yet; retrying"),
                Err(_) => return,
            }
            tokio::time::sleep(Duration::from_secs(1)).await;
        }
    }

    /// Wait up to `timeout` for every queued record to be acknowledged.
    pub async fn flush(&self, timeout: Duration) -> KafkaResult<()> {
        let producer = self.producer.clone();
        tokio::task::spawn_blocking(move || producer.flush(timeout))
            .await
            .unwrap_or(Ok(()))
    }
}

/// A record Kafka did not take: 40402 for a partition the topic does not have, 50003 (the REST
/// proxy's retriable Kafka error) for errors that may pass on a retry, 50002 for the others.
pub fn record_error(error: &KafkaError, topic: &str, partition: Option<i32>) -> RecordOutcome {
    use RDKafkaErrorCode as Code;
    let Some(code) = error.rdkafka_error_code() else {
        return RecordOutcome::failed(50002, ErrorReason::Kafka, format!("Kafka error: {error}"));
    };
    match code {
        Code::UnknownPartition => RecordOutcome::failed(
            40402,
            ErrorReason::PartitionNotFound,
            format!(
                "Partition not found: topic {topic} has no partition {}",
                partition.map_or_else(|| "for this record".into(), |p| p.to_string())
            ),
        ),
        Code::MessageTimedOut
        | Code::QueueFull
        | Code::AllBrokersDown
        | Code::BrokerTransportFailure
        | Code::UnknownTopic
        | Code::UnknownTopicOrPartition
        | Code::LeaderNotAvailable
        | Code::NotLeaderForPartition
        | Code::RequestTimedOut
        | Code::NetworkException
        | Code::NotEnoughReplicas
        | Code::NotEnoughReplicasAfterAppend => RecordOutcome::failed(
            50003,
            ErrorReason::KafkaRetriable,
            format!("Retriable Kafka error: {code}"),
        ),
        _ => RecordOutcome::failed(50002, ErrorReason::Kafka, format!("Kafka error: {code}")),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_producer_is_idempotent_with_acks_all() {
        let config = GatewayConfig::default();
        let client = client_config(&KafkaConnection::plaintext("b:9092"), &config).unwrap();
        for (key, value) in [
            ("enable.idempotence", "true"),
            ("acks", "all"),
            ("compression.type", "lz4"),
            ("linger.ms", "5"),
            ("partitioner", "murmur2_random"),
            ("message.timeout.ms", "22500"),
            ("queue.buffering.max.messages", "100000"),
            ("allow.auto.create.topics", "false"),
            ("bootstrap.servers", "b:9092"),
        ] {
            assert_eq!(client.get(key), Some(value), "{key}");
        }
    }

    #[tokio::test]
    async fn a_full_queue_is_429_and_undelivered_records_fail_one_by_one() {
        let config = GatewayConfig {
            max_records: 2,
            max_in_flight_records: 2,
            request_timeout: Duration::from_secs(2),
            ..GatewayConfig::default()
        };
        // Nothing listens there: records wait for a broker until their delivery timeout.
        let client = client_config(&KafkaConnection::plaintext("127.0.0.1:1"), &config).unwrap();
        let metrics = Arc::new(GatewayMetrics::default());
        let producer = Arc::new(GatewayProducer::new(&client, &config, metrics.clone()).unwrap());
        let record = Record {
            key: None,
            value: Some(std::borrow::Cow::Borrowed(&b"v"[..])),
            partition: None,
        };
        let first = {
            let (producer, records) = (producer.clone(), vec![record.clone(); 2]);
            tokio::spawn(async move { producer.produce("pin", &records).await })
        };
        tokio::time::sleep(Duration::from_millis(100)).await;
        assert_eq!(metrics.in_flight_records.get(), 2);
        let refused = producer.produce("pin", &[record]).await.unwrap_err();
        assert_eq!((refused.status.as_u16(), refused.error_code), (429, 429));

        let outcomes = first.await.unwrap().unwrap();
        assert_eq!(outcomes.len(), 2);
        for outcome in outcomes {
            assert_eq!(outcome.error_code, Some(50003), "{outcome:?}");
            assert!(outcome.error.unwrap().contains("MessageTimedOut"));
        }
        assert_eq!(metrics.in_flight_records.get(), 0, "the room is given back");
    }

    #[test]
    fn kafka_errors_become_record_outcomes() {
        let error = |code| KafkaError::MessageProduction(code);
        let outcome = record_error(&error(RDKafkaErrorCode::UnknownPartition), "pin", Some(7));
        assert_eq!(outcome.error_code, Some(40402));
        assert_eq!(
            outcome.error.as_deref(),
            Some("Partition not found: topic pin has no partition 7")
        );
        assert_eq!((outcome.partition, outcome.offset), (None, None));

        let outcome = record_error(&error(RDKafkaErrorCode::MessageTimedOut), "pin", None);
        assert_eq!(outcome.error_code, Some(50003));
        assert_eq!(outcome.reason, Some(ErrorReason::KafkaRetriable));
        assert!(
            outcome
                .error
                .as_deref()
                .unwrap()
                .starts_with("Retriable Kafka error: MessageTimedOut")
        );

        let outcome = record_error(&error(RDKafkaErrorCode::MessageSizeTooLarge), "pin", None);
        assert_eq!(outcome.error_code, Some(50002));
        assert_eq!(outcome.reason, Some(ErrorReason::Kafka));
    }
}
