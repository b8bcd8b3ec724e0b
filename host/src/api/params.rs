//! Extractors whose rejections are problems, so that a bad query string
//! or path answers `application/problem+json` like every other error.

use axum::extract::{FromRequest, FromRequestParts, Path, Query, Request};
use axum::http::request::Parts;
use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use serde::de::DeserializeOwned;

use super::problem::{Kind, Problem};

/// Query parameters of type `T`.
#[derive(Debug)]
pub struct Params<T>(pub T);

impl<T: DeserializeOwned, S: Send + Sync> FromRequestParts<S> for Params<T> {
    type Rejection = Problem;

    async fn from_request_parts(parts: &mut Parts, state: &S) -> Result<Self, Problem> {
        Query::<T>::from_request_parts(parts, state)
            .await
            .map(|Query(v)| Params(v))
            .map_err(|e| Problem::new(Kind::InvalidParameter, e.body_text()))
    }
}

/// The one `{id}` segment of a path.
#[derive(Debug)]
pub struct Id(pub String);

impl<S: Send + Sync> FromRequestParts<S> for Id {
    type Rejection = Problem;

    async fn from_request_parts(parts: &mut Parts, state: &S) -> Result<Self, Problem> {
        Path::<String>::from_request_parts(parts, state)
            .await
            .map(|Path(v)| Id(v))
            .map_err(|e| Problem::new(Kind::InvalidParameter, e.body_text()))
    }
}

/// A JSON request body of type `T`.
#[derive(Debug)]
pub struct Body<T>(pub T);

impl<T: DeserializeOwned, S: Send + Sync> FromRequest<S> for Body<T> {
    type Rejection = Problem;

    async fn from_request(req: Request, state: &S) -> Result<Self, Problem> {
        axum::Json::<T>::from_request(req, state)
            .await
            .map(|axum::Json(v)| Body(v))
            .map_err(|e| Problem::new(Kind::InvalidBody, e.body_text()))
    }
}

/// A newest-first keyset position (a time and an id) as an opaque cursor.
pub fn cursor(at: &str, id: &str) -> String {
    URL_SAFE_NO_PAD.encode(format!("{at}\n{id}"))
}

/// The `(time, id)` position a [`cursor`] names.
pub fn position(cursor: &str) -> Result<(String, String), Problem> {
    let bad = || {
        Problem::new(
            Kind::InvalidParameter,
            format!("cursor `{cursor}` is not one this API gave"),
        )
    };
    let text = URL_SAFE_NO_PAD
        .decode(cursor)
        .ok()
        .and_then(|b| String::from_utf8(b).ok())
        .ok_or_else(bad)?;
    let (at, id) = text.split_once('\n').ok_or_else(bad)?;
    Ok((at.to_owned(), id.to_owned()))
}

/// Checks a page size: 1 to 1000, 100 when not given.
pub fn limit(given: Option<i64>) -> Result<i64, Problem> {
    match given {
        None => Ok(100),
        Some(n @ 1..=1000) => Ok(n),
        Some(n) => Err(Problem::new(
            Kind::InvalidParameter,
            format!("limit {n}: use 1 to 1000"),
        )),
    }
}

/// A caller's RFC 3339 time as the store writes times (so they compare).
pub fn time(name: &str, given: &str) -> Result<String, Problem> {
    time::OffsetDateTime::parse(given, &time::format_description::well_known::Rfc3339)
        .map(crate::store::stamp)
        .map_err(|e| {
            Problem::new(
                Kind::InvalidParameter,
                format!("{name} `{given}` is not an RFC 3339 time ({e})"),
            )
        })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn limits_and_times_are_checked() {
        assert_eq!(limit(None).unwrap(), 100);
        assert_eq!(limit(Some(1000)).unwrap(), 1000);
        assert!(limit(Some(0)).is_err());
        assert!(limit(Some(1001)).is_err());
        assert_eq!(
            time("updated_since", "2024-01-02T03:04:05+01:00").unwrap(),
            "2024-01-02T02:04:05.000000Z"
        );
        assert!(time("updated_since", "yesterday").is_err());
    }
}
