//! Records as callers see them, written as text: a stored record's JSON
//! with mdmhub's fields (ids, status, times, account) merged in by key,
//! the same bytes `serde_json` makes of the merged map, made by copying
//! the stored text instead of parsing it.

use serde_json::Value;

use super::StoreError;
use super::query::Json;

/// An account's names, as records show them.
#[derive(Debug, Clone)]
pub(crate) struct AccountNames {
    pub(crate) id: String,
    pub(crate) name: String,
    pub(crate) connector: String,
}

/// A value mdmhub adds to a stored record.
#[derive(Debug, Clone, Copy)]
pub(crate) enum Field<'a> {
    /// A string, or null.
    Text(Option<&'a str>),
    /// `remote_data`.
    Json(&'a Value),
}

impl Field<'_> {
    fn value(self) -> Value {
        match self {
            Field::Text(t) => t.map_or(Value::Null, |t| Value::String(t.to_owned())),
            Field::Json(v) => v.clone(),
        }
    }

    fn write(self, out: &mut Vec<u8>) {
        match self {
            Field::Text(t) => serde_json::to_writer(out, &t),
            Field::Json(v) => serde_json::to_writer(out, v),
        }
        .expect("values serialize")
    }
}

/// The fields mdmhub adds to a record, sorted by name: `values` (of
/// the listing's columns), the account's name and connector, and `remote_data`
/// if given.
pub(crate) fn fields<'a>(
    values: &[(&'static str, Option<&'a str>)],
    account: &'a AccountNames,
    remote: Option<&'a Value>,
) -> Vec<(&'static str, Field<'a>)> {
    let mut out: Vec<(&'static str, Field<'a>)> = Vec::with_capacity(values.len() + 3);
    out.extend(values.iter().map(|(k, v)| (*k, Field::Text(*v))));
    out.push(("account", Field::Text(Some(&account.name))));
    out.push(("connector", Field::Text(Some(&account.connector))));
    if let Some(r) = remote {
        out.push(("remote_data", Field::Json(r)));
    }
    out.sort_unstable_by_key(|(k, _)| *k);
    out
}

/// A stored record with `fields`, as a map (`completeness` is left out).
pub(crate) fn record_json(record: &str, fields: &[(&str, Field<'_>)]) -> Result<Json, StoreError> {
    let mut out: Json = serde_json::from_str(record)
        .map_err(|e| StoreError::Corrupt(format!("stored record: {e}")))?;
    out.remove("completeness");
    for (k, v) in fields {
        out.insert((*k).into(), v.value());
    }
    Ok(out)
}

/// Writes a record as callers see it, the bytes `serde_json` makes of
/// [`record_json`], to `out`: the stored record's members (in key order,
/// as `serde_json` stored them) with mdmhub's fields merged in by key.
pub(crate) fn render(
    record: &str,
    values: &[(&'static str, Option<&str>)],
    account: &AccountNames,
    remote: Option<&Value>,
    out: &mut Vec<u8>,
) {
    let fields = fields(values, account, remote);
    if !splice(record, &fields, out) {
        // Not the text serde_json stores (never expected): the slow way,
        // and a corrupt record as its error (this page's other records
        // are still served).
        match record_json(record, &fields) {
            Ok(json) => serde_json::to_writer(out, &json).expect("maps serialize"),
            Err(e) => serde_json::to_writer(out, &serde_json::json!({"error": e.to_string()}))
                .expect("values serialize"),
        }
    }
}

/// Writes object `record` (compact JSON, keys sorted, as `serde_json`
/// writes a map) without its `completeness` member and with `fields`
/// (sorted by key; replacing members of the same name) merged in.
/// `false`, writing nothing, if `record` is not such an object.
fn splice(record: &str, fields: &[(&str, Field<'_>)], out: &mut Vec<u8>) -> bool {
    let Some(members) = members(record) else {
        return false;
    };
    out.push(b'{');
    let mut first = true;
    let mut key = |out: &mut Vec<u8>, key: &str| {
        if !first {
            out.push(b',');
        }
        first = false;
        out.push(b'"');
        out.extend_from_slice(key.as_bytes());
        out.extend_from_slice(b"\":");
    };
    let mut fields = fields.iter().peekable();
    for (name, value) in members {
        let mut replaced = false;
        while let Some((k, v)) = fields.next_if(|(k, _)| *k <= name) {
            key(out, k);
            v.write(out);
            replaced |= *k == name;
        }
        if !replaced && name != "completeness" {
            key(out, name);
            out.extend_from_slice(value.as_bytes());
        }
    }
    for (k, v) in fields {
        key(out, k);
        v.write(out);
    }
    out.push(b'}');
    true
}

/// A stored record cut where mdmhub's fields go, for one set of field
/// names: writing it copies runs of members and writes the fields between
/// them, the bytes [`splice`] makes, without scanning the record again.
#[derive(Debug)]
pub(crate) struct Template {
    /// The record's members as `"key":value`, comma-separated within a run.
    text: Box<str>,
    parts: Box<[Part]>,
}

/// A piece of a [`Template`], in output order.
#[derive(Debug, Clone, Copy)]
enum Part {
    /// Members `text[start..end]`.
    Members(u32, u32),
    /// The field with this index among the template's names.
    Field(u8),
}

impl Template {
    /// `record` cut for fields `names` (sorted, as [`fields`] sorts them),
    /// or `None` if it is not an object as `serde_json` stores one.
    pub(crate) fn new(record: &str, names: &[&str]) -> Option<Self> {
        let members = members(record)?;
        let mut text = String::with_capacity(record.len());
        let mut parts = Vec::with_capacity(names.len() * 2 + 1);
        let mut run: Option<usize> = None;
        let close = |text: &str, run: &mut Option<usize>, parts: &mut Vec<Part>| {
            if let Some(start) = run.take() {
                parts.push(Part::Members(start as u32, text.len() as u32));
            }
        };
        let mut names = names.iter().enumerate().peekable();
        for (name, value) in members {
            let mut replaced = false;
            while let Some((j, k)) = names.next_if(|(_, k)| **k <= name) {
                close(&text, &mut run, &mut parts);
                parts.push(Part::Field(u8::try_from(j).ok()?));
                replaced |= *k == name;
            }
            if !replaced && name != "completeness" {
                match run {
                    Some(_) => text.push(','),
                    None => run = Some(text.len()),
                }
                text.push('"');
                text.push_str(name);
                text.push_str("\":");
                text.push_str(value);
            }
        }
        close(&text, &mut run, &mut parts);
        for (j, _) in names {
            parts.push(Part::Field(u8::try_from(j).ok()?));
        }
        u32::try_from(text.len()).ok()?;
        Some(Self {
            text: text.into_boxed_str(),
            parts: parts.into_boxed_slice(),
        })
    }

    /// Writes the record with `fields`: the template's names, in order, with their values.
    pub(crate) fn write(&self, fields: &[(&str, Field<'_>)], out: &mut Vec<u8>) {
        out.push(b'{');
        for (i, part) in self.parts.iter().enumerate() {
            if i > 0 {
                out.push(b',');
            }
            match *part {
                Part::Members(start, end) => {
                    out.extend_from_slice(&self.text.as_bytes()[start as usize..end as usize])
                }
                Part::Field(j) => {
                    let (key, value) = fields[j as usize];
                    out.push(b'"');
                    out.extend_from_slice(key.as_bytes());
                    out.extend_from_slice(b"\":");
                    value.write(out);
                }
            }
        }
        out.push(b'}');
    }

    /// Bytes held, roughly.
    pub(crate) fn size(&self) -> usize {
        self.text.len() + self.parts.len() * std::mem::size_of::<Part>()
    }
}

/// The members of a JSON object's text, `(key, value text)`, if it is
/// an object as `serde_json` writes a map: compact, keys without escapes
/// in ascending order.
fn members(text: &str) -> Option<Vec<(&str, &str)>> {
    let b = text.as_bytes();
    if b.first() != Some(&b'{') {
        return None;
    }
    let mut out: Vec<(&str, &str)> = Vec::with_capacity(32);
    let mut i = 1;
    if b.get(i) == Some(&b'}') {
        return (i + 1 == b.len()).then_some(out);
    }
    loop {
        if b.get(i) != Some(&b'"') {
            return None;
        }
        let key_end = skip_string(b, i)?;
        let key = &text[i + 1..key_end - 1];
        if key.contains('\\') || out.last().is_some_and(|(last, _)| *last >= key) {
            return None;
        }
        if b.get(key_end) != Some(&b':') {
            return None;
        }
        let value_start = key_end + 1;
        let value_end = skip_value(b, value_start)?;
        out.push((key, &text[value_start..value_end]));
        match b.get(value_end) {
            Some(b',') => i = value_end + 1,
            Some(b'}') if value_end + 1 == b.len() => return Some(out),
            _ => return None,
        }
    }
}

/// The end of the string starting at `b[i]` (a quote): the index after
/// its closing quote.
fn skip_string(b: &[u8], mut i: usize) -> Option<usize> {
    i += 1;
    loop {
        match b.get(i)? {
            b'\\' => i += 2,
            b'"' => return Some(i + 1),
            _ => i += 1,
        }
    }
}

/// The end of the compact JSON value starting at `b[i]`.
fn skip_value(b: &[u8], mut i: usize) -> Option<usize> {
    match b.get(i)? {
        b'"' => skip_string(b, i),
        b'{' | b'[' => {
            let mut depth = 0usize;
            loop {
                match b.get(i)? {
                    b'"' => {
                        i = skip_string(b, i)?;
                        continue;
                    }
                    b'{' | b'[' => depth += 1,
                    b'}' | b']' => {
                        depth -= 1;
                        if depth == 0 {
                            return Some(i + 1);
                        }
                    }
                    c if c.is_ascii_whitespace() => return None,
                    _ => {}
                }
                i += 1;
            }
        }
        _ => {
            let start = i;
            while let Some(c) = b.get(i) {
                if matches!(c, b',' | b'}' | b']') {
                    break;
                }
                if c.is_ascii_whitespace() || matches!(c, b'{' | b'[' | b'"' | b':') {
                    return None;
                }
                i += 1;
            }
            (i > start).then_some(i)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn spliced_records_are_the_bytes_serde_json_writes() {
        let record = serde_json::json!({
            "name": "Mac \"Pro\"\n\u{e9}\u{1}\u{1e}",
            "completeness": "full",
            "assigned_user": {"email": "a@b.c", "name": null},
            "extra": {"k": "v}{][", "n": [1, 2.5, -3e-7, {"x": []}]},
            "groups": [],
            "memory_bytes": 17179869184u64,
            "status": "stored status is replaced",
            "zz": true,
        })
        .to_string();
        let account = AccountNames {
            id: "acc_1".into(),
            name: "acme \u{1f}".into(),
            connector: "iru".into(),
        };
        let remote = serde_json::json!({"summary": {"a": 1}, "details": null});
        let values = [
            ("id", Some("dev_1")),
            ("removed_at", None),
            ("status", Some("active")),
        ];
        for remote in [None, Some(&remote)] {
            let fields = fields(&values, &account, remote);
            let slow = serde_json::to_vec(&record_json(&record, &fields).unwrap()).unwrap();
            let mut out = Vec::new();
            assert!(splice(&record, &fields, &mut out));
            assert_eq!(
                String::from_utf8(out).unwrap(),
                String::from_utf8(slow).unwrap()
            );
            let mut out = Vec::new();
            render(&record, &values, &account, remote, &mut out);
            assert!(!out.iter().any(|b| [0x1e, 0x1f].contains(b)), "escaped");
        }
        let fields = fields(&values, &account, None);
        let names: Vec<&str> = fields.iter().map(|(k, _)| *k).collect();
        for record in [
            record.as_str(),
            "{}",
            r#"{"completeness":"summary"}"#,
            r#"{"a":1}"#,
            r#"{"account":"stored","zzz":[]}"#,
            r#"{"id":"replaced","removed_at":1,"status":2}"#,
        ] {
            let mut spliced = Vec::new();
            assert!(splice(record, &fields, &mut spliced));
            let template = Template::new(record, &names).unwrap();
            let mut written = Vec::new();
            template.write(&fields, &mut written);
            assert_eq!(
                String::from_utf8(written).unwrap(),
                String::from_utf8(spliced).unwrap(),
                "{record}"
            );
        }
        assert!(Template::new(r#"{"b":1,"a":2}"#, &names).is_none());
        for bare in ["{}", r#"{"completeness":"summary"}"#] {
            let mut out = Vec::new();
            assert!(splice(bare, &fields, &mut out));
            assert_eq!(
                out,
                serde_json::to_vec(&record_json(bare, &fields).unwrap()).unwrap()
            );
        }
        // Anything serde_json would not have written is refused.
        for odd in [
            r#"{"b":1,"a":2}"#,
            r#"{"a": 1}"#,
            r#"{"a":[1, 2]}"#,
            r#"{"a\"b":1}"#,
            r#"{"a":1"#,
            r#"{"a":}"#,
            r#"[1]"#,
            r#"{"a":1}x"#,
        ] {
            assert!(!splice(odd, &fields, &mut Vec::new()), "{odd}");
        }
    }
}
