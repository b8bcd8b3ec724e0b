//! Lenient serde field types for typed, borrowed parsing of vendor records.
//!
//! Parsing a list page into `serde_json::Value` builds a map per record and
//! a string per key; for large fleets that dominates a connector's time. A
//! `#[derive(Deserialize)]` struct built from these types reads only the
//! fields it names, borrows strings from the response, and never fails on a
//! vendor quirk: each type accepts any JSON and keeps what it can use, with
//! the same rules as the [`lenient`](crate::lenient) readers.
//!
//! ```ignore
//! #[derive(serde::Deserialize)]
//! struct Summary<'a> {
//!     #[serde(borrow, default)]
//!     device_id: Text<'a>,
//!     #[serde(default)]
//!     mdm_enabled: Flag,
//! }
//! ```

use std::borrow::Cow;
use std::fmt;
use std::marker::PhantomData;

use serde::de::{self, Deserialize, Deserializer, IgnoredAny, MapAccess, SeqAccess, Visitor};

use crate::lenient;

/// A scalar read as text: strings (borrowed unless escaped), numbers and
/// booleans. `null`, blank strings, objects and arrays are unknown.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Text<'a>(Option<Cow<'a, str>>);

impl<'a> Text<'a> {
    /// The trimmed text, or `None` when unknown or blank.
    pub fn as_str(&self) -> Option<&str> {
        self.0.as_deref().map(str::trim).filter(|s| !s.is_empty())
    }
    /// The trimmed text as an owned string.
    pub fn get(&self) -> Option<String> {
        self.as_str().map(str::to_owned)
    }
    /// The text as an RFC 3339 UTC timestamp (see [`lenient::parse_timestamp`]).
    pub fn timestamp(&self) -> Option<String> {
        self.as_str().and_then(lenient::parse_timestamp)
    }
    /// The text as a boolean (see [`lenient::parse_bool`]).
    pub fn flag(&self) -> Option<bool> {
        self.as_str().and_then(lenient::parse_bool)
    }
    /// The text as a non-negative integer; `0` is unknown when `zero_unknown`
    /// (vendors such as Intune send `0` for "not reported").
    pub fn unsigned(&self, zero_unknown: bool) -> Option<u64> {
        let s = self.as_str()?;
        let n = s.parse::<u64>().ok().or_else(|| {
            s.parse::<f64>()
                .ok()
                .filter(|f| *f >= 0.0)
                .map(|f| f as u64)
        })?;
        (n != 0 || !zero_unknown).then_some(n)
    }
}

impl<'a> From<&'a str> for Text<'a> {
    fn from(s: &'a str) -> Self {
        Text(Some(Cow::Borrowed(s)))
    }
}

impl<'de: 'a, 'a> Deserialize<'de> for Text<'a> {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V<'a>(PhantomData<&'a ()>);
        impl<'de: 'a, 'a> Visitor<'de> for V<'a> {
            type Value = Text<'a>;
            fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
                f.write_str("any JSON value")
            }
            fn visit_borrowed_str<E>(self, s: &'de str) -> Result<Self::Value, E> {
                Ok(Text(Some(Cow::Borrowed(s))))
            }
            fn visit_str<E>(self, s: &str) -> Result<Self::Value, E> {
                Ok(Text(Some(Cow::Owned(s.to_owned()))))
            }
            fn visit_string<E>(self, s: String) -> Result<Self::Value, E> {
                Ok(Text(Some(Cow::Owned(s))))
            }
            fn visit_bool<E>(self, b: bool) -> Result<Self::Value, E> {
                Ok(Text(Some(Cow::Borrowed(if b { "true" } else { "false" }))))
            }
            fn visit_i64<E>(self, n: i64) -> Result<Self::Value, E> {
                Ok(Text(Some(Cow::Owned(n.to_string()))))
            }
            fn visit_u64<E>(self, n: u64) -> Result<Self::Value, E> {
                Ok(Text(Some(Cow::Owned(n.to_string()))))
            }
            fn visit_f64<E>(self, n: f64) -> Result<Self::Value, E> {
                Ok(Text(Some(Cow::Owned(n.to_string()))))
            }
            fn visit_unit<E>(self) -> Result<Self::Value, E> {
                Ok(Text(None))
            }
            fn visit_none<E>(self) -> Result<Self::Value, E> {
                Ok(Text(None))
            }
            fn visit_some<D: Deserializer<'de>>(self, d: D) -> Result<Self::Value, D::Error> {
                Text::deserialize(d)
            }
            fn visit_seq<A: SeqAccess<'de>>(self, seq: A) -> Result<Self::Value, A::Error> {
                skip_seq(seq).map(|()| Text(None))
            }
            fn visit_map<A: MapAccess<'de>>(self, map: A) -> Result<Self::Value, A::Error> {
                skip_map(map).map(|()| Text(None))
            }
        }
        d.deserialize_any(V(PhantomData))
    }
}

/// A boolean from JSON bools, `1`/`0`, or strings such as `"True"`, `"Yes"`,
/// `"0"`; anything else is unknown.
#[derive(Debug, Clone, Copy, Default, PartialEq)]
pub struct Flag(pub Option<bool>);

impl Flag {
    /// The value, if known.
    pub fn get(self) -> Option<bool> {
        self.0
    }
}

impl<'de> Deserialize<'de> for Flag {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let text = Text::deserialize(d)?;
        Ok(Flag(text.flag()))
    }
}

/// An object parsed as `T`, or `None` when the vendor sent anything else
/// (Iru sends `""` for "no user").
#[derive(Debug, Clone, PartialEq)]
pub struct Object<T>(pub Option<T>);

impl<T> Default for Object<T> {
    fn default() -> Self {
        Object(None)
    }
}

impl<T> Object<T> {
    /// The object, if the vendor sent one.
    pub fn get(&self) -> Option<&T> {
        self.0.as_ref()
    }
    /// The object by value.
    pub fn into_inner(self) -> Option<T> {
        self.0
    }
}

impl<'de, T: Deserialize<'de>> Deserialize<'de> for Object<T> {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V<T>(PhantomData<T>);
        impl<'de, T: Deserialize<'de>> Visitor<'de> for V<T> {
            type Value = Object<T>;
            fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
                f.write_str("any JSON value")
            }
            fn visit_map<A: MapAccess<'de>>(self, map: A) -> Result<Self::Value, A::Error> {
                T::deserialize(de::value::MapAccessDeserializer::new(map)).map(|t| Object(Some(t)))
            }
            fn visit_some<D: Deserializer<'de>>(self, d: D) -> Result<Self::Value, D::Error> {
                Object::deserialize(d)
            }
            fn visit_seq<A: SeqAccess<'de>>(self, seq: A) -> Result<Self::Value, A::Error> {
                skip_seq(seq).map(|()| Object(None))
            }
            fn visit_bool<E>(self, _: bool) -> Result<Self::Value, E> {
                Ok(Object(None))
            }
            fn visit_i64<E>(self, _: i64) -> Result<Self::Value, E> {
                Ok(Object(None))
            }
            fn visit_u64<E>(self, _: u64) -> Result<Self::Value, E> {
                Ok(Object(None))
            }
            fn visit_f64<E>(self, _: f64) -> Result<Self::Value, E> {
                Ok(Object(None))
            }
            fn visit_str<E>(self, _: &str) -> Result<Self::Value, E> {
                Ok(Object(None))
            }
            fn visit_unit<E>(self) -> Result<Self::Value, E> {
                Ok(Object(None))
            }
            fn visit_none<E>(self) -> Result<Self::Value, E> {
                Ok(Object(None))
            }
        }
        d.deserialize_any(V(PhantomData))
    }
}

/// The elements of an array, each parsed as `T`; anything that is not an
/// array is an empty list.
#[derive(Debug, Clone, PartialEq)]
pub struct List<T>(pub Vec<T>);

impl<T> Default for List<T> {
    fn default() -> Self {
        List(Vec::new())
    }
}

impl<T> List<T> {
    /// The elements.
    pub fn iter(&self) -> std::slice::Iter<'_, T> {
        self.0.iter()
    }
}

impl<'de, T: Deserialize<'de>> Deserialize<'de> for List<T> {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V<T>(PhantomData<T>);
        impl<'de, T: Deserialize<'de>> Visitor<'de> for V<T> {
            type Value = List<T>;
            fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
                f.write_str("any JSON value")
            }
            fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Self::Value, A::Error> {
                let mut out = Vec::with_capacity(seq.size_hint().unwrap_or(0).min(256));
                while let Some(t) = seq.next_element()? {
                    out.push(t);
                }
                Ok(List(out))
            }
            fn visit_some<D: Deserializer<'de>>(self, d: D) -> Result<Self::Value, D::Error> {
                List::deserialize(d)
            }
            fn visit_map<A: MapAccess<'de>>(self, map: A) -> Result<Self::Value, A::Error> {
                skip_map(map).map(|()| List(Vec::new()))
            }
            fn visit_bool<E>(self, _: bool) -> Result<Self::Value, E> {
                Ok(List(Vec::new()))
            }
            fn visit_i64<E>(self, _: i64) -> Result<Self::Value, E> {
                Ok(List(Vec::new()))
            }
            fn visit_u64<E>(self, _: u64) -> Result<Self::Value, E> {
                Ok(List(Vec::new()))
            }
            fn visit_f64<E>(self, _: f64) -> Result<Self::Value, E> {
                Ok(List(Vec::new()))
            }
            fn visit_str<E>(self, _: &str) -> Result<Self::Value, E> {
                Ok(List(Vec::new()))
            }
            fn visit_unit<E>(self) -> Result<Self::Value, E> {
                Ok(List(Vec::new()))
            }
            fn visit_none<E>(self) -> Result<Self::Value, E> {
                Ok(List(Vec::new()))
            }
        }
        d.deserialize_any(V(PhantomData))
    }
}

fn skip_seq<'de, A: SeqAccess<'de>>(mut seq: A) -> Result<(), A::Error> {
    while seq.next_element::<IgnoredAny>()?.is_some() {}
    Ok(())
}

fn skip_map<'de, A: MapAccess<'de>>(mut map: A) -> Result<(), A::Error> {
    while map.next_entry::<IgnoredAny, IgnoredAny>()?.is_some() {}
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde::Deserialize;

    #[derive(Deserialize)]
    struct Rec<'a> {
        #[serde(borrow, default)]
        a: Text<'a>,
        #[serde(borrow, default)]
        b: Text<'a>,
        #[serde(default)]
        f: Flag,
        #[serde(borrow, default)]
        user: Object<User<'a>>,
        #[serde(borrow, default)]
        tags: List<Text<'a>>,
    }

    #[derive(Deserialize)]
    struct User<'a> {
        #[serde(borrow, default)]
        email: Text<'a>,
    }

    fn rec(json: &str) -> Rec<'_> {
        serde_json::from_str(json).unwrap()
    }

    #[test]
    fn text_is_lenient_and_borrows() {
        let r = rec(r#"{"a": " x ", "b": 5, "z": {"deep": [1]}}"#);
        assert_eq!(r.a.as_str(), Some("x"));
        assert!(matches!(r.a.0, Some(Cow::Borrowed(_))));
        assert_eq!(r.b.get().as_deref(), Some("5"));
        for blank in [r#"{"a": ""}"#, r#"{"a": null}"#, r#"{"a": [1]}"#, "{}"] {
            assert_eq!(rec(blank).a.as_str(), None, "{blank}");
        }
        assert_eq!(rec(r#"{"a": "a\"b"}"#).a.as_str(), Some("a\"b"));
        assert_eq!(
            Text::from("2024-01-26 16:15:36+00:00")
                .timestamp()
                .as_deref(),
            Some("2024-01-26T16:15:36Z")
        );
    }

    #[test]
    fn flags_objects_and_lists_absorb_quirks() {
        assert_eq!(rec(r#"{"f": "True"}"#).f.get(), Some(true));
        assert_eq!(rec(r#"{"f": 0}"#).f.get(), Some(false));
        assert_eq!(rec(r#"{"f": ""}"#).f.get(), None);
        assert_eq!(rec(r#"{"f": {"x": 1}}"#).f.get(), None);
        let r = rec(r#"{"user": {"email": "d@x.io", "id": 3}, "tags": ["a", "", 2]}"#);
        assert_eq!(r.user.get().unwrap().email.as_str(), Some("d@x.io"));
        let tags: Vec<_> = r.tags.iter().filter_map(Text::as_str).collect();
        assert_eq!(tags, ["a", "2"]);
        let r = rec(r#"{"user": "", "tags": "eng"}"#);
        assert!(r.user.get().is_none());
        assert!(r.tags.0.is_empty());
    }

    #[test]
    fn numbers_with_zero_as_unknown() {
        assert_eq!(
            rec(r#"{"a": 17179869184}"#).a.unsigned(true),
            Some(16 << 30)
        );
        assert_eq!(rec(r#"{"a": "42"}"#).a.unsigned(false), Some(42));
        assert_eq!(rec(r#"{"a": 0}"#).a.unsigned(true), None);
        assert_eq!(rec(r#"{"a": 0}"#).a.unsigned(false), Some(0));
        assert_eq!(rec(r#"{"a": -3}"#).a.unsigned(false), None);
        assert_eq!(rec(r#"{"a": "lots"}"#).a.unsigned(false), None);
    }
}
