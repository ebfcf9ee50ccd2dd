//! Installing the Tributary CRDs into a cluster and waiting until the API server serves them.

use std::time::Duration;

use k8s_openapi::apiextensions_apiserver::pkg::apis::apiextensions::v1::CustomResourceDefinition;
use kube::api::{Api, Patch, PatchParams, PostParams};
use kube::runtime::wait::{await_condition, conditions};

/// The field manager the operator writes CRDs with.
pub const FIELD_MANAGER: &str = "tributary-operator";

/// Installing the CRDs failed.
#[derive(Debug, thiserror::Error)]
pub enum InstallError {
    /// The API server refused the CRD.
    #[error("could not apply CRD {name}: {source}")]
    Apply {
        /// The CRD's name.
        name: String,
        /// The API server's answer.
        #[source]
        source: kube::Error,
    },
    /// The API server did not report the CRD as established in time.
    #[error("CRD {name} was not established within {seconds} s; check the API server's log")]
    NotEstablished {
        /// The CRD's name.
        name: String,
        /// How long we waited.
        seconds: u64,
    },
}

/// Create or update every Tributary CRD, then wait until each is established.
///
/// Server-side apply is tried first. API servers older than 1.25 do not know
/// `x-kubernetes-validations` and refuse it under server-side apply ("field not declared in
/// schema"), while a plain create or update lets them drop the CEL rules; so on that refusal the
/// CRD is written with create-or-replace instead.
pub async fn install(client: &kube::Client, timeout: Duration) -> Result<(), InstallError> {
    let api: Api<CustomResourceDefinition> = Api::all(client.clone());
    for crd in tributary_crds::crds() {
        let name = crd.metadata.name.clone().expect("generated CRDs are named");
        apply(&api, &name, &crd)
            .await
            .map_err(|source| InstallError::Apply {
                name: name.clone(),
                source,
            })?;
        let established = await_condition(api.clone(), &name, conditions::is_crd_established());
        if tokio::time::timeout(timeout, established).await.is_err() {
            return Err(InstallError::NotEstablished {
                name,
                seconds: timeout.as_secs(),
            });
        }
        tracing::info!(crd = %name, "CRD established");
    }
    Ok(())
}

async fn apply(
    api: &Api<CustomResourceDefinition>,
    name: &str,
    crd: &CustomResourceDefinition,
) -> Result<(), kube::Error> {
    let params = PatchParams::apply(FIELD_MANAGER).force();
    match api.patch(name, &params, &Patch::Apply(crd)).await {
        Ok(_) => Ok(()),
        Err(kube::Error::Api(status))
            if status.message.contains("field not declared in schema") =>
        {
            tracing::info!(crd = %name, "API server predates CEL rules; writing the CRD without server-side apply");
            replace(api, name, crd).await
        }
        Err(e) => Err(e),
    }
}

async fn replace(
    api: &Api<CustomResourceDefinition>,
    name: &str,
    crd: &CustomResourceDefinition,
) -> Result<(), kube::Error> {
    match api.get_opt(name).await? {
        None => api.create(&PostParams::default(), crd).await.map(drop),
        Some(existing) => {
            let mut desired = crd.clone();
            desired.metadata.resource_version = existing.metadata.resource_version;
            api.replace(name, &PostParams::default(), &desired)
                .await
                .map(drop)
        }
    }
}
