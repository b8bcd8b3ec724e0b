//! `mdmhub call`: live calls to a vendor through a connector, without
//! storage. For trying an account, debugging a connector, and scripts.

use std::io::Write;

use anyhow::{Context as _, anyhow};
use clap::{Args, Subcommand};
use serde_json::Value;

use super::Env;
use super::inputs::AccountArgs;
use crate::contract::*;
use crate::model;
use crate::pager::Pager;

/// `mdmhub call` options.
#[derive(Debug, Args)]
pub struct CallArgs {
    /// The connector id (see `mdmhub connectors list`).
    #[arg(long)]
    pub connector: String,
    #[command(flatten)]
    pub account: AccountArgs,
    /// What to call.
    #[command(subcommand)]
    pub op: CallOp,
}

/// The operations.
#[derive(Debug, Subcommand)]
pub enum CallOp {
    /// Run the connector's `check()`: do the credentials and config work?
    Check,
    /// List one page, or every page with `--all`.
    List {
        /// devices, users, apps or organizations.
        kind: ResourceKind,
        /// Follow every page.
        #[arg(long)]
        all: bool,
        /// Start from this cursor.
        #[arg(long)]
        cursor: Option<String>,
        /// Page-size hint.
        #[arg(long)]
        page_size: Option<u32>,
        /// Parent device id (for per-device resources such as apps).
        #[arg(long)]
        device: Option<String>,
        /// Print a JSON array of normalized records.
        #[arg(long)]
        json: bool,
    },
    /// Read one record with its details.
    Get {
        /// devices, users, apps or organizations.
        kind: ResourceKind,
        /// The vendor's id.
        id: String,
        /// Print JSON.
        #[arg(long)]
        json: bool,
    },
    /// Run an action on a device: lock, erase, restart, shutdown,
    /// unlock-account, retire, refresh-inventory, or vendor:NAME.
    Action {
        /// The vendor's device id.
        device_id: String,
        /// The action.
        action: String,
        /// Parameters as a JSON object.
        #[arg(long, default_value = "{}")]
        params: String,
        /// Print JSON.
        #[arg(long)]
        json: bool,
    },
}

impl CallArgs {
    /// Runs the call, writing results to `out`.
    pub async fn run(self, env: &Env, out: &mut dyn Write) -> anyhow::Result<()> {
        let registry = env.registry().await;
        let connector = registry.get(&self.connector).cloned().ok_or_else(|| {
            let known: Vec<_> = registry.connectors.keys().cloned().collect();
            anyhow!(
                "no connector `{}` (loaded: {})",
                self.connector,
                known.join(", ")
            )
        })?;
        let spec = self.account.spec("cli")?;
        let session = env.runtime.session(&connector, spec)?;
        match self.op {
            CallOp::Check => {
                connector.check(&session).await?;
                writeln!(out, "OK: the account works.")?;
            }
            CallOp::List {
                kind,
                all,
                cursor,
                page_size,
                device,
                json,
            } => {
                let options = ListOptions {
                    page_size,
                    parent_id: device,
                };
                let mut pager = Pager::new(connector, session, kind, options, cursor);
                let mut records = Vec::new();
                let mut errors = Vec::new();
                let mut next = None;
                while let Some(page) = pager.next().await? {
                    records.extend(page.records);
                    errors.extend(page.errors);
                    next = page.next_cursor;
                    if !all {
                        break;
                    }
                }
                if json {
                    let array: Vec<Value> = records.iter().map(model::entity_json).collect();
                    writeln!(out, "{}", serde_json::to_string_pretty(&array)?)?;
                } else {
                    for r in &records {
                        writeln!(out, "{}", line(r))?;
                    }
                    writeln!(out, "{} {}", records.len(), kind.name())?;
                    if let Some(c) = next.filter(|_| !all) {
                        writeln!(out, "more: --cursor '{c}' (or --all)")?;
                    }
                }
                for e in &errors {
                    eprintln!(
                        "warning: record {} not mapped: {}",
                        e.remote_id.as_deref().unwrap_or("(no id)"),
                        e.message
                    );
                }
            }
            CallOp::Get { kind, id, json } => {
                let e = connector.get(&session, kind, &id).await?;
                let v = model::entity_json(&e);
                if json {
                    writeln!(out, "{}", serde_json::to_string_pretty(&v)?)?;
                } else {
                    write_fields(out, &v)?;
                }
            }
            CallOp::Action {
                device_id,
                action,
                params,
                json,
            } => {
                let kind = action_kind(&action)?;
                serde_json::from_str::<serde_json::Map<String, Value>>(&params)
                    .context("--params must be a JSON object")?;
                let o = connector
                    .action(&session, &device_id, &ActionRequest { kind, params })
                    .await?;
                // The person who ran the action sees sensitive values once;
                // nothing here stores or logs them.
                let v = model::outcome_json(&o, true);
                if json {
                    writeln!(out, "{}", serde_json::to_string_pretty(&v)?)?;
                } else {
                    writeln!(out, "{action}: {}", v["status"].as_str().unwrap_or(""))?;
                    if let Some(id) = &o.command_id {
                        writeln!(out, "  command id: {id}")?;
                    }
                    for val in &o.values {
                        let note = if val.sensitive {
                            " (sensitive: shown once, not stored)"
                        } else {
                            ""
                        };
                        writeln!(out, "  {}: {}{note}", val.key, val.value)?;
                    }
                }
            }
        }
        Ok(())
    }
}

/// Parses `lock`, `unlock-account`, `vendor:NAME`, ...
pub fn action_kind(s: &str) -> anyhow::Result<ActionKind> {
    s.parse().map_err(anyhow::Error::msg)
}

/// One line per record for the text listing.
fn line(e: &Entity) -> String {
    let o = |v: &Option<String>| v.clone().unwrap_or_else(|| "-".into());
    match e {
        Entity::Device(d) => format!(
            "{}  {}  {}  {}  {}  {}  {}",
            d.remote_id,
            o(&d.name),
            o(&d.serial_number),
            d.platform.as_ref().map(enum_name).unwrap_or("-".into()),
            d.device_type.as_ref().map(enum_name).unwrap_or("-".into()),
            d.assigned_user
                .as_ref()
                .and_then(|u| u.email.clone())
                .unwrap_or("-".into()),
            o(&d.last_check_in_at),
        ),
        Entity::User(u) => format!("{}  {}  {}", u.remote_id, o(&u.name), o(&u.email)),
        Entity::App(a) => format!(
            "{}  {}  {}  {}",
            a.device_remote_id,
            a.name,
            o(&a.version),
            o(&a.identifier)
        ),
        Entity::Organization(g) => format!("{}  {}  {}", g.remote_id, g.name, enum_name(&g.kind)),
    }
}

/// `field: value` lines, skipping unknowns and the raw vendor data.
pub(super) fn write_fields(out: &mut dyn Write, v: &Value) -> anyhow::Result<()> {
    let Some(m) = v.as_object() else {
        return Ok(());
    };
    for (k, val) in m {
        let text = match val {
            Value::Null => continue,
            Value::Array(a) if a.is_empty() => continue,
            Value::Object(o) if o.is_empty() => continue,
            _ if k == "remote_data" => continue,
            Value::String(s) => s.clone(),
            other => other.to_string(),
        };
        writeln!(out, "{k:>24}: {text}")?;
    }
    Ok(())
}
