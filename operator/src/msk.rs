//! The Amazon MSK control plane behind a small trait, so the KafkaCluster controller can be
//! tested without AWS and the real implementation (aws-sdk-kafka) sits in one place.
//!
//! Every operation takes the region (`spec.msk.region`; `None`: the operator's default) and is
//! idempotent where MSK allows: a cluster that does not exist is `Ok(None)` when looked up and
//! counts as deleted when deleted.

use std::collections::HashMap;
use std::fmt::Debug;

use async_trait::async_trait;
use aws_sdk_kafka::Client;
use aws_sdk_kafka::error::{DisplayErrorContext, ProvideErrorMetadata, SdkError};
use aws_sdk_kafka::types::{
    BrokerEbsVolumeInfo, BrokerNodeGroupInfo, ClientAuthentication, ClusterState, EbsStorageInfo,
    Iam, ProvisionedRequest, Sasl, Scram, ServerlessClientAuthentication, ServerlessRequest,
    ServerlessSasl, StorageInfo, Unauthenticated, VpcConfig,
};
use tributary_crds::common::Tags;
use tributary_crds::kafka_cluster::{
    MskBootstrapBrokers, MskCluster, MskProvisioned, MskServerless,
};
use tributary_workers::connect;

/// What went wrong talking to MSK.
#[derive(Debug, thiserror::Error)]
#[error("MSK {operation}: {message}")]
pub struct MskError {
    /// The API operation, e.g. `CreateClusterV2`.
    pub operation: &'static str,
    /// MSK's error code and message, or why the request did not reach MSK.
    pub message: String,
}

/// An MSK cluster as MSK reports it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Cluster {
    /// The cluster's ARN.
    pub arn: String,
    /// The cluster's name.
    pub name: String,
    /// MSK's state as MSK spells it: `CREATING`, `ACTIVE`, `UPDATING`, `FAILED`, ...
    pub state: String,
    /// The version an update must name (MSK's optimistic locking).
    pub current_version: String,
    /// MSK's explanation of the state, e.g. why creation failed.
    pub state_message: Option<String>,
    /// Brokers and storage of a provisioned cluster; `None` for a serverless one.
    pub provisioned: Option<Brokers>,
}

/// The sizing of a provisioned cluster.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Brokers {
    /// Number of broker nodes.
    pub count: i32,
    /// EBS storage per broker in GiB, if MSK reports it.
    pub storage_gib: Option<i32>,
}

/// The MSK operations the KafkaCluster controller needs.
#[async_trait]
pub trait Msk: Send + Sync {
    /// The cluster with this ARN, or `None` if there is none.
    async fn describe(&self, region: Option<&str>, arn: &str) -> Result<Option<Cluster>, MskError>;
    /// The cluster with exactly this name that is not being deleted, or `None`.
    async fn find_by_name(
        &self,
        region: Option<&str>,
        name: &str,
    ) -> Result<Option<Cluster>, MskError>;
    /// Start creating the cluster `spec` describes (provisioned or serverless) under `name`,
    /// with `spec.tags`; returns its ARN.
    async fn create(
        &self,
        region: Option<&str>,
        name: &str,
        spec: &MskCluster,
    ) -> Result<String, MskError>;
    /// The bootstrap broker strings of an ACTIVE cluster.
    async fn bootstrap_brokers(
        &self,
        region: Option<&str>,
        arn: &str,
    ) -> Result<MskBootstrapBrokers, MskError>;
    /// Start changing the number of brokers; `current_version` must be the cluster's.
    async fn update_broker_count(
        &self,
        region: Option<&str>,
        arn: &str,
        current_version: &str,
        count: i32,
    ) -> Result<(), MskError>;
    /// Start growing every broker's storage; `current_version` must be the cluster's.
    async fn update_broker_storage(
        &self,
        region: Option<&str>,
        arn: &str,
        current_version: &str,
        gib: i32,
    ) -> Result<(), MskError>;
    /// Start deleting the cluster; a cluster that does not exist counts as deleted.
    async fn delete(&self, region: Option<&str>, arn: &str) -> Result<(), MskError>;
}

/// The real implementation, on aws-sdk-kafka, with one client per region built on first use.
pub struct AwsMsk {
    clients: connect::RegionalClients<Client>,
}

impl Default for AwsMsk {
    fn default() -> Self {
        Self::new(connect::AwsOptions::default())
    }
}

impl AwsMsk {
    /// MSK in `defaults.region` (unless a spec names another) through `defaults.endpoint_url`.
    pub fn new(defaults: connect::AwsOptions) -> Self {
        Self {
            clients: connect::RegionalClients::new(defaults, connect::msk),
        }
    }

    async fn client(&self, region: Option<&str>) -> Client {
        self.clients.get(region).await
    }
}

fn error<E, R>(operation: &'static str, error: SdkError<E, R>) -> MskError
where
    E: ProvideErrorMetadata + std::error::Error + Send + Sync + 'static,
    R: Debug + Send + Sync + 'static,
{
    let message = match error.as_service_error() {
        Some(e) => format!(
            "{}: {}",
            e.code().unwrap_or("error"),
            e.message().unwrap_or("no message")
        ),
        None => DisplayErrorContext(&error).to_string(),
    };
    MskError { operation, message }
}

fn is_not_found<E: ProvideErrorMetadata, R>(error: &SdkError<E, R>) -> bool {
    error
        .as_service_error()
        .is_some_and(|e| e.code() == Some("NotFoundException"))
}

fn cluster(info: &aws_sdk_kafka::types::Cluster) -> Cluster {
    Cluster {
        arn: info.cluster_arn().unwrap_or_default().to_owned(),
        name: info.cluster_name().unwrap_or_default().to_owned(),
        state: info
            .state()
            .map_or("UNKNOWN", ClusterState::as_str)
            .to_owned(),
        current_version: info.current_version().unwrap_or_default().to_owned(),
        state_message: info
            .state_info()
            .and_then(|s| s.message())
            .map(str::to_owned),
        provisioned: info.provisioned().map(|p| Brokers {
            count: p.number_of_broker_nodes().unwrap_or_default(),
            storage_gib: p
                .broker_node_group_info()
                .and_then(|g| g.storage_info())
                .and_then(|s| s.ebs_storage_info())
                .and_then(|e| e.volume_size()),
        }),
    }
}

fn aws_tags(tags: &Tags) -> Option<HashMap<String, String>> {
    (!tags.is_empty()).then(|| tags.clone().into_iter().collect())
}

fn non_empty(values: &[String]) -> Option<Vec<String>> {
    (!values.is_empty()).then(|| values.to_vec())
}

#[async_trait]
impl Msk for AwsMsk {
    async fn describe(&self, region: Option<&str>, arn: &str) -> Result<Option<Cluster>, MskError> {
        match self
            .client(region)
            .await
            .describe_cluster_v2()
            .cluster_arn(arn)
            .send()
            .await
        {
            Ok(output) => Ok(output.cluster_info().map(cluster)),
            Err(e) if is_not_found(&e) => Ok(None),
            Err(e) => Err(error("DescribeClusterV2", e)),
        }
    }

    async fn find_by_name(
        &self,
        region: Option<&str>,
        name: &str,
    ) -> Result<Option<Cluster>, MskError> {
        // MSK's name filter matches prefixes, so the exact name is checked here.
        let mut pages = self
            .client(region)
            .await
            .list_clusters_v2()
            .cluster_name_filter(name)
            .into_paginator()
            .send();
        while let Some(page) = pages.next().await {
            let page = page.map_err(|e| error("ListClustersV2", e))?;
            let found = page.cluster_info_list().iter().find(|c| {
                c.cluster_name() == Some(name) && c.state() != Some(&ClusterState::Deleting)
            });
            if let Some(found) = found {
                return Ok(Some(cluster(found)));
            }
        }
        Ok(None)
    }

    async fn create(
        &self,
        region: Option<&str>,
        name: &str,
        spec: &MskCluster,
    ) -> Result<String, MskError> {
        let request = self
            .client(region)
            .await
            .create_cluster_v2()
            .cluster_name(name)
            .set_tags(aws_tags(&spec.tags))
            .set_provisioned(spec.provisioned.as_ref().map(provisioned))
            .set_serverless(spec.serverless.as_ref().map(serverless));
        let output = request
            .send()
            .await
            .map_err(|e| error("CreateClusterV2", e))?;
        output
            .cluster_arn()
            .map(str::to_owned)
            .ok_or_else(|| MskError {
                operation: "CreateClusterV2",
                message: "the answer carried no cluster ARN".into(),
            })
    }

    async fn bootstrap_brokers(
        &self,
        region: Option<&str>,
        arn: &str,
    ) -> Result<MskBootstrapBrokers, MskError> {
        let output = self
            .client(region)
            .await
            .get_bootstrap_brokers()
            .cluster_arn(arn)
            .send()
            .await
            .map_err(|e| error("GetBootstrapBrokers", e))?;
        Ok(MskBootstrapBrokers {
            plaintext: output.bootstrap_broker_string().map(str::to_owned),
            tls: output.bootstrap_broker_string_tls().map(str::to_owned),
            sasl_scram: output
                .bootstrap_broker_string_sasl_scram()
                .map(str::to_owned),
            sasl_iam: output.bootstrap_broker_string_sasl_iam().map(str::to_owned),
        })
    }

    async fn update_broker_count(
        &self,
        region: Option<&str>,
        arn: &str,
        current_version: &str,
        count: i32,
    ) -> Result<(), MskError> {
        self.client(region)
            .await
            .update_broker_count()
            .cluster_arn(arn)
            .current_version(current_version)
            .target_number_of_broker_nodes(count)
            .send()
            .await
            .map_err(|e| error("UpdateBrokerCount", e))?;
        Ok(())
    }

    async fn update_broker_storage(
        &self,
        region: Option<&str>,
        arn: &str,
        current_version: &str,
        gib: i32,
    ) -> Result<(), MskError> {
        let every_broker = BrokerEbsVolumeInfo::builder()
            .kafka_broker_node_id("All")
            .volume_size_gb(gib)
            .build();
        self.client(region)
            .await
            .update_broker_storage()
            .cluster_arn(arn)
            .current_version(current_version)
            .target_broker_ebs_volume_info(every_broker)
            .send()
            .await
            .map_err(|e| error("UpdateBrokerStorage", e))?;
        Ok(())
    }

    async fn delete(&self, region: Option<&str>, arn: &str) -> Result<(), MskError> {
        match self
            .client(region)
            .await
            .delete_cluster()
            .cluster_arn(arn)
            .send()
            .await
        {
            Ok(_) => Ok(()),
            Err(e) if is_not_found(&e) => Ok(()),
            Err(e) => Err(error("DeleteCluster", e)),
        }
    }
}

fn provisioned(spec: &MskProvisioned) -> ProvisionedRequest {
    let auth = &spec.client_authentication;
    let authentication = ClientAuthentication::builder()
        .sasl(
            Sasl::builder()
                .iam(Iam::builder().enabled(auth.iam).build())
                .scram(Scram::builder().enabled(auth.scram).build())
                .build(),
        )
        .unauthenticated(
            Unauthenticated::builder()
                .enabled(auth.unauthenticated)
                .build(),
        )
        .build();
    let storage = StorageInfo::builder()
        .ebs_storage_info(
            EbsStorageInfo::builder()
                .volume_size(spec.storage_gib)
                .build(),
        )
        .build();
    let brokers = BrokerNodeGroupInfo::builder()
        .instance_type(&spec.instance_type)
        .set_client_subnets(Some(spec.subnets.clone()))
        .set_security_groups(non_empty(&spec.security_groups))
        .storage_info(storage)
        .build();
    ProvisionedRequest::builder()
        .kafka_version(&spec.kafka_version)
        .number_of_broker_nodes(spec.broker_count)
        .broker_node_group_info(brokers)
        .client_authentication(authentication)
        .build()
}

fn serverless(spec: &MskServerless) -> ServerlessRequest {
    let vpc = VpcConfig::builder()
        .set_subnet_ids(Some(spec.subnets.clone()))
        .set_security_group_ids(non_empty(&spec.security_groups))
        .build();
    // Serverless clusters support IAM authentication only, and MSK wants it named.
    let authentication = ServerlessClientAuthentication::builder()
        .sasl(
            ServerlessSasl::builder()
                .iam(Iam::builder().enabled(true).build())
                .build(),
        )
        .build();
    ServerlessRequest::builder()
        .vpc_configs(vpc)
        .client_authentication(authentication)
        .build()
}
