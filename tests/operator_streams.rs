//! The operator keeping Kinesis streams against the real API server and LocalStack's Kinesis:
//! create, reshard 1 → 2 → 4 → 3, mode switches both ways, retention up and down, encryption
//! and tags, drift reverted at resync, and deletion by each `deletionPolicy` (a stream already
//! deleted in Kinesis counting as deleted).
//!
//! What LocalStack's Kinesis (kinesis-mock) cannot do, and where it is covered instead: it
//! enforces no daily resharding or mode-switch quota (never LimitExceededException), and its
//! changes finish within its latency, so the ScalingQuotaExceeded / ModeSwitchQuotaExceeded
//! conditions, the wait for ACTIVE between resharding steps and refused KMS keys are covered
//! by the reconcile tests with an in-memory Kinesis (`operator/src/stream/tests.rs`).

use std::time::{Duration, Instant};

use aws_sdk_kinesis::Client;
use k8s_openapi::api::events::v1::Event;
use kube::api::{Api, DeleteParams, ListParams, Patch, PatchParams, PostParams};
use serde_json::{Value, json};
use tributary_crds::Stream;
use tributary_crds::stream::StreamMode;
use tributary_tests::{aws_config, eventually, kube_client, start_operator, unique_name};

/// Seconds to wait for the operator: LocalStack's latencies plus the operator's 5 s polls.
const WAIT: u64 = 60;
/// A short resync, so that drift is found quickly.
const RESYNC: Duration = Duration::from_secs(5);

fn manifest(name: &str, kinesis_name: &str, spec: Value) -> Stream {
    let mut spec = spec;
    spec["streamName"] = json!(kinesis_name);
    serde_json::from_value(json!({
        "apiVersion": "tributary.dev/v1alpha1",
        "kind": "Stream",
        "metadata": {"name": name},
        "spec": spec,
    }))
    .expect("a Stream")
}

fn ready_reason(stream: &Stream) -> Option<(&str, &str)> {
    let status = stream.status.as_ref()?;
    status
        .conditions
        .iter()
        .find(|c| c.type_ == "Ready")
        .map(|c| (c.status.as_str(), c.reason.as_str()))
}

/// Wait until the Stream is Ready=True for its current generation.
async fn ready(streams: &Api<Stream>, name: &str) -> Stream {
    eventually(WAIT, &format!("Stream {name} Ready"), || async {
        let stream = streams.get(name).await.ok()?;
        let status = stream.status.as_ref()?;
        let current = status.observed_generation == stream.metadata.generation;
        (current && ready_reason(&stream) == Some(("True", "InSync"))).then_some(stream)
    })
    .await
}

async fn patch(streams: &Api<Stream>, name: &str, spec: Value) {
    streams
        .patch(
            name,
            &PatchParams::default(),
            &Patch::Merge(&json!({ "spec": spec })),
        )
        .await
        .expect("spec patched");
}

/// What Kinesis reports: status, mode, open shards (from ListShards), retention, encryption.
#[derive(Debug, PartialEq, Eq)]
struct InKinesis {
    mode: String,
    open_shards: usize,
    retention_hours: i32,
    kms_key_id: Option<String>,
}

/// The stream as Kinesis reports it, or `None` once Kinesis has no such stream.
async fn in_kinesis(kinesis: &Client, name: &str) -> Option<InKinesis> {
    let summary = match kinesis
        .describe_stream_summary()
        .stream_name(name)
        .send()
        .await
    {
        Ok(output) => output.stream_description_summary().cloned()?,
        Err(error)
            if error
                .as_service_error()
                .is_some_and(|e| e.is_resource_not_found_exception()) =>
        {
            return None;
        }
        Err(error) => panic!("describe {name}: {error:?}"),
    };
    let shards = kinesis
        .list_shards()
        .stream_name(name)
        .send()
        .await
        .expect("list shards");
    let open_shards = shards
        .shards()
        .iter()
        .filter(|s| {
            s.sequence_number_range()
                .and_then(|r| r.ending_sequence_number())
                .is_none()
        })
        .count();
    Some(InKinesis {
        mode: summary
            .stream_mode_details()
            .map(|d| d.stream_mode().as_str().to_owned())
            .unwrap_or_default(),
        open_shards,
        retention_hours: summary.retention_period_hours(),
        kms_key_id: summary.key_id().map(str::to_owned),
    })
}

async fn tags(kinesis: &Client, name: &str) -> Vec<(String, String)> {
    let listed = kinesis
        .list_tags_for_stream()
        .stream_name(name)
        .send()
        .await
        .expect("tags");
    let mut tags: Vec<(String, String)> = listed
        .tags()
        .iter()
        .map(|t| (t.key().to_owned(), t.value().unwrap_or_default().to_owned()))
        .collect();
    tags.sort();
    tags
}

async fn event_reasons(client: &kube::Client, namespace: &str) -> Vec<String> {
    let events: Api<Event> = Api::namespaced(client.clone(), namespace);
    let list = events.list(&ListParams::default()).await.expect("events");
    list.items.into_iter().filter_map(|e| e.reason).collect()
}

async fn gone(streams: &Api<Stream>, name: &str) {
    eventually(WAIT, &format!("the Stream {name} gone"), || async {
        streams
            .get_opt(name)
            .await
            .expect("get")
            .is_none()
            .then_some(())
    })
    .await;
}

#[tokio::test]
async fn provisions_reshards_switches_mode_and_reverts_drift() {
    let kinesis = tributary_workers::connect::kinesis(&aws_config().await);
    let client = kube_client().await;
    let namespace = unique_name("streams");
    let operator = start_operator(&client, &namespace, RESYNC).await;
    let streams: Api<Stream> = Api::namespaced(client.clone(), &namespace);
    let name = unique_name("pin");

    let started = Instant::now();
    let spec = json!({
        "mode": "Provisioned",
        "shardCount": 1,
        "tags": {"team": "data"},
        "deletionPolicy": "Delete",
    });
    streams
        .create(&PostParams::default(), &manifest("pin", &name, spec))
        .await
        .expect("Stream created");
    let stream = ready(&streams, "pin").await;
    println!("created and ACTIVE in {:?}", started.elapsed());
    let status = stream.status.as_ref().expect("status");
    assert_eq!(status.stream_name.as_deref(), Some(name.as_str()));
    assert!(
        status
            .arn
            .as_deref()
            .is_some_and(|a| a.ends_with(&format!(":stream/{name}")))
    );
    assert_eq!(status.stream_status.as_deref(), Some("ACTIVE"));
    assert_eq!(status.mode, Some(StreamMode::Provisioned));
    assert_eq!(
        (status.open_shard_count, status.retention_hours),
        (Some(1), Some(24))
    );
    assert!(
        stream
            .metadata
            .finalizers
            .as_ref()
            .is_some_and(|f| f.iter().any(|f| f == "tributary.dev/stream"))
    );
    assert_eq!(
        in_kinesis(&kinesis, &name).await,
        Some(InKinesis {
            mode: "PROVISIONED".into(),
            open_shards: 1,
            retention_hours: 24,
            kms_key_id: None,
        })
    );
    assert_eq!(
        tags(&kinesis, &name).await,
        [("team".into(), "data".into())]
    );

    // 1 → 4 is planned as 1 → 2 → 4 (at most double per call), then 4 → 3.
    let resharding = Instant::now();
    patch(&streams, "pin", json!({"shardCount": 4})).await;
    let stream = ready(&streams, "pin").await;
    let status = stream.status.as_ref().expect("status");
    assert_eq!(status.open_shard_count, Some(4));
    assert!(status.pending_shard_counts.is_empty());
    patch(&streams, "pin", json!({"shardCount": 3})).await;
    let stream = ready(&streams, "pin").await;
    println!("resharded 1 → 2 → 4 → 3 in {:?}", resharding.elapsed());
    assert_eq!(
        stream.status.as_ref().and_then(|s| s.open_shard_count),
        Some(3)
    );
    assert_eq!(
        in_kinesis(&kinesis, &name).await.map(|k| k.open_shards),
        Some(3),
        "ListShards agrees"
    );

    // Mode switches both ways: on-demand, then provisioned with 2 shards.
    let switching = Instant::now();
    patch(
        &streams,
        "pin",
        json!({"mode": "OnDemand", "shardCount": null}),
    )
    .await;
    let stream = ready(&streams, "pin").await;
    assert_eq!(
        stream.status.as_ref().and_then(|s| s.mode),
        Some(StreamMode::OnDemand)
    );
    assert_eq!(
        in_kinesis(&kinesis, &name).await.map(|k| k.mode),
        Some("ON_DEMAND".into())
    );
    patch(
        &streams,
        "pin",
        json!({"mode": "Provisioned", "shardCount": 2}),
    )
    .await;
    let stream = ready(&streams, "pin").await;
    println!("mode switched twice in {:?}", switching.elapsed());
    let status = stream.status.as_ref().expect("status");
    assert_eq!(
        (status.mode, status.open_shard_count),
        (Some(StreamMode::Provisioned), Some(2))
    );

    // Retention up (IncreaseStreamRetentionPeriod) and down (Decrease...), encryption, tags.
    patch(&streams, "pin", json!({"retentionHours": 48})).await;
    let stream = ready(&streams, "pin").await;
    assert_eq!(
        stream.status.as_ref().and_then(|s| s.retention_hours),
        Some(48)
    );
    patch(
        &streams,
        "pin",
        json!({
            "retentionHours": 36,
            "encryption": {"kmsKeyId": "alias/aws/kinesis"},
            "tags": {"team": "data", "env": "test"},
        }),
    )
    .await;
    ready(&streams, "pin").await;
    assert_eq!(
        in_kinesis(&kinesis, &name).await,
        Some(InKinesis {
            mode: "PROVISIONED".into(),
            open_shards: 2,
            retention_hours: 36,
            kms_key_id: Some("alias/aws/kinesis".into()),
        })
    );
    assert_eq!(
        tags(&kinesis, &name).await,
        [
            ("env".into(), "test".into()),
            ("team".into(), "data".into())
        ]
    );

    // Drift: changed in Kinesis, set back at the next resync.
    kinesis
        .increase_stream_retention_period()
        .stream_name(&name)
        .retention_period_hours(72)
        .send()
        .await
        .expect("retention changed outside");
    kinesis
        .add_tags_to_stream()
        .stream_name(&name)
        .tags("owner", "someone-else")
        .send()
        .await
        .expect("tag added outside");
    let reverted = eventually(WAIT, "drift reverted", || async {
        let stream = streams.get("pin").await.ok()?;
        let status = stream.status.as_ref()?;
        (status.drifted_fields == ["tags", "retentionHours"] && status.retention_hours == Some(36))
            .then_some(stream)
    })
    .await;
    assert_eq!(ready_reason(&reverted), Some(("True", "InSync")));
    assert_eq!(
        in_kinesis(&kinesis, &name).await.map(|k| k.retention_hours),
        Some(36)
    );
    assert_eq!(
        tags(&kinesis, &name).await.len(),
        2,
        "the foreign tag removed"
    );

    let reasons = event_reasons(&client, &namespace).await;
    for reason in [
        "Created",
        "Ready",
        "Resharding",
        "ModeSwitched",
        "RetentionChanged",
        "EncryptionStarted",
        "TagsUpdated",
        "DriftReverted",
    ] {
        assert!(
            reasons.iter().any(|r| r == reason),
            "an Event {reason} among {reasons:?}"
        );
    }

    streams
        .delete("pin", &DeleteParams::default())
        .await
        .expect("delete requested");
    gone(&streams, "pin").await;
    eventually(WAIT, "the Kinesis stream gone", || async {
        in_kinesis(&kinesis, &name).await.is_none().then_some(())
    })
    .await;
    operator.stop().await;
}

#[tokio::test]
async fn retain_keeps_the_stream_and_one_deleted_outside_counts_as_deleted() {
    let kinesis = tributary_workers::connect::kinesis(&aws_config().await);
    let client = kube_client().await;
    let namespace = unique_name("streams-delete");
    let operator = start_operator(&client, &namespace, RESYNC).await;
    let streams: Api<Stream> = Api::namespaced(client.clone(), &namespace);

    // On-demand, Retain (the default): deleting the object keeps the stream.
    let kept = unique_name("kept");
    streams
        .create(&PostParams::default(), &manifest("kept", &kept, json!({})))
        .await
        .expect("Stream created");
    let stream = ready(&streams, "kept").await;
    assert_eq!(
        stream.status.as_ref().and_then(|s| s.mode),
        Some(StreamMode::OnDemand)
    );
    streams
        .delete("kept", &DeleteParams::default())
        .await
        .expect("delete requested");
    gone(&streams, "kept").await;
    assert!(
        in_kinesis(&kinesis, &kept).await.is_some(),
        "Retain keeps the Kinesis stream"
    );

    // Delete, with the stream already deleted in Kinesis: the finalizer lets go.
    let doomed = unique_name("doomed");
    let spec = json!({"mode": "Provisioned", "shardCount": 1, "deletionPolicy": "Delete"});
    streams
        .create(&PostParams::default(), &manifest("doomed", &doomed, spec))
        .await
        .expect("Stream created");
    ready(&streams, "doomed").await;
    kinesis
        .delete_stream()
        .stream_name(&doomed)
        .send()
        .await
        .expect("deleted outside");
    streams
        .delete("doomed", &DeleteParams::default())
        .await
        .expect("delete requested");
    gone(&streams, "doomed").await;
    eventually(WAIT, "no Kinesis stream left", || async {
        in_kinesis(&kinesis, &doomed).await.is_none().then_some(())
    })
    .await;

    operator.stop().await;
    kinesis
        .delete_stream()
        .stream_name(&kept)
        .send()
        .await
        .expect("clean up");
}
