//! The pure middle of the Topic controller: from the spec, what Kafka has, and what was applied
//! last time, decide what to change. No I/O here; unit-tested from YAML fixtures.

use std::collections::BTreeMap;

use tributary_crds::Topic;

use crate::kafka_admin::TopicState;

/// What the spec asks of Kafka.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Desired {
    /// The topic's name in Kafka.
    pub name: String,
    /// Partitions wanted.
    pub partitions: i32,
    /// Replication factor wanted, if the spec sets one.
    pub replication_factor: Option<i32>,
    /// The configs the spec owns, as strings.
    pub configs: BTreeMap<String, String>,
}

impl Desired {
    /// Read the desired state from a (validated) Topic.
    pub fn from_topic(topic: &Topic) -> Self {
        let configs = topic
            .spec
            .config
            .iter()
            .map(|(k, v)| (k.clone(), config_string(v)))
            .collect();
        Self {
            name: topic_name(topic),
            partitions: topic.spec.partitions,
            replication_factor: topic.spec.replication_factor,
            configs,
        }
    }
}

/// The topic's name in Kafka: `spec.topicName`, or `metadata.name`.
pub fn topic_name(topic: &Topic) -> String {
    topic.kafka_name().to_owned()
}

/// A config value as Kafka takes it: strings as they are, numbers and booleans written out.
fn config_string(value: &serde_json::Value) -> String {
    match value {
        serde_json::Value::String(s) => s.clone(),
        other => other.to_string(),
    }
}

/// Why the spec cannot be carried out as written.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Blocked {
    /// The spec asks for fewer partitions than Kafka has.
    PartitionDecrease {
        /// In the spec.
        wanted: i32,
        /// In Kafka.
        actual: i32,
    },
    /// The spec asks for another replication factor than the topic has.
    ReplicationFactorChange {
        /// In the spec.
        wanted: i32,
        /// In Kafka.
        actual: i32,
    },
}

impl Blocked {
    /// The condition reason.
    pub fn reason(&self) -> &'static str {
        match self {
            Blocked::PartitionDecrease { .. } => "PartitionDecreaseNotSupported",
            Blocked::ReplicationFactorChange { .. } => "ReplicationFactorChangeNotSupported",
        }
    }

    /// What to tell the user.
    pub fn message(&self) -> String {
        match self {
            Blocked::PartitionDecrease { wanted, actual } => format!(
                "spec.partitions is {wanted} but the topic has {actual} partitions: Kafka cannot remove \
                 partitions; set spec.partitions to {actual} or more"
            ),
            Blocked::ReplicationFactorChange { wanted, actual } => format!(
                "spec.replicationFactor is {wanted} but the topic has {actual} replicas: changing it needs a \
                 partition reassignment, which Tributary does not do; set it to {actual}"
            ),
        }
    }
}

/// The changes to make.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Plan {
    /// Create the topic (it does not exist).
    pub create: bool,
    /// Raise the partition count to this.
    pub partitions: Option<i32>,
    /// Replace the topic's config overrides with this complete set.
    pub dynamic_configs: Option<BTreeMap<String, String>>,
    /// Owned keys someone changed in Kafka since we applied them (reverted by this plan).
    pub drifted_keys: Vec<String>,
    /// Keys the spec no longer owns; their overrides are removed.
    pub released_keys: Vec<String>,
    /// What cannot be done.
    pub blocked: Vec<Blocked>,
}

impl Plan {
    /// Whether Kafka needs any change.
    pub fn changes_kafka(&self) -> bool {
        self.create || self.partitions.is_some() || self.dynamic_configs.is_some()
    }
}

/// Decide the changes. `applied` is what the last successful reconcile applied (status.configs).
pub fn plan(
    desired: &Desired,
    actual: Option<&TopicState>,
    applied: &BTreeMap<String, String>,
) -> Plan {
    let Some(actual) = actual else {
        return Plan {
            create: true,
            ..Plan::default()
        };
    };
    let mut plan = Plan::default();

    match desired.partitions.cmp(&actual.partitions) {
        std::cmp::Ordering::Greater => plan.partitions = Some(desired.partitions),
        std::cmp::Ordering::Less => plan.blocked.push(Blocked::PartitionDecrease {
            wanted: desired.partitions,
            actual: actual.partitions,
        }),
        std::cmp::Ordering::Equal => {}
    }
    if let Some(wanted) = desired.replication_factor
        && wanted != actual.replication_factor
    {
        plan.blocked.push(Blocked::ReplicationFactorChange {
            wanted,
            actual: actual.replication_factor,
        });
    }

    let current: BTreeMap<String, String> = actual
        .configs
        .iter()
        .filter(|(_, c)| c.dynamic)
        .filter_map(|(k, c)| c.value.clone().map(|v| (k.clone(), v)))
        .collect();
    let mut wanted = current.clone();
    for key in applied.keys().filter(|k| !desired.configs.contains_key(*k)) {
        if wanted.remove(key).is_some() {
            plan.released_keys.push(key.clone());
        }
    }
    for (key, value) in &desired.configs {
        let in_kafka = actual.configs.get(key).and_then(|c| c.value.as_ref());
        if in_kafka != Some(value) && applied.get(key) == Some(value) {
            plan.drifted_keys.push(key.clone());
        }
        wanted.insert(key.clone(), value.clone());
    }
    // A value equal to the inherited default still becomes an override: the spec owns the key.
    if wanted != current {
        plan.dynamic_configs = Some(wanted);
    }
    plan
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::kafka_admin::ConfigValue;

    fn topic(yaml: &str) -> Topic {
        serde_yaml::from_str(yaml).expect("a Topic")
    }

    const PIN: &str = "
apiVersion: tributary.dev/v1alpha1
kind: Topic
metadata: {name: pin, namespace: demo}
spec:
  clusterRef: {name: local}
  partitions: 3
  config:
    retention.ms: 604800000
    cleanup.policy: delete
    compression.type: zstd
";

    fn kafka(partitions: i32, dynamic: &[(&str, &str)], defaults: &[(&str, &str)]) -> TopicState {
        let mut configs = BTreeMap::new();
        for (k, v) in defaults {
            configs.insert(
                k.to_string(),
                ConfigValue {
                    value: Some(v.to_string()),
                    dynamic: false,
                },
            );
        }
        for (k, v) in dynamic {
            configs.insert(
                k.to_string(),
                ConfigValue {
                    value: Some(v.to_string()),
                    dynamic: true,
                },
            );
        }
        TopicState {
            partitions,
            replication_factor: 1,
            configs,
        }
    }

    fn map(pairs: &[(&str, &str)]) -> BTreeMap<String, String> {
        pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect()
    }

    #[test]
    fn desired_state_reads_names_and_writes_values_as_kafka_takes_them() {
        let desired = Desired::from_topic(&topic(PIN));
        assert_eq!(desired.name, "pin");
        assert_eq!(desired.configs["retention.ms"], "604800000");
        let renamed =
            topic(&PIN.replace("partitions: 3", "partitions: 3\n  topicName: Pin_Events"));
        assert_eq!(Desired::from_topic(&renamed).name, "Pin_Events");
    }

    #[test]
    fn a_missing_topic_is_created() {
        let plan = plan(&Desired::from_topic(&topic(PIN)), None, &BTreeMap::new());
        assert!(plan.create && plan.changes_kafka());
    }

    #[test]
    fn an_adopted_topic_in_sync_needs_nothing() {
        let desired = Desired::from_topic(&topic(PIN));
        let actual = kafka(
            3,
            &[
                ("retention.ms", "604800000"),
                ("cleanup.policy", "delete"),
                ("compression.type", "zstd"),
            ],
            &[("segment.ms", "604800000")],
        );
        assert_eq!(
            plan(&desired, Some(&actual), &desired.configs),
            Plan::default()
        );
    }

    #[test]
    fn partitions_only_grow() {
        let desired = Desired::from_topic(&topic(PIN));
        let grow = plan(&desired, Some(&kafka(2, &[], &[])), &BTreeMap::new());
        assert_eq!(grow.partitions, Some(3));
        let shrink = plan(&desired, Some(&kafka(6, &[], &[])), &BTreeMap::new());
        assert_eq!(shrink.partitions, None);
        assert_eq!(
            shrink.blocked,
            [Blocked::PartitionDecrease {
                wanted: 3,
                actual: 6
            }]
        );
        assert_eq!(shrink.blocked[0].reason(), "PartitionDecreaseNotSupported");
        assert!(
            shrink.blocked[0]
                .message()
                .contains("set spec.partitions to 6 or more")
        );
    }

    #[test]
    fn a_replication_factor_change_is_refused() {
        let desired = Desired::from_topic(&topic(
            &PIN.replace("partitions: 3", "partitions: 3\n  replicationFactor: 3"),
        ));
        let plan = plan(&desired, Some(&kafka(3, &[], &[])), &BTreeMap::new());
        assert_eq!(
            plan.blocked,
            [Blocked::ReplicationFactorChange {
                wanted: 3,
                actual: 1
            }]
        );
    }

    #[test]
    fn drift_on_owned_keys_is_reverted_and_other_overrides_are_kept() {
        let desired = Desired::from_topic(&topic(PIN));
        // Someone set retention.ms in Kafka and added an override the spec does not own.
        let actual = kafka(
            3,
            &[
                ("retention.ms", "1000"),
                ("cleanup.policy", "delete"),
                ("compression.type", "zstd"),
                ("segment.ms", "60000"),
            ],
            &[],
        );
        let plan = plan(&desired, Some(&actual), &desired.configs);
        assert_eq!(plan.drifted_keys, ["retention.ms"]);
        let written = plan.dynamic_configs.expect("configs are rewritten");
        assert_eq!(written["retention.ms"], "604800000");
        assert_eq!(
            written["segment.ms"], "60000",
            "a key the spec does not own keeps its value"
        );
    }

    #[test]
    fn a_spec_change_is_not_drift() {
        let desired = Desired::from_topic(&topic(PIN));
        let previously = map(&[
            ("retention.ms", "1000"),
            ("cleanup.policy", "delete"),
            ("compression.type", "zstd"),
        ]);
        let actual = kafka(
            3,
            &[
                ("retention.ms", "1000"),
                ("cleanup.policy", "delete"),
                ("compression.type", "zstd"),
            ],
            &[],
        );
        let plan = plan(&desired, Some(&actual), &previously);
        assert!(plan.drifted_keys.is_empty());
        assert_eq!(
            plan.dynamic_configs.expect("changed")["retention.ms"],
            "604800000"
        );
    }

    #[test]
    fn keys_removed_from_the_spec_lose_their_override() {
        let desired = Desired::from_topic(&topic(PIN));
        let previously = map(&[
            ("retention.ms", "604800000"),
            ("cleanup.policy", "delete"),
            ("compression.type", "zstd"),
            ("max.message.bytes", "2097152"),
        ]);
        let actual = kafka(
            3,
            &[
                ("retention.ms", "604800000"),
                ("cleanup.policy", "delete"),
                ("compression.type", "zstd"),
                ("max.message.bytes", "2097152"),
            ],
            &[],
        );
        let plan = plan(&desired, Some(&actual), &previously);
        assert_eq!(plan.released_keys, ["max.message.bytes"]);
        assert!(
            !plan
                .dynamic_configs
                .expect("changed")
                .contains_key("max.message.bytes")
        );
    }
}
