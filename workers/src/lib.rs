//! Tributary's data plane. Every worker builds its clients through [`connect`], so the operator,
//! the workers and the tests reach Kafka and AWS the same way; [`http`] serves a worker's
//! probes and metrics; [`pinterest`] generates the reference workload's records; [`gateway`]
//! takes records over HTTP into Kafka.

pub mod batch;
pub mod connect;
pub mod gateway;
pub mod http;
pub mod pinterest;
pub mod sink;
