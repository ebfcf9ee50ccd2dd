//! From a `KafkaCluster` to the settings a Kafka client needs, reading credentials from Secrets.

use k8s_openapi::api::core::v1::Secret;
use kube::Api;
use tributary_crds::kafka_cluster::SaslMechanism;
use tributary_crds::{KafkaCluster, KafkaClusterStatus};
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
    /// An MSK cluster that offers only SASL listeners (SCRAM or IAM).
    #[error(
        "the MSK cluster offers only SASL listeners; enable clientAuthentication.unauthenticated \
         (TLS) for Tributary to manage its topics"
    )]
    SaslOnlyMsk,
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
            ConnectionError::SecretMissing { .. }
                | ConnectionError::NoCredentials(_)
                | ConnectionError::SaslOnlyMsk
        )
    }
}

/// The values of `keys` in the Secret `name`, read once.
async fn secret_values<const N: usize>(
    secrets: &Api<Secret>,
    namespace: &str,
    name: &str,
    keys: [&str; N],
) -> Result<[String; N], ConnectionError> {
    let missing = |key: &str| ConnectionError::SecretMissing {
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
        .ok_or_else(|| missing(keys[0]))?;
    let data = secret.data.unwrap_or_default();
    let mut values = Vec::with_capacity(N);
    for key in keys {
        let bytes = data.get(key).ok_or_else(|| missing(key))?;
        values.push(String::from_utf8(bytes.0.clone()).map_err(|_| missing(key))?);
    }
    Ok(values.try_into().expect("one value per key"))
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
                Some(r) => {
                    let [ca] =
                        secret_values(&secrets, &namespace, &r.name, [r.key.as_str()]).await?;
                    Some(Some(ca))
                }
            },
        };
        let sasl = match &external.sasl {
            None => None,
            Some(sasl) => {
                let (username, password) = match (&sasl.secret_ref, sasl.mechanism) {
                    (Some(r), _) => {
                        let keys = [r.username_key.as_str(), r.password_key.as_str()];
                        let [username, password] =
                            secret_values(&secrets, &namespace, &r.name, keys).await?;
                        (username, password)
                    }
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
    msk_connection(cluster.status.as_ref())
}

/// The listener of an MSK cluster the operator connects to, from the status MSK reported.
pub fn msk_connection(
    status: Option<&KafkaClusterStatus>,
) -> Result<KafkaConnection, ConnectionError> {
    // MSK: the plaintext listener, else TLS (MSK's certificates chain to public roots). The
    // SASL listeners need credentials the operator does not have.
    let brokers = status
        .and_then(|s| s.msk.as_ref())
        .and_then(|m| m.bootstrap_brokers.as_ref());
    match brokers {
        Some(b) if b.plaintext.is_some() => Ok(KafkaConnection::plaintext(
            b.plaintext.clone().unwrap_or_default(),
        )),
        Some(b) if b.tls.is_some() => Ok(KafkaConnection {
            bootstrap_servers: b.tls.clone().unwrap_or_default(),
            tls: Some(None),
            sasl: None,
        }),
        Some(b) if b.sasl_scram.is_some() || b.sasl_iam.is_some() => {
            Err(ConnectionError::SaslOnlyMsk)
        }
        _ => Err(ConnectionError::NoBootstrapYet),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use tributary_crds::kafka_cluster::{MskBootstrapBrokers, MskStatus};

    fn status(brokers: MskBootstrapBrokers) -> KafkaClusterStatus {
        KafkaClusterStatus {
            msk: Some(MskStatus {
                bootstrap_brokers: Some(brokers),
                ..MskStatus::default()
            }),
            ..KafkaClusterStatus::default()
        }
    }

    #[test]
    fn msk_listeners_are_chosen_plaintext_then_tls() {
        let both = status(MskBootstrapBrokers {
            plaintext: Some("b:9092".into()),
            tls: Some("b:9094".into()),
            ..Default::default()
        });
        let chosen = msk_connection(Some(&both)).unwrap();
        assert_eq!(
            (chosen.bootstrap_servers.as_str(), chosen.tls.is_some()),
            ("b:9092", false)
        );

        let tls = status(MskBootstrapBrokers {
            tls: Some("b:9094".into()),
            sasl_iam: Some("b:9098".into()),
            ..Default::default()
        });
        let chosen = msk_connection(Some(&tls)).unwrap();
        assert_eq!(
            (chosen.bootstrap_servers.as_str(), chosen.tls),
            ("b:9094", Some(None))
        );
    }

    #[test]
    fn sasl_only_and_not_yet_known_listeners_are_explained() {
        let iam = status(MskBootstrapBrokers {
            sasl_iam: Some("b:9098".into()),
            ..Default::default()
        });
        let error = msk_connection(Some(&iam)).unwrap_err();
        assert!(
            error.is_permanent()
                && error
                    .to_string()
                    .contains("clientAuthentication.unauthenticated")
        );
        assert!(matches!(
            msk_connection(None),
            Err(ConnectionError::NoBootstrapYet)
        ));
    }
}
