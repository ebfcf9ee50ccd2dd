//! The lake's storage: where a Sink writes (`s3://bucket/prefix` or `file:///path`), the bytes
//! of a JSON-lines object, and the two calls a flush and a recovery make — put one object, list
//! the keys under a prefix. All of it goes through Apache Arrow's `object_store`, so S3
//! multipart, retries and pagination are its, not ours.
//!
//! # Credentials
//!
//! S3 is configured from the same environment the AWS SDK reads ([`crate::connect`]):
//! `AWS_ENDPOINT_URL_S3`, else `AWS_ENDPOINT_URL`, for an emulator (then with plain HTTP allowed
//! and path-style addressing, as bucket host names do not resolve there), `AWS_REGION`, and
//! `AWS_ACCESS_KEY_ID` / `AWS_SECRET_ACCESS_KEY` when set; every other `AWS_*` variable is
//! taken as `object_store` reads it. Without keys in the environment — in a cluster — the
//! builder's own credential chain is used: web identity (IRSA's `AWS_WEB_IDENTITY_TOKEN_FILE`
//! and `AWS_ROLE_ARN`), then the container and instance metadata endpoints.
//!
//! # Exactly once
//!
//! [`put_object`] replaces whatever is at the key, in one PUT or one completed multipart
//! upload, and object names are deterministic ([`super::keys`]): a retried or repeated flush
//! of the same records writes the same key again and so overwrites its earlier attempt
//! instead of adding a copy. A multipart upload that fails is aborted, and an upload that is
//! never completed is never visible, so readers see either the old object or the whole new one.

use std::io::Write;
use std::sync::Arc;

use bytes::Bytes;
use futures::TryStreamExt;
use object_store::aws::AmazonS3Builder;
use object_store::local::LocalFileSystem;
use object_store::path::Path;
use object_store::{ObjectStore, ObjectStoreExt, WriteMultipart};
use url::Url;

use super::keys::Extension;

/// The smallest part S3 accepts in a multipart upload, except for the last one.
pub const MIN_PART_BYTES: usize = 5 * 1024 * 1024;

/// Why the lake cannot be reached, an object not be encoded, written or listed.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    /// A destination that is not a URL at all.
    #[error("destination {url:?} is not a URL: {source}")]
    InvalidUrl {
        /// The destination.
        url: String,
        /// Why it does not parse.
        #[source]
        source: url::ParseError,
    },
    /// A scheme other than `s3` and `file`.
    #[error("destination {url:?} has scheme {scheme:?}; use s3://bucket/prefix or file:///path")]
    UnsupportedScheme {
        /// The destination.
        url: String,
        /// Its scheme.
        scheme: String,
    },
    /// `s3://` without a bucket.
    #[error("destination {url:?} names no bucket; write s3://bucket/prefix")]
    MissingBucket {
        /// The destination.
        url: String,
    },
    /// A query or fragment, which would otherwise be silently ignored.
    #[error(
        "destination {url:?} has a query or fragment; write only s3://bucket/prefix or file:///path"
    )]
    QueryOrFragment {
        /// The destination.
        url: String,
    },
    /// A `file:` URL that is not an absolute local path.
    #[error("destination {url:?} is not an absolute local path; write file:///path")]
    NotALocalPath {
        /// The destination.
        url: String,
    },
    /// The local directory could not be created.
    #[error("cannot create the local directory {path:?}: {source}")]
    CreateDirectory {
        /// The directory.
        path: std::path::PathBuf,
        /// Why.
        #[source]
        source: std::io::Error,
    },
    /// The store could not be built from the destination.
    #[error("cannot open the store for {url:?}: {source}")]
    Open {
        /// The destination.
        url: String,
        /// Why.
        #[source]
        source: object_store::Error,
    },
    /// A key that `object_store` refuses (an empty segment, `.` or `..`, a control character).
    #[error("{key:?} is not a valid object key: {source}")]
    InvalidKey {
        /// The key.
        key: String,
        /// Why.
        #[source]
        source: object_store::path::Error,
    },
    /// Parquet is not JSON lines; it is written by its own encoder.
    #[error("a {extension} object is not JSON lines and cannot be encoded as such")]
    NotJsonLines {
        /// The extension asked for.
        extension: Extension,
    },
    /// Compression failed.
    #[error("cannot compress the {extension} object: {source}")]
    Encode {
        /// The extension asked for.
        extension: Extension,
        /// Why.
        #[source]
        source: std::io::Error,
    },
    /// An upload failed (and, if multipart, was aborted).
    #[error("cannot upload {key:?}: {source}")]
    Put {
        /// The key.
        key: String,
        /// Why.
        #[source]
        source: object_store::Error,
    },
    /// A listing failed.
    #[error("cannot list the keys under {prefix:?}: {source}")]
    List {
        /// The prefix.
        prefix: String,
        /// Why.
        #[source]
        source: object_store::Error,
    },
}

impl StoreError {
    /// A fixed label for metrics and Events: `config` waits for a spec change, `storage` is
    /// retried with backoff, `encode` is a bug or an exhausted machine.
    pub fn category(&self) -> &'static str {
        match self {
            Self::InvalidUrl { .. }
            | Self::UnsupportedScheme { .. }
            | Self::MissingBucket { .. }
            | Self::QueryOrFragment { .. }
            | Self::NotALocalPath { .. }
            | Self::InvalidKey { .. }
            | Self::NotJsonLines { .. } => "config",
            Self::CreateDirectory { .. }
            | Self::Open { .. }
            | Self::Put { .. }
            | Self::List { .. } => "storage",
            Self::Encode { .. } => "encode",
        }
    }
}

/// A Sink's destination: the store and the key prefix inside it, for
/// [`super::keys::SourcePartition::object_key`].
#[derive(Clone, Debug)]
pub struct LakeLocation {
    /// The bucket, or the local directory.
    pub store: Arc<dyn ObjectStore>,
    /// The prefix of every key, without slashes at its ends; empty for none.
    pub prefix: String,
}

impl LakeLocation {
    /// Open `s3://bucket/prefix` (configured as the module documentation says) or
    /// `file:///path` (the directory is created if missing; keys are relative to it).
    pub fn parse(url: &str) -> Result<Self, StoreError> {
        let parsed = Url::parse(url).map_err(|source| StoreError::InvalidUrl {
            url: url.to_owned(),
            source,
        })?;
        if parsed.query().is_some() || parsed.fragment().is_some() {
            return Err(StoreError::QueryOrFragment {
                url: url.to_owned(),
            });
        }
        match parsed.scheme() {
            "s3" => {
                let bucket = parsed
                    .host_str()
                    .filter(|bucket| !bucket.is_empty())
                    .ok_or_else(|| StoreError::MissingBucket {
                        url: url.to_owned(),
                    })?;
                let store = s3_builder(AmazonS3Builder::from_env(), bucket, env_var)
                    .build()
                    .map_err(|source| StoreError::Open {
                        url: url.to_owned(),
                        source,
                    })?;
                Ok(Self {
                    store: Arc::new(store),
                    prefix: parsed.path().trim_matches('/').to_owned(),
                })
            }
            "file" => {
                let path = parsed
                    .to_file_path()
                    .map_err(|()| StoreError::NotALocalPath {
                        url: url.to_owned(),
                    })?;
                std::fs::create_dir_all(&path).map_err(|source| StoreError::CreateDirectory {
                    path: path.clone(),
                    source,
                })?;
                let store =
                    LocalFileSystem::new_with_prefix(&path).map_err(|source| StoreError::Open {
                        url: url.to_owned(),
                        source,
                    })?;
                Ok(Self {
                    store: Arc::new(store),
                    prefix: String::new(),
                })
            }
            scheme => Err(StoreError::UnsupportedScheme {
                url: url.to_owned(),
                scheme: scheme.to_owned(),
            }),
        }
    }
}

/// A set, non-empty environment variable.
fn env_var(name: &str) -> Option<String> {
    std::env::var(name).ok().filter(|value| !value.is_empty())
}

/// `builder` for `bucket`, with the settings the AWS SDK would take from `env` on top.
fn s3_builder(
    builder: AmazonS3Builder,
    bucket: &str,
    env: impl Fn(&str) -> Option<String>,
) -> AmazonS3Builder {
    let mut builder = builder.with_bucket_name(bucket);
    if let Some(endpoint) = env("AWS_ENDPOINT_URL_S3").or_else(|| env("AWS_ENDPOINT_URL")) {
        builder = builder
            .with_endpoint(endpoint)
            .with_allow_http(true)
            .with_virtual_hosted_style_request(false);
    }
    if let Some(region) = env("AWS_REGION") {
        builder = builder.with_region(region);
    }
    if let (Some(key_id), Some(secret)) = (env("AWS_ACCESS_KEY_ID"), env("AWS_SECRET_ACCESS_KEY")) {
        builder = builder
            .with_access_key_id(key_id)
            .with_secret_access_key(secret);
    }
    builder
}

/// The JSON-lines object holding `records` (each one JSON object, without a newline), one a
/// line, compressed as `extension` says.
pub fn encode_json_lines<R: AsRef<[u8]>>(
    records: &[R],
    extension: Extension,
) -> Result<Bytes, StoreError> {
    let size = records.iter().map(|record| record.as_ref().len() + 1).sum();
    let encode_error = |source| StoreError::Encode { extension, source };
    match extension {
        Extension::Json => {
            let mut plain = Vec::with_capacity(size);
            write_lines(&mut plain, records).map_err(encode_error)?;
            Ok(plain.into())
        }
        Extension::JsonGzip => {
            let mut encoder =
                flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::default());
            write_lines(&mut encoder, records).map_err(encode_error)?;
            Ok(encoder.finish().map_err(encode_error)?.into())
        }
        Extension::JsonZstd => {
            let mut encoder =
                zstd::stream::write::Encoder::new(Vec::new(), zstd::zstd_safe::CLEVEL_DEFAULT)
                    .map_err(encode_error)?;
            write_lines(&mut encoder, records).map_err(encode_error)?;
            Ok(encoder.finish().map_err(encode_error)?.into())
        }
        Extension::Parquet => Err(StoreError::NotJsonLines { extension }),
    }
}

fn write_lines<R: AsRef<[u8]>>(out: &mut impl Write, records: &[R]) -> std::io::Result<()> {
    for record in records {
        out.write_all(record.as_ref())?;
        out.write_all(b"\n")?;
    }
    Ok(())
}

/// Write `bytes` to `key`, replacing what is there: one PUT below `multipart_threshold` bytes,
/// a multipart upload in parts of [`MIN_PART_BYTES`] (the last one smaller) at or above it.
/// All parts of one object are sent at once, so a flush holds at most its own bytes in flight.
pub async fn put_object(
    store: &dyn ObjectStore,
    key: &str,
    bytes: Bytes,
    multipart_threshold: usize,
) -> Result<(), StoreError> {
    let path = object_path(key)?;
    let put_error = |source| StoreError::Put {
        key: key.to_owned(),
        source,
    };
    if bytes.len() < multipart_threshold {
        store.put(&path, bytes.into()).await.map_err(put_error)?;
    } else {
        let upload = store.put_multipart(&path).await.map_err(put_error)?;
        let mut write = WriteMultipart::new_with_chunk_size(upload, MIN_PART_BYTES);
        write.put(bytes);
        write.finish().await.map_err(put_error)?;
    }
    Ok(())
}

/// Every key under `prefix` (whole `/`-separated segments; empty for the whole store), sorted,
/// across as many pages as the store returns: what recovery hands to
/// [`super::keys::newest_for_partition`].
pub async fn list_keys(store: &dyn ObjectStore, prefix: &str) -> Result<Vec<String>, StoreError> {
    let prefix_path = object_path(prefix)?;
    let mut keys: Vec<String> = store
        .list(Some(&prefix_path))
        .map_ok(|meta| meta.location.to_string())
        .try_collect()
        .await
        .map_err(|source| StoreError::List {
            prefix: prefix.to_owned(),
            source,
        })?;
    keys.sort_unstable();
    Ok(keys)
}

fn object_path(key: &str) -> Result<Path, StoreError> {
    Path::parse(key).map_err(|source| StoreError::InvalidKey {
        key: key.to_owned(),
        source,
    })
}

#[cfg(test)]
mod tests {
    use std::io::Read;

    use object_store::ClientConfigKey;
    use object_store::aws::AmazonS3ConfigKey;
    use object_store::memory::InMemory;

    use super::*;
    use crate::sink::keys::{SourcePartition, newest_for_partition};

    fn decode_json_lines(bytes: &[u8], extension: Extension) -> Vec<Vec<u8>> {
        let mut text = Vec::new();
        match extension {
            Extension::Json => text.extend_from_slice(bytes),
            Extension::JsonGzip => {
                flate2::read::GzDecoder::new(bytes)
                    .read_to_end(&mut text)
                    .unwrap();
            }
            Extension::JsonZstd => text = zstd::stream::decode_all(bytes).unwrap(),
            Extension::Parquet => unreachable!("not JSON lines"),
        }
        let body = text.strip_suffix(b"\n").expect("a final newline");
        body.split(|&b| b == b'\n').map(<[u8]>::to_vec).collect()
    }

    fn records() -> Vec<Vec<u8>> {
        (0..100)
            .map(|i| format!(r#"{{"id":{i},"pin":"p{}"}}"#, i % 7).into_bytes())
            .collect()
    }

    /// Bytes that do not repeat at part boundaries, so a misplaced part shows.
    fn large(len: usize) -> Bytes {
        (0..len).map(|i| (i % 251) as u8).collect::<Vec<_>>().into()
    }

    async fn read(store: &dyn ObjectStore, key: &str) -> Bytes {
        store
            .get(&Path::parse(key).unwrap())
            .await
            .unwrap()
            .bytes()
            .await
            .unwrap()
    }

    #[test]
    fn every_json_compression_round_trips() {
        for extension in [Extension::Json, Extension::JsonGzip, Extension::JsonZstd] {
            let encoded = encode_json_lines(&records(), extension).unwrap();
            assert_eq!(
                decode_json_lines(&encoded, extension),
                records(),
                "{extension}"
            );
        }
        let plain = encode_json_lines(&records(), Extension::Json).unwrap();
        for compressed in [Extension::JsonGzip, Extension::JsonZstd] {
            let encoded = encode_json_lines(&records(), compressed).unwrap();
            assert!(encoded.len() < plain.len(), "{compressed} compresses");
        }
    }

    #[test]
    fn plain_json_lines_end_every_record_with_a_newline() {
        let encoded = encode_json_lines(&[b"{}".to_vec(), b"{\"a\":1}".to_vec()], Extension::Json);
        assert_eq!(&encoded.unwrap()[..], b"{}\n{\"a\":1}\n");
        assert!(
            encode_json_lines::<Vec<u8>>(&[], Extension::Json)
                .unwrap()
                .is_empty()
        );
    }

    #[test]
    fn parquet_is_not_json_lines() {
        let error = encode_json_lines(&records(), Extension::Parquet).unwrap_err();
        assert!(matches!(error, StoreError::NotJsonLines { .. }), "{error}");
        assert_eq!(error.category(), "config");
    }

    #[tokio::test]
    async fn small_and_multipart_objects_read_back_and_overwrite() {
        let store = InMemory::new();
        let small = encode_json_lines(&records(), Extension::JsonGzip).unwrap();
        put_object(&store, "raw/a.json.gz", small.clone(), MIN_PART_BYTES)
            .await
            .unwrap();
        assert_eq!(read(&store, "raw/a.json.gz").await, small);

        let big = large(2 * MIN_PART_BYTES + 17);
        put_object(&store, "raw/b.json", big.clone(), MIN_PART_BYTES)
            .await
            .unwrap();
        assert_eq!(read(&store, "raw/b.json").await, big);

        // A retried flush: the same key, now written with one PUT, replaces the multipart one.
        put_object(&store, "raw/b.json", small.clone(), MIN_PART_BYTES)
            .await
            .unwrap();
        assert_eq!(read(&store, "raw/b.json").await, small);
        assert_eq!(
            list_keys(&store, "raw").await.unwrap(),
            ["raw/a.json.gz", "raw/b.json"]
        );
    }

    #[tokio::test]
    async fn an_invalid_key_is_refused_before_any_upload() {
        let store = InMemory::new();
        let error = put_object(&store, "raw//a.json", Bytes::new(), MIN_PART_BYTES)
            .await
            .unwrap_err();
        assert!(matches!(error, StoreError::InvalidKey { .. }), "{error}");
    }

    #[tokio::test]
    async fn listing_finds_the_newest_object_of_a_partition() {
        let store = InMemory::new();
        let pin3 = SourcePartition::new("pin", "3").unwrap();
        let pin4 = SourcePartition::new("pin", "4").unwrap();
        let keys = [
            pin3.object_key("raw", "dt=2024-02-28", 0..=99, Extension::Json),
            pin3.object_key("raw", "dt=2024-02-29", 100..=199, Extension::Json),
            pin4.object_key("raw", "dt=2024-02-29", 0..=999, Extension::Json),
            pin3.dead_letter_key("raw/_dead_letter", 150),
        ];
        for key in keys {
            put_object(&store, &key.unwrap(), Bytes::from_static(b"{}\n"), 1024)
                .await
                .unwrap();
        }
        put_object(&store, "elsewhere/pin+3+9+9.json", Bytes::new(), 1024)
            .await
            .unwrap();

        let listed = list_keys(&store, "raw").await.unwrap();
        assert_eq!(listed.len(), 4);
        let newest = newest_for_partition(listed.iter().map(String::as_str), "pin", "3").unwrap();
        assert_eq!(
            (newest.first_offset, newest.last_offset),
            (100, 199),
            "{newest:?}"
        );
        assert_eq!(list_keys(&store, "").await.unwrap().len(), 5);
        assert!(list_keys(&store, "nothing").await.unwrap().is_empty());
    }

    #[tokio::test]
    async fn a_local_directory_is_created_and_holds_the_objects() {
        let dir = tempfile::tempdir().unwrap();
        let root = dir.path().join("lake").join("raw");
        let url = Url::from_file_path(&root).unwrap();
        let location = LakeLocation::parse(url.as_str()).unwrap();
        assert!(root.is_dir());
        assert_eq!(location.prefix, "");
        let store = location.store.as_ref();

        let small = encode_json_lines(&records(), Extension::JsonZstd).unwrap();
        put_object(
            store,
            "dt=2024-02-29/pin+0+1+2.json.zst",
            small.clone(),
            1024 * 1024,
        )
        .await
        .unwrap();
        let big = large(MIN_PART_BYTES + 1);
        put_object(
            store,
            "dt=2024-02-29/pin+0+3+4.json",
            big.clone(),
            1024 * 1024,
        )
        .await
        .unwrap();
        put_object(
            store,
            "dt=2024-02-29/pin+0+3+4.json",
            big.clone(),
            1024 * 1024,
        )
        .await
        .unwrap();

        assert_eq!(read(store, "dt=2024-02-29/pin+0+1+2.json.zst").await, small);
        assert_eq!(read(store, "dt=2024-02-29/pin+0+3+4.json").await, big);
        assert_eq!(
            std::fs::read(root.join("dt=2024-02-29/pin+0+3+4.json")).unwrap(),
            big
        );
        assert_eq!(
            list_keys(store, "dt=2024-02-29").await.unwrap(),
            [
                "dt=2024-02-29/pin+0+1+2.json.zst",
                "dt=2024-02-29/pin+0+3+4.json"
            ]
        );
        assert!(list_keys(store, "dt=2024-03-01").await.unwrap().is_empty());
    }

    #[test]
    fn destinations_that_are_not_ours_are_refused_by_name() {
        let cases = [
            ("not a url", "is not a URL"),
            ("gs://bucket/raw", "scheme \"gs\""),
            ("s3:///raw", "names no bucket"),
            ("s3://bucket/raw?versioning=1", "query or fragment"),
            ("file://host/tmp/lake", "absolute local path"),
        ];
        for (url, expected) in cases {
            let error = LakeLocation::parse(url).unwrap_err();
            assert!(error.to_string().contains(expected), "{url}: {error}");
            assert_eq!(error.category(), "config", "{url}");
        }
    }

    #[test]
    fn s3_takes_the_prefix_from_the_path() {
        let location = LakeLocation::parse("s3://lake/raw/pin/").unwrap();
        assert_eq!(location.prefix, "raw/pin");
        assert_eq!(LakeLocation::parse("s3://lake").unwrap().prefix, "");
    }

    #[test]
    fn an_emulator_endpoint_gets_http_and_path_style() {
        let env = |name: &str| {
            match name {
                "AWS_ENDPOINT_URL" => Some("http://127.0.0.1:4566"),
                "AWS_REGION" => Some("eu-west-1"),
                "AWS_ACCESS_KEY_ID" => Some("test"),
                "AWS_SECRET_ACCESS_KEY" => Some("secret"),
                _ => None,
            }
            .map(str::to_owned)
        };
        let builder = s3_builder(AmazonS3Builder::new(), "lake", env);
        let value = |key| builder.get_config_value(&key);
        assert_eq!(
            value(AmazonS3ConfigKey::Endpoint).as_deref(),
            Some("http://127.0.0.1:4566")
        );
        assert_eq!(
            value(AmazonS3ConfigKey::Client(ClientConfigKey::AllowHttp)).as_deref(),
            Some("true")
        );
        assert_eq!(
            value(AmazonS3ConfigKey::VirtualHostedStyleRequest).as_deref(),
            Some("false")
        );
        assert_eq!(
            value(AmazonS3ConfigKey::Region).as_deref(),
            Some("eu-west-1")
        );
        assert_eq!(value(AmazonS3ConfigKey::Bucket).as_deref(), Some("lake"));
        assert_eq!(
            value(AmazonS3ConfigKey::AccessKeyId).as_deref(),
            Some("test")
        );

        let s3_first = |name: &str| match name {
            "AWS_ENDPOINT_URL_S3" => Some("http://s3.local:9000".to_owned()),
            "AWS_ENDPOINT_URL" => Some("http://other:4566".to_owned()),
            _ => None,
        };
        let builder = s3_builder(AmazonS3Builder::new(), "lake", s3_first);
        assert_eq!(
            builder
                .get_config_value(&AmazonS3ConfigKey::Endpoint)
                .as_deref(),
            Some("http://s3.local:9000")
        );
    }

    #[test]
    fn aws_keeps_virtual_hosted_style_without_an_endpoint() {
        let builder = s3_builder(AmazonS3Builder::new(), "lake", |_: &str| None);
        assert_eq!(
            builder
                .get_config_value(&AmazonS3ConfigKey::Endpoint)
                .as_deref(),
            None
        );
        assert_ne!(
            builder
                .get_config_value(&AmazonS3ConfigKey::Client(ClientConfigKey::AllowHttp))
                .as_deref(),
            Some("true")
        );
    }
}
