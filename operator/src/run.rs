//! The operator process: CRD check, health and metrics endpoints, leader election, and the
//! controllers, until a shutdown signal.

use std::future::Future;
use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use axum::Router;
use axum::extract::State;
use axum::http::StatusCode;
use axum::routing::get;
use futures::StreamExt;
use k8s_openapi::NamespaceResourceScope;
use k8s_openapi::api::apps::v1::Deployment;
use k8s_openapi::api::batch::v1::Job;
use k8s_openapi::api::core::v1::ConfigMap;
use k8s_openapi::apiextensions_apiserver::pkg::apis::apiextensions::v1::CustomResourceDefinition;
use kube::api::Api;
use kube::runtime::reflector::ObjectRef;
use kube::runtime::wait::{await_condition, conditions};
use kube::runtime::{Controller, WatchStreamExt, reflector, watcher};
use kube::{Resource, ResourceExt};
use kube_lease_manager::LeaseManagerBuilder;
use tokio::sync::watch;
use tributary_crds::{BatchJob, KafkaCluster, Sink, Stream, Topic};

use crate::context::{Context, Workers};
use crate::kafka_admin::{KafkaAdmins, RdKafkaAdmins};
use crate::{batch_job, kafka_cluster, reconciler, sink, stream, topic};

/// How the operator runs.
#[derive(Clone, Debug)]
pub struct Config {
    /// Namespaces to watch; empty: all.
    pub namespaces: Vec<String>,
    /// Where `/healthz`, `/readyz` and `/metrics` are served.
    pub http_addr: SocketAddr,
    /// How often every object is re-checked against Kafka and AWS (drift detection).
    pub resync: Duration,
    /// Install or update the CRDs at start instead of only checking they exist.
    pub install_crds: bool,
    /// Namespace of the leader-election Lease.
    pub lease_namespace: String,
    /// Name of the leader-election Lease.
    pub lease_name: String,
    /// This replica's identity in the Lease.
    pub identity: String,
    /// How long a leader's Lease lasts without renewal.
    pub lease_duration: Duration,
    /// AWS region and endpoint overrides (otherwise the SDK's default chain).
    pub aws: tributary_workers::connect::AwsOptions,
    /// How worker pods are run (image, service account); without an image Sinks report
    /// `NoWorkerImage`.
    pub workers: Workers,
}

/// The operator could not run.
#[derive(Debug, thiserror::Error)]
pub enum RunError {
    /// A CRD is not installed.
    #[error(
        "the CRD {0} is not installed: apply crds/yaml/ (`tributary crds` prints them), \
         or start the operator with --install-crds"
    )]
    CrdMissing(String),
    /// A CRD exists but the API server does not serve it.
    #[error("the CRD {0} is not established after 60 s: check it with `kubectl describe crd {0}`")]
    CrdNotEstablished(String),
    /// Installing the CRDs failed.
    #[error(transparent)]
    Install(#[from] crate::crds::InstallError),
    /// The Kubernetes API failed.
    #[error("kubernetes: {0}")]
    Kube(#[from] kube::Error),
    /// The health/metrics address could not be bound.
    #[error("cannot serve on {addr}: {source}")]
    Bind {
        /// The address.
        addr: SocketAddr,
        /// The OS error.
        #[source]
        source: std::io::Error,
    },
    /// Leader election failed.
    #[error("leader election: {0}")]
    Lease(#[from] kube_lease_manager::LeaseManagerError),
}

struct Health {
    ready: AtomicBool,
    metrics: Arc<crate::metrics::Metrics>,
}

/// Run the operator until `shutdown` completes (SIGTERM in the binary).
pub async fn run(
    client: kube::Client,
    config: Config,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> Result<(), RunError> {
    if config.install_crds {
        crate::crds::install(&client, Duration::from_secs(60)).await?;
    } else {
        check_crds(&client).await?;
    }

    let (topic_store, topic_writer) = reflector::store::<Topic>();
    let admins: Arc<dyn KafkaAdmins> = Arc::new(RdKafkaAdmins::default());
    let msk = Arc::new(crate::msk::AwsMsk::new(config.aws.clone()));
    let buckets = Arc::new(crate::buckets::S3Buckets::new(config.aws.clone()));
    let kinesis = Arc::new(crate::stream::kinesis::AwsKinesis::new(config.aws.clone()));
    let ctx = Arc::new(
        Context::new(client.clone(), admins, topic_store.clone(), config.resync)
            .with_msk(msk)
            .with_buckets(buckets)
            .with_kinesis(kinesis)
            .with_workers(config.workers.clone(), config.aws.clone()),
    );
    let health = Arc::new(Health {
        ready: AtomicBool::new(false),
        metrics: ctx.metrics.clone(),
    });
    let listener = tokio::net::TcpListener::bind(config.http_addr)
        .await
        .map_err(|source| RunError::Bind {
            addr: config.http_addr,
            source,
        })?;
    let (stop_tx, stop_rx) = watch::channel(false);
    let server = tokio::spawn(serve(listener, health.clone(), stop_rx.clone()));
    tokio::spawn(async move {
        shutdown.await;
        let _ = stop_tx.send(true);
    });

    let leases = LeaseManagerBuilder::new(client.clone(), &config.lease_name)
        .with_namespace(&config.lease_namespace)
        .with_identity(&config.identity)
        .with_duration(config.lease_duration.as_secs())
        .with_grace((config.lease_duration.as_secs() / 3).max(1))
        .build()
        .await?;
    let (mut leader, lease_task) = leases.watch().await;
    health.ready.store(true, Ordering::SeqCst);
    tracing::info!(identity = %config.identity, "waiting to become the leader");

    let mut stop = stop_rx.clone();
    let became_leader = async {
        loop {
            if *leader.borrow_and_update() {
                return true;
            }
            tokio::select! {
                changed = leader.changed() => if changed.is_err() { return false },
                _ = stop.wait_for(|s| *s) => return false,
            }
        }
    };
    if became_leader.await {
        tracing::info!(identity = %config.identity, "leader: starting the controllers");
        let mut lost = leader.clone();
        let stop = stop_rx.clone();
        let shutdown = async move {
            let mut stop = stop;
            tokio::select! {
                _ = stop.wait_for(|s| *s) => tracing::info!("shutting down"),
                _ = lost.wait_for(|l| !*l) => tracing::warn!("lost the leader lease; stopping the controllers"),
            }
        };
        let (trigger_tx, trigger_rx) = watch::channel(false);
        tokio::spawn(async move {
            shutdown.await;
            let _ = trigger_tx.send(true);
        });
        controllers(&client, &config, ctx, topic_writer, trigger_rx).await;
    }

    drop(leader);
    let _ = lease_task.await;
    server.abort();
    Ok(())
}

/// One KafkaCluster controller per watched namespace (or for all), and one Topic, Stream, Sink
/// and BatchJob controller over every watched namespace.
async fn controllers(
    client: &kube::Client,
    config: &Config,
    ctx: Arc<Context>,
    topic_writer: reflector::store::Writer<Topic>,
    trigger: watch::Receiver<bool>,
) {
    let scopes: Vec<Option<String>> = if config.namespaces.is_empty() {
        vec![None]
    } else {
        config.namespaces.iter().cloned().map(Some).collect()
    };
    let api = |ns: &Option<String>| -> (Api<KafkaCluster>, Api<Topic>) {
        match ns {
            None => (Api::all(client.clone()), Api::all(client.clone())),
            Some(ns) => (
                Api::namespaced(client.clone(), ns),
                Api::namespaced(client.clone(), ns),
            ),
        }
    };
    let stopped = |mut trigger: watch::Receiver<bool>| async move {
        let _ = trigger.wait_for(|t| *t).await;
    };

    // The Topic store (for conflicts) is fed by one reflector over every watched scope.
    let topic_streams = scopes
        .iter()
        .map(|ns| watcher(api(ns).1, watcher::Config::default()).boxed());
    // managedFields are most of an object's size and no controller reads them: the store of
    // every Topic does not keep them.
    let topic_streams =
        futures::stream::select_all(topic_streams).modify(|t| t.managed_fields_mut().clear());
    let topics = reflector(topic_writer, topic_streams)
        .default_backoff()
        .touched_objects();
    let mut topic_controller = Controller::for_stream(topics, ctx.topics.clone());
    let mut cluster_controllers = Vec::new();
    for ns in &scopes {
        // A KafkaCluster's change (becoming Ready, say) re-reconciles the Topics on it.
        let store = ctx.topics.clone();
        topic_controller =
            topic_controller.watches(api(ns).0, watcher::Config::default(), move |cluster| {
                let key = (cluster.namespace().unwrap_or_default(), cluster.name_any());
                store
                    .state()
                    .into_iter()
                    .filter(|t| topic::cluster_key(t, &t.namespace().unwrap_or_default()) == key)
                    .map(|t| ObjectRef::from_obj(&*t))
                    .collect::<Vec<_>>()
            });
        let controller = Controller::new(api(ns).0, watcher::Config::default())
            .graceful_shutdown_on(stopped(trigger.clone()))
            .run(
                kafka_cluster::reconcile,
                reconciler::error_policy,
                ctx.clone(),
            )
            .for_each(|_| async {});
        cluster_controllers.push(controller);
    }
    let topic_controller = topic_controller
        .graceful_shutdown_on(stopped(trigger.clone()))
        .run(topic::reconcile, reconciler::error_policy, ctx.clone())
        .for_each(|_| async {});
    let sink_controller = sink_controller(client, &scopes, &ctx)
        .graceful_shutdown_on(stopped(trigger.clone()))
        .run(sink::reconcile, reconciler::error_policy, ctx.clone())
        .for_each(|_| async {});
    let stream_controller = stream_controller(client, &scopes)
        .graceful_shutdown_on(stopped(trigger.clone()))
        .run(stream::reconcile, reconciler::error_policy, ctx.clone())
        .for_each(|_| async {});
    let batch_job_controller = batch_job_controller(client, &scopes)
        .graceful_shutdown_on(stopped(trigger.clone()))
        .run(batch_job::reconcile, reconciler::error_policy, ctx.clone())
        .for_each(|_| async {});
    futures::join!(
        topic_controller,
        stream_controller,
        sink_controller,
        batch_job_controller,
        futures::future::join_all(cluster_controllers)
    );
    tracing::info!("controllers stopped");
}

/// The API of `K` in one watched scope (`None`: all namespaces).
fn scoped<K>(client: &kube::Client, namespace: &Option<String>) -> Api<K>
where
    K: Resource<Scope = NamespaceResourceScope, DynamicType = ()>,
{
    match namespace {
        None => Api::all(client.clone()),
        Some(ns) => Api::namespaced(client.clone(), ns),
    }
}

/// The Sink controller over every scope: its children (Deployments and ConfigMaps, found by
/// their labels) and the Topics, KafkaClusters and Streams its Sinks read re-reconcile a Sink.
fn sink_controller(
    client: &kube::Client,
    scopes: &[Option<String>],
    ctx: &Arc<Context>,
) -> Controller<Sink> {
    let (store, writer) = reflector::store::<Sink>();
    let streams = scopes
        .iter()
        .map(|ns| watcher(scoped::<Sink>(client, ns), watcher::Config::default()).boxed());
    let sinks = reflector(
        writer,
        futures::stream::select_all(streams).modify(|s| s.managed_fields_mut().clear()),
    )
    .default_backoff()
    .touched_objects();
    let mut controller = Controller::for_stream(sinks, store.clone());
    let children = watcher::Config::default().labels(sink::build::CHILDREN);
    for ns in scopes {
        let (reading_topic, topics, reading_cluster, reading_stream) = (
            store.clone(),
            ctx.topics.clone(),
            store.clone(),
            store.clone(),
        );
        controller = controller
            .owns(scoped::<Deployment>(client, ns), children.clone())
            .owns(scoped::<ConfigMap>(client, ns), children.clone())
            .watches(
                scoped::<Topic>(client, ns),
                watcher::Config::default(),
                move |topic| {
                    let key = Some((topic.namespace().unwrap_or_default(), topic.name_any()));
                    reading_topic
                        .state()
                        .into_iter()
                        .filter(|s| sink::topic_key(s) == key)
                        .map(|s| ObjectRef::from_obj(&*s))
                        .collect::<Vec<_>>()
                },
            )
            .watches(
                scoped::<Stream>(client, ns),
                watcher::Config::default(),
                move |stream| {
                    let key = Some((stream.namespace().unwrap_or_default(), stream.name_any()));
                    reading_stream
                        .state()
                        .into_iter()
                        .filter(|s| sink::stream_key(s) == key)
                        .map(|s| ObjectRef::from_obj(&*s))
                        .collect::<Vec<_>>()
                },
            )
            .watches(
                scoped::<KafkaCluster>(client, ns),
                watcher::Config::default(),
                move |cluster| {
                    let key = (cluster.namespace().unwrap_or_default(), cluster.name_any());
                    let on_cluster: Vec<(String, String)> = topics
                        .state()
                        .into_iter()
                        .filter(|t| {
                            topic::cluster_key(t, &t.namespace().unwrap_or_default()) == key
                        })
                        .map(|t| (t.namespace().unwrap_or_default(), t.name_any()))
                        .collect();
                    reading_cluster
                        .state()
                        .into_iter()
                        .filter(|s| sink::topic_key(s).is_some_and(|t| on_cluster.contains(&t)))
                        .map(|s| ObjectRef::from_obj(&*s))
                        .collect::<Vec<_>>()
                },
            );
    }
    controller
}

/// The Stream controller over every scope. It has no children: its state is in Kinesis, which
/// the resync and the requeues while Kinesis is busy re-check.
fn stream_controller(client: &kube::Client, scopes: &[Option<String>]) -> Controller<Stream> {
    let (store, writer) = reflector::store::<Stream>();
    let streams = scopes
        .iter()
        .map(|ns| watcher(scoped::<Stream>(client, ns), watcher::Config::default()).boxed());
    let streams = reflector(
        writer,
        futures::stream::select_all(streams).modify(|s| s.managed_fields_mut().clear()),
    )
    .default_backoff()
    .touched_objects();
    Controller::for_stream(streams, store)
}

/// The BatchJob controller over every scope: its Jobs and ConfigMaps (found by their labels)
/// re-reconcile it, so a run that ends is seen at once.
fn batch_job_controller(client: &kube::Client, scopes: &[Option<String>]) -> Controller<BatchJob> {
    let (store, writer) = reflector::store::<BatchJob>();
    let streams = scopes
        .iter()
        .map(|ns| watcher(scoped::<BatchJob>(client, ns), watcher::Config::default()).boxed());
    let batch_jobs = reflector(
        writer,
        futures::stream::select_all(streams).modify(|b| b.managed_fields_mut().clear()),
    )
    .default_backoff()
    .touched_objects();
    let mut controller = Controller::for_stream(batch_jobs, store);
    let children = watcher::Config::default().labels(batch_job::build::CHILDREN);
    for ns in scopes {
        controller = controller
            .owns(scoped::<Job>(client, ns), children.clone())
            .owns(scoped::<ConfigMap>(client, ns), children.clone());
    }
    controller
}

/// Every CRD must exist; one that exists but is not yet established (just applied) is waited
/// for, up to a minute.
async fn check_crds(client: &kube::Client) -> Result<(), RunError> {
    let api: Api<CustomResourceDefinition> = Api::all(client.clone());
    for crd in tributary_crds::crds() {
        let name = crd.metadata.name.clone().expect("generated CRDs are named");
        if api.get_opt(&name).await?.is_none() {
            return Err(RunError::CrdMissing(name));
        }
        let established = await_condition(api.clone(), &name, conditions::is_crd_established());
        if tokio::time::timeout(Duration::from_secs(60), established)
            .await
            .is_err()
        {
            return Err(RunError::CrdNotEstablished(name));
        }
    }
    Ok(())
}

async fn serve(
    listener: tokio::net::TcpListener,
    health: Arc<Health>,
    mut stop: watch::Receiver<bool>,
) {
    let app = Router::new()
        .route("/healthz", get(|| async { "ok" }))
        .route(
            "/readyz",
            get(|State(h): State<Arc<Health>>| async move {
                if h.ready.load(Ordering::SeqCst) {
                    (StatusCode::OK, "ready")
                } else {
                    (StatusCode::SERVICE_UNAVAILABLE, "starting")
                }
            }),
        )
        .route(
            "/metrics",
            get(|State(h): State<Arc<Health>>| async move {
                (
                    [(
                        "content-type",
                        tributary_workers::http::METRICS_CONTENT_TYPE,
                    )],
                    h.metrics.render(),
                )
            }),
        )
        .with_state(health);
    let graceful = async move {
        let _ = stop.wait_for(|s| *s).await;
    };
    if let Err(error) = axum::serve(listener, app)
        .with_graceful_shutdown(graceful)
        .await
    {
        tracing::error!(%error, "health and metrics server failed");
    }
}
