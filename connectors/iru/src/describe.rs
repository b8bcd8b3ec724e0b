//! What the Iru connector declares: config, auth, origins, rate policy,
//! resources and actions.

use mdmhub_sdk::*;

/// Index of the API origin in `origins`.
pub const API_ORIGIN: usize = 0;

/// Vendor actions beyond the normalized ones: `(name, description, destructive)`.
/// Each is `POST /api/v1/devices/{id}/action/{name}` with the params as body.
pub const VENDOR_ACTIONS: &[(&str, &str, bool)] = &[
    (
        "blankpush",
        "Send a blank push to make the device check in",
        false,
    ),
    (
        "renewmdmprofile",
        "Reinstall the MDM profile (macOS)",
        false,
    ),
    ("reinstallagent", "Reinstall the Iru agent (macOS)", false),
    ("clearpasscode", "Clear the passcode (iPhone, iPad)", true),
    (
        "deleteuser",
        "Delete a local user: {UserName, DeleteAllUsers, ForceDeletion}",
        true,
    ),
    (
        "remotedesktop",
        "Turn Remote Desktop on or off: {EnableRemoteDesktop}",
        false,
    ),
    ("setname", "Rename the device: {DeviceName}", false),
    (
        "enablelostmode",
        "Enable Lost Mode: {Message, PhoneNumber, Footnote} (iOS, iPadOS)",
        false,
    ),
    ("disablelostmode", "Disable Lost Mode", false),
    ("playlostmodesound", "Play a sound in Lost Mode", false),
    ("updatelocation", "Request the location in Lost Mode", false),
];

/// The connector's description.
pub fn info() -> ConnectorInfo {
    let region = |value: &str, label: &str, api_host: &str, web_host: &str| AllowedValue {
        value: value.into(),
        label: label.into(),
        variables: vec![
            TemplateVariable {
                name: "api_host".into(),
                value: api_host.into(),
            },
            TemplateVariable {
                name: "web_host".into(),
                value: web_host.into(),
            },
        ],
    };
    let resource = |kind, scope, supports_get| ResourceInfo {
        kind,
        scope,
        supports_get,
    };
    let action = |kind, description: &str, destructive| ActionInfo {
        kind,
        description: description.into(),
        destructive,
    };
    let mut actions = vec![
        action(
            ActionKind::Lock,
            "Lock the device; a Mac answers with its unlock PIN",
            false,
        ),
        action(
            ActionKind::Erase,
            "Erase the device: {pin, preserve_data_plan, disallow_proximity_setup, return_to_service}",
            true,
        ),
        action(
            ActionKind::Restart,
            "Restart: {rebuild_kernel_cache, notify_user}",
            false,
        ),
        action(ActionKind::Shutdown, "Shut down", false),
        action(
            ActionKind::UnlockAccount,
            "Unlock a local macOS account: {username} (required)",
            false,
        ),
        action(
            ActionKind::Retire,
            "Remove management and delete the device record",
            true,
        ),
        action(
            ActionKind::RefreshInventory,
            "Ask the device to send its inventory",
            false,
        ),
    ];
    actions.extend(
        VENDOR_ACTIONS.iter().map(|(name, d, destructive)| {
            action(ActionKind::Vendor((*name).into()), d, *destructive)
        }),
    );
    ConnectorInfo {
        id: "iru".into(),
        name: "Iru (formerly Kandji)".into(),
        version: env!("CARGO_PKG_VERSION").into(),
        config: vec![
            ConfigField {
                key: "subdomain".into(),
                label: "Subdomain".into(),
                help: Some(
                    "`acme` in https://acme.api.kandji.io (Access > API tokens shows the API URL)"
                        .into(),
                ),
                required: true,
                secret: false,
                allowed_values: vec![],
                default_value: None,
            },
            ConfigField {
                key: "region".into(),
                label: "Region".into(),
                help: Some("Where the tenant lives: `us` or `eu`".into()),
                required: true,
                secret: false,
                allowed_values: vec![
                    region("us", "United States", "api.kandji.io", "kandji.io"),
                    region("eu", "European Union", "api.eu.kandji.io", "eu.kandji.io"),
                ],
                default_value: Some("us".into()),
            },
            ConfigField {
                key: "api_token".into(),
                label: "API token".into(),
                help: Some(
                    "Access > API tokens > Add token; grant device read (and action) permissions"
                        .into(),
                ),
                required: true,
                secret: true,
                allowed_values: vec![],
                default_value: None,
            },
        ],
        auth: AuthScheme::Bearer(BearerAuth {
            token_field: "api_token".into(),
        }),
        // The web host too: `/users` answers `next` links that point at it.
        origins: vec![
            "https://{subdomain}.{api_host}".into(),
            "https://{subdomain}.{web_host}".into(),
        ],
        rate_policy: RatePolicy {
            // 10,000 requests per hour per tenant, shared by every token.
            buckets: vec![RateBucket {
                requests: 10_000,
                window_ms: 3_600_000,
                methods: vec![],
            }],
            max_concurrent: 4,
        },
        resources: vec![
            resource(ResourceKind::Devices, ResourceScope::TopLevel, true),
            resource(ResourceKind::Users, ResourceScope::TopLevel, true),
            resource(ResourceKind::Apps, ResourceScope::PerDevice, false),
            resource(ResourceKind::Organizations, ResourceScope::TopLevel, true),
        ],
        actions,
        device_url_template: Some("https://{subdomain}.{web_host}/devices/{device_id}".into()),
    }
}
