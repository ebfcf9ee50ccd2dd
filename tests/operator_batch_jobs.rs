//! The BatchJob controller against the real API server and kube-controller-manager: the Jobs it
//! creates (deterministic names and spec), no duplicate run across an operator restart, a
//! completed Job in the run history, suspension, and garbage collection of the Jobs with their
//! BatchJob. There is no kubelet: the Job controller creates pods that stay Pending, so runs
//! "complete" here by patching the Job's status.

use std::collections::BTreeMap;
use std::time::Duration;

use k8s_openapi::api::batch::v1::Job;
use k8s_openapi::api::core::v1::{ConfigMap, Namespace};
use kube::api::{Api, DeleteParams, ListParams, Patch, PatchParams, PostParams};
use serde_json::json;
use tributary_crds::{BatchJob, BatchJobStatus};
use tributary_operator::context::Workers;
use tributary_tests::{eventually, kube_client, unique_name};
use tributary_workers::batch::config::BatchWorkerConfig;
use tributary_workers::connect::AwsOptions;

const IMAGE: &str = "ghcr.io/tributary-dev/tributary:it";
/// Long enough for the next minute's run, and then some.
const MINUTE: u64 = 90;

/// An operator in this process for `namespace`, with a worker image; stopped (and awaited)
/// through the returned handle.
fn start_operator(
    client: &kube::Client,
    namespace: &str,
) -> (
    tokio::sync::oneshot::Sender<()>,
    tokio::task::JoinHandle<()>,
) {
    let config = tributary_operator::run::Config {
        namespaces: vec![namespace.to_owned()],
        http_addr: "127.0.0.1:0".parse().unwrap(),
        resync: Duration::from_secs(5),
        install_crds: true,
        lease_namespace: namespace.to_owned(),
        lease_name: "tributary-operator".into(),
        identity: unique_name("operator"),
        lease_duration: Duration::from_secs(6),
        aws: AwsOptions {
            region: Some("eu-west-1".into()),
            endpoint_url: None,
        },
        workers: Workers {
            image: Some(IMAGE.into()),
            service_account: None,
        },
    };
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    let client = client.clone();
    let task = tokio::spawn(async move {
        let shutdown = async move {
            let _ = stopped.await;
        };
        tributary_operator::run::run(client, config, shutdown)
            .await
            .expect("the operator runs");
    });
    (stop, task)
}

/// The BatchJob's Jobs by scheduled time (their annotation).
async fn jobs_by_time(jobs: &Api<Job>, name: &str) -> BTreeMap<String, Vec<String>> {
    let selector =
        format!("app.kubernetes.io/name=tributary-batch,app.kubernetes.io/instance={name}");
    let listed = jobs
        .list(&ListParams::default().labels(&selector))
        .await
        .expect("Jobs listed");
    let mut by_time: BTreeMap<String, Vec<String>> = BTreeMap::new();
    for job in listed.items {
        let time =
            job.metadata.annotations.as_ref().unwrap()["tributary.dev/scheduled-time"].clone();
        by_time
            .entry(time)
            .or_default()
            .push(job.metadata.name.unwrap());
    }
    by_time
}

fn ready_reason(status: &BatchJobStatus) -> Option<&str> {
    status
        .conditions
        .iter()
        .find(|c| c.type_ == "Ready")
        .map(|c| c.reason.as_str())
}

#[tokio::test]
async fn batch_jobs_run_as_jobs_once_per_scheduled_time() {
    let client = kube_client().await;
    let namespace = unique_name("opbatch");
    let namespaces: Api<Namespace> = Api::all(client.clone());
    let ns: Namespace = serde_json::from_value(json!({"metadata": {"name": namespace}})).unwrap();
    namespaces
        .create(&PostParams::default(), &ns)
        .await
        .expect("namespace created");
    let (stop, task) = start_operator(&client, &namespace);

    let batch_jobs: Api<BatchJob> = Api::namespaced(client.clone(), &namespace);
    eventually(60, "the BatchJob CRD served", || async {
        batch_jobs.list(&Default::default()).await.ok().map(|_| ())
    })
    .await;
    let batch_job: BatchJob = serde_json::from_value(json!({
        "apiVersion": "tributary.dev/v1alpha1",
        "kind": "BatchJob",
        "metadata": {"name": "minutely"},
        "spec": {
            "schedule": "* * * * *",
            "catchUp": true,
            // Runs never end here (no kubelet): let them overlap.
            "concurrencyPolicy": "Allow",
            "backoffLimit": 1,
            "inputs": [{"name": "pin", "url": "s3://lake/clean/pin/", "format": "Parquet"}],
            "steps": [{"name": "n", "sql": "SELECT count(*) AS n FROM pin",
                       "output": {"url": "s3://lake/results/n/"}}]
        }
    }))
    .unwrap();
    batch_jobs
        .create(&PostParams::default(), &batch_job)
        .await
        .expect("BatchJob created");

    // The ConfigMap holds the worker configuration.
    let config_maps: Api<ConfigMap> = Api::namespaced(client.clone(), &namespace);
    let config = eventually(30, "the ConfigMap minutely-batch", || async {
        let data = config_maps.get("minutely-batch").await.ok()?.data?;
        BatchWorkerConfig::from_json(data.get("config.json")?).ok()
    })
    .await;
    assert_eq!(config.batch_job, format!("{namespace}/minutely"));

    // The first run: at the next minute.
    let jobs: Api<Job> = Api::namespaced(client.clone(), &namespace);
    let first = eventually(MINUTE, "the first run's Job", || async {
        jobs_by_time(&jobs, "minutely").await.into_iter().next()
    })
    .await;
    let (time, names) = first;
    let scheduled: k8s_openapi::jiff::Timestamp = time.parse().unwrap();
    assert_eq!(scheduled.as_second() % 60, 0, "{time}");
    assert_eq!(names, [format!("minutely-{}", scheduled.as_second())]);
    let job = jobs.get(&names[0]).await.unwrap();
    let owner = &job.metadata.owner_references.as_ref().unwrap()[0];
    assert_eq!(
        (owner.kind.as_str(), owner.name.as_str(), owner.controller),
        ("BatchJob", "minutely", Some(true))
    );
    let spec = job.spec.clone().unwrap();
    assert_eq!(spec.backoff_limit, Some(1));
    let pod = spec.template.spec.unwrap();
    assert_eq!(pod.restart_policy.as_deref(), Some("Never"));
    assert_eq!(pod.automount_service_account_token, Some(false));
    let container = &pod.containers[0];
    assert_eq!(container.image.as_deref(), Some(IMAGE));
    assert_eq!(
        container.args.clone().unwrap(),
        ["worker", "batch", "--scheduled-time", time.as_str()]
    );
    let status = eventually(30, "status with the first run", || async {
        let status = batch_jobs.get("minutely").await.ok()?.status?;
        (status.last_schedule_time.as_ref().map(|t| t.0) == Some(scheduled)).then_some(status)
    })
    .await;
    assert_eq!(ready_reason(&status), Some("Scheduled"));
    assert!(status.active.iter().any(|r| r.job_name == names[0]));
    assert!(status.next_schedule_time.is_some());

    // Restart the operator: no run is started a second time.
    let _ = stop.send(());
    task.await.unwrap();
    tokio::time::sleep(Duration::from_secs(2)).await;
    let (stop, task) = start_operator(&client, &namespace);
    let second = eventually(MINUTE + 30, "a second run after the restart", || async {
        let by_time = jobs_by_time(&jobs, "minutely").await;
        (by_time.len() >= 2).then_some(by_time)
    })
    .await;
    for (time, names) in &second {
        assert_eq!(names.len(), 1, "one Job for {time}: {names:?}");
    }

    // A run completes (as the Job controller would say it): the history shows it.
    let completed = &second.values().next().unwrap()[0];
    let now = k8s_openapi::jiff::Timestamp::now().to_string();
    jobs.patch_status(
        completed,
        &PatchParams::default(),
        &Patch::Merge(json!({"status": {
            "conditions": [{"type": "Complete", "status": "True", "lastProbeTime": now, "lastTransitionTime": now}],
            "succeeded": 1,
            "active": 0,
            "startTime": now,
            "completionTime": now,
        }})),
    )
    .await
    .expect("Job status patched");
    let completed_time = second.keys().next().unwrap().clone();
    let status = eventually(30, "the completed run in the history", || async {
        let status = batch_jobs.get("minutely").await.ok()?.status?;
        status
            .history
            .iter()
            .any(|r| {
                &r.job_name == completed
                    && r.outcome == tributary_crds::batch_job::RunOutcome::Succeeded
            })
            .then_some(status)
    })
    .await;
    assert_eq!(
        status.last_successful_time.map(|t| t.0.to_string()),
        Some(completed_time)
    );

    // Suspended: no new run.
    batch_jobs
        .patch(
            "minutely",
            &PatchParams::default(),
            &Patch::Merge(json!({"spec": {"suspend": true}})),
        )
        .await
        .unwrap();
    eventually(30, "Ready reason Suspended", || async {
        let status = batch_jobs.get("minutely").await.ok()?.status?;
        (ready_reason(&status) == Some("Suspended")).then_some(())
    })
    .await;
    let before = jobs_by_time(&jobs, "minutely").await;
    tokio::time::sleep(Duration::from_secs(65)).await;
    assert_eq!(
        jobs_by_time(&jobs, "minutely").await,
        before,
        "no run while suspended"
    );

    // Deleting the BatchJob deletes its Jobs (garbage collection by owner references).
    batch_jobs
        .delete("minutely", &DeleteParams::background())
        .await
        .unwrap();
    eventually(60, "the Jobs garbage-collected", || async {
        jobs_by_time(&jobs, "minutely")
            .await
            .is_empty()
            .then_some(())
    })
    .await;

    let _ = stop.send(());
    task.await.unwrap();
    let _ = namespaces
        .delete(&namespace, &DeleteParams::default())
        .await;
}
