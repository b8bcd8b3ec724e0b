//! The hostile component: the host denies, survives, and keeps serving.

use std::sync::Arc;

use mdmhub::account::AccountSession;
use mdmhub::contract::*;
use mdmhub::runtime::{CallError, Connector, Runtime, Warm};

use crate::server;
use crate::support::*;

async fn setup() -> (Runtime, Connector, Arc<AccountSession>, server::TestServer) {
    setup_with(runtime()).await
}

async fn setup_with(rt: Runtime) -> (Runtime, Connector, Arc<AccountSession>, server::TestServer) {
    let srv = server::start(0).await;
    let c = load(&rt, wasm::HOSTILE).await;
    let s = session(
        &rt,
        &c,
        spec(&[("host", "api.test")], &[("token", "t0k")], Some(&srv.url)),
    );
    (rt, c, s, srv)
}

async fn run(
    c: &Connector,
    s: &Arc<AccountSession>,
    name: &str,
    params: &str,
) -> Result<String, CallError> {
    let req = ActionRequest {
        kind: ActionKind::Vendor(name.into()),
        params: params.into(),
    };
    c.action(s, "dev-1", &req)
        .await
        .map(|o| o.message.unwrap_or_default())
}

/// After each misbehaviour the same connector still answers a normal call.
async fn still_serving(c: &Connector, s: &Arc<AccountSession>) {
    assert_eq!(run(c, s, "ok", "{}").await.unwrap(), "ok:200");
}

fn trapped(r: Result<String, CallError>, needle: &str) {
    match r {
        Err(CallError::Trap(m)) => assert!(m.contains(needle), "trap for another reason: {m}"),
        other => panic!("expected a trap ({needle}), got {other:?}"),
    }
}

#[tokio::test]
async fn endless_loop_is_interrupted() {
    let (_rt, c, s, _srv) = setup().await;
    trapped(run(&c, &s, "spin", "{}").await, "CPU budget");
    still_serving(&c, &s).await;
}

#[tokio::test]
async fn unbounded_allocation_hits_the_memory_cap() {
    // A small cap, so the limit is hit long before the CPU budget even on a busy machine.
    let (_rt, c, s, _srv) = setup_with(runtime_with_memory(32 << 20)).await;
    trapped(run(&c, &s, "alloc", "{}").await, "memory limit");
    still_serving(&c, &s).await;
}

#[tokio::test]
async fn panics_and_unbounded_recursion_trap_only_that_call() {
    let (_rt, c, s, _srv) = setup().await;
    trapped(run(&c, &s, "trap", "{}").await, "panicked");
    // Rust guests keep their stack in linear memory: the shadow stack runs
    // out (an out-of-bounds access) before wasmtime's own stack limit does.
    match run(&c, &s, "recurse", "{}").await {
        Err(CallError::Trap(m)) => assert!(
            m.contains("stack overflow") || m.contains("out of bounds"),
            "{m}"
        ),
        other => panic!("expected a trap, got {other:?}"),
    }
    still_serving(&c, &s).await;
}

#[tokio::test]
async fn a_huge_result_is_refused() {
    let (_rt, c, s, _srv) = setup().await;
    let r = c
        .list(
            &s,
            ResourceKind::Devices,
            Some("huge"),
            &ListOptions {
                page_size: None,
                parent_id: None,
            },
        )
        .await;
    assert!(
        matches!(r, Err(CallError::InvalidOutput(ref m)) if m.contains("limit")),
        "{r:?}"
    );
    still_serving(&c, &s).await;
}

#[tokio::test]
async fn no_env_files_sockets_or_wasi_http() {
    let (_rt, c, s, srv) = setup().await;
    assert_eq!(run(&c, &s, "env", "{}").await.unwrap(), "env=0 args=0");
    assert!(
        run(&c, &s, "file", "{}")
            .await
            .unwrap()
            .starts_with("denied:")
    );
    assert!(
        run(&c, &s, "file-write", "{}")
            .await
            .unwrap()
            .starts_with("denied:")
    );
    let addr = srv.url.trim_start_matches("http://");
    assert!(
        run(&c, &s, "socket", &format!("\"{addr}\""))
            .await
            .unwrap()
            .starts_with("denied:")
    );
    let m = run(&c, &s, "wasi-http", "{}").await.unwrap();
    assert!(
        m.starts_with("denied:") && m.contains("HttpRequestDenied"),
        "{m}"
    );
    assert_eq!(srv.seen.hits("ok"), 0);
}

#[tokio::test]
async fn http_rules_hold_for_a_guest() {
    let (_rt, c, s, srv) = setup().await;
    for action in ["undeclared", "redirect", "set-auth", "set-cookie"] {
        let m = run(&c, &s, action, "{}").await.unwrap();
        assert!(m.starts_with("err:HttpError::Denied"), "{action}: {m}");
    }
    still_serving(&c, &s).await;
    // Only the one allowed call reached the server, with the host's token.
    assert_eq!(srv.seen.hits("ok"), 1);
    assert_eq!(
        srv.seen.auth.lock().unwrap().as_slice(),
        &[Some("Bearer t0k".to_string())]
    );
}

#[tokio::test]
async fn a_long_retry_after_inside_http_does_not_use_the_cpu_budget() {
    // The CPU budget is 1 s; the vendor asks for a 2 s wait.
    let (_rt, c, s, _srv) = setup().await;
    assert_eq!(run(&c, &s, "slow-429", "{}").await.unwrap(), "ok:200");
    // A wait beyond the call's budget comes back as rate-limited.
    let m = run(&c, &s, "429-forever", "{}").await.unwrap();
    assert!(m.starts_with("err:HttpError::RateLimited"), "{m}");
}

#[tokio::test]
async fn a_spinning_call_does_not_block_others() {
    let (_rt, c, s, _srv) = setup().await;
    let (spin, ok) = tokio::join!(run(&c, &s, "spin", "{}"), async {
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
        let start = std::time::Instant::now();
        let r = run(&c, &s, "ok", "{}").await;
        (r, start.elapsed())
    });
    trapped(spin, "CPU budget");
    assert_eq!(ok.0.unwrap(), "ok:200");
    assert!(
        ok.1 < std::time::Duration::from_millis(900),
        "the normal call waited for the spinning one: {:?}",
        ok.1
    );
}

/// `list` with cursor `count`, in `warm`'s instances or a fresh one: the
/// instance's count of list calls.
async fn count(c: &Connector, s: &Arc<AccountSession>, warm: Option<&Warm>) -> String {
    list_at(c, s, warm, "count")
        .await
        .unwrap()
        .next_cursor
        .expect("a count")
}

async fn list_at(
    c: &Connector,
    s: &Arc<AccountSession>,
    warm: Option<&Warm>,
    cursor: &str,
) -> Result<Page, CallError> {
    let options = ListOptions {
        page_size: None,
        parent_id: None,
    };
    c.list_in(warm, s, ResourceKind::Devices, Some(cursor), &options)
        .await
}

#[tokio::test]
async fn a_warm_instance_serves_one_account_until_a_call_traps() {
    let (_rt, c, s, _srv) = setup().await;
    let warm = Warm::new(s.clone(), 1);
    assert_eq!(count(&c, &s, Some(&warm)).await, "count-1");
    assert_eq!(count(&c, &s, Some(&warm)).await, "count-2");
    // Calls without the pool, and the account's actions, stay fresh.
    assert_eq!(count(&c, &s, None).await, "count-1");
    still_serving(&c, &s).await;
    assert_eq!(count(&c, &s, Some(&warm)).await, "count-3");
    // A trap drops the instance: the next call starts from scratch.
    let trap = list_at(&c, &s, Some(&warm), "trap").await;
    assert!(matches!(trap, Err(CallError::Trap(_))), "{trap:?}");
    assert_eq!(count(&c, &s, Some(&warm)).await, "count-1");
    // Each call has its own CPU budget: a kept instance that spins is
    // interrupted like a fresh one, and replaced.
    let spun = list_at(&c, &s, Some(&warm), "spin").await;
    assert!(
        matches!(&spun, Err(CallError::Trap(m)) if m.contains("CPU budget")),
        "{spun:?}"
    );
    assert_eq!(count(&c, &s, Some(&warm)).await, "count-1");
    assert_eq!(count(&c, &s, Some(&warm)).await, "count-2");
}

#[tokio::test]
#[should_panic(expected = "a warm pool serves only its own account")]
async fn a_warm_pool_refuses_another_account() {
    let (rt, c, s, srv) = setup().await;
    let warm = Warm::new(s.clone(), 1);
    let other = session(
        &rt,
        &c,
        spec(&[("host", "api.test")], &[("token", "t1k")], Some(&srv.url)),
    );
    let _ = list_at(&c, &other, Some(&warm), "count").await;
}
