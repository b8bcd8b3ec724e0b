//! The dispatcher: claims due deliveries from the outbox under a lease,
//! POSTs each signed event to its subscription's URL, and records the
//! outcome: delivered on 2xx; otherwise retried on a backoff schedule
//! (honouring the receiver's `Retry-After`), until it fails for good. A
//! 410 Gone disables the subscription. Claims of a process that died on
//! this machine are taken over at once; others expire with their lease.

use std::sync::Arc;
use std::time::Duration;

use futures::StreamExt;
use reqwest::StatusCode;
use reqwest::header::{CONTENT_TYPE, RETRY_AFTER, USER_AGENT};
use tokio_util::sync::CancellationToken;

use super::signing;
use crate::http::policy::is_private;
use crate::http::resolver::GuardedResolver;
use crate::secrets::MasterKey;
use crate::store::webhooks::{Attempt, DueDelivery, Next};
use crate::store::{Store, StoreError, stamp};

/// How the dispatcher runs.
#[derive(Debug, Clone)]
pub struct DeliveryOptions {
    /// The wait after each failed attempt (the first attempt is at once);
    /// a delivery failing one more time than this has entries fails.
    pub retry_schedule: Vec<Duration>,
    /// How long one attempt may take.
    pub timeout: Duration,
    /// Attempts in flight at once.
    pub concurrency: usize,
    /// How often an idle dispatcher looks for due deliveries.
    pub poll: Duration,
    /// Whether receivers may be plain `http://` or on loopback and private
    /// addresses (tests, the demo, receivers inside the operator's network).
    pub allow_private: bool,
    /// How long finished deliveries are kept for `GET .../deliveries`.
    pub retention: Duration,
}

impl Default for DeliveryOptions {
    /// The Standard Webhooks schedule: at once, then after 5 s, 5 min,
    /// 30 min, 2 h, 5 h, 10 h and 10 h (eight attempts over about 28 h).
    fn default() -> Self {
        let m = |m: u64| Duration::from_secs(m * 60);
        Self {
            retry_schedule: vec![
                Duration::from_secs(5),
                m(5),
                m(30),
                m(120),
                m(300),
                m(600),
                m(600),
            ],
            timeout: Duration::from_secs(15),
            concurrency: 16,
            poll: Duration::from_secs(1),
            allow_private: false,
            retention: Duration::from_secs(7 * 24 * 3600),
        }
    }
}

/// Why a receiver URL is refused.
#[derive(Debug, thiserror::Error)]
pub enum UrlError {
    /// Not a URL.
    #[error("not a URL: {0}")]
    Parse(#[from] url::ParseError),
    /// Not https (or http when private receivers are allowed).
    #[error("a webhook URL must be https://")]
    Scheme,
    /// Credentials in the URL would be sent to every redirect and logged.
    #[error("a webhook URL must not carry a user name or password")]
    Credentials,
    /// A loopback or private address, not allowed.
    #[error(
        "{0} is a loopback or private address; the operator must start `mdmhub serve --allow-private-webhooks` to allow it"
    )]
    Private(String),
}

/// Checks a receiver URL: https, no credentials, and (unless allowed) no
/// literal private address (names are checked when they are resolved).
pub fn check_url(text: &str, allow_private: bool) -> Result<url::Url, UrlError> {
    let url = url::Url::parse(text)?;
    match url.scheme() {
        "https" => {}
        "http" if allow_private => {}
        _ => return Err(UrlError::Scheme),
    }
    if !url.username().is_empty() || url.password().is_some() {
        return Err(UrlError::Credentials);
    }
    let literal = match url.host() {
        Some(url::Host::Ipv4(ip)) => Some(std::net::IpAddr::V4(ip)),
        Some(url::Host::Ipv6(ip)) => Some(std::net::IpAddr::V6(ip)),
        Some(url::Host::Domain(d)) if d.eq_ignore_ascii_case("localhost") => {
            Some(std::net::Ipv4Addr::LOCALHOST.into())
        }
        _ => None,
    };
    if !allow_private && let Some(ip) = literal.filter(|ip| is_private(*ip)) {
        return Err(UrlError::Private(ip.to_string()));
    }
    Ok(url)
}

/// Delivers the outbox until stopped.
pub struct Dispatcher {
    store: Store,
    key: Arc<MasterKey>,
    client: reqwest::Client,
    options: DeliveryOptions,
    holder: String,
}

/// How often claims of dead holders are looked for, and old deliveries pruned.
const HOUSEKEEPING: Duration = Duration::from_secs(30);

/// Characters of a receiver's answer kept with a failed attempt.
const ANSWER_KEPT: usize = 200;

impl Dispatcher {
    /// A dispatcher over `store`, opening secrets with `key`.
    pub fn new(
        store: Store,
        key: Arc<MasterKey>,
        options: DeliveryOptions,
    ) -> Result<Self, reqwest::Error> {
        let mut builder = reqwest::Client::builder()
            .redirect(reqwest::redirect::Policy::none())
            .connect_timeout(Duration::from_secs(5).min(options.timeout))
            .timeout(options.timeout);
        if !options.allow_private {
            builder = builder.dns_resolver(Arc::new(GuardedResolver::default()));
        }
        Ok(Self {
            store,
            key,
            client: builder.build()?,
            options,
            holder: crate::holder::new_id(),
        })
    }

    /// Delivers until `stop`; then lets attempts in flight end and gives up
    /// the claims not attempted, so a restart sends them at once.
    pub async fn run(self, stop: CancellationToken) {
        let mut housekeeping_due = tokio::time::Instant::now();
        loop {
            if stop.is_cancelled() {
                break;
            }
            if tokio::time::Instant::now() >= housekeeping_due {
                housekeeping_due += HOUSEKEEPING;
                if let Err(e) = self.housekeeping().await {
                    tracing::warn!(error = %e, "webhook housekeeping failed");
                }
            }
            let sent = tokio::select! {
                sent = self.pass() => sent,
                _ = stop.cancelled() => break,
            };
            let idle = match sent {
                Ok(n) => n == 0,
                Err(e) => {
                    tracing::warn!(error = %e, "webhook delivery pass failed");
                    true
                }
            };
            if idle {
                tokio::select! {
                    _ = tokio::time::sleep(self.options.poll) => {}
                    _ = stop.cancelled() => break,
                }
            }
        }
        match self.store.release_deliveries(&self.holder).await {
            Ok(0) => {}
            Ok(n) => tracing::info!(released = n, "webhook deliveries left for the next start"),
            Err(e) => tracing::warn!(error = %e, "releasing webhook deliveries failed"),
        }
    }

    /// Claims what is due (up to the concurrency) and attempts it all;
    /// returns how many were attempted.
    pub async fn pass(&self) -> Result<usize, StoreError> {
        let lease = self.options.timeout + Duration::from_secs(30);
        let until = stamp(time::OffsetDateTime::now_utc() + lease);
        let due = self
            .store
            .claim_deliveries(&self.holder, &until, self.options.concurrency.max(1) as i64)
            .await?;
        let n = due.len();
        let results: Vec<Result<(), StoreError>> = futures::stream::iter(due)
            .map(|d| self.attempt(d))
            .buffer_unordered(self.options.concurrency.max(1))
            .collect()
            .await;
        results.into_iter().collect::<Result<Vec<()>, _>>()?;
        Ok(n)
    }

    /// Releases claims of holders that died on this machine, and prunes
    /// deliveries past their retention.
    async fn housekeeping(&self) -> Result<(), StoreError> {
        for holder in self.store.delivery_holders().await? {
            if crate::holder::is_dead(&holder) {
                let n = self.store.release_deliveries(&holder).await?;
                tracing::info!(
                    holder,
                    released = n,
                    "took over webhook deliveries of a dead process"
                );
            }
        }
        let before = stamp(time::OffsetDateTime::now_utc() - self.options.retention);
        self.store.prune_outbox(&before).await?;
        Ok(())
    }

    /// One attempt of one delivery, and its outcome recorded.
    async fn attempt(&self, d: DueDelivery) -> Result<(), StoreError> {
        let answer = self.send(&d).await;
        if let Ok(a) = &answer
            && a.status == StatusCode::GONE
        {
            return self.disable(&d, &a.text).await;
        }
        let (status, error, retry_after) = match answer {
            Ok(a) if a.status.is_success() => (Some(a.status.as_u16()), None, None),
            Ok(a) => (
                Some(a.status.as_u16()),
                Some(format!("HTTP {}: {}", a.status, a.text)),
                a.retry_after,
            ),
            Err(e) => (None, Some(e), None),
        };
        let made = d.attempts + 1;
        let retry = error.as_ref().and_then(|_| {
            let wait = *self.options.retry_schedule.get(made as usize - 1)?;
            let wait = jittered(wait).max(retry_after.unwrap_or_default());
            Some(stamp(time::OffsetDateTime::now_utc() + wait))
        });
        let next = match (&error, &retry) {
            (None, _) => Next::Delivered,
            (Some(_), Some(at)) => Next::RetryAt(at),
            (Some(_), None) => Next::Failed,
        };
        let outcome = next.name();
        if let Some(e) = &error {
            tracing::info!(event = %d.event_id, subscription = %d.subscription_id, attempt = made, outcome, error = %e, "webhook attempt failed");
        }
        crate::metrics::webhook_delivery(outcome);
        let attempt = Attempt {
            status,
            error: error.as_deref(),
            next,
        };
        if !self
            .store
            .record_attempt(&d, &self.holder, &attempt)
            .await?
        {
            tracing::warn!(event = %d.event_id, "a webhook delivery's claim passed to another dispatcher");
        }
        Ok(())
    }

    /// The receiver said it is gone for good: its subscription stops.
    async fn disable(&self, d: &DueDelivery, answer: &str) -> Result<(), StoreError> {
        let reason = format!("the receiver answered 410 Gone: {answer}");
        self.store
            .disable_subscription(&d.subscription_id, &reason)
            .await?;
        tracing::warn!(subscription = %d.subscription_id, "webhook subscription disabled: its receiver answered 410 Gone");
        crate::metrics::webhook_delivery("disabled");
        let attempt = Attempt {
            status: Some(410),
            error: Some(&reason),
            next: Next::Failed,
        };
        self.store.record_attempt(d, &self.holder, &attempt).await?;
        Ok(())
    }

    /// POSTs the event: the receiver's answer, or why there was none.
    async fn send(&self, d: &DueDelivery) -> Result<Answer, String> {
        let url = check_url(&d.url, self.options.allow_private).map_err(|e| e.to_string())?;
        let secret = signing::open(&self.key, &d.subscription_id, &d.sealed_secret)
            .map_err(|_| "the signing secret cannot be opened with this master key".to_owned())?;
        let timestamp = time::OffsetDateTime::now_utc().unix_timestamp();
        let headers = signing::headers(&secret, &d.event_id, timestamp, &d.body)
            .map_err(|e| format!("signing: {e}"))?;
        let mut request = self
            .client
            .post(url)
            .header(CONTENT_TYPE, "application/json")
            .header(
                USER_AGENT,
                concat!("mdmhub-webhooks/", env!("CARGO_PKG_VERSION")),
            )
            .body(d.body.clone());
        for (name, value) in headers {
            request = request.header(name, value);
        }
        // Errors without the URL: it may carry the receiver's own token.
        let response = request
            .send()
            .await
            .map_err(|e| e.without_url().to_string())?;
        let status = response.status();
        if status.is_success() {
            return Ok(Answer {
                status,
                text: String::new(),
                retry_after: None,
            });
        }
        let retry_after = response
            .headers()
            .get(RETRY_AFTER)
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.trim().parse::<u64>().ok())
            .map(|s| Duration::from_secs(s.min(3600)));
        let text = response.text().await.unwrap_or_default();
        Ok(Answer {
            status,
            text: text.chars().take(ANSWER_KEPT).collect(),
            retry_after,
        })
    }
}

/// A receiver's answer to one attempt.
struct Answer {
    status: StatusCode,
    /// The start of the body of a failure.
    text: String,
    /// Its `Retry-After` in seconds (at most an hour).
    retry_after: Option<Duration>,
}

/// `wait` spread by up to ±10%, so receivers that failed together are not
/// retried together.
fn jittered(wait: Duration) -> Duration {
    wait.mul_f64(rand::random_range(0.9..1.1))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn receiver_urls_are_checked() {
        assert!(check_url("https://hooks.example.com/in?t=1", false).is_ok());
        assert!(matches!(
            check_url("http://hooks.example.com", false),
            Err(UrlError::Scheme)
        ));
        assert!(matches!(check_url("ftp://x", true), Err(UrlError::Scheme)));
        assert!(matches!(
            check_url("https://u:p@hooks.example.com", false),
            Err(UrlError::Credentials)
        ));
        for private in [
            "https://127.0.0.1:9/x",
            "https://10.1.2.3",
            "https://[::1]/",
            "https://localhost/",
        ] {
            assert!(
                matches!(check_url(private, false), Err(UrlError::Private(_))),
                "{private}"
            );
        }
        assert!(check_url("http://127.0.0.1:9/x", true).is_ok());
        assert!(check_url("not a url", true).is_err());
        let w = jittered(Duration::from_secs(100));
        assert!(w >= Duration::from_secs(90) && w <= Duration::from_secs(110));
    }
}
