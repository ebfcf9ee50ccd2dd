//! The gateway's HTTP server: `POST /topics/{topic}` (Kafka), `PUT /streams/{stream}/record`
//! and `PUT /streams/{stream}/records` (Kinesis), and `/healthz`, `/readyz`, `/metrics` on the
//! same listener or on their own.
//!
//! A request is checked in this order, cheapest first, and the body is read only after the
//! headers pass: API key (401), Topic or Stream list read (503), topic or stream served (404),
//! content type (415), `Content-Length` within the limit (413); then the body is read within
//! the limit (413), parsed (400, 422) and its records counted (413); then produced. Every
//! request is bounded by the request timeout (408). On shutdown the listeners stop accepting,
//! requests in flight are answered, and the producer is flushed.

use std::future::{Future, IntoFuture};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use axum::Router;
use axum::body::{Body, Bytes};
use axum::extract::{MatchedPath, Path, Request, State};
use axum::http::{HeaderMap, Method, StatusCode, Uri, header};
use axum::middleware::{self, Next};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use futures::StreamExt;
use serde_json::json;
use tokio::net::TcpListener;
use tokio::sync::watch;

use super::auth::{Authenticator, KeyError, KeySource, RELOAD_INTERVAL};
use super::config::{ConfigError, GatewayConfig};
use super::kinesis::{KinesisApi, KinesisWriter, Put, Puts, THROTTLED};
use super::kinesis_request::{self, DataFormat};
use super::metrics::GatewayMetrics;
use super::producer::{GatewayProducer, client_config};
use super::request::{EmbeddedFormat, parse_records};
use super::response::{ApiError, ErrorReason, ProduceResponse};
use super::served::{AllowList, Lookup, Scope, Served, WatchError};
use crate::connect::{AwsOptions, ConnectError, KafkaConnection};
use tributary_crds::{Stream, Topic};

/// How long the producer may take, at shutdown, to deliver what is still queued.
const FLUSH_TIMEOUT: Duration = Duration::from_secs(10);

/// The checks made before any record is sent: auth, topic or stream, content type and size.
pub struct Admission {
    /// Limits.
    pub config: GatewayConfig,
    /// The Kafka topics served.
    pub topics: AllowList<Topic>,
    /// The Kinesis streams served.
    pub streams: AllowList<Stream>,
    /// The API keys.
    pub auth: Arc<Authenticator>,
}

impl Admission {
    /// Check a request's headers for `topic`; the format its records are in.
    pub fn admit(&self, topic: &str, headers: &HeaderMap) -> Result<EmbeddedFormat, ApiError> {
        self.auth.check(headers)?;
        served(&self.topics, topic, |message| {
            ApiError::unknown_topic(format!("Topic not found: {message}"))
        })?;
        let format = EmbeddedFormat::from_content_type(content_type(headers))?;
        self.check_length(headers)?;
        Ok(format)
    }

    /// Check a request's headers for the Kinesis `stream`; the format its data is in.
    pub fn admit_stream(&self, stream: &str, headers: &HeaderMap) -> Result<DataFormat, ApiError> {
        self.auth.check(headers)?;
        served(&self.streams, stream, |message| {
            ApiError::unknown_stream(format!("Stream not found: {message}"))
        })?;
        let format = DataFormat::from_content_type(content_type(headers))?;
        self.check_length(headers)?;
        Ok(format)
    }

    /// A request to the Kinesis `stream`, admitted: the format of its data and its body.
    async fn stream_request(
        &self,
        stream: &str,
        request: Request,
    ) -> Result<(DataFormat, Bytes), ApiError> {
        let (parts, body) = request.into_parts();
        let format = self.admit_stream(stream, &parts.headers)?;
        Ok((format, self.read_body(body).await?))
    }

    /// A declared `Content-Length` over the limit is refused before the body is read.
    fn check_length(&self, headers: &HeaderMap) -> Result<(), ApiError> {
        let declared = headers
            .get(header::CONTENT_LENGTH)
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.parse::<u64>().ok());
        if declared.is_some_and(|length| length > self.config.max_body_bytes as u64) {
            return Err(ApiError::body_too_large(self.config.max_body_bytes));
        }
        Ok(())
    }

    /// Read `body`, refusing it as soon as it grows past the limit.
    pub async fn read_body(&self, body: Body) -> Result<Bytes, ApiError> {
        let limit = self.config.max_body_bytes;
        let mut chunks = body.into_data_stream();
        // A body that arrives in one chunk is kept as it is; only more chunks are copied.
        let mut first: Option<Bytes> = None;
        let mut buffer = Vec::new();
        let mut length = 0;
        while let Some(chunk) = chunks.next().await {
            let chunk = chunk.map_err(|error| {
                ApiError::malformed_json(format!("the request body could not be read: {error}"))
            })?;
            length += chunk.len();
            if length > limit {
                return Err(ApiError::body_too_large(limit));
            }
            match first.take() {
                None if buffer.is_empty() => first = Some(chunk),
                Some(earlier) => {
                    buffer.extend_from_slice(&earlier);
                    buffer.extend_from_slice(&chunk);
                }
                None => buffer.extend_from_slice(&chunk),
            }
        }
        Ok(first.unwrap_or_else(|| Bytes::from(buffer)))
    }
}

/// The `Content-Type` header, if any.
fn content_type(headers: &HeaderMap) -> Option<&str> {
    headers
        .get(header::CONTENT_TYPE)
        .map(|v| v.to_str().unwrap_or("(not text)"))
}

/// Whether `name` is in `list`; `not_served` makes the 404 from "`name` is not served ...".
fn served<K: Served>(
    list: &AllowList<K>,
    name: &str,
    not_served: impl FnOnce(String) -> ApiError,
) -> Result<(), ApiError> {
    match list.lookup(name) {
        Lookup::Served => Ok(()),
        Lookup::NotSynced => Err(ApiError::not_ready()),
        Lookup::NotServed => Err(not_served(format!(
            "{name} is not served by this gateway, which serves {}",
            list.describe()
        ))),
    }
}

struct AppState {
    admission: Admission,
    producer: GatewayProducer,
    kinesis: KinesisWriter,
    metrics: Arc<GatewayMetrics>,
    connected: AtomicBool,
}

/// A gateway ready to serve.
pub struct Gateway {
    state: Arc<AppState>,
}

impl Gateway {
    /// A gateway over these parts.
    pub fn new(
        admission: Admission,
        producer: GatewayProducer,
        kinesis: KinesisWriter,
        metrics: Arc<GatewayMetrics>,
    ) -> Self {
        Self {
            state: Arc::new(AppState {
                admission,
                producer,
                kinesis,
                metrics,
                connected: AtomicBool::new(false),
            }),
        }
    }

    /// The produce API, bounded by the request timeout.
    fn api(&self) -> Router {
        let timeout = self.state.admission.config.request_timeout;
        Router::new()
            .route(
                "/topics/{topic}",
                post(produce).fallback(|method: Method| async move {
                    ApiError::method_not_allowed(method.as_str())
                }),
            )
            .route(
                "/streams/{stream}/record",
                axum::routing::put(put_record).post(put_record).fallback(
                    |method: Method| async move {
                        on_stream(Err(ApiError::method_not_allowed(method.as_str())))
                    },
                ),
            )
            .route(
                "/streams/{stream}/records",
                axum::routing::put(put_records).post(put_records).fallback(
                    |method: Method| async move {
                        on_stream(Err(ApiError::method_not_allowed(method.as_str())))
                    },
                ),
            )
            .fallback(|method: Method, uri: Uri| async move {
                ApiError::no_route(method.as_str(), uri.path())
            })
            .layer(middleware::from_fn_with_state(timeout, deadline))
            .with_state(self.state.clone())
    }

    /// `/healthz`, `/readyz` and `/metrics`.
    fn ops(&self) -> Router {
        Router::new()
            .route("/healthz", get(healthz))
            .route("/readyz", get(readyz))
            .route("/metrics", get(metrics))
            .with_state(self.state.clone())
    }

    fn observed(&self, router: Router) -> Router {
        router.layer(middleware::from_fn_with_state(
            self.state.metrics.clone(),
            observe,
        ))
    }

    /// Serve the API on `listener`, and the probes and metrics on `ops_listener` (or, without
    /// one, on `listener` too), until `shutdown` completes; then answer the requests in flight
    /// and flush the producer.
    pub async fn serve(
        self,
        listener: TcpListener,
        ops_listener: Option<TcpListener>,
        shutdown: impl Future<Output = ()> + Send + 'static,
    ) -> std::io::Result<()> {
        let (stop, stopped) = watch::channel(false);
        tokio::spawn(async move {
            shutdown.await;
            tracing::info!("shutting down: answering the requests in flight");
            let _ = stop.send(true);
        });
        let until_stopped = |mut stopped: watch::Receiver<bool>| async move {
            let _ = stopped.wait_for(|s| *s).await;
        };
        let state = self.state.clone();
        let connecting = tokio::spawn(async move {
            state.producer.wait_connected().await;
            state.connected.store(true, Ordering::Release);
        });

        let result = match ops_listener {
            None => {
                let app = self.observed(self.api().merge(self.ops()));
                axum::serve(listener, app)
                    .with_graceful_shutdown(until_stopped(stopped))
                    .await
            }
            Some(ops_listener) => {
                let api = axum::serve(listener, self.observed(self.api()))
                    .with_graceful_shutdown(until_stopped(stopped.clone()))
                    .into_future();
                let ops = axum::serve(ops_listener, self.observed(self.ops()))
                    .with_graceful_shutdown(until_stopped(stopped))
                    .into_future();
                let (api, ops) = tokio::join!(api, ops);
                api.and(ops)
            }
        };
        connecting.abort();
        match self.state.producer.flush(FLUSH_TIMEOUT).await {
            Ok(()) => tracing::info!("producer flushed; stopped"),
            Err(error) => {
                tracing::error!(%error, "records were still queued when the flush gave up")
            }
        }
        result
    }
}

async fn produce(
    State(state): State<Arc<AppState>>,
    Path(topic): Path<String>,
    request: Request,
) -> Result<ProduceResponse, ApiError> {
    let (parts, body) = request.into_parts();
    let admission = &state.admission;
    let format = admission.admit(&topic, &parts.headers)?;
    let body = admission.read_body(body).await?;
    let records = parse_records(format, &body, admission.config.max_records)?;
    let outcomes = state.producer.produce(&topic, &records).await?;
    let mut written = 0;
    let mut first_error = None;
    for outcome in &outcomes {
        match outcome.reason {
            None => written += 1,
            Some(reason) => {
                state.metrics.error(reason);
                first_error = first_error.or(outcome.error.as_deref());
            }
        }
    }
    state.metrics.records(&topic, written);
    if let Some(error) = first_error {
        tracing::warn!(
            topic = %topic,
            failed = outcomes.len() as u64 - written,
            records = outcomes.len(),
            first_error = error,
            "records not written"
        );
    }
    Ok(ProduceResponse::new(outcomes))
}

/// `PUT /streams/{stream}/record`: one record, answered as Kinesis's PutRecord is.
async fn put_record(
    State(state): State<Arc<AppState>>,
    Path(stream): Path<String>,
    request: Request,
) -> Response {
    on_stream(
        async {
            let (format, body) = state.admission.stream_request(&stream, request).await?;
            let record = kinesis_request::parse_put_record(format, &body, &stream)?;
            let puts = state
                .kinesis
                .put(&stream, std::slice::from_ref(&record))
                .await?;
            match puts.results.into_iter().next() {
                Some(Put::Written {
                    shard_id,
                    sequence_number,
                }) => Ok(json!({
                    "ShardId": shard_id,
                    "SequenceNumber": sequence_number,
                    "EncryptionType": puts.encryption_type,
                })),
                Some(Put::Failed { code, message }) => {
                    Err(stream_failure(&stream, &code, &message))
                }
                None => Err(ApiError::kinesis(
                    "Kinesis answered no result for the record",
                )),
            }
        }
        .await,
    )
}

/// `PUT /streams/{stream}/records`: many records, answered as Kinesis's PutRecords is, with
/// per-record results. When no record was written the whole request fails: 429 if Kinesis kept
/// throttling them (the request can be sent again as it is), 502 otherwise.
async fn put_records(
    State(state): State<Arc<AppState>>,
    Path(stream): Path<String>,
    request: Request,
) -> Response {
    on_stream(
        async {
            let (format, body) = state.admission.stream_request(&stream, request).await?;
            let admission = &state.admission;
            let records = kinesis_request::parse_put_records(
                format,
                &body,
                &stream,
                admission.config.max_records,
            )?;
            let puts = state.kinesis.put(&stream, &records).await?;
            let failed = puts.failed();
            if failed == puts.results.len()
                && let Some(Put::Failed { code, message }) = puts
                    .results
                    .iter()
                    .find(|r| !matches!(r, Put::Failed { code, .. } if code == THROTTLED))
                    .or(puts.results.first())
            {
                return Err(stream_failure(&stream, code, message));
            }
            if failed > 0 {
                tracing::warn!(stream = %stream, failed, records = puts.results.len(), "records not written to Kinesis");
            }
            let Puts {
                results,
                encryption_type,
            } = puts;
            Ok(json!({
                "FailedRecordCount": failed,
                "Records": results,
                "EncryptionType": encryption_type,
            }))
        }
        .await,
    )
}

/// The error for records Kinesis did not write: 429 for throttling, 502 otherwise.
fn stream_failure(stream: &str, code: &str, message: &str) -> ApiError {
    if code == THROTTLED {
        ApiError::kinesis_throttled(format!(
            "Kinesis kept throttling the records for {stream} (--kinesis-retry-for): {message}; \
             retry later, or give the stream more shards"
        ))
    } else {
        ApiError::kinesis(format!(
            "Kinesis did not write the records for {stream}: {code}: {message}"
        ))
    }
}

/// A Kinesis-style answer: the JSON body, or the error, both as `application/json`.
fn on_stream(result: Result<serde_json::Value, ApiError>) -> Response {
    let mut response = match result {
        Ok(body) => axum::Json(body).into_response(),
        Err(error) => error.into_response(),
    };
    response.headers_mut().insert(
        header::CONTENT_TYPE,
        axum::http::HeaderValue::from_static(kinesis_request::JSON_CONTENT_TYPE),
    );
    response
}

/// Answer 408 when a request takes longer than `limit`.
async fn deadline(State(limit): State<Duration>, request: Request, next: Next) -> Response {
    match tokio::time::timeout(limit, next.run(request)).await {
        Ok(response) => response,
        Err(_) => ApiError::timeout(limit).into_response(),
    }
}

/// Count every answer by route and status, its latency, and its error reason.
async fn observe(
    State(metrics): State<Arc<GatewayMetrics>>,
    request: Request,
    next: Next,
) -> Response {
    let route = request
        .extensions()
        .get::<MatchedPath>()
        .map_or("unmatched", MatchedPath::as_str)
        .to_owned();
    let started = Instant::now();
    let response = next.run(request).await;
    metrics.request(
        &route,
        response.status().as_u16(),
        started.elapsed().as_secs_f64(),
    );
    if let Some(reason) = response.extensions().get::<ErrorReason>() {
        metrics.error(*reason);
    }
    response
}

async fn healthz(State(state): State<Arc<AppState>>) -> (StatusCode, &'static str) {
    if state.producer.is_fatal() {
        (
            StatusCode::SERVICE_UNAVAILABLE,
            "the Kafka producer failed for good; the process must be restarted",
        )
    } else {
        (StatusCode::OK, "ok")
    }
}

async fn readyz(State(state): State<Arc<AppState>>) -> (StatusCode, String) {
    let mut waiting = Vec::new();
    if !state.admission.topics.is_synced() {
        waiting.push("the Topic list");
    }
    if !state.admission.streams.is_synced() {
        waiting.push("the Stream list");
    }
    if !state.connected.load(Ordering::Acquire) {
        waiting.push("a first answer from Kafka");
    }
    if waiting.is_empty() {
        (StatusCode::OK, "ready".into())
    } else {
        (
            StatusCode::SERVICE_UNAVAILABLE,
            format!("waiting for {}", waiting.join(" and ")),
        )
    }
}

async fn metrics(State(state): State<Arc<AppState>>) -> Response {
    (
        [(header::CONTENT_TYPE, crate::http::METRICS_CONTENT_TYPE)],
        state.metrics.encode(),
    )
        .into_response()
}

/// Everything a gateway process is started with.
#[derive(Clone, Debug)]
pub struct GatewaySettings {
    /// Limits and timeouts.
    pub config: GatewayConfig,
    /// The brokers.
    pub kafka: KafkaConnection,
    /// Where the API keys come from.
    pub keys: KeySource,
    /// Which Topics and Streams are served.
    pub scope: Scope,
    /// AWS region and endpoint for Kinesis, over the SDK's default chain.
    pub aws: AwsOptions,
}

/// The gateway could not start or serve.
#[derive(Debug, thiserror::Error)]
pub enum GatewayError {
    /// The limits cannot work.
    #[error(transparent)]
    Config(#[from] ConfigError),
    /// The API keys cannot be read.
    #[error(transparent)]
    Keys(#[from] KeyError),
    /// The Kafka connection cannot be configured.
    #[error(transparent)]
    Connect(#[from] ConnectError),
    /// The producer cannot be created.
    #[error("cannot create the Kafka producer: {0}")]
    Producer(#[from] rdkafka::error::KafkaError),
    /// The Topics or Streams cannot be watched.
    #[error(transparent)]
    Watch(#[from] WatchError),
    /// The server failed.
    #[error("serving HTTP failed: {0}")]
    Serve(#[from] std::io::Error),
}

/// Run a gateway: read the keys, create the producer and the Kinesis client, start watching the
/// Topics and Streams of the scope,
/// and serve until `shutdown` completes (see [`Gateway::serve`]).
pub async fn run(
    client: kube::Client,
    settings: GatewaySettings,
    listener: TcpListener,
    ops_listener: Option<TcpListener>,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> Result<(), GatewayError> {
    settings.config.validate()?;
    let keys = settings.keys.load()?;
    if keys.is_empty() {
        tracing::warn!(
            "no API keys (--api-keys-file, {}): every request is accepted without authentication",
            super::auth::ENV_API_KEYS
        );
    } else {
        tracing::info!(keys = keys.len(), "API key authentication on");
    }
    let auth = Arc::new(Authenticator::new(keys));
    let metrics = Arc::new(GatewayMetrics::default());
    let producer = GatewayProducer::new(
        &client_config(&settings.kafka, &settings.config)?,
        &settings.config,
        metrics.clone(),
    )?;
    let kinesis = KinesisWriter::new(
        Arc::new(KinesisApi::from_config(
            &crate::connect::aws_config(&settings.aws).await,
        )),
        settings.config.kinesis_retry_for,
        metrics.clone(),
    );
    let (topics, _topic_reflectors) =
        super::served::watch::<Topic>(client.clone(), settings.scope.clone()).await?;
    let (streams, _stream_reflectors) =
        super::served::watch::<Stream>(client, settings.scope.clone()).await?;
    tracing::info!(
        serves = %settings.scope.describe("Topic and Stream"),
        brokers = %settings.kafka.bootstrap_servers,
        "gateway starting"
    );
    let reloading = {
        let (auth, source) = (auth.clone(), settings.keys.clone());
        tokio::spawn(async move { auth.reload_every(&source, RELOAD_INTERVAL).await })
    };
    let admission = Admission {
        config: settings.config,
        topics,
        streams,
        auth,
    };
    let served = Gateway::new(admission, producer, kinesis, metrics)
        .serve(listener, ops_listener, shutdown)
        .await;
    reloading.abort();
    Ok(served?)
}

#[cfg(test)]
mod tests {
    use axum::http::HeaderValue;

    use super::*;
    use crate::gateway::auth::ApiKeys;
    use crate::gateway::request::{BINARY_CONTENT_TYPE, JSON_CONTENT_TYPE};

    fn admission() -> Admission {
        Admission {
            config: GatewayConfig {
                max_body_bytes: 64,
                max_records: 2,
                ..GatewayConfig::default()
            },
            topics: AllowList::fixed(["pin"]),
            streams: AllowList::fixed(["pin-stream"]),
            auth: Arc::new(Authenticator::new(ApiKeys::new(["k1"]))),
        }
    }

    fn headers(pairs: &[(header::HeaderName, &str)]) -> HeaderMap {
        let mut map = HeaderMap::new();
        for (name, value) in pairs {
            map.insert(name.clone(), HeaderValue::from_str(value).unwrap());
        }
        map
    }

    fn good() -> HeaderMap {
        headers(&[
            (header::HeaderName::from_static("x-api-key"), "k1"),
            (header::CONTENT_TYPE, JSON_CONTENT_TYPE),
            (header::CONTENT_LENGTH, "64"),
        ])
    }

    fn code(result: Result<EmbeddedFormat, ApiError>) -> (u16, u32) {
        let error = result.unwrap_err();
        (error.status.as_u16(), error.error_code)
    }

    #[test]
    fn a_good_request_is_admitted_with_its_format() {
        let admission = admission();
        assert_eq!(admission.admit("pin", &good()), Ok(EmbeddedFormat::Json));
        let mut binary = good();
        binary.insert(
            header::CONTENT_TYPE,
            HeaderValue::from_static(BINARY_CONTENT_TYPE),
        );
        binary.remove("x-api-key");
        binary.insert(header::AUTHORIZATION, HeaderValue::from_static("Bearer k1"));
        assert_eq!(admission.admit("pin", &binary), Ok(EmbeddedFormat::Binary));
    }

    #[test]
    fn a_missing_or_wrong_key_is_401_before_anything_else() {
        let admission = admission();
        let mut missing = good();
        missing.remove("x-api-key");
        assert_eq!(code(admission.admit("unknown", &missing)), (401, 40101));
        let mut wrong = good();
        wrong.insert("x-api-key", HeaderValue::from_static("k2"));
        assert_eq!(code(admission.admit("pin", &wrong)), (401, 40101));
    }

    #[test]
    fn an_unknown_topic_is_404_saying_what_is_served() {
        let error = admission().admit("user", &good()).unwrap_err();
        assert_eq!((error.status.as_u16(), error.error_code), (404, 40401));
        assert_eq!(
            error.message,
            "Topic not found: user is not served by this gateway, which serves the topics pin"
        );
    }

    #[test]
    fn a_wrong_content_type_is_415() {
        let mut plain = good();
        plain.insert(
            header::CONTENT_TYPE,
            HeaderValue::from_static("application/json"),
        );
        assert_eq!(code(admission().admit("pin", &plain)), (415, 415));
        let mut none = good();
        none.remove(header::CONTENT_TYPE);
        assert_eq!(code(admission().admit("pin", &none)), (415, 415));
    }

    #[test]
    fn a_declared_oversize_body_is_413_before_it_is_read() {
        let mut large = good();
        large.insert(header::CONTENT_LENGTH, HeaderValue::from_static("65"));
        let error = admission().admit("pin", &large).unwrap_err();
        assert_eq!((error.status.as_u16(), error.error_code), (413, 413));
        assert!(
            error
                .message
                .contains("limit of 64 bytes (--max-body-bytes)")
        );
    }

    #[tokio::test]
    async fn a_body_is_read_up_to_its_limit() {
        let admission = admission();
        let body = admission
            .read_body(Body::from(vec![b'x'; 64]))
            .await
            .unwrap();
        assert_eq!(body.len(), 64);
        let chunks: Vec<Result<Bytes, std::io::Error>> = (0..5)
            .map(|_| Ok(Bytes::from_static(&[b'x'; 16])))
            .collect();
        let streamed = Body::from_stream(futures::stream::iter(chunks));
        let error = admission.read_body(streamed).await.unwrap_err();
        assert_eq!((error.status.as_u16(), error.error_code), (413, 413));
        assert_eq!(error.reason, ErrorReason::BodyTooLarge);
    }

    #[test]
    fn a_topic_list_not_read_yet_is_503() {
        let admission = Admission {
            topics: AllowList::unsynced(),
            ..admission()
        };
        let error = admission.admit("pin", &good()).unwrap_err();
        assert_eq!((error.status.as_u16(), error.error_code), (503, 503));
    }
}
