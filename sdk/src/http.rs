//! A request builder over the host's `http` capability, and status mapping.

use std::collections::HashMap;

use serde::Deserialize;
use serde::de::IgnoredAny;
use serde_json::value::RawValue;

use crate::elements::{self, Element, WalkError};

use crate::bindings::mdmhub::connector::http as wit;
use crate::page::Unmappable;
use crate::{ConnectorError, Method, ServerErrorInfo};
pub use wit::{HttpError, Paging};

/// An outgoing request under construction.
#[derive(Debug, Clone)]
pub struct Request {
    method: Method,
    url: String,
    query: Vec<(String, String)>,
    headers: Vec<wit::Header>,
    body: Option<Vec<u8>>,
    paging: Option<Paging>,
}

impl Request {
    /// A request with `method` to an absolute `url`.
    pub fn new(method: Method, url: impl Into<String>) -> Self {
        Self {
            method,
            url: url.into(),
            query: Vec::new(),
            headers: Vec::new(),
            body: None,
            paging: None,
        }
    }
    /// A GET request.
    pub fn get(url: impl Into<String>) -> Self {
        Self::new(Method::Get, url)
    }
    /// A POST request.
    pub fn post(url: impl Into<String>) -> Self {
        Self::new(Method::Post, url)
    }
    /// A DELETE request.
    pub fn delete(url: impl Into<String>) -> Self {
        Self::new(Method::Delete, url)
    }
    /// Adds a query parameter (percent-encoded).
    pub fn query(mut self, key: &str, value: impl ToString) -> Self {
        self.query.push((key.into(), value.to_string()));
        self
    }
    /// Adds a header. The host refuses `authorization`, `cookie` and `host`.
    pub fn header(mut self, name: &str, value: &str) -> Self {
        self.headers.push(wit::Header {
            name: name.into(),
            value: value.into(),
        });
        self
    }
    /// Sets a JSON body and its content type.
    pub fn json(self, body: &serde_json::Value) -> Self {
        let bytes = serde_json::to_vec(body).expect("a JSON value always serializes");
        self.header("content-type", "application/json").body(bytes)
    }
    /// Sets a raw body.
    pub fn body(mut self, body: Vec<u8>) -> Self {
        self.body = Some(body);
        self
    }
    /// Asks the host to apply `paging` and report the next position.
    pub fn paging(mut self, paging: Paging) -> Self {
        self.paging = Some(paging);
        self
    }
    /// The URL with the query parameters added.
    pub fn full_url(&self) -> String {
        if self.query.is_empty() {
            return self.url.clone();
        }
        let mut url = self.url.clone();
        let mut sep = if url.contains('?') { '&' } else { '?' };
        for (k, v) in &self.query {
            url.push(sep);
            url.push_str(&encode(k));
            url.push('=');
            url.push_str(&encode(v));
            sep = '&';
        }
        url
    }
    /// Sends the request through the host, mapping transport failures.
    pub fn send(self) -> Result<Response, ConnectorError> {
        let req = wit::Request {
            method: self.method,
            url: self.full_url(),
            headers: self.headers,
            body: self.body,
        };
        wit::send(&req, self.paging.as_ref())
            .map(Response)
            .map_err(map_http_error)
    }
    /// Sends and fails unless the status is 2xx (see [`Response::error_for_status`]).
    pub fn send_ok(self) -> Result<Response, ConnectorError> {
        self.send()?.error_for_status()
    }
}

/// One vendor object: its exact JSON text and its parsed value (a
/// `serde_json::Value`, or a typed struct built from [`crate::fields`]).
#[derive(Debug)]
pub struct Item<'a, T = serde_json::Value> {
    /// The object's JSON exactly as the vendor sent it (for `remote-data`).
    pub raw: &'a str,
    /// The parsed object.
    pub value: T,
}

impl<T> Item<'_, T> {
    /// The object's text with `"key": member` added last (`member`: JSON
    /// text), for a `remote-data` that joins two reads without parsing and
    /// re-serializing them. `None` if the item is not an object. Parsers
    /// keep the last of repeated keys, so an existing `key` is overridden.
    pub fn with_member(&self, key: &str, member: &str) -> Option<String> {
        let inner = self.raw.trim().strip_prefix('{')?.strip_suffix('}')?;
        let key = serde_json::to_string(key).expect("strings serialize");
        let (inner, comma) = match inner.trim().is_empty() {
            true => ("", ""),
            false => (inner, ","),
        };
        Some(format!("{{{inner}{comma}{key}:{}}}", member.trim()))
    }
}

/// A response from the host.
#[derive(Debug)]
pub struct Response(pub wit::Response);

impl Response {
    /// HTTP status.
    pub fn status(&self) -> u16 {
        self.0.status
    }
    /// The raw body.
    pub fn body(&self) -> &[u8] {
        &self.0.body
    }
    /// The next position the host extracted with the request's paging.
    pub fn next(&self) -> Option<&str> {
        self.0.next.as_deref()
    }
    /// The first header named `name` (case-insensitive).
    pub fn header(&self, name: &str) -> Option<&str> {
        self.0
            .headers
            .iter()
            .find(|h| h.name.eq_ignore_ascii_case(name))
            .map(|h| h.value.as_str())
    }
    /// Decodes the body as JSON, or `invalid-vendor-data` naming the URL.
    pub fn json<T: serde::de::DeserializeOwned>(&self) -> Result<T, ConnectorError> {
        serde_json::from_slice(&self.0.body).map_err(|e| self.malformed(e))
    }
    /// The whole body as one [`Item`] (a single-object read).
    pub fn item(&self) -> Result<Item<'_>, ConnectorError> {
        let raw = self.text()?;
        let value = serde_json::from_str(raw).map_err(|e| self.malformed(e))?;
        Ok(Item { raw, value })
    }

    /// The elements of the JSON array at `pointer` (`""`: the body is the
    /// array), each with its exact text so that `remote-data` needs no
    /// re-serialization.
    pub fn items(&self, pointer: &str) -> Result<Vec<Item<'_>>, ConnectorError> {
        self.elements(pointer)?
            .into_iter()
            .map(|(raw, value)| {
                let value = value.map_err(|e| self.malformed(e))?;
                Ok(Item { raw, value })
            })
            .collect()
    }

    /// Like [`items`](Self::items) but each element is parsed as `T`, which
    /// borrows from the body: the fast path for large list pages. An element
    /// `T` cannot represent is a per-record [`Unmappable`], not a page error.
    pub fn items_as<'a, T: Deserialize<'a>>(
        &'a self,
        pointer: &str,
    ) -> Result<Vec<Result<Item<'a, T>, Unmappable>>, ConnectorError> {
        Ok(self
            .elements(pointer)?
            .into_iter()
            .map(|(raw, value)| {
                value
                    .map(|value| Item { raw, value })
                    .map_err(|e| Unmappable::new(format!("unexpected record shape: {e}")))
            })
            .collect())
    }

    /// The body as one object parsed as `T` (see [`items_as`](Self::items_as)).
    pub fn item_as<'a, T: Deserialize<'a>>(&'a self) -> Result<Item<'a, T>, ConnectorError> {
        let raw = self.text()?.trim();
        let value = serde_json::from_str(raw).map_err(|e| self.malformed(e))?;
        Ok(Item { raw, value })
    }

    /// The elements of the array at `pointer`, each parsed as `T`.
    fn elements<'a, T: Deserialize<'a>>(
        &'a self,
        pointer: &str,
    ) -> Result<Vec<Element<'a, T>>, ConnectorError> {
        let mut text = self.text()?;
        let mut tokens: Vec<&str> = pointer.split('/').skip(1).collect();
        // The last step is walked in place (one pass over the page).
        let last = tokens.pop();
        for token in tokens {
            let mut object: HashMap<String, &RawValue> =
                serde_json::from_str(text).map_err(|e| {
                    match serde_json::from_str::<IgnoredAny>(text) {
                        Ok(_) => self.missing_array(pointer),
                        Err(_) => self.malformed(e),
                    }
                })?;
            text = object
                .remove(token)
                .ok_or_else(|| self.missing_array(pointer))?
                .get();
        }
        let walked = match last {
            None => elements::walk(text),
            Some(key) => elements::walk_member(text, &key.replace("~1", "/").replace("~0", "~"))
                .and_then(|found| found.ok_or(WalkError::NotAnArray)),
        };
        walked.map_err(|e| match e {
            WalkError::NotAnArray => self.missing_array(pointer),
            WalkError::Malformed(m) => ConnectorError::InvalidVendorData(format!(
                "malformed JSON from {}: {m}",
                self.0.url
            )),
        })
    }

    fn text(&self) -> Result<&str, ConnectorError> {
        std::str::from_utf8(&self.0.body).map_err(|e| {
            ConnectorError::InvalidVendorData(format!("non-UTF-8 body from {}: {e}", self.0.url))
        })
    }

    fn malformed(&self, e: serde_json::Error) -> ConnectorError {
        ConnectorError::InvalidVendorData(format!("malformed JSON from {}: {e}", self.0.url))
    }

    fn missing_array(&self, pointer: &str) -> ConnectorError {
        ConnectorError::InvalidVendorData(format!(
            "no JSON array at `{pointer}` in the response from {}",
            self.0.url
        ))
    }

    /// Maps a non-2xx status to the matching [`ConnectorError`].
    pub fn error_for_status(self) -> Result<Self, ConnectorError> {
        match status_error(self.0.status, &self.0.body, self.header("retry-after")) {
            None => Ok(self),
            Some(e) => Err(e),
        }
    }
}

/// Maps a status and body to an error; `None` for 2xx.
pub fn status_error(status: u16, body: &[u8], retry_after: Option<&str>) -> Option<ConnectorError> {
    if (200..=299).contains(&status) {
        return None; // before reading the body: a success's body can be large
    }
    let message = error_message(body).unwrap_or_else(|| format!("HTTP {status}"));
    Some(match status {
        401 => ConnectorError::Unauthorized(message),
        403 => ConnectorError::Forbidden(message),
        404 => ConnectorError::NotFound(message),
        429 => ConnectorError::RateLimited(
            retry_after
                .and_then(|v| v.trim().parse::<f64>().ok())
                .map(|s| (s * 1000.0) as u64)
                .unwrap_or(1000),
        ),
        500..=599 => ConnectorError::ServerError(ServerErrorInfo { status, message }),
        _ => ConnectorError::Rejected(ServerErrorInfo { status, message }),
    })
}

/// The most readable message in a vendor error body: a JSON string, an
/// array of strings, `detail`, `message`, `error.message`, `error_description`,
/// or the text itself (HTML pages are reduced to a note).
pub fn error_message(body: &[u8]) -> Option<String> {
    let text = String::from_utf8_lossy(body);
    let text = text.trim();
    if text.is_empty() {
        return None;
    }
    let Ok(value) = serde_json::from_str::<serde_json::Value>(text) else {
        if text.starts_with('<') {
            return Some("the vendor answered with an HTML page".into());
        }
        return Some(text.chars().take(500).collect());
    };
    use serde_json::Value;
    let pick = |v: &Value| -> Option<String> {
        for path in [
            "/detail",
            "/message",
            "/Message",
            "/error/message",
            "/error_description",
            "/error",
        ] {
            if let Some(Value::String(s)) = v.pointer(path) {
                return Some(unwrap_nested(s));
            }
        }
        None
    };
    match &value {
        Value::String(s) => Some(s.clone()),
        Value::Array(items) => Some(
            items
                .iter()
                .map(|i| {
                    i.as_str()
                        .map(str::to_owned)
                        .unwrap_or_else(|| i.to_string())
                })
                .collect::<Vec<_>>()
                .join("; "),
        ),
        other => pick(other).or_else(|| Some(other.to_string().chars().take(500).collect())),
    }
}

/// A message that is itself a JSON-encoded object (Intune puts
/// `{"_version": 3, "Message": "..."}` in `error.message`) reduced to its
/// `Message`; any other text is kept.
fn unwrap_nested(s: &str) -> String {
    let t = s.trim();
    if t.starts_with('{')
        && let Ok(inner) = serde_json::from_str::<serde_json::Value>(t)
        && let Some(m) = ["Message", "message"]
            .iter()
            .find_map(|k| inner.get(*k).and_then(|v| v.as_str()))
    {
        return m.trim().to_owned();
    }
    s.to_owned()
}

/// A path segment from an id the caller gave (percent-encoded), so that an
/// id such as `x/../../users` can never reach another endpoint.
pub fn segment(id: &str) -> Result<String, ConnectorError> {
    if id.is_empty() || id == "." || id == ".." {
        return Err(ConnectorError::NotFound(format!(
            "`{id}` is not a valid id"
        )));
    }
    Ok(encode(id))
}

fn map_http_error(e: HttpError) -> ConnectorError {
    match e {
        HttpError::Denied(m) => {
            ConnectorError::InvalidConfig(format!("request denied by the host: {m}"))
        }
        HttpError::Timeout(m) | HttpError::ConnectionFailed(m) => {
            ConnectorError::ConnectionFailed(m)
        }
        HttpError::TlsFailure(m) => ConnectorError::TlsFailure(m),
        HttpError::TooLarge(n) => ConnectorError::InvalidVendorData(format!(
            "response larger than the host's cap ({n} bytes)"
        )),
        HttpError::RateLimited(ms) => ConnectorError::RateLimited(ms),
        HttpError::AuthFailed(m) => ConnectorError::Unauthorized(m),
        HttpError::InvalidRequest(m) => ConnectorError::InvalidConfig(m),
    }
}

fn encode(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for b in s.bytes() {
        match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'_' | b'.' | b'~' => {
                out.push(b as char)
            }
            _ => out.push_str(&format!("%{b:02X}")),
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_member_is_added_to_the_exact_text() {
        let item = |raw| Item { raw, value: () };
        let joined = item(r#" {"a": 1,  "b":[2]} "#).with_member("details", r#" {"c":null} "#);
        assert_eq!(
            joined.as_deref(),
            Some(r#"{"a": 1,  "b":[2],"details":{"c":null}}"#)
        );
        let v: serde_json::Value = serde_json::from_str(&joined.unwrap()).unwrap();
        assert_eq!(v["details"], serde_json::json!({"c": null}));
        assert_eq!(
            item("{ }").with_member("a\"b", "[]").as_deref(),
            Some(r#"{"a\"b":[]}"#)
        );
        assert_eq!(item("[1]").with_member("a", "1"), None);
    }

    #[test]
    fn query_is_encoded_and_appended() {
        let r = Request::get("https://x.test/a?b=1")
            .query("q", "a b&c")
            .query("n", 3);
        assert_eq!(r.full_url(), "https://x.test/a?b=1&q=a%20b%26c&n=3");
    }

    fn response(body: &str) -> Response {
        Response(wit::Response {
            status: 200,
            headers: vec![],
            body: body.as_bytes().to_vec(),
            url: "https://x.test/a".into(),
            next: None,
        })
    }

    #[test]
    fn items_keep_the_vendor_text() {
        let r = response(r#"{"results": [{"id": 1,  "a": "x"}, {"id": 2}], "next": null}"#);
        let items = r.items("/results").unwrap();
        assert_eq!(items[0].raw, r#"{"id": 1,  "a": "x"}"#);
        assert_eq!(items[1].value["id"], 2);
        assert_eq!(response("[]").items("").unwrap().len(), 0);
        let missing = r.items("/nope").unwrap_err();
        assert!(matches!(missing, ConnectorError::InvalidVendorData(m) if m.contains("/nope")));
        assert!(
            matches!(response("[{").items(""), Err(ConnectorError::InvalidVendorData(m)) if m.contains("malformed JSON"))
        );
        assert_eq!(response(r#" {"k": 1} "#).item().unwrap().value["k"], 1);
    }

    #[test]
    fn typed_items_borrow_and_isolate_bad_records() {
        #[derive(Debug, serde::Deserialize)]
        struct Rec<'a> {
            #[serde(borrow, default)]
            id: crate::fields::Text<'a>,
        }
        let r = response(r#"[{"id": "a"}, 7, {"id": 2}]"#);
        let items = r.items_as::<Rec>("").unwrap();
        assert_eq!(items[0].as_ref().unwrap().value.id.as_str(), Some("a"));
        assert!(
            items[1]
                .as_ref()
                .unwrap_err()
                .message
                .contains("record shape")
        );
        assert_eq!(items[2].as_ref().unwrap().raw, r#"{"id": 2}"#);
        let one = response(r#" {"id": "x"} "#);
        assert_eq!(one.item_as::<Rec>().unwrap().raw, r#"{"id": "x"}"#);
    }

    #[test]
    fn ids_stay_one_segment() {
        assert_eq!(segment("a/../b?c").unwrap(), "a%2F..%2Fb%3Fc");
        assert!(segment("..").is_err());
        assert!(segment("").is_err());
    }

    #[test]
    fn vendor_error_bodies_become_readable() {
        assert_eq!(
            error_message(br#""This device is already locked.""#).unwrap(),
            "This device is already locked."
        );
        assert_eq!(
            error_message(br#"["Device is not in lost mode."]"#).unwrap(),
            "Device is not in lost mode."
        );
        assert_eq!(error_message(br#"{"detail":"nope"}"#).unwrap(), "nope");
        assert_eq!(
            error_message(br#"{"error":{"code":"X","message":"m"}}"#).unwrap(),
            "m"
        );
        assert!(
            error_message(b"<!doctype html><h1>Not Found</h1>")
                .unwrap()
                .contains("HTML")
        );
        assert!(error_message(b"").is_none());
        let intune = serde_json::json!({"error": {"code": "ResourceNotFound", "message":
            "{\r\n  \"_version\": 3,\r\n  \"Message\": \"An error has occurred - Operation ID: 1\"\r\n}"}});
        assert_eq!(
            error_message(intune.to_string().as_bytes()).unwrap(),
            "An error has occurred - Operation ID: 1"
        );
    }

    #[test]
    fn statuses_map_to_error_classes() {
        assert!(status_error(204, b"", None).is_none());
        assert!(matches!(
            status_error(401, b"", None),
            Some(ConnectorError::Unauthorized(_))
        ));
        assert!(matches!(
            status_error(403, b"", None),
            Some(ConnectorError::Forbidden(_))
        ));
        assert!(matches!(
            status_error(429, b"", Some("2.5")),
            Some(ConnectorError::RateLimited(2500))
        ));
        assert!(matches!(
            status_error(502, b"", None),
            Some(ConnectorError::ServerError(_))
        ));
        assert!(matches!(
            status_error(400, br#""bad""#, None),
            Some(ConnectorError::Rejected(ServerErrorInfo {
                status: 400,
                ..
            }))
        ));
    }
}
