//! The paging styles: applying a position to the request URL, and reading
//! the next position from the response.

use url::Url;

use super::json_probe::{Found, Leaf, probe};
use crate::contract::{Header, Paging};

/// Sets the paging query parameters on `url`.
pub fn apply(url: &mut Url, paging: &Paging) {
    let mut set = |k: &str, v: String| set_param(url, k, &v);
    match paging {
        Paging::Offset(p) => {
            set(&p.offset_param, p.offset.to_string());
            set(&p.limit_param, p.limit.to_string());
        }
        Paging::PageNumber(p) => {
            set(&p.page_param, p.page.to_string());
            set(&p.size_param, p.size.to_string());
        }
        Paging::Keyset(p) => {
            if let Some(a) = &p.after {
                set(&p.after_param, a.clone());
            }
            set(&p.limit_param, p.limit.to_string());
        }
        Paging::BodyCursor(p) => {
            if let Some(c) = &p.cursor {
                set(&p.cursor_param, c.clone());
            }
            if let (Some(k), Some(n)) = (&p.limit_param, p.limit) {
                set(k, n.to_string());
            }
        }
        Paging::NextUrl(_) | Paging::LinkHeader => {}
    }
}

/// The next position after a successful response, or `None` at the end.
pub fn next(paging: &Paging, headers: &[Header], body: &[u8]) -> Result<Option<String>, String> {
    let count = |pointer: &str| -> Result<usize, String> {
        match probe(body, pointer, &Leaf::Count)? {
            Some(Found::Count(n)) => Ok(n),
            _ => Err(format!("no JSON array at `{pointer}` in the response")),
        }
    };
    let text = |pointer: &str, leaf: Leaf| -> Result<Option<String>, String> {
        Ok(match probe(body, pointer, &leaf)? {
            Some(Found::Text(t)) => t.filter(|t| !t.is_empty()),
            _ => None,
        })
    };
    Ok(match paging {
        Paging::Offset(p) => {
            let n = count(&p.items_pointer)?;
            let short = p.stop_on_short_page && n < p.limit as usize;
            (n > 0 && !short).then(|| (p.offset + n as u64).to_string())
        }
        Paging::PageNumber(p) => {
            let n = count(&p.items_pointer)?;
            let short = p.stop_on_short_page && n < p.size as usize;
            (n > 0 && !short).then(|| (p.page + 1).to_string())
        }
        Paging::Keyset(p) => text(&p.items_pointer, Leaf::LastField(p.id_field.clone()))?,
        Paging::BodyCursor(p) => text(&p.cursor_pointer, Leaf::Scalar)?,
        Paging::NextUrl(p) => text(&p.url_pointer, Leaf::Scalar)?,
        Paging::LinkHeader => headers
            .iter()
            .filter(|h| h.name.eq_ignore_ascii_case("link"))
            .find_map(|h| next_link(&h.value)),
    })
}

/// The `rel="next"` target of an RFC 8288 `Link` header value.
fn next_link(value: &str) -> Option<String> {
    value.split(',').find_map(|part| {
        let (target, params) = part.trim().split_once(';')?;
        let is_next = params.split(';').any(|p| {
            let p = p.trim().to_ascii_lowercase();
            p == "rel=\"next\"" || p == "rel=next"
        });
        is_next.then(|| {
            target
                .trim()
                .trim_start_matches('<')
                .trim_end_matches('>')
                .to_owned()
        })
    })
}

fn set_param(url: &mut Url, key: &str, value: &str) {
    let kept: Vec<(String, String)> = url
        .query_pairs()
        .filter(|(k, _)| k != key)
        .map(|(k, v)| (k.into_owned(), v.into_owned()))
        .collect();
    let mut q = url.query_pairs_mut();
    q.clear();
    for (k, v) in &kept {
        q.append_pair(k, v);
    }
    q.append_pair(key, value);
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::contract::{
        BodyCursorPaging, KeysetPaging, NextUrlPaging, OffsetPaging, PageNumberPaging,
    };

    fn offset(offset: u64, stop_on_short_page: bool) -> Paging {
        Paging::Offset(OffsetPaging {
            offset_param: "offset".into(),
            limit_param: "limit".into(),
            offset,
            limit: 2,
            items_pointer: "".into(),
            stop_on_short_page,
        })
    }

    #[test]
    fn offset_applies_and_advances_until_empty() {
        let mut url = Url::parse("https://x/api?limit=9&ordering=id").unwrap();
        apply(&mut url, &offset(4, false));
        assert_eq!(url.query(), Some("ordering=id&offset=4&limit=2"));
        assert_eq!(
            next(&offset(4, false), &[], b"[1,2]").unwrap().as_deref(),
            Some("6")
        );
        assert_eq!(
            next(&offset(4, false), &[], b"[1]").unwrap().as_deref(),
            Some("5")
        );
        assert_eq!(next(&offset(4, true), &[], b"[1]").unwrap(), None);
        assert_eq!(next(&offset(4, false), &[], b"[]").unwrap(), None);
        assert!(next(&offset(0, false), &[], b"{\"a\":1}").is_err());
    }

    #[test]
    fn page_number_keyset_cursor_and_next_url() {
        let pn = Paging::PageNumber(PageNumberPaging {
            page_param: "page".into(),
            size_param: "size".into(),
            page: 3,
            size: 2,
            items_pointer: "/data".into(),
            stop_on_short_page: true,
        });
        assert_eq!(
            next(&pn, &[], br#"{"data":[1,2]}"#).unwrap().as_deref(),
            Some("4")
        );
        assert_eq!(next(&pn, &[], br#"{"data":[1]}"#).unwrap(), None);
        let ks = Paging::Keyset(KeysetPaging {
            after_param: "after".into(),
            limit_param: "pageSize".into(),
            after: Some("10".into()),
            limit: 2,
            items_pointer: "".into(),
            id_field: "id".into(),
        });
        let mut url = Url::parse("https://x/v2/devices").unwrap();
        apply(&mut url, &ks);
        assert_eq!(url.query(), Some("after=10&pageSize=2"));
        assert_eq!(
            next(&ks, &[], br#"[{"id":11},{"id":12}]"#)
                .unwrap()
                .as_deref(),
            Some("12")
        );
        assert_eq!(next(&ks, &[], b"[]").unwrap(), None);
        let bc = Paging::BodyCursor(BodyCursorPaging {
            cursor_param: "cursor".into(),
            cursor: None,
            cursor_pointer: "/cursor/next".into(),
            limit_param: None,
            limit: None,
        });
        assert_eq!(
            next(&bc, &[], br#"{"cursor":{"next":"abc"}}"#)
                .unwrap()
                .as_deref(),
            Some("abc")
        );
        assert_eq!(next(&bc, &[], br#"{"cursor":{"next":""}}"#).unwrap(), None);
        let nu = Paging::NextUrl(NextUrlPaging {
            url_pointer: "/@odata.nextLink".into(),
        });
        assert_eq!(next(&nu, &[], br#"{"value":[]}"#).unwrap(), None);
    }

    #[test]
    fn link_header() {
        let h = vec![Header {
            name: "Link".into(),
            value: r#"<https://x/p?page=1>; rel="prev", <https://x/p?page=3>; rel="next""#.into(),
        }];
        assert_eq!(
            next(&Paging::LinkHeader, &h, b"").unwrap().as_deref(),
            Some("https://x/p?page=3")
        );
        assert_eq!(next(&Paging::LinkHeader, &[], b"").unwrap(), None);
    }
}
