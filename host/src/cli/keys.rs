//! `mdmhub keys`: API keys for the HTTP API. A key is printed once, when it
//! is made; only its hash is stored.

use std::io::Write;

use anyhow::Context as _;
use clap::Subcommand;

use super::{Env, table};
use crate::store::accounts::DEFAULT_WORKSPACE;

/// `mdmhub keys` subcommands.
#[derive(Debug, Subcommand)]
pub enum KeysCommand {
    /// Make a key for a workspace (created if missing) and print it once.
    Create {
        /// The workspace the key reads.
        #[arg(long, default_value = DEFAULT_WORKSPACE)]
        workspace: String,
        /// A name for the key, unique among the workspace's live keys.
        #[arg(long)]
        name: String,
    },
    /// List keys (never the keys themselves).
    List {
        /// Only this workspace's keys.
        #[arg(long)]
        workspace: Option<String>,
        /// Print JSON.
        #[arg(long)]
        json: bool,
    },
    /// Revoke a key: requests with it are refused at once.
    Revoke {
        /// The key's name.
        name: String,
        /// Its workspace.
        #[arg(long, default_value = DEFAULT_WORKSPACE)]
        workspace: String,
    },
}

impl KeysCommand {
    /// Runs the subcommand.
    pub async fn run(self, env: &Env, out: &mut (dyn Write + Send)) -> anyhow::Result<()> {
        let store = env.store().await?;
        match self {
            KeysCommand::Create { workspace, name } => {
                let (_, key) = store
                    .create_key(&workspace, &name)
                    .await
                    .with_context(|| format!("creating key `{name}` in workspace `{workspace}`"))?;
                // The key alone on stdout, so `KEY=$(mdmhub keys create ...)` works.
                writeln!(out, "{key}")?;
                eprintln!(
                    "Key `{name}` for workspace `{workspace}`: shown only now; send it as `Authorization: Bearer KEY`."
                );
            }
            KeysCommand::List { workspace, json } => {
                let keys = store
                    .api_keys(workspace.as_deref())
                    .await
                    .context("listing keys")?;
                if json {
                    writeln!(out, "{}", serde_json::to_string_pretty(&keys)?)?;
                } else if keys.is_empty() {
                    writeln!(out, "No API keys yet: make one with `mdmhub keys create`.")?;
                } else {
                    let rows: Vec<Vec<String>> = keys
                        .iter()
                        .map(|k| {
                            vec![
                                k.workspace.clone(),
                                k.name.clone(),
                                format!("{}…", k.prefix),
                                k.created_at.clone(),
                                table::cell(k.last_used_at.as_deref()),
                                match &k.revoked_at {
                                    Some(at) => format!("revoked {at}"),
                                    None => "live".into(),
                                },
                            ]
                        })
                        .collect();
                    table::write(
                        out,
                        &["WORKSPACE", "NAME", "KEY", "CREATED", "LAST USED", "STATUS"],
                        &rows,
                    )?;
                }
            }
            KeysCommand::Revoke { name, workspace } => {
                store
                    .revoke_key(&workspace, &name)
                    .await
                    .with_context(|| format!("revoking key `{name}`"))?;
                writeln!(out, "Revoked key `{name}` of workspace `{workspace}`.")?;
            }
        }
        Ok(())
    }
}
