//! Vendor API simulators: a seeded synthetic fleet ([`fleet`]) rendered in
//! each vendor's wire format ([`iru`], [`intune`]), behind shared behaviour
//! ([`control`]: fault injection, the request budget, the record of actions)
//! and a loopback server ([`server`]). The helpers below are the small wire
//! details more than one simulator needs.

pub mod control;
pub mod fleet;
pub mod intune;
pub mod iru;
pub mod server;

use axum::http::{HeaderMap, header};
use serde_json::Value;
use time::OffsetDateTime;

/// A synthetic Unix time as a date.
pub fn datetime(secs: i64) -> OffsetDateTime {
    OffsetDateTime::from_unix_timestamp(secs).expect("synthetic times are in range")
}

/// `2024-07-23T09:31:49Z`: RFC 3339 in UTC, whole seconds.
pub fn rfc3339(secs: i64) -> String {
    let t = datetime(secs);
    format!(
        "{:04}-{:02}-{:02}T{:02}:{:02}:{:02}Z",
        t.year(),
        t.month() as u8,
        t.day(),
        t.hour(),
        t.minute(),
        t.second()
    )
}

/// The wall clock in Unix seconds (for things the client does now, such as
/// actions, as opposed to the synthetic fleet's fixed [`fleet::NOW`]).
pub fn now_secs() -> i64 {
    OffsetDateTime::now_utc().unix_timestamp()
}

/// The token of an `Authorization: Bearer <token>` header.
pub fn bearer(headers: &HeaderMap) -> Option<&str> {
    headers
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.strip_prefix("Bearer "))
}

/// A request's JSON body; an empty body is `null`.
pub fn json_body(body: &[u8]) -> serde_json::Result<Value> {
    if body.is_empty() {
        Ok(Value::Null)
    } else {
        serde_json::from_slice(body)
    }
}

/// FNV-1a 64: a hash that stays the same across Rust releases (std's
/// `DefaultHasher` may not), for derived ids and page-token checks.
pub fn fnv(bytes: &[u8]) -> u64 {
    bytes.iter().fold(0xcbf2_9ce4_8422_2325, |h, b| {
        (h ^ u64::from(*b)).wrapping_mul(0x0100_0000_01b3)
    })
}

const BASE64URL: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";

/// Base64url without padding (JWT segments, opaque page tokens).
pub fn base64url(bytes: &[u8]) -> String {
    let mut out = String::with_capacity(bytes.len().div_ceil(3) * 4);
    for chunk in bytes.chunks(3) {
        let n = chunk
            .iter()
            .enumerate()
            .fold(0u32, |n, (i, b)| n | u32::from(*b) << (16 - 8 * i));
        for i in 0..=chunk.len() {
            out.push(BASE64URL[(n >> (18 - 6 * i) & 63) as usize] as char);
        }
    }
    out
}

/// Decodes [`base64url`]; `None` for any other text.
pub fn from_base64url(text: &str) -> Option<Vec<u8>> {
    let mut out = Vec::with_capacity(text.len() * 3 / 4);
    let (mut acc, mut bits) = (0u32, 0u32);
    for c in text.bytes() {
        let v = BASE64URL.iter().position(|b| *b == c)? as u32;
        acc = acc << 6 | v;
        bits += 6;
        if bits >= 8 {
            bits -= 8;
            out.push((acc >> bits) as u8);
            acc &= (1 << bits) - 1;
        }
    }
    // Canonical text only: no dangling character, no stray low bits.
    (bits < 6 && acc == 0).then_some(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn base64url_round_trips() {
        for len in 0..10 {
            let bytes: Vec<u8> = (0..len).map(|i| (i * 37 + 250) as u8).collect();
            let text = base64url(&bytes);
            assert_eq!(from_base64url(&text).as_deref(), Some(&bytes[..]), "{text}");
        }
        assert_eq!(base64url(b"{\"typ\":\"JWT\"}"), "eyJ0eXAiOiJKV1QifQ");
        assert_eq!(from_base64url("eyJ0eXAiOiJKV1QifQ+"), None);
        assert_eq!(from_base64url("eyJ0eXAiOiJKV1QifR"), None);
    }

    #[test]
    fn times() {
        assert_eq!(rfc3339(fleet::NOW + 3_661), "2024-07-23T01:01:01Z");
    }
}
