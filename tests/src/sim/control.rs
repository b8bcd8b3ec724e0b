//! What every simulator shares: fault injection, the vendor's request
//! budget, request counters and the record of actions received, plus the
//! `/_sim/*` endpoints that expose them.

use std::collections::VecDeque;
use std::sync::Arc;
use std::sync::Mutex;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use axum::extract::State;
use axum::routing::{get, post};
use axum::{Json, Router};
use serde::{Deserialize, Serialize};

/// Faults to inject, settable at start (flags) and at run time
/// (`POST /_sim/faults` with a JSON object of the fields to change).
#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq)]
#[serde(default)]
pub struct Faults {
    /// The next N requests get 429.
    pub throttle_burst: u32,
    /// `Retry-After` seconds on those 429s; `None` sends no header.
    pub throttle_retry_after: Option<u32>,
    /// The next N requests get a 5xx.
    pub error_burst: u32,
    /// The status of those errors (default 503).
    pub error_status: Option<u16>,
    /// Delay added to every response.
    pub slow_ms: u64,
    /// The device list page starting at this offset (or, for cursor paging,
    /// this page number; for Intune, the index of the page's first device)
    /// answers with malformed JSON, every time.
    pub malformed_page: Option<u64>,
    /// When the device list page at this offset (or page number) is served,
    /// the first device of the fleet is deleted (once), as if an admin
    /// removed it mid-walk: offset paging then skips a live device.
    pub delete_during_walk_at: Option<u64>,
}

/// The vendor's request budget: `limit` requests per fixed `window`.
/// (Vendors with several budgets, like Intune, keep [`SlidingWindow`]s.)
#[derive(Debug, Clone, Copy)]
pub struct BudgetSpec {
    /// Requests allowed per window.
    pub limit: u32,
    /// Window length.
    pub window: Duration,
    /// Whether 429s for a spent budget carry `Retry-After`.
    pub retry_after: bool,
}

impl BudgetSpec {
    /// No budget to speak of: benchmarks and large test fleets.
    pub fn unlimited() -> Self {
        Self {
            limit: u32::MAX,
            window: Duration::from_secs(3600),
            retry_after: true,
        }
    }
}

/// One action the simulator received.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct ActionRecord {
    /// The device acted on.
    pub device_id: String,
    /// The vendor's action name.
    pub action: String,
    /// The JSON body, or `null`.
    pub body: serde_json::Value,
}

/// What a request meets before the vendor's routes.
#[derive(Debug, PartialEq)]
pub enum Gate {
    /// Go on.
    Pass,
    /// Answer 429, with `Retry-After` seconds if `Some`.
    Throttle(Option<u64>),
    /// Answer this 5xx.
    Fail(u16),
}

struct Window {
    started: Instant,
    used: u32,
}

/// At most `limit` hits in any span of `window`: a log of recent hits.
#[derive(Debug)]
pub struct SlidingWindow {
    limit: u32,
    window: Duration,
    hits: VecDeque<Instant>,
}

impl SlidingWindow {
    /// An empty window allowing `limit` (at least 1) hits per `window`.
    pub fn new(limit: u32, window: Duration) -> Self {
        Self {
            limit: limit.max(1),
            window,
            hits: VecDeque::new(),
        }
    }

    /// How long until one more hit fits; zero if it fits now.
    pub fn wait(&mut self, now: Instant) -> Duration {
        while let Some(first) = self.hits.front() {
            if now.duration_since(*first) < self.window {
                break;
            }
            self.hits.pop_front();
        }
        let over = (self.hits.len() + 1).saturating_sub(self.limit as usize);
        match over {
            0 => Duration::ZERO,
            // The hit that must leave the window before one more fits.
            n => (self.hits[n - 1] + self.window).saturating_duration_since(now),
        }
    }

    /// Records a hit (after [`SlidingWindow::wait`] said it fits).
    pub fn hit(&mut self, now: Instant) {
        self.hits.push_back(now);
    }
}

/// Whole seconds for a `Retry-After` header: rounded up, at least 1.
pub fn retry_after_secs(wait: Duration) -> u64 {
    (wait.as_secs_f64().ceil() as u64).max(1)
}

/// Shared simulator state outside the fleet.
pub struct Control {
    faults: Mutex<Faults>,
    budget: BudgetSpec,
    window: Mutex<Window>,
    actions: Mutex<Vec<ActionRecord>>,
    requests: AtomicU64,
    throttled: AtomicU64,
}

/// Counters reported at `GET /_sim/stats`.
#[derive(Debug, Clone, Copy, Serialize, Deserialize, PartialEq)]
pub struct Stats {
    /// Requests received (control endpoints excluded).
    pub requests: u64,
    /// Requests answered 429.
    pub throttled: u64,
}

impl Control {
    /// Fresh state with these faults and no budget of its own (the
    /// simulator keeps its vendor's budget and calls [`Control::gate_faults`]).
    pub fn without_budget(faults: Faults) -> Arc<Self> {
        Self::new(faults, BudgetSpec::unlimited())
    }

    /// Fresh state with these faults and budget.
    pub fn new(faults: Faults, budget: BudgetSpec) -> Arc<Self> {
        Arc::new(Self {
            faults: Mutex::new(faults),
            budget,
            window: Mutex::new(Window {
                started: Instant::now(),
                used: 0,
            }),
            actions: Mutex::new(Vec::new()),
            requests: AtomicU64::new(0),
            throttled: AtomicU64::new(0),
        })
    }

    /// Counts a request, applies the delay, the bursts and the budget.
    pub async fn gate(&self) -> Gate {
        let gate = match self.gate_faults().await {
            Gate::Pass => self.spend(),
            failed => return failed,
        };
        if matches!(gate, Gate::Throttle(_)) {
            self.note_throttled();
        }
        gate
    }

    /// Counts a request, applies the delay and the bursts, not the budget.
    pub async fn gate_faults(&self) -> Gate {
        self.requests.fetch_add(1, Ordering::Relaxed);
        let (slow, gate) = {
            let mut f = self.faults.lock().unwrap();
            let gate = if f.throttle_burst > 0 {
                f.throttle_burst -= 1;
                Gate::Throttle(f.throttle_retry_after.map(u64::from))
            } else if f.error_burst > 0 {
                f.error_burst -= 1;
                Gate::Fail(f.error_status.unwrap_or(503))
            } else {
                Gate::Pass
            };
            (f.slow_ms, gate)
        };
        if slow > 0 {
            tokio::time::sleep(Duration::from_millis(slow)).await;
        }
        if matches!(gate, Gate::Throttle(_)) {
            self.note_throttled();
        }
        gate
    }

    /// Counts a 429 the simulator answered from its own budget.
    pub fn note_throttled(&self) {
        self.throttled.fetch_add(1, Ordering::Relaxed);
    }

    fn spend(&self) -> Gate {
        let mut w = self.window.lock().unwrap();
        let elapsed = w.started.elapsed();
        if elapsed >= self.budget.window {
            w.started = Instant::now();
            w.used = 0;
        }
        if w.used >= self.budget.limit {
            let left = self.budget.window.saturating_sub(w.started.elapsed());
            let secs = retry_after_secs(left);
            return Gate::Throttle(self.budget.retry_after.then_some(secs));
        }
        w.used += 1;
        Gate::Pass
    }

    /// The current faults.
    pub fn faults(&self) -> Faults {
        self.faults.lock().unwrap().clone()
    }

    /// Replaces the faults.
    pub fn set_faults(&self, faults: Faults) {
        *self.faults.lock().unwrap() = faults;
    }

    /// Clears `delete_during_walk_at` if it equals `at`; true if it did.
    pub fn take_delete_during_walk(&self, at: u64) -> bool {
        let mut f = self.faults.lock().unwrap();
        if f.delete_during_walk_at == Some(at) {
            f.delete_during_walk_at = None;
            return true;
        }
        false
    }

    /// Records an action.
    pub fn record(&self, action: ActionRecord) {
        self.actions.lock().unwrap().push(action);
    }

    /// Every action received, oldest first.
    pub fn actions(&self) -> Vec<ActionRecord> {
        self.actions.lock().unwrap().clone()
    }

    /// The counters.
    pub fn stats(&self) -> Stats {
        Stats {
            requests: self.requests.load(Ordering::Relaxed),
            throttled: self.throttled.load(Ordering::Relaxed),
        }
    }

    /// The `/_sim/*` endpoints: `GET actions`, `GET stats`, `GET|POST faults`.
    pub fn router(self: &Arc<Self>) -> Router {
        Router::new()
            .route("/_sim/actions", get(|State(c): State<Arc<Control>>| async move { Json(c.actions()) }))
            .route("/_sim/stats", get(|State(c): State<Arc<Control>>| async move { Json(c.stats()) }))
            .route(
                "/_sim/faults",
                post(|State(c): State<Arc<Control>>, Json(patch): Json<serde_json::Value>| async move {
                    let mut merged = serde_json::to_value(c.faults()).expect("faults serialize");
                    if let (Some(m), Some(p)) = (merged.as_object_mut(), patch.as_object()) {
                        for (k, v) in p {
                            m.insert(k.clone(), v.clone());
                        }
                    }
                    match serde_json::from_value::<Faults>(merged) {
                        Ok(f) => {
                            c.set_faults(f.clone());
                            Ok(Json(f))
                        }
                        Err(e) => Err((axum::http::StatusCode::BAD_REQUEST, e.to_string())),
                    }
                })
                .get(|State(c): State<Arc<Control>>| async move { Json(c.faults()) }),
            )
            .with_state(self.clone())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn bursts_then_budget() {
        let c = Control::new(
            Faults {
                throttle_burst: 1,
                throttle_retry_after: Some(2),
                error_burst: 1,
                ..Faults::default()
            },
            BudgetSpec {
                limit: 2,
                window: Duration::from_secs(3600),
                retry_after: false,
            },
        );
        assert_eq!(c.gate().await, Gate::Throttle(Some(2)));
        assert_eq!(c.gate().await, Gate::Fail(503));
        assert_eq!(c.gate().await, Gate::Pass);
        assert_eq!(c.gate().await, Gate::Pass);
        assert_eq!(c.gate().await, Gate::Throttle(None));
        assert_eq!(c.stats().throttled, 2);
    }

    #[test]
    fn sliding_window() {
        let mut w = SlidingWindow::new(2, Duration::from_secs(20));
        let t0 = Instant::now();
        w.hit(t0);
        assert_eq!(w.wait(t0 + Duration::from_secs(5)), Duration::ZERO);
        w.hit(t0 + Duration::from_secs(5));
        assert_eq!(w.wait(t0 + Duration::from_secs(6)), Duration::from_secs(14));
        assert_eq!(w.wait(t0 + Duration::from_secs(20)), Duration::ZERO);
        assert_eq!(retry_after_secs(Duration::from_millis(100)), 1);
        assert_eq!(retry_after_secs(Duration::from_millis(14_001)), 15);
    }
}
