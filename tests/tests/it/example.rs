//! The SDK's example connector against the local Acme API: paging, detail
//! merge, users by next link, an action with a sensitive value, errors.

use std::collections::HashSet;

use mdmhub::contract::*;
use mdmhub::runtime::CallError;

use crate::server;
use crate::support::*;

#[tokio::test]
async fn the_sdk_example_lists_gets_and_acts() {
    let srv = server::start(250).await;
    let rt = runtime();
    let c = load(&rt, wasm::EXAMPLE).await;
    let s = session(
        &rt,
        &c,
        spec(
            &[("tenant", "t")],
            &[("api_token", "acme-token")],
            Some(&srv.url),
        ),
    );
    c.check(&s).await.unwrap();

    let (records, pages) = list_all(&c, &s, ResourceKind::Devices, Some(100)).await;
    let mut seen = HashSet::new();
    for r in records {
        let Entity::Device(d) = r else {
            panic!("not a device")
        };
        assert!(
            seen.insert(d.remote_id.clone()),
            "{} listed twice",
            d.remote_id
        );
        assert_eq!(d.completeness, Completeness::Summary);
        assert!(d.last_check_in_at.as_deref().unwrap().ends_with('Z'));
        if d.remote_id == "dev-00003" {
            assert_eq!(d.serial_number, None, "\"\" must become none");
            assert_eq!(d.is_encrypted, Some(false), "\"false\" must become false");
        }
    }
    assert_eq!((seen.len(), pages), (250, 4));

    let Entity::Device(d) = c.get(&s, ResourceKind::Devices, "dev-00007").await.unwrap() else {
        panic!()
    };
    assert_eq!(
        (d.completeness, d.memory_bytes),
        (Completeness::Full, Some(17_179_869_184))
    );
    match c.get(&s, ResourceKind::Devices, "dev-99999").await {
        Err(CallError::Connector(ConnectorError::NotFound(_))) => {}
        other => panic!("expected not-found, got {other:?}"),
    }

    let lock = ActionRequest {
        kind: ActionKind::Lock,
        params: "{}".into(),
    };
    let out = c.action(&s, "dev-00007", &lock).await.unwrap();
    assert_eq!(out.command_id.as_deref(), Some("cmd-1"));
    assert!(out.values.iter().any(|v| v.key == "pin" && v.sensitive));
    match c.action(&s, "dev-00007", &lock).await {
        Err(CallError::Connector(ConnectorError::Rejected(e))) => {
            assert!(e.message.contains("already locked"))
        }
        other => panic!("expected a rejection, got {other:?}"),
    }
    assert_eq!(
        srv.seen.locks.lock().unwrap().as_slice(),
        &["dev-00007".to_string()]
    );
}

#[tokio::test]
async fn a_bad_token_is_unauthorized() {
    let srv = server::start(5).await;
    let rt = runtime();
    let c = load(&rt, wasm::EXAMPLE).await;
    let s = session(
        &rt,
        &c,
        spec(
            &[("tenant", "t")],
            &[("api_token", "wrong")],
            Some(&srv.url),
        ),
    );
    match c.check(&s).await {
        Err(CallError::Connector(ConnectorError::Unauthorized(m))) => {
            assert!(m.contains("Invalid token"))
        }
        other => panic!("expected unauthorized, got {other:?}"),
    }
}
