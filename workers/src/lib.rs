//! Tributary's data plane. Every worker builds its clients through [`connect`], so the operator,
//! the workers and the tests reach Kafka and AWS the same way.

pub mod connect;
pub mod sink;
