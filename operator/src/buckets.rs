//! S3 buckets behind a small trait, so the Sink controller can be tested without AWS and the
//! real implementation (aws-sdk-s3) sits in one place. Tributary creates buckets when a spec
//! asks for it and never deletes one.

use std::fmt::Debug;

use async_trait::async_trait;
use aws_sdk_s3::Client;
use aws_sdk_s3::error::{DisplayErrorContext, ProvideErrorMetadata, SdkError};
use aws_sdk_s3::types::{BucketLocationConstraint, CreateBucketConfiguration};
use tributary_workers::connect;
use tributary_workers::sink::kinesis_leases::Lease;

/// What went wrong talking to S3.
#[derive(Debug, thiserror::Error)]
#[error("S3 {operation} {bucket}: {message}")]
pub struct BucketError {
    /// The API operation, e.g. `CreateBucket`.
    pub operation: &'static str,
    /// The bucket.
    pub bucket: String,
    /// S3's error code and message, or why the request did not reach S3.
    pub message: String,
}

/// A bucket as [`Buckets::ensure_bucket`] left it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum BucketState {
    /// It existed already.
    Exists,
    /// It did not exist and was created.
    Created,
    /// It does not exist, and creating it was not asked for.
    Missing,
}

/// The S3 operations the Sink controller needs.
#[async_trait]
pub trait Buckets: Send + Sync {
    /// Whether `bucket` exists in `region` (`None`: the operator's default); with `create`, a
    /// missing bucket is created (one created meanwhile by us counts as existing).
    async fn ensure_bucket(
        &self,
        region: Option<&str>,
        bucket: &str,
        create: bool,
    ) -> Result<BucketState, BucketError>;

    /// The shard leases of a Stream-source Sink: every `*.json` object under `prefix` of
    /// `bucket` that parses as a [`Lease`] (the others are skipped with a warning).
    async fn shard_leases(
        &self,
        region: Option<&str>,
        bucket: &str,
        prefix: &str,
    ) -> Result<Vec<Lease>, BucketError>;
}

/// The real implementation, on aws-sdk-s3, with one client per region built on first use.
pub struct S3Buckets {
    clients: connect::RegionalClients<Client>,
}

impl Default for S3Buckets {
    fn default() -> Self {
        Self::new(connect::AwsOptions::default())
    }
}

impl S3Buckets {
    /// S3 in `defaults.region` (unless a spec names another) through `defaults.endpoint_url`.
    pub fn new(defaults: connect::AwsOptions) -> Self {
        Self {
            clients: connect::RegionalClients::new(defaults, connect::s3),
        }
    }

    async fn client(&self, region: Option<&str>) -> Client {
        self.clients.get(region).await
    }
}

fn error<E, R>(operation: &'static str, bucket: &str, error: SdkError<E, R>) -> BucketError
where
    E: ProvideErrorMetadata + std::error::Error + Send + Sync + 'static,
    R: Debug + Send + Sync + 'static,
{
    let message = match error.as_service_error() {
        Some(e) => format!(
            "{}: {}",
            e.code().unwrap_or("error"),
            e.message().unwrap_or("no message")
        ),
        None => DisplayErrorContext(&error).to_string(),
    };
    BucketError {
        operation,
        bucket: bucket.into(),
        message,
    }
}

#[async_trait]
impl Buckets for S3Buckets {
    async fn ensure_bucket(
        &self,
        region: Option<&str>,
        bucket: &str,
        create: bool,
    ) -> Result<BucketState, BucketError> {
        let client = self.client(region).await;
        match client.head_bucket().bucket(bucket).send().await {
            Ok(_) => return Ok(BucketState::Exists),
            // HeadBucket has no body, so a missing bucket is only its 404.
            Err(e)
                if e.as_service_error().is_some_and(|e| e.is_not_found())
                    || e.raw_response().is_some_and(|r| r.status().as_u16() == 404) => {}
            Err(e) => return Err(error("HeadBucket", bucket, e)),
        }
        if !create {
            return Ok(BucketState::Missing);
        }
        // us-east-1 is S3's default location and must not be named as a constraint.
        let location = client
            .config()
            .region()
            .map(|r| r.as_ref().to_owned())
            .filter(|r| r != "us-east-1")
            .map(|r| {
                CreateBucketConfiguration::builder()
                    .location_constraint(BucketLocationConstraint::from(r.as_str()))
                    .build()
            });
        match client
            .create_bucket()
            .bucket(bucket)
            .set_create_bucket_configuration(location)
            .send()
            .await
        {
            Ok(_) => Ok(BucketState::Created),
            Err(e)
                if e.as_service_error()
                    .is_some_and(|e| e.is_bucket_already_owned_by_you()) =>
            {
                Ok(BucketState::Exists)
            }
            Err(e) => Err(error("CreateBucket", bucket, e)),
        }
    }

    async fn shard_leases(
        &self,
        region: Option<&str>,
        bucket: &str,
        prefix: &str,
    ) -> Result<Vec<Lease>, BucketError> {
        let client = self.client(region).await;
        let mut keys = Vec::new();
        let mut pages = client
            .list_objects_v2()
            .bucket(bucket)
            .prefix(prefix)
            .into_paginator()
            .send();
        while let Some(page) = pages.next().await {
            let page = page.map_err(|e| error("ListObjectsV2", bucket, e))?;
            keys.extend(
                page.contents()
                    .iter()
                    .filter_map(|object| object.key())
                    .filter(|key| key.ends_with(".json"))
                    .map(str::to_owned),
            );
        }
        let mut leases = Vec::with_capacity(keys.len());
        for key in keys {
            let object = match client.get_object().bucket(bucket).key(&key).send().await {
                Ok(object) => object,
                // Gone between the listing and the read.
                Err(e) if e.as_service_error().is_some_and(|e| e.is_no_such_key()) => continue,
                Err(e) => return Err(error("GetObject", bucket, e)),
            };
            let bytes = object.body.collect().await.map_err(|e| BucketError {
                operation: "GetObject",
                bucket: bucket.into(),
                message: e.to_string(),
            })?;
            match serde_json::from_slice::<Lease>(&bytes.into_bytes()) {
                Ok(lease) => leases.push(lease),
                Err(e) => tracing::warn!(bucket, key, error = %e, "not a shard lease"),
            }
        }
        Ok(leases)
    }
}
