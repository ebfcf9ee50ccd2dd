//! Validation in Rust of everything the CRD schema and its CEL rules enforce, for API servers
//! that ignore CEL (before Kubernetes 1.25) and for local mode, where no API server runs.
//!
//! The checks are not a second copy of the rules: the OpenAPI constraints (required, minimum,
//! pattern, enum, ...) are read from the generated CRD schema, and the CEL rules are evaluated
//! client-side by kube's CEL evaluator. Each kind adds the few checks neither can express.

use std::fmt;

use kube::CustomResourceExt;
use serde::Serialize;
use serde_json::Value;

/// One problem with an object: where, and what to do about it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct FieldError {
    /// Path of the field, e.g. `spec.partitions` or `spec.steps[1].name`.
    pub path: String,
    /// What is wrong and how to fix it.
    pub message: String,
}

impl fmt::Display for FieldError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}: {}", self.path, self.message)
    }
}

/// All problems found with an object.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub struct Invalid(pub Vec<FieldError>);

impl fmt::Display for Invalid {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let lines: Vec<String> = self.0.iter().map(ToString::to_string).collect();
        f.write_str(&lines.join("; "))
    }
}

/// Validation of a Tributary object, optionally against the version it replaces (for the
/// rules about immutable fields and values that may only grow).
pub trait Validate: CustomResourceExt + Serialize + Sized {
    /// Checks that neither the schema nor CEL can express.
    fn extra_checks(&self) -> Vec<FieldError> {
        Vec::new()
    }

    /// Every check the API server would make with CEL enabled, plus [`Validate::extra_checks`].
    fn validate(&self, old: Option<&Self>) -> Result<(), Invalid> {
        let crd = Self::crd();
        let schema = crd.spec.versions[0]
            .schema
            .as_ref()
            .and_then(|s| s.open_api_v3_schema.as_ref())
            .map(|s| serde_json::to_value(s).expect("a CRD schema serializes"))
            .expect("derived CRDs have a schema");
        let object = serde_json::to_value(self).expect("a resource serializes");
        let old = old.map(|o| serde_json::to_value(o).expect("a resource serializes"));

        let mut errors = Vec::new();
        check_schema(&schema, &object, "", &mut errors);
        // CEL rules may assume the schema holds (e.g. `size(self.subnets)`), so they only run
        // on objects that pass it, as in the API server.
        if errors.is_empty() {
            if let Err(cel) =
                kube::core::cel::Validator::new().validate(&schema, &object, old.as_ref())
            {
                errors.extend(cel.into_vec().into_iter().map(|e| FieldError {
                    path: e.field_path,
                    message: e.message,
                }));
            }
            errors.extend(self.extra_checks());
        }
        if errors.is_empty() {
            Ok(())
        } else {
            Err(Invalid(errors))
        }
    }
}

fn join(path: &str, key: &str) -> String {
    if path.is_empty() {
        key.to_owned()
    } else {
        format!("{path}.{key}")
    }
}

fn shown(value: &Value) -> String {
    let text = value.to_string();
    if text.chars().count() > 80 {
        format!("{}…", text.chars().take(80).collect::<String>())
    } else {
        text
    }
}

/// Check `value` against the OpenAPI v3 constraints of a structural CRD schema.
fn check_schema(schema: &Value, value: &Value, path: &str, errors: &mut Vec<FieldError>) {
    let mut fail = |message: String| {
        errors.push(FieldError {
            path: path.to_owned(),
            message,
        })
    };
    if value.is_null() {
        if schema.get("nullable") != Some(&Value::Bool(true)) && !path.is_empty() {
            fail("must not be null".into());
        }
        return;
    }
    if let Some(allowed) = schema.get("enum").and_then(Value::as_array)
        && !allowed.contains(value)
    {
        let list: Vec<String> = allowed.iter().map(shown).collect();
        fail(format!(
            "must be one of {} (got {})",
            list.join(", "),
            shown(value)
        ));
    }
    let number = |key: &str| schema.get(key).and_then(Value::as_f64);
    let count = |key: &str| schema.get(key).and_then(Value::as_u64);
    let expected = schema.get("type").and_then(Value::as_str);
    let int_or_string = schema.get("x-kubernetes-int-or-string") == Some(&Value::Bool(true));
    let type_ok = match expected {
        _ if int_or_string => value.is_i64() || value.is_u64() || value.is_string(),
        Some("object") => value.is_object(),
        Some("array") => value.is_array(),
        Some("string") => value.is_string(),
        Some("integer") => value.is_i64() || value.is_u64(),
        Some("number") => value.is_number(),
        Some("boolean") => value.is_boolean(),
        _ => true,
    };
    if !type_ok {
        fail(format!(
            "must be of type {} (got {})",
            expected.unwrap_or("?"),
            shown(value)
        ));
        return;
    }
    match value {
        Value::Number(n) => {
            let x = n.as_f64().unwrap_or_default();
            if let Some(min) = number("minimum")
                && x < min
            {
                fail(format!("must be at least {min} (got {n})"));
            }
            if let Some(max) = number("maximum")
                && x > max
            {
                fail(format!("must be at most {max} (got {n})"));
            }
        }
        Value::String(s) => {
            let len = s.chars().count() as u64;
            if let Some(min) = count("minLength")
                && len < min
            {
                fail(if min == 1 {
                    "must not be empty".into()
                } else {
                    format!("must be at least {min} characters long (got {len})")
                });
            }
            if let Some(max) = count("maxLength")
                && len > max
            {
                fail(format!("must be at most {max} characters long (got {len})"));
            }
            if let Some(pattern) = schema.get("pattern").and_then(Value::as_str) {
                let re =
                    regex::Regex::new(pattern).expect("CRD patterns are valid regular expressions");
                if !re.is_match(s) {
                    fail(format!("must match {pattern} (got {})", shown(value)));
                }
            }
        }
        Value::Array(items) => {
            let len = items.len() as u64;
            if let Some(min) = count("minItems")
                && len < min
            {
                fail(format!("must have at least {min} item(s) (got {len})"));
            }
            if let Some(max) = count("maxItems")
                && len > max
            {
                fail(format!("must have at most {max} item(s) (got {len})"));
            }
            if let Some(item_schema) = schema.get("items") {
                for (i, item) in items.iter().enumerate() {
                    check_schema(item_schema, item, &format!("{path}[{i}]"), errors);
                }
            }
        }
        Value::Object(map) => {
            if let Some(required) = schema.get("required").and_then(Value::as_array) {
                for key in required.iter().filter_map(Value::as_str) {
                    if !map.contains_key(key) {
                        errors.push(FieldError {
                            path: join(path, key),
                            message: "is required".into(),
                        });
                    }
                }
            }
            if let Some(max) = count("maxProperties")
                && map.len() as u64 > max
            {
                errors.push(FieldError {
                    path: path.to_owned(),
                    message: format!("must have at most {max} entries (got {})", map.len()),
                });
            }
            let properties = schema.get("properties").and_then(Value::as_object);
            let additional = schema.get("additionalProperties").filter(|a| a.is_object());
            for (key, item) in map {
                let item_path = join(path, key);
                match (properties.and_then(|p| p.get(key)), additional) {
                    (Some(s), _) | (None, Some(s)) => check_schema(s, item, &item_path, errors),
                    (None, None) => {}
                }
            }
        }
        _ => {}
    }
}
