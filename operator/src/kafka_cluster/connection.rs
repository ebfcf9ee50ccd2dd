//! From a `KafkaCluster` to the settings a Kafka client needs, reading credentials from Secrets.

use k8s_openapi::api::core::v1::Secret;
use kube::Api;
use tributary_crds::KafkaCluster;
use tributary_crds::kafka_cluster::SaslMechanism;
use tributary_workers::connect::{KafkaConnection, SaslCredentials};

/// Why a cluster cannot be connected to (yet).
#[derive(Debug, thiserror::Error)]
pub enum ConnectionError {
    /// An MSK cluster without bootstrap brokers in its status yet.
    #[error("the MSK cluster has no bootstrap brokers yet (it is still being created)")]
    NoBootstrapYet,
    /// A referenced Secret or key is missing.
    #[error("Secret {namespace}/{name} has no key {key:?}: create it, or fix the reference")]
    SecretMissing {
        /// The Secret's namespace.
        namespace: String,
        /// The Secret's name.
        name: String,
        /// The key looked for.
        key: String,
    },
    /// A SASL mechanism that needs a user name and password has no `secretRef`.
    #[error("sasl.secretRef is required for {0:?}")]
    NoCredentials(SaslMechanism),
    /// Reading a Secret failed.
    #[error("reading Secret {name}: {source}")]
    Kube {
        /// The Secret's name.
        name: String,
        /// The API error.
        #[source]
        source: kube::Error,
    },
}

impl ConnectionError {
    /// Whether a change of the spec (or of a Secret) is needed, rather than waiting.
    pub fn is_permanent(&self) -> bool {
        matches!(
            self,
            ConnectionError::SecretMissing { .. } | ConnectionError::NoCredentials(_)
        )
    }
}

async fn secret_value(
    secrets: &Api<Secret>,
    namespace: &str,
    name: &str,
    key: &str,
) -> Result<String, ConnectionError> {
    let missing = || ConnectionError::SecretMissing {
        namespace: namespace.into(),
        name: name.into(),
        key: key.into(),
    };
    let secret = secrets
        .get_opt(name)
        .await
        .map_err(|source| ConnectionError::Kube {
            name: name.into(),
            source,
        })?
        .ok_or_else(missing)?;
    let bytes = secret
        .data
        .as_ref()
        .and_then(|d| d.get(key))
        .ok_or_else(missing)?;
    String::from_utf8(bytes.0.clone()).map_err(|_| missing())
}

/// The connection settings of `cluster`, with secrets read from its namespace.
pub async fn resolve(
    client: &kube::Client,
    cluster: &KafkaCluster,
) -> Result<KafkaConnection, ConnectionError> {
    let namespace = cluster.metadata.namespace.clone().unwrap_or_default();
    let secrets: Api<Secret> = Api::namespaced(client.clone(), &namespace);
    if let Some(external) = &cluster.spec.external {
        let tls = match &external.tls {
            None => None,
            Some(tls) => match &tls.ca_secret_ref {
                None => Some(None),
                Some(r) => Some(Some(
                    secret_value(&secrets, &namespace, &r.name, &r.key).await?,
                )),
            },
        };
        let sasl = match &external.sasl {
            None => None,
            Some(sasl) => {
                let (username, password) = match (&sasl.secret_ref, sasl.mechanism) {
                    (Some(r), _) => (
                        secret_value(&secrets, &namespace, &r.name, &r.username_key).await?,
                        secret_value(&secrets, &namespace, &r.name, &r.password_key).await?,
                    ),
                    (None, SaslMechanism::AwsMskIam) => (String::new(), String::new()),
                    (None, mechanism) => return Err(ConnectionError::NoCredentials(mechanism)),
                };
                Some(SaslCredentials {
                    mechanism: sasl.mechanism,
                    username,
                    password,
                })
            }
        };
        return Ok(KafkaConnection {
            bootstrap_servers: external.bootstrap_servers.join(","),
            tls,
            sasl,
        });
    }
    let bootstrap = cluster
        .status
        .as_ref()
        .and_then(|s| s.bootstrap_servers.clone());
    bootstrap
        .map(KafkaConnection::plaintext)
        .ok_or(ConnectionError::NoBootstrapYet)
}
