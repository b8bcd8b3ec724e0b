//! Per-account rate limits: the connector's token buckets (optionally per
//! method) and a cap on requests in flight, or the operator's override;
//! and the vendor's own word: a 429 pauses every request of the account
//! until its `Retry-After`, not only the one that met it.

use std::num::NonZeroU32;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use governor::clock::{Clock, DefaultClock};
use governor::{DefaultDirectRateLimiter, Quota};
use tokio::sync::{OwnedSemaphorePermit, Semaphore};

use crate::contract::{HttpError, Method, RatePolicy};

/// The operator's `--rate-limit N/s` (or `N/m`, `N/h`) and `--max-concurrent`.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct RateOverride {
    /// Requests allowed per `per`.
    pub requests: u32,
    /// The window.
    pub per: Duration,
    /// Requests in flight at once, if overridden.
    pub max_concurrent: Option<u32>,
}

impl std::fmt::Display for RateOverride {
    /// The form `FromStr` reads: `N/s`, `N/m` or `N/h`.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let unit = match self.per.as_secs() {
            1 => "s",
            60 => "m",
            _ => "h",
        };
        write!(f, "{}/{unit}", self.requests)
    }
}

impl std::str::FromStr for RateOverride {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, String> {
        let (n, unit) = s
            .split_once('/')
            .ok_or_else(|| format!("rate `{s}`: expected N/s, N/m or N/h"))?;
        let requests: u32 = n
            .trim()
            .parse()
            .ok()
            .filter(|n| *n > 0)
            .ok_or_else(|| format!("rate `{s}`: N must be a positive integer"))?;
        let per = match unit.trim() {
            "s" => Duration::from_secs(1),
            "m" => Duration::from_secs(60),
            "h" => Duration::from_secs(3600),
            other => return Err(format!("rate `{s}`: unknown unit `{other}` (s, m or h)")),
        };
        Ok(Self {
            requests,
            per,
            max_concurrent: None,
        })
    }
}

struct Bucket {
    methods: Vec<Method>,
    limiter: DefaultDirectRateLimiter,
}

/// The limits one account's requests share.
pub struct RateLimits {
    buckets: Vec<Bucket>,
    in_flight: Arc<Semaphore>,
    /// No request starts before this (the vendor answered 429): the other
    /// requests in flight or queued would only spend 429s of their own.
    paused_until: Mutex<Option<Instant>>,
    wait_count: AtomicU64,
    wait_ms: AtomicU64,
}

impl RateLimits {
    /// Builds the limits from the connector's policy, or the override.
    pub fn new(policy: &RatePolicy, over: Option<&RateOverride>) -> Self {
        let specs: Vec<(u32, Duration, Vec<Method>)> = match over {
            Some(o) => vec![(o.requests, o.per, vec![])],
            None => policy
                .buckets
                .iter()
                .map(|b| {
                    (
                        b.requests,
                        Duration::from_millis(b.window_ms.into()),
                        b.methods.clone(),
                    )
                })
                .collect(),
        };
        let buckets = specs
            .into_iter()
            .filter_map(|(requests, window, methods)| {
                let burst = NonZeroU32::new(requests)?;
                // Refill evenly: one request every window/requests, with a
                // burst of the whole window's allowance.
                let quota = Quota::with_period(window / requests)?.allow_burst(burst);
                Some(Bucket {
                    methods,
                    limiter: DefaultDirectRateLimiter::direct(quota),
                })
            })
            .collect();
        let concurrent = over
            .and_then(|o| o.max_concurrent)
            .unwrap_or(policy.max_concurrent)
            .max(1);
        Self {
            buckets,
            in_flight: Arc::new(Semaphore::new(concurrent as usize)),
            paused_until: Mutex::new(None),
            wait_count: AtomicU64::new(0),
            wait_ms: AtomicU64::new(0),
        }
    }

    /// Waits for a slot and a token in every bucket matching `method`. A wait
    /// that would pass `deadline` returns `rate-limited` with its length.
    pub async fn acquire(
        &self,
        method: Method,
        deadline: Instant,
    ) -> Result<OwnedSemaphorePermit, HttpError> {
        let remaining = deadline.saturating_duration_since(Instant::now());
        let permit = tokio::time::timeout(remaining, self.in_flight.clone().acquire_owned())
            .await
            .map_err(|_| HttpError::RateLimited(1000))?
            .expect("the semaphore is never closed");
        while let Some(until) = self.paused_until() {
            if until > deadline {
                let wait = until.saturating_duration_since(Instant::now());
                return Err(HttpError::RateLimited(wait.as_millis().max(1) as u64));
            }
            tokio::time::sleep_until(until.into()).await;
        }
        for bucket in self
            .buckets
            .iter()
            .filter(|b| b.methods.is_empty() || b.methods.contains(&method))
        {
            while let Err(not_until) = bucket.limiter.check() {
                let wait = not_until.wait_time_from(DefaultClock::default().now());
                if Instant::now() + wait > deadline {
                    return Err(HttpError::RateLimited(wait.as_millis().max(1) as u64));
                }
                self.record_wait(wait);
                tokio::time::sleep(wait).await;
            }
        }
        Ok(permit)
    }

    /// Holds every request of the account back for `wait` from now (the
    /// vendor answered 429), or longer if already paused longer.
    pub fn pause(&self, wait: Duration) {
        let until = Instant::now() + wait;
        let mut paused = self.paused_until.lock().unwrap_or_else(|e| e.into_inner());
        if paused.is_none_or(|p| p < until) {
            *paused = Some(until);
        }
    }

    /// When a pause in effect ends.
    fn paused_until(&self) -> Option<Instant> {
        let paused = self.paused_until.lock().unwrap_or_else(|e| e.into_inner());
        paused.filter(|until| *until > Instant::now())
    }

    /// Counts a wait (limiter or vendor 429) for progress reports.
    pub fn record_wait(&self, wait: Duration) {
        self.wait_count.fetch_add(1, Ordering::Relaxed);
        self.wait_ms
            .fetch_add(wait.as_millis() as u64, Ordering::Relaxed);
    }

    /// (number of waits, total milliseconds waited).
    pub fn waits(&self) -> (u64, u64) {
        (
            self.wait_count.load(Ordering::Relaxed),
            self.wait_ms.load(Ordering::Relaxed),
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::contract::RateBucket;

    fn policy(buckets: Vec<RateBucket>, max_concurrent: u32) -> RatePolicy {
        RatePolicy {
            buckets,
            max_concurrent,
        }
    }

    #[test]
    fn parses_overrides() {
        let o: RateOverride = "20/s".parse().unwrap();
        assert_eq!((o.requests, o.per), (20, Duration::from_secs(1)));
        assert_eq!(
            "10000/h".parse::<RateOverride>().unwrap().per,
            Duration::from_secs(3600)
        );
        assert!("0/s".parse::<RateOverride>().is_err());
        assert!("5/day".parse::<RateOverride>().is_err());
    }

    #[tokio::test]
    async fn a_wait_beyond_the_deadline_is_rate_limited() {
        let limits = RateLimits::new(
            &policy(
                vec![RateBucket {
                    requests: 2,
                    window_ms: 60_000,
                    methods: vec![],
                }],
                4,
            ),
            None,
        );
        let deadline = Instant::now() + Duration::from_secs(1);
        drop(limits.acquire(Method::Get, deadline).await.unwrap());
        drop(limits.acquire(Method::Get, deadline).await.unwrap());
        match limits.acquire(Method::Get, deadline).await {
            Err(HttpError::RateLimited(ms)) => assert!(ms > 20_000, "wait {ms} ms"),
            other => panic!("expected rate-limited, got {other:?}"),
        }
    }

    #[tokio::test]
    async fn method_buckets_are_separate() {
        let writes = RateBucket {
            requests: 1,
            window_ms: 60_000,
            methods: vec![Method::Post],
        };
        let limits = RateLimits::new(&policy(vec![writes], 4), None);
        let deadline = Instant::now() + Duration::from_millis(200);
        drop(limits.acquire(Method::Post, deadline).await.unwrap());
        assert!(limits.acquire(Method::Post, deadline).await.is_err());
        for _ in 0..50 {
            drop(limits.acquire(Method::Get, deadline).await.unwrap());
        }
    }

    #[tokio::test]
    async fn buckets_pace_requests_and_count_waits() {
        // 10/s with a burst of 10: the next 5 wait about 100 ms each.
        let limits = RateLimits::new(&policy(vec![], 4), Some(&"10/s".parse().unwrap()));
        let start = Instant::now();
        let deadline = start + Duration::from_secs(5);
        for _ in 0..15 {
            drop(limits.acquire(Method::Get, deadline).await.unwrap());
        }
        assert!(
            start.elapsed() >= Duration::from_millis(400),
            "{:?}",
            start.elapsed()
        );
        assert!(limits.waits().0 >= 4);
    }

    #[tokio::test]
    async fn a_vendor_pause_holds_every_request_back() {
        let limits = RateLimits::new(&policy(vec![], 4), None);
        limits.pause(Duration::from_millis(300));
        // A shorter pause never shortens the one in effect.
        limits.pause(Duration::from_millis(10));
        let start = Instant::now();
        match limits
            .acquire(Method::Get, start + Duration::from_millis(100))
            .await
        {
            Err(HttpError::RateLimited(ms)) => assert!((150..=300).contains(&ms), "wait {ms} ms"),
            other => panic!("expected rate-limited, got {other:?}"),
        }
        let deadline = start + Duration::from_secs(5);
        let (a, b) = tokio::join!(
            limits.acquire(Method::Get, deadline),
            limits.acquire(Method::Post, deadline)
        );
        drop((a.unwrap(), b.unwrap()));
        let waited = start.elapsed();
        assert!(
            waited >= Duration::from_millis(290) && waited < Duration::from_secs(2),
            "{waited:?}"
        );
        // Over: no wait now.
        let again = Instant::now();
        drop(limits.acquire(Method::Get, deadline).await.unwrap());
        assert!(again.elapsed() < Duration::from_millis(50));
    }
}
