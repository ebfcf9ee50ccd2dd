//! The CRD YAML checked in under `crds/yaml/` must be what the Rust types generate.

use std::path::Path;

#[test]
fn checked_in_crds_match_the_rust_types() {
    let dir = Path::new(&manifest_dir()).join("yaml");
    let files = tributary_crds::crd_files();
    assert_eq!(files.len(), 5, "five kinds");
    let mut stale = Vec::new();
    for (file, generated) in &files {
        let checked_in = std::fs::read_to_string(dir.join(file)).unwrap_or_default();
        if &checked_in != generated {
            stale.push(file.as_str());
        }
    }
    let extra: Vec<String> = std::fs::read_dir(&dir)
        .expect("crds/yaml exists")
        .map(|e| {
            e.expect("readable entry")
                .file_name()
                .to_string_lossy()
                .into_owned()
        })
        .filter(|name| !files.iter().any(|(f, _)| f == name))
        .collect();
    assert!(
        stale.is_empty() && extra.is_empty(),
        "crds/yaml is out of date (stale: {stale:?}, unexpected: {extra:?}); \
         regenerate it with `cargo run -p tributary -- crds --dir crds/yaml`"
    );
}

#[test]
fn every_crd_has_short_name_status_and_printer_columns() {
    let short: Vec<String> = tributary_crds::crds()
        .iter()
        .flat_map(|crd| crd.spec.names.short_names.clone().unwrap_or_default())
        .collect();
    assert_eq!(short, ["kc", "tt", "ks", "sk", "bj"]);
    for crd in tributary_crds::crds() {
        let version = &crd.spec.versions[0];
        assert_eq!(crd.spec.group, tributary_crds::GROUP);
        assert_eq!(version.name, "v1alpha1");
        assert!(
            version
                .subresources
                .as_ref()
                .and_then(|s| s.status.as_ref())
                .is_some()
        );
        let columns = version
            .additional_printer_columns
            .clone()
            .unwrap_or_default();
        assert!(
            columns.iter().any(|c| c.name == "Ready"),
            "{} has a Ready column",
            crd.spec.names.kind
        );
        assert!(
            columns.iter().any(|c| c.name == "Age"),
            "{} has an Age column",
            crd.spec.names.kind
        );
    }
}

/// Every field of every spec and status carries a description: the CRD is the user's
/// documentation (`kubectl explain`).
#[test]
fn every_field_is_documented() {
    fn walk(schema: &serde_json::Value, path: &str, seen: &mut usize, missing: &mut Vec<String>) {
        if let Some(properties) = schema.get("properties").and_then(|p| p.as_object()) {
            for (name, property) in properties {
                *seen += 1;
                let here = format!("{path}.{name}");
                let described = property
                    .get("description")
                    .and_then(|d| d.as_str())
                    .is_some_and(|d| !d.is_empty());
                if !described {
                    missing.push(here.clone());
                }
                walk(property, &here, seen, missing);
            }
        }
        for key in ["items", "additionalProperties"] {
            if let Some(inner) = schema.get(key).filter(|s| s.is_object()) {
                walk(inner, &format!("{path}[]"), seen, missing);
            }
        }
    }
    let (mut seen, mut missing) = (0, Vec::new());
    for crd in tributary_crds::crds() {
        let schema = crd.spec.versions[0]
            .schema
            .as_ref()
            .and_then(|s| s.open_api_v3_schema.as_ref())
            .expect("schema");
        let schema = serde_json::to_value(schema).expect("serializes");
        for part in ["spec", "status"] {
            walk(
                &schema["properties"][part],
                &format!("{}.{part}", crd.spec.names.kind),
                &mut seen,
                &mut missing,
            );
        }
    }
    assert!(
        seen > 150,
        "the walk reaches the nested fields (saw {seen})"
    );
    assert!(
        missing.is_empty(),
        "fields without a doc comment: {missing:#?}"
    );
}

/// This package's directory, read when the test runs (cargo sets `CARGO_MANIFEST_DIR` for it):
/// the shared target directory may hold a test binary built from another checkout of the same
/// sources, whose compile-time path need not exist here.
fn manifest_dir() -> String {
    std::env::var("CARGO_MANIFEST_DIR").unwrap_or_else(|_| env!("CARGO_MANIFEST_DIR").to_owned())
}
