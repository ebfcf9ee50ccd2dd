//! `tributary local`: the manifests a cluster would get, run on this machine as in-process tasks
//! with the operator's and the workers' own code — validation, topic provisioning, bucket
//! creation, the sink worker, the gateway and the batch worker — and a status table, served on
//! an HTTP address so `tributary local status` and `tributary local run-batch` can ask for it.

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use anyhow::{Context, bail};
use axum::Json;
use axum::extract::{Path as UrlPath, Query, State};
use axum::http::StatusCode;
use axum::routing::{get, post};
use jiff::Timestamp;
use kube::ResourceExt;
use serde::{Deserialize, Serialize};
use tokio::sync::{mpsc, oneshot, watch};
use tributary_crds::{BatchJob, KafkaCluster, Manifest, Sink, Stream, Topic};
use tributary_operator::batch_job::{build as batch_build, validate as batch_validate};
use tributary_operator::buckets::{Buckets, S3Buckets};
use tributary_operator::kafka_admin::{KafkaAdmin, KafkaAdmins, RdKafkaAdmins};
use tributary_operator::sink::{
    resolve as sink_resolve, source as source_label, stream_key, topic_key,
    validate as sink_validate,
};
use tributary_operator::stream::kinesis::{AwsKinesis, Kinesis};
use tributary_operator::stream::plan::{self as stream_plan, Step};
use tributary_operator::topic::plan::Desired;
use tributary_workers::batch::config::{BatchWorkerConfig, OutputSummary};
use tributary_workers::connect::{AwsOptions, KafkaConnection};
use tributary_workers::sink::config::LeaseSettings;

/// The default address of the status API.
pub const STATUS_ADDR: &str = "127.0.0.1:7420";

/// Flags of `tributary local`.
#[derive(clap::Args)]
#[command(args_conflicts_with_subcommands = true)]
pub struct LocalArgs {
    #[command(subcommand)]
    command: Option<LocalCommand>,
    #[command(flatten)]
    run: RunArgs,
}

#[derive(clap::Subcommand)]
enum LocalCommand {
    /// Print the status table of a running `tributary local`.
    Status {
        /// Its status address.
        #[arg(long, default_value = STATUS_ADDR)]
        status_addr: SocketAddr,
        /// Print the JSON document instead of the table.
        #[arg(long)]
        json: bool,
    },
    /// Print a Parquet table of the lake (`s3://bucket/prefix/`), sorted, as text.
    Show {
        /// The table's location.
        url: String,
        /// Rows at most.
        #[arg(long, default_value_t = 50)]
        limit: usize,
        /// JSON lines (one object per row, nulls written out) instead of a text table.
        #[arg(long)]
        json: bool,
    },
    /// Run one BatchJob of a running `tributary local` now and print its outputs.
    RunBatch {
        /// The BatchJob's name.
        name: String,
        /// The run's scheduled time (RFC 3339); default now.
        #[arg(long)]
        scheduled_time: Option<Timestamp>,
        /// Its status address.
        #[arg(long, default_value = STATUS_ADDR)]
        status_addr: SocketAddr,
    },
}

#[derive(clap::Args)]
struct RunArgs {
    /// Manifest files or directories (every `.yaml`/`.yml` in them, in name order).
    #[arg(short = 'f', long = "file", value_name = "PATH")]
    files: Vec<PathBuf>,
    /// Use these brokers for every KafkaCluster (`host:port,...`), instead of its spec: the way
    /// to run manifests written for MSK or a remote cluster against a local broker.
    #[arg(long, env = "TRIBUTARY_KAFKA_BOOTSTRAP")]
    kafka_bootstrap: Option<String>,
    /// Address of the gateway (serving the manifests' Topics); `off` for none.
    #[arg(long, default_value = "127.0.0.1:8080")]
    gateway_listen: String,
    /// Address of the status API (`tributary local status` reads it).
    #[arg(long, default_value = STATUS_ADDR)]
    status_addr: SocketAddr,
    /// Run every BatchJob once at start (after the Sinks started), as well as on its schedule.
    #[arg(long)]
    run_batch_now: bool,
    /// Where the data lake is: `s3` (the manifests' buckets, through the AWS SDK's chain), or a
    /// directory that takes the place of S3 (`s3://bucket/key` becomes `DIR/bucket/key`).
    /// Default: `s3` when an S3 endpoint or AWS credentials are configured in the environment
    /// (`AWS_ENDPOINT_URL`, `AWS_ENDPOINT_URL_S3`, `AWS_ACCESS_KEY_ID`, `AWS_PROFILE`,
    /// `AWS_WEB_IDENTITY_TOKEN_FILE`), else the directory `$TRIBUTARY_CACHE/lake`
    /// (`~/.cache/tributary/lake`).
    #[arg(long, value_name = "s3|DIR")]
    lake: Option<String>,
    /// Start from nothing: delete and re-create the manifests' Kafka topics and Kinesis
    /// streams, delete the objects under their Sinks' destinations, dead letters, shard leases
    /// and BatchJob outputs, and give the
    /// Sinks new consumer groups (their names with `-fresh-<unix time>`: a group whose static
    /// members never left cannot be deleted). For demos and experiments: it destroys that data.
    #[arg(long)]
    fresh: bool,
    /// Namespace of manifests that name none.
    #[arg(long, default_value = "default")]
    namespace: String,
}

/// `tributary local ...`.
pub async fn local(args: LocalArgs, shutdown: impl Future<Output = ()>) -> anyhow::Result<()> {
    match args.command {
        Some(LocalCommand::Status { status_addr, json }) => print_status(status_addr, json).await,
        Some(LocalCommand::Show { url, limit, json }) => {
            let shown = tributary_workers::batch::show(&url, limit, json).await?;
            print!("{shown}");
            if !json {
                println!();
            }
            Ok(())
        }
        Some(LocalCommand::RunBatch {
            name,
            scheduled_time,
            status_addr,
        }) => run_batch_remote(status_addr, &name, scheduled_time).await,
        None => run(args.run, shutdown).await,
    }
}

// ---------------------------------------------------------------------------------------------
// Status

/// One row of the status table.
#[derive(Clone, Debug, Default, Serialize, Deserialize, PartialEq)]
pub struct Row {
    /// The kind.
    pub kind: String,
    /// The object's name.
    pub name: String,
    /// Whether it works.
    pub ready: bool,
    /// What a Sink reads: `topic/<name>` or `stream/<name>`, as in its status.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub source: Option<String>,
    /// Records not yet written (Sinks reading a Topic; a Stream source reports none).
    pub lag: Option<i64>,
    /// Records a Sink has written to the lake since it started: in objects, or as dead letters.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub written: Option<u64>,
    /// The last flush (Sinks) or run (BatchJobs).
    pub last: Option<String>,
    /// What it does, or what is wrong.
    pub message: String,
}

type Rows = Arc<Mutex<BTreeMap<(String, String), Row>>>;

fn set(rows: &Rows, row: Row) {
    rows.lock()
        .expect("status lock")
        .insert((row.kind.clone(), row.name.clone()), row);
}

fn update(rows: &Rows, kind: &str, name: &str, f: impl FnOnce(&mut Row)) {
    if let Some(row) = rows
        .lock()
        .expect("status lock")
        .get_mut(&(kind.to_owned(), name.to_owned()))
    {
        f(row);
    }
}

/// The rows as a table.
pub fn table(rows: &[Row]) -> String {
    let mut lines = vec![[
        "KIND".to_owned(),
        "NAME".to_owned(),
        "READY".to_owned(),
        "LAG".to_owned(),
        "WRITTEN".to_owned(),
        "LAST FLUSH/RUN".to_owned(),
        "MESSAGE".to_owned(),
    ]];
    for row in rows {
        lines.push([
            row.kind.clone(),
            row.name.clone(),
            if row.ready { "True" } else { "False" }.to_owned(),
            row.lag.map(|l| l.to_string()).unwrap_or_else(|| "-".into()),
            row.written
                .map(|w| w.to_string())
                .unwrap_or_else(|| "-".into()),
            row.last.clone().unwrap_or_else(|| "-".into()),
            row.message.clone(),
        ]);
    }
    // Every column but the message, the last, is padded to its widest cell.
    let padded = lines[0].len() - 1;
    let widths: Vec<usize> = (0..padded)
        .map(|c| {
            lines
                .iter()
                .map(|l| l[c].chars().count())
                .max()
                .unwrap_or(0)
        })
        .collect();
    let mut out = String::new();
    for line in lines {
        for (c, cell) in line.iter().enumerate() {
            if c < padded {
                out.push_str(&format!("{cell:<width$}  ", width = widths[c]));
            } else {
                out.push_str(cell);
            }
        }
        out.push('\n');
    }
    out
}

async fn print_status(addr: SocketAddr, json: bool) -> anyhow::Result<()> {
    let url = format!("http://{addr}/status");
    let text = reqwest::get(&url)
        .await
        .with_context(|| format!("no `tributary local` answers at {url}; is it running?"))?
        .error_for_status()?
        .text()
        .await?;
    let rows: Vec<Row> = serde_json::from_str(&text)?;
    if json {
        println!("{}", serde_json::to_string_pretty(&rows)?);
    } else {
        print!("{}", table(&rows));
    }
    Ok(())
}

async fn run_batch_remote(
    addr: SocketAddr,
    name: &str,
    scheduled_time: Option<Timestamp>,
) -> anyhow::Result<()> {
    let mut url = format!("http://{addr}/batch/{name}/run");
    if let Some(time) = scheduled_time {
        url.push_str(&format!("?scheduledTime={time}"));
    }
    let response = reqwest::Client::new()
        .post(&url)
        .timeout(Duration::from_secs(3600))
        .send()
        .await
        .with_context(|| format!("no `tributary local` answers at {url}; is it running?"))?;
    let status = response.status();
    let text = response.text().await?;
    if !status.is_success() {
        bail!("{name}: {text}");
    }
    let outputs: Vec<OutputSummary> = serde_json::from_str(&text)?;
    for output in outputs {
        println!("{}", serde_json::to_string(&output)?);
    }
    Ok(())
}

// ---------------------------------------------------------------------------------------------
// Loading

/// The manifests of `paths`, validated, with their namespace set.
pub fn load(paths: &[PathBuf], namespace: &str) -> anyhow::Result<Vec<Manifest>> {
    let mut files = Vec::new();
    for path in paths {
        if path.is_dir() {
            let mut entries: Vec<PathBuf> = std::fs::read_dir(path)
                .with_context(|| format!("reading {}", path.display()))?
                .filter_map(|e| e.ok().map(|e| e.path()))
                .filter(|p| p.is_file() && p.extension().is_some_and(|e| e == "yaml" || e == "yml"))
                .collect();
            entries.sort();
            files.extend(entries);
        } else {
            files.push(path.clone());
        }
    }
    if files.is_empty() {
        bail!("no manifests: give -f with YAML files or directories holding them");
    }
    let mut manifests = Vec::new();
    let mut problems = Vec::new();
    for file in &files {
        let text =
            std::fs::read_to_string(file).with_context(|| format!("reading {}", file.display()))?;
        for parsed in Manifest::from_yaml(&text) {
            match parsed {
                Err(error) => problems.push(format!("{}: {error}", file.display())),
                Ok(manifest) => {
                    if let Err(invalid) = manifest.validate() {
                        problems.push(format!(
                            "{}: {} {}: {invalid}",
                            file.display(),
                            manifest.kind(),
                            manifest.name().unwrap_or("(no name)")
                        ));
                    } else {
                        manifests.push(with_namespace(manifest, namespace));
                    }
                }
            }
        }
    }
    if !problems.is_empty() {
        bail!("invalid manifests:\n  {}", problems.join("\n  "));
    }
    Ok(manifests)
}

fn with_namespace(mut manifest: Manifest, namespace: &str) -> Manifest {
    let meta = match &mut manifest {
        Manifest::KafkaCluster(o) => &mut o.metadata,
        Manifest::Topic(o) => &mut o.metadata,
        Manifest::Stream(o) => &mut o.metadata,
        Manifest::Sink(o) => &mut o.metadata,
        Manifest::BatchJob(o) => &mut o.metadata,
    };
    if meta.namespace.is_none() {
        meta.namespace = Some(namespace.to_owned());
    }
    manifest
}

/// The objects of one kind, by `namespace/name`.
struct Objects {
    clusters: BTreeMap<String, KafkaCluster>,
    topics: BTreeMap<String, Topic>,
    sinks: Vec<Sink>,
    batch_jobs: Vec<BatchJob>,
    streams: Vec<Stream>,
}

fn key(namespace: Option<String>, name: &str) -> String {
    format!("{}/{name}", namespace.unwrap_or_default())
}

fn sort(manifests: Vec<Manifest>) -> Objects {
    let mut objects = Objects {
        clusters: BTreeMap::new(),
        topics: BTreeMap::new(),
        sinks: Vec::new(),
        batch_jobs: Vec::new(),
        streams: Vec::new(),
    };
    for manifest in manifests {
        match manifest {
            Manifest::KafkaCluster(c) => {
                objects
                    .clusters
                    .insert(key(c.namespace(), &c.name_any()), c);
            }
            Manifest::Topic(t) => {
                objects.topics.insert(key(t.namespace(), &t.name_any()), t);
            }
            Manifest::Stream(s) => objects.streams.push(s),
            Manifest::Sink(s) => objects.sinks.push(s),
            Manifest::BatchJob(b) => objects.batch_jobs.push(b),
        }
    }
    objects
}

/// The lake directory `--lake` asks for, or the default one when nothing points at S3.
fn lake_dir(lake: Option<&str>) -> anyhow::Result<Option<PathBuf>> {
    let dir = match lake {
        Some("s3") => return Ok(None),
        Some(dir) => PathBuf::from(dir),
        None => {
            let configured = |name: &str| std::env::var(name).is_ok_and(|v| !v.is_empty());
            let s3 = [
                "AWS_ENDPOINT_URL",
                "AWS_ENDPOINT_URL_S3",
                "AWS_ACCESS_KEY_ID",
                "AWS_PROFILE",
                "AWS_WEB_IDENTITY_TOKEN_FILE",
            ]
            .into_iter()
            .any(configured);
            if s3 {
                return Ok(None);
            }
            let cache = std::env::var_os("TRIBUTARY_CACHE")
                .map(PathBuf::from)
                .or_else(|| {
                    std::env::var_os("HOME").map(|h| PathBuf::from(h).join(".cache/tributary"))
                })
                .context(
                    "no HOME or TRIBUTARY_CACHE for the default lake directory; give --lake DIR",
                )?;
            cache.join("lake")
        }
    };
    std::fs::create_dir_all(&dir)
        .with_context(|| format!("creating the lake {}", dir.display()))?;
    Ok(Some(dir.canonicalize()?))
}

/// `s3://bucket/key` as a `file://` URL under the lake directory `dir`; other URLs unchanged.
fn in_dir(url: &str, dir: &Path) -> String {
    match url.strip_prefix("s3://") {
        Some(rest) => format!("file://{}/{rest}", dir.display()),
        None => url.to_owned(),
    }
}

/// The manifests with the lake in `dir`: the Sinks' destinations and the BatchJobs' inputs and
/// outputs. A file destination keeps its dead letters under it (keys are relative to it), so a
/// dead-letter prefix given relative to the bucket becomes relative to the destination: the
/// destination's own part of it is dropped (`raw/pin/_dead_letter` of `raw/pin/` is
/// `_dead_letter`), one outside it is kept as it is. Batch inputs read only the files of a
/// directory and its `key=value` subdirectories, so dead letters there are never read as data.
fn localize(objects: &mut Objects, dir: &Path) {
    for sink in &mut objects.sinks {
        let url = &sink.spec.destination.url;
        if let Some(prefix) = url
            .strip_prefix("s3://")
            .and_then(|rest| rest.split_once('/'))
        {
            let prefix = prefix.1.trim_matches('/').to_owned();
            if let Some(dead) = &mut sink.spec.dead_letter.prefix {
                let trimmed = dead.trim_matches('/');
                *dead = match trimmed.strip_prefix(&format!("{prefix}/")) {
                    Some(inside) if !prefix.is_empty() => inside.to_owned(),
                    _ => trimmed.to_owned(),
                };
            }
        }
        sink.spec.destination.url = in_dir(&sink.spec.destination.url, dir);
    }
    for batch_job in &mut objects.batch_jobs {
        for input in &mut batch_job.spec.inputs {
            input.url = in_dir(&input.url, dir);
        }
        for output in batch_job
            .spec
            .steps
            .iter_mut()
            .filter_map(|s| s.output.as_mut())
        {
            output.url = in_dir(&output.url, dir);
        }
    }
}

/// How to reach `cluster`: `--kafka-bootstrap`, else its external bootstrap servers.
fn connection(cluster: &KafkaCluster, bootstrap: Option<&str>) -> anyhow::Result<KafkaConnection> {
    if let Some(bootstrap) = bootstrap {
        return Ok(KafkaConnection::plaintext(bootstrap));
    }
    let Some(external) = &cluster.spec.external else {
        bail!(
            "KafkaCluster {} is an Amazon MSK cluster: local mode does not provision MSK; \
             give --kafka-bootstrap HOST:PORT to run its Topics on a broker of yours",
            cluster.name_any()
        );
    };
    tributary_workers::sink::config::KafkaEndpoint {
        bootstrap_servers: external.bootstrap_servers.join(","),
        tls: external.tls.is_some(),
        sasl_mechanism: external.sasl.as_ref().map(|s| s.mechanism),
    }
    .connection(|name| std::env::var(name).ok())
    .with_context(|| format!("KafkaCluster {}", cluster.name_any()))
}

/// What a Sink reads, among the manifests.
enum SinkSource<'a> {
    Topic(&'a Topic),
    Stream(&'a Stream),
}

/// The Topic or Stream `sink` reads, which must be among the manifests.
fn sink_source<'a>(objects: &'a Objects, sink: &Sink) -> anyhow::Result<SinkSource<'a>> {
    let name = sink.name_any();
    if let Some((namespace, stream)) = stream_key(sink) {
        let wanted = key(Some(namespace), &stream);
        return objects
            .streams
            .iter()
            .find(|s| key(s.namespace(), &s.name_any()) == wanted)
            .map(SinkSource::Stream)
            .with_context(|| {
                format!("Sink {name} reads the Stream {stream}, which is not among the manifests")
            });
    }
    let (namespace, topic) = topic_key(sink).unwrap_or_default();
    objects
        .topics
        .get(&key(Some(namespace), &topic))
        .map(SinkSource::Topic)
        .with_context(|| {
            format!("Sink {name} reads the Topic {topic}, which is not among the manifests")
        })
}

/// The cluster `topic` is on, local to it by namespace.
fn cluster_of<'a>(objects: &'a Objects, topic: &Topic) -> anyhow::Result<&'a KafkaCluster> {
    let cluster = &topic.spec.cluster_ref.name;
    objects
        .clusters
        .get(&key(topic.namespace(), cluster))
        .with_context(|| {
            format!(
                "Topic {} names the KafkaCluster {cluster}, which is not among the manifests",
                topic.name_any()
            )
        })
}

// ---------------------------------------------------------------------------------------------
// Running

/// A request to run a BatchJob now, answered with its outputs or its error.
type RunRequest = (
    Timestamp,
    oneshot::Sender<Result<Vec<OutputSummary>, String>>,
);

#[derive(Clone)]
struct Api {
    rows: Rows,
    batch: Arc<BTreeMap<String, mpsc::Sender<RunRequest>>>,
}

async fn run(args: RunArgs, shutdown: impl Future<Output = ()>) -> anyhow::Result<()> {
    if args.files.is_empty() {
        bail!(
            "give the manifests with -f FILE|DIR (e.g. `tributary local -f examples/pinterest/`)"
        );
    }
    let mut objects = sort(load(&args.files, &args.namespace)?);
    if let Some(dir) = lake_dir(args.lake.as_deref())? {
        eprintln!(
            "tributary local: the data lake is the directory {} (s3://bucket/key is \
             {}/bucket/key); --lake s3 uses S3",
            dir.display(),
            dir.display()
        );
        localize(&mut objects, &dir);
    }
    let rows: Rows = Arc::default();
    let (stop, stopped) = watch::channel(false);
    let admins = RdKafkaAdmins::default();
    let bootstrap = args.kafka_bootstrap.as_deref();

    // Streams: created and brought to their spec with the Stream controller's plan and client;
    // with --fresh, deleted first.
    if !objects.streams.is_empty() {
        let kinesis = AwsKinesis::new(AwsOptions::default());
        if args.fresh {
            delete_streams(&kinesis, &objects.streams).await?;
        }
        for stream in &objects.streams {
            let message = provision_stream(&kinesis, stream)
                .await
                .with_context(|| format!("Stream {}", stream.name_any()))?;
            set(
                &rows,
                Row {
                    kind: "Stream".into(),
                    name: stream.name_any(),
                    ready: true,
                    message,
                    ..Row::default()
                },
            );
        }
    }

    // KafkaClusters: a metadata request each.
    let mut connections = BTreeMap::new();
    for (cluster_key, cluster) in &objects.clusters {
        let connection = connection(cluster, bootstrap)?;
        let admin = admins.admin(&connection)?;
        let brokers = admin.broker_count().await.with_context(|| {
            format!(
                "KafkaCluster {}: no answer from {}",
                cluster.name_any(),
                connection.bootstrap_servers
            )
        })?;
        set(
            &rows,
            Row {
                kind: "KafkaCluster".into(),
                name: cluster.name_any(),
                ready: true,
                message: format!("{brokers} broker(s) at {}", connection.bootstrap_servers),
                ..Row::default()
            },
        );
        connections.insert(cluster_key.clone(), (connection, admin));
    }

    if args.fresh {
        fresh(&objects, &connections).await?;
    }

    // Topics: created, or their partitions raised, as the Topic controller does.
    for topic in objects.topics.values() {
        let cluster = cluster_of(&objects, topic)?;
        let (_, admin) = &connections[&key(cluster.namespace(), &cluster.name_any())];
        let message = provision_topic(admin.as_ref(), topic)
            .await
            .with_context(|| format!("Topic {}", topic.name_any()))?;
        set(
            &rows,
            Row {
                kind: "Topic".into(),
                name: topic.name_any(),
                ready: true,
                message,
                ..Row::default()
            },
        );
    }

    // Sinks: bucket, configuration, worker.
    let buckets = S3Buckets::new(AwsOptions::default());
    let mut tasks = tokio::task::JoinSet::new();
    for sink in &objects.sinks {
        let name = sink.name_any();
        let destination =
            sink_validate::validate(sink).map_err(|e| anyhow::anyhow!("Sink {name}: {e}"))?;
        // The source, resolved as the Sink controller resolves it: a Topic on its cluster
        // (whose consumer group gives the lag), or a Stream.
        let (mut resolved, admin) = match sink_source(&objects, sink)? {
            SinkSource::Topic(topic) => {
                let cluster = cluster_of(&objects, topic)?;
                let (connection, admin) =
                    &connections[&key(cluster.namespace(), &cluster.name_any())];
                let mut resolved = sink_resolve::resolve(sink, topic, cluster, &destination)
                    .map_err(|e| anyhow::anyhow!("Sink {name}: {e}"))?;
                if bootstrap.is_some() {
                    resolved.config.kafka.bootstrap_servers = connection.bootstrap_servers.clone();
                    resolved.config.kafka.tls = false;
                    resolved.config.kafka.sasl_mechanism = None;
                }
                (resolved, Some(admin.clone()))
            }
            SinkSource::Stream(stream) => (
                sink_resolve::resolve_stream(sink, stream, &destination, None),
                None,
            ),
        };
        if let Some(bucket) = &destination.bucket {
            buckets
                .ensure_bucket(None, bucket, sink.spec.destination.create_bucket)
                .await
                .map_err(|e| anyhow::anyhow!("Sink {name}: {e}"))?;
        }
        if args.fresh && admin.is_some() {
            resolved.config.consumer_group = format!(
                "{}-fresh-{}",
                resolved.config.consumer_group,
                Timestamp::now().as_second()
            );
        }
        let group = resolved.config.consumer_group.clone();
        let kafka_topic = resolved.config.topic.clone();
        let source_name = resolved.config.source_name().to_owned();
        let metrics = Arc::new(tributary_workers::sink::metrics::SinkMetrics::default());
        let worker = tributary_workers::sink::worker::Sink::new(resolved.config, metrics.clone())
            .map_err(|e| anyhow::anyhow!("Sink {name}: {e}"))?;
        set(
            &rows,
            Row {
                kind: "Sink".into(),
                name: name.clone(),
                ready: true,
                source: Some(source_label(sink)),
                message: match admin {
                    Some(_) => format!("{source_name} → {}", sink.spec.destination.url),
                    None => format!("stream {source_name} → {}", sink.spec.destination.url),
                },
                ..Row::default()
            },
        );
        let instance = format!("local-{name}");
        let mut stopped_sink = stopped.clone();
        let sink_rows = rows.clone();
        let sink_name = name.clone();
        tasks.spawn(async move {
            let result = worker
                .run(
                    move |var| {
                        // As a pod's name: the Kafka group member, and the owner of the
                        // Kinesis shard leases, so a restart takes them back at once.
                        if var == tributary_workers::sink::config::ENV_GROUP_INSTANCE_ID
                            || var == tributary_workers::sink::config::ENV_WORKER_ID
                        {
                            Some(instance.clone())
                        } else {
                            std::env::var(var).ok()
                        }
                    },
                    async move {
                        let _ = stopped_sink.wait_for(|s| *s).await;
                    },
                )
                .await;
            if let Err(error) = &result {
                update(&sink_rows, "Sink", &sink_name, |row| {
                    row.ready = false;
                    row.message = format!("stopped: {error}");
                });
            }
            result.map_err(|e| anyhow::anyhow!("Sink {sink_name}: {e}"))
        });
        // What the worker wrote, from its counters; the lag and the last commit of a Topic
        // source from its consumer group. A Stream source has no consumer group, so no lag
        // (decision 0042); its last flush comes from the worker.
        let status_rows = rows.clone();
        let mut stopped_status = stopped.clone();
        tokio::spawn(async move {
            loop {
                let written = metrics.records_out.get() + metrics.dead_letters.get();
                let lag = match &admin {
                    Some(admin) => admin.group_lag(&group, &kafka_topic).await.ok(),
                    None => None,
                };
                update(&status_rows, "Sink", &name, |row| {
                    row.written = Some(written);
                    if let Some(lag) = lag {
                        row.lag = Some(lag.total_lag);
                        row.last = lag.last_commit_time.map(|t| t.to_string());
                    } else if admin.is_none() {
                        row.last = metrics.last_flush().map(|t| t.to_string());
                    }
                });
                tokio::select! {
                    _ = tokio::time::sleep(Duration::from_secs(2)) => {}
                    _ = stopped_status.wait_for(|s| *s) => return,
                }
            }
        });
    }

    // The gateway, for the Topics of the (one) cluster.
    if args.gateway_listen != "off" && !objects.topics.is_empty() {
        let listen: SocketAddr = args
            .gateway_listen
            .parse()
            .with_context(|| format!("--gateway-listen {}", args.gateway_listen))?;
        if connections.len() > 1 {
            bail!(
                "the local gateway serves one KafkaCluster; the manifests have {}",
                connections.len()
            );
        }
        let (connection, _) = connections.values().next().expect("a cluster");
        let gateway = gateway(connection, &objects, listen).await?;
        let mut stopped_gateway = stopped.clone();
        tasks.spawn(async move {
            gateway
                .serve(
                    tokio::net::TcpListener::bind(listen)
                        .await
                        .with_context(|| format!("the gateway listening on {listen}"))?,
                    None,
                    async move {
                        let _ = stopped_gateway.wait_for(|s| *s).await;
                    },
                )
                .await
                .context("the gateway")
        });
        set(
            &rows,
            Row {
                kind: "Gateway".into(),
                name: format!("http://{listen}"),
                ready: true,
                message: format!(
                    "serves {} topic(s), {} stream(s)",
                    objects.topics.len(),
                    objects.streams.len()
                ),
                ..Row::default()
            },
        );
    }

    // BatchJobs: one task each, on its schedule, and on request.
    let mut batch = BTreeMap::new();
    for batch_job in &objects.batch_jobs {
        let name = batch_job.name_any();
        let validated = batch_validate::validate(batch_job)
            .await
            .map_err(|e| anyhow::anyhow!("BatchJob {name}: {e}"))?;
        let config = batch_build::worker_config(batch_job);
        let (requests, receiver) = mpsc::channel::<RunRequest>(8);
        if args.run_batch_now {
            let (answer, _) = oneshot::channel();
            let _ = requests.try_send((Timestamp::now(), answer));
        }
        batch.insert(name.clone(), requests);
        set(
            &rows,
            Row {
                kind: "BatchJob".into(),
                name: name.clone(),
                ready: true,
                message: next_message(&validated.schedule),
                ..Row::default()
            },
        );
        tokio::spawn(batch_loop(
            name,
            config,
            validated.schedule,
            receiver,
            rows.clone(),
            stopped.clone(),
        ));
    }

    // The status API and table.
    let api = Api {
        rows: rows.clone(),
        batch: Arc::new(batch),
    };
    let listener = tokio::net::TcpListener::bind(args.status_addr)
        .await
        .with_context(|| format!("the status API listening on {}", args.status_addr))?;
    let router = axum::Router::new()
        .route("/status", get(status))
        .route("/batch/{name}/run", post(run_batch))
        .with_state(api);
    let mut stopped_api = stopped.clone();
    tokio::spawn(async move {
        let _ = axum::serve(listener, router)
            .with_graceful_shutdown(async move {
                let _ = stopped_api.wait_for(|s| *s).await;
            })
            .await;
    });
    eprintln!(
        "tributary local: running; `tributary local status` (or GET http://{}/status) shows this table",
        args.status_addr
    );
    let printer_rows = rows.clone();
    let mut stopped_printer = stopped.clone();
    let live = std::io::IsTerminal::is_terminal(&std::io::stderr());
    tokio::spawn(async move {
        let mut last = String::new();
        loop {
            let now = table(&snapshot(&printer_rows));
            if now != last {
                // On a terminal the table is redrawn in place (cursor up over the last one,
                // clear to the end); in a log it is printed again when it changed.
                if live && !last.is_empty() {
                    eprint!("\x1b[{}A\x1b[J", last.lines().count());
                } else if !last.is_empty() {
                    eprintln!();
                }
                eprint!("{now}");
                last = now;
            }
            tokio::select! {
                _ = tokio::time::sleep(Duration::from_secs(if live { 1 } else { 5 })) => {}
                _ = stopped_printer.wait_for(|s| *s) => return,
            }
        }
    });

    let failed = tokio::select! {
        () = shutdown => None,
        Some(result) = tasks.join_next() => Some(result),
    };
    eprintln!("tributary local: stopping (sinks flush, the gateway answers what is in flight)");
    let _ = stop.send(true);
    let mut first_error = match failed {
        Some(Ok(Err(error))) => Some(error),
        Some(Err(panic)) => Some(anyhow::anyhow!("a task failed: {panic}")),
        _ => None,
    };
    while let Some(result) = tasks.join_next().await {
        if let Ok(Err(error)) = result {
            first_error.get_or_insert(error);
        }
    }
    match first_error {
        Some(error) => Err(error),
        None => Ok(()),
    }
}

/// `--fresh`, for the manifests' Streams: each Kinesis stream deleted, and gone (at most 60 s),
/// so that it is created again empty.
async fn delete_streams(kinesis: &dyn Kinesis, streams: &[Stream]) -> anyhow::Result<()> {
    for stream in streams {
        let (region, name) = (stream.spec.region.as_deref(), stream.kinesis_name());
        kinesis
            .delete(region, name)
            .await
            .with_context(|| format!("--fresh: deleting stream {name}"))?;
        let mut gone = false;
        for _ in 0..120 {
            if kinesis.describe(region, name).await?.is_none() {
                gone = true;
                break;
            }
            tokio::time::sleep(Duration::from_millis(500)).await;
        }
        if !gone {
            bail!("--fresh: Kinesis still lists stream {name} 60 s after deleting it");
        }
        eprintln!("tributary local: --fresh deleted stream {name}");
    }
    Ok(())
}

/// `--fresh`: the manifests' topics, consumer groups and lake objects deleted.
async fn fresh(
    objects: &Objects,
    connections: &BTreeMap<String, (KafkaConnection, Arc<dyn KafkaAdmin>)>,
) -> anyhow::Result<()> {
    let admin_of = |topic: &Topic| -> anyhow::Result<Arc<dyn KafkaAdmin>> {
        let cluster = cluster_of(objects, topic)?;
        Ok(connections[&key(cluster.namespace(), &cluster.name_any())]
            .1
            .clone())
    };
    for topic in objects.topics.values() {
        let admin = admin_of(topic)?;
        let name = topic.kafka_name();
        admin.delete_topic(name).await?;
        let mut gone = false;
        for _ in 0..60 {
            if admin.describe_topic(name).await?.is_none() {
                gone = true;
                break;
            }
            tokio::time::sleep(Duration::from_millis(500)).await;
        }
        if !gone {
            bail!("--fresh: the broker still lists topic {name} 30 s after deleting it");
        }
    }
    let mut prefixes = Vec::new();
    let mut dirs = Vec::new();
    for sink in &objects.sinks {
        let destination = sink_validate::validate(sink)
            .map_err(|e| anyhow::anyhow!("Sink {}: {e}", sink.name_any()))?;
        match destination.bucket {
            Some(bucket) => {
                prefixes.push((bucket.clone(), destination.prefix));
                prefixes.push((bucket, destination.dead_letter_prefix));
                // A Stream Sink's shard leases: the streams are created again, with the same
                // shard ids, and a lease left `finished` would keep a new shard unread.
                if let Ok(SinkSource::Stream(_)) = sink_source(objects, sink)
                    && let Some(leases) = LeaseSettings::for_sink(
                        &sink.spec.destination.url,
                        &format!(
                            "{}/{}",
                            sink.namespace().unwrap_or_default(),
                            sink.name_any()
                        ),
                    )
                    && let Some((bucket, prefix)) = leases
                        .url
                        .strip_prefix("s3://")
                        .and_then(|rest| rest.split_once('/'))
                {
                    prefixes.push((bucket.to_owned(), prefix.to_owned()));
                }
            }
            None => dirs.push(sink.spec.destination.url.clone()),
        }
    }
    for batch_job in &objects.batch_jobs {
        for output in batch_job
            .spec
            .steps
            .iter()
            .filter_map(|s| s.output.as_ref())
        {
            if let Some((bucket, prefix)) = output
                .url
                .strip_prefix("s3://")
                .and_then(|rest| rest.split_once('/'))
            {
                prefixes.push((bucket.to_owned(), prefix.trim_matches('/').to_owned()));
            } else {
                dirs.push(output.url.clone());
            }
        }
    }
    for url in dirs {
        if let Some(path) = url.strip_prefix("file://").map(PathBuf::from)
            && path.exists()
        {
            std::fs::remove_dir_all(&path)
                .with_context(|| format!("--fresh: deleting {}", path.display()))?;
            eprintln!("tributary local: --fresh deleted {}", path.display());
        }
    }
    if prefixes.is_empty() {
        return Ok(());
    }
    let s3 = tributary_workers::connect::s3(
        &tributary_workers::connect::aws_config(&AwsOptions::default()).await,
    );
    for (bucket, prefix) in prefixes {
        let deleted = delete_prefix(&s3, &bucket, &prefix).await?;
        if deleted > 0 {
            eprintln!(
                "tributary local: --fresh deleted {deleted} object(s) under s3://{bucket}/{prefix}/"
            );
        }
    }
    Ok(())
}

/// Delete every object under `prefix/` (the whole bucket for an empty prefix); a missing
/// bucket has none.
async fn delete_prefix(
    s3: &aws_sdk_s3::Client,
    bucket: &str,
    prefix: &str,
) -> anyhow::Result<usize> {
    let prefix = if prefix.is_empty() {
        String::new()
    } else {
        format!("{prefix}/")
    };
    let mut deleted = 0;
    loop {
        let listed = match s3
            .list_objects_v2()
            .bucket(bucket)
            .prefix(&prefix)
            .send()
            .await
        {
            Ok(listed) => listed,
            Err(error)
                if error
                    .as_service_error()
                    .is_some_and(|e| e.is_no_such_bucket()) =>
            {
                return Ok(deleted);
            }
            Err(error) => {
                return Err(anyhow::anyhow!(
                    "listing s3://{bucket}/{prefix}: {}",
                    aws_sdk_s3::error::DisplayErrorContext(&error)
                ));
            }
        };
        let keys: Vec<_> = listed
            .contents()
            .iter()
            .filter_map(|o| o.key())
            .filter_map(|k| {
                aws_sdk_s3::types::ObjectIdentifier::builder()
                    .key(k)
                    .build()
                    .ok()
            })
            .collect();
        if keys.is_empty() {
            return Ok(deleted);
        }
        deleted += keys.len();
        let delete = aws_sdk_s3::types::Delete::builder()
            .set_objects(Some(keys))
            .build()?;
        s3.delete_objects()
            .bucket(bucket)
            .delete(delete)
            .send()
            .await
            .map_err(|e| {
                anyhow::anyhow!(
                    "deleting under s3://{bucket}/{prefix}: {}",
                    aws_sdk_s3::error::DisplayErrorContext(&e)
                )
            })?;
    }
}

/// Create `topic` on the broker, or raise its partitions, as the Topic controller does.
async fn provision_topic(admin: &dyn KafkaAdmin, topic: &Topic) -> anyhow::Result<String> {
    let desired = Desired::from_topic(topic);
    match admin.describe_topic(&desired.name).await? {
        None => {
            admin
                .create_topic(
                    &desired.name,
                    desired.partitions,
                    desired.replication_factor,
                    &desired.configs,
                )
                .await?;
            Ok(format!(
                "created {} ({} partitions)",
                desired.name, desired.partitions
            ))
        }
        Some(state) if state.partitions < desired.partitions => {
            admin
                .create_partitions(&desired.name, desired.partitions)
                .await?;
            Ok(format!(
                "{}: partitions raised to {}",
                desired.name, desired.partitions
            ))
        }
        Some(state) => Ok(format!(
            "{} exists ({} partitions)",
            desired.name, state.partitions
        )),
    }
}

/// Bring the Kinesis stream of `stream` to its spec as the Stream controller does — the same plan,
/// one change at a time while the stream is ACTIVE — waiting here instead of requeueing; at
/// most 5 minutes.
async fn provision_stream(kinesis: &dyn Kinesis, stream: &Stream) -> anyhow::Result<String> {
    let region = stream.spec.region.as_deref();
    let desired = stream_plan::Desired::from_stream(stream);
    let name = desired.name.as_str();
    let deadline = tokio::time::Instant::now() + Duration::from_secs(300);
    let (mut created, mut changes) = (false, 0);
    loop {
        let observed = kinesis.describe(region, name).await?;
        let tags = match &observed {
            Some(found) if found.is_active() => kinesis.tags(region, name).await?,
            _ => Default::default(),
        };
        match (
            stream_plan::plan(&desired, observed.as_ref(), &tags),
            &observed,
        ) {
            (Step::InSync, Some(found)) => {
                let done = if created { "created" } else { "in sync" };
                return Ok(format!(
                    "{name} {done}, {changes} change(s): {} open shard(s), {} h retention",
                    found.open_shards, found.retention_hours
                ));
            }
            (Step::Create, _) => {
                kinesis
                    .create(
                        region,
                        name,
                        desired.mode,
                        desired.shard_count,
                        &desired.tags,
                    )
                    .await?;
                created = true;
            }
            (Step::Change(change), Some(found)) => {
                kinesis.change(region, found, name, &change).await?;
                changes += 1;
            }
            _ => {}
        }
        if tokio::time::Instant::now() > deadline {
            bail!("Kinesis stream {name} is not ACTIVE and as its spec says after 5 minutes");
        }
        tokio::time::sleep(Duration::from_millis(500)).await;
    }
}

async fn gateway(
    connection: &KafkaConnection,
    objects: &Objects,
    listen: SocketAddr,
) -> anyhow::Result<tributary_workers::gateway::server::Gateway> {
    use tributary_workers::gateway::auth::{Authenticator, ENV_API_KEYS, KeySource};
    use tributary_workers::gateway::config::GatewayConfig;
    use tributary_workers::gateway::kinesis::{KinesisApi, KinesisWriter};
    use tributary_workers::gateway::metrics::GatewayMetrics;
    use tributary_workers::gateway::producer::{GatewayProducer, client_config};
    use tributary_workers::gateway::served::AllowList;
    use tributary_workers::gateway::server::{Admission, Gateway};

    let config = GatewayConfig::default();
    let keys = KeySource {
        file: None,
        inline: std::env::var(ENV_API_KEYS).ok(),
    }
    .load()?;
    if keys.is_empty() {
        eprintln!(
            "tributary local: the gateway on {listen} takes requests without an API key \
             (set {ENV_API_KEYS} to require one)"
        );
    }
    let metrics = Arc::new(GatewayMetrics::default());
    let producer = GatewayProducer::new(
        &client_config(connection, &config)?,
        &config,
        metrics.clone(),
    )?;
    let kinesis = KinesisWriter::new(
        Arc::new(KinesisApi::from_config(
            &tributary_workers::connect::aws_config(&AwsOptions::default()).await,
        )),
        config.kinesis_retry_for,
        metrics.clone(),
    );
    let topics: Vec<&str> = objects.topics.values().map(Topic::kafka_name).collect();
    let admission = Admission {
        config,
        topics: AllowList::fixed(topics),
        streams: AllowList::fixed(objects.streams.iter().map(Stream::kinesis_name)),
        auth: Arc::new(Authenticator::new(keys)),
    };
    Ok(Gateway::new(admission, producer, kinesis, metrics))
}

fn next_message(schedule: &tributary_operator::batch_job::schedule::Schedule) -> String {
    match schedule.next_after(Timestamp::now()) {
        Ok(Some(next)) => format!("next run {next}"),
        _ => "no next run".into(),
    }
}

async fn batch_loop(
    name: String,
    config: BatchWorkerConfig,
    schedule: tributary_operator::batch_job::schedule::Schedule,
    mut requests: mpsc::Receiver<RunRequest>,
    rows: Rows,
    mut stopped: watch::Receiver<bool>,
) {
    loop {
        let next = schedule.next_after(Timestamp::now()).ok().flatten();
        let wait = next
            .map(|n| n.duration_since(Timestamp::now()).unsigned_abs())
            .unwrap_or(Duration::from_secs(86_400));
        let (scheduled, answer) = tokio::select! {
            _ = stopped.wait_for(|s| *s) => return,
            Some(request) = requests.recv() => (request.0, Some(request.1)),
            () = tokio::time::sleep(wait) => match next {
                Some(next) => (next, None),
                None => continue,
            },
        };
        update(&rows, "BatchJob", &name, |row| {
            row.message = format!("running the run of {scheduled}");
        });
        let result = tributary_workers::batch::run(&config, scheduled)
            .await
            .map_err(|e| e.to_string());
        update(&rows, "BatchJob", &name, |row| {
            row.last = Some(Timestamp::now().to_string());
            match &result {
                Ok(outputs) => {
                    row.ready = true;
                    let written: i64 = outputs.iter().map(|o| o.rows).sum();
                    row.message = format!(
                        "run of {scheduled} wrote {written} rows in {} output(s); {}",
                        outputs.len(),
                        next_message(&schedule)
                    );
                }
                Err(error) => {
                    row.ready = false;
                    row.message = format!("run of {scheduled} failed: {error}");
                }
            }
        });
        if let Some(answer) = answer {
            let _ = answer.send(result);
        }
    }
}

fn snapshot(rows: &Rows) -> Vec<Row> {
    rows.lock()
        .expect("status lock")
        .values()
        .cloned()
        .collect()
}

async fn status(State(api): State<Api>) -> Json<Vec<Row>> {
    Json(snapshot(&api.rows))
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct RunQuery {
    scheduled_time: Option<Timestamp>,
}

async fn run_batch(
    State(api): State<Api>,
    UrlPath(name): UrlPath<String>,
    Query(query): Query<RunQuery>,
) -> Result<Json<Vec<OutputSummary>>, (StatusCode, String)> {
    let Some(requests) = api.batch.get(&name) else {
        return Err((
            StatusCode::NOT_FOUND,
            format!(
                "no BatchJob {name}; the BatchJobs are: {}",
                api.batch.keys().cloned().collect::<Vec<_>>().join(", ")
            ),
        ));
    };
    let (answer, answered) = oneshot::channel();
    requests
        .send((query.scheduled_time.unwrap_or_else(Timestamp::now), answer))
        .await
        .map_err(|_| (StatusCode::SERVICE_UNAVAILABLE, "stopping".to_owned()))?;
    match answered.await {
        Ok(Ok(outputs)) => Ok(Json(outputs)),
        Ok(Err(error)) => Err((StatusCode::INTERNAL_SERVER_ERROR, error)),
        Err(_) => Err((StatusCode::SERVICE_UNAVAILABLE, "stopping".to_owned())),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_table_lines_up() {
        let rows = vec![
            Row {
                kind: "Sink".into(),
                name: "pin-raw".into(),
                ready: true,
                source: Some("topic/pin".into()),
                lag: Some(0),
                written: Some(1200),
                last: Some("2026-11-29T04:00:00Z".into()),
                message: "pin → s3://lake/raw/pin/".into(),
            },
            Row {
                kind: "Topic".into(),
                name: "pin".into(),
                ready: true,
                source: None,
                lag: None,
                written: None,
                last: None,
                message: "created".into(),
            },
        ];
        let text = table(&rows);
        let lines: Vec<&str> = text.lines().collect();
        assert_eq!(lines.len(), 3);
        assert_eq!(
            lines,
            [
                "KIND   NAME     READY  LAG  WRITTEN  LAST FLUSH/RUN        MESSAGE",
                "Sink   pin-raw  True   0    1200     2026-11-29T04:00:00Z  pin → s3://lake/raw/pin/",
                "Topic  pin      True   -    -        -                     created",
            ]
        );
    }

    #[test]
    fn a_sink_reads_a_topic_or_a_stream_among_the_manifests() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(
            dir.path().join("pipeline.yaml"),
            r#"
apiVersion: tributary.dev/v1alpha1
kind: Stream
metadata: {name: pin}
spec: {streamName: pinterest-pin}
---
apiVersion: tributary.dev/v1alpha1
kind: Sink
metadata: {name: from-stream}
spec:
  source: {streamRef: {name: pin}}
  destination: {url: s3://lake/pin/}
---
apiVersion: tributary.dev/v1alpha1
kind: Sink
metadata: {name: from-nowhere}
spec:
  source: {streamRef: {name: geo}}
  destination: {url: s3://lake/geo/}
---
apiVersion: tributary.dev/v1alpha1
kind: Sink
metadata: {name: from-topic}
spec:
  source: {topicRef: {name: pin}}
  destination: {url: s3://lake/raw/}
"#,
        )
        .unwrap();
        let objects = sort(load(&[dir.path().to_path_buf()], "default").unwrap());
        let sink = |name: &str| objects.sinks.iter().find(|s| s.name_any() == name).unwrap();
        let Ok(SinkSource::Stream(stream)) = sink_source(&objects, sink("from-stream")) else {
            panic!("the Stream pin");
        };
        let destination = sink_validate::validate(sink("from-stream")).unwrap();
        let config =
            sink_resolve::resolve_stream(sink("from-stream"), stream, &destination, None).config;
        assert_eq!(config.source_name(), "pinterest-pin");
        assert_eq!(source_label(sink("from-stream")), "stream/pin");

        let missing = sink_source(&objects, sink("from-nowhere")).err().unwrap();
        assert_eq!(
            missing.to_string(),
            "Sink from-nowhere reads the Stream geo, which is not among the manifests"
        );
        let missing = sink_source(&objects, sink("from-topic")).err().unwrap();
        assert_eq!(
            missing.to_string(),
            "Sink from-topic reads the Topic pin, which is not among the manifests"
        );
    }

    #[test]
    fn a_lake_directory_takes_the_place_of_the_buckets() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(
            dir.path().join("pipeline.yaml"),
            r#"
apiVersion: tributary.dev/v1alpha1
kind: Sink
metadata: {name: inside}
spec:
  source: {topicRef: {name: pin}}
  destination: {url: s3://lake/raw/pin/}
  deadLetter: {prefix: raw/pin/_bad/}
---
apiVersion: tributary.dev/v1alpha1
kind: Sink
metadata: {name: outside}
spec:
  source: {topicRef: {name: pin}}
  destination: {url: s3://lake/raw/pin}
  deadLetter: {prefix: dead-letter/pin/}
---
apiVersion: tributary.dev/v1alpha1
kind: BatchJob
metadata: {name: job}
spec:
  schedule: "0 1 * * *"
  inputs: [{name: raw, url: "s3://lake/raw/pin/"}]
  steps: [{name: out, sql: "SELECT * FROM raw", output: {url: "s3://lake/out/"}}]
"#,
        )
        .unwrap();
        let mut objects = sort(load(&[dir.path().to_path_buf()], "default").unwrap());
        localize(&mut objects, Path::new("/data/lake"));
        let sinks: Vec<(&str, Option<&str>)> = objects
            .sinks
            .iter()
            .map(|s| {
                (
                    s.spec.destination.url.as_str(),
                    s.spec.dead_letter.prefix.as_deref(),
                )
            })
            .collect();
        assert_eq!(
            sinks,
            [
                ("file:///data/lake/lake/raw/pin/", Some("_bad")),
                ("file:///data/lake/lake/raw/pin", Some("dead-letter/pin")),
            ]
        );
        let job = &objects.batch_jobs[0].spec;
        assert_eq!(job.inputs[0].url, "file:///data/lake/lake/raw/pin/");
        assert_eq!(
            job.steps[0].output.as_ref().unwrap().url,
            "file:///data/lake/lake/out/"
        );
        assert_eq!(in_dir("file:///x/", Path::new("/data")), "file:///x/");
        let explicit = lake_dir(Some(dir.path().join("lake").to_str().unwrap())).unwrap();
        assert!(explicit.is_some_and(|d| d.is_dir()));
        assert_eq!(lake_dir(Some("s3")).unwrap(), None);
    }

    #[test]
    fn manifests_are_validated_with_the_file_named() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(
            dir.path().join("bad.yaml"),
            "apiVersion: tributary.dev/v1alpha1\nkind: Topic\nmetadata: {name: t}\nspec: {partitions: 3}\n",
        )
        .unwrap();
        let error = load(&[dir.path().to_path_buf()], "default")
            .unwrap_err()
            .to_string();
        assert!(
            error.contains("bad.yaml: document 1 (Topic t): missing field `clusterRef`"),
            "{error}"
        );
        assert!(load(&[dir.path().join("none")], "default").is_err());
    }
}
