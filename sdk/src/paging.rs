//! Typed cursors over the host's paging styles. The connector owns the
//! cursor: these helpers turn it into a [`Paging`] and back.

use crate::ConnectorError;
use crate::bindings::mdmhub::connector::http::{NextUrlPaging, OffsetPaging};
use crate::http::Paging;

/// Offset/limit paging; the cursor is the decimal offset.
pub struct OffsetCursor;

impl OffsetCursor {
    /// The offset a cursor stands for (0 for the first page).
    pub fn parse(cursor: Option<&str>) -> Result<u64, ConnectorError> {
        match cursor {
            None => Ok(0),
            Some(c) => c
                .parse()
                .map_err(|_| ConnectorError::InvalidConfig(format!("bad offset cursor `{c}`"))),
        }
    }

    /// The paging description for a page at `offset`; items at `items_pointer`
    /// (`""` for a bare array). Stops at the first empty page.
    pub fn paging(offset: u64, limit: u32, items_pointer: &str) -> Paging {
        Paging::Offset(OffsetPaging {
            offset_param: "offset".into(),
            limit_param: "limit".into(),
            offset,
            limit,
            items_pointer: items_pointer.into(),
            stop_on_short_page: false,
        })
    }

    /// Like [`OffsetCursor::paging`], but a page shorter than `limit` is the
    /// last: for APIs that always fill a page up to a documented cap that
    /// `limit` does not exceed. Saves the empty request that ends a walk.
    pub fn paging_until_short(offset: u64, limit: u32, items_pointer: &str) -> Paging {
        let mut paging = Self::paging(offset, limit, items_pointer);
        if let Paging::Offset(p) = &mut paging {
            p.stop_on_short_page = true;
        }
        paging
    }
}

/// Next-URL paging; the cursor is the vendor's next link, followed verbatim.
pub struct NextUrlCursor;

impl NextUrlCursor {
    /// The URL to fetch: the cursor if there is one, else `first()`.
    pub fn url(cursor: Option<String>, first: impl FnOnce() -> String) -> String {
        cursor.unwrap_or_else(first)
    }

    /// The paging description reading the next link at `url_pointer`.
    pub fn paging(url_pointer: &str) -> Paging {
        Paging::NextUrl(NextUrlPaging {
            url_pointer: url_pointer.into(),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn offset_cursor_round_trips() {
        assert_eq!(OffsetCursor::parse(None).unwrap(), 0);
        assert_eq!(OffsetCursor::parse(Some("600")).unwrap(), 600);
        assert!(OffsetCursor::parse(Some("x")).is_err());
    }
}
