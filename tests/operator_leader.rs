//! Leader election with the real binary and API server: of two replicas on one Lease only the
//! holder reconciles, and when it is killed (no chance to release the Lease) the other takes
//! over within the Lease duration.

use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use k8s_openapi::api::coordination::v1::Lease;
use k8s_openapi::api::core::v1::Namespace;
use kube::api::{Api, DeleteParams, PostParams};
use serde_json::json;
use tributary_crds::KafkaCluster;
use tributary_tests::{eventually, kube_client, stack_env, tributary_binary, unique_name};

const LEASE_SECONDS: u64 = 6;

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .expect("a free port")
        .local_addr()
        .expect("an address")
        .port()
}

struct Replica {
    child: Child,
    port: u16,
}

impl Replica {
    fn start(namespace: &str, identity: &str) -> Self {
        let port = free_port();
        let child = Command::new(tributary_binary())
            .args([
                "operator",
                "--namespace",
                namespace,
                "--lease-namespace",
                namespace,
                "--identity",
                identity,
            ])
            .args([
                "--http-addr",
                &format!("127.0.0.1:{port}"),
                "--lease-seconds",
                &LEASE_SECONDS.to_string(),
            ])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("the operator starts");
        Self { child, port }
    }

    /// Reconciliations this replica has done, from its /metrics.
    fn reconciliations(&self) -> Option<u64> {
        use std::io::{Read, Write};
        let mut stream = std::net::TcpStream::connect(("127.0.0.1", self.port)).ok()?;
        stream
            .write_all(b"GET /metrics HTTP/1.0\r\nHost: localhost\r\n\r\n")
            .ok()?;
        let mut text = String::new();
        stream.read_to_string(&mut text).ok()?;
        let counted = text
            .lines()
            .filter(|l| l.starts_with("tributary_reconciliations_total"))
            .filter_map(|l| l.rsplit(' ').next()?.parse::<u64>().ok())
            .sum();
        text.contains("200 OK").then_some(counted)
    }
}

impl Drop for Replica {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn cluster(name: &str) -> KafkaCluster {
    serde_json::from_value(json!({
        "apiVersion": "tributary.dev/v1alpha1",
        "kind": "KafkaCluster",
        "metadata": {"name": name},
        "spec": {"external": {"bootstrapServers": [stack_env("TRIBUTARY_KAFKA_BOOTSTRAP")]}}
    }))
    .expect("a KafkaCluster")
}

async fn holder(leases: &Api<Lease>) -> Option<String> {
    leases
        .get("tributary-operator")
        .await
        .ok()?
        .spec?
        .holder_identity
}

async fn reconciled(clusters: &Api<KafkaCluster>, name: &str, seconds: u64) {
    eventually(
        seconds,
        &format!("KafkaCluster {name} reconciled"),
        || async {
            let status = clusters.get(name).await.ok()?.status?;
            status
                .conditions
                .iter()
                .any(|c| c.type_ == "Ready" && c.status == "True")
                .then_some(())
        },
    )
    .await;
}

#[tokio::test]
async fn only_the_leader_acts_and_a_killed_leader_is_replaced_within_the_lease() {
    let client = kube_client().await;
    tributary_operator::crds::install(&client, Duration::from_secs(60))
        .await
        .expect("CRDs installed");
    let namespace = unique_name("opleader");
    let namespaces: Api<Namespace> = Api::all(client.clone());
    let ns: Namespace = serde_json::from_value(json!({"metadata": {"name": namespace}})).unwrap();
    namespaces
        .create(&PostParams::default(), &ns)
        .await
        .expect("namespace created");

    let mut first = Replica::start(&namespace, "first");
    let leases: Api<Lease> = Api::namespaced(client.clone(), &namespace);
    eventually(30, "the first replica holding the Lease", || async {
        holder(&leases).await.filter(|h| h == "first")
    })
    .await;
    let second = Replica::start(&namespace, "second");
    eventually(30, "the second replica serving metrics", || async {
        second.reconciliations()
    })
    .await;

    let clusters: Api<KafkaCluster> = Api::namespaced(client.clone(), &namespace);
    clusters
        .create(&PostParams::default(), &cluster("one"))
        .await
        .expect("created");
    reconciled(&clusters, "one", 30).await;
    assert!(
        first.reconciliations().unwrap_or(0) > 0,
        "the leader reconciled"
    );
    assert_eq!(second.reconciliations(), Some(0), "the standby did nothing");

    // SIGKILL: the Lease is not released; the standby takes it when it expires.
    first.child.kill().expect("killed");
    first.child.wait().expect("reaped");
    let killed = Instant::now();
    eventually(
        LEASE_SECONDS * 4,
        "the second replica holding the Lease",
        || async { holder(&leases).await.filter(|h| h == "second") },
    )
    .await;
    let takeover = killed.elapsed();
    assert!(
        takeover <= Duration::from_secs(LEASE_SECONDS * 2),
        "taken over in {takeover:?}"
    );
    clusters
        .create(&PostParams::default(), &cluster("two"))
        .await
        .expect("created");
    reconciled(&clusters, "two", 30).await;
    assert!(
        second.reconciliations().unwrap_or(0) > 0,
        "the new leader reconciles"
    );

    drop(second);
    namespaces
        .delete(&namespace, &DeleteParams::default())
        .await
        .expect("namespace deleted");
}
