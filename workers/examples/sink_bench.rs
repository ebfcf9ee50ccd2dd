//! The helper of `bench/sink.sh`: fills a topic with Pinterest-style "pin" records, consumes
//! it raw (the baseline the sink is measured against), creates the bucket and counts what the
//! sink wrote. Not part of the worker; built with
//! `cargo build --release --example sink_bench -p tributary-workers`.
//!
//! ```text
//! sink_bench produce TOPIC PARTITIONS COUNT      create TOPIC, write COUNT records round-robin
//! sink_bench consume TOPIC GROUP COUNT [stream]  read COUNT records as fast as possible
//! sink_bench floor TOPIC GROUP COUNT URL CHUNK   read as `consume` does and upload every CHUNK
//!                                                records of a partition, joined by newlines,
//!                                                to URL (s3:// or file://) as one object
//! sink_bench bucket NAME                         create an S3 bucket
//! sink_bench count BUCKET PREFIX                 records in the .json / .parquet objects
//! sink_bench drop-bucket NAME                    delete an S3 bucket and its objects
//! sink_bench drop-topic TOPIC                    delete a topic
//! ```
//!
//! Kafka is `TRIBUTARY_KAFKA_BOOTSTRAP`; S3 is the AWS SDK's default chain (`AWS_ENDPOINT_URL`
//! and friends for LocalStack).

use std::collections::BTreeMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use bytes::Bytes;
use futures::StreamExt;
use parquet::file::reader::{FileReader, SerializedFileReader};
use rdkafka::admin::{AdminClient, AdminOptions, NewTopic, TopicReplication};
use rdkafka::client::DefaultClientContext;
use rdkafka::consumer::{BaseConsumer, Consumer, StreamConsumer};
use rdkafka::error::{KafkaError, RDKafkaErrorCode};
use rdkafka::message::{DeliveryResult, Message};
use rdkafka::producer::{BaseRecord, Producer, ProducerContext, ThreadedProducer};
use rdkafka::{ClientConfig, ClientContext};
use serde_json::json;
use tributary_workers::connect::{AwsOptions, KafkaConnection, aws_config, s3};
use tributary_workers::sink::store::{LakeLocation, put_object};

type Error = Box<dyn std::error::Error + Send + Sync>;

fn usage() -> ! {
    eprintln!(
        "usage: sink_bench produce TOPIC PARTITIONS COUNT | consume TOPIC GROUP COUNT [stream] \
         | floor TOPIC GROUP COUNT URL CHUNK | bucket NAME | count BUCKET PREFIX | drop-bucket NAME | drop-topic TOPIC"
    );
    std::process::exit(2)
}

#[tokio::main]
async fn main() -> Result<(), Error> {
    let started = Instant::now();
    let args: Vec<String> = std::env::args().skip(1).collect();
    let arg = |i: usize| args.get(i).cloned().unwrap_or_else(|| usage());
    match arg(0).as_str() {
        "produce" => produce(&arg(1), arg(2).parse()?, arg(3).parse()?).await,
        "consume" => {
            let (topic, group, count) = (arg(1), arg(2), arg(3).parse()?);
            let stream = args.get(4).is_some_and(|mode| mode == "stream");
            let (records, bytes, checksum) = if stream {
                consume_stream(&topic, &group, count).await?
            } else {
                tokio::task::spawn_blocking(move || consume_poll(&topic, &group, count)).await??
            };
            let seconds = started.elapsed().as_secs_f64();
            eprintln!("consumed {records} records, {bytes} bytes (checksum {checksum:x})");
            // records bytes seconds peak-RSS-KiB CPU-ticks, for the script.
            println!(
                "{records} {bytes} {seconds:.3} {} {}",
                peak_rss_kib(),
                cpu_ticks()
            );
            Ok(())
        }
        "floor" => {
            let (topic, group, count) = (arg(1), arg(2), arg(3).parse()?);
            let (url, chunk) = (arg(4), arg(5).parse()?);
            let (records, bytes, objects) = floor(&topic, &group, count, &url, chunk).await?;
            let seconds = started.elapsed().as_secs_f64();
            eprintln!("consumed {records} records, {bytes} bytes; uploaded {objects} objects");
            println!(
                "{records} {bytes} {seconds:.3} {} {}",
                peak_rss_kib(),
                cpu_ticks()
            );
            Ok(())
        }
        "bucket" => {
            let client = s3(&aws_config(&AwsOptions::default()).await);
            client.create_bucket().bucket(arg(1)).send().await?;
            Ok(())
        }
        "count" => count(&arg(1), &arg(2)).await,
        "drop-bucket" => drop_bucket(&arg(1)).await,
        "drop-topic" => {
            let admin: AdminClient<DefaultClientContext> = client_config()?.create()?;
            for result in admin
                .delete_topics(&[&arg(1)], &AdminOptions::new())
                .await?
            {
                result.map_err(|(name, code)| format!("deleting {name}: {code}"))?;
            }
            Ok(())
        }
        _ => usage(),
    }
}

fn client_config() -> Result<ClientConfig, Error> {
    let bootstrap = std::env::var("TRIBUTARY_KAFKA_BOOTSTRAP")
        .map_err(|_| "TRIBUTARY_KAFKA_BOOTSTRAP is not set")?;
    Ok(KafkaConnection::plaintext(bootstrap).client_config()?)
}

/// The consumer settings the sink worker uses, minus what only a sink needs (statistics,
/// static membership), so the baseline reads the same way.
fn consumer_config(group: &str) -> Result<ClientConfig, Error> {
    let mut config = client_config()?;
    config
        .set("group.id", group)
        .set("enable.auto.commit", "false")
        .set("enable.auto.offset.store", "false")
        .set("auto.offset.reset", "earliest")
        .set("allow.auto.create.topics", "false")
        .set("session.timeout.ms", "10000")
        .set("heartbeat.interval.ms", "3000");
    // As the sink's consumerProperties in bench/sink.sh: the local broker answers a fetch
    // with the whole backlog, above librdkafka's default 100 MB ceiling.
    if let Ok(max) = std::env::var("BENCH_RECEIVE_MAX") {
        config.set("receive.message.max.bytes", max);
    }
    Ok(config)
}

/// A cheap pass over every byte of the payload, so the compiler cannot skip reading it.
fn touch(payload: &[u8]) -> u64 {
    payload
        .iter()
        .fold(0u64, |sum, &b| sum.wrapping_add(u64::from(b)))
}

/// Read `count` records with a `BaseConsumer` poll loop on one thread.
fn consume_poll(topic: &str, group: &str, count: u64) -> Result<(u64, u64, u64), Error> {
    let started = Instant::now();
    let consumer: BaseConsumer = consumer_config(group)?.create()?;
    consumer.subscribe(&[topic])?;
    let (mut records, mut bytes, mut checksum) = (0u64, 0u64, 0u64);
    let deadline = Instant::now() + Duration::from_secs(600);
    while records < count {
        if Instant::now() > deadline {
            return Err(format!("only {records} of {count} records within 600 s").into());
        }
        match consumer.poll(Duration::from_millis(100)) {
            Some(Ok(message)) => {
                if records == 0 {
                    eprintln!(
                        "first record after {:.3} s",
                        started.elapsed().as_secs_f64()
                    );
                }
                let payload = message.payload().unwrap_or_default();
                records += 1;
                bytes += payload.len() as u64;
                checksum = checksum.wrapping_add(touch(payload));
            }
            Some(Err(error)) => eprintln!("consumer error: {error}"),
            None => {}
        }
    }
    Ok((records, bytes, checksum))
}

/// The least any sink must do: the raw poll loop, each record's bytes and a newline appended
/// to its partition's buffer, and every `chunk` records of a partition uploaded as one object
/// (the worker's store and multipart threshold, every upload at once) while reading goes on.
/// No parsing, no per-record allocation, no offset commits. Returns records, payload bytes and
/// objects, once every upload has finished.
async fn floor(
    topic: &str,
    group: &str,
    count: u64,
    url: &str,
    chunk: u64,
) -> Result<(u64, u64, u64), Error> {
    let lake = LakeLocation::parse(url)?;
    let (store, prefix) = (lake.store.clone(), lake.prefix.clone());
    let (objects_tx, mut objects_rx) = tokio::sync::mpsc::unbounded_channel::<(String, Bytes)>();
    let uploads = tokio::spawn(async move {
        let mut running = tokio::task::JoinSet::new();
        let mut objects = 0u64;
        while let Some((key, bytes)) = objects_rx.recv().await {
            let store = store.clone();
            running.spawn(async move { put_object(store.as_ref(), &key, bytes, 16 << 20).await });
            objects += 1;
        }
        while let Some(result) = running.join_next().await {
            result??;
        }
        Ok::<u64, Error>(objects)
    });
    let (topic, group) = (topic.to_owned(), group.to_owned());
    let (records, bytes) = tokio::task::spawn_blocking(move || {
        let consumer: BaseConsumer = consumer_config(&group)?.create()?;
        consumer.subscribe(&[&topic])?;
        let mut buffers: BTreeMap<i32, (u64, Vec<u8>)> = BTreeMap::new();
        let (mut records, mut bytes) = (0u64, 0u64);
        let send = |partition: i32, records: u64, buffer: &mut (u64, Vec<u8>)| {
            let key = format!("{prefix}/floor-{partition}-{records}.json");
            let _ = objects_tx.send((key, Bytes::from(std::mem::take(&mut buffer.1))));
            buffer.0 = 0;
        };
        let deadline = Instant::now() + Duration::from_secs(600);
        while records < count {
            if Instant::now() > deadline {
                return Err::<_, Error>(
                    format!("only {records} of {count} records within 600 s").into(),
                );
            }
            match consumer.poll(Duration::from_millis(100)) {
                Some(Ok(message)) => {
                    let payload = message.payload().unwrap_or_default();
                    records += 1;
                    bytes += payload.len() as u64;
                    let buffer = buffers.entry(message.partition()).or_default();
                    buffer.1.extend_from_slice(payload);
                    buffer.1.push(b'\n');
                    buffer.0 += 1;
                    if buffer.0 == chunk {
                        send(message.partition(), records, buffer);
                    }
                }
                Some(Err(error)) => eprintln!("consumer error: {error}"),
                None => {}
            }
        }
        for (partition, buffer) in &mut buffers {
            if buffer.0 > 0 {
                send(*partition, records, buffer);
            }
        }
        Ok((records, bytes))
    })
    .await??;
    let objects = uploads.await??;
    Ok((records, bytes, objects))
}

/// Read `count` records with a `StreamConsumer` on the async runtime, as the sink does.
async fn consume_stream(topic: &str, group: &str, count: u64) -> Result<(u64, u64, u64), Error> {
    let consumer: StreamConsumer = consumer_config(group)?.create()?;
    consumer.subscribe(&[topic])?;
    let (mut records, mut bytes, mut checksum) = (0u64, 0u64, 0u64);
    let mut stream = consumer.stream();
    let deadline = tokio::time::sleep(Duration::from_secs(600));
    tokio::pin!(deadline);
    while records < count {
        tokio::select! {
            () = &mut deadline => {
                return Err(format!("only {records} of {count} records within 600 s").into());
            }
            message = stream.next() => match message {
                Some(Ok(message)) => {
                    let payload = message.payload().unwrap_or_default();
                    records += 1;
                    bytes += payload.len() as u64;
                    checksum = checksum.wrapping_add(touch(payload));
                }
                Some(Err(error)) => eprintln!("consumer error: {error}"),
                None => return Err("the consumer stream ended".into()),
            }
        }
    }
    Ok((records, bytes, checksum))
}

/// This process's peak resident memory, from `/proc/self/status`.
fn peak_rss_kib() -> u64 {
    std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|status| {
            status
                .lines()
                .find_map(|line| line.strip_prefix("VmHWM:"))
                .and_then(|rest| rest.trim().trim_end_matches("kB").trim().parse().ok())
        })
        .unwrap_or(0)
}

/// This process's user and system CPU time so far, in clock ticks (`/proc/self/stat`).
fn cpu_ticks() -> u64 {
    std::fs::read_to_string("/proc/self/stat")
        .ok()
        .and_then(|stat| {
            // The fields after the command name, which is in parentheses and may hold spaces.
            let rest = stat.get(stat.rfind(')')? + 2..)?.to_owned();
            let fields: Vec<&str> = rest.split_whitespace().collect();
            // utime and stime are the 14th and 15th fields, the 12th and 13th after the name.
            Some(fields.get(11)?.parse::<u64>().ok()? + fields.get(12)?.parse::<u64>().ok()?)
        })
        .unwrap_or(0)
}

/// Counts deliveries and their failures.
#[derive(Default)]
struct Deliveries {
    ok: AtomicU64,
    failed: AtomicU64,
}

impl ClientContext for Deliveries {}

impl ProducerContext for Deliveries {
    type DeliveryOpaque = ();

    fn delivery(&self, result: &DeliveryResult<'_>, _: ()) {
        match result {
            Ok(_) => self.ok.fetch_add(1, Ordering::Relaxed),
            Err((error, _)) => {
                if self.failed.fetch_add(1, Ordering::Relaxed) == 0 {
                    eprintln!("delivery failed: {error}");
                }
                0
            }
        };
    }
}

/// Create `topic` with `partitions` and write `count` pins to it, record `i` to partition
/// `i % partitions`, so every partition holds the same number. Prints the payload bytes.
async fn produce(topic: &str, partitions: i32, count: u64) -> Result<(), Error> {
    let admin: AdminClient<DefaultClientContext> = client_config()?.create()?;
    for result in admin
        .create_topics(
            [&NewTopic::new(
                topic,
                partitions,
                TopicReplication::Fixed(1),
            )],
            &AdminOptions::new(),
        )
        .await?
    {
        result.map_err(|(name, code)| format!("creating {name}: {code}"))?;
    }
    let topic = topic.to_owned();
    tokio::task::spawn_blocking(move || produce_records(&topic, partitions, count)).await?
}

fn produce_records(topic: &str, partitions: i32, count: u64) -> Result<(), Error> {
    let producer: ThreadedProducer<Deliveries> = client_config()?
        .set("linger.ms", "20")
        .set("batch.size", "1000000")
        .set("batch.num.messages", "10000")
        .set("queue.buffering.max.messages", "1000000")
        .set("queue.buffering.max.kbytes", "1048576")
        .create_with_context(Deliveries::default())?;
    let started = Instant::now();
    let mut rng = Rng(0x7069_6e73);
    let mut bytes = 0u64;
    for index in 0..count {
        let payload = pin(index, &mut rng);
        bytes += payload.len() as u64;
        let partition = i32::try_from(index % u64::try_from(partitions)?)?;
        let mut record = BaseRecord::<(), [u8], ()>::to(topic)
            .partition(partition)
            .payload(&payload);
        loop {
            match producer.send(record) {
                Ok(()) => break,
                Err((KafkaError::MessageProduction(RDKafkaErrorCode::QueueFull), back)) => {
                    record = back;
                    std::thread::sleep(Duration::from_millis(5));
                }
                Err((error, _)) => return Err(error.into()),
            }
        }
    }
    producer.flush(Duration::from_secs(300))?;
    let deliveries = producer.context();
    let (ok, failed) = (
        deliveries.ok.load(Ordering::Relaxed),
        deliveries.failed.load(Ordering::Relaxed),
    );
    if ok != count || failed != 0 {
        return Err(format!("{ok} of {count} records delivered, {failed} failed").into());
    }
    eprintln!(
        "produced {count} records, {bytes} bytes ({:.0} bytes each) in {:.1} s",
        bytes as f64 / count as f64,
        started.elapsed().as_secs_f64()
    );
    println!("{bytes}");
    Ok(())
}

/// The number of records in the objects under `prefix`: lines of `.json` objects, rows of
/// `.parquet` ones. Prints `objects records`.
async fn count(bucket: &str, prefix: &str) -> Result<(), Error> {
    let client = s3(&aws_config(&AwsOptions::default()).await);
    let mut pages = client
        .list_objects_v2()
        .bucket(bucket)
        .prefix(prefix)
        .into_paginator()
        .send();
    let (mut objects, mut records) = (0u64, 0u64);
    while let Some(page) = pages.next().await {
        for object in page?.contents() {
            let key = object.key().unwrap_or_default();
            let body: Bytes = client
                .get_object()
                .bucket(bucket)
                .key(key)
                .send()
                .await?
                .body
                .collect()
                .await?
                .into_bytes();
            objects += 1;
            records += if key.ends_with(".parquet") {
                let rows = SerializedFileReader::new(body)?
                    .metadata()
                    .file_metadata()
                    .num_rows();
                u64::try_from(rows)?
            } else if key.ends_with(".json") {
                body.iter().filter(|&&b| b == b'\n').count() as u64
            } else if key.ends_with(".json.zst") {
                let text = zstd::stream::decode_all(body.as_ref())?;
                text.iter().filter(|&&b| b == b'\n').count() as u64
            } else {
                return Err(format!("unexpected object {key}").into());
            };
        }
    }
    println!("{objects} {records}");
    Ok(())
}

/// Delete every object of `bucket`, then the bucket (the runs write hundreds of MB each).
async fn drop_bucket(bucket: &str) -> Result<(), Error> {
    let client = s3(&aws_config(&AwsOptions::default()).await);
    let mut pages = client
        .list_objects_v2()
        .bucket(bucket)
        .into_paginator()
        .send();
    while let Some(page) = pages.next().await {
        for object in page?.contents() {
            client
                .delete_object()
                .bucket(bucket)
                .key(object.key().unwrap_or_default())
                .send()
                .await?;
        }
    }
    client.delete_bucket().bucket(bucket).send().await?;
    Ok(())
}

/// splitmix64: a fixed sequence, so every run writes the same records.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9e37_79b9_7f4a_7c15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        z ^ (z >> 31)
    }

    fn below(&mut self, n: usize) -> usize {
        (self.next() % n as u64) as usize
    }

    fn pick<'a>(&mut self, items: &[&'a str]) -> &'a str {
        items[self.below(items.len())]
    }

    fn hex(&mut self, digits: usize) -> String {
        let mut out = String::with_capacity(digits);
        while out.len() < digits {
            out.push_str(&format!("{:016x}", self.next()));
        }
        out.truncate(digits);
        out
    }
}

const CATEGORIES: &[&str] = &[
    "christmas",
    "tattoos",
    "vehicles",
    "home-decor",
    "diy-and-crafts",
    "education",
    "travel",
    "finance",
    "quotes",
    "beauty",
    "art",
    "event-planning",
    "mens-fashion",
];
const WORDS: &[&str] = &[
    "easy",
    "modern",
    "vintage",
    "ideas",
    "simple",
    "beautiful",
    "small",
    "living",
    "room",
    "wedding",
    "budget",
    "winter",
    "summer",
    "garden",
    "kitchen",
    "painting",
    "minimalist",
    "watercolor",
    "outfit",
    "style",
    "travel",
    "guide",
    "tips",
    "quotes",
    "life",
    "money",
    "saving",
    "design",
    "handmade",
    "gift",
    "cozy",
    "rustic",
    "boho",
    "classic",
    "colorful",
];
const POSTERS: &[&str] = &[
    "Hallmark Channel",
    "The Spruce Crafts",
    "Architectural Digest",
    "Tattoodo",
    "Apartment Therapy",
    "Nomadic Matt",
    "The Budget Mom",
    "Country Living Magazine",
];

fn sentence(rng: &mut Rng, words: usize) -> String {
    let mut out = String::new();
    for i in 0..words {
        if i > 0 {
            out.push(' ');
        }
        out.push_str(rng.pick(WORDS));
    }
    out
}

/// One pin, as the Pinterest data-pipeline exercise's `pinterest_data` records look.
fn pin(index: u64, rng: &mut Rng) -> Vec<u8> {
    let category = rng.pick(CATEGORIES);
    let followers = match rng.below(3) {
        0 => format!("{}", rng.below(1000)),
        1 => format!("{}k", 1 + rng.below(999)),
        _ => format!("{}M", 1 + rng.below(9)),
    };
    let title_words = 3 + rng.below(6);
    let description_words = 10 + rng.below(16);
    let tags: Vec<&str> = (0..3 + rng.below(4)).map(|_| rng.pick(WORDS)).collect();
    let unique_id = format!(
        "{}-{}-4{}-a{}-{}",
        rng.hex(8),
        rng.hex(4),
        rng.hex(3),
        rng.hex(3),
        rng.hex(12)
    );
    let image = rng.hex(32);
    let seconds = 1_514_764_800 + rng.below(126_230_400) as i64;
    let timestamp = jiff::Timestamp::from_second(seconds)
        .map(|t| t.strftime("%Y-%m-%dT%H:%M:%S").to_string())
        .unwrap_or_default();
    json!({
        "index": index,
        "unique_id": unique_id,
        "title": sentence(rng, title_words),
        "description": sentence(rng, description_words),
        "poster_name": rng.pick(POSTERS),
        "follower_count": followers,
        "tag_list": tags.join(","),
        "is_image_or_video": if rng.below(10) == 0 { "video" } else { "image" },
        "image_src": format!("https://i.pinimg.com/originals/{}/{}/{}/{image}.jpg", &image[..2], &image[2..4], &image[4..6]),
        "downloaded": rng.below(2),
        "save_location": format!("Local save in /data/{category}"),
        "category": category,
        "timestamp": timestamp,
    })
    .to_string()
    .into_bytes()
}
