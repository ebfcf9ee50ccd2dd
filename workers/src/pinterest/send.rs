//! Sending the generator's posts through the gateway (`tributary emulate --gateway URL`): each
//! batch of posts becomes three Kafka REST Proxy v2 produce requests, one per table's topic,
//! and/or three Kinesis-style PutRecords requests, one per table's stream (each record's
//! partition key is its post's number, so a post's three records share it), all sent together;
//! a per-record error in an answer counts as failed, a `429` or `503` is retried with back-off,
//! any other refusal stops the run with the gateway's message.

use std::time::{Duration, Instant};

use serde::Deserialize;

use super::generator::{ConfigError, Generator, GeneratorConfig};

const TOPIC_CONTENT_TYPE: &str = "application/vnd.kafka.json.v2+json";
const STREAM_CONTENT_TYPE: &str = "application/json";
/// Attempts of a request the gateway answers with 429 or 503.
const ATTEMPTS: u32 = 6;

/// Where and how fast to send.
#[derive(Clone, Debug)]
pub struct SendConfig {
    /// The gateway's base URL, e.g. `http://127.0.0.1:8080`.
    pub gateway: String,
    /// The API key, sent as `X-API-Key`.
    pub api_key: Option<String>,
    /// The topics of the pin, geo and user records, if they go to Kafka.
    pub topics: Option<[String; 3]>,
    /// The Kinesis streams of the pin, geo and user records, if they go to Kinesis.
    pub streams: Option<[String; 3]>,
    /// Posts per request (each request holds one table's records of these posts).
    pub batch_posts: u64,
    /// Posts per second at most; `None` for as fast as the gateway answers.
    pub rate: Option<f64>,
    /// Stop after this many posts.
    pub count: Option<u64>,
    /// Stop after this long.
    pub duration: Option<Duration>,
}

/// What was sent so far.
#[derive(Clone, Copy, Debug, Default, PartialEq)]
pub struct Sent {
    /// Posts generated and sent.
    pub posts: u64,
    /// Records the gateway accepted.
    pub records: u64,
    /// Records the gateway refused one by one (`error_code` in its answer).
    pub failed: u64,
    /// Seconds since the start.
    pub seconds: f64,
}

impl Sent {
    /// Accepted records per second.
    pub fn records_per_second(&self) -> f64 {
        if self.seconds > 0.0 {
            self.records as f64 / self.seconds
        } else {
            0.0
        }
    }
}

/// Why sending stopped.
#[derive(Debug, thiserror::Error)]
pub enum SendError {
    /// The generator's settings.
    #[error(transparent)]
    Generator(#[from] ConfigError),
    /// Neither a count nor a duration, a batch of 0 posts, or nowhere to send.
    #[error("{0}")]
    Config(&'static str),
    /// The gateway cannot be reached.
    #[error("{url}: {source}")]
    Http {
        /// The request's URL.
        url: String,
        /// Why.
        #[source]
        source: reqwest::Error,
    },
    /// The gateway refused a request.
    #[error("{url}: the gateway answered {status}: {body}")]
    Refused {
        /// The request's URL.
        url: String,
        /// Its status.
        status: u16,
        /// Its body (the gateway's JSON error).
        body: String,
    },
}

#[derive(Deserialize)]
struct ProduceResponse {
    offsets: Vec<RecordOutcome>,
}

#[derive(Deserialize)]
struct RecordOutcome {
    #[serde(default)]
    error_code: Option<i64>,
}

#[derive(Deserialize)]
#[serde(rename_all = "PascalCase")]
struct PutRecordsResponse {
    failed_record_count: u64,
    records: Vec<serde::de::IgnoredAny>,
}

/// Where one table's records go.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Api {
    /// `POST /topics/{topic}`.
    Topic,
    /// `PUT /streams/{stream}/records`.
    Stream,
}

/// The records accepted and refused in one answer.
fn count(api: Api, text: &str) -> Option<(u64, u64)> {
    match api {
        Api::Topic => {
            let answer: ProduceResponse = serde_json::from_str(text).ok()?;
            let failed = answer
                .offsets
                .iter()
                .filter(|outcome| outcome.error_code.is_some())
                .count() as u64;
            Some((answer.offsets.len() as u64 - failed, failed))
        }
        Api::Stream => {
            let answer: PutRecordsResponse = serde_json::from_str(text).ok()?;
            let total = answer.records.len() as u64;
            Some((
                total.saturating_sub(answer.failed_record_count),
                answer.failed_record_count,
            ))
        }
    }
}

/// Send posts of `generator` through the gateway until `config`'s count or duration; calls
/// `progress` about once a second and returns the totals.
pub async fn send(
    config: &SendConfig,
    generator: GeneratorConfig,
    mut progress: impl FnMut(&Sent),
) -> Result<Sent, SendError> {
    if config.count.is_none() && config.duration.is_none() {
        return Err(SendError::Config("give a count or a duration (or both)"));
    }
    if config.batch_posts == 0 {
        return Err(SendError::Config("the batch size must be at least 1 post"));
    }
    let mut generator = Generator::new(generator)?;
    let client = reqwest::Client::builder()
        .timeout(Duration::from_secs(60))
        .build()
        .map_err(|source| SendError::Http {
            url: config.gateway.clone(),
            source,
        })?;
    let base = config.gateway.trim_end_matches('/');
    // (api, table index, url) per destination.
    let mut destinations: Vec<(Api, usize, String)> = Vec::new();
    for (table, topic) in config.topics.iter().flatten().enumerate() {
        destinations.push((Api::Topic, table, format!("{base}/topics/{topic}")));
    }
    for (table, stream) in config.streams.iter().flatten().enumerate() {
        destinations.push((
            Api::Stream,
            table,
            format!("{base}/streams/{stream}/records"),
        ));
    }
    if destinations.is_empty() {
        return Err(SendError::Config(
            "give topics or streams (or both) to send to",
        ));
    }
    let started = Instant::now();
    let mut last_report = started;
    let mut sent = Sent::default();
    loop {
        let elapsed = started.elapsed();
        let left = match config.count {
            Some(count) => count - sent.posts,
            None => u64::MAX,
        };
        if left == 0 || config.duration.is_some_and(|d| elapsed >= d) {
            break;
        }
        let posts = left.min(config.batch_posts);
        let mut bodies: Vec<String> = destinations
            .iter()
            .map(|(api, _, _)| match api {
                Api::Topic => r#"{"records":["#.to_owned(),
                Api::Stream => r#"{"Records":["#.to_owned(),
            })
            .collect();
        for number in sent.posts..sent.posts + posts {
            let post = generator.next_post();
            let tables = [&post.pin, &post.geo, &post.user];
            for (body, (api, table, _)) in bodies.iter_mut().zip(&destinations) {
                for line in tables[*table] {
                    if !body.ends_with('[') {
                        body.push(',');
                    }
                    match api {
                        Api::Topic => body.push_str(r#"{"value":"#),
                        Api::Stream => {
                            body.push_str(r#"{"PartitionKey":""#);
                            body.push_str(&number.to_string());
                            body.push_str(r#"","Data":"#);
                        }
                    }
                    body.push_str(line);
                    body.push('}');
                }
            }
        }
        let requests = bodies
            .into_iter()
            .zip(&destinations)
            .map(|(mut body, (api, _, url))| {
                body.push_str("]}");
                post(&client, *api, url, config.api_key.as_deref(), body)
            });
        for outcome in futures::future::join_all(requests).await {
            let (accepted, failed) = outcome?;
            sent.records += accepted;
            sent.failed += failed;
        }
        sent.posts += posts;
        sent.seconds = started.elapsed().as_secs_f64();
        if let Some(rate) = config.rate.filter(|rate| *rate > 0.0) {
            let due = started + Duration::from_secs_f64(sent.posts as f64 / rate);
            tokio::time::sleep_until(due.into()).await;
        }
        if last_report.elapsed() >= Duration::from_millis(100) {
            last_report = Instant::now();
            progress(&sent);
        }
    }
    sent.seconds = started.elapsed().as_secs_f64();
    Ok(sent)
}

/// One produce request: the records accepted and refused, retrying 429 and 503.
async fn post(
    client: &reqwest::Client,
    api: Api,
    url: &str,
    api_key: Option<&str>,
    body: String,
) -> Result<(u64, u64), SendError> {
    let mut delay = Duration::from_millis(100);
    for attempt in 1..=ATTEMPTS {
        let (request, content_type) = match api {
            Api::Topic => (client.post(url), TOPIC_CONTENT_TYPE),
            Api::Stream => (client.put(url), STREAM_CONTENT_TYPE),
        };
        let mut request = request
            .header(reqwest::header::CONTENT_TYPE, content_type)
            .body(body.clone());
        if let Some(key) = api_key {
            request = request.header("X-API-Key", key);
        }
        let http = |source| SendError::Http {
            url: url.to_owned(),
            source,
        };
        let response = request.send().await.map_err(http)?;
        let status = response.status().as_u16();
        let text = response.text().await.map_err(http)?;
        if status == 200 {
            return count(api, &text).ok_or_else(|| SendError::Refused {
                url: url.to_owned(),
                status,
                body: format!("not a produce response: {text}"),
            });
        }
        if (status == 429 || status == 503) && attempt < ATTEMPTS {
            tokio::time::sleep(delay).await;
            delay *= 2;
            continue;
        }
        return Err(SendError::Refused {
            url: url.to_owned(),
            status,
            body: text,
        });
    }
    unreachable!("the last attempt returns")
}
