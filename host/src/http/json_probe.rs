//! Reads one thing at a JSON pointer (an array's length, the last item's
//! field, a scalar) while skipping the rest of the document unparsed, so
//! extracting a paging position costs far less than the guest's own parse.

use std::fmt;

use serde::de::{DeserializeSeed, Deserializer, IgnoredAny, MapAccess, SeqAccess, Visitor};

/// What to read at the pointer.
#[derive(Debug, Clone)]
pub enum Leaf {
    /// The number of items of an array.
    Count,
    /// A field of the array's last item, as text.
    LastField(String),
    /// A string or number, as text.
    Scalar,
}

/// What was found.
#[derive(Debug, Clone, PartialEq)]
pub enum Found {
    /// An array's length.
    Count(usize),
    /// Text (`None` for null or a non-scalar).
    Text(Option<String>),
}

/// Reads `leaf` at `pointer` (RFC 6901, `""` for the root) in `body`.
/// `Ok(None)` if the pointer leads nowhere; `Err` for malformed JSON.
pub fn probe(body: &[u8], pointer: &str, leaf: &Leaf) -> Result<Option<Found>, String> {
    let path: Vec<String> = if pointer.is_empty() {
        Vec::new()
    } else if let Some(rest) = pointer.strip_prefix('/') {
        rest.split('/')
            .map(|s| s.replace("~1", "/").replace("~0", "~"))
            .collect()
    } else {
        return Err(format!(
            "JSON pointer `{pointer}` must be empty or start with `/`"
        ));
    };
    let mut de = serde_json::Deserializer::from_slice(body);
    let found = Nav { path: &path, leaf }
        .deserialize(&mut de)
        .map_err(|e| e.to_string())?;
    de.end().map_err(|e| e.to_string())?;
    Ok(found)
}

struct Nav<'a> {
    path: &'a [String],
    leaf: &'a Leaf,
}

impl<'de> DeserializeSeed<'de> for Nav<'_> {
    type Value = Option<Found>;
    fn deserialize<D: Deserializer<'de>>(self, d: D) -> Result<Self::Value, D::Error> {
        d.deserialize_any(self)
    }
}

/// Every scalar callback of a visitor that finds nothing in scalars unless
/// it is the `Scalar` leaf.
macro_rules! scalars {
    () => {
        fn visit_bool<E>(self, _: bool) -> Result<Self::Value, E> {
            Ok(self.text(None))
        }
        fn visit_i64<E>(self, v: i64) -> Result<Self::Value, E> {
            Ok(self.text(Some(v.to_string())))
        }
        fn visit_u64<E>(self, v: u64) -> Result<Self::Value, E> {
            Ok(self.text(Some(v.to_string())))
        }
        fn visit_f64<E>(self, v: f64) -> Result<Self::Value, E> {
            Ok(self.text(Some(v.to_string())))
        }
        fn visit_str<E>(self, v: &str) -> Result<Self::Value, E> {
            Ok(self.text(Some(v.to_owned())))
        }
        fn visit_unit<E>(self) -> Result<Self::Value, E> {
            Ok(self.text(None))
        }
    };
}

impl Nav<'_> {
    fn text(&self, t: Option<String>) -> Option<Found> {
        (self.path.is_empty() && matches!(self.leaf, Leaf::Scalar)).then_some(Found::Text(t))
    }
}

impl<'de> Visitor<'de> for Nav<'_> {
    type Value = Option<Found>;

    fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
        f.write_str("any JSON value")
    }

    scalars!();

    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Self::Value, A::Error> {
        let mut found = None;
        let want = self.path.first();
        if want.is_none() && matches!(self.leaf, Leaf::Scalar) {
            found = Some(Found::Text(None));
        }
        while let Some(key) = map.next_key::<std::borrow::Cow<'de, str>>()? {
            if want.is_some_and(|w| *w == key) {
                found = map.next_value_seed(Nav {
                    path: &self.path[1..],
                    leaf: self.leaf,
                })?;
            } else {
                map.next_value::<IgnoredAny>()?;
            }
        }
        Ok(found)
    }

    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Self::Value, A::Error> {
        if let Some(first) = self.path.first() {
            let index: Option<usize> = first.parse().ok();
            let mut found = None;
            let mut i = 0;
            loop {
                if Some(i) == index {
                    match seq.next_element_seed(Nav {
                        path: &self.path[1..],
                        leaf: self.leaf,
                    })? {
                        Some(f) => found = f,
                        None => break,
                    }
                } else if seq.next_element::<IgnoredAny>()?.is_none() {
                    break;
                }
                i += 1;
            }
            return Ok(found);
        }
        match self.leaf {
            Leaf::Count => {
                let mut n = 0;
                while seq.next_element::<IgnoredAny>()?.is_some() {
                    n += 1;
                }
                Ok(Some(Found::Count(n)))
            }
            Leaf::LastField(field) => {
                let path = std::slice::from_ref(field);
                let mut last = None;
                while let Some(f) = seq.next_element_seed(Nav {
                    path,
                    leaf: &Leaf::Scalar,
                })? {
                    last = Some(f.unwrap_or(Found::Text(None)));
                }
                Ok(last)
            }
            Leaf::Scalar => {
                while seq.next_element::<IgnoredAny>()?.is_some() {}
                Ok(Some(Found::Text(None)))
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn counts_bare_and_nested_arrays() {
        assert_eq!(
            probe(b"[1,{\"a\":[2]},3]", "", &Leaf::Count).unwrap(),
            Some(Found::Count(3))
        );
        assert_eq!(
            probe(b"[]", "", &Leaf::Count).unwrap(),
            Some(Found::Count(0))
        );
        let body = br#"{"count":2,"results":[{"id":"a"},{"id":"b"}],"next":null}"#;
        assert_eq!(
            probe(body, "/results", &Leaf::Count).unwrap(),
            Some(Found::Count(2))
        );
        assert_eq!(probe(body, "/missing", &Leaf::Count).unwrap(), None);
    }

    #[test]
    fn reads_scalars_and_last_ids() {
        let body = br#"{"@odata.nextLink":"https://g/x?$skiptoken=1","value":[{"id":1},{"id":"z9","x":{"id":0}}],"meta":{"next_cursor":"c2"}}"#;
        assert_eq!(
            probe(body, "/@odata.nextLink", &Leaf::Scalar).unwrap(),
            Some(Found::Text(Some("https://g/x?$skiptoken=1".into())))
        );
        assert_eq!(
            probe(body, "/meta/next_cursor", &Leaf::Scalar).unwrap(),
            Some(Found::Text(Some("c2".into())))
        );
        assert_eq!(
            probe(body, "/value", &Leaf::LastField("id".into())).unwrap(),
            Some(Found::Text(Some("z9".into())))
        );
        assert_eq!(
            probe(body, "/value/0/id", &Leaf::Scalar).unwrap(),
            Some(Found::Text(Some("1".into())))
        );
        assert_eq!(
            probe(br#"{"next":null}"#, "/next", &Leaf::Scalar).unwrap(),
            Some(Found::Text(None))
        );
        assert_eq!(
            probe(br#"{"a~b/c":5}"#, "/a~0b~1c", &Leaf::Scalar).unwrap(),
            Some(Found::Text(Some("5".into())))
        );
    }

    #[test]
    fn malformed_json_is_an_error() {
        assert!(probe(b"[1,2", "", &Leaf::Count).is_err());
        assert!(probe(b"[1] x", "", &Leaf::Count).is_err());
        assert!(probe(b"[]", "no-slash", &Leaf::Count).is_err());
    }
}
