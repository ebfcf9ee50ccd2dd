//! `tributary crd-docs --dir DIR`: one Markdown reference page per kind, generated from the CRDs'
//! OpenAPI schemas — whose descriptions are the Rust doc comments of `crds/src/` — plus an index.
//! `docs/reference/` is this output, checked in and kept in sync by the test command.

use std::fmt::Write as _;
use std::path::Path;

use anyhow::Context;
use serde_json::Value;

/// The command that writes the pages, named in each page's header.
const REGENERATE: &str = "cargo run -p tributary -- crd-docs --dir docs/reference";

/// Write `<kind>.md` for every CRD and `README.md` listing them into `dir`.
pub fn write_reference(dir: &Path) -> anyhow::Result<()> {
    std::fs::create_dir_all(dir).with_context(|| format!("creating {}", dir.display()))?;
    let mut index = String::new();
    let _ = writeln!(index, "# API reference\n");
    let _ = writeln!(index, "{}\n", generated_note());
    let _ = writeln!(
        index,
        "| kind | short name | API version | what it is |\n|---|---|---|---|"
    );
    for crd in tributary_crds::crds() {
        let crd = serde_json::to_value(&crd).context("a CRD serializes to JSON")?;
        let page = KindPage::from_crd(&crd)?;
        let file = format!("{}.md", page.kind.to_lowercase());
        std::fs::write(dir.join(&file), page.render())
            .with_context(|| format!("writing {}", dir.join(&file).display()))?;
        let _ = writeln!(
            index,
            "| [`{}`]({file}) | `{}` | `{}` | {} |",
            page.kind,
            page.short_names.join("`, `"),
            page.api_version,
            cell(page.description)
        );
    }
    std::fs::write(dir.join("README.md"), index)
        .with_context(|| format!("writing {}", dir.join("README.md").display()))?;
    Ok(())
}

fn generated_note() -> String {
    format!(
        "Generated from the CRD schemas, whose descriptions are the doc comments of the Rust types \
         in `crds/src/`; do not edit by hand. Regenerate with `{REGENERATE}`."
    )
}

/// What one kind's page shows.
struct KindPage<'a> {
    kind: &'a str,
    plural: &'a str,
    api_version: String,
    short_names: Vec<&'a str>,
    description: &'a str,
    columns: Vec<(&'a str, &'a str)>,
    schema: &'a Value,
}

impl<'a> KindPage<'a> {
    fn from_crd(crd: &'a Value) -> anyhow::Result<Self> {
        let spec = &crd["spec"];
        let names = &spec["names"];
        let version = spec["versions"]
            .as_array()
            .and_then(|v| v.first())
            .context("a CRD has a version")?;
        let schema = &version["schema"]["openAPIV3Schema"];
        Ok(KindPage {
            kind: names["kind"].as_str().context("a CRD names its kind")?,
            plural: names["plural"].as_str().unwrap_or_default(),
            api_version: format!(
                "{}/{}",
                spec["group"].as_str().unwrap_or_default(),
                version["name"].as_str().unwrap_or_default()
            ),
            short_names: names["shortNames"]
                .as_array()
                .map(|s| s.iter().filter_map(Value::as_str).collect())
                .unwrap_or_default(),
            description: schema["description"].as_str().unwrap_or_default(),
            columns: version["additionalPrinterColumns"]
                .as_array()
                .map(|columns| {
                    columns
                        .iter()
                        .map(|c| {
                            (
                                c["name"].as_str().unwrap_or_default(),
                                c["jsonPath"].as_str().unwrap_or_default(),
                            )
                        })
                        .collect()
                })
                .unwrap_or_default(),
            schema,
        })
    }

    fn render(&self) -> String {
        let mut out = String::new();
        let _ = writeln!(out, "# {}\n", self.kind);
        let _ = writeln!(out, "{}\n", generated_note());
        let _ = writeln!(
            out,
            "`apiVersion: {}`, `kind: {}`, namespaced; `kubectl get {}` (short name `{}`).\n",
            self.api_version,
            self.kind,
            self.plural,
            self.short_names.join("`, `")
        );
        let _ = writeln!(out, "{}\n", self.description);
        if !self.columns.is_empty() {
            let _ = writeln!(
                out,
                "## Columns of `kubectl get {}`\n\n| column | from |\n|---|---|",
                self.plural
            );
            for (name, path) in &self.columns {
                let _ = writeln!(out, "| {name} | `{}` |", path.replace('|', "\\|"));
            }
            out.push('\n');
        }
        for part in ["spec", "status"] {
            let schema = &self.schema["properties"][part];
            if schema.is_null() {
                continue;
            }
            let _ = writeln!(out, "## `{part}`\n");
            if let Some(description) = schema["description"].as_str() {
                let _ = writeln!(out, "{description}\n");
            }
            let _ = writeln!(out, "| field | type | description |\n|---|---|---|");
            let mut rows = Vec::new();
            fields(part, schema, &mut rows);
            for row in rows {
                let _ = writeln!(
                    out,
                    "| `{}` | {} | {} |",
                    row.path,
                    row.kind,
                    cell(&row.description)
                );
            }
            out.push('\n');
        }
        out
    }
}

/// One row of a field table.
struct Row {
    path: String,
    kind: String,
    description: String,
}

/// Every field below `schema` (an object at `path`), depth first in the schema's order, which
/// is alphabetical: arrays of objects as `path[].field`, maps as `path.*`.
fn fields(path: &str, schema: &Value, rows: &mut Vec<Row>) {
    let required: Vec<&str> = schema["required"]
        .as_array()
        .map(|r| r.iter().filter_map(Value::as_str).collect())
        .unwrap_or_default();
    let Some(properties) = schema["properties"].as_object() else {
        return;
    };
    for (name, property) in properties {
        let field = format!("{path}.{name}");
        rows.push(Row {
            path: field.clone(),
            kind: type_of(property, required.contains(&name.as_str())),
            description: describe(property),
        });
        descend(&field, property, rows);
    }
}

/// The fields inside one property: an object's own, an array's items', a map's values'.
fn descend(path: &str, property: &Value, rows: &mut Vec<Row>) {
    if property["properties"].is_object() {
        fields(path, property, rows);
    } else if property["items"].is_object() {
        descend(&format!("{path}[]"), &property["items"], rows);
    } else if property["additionalProperties"]["properties"].is_object() {
        fields(
            &format!("{path}.*"),
            &property["additionalProperties"],
            rows,
        );
    }
}

/// `string`, `integer`, `[]object`, `map[string]string`, ..., with "**required**" when the
/// parent requires it.
fn type_of(property: &Value, required: bool) -> String {
    let mut kind = match property["type"].as_str() {
        Some("array") => format!("[]{}", bare_type(&property["items"])),
        Some("object") if property["additionalProperties"].is_object() => {
            format!(
                "map[string]{}",
                bare_type(&property["additionalProperties"])
            )
        }
        _ => bare_type(property),
    };
    if required {
        kind.push_str(", **required**");
    }
    kind
}

fn bare_type(schema: &Value) -> String {
    if schema["x-kubernetes-int-or-string"].as_bool() == Some(true) {
        return "int or string".into();
    }
    match schema["type"].as_str() {
        Some("array") => format!("[]{}", bare_type(&schema["items"])),
        Some(kind) => match schema["format"].as_str() {
            Some(format) => format!("{kind} ({format})"),
            None => kind.to_owned(),
        },
        None if schema["x-kubernetes-preserve-unknown-fields"].as_bool() == Some(true) => {
            "any".into()
        }
        None => "object".into(),
    }
}

/// The description followed by what the schema constrains: default, allowed values, bounds,
/// pattern and the CEL rules' messages.
fn describe(property: &Value) -> String {
    let mut text = property["description"]
        .as_str()
        .unwrap_or_default()
        .to_owned();
    let mut facts = Vec::new();
    if !property["default"].is_null() {
        facts.push(format!("Default: `{}`.", property["default"]));
    }
    if let Some(values) = property["enum"].as_array() {
        let values: Vec<String> = values.iter().map(|v| format!("`{}`", plain(v))).collect();
        facts.push(format!("One of {}.", values.join(", ")));
    }
    for (min, max, unit) in [
        ("minimum", "maximum", ""),
        ("minLength", "maxLength", " characters"),
        ("minItems", "maxItems", " items"),
        ("minProperties", "maxProperties", " entries"),
    ] {
        match (number(&property[min]), number(&property[max])) {
            (Some(low), Some(high)) => facts.push(format!("{low} to {high}{unit}.")),
            (Some(low), None) => facts.push(format!("At least {low}{unit}.")),
            (None, Some(high)) => facts.push(format!("At most {high}{unit}.")),
            (None, None) => {}
        }
    }
    if let Some(pattern) = property["pattern"].as_str() {
        facts.push(format!("Matches `{pattern}`."));
    }
    if let Some(rules) = property["x-kubernetes-validations"].as_array() {
        for rule in rules {
            if let Some(message) = rule["message"].as_str() {
                facts.push(format!("Rule: {message}."));
            }
        }
    }
    for fact in facts {
        if !text.is_empty() {
            text.push(' ');
        }
        text.push_str(&fact);
    }
    text
}

/// A bound as a reader writes it: `100000`, not the schema's `100000.0`.
fn number(value: &Value) -> Option<String> {
    let number = value.as_f64()?;
    Some(if number.fract() == 0.0 && number.abs() < 1e15 {
        format!("{}", number as i64)
    } else {
        number.to_string()
    })
}

/// A JSON value as a reader writes it: strings without quotes.
fn plain(value: &Value) -> String {
    match value {
        Value::String(s) => s.clone(),
        other => other.to_string(),
    }
}

/// Text fit for one Markdown table cell: one line, pipes escaped.
fn cell(text: &str) -> String {
    text.split('\n')
        .map(str::trim)
        .filter(|line| !line.is_empty())
        .collect::<Vec<_>>()
        .join(" ")
        .replace('|', "\\|")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_kind_gets_a_page_with_its_fields_and_rules() {
        let dir = std::env::temp_dir().join(format!("tributary-reference-{}", std::process::id()));
        write_reference(&dir).unwrap();
        let topic = std::fs::read_to_string(dir.join("topic.md")).unwrap();
        assert!(topic.starts_with("# Topic\n"), "{topic}");
        assert!(topic.contains("| `spec.clusterRef` | object, **required** |"));
        assert!(topic.contains("| `spec.clusterRef.name` | string, **required** |"));
        assert!(topic.contains("Rule: clusterRef cannot be changed"));
        assert!(topic.contains("One of `Retain`, `Delete`."));
        assert!(topic.contains("1 to 100000. Rule: partitions can only be increased"));
        assert!(topic.contains("1 to 253 characters."));
        assert!(topic.contains("| Partitions | `.spec.partitions` |"));
        let index = std::fs::read_to_string(dir.join("README.md")).unwrap();
        for kind in ["kafkacluster", "topic", "stream", "sink", "batchjob"] {
            assert!(dir.join(format!("{kind}.md")).exists(), "{kind}.md");
            assert!(index.contains(&format!("]({kind}.md)")), "{index}");
        }
        std::fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn table_cells_are_one_line_with_pipes_escaped() {
        assert_eq!(cell("a |b\n  c\n\nd"), "a \\|b c d");
    }

    #[test]
    fn arrays_and_maps_are_named_by_their_items() {
        let schema: Value = serde_json::json!({
            "properties": {
                "steps": {"type": "array", "items": {"type": "object", "required": ["sql"],
                    "properties": {"sql": {"type": "string", "description": "The query."}}}},
                "tags": {"type": "object", "additionalProperties": {"type": "string"}}
            }
        });
        let mut rows = Vec::new();
        fields("spec", &schema, &mut rows);
        let listed: Vec<(&str, &str)> = rows
            .iter()
            .map(|r| (r.path.as_str(), r.kind.as_str()))
            .collect();
        assert_eq!(
            listed,
            [
                ("spec.steps", "[]object"),
                ("spec.steps[].sql", "string, **required**"),
                ("spec.tags", "map[string]string"),
            ]
        );
    }
}
