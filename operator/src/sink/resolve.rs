//! The second pure step of the Sink reconcile: from the Sink and its source — a Topic and the
//! Topic's KafkaCluster, or a Stream — to the worker configuration, and the Secret keys the
//! workers read from their environment. Secrets never enter the configuration.

use kube::ResourceExt;
use tributary_crds::kafka_cluster::SaslMechanism;
use tributary_crds::{KafkaCluster, SecretKeyRef, Sink, Stream, Topic};
use tributary_workers::sink::config::{
    ENV_KAFKA_CA_PEM, ENV_SASL_PASSWORD, ENV_SASL_USERNAME, KafkaEndpoint, KinesisSource,
    LeaseSettings, SinkWorkerConfig,
};

use super::validate::Destination;
use crate::kafka_cluster::connection::{self, ConnectionError};
use crate::topic::plan::topic_name;

/// Why the workers cannot be configured from the cluster (yet).
#[derive(Debug, thiserror::Error)]
pub enum ResolveError {
    /// The KafkaCluster's connection cannot be used (or, for MSK, is not known yet).
    #[error("KafkaCluster {cluster}: {source}")]
    Connection {
        /// `namespace/name` of the cluster.
        cluster: String,
        /// Why.
        #[source]
        source: ConnectionError,
    },
    /// The cluster's Secrets are in another namespace, where pods cannot reference them.
    #[error(
        "KafkaCluster {cluster} takes its credentials from Secrets in namespace {namespace}, \
         and worker pods can only read Secrets of their own namespace ({sink_namespace}): \
         put the Sink in {namespace}, or define a KafkaCluster with copies of the Secrets here"
    )]
    CrossNamespaceSecrets {
        /// `namespace/name` of the cluster.
        cluster: String,
        /// The cluster's namespace.
        namespace: String,
        /// The Sink's namespace.
        sink_namespace: String,
    },
    /// A SASL mechanism the workers cannot use.
    #[error(
        "KafkaCluster {cluster}: SASL mechanism {mechanism:?} is not supported by the sink \
         workers; use ScramSha512, ScramSha256 or Plain"
    )]
    UnsupportedMechanism {
        /// `namespace/name` of the cluster.
        cluster: String,
        /// The mechanism.
        mechanism: SaslMechanism,
    },
}

impl ResolveError {
    /// The `Ready` condition's reason.
    pub fn reason(&self) -> &'static str {
        match self {
            ResolveError::Connection {
                source: ConnectionError::NoBootstrapYet,
                ..
            } => "ClusterNotReady",
            _ => "InvalidConnection",
        }
    }

    /// Whether only a change of a spec helps (rather than waiting for the cluster).
    pub fn is_permanent(&self) -> bool {
        match self {
            ResolveError::Connection { source, .. } => source.is_permanent(),
            _ => true,
        }
    }
}

/// What the workers of a Sink are given.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Resolved {
    /// The configuration document.
    pub config: SinkWorkerConfig,
    /// Environment variables filled from Secret keys, in a fixed order.
    pub secret_env: Vec<(&'static str, SecretKeyRef)>,
}

/// The consumer group of a Sink: `spec.source.consumerGroup`, else
/// `tributary-<namespace>-<name>`.
pub fn consumer_group(sink: &Sink) -> String {
    sink.spec.source.consumer_group.clone().unwrap_or_else(|| {
        format!(
            "tributary-{}-{}",
            sink.namespace().unwrap_or_default(),
            sink.name_any()
        )
    })
}

/// The worker configuration of `sink`, which reads `topic` on `cluster` and writes to
/// `destination`.
pub fn resolve(
    sink: &Sink,
    topic: &Topic,
    cluster: &KafkaCluster,
    destination: &Destination,
) -> Result<Resolved, ResolveError> {
    let sink_namespace = sink.namespace().unwrap_or_default();
    let cluster_namespace = cluster.namespace().unwrap_or_default();
    let cluster_key = format!("{cluster_namespace}/{}", cluster.name_any());
    let (kafka, secret_env) = match &cluster.spec.external {
        Some(external) => {
            let mut secret_env = Vec::new();
            let sasl_mechanism = match &external.sasl {
                None => None,
                Some(sasl) if sasl.mechanism == SaslMechanism::AwsMskIam => {
                    return Err(ResolveError::UnsupportedMechanism {
                        cluster: cluster_key,
                        mechanism: sasl.mechanism,
                    });
                }
                Some(sasl) => {
                    let Some(r) = &sasl.secret_ref else {
                        return Err(ResolveError::Connection {
                            cluster: cluster_key,
                            source: ConnectionError::NoCredentials(sasl.mechanism),
                        });
                    };
                    let key = |key: &str| SecretKeyRef {
                        name: r.name.clone(),
                        key: key.to_owned(),
                    };
                    secret_env.push((ENV_SASL_USERNAME, key(&r.username_key)));
                    secret_env.push((ENV_SASL_PASSWORD, key(&r.password_key)));
                    Some(sasl.mechanism)
                }
            };
            if let Some(ca) = external.tls.as_ref().and_then(|t| t.ca_secret_ref.as_ref()) {
                secret_env.push((ENV_KAFKA_CA_PEM, ca.clone()));
            }
            if !secret_env.is_empty() && cluster_namespace != sink_namespace {
                return Err(ResolveError::CrossNamespaceSecrets {
                    cluster: cluster_key,
                    namespace: cluster_namespace,
                    sink_namespace,
                });
            }
            let endpoint = KafkaEndpoint {
                bootstrap_servers: external.bootstrap_servers.join(","),
                tls: external.tls.is_some(),
                sasl_mechanism,
            };
            (endpoint, secret_env)
        }
        None => {
            // MSK: the listener the operator itself uses (plaintext, else TLS).
            let msk = connection::msk_connection(cluster.status.as_ref()).map_err(|source| {
                ResolveError::Connection {
                    cluster: cluster_key,
                    source,
                }
            })?;
            let endpoint = KafkaEndpoint {
                bootstrap_servers: msk.bootstrap_servers,
                tls: msk.tls.is_some(),
                sasl_mechanism: None,
            };
            (endpoint, Vec::new())
        }
    };
    let config = SinkWorkerConfig {
        topic: topic_name(topic),
        consumer_group: consumer_group(sink),
        consumer_properties: sink.spec.source.consumer_properties.clone(),
        kafka,
        ..common_config(sink, destination)
    };
    Ok(Resolved { config, secret_env })
}

/// The worker configuration of `sink`, which reads the Kinesis stream of `stream` and writes
/// to `destination`: no topic, consumer group or brokers, and no Secrets (AWS credentials
/// come from the SDK's chain). The region is the Stream's, else `default_region` (the
/// operator's, where the Stream controller created the stream).
pub fn resolve_stream(
    sink: &Sink,
    stream: &Stream,
    destination: &Destination,
    default_region: Option<&str>,
) -> Resolved {
    let config = SinkWorkerConfig {
        kinesis: Some(KinesisSource {
            stream_name: stream.kinesis_name().to_owned(),
            region: stream
                .spec
                .region
                .clone()
                .or_else(|| default_region.map(str::to_owned)),
            leases: LeaseSettings::for_sink(
                &sink.spec.destination.url,
                &format!(
                    "{}/{}",
                    sink.namespace().unwrap_or_default(),
                    sink.name_any()
                ),
            ),
        }),
        ..common_config(sink, destination)
    };
    Resolved {
        config,
        secret_env: Vec::new(),
    }
}

/// What the configuration of either source holds, with no source set.
fn common_config(sink: &Sink, destination: &Destination) -> SinkWorkerConfig {
    let spec = &sink.spec;
    SinkWorkerConfig {
        sink: format!(
            "{}/{}",
            sink.namespace().unwrap_or_default(),
            sink.name_any()
        ),
        topic: String::new(),
        kinesis: None,
        consumer_group: String::new(),
        consumer_properties: Default::default(),
        start_from: spec.source.start_from,
        kafka: KafkaEndpoint::default(),
        destination: spec.destination.clone(),
        format: spec.format.clone(),
        batch: spec.batch.clone(),
        partitioning: spec.partitioning.clone(),
        dead_letter_prefix: destination.dead_letter_prefix.clone(),
        errors: spec.errors.clone(),
        transform: spec.transform.clone(),
    }
}
