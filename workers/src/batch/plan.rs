//! Checking a BatchJob's SQL without data: what the operator does before it schedules a run,
//! and what each run does again step by step.

use std::sync::Arc;

use datafusion::datasource::MemTable;
use datafusion::error::DataFusionError;
use datafusion::execution::context::SQLOptions;
use datafusion::prelude::SessionContext;
use datafusion::sql::parser::Statement;
use datafusion::sql::sqlparser::ast;
use tributary_crds::batch_job::{BatchInput, BatchStep};

use super::tables::table_schema;
use super::udf;

/// Why a BatchJob's steps cannot run. Every message names the step and says what to fix.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum BatchPlanError {
    /// The SQL is not valid SQL, or more than one statement.
    #[error("step {step:?}: the SQL does not parse: {message}; write one query in spec.steps")]
    Syntax {
        /// The step.
        step: String,
        /// DataFusion's message.
        message: String,
    },
    /// A statement other than a query (DDL, `INSERT`, `COPY`, `SET`, `EXPLAIN` ...).
    #[error(
        "step {step:?}: only a query (SELECT, WITH ... SELECT, VALUES) can be a step; \
         write the output location in spec.steps[].output instead of a statement that writes"
    )]
    NotAQuery {
        /// The step.
        step: String,
    },
    /// A table that is neither an input nor an earlier step.
    #[error(
        "step {step:?} reads table {table:?}, which is neither an input nor an earlier step \
         (known here: {known}); add it to spec.inputs, or move the step that defines it earlier"
    )]
    UnknownTable {
        /// The step.
        step: String,
        /// The table as the SQL names it.
        table: String,
        /// The inputs and earlier steps, comma-separated.
        known: String,
    },
    /// The query does not plan against the inputs' schemas: an unknown column or function, a
    /// type mismatch.
    #[error("step {step:?}: {message}; fix the step's SQL or the inputs' schemas")]
    Plan {
        /// The step.
        step: String,
        /// DataFusion's message.
        message: String,
    },
}

/// What a step may be: a query, nothing that creates, writes or changes settings.
pub fn query_only() -> SQLOptions {
    SQLOptions::new()
        .with_allow_ddl(false)
        .with_allow_dml(false)
        .with_allow_statements(false)
}

/// A session with the worker's functions, `scheduled_time()` returning `scheduled_micros`.
pub fn session(scheduled_micros: i64) -> SessionContext {
    let ctx = SessionContext::new();
    udf::register(&ctx, scheduled_micros);
    ctx
}

/// Check a BatchJob's steps without data and without I/O, for the operator's validation.
///
/// Every step's SQL must be one query, and every table it reads must be an input or an
/// earlier step (CTE names are local to the query and need not be). When every input has a
/// schema, each step is also planned by DataFusion against empty tables of those schemas (with
/// the partition columns after the file columns), and registered as a view for the steps after
/// it, so unknown columns and functions and type errors are found here and not in a run.
/// Without all schemas the columns are only known from the files, so only the parse and the
/// table references are checked.
///
/// The first problem found is returned; its message names the step and what to fix.
pub async fn check_steps(inputs: &[BatchInput], steps: &[BatchStep]) -> Result<(), BatchPlanError> {
    let ctx = session(0);
    let schemas: Option<Vec<_>> = inputs.iter().map(table_schema).collect();
    if let Some(schemas) = &schemas {
        for (input, schema) in inputs.iter().zip(schemas) {
            let empty = MemTable::try_new(schema.clone(), vec![vec![]])
                .expect("an empty table has a valid schema");
            ctx.register_table(input.name.as_str(), Arc::new(empty))
                .expect("the default catalog takes tables");
        }
    }
    let mut known: Vec<&str> = inputs.iter().map(|input| input.name.as_str()).collect();
    for step in steps {
        check_references(&ctx, step, &known)?;
        if schemas.is_some() {
            let plan = ctx
                .sql_with_options(&step.sql, query_only())
                .await
                .map_err(|error| plan_error(&step.name, &error))?;
            // Type coercion runs in the analyzer, after the SQL is planned.
            plan.clone()
                .into_optimized_plan()
                .map_err(|error| plan_error(&step.name, &error))?;
            ctx.register_table(step.name.as_str(), plan.into_view())
                .map_err(|error| plan_error(&step.name, &error))?;
        }
        known.push(&step.name);
    }
    Ok(())
}

/// Parse `step` and check that it is one query reading only `known` tables.
pub fn check_references(
    ctx: &SessionContext,
    step: &BatchStep,
    known: &[&str],
) -> Result<(), BatchPlanError> {
    let state = ctx.state();
    let dialect = state.config().options().sql_parser.dialect;
    let statement = state
        .sql_to_statement(&step.sql, &dialect)
        .map_err(|error| BatchPlanError::Syntax {
            step: step.name.clone(),
            message: message(&error),
        })?;
    let is_query = matches!(&statement, Statement::Statement(inner) if matches!(inner.as_ref(), ast::Statement::Query(_)));
    if !is_query {
        return Err(BatchPlanError::NotAQuery {
            step: step.name.clone(),
        });
    }
    let references = state
        .resolve_table_references(&statement)
        .map_err(|error| plan_error(&step.name, &error))?;
    for reference in references {
        if !known.contains(&reference.table()) {
            return Err(BatchPlanError::UnknownTable {
                step: step.name.clone(),
                table: reference.to_string(),
                known: known.join(", "),
            });
        }
    }
    Ok(())
}

fn plan_error(step: &str, error: &DataFusionError) -> BatchPlanError {
    BatchPlanError::Plan {
        step: step.to_owned(),
        message: message(error),
    }
}

/// DataFusion's message without the backtrace-like context it sometimes adds.
fn message(error: &DataFusionError) -> String {
    error.find_root().to_string()
}

#[cfg(test)]
mod tests {
    use tributary_crds::common::{DataFormat, FieldSchema, FieldType};

    use super::*;

    fn input(name: &str, columns: Option<&[(&str, FieldType)]>) -> BatchInput {
        BatchInput {
            name: name.into(),
            url: format!("s3://lake/raw/{name}/"),
            format: DataFormat::JsonLines,
            partition_columns: vec![tributary_crds::batch_job::PartitionColumn {
                name: "dt".into(),
                data_type: FieldType::Date,
            }],
            schema: columns.map(|columns| {
                columns
                    .iter()
                    .map(|(name, data_type)| FieldSchema {
                        name: (*name).into(),
                        data_type: *data_type,
                        nullable: true,
                    })
                    .collect()
            }),
        }
    }

    fn step(name: &str, sql: &str) -> BatchStep {
        BatchStep {
            name: name.into(),
            sql: sql.into(),
            output: None,
        }
    }

    const PIN: &[(&str, FieldType)] = &[
        ("index", FieldType::Int64),
        ("follower_count", FieldType::String),
        ("category", FieldType::String),
    ];

    #[tokio::test]
    async fn steps_plan_against_schemas_and_earlier_steps() {
        let steps = [
            step(
                "clean",
                "SELECT index AS ind, parse_count(follower_count) AS followers, category, dt \
                 FROM pin WHERE dt = CAST(scheduled_time() - INTERVAL '1 day' AS DATE)",
            ),
            step(
                "top",
                "WITH c AS (SELECT category, count(*) AS n FROM clean GROUP BY category) \
                 SELECT * FROM c ORDER BY n DESC",
            ),
        ];
        check_steps(&[input("pin", Some(PIN))], &steps)
            .await
            .unwrap();
        check_steps(&[input("pin", None)], &steps).await.unwrap();
    }

    #[tokio::test]
    async fn an_unknown_table_names_the_step_with_or_without_schemas() {
        let steps = [
            step("clean", "SELECT * FROM pin"),
            step(
                "top",
                "SELECT * FROM clean JOIN geo ON clean.index = geo.ind",
            ),
        ];
        for pin in [input("pin", Some(PIN)), input("pin", None)] {
            let error = check_steps(&[pin], &steps).await.unwrap_err();
            assert!(
                matches!(&error, BatchPlanError::UnknownTable { step, table, .. }
                if step == "top" && table == "geo")
            );
            let message = error.to_string();
            assert!(
                message.contains("\"top\"") && message.contains("pin, clean"),
                "{message}"
            );
        }
        // A later step is not visible to an earlier one.
        let steps = [step("a", "SELECT * FROM b"), step("b", "SELECT * FROM pin")];
        let error = check_steps(&[input("pin", None)], &steps)
            .await
            .unwrap_err();
        assert!(matches!(error, BatchPlanError::UnknownTable { step, .. } if step == "a"));
    }

    #[tokio::test]
    async fn an_unknown_column_is_found_when_schemas_are_given() {
        let steps = [
            step("clean", "SELECT index, category FROM pin"),
            step("top", "SELECT follower_count FROM clean"),
        ];
        let error = check_steps(&[input("pin", Some(PIN))], &steps)
            .await
            .unwrap_err();
        let BatchPlanError::Plan { step, message } = &error else {
            panic!("{error:?}")
        };
        assert_eq!(step, "top");
        assert!(message.contains("follower_count"), "{message}");
        check_steps(&[input("pin", None)], &steps).await.unwrap();
    }

    #[tokio::test]
    async fn a_type_error_is_found_when_schemas_are_given() {
        let steps = [step("bad", "SELECT category - 1 FROM pin")];
        let error = check_steps(&[input("pin", Some(PIN))], &steps)
            .await
            .unwrap_err();
        assert!(
            matches!(&error, BatchPlanError::Plan { step, .. } if step == "bad"),
            "{error}"
        );
    }

    #[tokio::test]
    async fn syntax_errors_and_statements_are_refused() {
        let pin = [input("pin", None)];
        let error = check_steps(&pin, &[step("broken", "SELEC * FROM pin")])
            .await
            .unwrap_err();
        assert!(matches!(&error, BatchPlanError::Syntax { step, .. } if step == "broken"));
        assert!(
            error
                .to_string()
                .starts_with("step \"broken\": the SQL does not parse")
        );

        let error = check_steps(&pin, &[step("two", "SELECT 1; SELECT 2")])
            .await
            .unwrap_err();
        assert!(matches!(error, BatchPlanError::Syntax { .. }), "{error}");

        for sql in [
            "CREATE TABLE t AS SELECT 1",
            "COPY pin TO 'file:///tmp/x' STORED AS PARQUET",
            "DROP TABLE pin",
            "SET datafusion.execution.batch_size = 1",
        ] {
            let error = check_steps(&pin, &[step("writes", sql)]).await.unwrap_err();
            assert!(
                matches!(error, BatchPlanError::NotAQuery { .. }),
                "{sql}: {error}"
            );
        }
    }
}
