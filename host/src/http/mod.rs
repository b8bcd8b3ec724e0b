//! The `http` capability given to connectors. A request meets, in order:
//! the pages read ahead ([`ahead`]), the origin policy ([`policy`]), the
//! header rules, paging ([`paging`]), the account's rate limits
//! ([`ratelimit`]), credentials ([`auth`]), the pooled client with its
//! private-address guard ([`resolver`]), redirects (each hop re-checked),
//! the response-size cap, and retries of 429/503 ([`retry`]).

pub mod ahead;
pub mod auth;
pub mod json_probe;
pub mod paging;
pub mod policy;
pub mod ratelimit;
pub mod resolver;
pub mod retry;

use std::error::Error as _;
use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime};

use reqwest::header::{AUTHORIZATION, HeaderValue, LOCATION, RETRY_AFTER};
use reqwest::{Method as ReqMethod, StatusCode};
use url::Url;

use crate::account::{AccountSession, Secret};
use crate::contract::{Header, HttpError, HttpRequest, HttpResponse, Method, Paging};
use auth::{Auth, FetchedToken, TokenRequest, token_error_message};
use policy::Route;
use resolver::{GuardedResolver, PrivateAddressRefused};

/// Most redirects followed for one request.
const MAX_REDIRECTS: usize = 5;

/// Limits of the HTTP capability.
#[derive(Debug, Clone, Copy)]
pub struct HttpLimits {
    /// Largest response body accepted.
    pub max_response_bytes: u64,
    /// Connect timeout.
    pub connect_timeout: Duration,
}

impl Default for HttpLimits {
    fn default() -> Self {
        Self {
            max_response_bytes: 32 << 20,
            connect_timeout: Duration::from_secs(10),
        }
    }
}

/// One pooled client shared by every connector and account.
#[derive(Clone)]
pub struct HttpClient {
    client: reqwest::Client,
    resolver: GuardedResolver,
    limits: HttpLimits,
}

impl HttpClient {
    /// Builds the pooled client.
    pub fn new(limits: HttpLimits) -> Self {
        let resolver = GuardedResolver::default();
        let client = reqwest::Client::builder()
            .redirect(reqwest::redirect::Policy::none())
            .dns_resolver(std::sync::Arc::new(resolver.clone()))
            .connect_timeout(limits.connect_timeout)
            .pool_idle_timeout(Duration::from_secs(60))
            .pool_max_idle_per_host(32)
            .user_agent(concat!("mdmhub/", env!("CARGO_PKG_VERSION")))
            .build()
            .expect("the HTTP client configuration is static and valid");
        Self {
            client,
            resolver,
            limits,
        }
    }

    /// Lets the session's operator endpoints resolve to private addresses.
    pub fn register(&self, session: &AccountSession) {
        for host in session.policy.endpoint_hosts() {
            self.resolver.allow(host);
        }
    }

    /// Sends a guest's request for `session`, within `deadline`. With
    /// `read_ahead` (a list call), a page with a next one has that one
    /// requested at once ([`ahead`]); a request for a page read ahead takes
    /// its response.
    pub async fn send(
        &self,
        session: &Arc<AccountSession>,
        req: HttpRequest,
        paging: Option<Paging>,
        deadline: Instant,
        read_ahead: bool,
    ) -> Result<HttpResponse, HttpError> {
        let key = ahead::key(&req, paging.as_ref());
        if let Some(mut task) = key.as_deref().and_then(|k| session.ahead.take(k)) {
            match tokio::time::timeout_at(deadline.into(), &mut task).await {
                Ok(Ok(answer)) => {
                    crate::metrics::page_read_ahead();
                    return self.then_read_ahead(
                        session,
                        &req,
                        paging.as_ref(),
                        answer,
                        read_ahead,
                    );
                }
                Err(_) => {
                    task.abort();
                    return Err(HttpError::Timeout(
                        "the page read ahead did not arrive within the call's deadline".into(),
                    ));
                }
                // Aborted (dropped as too old): ask again.
                Ok(Err(_)) => {}
            }
        }
        let answer = self
            .send_now(session, &req, paging.as_ref(), deadline)
            .await;
        self.then_read_ahead(session, &req, paging.as_ref(), answer, read_ahead)
    }

    /// Starts reading the page after `answer`'s when there is one.
    fn then_read_ahead(
        &self,
        session: &Arc<AccountSession>,
        req: &HttpRequest,
        paging: Option<&Paging>,
        answer: Result<HttpResponse, HttpError>,
        read_ahead: bool,
    ) -> Result<HttpResponse, HttpError> {
        let next = answer.as_ref().ok().and_then(|r| r.next.as_deref());
        if let (true, Some(next), Some(paging)) = (read_ahead, next, paging)
            && let Some((req, following)) = self.read_ahead(session, req, paging, next)
            && let Some(beyond) = ahead::beyond(paging, next)
        {
            self.read_ahead(session, &req, &following, &beyond);
        }
        answer
    }

    /// Starts reading the page at `next` after the one `req` + `paging`
    /// asked for (unless it is already being read); returns its request.
    fn read_ahead(
        &self,
        session: &Arc<AccountSession>,
        req: &HttpRequest,
        paging: &Paging,
        next: &str,
    ) -> Option<(HttpRequest, Paging)> {
        let (req, paging) = ahead::following(req, paging, next)?;
        let key = ahead::key(&req, Some(&paging))?;
        let (client, s) = (self.clone(), session.clone());
        let (r, p) = (req.clone(), paging.clone());
        session.ahead.start(key, || {
            tokio::spawn(async move { client.send_now(&s, &r, Some(&p), ahead::deadline()).await })
        });
        Some((req, paging))
    }

    /// Sends a request now: the pipeline of the module docs.
    async fn send_now(
        &self,
        session: &AccountSession,
        req: &HttpRequest,
        paging: Option<&Paging>,
        deadline: Instant,
    ) -> Result<HttpResponse, HttpError> {
        let mut route = session.policy.route(&req.url).map_err(HttpError::Denied)?;
        for h in &req.headers {
            policy::check_header(&h.name, session.auth.own_header()).map_err(HttpError::Denied)?;
        }
        if let Some(p) = paging {
            paging::apply(&mut route.url, p);
        }
        let mut delays = retry::backoff();
        let mut refreshed = false;
        loop {
            let permit = session.limits.acquire(req.method, deadline).await?;
            let token = self.credentials(session, &route, deadline).await?;
            let (final_url, resp) = self
                .follow(session, req, route.clone(), token.as_ref(), deadline)
                .await?;
            drop(permit);
            let status = resp.status().as_u16();
            crate::metrics::vendor_response(status);
            if status == 401
                && !refreshed
                && let (Auth::Token(t), Some(used)) = (&session.auth, &token)
            {
                // A host-minted token was refused: refresh once, retry once.
                t.invalidate(used).await;
                refreshed = true;
                continue;
            }
            if retry::is_retryable(status) {
                let hinted = resp
                    .headers()
                    .get(RETRY_AFTER)
                    .and_then(|v| v.to_str().ok())
                    .and_then(|v| retry::retry_after(v, SystemTime::now()));
                match hinted.or_else(|| delays.next()) {
                    Some(wait) if Instant::now() + wait <= deadline => {
                        session.limits.record_wait(wait);
                        crate::metrics::vendor_wait();
                        tracing::debug!(account = %session.id, status, wait_ms = wait.as_millis() as u64, "vendor asked to slow down");
                        if status == 429 {
                            // The budget is the account's: its other
                            // requests wait too (in `acquire`).
                            session.limits.pause(wait);
                        } else {
                            tokio::time::sleep(wait).await;
                        }
                        continue;
                    }
                    Some(wait) if status == 429 => {
                        session.limits.pause(wait);
                        return Err(HttpError::RateLimited(wait.as_millis().max(1) as u64));
                    }
                    None if status == 429 => return Err(HttpError::RateLimited(60_000)),
                    _ => {} // a 503 past the budget goes back to the guest as is
                }
            }
            return self.read(resp, final_url, paging, status, deadline).await;
        }
    }

    async fn credentials(
        &self,
        session: &AccountSession,
        route: &Route,
        deadline: Instant,
    ) -> Result<Option<Secret>, HttpError> {
        if !route.credentials {
            return Ok(None);
        }
        match &session.auth {
            Auth::Token(t) => {
                let token_route = session.policy.route_token_url(&t.url);
                let fetched = t
                    .token(|req| self.fetch_token(token_route, req, deadline))
                    .await?;
                Ok(Some(fetched))
            }
            _ => Ok(None),
        }
    }

    /// POSTs to a token URL (host only, never on behalf of the guest).
    async fn fetch_token(
        &self,
        route: Route,
        req: TokenRequest,
        deadline: Instant,
    ) -> Result<FetchedToken, HttpError> {
        if !route.local && route.url.scheme() != "https" {
            return Err(HttpError::Denied(format!(
                "token URL {} must be https",
                route.url
            )));
        }
        let mut rb = self
            .client
            .post(route.url.clone())
            .timeout(remaining(deadline)?)
            .header("accept", "application/json");
        if let Some(form) = &req.form {
            rb = rb.form(form);
        }
        if let Some(b) = req.basic {
            let mut v = HeaderValue::from_str(&b).map_err(|_| {
                HttpError::AuthFailed("credentials are not valid header text".into())
            })?;
            v.set_sensitive(true);
            rb = rb.header(AUTHORIZATION, v);
        }
        let resp = rb.send().await.map_err(transport_error)?;
        let status = resp.status().as_u16();
        let body = resp.bytes().await.map_err(transport_error)?;
        if !(200..300).contains(&status) {
            return Err(HttpError::AuthFailed(token_error_message(status, &body)));
        }
        req.parse.read(&body).map_err(HttpError::AuthFailed)
    }

    /// Sends one attempt, following redirects with every hop re-checked.
    async fn follow(
        &self,
        session: &AccountSession,
        req: &HttpRequest,
        mut route: Route,
        token: Option<&Secret>,
        deadline: Instant,
    ) -> Result<(Url, reqwest::Response), HttpError> {
        let mut method = to_reqwest(req.method);
        let mut body = req.body.clone();
        for _ in 0..=MAX_REDIRECTS {
            let mut rb = self
                .client
                .request(method.clone(), route.url.clone())
                .timeout(remaining(deadline)?);
            for h in &req.headers {
                rb = rb.header(&h.name, &h.value);
            }
            if route.credentials {
                rb = match (&session.auth, token) {
                    (Auth::Static(name, value), _) => rb.header(name, value.clone()),
                    (Auth::Token(_), Some(t)) => {
                        let mut v = HeaderValue::from_str(&format!("Bearer {}", t.expose()))
                            .map_err(|_| {
                                HttpError::AuthFailed("the token is not valid header text".into())
                            })?;
                        v.set_sensitive(true);
                        rb.header(AUTHORIZATION, v)
                    }
                    _ => rb,
                };
            }
            if let Some(b) = &body {
                rb = rb.body(b.clone());
            }
            let resp = rb.send().await.map_err(transport_error)?;
            if !resp.status().is_redirection() || resp.status() == StatusCode::NOT_MODIFIED {
                return Ok((route.url, resp));
            }
            let location = resp
                .headers()
                .get(LOCATION)
                .and_then(|l| l.to_str().ok())
                .ok_or_else(|| {
                    HttpError::InvalidRequest(format!(
                        "redirect from {} without a Location",
                        route.url
                    ))
                })?;
            let target = route
                .url
                .join(location)
                .map_err(|e| HttpError::Denied(format!("bad redirect target `{location}`: {e}")))?;
            route = session
                .policy
                .redirect(&route, &target)
                .map_err(|e| HttpError::Denied(format!("redirect to {target}: {e}")))?;
            if resp.status() == StatusCode::SEE_OTHER
                || (method == ReqMethod::POST && matches!(resp.status().as_u16(), 301 | 302))
            {
                method = ReqMethod::GET;
                body = None;
            }
        }
        Err(HttpError::Denied(format!(
            "more than {MAX_REDIRECTS} redirects"
        )))
    }

    async fn read(
        &self,
        mut resp: reqwest::Response,
        url: Url,
        paging: Option<&Paging>,
        status: u16,
        deadline: Instant,
    ) -> Result<HttpResponse, HttpError> {
        let cap = self.limits.max_response_bytes;
        if resp.content_length().is_some_and(|n| n > cap) {
            return Err(HttpError::TooLarge(cap));
        }
        let headers: Vec<Header> = resp
            .headers()
            .iter()
            .filter(|(n, _)| *n != reqwest::header::SET_COOKIE)
            .filter_map(|(n, v)| {
                Some(Header {
                    name: n.as_str().to_owned(),
                    value: v.to_str().ok()?.to_owned(),
                })
            })
            .collect();
        let mut body = Vec::with_capacity(resp.content_length().unwrap_or(0) as usize);
        loop {
            let chunk = tokio::time::timeout(remaining(deadline)?, resp.chunk())
                .await
                .map_err(|_| {
                    HttpError::Timeout("reading the response took past the call's deadline".into())
                })?
                .map_err(transport_error)?;
            let Some(chunk) = chunk else { break };
            if body.len() as u64 + chunk.len() as u64 > cap {
                return Err(HttpError::TooLarge(cap));
            }
            body.extend_from_slice(&chunk);
        }
        let next = match paging {
            Some(p) if (200..300).contains(&status) => {
                // A body the paging cannot read ends the listing here; the
                // guest's own parse reports what is wrong with it.
                paging::next(p, &headers, &body).unwrap_or(None)
            }
            _ => None,
        };
        Ok(HttpResponse {
            status,
            headers,
            body,
            url: url.to_string(),
            next,
        })
    }
}

fn remaining(deadline: Instant) -> Result<Duration, HttpError> {
    let left = deadline.saturating_duration_since(Instant::now());
    if left.is_zero() {
        return Err(HttpError::Timeout("the call's time budget is spent".into()));
    }
    Ok(left)
}

fn to_reqwest(m: Method) -> ReqMethod {
    match m {
        Method::Get => ReqMethod::GET,
        Method::Head => ReqMethod::HEAD,
        Method::Post => ReqMethod::POST,
        Method::Put => ReqMethod::PUT,
        Method::Patch => ReqMethod::PATCH,
        Method::Delete => ReqMethod::DELETE,
    }
}

/// Classifies a transport failure, naming its root cause.
fn transport_error(e: reqwest::Error) -> HttpError {
    let mut source = e.source();
    let mut chain = e.to_string();
    while let Some(s) = source {
        if let Some(refused) = s.downcast_ref::<PrivateAddressRefused>() {
            return HttpError::Denied(refused.to_string());
        }
        chain.push_str(": ");
        chain.push_str(&s.to_string());
        source = s.source();
    }
    let lower = chain.to_ascii_lowercase();
    if e.is_timeout() {
        HttpError::Timeout(chain)
    } else if lower.contains("certificate") || lower.contains("tls") || lower.contains("handshake")
    {
        HttpError::TlsFailure(chain)
    } else {
        HttpError::ConnectionFailed(chain)
    }
}
