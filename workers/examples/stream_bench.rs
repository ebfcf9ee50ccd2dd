//! The helper of `bench/stream.sh`: fills a Kinesis stream with the emulator's Pinterest pins,
//! reads it with a raw `GetRecords` loop (the baseline the sink worker's Kinesis source is
//! measured against), checks what the worker wrote, and measures put → object visible while
//! the worker runs. Not part of the worker; built with
//! `cargo build --release --example stream_bench -p tributary-workers`.
//!
//! ```text
//! stream_bench create STREAM SHARDS                   create a stream, wait until it is ACTIVE
//! stream_bench load STREAM COUNT SEQFILE              put COUNT pins, record i into shard i % shards
//! stream_bench read STREAM COUNT paced|unpaced        read every shard from TRIM_HORIZON
//! stream_bench check BUCKET PREFIX SEQFILE            every record of SEQFILE in exactly one object
//! stream_bench latency STREAM BUCKET PREFIX RATE SECONDS   put RATE pins/s, time each to its object
//! stream_bench bucket NAME | drop-bucket NAME | drop-stream NAME
//! ```
//!
//! The pins are `tributary emulate --seed 1`'s (the generator's defaults: 5 % dirty values, 1 %
//! duplicates, a duplicate counting as a record). Kinesis and S3 are the AWS SDK's default chain
//! (`AWS_ENDPOINT_URL` and friends for LocalStack). Every command prints one line of numbers on
//! stdout for the script and its details on stderr.

use std::collections::{BTreeMap, HashMap, VecDeque};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use aws_sdk_kinesis::Client as Kinesis;
use aws_sdk_kinesis::primitives::Blob;
use aws_sdk_kinesis::types::{PutRecordsRequestEntry, ShardIteratorType, StreamStatus};
use aws_sdk_s3::Client as S3;
use futures::StreamExt;
use parquet::file::reader::{FileReader, SerializedFileReader};
use tributary_workers::connect::{AwsOptions, aws_config, kinesis, s3};
use tributary_workers::pinterest::{Generator, GeneratorConfig};
use tributary_workers::sink::kinesis_keys::{ParsedShardKey, SequenceNumber};

type Error = Box<dyn std::error::Error + Send + Sync>;

/// Kinesis's documented read limits per shard: five `GetRecords` calls a second ...
const CALL_INTERVAL: Duration = Duration::from_millis(200);
/// ... and 2 MiB a second.
const READ_BYTES_PER_SECOND: f64 = 2.0 * 1024.0 * 1024.0;
/// Records per `PutRecords` call when loading (the API allows 500; LocalStack's Kinesis slows
/// down more than proportionally on large calls).
const LOAD_BATCH: usize = 100;
/// `PutRecords` calls in flight when loading.
const LOAD_CONCURRENCY: usize = 4;
/// How often the latency run puts the records that are due ...
const PUT_TICK: Duration = Duration::from_millis(50);
/// ... and lists the destination.
const LIST_INTERVAL: Duration = Duration::from_millis(50);
/// How long the latency run waits, after its last put, for the last record's object.
const DRAIN_TIMEOUT: Duration = Duration::from_secs(120);

fn usage() -> ! {
    eprintln!(
        "usage: stream_bench create STREAM SHARDS | load STREAM COUNT SEQFILE \
         | read STREAM COUNT paced|unpaced | check BUCKET PREFIX SEQFILE \
         | latency STREAM BUCKET PREFIX RATE SECONDS | bucket NAME | drop-bucket NAME \
         | drop-stream NAME"
    );
    std::process::exit(2)
}

#[tokio::main]
async fn main() -> Result<(), Error> {
    let started = Instant::now();
    let args: Vec<String> = std::env::args().skip(1).collect();
    let arg = |i: usize| args.get(i).cloned().unwrap_or_else(|| usage());
    let config = aws_config(&AwsOptions::default()).await;
    let (kinesis, s3) = (kinesis(&config), s3(&config));
    match arg(0).as_str() {
        "create" => create(&kinesis, &arg(1), arg(2).parse()?).await,
        "load" => load(&kinesis, &arg(1), arg(2).parse()?, &arg(3)).await,
        "read" => {
            let paced = match arg(3).as_str() {
                "paced" => true,
                "unpaced" => false,
                _ => usage(),
            };
            read(&kinesis, &arg(1), arg(2).parse()?, paced, started).await
        }
        "check" => check(&s3, &arg(1), &arg(2), &arg(3)).await,
        "latency" => {
            let (rate, seconds) = (arg(4).parse()?, arg(5).parse()?);
            latency(&kinesis, &s3, &arg(1), &arg(2), &arg(3), rate, seconds).await
        }
        "bucket" => {
            s3.create_bucket().bucket(arg(1)).send().await?;
            Ok(())
        }
        "drop-bucket" => drop_bucket(&s3, &arg(1)).await,
        "drop-stream" => {
            kinesis
                .delete_stream()
                .stream_name(arg(1))
                .enforce_consumer_deletion(true)
                .send()
                .await?;
            Ok(())
        }
        _ => usage(),
    }
}

/// Create `stream` with `shards` shards and wait until it is ACTIVE.
async fn create(client: &Kinesis, stream: &str, shards: i32) -> Result<(), Error> {
    client
        .create_stream()
        .stream_name(stream)
        .shard_count(shards)
        .send()
        .await?;
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        let summary = client
            .describe_stream_summary()
            .stream_name(stream)
            .send()
            .await?;
        let active = summary
            .stream_description_summary()
            .is_some_and(|s| s.stream_status() == &StreamStatus::Active);
        if active {
            return Ok(());
        }
        if Instant::now() > deadline {
            return Err(format!("{stream} is not ACTIVE after 60 s").into());
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

/// The open shards of `stream`, by id, each with the first hash key it takes.
async fn shards(client: &Kinesis, stream: &str) -> Result<Vec<(String, String)>, Error> {
    let output = client.list_shards().stream_name(stream).send().await?;
    if output.next_token().is_some_and(|t| !t.is_empty()) {
        return Err("more shards than one ListShards page; the bench uses a few".into());
    }
    let mut shards: Vec<(String, String)> = output
        .shards()
        .iter()
        .filter(|s| {
            s.sequence_number_range()
                .is_none_or(|r| r.ending_sequence_number().is_none())
        })
        .map(|s| {
            let start = s
                .hash_key_range()
                .map(|r| r.starting_hash_key().to_owned())
                .unwrap_or_default();
            (s.shard_id().to_owned(), start)
        })
        .collect();
    shards.sort();
    if shards.is_empty() {
        return Err(format!("{stream} has no open shard").into());
    }
    Ok(shards)
}

/// The emulator's pin records, one after another (a duplicated pin is two records).
struct Pins {
    generator: Generator,
    pending: VecDeque<(u64, String)>,
}

impl Pins {
    fn new() -> Result<Self, Error> {
        Ok(Self {
            generator: Generator::new(GeneratorConfig::default())?,
            pending: VecDeque::new(),
        })
    }

    /// The next pin: its `index` (the partition key) and its JSON text.
    fn next(&mut self) -> (u64, String) {
        loop {
            if let Some(pin) = self.pending.pop_front() {
                return pin;
            }
            let post = self.generator.next_post();
            self.pending
                .extend(post.pin.into_iter().map(|pin| (post.ind, pin)));
        }
    }
}

/// A record put, as Kinesis placed it.
#[derive(Clone, Debug)]
struct Placed {
    shard: String,
    sequence: SequenceNumber,
}

/// Put `entries` with `PutRecords`, putting again those Kinesis refused (throttling), until all
/// are in. Returns where each went, in the order of `entries`, and the refusals.
async fn put_records(
    client: &Kinesis,
    stream: &str,
    entries: Vec<PutRecordsRequestEntry>,
) -> Result<(Vec<Placed>, u64), Error> {
    let mut placed: Vec<Option<Placed>> = vec![None; entries.len()];
    let mut todo: Vec<usize> = (0..entries.len()).collect();
    let mut refused = 0u64;
    let mut attempt = 0u32;
    while !todo.is_empty() {
        let batch = todo.iter().map(|&i| entries[i].clone()).collect();
        let output = client
            .put_records()
            .stream_name(stream)
            .set_records(Some(batch))
            .send()
            .await?;
        let mut again = Vec::new();
        for (&i, result) in todo.iter().zip(output.records()) {
            match (result.shard_id(), result.sequence_number()) {
                (Some(shard), Some(sequence)) if result.error_code().is_none() => {
                    placed[i] = Some(Placed {
                        shard: shard.to_owned(),
                        sequence: SequenceNumber::parse(sequence)?,
                    });
                }
                _ => again.push(i),
            }
        }
        if output.records().len() != todo.len() {
            return Err("PutRecords answered for a different number of records".into());
        }
        refused += again.len() as u64;
        todo = again;
        if !todo.is_empty() {
            attempt += 1;
            if attempt > 20 {
                return Err(format!("{} records refused 20 times", todo.len()).into());
            }
            tokio::time::sleep(Duration::from_millis(100 * u64::from(attempt.min(10)))).await;
        }
    }
    Ok((placed.into_iter().flatten().collect(), refused))
}

/// The entry of pin `index` with `data`, into the shard whose hash range starts at `hash_key`.
fn entry(index: u64, data: String, hash_key: &str) -> Result<PutRecordsRequestEntry, Error> {
    Ok(PutRecordsRequestEntry::builder()
        .partition_key(index.to_string())
        .explicit_hash_key(hash_key)
        .data(Blob::new(data))
        .build()?)
}

/// Put `count` pins into `stream`, record `i` into shard `i % shards` (by explicit hash key),
/// so every shard holds the same number. Writes `shard sequence` per record to `seqfile`;
/// prints `records bytes`.
async fn load(client: &Kinesis, stream: &str, count: u64, seqfile: &str) -> Result<(), Error> {
    let started = Instant::now();
    let shards = shards(client, stream).await?;
    let mut pins = Pins::new()?;
    let mut bytes = 0u64;
    let mut entries = Vec::new();
    for i in 0..count {
        let (index, pin) = pins.next();
        bytes += pin.len() as u64;
        let hash_key = &shards[usize::try_from(i)? % shards.len()].1;
        entries.push(entry(index, pin, hash_key)?);
    }
    let mut batches = Vec::new();
    while !entries.is_empty() {
        let rest = entries.split_off(entries.len().min(LOAD_BATCH));
        batches.push(std::mem::replace(&mut entries, rest));
    }
    let results: Vec<_> = futures::stream::iter(batches)
        .map(|batch| put_records(client, stream, batch))
        .buffered(LOAD_CONCURRENCY)
        .collect()
        .await;
    let (mut lines, mut refused) = (String::new(), 0u64);
    let mut per_shard = BTreeMap::<String, u64>::new();
    for result in results {
        let (placed, r) = result?;
        refused += r;
        for Placed { shard, sequence } in placed {
            *per_shard.entry(shard.clone()).or_default() += 1;
            lines.push_str(&format!("{shard} {sequence}\n"));
        }
    }
    std::fs::write(seqfile, lines)?;
    eprintln!(
        "put {count} records, {bytes} bytes ({:.0} bytes each) in {:.1} s ({:.0} records/s, \
         {refused} refused and put again); per shard {per_shard:?}",
        bytes as f64 / count as f64,
        started.elapsed().as_secs_f64(),
        count as f64 / started.elapsed().as_secs_f64()
    );
    println!("{count} {bytes}");
    Ok(())
}

/// A cheap pass over every byte, so reading cannot be skipped.
fn touch(data: &[u8]) -> u64 {
    data.iter()
        .fold(0u64, |sum, &b| sum.wrapping_add(u64::from(b)))
}

/// What one shard's reader did.
#[derive(Debug, Default)]
struct ShardRead {
    records: u64,
    bytes: u64,
    checksum: u64,
    calls: u64,
    throttled: u64,
    call_seconds: f64,
}

/// Read `expected` records of `shard` from `TRIM_HORIZON` with a `GetRecords` loop: `paced`,
/// within Kinesis's read limits (a call no sooner than 200 ms after the last one started, nor
/// before the last response's bytes at 2 MiB/s have passed since then); else as fast as the
/// service answers.
async fn read_shard(
    client: Kinesis,
    stream: String,
    shard: String,
    expected: u64,
    paced: bool,
) -> Result<ShardRead, Error> {
    let mut iterator = client
        .get_shard_iterator()
        .stream_name(&stream)
        .shard_id(&shard)
        .shard_iterator_type(ShardIteratorType::TrimHorizon)
        .send()
        .await?
        .shard_iterator
        .ok_or("no shard iterator")?;
    let mut read = ShardRead::default();
    let deadline = Instant::now() + Duration::from_secs(600);
    while read.records < expected {
        if Instant::now() > deadline {
            return Err(format!("{shard}: {} of {expected} records in 600 s", read.records).into());
        }
        let call = Instant::now();
        let output = match client
            .get_records()
            .shard_iterator(iterator.clone())
            .send()
            .await
        {
            Ok(output) => output,
            Err(error)
                if error
                    .as_service_error()
                    .is_some_and(|e| e.is_provisioned_throughput_exceeded_exception()) =>
            {
                read.throttled += 1;
                tokio::time::sleep(CALL_INTERVAL).await;
                continue;
            }
            Err(error) => return Err(error.into()),
        };
        read.calls += 1;
        read.call_seconds += call.elapsed().as_secs_f64();
        let mut bytes = 0u64;
        for record in output.records() {
            let data = record.data().as_ref();
            bytes += data.len() as u64;
            read.checksum = read.checksum.wrapping_add(touch(data));
        }
        read.records += output.records().len() as u64;
        read.bytes += bytes;
        iterator = output
            .next_shard_iterator()
            .ok_or_else(|| format!("{shard} ended after {} records", read.records))?
            .to_owned();
        if paced {
            let transfer = Duration::from_secs_f64(bytes as f64 / READ_BYTES_PER_SECOND);
            tokio::time::sleep_until((call + transfer.max(CALL_INTERVAL)).into()).await;
        } else if output.records().is_empty() {
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }
    Ok(read)
}

/// Read `count` records (the same number from every shard) of `stream`, every shard at once.
/// Prints `records bytes seconds calls throttled seconds-a-call`, seconds from the process's
/// start; seconds a call is the mean time from a `GetRecords` call's sending to its answer.
async fn read(
    client: &Kinesis,
    stream: &str,
    count: u64,
    paced: bool,
    started: Instant,
) -> Result<(), Error> {
    let shards = shards(client, stream).await?;
    let n = shards.len() as u64;
    if !count.is_multiple_of(n) {
        return Err(format!("{count} records do not divide into {n} shards").into());
    }
    let tasks: Vec<_> = shards
        .into_iter()
        .map(|(shard, _)| {
            let task = read_shard(
                client.clone(),
                stream.to_owned(),
                shard.clone(),
                count / n,
                paced,
            );
            (shard, tokio::spawn(task))
        })
        .collect();
    let mut total = ShardRead::default();
    for (shard, task) in tasks {
        let read = task.await??;
        eprintln!(
            "{shard}: {} records in {} calls ({:.0} a call, {:.3} s a call), {} throttled, checksum {:x}",
            read.records,
            read.calls,
            read.records as f64 / read.calls.max(1) as f64,
            read.call_seconds / read.calls.max(1) as f64,
            read.throttled,
            read.checksum
        );
        total.records += read.records;
        total.bytes += read.bytes;
        total.calls += read.calls;
        total.throttled += read.throttled;
        total.call_seconds += read.call_seconds;
    }
    let seconds = started.elapsed().as_secs_f64();
    println!(
        "{} {} {seconds:.3} {} {} {:.3}",
        total.records,
        total.bytes,
        total.calls,
        total.throttled,
        total.call_seconds / total.calls.max(1) as f64
    );
    Ok(())
}

/// Every key under `prefix` in `bucket`.
async fn list(client: &S3, bucket: &str, prefix: &str) -> Result<Vec<String>, Error> {
    let mut pages = client
        .list_objects_v2()
        .bucket(bucket)
        .prefix(prefix)
        .into_paginator()
        .send();
    let mut keys = Vec::new();
    while let Some(page) = pages.next().await {
        keys.extend(
            page?
                .contents()
                .iter()
                .filter_map(|o| o.key().map(str::to_owned)),
        );
    }
    Ok(keys)
}

/// Data objects by shard, each `(first, last, key)`, sorted by range.
type Ranges = BTreeMap<String, Vec<(SequenceNumber, SequenceNumber, String)>>;

/// The data objects among `keys`; refuses overlapping ranges. Dead letters (and anything not
/// named like a data object) are returned apart.
fn ranges(keys: &[String]) -> Result<(Ranges, Vec<String>), Error> {
    let mut objects = Ranges::new();
    let mut other = Vec::new();
    for key in keys {
        match ParsedShardKey::parse(key) {
            Ok(parsed) => objects.entry(parsed.shard.to_owned()).or_default().push((
                parsed.first,
                parsed.last,
                key.clone(),
            )),
            Err(_) => other.push(key.clone()),
        }
    }
    for (shard, list) in &mut objects {
        list.sort();
        for pair in list.windows(2) {
            if pair[0].1 >= pair[1].0 {
                return Err(format!("{shard}: {} and {} overlap", pair[0].2, pair[1].2).into());
            }
        }
    }
    Ok((objects, other))
}

/// The object of `objects` whose range holds `sequence` of `shard`.
fn covering<'o>(objects: &'o Ranges, shard: &str, sequence: &SequenceNumber) -> Option<&'o str> {
    let list = objects.get(shard)?;
    let after = list.partition_point(|(first, _, _)| first <= sequence);
    let (_, last, key) = list.get(after.checked_sub(1)?)?;
    (sequence <= last).then_some(key.as_str())
}

/// Check that every record of `seqfile` is in exactly one data object under `prefix` and that
/// every object holds some; prints `objects rows bytes dead`: the data objects, their rows
/// (Parquet) or lines (JSON lines), their bytes, and the other objects (dead letters).
async fn check(client: &S3, bucket: &str, prefix: &str, seqfile: &str) -> Result<(), Error> {
    let keys = list(client, bucket, prefix).await?;
    let (objects, other) = ranges(&keys)?;
    let mut records_in = HashMap::<&str, u64>::new();
    let text = std::fs::read_to_string(seqfile)?;
    for line in text.lines() {
        let (shard, sequence) = line
            .split_once(' ')
            .ok_or("a bad line in the sequence file")?;
        let sequence = SequenceNumber::parse(sequence)?;
        let key = covering(&objects, shard, &sequence)
            .ok_or_else(|| format!("{shard} {sequence} is in no object"))?;
        *records_in.entry(key).or_default() += 1;
    }
    let (mut count, mut rows, mut bytes) = (0u64, 0u64, 0u64);
    for (_, _, key) in objects.values().flatten() {
        if !records_in.contains_key(key.as_str()) {
            return Err(format!("{key} holds no record that was put").into());
        }
        let body = client
            .get_object()
            .bucket(bucket)
            .key(key)
            .send()
            .await?
            .body
            .collect()
            .await?
            .into_bytes();
        count += 1;
        bytes += body.len() as u64;
        rows += if key.ends_with(".parquet") {
            let n = SerializedFileReader::new(body)?
                .metadata()
                .file_metadata()
                .num_rows();
            u64::try_from(n)?
        } else {
            body.iter().filter(|&&b| b == b'\n').count() as u64
        };
    }
    println!("{count} {rows} {bytes} {}", other.len());
    Ok(())
}

/// A record of the latency run: where it went, when its `PutRecords` call was sent and when
/// it was answered (milliseconds since the run's start).
struct Timed {
    placed: Placed,
    sent_ms: f64,
    acked_ms: f64,
}

/// The value at quantile `q` of sorted `values` (nearest rank).
fn quantile(sorted: &[f64], q: f64) -> f64 {
    if sorted.is_empty() {
        return f64::NAN;
    }
    let rank = (q * sorted.len() as f64).ceil().max(1.0) as usize;
    sorted[rank.min(sorted.len()) - 1]
}

/// While a worker copies `stream` into `bucket`/`prefix`: put `rate` pins a second for
/// `seconds` (every 50 ms those due, one `PutRecords` call, round robin over the shards), list
/// the destination every 50 ms, and time each record from its call's sending to the first
/// listing that shows the object holding it. Prints, in milliseconds except counts,
/// `records p50 p99 max put_p50 put_p99 objects rate`.
async fn latency(
    kinesis: &Kinesis,
    s3: &S3,
    stream: &str,
    bucket: &str,
    prefix: &str,
    rate: f64,
    seconds: f64,
) -> Result<(), Error> {
    let shards = shards(kinesis, stream).await?;
    let origin = Instant::now();
    let ms = move || origin.elapsed().as_secs_f64() * 1000.0;
    let seen: Arc<Mutex<HashMap<String, f64>>> = Arc::default();
    let stop = Arc::new(AtomicBool::new(false));
    let lister = {
        let (s3, bucket, prefix) = (s3.clone(), bucket.to_owned(), prefix.to_owned());
        let (seen, stop) = (seen.clone(), stop.clone());
        tokio::spawn(async move {
            while !stop.load(Ordering::Relaxed) {
                let keys = list(&s3, &bucket, &prefix).await?;
                let now = ms();
                {
                    let mut seen = seen.lock().expect("not poisoned");
                    for key in keys {
                        seen.entry(key).or_insert(now);
                    }
                }
                tokio::time::sleep(LIST_INTERVAL).await;
            }
            Ok::<_, Error>(())
        })
    };

    let total = (rate * seconds).round() as u64;
    let mut pins = Pins::new()?;
    let mut puts = tokio::task::JoinSet::new();
    let mut ticker = tokio::time::interval(PUT_TICK);
    ticker.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    let mut sent = 0u64;
    while sent < total {
        ticker.tick().await;
        let due = ((rate * origin.elapsed().as_secs_f64()).floor() as u64).min(total);
        if due <= sent {
            continue;
        }
        let mut entries = Vec::new();
        for i in sent..due {
            let (index, pin) = pins.next();
            let hash_key = &shards[usize::try_from(i)? % shards.len()].1;
            entries.push(entry(index, pin, hash_key)?);
        }
        sent = due;
        let (kinesis, stream) = (kinesis.clone(), stream.to_owned());
        puts.spawn(async move {
            let sent_ms = ms();
            let (placed, refused) = put_records(&kinesis, &stream, entries).await?;
            let acked_ms = ms();
            let timed: Vec<Timed> = placed
                .into_iter()
                .map(|placed| Timed {
                    placed,
                    sent_ms,
                    acked_ms,
                })
                .collect();
            Ok::<_, Error>((timed, refused))
        });
    }
    let put_seconds = origin.elapsed().as_secs_f64();
    let (mut records, mut refused) = (Vec::new(), 0u64);
    while let Some(result) = puts.join_next().await {
        let (timed, r) = result??;
        records.extend(timed);
        refused += r;
    }
    eprintln!(
        "put {} records in {put_seconds:.1} s ({:.0} records/s, {refused} refused and put again)",
        records.len(),
        records.len() as f64 / put_seconds
    );

    // Wait until every record's object has been listed.
    let drain = Instant::now();
    let (objects, latencies) = loop {
        let keys: Vec<String> = seen.lock().expect("not poisoned").keys().cloned().collect();
        let (objects, _) = ranges(&keys)?;
        let covered: Option<Vec<f64>> = records
            .iter()
            .map(|r| covering(&objects, &r.placed.shard, &r.placed.sequence).map(str::to_owned))
            .collect::<Option<Vec<String>>>()
            .map(|keys| {
                let seen = seen.lock().expect("not poisoned");
                records
                    .iter()
                    .zip(keys)
                    .map(|(r, key)| seen[&key] - r.sent_ms)
                    .collect()
            });
        if let Some(latencies) = covered {
            break (objects, latencies);
        }
        if drain.elapsed() > DRAIN_TIMEOUT || lister.is_finished() {
            stop.store(true, Ordering::Relaxed);
            lister.await??;
            return Err(format!(
                "records put but in no object {} s after the last put",
                DRAIN_TIMEOUT.as_secs()
            )
            .into());
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    };
    stop.store(true, Ordering::Relaxed);
    lister.await??;

    let mut latencies = latencies;
    latencies.sort_by(f64::total_cmp);
    let mut acks: Vec<f64> = records.iter().map(|r| r.acked_ms - r.sent_ms).collect();
    acks.sort_by(f64::total_cmp);
    let object_count: usize = objects.values().map(Vec::len).sum();
    eprintln!(
        "{} records in {object_count} objects: put → visible p50 {:.0} ms, p90 {:.0} ms, \
         p99 {:.0} ms, max {:.0} ms, min {:.0} ms; PutRecords round trip p50 {:.0} ms, p99 {:.0} ms",
        latencies.len(),
        quantile(&latencies, 0.5),
        quantile(&latencies, 0.9),
        quantile(&latencies, 0.99),
        quantile(&latencies, 1.0),
        quantile(&latencies, 0.0),
        quantile(&acks, 0.5),
        quantile(&acks, 0.99),
    );
    println!(
        "{} {:.1} {:.1} {:.1} {:.1} {:.1} {object_count} {:.1}",
        latencies.len(),
        quantile(&latencies, 0.5),
        quantile(&latencies, 0.99),
        quantile(&latencies, 1.0),
        quantile(&acks, 0.5),
        quantile(&acks, 0.99),
        records.len() as f64 / put_seconds
    );
    Ok(())
}

/// Delete every object of `bucket`, then the bucket.
async fn drop_bucket(client: &S3, bucket: &str) -> Result<(), Error> {
    for key in list(client, bucket, "").await? {
        client
            .delete_object()
            .bucket(bucket)
            .key(key)
            .send()
            .await?;
    }
    client.delete_bucket().bucket(bucket).send().await?;
    Ok(())
}
