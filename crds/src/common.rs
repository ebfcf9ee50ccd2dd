//! Types shared by several kinds.

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

/// What happens to the external resource (topic, stream, cluster, consumer position) when the
/// Kubernetes object is deleted.
#[derive(Serialize, Deserialize, Clone, Copy, Debug, Default, PartialEq, Eq, JsonSchema)]
pub enum DeletionPolicy {
    /// Keep the external resource and its data; only stop managing it. The default for
    /// everything that holds data: deleting a manifest never silently deletes data.
    #[default]
    Retain,
    /// Delete the external resource when the object is deleted.
    Delete,
}

/// A reference to another Tributary object by name, in the same namespace unless `namespace`
/// is given.
#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq, Eq, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct ObjectRef {
    /// Name of the referenced object.
    #[schemars(length(min = 1, max = 253))]
    pub name: String,
    /// Namespace of the referenced object; defaults to the referencing object's namespace.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(length(min = 1, max = 63))]
    pub namespace: Option<String>,
}

/// A key in a Kubernetes Secret in the object's namespace.
#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq, Eq, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct SecretKeyRef {
    /// Name of the Secret.
    #[schemars(length(min = 1, max = 253))]
    pub name: String,
    /// Key within the Secret.
    #[schemars(length(min = 1, max = 253))]
    pub key: String,
}

/// Tags (AWS resource tags) as key/value pairs.
pub type Tags = std::collections::BTreeMap<String, String>;

/// Formats of data files in the lake.
#[derive(Serialize, Deserialize, Clone, Copy, Debug, Default, PartialEq, Eq, JsonSchema)]
pub enum DataFormat {
    /// Newline-delimited JSON, one object per line.
    #[default]
    JsonLines,
    /// Apache Parquet.
    Parquet,
}

/// A column of a table schema given explicitly (instead of inferred from the data).
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq, Eq, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct FieldSchema {
    /// Column name, as the field is named in the JSON records.
    #[schemars(length(min = 1, max = 255))]
    pub name: String,
    /// Column type.
    #[serde(rename = "type")]
    pub data_type: FieldType,
    /// Whether the value may be missing or null.
    #[serde(default = "default_true")]
    pub nullable: bool,
}

/// Column types for explicit schemas.
#[derive(Serialize, Deserialize, Clone, Copy, Debug, PartialEq, Eq, JsonSchema)]
pub enum FieldType {
    /// UTF-8 text.
    String,
    /// 64-bit signed integer.
    Int64,
    /// 64-bit floating point.
    Float64,
    /// true or false.
    Boolean,
    /// Timestamp with microsecond precision, UTC.
    Timestamp,
    /// Calendar date.
    Date,
}

pub(crate) fn default_true() -> bool {
    true
}
