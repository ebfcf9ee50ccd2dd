//! Status conditions: built once per reconcile from what was observed, merged so that
//! `lastTransitionTime` only moves when a condition's status changes.

use k8s_openapi::apimachinery::pkg::apis::meta::v1::{Condition, Time};
use k8s_openapi::jiff::Timestamp;

/// The condition every kind reports.
pub const READY: &str = "Ready";

/// One condition as a controller decides it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Decided {
    /// `Ready`, `Progressing`, ...
    pub type_: &'static str,
    /// Whether it holds.
    pub status: bool,
    /// A CamelCase reason, from a small fixed set per controller.
    pub reason: &'static str,
    /// What a human should know, and what to fix when it does not hold.
    pub message: String,
}

impl Decided {
    /// A condition that holds.
    pub fn yes(type_: &'static str, reason: &'static str, message: impl Into<String>) -> Self {
        Self {
            type_,
            status: true,
            reason,
            message: message.into(),
        }
    }

    /// A condition that does not hold.
    pub fn no(type_: &'static str, reason: &'static str, message: impl Into<String>) -> Self {
        Self {
            type_,
            status: false,
            reason,
            message: message.into(),
        }
    }
}

/// Merge `decided` into the `previous` conditions: a condition whose status is unchanged keeps
/// its `lastTransitionTime`; conditions not decided this time are dropped.
pub fn merge(
    previous: &[Condition],
    decided: &[Decided],
    generation: Option<i64>,
    now: Timestamp,
) -> Vec<Condition> {
    decided
        .iter()
        .map(|d| {
            let status = if d.status { "True" } else { "False" }.to_owned();
            let last_transition_time = previous
                .iter()
                .find(|c| c.type_ == d.type_ && c.status == status)
                .map(|c| c.last_transition_time.clone())
                .unwrap_or(Time(now));
            Condition {
                type_: d.type_.to_owned(),
                status,
                reason: d.reason.to_owned(),
                message: d.message.clone(),
                observed_generation: generation,
                last_transition_time,
            }
        })
        .collect()
}

/// The `Ready` condition's status and reason, if there is one.
pub fn ready(conditions: &[Condition]) -> Option<(&str, &str)> {
    conditions
        .iter()
        .find(|c| c.type_ == READY)
        .map(|c| (c.status.as_str(), c.reason.as_str()))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn at(seconds: i64) -> Timestamp {
        Timestamp::from_second(seconds).unwrap()
    }

    #[test]
    fn transition_time_moves_only_when_the_status_changes() {
        let first = merge(
            &[],
            &[Decided::no(READY, "ClusterNotReady", "waiting")],
            Some(1),
            at(100),
        );
        assert_eq!(first[0].last_transition_time, Time(at(100)));

        let same = merge(
            &first,
            &[Decided::no(READY, "KafkaError", "timeout")],
            Some(2),
            at(200),
        );
        assert_eq!(
            same[0].last_transition_time,
            Time(at(100)),
            "False → False keeps the time"
        );
        assert_eq!(
            (same[0].reason.as_str(), same[0].observed_generation),
            ("KafkaError", Some(2))
        );

        let flipped = merge(
            &same,
            &[Decided::yes(READY, "InSync", "ok")],
            Some(2),
            at(300),
        );
        assert_eq!(
            flipped[0].last_transition_time,
            Time(at(300)),
            "False → True moves it"
        );
        assert_eq!(ready(&flipped), Some(("True", "InSync")));
    }
}
