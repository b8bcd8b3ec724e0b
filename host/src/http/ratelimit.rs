//! Per-account rate limits: the connector's token buckets (optionally per
//! method) and a cap on requests in flight, or the operator's override;
//! and the vendor's own word: a 429 pauses every request of the account
//! until its `Retry-After`, not only the one that met it, and the
//! account's buckets then pace evenly, a little below their allowance.

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
    /// The allowance: `requests` per `window`.
    requests: u32,
    window: Duration,
    /// The limiter in use: the allowance with its whole burst, until the
    /// vendor answers 429 (see [`RateLimits::pause`]).
    pacing: Mutex<Pacing>,
    /// When a request last waited for this bucket: a 429 while it was
    /// spent says the vendor counts differently; one while it had room
    /// left comes from a limit it does not describe.
    waited_at: Mutex<Option<Instant>>,
}

/// A bucket's limiter and how far below the allowance it paces.
struct Pacing {
    limiter: Arc<DefaultDirectRateLimiter>,
    /// In twentieths of the allowance (20 = not slowed).
    twentieths: u32,
}

impl Bucket {
    fn pacing(&self) -> std::sync::MutexGuard<'_, Pacing> {
        self.pacing.lock().unwrap_or_else(|e| e.into_inner())
    }

    fn limiter(&self) -> Arc<DefaultDirectRateLimiter> {
        self.pacing().limiter.clone()
    }

    /// After a 429 met while this bucket was spent (a request waited for it
    /// within its window): pace evenly (no burst) and a twentieth slower
    /// than before, down to half the allowance, for the rest of the
    /// session (a sync run, a live read). A burst of the whole allowance
    /// followed by its refill puts up to twice the allowance in one of
    /// the vendor's windows; even pacing right at the allowance still
    /// spills into the next window now and then.
    fn slow_down(&self) {
        let waited = *self.waited_at.lock().unwrap_or_else(|e| e.into_inner());
        if waited.is_none_or(|t| t.elapsed() > self.window) {
            return;
        }
        let mut pacing = self.pacing();
        pacing.twentieths = pacing.twentieths.saturating_sub(1).max(10);
        let period = self.window * 20 / (self.requests * pacing.twentieths);
        if let Some(quota) = Quota::with_period(period) {
            pacing.limiter = Arc::new(DefaultDirectRateLimiter::direct(quota));
        }
    }
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
                    requests,
                    window,
                    pacing: Mutex::new(Pacing {
                        limiter: Arc::new(DefaultDirectRateLimiter::direct(quota)),
                        twentieths: 20,
                    }),
                    waited_at: Mutex::new(None),
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
            while let Err(not_until) = bucket.limiter().check() {
                *bucket.waited_at.lock().unwrap_or_else(|e| e.into_inner()) = Some(Instant::now());
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
        let now = Instant::now();
        let until = now + wait;
        let mut paused = self.paused_until.lock().unwrap_or_else(|e| e.into_inner());
        // The requests in flight when the budget ran out meet 429s too:
        // one episode slows the buckets once.
        let new_episode = paused.is_none_or(|p| p <= now);
        if paused.is_none_or(|p| p < until) {
            *paused = Some(until);
        }
        drop(paused);
        if new_episode {
            for bucket in &self.buckets {
                bucket.slow_down();
            }
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

    /// `n` acquisitions (before `deadline`) take at least `least`.
    async fn assert_takes_at_least(
        limits: &RateLimits,
        n: usize,
        deadline: Instant,
        least: Duration,
    ) {
        let start = Instant::now();
        for _ in 0..n {
            drop(limits.acquire(Method::Get, deadline).await.unwrap());
        }
        assert!(start.elapsed() >= least, "{:?}", start.elapsed());
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
        let deadline = Instant::now() + Duration::from_secs(5);
        assert_takes_at_least(&limits, 15, deadline, Duration::from_millis(400)).await;
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

    #[tokio::test]
    async fn after_a_429_the_buckets_pace_evenly_and_a_little_slower() {
        let limits = RateLimits::new(&policy(vec![], 4), Some(&"20/s".parse().unwrap()));
        let pace = |l: &RateLimits| l.buckets[0].pacing().twentieths;
        let deadline = Instant::now() + Duration::from_secs(5);
        // A 429 while the bucket has room: a limit it does not describe,
        // waited out without slowing.
        limits.pause(Duration::from_millis(20));
        assert_eq!(pace(&limits), 20);
        // Spent: the 21st request waits.
        for _ in 0..21 {
            drop(limits.acquire(Method::Get, deadline).await.unwrap());
        }
        // The four requests in flight all meet the 429: one slow-down.
        for _ in 0..4 {
            limits.pause(Duration::from_millis(20));
        }
        assert_eq!(pace(&limits), 19);
        drop(limits.acquire(Method::Get, deadline).await.unwrap());
        // No burst left: 5 more take 5 periods of 1/19 s.
        assert_takes_at_least(&limits, 5, deadline, Duration::from_millis(240)).await;
        // A later 429 (a new episode) slows once more, down to half at most.
        tokio::time::sleep(Duration::from_millis(30)).await;
        limits.pause(Duration::from_millis(1));
        assert_eq!(pace(&limits), 18);
        for _ in 0..20 {
            tokio::time::sleep(Duration::from_millis(2)).await;
            limits.pause(Duration::from_millis(1));
        }
        assert_eq!(pace(&limits), 10);
    }
}
