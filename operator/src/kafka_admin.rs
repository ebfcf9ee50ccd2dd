//! Kafka administration behind a small trait, so the controllers can be tested without a broker
//! and the real implementation (rdkafka's AdminClient) sits in one place.

use std::collections::{BTreeMap, HashMap};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use async_trait::async_trait;
use k8s_openapi::jiff::Timestamp;
use rdkafka::admin::{
    AdminClient, AdminOptions, AlterConfig, ConfigSource, NewPartitions, NewTopic,
    ResourceSpecifier, TopicReplication,
};
use rdkafka::client::DefaultClientContext;
use rdkafka::consumer::{BaseConsumer, Consumer};
use rdkafka::error::{KafkaError, RDKafkaErrorCode};
use rdkafka::{ClientConfig, Offset, TopicPartitionList};
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
    /// An answer for a consumer group carried an error code.
    #[error("{operation} {group}: {code}")]
    Group {
        /// What we tried.
        operation: &'static str,
        /// The consumer group.
        group: String,
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

/// A consumer group's position on one topic: how far behind the end of each partition it is,
/// and when it last committed.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct GroupLag {
    /// Every partition of the topic, by partition number.
    pub partitions: Vec<PartitionLag>,
    /// Records not yet consumed, over all partitions.
    pub total_lag: i64,
    /// The newest commit time the group recorded in its commit metadata (RFC 3339), if any
    /// commit carries a readable one.
    pub last_commit_time: Option<Timestamp>,
}

/// One partition of a [`GroupLag`].
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct PartitionLag {
    /// The partition.
    pub partition: i32,
    /// The offset of the oldest record Kafka still has.
    pub low: i64,
    /// The offset the next record will get.
    pub high: i64,
    /// The group's committed offset (the next record it will read), if it committed one.
    pub committed: Option<i64>,
    /// Records between the group's position and the end; a partition without a commit counts
    /// from its oldest record.
    pub lag: i64,
}

/// What Kafka reports for one partition: its watermarks and the group's commit.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct PartitionOffsets {
    /// The partition.
    pub partition: i32,
    /// The low watermark.
    pub low: i64,
    /// The high watermark.
    pub high: i64,
    /// The committed offset and its metadata, if the group committed one.
    pub committed: Option<(i64, String)>,
}

impl GroupLag {
    /// The lag of each partition and the newest commit time, from what Kafka reports. Commit
    /// metadata that is empty or not an RFC 3339 time is ignored.
    pub fn from_offsets(offsets: impl IntoIterator<Item = PartitionOffsets>) -> Self {
        let mut lag = GroupLag::default();
        for offsets in offsets {
            let committed = offsets.committed.as_ref().map(|(offset, _)| *offset);
            // Records below the low watermark are gone: a group behind it resumes at it.
            let position = committed.unwrap_or(offsets.low).max(offsets.low);
            let partition_lag = (offsets.high - position).max(0);
            let time = offsets
                .committed
                .as_ref()
                .and_then(|(_, metadata)| metadata.trim().parse::<Timestamp>().ok());
            lag.last_commit_time = lag.last_commit_time.max(time);
            lag.total_lag += partition_lag;
            lag.partitions.push(PartitionLag {
                partition: offsets.partition,
                low: offsets.low,
                high: offsets.high,
                committed,
                lag: partition_lag,
            });
        }
        lag.partitions.sort_by_key(|p| p.partition);
        lag
    }
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
    /// How far `group` is behind on `topic`, from its committed offsets and the watermarks.
    async fn group_lag(&self, group: &str, topic: &str) -> Result<GroupLag, AdminError>;
    /// Delete a consumer group; a group that does not exist counts as deleted. Kafka refuses
    /// to delete a group with members (`NonEmptyGroup`).
    async fn delete_group(&self, group: &str) -> Result<(), AdminError>;
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
        let mut config = connection.client_config()?;
        config
            .set("client.id", "tributary-operator")
            // librdkafka lets producer-type handles (an admin client is one) ask the broker to
            // create a topic a metadata request names; a describe must never create a topic.
            .set("allow.auto.create.topics", "false");
        let client: AdminClient<DefaultClientContext> =
            config.create().map_err(|source| AdminError::Kafka {
                operation: "create admin client",
                source,
            })?;
        let admin = Arc::new(RdKafkaAdmin {
            client: Arc::new(client),
            config,
        });
        clients.insert(key, admin.clone());
        Ok(admin)
    }
}

/// One rdkafka admin client, and the configuration it was made from (for the short-lived
/// consumers that read a group's committed offsets).
pub struct RdKafkaAdmin {
    client: Arc<AdminClient<DefaultClientContext>>,
    config: ClientConfig,
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

    async fn group_lag(&self, group: &str, topic: &str) -> Result<GroupLag, AdminError> {
        let mut config = self.config.clone();
        // A consumer that never subscribes never joins the group: it only asks the group's
        // coordinator for the committed offsets, and commits nothing.
        config
            .set("group.id", group)
            .set("enable.auto.commit", "false");
        let topic = topic.to_owned();
        let offsets = blocking(move || group_offsets(&config, &topic)).await?;
        Ok(GroupLag::from_offsets(offsets))
    }

    async fn delete_group(&self, group: &str) -> Result<(), AdminError> {
        let results = self
            .client
            .delete_groups(&[group], &options())
            .await
            .map_err(kafka("delete group"))?;
        match results.into_iter().next() {
            Some(Err((_, code))) if code != RDKafkaErrorCode::GroupIdNotFound => {
                Err(AdminError::Group {
                    operation: "delete group",
                    group: group.into(),
                    code,
                })
            }
            _ => Ok(()),
        }
    }
}

/// The watermarks of every partition of `topic` and the commits of the consumer `config`
/// names (blocking calls).
fn group_offsets(config: &ClientConfig, topic: &str) -> Result<Vec<PartitionOffsets>, AdminError> {
    let missing = |code| AdminError::Topic {
        operation: "group lag",
        topic: topic.into(),
        code,
    };
    let consumer: BaseConsumer = config.create().map_err(kafka("create consumer"))?;
    let metadata = consumer
        .fetch_metadata(Some(topic), TIMEOUT)
        .map_err(kafka("metadata"))?;
    let partitions: Vec<i32> = match metadata.topics().iter().find(|t| t.name() == topic) {
        Some(t) => match t.error() {
            Some(code) => return Err(missing(code.into())),
            None => t.partitions().iter().map(|p| p.id()).collect(),
        },
        None => Vec::new(),
    };
    drop(metadata);
    if partitions.is_empty() {
        return Err(missing(RDKafkaErrorCode::UnknownTopicOrPartition));
    }
    let mut wanted = TopicPartitionList::new();
    for &partition in &partitions {
        wanted.add_partition(topic, partition);
    }
    let committed = consumer
        .committed_offsets(wanted, TIMEOUT)
        .map_err(kafka("committed offsets"))?;
    partitions
        .into_iter()
        .map(|partition| {
            let (low, high) = consumer
                .fetch_watermarks(topic, partition, TIMEOUT)
                .map_err(kafka("watermarks"))?;
            let committed = committed
                .find_partition(topic, partition)
                .and_then(|element| match element.offset() {
                    Offset::Offset(offset) => Some((offset, commit_metadata(&element))),
                    _ => None,
                });
            Ok(PartitionOffsets {
                partition,
                low,
                high,
                committed,
            })
        })
        .collect()
}

/// A commit's metadata; empty when it is not UTF-8 (rdkafka panics on that rather than
/// returning an error, and a stranger's commit must not take the operator down).
fn commit_metadata(element: &rdkafka::topic_partition_list::TopicPartitionListElem<'_>) -> String {
    std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
        element.metadata().to_owned()
    }))
    .unwrap_or_default()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn offsets(
        partition: i32,
        low: i64,
        high: i64,
        committed: Option<(i64, &str)>,
    ) -> PartitionOffsets {
        PartitionOffsets {
            partition,
            low,
            high,
            committed: committed.map(|(offset, metadata)| (offset, metadata.to_owned())),
        }
    }

    #[test]
    fn lag_counts_from_the_commit_or_the_oldest_record() {
        let lag = GroupLag::from_offsets([
            offsets(2, 0, 100, Some((40, "2026-11-28T21:04:05.123Z"))),
            // No commit: everything Kafka still has.
            offsets(0, 10, 25, None),
            // A commit below the low watermark: those records are gone.
            offsets(1, 50, 60, Some((5, "2026-11-28T21:09:00Z"))),
        ]);
        assert_eq!(lag.total_lag, 60 + 15 + 10);
        let partitions: Vec<(i32, Option<i64>, i64)> = lag
            .partitions
            .iter()
            .map(|p| (p.partition, p.committed, p.lag))
            .collect();
        assert_eq!(
            partitions,
            [(0, None, 15), (1, Some(5), 10), (2, Some(40), 60)]
        );
        assert_eq!(
            lag.last_commit_time,
            Some("2026-11-28T21:09:00Z".parse().unwrap()),
            "the newest commit"
        );
    }

    #[test]
    fn unreadable_commit_metadata_gives_no_time() {
        let lag = GroupLag::from_offsets([
            offsets(0, 0, 10, Some((10, ""))),
            offsets(1, 0, 10, Some((10, "flushed yesterday"))),
        ]);
        assert_eq!((lag.total_lag, lag.last_commit_time), (0, None));
    }
}
