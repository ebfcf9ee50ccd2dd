//! The operator provisioning Amazon MSK against the real API server, the MSK emulator (moto with
//! Tributary's extension) and the local broker: create → ACTIVE → bootstrap in status, a broker
//! count and storage change carried to MSK, deletion by each `deletionPolicy`, adoption by ARN.
//!
//! What the emulator cannot do, and where it is covered instead: it never reports a cluster
//! FAILED, and it offers only a plaintext bootstrap string (the local broker speaks nothing
//! else), so `Ready=False reason=Failed`, the TLS → SASL/SCRAM → IAM fallback of
//! `status.bootstrapServers`, the storage-decrease refusal and the provisioned/serverless
//! mismatch are covered by the planner's unit tests (`operator/src/kafka_cluster/msk_plan.rs`).

use std::time::Duration;

use k8s_openapi::api::events::v1::Event;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::Condition;
use kube::api::{Api, DeleteParams, ListParams, Patch, PatchParams, PostParams};
use serde_json::json;
use tributary_crds::KafkaCluster;
use tributary_tests::{
    aws_config, create_msk_cluster, eventually, kube_client, stack_env, start_operator, unique_name,
};

/// Seconds to wait for the operator: MSK's 3 s to ACTIVE plus the operator's 10 s polls.
const WAIT: u64 = 60;
const RESYNC: Duration = Duration::from_secs(30);

fn condition<'a>(cluster: &'a KafkaCluster, type_: &str) -> Option<&'a Condition> {
    cluster
        .status
        .as_ref()?
        .conditions
        .iter()
        .find(|c| c.type_ == type_)
}

fn is(cluster: &KafkaCluster, type_: &str, status: &str) -> bool {
    condition(cluster, type_).is_some_and(|c| c.status == status)
}

/// Wait until the KafkaCluster is Ready=True for its current generation with an ACTIVE MSK
/// cluster in status.
async fn ready(clusters: &Api<KafkaCluster>, name: &str) -> KafkaCluster {
    eventually(WAIT, &format!("KafkaCluster {name} Ready"), || async {
        let cluster = clusters.get(name).await.ok()?;
        let status = cluster.status.as_ref()?;
        let msk = status.msk.as_ref()?;
        let current = status.observed_generation == cluster.metadata.generation;
        (current && is(&cluster, "Ready", "True") && msk.state.as_deref() == Some("ACTIVE"))
            .then_some(cluster)
    })
    .await
}

/// Broker count, storage (GiB) and state of an MSK cluster, or `None` once MSK has no such
/// cluster (NotFoundException; any other error fails the test).
async fn in_msk(msk: &aws_sdk_kafka::Client, arn: &str) -> Option<(i32, Option<i32>, String)> {
    match msk.describe_cluster_v2().cluster_arn(arn).send().await {
        Ok(output) => {
            let info = output.cluster_info().expect("cluster info");
            let provisioned = info.provisioned().expect("a provisioned cluster");
            let storage = provisioned
                .broker_node_group_info()
                .and_then(|g| g.storage_info())
                .and_then(|s| s.ebs_storage_info())
                .and_then(|e| e.volume_size());
            let state = info.state().expect("a state").as_str().to_owned();
            Some((
                provisioned.number_of_broker_nodes().expect("brokers"),
                storage,
                state,
            ))
        }
        Err(error)
            if error
                .as_service_error()
                .is_some_and(|e| e.is_not_found_exception()) =>
        {
            None
        }
        Err(error) => panic!("describe {arn}: {error:?}"),
    }
}

fn provisioned(name: &str, policy: &str, brokers: i32, storage: i32) -> KafkaCluster {
    serde_json::from_value(json!({
        "apiVersion": "tributary.dev/v1alpha1",
        "kind": "KafkaCluster",
        "metadata": {"name": name},
        "spec": {
            "deletionPolicy": policy,
            "msk": {"provisioned": {
                "kafkaVersion": "3.6.0",
                "brokerCount": brokers,
                "storageGiB": storage,
                "subnets": ["subnet-a", "subnet-b"],
            }},
        },
    }))
    .expect("a KafkaCluster")
}

async fn event_reasons(client: &kube::Client, namespace: &str) -> Vec<String> {
    let events: Api<Event> = Api::namespaced(client.clone(), namespace);
    let list = events.list(&ListParams::default()).await.expect("events");
    list.items.into_iter().filter_map(|e| e.reason).collect()
}

#[tokio::test]
async fn creates_updates_and_deletes_an_msk_cluster() {
    let bootstrap = stack_env("TRIBUTARY_KAFKA_BOOTSTRAP");
    let msk = tributary_workers::connect::msk(&aws_config().await);
    let client = kube_client().await;
    let namespace = unique_name("msk");
    let operator = start_operator(&client, &namespace, RESYNC).await;
    let clusters: Api<KafkaCluster> = Api::namespaced(client.clone(), &namespace);

    clusters
        .create(
            &PostParams::default(),
            &provisioned("events", "Delete", 2, 100),
        )
        .await
        .expect("KafkaCluster created");
    let cluster = ready(&clusters, "events").await;
    let status = cluster.status.as_ref().expect("status");
    let arn = status
        .msk
        .as_ref()
        .and_then(|m| m.arn.clone())
        .expect("status.msk.arn");
    assert_eq!(
        status.bootstrap_servers.as_deref(),
        Some(bootstrap.as_str())
    );
    assert_eq!(
        status
            .msk
            .as_ref()
            .and_then(|m| m.bootstrap_brokers.as_ref())
            .and_then(|b| b.plaintext.as_deref()),
        Some(bootstrap.as_str())
    );
    assert!(
        status
            .msk
            .as_ref()
            .is_some_and(|m| m.current_version.is_some())
    );
    assert!(
        is(&cluster, "Progressing", "False"),
        "nothing in progress once ACTIVE"
    );
    assert_eq!(
        condition(&cluster, "Ready").map(|c| c.reason.as_str()),
        Some("Connected"),
        "the metadata check reached the broker"
    );
    assert!(
        cluster
            .metadata
            .finalizers
            .as_ref()
            .is_some_and(|f| f.iter().any(|f| f == "tributary.dev/kafkacluster"))
    );
    let described = msk
        .describe_cluster_v2()
        .cluster_arn(&arn)
        .send()
        .await
        .expect("describe");
    assert_eq!(
        described.cluster_info().and_then(|c| c.cluster_name()),
        Some(format!("{namespace}-events").as_str()),
        "the name defaults to <namespace>-<name>"
    );
    assert_eq!(
        in_msk(&msk, &arn).await,
        Some((2, Some(100), "ACTIVE".into()))
    );

    // More brokers and more storage: MSK takes one change at a time, so the operator applies
    // the broker count, waits out UPDATING, then grows the storage.
    let patch = json!({"spec": {"msk": {"provisioned": {"brokerCount": 4, "storageGiB": 200}}}});
    clusters
        .patch("events", &PatchParams::default(), &Patch::Merge(&patch))
        .await
        .expect("spec patched");
    let updating = eventually(
        WAIT,
        "Ready=False Updating with Progressing=True",
        || async {
            let cluster = clusters.get("events").await.ok()?;
            let reason = condition(&cluster, "Ready")?.reason.clone();
            (reason == "Updating" && is(&cluster, "Progressing", "True")).then_some(cluster)
        },
    )
    .await;
    assert_eq!(
        updating
            .status
            .as_ref()
            .and_then(|s| s.bootstrap_servers.as_deref()),
        Some(bootstrap.as_str()),
        "an updating cluster keeps serving at the same addresses"
    );
    eventually(WAIT, "4 brokers with 200 GiB in MSK", || async {
        (in_msk(&msk, &arn).await == Some((4, Some(200), "ACTIVE".into()))).then_some(())
    })
    .await;
    let cluster = ready(&clusters, "events").await;
    assert_eq!(
        cluster
            .status
            .as_ref()
            .and_then(|s| s.msk.as_ref())
            .and_then(|m| m.arn.as_deref()),
        Some(arn.as_str()),
        "the same cluster, not a new one"
    );
    let reasons = event_reasons(&client, &namespace).await;
    for reason in ["Created", "Ready", "BrokerCountUpdate", "StorageUpdate"] {
        assert!(
            reasons.iter().any(|r| r == reason),
            "an Event {reason} among {reasons:?}"
        );
    }

    clusters
        .delete("events", &DeleteParams::default())
        .await
        .expect("delete requested");
    eventually(WAIT, "the KafkaCluster gone", || async {
        clusters
            .get_opt("events")
            .await
            .expect("get")
            .is_none()
            .then_some(())
    })
    .await;
    eventually(WAIT, "the MSK cluster gone (NotFoundException)", || async {
        in_msk(&msk, &arn).await.is_none().then_some(())
    })
    .await;
    operator.stop().await;
}

#[tokio::test]
async fn adopts_a_cluster_by_arn_and_retains_it() {
    let bootstrap = stack_env("TRIBUTARY_KAFKA_BOOTSTRAP");
    let msk = tributary_workers::connect::msk(&aws_config().await);
    let client = kube_client().await;
    let namespace = unique_name("msk-adopt");
    let arn = create_msk_cluster(&msk, &unique_name("existing")).await;

    let operator = start_operator(&client, &namespace, RESYNC).await;
    let clusters: Api<KafkaCluster> = Api::namespaced(client.clone(), &namespace);
    let mut manifest = provisioned("existing", "Retain", 2, 100);
    if let Some(spec) = manifest.spec.msk.as_mut() {
        spec.arn = Some(arn.clone());
    }
    clusters
        .create(&PostParams::default(), &manifest)
        .await
        .expect("KafkaCluster created");
    let cluster = ready(&clusters, "existing").await;
    let status = cluster.status.as_ref().expect("status");
    assert_eq!(
        status.msk.as_ref().and_then(|m| m.arn.as_deref()),
        Some(arn.as_str())
    );
    assert_eq!(
        status.bootstrap_servers.as_deref(),
        Some(bootstrap.as_str())
    );
    let own_name = format!("{namespace}-existing");
    let listed = msk
        .list_clusters_v2()
        .cluster_name_filter(&own_name)
        .send()
        .await
        .expect("list");
    assert!(
        listed.cluster_info_list().is_empty(),
        "adopted, not created: no cluster named {own_name}"
    );
    assert!(
        event_reasons(&client, &namespace)
            .await
            .iter()
            .any(|r| r == "Adopted")
    );

    clusters
        .delete("existing", &DeleteParams::default())
        .await
        .expect("delete requested");
    eventually(WAIT, "the KafkaCluster gone", || async {
        clusters
            .get_opt("existing")
            .await
            .expect("get")
            .is_none()
            .then_some(())
    })
    .await;
    let kept = in_msk(&msk, &arn)
        .await
        .expect("Retain keeps the MSK cluster");
    assert_eq!(kept.2, "ACTIVE");
    operator.stop().await;
    msk.delete_cluster()
        .cluster_arn(&arn)
        .send()
        .await
        .expect("clean up");
}
