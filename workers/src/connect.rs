//! Clients for the systems outside Kubernetes: AWS (S3, Kinesis, MSK) and Kafka.
//!
//! AWS credentials, region and endpoints come from the SDK's default provider chain — IRSA or
//! an instance role in a cluster, the environment locally — never from a spec. Endpoints for
//! LocalStack or another emulator are the SDK's own `AWS_ENDPOINT_URL` and
//! `AWS_ENDPOINT_URL_<SERVICE>` variables.

use aws_config::{BehaviorVersion, Region, SdkConfig};
use rdkafka::ClientConfig;
use tributary_crds::kafka_cluster::SaslMechanism;

/// Overrides of the SDK's default chain, from flags (the chain itself reads `AWS_REGION`,
/// `AWS_ENDPOINT_URL`, ... from the environment).
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct AwsOptions {
    /// The region, instead of the chain's.
    pub region: Option<String>,
    /// One endpoint for every AWS service (LocalStack, say), instead of AWS's.
    pub endpoint_url: Option<String>,
}

impl AwsOptions {
    /// These options with `region` in place of the default region, if given.
    pub fn in_region(&self, region: Option<&str>) -> Self {
        Self {
            region: region.map(str::to_owned).or_else(|| self.region.clone()),
            ..self.clone()
        }
    }
}

/// Load the shared AWS configuration: the default chain, with `options` on top.
pub async fn aws_config(options: &AwsOptions) -> SdkConfig {
    let mut loader = aws_config::defaults(BehaviorVersion::latest());
    if let Some(region) = &options.region {
        loader = loader.region(Region::new(region.clone()));
    }
    if let Some(url) = &options.endpoint_url {
        loader = loader.endpoint_url(url);
    }
    loader.load().await
}

/// Clients of one AWS service, one per region, each built on first use from the shared
/// configuration with `defaults` (a spec's region in place of the default one).
pub struct RegionalClients<C> {
    defaults: AwsOptions,
    build: fn(&SdkConfig) -> C,
    clients: tokio::sync::Mutex<std::collections::HashMap<Option<String>, C>>,
}

impl<C: Clone> RegionalClients<C> {
    /// Clients made by `build` (e.g. [`s3`], [`kinesis`], [`msk`]).
    pub fn new(defaults: AwsOptions, build: fn(&SdkConfig) -> C) -> Self {
        Self {
            defaults,
            build,
            clients: Default::default(),
        }
    }

    /// The client for `region` (`None`: the default region).
    pub async fn get(&self, region: Option<&str>) -> C {
        let key = region.map(str::to_owned);
        let mut clients = self.clients.lock().await;
        if let Some(client) = clients.get(&key) {
            return client.clone();
        }
        let client = (self.build)(&aws_config(&self.defaults.in_region(region)).await);
        clients.insert(key, client.clone());
        client
    }
}

/// An S3 client. A custom endpoint (LocalStack, MinIO, ...) gets path-style addressing
/// (`endpoint/bucket/key`), because bucket host names do not resolve there.
pub fn s3(config: &SdkConfig) -> aws_sdk_s3::Client {
    let custom_endpoint = config.endpoint_url().is_some()
        || std::env::var_os("AWS_ENDPOINT_URL_S3").is_some_and(|s| !s.is_empty());
    let s3_config = aws_sdk_s3::config::Builder::from(config)
        .force_path_style(custom_endpoint)
        .build();
    aws_sdk_s3::Client::from_conf(s3_config)
}

/// A Kinesis client.
pub fn kinesis(config: &SdkConfig) -> aws_sdk_kinesis::Client {
    aws_sdk_kinesis::Client::new(config)
}

/// An Amazon MSK (Kafka control plane) client.
pub fn msk(config: &SdkConfig) -> aws_sdk_kafka::Client {
    aws_sdk_kafka::Client::new(config)
}

/// How to reach a Kafka cluster, with secrets already read from their Secrets.
#[derive(Clone, Default)]
pub struct KafkaConnection {
    /// `host:port` list, comma-separated.
    pub bootstrap_servers: String,
    /// TLS: `Some` enables it; the PEM is the CA bundle (`None`: the system's roots).
    pub tls: Option<Option<String>>,
    /// SASL credentials.
    pub sasl: Option<SaslCredentials>,
}

/// SASL user name and password for a mechanism.
#[derive(Clone)]
pub struct SaslCredentials {
    /// The mechanism.
    pub mechanism: SaslMechanism,
    /// User name.
    pub username: String,
    /// Password.
    pub password: String,
}

// Secrets stay out of logs: the password is never printed.
impl std::fmt::Debug for SaslCredentials {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SaslCredentials")
            .field("mechanism", &self.mechanism)
            .field("username", &self.username)
            .field("password", &"<redacted>")
            .finish()
    }
}

impl std::fmt::Debug for KafkaConnection {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("KafkaConnection")
            .field("bootstrap_servers", &self.bootstrap_servers)
            .field("tls", &self.tls.is_some())
            .field("sasl", &self.sasl)
            .finish()
    }
}

/// A connection that cannot be expressed as a Kafka client configuration.
#[derive(Debug, thiserror::Error)]
pub enum ConnectError {
    /// The mechanism needs token signing that is not available in this build.
    #[error(
        "SASL mechanism {0:?} is not supported by this Tributary build; use ScramSha512 or ScramSha256"
    )]
    UnsupportedMechanism(SaslMechanism),
}

impl KafkaConnection {
    /// A plaintext connection to `bootstrap_servers`.
    pub fn plaintext(bootstrap_servers: impl Into<String>) -> Self {
        Self {
            bootstrap_servers: bootstrap_servers.into(),
            ..Self::default()
        }
    }

    /// A key that differs whenever any setting (including a rotated password) differs, for
    /// caching clients per connection. Kept in memory only; never logged.
    pub fn cache_key(&self) -> String {
        let sasl = self
            .sasl
            .as_ref()
            .map(|s| format!("{:?}\u{1f}{}\u{1f}{}", s.mechanism, s.username, s.password));
        format!(
            "{}\u{1e}{:?}\u{1e}{:?}",
            self.bootstrap_servers, self.tls, sasl
        )
    }

    /// The librdkafka configuration shared by admin clients, consumers and producers.
    pub fn client_config(&self) -> Result<ClientConfig, ConnectError> {
        let mut config = ClientConfig::new();
        config.set("bootstrap.servers", &self.bootstrap_servers);
        let protocol = match (&self.tls, &self.sasl) {
            (None, None) => "plaintext",
            (Some(_), None) => "ssl",
            (None, Some(_)) => "sasl_plaintext",
            (Some(_), Some(_)) => "sasl_ssl",
        };
        config.set("security.protocol", protocol);
        if let Some(Some(ca_pem)) = &self.tls {
            config.set("ssl.ca.pem", ca_pem);
        }
        if let Some(sasl) = &self.sasl {
            let mechanism = match sasl.mechanism {
                SaslMechanism::ScramSha256 => "SCRAM-SHA-256",
                SaslMechanism::ScramSha512 => "SCRAM-SHA-512",
                SaslMechanism::Plain => "PLAIN",
                SaslMechanism::AwsMskIam => {
                    return Err(ConnectError::UnsupportedMechanism(sasl.mechanism));
                }
            };
            config
                .set("sasl.mechanism", mechanism)
                .set("sasl.username", &sasl.username)
                .set("sasl.password", &sasl.password);
        }
        Ok(config)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn get(config: &ClientConfig, key: &str) -> Option<String> {
        config.get(key).map(str::to_owned)
    }

    #[test]
    fn plaintext_connection() {
        let config = KafkaConnection::plaintext("a:9092,b:9092")
            .client_config()
            .unwrap();
        assert_eq!(
            get(&config, "bootstrap.servers").as_deref(),
            Some("a:9092,b:9092")
        );
        assert_eq!(
            get(&config, "security.protocol").as_deref(),
            Some("plaintext")
        );
        assert_eq!(get(&config, "sasl.mechanism"), None);
    }

    #[test]
    fn scram_over_tls_with_a_ca() {
        let connection = KafkaConnection {
            bootstrap_servers: "b-1:9096".into(),
            tls: Some(Some("-----BEGIN CERTIFICATE-----".into())),
            sasl: Some(SaslCredentials {
                mechanism: SaslMechanism::ScramSha512,
                username: "app".into(),
                password: "s3cret".into(),
            }),
        };
        let config = connection.client_config().unwrap();
        assert_eq!(
            get(&config, "security.protocol").as_deref(),
            Some("sasl_ssl")
        );
        assert_eq!(
            get(&config, "sasl.mechanism").as_deref(),
            Some("SCRAM-SHA-512")
        );
        assert_eq!(
            get(&config, "ssl.ca.pem").as_deref(),
            Some("-----BEGIN CERTIFICATE-----")
        );
        assert!(
            !format!("{connection:?}").contains("s3cret"),
            "the password never reaches a log"
        );
    }

    #[test]
    fn msk_iam_is_refused_with_a_way_out() {
        let connection = KafkaConnection {
            bootstrap_servers: "b-1:9098".into(),
            tls: Some(None),
            sasl: Some(SaslCredentials {
                mechanism: SaslMechanism::AwsMskIam,
                username: String::new(),
                password: String::new(),
            }),
        };
        let error = connection.client_config().unwrap_err().to_string();
        assert!(error.contains("use ScramSha512"), "{error}");
    }
}
