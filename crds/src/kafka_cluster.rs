//! `KafkaCluster`: an existing Kafka, or an Amazon MSK cluster that Tributary provisions.

use k8s_openapi::apimachinery::pkg::apis::meta::v1::Condition;
use kube::{CustomResource, KubeSchema};
use serde::{Deserialize, Serialize};

use crate::common::{DeletionPolicy, SecretKeyRef, Tags};
use crate::messages as msg;

/// A Kafka cluster that Topics and Sinks use: either an existing cluster reached through
/// `external.bootstrapServers`, or an Amazon MSK cluster that the operator provisions (or adopts)
/// through `msk`. Exactly one of the two is set.
#[derive(CustomResource, KubeSchema, Serialize, Deserialize, Clone, Debug, PartialEq)]
#[kube(
    group = "tributary.dev",
    doc = "A Kafka cluster for Topics and Sinks: an existing one (external) or an Amazon MSK cluster the operator provisions or adopts (msk).",
    version = "v1alpha1",
    kind = "KafkaCluster",
    plural = "kafkaclusters",
    shortname = "kc",
    namespaced,
    cel,
    status = "KafkaClusterStatus",
    derive = "PartialEq",
    printcolumn(
        name = "Ready",
        type_ = "string",
        json_path = r#".status.conditions[?(@.type=="Ready")].status"#
    ),
    printcolumn(name = "Brokers", type_ = "integer", json_path = ".status.brokerCount"),
    printcolumn(
        name = "Bootstrap",
        type_ = "string",
        json_path = ".status.bootstrapServers",
        priority = "1"
    ),
    printcolumn(
        name = "Age",
        type_ = "date",
        json_path = ".metadata.creationTimestamp"
    )
)]
#[x_kube(validation = Rule::new("has(self.external) != has(self.msk)").message(msg::KC_ONE_OF))]
#[x_kube(validation = Rule::new("has(self.msk) == has(oldSelf.msk)").message(msg::KC_NO_SWITCH))]
#[serde(rename_all = "camelCase")]
pub struct KafkaClusterSpec {
    /// Connect to a Kafka cluster that already exists (self-managed, MSK managed elsewhere, or
    /// any Kafka-protocol broker).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub external: Option<ExternalKafka>,
    /// Provision (or adopt) an Amazon MSK cluster.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub msk: Option<MskCluster>,
    /// What happens to an MSK cluster when this object is deleted: `Retain` (default) keeps it,
    /// `Delete` deletes it. Ignored for `external` clusters, which Tributary never deletes.
    #[serde(default)]
    pub deletion_policy: DeletionPolicy,
}

/// Connection to an existing Kafka cluster.
#[derive(KubeSchema, Serialize, Deserialize, Clone, Debug, PartialEq)]
#[x_kube(validation = Rule::new("self.bootstrapServers.all(s, s.matches('^[^\\\\s:,]+:[0-9]{1,5}$'))").message(msg::KC_BOOTSTRAP))]
#[serde(rename_all = "camelCase")]
pub struct ExternalKafka {
    /// Bootstrap servers as `host:port`, at least one.
    #[schemars(length(min = 1, max = 32))]
    pub bootstrap_servers: Vec<String>,
    /// TLS for the connection; absent means plaintext.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tls: Option<KafkaTls>,
    /// SASL authentication; absent means none.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub sasl: Option<KafkaSasl>,
}

/// TLS settings for a Kafka connection.
#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq, Eq, schemars::JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct KafkaTls {
    /// PEM bundle of the CA that signed the brokers' certificates, from a Secret. Absent: the
    /// system's trusted roots.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ca_secret_ref: Option<SecretKeyRef>,
}

/// SASL authentication for a Kafka connection.
#[derive(KubeSchema, Serialize, Deserialize, Clone, Debug, PartialEq, Eq)]
#[x_kube(validation = Rule::new("self.mechanism == 'AwsMskIam' || has(self.secretRef)").message(msg::KC_SASL_SECRET))]
#[serde(rename_all = "camelCase")]
pub struct KafkaSasl {
    /// The SASL mechanism.
    pub mechanism: SaslMechanism,
    /// Secret holding the user name and password (not used by `AwsMskIam`, which signs with the
    /// pod's AWS credentials).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub secret_ref: Option<SaslSecretRef>,
}

/// SASL mechanisms.
#[derive(Serialize, Deserialize, Clone, Copy, Debug, PartialEq, Eq, schemars::JsonSchema)]
pub enum SaslMechanism {
    /// SCRAM-SHA-256.
    ScramSha256,
    /// SCRAM-SHA-512 (what MSK's SASL/SCRAM uses).
    ScramSha512,
    /// PLAIN; only sensible over TLS.
    Plain,
    /// AWS IAM authentication for MSK.
    AwsMskIam,
}

/// A Secret with a user name and a password.
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq, Eq, schemars::JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct SaslSecretRef {
    /// Name of the Secret in the object's namespace.
    #[schemars(length(min = 1, max = 253))]
    pub name: String,
    /// Key of the user name in the Secret.
    #[serde(default = "default_username_key")]
    pub username_key: String,
    /// Key of the password in the Secret.
    #[serde(default = "default_password_key")]
    pub password_key: String,
}

fn default_username_key() -> String {
    "username".into()
}

fn default_password_key() -> String {
    "password".into()
}

/// An Amazon MSK cluster, provisioned or serverless.
#[derive(KubeSchema, Serialize, Deserialize, Clone, Debug, PartialEq)]
#[x_kube(validation = Rule::new("has(self.provisioned) != has(self.serverless)").message(msg::MSK_ONE_OF))]
#[x_kube(validation = Rule::new("has(self.serverless) == has(oldSelf.serverless)").message(msg::MSK_NO_SWITCH))]
#[x_kube(validation = Rule::new("has(self.clusterName) == has(oldSelf.clusterName) && (!has(self.clusterName) || self.clusterName == oldSelf.clusterName)").message(msg::MSK_NAME_IMMUTABLE))]
#[x_kube(validation = Rule::new("!has(oldSelf.arn) || (has(self.arn) && self.arn == oldSelf.arn)").message(msg::MSK_ARN_IMMUTABLE))]
#[serde(rename_all = "camelCase")]
pub struct MskCluster {
    /// Name of the MSK cluster. Defaults to `<namespace>-<name>` of this object. Immutable.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(
        length(min = 1, max = 64),
        regex(pattern = r"^[a-zA-Z0-9][a-zA-Z0-9-]*$")
    )]
    pub cluster_name: Option<String>,
    /// ARN of an existing MSK cluster to adopt instead of creating one. Once set it cannot be
    /// changed; the operator also records the ARN of a cluster it created in `status.msk.arn`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(regex(pattern = r"^arn:aws[a-z-]*:kafka:[a-z0-9-]+:[0-9]{12}:cluster/.+$"))]
    pub arn: Option<String>,
    /// AWS region; defaults to the operator's region.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub region: Option<String>,
    /// A provisioned cluster (brokers you size).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub provisioned: Option<MskProvisioned>,
    /// A serverless cluster (IAM authentication only).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub serverless: Option<MskServerless>,
    /// AWS tags for the cluster.
    #[serde(default, skip_serializing_if = "Tags::is_empty")]
    pub tags: Tags,
}

/// A provisioned MSK cluster.
#[derive(KubeSchema, Serialize, Deserialize, Clone, Debug, PartialEq)]
#[x_kube(validation = Rule::new("self.brokerCount % size(self.subnets) == 0").message(msg::MSK_BROKERS_PER_SUBNET))]
#[serde(rename_all = "camelCase")]
pub struct MskProvisioned {
    /// Apache Kafka version, e.g. `3.6.0`. Upgrades are not managed yet, so it is immutable.
    #[schemars(regex(pattern = r"^[0-9]+\.[0-9]+\.[0-9]+(\.[a-z0-9]+)?$"))]
    #[x_kube(validation = Rule::new("self == oldSelf").message(msg::MSK_VERSION_IMMUTABLE))]
    pub kafka_version: String,
    /// Number of broker nodes: a multiple of the number of subnets (one per availability zone).
    #[schemars(range(min = 1, max = 30))]
    pub broker_count: i32,
    /// Broker instance type.
    #[serde(default = "default_instance_type")]
    #[schemars(regex(pattern = r"^(kafka|express)\.[a-z0-9]+\.[a-z0-9]+$"))]
    pub instance_type: String,
    /// EBS storage per broker in GiB. MSK can only grow storage, so it can only increase.
    #[serde(rename = "storageGiB", default = "default_storage_gib")]
    #[schemars(range(min = 1, max = 16384))]
    #[x_kube(validation = Rule::new("self >= oldSelf").message(msg::MSK_STORAGE_DECREASE))]
    pub storage_gib: i32,
    /// Client subnets, one per availability zone (2 or 3). Immutable.
    #[schemars(length(min = 2, max = 3))]
    #[x_kube(validation = Rule::new("self == oldSelf").message(msg::MSK_SUBNETS_IMMUTABLE))]
    pub subnets: Vec<String>,
    /// Security groups for the brokers' network interfaces.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    #[schemars(length(max = 5))]
    pub security_groups: Vec<String>,
    /// How clients authenticate. Defaults to IAM only.
    #[serde(default)]
    pub client_authentication: MskClientAuthentication,
}

fn default_instance_type() -> String {
    "kafka.m5.large".into()
}

fn default_storage_gib() -> i32 {
    100
}

/// How clients authenticate to a provisioned MSK cluster.
#[derive(KubeSchema, Serialize, Deserialize, Clone, Debug, PartialEq, Eq)]
#[x_kube(validation = Rule::new("self.iam || self.scram || self.unauthenticated").message(msg::MSK_AUTH_NONE))]
#[serde(rename_all = "camelCase")]
pub struct MskClientAuthentication {
    /// AWS IAM authentication (SASL/IAM over TLS).
    #[serde(default = "crate::common::default_true")]
    pub iam: bool,
    /// SASL/SCRAM with secrets in AWS Secrets Manager.
    #[serde(default)]
    pub scram: bool,
    /// Unauthenticated access (plaintext or TLS).
    #[serde(default)]
    pub unauthenticated: bool,
}

impl Default for MskClientAuthentication {
    fn default() -> Self {
        Self {
            iam: true,
            scram: false,
            unauthenticated: false,
        }
    }
}

/// A serverless MSK cluster.
#[derive(KubeSchema, Serialize, Deserialize, Clone, Debug, PartialEq, Eq)]
#[serde(rename_all = "camelCase")]
pub struct MskServerless {
    /// Subnets (at least two availability zones). Immutable.
    #[schemars(length(min = 2, max = 16))]
    #[x_kube(validation = Rule::new("self == oldSelf").message(msg::MSK_SUBNETS_IMMUTABLE))]
    pub subnets: Vec<String>,
    /// Security groups.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    #[schemars(length(max = 5))]
    pub security_groups: Vec<String>,
}

/// Observed state of a KafkaCluster.
#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq, schemars::JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct KafkaClusterStatus {
    /// The `metadata.generation` this status describes.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub observed_generation: Option<i64>,
    /// `Ready` (and `Progressing` while MSK creates or updates the cluster).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub conditions: Vec<Condition>,
    /// The bootstrap servers clients use, comma-separated.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub bootstrap_servers: Option<String>,
    /// Number of brokers seen in the last metadata response.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub broker_count: Option<i32>,
    /// MSK details, for `msk` clusters.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub msk: Option<MskStatus>,
}

/// Observed state of an MSK cluster.
#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq, Eq, schemars::JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct MskStatus {
    /// The cluster's ARN.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub arn: Option<String>,
    /// MSK's state: `CREATING`, `ACTIVE`, `UPDATING`, `DELETING`, `FAILED`, ...
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub state: Option<String>,
    /// MSK's current cluster version, needed for updates.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub current_version: Option<String>,
    /// Bootstrap broker strings by authentication kind.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub bootstrap_brokers: Option<MskBootstrapBrokers>,
}

/// MSK bootstrap broker strings.
#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq, Eq, schemars::JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct MskBootstrapBrokers {
    /// Plaintext listeners.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub plaintext: Option<String>,
    /// TLS listeners.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tls: Option<String>,
    /// SASL/SCRAM listeners.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub sasl_scram: Option<String>,
    /// SASL/IAM listeners.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub sasl_iam: Option<String>,
}
