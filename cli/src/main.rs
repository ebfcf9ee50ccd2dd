//! `tributary`: the one binary. Each subcommand wires one of the libraries.

use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::ExitCode;

use anyhow::Context;
use clap::{Parser, Subcommand};
use tributary_crds::Manifest;

#[derive(Parser)]
#[command(
    name = "tributary",
    version,
    about = "Declarative streaming and batch data pipelines on Kubernetes"
)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Print the five CustomResourceDefinitions as YAML, or write one file per kind.
    Crds {
        /// Write `<plural>.yaml` files into this directory (how `crds/yaml/` is regenerated).
        #[arg(long)]
        dir: Option<PathBuf>,
    },
    /// Check manifests as the API server would (schema and CEL rules), without a cluster.
    /// Objects of other API groups are skipped. Exits non-zero if any object is invalid.
    Validate {
        /// YAML files, or directories searched for `*.yaml` / `*.yml`.
        #[arg(required = true)]
        paths: Vec<PathBuf>,
    },
}

fn main() -> anyhow::Result<ExitCode> {
    match Cli::parse().command {
        Command::Crds { dir: None } => {
            std::io::stdout().write_all(tributary_crds::crds_yaml().as_bytes())?;
        }
        Command::Crds { dir: Some(dir) } => {
            std::fs::create_dir_all(&dir)?;
            for (file, yaml) in tributary_crds::crd_files() {
                std::fs::write(dir.join(&file), yaml)?;
            }
        }
        Command::Validate { paths } => return validate(&paths),
    }
    Ok(ExitCode::SUCCESS)
}

fn validate(paths: &[PathBuf]) -> anyhow::Result<ExitCode> {
    let mut files = Vec::new();
    for path in paths {
        collect_yaml(path, &mut files)?;
    }
    let (mut valid, mut invalid) = (0, 0);
    for file in &files {
        let text =
            std::fs::read_to_string(file).with_context(|| format!("reading {}", file.display()))?;
        for manifest in Manifest::from_yaml(&text) {
            let outcome = manifest.map_err(|e| e.to_string()).and_then(|m| {
                let label = format!("{} {}", m.kind(), m.name().unwrap_or("?"));
                m.validate()
                    .map(|()| label.clone())
                    .map_err(|e| format!("{label}: {e}"))
            });
            match outcome {
                Ok(label) => {
                    valid += 1;
                    println!("ok       {label} ({})", file.display());
                }
                Err(message) => {
                    invalid += 1;
                    println!("invalid  {}: {message}", file.display());
                }
            }
        }
    }
    println!("{valid} valid, {invalid} invalid");
    Ok(if invalid == 0 {
        ExitCode::SUCCESS
    } else {
        ExitCode::FAILURE
    })
}

fn collect_yaml(path: &Path, out: &mut Vec<PathBuf>) -> anyhow::Result<()> {
    if path.is_dir() {
        let mut entries: Vec<PathBuf> = std::fs::read_dir(path)
            .with_context(|| format!("reading {}", path.display()))?
            .map(|e| e.map(|e| e.path()))
            .collect::<Result<_, _>>()?;
        entries.sort();
        for entry in entries {
            let is_yaml = entry.extension().is_some_and(|e| e == "yaml" || e == "yml");
            if entry.is_dir() || is_yaml {
                collect_yaml(&entry, out)?;
            }
        }
    } else if path.exists() {
        out.push(path.to_owned());
    } else {
        anyhow::bail!("{} does not exist", path.display());
    }
    Ok(())
}
