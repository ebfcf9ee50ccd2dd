//! The first pure step of the Sink reconcile: refuse what the workers could not run, before any
//! pod starts and crashes on it. Every error here waits for a spec change.

use kube::ResourceExt;
use tributary_crds::sink::StartPosition;
use tributary_crds::{Invalid, Sink, Validate};
use tributary_workers::sink::batch::{Limits, LimitsError};
use tributary_workers::sink::config::check_consumer_properties;
use tributary_workers::sink::template::{Partitioning, PartitioningError};
use tributary_workers::sink::transform::{SourceKind, Transform, TransformError};
use url::Url;

/// The directory of dead letters under the destination prefix, unless the spec names one.
pub const DEAD_LETTER_DIR: &str = "_dead_letter";

/// Pods carry the Sink's name in a label, and label values are at most 63 characters.
const MAX_NAME: usize = 63;

/// A spec the controller cannot run.
#[derive(Debug, thiserror::Error)]
pub enum SpecError {
    /// A Stream source with more than one worker writing to a directory: the workers share
    /// the shards through leases that need S3's conditional writes (decision 0042).
    #[error(
        "spec.parallelism: {0}; several workers share a Stream's shards through leases kept \
         in the destination's S3 bucket, and {1} is not in S3; set parallelism: 1 or write \
         to an s3:// destination"
    )]
    StreamParallelism(i32, String),
    /// A Stream source told to start at `Latest`: the lake is its only checkpoint, so a
    /// restarted worker could not tell where `Latest` was.
    #[error(
        "spec.source.startFrom: Latest is not supported for a Stream source, which starts at \
         the oldest record Kinesis keeps (TRIM_HORIZON) and resumes from the lake; remove \
         startFrom or set it to Earliest"
    )]
    StreamStartFromLatest,
    /// The schema or a CEL rule refuses the spec (API servers without CEL let it through).
    #[error("{0}")]
    Schema(#[from] Invalid),
    /// A name too long for the workers' labels.
    #[error(
        "metadata.name: {0} characters; a Sink's name is at most 63 characters, because its \
         worker pods carry it in a label"
    )]
    NameTooLong(usize),
    /// `spec.transform` cannot run: no schema, or SQL that does not plan (DataFusion's
    /// message), or a result the format cannot hold.
    #[error(transparent)]
    Transform(#[from] TransformError),
    /// `spec.partitioning` does not parse.
    #[error("spec.{0}")]
    Partitioning(#[from] PartitioningError),
    /// `spec.batch` cannot be used.
    #[error("spec.{0}")]
    Batch(#[from] LimitsError),
    /// `spec.source.consumerProperties` sets what is Tributary's, or what librdkafka refuses.
    #[error("spec.source.{0}")]
    ConsumerProperties(String),
    /// `spec.destination.url` cannot be used.
    #[error("spec.destination.url: {0}")]
    Destination(String),
    /// `spec.deadLetter.prefix` is only slashes.
    #[error(
        "spec.deadLetter.prefix: {0:?} names no prefix; write a key prefix such as raw/_dead_letter"
    )]
    DeadLetterPrefix(String),
}

impl SpecError {
    /// The `Ready` condition's reason.
    pub fn reason(&self) -> &'static str {
        match self {
            SpecError::StreamParallelism(..) => "ParallelismNotSupported",
            SpecError::Transform(error) => error.reason(),
            _ => "InvalidSpec",
        }
    }
}

/// Where a Sink writes, split as the workers split it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Destination {
    /// The S3 bucket; `None` for a local directory (`file://`).
    pub bucket: Option<String>,
    /// The key prefix without slashes at its ends; empty for none. Keys in a local directory
    /// are relative to it, so a `file://` destination has none.
    pub prefix: String,
    /// The dead-letter key prefix in the same bucket or directory.
    pub dead_letter_prefix: String,
}

/// Check `sink` as the API server would, and what only the workers know (partition path,
/// batch limits, destination); the destination as the workers will use it.
pub fn validate(sink: &Sink) -> Result<Destination, SpecError> {
    sink.validate(None)?;
    let name = sink.name_any();
    if name.len() > MAX_NAME {
        return Err(SpecError::NameTooLong(name.len()));
    }
    let source = source_kind(sink);
    if source == SourceKind::Kinesis {
        let url = &sink.spec.destination.url;
        if sink.spec.parallelism > 1 && !url.starts_with("s3://") {
            return Err(SpecError::StreamParallelism(
                sink.spec.parallelism,
                url.clone(),
            ));
        }
        if sink.spec.source.start_from == StartPosition::Latest {
            return Err(SpecError::StreamStartFromLatest);
        }
    }
    if let Some(transform) = &sink.spec.transform {
        Transform::new(&transform.sql, &sink.spec.format, source)?;
    }
    Partitioning::new(&sink.spec.partitioning)?;
    Limits::from_spec(&sink.spec.batch)?;
    check_consumer_properties(&sink.spec.source.consumer_properties)
        .map_err(|error| SpecError::ConsumerProperties(error.to_string()))?;
    let (bucket, prefix) = lake_location(&sink.spec.destination.url)?;
    let dead_letter_prefix = match &sink.spec.dead_letter.prefix {
        Some(given) => {
            let trimmed = given.trim_matches('/');
            if trimmed.is_empty() {
                return Err(SpecError::DeadLetterPrefix(given.clone()));
            }
            trimmed.to_owned()
        }
        None if prefix.is_empty() => DEAD_LETTER_DIR.to_owned(),
        None => format!("{prefix}/{DEAD_LETTER_DIR}"),
    };
    Ok(Destination {
        bucket,
        prefix,
        dead_letter_prefix,
    })
}

/// What the workers read: a Kinesis stream for `source.streamRef`, else a Kafka topic. The
/// transform's metadata columns are the source's.
pub fn source_kind(sink: &Sink) -> SourceKind {
    if sink.spec.source.stream_ref.is_some() {
        SourceKind::Kinesis
    } else {
        SourceKind::Kafka
    }
}

/// The bucket and prefix of `s3://bucket/prefix`, or no bucket and no prefix for
/// `file:///path`, as the workers' `LakeLocation::parse` reads them.
fn lake_location(url: &str) -> Result<(Option<String>, String), SpecError> {
    let invalid = |why: String| SpecError::Destination(why);
    let parsed = Url::parse(url).map_err(|e| invalid(format!("{url:?} is not a URL: {e}")))?;
    if parsed.query().is_some() || parsed.fragment().is_some() {
        return Err(invalid(format!(
            "{url:?} has a query or fragment; write only s3://bucket/prefix or file:///path"
        )));
    }
    match parsed.scheme() {
        "s3" => {
            let bucket = parsed.host_str().filter(|b| !b.is_empty()).ok_or_else(|| {
                invalid(format!("{url:?} names no bucket; write s3://bucket/prefix"))
            })?;
            Ok((
                Some(bucket.to_owned()),
                parsed.path().trim_matches('/').to_owned(),
            ))
        }
        "file" => Ok((None, String::new())),
        scheme => Err(invalid(format!(
            "{url:?} has scheme {scheme:?}; use s3://bucket/prefix or file:///path"
        ))),
    }
}
