//! The pure middle of the MSK branch: which MSK cluster an object means, what to do given what
//! MSK reports, and which bootstrap string clients get. No I/O; unit-tested from YAML fixtures.

use tributary_crds::KafkaCluster;
use tributary_crds::kafka_cluster::{MskBootstrapBrokers, MskCluster, MskStatus};

use crate::conditions::{Decided, READY};
use crate::msk::Cluster;

/// The condition that holds while MSK creates or changes the cluster.
pub const PROGRESSING: &str = "Progressing";

/// MSK's limit on cluster names.
const NAME_MAX: usize = 64;

/// The MSK cluster's name: `spec.msk.clusterName`, else `<namespace>-<name>` made valid for MSK
/// (dots become dashes; a name over 64 characters is cut and suffixed with a hash of the whole,
/// so it stays stable and distinct).
pub fn cluster_name(cluster: &KafkaCluster) -> String {
    if let Some(name) = cluster
        .spec
        .msk
        .as_ref()
        .and_then(|m| m.cluster_name.clone())
    {
        return name;
    }
    let full = format!(
        "{}-{}",
        cluster.metadata.namespace.as_deref().unwrap_or_default(),
        cluster.metadata.name.as_deref().unwrap_or_default()
    )
    .replace('.', "-");
    if full.len() <= NAME_MAX {
        return full;
    }
    // FNV-1a: a hash that, unlike std's, is the same in every Rust release.
    let hash = full.bytes().fold(0x811c_9dc5_u32, |h, b| {
        (h ^ u32::from(b)).wrapping_mul(0x0100_0193)
    });
    // Kubernetes names are ASCII, so cutting at a byte index is safe.
    format!("{}-{hash:08x}", &full[..NAME_MAX - 9])
}

/// A change MSK makes while the cluster is UPDATING; one at a time, as MSK requires.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Update {
    /// Change the number of brokers.
    BrokerCount {
        /// In MSK.
        from: i32,
        /// In the spec.
        to: i32,
    },
    /// Grow every broker's storage (GiB).
    Storage {
        /// In MSK.
        from: i32,
        /// In the spec.
        to: i32,
    },
}

impl Update {
    /// The Event reason.
    pub fn reason(&self) -> &'static str {
        match self {
            Update::BrokerCount { .. } => "BrokerCountUpdate",
            Update::Storage { .. } => "StorageUpdate",
        }
    }

    /// What the Event says.
    pub fn message(&self) -> String {
        match self {
            Update::BrokerCount { from, to } => {
                format!("changing the number of MSK brokers from {from} to {to}")
            }
            Update::Storage { from, to } => {
                format!("growing MSK broker storage from {from} GiB to {to} GiB")
            }
        }
    }
}

/// Why the spec cannot be carried out on the cluster MSK has.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Blocked {
    /// A provisioned spec found a serverless cluster, or the other way round.
    KindMismatch {
        /// The cluster found.
        arn: String,
        /// Whether the spec asks for a serverless cluster.
        serverless_wanted: bool,
    },
    /// The spec asks for less storage than the brokers have.
    StorageDecrease {
        /// In the spec.
        wanted: i32,
        /// In MSK.
        actual: i32,
    },
}

/// What to do next.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Step {
    /// There is no cluster: create it.
    Create,
    /// `spec.msk.arn` names a cluster that does not exist.
    Missing(String),
    /// MSK is busy with the cluster (the state is given): look again soon.
    Wait(String),
    /// MSK reports the cluster FAILED, with its explanation if it gave one.
    Failed(Option<String>),
    /// The spec asks for what MSK cannot do to this cluster.
    Blocked(Blocked),
    /// Start this change on the ACTIVE cluster.
    Update(Update),
    /// ACTIVE and as the spec says: publish the bootstrap brokers.
    Publish,
}

/// Decide the next step from the spec and what MSK reports (`None`: no cluster found).
pub fn plan(spec: &MskCluster, observed: Option<&Cluster>) -> Step {
    let Some(cluster) = observed else {
        return match &spec.arn {
            Some(arn) => Step::Missing(arn.clone()),
            None => Step::Create,
        };
    };
    match cluster.state.as_str() {
        "ACTIVE" => {}
        "FAILED" => return Step::Failed(cluster.state_message.clone()),
        _ => return Step::Wait(cluster.state.clone()),
    }
    let (wanted, actual) = match (&spec.provisioned, cluster.provisioned) {
        (Some(wanted), Some(actual)) => (wanted, actual),
        (None, None) => return Step::Publish,
        (wanted, _) => {
            return Step::Blocked(Blocked::KindMismatch {
                arn: cluster.arn.clone(),
                serverless_wanted: wanted.is_none(),
            });
        }
    };
    if wanted.broker_count != actual.count {
        return Step::Update(Update::BrokerCount {
            from: actual.count,
            to: wanted.broker_count,
        });
    }
    match actual.storage_gib {
        Some(gib) if wanted.storage_gib > gib => Step::Update(Update::Storage {
            from: gib,
            to: wanted.storage_gib,
        }),
        Some(gib) if wanted.storage_gib < gib => Step::Blocked(Blocked::StorageDecrease {
            wanted: wanted.storage_gib,
            actual: gib,
        }),
        _ => Step::Publish,
    }
}

/// `Ready` and `Progressing` while MSK is in `state` (CREATING, UPDATING, ...).
pub fn waiting(state: &str) -> [Decided; 2] {
    let (reason, message) = match state {
        "CREATING" => (
            "Creating",
            "MSK is creating the cluster (on AWS this takes 15 to 30 minutes)".to_owned(),
        ),
        "DELETING" => (
            "Deleting",
            "MSK is deleting the cluster, which Tributary did not ask for; once it is gone \
             Tributary creates it again, unless spec.msk.arn names it"
                .to_owned(),
        ),
        other => (
            "Updating",
            format!("MSK reports the cluster {other}; waiting for it to become ACTIVE"),
        ),
    };
    [
        Decided::no(READY, reason, message.clone()),
        Decided::yes(PROGRESSING, reason, message),
    ]
}

impl Step {
    /// `Ready` and `Progressing` for this step. For [`Step::Publish`] this is only the start:
    /// the bootstrap brokers and the metadata check decide `Ready`.
    pub fn conditions(&self) -> [Decided; 2] {
        let (reason, message) = match self {
            Step::Wait(state) => return waiting(state),
            Step::Create => return waiting("CREATING"),
            Step::Update(_) => return waiting("UPDATING"),
            Step::Publish => (
                "Connecting",
                "MSK reports the cluster ACTIVE; reading its bootstrap brokers".to_owned(),
            ),
            Step::Missing(arn) => (
                "NotFound",
                format!(
                    "spec.msk.arn {arn} names no MSK cluster (check spec.msk.region too); the ARN \
                     cannot be changed, so create a new KafkaCluster with the right one, or \
                     without it to have Tributary create a cluster"
                ),
            ),
            Step::Failed(why) => (
                "Failed",
                format!(
                    "MSK reports the cluster FAILED{}: fix the cause in AWS (subnets, security \
                     groups, quotas), then delete the failed cluster in MSK; Tributary creates it \
                     again unless spec.msk.arn names it",
                    why.as_ref().map(|w| format!(" ({w})")).unwrap_or_default()
                ),
            ),
            Step::Blocked(Blocked::KindMismatch {
                arn,
                serverless_wanted,
            }) => {
                let (wanted, found) = if *serverless_wanted {
                    ("serverless", "provisioned")
                } else {
                    ("provisioned", "serverless")
                };
                (
                    "KindMismatch",
                    format!(
                        "spec.msk asks for a {wanted} cluster but {arn} is {found}: create a new \
                         KafkaCluster that names a {wanted} cluster, or describe this one as \
                         {found}"
                    ),
                )
            }
            Step::Blocked(Blocked::StorageDecrease { wanted, actual }) => (
                "StorageDecreaseNotSupported",
                format!(
                    "spec.msk.provisioned.storageGiB is {wanted} but the brokers have {actual} \
                     GiB: MSK cannot shrink storage; set storageGiB to {actual} or more"
                ),
            ),
        };
        let idle = if matches!(self, Step::Publish) {
            "Idle"
        } else {
            reason
        };
        [
            Decided::no(READY, reason, message),
            Decided::no(PROGRESSING, idle, "no MSK operation in progress"),
        ]
    }
}

/// The listener whose bootstrap string clients get.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Listener {
    /// Plaintext.
    Plaintext,
    /// TLS, unauthenticated or with client certificates.
    Tls,
    /// SASL/SCRAM over TLS.
    SaslScram,
    /// SASL/IAM over TLS.
    SaslIam,
}

/// The bootstrap string to publish: plaintext if MSK offers it, else TLS, else SASL/SCRAM,
/// else IAM; `None` if MSK reports none.
pub fn bootstrap(brokers: &MskBootstrapBrokers) -> Option<(String, Listener)> {
    [
        (&brokers.plaintext, Listener::Plaintext),
        (&brokers.tls, Listener::Tls),
        (&brokers.sasl_scram, Listener::SaslScram),
        (&brokers.sasl_iam, Listener::SaslIam),
    ]
    .into_iter()
    .find_map(|(servers, listener)| {
        servers
            .as_ref()
            .filter(|s| !s.is_empty())
            .map(|s| (s.clone(), listener))
    })
}

/// `status.msk` for what MSK reports.
pub fn status(cluster: &Cluster, bootstrap_brokers: Option<MskBootstrapBrokers>) -> MskStatus {
    MskStatus {
        arn: Some(cluster.arn.clone()),
        state: Some(cluster.state.clone()),
        current_version: Some(cluster.current_version.clone()).filter(|v| !v.is_empty()),
        bootstrap_brokers,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::msk::Brokers;

    fn kafka_cluster(yaml: &str) -> KafkaCluster {
        serde_yaml::from_str(yaml).expect("a KafkaCluster")
    }

    fn spec(yaml: &str) -> MskCluster {
        kafka_cluster(yaml).spec.msk.expect("spec.msk")
    }

    const PROVISIONED: &str = "
apiVersion: tributary.dev/v1alpha1
kind: KafkaCluster
metadata: {name: events, namespace: data}
spec:
  deletionPolicy: Delete
  msk:
    provisioned:
      kafkaVersion: 3.6.0
      brokerCount: 3
      storageGiB: 200
      subnets: [subnet-a, subnet-b, subnet-c]
";

    const SERVERLESS: &str = "
apiVersion: tributary.dev/v1alpha1
kind: KafkaCluster
metadata: {name: events, namespace: data}
spec:
  msk:
    serverless:
      subnets: [subnet-a, subnet-b]
";

    const ARN: &str = "arn:aws:kafka:eu-west-1:123456789012:cluster/events/abc";

    fn msk(state: &str, brokers: Option<(i32, i32)>) -> Cluster {
        Cluster {
            arn: ARN.into(),
            name: "data-events".into(),
            state: state.into(),
            current_version: "K3AEGXETSR30VB".into(),
            state_message: None,
            provisioned: brokers.map(|(count, gib)| Brokers {
                count,
                storage_gib: Some(gib),
            }),
        }
    }

    #[test]
    fn the_name_defaults_to_namespace_and_name_and_stays_valid_for_msk() {
        assert_eq!(cluster_name(&kafka_cluster(PROVISIONED)), "data-events");
        let named = PROVISIONED.replace("  msk:\n", "  msk:\n    clusterName: Shared-1\n");
        assert_eq!(cluster_name(&kafka_cluster(&named)), "Shared-1");
        let dotted = PROVISIONED.replace("name: events", "name: events.v2");
        assert_eq!(cluster_name(&kafka_cluster(&dotted)), "data-events-v2");

        let long = PROVISIONED.replace("name: events", &format!("name: {}", "x".repeat(80)));
        let name = cluster_name(&kafka_cluster(&long));
        assert_eq!(name.len(), 64);
        assert!(name.starts_with("data-xxx"), "{name}");
        assert_eq!(name, cluster_name(&kafka_cluster(&long)), "stable");
        let other = long.replace("name: x", "name: y");
        assert_ne!(name, cluster_name(&kafka_cluster(&other)), "distinct");
    }

    #[test]
    fn nothing_found_is_created_unless_the_spec_names_an_arn() {
        assert_eq!(plan(&spec(PROVISIONED), None), Step::Create);
        let adopt = PROVISIONED.replace("  msk:\n", &format!("  msk:\n    arn: {ARN}\n"));
        let step = plan(&spec(&adopt), None);
        assert_eq!(step, Step::Missing(ARN.into()));
        let [ready, _] = step.conditions();
        assert_eq!((ready.status, ready.reason), (false, "NotFound"));
        assert!(ready.message.contains("create a new KafkaCluster"));
    }

    #[test]
    fn creating_and_updating_wait_with_progressing() {
        for (state, reason) in [
            ("CREATING", "Creating"),
            ("UPDATING", "Updating"),
            ("REBOOTING_BROKER", "Updating"),
            ("DELETING", "Deleting"),
        ] {
            let step = plan(&spec(PROVISIONED), Some(&msk(state, Some((3, 200)))));
            assert_eq!(step, Step::Wait(state.into()));
            let [ready, progressing] = step.conditions();
            assert_eq!((ready.status, ready.reason), (false, reason), "{state}");
            assert_eq!((progressing.type_, progressing.status), (PROGRESSING, true));
        }
    }

    #[test]
    fn a_failed_cluster_says_what_msk_said() {
        let mut failed = msk("FAILED", Some((3, 200)));
        failed.state_message = Some("subnet-c is in the same zone as subnet-a".into());
        let step = plan(&spec(PROVISIONED), Some(&failed));
        let [ready, progressing] = step.conditions();
        assert_eq!((ready.status, ready.reason), (false, "Failed"));
        assert!(ready.message.contains("(subnet-c is in the same zone"));
        assert!(!progressing.status);
    }

    #[test]
    fn an_active_cluster_as_specified_is_published() {
        let step = plan(&spec(PROVISIONED), Some(&msk("ACTIVE", Some((3, 200)))));
        assert_eq!(step, Step::Publish);
        let [_, progressing] = step.conditions();
        assert_eq!((progressing.status, progressing.reason), (false, "Idle"));
        assert_eq!(
            plan(&spec(SERVERLESS), Some(&msk("ACTIVE", None))),
            Step::Publish
        );
    }

    #[test]
    fn broker_count_first_then_storage_then_nothing() {
        let spec = spec(PROVISIONED);
        assert_eq!(
            plan(&spec, Some(&msk("ACTIVE", Some((2, 100))))),
            Step::Update(Update::BrokerCount { from: 2, to: 3 })
        );
        let storage = plan(&spec, Some(&msk("ACTIVE", Some((3, 100)))));
        assert_eq!(
            storage,
            Step::Update(Update::Storage { from: 100, to: 200 })
        );
        let [ready, progressing] = storage.conditions();
        assert_eq!(
            (ready.reason, progressing.status),
            ("Updating", true),
            "Ready=False while MSK applies the change"
        );
        assert_eq!(
            plan(&spec, Some(&msk("UPDATING", Some((3, 100))))),
            Step::Wait("UPDATING".into()),
            "never a second change while MSK is busy"
        );
    }

    #[test]
    fn storage_never_shrinks() {
        let step = plan(&spec(PROVISIONED), Some(&msk("ACTIVE", Some((3, 500)))));
        assert_eq!(
            step,
            Step::Blocked(Blocked::StorageDecrease {
                wanted: 200,
                actual: 500
            })
        );
        let [ready, _] = step.conditions();
        assert_eq!(ready.reason, "StorageDecreaseNotSupported");
        assert!(ready.message.contains("set storageGiB to 500 or more"));
    }

    #[test]
    fn adopting_a_cluster_of_the_other_kind_is_refused() {
        let step = plan(&spec(SERVERLESS), Some(&msk("ACTIVE", Some((3, 200)))));
        let [ready, _] = step.conditions();
        assert_eq!(ready.reason, "KindMismatch");
        assert!(
            ready
                .message
                .contains("asks for a serverless cluster but arn:")
        );
    }

    #[test]
    fn bootstrap_prefers_plaintext_then_tls_then_scram_then_iam() {
        let mut brokers = MskBootstrapBrokers {
            plaintext: Some("b-1:9092".into()),
            tls: Some("b-1:9094".into()),
            sasl_scram: Some("b-1:9096".into()),
            sasl_iam: Some("b-1:9098".into()),
        };
        let mut order = Vec::new();
        while let Some((servers, listener)) = bootstrap(&brokers) {
            order.push((servers, listener));
            match listener {
                Listener::Plaintext => brokers.plaintext = None,
                Listener::Tls => brokers.tls = Some(String::new()),
                Listener::SaslScram => brokers.sasl_scram = None,
                Listener::SaslIam => brokers.sasl_iam = None,
            }
        }
        assert_eq!(
            order,
            [
                ("b-1:9092".to_owned(), Listener::Plaintext),
                ("b-1:9094".to_owned(), Listener::Tls),
                ("b-1:9096".to_owned(), Listener::SaslScram),
                ("b-1:9098".to_owned(), Listener::SaslIam),
            ]
        );
    }

    #[test]
    fn status_records_arn_state_and_version() {
        let status = status(&msk("CREATING", Some((3, 200))), None);
        assert_eq!(status.arn.as_deref(), Some(ARN));
        assert_eq!(status.state.as_deref(), Some("CREATING"));
        assert_eq!(status.current_version.as_deref(), Some("K3AEGXETSR30VB"));
    }
}
