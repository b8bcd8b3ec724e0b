//! One pass over a JSON array: each element is parsed as `T` and keeps its
//! exact text, without first splitting the array into raw values (which
//! would scan every byte of a large page twice).

use serde::Deserialize;
use serde::de::IgnoredAny;
use serde_json::Deserializer;

/// Why an array could not be walked.
#[derive(Debug)]
pub(crate) enum WalkError {
    /// The text is not a JSON array.
    NotAnArray,
    /// The JSON is malformed.
    Malformed(String),
}

/// One element: its text, and `T` or why `T` could not represent it.
pub(crate) type Element<'a, T> = (&'a str, Result<T, serde_json::Error>);

/// Parses every element of the array `text` as `T`. An element of the wrong
/// shape for `T` is returned as its error; malformed JSON fails the walk.
pub(crate) fn walk<'a, T: Deserialize<'a>>(
    text: &'a str,
) -> Result<Vec<Element<'a, T>>, WalkError> {
    let (out, after) = walk_prefix(text)?;
    end(after).map(|()| out)
}

/// Walks the array under `key` of the JSON object `text` (Graph's
/// `{"@odata.nextLink": ..., "value": [...]}`) in the same single pass: the
/// other members are skipped, never the array itself scanned twice. `None`
/// when the object has no such member.
pub(crate) fn walk_member<'a, T: Deserialize<'a>>(
    text: &'a str,
    key: &str,
) -> Result<Option<Vec<Element<'a, T>>>, WalkError> {
    let mut rest = text
        .trim_start()
        .strip_prefix('{')
        .ok_or(WalkError::NotAnArray)?
        .trim_start();
    let mut found = None;
    if let Some(after) = rest.strip_prefix('}') {
        return end(after).map(|()| None);
    }
    loop {
        let (name, after) = read::<String>(rest)?;
        rest = after
            .trim_start()
            .strip_prefix(':')
            .ok_or_else(|| WalkError::Malformed("expected `:` after an object key".into()))?
            .trim_start();
        if name == key && found.is_none() {
            let (elements, after) = walk_prefix(rest)?;
            found = Some(elements);
            rest = after.trim_start();
        } else {
            rest = read::<IgnoredAny>(rest)?.1.trim_start();
        }
        if let Some(after) = rest.strip_prefix(',') {
            rest = after.trim_start();
        } else if let Some(after) = rest.strip_prefix('}') {
            return end(after).map(|()| found);
        } else {
            return Err(WalkError::Malformed(
                "expected `,` or `}` after an object member".into(),
            ));
        }
    }
}

/// Reads one JSON value of type `T` at the start of `text`; the rest follows.
fn read<'a, T: Deserialize<'a>>(text: &'a str) -> Result<(T, &'a str), WalkError> {
    let mut stream = Deserializer::from_str(text).into_iter::<T>();
    match stream.next() {
        Some(Ok(v)) => Ok((v, &text[stream.byte_offset()..])),
        Some(Err(e)) => Err(WalkError::Malformed(e.to_string())),
        None => Err(eof()),
    }
}

/// Walks the array at the start of `text`; returns what follows its `]`.
fn walk_prefix<'a, T: Deserialize<'a>>(
    text: &'a str,
) -> Result<(Vec<Element<'a, T>>, &'a str), WalkError> {
    let mut rest = text
        .trim_start()
        .strip_prefix('[')
        .ok_or(WalkError::NotAnArray)?
        .trim_start();
    let mut out = Vec::new();
    if let Some(after) = rest.strip_prefix(']') {
        return Ok((out, after));
    }
    loop {
        // A stream deserializer reports where the value it read ends.
        let mut stream = Deserializer::from_str(rest).into_iter::<T>();
        let (value, len) = match stream.next() {
            Some(Ok(v)) => (Ok(v), stream.byte_offset()),
            Some(Err(e)) if e.is_data() => {
                // Well-formed but not a `T`: skip it to find where it ends.
                let mut skip = Deserializer::from_str(rest).into_iter::<IgnoredAny>();
                match skip.next() {
                    Some(Ok(_)) => (Err(e), skip.byte_offset()),
                    Some(Err(e)) => return Err(WalkError::Malformed(e.to_string())),
                    None => return Err(eof()),
                }
            }
            Some(Err(e)) => return Err(WalkError::Malformed(e.to_string())),
            None => return Err(eof()),
        };
        out.push((&rest[..len], value));
        rest = rest[len..].trim_start();
        if let Some(after) = rest.strip_prefix(',') {
            rest = after.trim_start();
        } else if let Some(after) = rest.strip_prefix(']') {
            return Ok((out, after));
        } else {
            return Err(WalkError::Malformed(
                "expected `,` or `]` after an array element".into(),
            ));
        }
    }
}

fn end(after: &str) -> Result<(), WalkError> {
    if after.trim().is_empty() {
        Ok(())
    } else {
        Err(WalkError::Malformed(
            "trailing characters after the array".into(),
        ))
    }
}

fn eof() -> WalkError {
    WalkError::Malformed("unexpected end of the array".into())
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::Value;

    fn texts(json: &str) -> Vec<&str> {
        walk::<Value>(json)
            .unwrap()
            .into_iter()
            .map(|(t, _)| t)
            .collect()
    }

    #[test]
    fn elements_keep_their_exact_text() {
        assert_eq!(
            texts(r#" [ {"a": "x,]"} , 1,"s" ,[2, 3],null ] "#),
            [r#"{"a": "x,]"}"#, "1", r#""s""#, "[2, 3]", "null"]
        );
        assert!(texts("[]").is_empty());
        assert!(texts(" [ ]\n").is_empty());
    }

    #[test]
    fn wrong_shapes_are_per_element_and_malformed_json_fails() {
        let got = walk::<u32>(r#"[1, {"x": [1]}, 3]"#).unwrap();
        assert_eq!(got[1].0, r#"{"x": [1]}"#);
        assert!(got[1].1.is_err());
        assert_eq!(*got[2].1.as_ref().unwrap(), 3);
        for bad in ["[1,]", "[1 2]", "[1", "[{]", "[1] x", "[\"a]"] {
            assert!(
                matches!(walk::<Value>(bad), Err(WalkError::Malformed(_))),
                "{bad}"
            );
        }
        assert!(matches!(
            walk::<Value>(r#"{"a": 1}"#),
            Err(WalkError::NotAnArray)
        ));
    }

    #[test]
    fn a_member_array_is_walked_in_place() {
        let body = r#" {"@odata.context": "x", "value": [{"id": "a"}, 2], "@odata.nextLink": {"n": [1]}} "#;
        let got = walk_member::<Value>(body, "value").unwrap().unwrap();
        assert_eq!(got[0].0, r#"{"id": "a"}"#);
        assert_eq!(got.len(), 2);
        assert!(
            walk_member::<Value>(r#"{"other": []}"#, "value")
                .unwrap()
                .is_none()
        );
        assert!(walk_member::<Value>("{}", "value").unwrap().is_none());
        assert!(matches!(
            walk_member::<Value>(r#"{"value": {"a": 1}}"#, "value"),
            Err(WalkError::NotAnArray)
        ));
        for bad in [
            r#"{"value": [1]"#,
            r#"{"value": [1]} x"#,
            r#"{"value" [1]}"#,
            r#"{"a": 1 "value": []}"#,
            r#"{"value": [1], "b": }"#,
        ] {
            assert!(
                matches!(
                    walk_member::<Value>(bad, "value"),
                    Err(WalkError::Malformed(_))
                ),
                "{bad}"
            );
        }
    }
}
