//! Putting records into Kinesis: PutRecords calls of at most 500 records and 5 MiB, with the
//! records Kinesis throttles (or fails internally) put again with backoff until they are
//! written or the retry time runs out.
//!
//! Kinesis has no idempotent producer: a call that times out may have been written, and putting
//! it again writes it twice. The gateway retries only what Kinesis answered as not written
//! (per-record `ProvisionedThroughputExceededException` / `InternalFailure`, or a whole call
//! refused with a throttling error); a call without an answer (a timeout, a lost connection) is
//! retried too, and may then be written twice — at-least-once, as every Kinesis producer.

use std::ops::Range;
use std::sync::Arc;
use std::time::Duration;

use aws_sdk_kinesis::error::SdkError;
use aws_sdk_kinesis::operation::put_records::PutRecordsError;
use aws_sdk_kinesis::primitives::Blob;
use aws_sdk_kinesis::types::PutRecordsRequestEntry;
use futures::future::BoxFuture;
use serde::Serialize;
use tokio::time::Instant;

use super::kinesis_request::{KinesisRecord, calls};
use super::metrics::GatewayMetrics;
use super::response::{ApiError, ErrorReason};

/// The per-record error code of a record Kinesis throttled.
pub const THROTTLED: &str = "ProvisionedThroughputExceededException";
/// The per-record error code of a record Kinesis failed to write internally.
pub const INTERNAL_FAILURE: &str = "InternalFailure";

/// First pause between two attempts; it doubles up to [`MAX_BACKOFF`].
const FIRST_BACKOFF: Duration = Duration::from_millis(50);
/// Longest pause between two attempts.
const MAX_BACKOFF: Duration = Duration::from_secs(1);

/// One record's result, as Kinesis's PutRecords answers it.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
#[serde(untagged)]
pub enum Put {
    /// Written.
    Written {
        /// The shard it went to.
        #[serde(rename = "ShardId")]
        shard_id: String,
        /// Its sequence number in the shard.
        #[serde(rename = "SequenceNumber")]
        sequence_number: String,
    },
    /// Not written.
    Failed {
        /// Kinesis's error code.
        #[serde(rename = "ErrorCode")]
        code: String,
        /// Kinesis's message.
        #[serde(rename = "ErrorMessage")]
        message: String,
    },
}

impl Put {
    fn is_retriable(&self) -> bool {
        matches!(self, Self::Failed { code, .. } if code == THROTTLED || code == INTERNAL_FAILURE)
    }
}

/// What one PutRecords call answered.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct CallOutput {
    /// One result per record, in order.
    pub results: Vec<Put>,
    /// `KMS` or `NONE`.
    pub encryption_type: Option<String>,
}

/// Why a whole PutRecords call failed.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum CallError {
    /// Kinesis throttled the call; trying again later may work.
    Throttled(String),
    /// No answer, or a server error; trying again may work (and may write twice).
    Retriable(String),
    /// The stream does not exist.
    NotFound(String),
    /// Kinesis refused the request as invalid.
    Invalid(String),
    /// Anything else: permissions, KMS.
    Fatal(String),
}

/// The PutRecords call, behind a trait so that the retries can be tested against answers only
/// a fake can force.
pub trait PutRecordsApi: Send + Sync {
    /// Put `records` into `stream` with one PutRecords call.
    fn put_records<'a>(
        &'a self,
        stream: &'a str,
        records: &'a [&'a KinesisRecord<'a>],
    ) -> BoxFuture<'a, Result<CallOutput, CallError>>;
}

/// [`PutRecordsApi`] on Kinesis.
pub struct KinesisApi(aws_sdk_kinesis::Client);

impl KinesisApi {
    /// Calls through `client`, which should not retry on its own ([`Self::from_config`]).
    pub fn new(client: aws_sdk_kinesis::Client) -> Self {
        Self(client)
    }

    /// A client from the shared AWS configuration with the SDK's own retries off: the
    /// gateway retries per record, within its own time limit.
    pub fn from_config(config: &aws_config::SdkConfig) -> Self {
        let config = aws_sdk_kinesis::config::Builder::from(config)
            .retry_config(aws_config::retry::RetryConfig::disabled())
            .build();
        Self(aws_sdk_kinesis::Client::from_conf(config))
    }
}

impl PutRecordsApi for KinesisApi {
    fn put_records<'a>(
        &'a self,
        stream: &'a str,
        records: &'a [&'a KinesisRecord<'a>],
    ) -> BoxFuture<'a, Result<CallOutput, CallError>> {
        Box::pin(async move {
            let entries = records
                .iter()
                .map(|record| {
                    PutRecordsRequestEntry::builder()
                        .data(Blob::new(record.data.to_vec()))
                        .partition_key(record.partition_key.as_ref())
                        .set_explicit_hash_key(
                            record.explicit_hash_key.as_ref().map(|k| k.to_string()),
                        )
                        .build()
                        .map_err(|error| CallError::Invalid(error.to_string()))
                })
                .collect::<Result<Vec<_>, _>>()?;
            let output = self
                .0
                .put_records()
                .stream_name(stream)
                .set_records(Some(entries))
                .send()
                .await
                .map_err(classify)?;
            let results = output
                .records()
                .iter()
                .map(
                    |entry| match (entry.error_code(), entry.sequence_number()) {
                        (None, Some(sequence_number)) => Put::Written {
                            shard_id: entry.shard_id().unwrap_or_default().to_owned(),
                            sequence_number: sequence_number.to_owned(),
                        },
                        (code, _) => Put::Failed {
                            code: code.unwrap_or(INTERNAL_FAILURE).to_owned(),
                            message: entry.error_message().unwrap_or_default().to_owned(),
                        },
                    },
                )
                .collect::<Vec<_>>();
            if results.len() != records.len() {
                return Err(CallError::Retriable(format!(
                    "Kinesis answered {} results for {} records",
                    results.len(),
                    records.len()
                )));
            }
            Ok(CallOutput {
                results,
                encryption_type: output.encryption_type().map(|t| t.as_str().to_owned()),
            })
        })
    }
}

/// Sort an SDK error into what the retries need to know.
fn classify(error: SdkError<PutRecordsError>) -> CallError {
    let message = aws_sdk_kinesis::error::DisplayErrorContext(&error).to_string();
    match &error {
        SdkError::ServiceError(service) => match service.err() {
            PutRecordsError::ProvisionedThroughputExceededException(_)
            | PutRecordsError::KmsThrottlingException(_) => CallError::Throttled(message),
            PutRecordsError::ResourceNotFoundException(_) => CallError::NotFound(message),
            PutRecordsError::InvalidArgumentException(_) => CallError::Invalid(message),
            PutRecordsError::InternalFailureException(_) => CallError::Retriable(message),
            _ if service.raw().status().is_server_error() => CallError::Retriable(message),
            _ if service.raw().status().as_u16() == 429 => CallError::Throttled(message),
            _ => CallError::Fatal(message),
        },
        SdkError::TimeoutError(_) | SdkError::DispatchFailure(_) | SdkError::ResponseError(_) => {
            CallError::Retriable(message)
        }
        _ => CallError::Fatal(message),
    }
}

/// The results of putting a request's records.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Puts {
    /// One per record, in request order.
    pub results: Vec<Put>,
    /// `KMS` or `NONE`, as Kinesis last answered.
    pub encryption_type: Option<String>,
}

impl Puts {
    /// How many records were not written.
    pub fn failed(&self) -> usize {
        self.results
            .iter()
            .filter(|r| matches!(r, Put::Failed { .. }))
            .count()
    }
}

/// Puts records into Kinesis, retrying what Kinesis did not write.
#[derive(Clone)]
pub struct KinesisWriter {
    api: Arc<dyn PutRecordsApi>,
    retry_for: Duration,
    metrics: Arc<GatewayMetrics>,
}

impl KinesisWriter {
    /// A writer over `api` that retries for at most `retry_for` per request.
    pub fn new(
        api: Arc<dyn PutRecordsApi>,
        retry_for: Duration,
        metrics: Arc<GatewayMetrics>,
    ) -> Self {
        Self {
            api,
            retry_for,
            metrics,
        }
    }

    /// Put `records` into `stream`. Records Kinesis throttled or failed internally are put
    /// again, with backoff, until they are written or `retry_for` has passed; then they keep
    /// their last error. Only a stream that does not exist, or a request Kinesis calls invalid,
    /// fails the whole request.
    pub async fn put(&self, stream: &str, records: &[KinesisRecord<'_>]) -> Result<Puts, ApiError> {
        let deadline = Instant::now() + self.retry_for;
        let mut results: Vec<Option<Put>> = vec![None; records.len()];
        let mut last_failure: Vec<Option<Put>> = vec![None; records.len()];
        let mut pending: Vec<usize> = (0..records.len()).collect();
        let mut encryption_type = None;
        let mut backoff = FIRST_BACKOFF;
        loop {
            let batch: Vec<KinesisRecord<'_>> =
                pending.iter().map(|&i| borrowed(&records[i])).collect();
            let mut still_pending = Vec::new();
            for Range { start, end } in calls(&batch) {
                let indices = &pending[start..end];
                let call: Vec<&KinesisRecord<'_>> = batch[start..end].iter().collect();
                match self.api.put_records(stream, &call).await {
                    Ok(output) => {
                        encryption_type = output.encryption_type.or(encryption_type);
                        for (&index, result) in indices.iter().zip(output.results) {
                            if result.is_retriable() {
                                if matches!(&result, Put::Failed { code, .. } if code == THROTTLED)
                                {
                                    self.metrics.error(ErrorReason::KinesisThrottled);
                                }
                                last_failure[index] = Some(result);
                                still_pending.push(index);
                            } else {
                                results[index] = Some(result);
                            }
                        }
                    }
                    Err(CallError::NotFound(message)) => {
                        return Err(ApiError::unknown_stream(format!(
                            "the stream {stream} is served but Kinesis does not have it; \
                             check the Stream object's status: {message}"
                        )));
                    }
                    Err(CallError::Invalid(message)) => {
                        return Err(ApiError::invalid_request(format!(
                            "Kinesis refused the records: {message}"
                        )));
                    }
                    Err(CallError::Throttled(message) | CallError::Retriable(message)) => {
                        self.metrics.error(ErrorReason::KinesisThrottled);
                        for &index in indices {
                            last_failure[index] = Some(Put::Failed {
                                code: THROTTLED.into(),
                                message: message.clone(),
                            });
                            still_pending.push(index);
                        }
                    }
                    Err(CallError::Fatal(message)) => {
                        for &index in indices {
                            results[index] = Some(Put::Failed {
                                code: "KinesisError".into(),
                                message: message.clone(),
                            });
                        }
                    }
                }
            }
            pending = still_pending;
            let now = Instant::now();
            if pending.is_empty() || now + backoff > deadline {
                break;
            }
            tracing::debug!(
                stream,
                records = pending.len(),
                backoff_ms = backoff.as_millis() as u64,
                "Kinesis did not write some records; putting them again"
            );
            tokio::time::sleep(jittered(backoff)).await;
            backoff = (backoff * 2).min(MAX_BACKOFF);
        }
        for index in pending {
            results[index] = last_failure[index].take();
        }
        let results: Vec<Put> = results
            .into_iter()
            .map(|r| r.expect("every record has a result"))
            .collect();
        let written = results
            .iter()
            .filter(|r| matches!(r, Put::Written { .. }))
            .count();
        self.metrics.stream_records(stream, written as u64);
        Ok(Puts {
            results,
            encryption_type,
        })
    }
}

/// A record borrowing from `record`.
fn borrowed<'a>(record: &'a KinesisRecord<'_>) -> KinesisRecord<'a> {
    KinesisRecord {
        data: std::borrow::Cow::Borrowed(record.data.as_ref()),
        partition_key: std::borrow::Cow::Borrowed(record.partition_key.as_ref()),
        explicit_hash_key: record
            .explicit_hash_key
            .as_deref()
            .map(std::borrow::Cow::Borrowed),
    }
}

/// `backoff`, give or take a quarter, so that throttled gateways do not retry in step.
fn jittered(backoff: Duration) -> Duration {
    let quarter = backoff.as_millis() as u64 / 4;
    let offset = rand::random_range(0..=2 * quarter);
    backoff - Duration::from_millis(quarter) + Duration::from_millis(offset)
}

#[cfg(test)]
mod tests {
    use std::borrow::Cow;
    use std::collections::VecDeque;
    use std::sync::Mutex;

    use super::*;

    type Answer = Box<dyn FnOnce(&[&KinesisRecord<'_>]) -> Result<CallOutput, CallError> + Send>;

    /// Answers calls in order, recording the partition keys of each.
    #[derive(Default)]
    struct FakeKinesis {
        answers: Mutex<VecDeque<Answer>>,
        calls: Mutex<Vec<Vec<String>>>,
    }

    impl FakeKinesis {
        fn then(
            self,
            answer: impl FnOnce(&[&KinesisRecord<'_>]) -> Result<CallOutput, CallError> + Send + 'static,
        ) -> Self {
            self.answers.lock().unwrap().push_back(Box::new(answer));
            self
        }

        fn calls(&self) -> Vec<Vec<String>> {
            self.calls.lock().unwrap().clone()
        }
    }

    impl PutRecordsApi for FakeKinesis {
        fn put_records<'a>(
            &'a self,
            _stream: &'a str,
            records: &'a [&'a KinesisRecord<'a>],
        ) -> BoxFuture<'a, Result<CallOutput, CallError>> {
            self.calls.lock().unwrap().push(
                records
                    .iter()
                    .map(|r| r.partition_key.to_string())
                    .collect(),
            );
            let answer = self
                .answers
                .lock()
                .unwrap()
                .pop_front()
                .expect("no answer left for a call");
            let result = answer(records);
            Box::pin(async move { result })
        }
    }

    fn written(records: &[&KinesisRecord<'_>]) -> Result<CallOutput, CallError> {
        Ok(CallOutput {
            results: records
                .iter()
                .map(|r| Put::Written {
                    shard_id: "shardId-000000000000".into(),
                    sequence_number: format!("seq-{}", r.partition_key),
                })
                .collect(),
            encryption_type: Some("NONE".into()),
        })
    }

    fn throttle_key(
        key: &'static str,
    ) -> impl FnOnce(&[&KinesisRecord<'_>]) -> Result<CallOutput, CallError> {
        move |records| {
            let mut output = written(records)?;
            for (result, record) in output.results.iter_mut().zip(records) {
                if record.partition_key == key {
                    *result = Put::Failed {
                        code: THROTTLED.into(),
                        message: "Rate exceeded for shard".into(),
                    };
                }
            }
            Ok(output)
        }
    }

    fn record(key: &str) -> KinesisRecord<'static> {
        KinesisRecord {
            data: Cow::Owned(b"{}".to_vec()),
            partition_key: Cow::Owned(key.to_owned()),
            explicit_hash_key: None,
        }
    }

    fn writer(fake: Arc<FakeKinesis>, retry_for: Duration) -> (KinesisWriter, Arc<GatewayMetrics>) {
        let metrics = Arc::new(GatewayMetrics::default());
        (
            KinesisWriter::new(fake, retry_for, metrics.clone()),
            metrics,
        )
    }

    #[tokio::test]
    async fn throttled_records_are_put_again_until_written() {
        let fake = Arc::new(
            FakeKinesis::default()
                .then(throttle_key("b"))
                .then(throttle_key("b"))
                .then(written),
        );
        let (writer, metrics) = writer(fake.clone(), Duration::from_secs(5));
        let puts = writer
            .put("pin", &[record("a"), record("b"), record("c")])
            .await
            .unwrap();
        assert_eq!(puts.failed(), 0);
        assert_eq!(
            puts.results[1],
            Put::Written {
                shard_id: "shardId-000000000000".into(),
                sequence_number: "seq-b".into()
            }
        );
        assert_eq!(
            fake.calls(),
            vec![vec!["a", "b", "c"], vec!["b"], vec!["b"]]
        );
        let text = metrics.encode();
        assert!(
            text.contains("tributary_gateway_kinesis_records_total{stream=\"pin\"} 3"),
            "{text}"
        );
        assert!(text.contains("reason=\"kinesis_throttled\"} 2"), "{text}");
    }

    #[tokio::test]
    async fn persistent_throttling_keeps_the_error_when_time_runs_out() {
        let mut fake = FakeKinesis::default().then(throttle_key("a"));
        for _ in 0..100 {
            fake = fake.then(|_| Err(CallError::Throttled("slow down".into())));
        }
        let fake = Arc::new(fake);
        let (writer, _) = writer(fake.clone(), Duration::from_millis(400));
        let started = Instant::now();
        let puts = writer
            .put("pin", &[record("a"), record("b")])
            .await
            .unwrap();
        assert!(started.elapsed() < Duration::from_millis(500));
        assert_eq!(puts.failed(), 1);
        assert!(matches!(&puts.results[0], Put::Failed { code, .. } if code == THROTTLED));
        assert!(matches!(&puts.results[1], Put::Written { .. }));
        // Pauses of about 50, 100 and 200 ms: the next, 400, would end after the 400 ms.
        assert_eq!(fake.calls().len(), 4);
    }

    #[tokio::test]
    async fn a_missing_stream_or_an_invalid_request_fails_the_request() {
        let fake = Arc::new(
            FakeKinesis::default()
                .then(|_| Err(CallError::NotFound("Stream pin not found".into())))
                .then(|_| Err(CallError::Invalid("bad hash key".into()))),
        );
        let (writer, _) = writer(fake, Duration::from_secs(2));
        let missing = writer.put("pin", &[record("a")]).await.unwrap_err();
        assert_eq!(
            (missing.status.as_u16(), missing.reason),
            (404, ErrorReason::UnknownStream)
        );
        assert!(missing.message.contains("Kinesis does not have it"));
        let invalid = writer.put("pin", &[record("a")]).await.unwrap_err();
        assert_eq!(invalid.status.as_u16(), 422);
    }

    #[tokio::test]
    async fn other_errors_are_per_record_and_not_retried() {
        let fake = Arc::new(
            FakeKinesis::default().then(|_| Err(CallError::Fatal("KMS key disabled".into()))),
        );
        let (writer, _) = writer(fake.clone(), Duration::from_secs(2));
        let puts = writer
            .put("pin", &[record("a"), record("b")])
            .await
            .unwrap();
        assert_eq!(puts.failed(), 2);
        assert_eq!(fake.calls().len(), 1);
    }

    #[tokio::test]
    async fn large_requests_are_split_into_calls_of_500() {
        let records: Vec<_> = (0..1200).map(|i| record(&format!("k{i}"))).collect();
        let fake = Arc::new(
            FakeKinesis::default()
                .then(written)
                .then(written)
                .then(written),
        );
        let (writer, _) = writer(fake.clone(), Duration::from_secs(2));
        let puts = writer.put("pin", &records).await.unwrap();
        assert_eq!(puts.failed(), 0);
        let sizes: Vec<usize> = fake.calls().iter().map(Vec::len).collect();
        assert_eq!(sizes, vec![500, 500, 200]);
        assert_eq!(
            puts.results[1199],
            Put::Written {
                shard_id: "shardId-000000000000".into(),
                sequence_number: "seq-k1199".into()
            }
        );
    }
}
