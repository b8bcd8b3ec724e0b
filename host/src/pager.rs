//! Walking a resource page by page: the host owns the loop (DESIGN.md).
//! A page the vendor rate-limited is retried after the wait the connector
//! reported, outside the sandbox; a cursor that comes back twice is a
//! paging loop and ends the walk with an error.

use std::collections::HashSet;
use std::sync::Arc;
use std::time::Duration;

use crate::account::AccountSession;
use crate::contract::{ConnectorError, ListOptions, Page, ResourceKind};
use crate::runtime::{CallError, Connector, Warm};

/// Longest single wait honoured before giving up on a page.
const MAX_WAIT: Duration = Duration::from_secs(15 * 60);
/// Rate-limited attempts of one page before giving up.
const MAX_RATE_LIMITED: u32 = 8;

/// Why a walk stopped early.
#[derive(Debug, thiserror::Error)]
pub enum WalkError {
    /// A call failed.
    #[error(transparent)]
    Call(#[from] CallError),
    /// The connector returned a cursor it had returned before.
    #[error("paging loop: the connector returned cursor `{0}` twice")]
    CursorRepeated(String),
    /// The vendor kept rate-limiting one page.
    #[error("the vendor rate-limited the same page {0} times; try again later")]
    RateLimited(u32),
}

/// A walk over one resource of one account.
pub struct Pager {
    connector: Arc<Connector>,
    session: Arc<AccountSession>,
    kind: ResourceKind,
    options: ListOptions,
    cursor: Option<String>,
    seen: HashSet<String>,
    done: bool,
    warm: Option<Arc<Warm>>,
}

impl Pager {
    /// Starts at `cursor` (`None`: the first page), e.g. a checkpoint.
    pub fn new(
        connector: Arc<Connector>,
        session: Arc<AccountSession>,
        kind: ResourceKind,
        options: ListOptions,
        cursor: Option<String>,
    ) -> Self {
        Self {
            connector,
            session,
            kind,
            options,
            seen: cursor.iter().cloned().collect(),
            cursor,
            done: false,
            warm: None,
        }
    }

    /// Makes the walk's calls share `warm`'s instances.
    pub fn reusing(mut self, warm: Arc<Warm>) -> Self {
        self.warm = Some(warm);
        self
    }

    /// The cursor of the next page to fetch (`None` before the first or after the last).
    pub fn cursor(&self) -> Option<&str> {
        self.cursor.as_deref()
    }

    /// The next page, or `None` when the walk is complete.
    pub async fn next(&mut self) -> Result<Option<Page>, WalkError> {
        if self.done {
            return Ok(None);
        }
        let (connector, session, kind) = (&self.connector, &self.session, self.kind);
        let (cursor, options) = (self.cursor.as_deref(), &self.options);
        let warm = self.warm.as_deref();
        let page = retry_rate_limited(session, kind.name(), || {
            connector.list_in(warm, session, kind, cursor, options)
        })
        .await?;
        match &page.next_cursor {
            None => self.done = true,
            Some(c) => {
                if !self.seen.insert(c.clone()) {
                    return Err(WalkError::CursorRepeated(c.clone()));
                }
            }
        }
        self.cursor = page.next_cursor.clone();
        Ok(Some(page))
    }
}

/// Runs `call` until the vendor stops rate-limiting it: each wait is the
/// one the connector reported (at least 100 ms, at most 15 min), counted in
/// the account's rate-limit waits; gives up after 8 limited attempts.
pub async fn retry_rate_limited<T, F, Fut>(
    session: &AccountSession,
    what: &str,
    mut call: F,
) -> Result<T, WalkError>
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = Result<T, CallError>>,
{
    let mut limited = 0;
    loop {
        match call().await {
            Err(CallError::Connector(ConnectorError::RateLimited(ms))) => {
                limited += 1;
                if limited >= MAX_RATE_LIMITED {
                    return Err(WalkError::RateLimited(limited));
                }
                let wait = Duration::from_millis(ms).clamp(Duration::from_millis(100), MAX_WAIT);
                tracing::info!(account = %session.id, what, wait_ms = wait.as_millis() as u64, "rate limited; waiting before retrying");
                session.record_rate_wait(wait);
                tokio::time::sleep(wait).await;
            }
            other => return Ok(other?),
        }
    }
}
