//! Errors as RFC 9457 `application/problem+json`, each with a stable `type`
//! URI that callers can match on.

use axum::http::{HeaderName, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use serde::Serialize;
use utoipa::ToSchema;

use crate::store::StoreError;

/// Where problem types live; a type is this plus its slug.
pub const TYPE_BASE: &str = "https://mdmhub.dev/problems/";

/// The media type of problem bodies.
pub const MEDIA_TYPE: &str = "application/problem+json";

/// The kinds of problem the API answers with.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    /// The bearer key is missing, malformed, unknown or revoked.
    Unauthorized,
    /// No such object in the caller's workspace (or no such route).
    NotFound,
    /// The route exists but not for this method.
    MethodNotAllowed,
    /// A query or path parameter is invalid.
    InvalidParameter,
    /// The account is already syncing.
    SyncRunning,
    /// A sync could not start.
    SyncFailed,
    /// The server is shutting down and takes no new work.
    ShuttingDown,
    /// The database is unreachable or not migrated.
    NotReady,
    /// The request body is not the JSON the operation takes.
    InvalidBody,
    /// A name is taken.
    Conflict,
    /// The connector does not offer the action (or no such action).
    UnknownAction,
    /// A destructive action was asked without `"confirm": true`.
    ConfirmationRequired,
    /// The connector or vendor refused the action's request (bad
    /// parameters, not supported on this device, a vendor 4xx).
    ActionRefused,
    /// The `Idempotency-Key` was used with another request.
    IdempotencyKeyReused,
    /// A request with the same `Idempotency-Key` is still running.
    IdempotencyKeyInUse,
    /// The account's settings do not fit its connector.
    InvalidAccount,
    /// A webhook subscription's URL or event types are not acceptable.
    InvalidWebhook,
    /// The connector's `check()` failed with the given credentials.
    AccountCheckFailed,
    /// The vendor rate-limited the account; retry after `Retry-After`.
    VendorRateLimited,
    /// The vendor failed (5xx) or sent data the connector cannot read.
    VendorError,
    /// The vendor refused the account's stored credentials.
    VendorCredentialsRefused,
    /// The vendor could not be reached.
    VendorUnreachable,
    /// The vendor did not answer in time.
    VendorTimeout,
    /// The connector itself failed (trapped or broke its contract).
    ConnectorFailed,
    /// Anything else; the details are in the server log.
    Internal,
}

impl Kind {
    /// The type URI's last segment.
    pub fn slug(self) -> &'static str {
        match self {
            Kind::Unauthorized => "unauthorized",
            Kind::NotFound => "not-found",
            Kind::MethodNotAllowed => "method-not-allowed",
            Kind::InvalidParameter => "invalid-parameter",
            Kind::SyncRunning => "sync-already-running",
            Kind::SyncFailed => "sync-failed",
            Kind::ShuttingDown => "shutting-down",
            Kind::NotReady => "not-ready",
            Kind::InvalidBody => "invalid-body",
            Kind::Conflict => "conflict",
            Kind::UnknownAction => "unknown-action",
            Kind::ConfirmationRequired => "confirmation-required",
            Kind::ActionRefused => "action-refused",
            Kind::IdempotencyKeyReused => "idempotency-key-reused",
            Kind::IdempotencyKeyInUse => "idempotency-key-in-use",
            Kind::InvalidAccount => "invalid-account",
            Kind::InvalidWebhook => "invalid-webhook",
            Kind::AccountCheckFailed => "account-check-failed",
            Kind::VendorRateLimited => "vendor-rate-limited",
            Kind::VendorError => "vendor-error",
            Kind::VendorCredentialsRefused => "vendor-credentials-refused",
            Kind::VendorUnreachable => "vendor-unreachable",
            Kind::VendorTimeout => "vendor-timeout",
            Kind::ConnectorFailed => "connector-failed",
            Kind::Internal => "internal",
        }
    }

    fn title(self) -> &'static str {
        match self {
            Kind::Unauthorized => "Missing or invalid API key",
            Kind::NotFound => "Not found",
            Kind::MethodNotAllowed => "Method not allowed",
            Kind::InvalidParameter => "Invalid parameter",
            Kind::SyncRunning => "Sync already running",
            Kind::SyncFailed => "Sync could not start",
            Kind::ShuttingDown => "Shutting down",
            Kind::NotReady => "Not ready",
            Kind::InvalidBody => "Invalid request body",
            Kind::Conflict => "Conflict",
            Kind::UnknownAction => "Unknown action",
            Kind::ConfirmationRequired => "Confirmation required",
            Kind::ActionRefused => "Action refused",
            Kind::IdempotencyKeyReused => "Idempotency key reused",
            Kind::IdempotencyKeyInUse => "Idempotency key in use",
            Kind::InvalidAccount => "Invalid account settings",
            Kind::InvalidWebhook => "Invalid webhook",
            Kind::AccountCheckFailed => "Account check failed",
            Kind::VendorRateLimited => "Vendor rate limit",
            Kind::VendorError => "Vendor error",
            Kind::VendorCredentialsRefused => "Vendor refused the credentials",
            Kind::VendorUnreachable => "Vendor unreachable",
            Kind::VendorTimeout => "Vendor timeout",
            Kind::ConnectorFailed => "Connector failure",
            Kind::Internal => "Internal error",
        }
    }

    fn status(self) -> StatusCode {
        match self {
            Kind::Unauthorized => StatusCode::UNAUTHORIZED,
            Kind::NotFound => StatusCode::NOT_FOUND,
            Kind::MethodNotAllowed => StatusCode::METHOD_NOT_ALLOWED,
            Kind::InvalidParameter | Kind::InvalidBody => StatusCode::BAD_REQUEST,
            Kind::SyncRunning | Kind::Conflict | Kind::IdempotencyKeyInUse => StatusCode::CONFLICT,
            Kind::UnknownAction
            | Kind::ConfirmationRequired
            | Kind::ActionRefused
            | Kind::IdempotencyKeyReused
            | Kind::InvalidAccount
            | Kind::InvalidWebhook
            | Kind::AccountCheckFailed => StatusCode::UNPROCESSABLE_ENTITY,
            Kind::VendorRateLimited => StatusCode::TOO_MANY_REQUESTS,
            Kind::VendorError
            | Kind::VendorCredentialsRefused
            | Kind::VendorUnreachable
            | Kind::ConnectorFailed => StatusCode::BAD_GATEWAY,
            Kind::VendorTimeout => StatusCode::GATEWAY_TIMEOUT,
            Kind::SyncFailed | Kind::Internal => StatusCode::INTERNAL_SERVER_ERROR,
            Kind::ShuttingDown | Kind::NotReady => StatusCode::SERVICE_UNAVAILABLE,
        }
    }
}

/// An RFC 9457 problem.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct Problem {
    /// A stable URI naming the kind of problem, e.g. `https://mdmhub.dev/problems/not-found`.
    #[serde(rename = "type")]
    pub kind: String,
    /// A short summary of the kind.
    pub title: String,
    /// The HTTP status code.
    pub status: u16,
    /// What went wrong in this case.
    pub detail: String,
    /// Members some problems add (boxed: most problems have none, and
    /// every `Result<_, Problem>` carries the size of a problem).
    #[serde(flatten)]
    pub extra: Box<Extra>,
}

/// Extension members of a problem, and headers to send with it.
#[derive(Debug, Clone, Default, Serialize, ToSchema)]
pub struct Extra {
    /// Account checks: the failure class (`unauthorized`, `forbidden`,
    /// `not_found`, `connection_failed`, ...).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub class: Option<String>,
    /// What to do about it.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub hint: Option<String>,
    /// Vendor rate limits: seconds until a retry may succeed.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub retry_after: Option<u64>,
    /// Headers sent with the problem (`Retry-After`, `RateLimit-*`).
    #[serde(skip)]
    pub headers: Vec<(HeaderName, HeaderValue)>,
}

impl Problem {
    /// A problem of `kind` with `detail`.
    pub fn new(kind: Kind, detail: impl Into<String>) -> Self {
        Self {
            kind: format!("{TYPE_BASE}{}", kind.slug()),
            title: kind.title().into(),
            status: kind.status().as_u16(),
            detail: detail.into(),
            extra: Box::default(),
        }
    }

    /// The same problem with a `hint`.
    pub fn with_hint(mut self, hint: impl Into<String>) -> Self {
        self.extra.hint = Some(hint.into());
        self
    }

    /// 404 for a `what` with `id` the caller's workspace does not have.
    pub fn not_found(what: &str, id: &str) -> Self {
        Self::new(Kind::NotFound, format!("no {what} `{id}`"))
    }

    /// 500 for an unexpected failure: logged here in full, answered briefly
    /// (database messages may name internals).
    pub fn internal(error: &dyn std::fmt::Display) -> Self {
        tracing::error!(error = %error, "request failed");
        Self::new(
            Kind::Internal,
            "the server failed to answer; the details are in its log",
        )
    }
}

impl From<StoreError> for Problem {
    fn from(e: StoreError) -> Self {
        match e {
            StoreError::NotFound(m) => Problem::new(Kind::NotFound, m),
            other => Problem::internal(&other),
        }
    }
}

impl IntoResponse for Problem {
    fn into_response(mut self) -> Response {
        let status = StatusCode::from_u16(self.status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
        let unauthorized = status == StatusCode::UNAUTHORIZED;
        let extra = std::mem::take(&mut self.extra.headers);
        let mut response = (status, axum::Json(self)).into_response();
        let headers = response.headers_mut();
        headers.extend(extra);
        headers.insert(header::CONTENT_TYPE, HeaderValue::from_static(MEDIA_TYPE));
        if unauthorized {
            headers.insert(
                header::WWW_AUTHENTICATE,
                HeaderValue::from_static("Bearer realm=\"mdmhub\""),
            );
        }
        response
    }
}

/// The answer to a request no route matches.
pub async fn no_route(uri: axum::http::Uri) -> Problem {
    Problem::new(Kind::NotFound, format!("no route {}", uri.path()))
}

/// The answer to a route called with a method it does not take.
pub async fn wrong_method(method: axum::http::Method, uri: axum::http::Uri) -> Problem {
    Problem::new(
        Kind::MethodNotAllowed,
        format!("{} does not take {method}", uri.path()),
    )
}

/// Documents the problems every authenticated operation may answer with.
#[derive(utoipa::IntoResponses)]
pub enum Common {
    /// A parameter is invalid.
    #[response(status = 400, content_type = "application/problem+json")]
    BadRequest(Problem),
    /// The bearer key is missing, unknown or revoked.
    #[response(status = 401, content_type = "application/problem+json")]
    Unauthorized(Problem),
    /// Not in the caller's workspace.
    #[response(status = 404, content_type = "application/problem+json")]
    NotFound(Problem),
    /// The server failed.
    #[response(status = 500, content_type = "application/problem+json")]
    Internal(Problem),
}

/// Documents the problems of operations that call the vendor live.
#[derive(utoipa::IntoResponses)]
pub enum Vendor {
    /// The vendor rate-limited the account: `Retry-After` and
    /// `RateLimit-Limit`, `RateLimit-Remaining`, `RateLimit-Reset` say when to retry.
    #[response(status = 429, content_type = "application/problem+json")]
    RateLimited(Problem),
    /// The vendor failed, refused the stored credentials, could not be
    /// reached, or the connector failed.
    #[response(status = 502, content_type = "application/problem+json")]
    BadGateway(Problem),
    /// The vendor did not answer in time.
    #[response(status = 504, content_type = "application/problem+json")]
    Timeout(Problem),
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn problems_have_stable_types_and_statuses() {
        let p = Problem::not_found("device", "dev_1");
        assert_eq!(p.kind, "https://mdmhub.dev/problems/not-found");
        assert_eq!(p.status, 404);
        let r = Problem::new(Kind::Unauthorized, "no key").into_response();
        assert_eq!(r.status(), 401);
        assert_eq!(r.headers()[header::CONTENT_TYPE], MEDIA_TYPE);
        assert!(r.headers().contains_key(header::WWW_AUTHENTICATE));
        let stored: Problem = StoreError::NotFound("no account `x`".into()).into();
        assert_eq!(stored.status, 404);
    }
}
