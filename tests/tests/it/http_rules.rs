//! Each rule of the `http` capability, at the host level, against a local server.

use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::{Duration, Instant};

use mdmhub::account::{AccountSession, AccountSpec};
use mdmhub::contract::*;
use mdmhub::http::ratelimit::RateOverride;
use mdmhub::http::{HttpClient, HttpLimits};

use crate::server;
use crate::support::*;

fn bearer() -> (AuthScheme, Vec<ConfigField>) {
    (
        AuthScheme::Bearer(BearerAuth {
            token_field: "token".into(),
        }),
        vec![field("token", true)],
    )
}

fn session(info: &ConnectorInfo, spec: AccountSpec, client: &HttpClient) -> Arc<AccountSession> {
    let s = AccountSession::new(info, spec).unwrap();
    client.register(&s);
    s
}

/// A bearer session whose one origin `https://api.test` goes to `url`.
fn simple(url: &str, client: &HttpClient) -> Arc<AccountSession> {
    let (auth, fields) = bearer();
    session(
        &info(auth, fields, &["https://api.test"], no_limits()),
        spec(&[], &[("token", "t0k")], Some(url)),
        client,
    )
}

async fn send(
    client: &HttpClient,
    s: &std::sync::Arc<AccountSession>,
    req: HttpRequest,
) -> Result<HttpResponse, HttpError> {
    client.send(s, req, None, within(20), false).await
}

fn denied(r: Result<HttpResponse, HttpError>, needle: &str) {
    match r {
        Err(HttpError::Denied(m)) => assert!(m.contains(needle), "denied for another reason: {m}"),
        other => panic!("expected denied ({needle}), got {other:?}"),
    }
}

#[tokio::test]
async fn only_declared_origins() {
    let srv = server::start(0).await;
    let client = HttpClient::new(HttpLimits::default());
    let s = simple(&srv.url, &client);
    assert_eq!(
        send(&client, &s, get("https://api.test/ok"))
            .await
            .unwrap()
            .status,
        200
    );
    denied(
        send(&client, &s, get("https://evil.example/ok")).await,
        "not declared",
    );
    denied(
        send(&client, &s, get("https://api.test.evil.example/ok")).await,
        "not declared",
    );
    assert_eq!(srv.seen.hits("ok"), 1);
}

#[tokio::test]
async fn https_only_and_loopback_only_through_an_endpoint() {
    let srv = server::start(0).await;
    let client = HttpClient::new(HttpLimits::default());
    let (auth, fields) = bearer();
    let port = srv.url.rsplit(':').next().unwrap();
    // No endpoint: plain http is refused, a loopback literal is refused, and
    // a name resolving to loopback is refused by the resolver.
    let plain = info(
        auth.clone(),
        fields.clone(),
        &["https://api.test"],
        no_limits(),
    );
    let s = session(&plain, spec(&[], &[("token", "x")], None), &client);
    denied(
        send(&client, &s, get("http://api.test/ok")).await,
        "not declared",
    );
    let literal = info(
        auth.clone(),
        fields.clone(),
        &[&format!("https://127.0.0.1:{port}")],
        no_limits(),
    );
    let s = session(&literal, spec(&[], &[("token", "x")], None), &client);
    denied(
        send(&client, &s, get(&format!("https://127.0.0.1:{port}/ok"))).await,
        "private",
    );
    let named = info(
        auth,
        fields,
        &[&format!("https://localhost:{port}")],
        no_limits(),
    );
    let s = session(&named, spec(&[], &[("token", "x")], None), &client);
    denied(
        send(&client, &s, get(&format!("https://localhost:{port}/ok"))).await,
        "private",
    );
    assert_eq!(srv.seen.hits("ok"), 0);
    // Through an endpoint the same server is reachable, and links under it work.
    let s = simple(&srv.url, &client);
    assert_eq!(
        send(&client, &s, get("https://api.test/ok"))
            .await
            .unwrap()
            .status,
        200
    );
    assert_eq!(
        send(&client, &s, get(&format!("{}/ok", srv.url)))
            .await
            .unwrap()
            .status,
        200
    );
}

#[tokio::test]
async fn per_host_endpoint_and_cross_origin_redirects_drop_credentials() {
    let api = server::start(0).await;
    let web = server::start(0).await;
    let client = HttpClient::new(HttpLimits::default());
    let (auth, fields) = bearer();
    let i = info(
        auth,
        fields,
        &["https://api.test", "https://web.test"],
        no_limits(),
    );
    let mut sp = spec(&[], &[("token", "t0k")], None);
    sp.endpoints = vec![
        format!("api.test={}", api.url).parse().unwrap(),
        format!("web.test={}", web.url).parse().unwrap(),
    ];
    let s = session(&i, sp, &client);
    // Same-origin redirect: credentials kept.
    let r = send(&client, &s, get("https://api.test/redirect-same"))
        .await
        .unwrap();
    let echoed: serde_json::Value = serde_json::from_slice(&r.body).unwrap();
    assert_eq!(echoed["authorization"], "Bearer t0k");
    // Cross-origin redirect to another declared origin: followed, no credentials.
    let to = format!("https://api.test/redirect-to?url={}/echo", web.url);
    let r = send(&client, &s, get(&to)).await.unwrap();
    let echoed: serde_json::Value = serde_json::from_slice(&r.body).unwrap();
    assert!(
        echoed.get("authorization").is_none(),
        "credentials leaked across origins: {echoed}"
    );
    assert_eq!(r.url, format!("{}/echo", web.url));
    // Redirect to an undeclared origin: refused.
    denied(
        send(&client, &s, get("https://api.test/redirect-out")).await,
        "redirect to https://evil.example",
    );
}

#[tokio::test]
async fn guest_cannot_set_host_owned_headers() {
    let srv = server::start(0).await;
    let client = HttpClient::new(HttpLimits::default());
    let s = simple(&srv.url, &client);
    for name in ["Authorization", "cookie", "Host", "Proxy-Authorization"] {
        let mut req = get("https://api.test/ok");
        req.headers.push(Header {
            name: name.into(),
            value: "x".into(),
        });
        denied(send(&client, &s, req).await, "set by the host");
    }
    assert_eq!(srv.seen.hits("ok"), 0);
}

async fn echoed_auth(
    client: &HttpClient,
    s: &std::sync::Arc<AccountSession>,
    header: &str,
) -> Option<String> {
    let r = send(client, s, get("https://api.test/echo")).await.unwrap();
    let v: serde_json::Value = serde_json::from_slice(&r.body).unwrap();
    v.get(header).and_then(|h| h.as_str()).map(str::to_owned)
}

#[tokio::test]
async fn static_credentials_are_injected() {
    let srv = server::start(0).await;
    let client = HttpClient::new(HttpLimits::default());
    let s = simple(&srv.url, &client);
    assert_eq!(
        echoed_auth(&client, &s, "authorization").await.as_deref(),
        Some("Bearer t0k")
    );
    let key = AuthScheme::ApiKey(ApiKeyAuth {
        header: "X-Api-Key".into(),
        key_field: "key".into(),
        prefix: Some("Token ".into()),
    });
    let s = session(
        &info(
            key,
            vec![field("key", true)],
            &["https://api.test"],
            no_limits(),
        ),
        spec(&[], &[("key", "k1")], Some(&srv.url)),
        &client,
    );
    assert_eq!(
        echoed_auth(&client, &s, "x-api-key").await.as_deref(),
        Some("Token k1")
    );
    let mut req = get("https://api.test/echo");
    req.headers.push(Header {
        name: "x-api-key".into(),
        value: "mine".into(),
    });
    denied(send(&client, &s, req).await, "set by the host");
    let basic = AuthScheme::Basic(BasicAuth {
        username_field: "user".into(),
        password_field: "pw".into(),
    });
    let s = session(
        &info(
            basic,
            vec![field("user", false), field("pw", true)],
            &["https://api.test"],
            no_limits(),
        ),
        spec(&[("user", "jamf")], &[("pw", "pw")], Some(&srv.url)),
        &client,
    );
    assert_eq!(
        echoed_auth(&client, &s, "authorization").await.as_deref(),
        Some("Basic amFtZjpwdw==")
    );
}

fn oauth(srv: &str, secret: &str, client: &HttpClient) -> Arc<AccountSession> {
    let auth = AuthScheme::Oauth2ClientCredentials(Oauth2ClientCredentials {
        token_url: "https://login.test/{tenant}/oauth/token".into(),
        client_id_field: "client_id".into(),
        client_secret_field: "client_secret".into(),
        scope: Some("https://api.test/.default".into()),
        client_auth: ClientAuthMethod::RequestBody,
    });
    let fields = vec![
        field("tenant", false),
        field("client_id", true),
        field("client_secret", true),
    ];
    let mut sp = spec(
        &[("tenant", "t1")],
        &[("client_id", "app"), ("client_secret", secret)],
        None,
    );
    // One endpoint for both the API and the login host, as with a simulator.
    sp.endpoints = vec![srv.parse().unwrap()];
    session(
        &info(auth, fields, &["https://api.test"], no_limits()),
        sp,
        client,
    )
}

#[tokio::test]
async fn oauth2_tokens_are_fetched_once_refreshed_on_401_and_host_only() {
    let srv = server::start(0).await;
    let client = HttpClient::new(HttpLimits::default());
    let s = oauth(&srv.url, "s3cret", &client);
    // Eight concurrent first requests share one token fetch.
    let calls = (0..8).map(|_| send(&client, &s, get("https://api.test/protected")));
    for r in futures::future::join_all(calls).await {
        assert_eq!(r.unwrap().status, 200);
    }
    assert_eq!(srv.seen.token_calls.load(Ordering::SeqCst), 1);
    // The vendor revokes the token: one 401, one refresh, one retry.
    reqwest::Client::new()
        .post(format!("{}/revoke", srv.url))
        .send()
        .await
        .unwrap();
    assert_eq!(
        send(&client, &s, get("https://api.test/protected"))
            .await
            .unwrap()
            .status,
        200
    );
    assert_eq!(srv.seen.token_calls.load(Ordering::SeqCst), 2);
    // The guest may not call the token URL itself, nor see the token.
    denied(
        send(&client, &s, get("https://login.test/t1/oauth/token")).await,
        "token URL",
    );
    // A wrong secret: auth-failed with the vendor's reason.
    let bad = oauth(&srv.url, "wrong", &client);
    match send(&client, &bad, get("https://api.test/protected")).await {
        Err(HttpError::AuthFailed(m)) => assert!(m.contains("AADSTS7000215"), "{m}"),
        other => panic!("expected auth-failed, got {other:?}"),
    }
}

#[tokio::test]
async fn token_exchange_basic_for_bearer() {
    let srv = server::start(0).await;
    let client = HttpClient::new(HttpLimits::default());
    let auth = AuthScheme::TokenExchange(TokenExchange {
        token_url: "https://api.test/auth/token".into(),
        username_field: "user".into(),
        password_field: "pw".into(),
        token_json_field: "token".into(),
        expires_at_json_field: Some("expires".into()),
        expires_in_json_field: None,
    });
    let s = session(
        &info(
            auth,
            vec![field("user", false), field("pw", true)],
            &["https://api.test"],
            no_limits(),
        ),
        spec(&[("user", "jamf")], &[("pw", "pw")], Some(&srv.url)),
        &client,
    );
    for _ in 0..3 {
        assert_eq!(
            send(&client, &s, get("https://api.test/protected"))
                .await
                .unwrap()
                .status,
            200
        );
    }
    assert_eq!(srv.seen.token_calls.load(Ordering::SeqCst), 1);
    denied(
        send(&client, &s, get("https://api.test/auth/token")).await,
        "token URL",
    );
}

#[tokio::test]
async fn concurrency_cap_and_operator_rate_override() {
    let srv = server::start(0).await;
    let client = HttpClient::new(HttpLimits::default());
    let (auth, fields) = bearer();
    let capped = info(
        auth.clone(),
        fields.clone(),
        &["https://api.test"],
        RatePolicy {
            buckets: vec![],
            max_concurrent: 2,
        },
    );
    let s = session(
        &capped,
        spec(&[], &[("token", "x")], Some(&srv.url)),
        &client,
    );
    let calls = (0..8).map(|_| send(&client, &s, get("https://api.test/slow")));
    futures::future::join_all(calls)
        .await
        .into_iter()
        .for_each(|r| assert_eq!(r.unwrap().status, 200));
    assert_eq!(srv.seen.max_in_flight.load(Ordering::SeqCst), 2);
    // The vendor allows 1000/s, the operator says 5/s: 10 requests take >= ~1 s.
    let fast = RatePolicy {
        buckets: vec![RateBucket {
            requests: 1000,
            window_ms: 1000,
            methods: vec![],
        }],
        max_concurrent: 8,
    };
    let mut sp = spec(&[], &[("token", "x")], Some(&srv.url));
    sp.rate = Some(RateOverride {
        max_concurrent: Some(8),
        ..("5/s".parse().unwrap())
    });
    let s = session(
        &info(auth, fields, &["https://api.test"], fast),
        sp,
        &client,
    );
    let start = Instant::now();
    for _ in 0..10 {
        send(&client, &s, get("https://api.test/ok")).await.unwrap();
    }
    assert!(
        start.elapsed() >= Duration::from_millis(900),
        "override not enforced: {:?}",
        start.elapsed()
    );
    assert!(s.rate_limit_waits().0 >= 4);
}

#[tokio::test]
async fn retries_honor_retry_after_and_report_rate_limited_past_the_budget() {
    let srv = server::start(0).await;
    let client = HttpClient::new(HttpLimits::default());
    let s = simple(&srv.url, &client);
    for (path, min_wait) in [
        ("slow-429", 1_900),
        ("retry-date", 900),
        ("retry-none", 200),
        ("503-once", 150),
    ] {
        let start = Instant::now();
        let r = send(&client, &s, get(&format!("https://api.test/{path}")))
            .await
            .unwrap();
        assert_eq!(r.status, 200, "{path}");
        assert!(
            start.elapsed() >= Duration::from_millis(min_wait),
            "{path} retried too early: {:?}",
            start.elapsed()
        );
    }
    let r = client
        .send(
            &s,
            get("https://api.test/429-forever"),
            None,
            within(5),
            false,
        )
        .await;
    match r {
        Err(HttpError::RateLimited(ms)) => assert!(ms >= 3_000_000, "{ms}"),
        other => panic!("expected rate-limited, got {other:?}"),
    }
}

#[tokio::test]
async fn response_size_is_capped() {
    let srv = server::start(0).await;
    let client = HttpClient::new(HttpLimits {
        max_response_bytes: 1 << 20,
        ..HttpLimits::default()
    });
    let s = simple(&srv.url, &client);
    assert!(matches!(
        send(&client, &s, get("https://api.test/big")).await,
        Err(HttpError::TooLarge(_))
    ));
}

#[tokio::test]
async fn one_pooled_client_reuses_connections() {
    let srv = server::start(0).await;
    let client = HttpClient::new(HttpLimits::default());
    let s = simple(&srv.url, &client);
    for _ in 0..20 {
        send(&client, &s, get("https://api.test/ok")).await.unwrap();
    }
    assert!(
        srv.seen.ports.lock().unwrap().len() <= 2,
        "{} connections for 20 requests",
        srv.seen.ports.lock().unwrap().len()
    );
}

/// Walks a paging style to its end and returns the number of pages.
async fn walk(
    client: &HttpClient,
    s: &std::sync::Arc<AccountSession>,
    url: &str,
    mut paging: impl FnMut(Option<String>) -> Paging,
    follow_url: bool,
) -> (usize, Vec<String>) {
    let (mut pages, mut positions, mut pos) = (0, vec![], None::<String>);
    loop {
        let target = if follow_url {
            pos.clone().unwrap_or_else(|| url.into())
        } else {
            url.into()
        };
        let r = client
            .send(
                s,
                get(&target),
                Some(paging(pos.clone())),
                within(20),
                false,
            )
            .await
            .unwrap();
        assert_eq!(r.status, 200);
        pages += 1;
        assert!(pages < 20, "paging loop");
        match r.next {
            Some(n) => {
                positions.push(n.clone());
                pos = Some(n);
            }
            None => return (pages, positions),
        }
    }
}

#[tokio::test]
async fn every_paging_style_walks_to_the_end() {
    let srv = server::start(250).await;
    let client = HttpClient::new(HttpLimits::default());
    let s = simple(&srv.url, &client);
    let (auth, fields) = bearer();
    let acme = session(
        &info(auth, fields, &["https://api.test"], no_limits()),
        spec(&[], &[("token", "acme-token")], Some(&srv.url)),
        &client,
    );
    let (pages, pos) = walk(
        &client,
        &acme,
        "https://api.test/api/v1/devices",
        |p| {
            Paging::Offset(OffsetPaging {
                offset_param: "offset".into(),
                limit_param: "limit".into(),
                offset: p.map(|p| p.parse().unwrap()).unwrap_or(0),
                limit: 100,
                items_pointer: "".into(),
                stop_on_short_page: false,
            })
        },
        false,
    )
    .await;
    assert_eq!(
        (pages, pos),
        (4, vec!["100".to_string(), "200".into(), "250".into()])
    );
    let (pages, _) = walk(
        &client,
        &s,
        "https://api.test/pages/number",
        |p| {
            Paging::PageNumber(PageNumberPaging {
                page_param: "page".into(),
                size_param: "size".into(),
                page: p.map(|p| p.parse().unwrap()).unwrap_or(1),
                size: 3,
                items_pointer: "/data".into(),
                stop_on_short_page: true,
            })
        },
        false,
    )
    .await;
    assert_eq!(pages, 3);
    let (pages, pos) = walk(
        &client,
        &s,
        "https://api.test/pages/keyset",
        |p| {
            Paging::Keyset(KeysetPaging {
                after_param: "after".into(),
                limit_param: "limit".into(),
                after: p,
                limit: 3,
                items_pointer: "".into(),
                id_field: "id".into(),
            })
        },
        false,
    )
    .await;
    assert_eq!(
        (pages, pos),
        (4, vec!["2".to_string(), "5".into(), "6".into()])
    );
    let (pages, _) = walk(
        &client,
        &s,
        "https://api.test/pages/cursor",
        |p| {
            Paging::BodyCursor(BodyCursorPaging {
                cursor_param: "cursor".into(),
                cursor: p,
                cursor_pointer: "/meta/next".into(),
                limit_param: None,
                limit: None,
            })
        },
        false,
    )
    .await;
    assert_eq!(pages, 3);
    let (pages, _) = walk(
        &client,
        &acme,
        "https://api.test/api/v1/users",
        |_| {
            Paging::NextUrl(NextUrlPaging {
                url_pointer: "/next".into(),
            })
        },
        true,
    )
    .await;
    assert_eq!(pages, 3);
    let (pages, _) = walk(
        &client,
        &s,
        "https://api.test/pages/link",
        |_| Paging::LinkHeader,
        true,
    )
    .await;
    assert_eq!(pages, 3);
}
