//! `tributary`: the one binary. Each subcommand wires one of the libraries.

use std::io::Write;

use clap::{Parser, Subcommand};

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
        dir: Option<std::path::PathBuf>,
    },
}

fn main() -> anyhow::Result<()> {
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
    }
    Ok(())
}
