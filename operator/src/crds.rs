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

/// Create-or-replace, retried when another writer got there first: two operators (or two
/// tests) installing the CRDs at the same time race between the read and the write, and the
/// loser sees 409 (AlreadyExists on create, Conflict on a stale resourceVersion).
async fn replace(
    api: &Api<CustomResourceDefinition>,
    name: &str,
    crd: &CustomResourceDefinition,
) -> Result<(), kube::Error> {
    const ATTEMPTS: usize = 5;
    let mut attempt = 1;
    loop {
        let written = match api.get_opt(name).await? {
            None => api.create(&PostParams::default(), crd).await.map(drop),
            Some(existing) => {
                let mut desired = crd.clone();
                desired.metadata.resource_version = existing.metadata.resource_version;
                api.replace(name, &PostParams::default(), &desired)
                    .await
                    .map(drop)
            }
        };
        match written {
            Err(kube::Error::Api(status)) if status.code == 409 && attempt < ATTEMPTS => {
                tracing::debug!(crd = %name, attempt, "CRD changed while writing it; retrying");
                attempt += 1;
            }
            other => return other,
        }
    }
}

#[cfg(test)]
mod tests {
    use http::{Method, Request, Response};
    use kube::client::Body;
    use serde_json::json;

    use super::*;

    fn answer(code: u16, body: serde_json::Value) -> Response<Body> {
        Response::builder()
            .status(code)
            .header("content-type", "application/json")
            .body(Body::from(serde_json::to_vec(&body).expect("JSON")))
            .expect("a response")
    }

    fn status(code: u16, reason: &str) -> serde_json::Value {
        json!({"kind": "Status", "apiVersion": "v1", "status": "Failure", "code": code,
               "reason": reason, "message": reason})
    }

    /// Another writer creates the CRD between our read and our create: the create's 409 is
    /// followed by a fresh read and a replace at the new resourceVersion.
    #[tokio::test]
    async fn a_crd_created_concurrently_is_replaced() {
        let (service, mut handle) = tower_test::mock::pair::<Request<Body>, Response<Body>>();
        let api: Api<CustomResourceDefinition> = Api::all(kube::Client::new(service, "default"));
        let crd = tributary_crds::crds().remove(0);
        let name = crd.metadata.name.clone().expect("named");
        let mut existing = serde_json::to_value(&crd).expect("JSON");
        existing["metadata"]["resourceVersion"] = json!("42");
        let server = tokio::spawn(async move {
            let answers = [
                answer(404, status(404, "NotFound")),
                answer(409, status(409, "AlreadyExists")),
                answer(200, existing.clone()),
                answer(200, existing),
            ];
            let mut seen = Vec::new();
            for response in answers {
                let (request, send) = handle.next_request().await.expect("a request");
                let method = request.method().clone();
                let body = request.into_body().collect_bytes().await.expect("a body");
                let version = serde_json::from_slice::<serde_json::Value>(&body)
                    .ok()
                    .and_then(|v| v["metadata"]["resourceVersion"].as_str().map(str::to_owned));
                seen.push((method, version));
                send.send_response(response);
            }
            seen
        });
        replace(&api, &name, &crd)
            .await
            .expect("the CRD is written");
        let seen = server.await.expect("the server task");
        assert_eq!(
            seen,
            vec![
                (Method::GET, None),
                (Method::POST, None),
                (Method::GET, None),
                (Method::PUT, Some("42".to_owned())),
            ]
        );
    }
}
