//! The real kube-apiserver: install the five CRDs, create one valid object of each kind (the
//! valid fixtures a user would write), and see an invalid one rejected by the schema.

use std::path::Path;
use std::time::Duration;

use k8s_openapi::api::core::v1::Namespace;
use kube::Resource;
use kube::api::{Api, DeleteParams, DynamicObject, PostParams};
use kube::core::ApiResource;
use serde::Serialize;
use serde::de::DeserializeOwned;
use tributary_crds::{BatchJob, KafkaCluster, Sink, Stream, Topic};
use tributary_tests::{kube_client, unique_name};

fn fixture(kind_dir: &str, file: &str) -> serde_json::Value {
    let path = Path::new(&tributary_tests::manifest_dir())
        .join("../crds/tests/fixtures")
        .join(kind_dir)
        .join(file);
    let text = std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    serde_yaml::from_str(&text).expect("fixture YAML")
}

/// Create a fixture's object as written (without the Rust defaults) and check that what the API
/// server stores — its defaults applied — reads back as the same typed object as the fixture
/// with the Rust defaults applied: the schema's defaults and serde's agree.
async fn create_and_compare<K>(client: &kube::Client, namespace: &str, dir: &str, file: &str)
where
    K: Resource<DynamicType = (), Scope = k8s_openapi::NamespaceResourceScope>
        + Clone
        + std::fmt::Debug
        + Serialize
        + DeserializeOwned
        + HasSpec,
{
    let raw = fixture(dir, file);
    let mut object: DynamicObject =
        serde_json::from_value(raw.clone()).expect("a Kubernetes object");
    object.metadata.namespace = Some(namespace.to_owned());
    let resource = ApiResource::erase::<K>(&());
    let api: Api<DynamicObject> = Api::namespaced_with(client.clone(), namespace, &resource);
    let kind = K::kind(&());
    let created = api
        .create(&PostParams::default(), &object)
        .await
        .unwrap_or_else(|e| panic!("{kind}: {e}"));

    let typed: Api<K> = Api::namespaced(client.clone(), namespace);
    let stored = typed
        .get(&created.metadata.name.clone().expect("named"))
        .await
        .expect("typed read back");
    let expected: K = serde_json::from_value(raw).expect("the fixture parses as the kind");
    assert_eq!(
        stored.spec_json(),
        expected.spec_json(),
        "{kind}: stored spec (server defaults) = fixture (serde defaults)"
    );
}

/// The spec of a custom resource as JSON, for comparing typed objects of any kind.
trait HasSpec {
    fn spec_json(&self) -> serde_json::Value;
}

macro_rules! has_spec {
    ($($kind:ty),*) => {$(
        impl HasSpec for $kind {
            fn spec_json(&self) -> serde_json::Value {
                serde_json::to_value(&self.spec).expect("a spec serializes")
            }
        }
    )*};
}
has_spec!(KafkaCluster, Topic, Stream, Sink, BatchJob);

#[tokio::test]
async fn crds_install_and_objects_are_admitted_or_rejected() {
    let client = kube_client().await;
    tributary_operator::crds::install(&client, Duration::from_secs(60))
        .await
        .expect("CRDs installed");

    let namespace = unique_name("smoke");
    let namespaces: Api<Namespace> = Api::all(client.clone());
    let ns: Namespace =
        serde_json::from_value(serde_json::json!({"metadata": {"name": namespace}})).unwrap();
    namespaces
        .create(&PostParams::default(), &ns)
        .await
        .expect("namespace created");

    create_and_compare::<KafkaCluster>(
        &client,
        &namespace,
        "kafkacluster",
        "valid-msk-provisioned.yaml",
    )
    .await;
    create_and_compare::<Topic>(&client, &namespace, "topic", "valid-full.yaml").await;
    create_and_compare::<Stream>(&client, &namespace, "stream", "valid-provisioned.yaml").await;
    create_and_compare::<Sink>(
        &client,
        &namespace,
        "sink",
        "valid-stream-parquet-transform.yaml",
    )
    .await;
    create_and_compare::<BatchJob>(&client, &namespace, "batchjob", "valid-full.yaml").await;

    // Every default (partitions, deletionPolicy) comes from the server's schema.
    create_and_compare::<Topic>(&client, &namespace, "topic", "valid-minimal.yaml").await;

    // An object that breaks the schema is refused with the field named.
    let topics: Api<Topic> = Api::namespaced(client.clone(), &namespace);
    let mut invalid: Topic =
        serde_json::from_value(fixture("topic", "valid-minimal.yaml")).expect("a Topic");
    invalid.metadata.name = Some("zero-partitions".into());
    invalid.metadata.namespace = Some(namespace.clone());
    invalid.spec.partitions = 0;
    let error = topics
        .create(&PostParams::default(), &invalid)
        .await
        .expect_err("partitions: 0 is refused");
    let message = error.to_string();
    assert!(
        message.contains("spec.partitions"),
        "the error names the field: {message}"
    );

    namespaces
        .delete(&namespace, &DeleteParams::default())
        .await
        .expect("namespace deleted");
}
