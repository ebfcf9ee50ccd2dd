//! The `tributary` binary's offline commands, run as a user runs them.

use std::path::Path;
use std::process::Command;

fn tributary(args: &[&str]) -> (bool, String) {
    let output = Command::new(env!("CARGO_BIN_EXE_tributary"))
        .args(args)
        .current_dir(Path::new(&manifest_dir()).join(".."))
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
        let checked_in =
            std::fs::read_to_string(format!("{}/../crds/yaml/{file}.yaml", manifest_dir()))
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

/// The Pinterest fixture is the emulator's output: regenerating it with the command its docs
/// give reproduces the checked-in files byte for byte. Bad flags are refused.
#[test]
fn emulate_reproduces_the_checked_in_fixture_and_refuses_bad_rates() {
    let out = std::env::temp_dir().join(format!("tributary-emulate-{}", std::process::id()));
    let out_arg = out.to_str().expect("a UTF-8 path");
    let (ok, _) = tributary(&[
        "emulate",
        "--out",
        out_arg,
        "--count",
        "400",
        "--seed",
        "26",
        "--dirty-rate",
        "0.15",
        "--duplicate-rate",
        "0.05",
        "--records-per-file",
        "400",
    ]);
    assert!(ok, "emulate runs");
    let fixture = Path::new(&manifest_dir()).join("../examples/pinterest/fixture/raw");
    for table in ["pin", "geo", "user"] {
        let made = std::fs::read(out.join(table).join("part-00000.json")).expect("written");
        let checked_in =
            std::fs::read(fixture.join(table).join("part-00000.json")).expect("checked in");
        assert!(
            made == checked_in,
            "{table}: the fixture differs from the emulator's output"
        );
    }
    std::fs::remove_dir_all(&out).ok();

    let output = Command::new(env!("CARGO_BIN_EXE_tributary"))
        .args(["emulate", "--out", out_arg, "--dirty-rate", "1.5"])
        .output()
        .expect("the binary runs");
    assert!(!output.status.success());
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(stderr.contains("must be between 0 and 1"), "{stderr}");
    assert!(!out.exists(), "nothing is written on a bad flag");

    for (args, message) in [
        (vec!["emulate"], "--out <DIR>"),
        (
            vec![
                "emulate",
                "--gateway",
                "http://127.0.0.1:9",
                "--topics",
                "a,b",
            ],
            "give three names, for pin, geo and user",
        ),
        (
            vec!["emulate", "--gateway", "http://127.0.0.1:9", "--rate", "0"],
            "must be above 0",
        ),
    ] {
        let output = Command::new(env!("CARGO_BIN_EXE_tributary"))
            .args(&args)
            .output()
            .expect("the binary runs");
        assert!(!output.status.success(), "{args:?}");
        let stderr = String::from_utf8_lossy(&output.stderr);
        assert!(stderr.contains(message), "{args:?}: {stderr}");
    }
}

/// This package's directory, read when the test runs (cargo sets `CARGO_MANIFEST_DIR` for it):
/// the shared target directory may hold a test binary built from another checkout of the same
/// sources, whose compile-time path need not exist here.
fn manifest_dir() -> String {
    std::env::var("CARGO_MANIFEST_DIR").unwrap_or_else(|_| env!("CARGO_MANIFEST_DIR").to_owned())
}
