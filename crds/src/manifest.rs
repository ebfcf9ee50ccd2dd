//! Reading Tributary objects from manifests (YAML files a user would `kubectl apply`), for
//! `tributary validate` and local mode.

use serde::Deserialize;
use serde_json::Value;

use crate::validate::{Invalid, Validate};
use crate::{BatchJob, GROUP, KafkaCluster, Sink, Stream, Topic};

/// One Tributary object from a manifest.
#[derive(Clone, Debug)]
pub enum Manifest {
    /// A `KafkaCluster`.
    KafkaCluster(KafkaCluster),
    /// A `Topic`.
    Topic(Topic),
    /// A `Stream`.
    Stream(Stream),
    /// A `Sink`.
    Sink(Sink),
    /// A `BatchJob`.
    BatchJob(BatchJob),
}

/// A document that is not a readable Tributary object.
#[derive(Debug, thiserror::Error)]
pub enum ManifestError {
    /// Not YAML, or not an object.
    #[error("document {index}: {message}")]
    Syntax {
        /// 1-based position of the document in the file.
        index: usize,
        /// The parser's message.
        message: String,
    },
    /// In the Tributary API group, but not a kind or version this build knows.
    #[error(
        "document {index}: unknown Tributary kind {kind:?} in {api_version:?}; \
         the kinds are KafkaCluster, Topic, Stream, Sink and BatchJob in {GROUP}/v1alpha1"
    )]
    UnknownKind {
        /// 1-based position of the document in the file.
        index: usize,
        /// The document's `apiVersion`.
        api_version: String,
        /// The document's `kind`.
        kind: String,
    },
    /// A known kind whose fields do not fit its type (missing, wrong type, unknown enum value).
    #[error("document {index} ({kind} {name}): {message}")]
    Fields {
        /// 1-based position of the document in the file.
        index: usize,
        /// The kind.
        kind: String,
        /// `metadata.name`, or `?`.
        name: String,
        /// What does not fit.
        message: String,
    },
}

impl Manifest {
    /// Every Tributary object in a multi-document YAML text, in order. Documents of other API
    /// groups (a Secret beside the Topics, say) and empty documents are skipped.
    pub fn from_yaml(text: &str) -> Vec<Result<Manifest, ManifestError>> {
        let mut out = Vec::new();
        for (i, document) in serde_yaml::Deserializer::from_str(text).enumerate() {
            let index = i + 1;
            match Value::deserialize(document) {
                Ok(Value::Null) => {}
                Ok(value) => {
                    if let Some(result) = Self::from_value(index, value) {
                        out.push(result);
                    }
                }
                Err(e) => out.push(Err(ManifestError::Syntax {
                    index,
                    message: e.to_string(),
                })),
            }
        }
        out
    }

    fn from_value(index: usize, value: Value) -> Option<Result<Manifest, ManifestError>> {
        let text = |key: &str| {
            value
                .get(key)
                .and_then(Value::as_str)
                .unwrap_or_default()
                .to_owned()
        };
        let (api_version, kind) = (text("apiVersion"), text("kind"));
        if api_version.split('/').next() != Some(GROUP) {
            return None;
        }
        let name = value
            .pointer("/metadata/name")
            .and_then(Value::as_str)
            .unwrap_or("?")
            .to_owned();
        let fields = |e: serde_json::Error| ManifestError::Fields {
            index,
            kind: kind.clone(),
            name: name.clone(),
            message: e.to_string(),
        };
        let parsed = match (api_version.as_str(), kind.as_str()) {
            ("tributary.dev/v1alpha1", "KafkaCluster") => {
                serde_json::from_value(value).map(Manifest::KafkaCluster)
            }
            ("tributary.dev/v1alpha1", "Topic") => {
                serde_json::from_value(value).map(Manifest::Topic)
            }
            ("tributary.dev/v1alpha1", "Stream") => {
                serde_json::from_value(value).map(Manifest::Stream)
            }
            ("tributary.dev/v1alpha1", "Sink") => serde_json::from_value(value).map(Manifest::Sink),
            ("tributary.dev/v1alpha1", "BatchJob") => {
                serde_json::from_value(value).map(Manifest::BatchJob)
            }
            _ => {
                return Some(Err(ManifestError::UnknownKind {
                    index,
                    api_version,
                    kind,
                }));
            }
        };
        Some(parsed.map_err(fields))
    }

    /// The kind's name, e.g. `Topic`.
    pub fn kind(&self) -> &'static str {
        match self {
            Manifest::KafkaCluster(_) => "KafkaCluster",
            Manifest::Topic(_) => "Topic",
            Manifest::Stream(_) => "Stream",
            Manifest::Sink(_) => "Sink",
            Manifest::BatchJob(_) => "BatchJob",
        }
    }

    /// `metadata.name`.
    pub fn name(&self) -> Option<&str> {
        let metadata = match self {
            Manifest::KafkaCluster(o) => &o.metadata,
            Manifest::Topic(o) => &o.metadata,
            Manifest::Stream(o) => &o.metadata,
            Manifest::Sink(o) => &o.metadata,
            Manifest::BatchJob(o) => &o.metadata,
        };
        metadata.name.as_deref()
    }

    /// Validate the object as a create (no earlier version).
    pub fn validate(&self) -> Result<(), Invalid> {
        match self {
            Manifest::KafkaCluster(o) => o.validate(None),
            Manifest::Topic(o) => o.validate(None),
            Manifest::Stream(o) => o.validate(None),
            Manifest::Sink(o) => o.validate(None),
            Manifest::BatchJob(o) => o.validate(None),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_tributary_objects_and_skips_others() {
        let text = "apiVersion: v1\nkind: Secret\nmetadata: {name: s}\n---\n---\n\
                    apiVersion: tributary.dev/v1alpha1\nkind: Topic\nmetadata: {name: pin}\n\
                    spec: {clusterRef: {name: local}}\n";
        let manifests = Manifest::from_yaml(text);
        assert_eq!(manifests.len(), 1);
        let topic = manifests.into_iter().next().unwrap().unwrap();
        assert_eq!((topic.kind(), topic.name()), ("Topic", Some("pin")));
        assert!(topic.validate().is_ok());
    }

    #[test]
    fn unknown_kinds_and_bad_fields_say_what_is_wrong() {
        let text = "apiVersion: tributary.dev/v1alpha1\nkind: Table\nmetadata: {name: t}\n---\n\
                    apiVersion: tributary.dev/v1alpha1\nkind: Topic\nmetadata: {name: pin}\n\
                    spec: {clusterRef: {name: local}, partitions: three}\n";
        let errors: Vec<String> = Manifest::from_yaml(text)
            .into_iter()
            .map(|r| r.unwrap_err().to_string())
            .collect();
        assert!(
            errors[0].contains("document 1: unknown Tributary kind \"Table\""),
            "{}",
            errors[0]
        );
        assert!(
            errors[1].starts_with("document 2 (Topic pin): invalid type: string \"three\""),
            "{}",
            errors[1]
        );
    }
}
