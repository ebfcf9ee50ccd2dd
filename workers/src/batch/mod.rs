//! The batch worker, which runs one scheduled run of a BatchJob's SQL steps over the lake with
//! Apache DataFusion (`docs/batch.md`).
//!
//! - [`config`]: the document the operator resolves for a BatchJob and the summary a run
//!   reports back.
//! - [`plan`]: [`check_steps`], the operator's check of the SQL without data.
//! - [`tables`]: the lake's stores and the inputs as tables.
//! - [`udf`]: `scheduled_time()`, `parse_count()`.
//! - [`output`]: writing a step's result, replacing the run's earlier attempt.
//! - [`run`](mod@run): one run.

pub mod config;
pub mod output;
pub mod plan;
pub mod run;
pub mod tables;
pub mod udf;

pub use plan::{BatchPlanError, check_steps};
pub use run::{BatchError, run};

/// The rows of the Parquet table at `url` (every file under it), sorted by every column, at most
/// `limit` of them, as a text table or (with `json`) as JSON lines with explicit nulls: how
/// `tributary local show` prints result tables.
pub async fn show(url: &str, limit: usize, json: bool) -> Result<String, ShowError> {
    use datafusion::arrow::json::WriterBuilder;
    use datafusion::arrow::json::writer::LineDelimited;
    use datafusion::arrow::util::pretty::pretty_format_batches;
    use tributary_crds::batch_job::BatchInput;
    use tributary_crds::common::DataFormat;

    let ctx = plan::session(jiff::Timestamp::now().as_microsecond());
    let input = BatchInput {
        name: "shown".into(),
        url: url.to_owned(),
        format: DataFormat::Parquet,
        partition_columns: Vec::new(),
        schema: None,
    };
    tables::register_input(&ctx, &input)
        .await
        .map_err(|e| ShowError(format!("{url}: {e}")))?;
    let frame = ctx
        .table("shown")
        .await
        .map_err(|e| ShowError(format!("{url}: {e}")))?;
    let columns: Vec<_> = frame
        .schema()
        .columns()
        .into_iter()
        .map(|c| datafusion::logical_expr::col(c).sort(true, true))
        .collect();
    let batches = frame
        .sort(columns)
        .and_then(|f| f.limit(0, Some(limit)))
        .map_err(|e| ShowError(format!("{url}: {e}")))?
        .collect()
        .await
        .map_err(|e| ShowError(format!("{url}: {e}")))?;
    let failed = |e: datafusion::arrow::error::ArrowError| ShowError(format!("{url}: {e}"));
    if !json {
        return pretty_format_batches(&batches)
            .map(|table| table.to_string())
            .map_err(failed);
    }
    let mut writer = WriterBuilder::new()
        .with_explicit_nulls(true)
        .build::<_, LineDelimited>(Vec::new());
    for batch in &batches {
        writer.write(batch).map_err(failed)?;
    }
    writer.finish().map_err(failed)?;
    String::from_utf8(writer.into_inner()).map_err(|e| ShowError(format!("{url}: {e}")))
}

/// A table could not be shown.
#[derive(Debug, thiserror::Error)]
#[error("cannot show {0}")]
pub struct ShowError(String);
