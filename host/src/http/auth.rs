//! Credentials, injected by the host: static bearer, API-key header, basic,
//! and tokens the host obtains itself (OAuth2 client credentials, basic ->
//! bearer exchange), cached and refreshed one at a time.

use std::collections::BTreeMap;
use std::time::{Duration, Instant};

use base64::Engine as _;
use reqwest::header::{AUTHORIZATION, HeaderName, HeaderValue};
use url::Url;

use crate::account::{ConfigError, Secret};
use crate::contract::{AuthScheme, ClientAuthMethod, HttpError};

/// How long before expiry a cached token is refreshed.
const REFRESH_SKEW: Duration = Duration::from_secs(60);
/// Lifetime assumed when the token endpoint states none.
const DEFAULT_TOKEN_LIFETIME: Duration = Duration::from_secs(15 * 60);

/// An account's credentials.
pub enum Auth {
    /// No credentials.
    None,
    /// A header with a fixed value.
    Static(HeaderName, HeaderValue),
    /// A bearer token the host fetches.
    Token(Box<TokenAuth>),
}

/// A token obtained from a token URL.
pub struct TokenAuth {
    grant: Grant,
    pub(crate) url: Url,
    cache: tokio::sync::Mutex<Option<CachedToken>>,
}

enum Grant {
    ClientCredentials {
        client_id: Secret,
        client_secret: Secret,
        scope: Option<String>,
        method: ClientAuthMethod,
    },
    Exchange {
        username: Secret,
        password: Secret,
        token_field: String,
        expires_at_field: Option<String>,
        expires_in_field: Option<String>,
    },
}

struct CachedToken {
    value: Secret,
    refresh_at: Instant,
}

/// A token endpoint's answer, before caching.
#[derive(Debug)]
pub struct FetchedToken {
    /// The token.
    pub value: Secret,
    /// Its lifetime, if stated.
    pub lifetime: Option<Duration>,
}

impl Auth {
    /// Resolves the scheme's fields from the account's secrets and config.
    pub fn new(
        scheme: &AuthScheme,
        secrets: &BTreeMap<String, Secret>,
        config: &BTreeMap<String, String>,
        expand: &dyn Fn(&str) -> Result<String, ConfigError>,
    ) -> Result<Self, ConfigError> {
        let field = |key: &str| -> Result<Secret, ConfigError> {
            secrets
                .get(key)
                .cloned()
                .or_else(|| config.get(key).map(|v| Secret::new(v.clone())))
                .ok_or_else(|| ConfigError(format!("credential `{key}` is required")))
        };
        let header = |v: String| -> Result<HeaderValue, ConfigError> {
            let mut v = HeaderValue::from_str(&v).map_err(|_| {
                ConfigError("a credential contains characters not allowed in a header".into())
            })?;
            v.set_sensitive(true);
            Ok(v)
        };
        let token_url = |t: &str| -> Result<Url, ConfigError> {
            let u = expand(t)?;
            Url::parse(&u).map_err(|e| ConfigError(format!("token URL `{u}`: {e}")))
        };
        Ok(match scheme {
            AuthScheme::None => Auth::None,
            AuthScheme::Bearer(b) => Auth::Static(
                AUTHORIZATION,
                header(format!("Bearer {}", field(&b.token_field)?.expose()))?,
            ),
            AuthScheme::ApiKey(k) => {
                let name = HeaderName::from_bytes(k.header.as_bytes())
                    .map_err(|_| ConfigError(format!("bad header name `{}`", k.header)))?;
                let value = format!(
                    "{}{}",
                    k.prefix.as_deref().unwrap_or(""),
                    field(&k.key_field)?.expose()
                );
                Auth::Static(name, header(value)?)
            }
            AuthScheme::Basic(b) => Auth::Static(
                AUTHORIZATION,
                header(basic(
                    &field(&b.username_field)?,
                    &field(&b.password_field)?,
                ))?,
            ),
            AuthScheme::Oauth2ClientCredentials(o) => Auth::Token(Box::new(TokenAuth::new(
                token_url(&o.token_url)?,
                Grant::ClientCredentials {
                    client_id: field(&o.client_id_field)?,
                    client_secret: field(&o.client_secret_field)?,
                    scope: o.scope.as_deref().map(expand).transpose()?,
                    method: o.client_auth,
                },
            ))),
            AuthScheme::TokenExchange(t) => Auth::Token(Box::new(TokenAuth::new(
                token_url(&t.token_url)?,
                Grant::Exchange {
                    username: field(&t.username_field)?,
                    password: field(&t.password_field)?,
                    token_field: t.token_json_field.clone(),
                    expires_at_field: t.expires_at_json_field.clone(),
                    expires_in_field: t.expires_in_json_field.clone(),
                },
            ))),
        })
    }

    /// The token URL, which guests may not call.
    pub fn token_url(&self) -> Option<&Url> {
        match self {
            Auth::Token(t) => Some(&t.url),
            _ => None,
        }
    }

    /// A header name the guest may not set besides the usual ones.
    pub fn own_header(&self) -> Option<&str> {
        match self {
            Auth::Static(name, _) => Some(name.as_str()),
            _ => None,
        }
    }
}

impl TokenAuth {
    fn new(url: Url, grant: Grant) -> Self {
        Self {
            grant,
            url,
            cache: tokio::sync::Mutex::new(None),
        }
    }

    /// The cached token, or a fresh one from `fetch`. The lock makes
    /// concurrent callers wait for one refresh instead of each fetching.
    pub async fn token<F, Fut>(&self, fetch: F) -> Result<Secret, HttpError>
    where
        F: FnOnce(TokenRequest) -> Fut,
        Fut: std::future::Future<Output = Result<FetchedToken, HttpError>>,
    {
        let mut cache = self.cache.lock().await;
        if let Some(c) = cache.as_ref()
            && Instant::now() < c.refresh_at
        {
            return Ok(c.value.clone());
        }
        let fetched = fetch(self.request()).await?;
        let lifetime = fetched.lifetime.unwrap_or(DEFAULT_TOKEN_LIFETIME);
        let refresh_at = Instant::now() + lifetime.saturating_sub(REFRESH_SKEW.min(lifetime / 10));
        *cache = Some(CachedToken {
            value: fetched.value.clone(),
            refresh_at,
        });
        Ok(fetched.value)
    }

    /// Drops the cached token if it is still `used` (a 401 answered it);
    /// a token another caller already refreshed is kept.
    pub async fn invalidate(&self, used: &Secret) {
        let mut cache = self.cache.lock().await;
        if cache
            .as_ref()
            .is_some_and(|c| c.value.expose() == used.expose())
        {
            *cache = None;
        }
    }

    fn request(&self) -> TokenRequest {
        match &self.grant {
            Grant::ClientCredentials {
                client_id,
                client_secret,
                scope,
                method,
            } => {
                let mut form = vec![("grant_type".to_string(), "client_credentials".to_string())];
                if let Some(s) = scope {
                    form.push(("scope".into(), s.clone()));
                }
                let basic_header = match method {
                    ClientAuthMethod::RequestBody => {
                        form.push(("client_id".into(), client_id.expose().into()));
                        form.push(("client_secret".into(), client_secret.expose().into()));
                        None
                    }
                    ClientAuthMethod::BasicHeader => Some(basic(client_id, client_secret)),
                };
                TokenRequest {
                    form: Some(form),
                    basic: basic_header,
                    parse: TokenParse::OAuth,
                }
            }
            Grant::Exchange {
                username,
                password,
                token_field,
                expires_at_field,
                expires_in_field,
            } => TokenRequest {
                form: None,
                basic: Some(basic(username, password)),
                parse: TokenParse::Fields {
                    token: token_field.clone(),
                    expires_at: expires_at_field.clone(),
                    expires_in: expires_in_field.clone(),
                },
            },
        }
    }
}

/// What the client must POST to the token URL.
pub struct TokenRequest {
    /// Form body, if any.
    pub form: Option<Vec<(String, String)>>,
    /// A basic `Authorization` value, if any.
    pub basic: Option<String>,
    /// How to read the answer.
    pub parse: TokenParse,
}

/// How to read a token endpoint's JSON.
pub enum TokenParse {
    /// `access_token` + `expires_in` (RFC 6749).
    OAuth,
    /// Named top-level fields.
    Fields {
        token: String,
        expires_at: Option<String>,
        expires_in: Option<String>,
    },
}

impl TokenParse {
    /// Reads the token and its lifetime.
    pub fn read(&self, body: &[u8]) -> Result<FetchedToken, String> {
        let v: serde_json::Value = serde_json::from_slice(body)
            .map_err(|e| format!("token endpoint answered malformed JSON: {e}"))?;
        let (token, at, inn) = match self {
            TokenParse::OAuth => ("access_token", None, Some("expires_in")),
            TokenParse::Fields {
                token,
                expires_at,
                expires_in,
            } => (token.as_str(), expires_at.as_deref(), expires_in.as_deref()),
        };
        let value = v
            .get(token)
            .and_then(|t| t.as_str())
            .filter(|t| !t.is_empty())
            .ok_or_else(|| format!("token endpoint's answer has no `{token}`"))?;
        let lifetime = inn
            .and_then(|f| v.get(f))
            .and_then(|x| {
                x.as_f64()
                    .or_else(|| x.as_str().and_then(|s| s.parse().ok()))
            })
            .map(|s| Duration::from_secs_f64(s.max(0.0)))
            .or_else(|| {
                let at = v.get(at?)?.as_str()?;
                let t =
                    time::OffsetDateTime::parse(at, &time::format_description::well_known::Rfc3339)
                        .ok()?;
                let secs = (t - time::OffsetDateTime::now_utc()).as_seconds_f64();
                Some(Duration::from_secs_f64(secs.max(0.0)))
            });
        Ok(FetchedToken {
            value: Secret::new(value),
            lifetime,
        })
    }
}

/// The message of an OAuth/Entra error body (`error_description`, `error`).
pub fn token_error_message(status: u16, body: &[u8]) -> String {
    let v: serde_json::Value = serde_json::from_slice(body).unwrap_or_default();
    let detail = ["error_description", "message", "detail", "error"]
        .iter()
        .find_map(|k| v.get(k).and_then(|x| x.as_str()).map(str::to_owned))
        .unwrap_or_else(|| String::from_utf8_lossy(body).chars().take(300).collect());
    format!("token endpoint answered {status}: {detail}")
}

fn basic(user: &Secret, password: &Secret) -> String {
    let raw = format!("{}:{}", user.expose(), password.expose());
    format!(
        "Basic {}",
        base64::engine::general_purpose::STANDARD.encode(raw)
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_oauth_and_named_fields() {
        let t = TokenParse::OAuth
            .read(br#"{"access_token":"abc","expires_in":3599,"token_type":"Bearer"}"#)
            .unwrap();
        assert_eq!(t.value.expose(), "abc");
        assert_eq!(t.lifetime, Some(Duration::from_secs(3599)));
        let exp = (time::OffsetDateTime::now_utc() + time::Duration::minutes(30))
            .format(&time::format_description::well_known::Rfc3339)
            .unwrap();
        let body = format!(r#"{{"token":"jamf","expires":"{exp}"}}"#);
        let parse = TokenParse::Fields {
            token: "token".into(),
            expires_at: Some("expires".into()),
            expires_in: None,
        };
        let t = parse.read(body.as_bytes()).unwrap();
        assert_eq!(t.value.expose(), "jamf");
        assert!(t.lifetime.unwrap() > Duration::from_secs(29 * 60));
        assert!(
            TokenParse::OAuth
                .read(b"{}")
                .unwrap_err()
                .contains("access_token")
        );
    }

    #[test]
    fn secrets_do_not_print() {
        assert_eq!(format!("{:?}", Secret::new("hunter2")), "Secret(***)");
    }
}
