//! DNS for the pooled client: names that resolve only to private or
//! loopback addresses are refused, except names of operator endpoints.

use std::collections::HashSet;
use std::net::SocketAddr;
use std::sync::{Arc, RwLock};

use reqwest::dns::{Addrs, Name, Resolve, Resolving};

use super::policy::is_private;

/// Marks a refusal so that the client can report it as `denied`.
#[derive(Debug, thiserror::Error)]
#[error("{0} resolves only to private addresses; only an operator endpoint may point there")]
pub struct PrivateAddressRefused(pub String);

/// A resolver that drops private addresses.
#[derive(Clone, Default)]
pub struct GuardedResolver {
    allowed: Arc<RwLock<HashSet<String>>>,
}

impl GuardedResolver {
    /// Lets `host` (an operator endpoint) resolve to private addresses.
    pub fn allow(&self, host: &str) {
        self.allowed
            .write()
            .expect("resolver allow-list poisoned")
            .insert(host.to_ascii_lowercase());
    }
}

impl Resolve for GuardedResolver {
    fn resolve(&self, name: Name) -> Resolving {
        let allowed = self.allowed.clone();
        Box::pin(async move {
            let host = name.as_str().to_owned();
            let addrs: Vec<SocketAddr> =
                tokio::net::lookup_host((host.as_str(), 0)).await?.collect();
            let local_ok = allowed
                .read()
                .expect("resolver allow-list poisoned")
                .contains(&host);
            let kept: Vec<SocketAddr> = addrs
                .into_iter()
                .filter(|a| local_ok || !is_private(a.ip()))
                .collect();
            if kept.is_empty() {
                return Err(Box::new(PrivateAddressRefused(host))
                    as Box<dyn std::error::Error + Send + Sync>);
            }
            Ok(Box::new(kept.into_iter()) as Addrs)
        })
    }
}
