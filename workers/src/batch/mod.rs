//! The batch worker, which runs one scheduled run of a BatchJob's SQL steps over the lake.
//!
//! [`config`] is the document the operator resolves for a BatchJob and the summary a run
//! reports back.

pub mod config;
