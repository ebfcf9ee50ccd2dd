//! The gateway's limits and timeouts.

use std::time::Duration;

/// Limits of one gateway process.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct GatewayConfig {
    /// Largest request body, in bytes.
    pub max_body_bytes: usize,
    /// Most records in one request.
    pub max_records: usize,
    /// Longest a request may take, from its headers to its answer.
    pub request_timeout: Duration,
    /// Most records handed to the producer and not yet acknowledged, over all requests. A
    /// request whose records do not fit within [`BACKPRESSURE_WAIT`] is answered 429.
    pub max_in_flight_records: usize,
    /// How long records Kinesis throttles are put again, with backoff, before the request is
    /// answered with them as not written (429 when none was).
    pub kinesis_retry_for: Duration,
}

/// How long a request waits for room among the in-flight records before it is answered 429.
pub const BACKPRESSURE_WAIT: Duration = Duration::from_secs(1);

impl Default for GatewayConfig {
    fn default() -> Self {
        Self {
            max_body_bytes: 8 * 1024 * 1024,
            max_records: 10_000,
            request_timeout: Duration::from_secs(30),
            max_in_flight_records: 100_000,
            kinesis_retry_for: Duration::from_secs(5),
        }
    }
}

/// A limit that cannot work.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum ConfigError {
    /// A limit is zero.
    #[error("{0} must be at least 1")]
    Zero(&'static str),
    /// The timeout leaves no time to deliver records.
    #[error("--request-timeout must be at least 2s, not {0:?}")]
    TimeoutTooShort(Duration),
    /// Kinesis retries would outlast the request.
    #[error(
        "--kinesis-retry-for ({retry:?}) must be shorter than --request-timeout ({timeout:?}), \
         so that a request answers with its records' errors instead of timing out"
    )]
    RetryOutlastsRequest {
        /// `--kinesis-retry-for`.
        retry: Duration,
        /// `--request-timeout`.
        timeout: Duration,
    },
    /// One request could never fit among the in-flight records.
    #[error(
        "--max-in-flight-records ({in_flight}) must be at least --max-records ({max_records}): \
         a full request would never fit"
    )]
    InFlightBelowRequest {
        /// `--max-in-flight-records`.
        in_flight: usize,
        /// `--max-records`.
        max_records: usize,
    },
}

impl GatewayConfig {
    /// Check that the limits can work together.
    pub fn validate(&self) -> Result<(), ConfigError> {
        if self.max_body_bytes == 0 {
            return Err(ConfigError::Zero("--max-body-bytes"));
        }
        if self.max_records == 0 {
            return Err(ConfigError::Zero("--max-records"));
        }
        if self.request_timeout < Duration::from_secs(2) {
            return Err(ConfigError::TimeoutTooShort(self.request_timeout));
        }
        if self.kinesis_retry_for >= self.request_timeout {
            return Err(ConfigError::RetryOutlastsRequest {
                retry: self.kinesis_retry_for,
                timeout: self.request_timeout,
            });
        }
        if self.max_in_flight_records < self.max_records {
            return Err(ConfigError::InFlightBelowRequest {
                in_flight: self.max_in_flight_records,
                max_records: self.max_records,
            });
        }
        Ok(())
    }

    /// How long the producer tries to deliver a record (librdkafka's `message.timeout.ms`):
    /// three quarters of the request timeout, so a record the broker does not take fails with
    /// its own error while the request can still answer, instead of the request timing out.
    pub fn delivery_timeout(&self) -> Duration {
        self.request_timeout * 3 / 4
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn defaults_are_valid() {
        let config = GatewayConfig::default();
        assert_eq!(config.validate(), Ok(()));
        assert_eq!(config.delivery_timeout(), Duration::from_millis(22_500));
    }

    #[test]
    fn limits_that_cannot_work_are_refused() {
        let with = |f: fn(&mut GatewayConfig)| {
            let mut config = GatewayConfig::default();
            f(&mut config);
            config.validate().unwrap_err().to_string()
        };
        assert_eq!(
            with(|c| c.max_records = 0),
            "--max-records must be at least 1"
        );
        assert_eq!(
            with(|c| c.max_body_bytes = 0),
            "--max-body-bytes must be at least 1"
        );
        assert!(with(|c| c.request_timeout = Duration::from_millis(500)).contains("at least 2s"));
        assert!(with(|c| c.max_in_flight_records = 10).contains("a full request would never fit"));
        assert!(
            with(|c| c.kinesis_retry_for = Duration::from_secs(30))
                .contains("must be shorter than --request-timeout")
        );
    }
}
