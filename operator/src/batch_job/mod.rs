//! The BatchJob controller. So far its pure scheduling core: which scheduled times are due, when
//! the next one is, backfill ranges, Job names and the concurrency decision. The reconcile that
//! creates the Jobs and writes status arrives with issue 5.

pub mod schedule;
