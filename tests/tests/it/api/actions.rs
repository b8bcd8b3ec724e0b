//! Device actions, the audit log, adding accounts, live reads and metrics
//! through the API, against the Iru simulator (SQLite, and PostgreSQL when
//! configured).

use std::path::Path;

use mdmhub_tests::sim::control::Faults;
use reqwest::StatusCode;
use serde_json::{Value, json};

use super::{Answer, TOKEN, World, assert_problem, databases, world};

/// The directory of a SQLite URL's database file (`None` for PostgreSQL).
fn sqlite_dir(url: &str) -> Option<&Path> {
    let path = url.strip_prefix("sqlite://")?.split('?').next()?;
    Path::new(path).parent()
}

/// Whether any file in `dir` (the database, its WAL) holds `needle`.
fn files_contain(dir: &Path, needle: &str) -> bool {
    std::fs::read_dir(dir).unwrap().any(|f| {
        let bytes = std::fs::read(f.unwrap().path()).unwrap_or_default();
        bytes.windows(needle.len()).any(|w| w == needle.as_bytes())
    })
}

impl World {
    /// `POST /v1/devices/{device}/actions` with `body` and an optional idempotency key.
    async fn act(&self, key: &str, device: &str, body: Value, idem: Option<&str>) -> Answer {
        let headers: Vec<_> = idem.map(|k| ("Idempotency-Key", k)).into_iter().collect();
        let path = format!("/v1/devices/{device}/actions");
        self.send("POST", &path, Some(key), Some(&body), &headers)
            .await
    }

    /// The simulator's record of actions named `name`.
    fn sim_actions(&self, name: &str) -> usize {
        let actions = self.sim_a.control().actions();
        actions.iter().filter(|a| a.action == name).count()
    }
}

#[tokio::test]
async fn api_actions_run_once_are_audited_and_never_store_the_pin() {
    for url in databases("actions").await {
        let w = world(&url).await;
        let mac = w.get_a("/v1/devices?platform=macos&limit=1").await["result"][0].clone();
        let device = mac["id"].as_str().unwrap().to_owned();

        // A lock reaches the vendor once; a Mac answers with its PIN, shown once.
        let lock = json!({"action": "lock", "params": {"message": "Call IT"}});
        let first = w
            .act(&w.key_a, &device, lock.clone(), Some("k-lock-1"))
            .await;
        assert_eq!(first.status, StatusCode::ACCEPTED, "{}", first.text);
        let pin = first.body["values"]["pin"].as_str().unwrap().to_owned();
        assert_eq!(pin.len(), 6);
        assert_eq!(first.body["sensitive"], json!(["pin"]));
        assert_eq!(first.body["replayed"], false);
        assert_eq!(w.sim_actions("lock"), 1);

        // The retry replays the stored answer, PIN redacted, and acts no more.
        let again = w
            .act(&w.key_a, &device, lock.clone(), Some("k-lock-1"))
            .await;
        assert_eq!(again.status, StatusCode::ACCEPTED, "{}", again.text);
        assert_eq!(again.headers["idempotent-replayed"], "true");
        assert_eq!(again.body["replayed"], true);
        assert_eq!(again.body["redacted"], true);
        assert_eq!(again.body["values"]["pin"], "(redacted)");
        assert_eq!(again.body["id"], first.body["id"]);
        assert_eq!(w.sim_actions("lock"), 1);
        let other = json!({"action": "lock", "params": {"message": "other"}});
        assert_problem(
            &w.act(&w.key_a, &device, other, Some("k-lock-1")).await,
            422,
            "idempotency-key-reused",
        );

        // Destructive actions need confirming; unconfirmed ones never reach the vendor.
        let erase = json!({"action": "erase", "params": {"pin": "424242"}});
        let refused = w.act(&w.key_a, &device, erase, None).await;
        assert_problem(&refused, 422, "confirmation-required");
        assert!(refused.body["detail"].as_str().unwrap().contains("erase"));
        assert_eq!(w.sim_actions("erase"), 0);
        let confirmed = json!({"action": "erase", "params": {"pin": "424242"}, "confirm": true});
        let erased = w.act(&w.key_a, &device, confirmed, None).await;
        assert_eq!(erased.status, StatusCode::ACCEPTED, "{}", erased.text);
        assert_eq!(w.sim_actions("erase"), 1);

        // A vendor refusal is a 422 problem, audited as failed.
        let unlock = json!({"action": "unlock-account", "params": {}});
        assert_problem(
            &w.act(&w.key_a, &device, unlock, None).await,
            422,
            "action-refused",
        );
        let vendor = json!({"action": "vendor:nosuch"});
        assert_problem(
            &w.act(&w.key_a, &device, vendor, None).await,
            422,
            "unknown-action",
        );

        // The audit log: newest first, paged, by device; no PIN anywhere;
        // refusals before the vendor are there too.
        let log = w.get_a("/v1/actions").await;
        assert_eq!(log["result_count"], 5, "{log}");
        let entries = log["result"].as_array().unwrap();
        assert_eq!(entries[0]["action"], "vendor:nosuch");
        assert_eq!(entries[0]["status"], "refused");
        assert!(
            entries[0]["error"]
                .as_str()
                .unwrap()
                .contains("offers no action")
        );
        assert_eq!(entries[1]["action"], "unlock-account");
        assert_eq!(entries[1]["status"], "failed");
        assert!(entries[1]["error"].is_string());
        assert_eq!(entries[2]["action"], "erase");
        assert_eq!(entries[2]["params"]["pin"], "(redacted)");
        assert_eq!(entries[3]["action"], "erase");
        assert_eq!(entries[3]["status"], "refused");
        assert_eq!(entries[3]["params"]["pin"], "(redacted)");
        assert_eq!(entries[4]["action"], "lock");
        assert_eq!(entries[4]["status"], "accepted");
        assert_eq!(entries[4]["params"]["message"], "Call IT");
        assert_eq!(entries[4]["key_name"], "reader");
        assert_eq!(entries[4]["device_id"], device.as_str());
        let page = w.get_a("/v1/actions?limit=3").await;
        let cursor = page["next_cursor"].as_str().unwrap();
        let rest = w
            .get_a(&format!("/v1/actions?limit=3&cursor={cursor}"))
            .await;
        assert_eq!(rest["result"][0]["id"], entries[3]["id"]);
        assert_eq!(rest["result_count"], 2);
        assert!(rest["next_cursor"].is_null());
        let other_device = w.get_a("/v1/devices?limit=1&platform=ios").await["result"][0]["id"]
            .as_str()
            .unwrap()
            .to_owned();
        let none = w.get_a(&format!("/v1/actions?device={other_device}")).await;
        assert_eq!(none["result_count"], 0);
        let text = w.call("GET", "/v1/actions", Some(&w.key_a)).await.text;
        assert!(!text.contains(&pin) && !text.contains("424242"));
        if let Some(dir) = sqlite_dir(&url) {
            assert!(!files_contain(dir, &pin), "the PIN reached the database");
            assert!(
                !files_contain(dir, "424242"),
                "an erase PIN reached the database"
            );
        }

        // Workspace B can neither act on A's device nor see A's log.
        let b_lock = json!({"action": "restart"});
        assert_problem(
            &w.act(&w.key_b, &device, b_lock, None).await,
            404,
            "not-found",
        );
        let b_log = w.call("GET", "/v1/actions", Some(&w.key_b)).await;
        assert_eq!(b_log.body["result_count"], 0);
        assert_eq!(w.sim_actions("restart"), 0);

        w.shut_down().await;
    }
}

#[tokio::test]
async fn api_adds_checked_accounts_reads_live_and_reports_metrics() {
    for url in databases("live").await {
        let w = world(&url).await;
        let base_url = w._sims.0.base_url.clone();
        let account = |name: &str, token: &str| {
            json!({
                "name": name, "connector": "iru",
                "config": {"subdomain": "acme", "region": "us"},
                "secrets": {"api_token": token},
                "endpoints": [base_url], "interval": "6h",
            })
        };

        // A refused token: 422 with its class, nothing saved.
        let bad = w
            .send(
                "POST",
                "/v1/accounts",
                Some(&w.key_b),
                Some(&account("second", "wrong-token")),
                &[],
            )
            .await;
        assert_problem(&bad, 422, "account-check-failed");
        assert_eq!(bad.body["class"], "unauthorized");
        assert!(bad.body["hint"].is_string());
        let b_accounts = w.call("GET", "/v1/accounts", Some(&w.key_b)).await;
        assert_eq!(b_accounts.body["result_count"], 1);

        // A working one is saved in the key's workspace; secrets never come back.
        let good = w
            .send(
                "POST",
                "/v1/accounts",
                Some(&w.key_b),
                Some(&account("second", TOKEN)),
                &[],
            )
            .await;
        assert_eq!(good.status, StatusCode::CREATED, "{}", good.text);
        assert!(!good.text.contains(TOKEN));
        assert_eq!(good.body["sync_interval_secs"], 6 * 3600);
        let id = good.body["id"].as_str().unwrap();
        assert_eq!(good.headers["location"], format!("/v1/accounts/{id}"));
        let b_accounts = w.call("GET", "/v1/accounts", Some(&w.key_b)).await;
        assert_eq!(b_accounts.body["result_count"], 2);
        assert_eq!(w.get_a("/v1/accounts").await["result_count"], 1);
        let again = w
            .send(
                "POST",
                "/v1/accounts",
                Some(&w.key_b),
                Some(&account("second", TOKEN)),
                &[],
            )
            .await;
        assert_problem(&again, 409, "conflict");
        let unknown = json!({"name": "x", "connector": "nope"});
        assert_problem(
            &w.send("POST", "/v1/accounts", Some(&w.key_a), Some(&unknown), &[])
                .await,
            422,
            "invalid-account",
        );

        // A live read goes to the vendor.
        let device = w.get_a("/v1/devices?limit=1").await["result"][0]["id"]
            .as_str()
            .unwrap()
            .to_owned();
        let live = w.get_a(&format!("/v1/devices/{device}?live=true")).await;
        assert_eq!(live["live"], true);
        assert_eq!(live["id"], device.as_str());
        assert!(live["remote_data"]["live"].is_object());

        // The vendor rate-limits: 429 with when to retry, the same for every vendor.
        w.sim_a.control().set_faults(Faults {
            throttle_burst: 1000,
            throttle_retry_after: Some(120),
            ..Faults::default()
        });
        let limited = w
            .call(
                "GET",
                &format!("/v1/devices/{device}?live=true"),
                Some(&w.key_a),
            )
            .await;
        w.sim_a.control().set_faults(Faults::default());
        assert_problem(&limited, 429, "vendor-rate-limited");
        assert_eq!(limited.headers["retry-after"], "120");
        assert_eq!(limited.headers["ratelimit-limit"], "10000");
        assert_eq!(limited.headers["ratelimit-remaining"], "0");
        assert_eq!(limited.headers["ratelimit-reset"], "120");
        assert_eq!(limited.body["retry_after"], 120);

        // Metrics name routes by template and count what happened.
        for _ in 0..2 {
            w.get_a("/v1/devices?limit=5").await;
        }
        let metrics = w.call("GET", "/metrics", None).await;
        assert_eq!(metrics.status, StatusCode::OK);
        for series in [
            "mdmhub_api_requests_total{method=\"GET\",route=\"/v1/devices/{id}\",status=\"429\"}",
            "mdmhub_api_requests_total{method=\"POST\",route=\"/v1/accounts\",status=\"201\"}",
            "mdmhub_api_request_duration_seconds_bucket",
            "mdmhub_sync_runs_total{outcome=\"succeeded\"}",
            "mdmhub_sync_records_total{change=\"created\"}",
            "mdmhub_connector_calls_total{connector=\"iru\",op=\"get\",outcome=\"ok\"}",
            "mdmhub_connector_calls_total{connector=\"iru\",op=\"check\",outcome=\"error\"}",
            "mdmhub_vendor_http_responses_total{status=\"429\"}",
            "mdmhub_vendor_http_responses_total{status=\"200\"}",
            "mdmhub_list_cache_reads_total{outcome=\"hit\"} ",
            "mdmhub_list_cache_reads_total{outcome=\"miss\"} ",
            "mdmhub_list_cache_bytes ",
        ] {
            assert!(
                metrics.text.contains(series),
                "{series} missing:\n{}",
                metrics.text
            );
        }
        assert!(!metrics.text.contains(&device), "ids never become labels");

        w.shut_down().await;
    }
}
