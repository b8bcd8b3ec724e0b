//! Lenient readers for vendor JSON quirks: `""` meaning none, string
//! booleans (`"True"`, `"Yes"`), mixed timestamp formats, epoch seconds with
//! fractions, `0001-01-01T00:00:00Z` meaning never, human sizes (`16 GB`).
//! Every reader answers `None` for what is unknown, never a made-up default.

use serde_json::Value;
use time::format_description::well_known::Rfc3339;
use time::{OffsetDateTime, PrimitiveDateTime, UtcOffset};

/// The value at a JSON pointer, treating `null` as absent. Unlike
/// `Value::pointer` it allocates nothing (connectors read dozens of fields
/// per record, so this is their hot path); `~0`/`~1` escapes are honoured.
pub fn at<'a>(v: &'a Value, pointer: &str) -> Option<&'a Value> {
    if pointer.is_empty() {
        return Some(v).filter(|v| !v.is_null());
    }
    let rest = pointer.strip_prefix('/')?;
    let mut cur = v;
    for token in rest.split('/') {
        cur = if token.contains('~') {
            let token = token.replace("~1", "/").replace("~0", "~");
            step(cur, &token)?
        } else {
            step(cur, token)?
        };
    }
    Some(cur).filter(|v| !v.is_null())
}

fn step<'a>(v: &'a Value, token: &str) -> Option<&'a Value> {
    match v {
        Value::Object(m) => m.get(token),
        Value::Array(a) => a.get(token.parse::<usize>().ok()?),
        _ => None,
    }
}

/// A trimmed, non-empty string at `pointer` (numbers are rendered as text).
pub fn string(v: &Value, pointer: &str) -> Option<String> {
    match at(v, pointer)? {
        Value::String(s) => Some(s.trim()).filter(|s| !s.is_empty()).map(str::to_owned),
        Value::Number(n) => Some(n.to_string()),
        Value::Bool(b) => Some(b.to_string()),
        _ => None,
    }
}

/// `extra` fields from `(key, pointer)` pairs, skipping unknown values.
pub fn extras(v: &Value, fields: &[(&str, &str)]) -> Vec<crate::ExtraField> {
    fields
        .iter()
        .filter_map(|(key, pointer)| {
            string(v, pointer).map(|value| crate::ExtraField {
                key: (*key).into(),
                value,
            })
        })
        .collect()
}

/// A boolean at `pointer`: JSON bools, `"True"/"False"`, `"Yes"/"No"`,
/// `"1"/"0"`, `1/0`. Anything else is unknown.
pub fn boolean(v: &Value, pointer: &str) -> Option<bool> {
    match at(v, pointer)? {
        Value::Bool(b) => Some(*b),
        Value::Number(n) => match n.as_i64() {
            Some(0) => Some(false),
            Some(1) => Some(true),
            _ => None,
        },
        Value::String(s) => parse_bool(s),
        _ => None,
    }
}

/// Parses a string boolean; `None` for anything unrecognized.
pub fn parse_bool(s: &str) -> Option<bool> {
    // No lowercase copy: this runs for several fields of every record.
    let s = s.trim();
    let is = |words: &[&str]| words.iter().any(|w| s.eq_ignore_ascii_case(w));
    if is(&["true", "yes", "1", "on", "enabled"]) {
        Some(true)
    } else if is(&["false", "no", "0", "off", "disabled"]) {
        Some(false)
    } else {
        None
    }
}

/// An unsigned integer at `pointer`, from a number or a numeric string.
pub fn unsigned(v: &Value, pointer: &str) -> Option<u64> {
    match at(v, pointer)? {
        Value::Number(n) => n
            .as_u64()
            .or_else(|| n.as_f64().filter(|f| *f >= 0.0).map(|f| f as u64)),
        Value::String(s) => s.trim().parse().ok(),
        _ => None,
    }
}

/// A timestamp at `pointer`, normalized to RFC 3339 UTC.
pub fn timestamp(v: &Value, pointer: &str) -> Option<String> {
    match at(v, pointer)? {
        Value::String(s) => parse_timestamp(s),
        Value::Number(n) => n.as_f64().and_then(from_epoch_seconds),
        _ => None,
    }
}

/// Parses RFC 3339, space-separated (`2024-01-26 16:15:36.087016+00:00`),
/// offset-less (taken as UTC) and epoch-seconds (`1700000000.25`) forms into
/// RFC 3339 UTC. `""` and the year-1 "never" date give `None`.
pub fn parse_timestamp(s: &str) -> Option<String> {
    let s = s.trim();
    if s.is_empty() {
        return None;
    }
    if s.starts_with(|c: char| c.is_ascii_digit()) && !s.contains('-') {
        return s.parse::<f64>().ok().and_then(from_epoch_seconds);
    }
    let t = if s.contains(' ') {
        std::borrow::Cow::Owned(s.replacen(' ', "T", 1))
    } else {
        std::borrow::Cow::Borrowed(s)
    };
    let parsed = OffsetDateTime::parse(&t, &Rfc3339).ok().or_else(|| {
        // `+00:00` without seconds fraction separators is RFC 3339 already;
        // what remains is a missing offset: take it as UTC.
        let fmt = time::macros::format_description!(
            version = 2,
            "[year]-[month]-[day]T[hour]:[minute]:[second][optional [.[subsecond]]]"
        );
        PrimitiveDateTime::parse(&t, &fmt)
            .ok()
            .map(|p| p.assume_utc())
    })?;
    if parsed.year() <= 1 {
        return None;
    }
    format(parsed)
}

fn from_epoch_seconds(secs: f64) -> Option<String> {
    if !secs.is_finite() || secs <= 0.0 {
        return None;
    }
    let nanos = (secs * 1e9) as i128;
    OffsetDateTime::from_unix_timestamp_nanos(nanos)
        .ok()
        .and_then(format)
}

fn format(t: OffsetDateTime) -> Option<String> {
    t.to_offset(UtcOffset::UTC).format(&Rfc3339).ok()
}

/// A human size such as `16 GB`, `494.38 GB` or `512 MB` in bytes (binary
/// multiples, as Apple reports memory); `None` if unparseable.
pub fn human_bytes(s: &str) -> Option<u64> {
    let s = s.trim();
    let split = s.find(|c: char| c.is_ascii_alphabetic())?;
    let number: f64 = s[..split].trim().parse().ok()?;
    let factor: u64 = match s[split..].trim().to_ascii_uppercase().as_str() {
        "B" => 1,
        "KB" | "KIB" => 1 << 10,
        "MB" | "MIB" => 1 << 20,
        "GB" | "GIB" => 1 << 30,
        "TB" | "TIB" => 1 << 40,
        _ => return None,
    };
    Some((number * factor as f64).round() as u64)
}

/// A vendor's camelCase enum value in mdmhub's lowercase snake_case
/// (`retirePending` becomes `retire_pending`, `inGracePeriod` becomes
/// `in_grace_period`); `None` for blank text.
pub fn snake_case(s: &str) -> Option<String> {
    let s = s.trim();
    if s.is_empty() {
        return None;
    }
    let mut out = String::with_capacity(s.len() + 4);
    let mut prev_lower = false;
    for c in s.chars() {
        if c.is_ascii_uppercase() {
            if prev_lower {
                out.push('_');
            }
            out.push(c.to_ascii_lowercase());
            prev_lower = false;
        } else if c == ' ' || c == '-' {
            out.push('_');
            prev_lower = false;
        } else {
            out.push(c);
            prev_lower = c.is_ascii_lowercase() || c.is_ascii_digit();
        }
    }
    Some(out)
}

/// Normalizes a MAC address to lowercase colon-separated form
/// (`001A2B3C4D5E` and `00-1a-2b-3c-4d-5e` become `00:1a:2b:3c:4d:5e`).
pub fn mac_address(s: &str) -> Option<String> {
    let hex: String = s.chars().filter(|c| c.is_ascii_hexdigit()).collect();
    if hex.len() != 12 || hex.chars().all(|c| c == '0') {
        return None;
    }
    let hex = hex.to_ascii_lowercase();
    Some(
        (0..6)
            .map(|i| &hex[i * 2..i * 2 + 2])
            .collect::<Vec<_>>()
            .join(":"),
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn pointers() {
        let v = json!({"a": {"b/c": [1, {"d": "x"}]}, "n": null});
        assert_eq!(at(&v, "/a/b~1c/1/d"), Some(&json!("x")));
        assert_eq!(at(&v, "/a/b~1c/9"), None);
        assert_eq!(at(&v, "/n"), None);
        assert_eq!(at(&v, "a"), None);
        assert_eq!(at(&v, ""), Some(&v));
    }

    #[test]
    fn empty_strings_and_nulls_are_unknown() {
        let v = json!({"a": "", "b": null, "c": " x ", "d": 5});
        assert_eq!(string(&v, "/a"), None);
        assert_eq!(string(&v, "/b"), None);
        assert_eq!(string(&v, "/missing"), None);
        assert_eq!(string(&v, "/c").as_deref(), Some("x"));
        assert_eq!(string(&v, "/d").as_deref(), Some("5"));
    }

    #[test]
    fn string_booleans() {
        let v = json!({"a": "True", "b": "False", "c": "Yes", "d": true, "e": "", "f": "maybe"});
        assert_eq!(boolean(&v, "/a"), Some(true));
        assert_eq!(boolean(&v, "/b"), Some(false));
        assert_eq!(boolean(&v, "/c"), Some(true));
        assert_eq!(boolean(&v, "/d"), Some(true));
        assert_eq!(boolean(&v, "/e"), None);
        assert_eq!(boolean(&v, "/f"), None);
    }

    #[test]
    fn mixed_timestamps_become_rfc3339_utc() {
        assert_eq!(
            parse_timestamp("2024-01-26 16:15:36.087016+00:00").unwrap(),
            "2024-01-26T16:15:36.087016Z"
        );
        assert_eq!(
            parse_timestamp("2024-07-23T14:11:37.150080Z").unwrap(),
            "2024-07-23T14:11:37.15008Z"
        );
        assert_eq!(
            parse_timestamp("2024-06-17 11:32:35+02:00").unwrap(),
            "2024-06-17T09:32:35Z"
        );
        assert_eq!(
            parse_timestamp("2024-06-17T11:32:35").unwrap(),
            "2024-06-17T11:32:35Z"
        );
        assert_eq!(
            parse_timestamp("1700000000.5").unwrap(),
            "2023-11-14T22:13:20.5Z"
        );
        assert_eq!(
            timestamp(&json!({"t": 1700000000}), "/t").unwrap(),
            "2023-11-14T22:13:20Z"
        );
        assert_eq!(parse_timestamp("0001-01-01T00:00:00Z"), None);
        assert_eq!(parse_timestamp(""), None);
        assert_eq!(parse_timestamp("3 days ago"), None);
    }

    #[test]
    fn sizes_and_macs() {
        assert_eq!(human_bytes("16 GB"), Some(16 << 30));
        assert_eq!(human_bytes("512MB"), Some(512 << 20));
        assert_eq!(human_bytes("lots"), None);
        assert_eq!(
            mac_address("001A2B3C4D5E").as_deref(),
            Some("00:1a:2b:3c:4d:5e")
        );
        assert_eq!(
            mac_address("fc:e2:6c:27:1b:e4").as_deref(),
            Some("fc:e2:6c:27:1b:e4")
        );
        assert_eq!(mac_address(""), None);
    }

    #[test]
    fn enum_values_become_snake_case() {
        assert_eq!(
            snake_case("retirePending").as_deref(),
            Some("retire_pending")
        );
        assert_eq!(snake_case("managed").as_deref(), Some("managed"));
        assert_eq!(
            snake_case("inGracePeriod").as_deref(),
            Some("in_grace_period")
        );
        assert_eq!(snake_case("Wipe Issued").as_deref(), Some("wipe_issued"));
        assert_eq!(snake_case(" "), None);
    }
}
