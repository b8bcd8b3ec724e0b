//! Saved accounts: validating credentials with the connector's `check()`
//! before anything is stored, sealing secrets, and turning a stored account
//! back into a live session.

use std::collections::BTreeMap;
use std::sync::Arc;

use crate::account::{AccountSession, AccountSpec, Secret};
use crate::contract::ConnectorError;
use crate::runtime::{CallError, Connector, Registry, Runtime};
use crate::secrets::{MasterKey, SecretsError};
use crate::store::accounts::{AccountRow, DEFAULT_WORKSPACE};
use crate::store::{Store, StoreError, new_id, now};

/// Default seconds between scheduled syncs.
pub const DEFAULT_INTERVAL_SECS: i64 = 24 * 3600;

/// Why an account operation failed.
#[derive(Debug, thiserror::Error)]
pub enum AccountError {
    /// No connector with that id is loaded.
    #[error("no connector `{0}` (see `mdmhub connectors list`)")]
    UnknownConnector(String),
    /// The config or secrets do not fit the connector.
    #[error("invalid account settings: {0}")]
    Config(String),
    /// The connector's `check()` failed; nothing was saved.
    #[error("{class}: {message}\n  hint: {hint}")]
    CheckFailed {
        /// Unauthorized, Forbidden, Not found, ...
        class: &'static str,
        /// What the vendor or connector said.
        message: String,
        /// What to fix.
        hint: &'static str,
    },
    /// The store failed.
    #[error(transparent)]
    Store(#[from] StoreError),
    /// Secrets did not open.
    #[error(transparent)]
    Secrets(#[from] SecretsError),
}

impl AccountError {
    /// The class of a failed check, as a user reads it.
    pub fn from_check(e: CallError) -> Self {
        let (class, message, hint) = match &e {
            CallError::Connector(c) => match c {
                ConnectorError::Unauthorized(m) => (
                    "Unauthorized",
                    m.clone(),
                    "the credentials were refused: check the token or client secret, and that it has not expired",
                ),
                ConnectorError::Forbidden(m) => (
                    "Forbidden",
                    m.clone(),
                    "the credentials work but lack a permission: grant the API permissions the connector lists in `mdmhub connectors describe`",
                ),
                ConnectorError::NotFound(m) => (
                    "Not found",
                    m.clone(),
                    "the tenant, subdomain or region looks wrong: check the --config values",
                ),
                ConnectorError::ConnectionFailed(m) => (
                    "Connection failed",
                    m.clone(),
                    "the vendor could not be reached: check the region or --endpoint, DNS and the network",
                ),
                ConnectorError::TlsFailure(m) => (
                    "TLS error",
                    m.clone(),
                    "the vendor's certificate was not accepted: check --endpoint and any TLS-intercepting proxy",
                ),
                ConnectorError::ServerError(s) => (
                    "Server error",
                    format!("HTTP {}: {}", s.status, s.message),
                    "the vendor failed; try again later",
                ),
                ConnectorError::RateLimited(ms) => (
                    "Rate limited",
                    format!("retry after {} s", ms.div_ceil(1000)),
                    "the vendor's rate limit is exhausted; try again later or lower --rate-limit",
                ),
                ConnectorError::InvalidConfig(m) => (
                    "Invalid config",
                    m.clone(),
                    "fix the --config or --secret values",
                ),
                _ => (
                    "Check failed",
                    crate::runtime::describe_connector_error(c),
                    "see the connector's documentation",
                ),
            },
            other => (
                "Connector failure",
                other.to_string(),
                "the connector itself failed; see its logs with RUST_LOG=info",
            ),
        };
        AccountError::CheckFailed {
            class,
            message,
            hint,
        }
    }
}

/// The inputs for a new account or an update.
#[derive(Debug, Clone, Default)]
pub struct AccountInput {
    /// Config values.
    pub config: BTreeMap<String, String>,
    /// Secrets.
    pub secrets: BTreeMap<String, Secret>,
    /// Endpoint overrides as given (`[HOST=]URL`).
    pub endpoints: Vec<String>,
    /// Rate override as given (`N/s|m|h`).
    pub rate_limit: Option<String>,
    /// Seconds between scheduled syncs.
    pub interval_secs: Option<i64>,
}

/// Account operations over a store, a set of connectors and the master key.
#[derive(Clone)]
pub struct Accounts {
    /// The store.
    pub store: Store,
    /// The runtime.
    pub runtime: Runtime,
    /// Loaded connectors.
    pub registry: Arc<Registry>,
    /// The key sealing secrets.
    pub key: Arc<MasterKey>,
}

impl Accounts {
    /// The loaded connector `id`.
    pub fn connector(&self, id: &str) -> Result<Arc<Connector>, AccountError> {
        self.registry
            .get(id)
            .cloned()
            .ok_or_else(|| AccountError::UnknownConnector(id.into()))
    }

    /// Validates `input` with `check()` and saves it as account `name` of
    /// the default workspace. Nothing is saved when the check fails.
    pub async fn add(
        &self,
        name: &str,
        connector: &str,
        input: AccountInput,
    ) -> Result<AccountRow, AccountError> {
        self.add_in(DEFAULT_WORKSPACE, name, connector, input).await
    }

    /// [`Accounts::add`] in the workspace with id `workspace_id`.
    pub async fn add_in(
        &self,
        workspace_id: &str,
        name: &str,
        connector: &str,
        input: AccountInput,
    ) -> Result<AccountRow, AccountError> {
        if name.trim().is_empty() || name.chars().any(|c| c.is_whitespace() || c == '/') {
            return Err(AccountError::Config(format!(
                "account name `{name}`: use letters, digits, `-` or `_`"
            )));
        }
        if self
            .store
            .find_account_in(workspace_id, name)
            .await?
            .is_some()
        {
            return Err(
                StoreError::Conflict(format!("an account named `{name}` already exists")).into(),
            );
        }
        let id = new_id("acc");
        self.check(&id, connector, &input).await?;
        let row = AccountRow {
            id: id.clone(),
            workspace_id: workspace_id.into(),
            name: name.into(),
            connector: connector.into(),
            config: input.config,
            sealed_secrets: self.key.seal(&id, &input.secrets),
            endpoints: input.endpoints,
            rate_limit: input.rate_limit,
            sync_interval_secs: input.interval_secs.unwrap_or(DEFAULT_INTERVAL_SECS),
            next_sync_at: now(),
            lease_holder: None,
            lease_expires_at: None,
            created_at: now(),
            updated_at: now(),
        };
        self.store.insert_account(&row).await?;
        Ok(row)
    }

    /// Runs `check()` for a stored account.
    pub async fn test(&self, row: &AccountRow) -> Result<(), AccountError> {
        let input = self.input_of(row)?;
        self.check(&row.id, &row.connector, &input).await
    }

    /// Applies `change` to a stored account: given config keys and secrets
    /// replace the stored ones, and given endpoints, rate or interval
    /// replace theirs. New credentials or endpoints are checked first and
    /// the account's records are marked for a fresh read. Returns whether
    /// the records must be re-fetched.
    pub async fn update(
        &self,
        row: &mut AccountRow,
        change: AccountInput,
    ) -> Result<bool, AccountError> {
        let mut input = self.input_of(row)?;
        let refetch = !change.secrets.is_empty()
            || !change.endpoints.is_empty()
            || change
                .config
                .iter()
                .any(|(k, v)| input.config.get(k) != Some(v));
        input.config.extend(change.config);
        input.secrets.extend(change.secrets);
        if !change.endpoints.is_empty() {
            input.endpoints = change.endpoints;
        }
        if change.rate_limit.is_some() {
            input.rate_limit = change.rate_limit;
        }
        if refetch {
            self.check(&row.id, &row.connector, &input).await?;
        } else {
            // Rate or interval only: still validate that the settings parse.
            self.session_of(&row.id, &row.connector, &input)?;
        }
        row.config = input.config;
        row.sealed_secrets = self.key.seal(&row.id, &input.secrets);
        row.endpoints = input.endpoints;
        row.rate_limit = input.rate_limit;
        if let Some(i) = change.interval_secs {
            row.sync_interval_secs = i;
        }
        if refetch {
            row.next_sync_at = now();
        }
        self.store.update_account(row).await?;
        if refetch {
            self.store.refetch_account(&row.id).await?;
        }
        Ok(refetch)
    }

    /// A live session for a stored account.
    pub fn session(
        &self,
        row: &AccountRow,
    ) -> Result<(Arc<Connector>, Arc<AccountSession>), AccountError> {
        let input = self.input_of(row)?;
        let connector = self.connector(&row.connector)?;
        let session = self.session_of(&row.id, &row.connector, &input)?;
        Ok((connector, session))
    }

    fn input_of(&self, row: &AccountRow) -> Result<AccountInput, AccountError> {
        Ok(AccountInput {
            config: row.config.clone(),
            secrets: self.key.open(&row.id, &row.sealed_secrets)?,
            endpoints: row.endpoints.clone(),
            rate_limit: row.rate_limit.clone(),
            interval_secs: Some(row.sync_interval_secs),
        })
    }

    fn session_of(
        &self,
        id: &str,
        connector: &str,
        input: &AccountInput,
    ) -> Result<Arc<AccountSession>, AccountError> {
        let c = self.connector(connector)?;
        let spec = AccountSpec {
            id: id.into(),
            config: input.config.clone(),
            secrets: input.secrets.clone(),
            endpoints: input
                .endpoints
                .iter()
                .map(|e| e.parse())
                .collect::<Result<_, String>>()
                .map_err(AccountError::Config)?,
            rate: input
                .rate_limit
                .as_deref()
                .map(str::parse)
                .transpose()
                .map_err(AccountError::Config)?,
        };
        self.runtime
            .session(&c, spec)
            .map_err(|e| AccountError::Config(e.to_string()))
    }

    async fn check(
        &self,
        id: &str,
        connector: &str,
        input: &AccountInput,
    ) -> Result<(), AccountError> {
        let c = self.connector(connector)?;
        let session = self.session_of(id, connector, input)?;
        c.check(&session).await.map_err(AccountError::from_check)
    }
}
