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
