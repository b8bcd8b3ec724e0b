//! `mdmhub connectors list|check`.

use std::path::PathBuf;

use anyhow::Context as _;
use clap::Subcommand;
use serde_json::json;

use super::{Env, describe};
use crate::runtime::{Connector, Source};

/// Connector subcommands.
#[derive(Debug, Subcommand)]
pub enum ConnectorsCommand {
    /// List loaded connectors and rejected files.
    List {
        /// Print JSON instead of text.
        #[arg(long)]
        json: bool,
    },
    /// Load one component file and report whether mdmhub accepts it.
    Check {
        /// The `.wasm` component.
        file: PathBuf,
        /// Print JSON instead of text.
        #[arg(long)]
        json: bool,
    },
}

impl ConnectorsCommand {
    /// Runs the subcommand.
    pub async fn run(self, env: &Env) -> anyhow::Result<()> {
        match self {
            ConnectorsCommand::List { json } => {
                let registry = env.registry().await;
                if json {
                    let out = json!({
                        "connectors": registry.connectors.values().map(|c| summary(c)).collect::<Vec<_>>(),
                        "rejected": registry.rejected,
                    });
                    println!("{}", serde_json::to_string_pretty(&out)?);
                    return Ok(());
                }
                if registry.connectors.is_empty() {
                    println!(
                        "No connectors loaded (connectors directory: {}).",
                        env.connectors_dir.display()
                    );
                }
                for c in registry.connectors.values() {
                    print_text(c);
                }
                for r in &registry.rejected {
                    println!("rejected {}: {}", r.source, r.reason);
                }
                Ok(())
            }
            ConnectorsCommand::Check { file, json } => {
                let bytes =
                    std::fs::read(&file).with_context(|| format!("reading {}", file.display()))?;
                let c = env
                    .runtime
                    .load(Source::File(file.clone()), &bytes)
                    .await
                    .map_err(|reason| {
                        anyhow::anyhow!("{} is rejected: {reason}", file.display())
                    })?;
                if json {
                    println!("{}", serde_json::to_string_pretty(&summary(&c))?);
                } else {
                    print_text(&c);
                    println!("OK: {} is a valid mdmhub connector.", file.display());
                }
                Ok(())
            }
        }
    }
}

fn summary(c: &Connector) -> serde_json::Value {
    let i = &c.info;
    json!({
        "id": i.id,
        "name": i.name,
        "version": i.version,
        "source": c.source.to_string(),
        "sha256": c.sha256,
        "origins": i.origins,
        "auth": i.auth,
        "rate_policy": i.rate_policy,
        "resources": i.resources,
        "actions": i.actions.iter().map(|a| describe::action_name(&a.kind)).collect::<Vec<_>>(),
        "config": i.config,
    })
}

fn print_text(c: &Connector) {
    let i = &c.info;
    println!("{} {} — {} ({})", i.id, i.version, i.name, c.source);
    println!("  origins:   {}", i.origins.join(", "));
    println!("  auth:      {}", describe::auth(&i.auth));
    println!("  rate:      {}", describe::rate(&i.rate_policy));
    println!("  resources: {}", describe::resources(&i.resources));
    println!("  actions:   {}", describe::actions(&i.actions));
}
