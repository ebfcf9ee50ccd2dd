//! The BatchJob controller's pure steps from YAML fixtures, and each branch of its reconcile
//! against a mock API server with the clock at a fixed time.

use std::sync::Arc;

use jiff::Timestamp;
use k8s_openapi::api::batch::v1::Job;
use k8s_openapi::api::core::v1::{ConfigMap, Container, EnvVar, Pod};
use kube::runtime::controller::Action;
use serde_json::{Value, json};
use tributary_crds::BatchJob;
use tributary_crds::batch_job::RunOutcome;
use tributary_workers::batch::config::BatchWorkerConfig;
use tributary_workers::connect::AwsOptions;

use super::build::{self, CONFIG_KEY};
use super::validate::{SpecError, validate};
use super::{FIELD_MANAGER, reconcile, runs};
use crate::context::{Context, Workers};
use crate::test_support::{ApiCall, IMAGE, Scenario, batch_job, from_yaml};

const SELECTOR: &str = "app.kubernetes.io/name=tributary-batch,app.kubernetes.io/instance=daily";
/// 2025-01-01T02:00:00Z, 2025-01-02T02:00:00Z, ...: the fixture's scheduled times.
const DAY_1: i64 = 1_735_696_800;
const DAY: i64 = 86_400;

fn at(time: &str) -> Timestamp {
    time.parse().unwrap()
}

fn day(n: i64) -> Timestamp {
    Timestamp::from_second(DAY_1 + (n - 1) * DAY).unwrap()
}

fn job_name(n: i64) -> String {
    format!("daily-{}", DAY_1 + (n - 1) * DAY)
}

fn workers() -> Workers {
    Workers {
        image: Some(IMAGE.into()),
        service_account: Some("tributary-worker".into()),
    }
}

fn job_of(batch_job: &BatchJob, n: i64) -> Job {
    let aws = AwsOptions {
        region: Some("eu-west-1".into()),
        endpoint_url: Some("http://localstack:4566".into()),
    };
    build::job(batch_job, day(n), None, IMAGE, &workers(), &aws)
}

/// The Job of day `n`'s run as the API server has it: running, or with the condition
/// `Complete` / `Failed`.
fn existing_job(n: i64, ended: Option<&str>) -> Job {
    let mut job = job_of(&batch_job(), n);
    let start = day(n).to_string();
    let end = Timestamp::from_second(day(n).as_second() + 90)
        .unwrap()
        .to_string();
    job.status = Some(match ended {
        None => from_yaml(&format!("{{startTime: '{start}', active: 1}}")),
        Some(condition) => from_yaml(&format!(
            "{{startTime: '{start}', completionTime: '{end}', conditions: [{{type: {condition}, \
             status: 'True', lastTransitionTime: '{end}', reason: BackoffLimitExceeded, \
             message: 'Job has reached the specified backoff limit'}}]}}"
        )),
    });
    job
}

fn container(job: &Job) -> Container {
    job.spec
        .as_ref()
        .unwrap()
        .template
        .spec
        .as_ref()
        .unwrap()
        .containers[0]
        .clone()
}

fn env(job: &Job) -> Vec<EnvVar> {
    container(job).env.unwrap_or_default()
}

fn value<'a>(env: &'a [EnvVar], name: &str) -> Option<&'a str> {
    env.iter()
        .find(|e| e.name == name)
        .and_then(|e| e.value.as_deref())
}

fn with_status(mut batch_job: BatchJob, yaml: &str) -> BatchJob {
    batch_job.status = Some(from_yaml(yaml));
    batch_job
}

fn with_spec(yaml_lines: &str) -> BatchJob {
    let mut value: Value = serde_json::to_value(batch_job()).unwrap();
    let extra: Value = from_yaml(yaml_lines);
    for (key, v) in extra.as_object().unwrap() {
        value["spec"][key] = v.clone();
    }
    serde_json::from_value(value).unwrap()
}

// --- validate ---

#[tokio::test]
async fn a_valid_spec_gives_the_schedule_and_the_backfill_times() {
    let validated = validate(&batch_job()).await.unwrap();
    assert_eq!(
        validated
            .schedule
            .next_after(at("2025-01-01T00:00Z"))
            .unwrap(),
        Some(day(1))
    );
    assert!(validated.backfill.is_none());

    let backfilled = with_spec(
        "backfill: {from: '2024-12-30', to: '2024-12-31', order: NewestFirst, id: again}",
    );
    let (key, times) = validate(&backfilled).await.unwrap().backfill.unwrap();
    assert_eq!(key, "2024-12-30..2024-12-31 NewestFirst id=again");
    assert_eq!(times, [day(0), day(-1)]);
}

#[tokio::test]
async fn what_cannot_run_is_refused_with_the_field() {
    let cases = [
        (
            "schedule: '61 * * * *'",
            "invalid cron schedule \"61 * * * *\"",
        ),
        (
            "timeZone: Mars/Olympus",
            "unknown time zone \"Mars/Olympus\"",
        ),
        (
            "backfill: {from: '2025-02-01', to: '2025-01-01'}",
            "backfill.from 2025-02-01 is after backfill.to 2025-01-01",
        ),
        (
            "inputs: [{name: pin, url: 's3://a/b/'}, {name: pin, url: 's3://a/c/'}]",
            "spec.inputs: the name \"pin\" is used twice",
        ),
        (
            "steps: [{name: a, sql: SELECT 1, output: {url: 's3://a/x/'}}, {name: a, sql: SELECT 2}]",
            "spec.steps: the name \"a\" is used twice",
        ),
        (
            "steps: [{name: a, sql: SELECT 1, output: {url: 's3://a/x/', partitionBy: [dt, '']}}]",
            "spec.steps[0].output.partitionBy: \"\" is not a column name",
        ),
        (
            "steps: [{name: a, sql: SELECT 1, output: {url: 's3://a/x/', partitionBy: [dt, dt]}}]",
            "spec.steps[0].output.partitionBy: \"dt\"",
        ),
        (
            "steps: [{name: a, sql: SELECT 1}]",
            "at least one step needs an output",
        ),
        // The SQL, planned by the worker's engine without data.
        (
            "steps: [{name: a, sql: 'SELEC category FROM pin', output: {url: 's3://a/x/'}}]",
            "spec.steps: step \"a\": the SQL does not parse",
        ),
        (
            "steps: [{name: a, sql: 'SELECT * FROM geo', output: {url: 's3://a/x/'}}]",
            "spec.steps: step \"a\" reads table \"geo\", which is neither an input nor an \
             earlier step (known here: pin)",
        ),
        (
            "steps: [{name: a, sql: 'DROP TABLE pin', output: {url: 's3://a/x/'}}]",
            "only a query (SELECT, WITH ... SELECT, VALUES) can be a step",
        ),
        (
            "inputs: [{name: pin, url: 's3://a/b/', schema: [{name: category, type: String}]}]\n\
             steps: [{name: a, sql: 'SELECT categry FROM pin', output: {url: 's3://a/x/'}}]",
            "categry",
        ),
    ];
    for (spec, expected) in cases {
        let error = validate(&with_spec(spec)).await.expect_err(spec);
        assert!(error.to_string().contains(expected), "{spec}: {error}");
    }
    let mut long = batch_job();
    long.metadata.name = Some("x".repeat(64));
    assert!(matches!(
        validate(&long).await,
        Err(SpecError::NameTooLong(64))
    ));
}

/// The reference jobs of `examples/pinterest/` plan against their inputs' schemas.
#[tokio::test]
async fn the_pinterest_batch_jobs_are_valid() {
    for file in ["batch-clean.yaml", "batch-aggregate.yaml"] {
        let path = format!(
            "{}/../examples/pinterest/{file}",
            crate::test_support::manifest_dir()
        );
        let yaml = std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{path}: {e}"));
        let mut batch_job: BatchJob = from_yaml(&yaml);
        batch_job.metadata.namespace = Some("demo".into());
        if let Err(error) = validate(&batch_job).await {
            panic!("{file}: {error}");
        }
    }
}

// --- build ---

#[test]
fn the_config_map_holds_the_worker_configuration() {
    let config_map = build::config_map(&batch_job());
    assert_eq!(config_map.metadata.name.as_deref(), Some("daily-batch"));
    let data = config_map.data.unwrap();
    let config = BatchWorkerConfig::from_json(&data[CONFIG_KEY]).expect("the worker reads it");
    assert_eq!(config.batch_job, "demo/daily");
    assert_eq!(config.inputs, batch_job().spec.inputs);
    assert_eq!(config.steps, batch_job().spec.steps);
    let owner = &config_map.metadata.owner_references.unwrap()[0];
    assert_eq!(
        (owner.kind.as_str(), owner.controller),
        ("BatchJob", Some(true))
    );
}

#[test]
fn a_run_is_a_job_named_by_its_scheduled_time() {
    let job = job_of(&batch_job(), 1);
    let meta = &job.metadata;
    assert_eq!(meta.name.as_deref(), Some("daily-1735696800"));
    let labels = meta.labels.as_ref().unwrap();
    assert_eq!(labels["app.kubernetes.io/name"], "tributary-batch");
    assert_eq!(labels["app.kubernetes.io/instance"], "daily");
    assert_eq!(labels["app.kubernetes.io/managed-by"], "tributary");
    assert_eq!(
        meta.annotations.as_ref().unwrap()["tributary.dev/scheduled-time"],
        "2025-01-01T02:00:00Z"
    );
    let owner = &meta.owner_references.as_ref().unwrap()[0];
    assert_eq!(
        (owner.kind.as_str(), owner.name.as_str(), owner.uid.as_str()),
        ("BatchJob", "daily", "7f0c0e1a-0000-4000-8000-0000000000b1")
    );
    assert_eq!(owner.controller, Some(true));

    let spec = job.spec.as_ref().unwrap();
    assert_eq!(spec.backoff_limit, Some(2), "the default spec.backoffLimit");
    assert_eq!(spec.active_deadline_seconds, Some(3600));
    let pod = spec.template.spec.as_ref().unwrap();
    assert_eq!(pod.restart_policy.as_deref(), Some("Never"));
    assert_eq!(pod.automount_service_account_token, Some(false));
    assert_eq!(
        pod.service_account_name.as_deref(),
        Some("tributary-worker")
    );
    assert_eq!(
        pod.security_context.as_ref().unwrap().run_as_non_root,
        Some(true)
    );

    let container = container(&job);
    assert_eq!(container.image.as_deref(), Some(IMAGE));
    assert_eq!(
        container.args.unwrap(),
        [
            "worker",
            "batch",
            "--scheduled-time",
            "2025-01-01T02:00:00Z"
        ]
    );
    assert_eq!(
        container.termination_message_policy.as_deref(),
        Some("FallbackToLogsOnError")
    );
    let security = container.security_context.unwrap();
    assert_eq!(security.read_only_root_filesystem, Some(true));
    assert_eq!(security.allow_privilege_escalation, Some(false));
    assert_eq!(
        container.resources.unwrap().limits.unwrap()["memory"].0,
        "1Gi"
    );

    let env = env(&job);
    let config = env[0]
        .value_from
        .as_ref()
        .unwrap()
        .config_map_key_ref
        .as_ref()
        .unwrap();
    assert_eq!(env[0].name, "TRIBUTARY_BATCH_CONFIG");
    assert_eq!(
        (config.name.as_str(), config.key.as_str()),
        ("daily-batch", "config.json")
    );
    assert_eq!(value(&env, "AWS_REGION"), Some("eu-west-1"));
    assert_eq!(
        value(&env, "AWS_ENDPOINT_URL"),
        Some("http://localstack:4566")
    );

    let mut in_region = batch_job();
    in_region.spec.region = Some("us-west-2".into());
    assert_eq!(value(&env_of(&in_region), "AWS_REGION"), Some("us-west-2"));
}

fn env_of(batch_job: &BatchJob) -> Vec<EnvVar> {
    env(&job_of(batch_job, 1))
}

#[test]
fn a_backfill_run_names_its_request() {
    let job = build::job(
        &batch_job(),
        day(0),
        Some("2024-12-31..2024-12-31 OldestFirst"),
        IMAGE,
        &workers(),
        &AwsOptions::default(),
    );
    let annotations = job.metadata.annotations.unwrap();
    assert_eq!(
        annotations["tributary.dev/backfill-request"],
        "2024-12-31..2024-12-31 OldestFirst"
    );
    let run = runs::observe(&existing_job(1, Some("Complete"))).unwrap();
    assert_eq!((run.outcome, run.backfill), (RunOutcome::Succeeded, None));
}

// --- runs ---

#[test]
fn job_conditions_give_the_outcome_and_duration() {
    let running = runs::observe(&existing_job(1, None)).unwrap();
    assert_eq!(running.outcome, RunOutcome::Running);
    let failed = runs::observe(&existing_job(1, Some("Failed"))).unwrap();
    assert_eq!(failed.outcome, RunOutcome::Failed);
    let record = failed.record(Vec::new());
    assert_eq!(record.duration_seconds, Some(90));
    assert_eq!(
        record.message.as_deref(),
        Some("BackoffLimitExceeded: Job has reached the specified backoff limit")
    );
    assert_eq!(
        runs::outputs(r#"[{"step": "top", "rows": 42, "url": "s3://lake/results/top/"}]"#).unwrap()
            [0]
        .rows,
        42
    );
    assert_eq!(runs::outputs("panicked at worker.rs:10"), None);
}

#[test]
fn garbage_is_the_oldest_finished_beyond_the_limits() {
    let spec = with_spec("successfulRunsHistoryLimit: 1\nfailedRunsHistoryLimit: 1").spec;
    let runs: Vec<_> = [
        existing_job(1, Some("Complete")),
        existing_job(2, Some("Failed")),
        existing_job(3, Some("Complete")),
        existing_job(4, Some("Failed")),
        existing_job(5, Some("Complete")),
        existing_job(6, None),
    ]
    .iter()
    .filter_map(runs::observe)
    .collect();
    assert_eq!(
        runs::garbage(&spec, &runs),
        [job_name(1), job_name(3), job_name(2)]
    );
}

// --- reconcile ---

/// The ConfigMap apply and the Jobs' LIST that every scheduling reconcile starts with.
fn observe_jobs(jobs: &[Job]) -> [ApiCall; 2] {
    [
        ApiCall::apply::<ConfigMap>("demo", "daily-batch", FIELD_MANAGER).with_object(|cm| {
            assert!(
                cm["data"][CONFIG_KEY]
                    .as_str()
                    .unwrap()
                    .contains("demo/daily")
            );
        }),
        ApiCall::list::<Job, _>("demo", SELECTOR, jobs),
    ]
}

async fn run(batch_job: BatchJob, now: &str, calls: Vec<ApiCall>) -> Action {
    let (ctx, server) = Context::test_batch_jobs(Some(IMAGE), now);
    let verifier = server.run(Scenario::calls(calls));
    let action = reconcile(Arc::new(batch_job), ctx)
        .await
        .expect("reconciled");
    verifier.done().await;
    action
}

#[tokio::test]
async fn the_first_reconcile_starts_the_due_run_and_requeues_at_the_next() {
    let bj = batch_job();
    let mut calls = Vec::from(observe_jobs(&[]));
    calls.extend([
        ApiCall::create::<Job>("demo", &job_name(1), false).with_created(|job| {
            assert_eq!(
                job["spec"]["template"]["spec"]["containers"][0]["args"][3],
                "2025-01-01T02:00:00Z"
            );
        }),
        ApiCall::event(&bj, "RunStarted"),
        ApiCall::event(&bj, "Scheduled"),
        ApiCall::apply_status(&bj, FIELD_MANAGER, true, "Scheduled").with_status(|status| {
            assert_eq!(status["lastScheduleTime"], "2025-01-01T02:00:00Z");
            assert_eq!(status["nextScheduleTime"], "2025-01-02T02:00:00Z");
            assert_eq!(status["activeCount"], 1);
            assert_eq!(status["active"][0]["jobName"], "daily-1735696800");
            assert_eq!(status["active"][0]["outcome"], "Running");
            assert_eq!(status["observedGeneration"], 1);
        }),
    ]);
    let action = run(bj, "2025-01-01T02:00:30Z", calls).await;
    // 02:00:30 to the next day's 02:00, capped at the resync (300 s in tests).
    assert_eq!(action, Action::requeue(crate::test_support::RESYNC));

    let soon = run(
        with_status(batch_job(), "lastScheduleTime: '2025-01-01T02:00:00Z'"),
        "2025-01-02T01:59:00Z",
        {
            let mut calls = Vec::from(observe_jobs(&[]));
            calls.push(ApiCall::event(&batch_job(), "Scheduled"));
            calls.push(ApiCall::apply_status(
                &batch_job(),
                FIELD_MANAGER,
                true,
                "Scheduled",
            ));
            calls
        },
    )
    .await;
    assert_eq!(soon, Action::requeue(std::time::Duration::from_secs(60)));
}

#[tokio::test]
async fn a_run_already_started_is_not_started_again() {
    let bj = batch_job();
    let mut calls = Vec::from(observe_jobs(&[]));
    calls.extend([
        ApiCall::create::<Job>("demo", &job_name(1), true),
        ApiCall::event(&bj, "Scheduled"),
        ApiCall::apply_status(&bj, FIELD_MANAGER, true, "Scheduled").with_status(|status| {
            assert_eq!(status["lastScheduleTime"], "2025-01-01T02:00:00Z");
        }),
    ]);
    run(bj, "2025-01-01T02:00:30Z", calls).await;
}

#[tokio::test]
async fn forbid_waits_while_a_run_is_active() {
    let bj = with_status(batch_job(), "lastScheduleTime: '2025-01-01T02:00:00Z'");
    let mut calls = Vec::from(observe_jobs(&[existing_job(1, None)]));
    calls.extend([
        ApiCall::event(&bj, "Scheduled"),
        ApiCall::apply_status(&bj, FIELD_MANAGER, true, "Scheduled").with_status(|status| {
            assert_eq!(
                status["lastScheduleTime"], "2025-01-01T02:00:00Z",
                "still due"
            );
            assert_eq!(status["activeCount"], 1);
        }),
    ]);
    run(bj, "2025-01-02T02:00:30Z", calls).await;
}

#[tokio::test]
async fn replace_stops_the_active_run_then_starts_the_due_one() {
    let bj = with_status(
        with_spec("concurrencyPolicy: Replace"),
        "lastScheduleTime: '2025-01-01T02:00:00Z'",
    );
    let mut calls = Vec::from(observe_jobs(&[existing_job(1, None)]));
    calls.extend([
        ApiCall::delete::<Job>("demo", &job_name(1), true),
        ApiCall::event(&bj, "RunReplaced"),
        ApiCall::create::<Job>("demo", &job_name(2), false),
        ApiCall::event(&bj, "RunStarted"),
        ApiCall::event(&bj, "Scheduled"),
        ApiCall::apply_status(&bj, FIELD_MANAGER, true, "Scheduled").with_status(|status| {
            assert_eq!(status["lastScheduleTime"], "2025-01-02T02:00:00Z");
            assert_eq!(status["active"].as_array().unwrap().len(), 1);
            assert_eq!(status["active"][0]["jobName"], job_name(2));
        }),
    ]);
    run(bj, "2025-01-02T02:00:30Z", calls).await;
}

#[tokio::test]
async fn a_suspended_batch_job_starts_nothing() {
    let bj = with_status(
        with_spec("suspend: true\ncatchUp: true"),
        "lastScheduleTime: '2025-01-01T02:00:00Z'",
    );
    let mut calls = Vec::from(observe_jobs(&[]));
    calls.extend([
        ApiCall::event(&bj, "Suspended"),
        ApiCall::apply_status(&bj, FIELD_MANAGER, true, "Suspended").with_status(|status| {
            assert!(status.get("nextScheduleTime").is_none());
            assert_eq!(status["activeCount"], 0);
        }),
    ]);
    run(bj, "2025-01-05T02:00:30Z", calls).await;
}

#[tokio::test]
async fn catch_up_under_forbid_starts_the_oldest_missed_run_and_reports_the_skipped() {
    let bj = with_status(
        with_spec("catchUp: true\nmaxCatchUpRuns: 2\nconcurrencyPolicy: Forbid"),
        "lastScheduleTime: '2025-01-01T02:00:00Z'",
    );
    let mut calls = Vec::from(observe_jobs(&[]));
    calls.extend([
        ApiCall::create::<Job>("demo", &job_name(4), false),
        ApiCall::event(&bj, "RunStarted"),
        ApiCall::warning(&bj, "RunsSkipped"),
        ApiCall::event(&bj, "Scheduled"),
        ApiCall::apply_status(&bj, FIELD_MANAGER, true, "Scheduled").with_status(|status| {
            // Day 5 stays due until day 4's run ends.
            assert_eq!(status["lastScheduleTime"], "2025-01-04T02:00:00Z");
            let skipped = &status["history"][0];
            assert_eq!(skipped["outcome"], "Skipped");
            assert!(
                skipped["message"]
                    .as_str()
                    .unwrap()
                    .starts_with("2 runs from 2025-01-02T02:00:00Z"),
                "{skipped}"
            );
        }),
    ]);
    run(bj, "2025-01-05T02:00:30Z", calls).await;
}

#[tokio::test]
async fn finished_runs_enter_the_history_and_old_jobs_are_deleted_oldest_first() {
    let bj = with_status(
        with_spec("successfulRunsHistoryLimit: 1"),
        r#"
lastScheduleTime: '2025-01-03T02:00:00Z'
history:
  - {scheduledTime: '2025-01-02T02:00:00Z', jobName: daily-1735783200, outcome: Succeeded}
  - {scheduledTime: '2025-01-01T02:00:00Z', jobName: daily-1735696800, outcome: Succeeded}
"#,
    );
    let pod: Pod = from_yaml(&format!(
        r#"
metadata: {{name: {}-x7k2p, namespace: demo, creationTimestamp: '2025-01-03T02:00:01Z'}}
status:
  containerStatuses:
    - name: batch
      image: {IMAGE}
      imageID: ''
      ready: false
      restartCount: 0
      state:
        terminated:
          exitCode: 0
          message: '[{{"step": "top", "rows": 1234, "url": "s3://lake/results/top/"}}]'
"#,
        job_name(3)
    ));
    let jobs = [
        existing_job(1, Some("Complete")),
        existing_job(2, Some("Complete")),
        existing_job(3, Some("Complete")),
    ];
    let mut calls = Vec::from(observe_jobs(&jobs));
    calls.extend([
        ApiCall::list::<Pod, _>("demo", &format!("job-name={}", job_name(3)), &[pod]),
        ApiCall::delete::<Job>("demo", &job_name(1), true),
        ApiCall::delete::<Job>("demo", &job_name(2), false),
        ApiCall::event(&bj, "RunSucceeded"),
        ApiCall::event(&bj, "Scheduled"),
        ApiCall::apply_status(&bj, FIELD_MANAGER, true, "Scheduled").with_status(|status| {
            assert_eq!(status["lastSuccessfulTime"], "2025-01-03T02:00:00Z");
            let newest = &status["history"][0];
            assert_eq!(newest["jobName"], job_name(3));
            assert_eq!(newest["outcome"], "Succeeded");
            assert_eq!(newest["durationSeconds"], 90);
            assert_eq!(newest["outputs"], json!([{"step": "top", "rows": 1234}]));
            assert_eq!(status["history"].as_array().unwrap().len(), 3);
            assert_eq!(status["activeCount"], 0);
            let degraded = status["conditions"]
                .as_array()
                .unwrap()
                .iter()
                .find(|c| c["type"] == "Degraded")
                .unwrap();
            assert_eq!(degraded["status"], "False");
        }),
    ]);
    run(bj, "2025-01-03T03:00:00Z", calls).await;
}

#[tokio::test]
async fn a_failed_run_is_reported_once() {
    let bj = with_status(batch_job(), "lastScheduleTime: '2025-01-01T02:00:00Z'");
    let mut calls = Vec::from(observe_jobs(&[existing_job(1, Some("Failed"))]));
    calls.extend([
        ApiCall::warning(&bj, "RunFailed"),
        ApiCall::event(&bj, "Scheduled"),
        ApiCall::apply_status(&bj, FIELD_MANAGER, true, "Scheduled").with_status(|status| {
            assert_eq!(status["history"][0]["outcome"], "Failed");
            assert!(status.get("lastSuccessfulTime").is_none());
        }),
    ]);
    run(bj, "2025-01-01T03:00:00Z", calls).await;

    // Once in the history, the same Job is not reported again.
    let known = with_status(
        batch_job(),
        r#"
lastScheduleTime: '2025-01-01T02:00:00Z'
conditions:
  - {type: Ready, status: 'True', reason: Scheduled, message: x, lastTransitionTime: '2025-01-01T00:00:00Z'}
history:
  - {scheduledTime: '2025-01-01T02:00:00Z', jobName: daily-1735696800, outcome: Failed}
"#,
    );
    let mut calls = Vec::from(observe_jobs(&[existing_job(1, Some("Failed"))]));
    calls.push(ApiCall::apply_status(
        &known,
        FIELD_MANAGER,
        true,
        "Scheduled",
    ));
    run(known, "2025-01-01T03:00:00Z", calls).await;
}

#[tokio::test]
async fn a_backfill_starts_one_run_at_a_time_in_its_order() {
    let bj = with_status(
        with_spec("backfill: {from: '2024-12-29', to: '2024-12-31', order: NewestFirst}"),
        "lastScheduleTime: '2025-01-01T02:00:00Z'",
    );
    let mut calls = Vec::from(observe_jobs(&[]));
    calls.extend([
        ApiCall::create::<Job>("demo", &job_name(0), false).with_created(|job| {
            assert_eq!(
                job["metadata"]["annotations"]["tributary.dev/backfill-request"],
                "2024-12-29..2024-12-31 NewestFirst"
            );
        }),
        ApiCall::event(&bj, "RunStarted"),
        ApiCall::event(&bj, "Scheduled"),
        ApiCall::apply_status(&bj, FIELD_MANAGER, true, "Scheduled").with_status(|status| {
            assert_eq!(
                status["backfill"],
                json!({"request": "2024-12-29..2024-12-31 NewestFirst", "total": 3, "completed": 0, "failed": 0})
            );
            assert_eq!(status["lastScheduleTime"], "2025-01-01T02:00:00Z", "backfill runs are not scheduled runs");
        }),
    ]);
    run(bj, "2025-01-01T12:00:00Z", calls).await;
}

#[tokio::test]
async fn an_invalid_cron_is_reported_and_starts_nothing() {
    let bj = with_spec("schedule: '0 25 * * *'");
    let calls = vec![
        ApiCall::warning(&bj, "InvalidSpec"),
        ApiCall::apply_status(&bj, FIELD_MANAGER, false, "InvalidSpec").with_status(|status| {
            let message = status["conditions"][0]["message"].as_str().unwrap();
            assert!(
                message.contains("invalid cron schedule \"0 25 * * *\""),
                "{message}"
            );
        }),
    ];
    let action = run(bj, "2025-01-01T02:00:30Z", calls).await;
    assert_eq!(action, Action::await_change());
}

#[tokio::test]
async fn without_a_worker_image_nothing_starts() {
    let bj = batch_job();
    let (ctx, server) = Context::test_batch_jobs(None, "2025-01-01T02:00:30Z");
    let verifier = server.run(Scenario::calls([
        ApiCall::warning(&bj, "NoWorkerImage"),
        ApiCall::apply_status(&bj, FIELD_MANAGER, false, "NoWorkerImage"),
    ]));
    reconcile(Arc::new(bj), ctx).await.unwrap();
    verifier.done().await;
}
