//! Writing a step's result so that a run replaces, never adds to, what an earlier attempt of
//! it wrote (decision 0013).
//!
//! DataFusion names the files it writes at random, so the result is first written under a
//! staging directory of the run, `<output>/_tmp-<unix>/` (which readers of the output skip:
//! DataFusion lists only files directly under a table's directory or under `name=value`
//! directories). Only when the whole result is written are the files it replaces deleted —
//! for `ReplaceRun` the files named `part-<unix>-*` anywhere under the output, for `ReplaceAll`
//! every file under it — and the staged files moved in as `part-<unix>-<n>.<ext>`, keeping
//! their `name=value` directories. A run that fails before the swap leaves the output as it
//! was; one that fails during the swap is repaired by its retry, which stages again, deletes
//! the same names and moves in the same names.

use datafusion::arrow::array::AsArray;
use datafusion::arrow::datatypes::UInt64Type;
use datafusion::dataframe::{DataFrame, DataFrameWriteOptions};
use datafusion::error::DataFusionError;
use datafusion::prelude::SessionContext;
use futures::TryStreamExt;
use object_store_datafusion::path::Path;
use object_store_datafusion::{ObjectStore, ObjectStoreExt};
use tributary_crds::batch_job::{BatchOutput, OutputMode};
use tributary_crds::common::DataFormat;

use super::tables::{Location, LocationError, as_directory};

/// Why an output cannot be written.
#[derive(Debug, thiserror::Error)]
pub enum OutputError {
    /// The location cannot be opened.
    #[error(transparent)]
    Location(#[from] LocationError),
    /// The query failed while it ran, or its result could not be written.
    #[error("cannot compute and write the result to {url}: {source}")]
    Write {
        /// The output location.
        url: String,
        /// Why.
        #[source]
        source: DataFusionError,
    },
    /// Listing, deleting or moving files failed.
    #[error("cannot replace the files under {url}: {source}")]
    Replace {
        /// The output location.
        url: String,
        /// Why.
        #[source]
        source: object_store_datafusion::Error,
    },
}

/// The prefix of every file name a run scheduled at `unix_seconds` writes.
pub fn run_file_prefix(unix_seconds: i64) -> String {
    format!("part-{unix_seconds}-")
}

/// The staging directory of a run, under the output directory.
pub fn staging_dir_name(unix_seconds: i64) -> String {
    format!("_tmp-{unix_seconds}")
}

/// Compute `result`, write it to `output` for the run scheduled at `unix_seconds`, replacing
/// what `output.mode` says, and return the number of rows written.
pub async fn write(
    ctx: &SessionContext,
    result: DataFrame,
    output: &BatchOutput,
    unix_seconds: i64,
) -> Result<u64, OutputError> {
    let url = as_directory(&output.url);
    let location = Location::open(ctx, &url)?;
    let replace_error = |source| OutputError::Replace {
        url: url.clone(),
        source,
    };
    let store = location.store.as_ref();
    let staging = location.dir.clone().join(staging_dir_name(unix_seconds));
    delete_all(store, &staging).await.map_err(replace_error)?;

    let staging_url = location.url_of_dir(&staging);
    let options = DataFrameWriteOptions::new().with_partition_by(output.partition_by.clone());
    let written = match output.format {
        DataFormat::Parquet => result.write_parquet(&staging_url, options, None).await,
        DataFormat::JsonLines => result.write_json(&staging_url, options, None).await,
    }
    .map_err(|source| OutputError::Write {
        url: url.clone(),
        source,
    })?;
    let rows = written
        .iter()
        .flat_map(|batch| batch.column(0).as_primitive::<UInt64Type>().iter())
        .map(|count| count.unwrap_or(0))
        .sum();

    let prefix = run_file_prefix(unix_seconds);
    let replaced = list(store, &location.dir)
        .await
        .map_err(replace_error)?
        .into_iter()
        .filter(|path| !path.prefix_matches(&staging))
        .filter(|path| match output.mode {
            OutputMode::ReplaceAll => true,
            OutputMode::ReplaceRun => path
                .filename()
                .is_some_and(|name| name.starts_with(&prefix)),
        });
    for path in replaced {
        store.delete(&path).await.map_err(replace_error)?;
    }
    let staged = list(store, &staging).await.map_err(replace_error)?;
    for (n, from) in staged.iter().enumerate() {
        let to = final_path(&location.dir, &staging, from, &prefix, n);
        store.rename(from, &to).await.map_err(replace_error)?;
    }
    remove_local_staging(&location, &staging);
    Ok(rows)
}

/// Where the `n`th staged file goes: the same `name=value` directories under the output
/// directory, named `<prefix><n>.<its extension>`.
fn final_path(dir: &Path, staging: &Path, staged: &Path, prefix: &str, n: usize) -> Path {
    let parts: Vec<_> = staged
        .prefix_match(staging)
        .map(|parts| parts.collect())
        .unwrap_or_default();
    let (file, dirs) = parts.split_last().expect("a staged file has a name");
    let extension = file
        .as_ref()
        .rsplit_once('.')
        .map(|(_, extension)| format!(".{extension}"))
        .unwrap_or_default();
    let mut path = dir.clone();
    for part in dirs {
        path = path.join(part.clone());
    }
    path.join(format!("{prefix}{n}{extension}"))
}

/// Every file under `dir`, sorted.
async fn list(store: &dyn ObjectStore, dir: &Path) -> object_store_datafusion::Result<Vec<Path>> {
    let mut paths: Vec<Path> = store
        .list(Some(dir))
        .map_ok(|meta| meta.location)
        .try_collect()
        .await?;
    paths.sort();
    Ok(paths)
}

async fn delete_all(store: &dyn ObjectStore, dir: &Path) -> object_store_datafusion::Result<()> {
    for path in list(store, dir).await? {
        store.delete(&path).await?;
    }
    Ok(())
}

/// A local file system keeps empty directories, which S3 does not have; the staging one goes.
fn remove_local_staging(location: &Location, staging: &Path) {
    if location.store_url.scheme() == "file" {
        let _ = std::fs::remove_dir_all(format!("/{staging}"));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn staged_files_keep_their_partition_directories() {
        let dir = Path::from("results/top");
        let staging = dir.clone().join(staging_dir_name(1_704_067_200));
        let staged = Path::from("results/top/_tmp-1704067200/country=India/k3F9x_0.parquet");
        assert_eq!(
            final_path(&dir, &staging, &staged, &run_file_prefix(1_704_067_200), 2).as_ref(),
            "results/top/country=India/part-1704067200-2.parquet"
        );
        let staged = Path::from("results/top/_tmp-1704067200/k3F9x_0.json");
        assert_eq!(
            final_path(&dir, &staging, &staged, "part-1-", 0).as_ref(),
            "results/top/part-1-0.json"
        );
    }
}
