//! Every branch of the Stream reconcile against a mock API server and an in-memory Kinesis: the
//! exact API calls it makes (finalizer, Events, status apply) and the Kinesis calls.

use std::sync::{Arc, Mutex};
use std::time::Duration;

use async_trait::async_trait;
use kube::runtime::controller::Action;
use serde_json::Value;
use tributary_crds::common::Tags;
use tributary_crds::stream::StreamMode;
use tributary_crds::{DeletionPolicy, Stream, StreamStatus};

use super::kinesis::{Kinesis, KinesisError, LIMIT_EXCEEDED, StreamState};
use super::plan::Change;
use super::{Error, FIELD_MANAGER, FINALIZER, POLL, reconcile};
use crate::context::Context;
use crate::reconciler::Categorized;
use crate::test_support::{ApiCall, Fixture, RESYNC, Scenario, from_yaml};

const STREAM: &str = r#"
apiVersion: tributary.dev/v1alpha1
kind: Stream
metadata:
  name: pin
  namespace: demo
  uid: 7f0c0e1a-0000-4000-8000-0000000000d1
  generation: 1
  resourceVersion: "400"
  creationTimestamp: "2025-01-01T00:00:00Z"
spec:
  mode: Provisioned
  shardCount: 4
  retentionHours: 48
  tags: {team: data}
"#;

const ARN: &str = "arn:aws:kinesis:us-east-1:000000000000:stream/pin";

/// The Stream `demo/pin` (4 provisioned shards, 48 hours, one tag) with the finalizer.
fn stream() -> Stream {
    from_yaml::<Stream>(STREAM).with_finalizer(FINALIZER)
}

fn with_status(mut stream: Stream, yaml: &str) -> Stream {
    stream.status = Some(from_yaml::<StreamStatus>(yaml));
    stream
}

/// The status of [`stream`] after a reconcile that found it in sync.
const IN_SYNC: &str = r#"
observedGeneration: 1
streamName: pin
arn: arn:aws:kinesis:us-east-1:000000000000:stream/pin
streamStatus: ACTIVE
mode: Provisioned
openShardCount: 4
retentionHours: 48
conditions:
- {type: Ready, status: "True", reason: InSync, message: Kinesis stream pin is ACTIVE and matches the spec, observedGeneration: 1, lastTransitionTime: "2025-01-01T00:01:00Z"}
- {type: Progressing, status: "False", reason: Idle, message: no Kinesis operation in progress, observedGeneration: 1, lastTransitionTime: "2025-01-01T00:01:00Z"}
- {type: Degraded, status: "False", reason: AsExpected, message: no Kinesis limit stops progress, observedGeneration: 1, lastTransitionTime: "2025-01-01T00:01:00Z"}
"#;

/// A Kinesis call as [`FakeKinesis`] saw it.
#[derive(Clone, Debug, PartialEq, Eq)]
enum Call {
    Create(StreamMode, Option<i32>),
    Change(Change),
    Delete,
}

#[derive(Default)]
struct KinesisState {
    stream: Option<StreamState>,
    tags: Tags,
    calls: Vec<Call>,
    /// The Kinesis error code and the operation it refuses (`""`: describe).
    failing: Option<(&'static str, &'static str)>,
    /// Changes leave the stream UPDATING, as on AWS, instead of ACTIVE at once.
    busy: bool,
}

/// Kinesis in memory: one stream.
#[derive(Clone, Default)]
struct FakeKinesis(Arc<Mutex<KinesisState>>);

impl FakeKinesis {
    fn with_stream(self, stream: StreamState, tags: &[(&str, &str)]) -> Self {
        {
            let mut state = self.0.lock().unwrap();
            state.stream = Some(stream);
            state.tags = tags
                .iter()
                .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
                .collect();
        }
        self
    }

    fn failing(self, operation: &'static str, code: &'static str) -> Self {
        self.0.lock().unwrap().failing = Some((operation, code));
        self
    }

    fn busy(self) -> Self {
        self.0.lock().unwrap().busy = true;
        self
    }

    fn calls(&self) -> Vec<Call> {
        self.0.lock().unwrap().calls.clone()
    }

    fn stream(&self) -> Option<StreamState> {
        self.0.lock().unwrap().stream.clone()
    }

    fn check(&self, operation: &'static str) -> Result<(), KinesisError> {
        match self.0.lock().unwrap().failing {
            Some((op, code)) if op == operation => Err(KinesisError {
                operation,
                code: Some(code.into()),
                message: format!("{code}: refused by the test"),
            }),
            _ => Ok(()),
        }
    }
}

/// The stream [`stream`] describes, ACTIVE.
fn active() -> StreamState {
    StreamState {
        arn: ARN.into(),
        status: "ACTIVE".into(),
        mode: StreamMode::Provisioned,
        open_shards: 4,
        retention_hours: 48,
        kms_key_id: None,
    }
}

fn operation(change: &Change) -> &'static str {
    match change {
        Change::Reshard { .. } => "UpdateShardCount",
        Change::Mode { .. } => "UpdateStreamMode",
        Change::Retention { .. } => "Retention",
        Change::StartEncryption { .. } => "StartStreamEncryption",
        Change::StopEncryption { .. } => "StopStreamEncryption",
        Change::Tags { .. } => "Tags",
    }
}

#[async_trait]
impl Kinesis for FakeKinesis {
    async fn describe(
        &self,
        _region: Option<&str>,
        name: &str,
    ) -> Result<Option<StreamState>, KinesisError> {
        assert_eq!(name, "pin");
        self.check("DescribeStreamSummary")?;
        Ok(self.stream())
    }

    async fn tags(&self, _region: Option<&str>, _name: &str) -> Result<Tags, KinesisError> {
        Ok(self.0.lock().unwrap().tags.clone())
    }

    async fn create(
        &self,
        _region: Option<&str>,
        name: &str,
        mode: StreamMode,
        shards: Option<i32>,
        tags: &Tags,
    ) -> Result<(), KinesisError> {
        self.check("CreateStream")?;
        let mut state = self.0.lock().unwrap();
        state.calls.push(Call::Create(mode, shards));
        state.stream = Some(StreamState {
            arn: format!("arn:aws:kinesis:us-east-1:000000000000:stream/{name}"),
            status: "CREATING".into(),
            mode,
            open_shards: shards.unwrap_or(4),
            retention_hours: 24,
            kms_key_id: None,
        });
        state.tags = tags.clone();
        Ok(())
    }

    async fn change(
        &self,
        _region: Option<&str>,
        stream: &StreamState,
        _name: &str,
        change: &Change,
    ) -> Result<(), KinesisError> {
        assert_eq!(stream.status, "ACTIVE", "a change to a busy stream");
        self.check(operation(change))?;
        let mut state = self.0.lock().unwrap();
        state.calls.push(Call::Change(change.clone()));
        let busy = state.busy && !matches!(change, Change::Tags { .. });
        match change {
            Change::Tags { set, remove } => {
                state.tags.extend(set.clone());
                state.tags.retain(|k, _| !remove.contains(k));
            }
            other => {
                let found = state.stream.as_mut().expect("a stream");
                match other {
                    Change::Reshard { from, to } => {
                        assert_eq!(*from, found.open_shards);
                        assert!(*to <= 2 * from && 2 * to >= *from, "{from} → {to}");
                        found.open_shards = *to;
                    }
                    Change::Mode { to } => found.mode = *to,
                    Change::Retention { to, .. } => found.retention_hours = *to,
                    Change::StartEncryption { key } => found.kms_key_id = Some(key.clone()),
                    Change::StopEncryption { .. } => found.kms_key_id = None,
                    Change::Tags { .. } => unreachable!(),
                }
                if busy {
                    found.status = "UPDATING".into();
                }
            }
        }
        Ok(())
    }

    async fn delete(&self, _region: Option<&str>, _name: &str) -> Result<(), KinesisError> {
        self.check("DeleteStream")?;
        let mut state = self.0.lock().unwrap();
        state.calls.push(Call::Delete);
        if let Some(found) = state.stream.as_mut() {
            found.status = "DELETING".into();
        }
        Ok(())
    }
}

/// Reconcile `stream`; the API calls are checked against `scenario` before the result is
/// returned.
async fn reconcile_with(
    stream: &Stream,
    kinesis: &FakeKinesis,
    scenario: Scenario,
) -> Result<Action, Error> {
    let (ctx, api) = Context::test_streams(Arc::new(kinesis.clone()));
    let verifier = api.run(scenario);
    let result = reconcile(Arc::new(stream.clone()), ctx).await;
    verifier.done().await;
    result
}

fn condition<'a>(status: &'a Value, type_: &str) -> &'a Value {
    status["conditions"]
        .as_array()
        .and_then(|c| c.iter().find(|c| c["type"] == type_))
        .unwrap_or_else(|| panic!("no {type_} condition in {status}"))
}

fn reshard(from: i32, to: i32) -> Call {
    Call::Change(Change::Reshard { from, to })
}

#[tokio::test]
async fn a_new_stream_gets_the_finalizer_first() {
    let kinesis = FakeKinesis::default();
    let fresh: Stream = from_yaml(STREAM);

    let action = reconcile_with(
        &fresh,
        &kinesis,
        Scenario::calls([ApiCall::add_finalizer(&fresh, FINALIZER)]),
    )
    .await
    .expect("reconciled");

    assert_eq!(action, Action::await_change());
    assert!(kinesis.calls().is_empty());
}

#[tokio::test]
async fn a_missing_stream_is_created_and_polled_while_creating() {
    let kinesis = FakeKinesis::default();
    let stream = stream();

    let action = reconcile_with(
        &stream,
        &kinesis,
        Scenario::calls([
            ApiCall::event(&stream, "Created"),
            ApiCall::warning(&stream, "NotReady"),
            ApiCall::apply_status(&stream, FIELD_MANAGER, false, "Creating").with_status(|s| {
                assert_eq!(s["arn"], ARN);
                assert_eq!(s["streamStatus"], "CREATING");
                assert_eq!(s["streamName"], "pin");
                assert_eq!(condition(s, "Progressing")["status"], "True");
                assert_eq!(condition(s, "Degraded")["status"], "False");
            }),
        ]),
    )
    .await
    .expect("reconciled");

    assert_eq!(action, Action::requeue(POLL));
    assert_eq!(
        kinesis.calls(),
        [Call::Create(StreamMode::Provisioned, Some(4))]
    );
    assert_eq!(
        kinesis.0.lock().unwrap().tags.len(),
        1,
        "tagged at creation"
    );
}

#[tokio::test]
async fn an_on_demand_stream_is_created_without_a_shard_count() {
    let kinesis = FakeKinesis::default();
    let mut stream = stream();
    stream.spec.mode = StreamMode::OnDemand;
    stream.spec.shard_count = None;

    reconcile_with(
        &stream,
        &kinesis,
        Scenario::calls([
            ApiCall::event(&stream, "Created"),
            ApiCall::warning(&stream, "NotReady"),
            ApiCall::apply_status(&stream, FIELD_MANAGER, false, "Creating"),
        ]),
    )
    .await
    .expect("reconciled");

    assert_eq!(kinesis.calls(), [Call::Create(StreamMode::OnDemand, None)]);
}

#[tokio::test]
async fn an_active_stream_as_specified_is_ready_and_then_left_alone() {
    let kinesis = FakeKinesis::default().with_stream(active(), &[("team", "data")]);
    let stream = stream();

    let action = reconcile_with(
        &stream,
        &kinesis,
        Scenario::calls([
            ApiCall::event(&stream, "Ready"),
            ApiCall::apply_status(&stream, FIELD_MANAGER, true, "InSync").with_status(|s| {
                assert_eq!(s["openShardCount"], 4);
                assert_eq!(s["retentionHours"], 48);
                assert_eq!(s["mode"], "Provisioned");
                assert_eq!(s["streamStatus"], "ACTIVE");
                assert_eq!(s["observedGeneration"], 1);
                assert_eq!(s["pendingShardCounts"], Value::Null);
            }),
        ]),
    )
    .await
    .expect("reconciled");
    assert_eq!(action, Action::requeue(RESYNC));

    let action = reconcile_with(&with_status(stream, IN_SYNC), &kinesis, Scenario::silence())
        .await
        .expect("reconciled");
    assert_eq!(action, Action::requeue(RESYNC));
    assert!(kinesis.calls().is_empty(), "nothing changed in Kinesis");
}

#[tokio::test]
async fn resharding_takes_every_step_while_kinesis_stays_active() {
    let one = StreamState {
        open_shards: 1,
        ..active()
    };
    let kinesis = FakeKinesis::default().with_stream(one, &[("team", "data")]);
    let stream = stream();

    reconcile_with(
        &stream,
        &kinesis,
        Scenario::calls([
            ApiCall::event(&stream, "Resharding"),
            ApiCall::event_again(&stream, "Resharding"),
            ApiCall::event(&stream, "Ready"),
            ApiCall::apply_status(&stream, FIELD_MANAGER, true, "InSync")
                .with_status(|s| assert_eq!(s["openShardCount"], 4)),
        ]),
    )
    .await
    .expect("reconciled");

    assert_eq!(kinesis.calls(), [reshard(1, 2), reshard(2, 4)]);
}

#[tokio::test]
async fn resharding_waits_for_active_between_steps() {
    let one = StreamState {
        open_shards: 1,
        ..active()
    };
    let kinesis = FakeKinesis::default()
        .with_stream(one, &[("team", "data")])
        .busy();
    let stream = stream();

    let action = reconcile_with(
        &stream,
        &kinesis,
        Scenario::calls([
            ApiCall::event(&stream, "Resharding"),
            ApiCall::warning(&stream, "NotReady"),
            ApiCall::apply_status(&stream, FIELD_MANAGER, false, "Updating").with_status(|s| {
                assert_eq!(s["streamStatus"], "UPDATING");
                assert_eq!(s["pendingShardCounts"], serde_json::json!([4]));
                assert_eq!(condition(s, "Progressing")["status"], "True");
                let message = condition(s, "Ready")["message"].as_str().unwrap();
                assert!(message.ends_with("resharding steps to go: 4"), "{message}");
            }),
        ]),
    )
    .await
    .expect("reconciled");

    assert_eq!(action, Action::requeue(POLL));
    assert_eq!(kinesis.calls(), [reshard(1, 2)], "one step, then wait");

    // Still UPDATING at the next poll: nothing is called.
    let updating = kinesis.stream().expect("a stream");
    let waiting = with_status(
        stream.clone(),
        &format!(
            r#"
observedGeneration: 1
streamName: pin
arn: {ARN}
streamStatus: UPDATING
mode: Provisioned
openShardCount: {}
retentionHours: 48
pendingShardCounts: [4]
conditions:
- {{type: Ready, status: "False", reason: Updating, message: "Kinesis reports the stream UPDATING; waiting for it to become ACTIVE; resharding steps to go: 4", observedGeneration: 1, lastTransitionTime: "2025-01-01T00:01:00Z"}}
- {{type: Progressing, status: "True", reason: Updating, message: "Kinesis reports the stream UPDATING; waiting for it to become ACTIVE; resharding steps to go: 4", observedGeneration: 1, lastTransitionTime: "2025-01-01T00:01:00Z"}}
- {{type: Degraded, status: "False", reason: AsExpected, message: no Kinesis limit stops progress, observedGeneration: 1, lastTransitionTime: "2025-01-01T00:01:00Z"}}
"#,
            updating.open_shards
        ),
    );
    let action = reconcile_with(&waiting, &kinesis, Scenario::silence())
        .await
        .expect("reconciled");
    assert_eq!(action, Action::requeue(POLL));
    assert_eq!(kinesis.calls().len(), 1, "no call while UPDATING");
}

#[tokio::test]
async fn a_mode_switch_comes_before_resharding() {
    let on_demand = StreamState {
        mode: StreamMode::OnDemand,
        open_shards: 8,
        ..active()
    };
    let kinesis = FakeKinesis::default().with_stream(on_demand, &[("team", "data")]);
    let stream = stream();

    reconcile_with(
        &stream,
        &kinesis,
        Scenario::calls([
            ApiCall::event(&stream, "ModeSwitched"),
            ApiCall::event(&stream, "Resharding"),
            ApiCall::event(&stream, "Ready"),
            ApiCall::apply_status(&stream, FIELD_MANAGER, true, "InSync"),
        ]),
    )
    .await
    .expect("reconciled");

    assert_eq!(
        kinesis.calls(),
        [
            Call::Change(Change::Mode {
                to: StreamMode::Provisioned
            }),
            reshard(8, 4)
        ]
    );
}

#[tokio::test]
async fn the_daily_scaling_quota_is_a_condition_not_an_error_loop() {
    let two = StreamState {
        open_shards: 2,
        retention_hours: 24,
        ..active()
    };
    let kinesis = FakeKinesis::default()
        .with_stream(two, &[("team", "data")])
        .failing("UpdateShardCount", LIMIT_EXCEEDED);
    let stream = with_status(stream(), IN_SYNC);
    let mut raised = stream.clone();
    raised.metadata.generation = Some(2);

    let action = reconcile_with(
        &raised,
        &kinesis,
        Scenario::calls([
            ApiCall::event(&raised, "RetentionChanged"),
            ApiCall::warning(&raised, "NotReady"),
            ApiCall::apply_status(&raised, FIELD_MANAGER, false, "ScalingQuotaExceeded")
                .with_status(|s| {
                    let degraded = condition(s, "Degraded");
                    assert_eq!(degraded["status"], "True");
                    assert_eq!(degraded["reason"], "ScalingQuotaExceeded");
                    let message = condition(s, "Ready")["message"].as_str().unwrap();
                    assert!(message.contains("LimitExceededException"), "{message}");
                    assert!(message.contains("resharding from 2 to 4"), "{message}");
                    assert_eq!(s["openShardCount"], 2);
                    assert_eq!(s["retentionHours"], 48, "the other changes were made");
                    assert_eq!(s["pendingShardCounts"], serde_json::json!([4]));
                    assert_eq!(s["driftedFields"], Value::Null, "a spec change, not drift");
                }),
        ]),
    )
    .await
    .expect("a quota is a status, not an error");

    assert_eq!(action, Action::requeue(Duration::from_secs(15 * 60)));
    assert_eq!(
        kinesis.calls(),
        [Call::Change(Change::Retention { from: 24, to: 48 })],
        "retention first; the refused resharding is not recorded"
    );
}

#[tokio::test]
async fn the_mode_switch_quota_has_its_own_reason() {
    let on_demand = StreamState {
        mode: StreamMode::OnDemand,
        ..active()
    };
    let kinesis = FakeKinesis::default()
        .with_stream(on_demand, &[("team", "data")])
        .failing("UpdateStreamMode", LIMIT_EXCEEDED);
    let stream = stream();

    reconcile_with(
        &stream,
        &kinesis,
        Scenario::calls([
            ApiCall::warning(&stream, "NotReady"),
            ApiCall::apply_status(&stream, FIELD_MANAGER, false, "ModeSwitchQuotaExceeded"),
        ]),
    )
    .await
    .expect("reconciled");
}

#[tokio::test]
async fn drift_is_reverted_and_reported() {
    let changed = StreamState {
        retention_hours: 168,
        ..active()
    };
    let kinesis =
        FakeKinesis::default().with_stream(changed, &[("team", "web"), ("owner", "someone")]);
    let stream = with_status(stream(), IN_SYNC);

    reconcile_with(
        &stream,
        &kinesis,
        Scenario::calls([
            ApiCall::warning(&stream, "DriftReverted"),
            ApiCall::event(&stream, "TagsUpdated"),
            ApiCall::event(&stream, "RetentionChanged"),
            ApiCall::apply_status(&stream, FIELD_MANAGER, true, "InSync").with_status(|s| {
                assert_eq!(
                    s["driftedFields"],
                    serde_json::json!(["tags", "retentionHours"])
                );
                assert_eq!(s["retentionHours"], 48);
            }),
        ]),
    )
    .await
    .expect("reconciled");

    let state = kinesis.0.lock().unwrap();
    assert_eq!(state.stream.as_ref().unwrap().retention_hours, 48);
    assert_eq!(
        state.tags.iter().collect::<Vec<_>>(),
        [(&"team".to_owned(), &"data".to_owned())]
    );
}

#[tokio::test]
async fn encryption_is_started_and_a_refused_key_is_reported() {
    let kinesis = FakeKinesis::default().with_stream(active(), &[("team", "data")]);
    let mut stream = stream();
    stream.spec.encryption = Some(from_yaml("{kmsKeyId: alias/aws/kinesis}"));

    reconcile_with(
        &stream,
        &kinesis,
        Scenario::calls([
            ApiCall::event(&stream, "EncryptionStarted"),
            ApiCall::event(&stream, "Ready"),
            ApiCall::apply_status(&stream, FIELD_MANAGER, true, "InSync"),
        ]),
    )
    .await
    .expect("reconciled");
    assert_eq!(
        kinesis.stream().unwrap().kms_key_id.as_deref(),
        Some("alias/aws/kinesis")
    );

    let refusing = FakeKinesis::default()
        .with_stream(active(), &[("team", "data")])
        .failing("StartStreamEncryption", "KMSNotFoundException");
    let action = reconcile_with(
        &stream,
        &refusing,
        Scenario::calls([
            ApiCall::warning(&stream, "NotReady"),
            ApiCall::apply_status(&stream, FIELD_MANAGER, false, "EncryptionFailed").with_status(
                |s| {
                    let message = condition(s, "Ready")["message"].as_str().unwrap();
                    assert!(message.contains("KMSNotFoundException"), "{message}");
                    assert!(message.contains("spec.encryption.kmsKeyId"), "{message}");
                },
            ),
        ]),
    )
    .await
    .expect("a refused key is a status, not an error");
    assert_eq!(action, Action::requeue(RESYNC));
}

#[tokio::test]
async fn a_kinesis_error_is_reported_and_retried_with_backoff() {
    let kinesis = FakeKinesis::default().failing("DescribeStreamSummary", "InternalFailure");
    let stream = with_status(stream(), IN_SYNC);

    let error = reconcile_with(
        &stream,
        &kinesis,
        Scenario::calls([
            ApiCall::warning(&stream, "NotReady"),
            ApiCall::apply_status(&stream, FIELD_MANAGER, false, "KinesisError").with_status(|s| {
                assert_eq!(s["openShardCount"], 4, "the last observation is kept");
                let message = condition(s, "Ready")["message"].as_str().unwrap();
                assert!(message.contains("DescribeStreamSummary"), "{message}");
            }),
        ]),
    )
    .await
    .expect_err("a Kinesis error fails the reconcile");

    assert_eq!(error.category(), "aws");
}

#[tokio::test]
async fn an_invalid_spec_touches_nothing() {
    let kinesis = FakeKinesis::default();
    let mut stream = stream();
    stream.spec.shard_count = None;

    let action = reconcile_with(
        &stream,
        &kinesis,
        Scenario::calls([
            ApiCall::warning(&stream, "NotReady"),
            ApiCall::apply_status(&stream, FIELD_MANAGER, false, "InvalidSpec"),
        ]),
    )
    .await
    .expect("reconciled");

    assert_eq!(action, Action::await_change());
    assert!(kinesis.calls().is_empty());
}

#[tokio::test]
async fn a_paused_stream_is_left_alone() {
    let kinesis = FakeKinesis::default();
    let action = reconcile_with(&stream().paused(), &kinesis, Scenario::silence())
        .await
        .expect("reconciled");
    assert_eq!(action, Action::await_change());
    assert!(kinesis.calls().is_empty());
}

#[tokio::test]
async fn deletion_with_delete_deletes_the_stream() {
    let kinesis = FakeKinesis::default().with_stream(active(), &[]);
    let mut stream = stream().deleting();
    stream.spec.deletion_policy = DeletionPolicy::Delete;

    reconcile_with(
        &stream,
        &kinesis,
        Scenario::calls([
            ApiCall::event(&stream, "Deleted"),
            ApiCall::remove_finalizer(&stream, FINALIZER),
        ]),
    )
    .await
    .expect("reconciled");

    assert_eq!(kinesis.calls(), [Call::Delete]);
}

#[tokio::test]
async fn a_stream_already_gone_counts_as_deleted() {
    let kinesis = FakeKinesis::default();
    let mut stream = stream().deleting();
    stream.spec.deletion_policy = DeletionPolicy::Delete;

    reconcile_with(
        &stream,
        &kinesis,
        Scenario::calls([ApiCall::remove_finalizer(&stream, FINALIZER)]),
    )
    .await
    .expect("reconciled");

    assert!(kinesis.calls().is_empty());

    let deleting = FakeKinesis::default().with_stream(
        StreamState {
            status: "DELETING".into(),
            ..active()
        },
        &[],
    );
    reconcile_with(
        &stream,
        &deleting,
        Scenario::calls([ApiCall::remove_finalizer(&stream, FINALIZER)]),
    )
    .await
    .expect("reconciled");
    assert!(deleting.calls().is_empty(), "no second delete");
}

#[tokio::test]
async fn deletion_with_retain_or_paused_releases_the_stream() {
    for stream in [stream().deleting(), {
        let mut paused = stream().paused().deleting();
        paused.spec.deletion_policy = DeletionPolicy::Delete;
        paused
    }] {
        let kinesis = FakeKinesis::default().with_stream(active(), &[]);
        reconcile_with(
            &stream,
            &kinesis,
            Scenario::calls([
                ApiCall::event(&stream, "Released"),
                ApiCall::remove_finalizer(&stream, FINALIZER),
            ]),
        )
        .await
        .expect("reconciled");
        assert!(kinesis.calls().is_empty());
        assert!(kinesis.stream().is_some(), "kept");
    }
}
