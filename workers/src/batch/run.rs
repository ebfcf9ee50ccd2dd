//! One scheduled run of a BatchJob: register the inputs, run the steps in order, write the
//! outputs.

use std::time::Instant;

use datafusion::error::DataFusionError;
use tracing::info;

use super::config::{BatchWorkerConfig, OutputSummary};
use super::output::{self, OutputError};
use super::plan::{BatchPlanError, check_references, query_only, session};
use super::tables::{InputError, register_input};

/// Why a run failed.
#[derive(Debug, thiserror::Error)]
pub enum BatchError {
    /// An input cannot be opened or read.
    #[error(transparent)]
    Input(#[from] InputError),
    /// A step's SQL is not a query over known tables.
    #[error(transparent)]
    Plan(#[from] BatchPlanError),
    /// A step does not plan against the inputs as they are.
    #[error("step {step:?}: {source}")]
    Step {
        /// The step.
        step: String,
        /// Why.
        #[source]
        source: DataFusionError,
    },
    /// A step's result cannot be computed or written.
    #[error("step {step:?}: {source}")]
    Output {
        /// The step.
        step: String,
        /// Why.
        #[source]
        source: OutputError,
    },
}

impl BatchError {
    /// A fixed label for metrics and logs: `config` needs a spec change, `data` the inputs or
    /// the SQL, `storage` may pass on a retry.
    pub fn category(&self) -> &'static str {
        match self {
            Self::Plan(_) => "config",
            Self::Input(InputError::Location { .. }) => "config",
            Self::Input(InputError::Table { .. }) | Self::Step { .. } => "data",
            Self::Output { source, .. } => match source {
                OutputError::Location(_) => "config",
                OutputError::Write { .. } => "data",
                OutputError::Replace { .. } => "storage",
            },
        }
    }
}

/// Run `config`'s steps for `scheduled_time`: each step becomes a view named after it for the
/// steps after it, and each step with an output is computed and written (see
/// [`super::output`]). Returns what each output step wrote, in step order.
pub async fn run(
    config: &BatchWorkerConfig,
    scheduled_time: jiff::Timestamp,
) -> Result<Vec<OutputSummary>, BatchError> {
    let started = Instant::now();
    let micros = scheduled_time.as_microsecond();
    let unix_seconds = scheduled_time.as_second();
    let ctx = session(micros);
    for input in &config.inputs {
        register_input(&ctx, input).await?;
    }
    let mut known: Vec<&str> = config.inputs.iter().map(|i| i.name.as_str()).collect();
    let mut summaries = Vec::new();
    for step in &config.steps {
        let step_started = Instant::now();
        check_references(&ctx, step, &known)?;
        let step_error = |source| BatchError::Step {
            step: step.name.clone(),
            source,
        };
        let result = ctx
            .sql_with_options(&step.sql, query_only())
            .await
            .map_err(step_error)?;
        ctx.register_table(step.name.as_str(), result.clone().into_view())
            .map_err(step_error)?;
        known.push(&step.name);
        let Some(out) = &step.output else {
            info!(batch_job = %config.batch_job, step = %step.name, "view defined");
            continue;
        };
        let rows = output::write(&ctx, result, out, unix_seconds)
            .await
            .map_err(|source| BatchError::Output {
                step: step.name.clone(),
                source,
            })?;
        let seconds = step_started.elapsed().as_secs_f64();
        info!(batch_job = %config.batch_job, step = %step.name, rows, seconds, url = %out.url, "output written");
        summaries.push(OutputSummary {
            step: step.name.clone(),
            rows: i64::try_from(rows).unwrap_or(i64::MAX),
            url: out.url.clone(),
        });
    }
    info!(
        batch_job = %config.batch_job,
        scheduled_time = %scheduled_time,
        outputs = summaries.len(),
        seconds = started.elapsed().as_secs_f64(),
        "run finished"
    );
    Ok(summaries)
}

#[cfg(test)]
mod tests {
    use std::path::Path;

    use datafusion::arrow::array::AsArray;
    use datafusion::arrow::datatypes::Int64Type;
    use datafusion::prelude::SessionContext;
    use tributary_crds::batch_job::{
        BatchInput, BatchOutput, BatchStep, OutputMode, PartitionColumn,
    };
    use tributary_crds::common::{DataFormat, FieldType};

    use super::*;
    use crate::batch::tables::register_input;

    fn write(path: &Path, lines: &[&str]) {
        std::fs::create_dir_all(path.parent().unwrap()).unwrap();
        std::fs::write(path, lines.join("\n") + "\n").unwrap();
    }

    /// Every file under `root`, relative to it, sorted.
    fn files(root: &Path) -> Vec<String> {
        let mut found = Vec::new();
        let mut dirs = vec![root.to_owned()];
        while let Some(dir) = dirs.pop() {
            for entry in std::fs::read_dir(&dir).unwrap() {
                let path = entry.unwrap().path();
                if path.is_dir() {
                    dirs.push(path);
                } else {
                    found.push(path.strip_prefix(root).unwrap().display().to_string());
                }
            }
        }
        found.sort();
        found
    }

    /// `sql` over the table at `url` (hive-partitioned by `dt` when `by_dt`).
    async fn query(url: &str, format: DataFormat, by_dt: bool, sql: &str) -> Vec<(String, i64)> {
        let ctx = SessionContext::new();
        let input = BatchInput {
            name: "t".into(),
            url: url.into(),
            format,
            partition_columns: if by_dt {
                vec![PartitionColumn {
                    name: "dt".into(),
                    data_type: FieldType::Date,
                }]
            } else {
                vec![]
            },
            schema: None,
        };
        register_input(&ctx, &input).await.unwrap();
        let batches = ctx.sql(sql).await.unwrap().collect().await.unwrap();
        let mut rows = Vec::new();
        for batch in batches {
            let key = datafusion::arrow::compute::cast(
                batch.column(0),
                &datafusion::arrow::datatypes::DataType::Utf8,
            )
            .unwrap();
            let value = batch.column(1).as_primitive::<Int64Type>();
            for row in 0..batch.num_rows() {
                rows.push((
                    key.as_string::<i32>().value(row).to_owned(),
                    value.value(row),
                ));
            }
        }
        rows
    }

    fn config(root: &Path) -> BatchWorkerConfig {
        let url = |path: &str| format!("file://{}/{path}", root.display());
        BatchWorkerConfig {
            batch_job: "test/daily".into(),
            inputs: vec![BatchInput {
                name: "pin".into(),
                url: url("raw/pin/"),
                format: DataFormat::JsonLines,
                partition_columns: vec![PartitionColumn {
                    name: "dt".into(),
                    data_type: FieldType::Date,
                }],
                schema: None,
            }],
            steps: vec![
                BatchStep {
                    name: "clean".into(),
                    sql: "SELECT \"index\" AS ind, parse_count(follower_count) AS followers, \
                          category, dt FROM pin \
                          WHERE dt = CAST(scheduled_time() - INTERVAL '1 day' AS DATE)"
                        .into(),
                    output: None,
                },
                BatchStep {
                    name: "by_category".into(),
                    sql: "SELECT dt, category, count(*) AS posts, sum(followers) AS followers \
                          FROM clean GROUP BY dt, category"
                        .into(),
                    output: Some(BatchOutput {
                        url: url("results/by_category"),
                        format: DataFormat::Parquet,
                        partition_by: vec!["dt".into()],
                        mode: OutputMode::ReplaceRun,
                    }),
                },
                BatchStep {
                    name: "latest".into(),
                    sql: "SELECT CAST(dt AS VARCHAR) AS day, count(*) AS posts FROM clean GROUP BY dt"
                        .into(),
                    output: Some(BatchOutput {
                        url: url("results/latest/"),
                        format: DataFormat::JsonLines,
                        partition_by: vec![],
                        mode: OutputMode::ReplaceAll,
                    }),
                },
            ],
        }
    }

    fn at(time: &str) -> jiff::Timestamp {
        time.parse().unwrap()
    }

    #[tokio::test]
    async fn steps_run_and_retries_replace_their_own_output() {
        let root = tempfile::tempdir().unwrap();
        let root = root.path();
        write(
            &root.join("raw/pin/dt=2024-01-01/pin+0+0+2.json"),
            &[
                r#"{"index": 1, "follower_count": "3k", "category": "art"}"#,
                r#"{"index": 2, "follower_count": "User Info Error", "category": "art"}"#,
                r#"{"index": 3, "follower_count": "1.5M", "category": "travel"}"#,
            ],
        );
        write(
            &root.join("raw/pin/dt=2024-01-02/pin+0+3+4.json"),
            &[
                r#"{"index": 4, "follower_count": "640", "category": "art"}"#,
                r#"{"index": 5, "follower_count": "", "category": "art"}"#,
            ],
        );
        write(
            &root.join("results/latest/stale.json"),
            &[r#"{"day": "x", "posts": 9}"#],
        );
        let config = config(root);
        let by_category = format!("file://{}/results/by_category/", root.display());
        let latest = format!("file://{}/results/latest/", root.display());

        let summaries = run(&config, at("2024-01-02T00:00:00Z")).await.unwrap();
        assert_eq!(
            summaries,
            [
                OutputSummary {
                    step: "by_category".into(),
                    rows: 2,
                    url: config.steps[1].output.as_ref().unwrap().url.clone(),
                },
                OutputSummary {
                    step: "latest".into(),
                    rows: 1,
                    url: config.steps[2].output.as_ref().unwrap().url.clone(),
                },
            ]
        );
        let sums = "SELECT CAST(dt AS VARCHAR) || '/' || category, followers FROM t ORDER BY 1";
        let day1 = vec![
            ("2024-01-01/art".to_owned(), 3000),
            ("2024-01-01/travel".to_owned(), 1_500_000),
        ];
        assert_eq!(
            query(&by_category, DataFormat::Parquet, true, sums).await,
            day1
        );
        assert_eq!(
            files(&root.join("results")),
            [
                "by_category/dt=2024-01-01/part-1704153600-0.parquet",
                "latest/part-1704153600-0.json",
            ]
        );

        // The retry of the same scheduled time replaces its files: nothing doubles.
        run(&config, at("2024-01-02T00:00:00Z")).await.unwrap();
        assert_eq!(
            query(&by_category, DataFormat::Parquet, true, sums).await,
            day1
        );

        // The next day's run adds its partition; ReplaceAll keeps only the newest result.
        run(&config, at("2024-01-03T00:00:00Z")).await.unwrap();
        let mut both = day1.clone();
        both.push(("2024-01-02/art".to_owned(), 640));
        assert_eq!(
            query(&by_category, DataFormat::Parquet, true, sums).await,
            both
        );
        assert_eq!(
            query(
                &latest,
                DataFormat::JsonLines,
                false,
                "SELECT day, posts FROM t"
            )
            .await,
            [("2024-01-02".to_owned(), 2)]
        );
        assert_eq!(
            files(&root.join("results")),
            [
                "by_category/dt=2024-01-01/part-1704153600-0.parquet",
                "by_category/dt=2024-01-02/part-1704240000-0.parquet",
                "latest/part-1704240000-0.json",
            ]
        );
    }

    #[tokio::test]
    async fn a_failing_step_names_itself_and_leaves_the_output_alone() {
        let root = tempfile::tempdir().unwrap();
        let root = root.path();
        write(
            &root.join("raw/pin/dt=2024-01-01/a.json"),
            &[r#"{"index": 1, "follower_count": "3k", "category": "art"}"#],
        );
        let mut config = config(root);
        run(&config, at("2024-01-02T00:00:00Z")).await.unwrap();
        config.steps[1].sql = "SELECT nope FROM clean".into();
        let error = run(&config, at("2024-01-02T00:00:00Z")).await.unwrap_err();
        assert!(
            error.to_string().starts_with("step \"by_category\""),
            "{error}"
        );
        assert_eq!(error.category(), "data");
        assert_eq!(files(&root.join("results")).len(), 2);

        config.steps[1].sql = "SELECT * FROM missing".into();
        let error = run(&config, at("2024-01-02T00:00:00Z")).await.unwrap_err();
        assert!(matches!(
            error,
            BatchError::Plan(BatchPlanError::UnknownTable { .. })
        ));
    }
}
