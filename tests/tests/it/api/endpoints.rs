//! Account endpoints through the API: `endpoints` may reach private
//! addresses, so `POST /v1/accounts` takes them only from a server started
//! with `ServeOptions::api_endpoints` (`serve --allow-api-endpoints`).

use std::time::Duration;

use mdmhub::api::{self, ServeOptions};
use mdmhub::sync::{SyncOptions, Syncer};
use reqwest::StatusCode;
use serde_json::{Value, json};
use tokio::sync::oneshot;

use super::{Answer, TOKEN, World, answer, assert_problem, databases, world};

/// `POST {base}/v1/accounts` with `key` and `body`.
async fn post_account(base: &str, key: &str, body: &Value) -> Answer {
    let res = reqwest::Client::new()
        .post(format!("{base}/v1/accounts"))
        .bearer_auth(key)
        .json(body)
        .send()
        .await
        .unwrap();
    answer(res).await
}

/// The names of workspace A's saved accounts, straight from the store.
async fn saved(w: &World) -> Vec<String> {
    let ws = w
        .accounts
        .store
        .workspace("default")
        .await
        .unwrap()
        .unwrap();
    let rows = w.accounts.store.accounts_in(&ws.id).await.unwrap();
    rows.into_iter().map(|a| a.name).collect()
}

#[tokio::test]
async fn api_account_endpoints_need_the_operator_s_permission() {
    for url in databases("endpoints").await {
        // `world` serves with `api_endpoints: true`; a second server over
        // the same store runs with the default, as `mdmhub serve` does.
        let w = world(&url).await;
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let strict = format!("http://{}", listener.local_addr().unwrap());
        let (stop, stopped) = oneshot::channel::<()>();
        let options = ServeOptions {
            schedule: false,
            grace: Duration::from_secs(5),
            ..ServeOptions::default()
        };
        assert!(!options.api_endpoints, "refused unless the operator allows");
        let syncer = Syncer::new(w.accounts.clone(), SyncOptions::default());
        let server = tokio::spawn(api::serve(listener, syncer, options, async {
            let _ = stopped.await;
        }));

        let sim_url = w._sims.0.base_url.clone();
        let body = |endpoints: Vec<String>| {
            json!({
                "name": "private", "connector": "iru",
                "config": {"subdomain": "acme", "region": "us"},
                "secrets": {"api_token": TOKEN},
                "endpoints": endpoints,
            })
        };
        let requests = || w.sim_a.control().stats().requests;

        // Refused before anything runs: no check() call reaches the
        // simulator, nothing is saved, and the answer says who may set it.
        for endpoints in [
            vec![sim_url.clone()],
            vec![format!("acme.api.kandji.io={sim_url}")],
            vec!["http://169.254.169.254".to_owned()],
        ] {
            let before = requests();
            let refused = post_account(&strict, &w.key_a, &body(endpoints.clone())).await;
            assert_problem(&refused, 422, "invalid-account");
            let detail = refused.body["detail"].as_str().unwrap();
            assert!(
                detail.contains("--allow-api-endpoints") && detail.contains("private"),
                "{detail}"
            );
            assert!(!refused.text.contains(TOKEN));
            assert_eq!(requests(), before, "{endpoints:?}: the vendor was called");
            assert_eq!(saved(&w).await, ["acme"], "{url}: {endpoints:?} was saved");
        }

        // The same account through the server that allows endpoints: checked
        // against the simulator and saved.
        let before = requests();
        let created = post_account(&w.base, &w.key_a, &body(vec![sim_url.clone()])).await;
        assert_eq!(created.status, StatusCode::CREATED, "{}", created.text);
        assert_eq!(created.body["endpoints"], json!([sim_url]));
        assert!(requests() > before, "check() ran against the simulator");
        assert_eq!(saved(&w).await, ["acme", "private"], "{url}");
        // Both servers share the store: the strict one lists it too.
        let list = reqwest::Client::new()
            .get(format!("{strict}/v1/accounts"))
            .bearer_auth(&w.key_a)
            .send()
            .await
            .unwrap()
            .json::<Value>()
            .await
            .unwrap();
        assert_eq!(list["result_count"], 2);

        stop.send(()).unwrap();
        tokio::time::timeout(Duration::from_secs(20), server)
            .await
            .expect("the strict server stops")
            .unwrap()
            .unwrap();
        w.shut_down().await;
    }
}
