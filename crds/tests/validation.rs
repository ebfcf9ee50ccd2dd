//! The validation of every kind, driven by YAML fixtures under `tests/fixtures/<kind>/`.
//!
//! - `valid-*.yaml`: one document (a create) or two (the old object, then the update), which
//!   must validate.
//! - `invalid-*.yaml`: the same shapes, with a first line `# expect: <text>` that the error
//!   message must contain. One fixture per rule.
//!
//! Every CEL rule in the generated CRDs must be broken by some invalid fixture (its message shows
//! up in that fixture's error), so a rule added without a fixture fails this test.

use std::path::{Path, PathBuf};

use serde::de::DeserializeOwned;
use tributary_crds::{BatchJob, KafkaCluster, Sink, Stream, Topic, Validate};

fn fixtures(kind: &str) -> Vec<PathBuf> {
    let dir = Path::new(&manifest_dir()).join("tests/fixtures").join(kind);
    let mut files: Vec<PathBuf> = std::fs::read_dir(&dir)
        .unwrap_or_else(|e| panic!("{}: {e}", dir.display()))
        .map(|e| e.expect("readable entry").path())
        .filter(|p| p.extension().is_some_and(|e| e == "yaml"))
        .collect();
    files.sort();
    files
}

/// Parse a fixture (one or two documents) and validate the last one against the first.
fn check<K: Validate + DeserializeOwned>(text: &str) -> Result<(), String> {
    let mut docs = Vec::new();
    for doc in serde_yaml::Deserializer::from_str(text) {
        docs.push(K::deserialize(doc).map_err(|e| e.to_string())?);
    }
    match docs.as_slice() {
        [new] => new.validate(None).map_err(|e| e.to_string()),
        [old, new] => {
            old.validate(None)
                .map_err(|e| format!("the old object is itself invalid: {e}"))?;
            new.validate(Some(old)).map_err(|e| e.to_string())
        }
        _ => Err(format!(
            "a fixture holds one or two documents, not {}",
            docs.len()
        )),
    }
}

/// Run every fixture of a kind; return the errors the invalid ones produced.
fn run<K: Validate + DeserializeOwned>(kind: &str) -> Vec<String> {
    let mut errors = Vec::new();
    let mut failures = Vec::new();
    let files = fixtures(kind);
    assert!(
        files.iter().any(|f| name(f).starts_with("valid-")),
        "{kind}: no valid fixture"
    );
    for file in files {
        let text = std::fs::read_to_string(&file).expect("readable fixture");
        let result = check::<K>(&text);
        let file_name = name(&file);
        if file_name.starts_with("valid-") {
            if let Err(e) = result {
                failures.push(format!("{file_name}: expected valid, got: {e}"));
            }
        } else if file_name.starts_with("invalid-") {
            let expect = text
                .lines()
                .next()
                .and_then(|l| l.strip_prefix("# expect: "))
                .unwrap_or_else(|| panic!("{file_name}: first line must be `# expect: <text>`"))
                .to_owned();
            match result {
                Ok(()) => failures.push(format!(
                    "{file_name}: expected an error containing {expect:?}, got none"
                )),
                Err(e) if !e.contains(&expect) => failures.push(format!(
                    "{file_name}: expected an error containing {expect:?}, got: {e}"
                )),
                Err(e) => errors.push(e),
            }
        } else {
            panic!("{file_name}: fixture names start with valid- or invalid-");
        }
    }
    assert!(failures.is_empty(), "{kind}:\n{}", failures.join("\n"));
    errors
}

fn name(path: &Path) -> String {
    path.file_name()
        .expect("a file name")
        .to_string_lossy()
        .into_owned()
}

fn cel_messages(crd_yaml: &str) -> Vec<String> {
    let value: serde_json::Value = serde_yaml::from_str(crd_yaml).expect("CRD YAML parses");
    let mut messages = Vec::new();
    collect_messages(&value, &mut messages);
    messages
}

fn collect_messages(value: &serde_json::Value, out: &mut Vec<String>) {
    match value {
        serde_json::Value::Object(map) => {
            if let Some(rules) = map
                .get("x-kubernetes-validations")
                .and_then(|r| r.as_array())
            {
                out.extend(
                    rules
                        .iter()
                        .filter_map(|r| r["message"].as_str())
                        .map(str::to_owned),
                );
            }
            map.values().for_each(|v| collect_messages(v, out));
        }
        serde_json::Value::Array(items) => items.iter().for_each(|v| collect_messages(v, out)),
        _ => {}
    }
}

#[test]
fn fixtures_validate_as_expected_and_cover_every_cel_rule() {
    let mut errors = Vec::new();
    errors.extend(run::<KafkaCluster>("kafkacluster"));
    errors.extend(run::<Topic>("topic"));
    errors.extend(run::<Stream>("stream"));
    errors.extend(run::<Sink>("sink"));
    errors.extend(run::<BatchJob>("batchjob"));

    let uncovered: Vec<String> = tributary_crds::crd_files()
        .iter()
        .flat_map(|(_, yaml)| cel_messages(yaml))
        .filter(|m| !errors.iter().any(|e| e.contains(m.as_str())))
        .collect();
    assert!(
        uncovered.is_empty(),
        "CEL rules without an invalid fixture: {uncovered:#?}"
    );
}

/// This package's directory, read when the test runs (cargo sets `CARGO_MANIFEST_DIR` for it):
/// the shared target directory may hold a test binary built from another checkout of the same
/// sources, whose compile-time path need not exist here.
fn manifest_dir() -> String {
    std::env::var("CARGO_MANIFEST_DIR").unwrap_or_else(|_| env!("CARGO_MANIFEST_DIR").to_owned())
}
