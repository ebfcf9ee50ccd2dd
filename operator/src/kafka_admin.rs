//! Kafka administration behind a small trait, so the controllers can be tested without a broker
//! and the real implementation (rdkafka's AdminClient) sits in one place.

use std::collections::{BTreeMap, HashMap};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use async_trait::async_trait;
use rdkafka::admin::{
    AdminClient, AdminOptions, AlterConfig, ConfigSource, NewPartitions, NewTopic,
    ResourceSpecifier, TopicReplication,
};
use rdkafka::client::DefaultClientContext;
use rdkafka::error::{KafkaError, RDKafkaErrorCode};
use tributary_workers::connect::{ConnectError, KafkaConnection};

/// What went wrong talking to Kafka.
#[derive(Debug, thiserror::Error)]
pub enum AdminError {
    /// The connection settings cannot be used.
    #[error(transparent)]
    Connect(#[from] ConnectError),
    /// The broker refused or did not answer.
    #[error("{operation}: {source}")]
    Kafka {
        /// What we tried.
        operation: &'static str,
        /// librdkafka's error.
        #[source]
        source: KafkaError,
    },
    /// An answer for a topic carried an error code.
    #[error("{operation} {topic}: {code}")]
    Topic {
        /// What we tried.
        operation: &'static str,
        /// The topic.
        topic: String,
        /// The broker's error code.
        code: RDKafkaErrorCode,
    },
}

/// A topic as Kafka has it.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct TopicState {
    /// Partition count.
    pub partitions: i32,
    /// Replicas of partition 0.
    pub replication_factor: i32,
    /// Every config with its value; `dynamic` marks values set on the topic (not defaults).
    pub configs: BTreeMap<String, ConfigValue>,
}

/// One topic config as Kafka reports it.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct ConfigValue {
    /// The value (`None` for sensitive or unset values).
    pub value: Option<String>,
    /// Set on the topic itself rather than inherited from the broker or the default.
    pub dynamic: bool,
}

/// The administrative operations the controllers need.
#[async_trait]
pub trait KafkaAdmin: Send + Sync {
    /// Brokers in the cluster (a metadata request: the connectivity check).
    async fn broker_count(&self) -> Result<usize, AdminError>;
    /// The topic, or `None` if it does not exist.
    async fn describe_topic(&self, topic: &str) -> Result<Option<TopicState>, AdminError>;
    /// Create a topic; `replication_factor` `None` takes the broker's default.
    async fn create_topic(
        &self,
        topic: &str,
        partitions: i32,
        replication_factor: Option<i32>,
        configs: &BTreeMap<String, String>,
    ) -> Result<(), AdminError>;
    /// Raise the partition count to `total`.
    async fn create_partitions(&self, topic: &str, total: i32) -> Result<(), AdminError>;
    /// Make `dynamic` the topic's complete set of topic-level config overrides.
    async fn set_dynamic_configs(
        &self,
        topic: &str,
        dynamic: &BTreeMap<String, String>,
    ) -> Result<(), AdminError>;
    /// Delete a topic; a topic that does not exist counts as deleted.
    async fn delete_topic(&self, topic: &str) -> Result<(), AdminError>;
}

/// Hands out admin clients per cluster connection.
pub trait KafkaAdmins: Send + Sync {
    /// An admin client for `connection`, reused while the connection is unchanged.
    fn admin(&self, connection: &KafkaConnection) -> Result<Arc<dyn KafkaAdmin>, AdminError>;
}

/// The real implementation, on rdkafka. Clients are cached by connection settings.
#[derive(Default)]
pub struct RdKafkaAdmins {
    clients: Mutex<HashMap<String, Arc<RdKafkaAdmin>>>,
}

impl KafkaAdmins for RdKafkaAdmins {
    fn admin(&self, connection: &KafkaConnection) -> Result<Arc<dyn KafkaAdmin>, AdminError> {
        let key = connection.cache_key();
        let mut clients = self.clients.lock().expect("admin cache lock");
        if let Some(client) = clients.get(&key) {
            return Ok(client.clone());
        }
        let client: AdminClient<DefaultClientContext> = connection
            .client_config()?
            .set("client.id", "tributary-operator")
            // librdkafka lets producer-type handles (an admin client is one) ask the broker to
            // create a topic a metadata request names; a describe must never create a topic.
            .set("allow.auto.create.topics", "false")
            .create()
            .map_err(|source| AdminError::Kafka {
                operation: "create admin client",
                source,
            })?;
        let admin = Arc::new(RdKafkaAdmin {
            client: Arc::new(client),
        });
        clients.insert(key, admin.clone());
        Ok(admin)
    }
}

/// One rdkafka admin client.
pub struct RdKafkaAdmin {
    client: Arc<AdminClient<DefaultClientContext>>,
}

const TIMEOUT: Duration = Duration::from_secs(15);

fn options() -> AdminOptions {
    AdminOptions::new()
        .request_timeout(Some(TIMEOUT))
        .operation_timeout(Some(TIMEOUT))
}

fn kafka(operation: &'static str) -> impl FnOnce(KafkaError) -> AdminError {
    move |source| AdminError::Kafka { operation, source }
}

/// The result of a one-topic admin request; `fine` is an error code that counts as success.
fn outcome<T, K>(
    results: Vec<Result<T, (K, RDKafkaErrorCode)>>,
    operation: &'static str,
    topic: &str,
    fine: Option<RDKafkaErrorCode>,
) -> Result<(), AdminError> {
    match results.into_iter().next() {
        Some(Err((_, code))) if Some(code) != fine => Err(AdminError::Topic {
            operation,
            topic: topic.into(),
            code,
        }),
        _ => Ok(()),
    }
}

/// Metadata requests block; run them off the async threads.
async fn blocking<T: Send + 'static>(f: impl FnOnce() -> T + Send + 'static) -> T {
    tokio::task::spawn_blocking(f)
        .await
        .expect("metadata task does not panic")
}

#[async_trait]
impl KafkaAdmin for RdKafkaAdmin {
    async fn broker_count(&self) -> Result<usize, AdminError> {
        let client = self.client.clone();
        let metadata = blocking(move || client.inner().fetch_metadata(None, TIMEOUT))
            .await
            .map_err(kafka("metadata"))?;
        Ok(metadata.brokers().len())
    }

    async fn describe_topic(&self, topic: &str) -> Result<Option<TopicState>, AdminError> {
        let client = self.client.clone();
        let name = topic.to_owned();
        let metadata = blocking(move || client.inner().fetch_metadata(Some(&name), TIMEOUT))
            .await
            .map_err(kafka("metadata"))?;
        // Metadata borrows librdkafka memory that may not cross an await: copy what we need.
        let found = metadata
            .topics()
            .iter()
            .find(|t| t.name() == topic)
            .map(|t| {
                let replicas = t
                    .partitions()
                    .iter()
                    .map(|p| p.replicas().len())
                    .max()
                    .unwrap_or(0) as i32;
                (
                    t.error().map(RDKafkaErrorCode::from),
                    t.partitions().len() as i32,
                    replicas,
                )
            });
        drop(metadata);
        let (partitions, replication_factor) = match found {
            None
            | Some((Some(RDKafkaErrorCode::UnknownTopicOrPartition), _, _))
            | Some((None, 0, _)) => return Ok(None),
            Some((Some(code), _, _)) => {
                return Err(AdminError::Topic {
                    operation: "describe",
                    topic: topic.into(),
                    code,
                });
            }
            Some((None, partitions, replicas)) => (partitions, replicas),
        };
        let described = self
            .client
            .describe_configs(&[ResourceSpecifier::Topic(topic)], &options())
            .await
            .map_err(kafka("describe configs"))?;
        let resource = match described.into_iter().next() {
            Some(Ok(resource)) => resource,
            Some(Err(code)) => {
                return Err(AdminError::Topic {
                    operation: "describe configs",
                    topic: topic.into(),
                    code,
                });
            }
            None => {
                return Err(AdminError::Topic {
                    operation: "describe configs",
                    topic: topic.into(),
                    code: RDKafkaErrorCode::Unknown,
                });
            }
        };
        let configs = resource
            .entries
            .into_iter()
            .map(|e| {
                let dynamic = matches!(e.source, ConfigSource::DynamicTopic);
                (
                    e.name,
                    ConfigValue {
                        value: e.value,
                        dynamic,
                    },
                )
            })
            .collect();
        Ok(Some(TopicState {
            partitions,
            replication_factor,
            configs,
        }))
    }

    async fn create_topic(
        &self,
        topic: &str,
        partitions: i32,
        replication_factor: Option<i32>,
        configs: &BTreeMap<String, String>,
    ) -> Result<(), AdminError> {
        let mut new = NewTopic::new(
            topic,
            partitions,
            TopicReplication::Fixed(replication_factor.unwrap_or(-1)),
        );
        for (key, value) in configs {
            new = new.set(key, value);
        }
        let results = self
            .client
            .create_topics(&[new], &options())
            .await
            .map_err(kafka("create topic"))?;
        // A topic created meanwhile (by another attempt) is what we wanted.
        outcome(
            results,
            "create",
            topic,
            Some(RDKafkaErrorCode::TopicAlreadyExists),
        )
    }

    async fn create_partitions(&self, topic: &str, total: i32) -> Result<(), AdminError> {
        let new = NewPartitions::new(topic, total as usize);
        let results = self
            .client
            .create_partitions(&[new], &options())
            .await
            .map_err(kafka("create partitions"))?;
        outcome(results, "create partitions", topic, None)
    }

    async fn set_dynamic_configs(
        &self,
        topic: &str,
        dynamic: &BTreeMap<String, String>,
    ) -> Result<(), AdminError> {
        let mut alter = AlterConfig::new(ResourceSpecifier::Topic(topic));
        for (key, value) in dynamic {
            alter = alter.set(key, value);
        }
        let results = self
            .client
            .alter_configs(&[alter], &options())
            .await
            .map_err(kafka("alter configs"))?;
        outcome(results, "alter configs", topic, None)
    }

    async fn delete_topic(&self, topic: &str) -> Result<(), AdminError> {
        let results = self
            .client
            .delete_topics(&[topic], &options())
            .await
            .map_err(kafka("delete topic"))?;
        outcome(
            results,
            "delete",
            topic,
            Some(RDKafkaErrorCode::UnknownTopicOrPartition),
        )
    }
}
