//! Schema pieces that derive cannot express.

use schemars::{Schema, SchemaGenerator, json_schema};

/// A map whose values are strings, numbers or booleans (Kafka topic configs). A structural
/// schema cannot say "one of these scalar types", so the values are left open here and checked
/// by the Rust validation.
pub fn scalar_map(_: &mut SchemaGenerator) -> Schema {
    json_schema!({
        "type": "object",
        "additionalProperties": { "x-kubernetes-preserve-unknown-fields": true }
    })
}
