//! The helper of `bench/gateway.sh`: sets up a topic the gateway serves, writes the request
//! body wrk sends, and runs the baseline — a raw rdkafka producer with the gateway's own
//! producer settings — on the same records. Not part of the binary; built with
//! `cargo build --release -p tributary --example gateway_bench`.
//!
//! ```text
//! gateway_bench setup NAMESPACE NAME TOPIC PARTITIONS LABEL  CRDs, Kafka topic, Topic object
//! gateway_bench body FILE RECORDS                          a produce request of RECORDS pins
//! gateway_bench raw TOPIC COUNT                            produce COUNT pins; prints records/s
//! gateway_bench teardown NAMESPACE NAME TOPIC              delete the Topic object and topic
//! ```
//!
//! Kafka is `TRIBUTARY_KAFKA_BOOTSTRAP`; Kubernetes is `KUBECONFIG`.

use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use kube::api::{Api, DeleteParams, PostParams};
use rdkafka::admin::{AdminClient, AdminOptions, NewTopic, TopicReplication};
use rdkafka::client::DefaultClientContext;
use rdkafka::error::{KafkaError, RDKafkaErrorCode};
use rdkafka::message::DeliveryResult;
use rdkafka::producer::{BaseRecord, Producer, ProducerContext, ThreadedProducer};
use rdkafka::{ClientConfig, ClientContext};
use tributary_crds::Topic;
use tributary_workers::connect::KafkaConnection;
use tributary_workers::gateway::config::GatewayConfig;
use tributary_workers::pinterest::{Generator, GeneratorConfig};

type Error = Box<dyn std::error::Error + Send + Sync>;

fn usage() -> ! {
    eprintln!(
        "usage: gateway_bench setup NAMESPACE NAME TOPIC PARTITIONS LABEL | body FILE RECORDS \
         | raw TOPIC COUNT | teardown NAMESPACE NAME TOPIC"
    );
    std::process::exit(2)
}

#[tokio::main]
async fn main() -> Result<(), Error> {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let arg = |i: usize| args.get(i).cloned().unwrap_or_else(|| usage());
    match arg(0).as_str() {
        "setup" => setup(&arg(1), &arg(2), &arg(3), arg(4).parse()?, &arg(5)).await,
        "body" => body(&arg(1), arg(2).parse()?),
        "raw" => {
            let (topic, count) = (arg(1), arg(2).parse()?);
            tokio::task::spawn_blocking(move || raw(&topic, count)).await?
        }
        "teardown" => teardown(&arg(1), &arg(2), &arg(3)).await,
        _ => usage(),
    }
}

fn connection() -> Result<KafkaConnection, Error> {
    let bootstrap = std::env::var("TRIBUTARY_KAFKA_BOOTSTRAP")
        .map_err(|_| "TRIBUTARY_KAFKA_BOOTSTRAP is not set")?;
    Ok(KafkaConnection::plaintext(bootstrap))
}

fn admin() -> Result<AdminClient<DefaultClientContext>, Error> {
    Ok(connection()?.client_config()?.create()?)
}

async fn setup(
    namespace: &str,
    name: &str,
    topic: &str,
    partitions: i32,
    label: &str,
) -> Result<(), Error> {
    let new = NewTopic::new(topic, partitions, TopicReplication::Fixed(1));
    for result in admin()?.create_topics([&new], &AdminOptions::new()).await? {
        result.map_err(|(name, code)| format!("creating {name}: {code}"))?;
    }
    let (key, value) = label.split_once('=').ok_or("LABEL is key=value")?;
    let object: Topic = serde_json::from_value(serde_json::json!({
        "apiVersion": "tributary.dev/v1alpha1",
        "kind": "Topic",
        "metadata": {"name": name, "labels": {key: value}},
        "spec": {"clusterRef": {"name": "bench"}, "topicName": topic, "partitions": partitions}
    }))?;
    let client = kube::Client::try_default().await?;
    tributary_operator::crds::install(&client, Duration::from_secs(60)).await?;
    let topics: Api<Topic> = Api::namespaced(client, namespace);
    topics.create(&PostParams::default(), &object).await?;
    Ok(())
}

async fn teardown(namespace: &str, name: &str, topic: &str) -> Result<(), Error> {
    let topics: Api<Topic> = Api::namespaced(kube::Client::try_default().await?, namespace);
    let _ = topics.delete(name, &DeleteParams::default()).await;
    for result in admin()?
        .delete_topics(&[topic], &AdminOptions::new())
        .await?
    {
        result.map_err(|(name, code)| format!("deleting {name}: {code}"))?;
    }
    Ok(())
}

/// The first `count` pin records of the emulator's generator (seed 1), as JSON text.
fn pins(count: usize) -> Result<Vec<String>, Error> {
    let mut generator = Generator::new(GeneratorConfig {
        seed: 1,
        dirty_rate: 0.05,
        duplicate_rate: 0.0,
    })?;
    let mut pins = Vec::with_capacity(count);
    while pins.len() < count {
        pins.extend(generator.next_post().pin);
    }
    pins.truncate(count);
    Ok(pins)
}

/// A REST proxy produce request of `records` pins, for wrk to send again and again.
fn body(file: &str, records: usize) -> Result<(), Error> {
    let values: Vec<String> = pins(records)?
        .into_iter()
        .map(|pin| format!(r#"{{"value":{pin}}}"#))
        .collect();
    std::fs::write(file, format!(r#"{{"records":[{}]}}"#, values.join(",")))?;
    Ok(())
}

#[derive(Default)]
struct Deliveries {
    ok: AtomicU64,
    failed: AtomicU64,
}

impl ClientContext for Deliveries {}

impl ProducerContext for Deliveries {
    type DeliveryOpaque = ();

    fn delivery(&self, result: &DeliveryResult<'_>, _: ()) {
        let counter = if result.is_ok() {
            &self.ok
        } else {
            &self.failed
        };
        counter.fetch_add(1, Ordering::Relaxed);
    }
}

/// Produce `count` pins (the same 100 over and over, as wrk sends them) with the gateway's
/// producer settings, as fast as librdkafka takes them; prints `records seconds`.
fn raw(topic: &str, count: u64) -> Result<(), Error> {
    let config: ClientConfig = tributary_workers::gateway::producer::client_config(
        &connection()?,
        &GatewayConfig::default(),
    )?;
    let producer: ThreadedProducer<Deliveries> =
        config.create_with_context(Deliveries::default())?;
    let pins = pins(100)?;
    let started = Instant::now();
    for index in 0..count {
        let payload = pins[(index % 100) as usize].as_bytes();
        let mut record = BaseRecord::<(), [u8], ()>::to(topic).payload(payload);
        loop {
            match producer.send(record) {
                Ok(()) => break,
                Err((KafkaError::MessageProduction(RDKafkaErrorCode::QueueFull), back)) => {
                    record = back;
                    std::thread::sleep(Duration::from_millis(1));
                }
                Err((error, _)) => return Err(error.into()),
            }
        }
    }
    producer.flush(Duration::from_secs(300))?;
    let seconds = started.elapsed().as_secs_f64();
    let deliveries = producer.context();
    let (ok, failed) = (
        deliveries.ok.load(Ordering::Relaxed),
        deliveries.failed.load(Ordering::Relaxed),
    );
    if ok != count || failed != 0 {
        return Err(format!("{ok} of {count} records delivered, {failed} failed").into());
    }
    println!("{count} {seconds:.3}");
    Ok(())
}
