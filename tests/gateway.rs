//! The gateway against the real API server and broker: records posted as JSON and as base64
//! arrive exactly once, with their keys, values and partitions; the served topics follow the
//! Topic objects (namespace, label selector, creation, deletion); an unknown topic, a missing
//! or wrong API key, an oversize body, bad JSON, a wrong content type and too many records get
//! the documented errors; shutdown answers and flushes. The Kinesis endpoints: records put as
//! JSON and as base64 arrive once in LocalStack's Kinesis, served by the Stream objects, with
//! Kinesis's answers and the documented errors.

use std::collections::BTreeMap;
use std::io::{Read, Write};
use std::net::SocketAddr;
use std::time::Duration;

use base64::Engine;
use base64::engine::general_purpose::STANDARD as BASE64;
use kube::api::{Api, DeleteParams, PostParams};
use rdkafka::admin::{AdminClient, AdminOptions, NewTopic, TopicReplication};
use rdkafka::client::DefaultClientContext;
use rdkafka::consumer::{BaseConsumer, Consumer};
use rdkafka::{Message, Offset, TopicPartitionList};
use serde_json::{Value, json};
use tributary_crds::{Stream, Topic};
use tributary_tests::{create_namespace, eventually, kube_client, stack_env, unique_name};
use tributary_workers::connect::KafkaConnection;
use tributary_workers::gateway::auth::KeySource;
use tributary_workers::gateway::config::GatewayConfig;
use tributary_workers::gateway::served::Scope;
use tributary_workers::gateway::server::{GatewaySettings, run};

const PARTITIONS: i32 = 3;
const API_KEY: &str = "gateway-test-key";
const LABEL: &str = "tributary.dev/gateway";
const JSON_TYPE: &str = "application/vnd.kafka.json.v2+json";
const BINARY_TYPE: &str = "application/vnd.kafka.binary.v2+json";
const MAX_BODY_BYTES: usize = 16 * 1024;
const MAX_RECORDS: usize = 100;

fn connection() -> KafkaConnection {
    KafkaConnection::plaintext(stack_env("TRIBUTARY_KAFKA_BOOTSTRAP"))
}

async fn create_kafka_topic(name: &str) {
    let admin: AdminClient<DefaultClientContext> = connection()
        .client_config()
        .expect("a config")
        .create()
        .expect("an admin client");
    let topic = NewTopic::new(name, PARTITIONS, TopicReplication::Fixed(1));
    for result in admin
        .create_topics([&topic], &AdminOptions::new())
        .await
        .expect("create topics")
    {
        result.expect("topic created");
    }
}

fn topic_object(name: &str, kafka_name: &str, label: Option<&str>) -> Topic {
    let mut labels = serde_json::Map::new();
    if let Some(label) = label {
        labels.insert(LABEL.to_owned(), json!(label));
    }
    serde_json::from_value(json!({
        "apiVersion": "tributary.dev/v1alpha1",
        "kind": "Topic",
        "metadata": {"name": name, "labels": labels},
        "spec": {"clusterRef": {"name": "local"}, "topicName": kafka_name, "partitions": PARTITIONS}
    }))
    .expect("a Topic")
}

/// One HTTP/1.1 exchange on a fresh connection: the status and the body. A server that
/// answers before reading the whole body and then closes may reset the connection; the answer
/// read before the reset counts.
async fn exchange(
    addr: SocketAddr,
    method: &str,
    path: &str,
    headers: &[(&str, &str)],
    body: Vec<u8>,
) -> (u16, String) {
    let mut head = format!(
        "{method} {path} HTTP/1.1\r\nHost: gateway\r\nConnection: close\r\nContent-Length: {}\r\n",
        body.len()
    );
    for (name, value) in headers {
        head.push_str(&format!("{name}: {value}\r\n"));
    }
    head.push_str("\r\n");
    tokio::task::spawn_blocking(move || {
        let mut stream = std::net::TcpStream::connect(addr).expect("connected to the gateway");
        stream
            .set_read_timeout(Some(Duration::from_secs(60)))
            .expect("a timeout");
        let _ = stream
            .write_all(head.as_bytes())
            .and_then(|()| stream.write_all(&body));
        let mut response = Vec::new();
        let _ = stream.read_to_end(&mut response);
        let text = String::from_utf8(response).expect("a UTF-8 answer");
        let (head, body) = text.split_once("\r\n\r\n").expect("a complete answer");
        let status = head
            .split(' ')
            .nth(1)
            .and_then(|s| s.parse().ok())
            .expect("a status line");
        (status, body.to_owned())
    })
    .await
    .expect("the exchange ran")
}

async fn post(addr: SocketAddr, topic: &str, content_type: &str, body: &Value) -> (u16, Value) {
    let (status, text) = exchange(
        addr,
        "POST",
        &format!("/topics/{topic}"),
        &[("Content-Type", content_type), ("X-API-Key", API_KEY)],
        body.to_string().into_bytes(),
    )
    .await;
    let value = serde_json::from_str(&text).unwrap_or_else(|_| panic!("JSON: {text}"));
    (status, value)
}

fn assert_error(answer: &(u16, Value), status: u16, code: u64, containing: &str) {
    assert_eq!(answer.0, status, "{}", answer.1);
    assert_eq!(answer.1["error_code"], code, "{}", answer.1);
    let message = answer.1["message"].as_str().expect("a message");
    assert!(message.contains(containing), "{message}");
}

/// When to stop reading: 2 s after `expected` records arrived (so a duplicate would be seen),
/// or after 60 s.
struct Settle {
    deadline: std::time::Instant,
    until: Option<std::time::Instant>,
}

impl Settle {
    fn new() -> Self {
        Self {
            deadline: std::time::Instant::now() + Duration::from_secs(60),
            until: None,
        }
    }

    fn done(&mut self, have: usize, expected: usize) -> bool {
        let now = std::time::Instant::now();
        if have >= expected && self.until.is_none() {
            self.until = Some(now + Duration::from_secs(2));
        }
        self.until.is_some_and(|until| now > until) || now > self.deadline
    }
}

/// A record's key or value, if it has one.
type Payload = Option<Vec<u8>>;

/// A record as the broker holds it: partition, offset, key, value.
type Stored = (i32, i64, Payload, Payload);

/// Every record of `topic`, waiting until `expected` have arrived, then a little longer so a
/// duplicate would be seen.
async fn read_topic(topic: &str, expected: usize) -> Vec<Stored> {
    let consumer: BaseConsumer = connection()
        .client_config()
        .expect("a config")
        .set("group.id", unique_name("gateway-check"))
        .set("enable.auto.commit", "false")
        .create()
        .expect("a consumer");
    let mut assignment = TopicPartitionList::new();
    for partition in 0..PARTITIONS {
        assignment
            .add_partition_offset(topic, partition, Offset::Beginning)
            .expect("a partition");
    }
    consumer.assign(&assignment).expect("assigned");
    tokio::task::spawn_blocking(move || {
        let mut stored = Vec::new();
        let mut settle = Settle::new();
        loop {
            if settle.done(stored.len(), expected) {
                return stored;
            }
            if let Some(message) = consumer.poll(Duration::from_millis(200)) {
                let message = message.expect("a message");
                stored.push((
                    message.partition(),
                    message.offset(),
                    message.key().map(<[u8]>::to_vec),
                    message.payload().map(<[u8]>::to_vec),
                ));
            }
        }
    })
    .await
    .expect("the consumer ran")
}

struct RunningGateway {
    addr: SocketAddr,
    stop: tokio::sync::oneshot::Sender<()>,
    task: tokio::task::JoinHandle<()>,
}

async fn start_gateway(client: kube::Client, namespace: &str) -> RunningGateway {
    let settings = GatewaySettings {
        config: GatewayConfig {
            max_body_bytes: MAX_BODY_BYTES,
            max_records: MAX_RECORDS,
            ..GatewayConfig::default()
        },
        kafka: connection(),
        keys: KeySource {
            file: None,
            inline: Some(format!("another-key,{API_KEY}")),
        },
        scope: Scope {
            namespaces: vec![namespace.to_owned()],
            selector: Some(format!("{LABEL}=public")),
        },
        aws: Default::default(),
    };
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("a port");
    let addr = listener.local_addr().expect("an address");
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    let task = tokio::spawn(async move {
        let shutdown = async move {
            let _ = stopped.await;
        };
        run(client, settings, listener, None, shutdown)
            .await
            .expect("the gateway runs and stops cleanly");
    });
    eventually(60, "the gateway ready", || async {
        let (status, _) = exchange(addr, "GET", "/readyz", &[], Vec::new()).await;
        (status == 200).then_some(())
    })
    .await;
    RunningGateway { addr, stop, task }
}

#[tokio::test]
async fn records_arrive_once_and_errors_are_documented() {
    let client = kube_client().await;
    tributary_operator::crds::install(&client, Duration::from_secs(60))
        .await
        .expect("CRDs installed");
    let namespace = unique_name("gateway");
    create_namespace(&client, &namespace).await;
    let topics: Api<Topic> = Api::namespaced(client.clone(), &namespace);
    let kafka_name = unique_name("Gateway_Pins");
    create_kafka_topic(&kafka_name).await;
    topics
        .create(
            &PostParams::default(),
            &topic_object("pins", &kafka_name, Some("public")),
        )
        .await
        .expect("Topic created");
    // A Topic without the label: it exists, but this gateway does not serve it.
    let private_name = unique_name("gateway-private");
    create_kafka_topic(&private_name).await;
    topics
        .create(
            &PostParams::default(),
            &topic_object("private", &private_name, None),
        )
        .await
        .expect("Topic created");

    let gateway = start_gateway(client.clone(), &namespace).await;
    let addr = gateway.addr;

    // JSON records: some with a partition, some keyed, some neither; values of every kind.
    let json_records: Vec<Value> = (0..40)
        .map(|i| {
            let mut record =
                json!({"value": {"i": i, "text": format!("pin {i}"), "tags": ["a", i]}});
            if i % 3 == 0 {
                record["partition"] = json!(i % PARTITIONS);
            }
            if i % 2 == 0 {
                record["key"] = json!(format!("user-{}", i % 5));
            }
            record
        })
        .chain([
            json!({"key": {"k": 1}, "value": "a string"}),
            json!({"value": 12.50}),
        ])
        .collect();
    let (status, answer) = post(
        addr,
        &kafka_name,
        JSON_TYPE,
        &json!({"records": json_records}),
    )
    .await;
    assert_eq!(status, 200, "{answer}");
    assert_eq!(answer["key_schema_id"], Value::Null);
    assert_eq!(answer["value_schema_id"], Value::Null);
    let json_offsets = answer["offsets"].as_array().expect("offsets").clone();
    assert_eq!(json_offsets.len(), json_records.len());

    // Binary records: bytes that are not text, a tombstone, explicit partitions.
    let binary: Vec<(Payload, Payload, Option<i32>)> = (0..30u8)
        .map(|i| {
            let key = (i % 4 != 0).then(|| vec![0xff, i, 0x00]);
            let value = (i != 7).then(|| (0..=i).map(|b| b.wrapping_mul(37)).collect());
            (
                key,
                value,
                (i % 2 == 0).then_some(i32::from(i) % PARTITIONS),
            )
        })
        .collect();
    let binary_records: Vec<Value> = binary
        .iter()
        .map(|(key, value, partition)| {
            let mut record = json!({});
            if let Some(key) = key {
                record["key"] = json!(BASE64.encode(key));
            }
            record["value"] = value
                .as_ref()
                .map_or(Value::Null, |v| json!(BASE64.encode(v)));
            if let Some(partition) = partition {
                record["partition"] = json!(partition);
            }
            record
        })
        .collect();
    let (status, answer) = post(
        addr,
        &kafka_name,
        BINARY_TYPE,
        &json!({"records": binary_records}),
    )
    .await;
    assert_eq!(status, 200, "{answer}");
    let binary_offsets = answer["offsets"].as_array().expect("offsets").clone();
    assert_eq!(binary_offsets.len(), binary.len());

    // What each answer says was written where.
    let mut expected: BTreeMap<(i32, i64), (Payload, Payload)> = BTreeMap::new();
    let mut place = |offset: &Value, requested: Option<i32>, key, value| {
        assert_eq!(offset["error_code"], Value::Null, "{offset}");
        assert_eq!(offset["error"], Value::Null, "{offset}");
        let partition = offset["partition"].as_i64().expect("a partition") as i32;
        if let Some(requested) = requested {
            assert_eq!(partition, requested, "the requested partition is kept");
        }
        let at = (partition, offset["offset"].as_i64().expect("an offset"));
        assert!(
            expected.insert(at, (key, value)).is_none(),
            "two records at {at:?}"
        );
    };
    for (offset, record) in json_offsets.iter().zip(&json_records) {
        let text = |v: &Value| (!v.is_null()).then(|| v.to_string().into_bytes());
        let requested = record["partition"].as_i64().map(|p| p as i32);
        place(
            offset,
            requested,
            text(&record["key"]),
            text(&record["value"]),
        );
    }
    for (offset, (key, value, partition)) in binary_offsets.iter().zip(&binary) {
        place(offset, *partition, key.clone(), value.clone());
    }

    // JSON as a client writes it, spaces included: sent as compact JSON text, in its order.
    let (status, text) = exchange(
        addr,
        "POST",
        &format!("/topics/{kafka_name}"),
        &[("Content-Type", JSON_TYPE), ("X-API-Key", API_KEY)],
        br#"{"records": [ {"key": "k", "value": {"b": 1,  "a": [1, 2.50, "x y"]}, "partition": 1} ]}"#
            .to_vec(),
    )
    .await;
    assert_eq!(status, 200, "{text}");
    let answer: Value = serde_json::from_str(&text).expect("JSON");
    place(
        &answer["offsets"][0],
        Some(1),
        Some(br#""k""#.to_vec()),
        Some(br#"{"b":1,"a":[1,2.50,"x y"]}"#.to_vec()),
    );

    let stored = read_topic(&kafka_name, expected.len()).await;
    let mut found = BTreeMap::new();
    for (partition, offset, key, value) in stored {
        assert!(
            found.insert((partition, offset), (key, value)).is_none(),
            "({partition}, {offset}) read twice"
        );
    }
    assert_eq!(found.len(), expected.len(), "every record once, none more");
    assert_eq!(
        found, expected,
        "each record where the answer says, as sent"
    );

    // An unknown topic, and a Topic outside the selector: 404 saying what is served.
    let one = json!({"records": [{"value": 1}]});
    let unknown = post(addr, "no-such-topic", JSON_TYPE, &one).await;
    assert_error(
        &unknown,
        404,
        40401,
        &format!("namespace {namespace} with labels {LABEL}=public"),
    );
    assert_error(
        &post(addr, &private_name, JSON_TYPE, &one).await,
        404,
        40401,
        "not served",
    );

    // Missing and wrong API keys.
    let body = one.to_string().into_bytes();
    let (status, text) = exchange(
        addr,
        "POST",
        &format!("/topics/{kafka_name}"),
        &[("Content-Type", JSON_TYPE)],
        body.clone(),
    )
    .await;
    let missing = (status, serde_json::from_str::<Value>(&text).expect("JSON"));
    assert_error(&missing, 401, 40101, "missing API key");
    let (status, text) = exchange(
        addr,
        "POST",
        &format!("/topics/{kafka_name}"),
        &[
            ("Content-Type", JSON_TYPE),
            ("Authorization", "Bearer wrong"),
        ],
        body,
    )
    .await;
    let wrong = (status, serde_json::from_str::<Value>(&text).expect("JSON"));
    assert_error(&wrong, 401, 40101, "not valid");
    let bearer = format!("Bearer {API_KEY}");
    let (status, _) = exchange(
        addr,
        "POST",
        &format!("/topics/{kafka_name}"),
        &[
            ("Content-Type", JSON_TYPE),
            ("Authorization", bearer.as_str()),
        ],
        one.to_string().into_bytes(),
    )
    .await;
    assert_eq!(status, 200, "a Bearer token is a key too");

    // Oversize body, bad JSON, wrong content type, too many records, bad base64.
    let oversize = json!({"records": [{"value": "x".repeat(MAX_BODY_BYTES)}]});
    assert_error(
        &post(addr, &kafka_name, JSON_TYPE, &oversize).await,
        413,
        413,
        &format!("limit of {MAX_BODY_BYTES} bytes"),
    );
    let (status, text) = exchange(
        addr,
        "POST",
        &format!("/topics/{kafka_name}"),
        &[("Content-Type", JSON_TYPE), ("X-API-Key", API_KEY)],
        br#"{"records": [{"value": 1}"#.to_vec(),
    )
    .await;
    let bad_json = (status, serde_json::from_str::<Value>(&text).expect("JSON"));
    assert_error(&bad_json, 400, 400, "not valid JSON");
    assert_error(
        &post(addr, &kafka_name, "application/json", &one).await,
        415,
        415,
        JSON_TYPE,
    );
    let many = json!({"records": vec![json!({"value": 1}); MAX_RECORDS + 1]});
    assert_error(
        &post(addr, &kafka_name, JSON_TYPE, &many).await,
        413,
        413,
        &format!("limit of {MAX_RECORDS} per request"),
    );
    assert_error(
        &post(
            addr,
            &kafka_name,
            BINARY_TYPE,
            &json!({"records": [{"value": "%%%"}]}),
        )
        .await,
        422,
        42202,
        "records[0].value is not valid base64",
    );
    assert_error(
        &post(addr, &kafka_name, JSON_TYPE, &json!({"records": []})).await,
        422,
        422,
        "no records",
    );

    // A Topic created later is served once the reflector sees it; a deleted one no longer is.
    let later_name = unique_name("gateway-later");
    create_kafka_topic(&later_name).await;
    topics
        .create(
            &PostParams::default(),
            &topic_object("later", &later_name, Some("public")),
        )
        .await
        .expect("Topic created");
    eventually(30, "the new Topic served", || async {
        let (status, _) = post(addr, &later_name, JSON_TYPE, &one).await;
        (status == 200).then_some(())
    })
    .await;
    topics
        .delete("later", &DeleteParams::default())
        .await
        .expect("Topic deleted");
    eventually(30, "the deleted Topic no longer served", || async {
        let (status, _) = post(addr, &later_name, JSON_TYPE, &one).await;
        (status == 404).then_some(())
    })
    .await;

    // The metrics count what happened.
    let (status, metrics) = exchange(addr, "GET", "/metrics", &[], Vec::new()).await;
    assert_eq!(status, 200);
    let written = json_records.len() + binary.len() + 2;
    for line in [
        format!("tributary_gateway_records_total{{topic=\"{kafka_name}\"}} {written}"),
        "tributary_gateway_errors_total{reason=\"unauthorized\"} 2".to_owned(),
        "tributary_gateway_errors_total{reason=\"body_too_large\"} 1".to_owned(),
        "tributary_gateway_requests_total{route=\"/topics/{topic}\",status=\"415\"} 1".to_owned(),
    ] {
        assert!(metrics.contains(&line), "{line} missing from\n{metrics}");
    }

    // Shutdown: the server stops, the producer is flushed, the task ends cleanly.
    let _ = gateway.stop.send(());
    tokio::time::timeout(Duration::from_secs(30), gateway.task)
        .await
        .expect("the gateway stops within 30 s")
        .expect("the gateway task ends without a panic");
    assert!(
        std::net::TcpStream::connect(addr).is_err(),
        "nothing listens after shutdown"
    );
    let namespaces: Api<k8s_openapi::api::core::v1::Namespace> = Api::all(client);
    let _ = namespaces
        .delete(&namespace, &DeleteParams::default())
        .await;
}

/// The emulator through the gateway: every generated record (duplicates included, as the
/// generator re-sends them) arrives exactly once in its table's topic, byte for byte.
#[tokio::test]
async fn the_emulator_sends_every_record_once_through_the_gateway() {
    use tributary_workers::pinterest::send::{SendConfig, send};
    use tributary_workers::pinterest::{Generator, GeneratorConfig};

    let client = kube_client().await;
    tributary_operator::crds::install(&client, Duration::from_secs(60))
        .await
        .expect("CRDs installed");
    let namespace = unique_name("gateway-emulate");
    create_namespace(&client, &namespace).await;
    let topics: Api<Topic> = Api::namespaced(client.clone(), &namespace);
    let mut kafka_names = Vec::new();
    for table in ["pin", "geo", "user"] {
        let kafka_name = unique_name(&format!("emulated-{table}"));
        create_kafka_topic(&kafka_name).await;
        topics
            .create(
                &PostParams::default(),
                &topic_object(table, &kafka_name, Some("public")),
            )
            .await
            .expect("Topic created");
        kafka_names.push(kafka_name);
    }
    let gateway = start_gateway(client.clone(), &namespace).await;

    const POSTS: u64 = 230;
    let generator = GeneratorConfig {
        seed: 11,
        dirty_rate: 0.2,
        duplicate_rate: 0.1,
    };
    let config = SendConfig {
        gateway: format!("http://{}", gateway.addr),
        api_key: Some(API_KEY.to_owned()),
        topics: Some([
            kafka_names[0].clone(),
            kafka_names[1].clone(),
            kafka_names[2].clone(),
        ]),
        streams: None,
        // The test gateway takes 16 KiB a request: about 25 pins.
        batch_posts: 12,
        rate: None,
        count: Some(POSTS),
        duration: None,
    };
    let sent = send(&config, generator, |_| {})
        .await
        .expect("the emulator sends");
    assert_eq!((sent.posts, sent.failed), (POSTS, 0), "{sent:?}");

    // The same posts, generated again.
    let mut expected: [Vec<Vec<u8>>; 3] = Default::default();
    let mut again = Generator::new(generator).expect("a generator");
    for _ in 0..POSTS {
        let post = again.next_post();
        for (table, lines) in expected.iter_mut().zip([post.pin, post.geo, post.user]) {
            table.extend(lines.into_iter().map(String::into_bytes));
        }
    }
    assert_eq!(
        sent.records,
        expected.iter().map(|t| t.len() as u64).sum::<u64>()
    );
    assert!(
        expected[0].len() as u64 > POSTS,
        "the duplicates are sent too"
    );
    for (kafka_name, mut wanted) in kafka_names.iter().zip(expected) {
        let mut arrived: Vec<Vec<u8>> = read_topic(kafka_name, wanted.len())
            .await
            .into_iter()
            .map(|(_, _, _, value)| value.expect("a value"))
            .collect();
        arrived.sort();
        wanted.sort();
        assert!(
            arrived == wanted,
            "{kafka_name}: {} records arrived, {} sent",
            arrived.len(),
            wanted.len()
        );
    }

    // A wrong API key stops the emulator with the gateway's answer.
    let refused = send(
        &SendConfig {
            api_key: Some("wrong".into()),
            count: Some(1),
            ..config
        },
        generator,
        |_| {},
    )
    .await
    .expect_err("a wrong key is refused");
    assert!(refused.to_string().contains("401"), "{refused}");

    let _ = gateway.stop.send(());
    tokio::time::timeout(Duration::from_secs(30), gateway.task)
        .await
        .expect("the gateway stops within 30 s")
        .expect("the gateway task");
}

fn stream_object(name: &str, kinesis_name: &str, label: Option<&str>) -> Stream {
    let mut labels = serde_json::Map::new();
    if let Some(label) = label {
        labels.insert(LABEL.to_owned(), json!(label));
    }
    serde_json::from_value(json!({
        "apiVersion": "tributary.dev/v1alpha1",
        "kind": "Stream",
        "metadata": {"name": name, "labels": labels},
        "spec": {"streamName": kinesis_name, "mode": "Provisioned", "shardCount": 2}
    }))
    .expect("a Stream")
}

async fn create_kinesis_stream(kinesis: &aws_sdk_kinesis::Client, name: &str) {
    kinesis
        .create_stream()
        .stream_name(name)
        .shard_count(2)
        .send()
        .await
        .expect("stream created");
    tributary_tests::stream_active(kinesis, name).await;
}

/// Every record of `stream` as (partition key, data), waiting until `expected` have arrived,
/// then a little longer so a duplicate would be seen.
async fn read_stream(
    kinesis: &aws_sdk_kinesis::Client,
    stream: &str,
    expected: usize,
) -> Vec<(String, Vec<u8>)> {
    use aws_sdk_kinesis::types::ShardIteratorType;
    let shards = kinesis
        .list_shards()
        .stream_name(stream)
        .send()
        .await
        .expect("shards listed");
    let mut iterators = Vec::new();
    for shard in shards.shards() {
        let iterator = kinesis
            .get_shard_iterator()
            .stream_name(stream)
            .shard_id(shard.shard_id())
            .shard_iterator_type(ShardIteratorType::TrimHorizon)
            .send()
            .await
            .expect("an iterator");
        iterators.push(iterator.shard_iterator().map(str::to_owned));
    }
    let mut records = Vec::new();
    let mut settle = Settle::new();
    loop {
        if settle.done(records.len(), expected) {
            return records;
        }
        for iterator in &mut iterators {
            let Some(current) = iterator.clone() else {
                continue;
            };
            let page = kinesis
                .get_records()
                .shard_iterator(current)
                .limit(1000)
                .send()
                .await
                .expect("records read");
            for record in page.records() {
                records.push((
                    record.partition_key().to_owned(),
                    record.data().as_ref().to_vec(),
                ));
            }
            *iterator = page.next_shard_iterator().map(str::to_owned);
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

async fn put(addr: SocketAddr, path: &str, content_type: &str, body: &Value) -> (u16, Value) {
    let (status, text) = exchange(
        addr,
        "PUT",
        path,
        &[("Content-Type", content_type), ("X-API-Key", API_KEY)],
        body.to_string().into_bytes(),
    )
    .await;
    let value = serde_json::from_str(&text).unwrap_or_else(|_| panic!("JSON: {text}"));
    (status, value)
}

/// The Kinesis endpoints: Kinesis's answers, the documented errors, and the emulator putting
/// every generated record once into three streams.
#[tokio::test]
async fn kinesis_records_arrive_once_and_errors_are_documented() {
    use tributary_workers::pinterest::send::{SendConfig, send};
    use tributary_workers::pinterest::{Generator, GeneratorConfig};

    let client = kube_client().await;
    tributary_operator::crds::install(&client, Duration::from_secs(60))
        .await
        .expect("CRDs installed");
    let kinesis = aws_sdk_kinesis::Client::new(&tributary_tests::aws_config().await);
    let namespace = unique_name("gateway-kinesis");
    create_namespace(&client, &namespace).await;
    let streams: Api<Stream> = Api::namespaced(client.clone(), &namespace);
    let mut kinesis_names = Vec::new();
    for table in ["pin", "geo", "user"] {
        let kinesis_name = unique_name(&format!("emulated-{table}"));
        create_kinesis_stream(&kinesis, &kinesis_name).await;
        streams
            .create(
                &PostParams::default(),
                &stream_object(table, &kinesis_name, Some("public")),
            )
            .await
            .expect("Stream created");
        kinesis_names.push(kinesis_name);
    }
    let ghost = unique_name("ghost");
    let private = unique_name("private");
    create_kinesis_stream(&kinesis, &private).await;
    for (name, kinesis_name, label) in [
        ("ghost", &ghost, Some("public")),
        ("private", &private, None),
    ] {
        streams
            .create(
                &PostParams::default(),
                &stream_object(name, kinesis_name, label),
            )
            .await
            .expect("Stream created");
    }
    let gateway = start_gateway(client.clone(), &namespace).await;
    let addr = gateway.addr;
    let pin = &kinesis_names[0];

    // One record in Kinesis's own wire format, answered as PutRecord is.
    let (status, answer) = put(
        addr,
        &format!("/streams/{pin}/record"),
        "application/x-amz-json-1.1",
        &json!({"StreamName": pin, "Data": BASE64.encode(b"raw bytes"), "PartitionKey": "single"}),
    )
    .await;
    assert_eq!(status, 200, "{answer}");
    assert!(
        answer["ShardId"]
            .as_str()
            .is_some_and(|s| s.starts_with("shardId-")),
        "{answer}"
    );
    assert!(
        answer["SequenceNumber"]
            .as_str()
            .is_some_and(|s| !s.is_empty()),
        "{answer}"
    );

    // The documented errors.
    let records = |key: Value| json!({"Records": [{"Data": {"a": 1}, "PartitionKey": key}]});
    let json_type = "application/json";
    assert_error(
        &put(
            addr,
            "/streams/nowhere/records",
            json_type,
            &records(json!("k")),
        )
        .await,
        404,
        40404,
        "Stream not found: nowhere is not served",
    );
    assert_error(
        &put(
            addr,
            &format!("/streams/{private}/records"),
            json_type,
            &records(json!("k")),
        )
        .await,
        404,
        40404,
        "is not served",
    );
    assert_error(
        &put(
            addr,
            &format!("/streams/{ghost}/records"),
            json_type,
            &records(json!("k")),
        )
        .await,
        404,
        40404,
        "Kinesis does not have it",
    );
    assert_error(
        &put(
            addr,
            &format!("/streams/{pin}/records"),
            json_type,
            &json!({"Records": [{"Data": 1}]}),
        )
        .await,
        422,
        422,
        "Records[0].PartitionKey is missing",
    );
    assert_error(
        &put(
            addr,
            &format!("/streams/{pin}/records"),
            "text/plain",
            &records(json!("k")),
        )
        .await,
        415,
        415,
        "application/x-amz-json-1.1",
    );
    let oversize = json!({"Records": [{"Data": "x".repeat(MAX_BODY_BYTES), "PartitionKey": "k"}]});
    assert_error(
        &put(
            addr,
            &format!("/streams/{pin}/records"),
            json_type,
            &oversize,
        )
        .await,
        413,
        413,
        "--max-body-bytes",
    );
    let (status, text) = exchange(
        addr,
        "PUT",
        &format!("/streams/{pin}/records"),
        &[("Content-Type", json_type), ("X-API-Key", API_KEY)],
        b"{not json".to_vec(),
    )
    .await;
    assert_eq!(status, 400, "{text}");
    let (status, text) = exchange(
        addr,
        "PUT",
        &format!("/streams/{pin}/records"),
        &[("Content-Type", json_type)],
        records(json!("k")).to_string().into_bytes(),
    )
    .await;
    assert_eq!(status, 401, "{text}");

    // The emulator, into the three streams.
    const POSTS: u64 = 120;
    let generator = GeneratorConfig {
        seed: 12,
        dirty_rate: 0.2,
        duplicate_rate: 0.1,
    };
    let config = SendConfig {
        gateway: format!("http://{addr}"),
        api_key: Some(API_KEY.to_owned()),
        topics: None,
        streams: Some([
            kinesis_names[0].clone(),
            kinesis_names[1].clone(),
            kinesis_names[2].clone(),
        ]),
        batch_posts: 12,
        rate: None,
        count: Some(POSTS),
        duration: None,
    };
    let sent = send(&config, generator, |_| {})
        .await
        .expect("the emulator sends");
    assert_eq!((sent.posts, sent.failed), (POSTS, 0), "{sent:?}");
    let mut expected: [Vec<(String, Vec<u8>)>; 3] = Default::default();
    expected[0].push(("single".into(), b"raw bytes".to_vec()));
    let mut again = Generator::new(generator).expect("a generator");
    for number in 0..POSTS {
        let post = again.next_post();
        for (table, lines) in expected.iter_mut().zip([post.pin, post.geo, post.user]) {
            table.extend(
                lines
                    .into_iter()
                    .map(|line| (number.to_string(), line.into_bytes())),
            );
        }
    }
    assert_eq!(
        sent.records + 1,
        expected.iter().map(|t| t.len() as u64).sum::<u64>()
    );
    for (kinesis_name, mut wanted) in kinesis_names.iter().zip(expected) {
        let mut arrived = read_stream(&kinesis, kinesis_name, wanted.len()).await;
        arrived.sort();
        wanted.sort();
        assert!(
            arrived == wanted,
            "{kinesis_name}: {} records arrived, {} sent",
            arrived.len(),
            wanted.len()
        );
    }
    let (_, metrics) = exchange(addr, "GET", "/metrics", &[], Vec::new()).await;
    assert!(
        metrics.contains(&format!(
            "tributary_gateway_kinesis_records_total{{stream=\"{pin}\"}}"
        )),
        "{metrics}"
    );

    let _ = gateway.stop.send(());
    tokio::time::timeout(Duration::from_secs(30), gateway.task)
        .await
        .expect("the gateway stops within 30 s")
        .expect("the gateway task");
}
