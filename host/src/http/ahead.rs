//! Pages read ahead. When a page of a listing arrives, the host knows the
//! next page's position (the request's `paging`), so it requests that page
//! while the guest is still turning this one into records; the guest's
//! request for it then takes the response instead of waiting for the
//! vendor. Only list calls read ahead, and only when the vendor said there
//! is a next page: the walk asks for it anyway. Paging by position (offset,
//! page number) also reads the page after that one, so that two pages are
//! on their way while the guest works; when the next page turns out to be
//! the last, that one request was made for nothing.

use std::sync::Mutex;
use std::time::{Duration, Instant};

use tokio::task::JoinHandle;

use crate::contract::{HttpError, HttpRequest, HttpResponse, Method, Paging};

/// How long an unclaimed page is kept (a walk that stopped, a guest that
/// asked for something else) before it is dropped.
const KEPT_FOR: Duration = Duration::from_secs(60);
/// Pages an account keeps read ahead at once.
const MAX_PENDING: usize = 4;

/// A request read ahead, as its exact text (method, URL, headers, body,
/// paging): the guest's request takes it only if it is the same.
pub type Key = String;

/// The key of a request that may be read ahead or answered from a page read
/// ahead: a GET with paging.
pub fn key(req: &HttpRequest, paging: Option<&Paging>) -> Option<Key> {
    let paging = paging?;
    if req.method != Method::Get {
        return None;
    }
    serde_json::to_string(&(req, paging)).ok()
}

/// The request for the page after the one `req` + `paging` got, whose
/// position the response gave as `next`.
pub fn following(req: &HttpRequest, paging: &Paging, next: &str) -> Option<(HttpRequest, Paging)> {
    let mut req = req.clone();
    let mut paging = paging.clone();
    match &mut paging {
        Paging::Offset(p) => p.offset = next.parse().ok()?,
        Paging::PageNumber(p) => p.page = next.parse().ok()?,
        Paging::Keyset(p) => p.after = Some(next.to_owned()),
        Paging::BodyCursor(p) => p.cursor = Some(next.to_owned()),
        Paging::NextUrl(_) | Paging::LinkHeader => req.url = next.to_owned(),
    }
    Some((req, paging))
}

/// The position of the page after `next` when paging is by position: the
/// page that gave `next` moved it by that many (offset) or by one (page
/// number), and a full page moves the next one alike. Other paging learns
/// a position only from the page before it.
pub fn beyond(paging: &Paging, next: &str) -> Option<String> {
    let next: u64 = next.parse().ok()?;
    let at = match paging {
        Paging::Offset(p) => p.offset,
        Paging::PageNumber(p) => u64::from(p.page),
        _ => return None,
    };
    let step = next.checked_sub(at).filter(|s| *s > 0)?;
    Some(next.checked_add(step)?.to_string())
}

/// The pages read ahead for one account.
#[derive(Default)]
pub struct Ahead {
    pending: Mutex<Vec<Pending>>,
}

struct Pending {
    key: Key,
    since: Instant,
    task: JoinHandle<Result<HttpResponse, HttpError>>,
}

impl Ahead {
    /// The page read ahead for `key`, if any (it may still be arriving).
    pub fn take(&self, key: &str) -> Option<JoinHandle<Result<HttpResponse, HttpError>>> {
        let mut pending = self.pending.lock().expect("read-ahead lock");
        drop_expired(&mut pending);
        let i = pending.iter().position(|p| p.key == key)?;
        Some(pending.swap_remove(i).task)
    }

    /// Starts reading the page for `key` with `start`, unless it is already
    /// being read; the oldest page kept goes when too many are.
    pub fn start(
        &self,
        key: Key,
        start: impl FnOnce() -> JoinHandle<Result<HttpResponse, HttpError>>,
    ) {
        let mut pending = self.pending.lock().expect("read-ahead lock");
        drop_expired(&mut pending);
        if pending.iter().any(|p| p.key == key) {
            return;
        }
        if pending.len() >= MAX_PENDING {
            pending.remove(0).task.abort();
        }
        pending.push(Pending {
            key,
            since: Instant::now(),
            task: start(),
        });
    }
}

impl Drop for Ahead {
    fn drop(&mut self) {
        let pending = self.pending.get_mut().expect("read-ahead lock");
        pending.drain(..).for_each(|p| p.task.abort());
    }
}

fn drop_expired(pending: &mut Vec<Pending>) {
    pending.retain(|p| {
        let keep = p.since.elapsed() < KEPT_FOR;
        if !keep {
            p.task.abort();
        }
        keep
    });
}

/// The deadline of a page read ahead.
pub fn deadline() -> Instant {
    Instant::now() + KEPT_FOR
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::contract::{NextUrlPaging, OffsetPaging};

    fn get(url: &str) -> HttpRequest {
        HttpRequest {
            method: Method::Get,
            url: url.into(),
            headers: vec![],
            body: None,
        }
    }

    fn offset(offset: u64) -> Paging {
        Paging::Offset(OffsetPaging {
            offset_param: "offset".into(),
            limit_param: "limit".into(),
            offset,
            limit: 300,
            items_pointer: "".into(),
            stop_on_short_page: true,
        })
    }

    #[test]
    fn the_following_offset_page_has_the_key_the_guest_will_send() {
        let req = get("https://a.test/devices");
        let (next, paging) = following(&req, &offset(0), "300").unwrap();
        assert_eq!(
            key(&next, Some(&paging)),
            key(&req, Some(&offset(300))),
            "same request, offset 300"
        );
        assert_ne!(key(&req, Some(&offset(0))), key(&req, Some(&offset(300))));
        assert!(following(&req, &offset(0), "not a number").is_none());
    }

    #[test]
    fn positions_beyond_the_next_page_follow_the_step_of_this_one() {
        assert_eq!(beyond(&offset(0), "300").as_deref(), Some("600"));
        // A vendor that caps pages below the limit: the step is what came.
        assert_eq!(beyond(&offset(300), "400").as_deref(), Some("500"));
        let page = |page| {
            Paging::PageNumber(crate::contract::PageNumberPaging {
                page_param: "page".into(),
                size_param: "size".into(),
                page,
                size: 100,
                items_pointer: "".into(),
                stop_on_short_page: true,
            })
        };
        assert_eq!(beyond(&page(1), "2").as_deref(), Some("3"));
        assert!(beyond(&offset(300), "300").is_none(), "no step");
        assert!(beyond(&offset(0), "not a number").is_none());
        let cursor = Paging::NextUrl(NextUrlPaging {
            url_pointer: "/next".into(),
        });
        assert!(beyond(&cursor, "https://a.test/users?cursor=2").is_none());
    }

    #[test]
    fn a_next_url_page_is_the_next_url() {
        let paging = Paging::NextUrl(NextUrlPaging {
            url_pointer: "/next".into(),
        });
        let req = get("https://a.test/users");
        let (next, p) = following(&req, &paging, "https://a.test/users?cursor=2").unwrap();
        assert_eq!(next.url, "https://a.test/users?cursor=2");
        assert_eq!(
            key(&next, Some(&p)),
            key(&get("https://a.test/users?cursor=2"), Some(&paging))
        );
    }

    #[test]
    fn only_paged_gets_are_read_ahead() {
        let mut post = get("https://a.test/devices");
        post.method = Method::Post;
        assert!(key(&post, Some(&offset(0))).is_none());
        assert!(key(&get("https://a.test/devices"), None).is_none());
    }

    #[tokio::test]
    async fn a_page_is_read_once_taken_once_and_the_oldest_goes_first() {
        let ahead = Ahead::default();
        let page = || {
            tokio::spawn(async {
                Ok(HttpResponse {
                    status: 200,
                    headers: vec![],
                    body: vec![],
                    url: String::new(),
                    next: None,
                })
            })
        };
        for i in 0..=MAX_PENDING {
            ahead.start(format!("k{i}"), page);
        }
        ahead.start("k1".into(), || panic!("k1 is already being read"));
        assert!(ahead.take("k0").is_none(), "the oldest was dropped");
        let task = ahead.take("k1").expect("kept");
        assert_eq!(task.await.unwrap().unwrap().status, 200);
        assert!(ahead.take("k1").is_none(), "taken once");
    }
}
