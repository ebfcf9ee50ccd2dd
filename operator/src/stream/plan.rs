//! The pure middle of the Stream controller: the resharding steps Kinesis allows, what to change
//! given what Kinesis reports, and the conditions of each situation. No I/O; unit-tested from
//! YAML fixtures.

use tributary_crds::Stream;
use tributary_crds::common::Tags;
use tributary_crds::stream::StreamMode;

use super::kinesis::StreamState;
use crate::conditions::{Decided, READY};

/// The condition that holds while Kinesis creates or changes the stream.
pub const PROGRESSING: &str = "Progressing";
/// The condition that holds while a Kinesis limit stops progress.
pub const DEGRADED: &str = "Degraded";
/// The most open shards a stream may have (Kinesis's default per-stream limit, and the CRD's).
pub const MAX_SHARDS: i32 = 10_000;
/// Tags Kinesis (or AWS) sets itself; they cannot be removed and are never managed.
const AWS_TAG_PREFIX: &str = "aws:";

/// The shard count of the next UpdateShardCount call on the way from `current` open shards to
/// `target`, or `None` when there is nothing to do. Kinesis takes, per call, at most double
/// the current count, at least half of it (rounded up), and at most [`MAX_SHARDS`].
pub fn next_shard_count(current: i32, target: i32) -> Option<i32> {
    let target = target.clamp(1, MAX_SHARDS);
    if current < 1 || current == target {
        return None;
    }
    let next = if target > current {
        target.min(current.saturating_mul(2)).min(MAX_SHARDS)
    } else {
        target.max(current - current / 2)
    };
    Some(next)
}

/// Every UpdateShardCount target on the way from `current` open shards to `target`, in order;
/// empty when there is nothing to do. 10 → 50 is `[20, 40, 50]`.
pub fn reshard_path(current: i32, target: i32) -> Vec<i32> {
    std::iter::successors(next_shard_count(current, target), |&at| {
        next_shard_count(at, target)
    })
    .collect()
}

/// What the spec asks of Kinesis.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Desired {
    /// The stream's name in Kinesis.
    pub name: String,
    /// The capacity mode.
    pub mode: StreamMode,
    /// Open shards, in provisioned mode.
    pub shard_count: Option<i32>,
    /// Retention in hours.
    pub retention_hours: i32,
    /// The KMS key of server-side encryption; `None`: not encrypted.
    pub kms_key_id: Option<String>,
    /// The stream's tags.
    pub tags: Tags,
}

impl Desired {
    /// Read the desired state from a (validated) Stream.
    pub fn from_stream(stream: &Stream) -> Self {
        let spec = &stream.spec;
        Self {
            name: stream.kinesis_name().to_owned(),
            mode: spec.mode,
            shard_count: spec
                .shard_count
                .filter(|_| spec.mode == StreamMode::Provisioned),
            retention_hours: spec.retention_hours,
            kms_key_id: spec.encryption.as_ref().map(|e| e.kms_key_id.clone()),
            tags: spec.tags.clone(),
        }
    }
}

/// One change to an ACTIVE stream. All but tagging make Kinesis update the stream, so the
/// controller makes one at a time and waits for ACTIVE in between.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Change {
    /// AddTagsToStream for `set`, RemoveTagsFromStream for `remove`.
    Tags {
        /// Tags to add or overwrite.
        set: Tags,
        /// Keys to remove.
        remove: Vec<String>,
    },
    /// IncreaseStreamRetentionPeriod or DecreaseStreamRetentionPeriod.
    Retention {
        /// In Kinesis.
        from: i32,
        /// In the spec.
        to: i32,
    },
    /// StartStreamEncryption with this KMS key (also to change the key).
    StartEncryption {
        /// The key.
        key: String,
    },
    /// StopStreamEncryption of the key in use.
    StopEncryption {
        /// The key.
        key: String,
    },
    /// UpdateStreamMode.
    Mode {
        /// The mode wanted.
        to: StreamMode,
    },
    /// One UpdateShardCount call (UNIFORM_SCALING).
    Reshard {
        /// Open shards now.
        from: i32,
        /// The call's target: the next step towards the spec's count.
        to: i32,
    },
}

impl Change {
    /// The spec field the change carries to Kinesis (the names of `status.driftedFields`).
    pub fn field(&self) -> &'static str {
        match self {
            Change::Tags { .. } => "tags",
            Change::Retention { .. } => "retentionHours",
            Change::StartEncryption { .. } | Change::StopEncryption { .. } => "encryption",
            Change::Mode { .. } => "mode",
            Change::Reshard { .. } => "shardCount",
        }
    }

    /// The Event reason.
    pub fn reason(&self) -> &'static str {
        match self {
            Change::Tags { .. } => "TagsUpdated",
            Change::Retention { .. } => "RetentionChanged",
            Change::StartEncryption { .. } => "EncryptionStarted",
            Change::StopEncryption { .. } => "EncryptionStopped",
            Change::Mode { .. } => "ModeSwitched",
            Change::Reshard { .. } => "Resharding",
        }
    }

    /// What the Event says; `target` is the spec's shard count (for resharding).
    pub fn message(&self, target: Option<i32>) -> String {
        match self {
            Change::Tags { set, remove } => {
                let mut parts = Vec::new();
                if !set.is_empty() {
                    let keys: Vec<&str> = set.keys().map(String::as_str).collect();
                    parts.push(format!("set {}", keys.join(", ")));
                }
                if !remove.is_empty() {
                    parts.push(format!("removed {}", remove.join(", ")));
                }
                format!("tags: {}", parts.join("; "))
            }
            Change::Retention { from, to } => {
                format!("retention changed from {from} to {to} hours")
            }
            Change::StartEncryption { key } => {
                format!("server-side encryption with KMS key {key} started")
            }
            Change::StopEncryption { key } => {
                format!("server-side encryption with KMS key {key} stopped")
            }
            Change::Mode { to } => format!("capacity mode switched to {}", kinesis_mode(*to)),
            Change::Reshard { from, to } => {
                let rest = target
                    .map(|t| reshard_path(*to, t))
                    .filter(|rest| !rest.is_empty())
                    .map(|rest| format!(" (then {})", list(&rest)))
                    .unwrap_or_default();
                format!("resharding from {from} to {to} open shards{rest}")
            }
        }
    }
}

fn kinesis_mode(mode: StreamMode) -> &'static str {
    match mode {
        StreamMode::OnDemand => "ON_DEMAND",
        StreamMode::Provisioned => "PROVISIONED",
    }
}

fn list(counts: &[i32]) -> String {
    counts
        .iter()
        .map(ToString::to_string)
        .collect::<Vec<_>>()
        .join(", ")
}

/// What to do next.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Step {
    /// There is no stream: create it.
    Create,
    /// Kinesis is busy with the stream (the status is given): look again soon.
    Wait(String),
    /// Make this change to the ACTIVE stream.
    Change(Change),
    /// ACTIVE and as the spec says.
    InSync,
}

/// Every difference between the spec and the ACTIVE stream, as the changes that remove them,
/// in the order they are made: first those no quota limits (tags, retention, encryption), then
/// the mode switch and resharding, which Kinesis allows only a few times a day, so that a quota
/// hit never holds the others back. Resharding waits for provisioned mode.
pub fn changes(desired: &Desired, stream: &StreamState, tags: &Tags) -> Vec<Change> {
    let mut changes = Vec::new();
    let set: Tags = desired
        .tags
        .iter()
        .filter(|(k, v)| tags.get(*k) != Some(*v))
        .map(|(k, v)| (k.clone(), v.clone()))
        .collect();
    let remove: Vec<String> = tags
        .keys()
        .filter(|k| !desired.tags.contains_key(*k) && !k.starts_with(AWS_TAG_PREFIX))
        .cloned()
        .collect();
    if !set.is_empty() || !remove.is_empty() {
        changes.push(Change::Tags { set, remove });
    }
    if desired.retention_hours != stream.retention_hours {
        changes.push(Change::Retention {
            from: stream.retention_hours,
            to: desired.retention_hours,
        });
    }
    match (&desired.kms_key_id, &stream.kms_key_id) {
        (Some(wanted), found) if found.as_ref() != Some(wanted) => {
            changes.push(Change::StartEncryption {
                key: wanted.clone(),
            });
        }
        (None, Some(found)) => changes.push(Change::StopEncryption { key: found.clone() }),
        _ => {}
    }
    if desired.mode != stream.mode {
        changes.push(Change::Mode { to: desired.mode });
    } else if let Some(target) = desired.shard_count
        && let Some(to) = next_shard_count(stream.open_shards, target)
    {
        changes.push(Change::Reshard {
            from: stream.open_shards,
            to,
        });
    }
    changes
}

/// Decide the next step from the spec and what Kinesis reports (`None`: no stream), with the
/// stream's tags (read only when it is ACTIVE).
pub fn plan(desired: &Desired, observed: Option<&StreamState>, tags: &Tags) -> Step {
    let Some(stream) = observed else {
        return Step::Create;
    };
    if !stream.is_active() {
        return Step::Wait(stream.status.clone());
    }
    match changes(desired, stream, tags).into_iter().next() {
        Some(change) => Step::Change(change),
        None => Step::InSync,
    }
}

/// The resharding steps still to carry out (`status.pendingShardCounts`).
pub fn pending_shard_counts(desired: &Desired, stream: &StreamState) -> Vec<i32> {
    match desired.shard_count {
        Some(target) if desired.mode == StreamMode::Provisioned => {
            reshard_path(stream.open_shards, target)
        }
        _ => Vec::new(),
    }
}

/// `Ready`, `Progressing` and `Degraded` for one situation.
pub type Conditions = [Decided; 3];

fn unlimited() -> Decided {
    Decided::no(DEGRADED, "AsExpected", "no Kinesis limit stops progress")
}

/// The stream is ACTIVE and as the spec says.
pub fn in_sync(name: &str) -> Conditions {
    [
        Decided::yes(
            READY,
            "InSync",
            format!("Kinesis stream {name} is ACTIVE and matches the spec"),
        ),
        Decided::no(PROGRESSING, "Idle", "no Kinesis operation in progress"),
        unlimited(),
    ]
}

/// Kinesis is in `status` (CREATING, UPDATING, DELETING), with `pending` resharding steps.
pub fn waiting(status: &str, pending: &[i32]) -> Conditions {
    let (reason, message) = match status {
        "CREATING" => ("Creating", "Kinesis is creating the stream".to_owned()),
        "DELETING" => (
            "Deleting",
            "Kinesis is deleting the stream, which Tributary did not ask for; once it is gone \
             Tributary creates it again"
                .to_owned(),
        ),
        other => (
            "Updating",
            format!("Kinesis reports the stream {other}; waiting for it to become ACTIVE"),
        ),
    };
    let message = if pending.is_empty() {
        message
    } else {
        format!("{message}; resharding steps to go: {}", list(pending))
    };
    [
        Decided::no(READY, reason, message.clone()),
        Decided::yes(PROGRESSING, reason, message),
        unlimited(),
    ]
}

/// A Kinesis limit refused `change` with `message`; it is tried again after `retry_minutes`.
pub fn quota_exceeded(change: &Change, message: &str, retry_minutes: u64) -> Conditions {
    let (reason, what) = match change {
        Change::Mode { .. } => (
            "ModeSwitchQuotaExceeded",
            "Kinesis allows two capacity-mode switches per stream in 24 hours",
        ),
        _ => (
            "ScalingQuotaExceeded",
            "Kinesis allows ten UpdateShardCount calls per stream in 24 hours (each resharding \
             step is one)",
        ),
    };
    let message = format!(
        "{} refused: {message}. {what}; tried again in {retry_minutes} minutes",
        change.message(None)
    );
    [
        Decided::no(READY, reason, message.clone()),
        Decided::no(PROGRESSING, reason, "waiting for the Kinesis quota"),
        Decided::yes(DEGRADED, reason, message),
    ]
}

/// KMS refused the key of `change` with `message`.
pub fn encryption_failed(change: &Change, message: &str) -> Conditions {
    let message = format!(
        "{} failed: {message}; check spec.encryption.kmsKeyId and that the operator's role may \
         use the key",
        change.message(None)
    );
    [
        Decided::no(READY, "EncryptionFailed", message),
        Decided::no(
            PROGRESSING,
            "EncryptionFailed",
            "no Kinesis operation in progress",
        ),
        unlimited(),
    ]
}

#[cfg(test)]
mod tests {
    use super::*;

    fn stream(yaml: &str) -> Stream {
        serde_yaml::from_str(yaml).expect("a Stream")
    }

    const PROVISIONED: &str = "
apiVersion: tributary.dev/v1alpha1
kind: Stream
metadata: {name: pin, namespace: data}
spec:
  mode: Provisioned
  shardCount: 3
  retentionHours: 48
  encryption: {kmsKeyId: alias/aws/kinesis}
  tags: {team: data, env: prod}
";

    const ON_DEMAND: &str = "
apiVersion: tributary.dev/v1alpha1
kind: Stream
metadata: {name: pin, namespace: data}
spec:
  streamName: pinterest-pin
";

    fn desired(yaml: &str) -> Desired {
        Desired::from_stream(&stream(yaml))
    }

    /// A stream as the PROVISIONED fixture wants it.
    fn active() -> StreamState {
        StreamState {
            arn: "arn:aws:kinesis:us-east-1:000000000000:stream/pin".into(),
            status: "ACTIVE".into(),
            mode: StreamMode::Provisioned,
            open_shards: 3,
            retention_hours: 48,
            kms_key_id: Some("alias/aws/kinesis".into()),
        }
    }

    fn tags(pairs: &[(&str, &str)]) -> Tags {
        pairs
            .iter()
            .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
            .collect()
    }

    fn wanted_tags() -> Tags {
        tags(&[("team", "data"), ("env", "prod")])
    }

    /// The steps of a path, checked against Kinesis's per-call rules.
    fn checked_path(from: i32, to: i32) -> Vec<i32> {
        let path = reshard_path(from, to);
        let mut at = from;
        for &next in &path {
            assert!(next <= 2 * at, "{at} → {next} more than doubles");
            assert!(2 * next >= at, "{at} → {next} less than halves");
            assert!((1..=MAX_SHARDS).contains(&next));
            at = next;
        }
        if from != to {
            assert_eq!(path.last(), Some(&to), "the path ends at the target");
        }
        path
    }

    #[test]
    fn resharding_one_to_two_to_four_to_three() {
        assert_eq!(checked_path(1, 2), [2]);
        assert_eq!(checked_path(2, 4), [4]);
        assert_eq!(checked_path(4, 3), [3]);
        assert_eq!(checked_path(1, 4), [2, 4]);
        assert_eq!(checked_path(1, 3), [2, 3]);
    }

    #[test]
    fn large_jumps_double_until_the_target() {
        assert_eq!(checked_path(1, 100), [2, 4, 8, 16, 32, 64, 100]);
        assert_eq!(checked_path(10, 50), [20, 40, 50]);
        assert_eq!(checked_path(5000, 10_000), [10_000]);
        let to_max = checked_path(1, MAX_SHARDS);
        assert_eq!(to_max.len(), 14, "{to_max:?}");
        assert_eq!(next_shard_count(6000, 20_000), Some(MAX_SHARDS), "capped");
    }

    #[test]
    fn shrinking_halves_rounding_up() {
        assert_eq!(checked_path(100, 3), [50, 25, 13, 7, 4, 3]);
        assert_eq!(checked_path(3, 1), [2, 1], "half of 3 is 1.5: 1 is too far");
        assert_eq!(checked_path(2, 1), [1]);
        assert_eq!(checked_path(10_000, 1).len(), 14);
        assert_eq!(checked_path(9, 5), [5]);
    }

    #[test]
    fn equal_counts_and_nonsense_need_nothing() {
        assert_eq!(next_shard_count(4, 4), None);
        assert!(reshard_path(7, 7).is_empty());
        assert_eq!(
            next_shard_count(0, 4),
            None,
            "no open shards: nothing to split"
        );
        assert_eq!(next_shard_count(2, 0), Some(1), "targets below 1 mean 1");
    }

    #[test]
    fn every_path_up_to_64_keeps_the_rules() {
        for from in 1..=64 {
            for to in 1..=64 {
                let path = checked_path(from, to);
                let steps = path.len();
                let bound = (from.max(to) as f64 / from.min(to) as f64).log2().ceil() as usize;
                assert!(steps <= bound + 1, "{from} → {to}: {path:?}");
            }
        }
    }

    #[test]
    fn no_stream_is_created_and_a_busy_one_waited_for() {
        let desired = desired(PROVISIONED);
        assert_eq!(plan(&desired, None, &Tags::new()), Step::Create);
        for status in ["CREATING", "UPDATING", "DELETING"] {
            let mut busy = active();
            busy.status = status.into();
            busy.open_shards = 1;
            assert_eq!(
                plan(&desired, Some(&busy), &Tags::new()),
                Step::Wait(status.into()),
                "never a change while Kinesis is busy"
            );
        }
    }

    #[test]
    fn a_stream_as_specified_is_in_sync() {
        assert_eq!(
            plan(&desired(PROVISIONED), Some(&active()), &wanted_tags()),
            Step::InSync
        );
        let mut on_demand = active();
        on_demand.mode = StreamMode::OnDemand;
        on_demand.open_shards = 4;
        on_demand.retention_hours = 24;
        on_demand.kms_key_id = None;
        let desired = desired(ON_DEMAND);
        assert_eq!(desired.name, "pinterest-pin");
        assert_eq!(
            plan(
                &desired,
                Some(&on_demand),
                &tags(&[("aws:cloudformation", "x")])
            ),
            Step::InSync,
            "the shard count of an on-demand stream is Kinesis's; aws: tags are not ours"
        );
    }

    #[test]
    fn changes_come_cheapest_first_and_resharding_last() {
        let desired = desired(PROVISIONED);
        let stream = StreamState {
            mode: StreamMode::OnDemand,
            open_shards: 4,
            retention_hours: 24,
            kms_key_id: None,
            ..active()
        };
        let found = tags(&[("team", "web"), ("owner", "someone")]);
        assert_eq!(
            changes(&desired, &stream, &found),
            [
                Change::Tags {
                    set: wanted_tags(),
                    remove: vec!["owner".into()]
                },
                Change::Retention { from: 24, to: 48 },
                Change::StartEncryption {
                    key: "alias/aws/kinesis".into()
                },
                Change::Mode {
                    to: StreamMode::Provisioned
                },
            ],
            "resharding waits for provisioned mode"
        );
        let provisioned = StreamState {
            mode: StreamMode::Provisioned,
            ..stream
        };
        assert_eq!(
            changes(&desired, &provisioned, &wanted_tags()).last(),
            Some(&Change::Reshard { from: 4, to: 3 })
        );
    }

    #[test]
    fn encryption_starts_changes_key_and_stops() {
        let desired = desired(PROVISIONED);
        let other_key = StreamState {
            kms_key_id: Some("arn:aws:kms:us-east-1:1:key/other".into()),
            ..active()
        };
        assert_eq!(
            plan(&desired, Some(&other_key), &wanted_tags()),
            Step::Change(Change::StartEncryption {
                key: "alias/aws/kinesis".into()
            })
        );
        let plain = Desired {
            kms_key_id: None,
            ..desired
        };
        assert_eq!(
            plan(&plain, Some(&active()), &wanted_tags()),
            Step::Change(Change::StopEncryption {
                key: "alias/aws/kinesis".into()
            })
        );
    }

    #[test]
    fn retention_goes_both_ways_and_mode_switches_to_on_demand() {
        let desired = desired(PROVISIONED);
        let longer = StreamState {
            retention_hours: 168,
            ..active()
        };
        assert_eq!(
            plan(&desired, Some(&longer), &wanted_tags()),
            Step::Change(Change::Retention { from: 168, to: 48 })
        );
        let on_demand = Desired {
            mode: StreamMode::OnDemand,
            shard_count: None,
            ..desired
        };
        assert_eq!(
            plan(&on_demand, Some(&active()), &wanted_tags()),
            Step::Change(Change::Mode {
                to: StreamMode::OnDemand
            })
        );
    }

    #[test]
    fn pending_steps_follow_the_open_shards() {
        let fifty = Desired {
            shard_count: Some(50),
            ..desired(PROVISIONED)
        };
        let stream = StreamState {
            open_shards: 10,
            ..active()
        };
        assert_eq!(pending_shard_counts(&fifty, &stream), [20, 40, 50]);
        assert!(pending_shard_counts(&desired(ON_DEMAND), &stream).is_empty());
        let [ready, progressing, _] = waiting("UPDATING", &[20, 40, 50]);
        assert_eq!((ready.status, ready.reason), (false, "Updating"));
        assert!(progressing.status);
        assert!(
            ready
                .message
                .ends_with("resharding steps to go: 20, 40, 50")
        );
    }

    #[test]
    fn quota_conditions_name_the_limit() {
        let reshard = Change::Reshard { from: 2, to: 4 };
        let [ready, progressing, degraded] =
            quota_exceeded(&reshard, "LimitExceededException: rate exceeded", 15);
        assert_eq!(
            (ready.status, ready.reason),
            (false, "ScalingQuotaExceeded")
        );
        assert!(!progressing.status);
        assert_eq!(
            (degraded.status, degraded.reason),
            (true, "ScalingQuotaExceeded")
        );
        assert!(
            ready.message.contains("resharding from 2 to 4"),
            "{}",
            ready.message
        );
        assert!(ready.message.contains("tried again in 15 minutes"));
        let mode = Change::Mode {
            to: StreamMode::OnDemand,
        };
        assert_eq!(
            quota_exceeded(&mode, "x", 15)[0].reason,
            "ModeSwitchQuotaExceeded"
        );
    }

    #[test]
    fn messages_say_what_changes() {
        let reshard = Change::Reshard { from: 1, to: 2 };
        assert_eq!(
            reshard.message(Some(3)),
            "resharding from 1 to 2 open shards (then 3)"
        );
        assert_eq!(
            reshard.message(Some(2)),
            "resharding from 1 to 2 open shards"
        );
        let tags = Change::Tags {
            set: tags(&[("a", "1")]),
            remove: vec!["b".into()],
        };
        assert_eq!(tags.message(None), "tags: set a; removed b");
        assert_eq!(tags.field(), "tags");
    }
}
