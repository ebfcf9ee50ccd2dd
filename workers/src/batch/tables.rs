//! Where the lake is for DataFusion: the store behind an `s3://` or `file://` URL, and the
//! inputs of a BatchJob registered as listing tables.
//!
//! DataFusion 55 is built on `object_store` 0.13, one major behind the sink's 0.14, so the
//! stores handed to it are opened here with the 0.13 crate (`object_store_datafusion`), with
//! the same S3 settings from the environment as [`crate::sink::store`] documents. Every URL is
//! first checked by [`LakeLocation::parse`], so a BatchJob and a Sink accept and refuse the
//! same locations with the same messages.

use std::sync::Arc;

use datafusion::arrow::datatypes::{DataType, Field, Schema, SchemaRef};
use datafusion::datasource::file_format::FileFormat;
use datafusion::datasource::file_format::json::JsonFormat;
use datafusion::datasource::file_format::parquet::ParquetFormat;
use datafusion::datasource::listing::{
    ListingOptions, ListingTable, ListingTableConfig, ListingTableUrl,
};
use datafusion::error::DataFusionError;
use datafusion::prelude::SessionContext;
use object_store_datafusion::ObjectStore;
use object_store_datafusion::aws::AmazonS3Builder;
use object_store_datafusion::local::LocalFileSystem;
use object_store_datafusion::path::Path;
use tributary_crds::batch_job::{BatchInput, PartitionColumn};
use tributary_crds::common::{DataFormat, FieldSchema, FieldType};
use url::Url;

use super::udf::timestamp_type;
use crate::sink::store::{LakeLocation, StoreError};

/// A directory of the lake: its store, registered in the session under `store_url`, and the
/// directory's path inside the store.
#[derive(Clone, Debug)]
pub struct Location {
    /// `s3://bucket/` or `file:///`: the key DataFusion finds the store under.
    pub store_url: Url,
    /// The bucket, or the local file system.
    pub store: Arc<dyn ObjectStore>,
    /// The directory inside the store (no slashes at its ends; for `file://`, the absolute path
    /// without its leading slash).
    pub dir: Path,
}

impl Location {
    /// Open `s3://bucket/prefix` or `file:///path` (the local directory is created if missing)
    /// and register its store in `ctx`.
    pub fn open(ctx: &SessionContext, url: &str) -> Result<Self, LocationError> {
        LakeLocation::parse(url)?;
        let parsed = Url::parse(url).map_err(|source| StoreError::InvalidUrl {
            url: url.to_owned(),
            source,
        })?;
        let open_error = |source| LocationError::Open {
            url: url.to_owned(),
            source,
        };
        let dir = Path::from_url_path(parsed.path())
            .map_err(|source| open_error(object_store_datafusion::Error::from(source)))?;
        let (store_url, store): (Url, Arc<dyn ObjectStore>) = match parsed.scheme() {
            "s3" => {
                let bucket = parsed.host_str().unwrap_or_default();
                let store = s3_builder(bucket).build().map_err(open_error)?;
                let store_url = Url::parse(&format!("s3://{bucket}/")).map_err(|source| {
                    StoreError::InvalidUrl {
                        url: url.to_owned(),
                        source,
                    }
                })?;
                (store_url, Arc::new(store))
            }
            _ => (
                Url::parse("file:///").expect("a valid URL"),
                Arc::new(LocalFileSystem::new()),
            ),
        };
        ctx.register_object_store(&store_url, store.clone());
        Ok(Self {
            store_url,
            store,
            dir,
        })
    }

    /// The URL of `path` (a directory in this store), ending in `/`, as DataFusion takes it.
    pub fn url_of_dir(&self, path: &Path) -> String {
        format!("{}{}/", self.store_url, path)
    }
}

/// Why a location cannot be opened.
#[derive(Debug, thiserror::Error)]
pub enum LocationError {
    /// Not a location a Sink would take either.
    #[error(transparent)]
    Invalid(#[from] StoreError),
    /// The store could not be built.
    #[error("cannot open the store for {url:?}: {source}")]
    Open {
        /// The location.
        url: String,
        /// Why.
        #[source]
        source: object_store_datafusion::Error,
    },
}

/// A set, non-empty environment variable.
fn env_var(name: &str) -> Option<String> {
    std::env::var(name).ok().filter(|value| !value.is_empty())
}

/// The S3 store for `bucket`, configured as `crate::sink::store` configures its own (that
/// builder is of the other `object_store` major).
fn s3_builder(bucket: &str) -> AmazonS3Builder {
    let mut builder = AmazonS3Builder::from_env().with_bucket_name(bucket);
    if let Some(endpoint) = env_var("AWS_ENDPOINT_URL_S3").or_else(|| env_var("AWS_ENDPOINT_URL")) {
        builder = builder
            .with_endpoint(endpoint)
            .with_allow_http(true)
            .with_virtual_hosted_style_request(false);
    }
    if let Some(region) = env_var("AWS_REGION") {
        builder = builder.with_region(region);
    }
    if let (Some(key_id), Some(secret)) = (
        env_var("AWS_ACCESS_KEY_ID"),
        env_var("AWS_SECRET_ACCESS_KEY"),
    ) {
        builder = builder
            .with_access_key_id(key_id)
            .with_secret_access_key(secret);
    }
    builder
}

/// The Arrow type of a column of a given schema.
pub fn arrow_type(field_type: FieldType) -> DataType {
    match field_type {
        FieldType::String => DataType::Utf8,
        FieldType::Int64 => DataType::Int64,
        FieldType::Float64 => DataType::Float64,
        FieldType::Boolean => DataType::Boolean,
        FieldType::Timestamp => timestamp_type(),
        FieldType::Date => DataType::Date32,
    }
}

/// The columns read from the files, as a schema says them.
pub fn file_schema(fields: &[FieldSchema]) -> SchemaRef {
    Arc::new(Schema::new(
        fields
            .iter()
            .map(|field| Field::new(&field.name, arrow_type(field.data_type), field.nullable))
            .collect::<Vec<_>>(),
    ))
}

/// The columns read from the path, in path order.
pub fn partition_columns(columns: &[PartitionColumn]) -> Vec<(String, DataType)> {
    columns
        .iter()
        .map(|column| (column.name.clone(), arrow_type(column.data_type)))
        .collect()
}

/// The table as SQL sees it when `input` has a schema: its file columns, then its partition
/// columns.
pub fn table_schema(input: &BatchInput) -> Option<SchemaRef> {
    let fields = input.schema.as_ref()?;
    let mut columns: Vec<Field> = file_schema(fields)
        .fields()
        .iter()
        .map(|field| field.as_ref().clone())
        .collect();
    columns.extend(
        partition_columns(&input.partition_columns)
            .into_iter()
            .map(|(name, data_type)| Field::new(name, data_type, false)),
    );
    Some(Arc::new(Schema::new(columns)))
}

/// The URL as a directory: every file below it, not a file named like it.
pub fn as_directory(url: &str) -> String {
    if url.ends_with('/') {
        url.to_owned()
    } else {
        format!("{url}/")
    }
}

/// Why an input cannot be registered.
#[derive(Debug, thiserror::Error)]
pub enum InputError {
    /// The location cannot be opened.
    #[error("input {input:?}: {source}")]
    Location {
        /// The input.
        input: String,
        /// Why.
        #[source]
        source: LocationError,
    },
    /// DataFusion refused the table (an unreadable listing, a schema that cannot be inferred).
    #[error("input {input:?} at {url}: {source}")]
    Table {
        /// The input.
        input: String,
        /// Its location.
        url: String,
        /// Why.
        #[source]
        source: DataFusionError,
    },
}

/// Register `input` in `ctx` as a listing table over every `.json` (JSON lines) or `.parquet`
/// file directly under its URL or under `name=value` directories; the columns are the given
/// schema's, else inferred from the files, followed by the partition columns.
pub async fn register_input(ctx: &SessionContext, input: &BatchInput) -> Result<(), InputError> {
    let url = as_directory(&input.url);
    Location::open(ctx, &url).map_err(|source| InputError::Location {
        input: input.name.clone(),
        source,
    })?;
    let table_error = |source| InputError::Table {
        input: input.name.clone(),
        url: url.clone(),
        source,
    };
    let (format, extension): (Arc<dyn FileFormat>, &str) = match input.format {
        DataFormat::JsonLines => (Arc::new(JsonFormat::default()), ".json"),
        DataFormat::Parquet => (Arc::new(ParquetFormat::default()), ".parquet"),
    };
    let options = ListingOptions::new(format)
        .with_file_extension(extension)
        .with_table_partition_cols(partition_columns(&input.partition_columns));
    let config = ListingTableConfig::new(ListingTableUrl::parse(&url).map_err(table_error)?)
        .with_listing_options(options);
    let config = match &input.schema {
        Some(fields) => config.with_schema(file_schema(fields)),
        None => config
            .infer_schema(&ctx.state())
            .await
            .map_err(table_error)?,
    };
    let table = ListingTable::try_new(config).map_err(table_error)?;
    ctx.register_table(input.name.as_str(), Arc::new(table))
        .map_err(table_error)?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn types_map_to_arrow() {
        assert_eq!(arrow_type(FieldType::String), DataType::Utf8);
        assert_eq!(arrow_type(FieldType::Date), DataType::Date32);
        assert_eq!(
            arrow_type(FieldType::Timestamp).to_string(),
            "Timestamp(µs, \"UTC\")"
        );
    }

    #[test]
    fn urls_become_directories() {
        assert_eq!(as_directory("s3://b/raw/pin"), "s3://b/raw/pin/");
        assert_eq!(as_directory("s3://b/raw/pin/"), "s3://b/raw/pin/");
    }

    #[test]
    fn locations_have_their_directory_in_the_store() {
        let ctx = SessionContext::new();
        let dir = tempfile::tempdir().unwrap();
        let url = format!("file://{}/out/", dir.path().display());
        let location = Location::open(&ctx, &url).unwrap();
        assert_eq!(location.store_url.as_str(), "file:///");
        assert_eq!(location.url_of_dir(&location.dir), url);
        assert!(dir.path().join("out").is_dir());

        let location = Location::open(&ctx, "s3://lake/results/top/").unwrap();
        assert_eq!(location.store_url.as_str(), "s3://lake/");
        assert_eq!(location.dir.as_ref(), "results/top");
        assert!(Location::open(&ctx, "http://x/y").is_err());
    }
}
