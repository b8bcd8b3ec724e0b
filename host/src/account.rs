//! One account's binding of a connector: validated config, secrets, expanded
//! origins, and the per-account HTTP state (origin policy, credentials, rate
//! limits). Secrets live here and are never passed to the connector.

use std::collections::BTreeMap;
use std::fmt;
use std::sync::Arc;

use url::Url;

use crate::contract::{ConfigEntry, ConnectorInfo, Context};
use crate::http::auth::Auth;
use crate::http::policy::OriginPolicy;
use crate::http::ratelimit::{RateLimits, RateOverride};
use crate::template;

/// A secret value; its `Debug` and `Display` never show it.
#[derive(Clone)]
pub struct Secret(String);

impl Secret {
    /// Wraps a secret.
    pub fn new(value: impl Into<String>) -> Self {
        Self(value.into())
    }
    /// The plaintext, for the one place that injects it.
    pub fn expose(&self) -> &str {
        &self.0
    }
}

impl fmt::Debug for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Secret(***)")
    }
}

/// An operator's `--endpoint`: every declared origin, or the one whose host
/// is `host`, is sent to `target` (a simulator, an on-prem server). Only an
/// endpoint may point at loopback or private addresses, or use plain http.
#[derive(Debug, Clone)]
pub struct Endpoint {
    /// The declared origin's host this applies to; `None` for all.
    pub host: Option<String>,
    /// Base URL requests are sent to instead.
    pub target: Url,
}

impl fmt::Display for Endpoint {
    /// The form [`FromStr`](std::str::FromStr) reads: `URL` or `HOST=URL`.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match &self.host {
            Some(h) => write!(f, "{h}={}", self.target),
            None => write!(f, "{}", self.target),
        }
    }
}

impl std::str::FromStr for Endpoint {
    type Err = String;
    /// `URL` or `HOST=URL`.
    fn from_str(s: &str) -> Result<Self, String> {
        let (host, url) = match s.split_once('=') {
            Some((h, u)) if !h.contains('/') => (Some(h.to_ascii_lowercase()), u),
            _ => (None, s),
        };
        let target = Url::parse(url).map_err(|e| format!("bad endpoint URL `{url}`: {e}"))?;
        if !matches!(target.scheme(), "http" | "https") || target.host_str().is_none() {
            return Err(format!(
                "endpoint `{url}` must be an http(s) URL with a host"
            ));
        }
        Ok(Self { host, target })
    }
}

/// What the operator gives for an account.
#[derive(Debug, Clone, Default)]
pub struct AccountSpec {
    /// mdmhub's account id.
    pub id: String,
    /// Non-secret config by key.
    pub config: BTreeMap<String, String>,
    /// Secrets by config key.
    pub secrets: BTreeMap<String, Secret>,
    /// Endpoint overrides.
    pub endpoints: Vec<Endpoint>,
    /// Operator's override of the connector's rate policy.
    pub rate: Option<RateOverride>,
}

/// Why an account's configuration does not fit its connector.
#[derive(Debug, thiserror::Error)]
#[error("invalid account configuration: {0}")]
pub struct ConfigError(pub String);

/// A connector bound to one account, shared by every call for it.
pub struct AccountSession {
    /// The account id.
    pub id: String,
    /// Non-secret config with defaults applied (what the guest sees).
    pub config: BTreeMap<String, String>,
    /// Declared origins, expanded.
    pub origins: Vec<String>,
    /// Deep-link template, expanded except `{device_id}`.
    pub device_url_template: Option<String>,
    pub(crate) policy: OriginPolicy,
    pub(crate) auth: Auth,
    pub(crate) limits: RateLimits,
    /// Listing pages read ahead for this account's walks.
    pub(crate) ahead: crate::http::ahead::Ahead,
}

impl fmt::Debug for AccountSession {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("AccountSession")
            .field("id", &self.id)
            .field("origins", &self.origins)
            .finish()
    }
}

impl AccountSession {
    /// Validates `spec` against the connector's config fields and builds the
    /// account's HTTP state.
    pub fn new(info: &ConnectorInfo, spec: AccountSpec) -> Result<Arc<Self>, ConfigError> {
        let mut config = BTreeMap::new();
        let mut vars = BTreeMap::new();
        let in_urls = url_template_names(info);
        for field in &info.config {
            let given = if field.secret {
                spec.secrets.get(&field.key).map(|s| s.expose().to_owned())
            } else {
                spec.config.get(&field.key).cloned()
            };
            let value = given
                .filter(|v| !v.is_empty())
                .or_else(|| field.default_value.clone());
            let Some(value) = value else {
                if field.required {
                    let kind = if field.secret { "secret" } else { "config" };
                    return Err(ConfigError(format!(
                        "{kind} `{}` ({}) is required",
                        field.key, field.label
                    )));
                }
                continue;
            };
            if !field.allowed_values.is_empty() {
                let allowed = field
                    .allowed_values
                    .iter()
                    .find(|a| a.value == value)
                    .ok_or_else(|| {
                        let list: Vec<_> = field
                            .allowed_values
                            .iter()
                            .map(|a| a.value.as_str())
                            .collect();
                        ConfigError(format!(
                            "`{}` must be one of {}, not `{value}`",
                            field.key,
                            list.join(", ")
                        ))
                    })?;
                for v in &allowed.variables {
                    vars.insert(v.name.clone(), v.value.clone());
                }
            }
            if !field.secret {
                if in_urls.contains(&field.key.as_str()) {
                    check_url_safe(&field.key, &value)?;
                }
                vars.insert(field.key.clone(), value.clone());
                config.insert(field.key.clone(), value);
            }
        }
        for key in spec.config.keys() {
            if !info.config.iter().any(|f| &f.key == key && !f.secret) {
                return Err(ConfigError(format!(
                    "`{key}` is not a config field of connector `{}`",
                    info.id
                )));
            }
        }
        let expand = |t: &str| template::expand(t, &vars).map_err(ConfigError);
        let origins = info
            .origins
            .iter()
            .map(|o| expand(o))
            .collect::<Result<Vec<_>, _>>()?;
        let device_url = match &info.device_url_template {
            Some(t) => {
                let mut with_id = vars.clone();
                with_id.insert("device_id".into(), "{device_id}".into());
                Some(template::expand(t, &with_id).map_err(ConfigError)?)
            }
            None => None,
        };
        let auth = Auth::new(&info.auth, &spec.secrets, &config, &expand)?;
        let policy = OriginPolicy::new(&origins, &spec.endpoints, auth.token_url())?;
        let limits = RateLimits::new(&info.rate_policy, spec.rate.as_ref());
        Ok(Arc::new(Self {
            id: spec.id,
            config,
            origins,
            device_url_template: device_url,
            policy,
            auth,
            limits,
            ahead: Default::default(),
        }))
    }

    /// The context passed to the connector: no secrets.
    pub fn context(&self) -> Context {
        Context {
            account_id: self.id.clone(),
            config: self
                .config
                .iter()
                .map(|(k, v)| ConfigEntry {
                    key: k.clone(),
                    value: v.clone(),
                })
                .collect(),
            origins: self.origins.clone(),
        }
    }

    /// The deep link to a device in the vendor's console, if the connector
    /// declares a template (the id is percent-encoded as one path segment).
    pub fn device_url(&self, device_id: &str) -> Option<String> {
        const SEGMENT: &percent_encoding::AsciiSet = &percent_encoding::NON_ALPHANUMERIC
            .remove(b'-')
            .remove(b'.')
            .remove(b'_')
            .remove(b'~');
        let id = percent_encoding::utf8_percent_encode(device_id, SEGMENT);
        self.device_url_template
            .as_ref()
            .map(|t| t.replace("{device_id}", &id.to_string()))
    }

    /// Fills a device's missing `web_url` from the deep-link template.
    pub fn link(&self, entity: &mut crate::contract::Entity) {
        if let crate::contract::Entity::Device(d) = entity
            && d.web_url.is_none()
        {
            d.web_url = self.device_url(&d.remote_id);
        }
    }

    /// Counts a rate-limit wait that happened outside the HTTP client (a
    /// page or read retried after the vendor's 429).
    pub fn record_rate_wait(&self, wait: std::time::Duration) {
        self.limits.record_wait(wait);
    }

    /// Rate-limit waits so far (count, total milliseconds), for progress reports.
    pub fn rate_limit_waits(&self) -> (u64, u64) {
        self.limits.waits()
    }
}

/// Config keys used in the connector's URL templates (origins, token URL,
/// scope, deep link).
fn url_template_names(info: &ConnectorInfo) -> Vec<&str> {
    use crate::contract::AuthScheme;
    let auth: Vec<&str> = match &info.auth {
        AuthScheme::Oauth2ClientCredentials(o) => std::iter::once(o.token_url.as_str())
            .chain(o.scope.as_deref())
            .collect(),
        AuthScheme::TokenExchange(t) => vec![t.token_url.as_str()],
        _ => vec![],
    };
    info.origins
        .iter()
        .map(String::as_str)
        .chain(info.device_url_template.as_deref())
        .chain(auth)
        .flat_map(template::names)
        .collect()
}

/// A config value that goes into a URL may not change the URL's shape: a
/// subdomain of `evil.test#` would otherwise move a declared origin.
fn check_url_safe(key: &str, value: &str) -> Result<(), ConfigError> {
    let safe = |c: char| c.is_ascii_alphanumeric() || matches!(c, '-' | '.' | '_');
    if value.chars().all(safe) {
        Ok(())
    } else {
        Err(ConfigError(format!(
            "`{key}` may only contain letters, digits, `-`, `.` and `_` (it is part of the vendor's URLs), not `{value}`"
        )))
    }
}
