//! Webhooks through the API: subscriptions per workspace, events signed per
//! Standard Webhooks and checked with the scheme's reference verifier,
//! retries after failures, a 410 that disables, and a restart (and a
//! holder that died) in the middle of a delivery, after which every event
//! still arrives with its id.

use std::collections::{BTreeMap, BTreeSet};
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::http::{HeaderMap, StatusCode as AxumStatus};
use axum::routing::post;
use mdmhub::api::ServeOptions;
use mdmhub::webhooks::deliver::DeliveryOptions;
use reqwest::StatusCode;
use serde_json::{Value, json};

use super::{World, assert_problem, databases, world_with};

/// One request a receiver got.
#[derive(Debug, Clone)]
struct Received {
    path: String,
    headers: HeaderMap,
    body: String,
}

impl Received {
    fn id(&self) -> &str {
        self.headers["webhook-id"].to_str().unwrap()
    }
    fn json(&self) -> Value {
        serde_json::from_str(&self.body).unwrap()
    }
    fn event_type(&self) -> String {
        self.json()["type"].as_str().unwrap().to_owned()
    }
}

/// A loopback receiver: records every request; answers 500 to the next
/// `fail` ones, holds requests while `hang` is set, and answers 410 on
/// `/gone`.
#[derive(Default)]
struct Receiver {
    got: Mutex<Vec<Received>>,
    fail: AtomicUsize,
    hang: AtomicBool,
}

impl Receiver {
    async fn start() -> (Arc<Self>, String) {
        let me = Arc::new(Self::default());
        let state = me.clone();
        let handler = move |uri: axum::http::Uri, headers: HeaderMap, body: String| {
            let me = state.clone();
            async move {
                me.got.lock().unwrap().push(Received {
                    path: uri.path().to_owned(),
                    headers,
                    body,
                });
                if uri.path() == "/gone" {
                    return AxumStatus::GONE;
                }
                if me.hang.load(Ordering::SeqCst) {
                    std::future::pending::<()>().await;
                }
                let failing = me
                    .fail
                    .fetch_update(Ordering::SeqCst, Ordering::SeqCst, |n| n.checked_sub(1))
                    .is_ok();
                if failing {
                    AxumStatus::INTERNAL_SERVER_ERROR
                } else {
                    AxumStatus::NO_CONTENT
                }
            }
        };
        let app = axum::Router::new().route("/{*path}", post(handler));
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let base = format!("http://{}", listener.local_addr().unwrap());
        tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
        (me, base)
    }

    fn got(&self, path: &str) -> Vec<Received> {
        let got = self.got.lock().unwrap();
        got.iter().filter(|r| r.path == path).cloned().collect()
    }

    /// Waits until `done` holds for what `path` got.
    async fn until(&self, path: &str, what: &str, done: impl Fn(&[Received]) -> bool) {
        for _ in 0..600 {
            if done(&self.got(path)) {
                return;
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        let types: Vec<_> = self.got(path).iter().map(Received::event_type).collect();
        panic!("{path}: still waiting for {what}; got {types:?}");
    }
}

/// Fast retries and polling, and loopback receivers allowed.
fn options() -> ServeOptions {
    ServeOptions {
        webhooks: DeliveryOptions {
            retry_schedule: vec![Duration::from_millis(100); 4],
            poll: Duration::from_millis(50),
            timeout: Duration::from_secs(5),
            allow_private: true,
            ..DeliveryOptions::default()
        },
        ..ServeOptions::default()
    }
}

/// Checks every request's signature with the Standard Webhooks reference
/// verifier and returns the event ids by type (each id once).
fn verified(got: &[Received], secret: &str) -> BTreeMap<String, BTreeSet<String>> {
    let verifier = standardwebhooks::Webhook::new(secret).unwrap();
    let mut out: BTreeMap<String, BTreeSet<String>> = BTreeMap::new();
    for r in got {
        verifier
            .verify(r.body.as_bytes(), &r.headers)
            .unwrap_or_else(|e| panic!("bad signature on {}: {e}", r.body));
        assert_eq!(r.headers["content-type"], "application/json");
        let body = r.json();
        assert!(body["timestamp"].is_string() && body["data"].is_object());
        out.entry(r.event_type())
            .or_default()
            .insert(r.id().to_owned());
    }
    out
}

impl World {
    /// Subscribes `url` for workspace A; returns (id, secret).
    async fn subscribe(&self, url: &str, events: Option<&[&str]>) -> (String, String) {
        let mut body = json!({"url": url, "description": "test receiver"});
        if let Some(events) = events {
            body["events"] = json!(events);
        }
        let a = self
            .send("POST", "/v1/webhooks", Some(&self.key_a), Some(&body), &[])
            .await;
        assert_eq!(a.status, StatusCode::CREATED, "{}", a.text);
        let secret = a.body["secret"].as_str().unwrap().to_owned();
        assert!(secret.starts_with("whsec_"));
        (a.body["id"].as_str().unwrap().to_owned(), secret)
    }

    /// Syncs account `acme` through the API and waits for the run to end.
    async fn sync_acme(&self) -> Value {
        let path = format!("/v1/accounts/{}/sync", self.acme.id);
        let started = self.call("POST", &path, Some(&self.key_a)).await;
        assert_eq!(started.status, StatusCode::ACCEPTED, "{}", started.text);
        let run = started.body["run"]["id"].as_str().unwrap().to_owned();
        for _ in 0..600 {
            let r = self.get_a(&format!("/v1/sync-runs/{run}")).await;
            if r["status"] != "running" {
                return r;
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        panic!("sync run {run} did not finish");
    }

    /// Waits until no delivery of subscription `sub` is pending.
    async fn settled(&self, sub: &str) {
        for _ in 0..600 {
            let page = self
                .get_a(&format!("/v1/webhooks/{sub}/deliveries?limit=1000"))
                .await;
            let pending = page["result"]
                .as_array()
                .unwrap()
                .iter()
                .any(|d| d["status"] == "pending");
            if !pending {
                return;
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        panic!("deliveries of {sub} still pending");
    }

    /// A delivery of subscription `sub` by event id.
    async fn delivery(&self, sub: &str, event_id: &str) -> Value {
        let page = self
            .get_a(&format!("/v1/webhooks/{sub}/deliveries?limit=1000"))
            .await;
        page["result"]
            .as_array()
            .unwrap()
            .iter()
            .find(|d| d["event_id"] == event_id)
            .cloned()
            .unwrap_or_else(|| panic!("no delivery of {event_id} in {page}"))
    }
}

/// Calls every webhook route once (for the document check of the main API
/// test) and checks what each answers, including workspace isolation.
pub(super) async fn touch_every_route(w: &World) {
    let (id, _) = w.subscribe("https://hooks.example.com/in", None).await;
    let list = w.get_a("/v1/webhooks").await;
    let mine = &list["result"][0];
    assert_eq!(mine["id"], id.as_str());
    assert_eq!(
        mine["events"].as_array().unwrap().len(),
        7,
        "every type by default"
    );
    assert!(mine.get("secret").is_none(), "the secret is shown once");
    let one = w.get_a(&format!("/v1/webhooks/{id}")).await;
    assert_eq!(one["enabled"], true);
    let path = format!("/v1/webhooks/{id}");
    let change = json!({"events": ["sync.failed"], "enabled": false});
    let changed = w
        .send("PATCH", &path, Some(&w.key_a), Some(&change), &[])
        .await;
    assert_eq!(changed.status, StatusCode::OK, "{}", changed.text);
    assert_eq!(changed.body["events"], json!(["sync.failed"]));
    assert_eq!(changed.body["enabled"], false);
    let deliveries = w.get_a(&format!("{path}/deliveries")).await;
    assert_eq!(deliveries["result_count"], 0);
    // Another workspace sees nothing of it.
    assert_problem(
        &w.call("GET", &path, Some(&w.key_b)).await,
        404,
        "not-found",
    );
    assert_problem(
        &w.call("DELETE", &path, Some(&w.key_b)).await,
        404,
        "not-found",
    );
    // Bad subscriptions are refused with the reason.
    for (body, words) in [
        (json!({"url": "http://hooks.example.com"}), "https"),
        (
            json!({"url": "https://127.0.0.1/x"}),
            "--allow-private-webhooks",
        ),
        (
            json!({"url": "https://hooks.example.com", "events": ["device.exploded"]}),
            "unknown event type",
        ),
        (
            json!({"url": "https://hooks.example.com", "events": []}),
            "empty",
        ),
    ] {
        let a = w
            .send("POST", "/v1/webhooks", Some(&w.key_a), Some(&body), &[])
            .await;
        assert_problem(&a, 422, "invalid-webhook");
        assert!(
            a.body["detail"].as_str().unwrap().contains(words),
            "{}",
            a.text
        );
    }
    let gone = w.call("DELETE", &path, Some(&w.key_a)).await;
    assert_eq!(gone.status, StatusCode::NO_CONTENT, "{}", gone.text);
    assert_problem(
        &w.call("GET", &path, Some(&w.key_a)).await,
        404,
        "not-found",
    );
}

#[tokio::test]
async fn webhooks_are_signed_retried_and_survive_a_restart() {
    for url in databases("webhooks").await {
        let mut w = world_with(&url, options()).await;
        let (rx, rx_base) = Receiver::start().await;
        let (sub, secret) = w.subscribe(&format!("{rx_base}/a"), None).await;

        // Changes at the vendor, and a receiver that fails twice first.
        let ids = w.sim_a.device_ids();
        assert!(w.sim_a.delete_device(&ids[0]) && w.sim_a.delete_device(&ids[1]));
        assert!(
            w.sim_a
                .update_device(&ids[2], |m| m.name = "Renamed Mac".into())
        );
        rx.fail.store(2, Ordering::SeqCst);
        let run = w.sync_acme().await;
        assert_eq!(run["status"], "succeeded", "{run}");
        assert_eq!(run["counts"]["removed"], 2, "{run}");
        rx.until("/a", "2 removals, an update and the run", |got| {
            let types: Vec<_> = got.iter().map(Received::event_type).collect();
            types.iter().filter(|t| *t == "device.removed").count() == 2
                && types.contains(&"device.updated".to_string())
                && types.contains(&"sync.completed".to_string())
        })
        .await;
        w.settled(&sub).await;
        let got = rx.got("/a");
        let by_type = verified(&got, &secret);
        assert_eq!(by_type["device.removed"].len(), 2, "{by_type:?}");
        let updated: Vec<_> = got
            .iter()
            .filter(|r| r.event_type() == "device.updated")
            .map(Received::json)
            .collect();
        assert!(
            updated
                .iter()
                .any(|u| u["data"]["device"]["name"] == "Renamed Mac"),
            "{updated:?}"
        );
        assert!(
            updated
                .iter()
                .all(|u| u["data"]["device"].get("remote_data").is_none())
        );
        let completed = got
            .iter()
            .find(|r| r.event_type() == "sync.completed")
            .unwrap();
        let completed = completed.json();
        assert_eq!(completed["data"]["run"]["id"], run["id"]);
        assert_eq!(completed["data"]["run"]["counts"]["removed"], 2);
        assert!(completed["data"]["run"].get("holder").is_none());
        // The two failures were retried with the same id and recorded.
        let first_id = got[0].id().to_owned();
        assert!(got.iter().filter(|r| r.id() == first_id).count() >= 2);
        let d = w.delivery(&sub, &first_id).await;
        assert_eq!(d["status"], "delivered", "{d}");
        assert!(d["attempts"].as_i64().unwrap() >= 2, "{d}");

        // A re-sync without change announces no device.
        let before = rx.got("/a").len();
        w.sync_acme().await;
        rx.until("/a", "the second run", |got| {
            got.iter()
                .filter(|r| r.event_type() == "sync.completed")
                .count()
                == 2
        })
        .await;
        let since: Vec<_> = rx.got("/a")[before..]
            .iter()
            .map(Received::event_type)
            .collect();
        assert_eq!(since, ["sync.completed"]);

        // An action is announced when it ends, without the PIN a Mac's
        // lock answers with.
        let device = w.get_a("/v1/devices?platform=macos&limit=1").await["result"][0]["id"]
            .as_str()
            .unwrap()
            .to_owned();
        let lock = json!({"action": "lock", "params": {"message": "hi"}});
        let acted = w
            .send(
                "POST",
                &format!("/v1/devices/{device}/actions"),
                Some(&w.key_a),
                Some(&lock),
                &[],
            )
            .await;
        assert!(acted.status.is_success(), "{}", acted.text);
        let pin = acted.body["values"]["pin"].as_str().unwrap().to_owned();
        rx.until("/a", "the action", |got| {
            got.iter().any(|r| r.event_type() == "action.completed")
        })
        .await;
        let action = rx
            .got("/a")
            .into_iter()
            .find(|r| r.event_type() == "action.completed")
            .unwrap();
        let action = action.json();
        assert_eq!(action["data"]["action"]["device_id"], device.as_str());
        assert_eq!(action["data"]["action"]["action"], "lock");
        assert!(!action.to_string().contains(&pin), "no PIN in events");

        // A restart while the receiver holds a delivery: the event comes
        // again, with its id, from the next process.
        rx.hang.store(true, Ordering::SeqCst);
        assert!(
            w.sim_a
                .update_device(&ids[3], |m| m.name = "Held Mac".into())
        );
        let count = rx.got("/a").len();
        w.sync_acme().await;
        rx.until("/a", "a held delivery", |got| got.len() > count)
            .await;
        let held = rx.got("/a")[count].id().to_owned();
        w.stop_server().await;
        // As if a process had claimed them and been killed: a holder on
        // this machine whose process is gone is taken over at once.
        let mut exited = std::process::Command::new("true").spawn().unwrap();
        exited.wait().unwrap();
        let live = mdmhub::holder::new_id();
        let parts: Vec<&str> = live.split(':').collect();
        let dead = format!("{}:{}:{}:dead", parts[0], exited.id(), parts[2]);
        let far = mdmhub::store::stamp(time::OffsetDateTime::now_utc() + time::Duration::hours(1));
        let claimed = w
            .accounts
            .store
            .claim_deliveries(&dead, &far, 1000)
            .await
            .unwrap();
        assert!(
            claimed.iter().any(|d| d.event_id == held),
            "the held event is pending again"
        );
        rx.hang.store(false, Ordering::SeqCst);
        w.start_again(options()).await;
        rx.until("/a", "the held event again", |got| {
            got.iter().filter(|r| r.id() == held).count() >= 2
        })
        .await;
        rx.until("/a", "the rest of that run", |got| {
            let runs: BTreeSet<_> = got
                .iter()
                .filter(|r| r.event_type() == "sync.completed")
                .map(Received::id)
                .collect();
            runs.len() == 3
        })
        .await;
        let all = verified(&rx.got("/a"), &secret);
        assert!(all["device.updated"].len() >= 2, "{all:?}");
        assert_eq!(w.delivery(&sub, &held).await["status"], "delivered");

        // A receiver answering 410 Gone disables its subscription.
        let (gone, _) = w
            .subscribe(&format!("{rx_base}/gone"), Some(&["sync.completed"]))
            .await;
        w.sync_acme().await;
        rx.until("/gone", "the 410", |got| !got.is_empty()).await;
        let mut shown = Value::Null;
        for _ in 0..100 {
            shown = w.get_a(&format!("/v1/webhooks/{gone}")).await;
            if shown["enabled"] == false {
                break;
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        assert_eq!(shown["enabled"], false, "{shown}");
        assert!(shown["disabled_reason"].as_str().unwrap().contains("410"));

        // Workspace B's key sees none of A's subscriptions.
        let b = w.call("GET", "/v1/webhooks", Some(&w.key_b)).await;
        assert_eq!(b.body["result_count"], 0, "{}", b.text);
        w.shut_down().await;
    }
}
