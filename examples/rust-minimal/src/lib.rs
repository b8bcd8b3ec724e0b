//! A small connector for "Acme MDM", a fictional vendor, written against the
//! SDK: bearer token auth, devices by offset paging (a bare JSON array),
//! users by next links, a lock action. The test suite runs it against a
//! local Acme server.

use mdmhub_sdk::prelude::*;
use serde_json::Value;

struct Acme;

const PAGE: u32 = 100;

impl Connector for Acme {
    fn describe() -> ConnectorInfo {
        ConnectorInfo {
            id: "acme".into(),
            name: "Acme MDM (example)".into(),
            version: env!("CARGO_PKG_VERSION").into(),
            config: vec![
                ConfigField {
                    key: "tenant".into(),
                    label: "Tenant".into(),
                    help: Some("The `tenant` in https://tenant.acme-mdm.example".into()),
                    required: true,
                    secret: false,
                    allowed_values: vec![],
                    default_value: None,
                },
                ConfigField {
                    key: "api_token".into(),
                    label: "API token".into(),
                    help: None,
                    required: true,
                    secret: true,
                    allowed_values: vec![],
                    default_value: None,
                },
            ],
            auth: AuthScheme::Bearer(BearerAuth {
                token_field: "api_token".into(),
            }),
            origins: vec!["https://{tenant}.acme-mdm.example".into()],
            rate_policy: RatePolicy {
                buckets: vec![RateBucket {
                    requests: 100,
                    window_ms: 1_000,
                    methods: vec![],
                }],
                max_concurrent: 4,
            },
            resources: vec![
                ResourceInfo {
                    kind: ResourceKind::Devices,
                    scope: ResourceScope::TopLevel,
                    supports_get: true,
                },
                ResourceInfo {
                    kind: ResourceKind::Users,
                    scope: ResourceScope::TopLevel,
                    supports_get: false,
                },
            ],
            actions: vec![ActionInfo {
                kind: ActionKind::Lock,
                description: "Lock the device".into(),
                destructive: false,
            }],
            device_url_template: Some(
                "https://{tenant}.acme-mdm.example/devices/{device_id}".into(),
            ),
        }
    }

    fn check(ctx: &Context) -> Result<(), ConnectorError> {
        Request::get(format!("{}/api/v1/devices", ctx.origin(0)?))
            .query("limit", 1)
            .send_ok()?;
        Ok(())
    }

    fn list(
        ctx: &Context,
        kind: ResourceKind,
        cursor: Option<String>,
        options: ListOptions,
    ) -> Result<Page, ConnectorError> {
        match kind {
            ResourceKind::Devices => {
                let offset = OffsetCursor::parse(cursor.as_deref())?;
                let limit = options.page_size.unwrap_or(PAGE).min(PAGE);
                let resp = Request::get(format!("{}/api/v1/devices", ctx.origin(0)?))
                    .paging(OffsetCursor::paging(offset, limit, ""))
                    .send_ok()?;
                let items: Vec<Value> = resp.json()?;
                Ok(page::from_items(items.iter().map(device), resp.next()))
            }
            ResourceKind::Users => {
                let url = NextUrlCursor::url(cursor, || {
                    format!("{}/api/v1/users", ctx.origin(0).unwrap_or_default())
                });
                let resp = Request::get(url)
                    .paging(NextUrlCursor::paging("/next"))
                    .send_ok()?;
                let body: Value = resp.json()?;
                let users = body["users"]
                    .as_array()
                    .ok_or_else(|| invalid_data("users: no `users` array"))?;
                Ok(page::from_items(users.iter().map(user), resp.next()))
            }
            other => Err(ConnectorError::Unsupported(format!("{other:?}"))),
        }
    }

    fn get(ctx: &Context, kind: ResourceKind, id: String) -> Result<Entity, ConnectorError> {
        if kind != ResourceKind::Devices {
            return Err(ConnectorError::Unsupported(format!("get {kind:?}")));
        }
        let v: Value = Request::get(format!("{}/api/v1/devices/{id}", ctx.origin(0)?))
            .send_ok()?
            .json()?;
        let mut d = device(&v).map_err(|u| invalid_data(u.message))?;
        if let Entity::Device(d) = &mut d {
            d.completeness = Completeness::Full;
        }
        Ok(d)
    }

    fn action(
        ctx: &Context,
        device_id: String,
        request: ActionRequest,
    ) -> Result<ActionOutcome, ConnectorError> {
        if request.kind != ActionKind::Lock {
            return Err(ConnectorError::Unsupported(format!("{:?}", request.kind)));
        }
        let v: Value = Request::post(format!(
            "{}/api/v1/devices/{device_id}/lock",
            ctx.origin(0)?
        ))
        .send_ok()?
        .json()?;
        Ok(ActionOutcome {
            status: ActionStatus::Accepted,
            command_id: lenient::string(&v, "/command_id"),
            message: None,
            values: lenient::string(&v, "/pin")
                .map(|pin| OutcomeValue {
                    key: "pin".into(),
                    value: pin,
                    sensitive: true,
                })
                .into_iter()
                .collect(),
        })
    }
}

fn device(v: &Value) -> Result<Entity, Unmappable> {
    let remote_id = lenient::string(v, "/id").ok_or("device without `id`")?;
    let platform = match lenient::string(v, "/os").as_deref() {
        Some("macOS") => Some(Platform::Macos),
        Some("Windows") => Some(Platform::Windows),
        Some(_) => Some(Platform::Other),
        None => None,
    };
    Ok(Entity::Device(Device {
        remote_id,
        completeness: Completeness::Summary,
        name: lenient::string(v, "/name"),
        serial_number: lenient::string(v, "/serial"),
        udid: None,
        asset_tag: None,
        device_type: None,
        platform,
        manufacturer: None,
        model: None,
        model_identifier: None,
        os_version: lenient::string(v, "/os_version"),
        os_build: None,
        mac_addresses: vec![],
        ip_address: None,
        processor: None,
        memory_bytes: lenient::unsigned(v, "/memory_bytes"),
        storage_bytes: None,
        management_state: None,
        is_compliant: None,
        is_encrypted: lenient::boolean(v, "/encrypted"),
        is_supervised: None,
        last_check_in_at: lenient::timestamp(v, "/last_seen"),
        enrolled_at: None,
        assigned_user: lenient::string(v, "/user_email").map(|email| UserRef {
            remote_id: None,
            email: Some(email),
            name: None,
        }),
        organization_remote_id: None,
        groups: vec![],
        tags: vec![],
        web_url: None,
        remote_data: v.to_string(),
        extra: vec![],
    }))
}

fn user(v: &Value) -> Result<Entity, Unmappable> {
    Ok(Entity::User(User {
        remote_id: lenient::string(v, "/id").ok_or("user without `id`")?,
        email: lenient::string(v, "/email"),
        name: lenient::string(v, "/name"),
        username: None,
        department: None,
        job_title: None,
        is_active: lenient::boolean(v, "/active"),
        remote_data: v.to_string(),
        extra: vec![],
    }))
}

mdmhub_sdk::export_connector!(Acme);
