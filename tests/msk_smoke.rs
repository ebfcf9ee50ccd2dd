//! The MSK control plane (moto with Tributary's extension) through the project's client:
//! create a provisioned cluster, wait for ACTIVE, read its bootstrap brokers, delete it.

use std::time::Duration;

use aws_sdk_kafka::types::ClusterState;
use tributary_tests::{aws_config, create_msk_cluster, stack_env, unique_name};

#[tokio::test]
async fn create_wait_active_bootstrap_delete() {
    let msk = tributary_workers::connect::msk(&aws_config().await);
    let name = unique_name("smoke");
    let arn = create_msk_cluster(&msk, &name).await;

    let mut state = None;
    for _ in 0..120 {
        let described = msk
            .describe_cluster_v2()
            .cluster_arn(&arn)
            .send()
            .await
            .expect("describe");
        let info = described.cluster_info().expect("cluster info");
        assert!(info.creation_time().is_some(), "creation time parses");
        state = info.state().cloned();
        if state == Some(ClusterState::Active) {
            break;
        }
        tokio::time::sleep(Duration::from_millis(250)).await;
    }
    assert_eq!(
        state,
        Some(ClusterState::Active),
        "the cluster becomes ACTIVE"
    );

    let brokers = msk
        .get_bootstrap_brokers()
        .cluster_arn(&arn)
        .send()
        .await
        .expect("bootstrap brokers");
    assert_eq!(
        brokers.bootstrap_broker_string(),
        Some(stack_env("TRIBUTARY_KAFKA_BOOTSTRAP").as_str())
    );

    msk.delete_cluster()
        .cluster_arn(&arn)
        .send()
        .await
        .expect("delete cluster");
}
