//! What the Intune connector declares: config (tenant, national cloud, app
//! credentials), OAuth2 client credentials against the cloud's login host,
//! the Graph origin, Intune's read and write buckets, resources and actions.

use mdmhub_sdk::*;

/// Index of the Microsoft Graph origin in `origins`.
pub const GRAPH_ORIGIN: usize = 0;

/// Graph device actions offered as `vendor(<name>)`:
/// `(name, description, destructive)`. Each is
/// `POST /deviceManagement/managedDevices/{id}/<name>` with the params as body.
pub const VENDOR_ACTIONS: &[(&str, &str, bool)] = &[
    (
        "resetPasscode",
        "Remove the passcode (iOS, iPadOS, Android)",
        true,
    ),
    (
        "recoverPasscode",
        "Recover the passcode (iOS, iPadOS)",
        false,
    ),
    ("disableLostMode", "Disable Lost Mode (iOS, iPadOS)", false),
    ("locateDevice", "Locate the device (iOS, iPadOS)", false),
    (
        "bypassActivationLock",
        "Bypass Activation Lock (supervised iOS, iPadOS)",
        false,
    ),
    (
        "requestRemoteAssistance",
        "Request a remote assistance session",
        false,
    ),
    (
        "logoutSharedAppleDeviceActiveUser",
        "Log out the current user of a Shared iPad",
        false,
    ),
    (
        "deleteUserFromSharedAppleDevice",
        "Delete a user from a Shared iPad: {userPrincipalName}",
        true,
    ),
    (
        "cleanWindowsDevice",
        "Fresh start (Windows): {keepUserData}",
        true,
    ),
    (
        "windowsDefenderScan",
        "Run a Defender scan (Windows): {quickScan}",
        false,
    ),
    (
        "windowsDefenderUpdateSignatures",
        "Update Defender signatures (Windows)",
        false,
    ),
    (
        "updateWindowsDeviceAccount",
        "Update a Surface Hub device account: {updateWindowsDeviceAccountActionParameter}",
        false,
    ),
];

/// A national cloud: `(value, label, login host, Graph host, admin center host)`.
const CLOUDS: &[(&str, &str, &str, &str, &str)] = &[
    (
        "global",
        "Microsoft global cloud",
        "login.microsoftonline.com",
        "graph.microsoft.com",
        "intune.microsoft.com",
    ),
    (
        "usgov",
        "US Government (GCC High, L4)",
        "login.microsoftonline.us",
        "graph.microsoft.us",
        "intune.microsoft.us",
    ),
    (
        "usgov-dod",
        "US Government (DoD, L5)",
        "login.microsoftonline.us",
        "dod-graph.microsoft.us",
        "intune.microsoft.us",
    ),
    (
        "china",
        "China (operated by 21Vianet)",
        "login.chinacloudapi.cn",
        "microsoftgraph.chinacloudapi.cn",
        "intune.microsoftonline.cn",
    ),
];

/// The connector's description.
pub fn info() -> ConnectorInfo {
    let var = |name: &str, value: &str| TemplateVariable {
        name: name.into(),
        value: value.into(),
    };
    let clouds = CLOUDS
        .iter()
        .map(|(value, label, login, graph, portal)| AllowedValue {
            value: (*value).into(),
            label: (*label).into(),
            variables: vec![
                var("login_host", login),
                var("graph_host", graph),
                var("portal_host", portal),
            ],
        })
        .collect();
    let field = |key: &str, label: &str, help: &str, secret| ConfigField {
        key: key.into(),
        label: label.into(),
        help: Some(help.into()),
        required: true,
        secret,
        allowed_values: vec![],
        default_value: None,
    };
    let resource = |kind, scope, supports_get| ResourceInfo {
        kind,
        scope,
        supports_get,
    };
    ConnectorInfo {
        id: "intune".into(),
        name: "Microsoft Intune".into(),
        version: env!("CARGO_PKG_VERSION").into(),
        config: vec![
            field(
                "tenant_id",
                "Tenant ID",
                "Directory (tenant) ID from Entra admin center > Overview, or a verified domain",
                false,
            ),
            ConfigField {
                allowed_values: clouds,
                default_value: Some("global".into()),
                required: false,
                ..field(
                    "cloud",
                    "National cloud",
                    "`global` unless the tenant lives in a national cloud: `usgov`, `usgov-dod` or `china`",
                    false,
                )
            },
            field(
                "client_id",
                "Application (client) ID",
                "Entra admin center > App registrations > the app > Overview",
                true,
            ),
            field(
                "client_secret",
                "Client secret",
                "The app > Certificates & secrets; the app needs the application permissions \
                 DeviceManagementManagedDevices.Read.All (PrivilegedOperations.All for actions) \
                 and User.Read.All, with admin consent",
                true,
            ),
        ],
        auth: AuthScheme::Oauth2ClientCredentials(Oauth2ClientCredentials {
            token_url: "https://{login_host}/{tenant_id}/oauth2/v2.0/token".into(),
            client_id_field: "client_id".into(),
            client_secret_field: "client_secret".into(),
            scope: Some("https://{graph_host}/.default".into()),
            client_auth: ClientAuthMethod::RequestBody,
        }),
        origins: vec!["https://{graph_host}".into()],
        rate_policy: RatePolicy {
            // Intune's devices service, per app per tenant: 2,000 requests
            // per 20 s, of which at most 200 writes.
            buckets: vec![
                RateBucket {
                    requests: 2_000,
                    window_ms: 20_000,
                    methods: vec![],
                },
                RateBucket {
                    requests: 200,
                    window_ms: 20_000,
                    methods: vec![Method::Post, Method::Put, Method::Patch, Method::Delete],
                },
            ],
            max_concurrent: 8,
        },
        resources: vec![
            resource(ResourceKind::Devices, ResourceScope::TopLevel, true),
            resource(ResourceKind::Users, ResourceScope::TopLevel, true),
            resource(ResourceKind::Apps, ResourceScope::PerDevice, false),
            resource(ResourceKind::Organizations, ResourceScope::TopLevel, true),
        ],
        actions: actions(),
        device_url_template: Some(
            "https://{portal_host}/#view/Microsoft_Intune_Devices/DeviceSettingsMenuBlade/~/overview/mdmDeviceId/{device_id}"
                .into(),
        ),
    }
}

fn actions() -> Vec<ActionInfo> {
    let action = |kind, description: &str, destructive| ActionInfo {
        kind,
        description: description.into(),
        destructive,
    };
    let mut actions = vec![
        action(ActionKind::Lock, "Lock the device (remoteLock)", false),
        action(
            ActionKind::Erase,
            "Wipe the device: {keep_enrollment_data, keep_user_data, mac_os_unlock_code, persist_esim_data_plan}",
            true,
        ),
        action(ActionKind::Restart, "Restart now (rebootNow)", false),
        action(ActionKind::Shutdown, "Shut down (shutDown)", false),
        action(
            ActionKind::Retire,
            "Retire: remove company data and management",
            true,
        ),
        action(
            ActionKind::RefreshInventory,
            "Ask the device to check in now (syncDevice)",
            false,
        ),
    ];
    actions.extend(
        VENDOR_ACTIONS.iter().map(|(name, d, destructive)| {
            action(ActionKind::Vendor((*name).into()), d, *destructive)
        }),
    );
    actions
}
