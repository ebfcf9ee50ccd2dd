//! What the gateway answers, in the REST proxy's shapes: a produce response with one entry per
//! record, or an error `{"error_code": <int>, "message": "..."}`.
//!
//! Error codes are the REST proxy's where it has one (40101, 40401, 40402, 42201, 42202, 50002,
//! 50003); other errors carry their HTTP status as the code, as the REST proxy's generic errors
//! do.

use axum_core::response::{IntoResponse, Response};
use http::{HeaderValue, StatusCode, header};
use serde::Serialize;

/// The content type of every answer.
pub const CONTENT_TYPE: &str = "application/vnd.kafka.v2+json";

/// Why a request or a record failed: the `reason` label of the error metric, a fixed set.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum ErrorReason {
    /// No API key, or one that is not valid.
    Unauthorized,
    /// The topic is not served.
    UnknownTopic,
    /// Neither of the two content types.
    UnsupportedMediaType,
    /// The body is not JSON.
    MalformedJson,
    /// The body is JSON but not a produce request.
    InvalidRequest,
    /// A key cannot be decoded.
    InvalidKey,
    /// A value cannot be decoded.
    InvalidValue,
    /// The body is over the size limit.
    BodyTooLarge,
    /// More records than a request may hold.
    TooManyRecords,
    /// The in-flight records stayed at their limit.
    Overloaded,
    /// The request took longer than the timeout.
    Timeout,
    /// The Topic list has not been read yet.
    NotReady,
    /// No such route or method.
    NotFound,
    /// A record's partition does not exist.
    PartitionNotFound,
    /// Kafka refused a record or timed out, and trying again may work.
    KafkaRetriable,
    /// Kafka refused a record.
    Kafka,
    /// The stream is not served, or Kinesis does not have it.
    UnknownStream,
    /// Kinesis throttled records (counted per attempt; a request answered 429 kept it up).
    KinesisThrottled,
    /// Kinesis refused records for another reason (permissions, KMS).
    Kinesis,
}

impl ErrorReason {
    /// The metric label.
    pub fn label(self) -> &'static str {
        match self {
            Self::Unauthorized => "unauthorized",
            Self::UnknownTopic => "unknown_topic",
            Self::UnsupportedMediaType => "unsupported_media_type",
            Self::MalformedJson => "malformed_json",
            Self::InvalidRequest => "invalid_request",
            Self::InvalidKey => "invalid_key",
            Self::InvalidValue => "invalid_value",
            Self::BodyTooLarge => "body_too_large",
            Self::TooManyRecords => "too_many_records",
            Self::Overloaded => "overloaded",
            Self::Timeout => "timeout",
            Self::NotReady => "not_ready",
            Self::NotFound => "not_found",
            Self::PartitionNotFound => "partition_not_found",
            Self::KafkaRetriable => "kafka_retriable",
            Self::Kafka => "kafka",
            Self::UnknownStream => "unknown_stream",
            Self::KinesisThrottled => "kinesis_throttled",
            Self::Kinesis => "kinesis",
        }
    }
}

/// A request that is answered with an error instead of offsets.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ApiError {
    /// HTTP status.
    pub status: StatusCode,
    /// `error_code` in the body.
    pub error_code: u32,
    /// `message` in the body: what went wrong and what to do.
    pub message: String,
    /// For the metrics.
    pub reason: ErrorReason,
}

#[derive(Serialize)]
struct ErrorBody<'a> {
    error_code: u32,
    message: &'a str,
}

impl ApiError {
    fn new(
        status: StatusCode,
        error_code: u32,
        reason: ErrorReason,
        message: impl Into<String>,
    ) -> Self {
        Self {
            status,
            error_code,
            message: message.into(),
            reason,
        }
    }

    /// 401 40101.
    pub fn unauthorized(message: impl Into<String>) -> Self {
        Self::new(
            StatusCode::UNAUTHORIZED,
            40101,
            ErrorReason::Unauthorized,
            message,
        )
    }

    /// 404 40401.
    pub fn unknown_topic(message: impl Into<String>) -> Self {
        Self::new(
            StatusCode::NOT_FOUND,
            40401,
            ErrorReason::UnknownTopic,
            message,
        )
    }

    /// 404 40404.
    pub fn unknown_stream(message: impl Into<String>) -> Self {
        Self::new(
            StatusCode::NOT_FOUND,
            40404,
            ErrorReason::UnknownStream,
            message,
        )
    }

    /// 429 42901: Kinesis kept throttling the records.
    pub fn kinesis_throttled(message: impl Into<String>) -> Self {
        Self::new(
            StatusCode::TOO_MANY_REQUESTS,
            42901,
            ErrorReason::KinesisThrottled,
            message,
        )
    }

    /// 502 50201: Kinesis refused the records.
    pub fn kinesis(message: impl Into<String>) -> Self {
        Self::new(
            StatusCode::BAD_GATEWAY,
            50201,
            ErrorReason::Kinesis,
            message,
        )
    }

    /// 415 415.
    pub fn unsupported_media_type(message: impl Into<String>) -> Self {
        Self::new(
            StatusCode::UNSUPPORTED_MEDIA_TYPE,
            415,
            ErrorReason::UnsupportedMediaType,
            message,
        )
    }

    /// 400 400.
    pub fn malformed_json(message: impl Into<String>) -> Self {
        Self::new(
            StatusCode::BAD_REQUEST,
            400,
            ErrorReason::MalformedJson,
            message,
        )
    }

    /// 422 422.
    pub fn invalid_request(message: impl Into<String>) -> Self {
        Self::new(
            StatusCode::UNPROCESSABLE_ENTITY,
            422,
            ErrorReason::InvalidRequest,
            message,
        )
    }

    /// 422 42201.
    pub fn invalid_key(message: impl Into<String>) -> Self {
        Self::new(
            StatusCode::UNPROCESSABLE_ENTITY,
            42201,
            ErrorReason::InvalidKey,
            message,
        )
    }

    /// 422 42202.
    pub fn invalid_value(message: impl Into<String>) -> Self {
        Self::new(
            StatusCode::UNPROCESSABLE_ENTITY,
            42202,
            ErrorReason::InvalidValue,
            message,
        )
    }

    /// 413 413, for the body.
    pub fn body_too_large(limit: usize) -> Self {
        Self::new(
            StatusCode::PAYLOAD_TOO_LARGE,
            413,
            ErrorReason::BodyTooLarge,
            format!(
                "the request body is larger than the limit of {limit} bytes (--max-body-bytes); \
                 send the records in smaller requests"
            ),
        )
    }

    /// 413 413, for the record count.
    pub fn too_many_records(records: usize, limit: usize) -> Self {
        Self::new(
            StatusCode::PAYLOAD_TOO_LARGE,
            413,
            ErrorReason::TooManyRecords,
            format!(
                "the request has {records} records, more than the limit of {limit} per request \
                 (--max-records); send them in smaller requests"
            ),
        )
    }

    /// 429 429.
    pub fn overloaded(waited: std::time::Duration) -> Self {
        Self::new(
            StatusCode::TOO_MANY_REQUESTS,
            429,
            ErrorReason::Overloaded,
            format!(
                "the gateway's producer queue stayed full for {} s (--max-in-flight-records); \
                 retry later",
                waited.as_secs_f64()
            ),
        )
    }

    /// 408 408.
    pub fn timeout(limit: std::time::Duration) -> Self {
        Self::new(
            StatusCode::REQUEST_TIMEOUT,
            408,
            ErrorReason::Timeout,
            format!(
                "the request did not complete within {} s (--request-timeout)",
                limit.as_secs_f64()
            ),
        )
    }

    /// 503 503.
    pub fn not_ready() -> Self {
        Self::new(
            StatusCode::SERVICE_UNAVAILABLE,
            503,
            ErrorReason::NotReady,
            "the gateway is starting: it has not read the Topics it serves yet; retry shortly",
        )
    }

    /// 404 404, for a path the gateway does not have.
    pub fn no_route(method: &str, path: &str) -> Self {
        Self::new(
            StatusCode::NOT_FOUND,
            404,
            ErrorReason::NotFound,
            format!("{method} {path} does not exist; records are sent with POST /topics/{{topic}}"),
        )
    }

    /// 405 405.
    pub fn method_not_allowed(method: &str) -> Self {
        Self::new(
            StatusCode::METHOD_NOT_ALLOWED,
            405,
            ErrorReason::NotFound,
            format!("{method} is not allowed here; records are sent with POST /topics/{{topic}}"),
        )
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let body = serde_json::to_vec(&ErrorBody {
            error_code: self.error_code,
            message: &self.message,
        })
        .expect("an error body serializes");
        let mut response = (
            self.status,
            [(header::CONTENT_TYPE, HeaderValue::from_static(CONTENT_TYPE))],
            body,
        )
            .into_response();
        let headers = response.headers_mut();
        match self.reason {
            ErrorReason::Unauthorized => {
                headers.insert(
                    header::WWW_AUTHENTICATE,
                    HeaderValue::from_static("Bearer realm=\"tributary-gateway\""),
                );
            }
            ErrorReason::Overloaded | ErrorReason::NotReady | ErrorReason::KinesisThrottled => {
                headers.insert(header::RETRY_AFTER, HeaderValue::from_static("1"));
            }
            _ => {}
        }
        response.extensions_mut().insert(self.reason);
        response
    }
}

/// One record's result, in request order: where it was written, or why it was not. All four
/// fields are always present, `null` where they do not apply, as the REST proxy writes them.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct RecordOutcome {
    /// The partition the record was written to.
    pub partition: Option<i32>,
    /// Its offset there.
    pub offset: Option<i64>,
    /// Why it was not written.
    pub error_code: Option<u32>,
    /// What went wrong.
    pub error: Option<String>,
    /// For the metrics; not part of the answer.
    #[serde(skip)]
    pub reason: Option<ErrorReason>,
}

impl RecordOutcome {
    /// The record is in Kafka at `partition`/`offset`.
    pub fn delivered(partition: i32, offset: i64) -> Self {
        Self {
            partition: Some(partition),
            offset: Some(offset),
            error_code: None,
            error: None,
            reason: None,
        }
    }

    /// The record is not in Kafka.
    pub fn failed(error_code: u32, reason: ErrorReason, error: impl Into<String>) -> Self {
        Self {
            partition: None,
            offset: None,
            error_code: Some(error_code),
            error: Some(error.into()),
            reason: Some(reason),
        }
    }
}

/// The answer to a produce request: `200` with one outcome per record, in request order.
#[derive(Debug, Serialize)]
pub struct ProduceResponse {
    /// Always `null`: no schema registry.
    pub key_schema_id: Option<i32>,
    /// Always `null`: no schema registry.
    pub value_schema_id: Option<i32>,
    /// One per record.
    pub offsets: Vec<RecordOutcome>,
}

impl ProduceResponse {
    /// The answer for these outcomes.
    pub fn new(offsets: Vec<RecordOutcome>) -> Self {
        Self {
            key_schema_id: None,
            value_schema_id: None,
            offsets,
        }
    }
}

impl IntoResponse for ProduceResponse {
    fn into_response(self) -> Response {
        let body = serde_json::to_vec(&self).expect("a produce response serializes");
        (
            StatusCode::OK,
            [(header::CONTENT_TYPE, HeaderValue::from_static(CONTENT_TYPE))],
            body,
        )
            .into_response()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_produce_response_has_the_rest_proxy_shape() {
        let response = ProduceResponse::new(vec![
            RecordOutcome::delivered(2, 100),
            RecordOutcome::failed(50003, ErrorReason::KafkaRetriable, "Retriable Kafka error"),
        ]);
        assert_eq!(
            serde_json::to_value(&response).unwrap(),
            serde_json::json!({
                "key_schema_id": null,
                "value_schema_id": null,
                "offsets": [
                    {"partition": 2, "offset": 100, "error_code": null, "error": null},
                    {"partition": null, "offset": null, "error_code": 50003, "error": "Retriable Kafka error"}
                ]
            })
        );
    }

    #[test]
    fn an_error_has_a_stable_shape_and_its_headers() {
        let response = ApiError::unauthorized("missing API key").into_response();
        assert_eq!(response.status(), StatusCode::UNAUTHORIZED);
        assert_eq!(response.headers()[header::CONTENT_TYPE], CONTENT_TYPE);
        assert!(response.headers().contains_key(header::WWW_AUTHENTICATE));
        assert_eq!(
            response.extensions().get::<ErrorReason>(),
            Some(&ErrorReason::Unauthorized)
        );
        let busy = ApiError::overloaded(std::time::Duration::from_secs(1)).into_response();
        assert_eq!(busy.status(), StatusCode::TOO_MANY_REQUESTS);
        assert_eq!(busy.headers()[header::RETRY_AFTER], "1");
        let body = serde_json::to_value(ErrorBody {
            error_code: 40401,
            message: "no",
        })
        .unwrap();
        assert_eq!(
            body,
            serde_json::json!({"error_code": 40401, "message": "no"})
        );
    }

    #[test]
    fn limits_are_named_in_the_messages() {
        assert!(
            ApiError::body_too_large(1024)
                .message
                .contains("1024 bytes (--max-body-bytes)")
        );
        assert!(
            ApiError::too_many_records(11, 10)
                .message
                .contains("11 records, more than the limit of 10 per request (--max-records)")
        );
    }
}
