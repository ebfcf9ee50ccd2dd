//! When a BatchJob runs: the pure scheduling core of its controller. No I/O, and `now` is an
//! argument, so every decision is a function of the spec, the last scheduled time and the clock.
//!
//! The cron expression is read by `croner` on `jiff` times (the type k8s-openapi's `Time` wraps),
//! in the spec's IANA time zone. Five fields (minute hour day-of-month month day-of-week) or a
//! macro: `@yearly` (`@annually`), `@monthly`, `@weekly`, `@daily` (`@midnight`), `@hourly`.
//! When both day fields are restricted a day matching either runs, as in Vixie cron.
//!
//! # Daylight saving time
//!
//! Schedules are wall-clock times in the time zone, and the rules are croner's (those of Vixie
//! cron and the Open Cron Pattern Specification). A *fixed-time* schedule names one minute and
//! one hour (`30 2 * * *`, `@daily`); any other is an *interval* schedule (`*/15 * * * *`,
//! `0 1,2 * * *`, `@hourly`).
//!
//! - A time that does not exist (clocks spring forward, e.g. 02:30 on 30 March 2025 in
//!   Europe/Berlin): a fixed-time schedule runs once, at the first instant after the gap (03:00
//!   CEST), so a daily job never loses a day; an interval schedule skips the times in the gap.
//! - A time that occurs twice (clocks fall back, e.g. 02:30 on 26 October 2025 in Europe/Berlin):
//!   a fixed-time schedule runs once, at the first occurrence (02:30 CEST), so a daily job never
//!   runs twice; an interval schedule runs at both occurrences, as the hour really passes twice.
//!
//! Kubernetes' CronJob differs in the gap: it computes times with robfig/cron, which documents
//! that times in a spring-forward gap do not run. A daily aggregation that silently loses a day
//! once a year is worse than one that starts late, so we keep croner's rule.

use std::collections::VecDeque;
use std::str::FromStr;

use croner::Cron;
use croner::errors::CronError;
use croner::parser::{CronParser, Seconds, Year};
use jiff::civil::Date;
use jiff::tz::TimeZone;
use jiff::{SignedDuration, Timestamp, Zoned};
use tributary_crds::BatchJobSpec;
use tributary_crds::batch_job::{Backfill, BackfillOrder, ConcurrencyPolicy};

/// The most scheduled times one backfill request may cover: each is a Kubernetes Job.
pub const MAX_BACKFILL_RUNS: usize = 10_000;

/// The macros a schedule may be instead of five fields.
const MACROS: [&str; 7] = [
    "@yearly",
    "@annually",
    "@monthly",
    "@weekly",
    "@daily",
    "@midnight",
    "@hourly",
];

/// Kubernetes' limit for label values. The Job controller copies a Job's name into the
/// `job-name` label of its pods, so a longer Job name leaves the Job without pods.
const MAX_JOB_NAME: usize = 63;

/// Why a BatchJob's schedule or backfill cannot be computed. Each message names the problem for
/// the `Ready` condition; all of them wait for a spec change.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum ScheduleError {
    /// `spec.schedule` does not parse.
    #[error("invalid cron schedule {expression:?}: {message}")]
    InvalidCron {
        /// `spec.schedule`.
        expression: String,
        /// The parser's explanation.
        message: String,
    },
    /// `spec.schedule` parses but names no time that exists, e.g. `0 0 30 2 *`.
    #[error("cron schedule {0:?} never fires")]
    NeverFires(String),
    /// `spec.timeZone` is not in the IANA time zone database.
    #[error("unknown time zone {0:?}; use an IANA name such as Europe/Berlin")]
    UnknownTimeZone(String),
    /// `spec.backfill.from` or `.to` is not a calendar date.
    #[error("backfill.{field} {value:?} is not a date (YYYY-MM-DD): {message}")]
    InvalidBackfillDate {
        /// `from` or `to`.
        field: &'static str,
        /// What the spec says.
        value: String,
        /// Why it is not a date.
        message: String,
    },
    /// `spec.backfill.from` is after `.to`.
    #[error("backfill.from {from} is after backfill.to {to}")]
    BackfillRange {
        /// `spec.backfill.from`.
        from: Date,
        /// `spec.backfill.to`.
        to: Date,
    },
    /// The backfill range holds more than [`MAX_BACKFILL_RUNS`] scheduled times.
    #[error(
        "backfill {from}..{to} covers more than {MAX_BACKFILL_RUNS} scheduled times; request smaller ranges one after another"
    )]
    BackfillTooLarge {
        /// `spec.backfill.from`.
        from: Date,
        /// `spec.backfill.to`.
        to: Date,
    },
}

/// A parsed `spec.schedule` in its `spec.timeZone`.
#[derive(Clone, Debug)]
pub struct Schedule {
    cron: Cron,
    zone: TimeZone,
    expression: String,
}

impl Schedule {
    /// Parse a cron expression (five fields or a macro) in an IANA time zone.
    pub fn parse(expression: &str, time_zone: &str) -> Result<Self, ScheduleError> {
        let invalid = |e: CronError| ScheduleError::InvalidCron {
            expression: expression.to_owned(),
            message: e.to_string(),
        };
        let trimmed = expression.trim();
        if trimmed.starts_with('@') && !MACROS.iter().any(|m| m.eq_ignore_ascii_case(trimmed)) {
            return Err(ScheduleError::InvalidCron {
                expression: expression.to_owned(),
                message: format!("unknown macro; use one of {}", MACROS.join(", ")),
            });
        }
        // croner knows the other macros; `@midnight` is Kubernetes' (and Vixie cron's) alias.
        let pattern = if trimmed.eq_ignore_ascii_case("@midnight") {
            "@daily"
        } else {
            expression
        };
        let cron = CronParser::builder()
            .seconds(Seconds::Disallowed)
            .year(Year::Disallowed)
            .build()
            .parse(pattern)
            .map_err(invalid)?;
        let zone = TimeZone::get(time_zone)
            .map_err(|_| ScheduleError::UnknownTimeZone(time_zone.to_owned()))?;
        let schedule = Self {
            cron,
            zone,
            expression: expression.to_owned(),
        };
        // Five fields repeat within 28 years (weekdays and leap days realign), so a schedule
        // with no time in the next 28 years has none at all.
        let horizon = Timestamp::UNIX_EPOCH + SignedDuration::from_hours(29 * 366 * 24);
        match schedule.next_after(Timestamp::UNIX_EPOCH)? {
            Some(first) if first <= horizon => Ok(schedule),
            _ => Err(ScheduleError::NeverFires(expression.to_owned())),
        }
    }

    /// Parse `spec.schedule` in `spec.timeZone`.
    pub fn from_spec(spec: &BatchJobSpec) -> Result<Self, ScheduleError> {
        Self::parse(&spec.schedule, &spec.time_zone)
    }

    /// The first scheduled time after `after`: when the controller requeues. `None` only for a
    /// schedule that never fires, which [`Schedule::parse`] rejects.
    pub fn next_after(&self, after: Timestamp) -> Result<Option<Timestamp>, ScheduleError> {
        let start = after.to_zoned(self.zone.clone());
        match self.cron.find_next_occurrence(&start, false) {
            Ok(next) => Ok(Some(next.timestamp())),
            Err(CronError::TimeSearchLimitExceeded) => Ok(None),
            Err(e) => Err(ScheduleError::InvalidCron {
                expression: self.expression.clone(),
                message: e.to_string(),
            }),
        }
    }

    /// The scheduled times in `(after, until]`, oldest first.
    fn times_between(
        &self,
        after: Timestamp,
        until: Timestamp,
    ) -> impl Iterator<Item = Result<Timestamp, ScheduleError>> + '_ {
        let mut cursor = Some(after);
        std::iter::from_fn(move || {
            let next = match self.next_after(cursor?) {
                Ok(Some(next)) if next <= until => next,
                Ok(_) => {
                    cursor = None;
                    return None;
                }
                Err(e) => {
                    cursor = None;
                    return Some(Err(e));
                }
            };
            cursor = Some(next);
            Some(Ok(next))
        })
    }

    /// The runs due at `now`, given `last`: the newest scheduled time a run was started for
    /// (`status.lastScheduleTime`), or the object's creation time before the first run.
    ///
    /// Of the scheduled times in `(last, now]`, those older than `now - startingDeadlineSeconds`
    /// are skipped. Of the rest, the newest runs, or with `catchUp` the newest
    /// `maxCatchUpRuns`, oldest first; older ones are skipped. Nothing is due while suspended.
    ///
    /// Every scheduled time in `(last, now]` is visited once, so that skipped ones are counted
    /// exactly: the work grows with the downtime (a week of a once-a-minute schedule is about
    /// 10,000 steps), and `startingDeadlineSeconds` does not shorten it.
    pub fn due_runs(
        &self,
        spec: &BatchJobSpec,
        last: Timestamp,
        now: Timestamp,
    ) -> Result<DueRuns, ScheduleError> {
        let mut due = DueRuns::default();
        if spec.suspend {
            return Ok(due);
        }
        let keep = if spec.catch_up {
            usize::try_from(spec.max_catch_up_runs).unwrap_or(1).max(1)
        } else {
            1
        };
        // A deadline reaching back before the representable times is no deadline.
        let deadline = spec
            .starting_deadline_seconds
            .and_then(|s| now.checked_sub(SignedDuration::from_secs(s.max(0))).ok());
        let mut runs = VecDeque::with_capacity(keep + 1);
        for time in self.times_between(last, now) {
            let time = time?;
            if deadline.is_some_and(|deadline| time < deadline) {
                Skipped::add(&mut due.past_deadline, time);
                continue;
            }
            runs.push_back(time);
            if runs.len() > keep
                && let Some(oldest) = runs.pop_front()
            {
                Skipped::add(&mut due.past_catch_up_limit, oldest);
            }
        }
        due.runs = runs.into();
        Ok(due)
    }

    /// The scheduled times of a backfill request: every one whose date in the schedule's time
    /// zone lies in `[from, to]`, in the requested order.
    pub fn backfill(&self, backfill: &Backfill) -> Result<Vec<Timestamp>, ScheduleError> {
        let from = parse_date("from", &backfill.from)?;
        let to = parse_date("to", &backfill.to)?;
        if from > to {
            return Err(ScheduleError::BackfillRange { from, to });
        }
        let start = self.start_of_day(from);
        // The instant before `from`'s first moment, so that a time at midnight is included.
        let before_start = start.and_then(|s| s.checked_sub(SignedDuration::from_nanos(1)).ok());
        let end = to.tomorrow().ok().and_then(|day| self.start_of_day(day));
        let (Some(before_start), Some(end)) = (before_start, end) else {
            // Dates at the edge of what jiff represents: no scheduled time exists there.
            return Ok(Vec::new());
        };
        let mut times = Vec::new();
        for time in self.times_between(before_start, end) {
            let time = time?;
            if time == end {
                break;
            }
            if times.len() == MAX_BACKFILL_RUNS {
                return Err(ScheduleError::BackfillTooLarge { from, to });
            }
            times.push(time);
        }
        if backfill.order == BackfillOrder::NewestFirst {
            times.reverse();
        }
        Ok(times)
    }

    /// The first instant of `day` in the schedule's time zone (not always 00:00, where a DST
    /// gap starts at midnight).
    fn start_of_day(&self, day: Date) -> Option<Timestamp> {
        day.to_zoned(self.zone.clone())
            .and_then(|z| z.start_of_day())
            .map(|z: Zoned| z.timestamp())
            .ok()
    }
}

fn parse_date(field: &'static str, value: &str) -> Result<Date, ScheduleError> {
    Date::from_str(value).map_err(|e| ScheduleError::InvalidBackfillDate {
        field,
        value: value.to_owned(),
        message: e.to_string(),
    })
}

/// What [`Schedule::due_runs`] found in `(last, now]`.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct DueRuns {
    /// Scheduled times to start now, oldest first.
    pub runs: Vec<Timestamp>,
    /// Missed times older than those in `runs`, not run because `catchUp` is off or runs at
    /// most `maxCatchUpRuns`.
    pub past_catch_up_limit: Option<Skipped>,
    /// Missed times older than `now - startingDeadlineSeconds`.
    pub past_deadline: Option<Skipped>,
}

/// Scheduled times that were not run, for an Event and a `Skipped` record in the run history.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Skipped {
    /// How many.
    pub count: u64,
    /// The oldest of them.
    pub oldest: Timestamp,
    /// The newest of them.
    pub newest: Timestamp,
}

impl Skipped {
    /// Count `time`, newer than any counted before.
    fn add(skipped: &mut Option<Skipped>, time: Timestamp) {
        let entry = skipped.get_or_insert(Skipped {
            count: 0,
            oldest: time,
            newest: time,
        });
        entry.count += 1;
        entry.newest = time;
    }
}

/// The name of the Job for `batch_job`'s run at `scheduled`: `<name>-<unix seconds>`. The name
/// is the run's identity — creating it a second time fails — so a restart or a second reconcile
/// never starts a run twice.
///
/// The whole stays within the 63 characters of a label value (the Job controller labels the
/// Job's pods with its name). With ten-digit seconds (until 2286) that leaves 52 characters for
/// the BatchJob's name, Kubernetes' limit for CronJob names. A longer name is cut to 43
/// characters plus `-` and 8 hex digits of a hash of the whole name, so that two long names with
/// the same beginning still get different Jobs.
pub fn job_name(batch_job: &str, scheduled: Timestamp) -> String {
    let seconds = scheduled.as_second().to_string();
    let room = MAX_JOB_NAME - 1 - seconds.len();
    if batch_job.len() <= room {
        return format!("{batch_job}-{seconds}");
    }
    let hash = format!("{:08x}", fnv1a(batch_job.as_bytes()));
    let mut cut = room - 1 - hash.len();
    while !batch_job.is_char_boundary(cut) {
        cut -= 1;
    }
    // `-` or `.` before the `-` that follows would not make a valid DNS name (`a.-b`).
    let prefix = batch_job[..cut].trim_end_matches(['-', '.']);
    format!("{prefix}-{hash}-{seconds}")
}

/// 32-bit FNV-1a: small, and stable across Rust releases (unlike `DefaultHasher`), since Job
/// names made by one operator version must be recognized by the next.
fn fnv1a(bytes: &[u8]) -> u32 {
    bytes.iter().fold(0x811c_9dc5, |hash, &b| {
        (hash ^ u32::from(b)).wrapping_mul(0x0100_0193)
    })
}

/// What to do with a due run, given the runs still active.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum StartDecision {
    /// Nothing is running: start it.
    Start,
    /// `Forbid`: leave it due until the active runs end (or its starting deadline passes).
    Wait,
    /// `Replace`: stop the active runs, then start it.
    ReplaceActive,
    /// `Allow`: start it alongside the active runs.
    StartAlongside,
}

/// Apply `spec.concurrencyPolicy` to a due run while `active_runs` runs are in progress.
pub fn start_decision(policy: ConcurrencyPolicy, active_runs: usize) -> StartDecision {
    match (active_runs, policy) {
        (0, _) => StartDecision::Start,
        (_, ConcurrencyPolicy::Forbid) => StartDecision::Wait,
        (_, ConcurrencyPolicy::Replace) => StartDecision::ReplaceActive,
        (_, ConcurrencyPolicy::Allow) => StartDecision::StartAlongside,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A BatchJob spec as a user writes it, with `schedule` and the fields in `extra`.
    fn spec(schedule: &str, extra: &str) -> BatchJobSpec {
        let yaml = format!(
            r#"
schedule: "{schedule}"
inputs:
  - name: pin
    url: s3://lake/clean/pin/
steps:
  - name: daily
    sql: SELECT count(*) FROM pin
    output:
      url: s3://lake/results/daily/
{extra}"#
        );
        serde_yaml::from_str(&yaml).unwrap_or_else(|e| panic!("{e}: {yaml}"))
    }

    fn schedule(expression: &str, zone: &str) -> Schedule {
        Schedule::parse(expression, zone).unwrap_or_else(|e| panic!("{e}"))
    }

    fn at(time: &str) -> Timestamp {
        time.parse().unwrap_or_else(|e| panic!("{time}: {e}"))
    }

    /// Times as wall-clock times with their offset in the schedule's zone.
    fn local(schedule: &Schedule, times: &[Timestamp]) -> Vec<String> {
        times
            .iter()
            .map(|t| {
                t.to_zoned(schedule.zone.clone())
                    .strftime("%Y-%m-%dT%H:%M%:z")
                    .to_string()
            })
            .collect()
    }

    fn next(schedule: &Schedule, after: &str) -> String {
        let next = schedule.next_after(at(after)).unwrap().unwrap();
        local(schedule, &[next]).remove(0)
    }

    fn backfill(from: &str, to: &str, order: BackfillOrder) -> Backfill {
        Backfill {
            from: from.into(),
            to: to.into(),
            order,
            id: None,
        }
    }

    fn error(expression: &str, zone: &str) -> String {
        Schedule::parse(expression, zone)
            .expect_err(&format!("{expression:?} in {zone} must not parse"))
            .to_string()
    }

    // --- parsing ---

    #[test]
    fn five_fields_with_names_and_whitespace() {
        let s = schedule(" 15 9 * JAN-MAR MON-FRI ", "UTC");
        // 2025-01-03 is a Friday; the next weekday is Monday the 6th.
        assert_eq!(next(&s, "2025-01-03T10:00Z"), "2025-01-06T09:15+00:00");
    }

    #[test]
    fn macros() {
        let after = "2025-01-01T10:20Z"; // a Wednesday
        for (macro_, expected) in [
            ("@yearly", "2026-01-01T00:00+00:00"),
            ("@annually", "2026-01-01T00:00+00:00"),
            ("@monthly", "2025-02-01T00:00+00:00"),
            ("@weekly", "2025-01-05T00:00+00:00"),
            ("@daily", "2025-01-02T00:00+00:00"),
            ("@midnight", "2025-01-02T00:00+00:00"),
            ("@hourly", "2025-01-01T11:00+00:00"),
            ("@DAILY", "2025-01-02T00:00+00:00"),
        ] {
            assert_eq!(next(&schedule(macro_, "UTC"), after), expected, "{macro_}");
        }
    }

    #[test]
    fn daily_and_hourly_in_a_time_zone() {
        let daily = schedule("@daily", "America/New_York");
        assert_eq!(next(&daily, "2025-01-01T04:59Z"), "2025-01-01T00:00-05:00");
        assert_eq!(next(&daily, "2025-01-01T05:00Z"), "2025-01-02T00:00-05:00");
        let hourly = schedule("@hourly", "Asia/Kolkata");
        // India is 5:30 ahead of UTC: its full hours are at half past in UTC.
        assert_eq!(next(&hourly, "2025-01-01T00:00Z"), "2025-01-01T06:00+05:30");
        assert_eq!(
            hourly.next_after(at("2025-01-01T00:00Z")).unwrap(),
            Some(at("2025-01-01T00:30Z"))
        );
    }

    #[test]
    fn from_spec_reads_schedule_and_time_zone() {
        let berlin = spec("0 2 * * *", "timeZone: Europe/Berlin");
        let s = Schedule::from_spec(&berlin).unwrap();
        assert_eq!(
            s.next_after(at("2025-01-01T00:00Z")).unwrap(),
            Some(at("2025-01-01T01:00Z"))
        );
        // Without `timeZone`, UTC.
        let s = Schedule::from_spec(&spec("0 2 * * *", "")).unwrap();
        assert_eq!(
            s.next_after(at("2025-01-01T00:00Z")).unwrap(),
            Some(at("2025-01-01T02:00Z"))
        );
    }

    #[test]
    fn four_or_six_fields_are_invalid() {
        assert_eq!(
            error("0 2 * *", "UTC"),
            r#"invalid cron schedule "0 2 * *": Invalid pattern: Pattern must have 5 fields when seconds are disallowed."#
        );
        assert_eq!(
            error("0 0 2 * * *", "UTC"),
            r#"invalid cron schedule "0 0 2 * * *": Invalid pattern: Pattern must have 5 fields when seconds are disallowed."#
        );
        assert!(matches!(
            Schedule::parse("0 0 2 * * * 2025", "UTC"),
            Err(ScheduleError::InvalidCron { .. })
        ));
    }

    #[test]
    fn out_of_range_values_are_invalid() {
        assert_eq!(
            error("61 0 * * *", "UTC"),
            r#"invalid cron schedule "61 0 * * *": Component error: Number out of bounds."#
        );
        for expression in [
            "0 24 * * *",
            "0 0 32 * *",
            "0 0 0 * *",
            "0 0 * 13 *",
            "0 0 * * 8",
        ] {
            assert!(
                error(expression, "UTC")
                    .starts_with(&format!("invalid cron schedule {expression:?}: ")),
                "{expression}"
            );
        }
    }

    #[test]
    fn words_and_empty_are_invalid() {
        assert!(error("every day", "UTC").starts_with(r#"invalid cron schedule "every day": "#));
        assert_eq!(
            error("", "UTC"),
            r#"invalid cron schedule "": CronPattern cannot be an empty string."#
        );
    }

    #[test]
    fn unknown_macro_is_invalid() {
        assert_eq!(
            error("@reboot", "UTC"),
            r#"invalid cron schedule "@reboot": unknown macro; use one of @yearly, @annually, @monthly, @weekly, @daily, @midnight, @hourly"#
        );
        assert!(error("@daily 0", "UTC").contains("unknown macro"));
    }

    #[test]
    fn a_schedule_that_never_fires_is_rejected() {
        assert_eq!(
            error("0 0 30 2 *", "UTC"),
            r#"cron schedule "0 0 30 2 *" never fires"#
        );
        assert_eq!(
            Schedule::parse("0 0 31 4 *", "UTC").unwrap_err(),
            ScheduleError::NeverFires("0 0 31 4 *".into())
        );
        // Leap days exist.
        let leap_day = schedule("0 0 29 2 *", "UTC");
        assert_eq!(
            next(&leap_day, "2025-01-01T00:00Z"),
            "2028-02-29T00:00+00:00"
        );
    }

    #[test]
    fn unknown_time_zone() {
        assert_eq!(
            error("@daily", "Mars/Base"),
            r#"unknown time zone "Mars/Base"; use an IANA name such as Europe/Berlin"#
        );
        assert_eq!(
            Schedule::parse("@daily", "CEST").unwrap_err(),
            ScheduleError::UnknownTimeZone("CEST".into())
        );
        // The cron expression is checked first.
        assert!(error("0 2 * *", "Mars/Base").starts_with("invalid cron schedule"));
    }

    // --- the next time ---

    #[test]
    fn next_is_strictly_after() {
        let s = schedule("0 2 * * *", "UTC");
        assert_eq!(next(&s, "2025-01-01T01:59:59Z"), "2025-01-01T02:00+00:00");
        assert_eq!(next(&s, "2025-01-01T02:00Z"), "2025-01-02T02:00+00:00");
        assert_eq!(
            next(&s, "2025-01-01T02:00:00.001Z"),
            "2025-01-02T02:00+00:00"
        );
    }

    // --- daylight saving time ---

    #[test]
    fn berlin_spring_forward_runs_a_fixed_time_at_the_end_of_the_gap() {
        // 2025-03-30: 02:00 CET becomes 03:00 CEST; 02:30 does not exist.
        let s = schedule("30 2 * * *", "Europe/Berlin");
        assert_eq!(next(&s, "2025-03-29T12:00Z"), "2025-03-30T03:00+02:00");
        assert_eq!(next(&s, "2025-03-30T01:00Z"), "2025-03-31T02:30+02:00");
    }

    #[test]
    fn berlin_spring_forward_skips_interval_times_in_the_gap() {
        let s = schedule("30 * * * *", "Europe/Berlin");
        let times: Vec<_> = s
            .times_between(at("2025-03-29T23:00Z"), at("2025-03-30T03:00Z"))
            .collect::<Result<_, _>>()
            .unwrap();
        assert_eq!(
            local(&s, &times),
            [
                "2025-03-30T00:30+01:00",
                "2025-03-30T01:30+01:00",
                "2025-03-30T03:30+02:00",
                "2025-03-30T04:30+02:00",
            ]
        );
    }

    #[test]
    fn berlin_fall_back_runs_a_fixed_time_once() {
        // 2025-10-26: 03:00 CEST becomes 02:00 CET; 02:30 happens twice.
        let s = schedule("30 2 * * *", "Europe/Berlin");
        assert_eq!(next(&s, "2025-10-25T12:00Z"), "2025-10-26T02:30+02:00");
        assert_eq!(next(&s, "2025-10-26T00:30Z"), "2025-10-27T02:30+01:00");
    }

    #[test]
    fn berlin_fall_back_runs_interval_times_in_both_passes() {
        let s = schedule("30 * * * *", "Europe/Berlin");
        let times: Vec<_> = s
            .times_between(at("2025-10-25T22:00Z"), at("2025-10-26T03:00Z"))
            .collect::<Result<_, _>>()
            .unwrap();
        assert_eq!(
            local(&s, &times),
            [
                "2025-10-26T00:30+02:00",
                "2025-10-26T01:30+02:00",
                "2025-10-26T02:30+02:00",
                "2025-10-26T02:30+01:00",
                "2025-10-26T03:30+01:00",
            ]
        );
    }

    #[test]
    fn new_york_spring_forward() {
        // 2025-03-09: 02:00 EST becomes 03:00 EDT.
        let fixed = schedule("30 2 * * *", "America/New_York");
        assert_eq!(next(&fixed, "2025-03-08T12:00Z"), "2025-03-09T03:00-04:00");
        assert_eq!(next(&fixed, "2025-03-09T07:00Z"), "2025-03-10T02:30-04:00");
        let on_the_hour = schedule("0 2 * * *", "America/New_York");
        assert_eq!(
            next(&on_the_hour, "2025-03-08T12:00Z"),
            "2025-03-09T03:00-04:00"
        );
        let interval = schedule("*/30 2 * * *", "America/New_York");
        assert_eq!(
            next(&interval, "2025-03-08T12:00Z"),
            "2025-03-10T02:00-04:00"
        );
    }

    #[test]
    fn new_york_fall_back() {
        // 2025-11-02: 02:00 EDT becomes 01:00 EST; 01:00-01:59 happens twice.
        let fixed = schedule("30 1 * * *", "America/New_York");
        assert_eq!(next(&fixed, "2025-11-01T12:00Z"), "2025-11-02T01:30-04:00");
        assert_eq!(next(&fixed, "2025-11-02T05:30Z"), "2025-11-03T01:30-05:00");
        let interval = schedule("*/30 1 * * *", "America/New_York");
        let times: Vec<_> = interval
            .times_between(at("2025-11-02T00:00Z"), at("2025-11-03T00:00Z"))
            .collect::<Result<_, _>>()
            .unwrap();
        assert_eq!(
            local(&interval, &times),
            [
                "2025-11-02T01:00-04:00",
                "2025-11-02T01:30-04:00",
                "2025-11-02T01:00-05:00",
                "2025-11-02T01:30-05:00",
            ]
        );
    }

    // --- due runs ---

    fn due(spec: &BatchJobSpec, last: &str, now: &str) -> DueRuns {
        Schedule::from_spec(spec)
            .unwrap()
            .due_runs(spec, at(last), at(now))
            .unwrap()
    }

    #[test]
    fn nothing_is_due_before_the_first_time() {
        let daily = spec("0 2 * * *", "");
        assert_eq!(
            due(&daily, "2025-01-01T01:00Z", "2025-01-01T01:59:59Z"),
            DueRuns::default()
        );
    }

    #[test]
    fn a_time_is_due_from_its_instant_and_only_once() {
        let daily = spec("0 2 * * *", "");
        assert_eq!(
            due(&daily, "2025-01-01T01:00Z", "2025-01-01T02:00Z").runs,
            [at("2025-01-01T02:00Z")]
        );
        // Once it is `lastScheduleTime`, it is not due again.
        assert_eq!(
            due(&daily, "2025-01-01T02:00Z", "2025-01-01T03:00Z"),
            DueRuns::default()
        );
    }

    #[test]
    fn without_catch_up_only_the_latest_missed_time_runs() {
        let daily = spec("0 2 * * *", "");
        assert_eq!(
            due(&daily, "2025-01-01T02:00Z", "2025-01-05T12:00Z"),
            DueRuns {
                runs: vec![at("2025-01-05T02:00Z")],
                past_catch_up_limit: Some(Skipped {
                    count: 3,
                    oldest: at("2025-01-02T02:00Z"),
                    newest: at("2025-01-04T02:00Z"),
                }),
                past_deadline: None,
            }
        );
    }

    #[test]
    fn catch_up_runs_every_missed_time_oldest_first() {
        let daily = spec("0 2 * * *", "catchUp: true");
        assert_eq!(
            due(&daily, "2025-01-01T02:00Z", "2025-01-04T12:00Z"),
            DueRuns {
                runs: vec![
                    at("2025-01-02T02:00Z"),
                    at("2025-01-03T02:00Z"),
                    at("2025-01-04T02:00Z"),
                ],
                past_catch_up_limit: None,
                past_deadline: None,
            }
        );
    }

    #[test]
    fn catch_up_is_bounded_by_max_catch_up_runs() {
        let daily = spec("0 2 * * *", "catchUp: true\nmaxCatchUpRuns: 2");
        assert_eq!(
            due(&daily, "2025-01-01T02:00Z", "2025-01-06T12:00Z"),
            DueRuns {
                runs: vec![at("2025-01-05T02:00Z"), at("2025-01-06T02:00Z")],
                past_catch_up_limit: Some(Skipped {
                    count: 3,
                    oldest: at("2025-01-02T02:00Z"),
                    newest: at("2025-01-04T02:00Z"),
                }),
                past_deadline: None,
            }
        );
    }

    #[test]
    fn catch_up_defaults_to_ten_runs() {
        let hourly = spec("@hourly", "catchUp: true");
        let due = due(&hourly, "2025-01-01T00:00Z", "2025-01-02T00:00Z");
        assert_eq!(due.runs.len(), 10);
        assert_eq!(due.runs[0], at("2025-01-01T15:00Z"));
        assert_eq!(due.runs[9], at("2025-01-02T00:00Z"));
        assert_eq!(due.past_catch_up_limit.map(|s| s.count), Some(14));
    }

    #[test]
    fn times_older_than_the_starting_deadline_are_skipped() {
        let hourly = spec("@hourly", "catchUp: true\nstartingDeadlineSeconds: 3600");
        assert_eq!(
            due(&hourly, "2025-01-01T00:00Z", "2025-01-01T05:30Z"),
            DueRuns {
                runs: vec![at("2025-01-01T05:00Z")],
                past_catch_up_limit: None,
                past_deadline: Some(Skipped {
                    count: 4,
                    oldest: at("2025-01-01T01:00Z"),
                    newest: at("2025-01-01T04:00Z"),
                }),
            }
        );
    }

    #[test]
    fn the_starting_deadline_includes_its_boundary() {
        let hourly = spec("@hourly", "catchUp: true\nstartingDeadlineSeconds: 1800");
        assert_eq!(
            due(&hourly, "2025-01-01T00:00Z", "2025-01-01T05:30Z").runs,
            [at("2025-01-01T05:00Z")]
        );
        let none_late = spec("@hourly", "startingDeadlineSeconds: 0");
        assert_eq!(
            due(&none_late, "2025-01-01T04:00Z", "2025-01-01T05:00Z").runs,
            [at("2025-01-01T05:00Z")]
        );
        let missed = due(&none_late, "2025-01-01T04:00Z", "2025-01-01T05:00:01Z");
        assert!(missed.runs.is_empty());
        assert_eq!(missed.past_deadline.map(|s| s.count), Some(1));
    }

    #[test]
    fn a_run_past_its_deadline_is_not_replaced_by_an_older_one() {
        // Without catch-up, the latest time is the candidate; when it missed its deadline,
        // nothing runs.
        let daily = spec("0 2 * * *", "startingDeadlineSeconds: 60");
        assert_eq!(
            due(&daily, "2025-01-01T02:00Z", "2025-01-03T05:00Z"),
            DueRuns {
                runs: vec![],
                past_catch_up_limit: None,
                past_deadline: Some(Skipped {
                    count: 2,
                    oldest: at("2025-01-02T02:00Z"),
                    newest: at("2025-01-03T02:00Z"),
                }),
            }
        );
    }

    #[test]
    fn deadline_and_catch_up_limit_together() {
        let hourly = spec(
            "@hourly",
            "catchUp: true\nmaxCatchUpRuns: 2\nstartingDeadlineSeconds: 14400",
        );
        assert_eq!(
            due(&hourly, "2025-01-01T00:00Z", "2025-01-01T08:00Z"),
            DueRuns {
                runs: vec![at("2025-01-01T07:00Z"), at("2025-01-01T08:00Z")],
                past_catch_up_limit: Some(Skipped {
                    count: 3,
                    oldest: at("2025-01-01T04:00Z"),
                    newest: at("2025-01-01T06:00Z"),
                }),
                past_deadline: Some(Skipped {
                    count: 3,
                    oldest: at("2025-01-01T01:00Z"),
                    newest: at("2025-01-01T03:00Z"),
                }),
            }
        );
    }

    #[test]
    fn a_deadline_beyond_the_calendar_is_no_deadline() {
        let daily = spec(
            "0 2 * * *",
            &format!("catchUp: true\nstartingDeadlineSeconds: {}", i64::MAX),
        );
        assert_eq!(
            due(&daily, "2025-01-01T02:00Z", "2025-01-03T02:00Z").runs,
            [at("2025-01-02T02:00Z"), at("2025-01-03T02:00Z")]
        );
    }

    #[test]
    fn nothing_is_due_while_suspended() {
        let daily = spec("0 2 * * *", "suspend: true\ncatchUp: true");
        assert_eq!(
            due(&daily, "2025-01-01T02:00Z", "2025-01-05T12:00Z"),
            DueRuns::default()
        );
    }

    #[test]
    fn catch_up_over_a_fall_back_runs_both_passes_of_an_interval_schedule() {
        let half_hourly = spec(
            "30 * * * *",
            "timeZone: Europe/Berlin\ncatchUp: true\nmaxCatchUpRuns: 3",
        );
        // 01:00 CEST to 03:30 CET: four times, as 02:30 passes twice.
        let due = due(&half_hourly, "2025-10-25T23:00Z", "2025-10-26T02:30Z");
        let s = Schedule::from_spec(&half_hourly).unwrap();
        assert_eq!(
            local(&s, &due.runs),
            [
                "2025-10-26T02:30+02:00",
                "2025-10-26T02:30+01:00",
                "2025-10-26T03:30+01:00",
            ]
        );
        assert_eq!(
            due.past_catch_up_limit,
            Some(Skipped {
                count: 1,
                oldest: at("2025-10-25T23:30Z"),
                newest: at("2025-10-25T23:30Z"),
            })
        );
    }

    // --- backfill ---

    #[test]
    fn backfill_oldest_first_in_the_time_zone() {
        let s = schedule("0 2 * * *", "Europe/Berlin");
        let times = s
            .backfill(&backfill(
                "2025-01-01",
                "2025-01-03",
                BackfillOrder::OldestFirst,
            ))
            .unwrap();
        assert_eq!(
            local(&s, &times),
            [
                "2025-01-01T02:00+01:00",
                "2025-01-02T02:00+01:00",
                "2025-01-03T02:00+01:00",
            ]
        );
    }

    #[test]
    fn backfill_newest_first() {
        let s = schedule("0 2 * * *", "UTC");
        let times = s
            .backfill(&backfill(
                "2025-01-01",
                "2025-01-03",
                BackfillOrder::NewestFirst,
            ))
            .unwrap();
        assert_eq!(
            times,
            [
                at("2025-01-03T02:00Z"),
                at("2025-01-02T02:00Z"),
                at("2025-01-01T02:00Z"),
            ]
        );
    }

    #[test]
    fn backfill_days_are_local_days_with_both_midnights_handled() {
        // Midnight in Berlin is 23:00 UTC the day before: it belongs to the local day.
        let s = schedule("@daily", "Europe/Berlin");
        let one_day = backfill("2025-01-02", "2025-01-02", BackfillOrder::OldestFirst);
        assert_eq!(s.backfill(&one_day).unwrap(), [at("2025-01-01T23:00Z")]);
        let late = schedule("59 23 * * *", "Europe/Berlin");
        assert_eq!(late.backfill(&one_day).unwrap(), [at("2025-01-02T22:59Z")]);
    }

    #[test]
    fn backfill_range_without_scheduled_times() {
        let s = schedule("@yearly", "UTC");
        assert_eq!(
            s.backfill(&backfill(
                "2025-03-01",
                "2025-03-31",
                BackfillOrder::OldestFirst
            ))
            .unwrap(),
            Vec::<Timestamp>::new()
        );
    }

    #[test]
    fn backfill_over_dst_changes() {
        let hourly = schedule("@hourly", "Europe/Berlin");
        let spring = backfill("2025-03-30", "2025-03-30", BackfillOrder::OldestFirst);
        assert_eq!(hourly.backfill(&spring).unwrap().len(), 23);
        let autumn = backfill("2025-10-26", "2025-10-26", BackfillOrder::OldestFirst);
        assert_eq!(hourly.backfill(&autumn).unwrap().len(), 25);
        let daily = schedule("30 2 * * *", "Europe/Berlin");
        let times = daily
            .backfill(&backfill(
                "2025-03-29",
                "2025-03-31",
                BackfillOrder::OldestFirst,
            ))
            .unwrap();
        assert_eq!(
            local(&daily, &times),
            [
                "2025-03-29T02:30+01:00",
                "2025-03-30T03:00+02:00",
                "2025-03-31T02:30+02:00",
            ]
        );
    }

    #[test]
    fn backfill_dates_must_be_dates_in_order() {
        let s = schedule("@daily", "UTC");
        let error = s
            .backfill(&backfill(
                "2025-02-30",
                "2025-03-01",
                BackfillOrder::OldestFirst,
            ))
            .unwrap_err();
        assert!(
            error
                .to_string()
                .starts_with(r#"backfill.from "2025-02-30" is not a date (YYYY-MM-DD): "#),
            "{error}"
        );
        let error = s
            .backfill(&backfill(
                "2025-03-01",
                "2025-3-1",
                BackfillOrder::OldestFirst,
            ))
            .unwrap_err();
        assert!(
            matches!(
                error,
                ScheduleError::InvalidBackfillDate { field: "to", .. }
            ),
            "{error}"
        );
        assert_eq!(
            s.backfill(&backfill(
                "2025-03-02",
                "2025-03-01",
                BackfillOrder::OldestFirst
            ))
            .unwrap_err()
            .to_string(),
            "backfill.from 2025-03-02 is after backfill.to 2025-03-01"
        );
    }

    #[test]
    fn backfill_is_bounded() {
        let every_minute = schedule("* * * * *", "UTC");
        let six_days = backfill("2025-01-01", "2025-01-06", BackfillOrder::NewestFirst);
        let times = every_minute.backfill(&six_days).unwrap();
        assert_eq!(times.len(), 6 * 24 * 60);
        assert_eq!(times[0], at("2025-01-06T23:59Z"));
        let week = backfill("2025-01-01", "2025-01-07", BackfillOrder::OldestFirst);
        assert_eq!(
            every_minute.backfill(&week).unwrap_err().to_string(),
            "backfill 2025-01-01..2025-01-07 covers more than 10000 scheduled times; request smaller ranges one after another"
        );
    }

    // --- Job names ---

    /// A DNS-1123 subdomain of at most 63 characters, so also a valid label value.
    fn assert_valid_job_name(name: &str) {
        assert!(name.len() <= 63, "{name} is {} long", name.len());
        for label in name.split('.') {
            assert!(
                !label.is_empty()
                    && label
                        .bytes()
                        .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-')
                    && !label.starts_with('-')
                    && !label.ends_with('-'),
                "{name}"
            );
        }
    }

    #[test]
    fn job_name_is_name_and_unix_seconds() {
        let name = job_name("aggregate", at("2025-01-01T02:00Z"));
        assert_eq!(name, "aggregate-1735696800");
        assert_valid_job_name(&name);
    }

    #[test]
    fn job_name_keeps_names_of_52_characters() {
        let name = "a".repeat(52);
        let job = job_name(&name, at("2025-01-01T02:00Z"));
        assert_eq!(job, format!("{name}-1735696800"));
        assert_eq!(job.len(), 63);
    }

    #[test]
    fn job_name_cuts_longer_names_and_keeps_them_apart() {
        let time = at("2025-01-01T02:00Z");
        let first = format!("{}-first", "pinterest-daily-aggregation".repeat(2));
        let second = format!("{}-second", "pinterest-daily-aggregation".repeat(2));
        let (a, b) = (job_name(&first, time), job_name(&second, time));
        assert_ne!(a, b);
        for job in [&a, &b] {
            // 43 characters, less the `-` the cut ends in.
            assert!(job.starts_with(&first[..42]), "{job}");
            assert_eq!(job.len(), 62, "{job}");
            assert!(job.ends_with("-1735696800"), "{job}");
            assert_valid_job_name(job);
        }
        // Stable: the same run always gets the same name.
        assert_eq!(job_name(&first, time), a);
        assert_eq!(
            a,
            "pinterest-daily-aggregationpinterest-daily-d314a1d8-1735696800"
        );
    }

    #[test]
    fn the_hash_is_fnv_1a() {
        // The published test vectors: names must not change between operator versions.
        assert_eq!(fnv1a(b""), 0x811c_9dc5);
        assert_eq!(fnv1a(b"a"), 0xe40c_292c);
        assert_eq!(fnv1a(b"foobar"), 0xbf9c_f968);
    }

    #[test]
    fn job_name_cut_never_ends_in_a_dot_or_dash() {
        let time = at("2025-01-01T02:00Z");
        for name in [
            format!("{}.{}", "a".repeat(42), "b".repeat(20)),
            format!("{}-{}", "a".repeat(42), "b".repeat(20)),
            format!("{}.-.{}", "a".repeat(40), "b".repeat(20)),
        ] {
            let job = job_name(&name, time);
            assert!(job.starts_with(&"a".repeat(40)), "{job}");
            assert_valid_job_name(&job);
        }
        assert_valid_job_name(&job_name(&"x".repeat(253), time));
    }

    // --- concurrency ---

    #[test]
    fn concurrency_policy_decides_only_when_runs_are_active() {
        use ConcurrencyPolicy::{Allow, Forbid, Replace};
        for policy in [Allow, Forbid, Replace] {
            assert_eq!(start_decision(policy, 0), StartDecision::Start);
        }
        assert_eq!(start_decision(Forbid, 1), StartDecision::Wait);
        assert_eq!(start_decision(Replace, 1), StartDecision::ReplaceActive);
        assert_eq!(start_decision(Allow, 1), StartDecision::StartAlongside);
        assert_eq!(start_decision(Allow, 3), StartDecision::StartAlongside);
        assert_eq!(
            start_decision(ConcurrencyPolicy::default(), 2),
            StartDecision::Wait
        );
    }
}
