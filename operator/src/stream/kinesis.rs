//! The Kinesis control plane behind a small trait, so the Stream controller's branches can be
//! tested without AWS and the real implementation (aws-sdk-kinesis) sits in one place.
//!
//! Every operation takes the region (`spec.region`; `None`: the operator's default) and the
//! stream's name, and is idempotent where Kinesis allows: a stream that does not exist is
//! `Ok(None)` when described and counts as deleted when deleted.

use std::collections::HashMap;
use std::fmt::Debug;

use async_trait::async_trait;
use aws_sdk_kinesis::Client;
use aws_sdk_kinesis::error::{DisplayErrorContext, ProvideErrorMetadata, SdkError};
use aws_sdk_kinesis::types::{
    EncryptionType, ScalingType, StreamMode as KinesisMode, StreamModeDetails,
};
use tributary_crds::common::Tags;
use tributary_crds::stream::StreamMode;
use tributary_workers::connect;

use super::plan::Change;

/// Kinesis's answer when a limit stops a call: the daily resharding quota, the two mode
/// switches a day, or the control plane's rate limit.
pub const LIMIT_EXCEEDED: &str = "LimitExceededException";
const NOT_FOUND: &str = "ResourceNotFoundException";
/// Tags per AddTagsToStream / RemoveTagsFromStream call.
const TAGS_PER_CALL: usize = 10;

/// What went wrong talking to Kinesis.
#[derive(Debug, thiserror::Error)]
#[error("Kinesis {operation}: {message}")]
pub struct KinesisError {
    /// The API operation, e.g. `UpdateShardCount`.
    pub operation: &'static str,
    /// Kinesis's error code, e.g. `LimitExceededException`; `None` when the request did not
    /// reach Kinesis.
    pub code: Option<String>,
    /// Kinesis's error code and message, or why the request did not reach Kinesis.
    pub message: String,
}

impl KinesisError {
    /// Whether a Kinesis limit refused the call.
    pub fn is_limit_exceeded(&self) -> bool {
        self.code.as_deref() == Some(LIMIT_EXCEEDED)
    }

    /// Whether the request's key was refused: by KMS (missing, disabled, no access, ...), or
    /// by Kinesis as malformed (InvalidArgumentException).
    pub fn is_key_refused(&self) -> bool {
        self.code
            .as_deref()
            .is_some_and(|c| c.starts_with("KMS") || c == "InvalidArgumentException")
    }
}

/// A stream as Kinesis describes it (DescribeStreamSummary).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct StreamState {
    /// The stream's ARN.
    pub arn: String,
    /// Kinesis's status as Kinesis spells it: `CREATING`, `ACTIVE`, `UPDATING`, `DELETING`.
    pub status: String,
    /// The capacity mode (streams from before on-demand mode report none: provisioned).
    pub mode: StreamMode,
    /// Open shards.
    pub open_shards: i32,
    /// Retention in hours.
    pub retention_hours: i32,
    /// The KMS key of server-side encryption; `None` when the stream is not encrypted.
    pub kms_key_id: Option<String>,
}

impl StreamState {
    /// Whether Kinesis takes changes to the stream now.
    pub fn is_active(&self) -> bool {
        self.status == "ACTIVE"
    }
}

/// The Kinesis operations the Stream controller needs.
#[async_trait]
pub trait Kinesis: Send + Sync {
    /// The stream named `name`, or `None` if there is none.
    async fn describe(
        &self,
        region: Option<&str>,
        name: &str,
    ) -> Result<Option<StreamState>, KinesisError>;
    /// The stream's tags.
    async fn tags(&self, region: Option<&str>, name: &str) -> Result<Tags, KinesisError>;
    /// Start creating the stream in `mode` (with `shards` open shards when provisioned) and
    /// `tags`.
    async fn create(
        &self,
        region: Option<&str>,
        name: &str,
        mode: StreamMode,
        shards: Option<i32>,
        tags: &Tags,
    ) -> Result<(), KinesisError>;
    /// Carry out one change on the ACTIVE stream `stream`.
    async fn change(
        &self,
        region: Option<&str>,
        stream: &StreamState,
        name: &str,
        change: &Change,
    ) -> Result<(), KinesisError>;
    /// Start deleting the stream (and its consumers); one that does not exist counts as
    /// deleted.
    async fn delete(&self, region: Option<&str>, name: &str) -> Result<(), KinesisError>;
}

/// The real implementation, on aws-sdk-kinesis, with one client per region built on first use.
pub struct AwsKinesis {
    clients: connect::RegionalClients<Client>,
}

impl Default for AwsKinesis {
    fn default() -> Self {
        Self::new(connect::AwsOptions::default())
    }
}

impl AwsKinesis {
    /// Kinesis in `defaults.region` (unless a spec names another) through
    /// `defaults.endpoint_url`.
    pub fn new(defaults: connect::AwsOptions) -> Self {
        Self {
            clients: connect::RegionalClients::new(defaults, connect::kinesis),
        }
    }

    async fn client(&self, region: Option<&str>) -> Client {
        self.clients.get(region).await
    }
}

fn error<E, R>(operation: &'static str, error: SdkError<E, R>) -> KinesisError
where
    E: ProvideErrorMetadata + std::error::Error + Send + Sync + 'static,
    R: Debug + Send + Sync + 'static,
{
    match error.as_service_error() {
        Some(e) => KinesisError {
            operation,
            code: e.code().map(str::to_owned),
            message: format!(
                "{}: {}",
                e.code().unwrap_or("error"),
                e.message().unwrap_or("no message")
            ),
        },
        None => KinesisError {
            operation,
            code: None,
            message: DisplayErrorContext(&error).to_string(),
        },
    }
}

fn is_not_found<E: ProvideErrorMetadata, R>(error: &SdkError<E, R>) -> bool {
    error
        .as_service_error()
        .is_some_and(|e| e.code() == Some(NOT_FOUND))
}

fn kinesis_mode(mode: StreamMode) -> StreamModeDetails {
    let mode = match mode {
        StreamMode::OnDemand => KinesisMode::OnDemand,
        StreamMode::Provisioned => KinesisMode::Provisioned,
    };
    StreamModeDetails::builder()
        .stream_mode(mode)
        .build()
        .expect("the stream mode is set")
}

#[async_trait]
impl Kinesis for AwsKinesis {
    async fn describe(
        &self,
        region: Option<&str>,
        name: &str,
    ) -> Result<Option<StreamState>, KinesisError> {
        let output = match self
            .client(region)
            .await
            .describe_stream_summary()
            .stream_name(name)
            .send()
            .await
        {
            Ok(output) => output,
            Err(e) if is_not_found(&e) => return Ok(None),
            Err(e) => return Err(error("DescribeStreamSummary", e)),
        };
        let Some(summary) = output.stream_description_summary() else {
            return Ok(None);
        };
        let mode = match summary.stream_mode_details().map(|d| d.stream_mode()) {
            Some(KinesisMode::OnDemand) => StreamMode::OnDemand,
            _ => StreamMode::Provisioned,
        };
        let encrypted = summary.encryption_type() == Some(&EncryptionType::Kms);
        Ok(Some(StreamState {
            arn: summary.stream_arn().to_owned(),
            status: summary.stream_status().as_str().to_owned(),
            mode,
            open_shards: summary.open_shard_count(),
            retention_hours: summary.retention_period_hours(),
            kms_key_id: summary.key_id().filter(|_| encrypted).map(str::to_owned),
        }))
    }

    async fn tags(&self, region: Option<&str>, name: &str) -> Result<Tags, KinesisError> {
        let client = self.client(region).await;
        let mut tags = Tags::new();
        let mut after: Option<String> = None;
        loop {
            let page = client
                .list_tags_for_stream()
                .stream_name(name)
                .set_exclusive_start_tag_key(after.take())
                .send()
                .await
                .map_err(|e| error("ListTagsForStream", e))?;
            for tag in page.tags() {
                tags.insert(
                    tag.key().to_owned(),
                    tag.value().unwrap_or_default().to_owned(),
                );
            }
            match page.tags().last() {
                Some(last) if page.has_more_tags() => after = Some(last.key().to_owned()),
                _ => return Ok(tags),
            }
        }
    }

    async fn create(
        &self,
        region: Option<&str>,
        name: &str,
        mode: StreamMode,
        shards: Option<i32>,
        tags: &Tags,
    ) -> Result<(), KinesisError> {
        let tags: HashMap<String, String> = tags.clone().into_iter().collect();
        self.client(region)
            .await
            .create_stream()
            .stream_name(name)
            .stream_mode_details(kinesis_mode(mode))
            .set_shard_count(shards.filter(|_| mode == StreamMode::Provisioned))
            .set_tags((!tags.is_empty()).then_some(tags))
            .send()
            .await
            .map_err(|e| error("CreateStream", e))?;
        Ok(())
    }

    async fn change(
        &self,
        region: Option<&str>,
        stream: &StreamState,
        name: &str,
        change: &Change,
    ) -> Result<(), KinesisError> {
        let client = self.client(region).await;
        match change {
            Change::Reshard { to, .. } => {
                client
                    .update_shard_count()
                    .stream_name(name)
                    .target_shard_count(*to)
                    .scaling_type(ScalingType::UniformScaling)
                    .send()
                    .await
                    .map_err(|e| error("UpdateShardCount", e))?;
            }
            Change::Mode { to } => {
                client
                    .update_stream_mode()
                    .stream_arn(&stream.arn)
                    .stream_mode_details(kinesis_mode(*to))
                    .send()
                    .await
                    .map_err(|e| error("UpdateStreamMode", e))?;
            }
            Change::Retention { from, to } if to > from => {
                client
                    .increase_stream_retention_period()
                    .stream_name(name)
                    .retention_period_hours(*to)
                    .send()
                    .await
                    .map_err(|e| error("IncreaseStreamRetentionPeriod", e))?;
            }
            Change::Retention { to, .. } => {
                client
                    .decrease_stream_retention_period()
                    .stream_name(name)
                    .retention_period_hours(*to)
                    .send()
                    .await
                    .map_err(|e| error("DecreaseStreamRetentionPeriod", e))?;
            }
            Change::StartEncryption { key } => {
                client
                    .start_stream_encryption()
                    .stream_name(name)
                    .encryption_type(EncryptionType::Kms)
                    .key_id(key)
                    .send()
                    .await
                    .map_err(|e| error("StartStreamEncryption", e))?;
            }
            Change::StopEncryption { key } => {
                client
                    .stop_stream_encryption()
                    .stream_name(name)
                    .encryption_type(EncryptionType::Kms)
                    .key_id(key)
                    .send()
                    .await
                    .map_err(|e| error("StopStreamEncryption", e))?;
            }
            Change::Tags { set, remove } => {
                let set: Vec<(&String, &String)> = set.iter().collect();
                for chunk in set.chunks(TAGS_PER_CALL) {
                    let tags = chunk
                        .iter()
                        .map(|(k, v)| ((*k).clone(), (*v).clone()))
                        .collect();
                    client
                        .add_tags_to_stream()
                        .stream_name(name)
                        .set_tags(Some(tags))
                        .send()
                        .await
                        .map_err(|e| error("AddTagsToStream", e))?;
                }
                for chunk in remove.chunks(TAGS_PER_CALL) {
                    client
                        .remove_tags_from_stream()
                        .stream_name(name)
                        .set_tag_keys(Some(chunk.to_vec()))
                        .send()
                        .await
                        .map_err(|e| error("RemoveTagsFromStream", e))?;
                }
            }
        }
        Ok(())
    }

    async fn delete(&self, region: Option<&str>, name: &str) -> Result<(), KinesisError> {
        match self
            .client(region)
            .await
            .delete_stream()
            .stream_name(name)
            .enforce_consumer_deletion(true)
            .send()
            .await
        {
            Ok(_) => Ok(()),
            Err(e) if is_not_found(&e) => Ok(()),
            Err(e) => Err(error("DeleteStream", e)),
        }
    }
}
