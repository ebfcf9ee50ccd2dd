//! `tributary`: the one binary. Each subcommand wires one of the libraries.

use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::ExitCode;

use anyhow::Context;
use clap::{Parser, Subcommand};
use tributary_crds::Manifest;

mod local;
mod reference;

#[derive(Parser)]
#[command(
    name = "tributary",
    version,
    about = "Declarative streaming and batch data pipelines on Kubernetes"
)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Print the five CustomResourceDefinitions as YAML, or write one file per kind.
    Crds {
        /// Write `<plural>.yaml` files into this directory (how `crds/yaml/` is regenerated).
        #[arg(long)]
        dir: Option<PathBuf>,
    },
    /// Run the operator: the controllers for every Tributary kind, with leader election.
    Operator(OperatorArgs),
    /// Run a data-plane worker (what the operator's Deployments run).
    #[command(subcommand)]
    Worker(WorkerCommand),
    /// Serve the Kafka REST Proxy v2 produce API (`POST /topics/{topic}`) for the Topics this
    /// gateway may serve, producing with an idempotent producer (acks=all). API keys come from
    /// --api-keys-file and TRIBUTARY_GATEWAY_API_KEYS (comma-separated); SASL credentials from
    /// TRIBUTARY_KAFKA_SASL_USERNAME / _PASSWORD, a CA bundle from TRIBUTARY_KAFKA_CA_PEM.
    Gateway(GatewayArgs),
    /// Generate the Pinterest workload's posts (pin, geo and user records joined on `ind`),
    /// with dirty values and duplicates, the same for the same seed. For now they are written
    /// to files with `--out`; sending them through the gateway comes in a later release.
    Emulate(EmulateArgs),
    /// Check manifests as the API server would (schema and CEL rules), without a cluster.
    /// Objects of other API groups are skipped. Exits non-zero if any object is invalid.
    Validate {
        /// YAML files, or directories searched for `*.yaml` / `*.yml`.
        #[arg(required = true)]
        paths: Vec<PathBuf>,
    },
    /// Run manifests on this machine: topics on the broker, buckets, sink workers, the gateway
    /// and BatchJobs as in-process tasks, with a status table (`tributary local status`).
    Local(local::LocalArgs),
    /// Write the API reference, one Markdown page per kind from the CRDs' descriptions (how
    /// `docs/reference/` is regenerated).
    CrdDocs {
        /// Directory of the pages.
        #[arg(long)]
        dir: PathBuf,
    },
}

#[derive(Subcommand)]
enum WorkerCommand {
    /// Copy a Kafka topic into S3 or a directory, exactly once per record. The configuration
    /// is the JSON document the operator writes for a Sink, in `TRIBUTARY_SINK_CONFIG`.
    Sink(SinkArgs),
    /// Run one scheduled run of a BatchJob's SQL steps, print one JSON summary line per output,
    /// and exit. The configuration is the JSON document the operator writes for a BatchJob, in
    /// `TRIBUTARY_BATCH_CONFIG`.
    Batch(BatchArgs),
}

/// Flags of `tributary emulate`.
#[derive(clap::Args)]
#[command(group(clap::ArgGroup::new("target").required(true).args(["out", "gateway"])))]
struct EmulateArgs {
    /// Write JSON-lines files `DIR/{pin,geo,user}/part-NNNNN.json`; earlier parts there are
    /// replaced.
    #[arg(long, value_name = "DIR")]
    out: Option<PathBuf>,
    /// Send the posts through the gateway at this URL (`http://host:8080`), with the API key
    /// from `TRIBUTARY_GATEWAY_API_KEY` when it is set.
    #[arg(long, value_name = "URL")]
    gateway: Option<String>,
    /// Number of posts (each one pin, one geo and one user record, plus duplicates). Default
    /// 1000, or unbounded with `--duration`.
    #[arg(long, value_parser = at_least_one)]
    count: Option<u64>,
    /// With `--gateway`: stop after this long (`30s`, `5m`), or at `--count`, whichever is first.
    #[arg(long, value_parser = duration)]
    duration: Option<std::time::Duration>,
    /// With `--gateway`: posts per second at most (default: as fast as the gateway answers).
    #[arg(long, value_parser = positive_rate)]
    rate: Option<f64>,
    /// With `--gateway`: posts per request (each table's records of them in one request).
    #[arg(long, default_value_t = 100, value_parser = at_least_one)]
    batch_size: u64,
    /// With `--gateway`: the Kafka topics of the pin, geo and user records, comma-separated.
    /// Default `pin,geo,user` unless only `--streams` is given.
    #[arg(long, value_parser = three_names)]
    topics: Option<[String; 3]>,
    /// With `--gateway`: also (or, without `--topics`, only) put the records into these Kinesis
    /// streams, for pin, geo and user, comma-separated.
    #[arg(long, value_parser = three_names)]
    streams: Option<[String; 3]>,
    /// Seed of the generator: the same seed writes the same bytes.
    #[arg(long, default_value_t = 1)]
    seed: u64,
    /// Probability, per record, that one field holds a dirty value (a placeholder or "").
    #[arg(long, default_value_t = 0.05, value_parser = probability)]
    dirty_rate: f64,
    /// Probability, per record, that it is written twice in a row.
    #[arg(long, default_value_t = 0.01, value_parser = probability)]
    duplicate_rate: f64,
    /// Posts per file before moving on to the next part.
    #[arg(
        long,
        default_value_t = tributary_workers::pinterest::RECORDS_PER_FILE,
        value_parser = at_least_one
    )]
    records_per_file: u64,
}

/// A count flag: a whole number above 0.
fn at_least_one(text: &str) -> Result<u64, String> {
    match text.parse() {
        Ok(0) => Err("must be at least 1".into()),
        Ok(count) => Ok(count),
        Err(_) => Err(format!("`{text}` is not a whole number")),
    }
}

/// A posts-per-second flag: a number above 0.
fn positive_rate(text: &str) -> Result<f64, String> {
    match text.parse::<f64>() {
        Ok(rate) if rate > 0.0 && rate.is_finite() => Ok(rate),
        Ok(_) => Err("must be above 0".into()),
        Err(_) => Err(format!("`{text}` is not a number")),
    }
}

/// The `--topics` and `--streams` flags: three names.
fn three_names(text: &str) -> Result<[String; 3], String> {
    let names: Vec<String> = text.split(',').map(|name| name.trim().to_owned()).collect();
    match <[String; 3]>::try_from(names) {
        Ok(names) if names.iter().all(|name| !name.is_empty()) => Ok(names),
        _ => Err("give three names, for pin, geo and user: `pin,geo,user`".into()),
    }
}

/// A rate flag: a number between 0 and 1.
fn probability(text: &str) -> Result<f64, String> {
    let rate: f64 = text
        .parse()
        .map_err(|_| format!("`{text}` is not a number"))?;
    if (0.0..=1.0).contains(&rate) {
        Ok(rate)
    } else {
        Err(format!("must be between 0 and 1, not {text}"))
    }
}

/// Flags of `tributary worker batch`.
#[derive(clap::Args)]
struct BatchArgs {
    /// The run's scheduled time, RFC 3339 (e.g. `2026-11-28T00:00:00Z`): `scheduled_time()` in
    /// the SQL, and the name of the files the run writes.
    #[arg(long)]
    scheduled_time: jiff::Timestamp,
    /// Read the configuration document from this file instead of `TRIBUTARY_BATCH_CONFIG`.
    #[arg(long)]
    config_file: Option<PathBuf>,
    /// Log as JSON lines (for log collectors) instead of text.
    #[arg(long, env = "TRIBUTARY_LOG_JSON")]
    log_json: bool,
}

/// Flags of `tributary worker sink`.
#[derive(clap::Args)]
struct SinkArgs {
    /// Read the configuration document from this file instead of `TRIBUTARY_SINK_CONFIG`.
    #[arg(long)]
    config_file: Option<PathBuf>,
    /// Address of /healthz, /readyz and /metrics.
    #[arg(long, env = "TRIBUTARY_HTTP_ADDR", default_value = "0.0.0.0:8080")]
    http_addr: std::net::SocketAddr,
    /// Log as JSON lines (for log collectors) instead of text.
    #[arg(long, env = "TRIBUTARY_LOG_JSON")]
    log_json: bool,
}

/// Flags of `tributary gateway`.
#[derive(clap::Args)]
struct GatewayArgs {
    /// Address of the produce API (and of /healthz, /readyz and /metrics without --http-addr).
    #[arg(long, env = "TRIBUTARY_GATEWAY_LISTEN", default_value = "0.0.0.0:8080")]
    listen: std::net::SocketAddr,
    /// Serve /healthz, /readyz and /metrics on this address instead, apart from the API.
    #[arg(long, env = "TRIBUTARY_HTTP_ADDR")]
    http_addr: Option<std::net::SocketAddr>,
    /// Serve the Topics and Streams of this namespace (repeat, or comma-separate, for
    /// several). Default: all namespaces.
    #[arg(
        long = "namespace",
        env = "TRIBUTARY_GATEWAY_NAMESPACES",
        value_delimiter = ','
    )]
    namespaces: Vec<String>,
    /// Serve only the Topics and Streams with these labels (a Kubernetes label selector, e.g.
    /// `tributary.dev/gateway=public`).
    #[arg(long, env = "TRIBUTARY_GATEWAY_SELECTOR")]
    selector: Option<String>,
    /// A file with one API key per line (a mounted Secret); re-read every 10 s.
    #[arg(long, env = "TRIBUTARY_GATEWAY_API_KEYS_FILE")]
    api_keys_file: Option<PathBuf>,
    /// The Kafka brokers, `host:port` comma-separated.
    #[arg(long, env = "TRIBUTARY_KAFKA_BOOTSTRAP")]
    bootstrap_servers: String,
    /// Connect to Kafka with TLS (the CA bundle, if not the system's, in TRIBUTARY_KAFKA_CA_PEM).
    #[arg(long, env = "TRIBUTARY_KAFKA_TLS")]
    kafka_tls: bool,
    /// SASL mechanism: ScramSha512, ScramSha256 or Plain (credentials in
    /// TRIBUTARY_KAFKA_SASL_USERNAME and TRIBUTARY_KAFKA_SASL_PASSWORD).
    #[arg(long, env = "TRIBUTARY_KAFKA_SASL_MECHANISM", value_parser = sasl_mechanism)]
    kafka_sasl_mechanism: Option<tributary_crds::kafka_cluster::SaslMechanism>,
    /// Largest request body, in bytes (413 above it).
    #[arg(long, default_value_t = 8 * 1024 * 1024)]
    max_body_bytes: usize,
    /// Most records in one request (413 above it).
    #[arg(long, default_value_t = 10_000)]
    max_records: usize,
    /// Longest a request may take (408 after it), e.g. `30s`; records not acknowledged within
    /// three quarters of it fail with their own error.
    #[arg(long, default_value = "30s", value_parser = duration)]
    request_timeout: std::time::Duration,
    /// Most records sent and not yet acknowledged, over all requests; a request that finds no
    /// room within 1 s is answered 429.
    #[arg(long, default_value_t = 100_000)]
    max_in_flight_records: usize,
    /// How long records Kinesis throttles are put again, with backoff, before the request
    /// answers with them as not written (429 when none was). Shorter than --request-timeout.
    #[arg(long, default_value = "5s", value_parser = duration)]
    kinesis_retry_for: std::time::Duration,
    /// AWS region of the Kinesis streams (default: the SDK's chain, e.g. AWS_REGION).
    #[arg(long)]
    aws_region: Option<String>,
    /// One endpoint for AWS (LocalStack, say); AWS_ENDPOINT_URL works too.
    #[arg(long)]
    aws_endpoint_url: Option<String>,
    /// Log as JSON lines (for log collectors) instead of text.
    #[arg(long, env = "TRIBUTARY_LOG_JSON")]
    log_json: bool,
}

/// A duration flag, written as in the CRDs (`30s`, `1m30s`, `500ms`).
fn duration(text: &str) -> Result<std::time::Duration, String> {
    tributary_crds::duration::parse_duration(text).map_err(|e| e.to_string())
}

/// A SASL mechanism flag, spelled as in a KafkaCluster.
fn sasl_mechanism(text: &str) -> Result<tributary_crds::kafka_cluster::SaslMechanism, String> {
    serde_json::from_value(serde_json::Value::String(text.to_owned())).map_err(|_| {
        format!("`{text}` is not a SASL mechanism: use ScramSha512, ScramSha256 or Plain")
    })
}

/// Flags of `tributary operator`; each can also come from the environment.
#[derive(clap::Args)]
struct OperatorArgs {
    /// Namespace to watch (repeat, or comma-separate, for several). Default: all namespaces.
    #[arg(
        long = "namespace",
        env = "TRIBUTARY_WATCH_NAMESPACES",
        value_delimiter = ','
    )]
    namespaces: Vec<String>,
    /// Address of /healthz, /readyz and /metrics.
    #[arg(long, env = "TRIBUTARY_HTTP_ADDR", default_value = "0.0.0.0:8080")]
    http_addr: std::net::SocketAddr,
    /// Seconds between full re-checks of every object against Kafka and AWS (drift detection).
    #[arg(long, env = "TRIBUTARY_RESYNC_SECONDS", default_value_t = 120)]
    resync_seconds: u64,
    /// Apply the CRDs at start (for installs where Helm does not upgrade them).
    #[arg(long, env = "TRIBUTARY_INSTALL_CRDS")]
    install_crds: bool,
    /// Namespace of the leader-election Lease. Default: the pod's namespace, else `default`.
    #[arg(long, env = "POD_NAMESPACE", default_value = "default")]
    lease_namespace: String,
    /// Name of the leader-election Lease.
    #[arg(long, default_value = "tributary-operator")]
    lease_name: String,
    /// Seconds a leader's Lease lasts without renewal.
    #[arg(long, default_value_t = 15)]
    lease_seconds: u64,
    /// This replica's identity in the Lease. Default: the pod name, else the host name and pid.
    #[arg(long, env = "POD_NAME")]
    identity: Option<String>,
    /// Default AWS region for MSK (a spec's `region` wins). Default: the SDK's chain
    /// (`AWS_REGION`, the instance's region, ...).
    #[arg(long)]
    aws_region: Option<String>,
    /// One endpoint for every AWS API (LocalStack, an emulator). Default: AWS's own, or the SDK's
    /// `AWS_ENDPOINT_URL` / `AWS_ENDPOINT_URL_<SERVICE>` variables.
    #[arg(long)]
    aws_endpoint_url: Option<String>,
    /// Log as JSON lines (for log collectors) instead of text.
    #[arg(long, env = "TRIBUTARY_LOG_JSON")]
    log_json: bool,
    /// The container image of the worker pods: the operator's own image. Sinks need it.
    #[arg(long, env = "TRIBUTARY_IMAGE")]
    image: Option<String>,
    /// Service account of the worker pods (for IRSA). Default: the namespace's default one.
    #[arg(long, env = "TRIBUTARY_WORKER_SERVICE_ACCOUNT")]
    worker_service_account: Option<String>,
}

fn init_tracing(json: bool) {
    init_tracing_with(json, "info,kube_lease_manager=warn");
}

/// Logging to stderr, filtered by `RUST_LOG`, else by `default_filter`.
fn init_tracing_with(json: bool, default_filter: &str) {
    let filter = tracing_subscriber::EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new(default_filter));
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_ansi(std::io::IsTerminal::is_terminal(&std::io::stderr()))
        .with_writer(std::io::stderr);
    if json {
        builder.json().init()
    } else {
        builder.init()
    }
}

async fn operator(args: OperatorArgs) -> anyhow::Result<()> {
    init_tracing(args.log_json);
    let identity = args.identity.unwrap_or_else(|| {
        let host = std::fs::read_to_string("/etc/hostname").unwrap_or_else(|_| "tributary".into());
        format!("{}-{}", host.trim(), std::process::id())
    });
    let config = tributary_operator::run::Config {
        namespaces: args.namespaces,
        http_addr: args.http_addr,
        resync: std::time::Duration::from_secs(args.resync_seconds),
        install_crds: args.install_crds,
        lease_namespace: args.lease_namespace,
        lease_name: args.lease_name,
        identity,
        lease_duration: std::time::Duration::from_secs(args.lease_seconds),
        aws: tributary_workers::connect::AwsOptions {
            region: args.aws_region,
            endpoint_url: args.aws_endpoint_url,
        },
        workers: tributary_operator::context::Workers {
            image: args.image,
            service_account: args.worker_service_account,
        },
    };
    let client = kube::Client::try_default()
        .await
        .context("no Kubernetes configuration: set KUBECONFIG or run in a cluster")?;
    tributary_operator::run::run(client, config, shutdown_signal()).await?;
    Ok(())
}

async fn sink_worker(args: SinkArgs) -> anyhow::Result<()> {
    use tributary_workers::sink::config::{ConfigError, ENV_CONFIG, SinkWorkerConfig};
    use tributary_workers::sink::metrics::SinkMetrics;
    use tributary_workers::sink::worker::Sink;

    init_tracing(args.log_json);
    let json = match &args.config_file {
        Some(path) => {
            std::fs::read_to_string(path).with_context(|| format!("reading {}", path.display()))?
        }
        None => std::env::var(ENV_CONFIG).map_err(|_| ConfigError::Missing)?,
    };
    let config = SinkWorkerConfig::from_json(&json)?;
    let metrics = std::sync::Arc::new(SinkMetrics::default());
    let sink = Sink::new(config, metrics.clone())?;
    let listener = tokio::net::TcpListener::bind(args.http_addr)
        .await
        .with_context(|| format!("listening on {}", args.http_addr))?;
    let (stop_http, http_stopped) = tokio::sync::oneshot::channel::<()>();
    let http = tokio::spawn(tributary_workers::http::serve(
        listener,
        std::sync::Arc::new(move || metrics.encode()),
        async move {
            let _ = http_stopped.await;
        },
    ));
    let result = sink
        .run(|name| std::env::var(name).ok(), shutdown_signal())
        .await;
    let _ = stop_http.send(());
    let _ = http.await;
    result?;
    Ok(())
}

async fn gateway(args: GatewayArgs) -> anyhow::Result<()> {
    use tributary_workers::connect::AwsOptions;
    use tributary_workers::gateway::auth::{ENV_API_KEYS, KeySource};
    use tributary_workers::gateway::config::GatewayConfig;
    use tributary_workers::gateway::served::Scope;
    use tributary_workers::gateway::server::{GatewaySettings, run};
    use tributary_workers::sink::config::KafkaEndpoint;

    init_tracing(args.log_json);
    let kafka = KafkaEndpoint {
        bootstrap_servers: args.bootstrap_servers,
        tls: args.kafka_tls,
        sasl_mechanism: args.kafka_sasl_mechanism,
    }
    .connection(|name| std::env::var(name).ok())?;
    let settings = GatewaySettings {
        config: GatewayConfig {
            max_body_bytes: args.max_body_bytes,
            max_records: args.max_records,
            request_timeout: args.request_timeout,
            max_in_flight_records: args.max_in_flight_records,
            kinesis_retry_for: args.kinesis_retry_for,
        },
        kafka,
        keys: KeySource {
            file: args.api_keys_file,
            inline: std::env::var(ENV_API_KEYS).ok(),
        },
        scope: Scope {
            namespaces: args.namespaces,
            selector: args.selector,
        },
        aws: AwsOptions {
            region: args.aws_region,
            endpoint_url: args.aws_endpoint_url,
        },
    };
    let bind = |addr: std::net::SocketAddr| async move {
        tokio::net::TcpListener::bind(addr)
            .await
            .with_context(|| format!("listening on {addr}"))
    };
    let listener = bind(args.listen).await?;
    let ops_listener = match args.http_addr {
        Some(addr) => Some(bind(addr).await?),
        None => None,
    };
    let client = kube::Client::try_default()
        .await
        .context("no Kubernetes configuration: set KUBECONFIG or run in a cluster")?;
    run(client, settings, listener, ops_listener, shutdown_signal()).await?;
    Ok(())
}

async fn batch_worker(args: BatchArgs) -> anyhow::Result<()> {
    use tributary_workers::batch::config::{BatchWorkerConfig, ENV_CONFIG};

    init_tracing(args.log_json);
    let json = match &args.config_file {
        Some(path) => {
            std::fs::read_to_string(path).with_context(|| format!("reading {}", path.display()))?
        }
        None => std::env::var(ENV_CONFIG)
            .with_context(|| format!("no configuration: set {ENV_CONFIG} or --config-file"))?,
    };
    let config = BatchWorkerConfig::from_json(&json).context("the batch configuration")?;
    let summaries = tributary_workers::batch::run(&config, args.scheduled_time).await?;
    let mut stdout = std::io::stdout().lock();
    for summary in &summaries {
        writeln!(stdout, "{}", serde_json::to_string(summary)?)?;
    }
    if Path::new(TERMINATION_LOG).exists() {
        let _ = std::fs::write(TERMINATION_LOG, serde_json::to_string(&summaries)?);
    }
    Ok(())
}

/// Where Kubernetes reads a container's last words for `kubectl describe pod`.
const TERMINATION_LOG: &str = "/dev/termination-log";

/// Leave `error` as the termination message when running in a pod.
fn report_termination(error: &anyhow::Error) {
    if Path::new(TERMINATION_LOG).exists() {
        let _ = std::fs::write(TERMINATION_LOG, format!("{error:#}"));
    }
}

/// SIGTERM (Kubernetes stopping the pod) or Ctrl-C.
async fn shutdown_signal() {
    let mut term = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate())
        .expect("a SIGTERM handler");
    tokio::select! {
        _ = term.recv() => {}
        _ = tokio::signal::ctrl_c() => {}
    }
}

fn main() -> anyhow::Result<ExitCode> {
    match Cli::parse().command {
        Command::Operator(args) => {
            tokio::runtime::Runtime::new()?.block_on(operator(args))?;
        }
        Command::Worker(WorkerCommand::Sink(args)) => {
            let result = tokio::runtime::Runtime::new()?.block_on(sink_worker(args));
            if let Err(error) = &result {
                report_termination(error);
            }
            result?;
        }
        Command::Gateway(args) => {
            let result = tokio::runtime::Runtime::new()?.block_on(gateway(args));
            if let Err(error) = &result {
                report_termination(error);
            }
            result?;
        }
        Command::Worker(WorkerCommand::Batch(args)) => {
            let result = tokio::runtime::Runtime::new()?.block_on(batch_worker(args));
            if let Err(error) = &result {
                report_termination(error);
            }
            result?;
        }
        Command::Crds { dir: None } => {
            std::io::stdout().write_all(tributary_crds::crds_yaml().as_bytes())?;
        }
        Command::Crds { dir: Some(dir) } => {
            std::fs::create_dir_all(&dir)?;
            for (file, yaml) in tributary_crds::crd_files() {
                std::fs::write(dir.join(&file), yaml)?;
            }
        }
        Command::Emulate(args) => emulate(args)?,
        Command::Local(args) => {
            // Warnings only by default: the status table is the progress report.
            init_tracing_with(false, "warn");
            tokio::runtime::Runtime::new()?.block_on(local::local(args, shutdown_signal()))?;
        }
        Command::Validate { paths } => return validate(&paths),
        Command::CrdDocs { dir } => reference::write_reference(&dir)?,
    }
    Ok(ExitCode::SUCCESS)
}

fn emulate(args: EmulateArgs) -> anyhow::Result<()> {
    use tributary_workers::pinterest::{GeneratorConfig, Table, write_dir};

    let started = std::time::Instant::now();
    let config = GeneratorConfig {
        seed: args.seed,
        dirty_rate: args.dirty_rate,
        duplicate_rate: args.duplicate_rate,
    };
    let Some(out) = &args.out else {
        return emulate_to_gateway(&args, config);
    };
    let count = args.count.unwrap_or(1000);
    let written = write_dir(out, count, config, args.records_per_file)?;
    eprintln!(
        "{} posts: {} pin, {} geo, {} user records in {} file(s) per table under {} ({:.2} s)",
        written.posts,
        written.records(Table::Pin),
        written.records(Table::Geo),
        written.records(Table::User),
        written.files_per_table,
        out.display(),
        started.elapsed().as_secs_f64()
    );
    Ok(())
}

/// The emulator's progress: a bar on a terminal (posts of `--count`, or time of `--duration`),
/// else a plain line about once a second.
struct Progress {
    bar: Option<indicatif::ProgressBar>,
    by_time: bool,
    last_line: std::cell::Cell<std::time::Instant>,
}

impl Progress {
    fn new(count: Option<u64>, duration: Option<std::time::Duration>) -> Self {
        use std::io::IsTerminal;
        let by_time = count.is_none();
        let bar = std::io::stderr().is_terminal().then(|| {
            let (length, unit) = match (count, duration) {
                (Some(count), _) => (count, "posts"),
                (None, Some(duration)) => (duration.as_secs().max(1), "s"),
                (None, None) => (0, "posts"),
            };
            let template =
                format!("{{elapsed_precise}} [{{bar:30}}] {{pos}}/{{len}} {unit} {{msg}}");
            let style = indicatif::ProgressStyle::with_template(&template)
                .unwrap_or_else(|_| indicatif::ProgressStyle::default_bar())
                .progress_chars("=> ");
            indicatif::ProgressBar::new(length).with_style(style)
        });
        Self {
            bar,
            by_time,
            last_line: std::cell::Cell::new(std::time::Instant::now()),
        }
    }

    fn update(&self, sent: &tributary_workers::pinterest::send::Sent) {
        let summary = format!(
            "{} records accepted, {} failed, {:.0} records/s",
            sent.records,
            sent.failed,
            sent.records_per_second()
        );
        match &self.bar {
            Some(bar) => {
                bar.set_position(if self.by_time {
                    sent.seconds as u64
                } else {
                    sent.posts
                });
                bar.set_message(summary);
            }
            None if self.last_line.get().elapsed() >= std::time::Duration::from_secs(1) => {
                self.last_line.set(std::time::Instant::now());
                eprintln!("{} posts sent, {summary}", sent.posts);
            }
            None => {}
        }
    }

    fn finish(&self) {
        if let Some(bar) = &self.bar {
            bar.finish_and_clear();
        }
    }
}

/// `tributary emulate --gateway URL`: send with a progress bar, then summarize.
fn emulate_to_gateway(
    args: &EmulateArgs,
    generator: tributary_workers::pinterest::GeneratorConfig,
) -> anyhow::Result<()> {
    use tributary_workers::pinterest::send::{SendConfig, send};

    let gateway = args
        .gateway
        .clone()
        .expect("clap requires --out or --gateway");
    let config = SendConfig {
        gateway: gateway.clone(),
        api_key: std::env::var("TRIBUTARY_GATEWAY_API_KEY")
            .ok()
            .filter(|key| !key.is_empty()),
        topics: match (&args.topics, &args.streams) {
            (None, None) => Some(["pin", "geo", "user"].map(str::to_owned)),
            (topics, _) => topics.clone(),
        },
        streams: args.streams.clone(),
        batch_posts: args.batch_size,
        rate: args.rate,
        count: args.count.or(if args.duration.is_some() {
            None
        } else {
            Some(1000)
        }),
        duration: args.duration,
    };
    let progress = Progress::new(config.count, config.duration);
    let runtime = tokio::runtime::Runtime::new()?;
    let sent = runtime
        .block_on(send(&config, generator, |sent| progress.update(sent)))
        .with_context(|| format!("sending to the gateway {gateway}"));
    progress.finish();
    let sent = sent?;
    eprintln!(
        "done: {} posts, {} records accepted, {} failed, in {:.2} s ({:.0} records/s)",
        sent.posts,
        sent.records,
        sent.failed,
        sent.seconds,
        sent.records_per_second()
    );
    if sent.failed > 0 {
        anyhow::bail!("{} records were refused by the gateway", sent.failed);
    }
    Ok(())
}

fn validate(paths: &[PathBuf]) -> anyhow::Result<ExitCode> {
    let mut files = Vec::new();
    for path in paths {
        collect_yaml(path, &mut files)?;
    }
    let (mut valid, mut invalid) = (0, 0);
    for file in &files {
        let text =
            std::fs::read_to_string(file).with_context(|| format!("reading {}", file.display()))?;
        for manifest in Manifest::from_yaml(&text) {
            let outcome = manifest.map_err(|e| e.to_string()).and_then(|m| {
                let label = format!("{} {}", m.kind(), m.name().unwrap_or("?"));
                m.validate()
                    .map(|()| label.clone())
                    .map_err(|e| format!("{label}: {e}"))
            });
            match outcome {
                Ok(label) => {
                    valid += 1;
                    println!("ok       {label} ({})", file.display());
                }
                Err(message) => {
                    invalid += 1;
                    println!("invalid  {}: {message}", file.display());
                }
            }
        }
    }
    println!("{valid} valid, {invalid} invalid");
    Ok(if invalid == 0 {
        ExitCode::SUCCESS
    } else {
        ExitCode::FAILURE
    })
}

fn collect_yaml(path: &Path, out: &mut Vec<PathBuf>) -> anyhow::Result<()> {
    if path.is_dir() {
        let mut entries: Vec<PathBuf> = std::fs::read_dir(path)
            .with_context(|| format!("reading {}", path.display()))?
            .map(|e| e.map(|e| e.path()))
            .collect::<Result<_, _>>()?;
        entries.sort();
        for entry in entries {
            let is_yaml = entry.extension().is_some_and(|e| e == "yaml" || e == "yml");
            if entry.is_dir() || is_yaml {
                collect_yaml(&entry, out)?;
            }
        }
    } else if path.exists() {
        out.push(path.to_owned());
    } else {
        anyhow::bail!("{} does not exist", path.display());
    }
    Ok(())
}
