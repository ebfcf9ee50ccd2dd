//! The `tributary` binary's offline commands, run as a user runs them.

use std::path::Path;
use std::process::Command;

fn tributary(args: &[&str]) -> (bool, String) {
    let output = Command::new(env!("CARGO_BIN_EXE_tributary"))
        .args(args)
        .current_dir(Path::new(env!("CARGO_MANIFEST_DIR")).join(".."))
        .output()
        .expect("the binary runs");
    (
        output.status.success(),
        String::from_utf8_lossy(&output.stdout).into_owned(),
    )
}

#[test]
fn crds_prints_the_five_checked_in_crds() {
    let (ok, stdout) = tributary(&["crds"]);
    assert!(ok);
    let kinds: Vec<&str> = stdout
        .lines()
        .filter_map(|l| l.strip_prefix("    kind: "))
        .collect();
    assert_eq!(
        kinds,
        ["KafkaCluster", "Topic", "Stream", "Sink", "BatchJob"]
    );
    for file in ["kafkaclusters", "topics", "streams", "sinks", "batchjobs"] {
        let checked_in = std::fs::read_to_string(format!(
            "{}/../crds/yaml/{file}.yaml",
            env!("CARGO_MANIFEST_DIR")
        ))
        .expect("checked-in CRD");
        assert!(
            stdout.contains(&checked_in),
            "{file}.yaml is part of the output"
        );
    }
}

#[test]
fn validate_accepts_valid_manifests_and_names_the_problem_in_invalid_ones() {
    let (ok, stdout) = tributary(&[
        "validate",
        "crds/tests/fixtures/stream/valid-provisioned.yaml",
    ]);
    assert!(ok, "{stdout}");
    assert!(stdout.contains("ok       Stream pin"), "{stdout}");

    let (ok, stdout) = tributary(&[
        "validate",
        "crds/tests/fixtures/stream/invalid-retention-low.yaml",
    ]);
    assert!(!ok, "an invalid manifest fails the command");
    assert!(
        stdout.contains("Stream pin: spec.retentionHours: must be at least 24 (got 12)"),
        "{stdout}"
    );
    assert!(stdout.ends_with("0 valid, 1 invalid\n"), "{stdout}");

    let (ok, _) = tributary(&["validate", "no/such/file.yaml"]);
    assert!(!ok, "a missing file is an error");
}
