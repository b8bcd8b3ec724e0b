//! `mdmhub devices|users|apps|orgs`: the synced inventory as a table or JSON,
//! with filters.

use std::io::Write;

use anyhow::anyhow;
use clap::{Args, Subcommand};
use serde_json::Value;

use super::{Env, table};
use crate::store::query::{Filter, Json, Listing};

/// Which listing a `list` subcommand shows.
#[derive(Debug, Clone, Copy)]
pub enum Kind {
    /// Users.
    Users,
    /// Apps.
    Apps,
    /// Organizations.
    Organizations,
}

/// `mdmhub devices` subcommands.
#[derive(Debug, Subcommand)]
pub enum DevicesCommand {
    /// List devices.
    List(ListArgs),
    /// One device by mdmhub id, vendor id or serial number, with the other
    /// records of the same physical device.
    Show {
        /// mdmhub id, vendor id or serial number.
        key: String,
        /// Print JSON.
        #[arg(long)]
        json: bool,
    },
}

/// `mdmhub users|apps|orgs` subcommands.
#[derive(Debug, Subcommand)]
pub enum ListCommand {
    /// List them.
    List(ListArgs),
}

/// Filters and output of a list.
#[derive(Debug, Args)]
pub struct ListArgs {
    /// Only this account (name or id).
    #[arg(long)]
    account: Option<String>,
    /// Devices: platform (macos, ios, ipados, tvos, windows, android, ...).
    #[arg(long)]
    platform: Option<String>,
    /// Devices: type (laptop, desktop, phone, tablet, tv, ...).
    #[arg(long = "type")]
    device_type: Option<String>,
    /// active, removed or all.
    #[arg(long, default_value = "active")]
    status: String,
    /// Devices: serial number.
    #[arg(long)]
    serial: Option<String>,
    /// Devices: the assigned user's email; users: the email.
    #[arg(long)]
    email: Option<String>,
    /// Apps: only those of this device (mdmhub or vendor id).
    #[arg(long)]
    device: Option<String>,
    /// At most this many.
    #[arg(long, default_value_t = 100)]
    limit: i64,
    /// Continue after this id (printed at the end of a page).
    #[arg(long)]
    cursor: Option<String>,
    /// Print JSON (`{"result": [...], "next_cursor": ...}`).
    #[arg(long)]
    json: bool,
}

impl ListArgs {
    fn filter(&self) -> Filter {
        Filter {
            account: self.account.clone(),
            status: (self.status != "all").then(|| self.status.clone()),
            platform: self.platform.clone(),
            device_type: self.device_type.clone(),
            serial: self.serial.clone(),
            email: self.email.clone(),
            device: self.device.clone(),
            after: self.cursor.clone(),
            limit: self.limit,
            ..Filter::default()
        }
    }

    async fn print(&self, env: &Env, listing: Listing, out: &mut dyn Write) -> anyhow::Result<()> {
        let store = env.store().await?;
        let (rows, next) = store.list(listing, &self.filter()).await?;
        if self.json {
            let v = serde_json::json!({"result": rows, "next_cursor": next, "result_count": rows.len()});
            writeln!(out, "{}", serde_json::to_string_pretty(&v)?)?;
            return Ok(());
        }
        let cols: &[(&str, &str)] = match listing {
            Listing::Devices => &[
                ("NAME", "name"),
                ("SERIAL", "serial_number"),
                ("TYPE", "device_type"),
                ("PLATFORM", "platform"),
                ("OS", "os_version"),
                ("USER", "assigned_user.email"),
                ("ACCOUNT", "account"),
                ("LAST CHECK-IN", "last_check_in_at"),
                ("ID", "id"),
            ],
            Listing::Users => &[
                ("NAME", "name"),
                ("EMAIL", "email"),
                ("ACTIVE", "is_active"),
                ("ACCOUNT", "account"),
                ("ID", "id"),
            ],
            Listing::Apps => &[
                ("NAME", "name"),
                ("VERSION", "version"),
                ("IDENTIFIER", "identifier"),
                ("DEVICE", "device_id"),
                ("ACCOUNT", "account"),
            ],
            Listing::Organizations => &[
                ("NAME", "name"),
                ("KIND", "kind"),
                ("ACCOUNT", "account"),
                ("ID", "id"),
            ],
        };
        let headers: Vec<&str> = cols.iter().map(|(h, _)| *h).collect();
        let body: Vec<Vec<String>> = rows
            .iter()
            .map(|r| cols.iter().map(|(_, path)| field(r, path)).collect())
            .collect();
        table::write(out, &headers, &body)?;
        match next {
            Some(c) => writeln!(out, "{} shown; more with --cursor {c}", rows.len())?,
            None => writeln!(out, "{} shown", rows.len())?,
        }
        Ok(())
    }
}

/// A dotted path's value as a table cell.
fn field(r: &Json, path: &str) -> String {
    let mut parts = path.split('.');
    let first = parts.next().unwrap_or_default();
    let mut v = r.get(first);
    for p in parts {
        v = v.and_then(|x| x.get(p));
    }
    match v {
        Some(Value::String(s)) => table::cell(Some(s)),
        Some(Value::Null) | None => "-".into(),
        Some(other) => other.to_string(),
    }
}

impl DevicesCommand {
    /// Runs the subcommand.
    pub async fn run(self, env: &Env, out: &mut (dyn Write + Send)) -> anyhow::Result<()> {
        match self {
            DevicesCommand::List(args) => args.print(env, Listing::Devices, out).await,
            DevicesCommand::Show { key, json } => {
                let store = env.store().await?;
                let d = store
                    .device(&key)
                    .await?
                    .ok_or_else(|| anyhow!("no device with id, vendor id or serial `{key}`"))?;
                if json {
                    writeln!(out, "{}", serde_json::to_string_pretty(&d)?)?;
                    return Ok(());
                }
                super::call::write_fields(out, &Value::Object(d))?;
                Ok(())
            }
        }
    }
}

impl ListCommand {
    /// Runs the subcommand for `kind`.
    pub async fn run(
        self,
        env: &Env,
        kind: Kind,
        out: &mut (dyn Write + Send),
    ) -> anyhow::Result<()> {
        let listing = match kind {
            Kind::Users => Listing::Users,
            Kind::Apps => Listing::Apps,
            Kind::Organizations => Listing::Organizations,
        };
        match self {
            ListCommand::List(args) => args.print(env, listing, out).await,
        }
    }
}
