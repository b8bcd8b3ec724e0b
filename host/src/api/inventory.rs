//! `/v1/devices`, `/v1/users`, `/v1/apps` and `/v1/organizations`: filtered
//! keyset pages of the synced inventory and single reads, scoped to the
//! caller's workspace. Pages are ordered by id and continue after the last
//! id, so a walk during a sync never repeats or skips a record.

use axum::Json;
use axum::body::{Body, Bytes, HttpBody};
use axum::extract::State;
use axum::http::{HeaderValue, header};
use axum::response::{IntoResponse, Response};
use serde::Deserialize;
use utoipa::{IntoParams, ToSchema};
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use super::AppState;
use super::auth::Caller;
use super::live;
use super::params::{self, Id, Params};
use super::problem::{Common, Problem, Vendor};
use super::schema::{App, Device, ListPage, Organization, User};
use crate::store::query::{self, Filter, Listing};

/// What `include` may add to list records.
#[derive(Debug, Clone, Copy, Deserialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum Include {
    /// The vendor's JSON of each record.
    RemoteData,
}

/// Which records by status.
#[derive(Debug, Clone, Copy, Deserialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum Status {
    /// Still present at the vendor.
    Active,
    /// Confirmed gone.
    Removed,
    /// Both (the default, so that polling with `updated_since` sees removals).
    All,
}

impl Status {
    fn filter(self) -> Option<String> {
        match self {
            Status::Active => Some("active".into()),
            Status::Removed => Some("removed".into()),
            Status::All => None,
        }
    }
}

/// Declares a list's query parameters: those every list takes, then the
/// list's own filters. Unknown parameters are refused, so a misspelt
/// filter never silently returns everything.
macro_rules! list_params {
    ($(#[$doc:meta])* $name:ident { $($(#[$fdoc:meta])* $field:ident: $ty:ty,)* }) => {
        $(#[$doc])*
        #[derive(Debug, Deserialize, IntoParams)]
        #[into_params(parameter_in = Query)]
        #[serde(deny_unknown_fields)]
        pub struct $name {
            /// Page size, 1 to 1000 (default 100).
            #[param(minimum = 1, maximum = 1000)]
            limit: Option<i64>,
            /// The `next_cursor` of the previous page.
            cursor: Option<String>,
            /// Only records of this account (name or id).
            account: Option<String>,
            /// Only records mdmhub changed at or after this RFC 3339 time.
            updated_since: Option<String>,
            /// `remote_data`: include each record's vendor JSON.
            #[param(inline)]
            include: Option<Include>,
            $($(#[$fdoc])* $field: $ty,)*
        }

        impl $name {
            fn base(&self, caller: &Caller) -> Result<Filter, Problem> {
                base_filter(
                    caller,
                    self.limit,
                    &self.cursor,
                    &self.account,
                    &self.updated_since,
                    self.include,
                )
            }
        }
    };
}

list_params!(
    /// Filters of `GET /v1/devices`.
    DeviceParams {
        /// `active`, `removed` or `all` (default).
        #[param(inline)]
        status: Option<Status>,
        /// macos, ios, ipados, tvos, visionos, windows, android, linux, chromeos, other.
        platform: Option<String>,
        /// laptop, desktop, tablet, phone, tv, server, virtual, other.
        device_type: Option<String>,
        /// Serial number (exact, any case).
        serial: Option<String>,
        /// The assigned user's email (exact, any case).
        email: Option<String>,
    }
);

list_params!(
    /// Filters of `GET /v1/users`.
    UserParams {
        /// `active`, `removed` or `all` (default).
        #[param(inline)]
        status: Option<Status>,
        /// Email (exact, any case).
        email: Option<String>,
    }
);

list_params!(
    /// Filters of `GET /v1/apps`.
    AppParams {
        /// Only the apps of this device (mdmhub or vendor id).
        device: Option<String>,
    }
);

list_params!(
    /// Filters of `GET /v1/organizations`.
    OrganizationParams {
        /// `active`, `removed` or `all` (default).
        #[param(inline)]
        status: Option<Status>,
    }
);

/// The filter every list starts from: the caller's workspace, the page,
/// and the common filters.
fn base_filter(
    caller: &Caller,
    limit: Option<i64>,
    cursor: &Option<String>,
    account: &Option<String>,
    updated_since: &Option<String>,
    include: Option<Include>,
) -> Result<Filter, Problem> {
    Ok(Filter {
        workspace: Some(caller.workspace_id.clone()),
        limit: params::limit(limit)?,
        after: cursor.clone(),
        account: account.clone(),
        updated_since: updated_since
            .as_deref()
            .map(|t| params::time("updated_since", t))
            .transpose()?,
        omit_remote_data: include.is_none(),
        ..Filter::default()
    })
}

/// A page of records as served, `{"result": [...], "next_cursor": ...,
/// "result_count": n}`, made from the stored records' text (the bytes
/// serializing a [`ListPage`] of [`query::Json`] would make). The records
/// are sent as they were written, between the envelope's two ends: a page
/// is most of a request's bytes, and copying it into one buffer cost a
/// sixth of the server's time.
async fn list(state: &AppState, listing: Listing, filter: Filter) -> Result<Response, Problem> {
    let page = state.store().list_text(listing, &filter).await?;
    let mut tail = Vec::with_capacity(64);
    tail.extend_from_slice(b"],\"next_cursor\":");
    serde_json::to_writer(&mut tail, &page.next).expect("strings serialize");
    tail.extend_from_slice(format!(",\"result_count\":{}}}", page.count).as_bytes());
    let body = Chunks::new([
        Bytes::from_static(b"{\"result\":["),
        Bytes::from(page.records),
        Bytes::from(tail),
    ]);
    Ok((
        [(
            header::CONTENT_TYPE,
            HeaderValue::from_static("application/json"),
        )],
        Body::new(body),
    )
        .into_response())
}

/// A response body of a few chunks, each sent as it is (hyper writes them
/// vectored), with their exact length (so the answer has a
/// `Content-Length`).
struct Chunks(std::collections::VecDeque<Bytes>);

impl Chunks {
    fn new(chunks: impl IntoIterator<Item = Bytes>) -> Self {
        Self(chunks.into_iter().filter(|c| !c.is_empty()).collect())
    }
}

impl HttpBody for Chunks {
    type Data = Bytes;
    type Error = std::convert::Infallible;

    fn poll_frame(
        mut self: std::pin::Pin<&mut Self>,
        _: &mut std::task::Context<'_>,
    ) -> std::task::Poll<Option<Result<http_body::Frame<Bytes>, Self::Error>>> {
        std::task::Poll::Ready(self.0.pop_front().map(|c| Ok(http_body::Frame::data(c))))
    }

    fn is_end_stream(&self) -> bool {
        self.0.is_empty()
    }

    fn size_hint(&self) -> http_body::SizeHint {
        http_body::SizeHint::with_exact(self.0.iter().map(|c| c.len() as u64).sum())
    }
}

/// One record by mdmhub id, with its vendor JSON, if the caller's workspace has it.
async fn get(
    state: &AppState,
    caller: &Caller,
    listing: Listing,
    what: &str,
    id: &str,
) -> Result<query::Json, Problem> {
    let filter = Filter {
        workspace: Some(caller.workspace_id.clone()),
        id: Some(id.to_owned()),
        limit: 1,
        ..Filter::default()
    };
    let (mut rows, _) = state.store().list(listing, &filter).await?;
    rows.pop().ok_or_else(|| Problem::not_found(what, id))
}

/// List devices.
#[utoipa::path(get, path = "/v1/devices", tag = "inventory", params(DeviceParams),
    responses((status = 200, description = "A page of devices", body = ListPage<Device>), Common))]
async fn list_devices(
    caller: Caller,
    State(state): State<AppState>,
    Params(q): Params<DeviceParams>,
) -> Result<Response, Problem> {
    let filter = Filter {
        status: q.status.and_then(Status::filter),
        platform: q.platform.clone(),
        device_type: q.device_type.clone(),
        serial: q.serial.clone(),
        email: q.email.clone(),
        ..q.base(&caller)?
    };
    list(&state, Listing::Devices, filter).await
}

/// Options of `GET /v1/devices/{id}`.
#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
#[serde(deny_unknown_fields)]
pub struct DeviceGetParams {
    /// Read the device from the vendor now, through its connector (fields
    /// as of now, `remote_data` as `{"live": ...}`); rate limits and vendor
    /// failures answer 429/502/504.
    live: Option<bool>,
}

/// The stored device `id` of the caller's workspace.
pub(super) async fn device(
    state: &AppState,
    caller: &Caller,
    id: &str,
) -> Result<query::Json, Problem> {
    get(state, caller, Listing::Devices, "device", id).await
}

/// One device, with its vendor JSON and the other records of the same
/// physical device; with `live=true`, as the vendor reports it now.
#[utoipa::path(get, path = "/v1/devices/{id}", tag = "inventory",
    params(("id" = String, Path, description = "mdmhub device id"), DeviceGetParams),
    responses((status = 200, description = "The device", body = Device), Vendor, Common))]
async fn get_device(
    caller: Caller,
    State(state): State<AppState>,
    Id(id): Id,
    Params(q): Params<DeviceGetParams>,
) -> Result<Json<query::Json>, Problem> {
    let mut device = device(&state, &caller, &id).await?;
    if q.live == Some(true) {
        device = live::read_device(&state, &caller, device).await?;
    }
    state
        .store()
        .add_same_as(Some(&caller.workspace_id), &mut device)
        .await?;
    Ok(Json(device))
}

/// List users.
#[utoipa::path(get, path = "/v1/users", tag = "inventory", params(UserParams),
    responses((status = 200, description = "A page of users", body = ListPage<User>), Common))]
async fn list_users(
    caller: Caller,
    State(state): State<AppState>,
    Params(q): Params<UserParams>,
) -> Result<Response, Problem> {
    let filter = Filter {
        status: q.status.and_then(Status::filter),
        email: q.email.clone(),
        ..q.base(&caller)?
    };
    list(&state, Listing::Users, filter).await
}

/// One user.
#[utoipa::path(get, path = "/v1/users/{id}", tag = "inventory",
    params(("id" = String, Path, description = "mdmhub user id")),
    responses((status = 200, description = "The user", body = User), Common))]
async fn get_user(
    caller: Caller,
    State(state): State<AppState>,
    Id(id): Id,
) -> Result<Json<query::Json>, Problem> {
    get(&state, &caller, Listing::Users, "user", &id)
        .await
        .map(Json)
}

/// List installed apps.
#[utoipa::path(get, path = "/v1/apps", tag = "inventory", params(AppParams),
    responses((status = 200, description = "A page of apps", body = ListPage<App>), Common))]
async fn list_apps(
    caller: Caller,
    State(state): State<AppState>,
    Params(q): Params<AppParams>,
) -> Result<Response, Problem> {
    let filter = Filter {
        device: q.device.clone(),
        ..q.base(&caller)?
    };
    list(&state, Listing::Apps, filter).await
}

/// One installed app.
#[utoipa::path(get, path = "/v1/apps/{id}", tag = "inventory",
    params(("id" = String, Path, description = "mdmhub app id")),
    responses((status = 200, description = "The app", body = App), Common))]
async fn get_app(
    caller: Caller,
    State(state): State<AppState>,
    Id(id): Id,
) -> Result<Json<query::Json>, Problem> {
    get(&state, &caller, Listing::Apps, "app", &id)
        .await
        .map(Json)
}

/// List organizations.
#[utoipa::path(get, path = "/v1/organizations", tag = "inventory", params(OrganizationParams),
    responses((status = 200, description = "A page of organizations", body = ListPage<Organization>), Common))]
async fn list_organizations(
    caller: Caller,
    State(state): State<AppState>,
    Params(q): Params<OrganizationParams>,
) -> Result<Response, Problem> {
    let filter = Filter {
        status: q.status.and_then(Status::filter),
        ..q.base(&caller)?
    };
    list(&state, Listing::Organizations, filter).await
}

/// One organization.
#[utoipa::path(get, path = "/v1/organizations/{id}", tag = "inventory",
    params(("id" = String, Path, description = "mdmhub organization id")),
    responses((status = 200, description = "The organization", body = Organization), Common))]
async fn get_organization(
    caller: Caller,
    State(state): State<AppState>,
    Id(id): Id,
) -> Result<Json<query::Json>, Problem> {
    get(&state, &caller, Listing::Organizations, "organization", &id)
        .await
        .map(Json)
}

/// The inventory routes.
pub fn routes() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(list_devices))
        .routes(routes!(get_device))
        .routes(routes!(list_users))
        .routes(routes!(get_user))
        .routes(routes!(list_apps))
        .routes(routes!(get_app))
        .routes(routes!(list_organizations))
        .routes(routes!(get_organization))
}
