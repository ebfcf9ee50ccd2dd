//! The sink worker's configuration: what the operator resolves from a `Sink`, its `Topic` and
//! the `KafkaCluster` behind it, and hands to every worker pod as one JSON document (a
//! ConfigMap key, passed in the `TRIBUTARY_SINK_CONFIG` environment variable).
//!
//! Secrets never appear in it: the SASL password (and user name) and the brokers' CA bundle
//! come from Secrets through the environment variables named by [`ENV_SASL_USERNAME`],
//! [`ENV_SASL_PASSWORD`] and [`ENV_KAFKA_CA_PEM`], which the Deployment fills with
//! `secretKeyRef`s. AWS credentials come from the SDK's chain (IRSA in a cluster).

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};
use tributary_crds::kafka_cluster::SaslMechanism;
use tributary_crds::sink::{
    SinkBatch, SinkDestination, SinkErrors, SinkFormat, SinkPartitioning, SinkTransform,
    StartPosition,
};

use crate::connect::{KafkaConnection, SaslCredentials};

/// The environment variable holding the configuration document.
pub const ENV_CONFIG: &str = "TRIBUTARY_SINK_CONFIG";
/// The environment variable holding the SASL user name.
pub const ENV_SASL_USERNAME: &str = "TRIBUTARY_KAFKA_SASL_USERNAME";
/// The environment variable holding the SASL password.
pub const ENV_SASL_PASSWORD: &str = "TRIBUTARY_KAFKA_SASL_PASSWORD";
/// The environment variable holding the PEM bundle of the brokers' CA.
pub const ENV_KAFKA_CA_PEM: &str = "TRIBUTARY_KAFKA_CA_PEM";
/// The environment variable holding the worker's static group membership id (the pod's
/// name): a restarted container takes its partitions back at once, without a rebalance.
pub const ENV_GROUP_INSTANCE_ID: &str = "TRIBUTARY_GROUP_INSTANCE_ID";
/// The environment variable naming this worker among the replicas of a Sink (the pod's name):
/// the owner written in the Kinesis shard leases it holds. Absent: `<hostname>-<pid>`.
pub const ENV_WORKER_ID: &str = "TRIBUTARY_WORKER_ID";

/// Everything a sink worker needs besides secrets.
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq, Eq)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct SinkWorkerConfig {
    /// `namespace/name` of the Sink, for logs and metric labels.
    pub sink: String,
    /// The Kafka topic (its name in Kafka, `Topic.spec.topicName` or the object's name);
    /// empty when the source is a Kinesis stream.
    #[serde(default)]
    pub topic: String,
    /// The Kinesis stream to read instead of a topic (decision 0042); absent for Kafka.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub kinesis: Option<KinesisSource>,
    /// The consumer group whose committed offsets are the sink's position (Kafka only).
    #[serde(default)]
    pub consumer_group: String,
    /// librdkafka consumer properties over the worker's defaults (Kafka only), checked by
    /// [`check_consumer_properties`].
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub consumer_properties: BTreeMap<String, String>,
    /// Where a partition without a committed offset or an object starts.
    #[serde(default)]
    pub start_from: StartPosition,
    /// How to reach the brokers (Kafka only).
    #[serde(default)]
    pub kafka: KafkaEndpoint,
    /// Where the objects go.
    pub destination: SinkDestination,
    /// Object format.
    #[serde(default)]
    pub format: SinkFormat,
    /// Flush triggers.
    #[serde(default)]
    pub batch: SinkBatch,
    /// Object paths.
    #[serde(default)]
    pub partitioning: SinkPartitioning,
    /// Dead-letter key prefix inside the destination's bucket or directory, resolved (the
    /// default is `<destination prefix>/_dead_letter`).
    pub dead_letter_prefix: String,
    /// What a bad record does.
    #[serde(default)]
    pub errors: SinkErrors,
    /// The SQL transform each flush's records go through (`spec.transform`); absent: records
    /// are written as they are.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub transform: Option<SinkTransform>,
}

/// A Kinesis stream as a sink's source.
#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq, Eq)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct KinesisSource {
    /// The stream's name in Kinesis.
    pub stream_name: String,
    /// The stream's region; absent: the SDK's default chain (`AWS_REGION`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub region: Option<String>,
    /// Share the shards with the Sink's other workers through leases (decision 0042); absent:
    /// this worker reads every shard.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub leases: Option<LeaseSettings>,
}

/// Where and how the workers of a Sink lease a stream's shards.
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq, Eq)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct LeaseSettings {
    /// The lease objects' location, `s3://bucket/prefix` (the stream's name is appended).
    pub url: String,
    /// How long a lease lasts without renewal, in milliseconds: a dead worker's shards are
    /// taken over within it.
    #[serde(default = "default_lease_duration_ms")]
    pub duration_ms: u64,
}

fn default_lease_duration_ms() -> u64 {
    10_000
}

impl LeaseSettings {
    /// The lease location of the Sink `namespace/name` writing to `destination`
    /// (`s3://bucket/...`): `s3://bucket/_tributary/leases/<namespace>/<name>`, outside
    /// every table's prefix unless a table sits at the bucket's root.
    pub fn for_sink(destination: &str, sink: &str) -> Option<Self> {
        let url = url::Url::parse(destination).ok()?;
        let bucket = url.host_str().filter(|bucket| !bucket.is_empty())?;
        (url.scheme() == "s3").then(|| Self {
            url: format!("s3://{bucket}/_tributary/leases/{sink}"),
            duration_ms: default_lease_duration_ms(),
        })
    }

    /// The bucket and the key prefix of the shard leases of `stream` (ending in `/`).
    pub fn shards_location(&self, stream: &str) -> Option<(String, String)> {
        let url = url::Url::parse(&self.url).ok()?;
        let bucket = url.host_str().filter(|bucket| !bucket.is_empty())?;
        let prefix = url.path().trim_matches('/');
        let prefix = if prefix.is_empty() {
            format!("{stream}/shards/")
        } else {
            format!("{prefix}/{stream}/shards/")
        };
        Some((bucket.to_owned(), prefix))
    }
}

/// The brokers of the Sink's KafkaCluster, without secrets.
#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq, Eq)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct KafkaEndpoint {
    /// `host:port` list, comma-separated.
    pub bootstrap_servers: String,
    /// Connect with TLS. The CA bundle, if not the system's roots, is in
    /// [`ENV_KAFKA_CA_PEM`].
    #[serde(default)]
    pub tls: bool,
    /// SASL mechanism; the credentials are in [`ENV_SASL_USERNAME`] and [`ENV_SASL_PASSWORD`].
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub sasl_mechanism: Option<SaslMechanism>,
}

/// Why the configuration cannot be read.
#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    /// The document is not valid.
    #[error("the sink configuration is not valid: {0}")]
    Parse(#[from] serde_json::Error),
    /// The environment variable with the document is missing.
    #[error("{ENV_CONFIG} is not set: the worker needs its configuration document")]
    Missing,
    /// A secret the configuration needs is not in the environment.
    #[error("{0} is not set, but the Kafka connection needs it")]
    MissingSecret(&'static str),
    /// Neither or both of `topic` and `kinesis`.
    #[error("the sink configuration must name exactly one source: a topic or a Kinesis stream")]
    Source,
    /// A consumer property that is Tributary's, or that librdkafka refuses.
    #[error("consumerProperties: {0}")]
    ConsumerProperty(String),
}

/// The librdkafka consumer properties a Sink may not set: the connection is the
/// KafkaCluster's, and the sink's exactly-once rests on the rest.
const RESERVED_PROPERTIES: &[&str] = &[
    "group.id",
    "group.instance.id",
    "enable.auto.commit",
    "enable.auto.offset.store",
    "auto.offset.reset",
    "allow.auto.create.topics",
    "bootstrap.servers",
    "metadata.broker.list",
    "security.protocol",
    "statistics.interval.ms",
];

/// Refuse the consumer properties that are Tributary's (see [`RESERVED_PROPERTIES`], and
/// every `sasl.` and `ssl.` one) and those librdkafka itself refuses (an unknown name, a
/// value out of range), with a message that names the property.
pub fn check_consumer_properties(properties: &BTreeMap<String, String>) -> Result<(), ConfigError> {
    for (name, value) in properties {
        if RESERVED_PROPERTIES.contains(&name.as_str())
            || name.starts_with("sasl.")
            || name.starts_with("ssl.")
        {
            return Err(ConfigError::ConsumerProperty(format!(
                "{name} is set by Tributary (the connection comes from the KafkaCluster; the \
                 group, offsets and commits are the sink's exactly-once); remove it"
            )));
        }
        let mut config = rdkafka::ClientConfig::new();
        config.set(name, value);
        // Creating a client checks the property without connecting anywhere.
        if let Err(error) = config.create::<rdkafka::consumer::BaseConsumer>() {
            return Err(ConfigError::ConsumerProperty(format!(
                "{name}={value}: {error}"
            )));
        }
    }
    Ok(())
}

impl SinkWorkerConfig {
    /// Parse a configuration document.
    pub fn from_json(json: &str) -> Result<Self, ConfigError> {
        let config: Self = serde_json::from_str(json)?;
        check_consumer_properties(&config.consumer_properties)?;
        if config.topic.is_empty() == config.kinesis.is_none() {
            return Err(ConfigError::Source);
        }
        Ok(config)
    }

    /// The source's name in object keys: the topic, or the Kinesis stream.
    pub fn source_name(&self) -> &str {
        match &self.kinesis {
            Some(kinesis) => &kinesis.stream_name,
            None => &self.topic,
        }
    }

    /// The document, as the operator writes it into the ConfigMap.
    pub fn to_json(&self) -> String {
        serde_json::to_string_pretty(self).expect("a configuration always serializes")
    }

    /// The Kafka connection, with secrets from `env`.
    pub fn kafka_connection(
        &self,
        env: impl Fn(&str) -> Option<String>,
    ) -> Result<KafkaConnection, ConfigError> {
        self.kafka.connection(env)
    }
}

impl KafkaEndpoint {
    /// The connection to these brokers, with the secrets read from `env`: the CA bundle from
    /// [`ENV_KAFKA_CA_PEM`], the SASL credentials from [`ENV_SASL_USERNAME`] and
    /// [`ENV_SASL_PASSWORD`].
    pub fn connection(
        &self,
        env: impl Fn(&str) -> Option<String>,
    ) -> Result<KafkaConnection, ConfigError> {
        let tls = self.tls.then(|| env(ENV_KAFKA_CA_PEM));
        let sasl = match self.sasl_mechanism {
            None => None,
            Some(mechanism) => {
                let secret = |name| env(name).ok_or(ConfigError::MissingSecret(name));
                let (username, password) = if mechanism == SaslMechanism::AwsMskIam {
                    (String::new(), String::new())
                } else {
                    (secret(ENV_SASL_USERNAME)?, secret(ENV_SASL_PASSWORD)?)
                };
                Some(SaslCredentials {
                    mechanism,
                    username,
                    password,
                })
            }
        };
        Ok(KafkaConnection {
            bootstrap_servers: self.bootstrap_servers.clone(),
            tls,
            sasl,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn minimal() -> &'static str {
        r#"{
            "sink": "ns/raw",
            "topic": "pin",
            "consumerGroup": "tributary-ns-raw",
            "kafka": {"bootstrapServers": "b:9092"},
            "destination": {"url": "s3://lake/raw", "multipartThresholdBytes": 16777216},
            "deadLetterPrefix": "raw/_dead_letter"
        }"#
    }

    #[test]
    fn defaults_fill_what_a_minimal_document_leaves_out() {
        let config = SinkWorkerConfig::from_json(minimal()).unwrap();
        assert_eq!(config.batch, SinkBatch::default());
        assert_eq!(config.start_from, StartPosition::Earliest);
        let round_trip = SinkWorkerConfig::from_json(&config.to_json()).unwrap();
        assert_eq!(round_trip, config);
    }

    #[test]
    fn a_kinesis_stream_is_the_other_source() {
        let json = r#"{
            "sink": "ns/raw",
            "kinesis": {"streamName": "clicks", "region": "eu-west-1"},
            "destination": {"url": "s3://lake/raw", "multipartThresholdBytes": 16777216},
            "deadLetterPrefix": "raw/_dead_letter"
        }"#;
        let config = SinkWorkerConfig::from_json(json).unwrap();
        assert_eq!(config.source_name(), "clicks");
        assert_eq!(
            SinkWorkerConfig::from_json(&config.to_json()).unwrap(),
            config
        );
        assert_eq!(
            SinkWorkerConfig::from_json(minimal())
                .unwrap()
                .source_name(),
            "pin"
        );
        let both = minimal().replace("\"sink\"", r#""kinesis": {"streamName": "c"}, "sink""#);
        let neither = json.replace(
            r#""kinesis": {"streamName": "clicks", "region": "eu-west-1"},"#,
            "",
        );
        for document in [both, neither] {
            let error = SinkWorkerConfig::from_json(&document).unwrap_err();
            assert!(matches!(error, ConfigError::Source), "{error}");
        }
    }

    #[test]
    fn unknown_fields_are_refused() {
        let json = minimal().replace("\"sink\"", "\"sinkk\": 1, \"sink\"");
        let error = SinkWorkerConfig::from_json(&json).unwrap_err().to_string();
        assert!(error.contains("sinkk"), "{error}");
    }

    #[test]
    fn sasl_secrets_come_from_the_environment() {
        let mut config = SinkWorkerConfig::from_json(minimal()).unwrap();
        config.kafka.tls = true;
        config.kafka.sasl_mechanism = Some(SaslMechanism::ScramSha512);
        let missing = config.kafka_connection(|_| None).unwrap_err();
        assert_eq!(
            missing.to_string(),
            "TRIBUTARY_KAFKA_SASL_USERNAME is not set, but the Kafka connection needs it"
        );
        let connection = config
            .kafka_connection(|name| Some(format!("value of {name}")))
            .unwrap();
        let sasl = connection.sasl.unwrap();
        assert_eq!(sasl.password, "value of TRIBUTARY_KAFKA_SASL_PASSWORD");
        assert_eq!(
            connection.tls,
            Some(Some("value of TRIBUTARY_KAFKA_CA_PEM".into()))
        );
        assert!(!config.to_json().contains("value of"));
    }
}
