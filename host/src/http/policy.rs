//! Where a connector's request may go: its declared origins (https only),
//! mapped to an operator endpoint if one is set, and URLs under an endpoint.
//! Also the headers a guest may not set.

use std::net::IpAddr;

use url::{Origin, Url};

use crate::account::{ConfigError, Endpoint};

/// A request's checked destination.
#[derive(Debug, Clone)]
pub struct Route {
    /// Where the request really goes (after endpoint mapping).
    pub url: Url,
    /// Whether the account's credentials may be attached.
    pub credentials: bool,
    /// Whether the destination is an operator endpoint (plain http and
    /// private addresses allowed).
    pub local: bool,
}

/// The per-account origin allow-list.
#[derive(Debug)]
pub struct OriginPolicy {
    declared: Vec<(Origin, Option<Url>)>,
    endpoints: Vec<Endpoint>,
    token_url: Option<Url>,
}

/// Headers only the host sets.
const FORBIDDEN_HEADERS: &[&str] = &[
    "authorization",
    "proxy-authorization",
    "cookie",
    "host",
    "connection",
    "keep-alive",
    "te",
    "trailer",
    "transfer-encoding",
    "upgrade",
    "content-length",
    "proxy-connection",
];

impl OriginPolicy {
    /// Builds the policy from expanded origins and the operator's endpoints.
    pub fn new(
        origins: &[String],
        endpoints: &[Endpoint],
        token_url: Option<&Url>,
    ) -> Result<Self, ConfigError> {
        let mut declared = Vec::new();
        for o in origins {
            let url = Url::parse(o)
                .map_err(|e| ConfigError(format!("origin `{o}` is not a URL: {e}")))?;
            let host = url.host_str().unwrap_or_default().to_ascii_lowercase();
            let target = endpoints
                .iter()
                .find(|e| e.host.as_deref() == Some(host.as_str()))
                .or_else(|| endpoints.iter().find(|e| e.host.is_none()))
                .map(|e| e.target.clone());
            declared.push((url.origin(), target));
        }
        for e in endpoints {
            if let Some(h) = &e.host
                && !declared
                    .iter()
                    .any(|(o, _)| origin_host(o).as_deref() == Some(h.as_str()))
                && token_url.and_then(Url::host_str) != Some(h.as_str())
            {
                return Err(ConfigError(format!(
                    "--endpoint {h}=...: `{h}` is not a host this connector declares"
                )));
            }
        }
        Ok(Self {
            declared,
            endpoints: endpoints.to_vec(),
            token_url: token_url.cloned(),
        })
    }

    /// Checks a guest's URL and maps it to its real destination.
    pub fn route(&self, raw: &str) -> Result<Route, String> {
        let url = Url::parse(raw).map_err(|e| format!("`{raw}` is not an absolute URL: {e}"))?;
        if !url.username().is_empty() || url.password().is_some() {
            return Err("URLs may not carry credentials".into());
        }
        if let Some(t) = &self.token_url
            && t.origin() == url.origin()
            && t.path() == url.path()
        {
            return Err(format!(
                "{} is the token URL; only the host calls it",
                t.path()
            ));
        }
        let origin = url.origin();
        if let Some((_, target)) = self.declared.iter().find(|(o, _)| *o == origin) {
            return Ok(match target {
                Some(t) => Route {
                    url: rebase(t, &url),
                    credentials: true,
                    local: true,
                },
                None => {
                    if url.scheme() != "https" {
                        return Err(format!("{origin:?} must be https"));
                    }
                    check_literal_ip(&url)?;
                    Route {
                        url,
                        credentials: true,
                        local: false,
                    }
                }
            });
        }
        if self.endpoints.iter().any(|e| under(&e.target, &url)) {
            return Ok(Route {
                url,
                credentials: true,
                local: true,
            });
        }
        Err(format!(
            "origin {} is not declared by the connector",
            origin.ascii_serialization()
        ))
    }

    /// Checks a redirect from `from` to `location`. Credentials survive only
    /// a same-origin hop.
    pub fn redirect(&self, from: &Route, location: &Url) -> Result<Route, String> {
        let mut next = self.route(location.as_str())?;
        next.credentials = from.credentials && next.url.origin() == from.url.origin();
        Ok(next)
    }

    /// Maps the token URL (host-only) through the endpoints: the one for
    /// its host, else the all-origins one (a simulator serves both).
    pub fn route_token_url(&self, url: &Url) -> Route {
        let host = url.host_str().unwrap_or_default().to_ascii_lowercase();
        let target = self
            .endpoints
            .iter()
            .find(|e| e.host.as_deref() == Some(host.as_str()))
            .or_else(|| self.endpoints.iter().find(|e| e.host.is_none()));
        match target {
            Some(e) => Route {
                url: rebase(&e.target, url),
                credentials: false,
                local: true,
            },
            None => Route {
                url: url.clone(),
                credentials: false,
                local: false,
            },
        }
    }

    /// The hosts of the operator's endpoints (may resolve to private addresses).
    pub fn endpoint_hosts(&self) -> impl Iterator<Item = &str> {
        self.endpoints.iter().filter_map(|e| e.target.host_str())
    }
}

/// Refuses a header the host owns.
pub fn check_header(name: &str, extra_forbidden: Option<&str>) -> Result<(), String> {
    let lower = name.to_ascii_lowercase();
    if FORBIDDEN_HEADERS.contains(&lower.as_str())
        || extra_forbidden.is_some_and(|h| h.eq_ignore_ascii_case(&lower))
    {
        return Err(format!("header `{lower}` is set by the host"));
    }
    Ok(())
}

/// Whether an address is loopback, private, link-local or otherwise not on
/// the public internet.
pub fn is_private(ip: IpAddr) -> bool {
    match ip {
        IpAddr::V4(v4) => {
            let o = v4.octets();
            v4.is_private()
                || v4.is_loopback()
                || v4.is_link_local()
                || v4.is_unspecified()
                || v4.is_broadcast()
                || v4.is_documentation()
                || v4.is_multicast()
                || (o[0] == 100 && (o[1] & 0xc0) == 64) // 100.64.0.0/10 shared address space
                || o[0] == 0
        }
        IpAddr::V6(v6) => {
            if let Some(v4) = v6.to_ipv4_mapped() {
                return is_private(IpAddr::V4(v4));
            }
            let s = v6.segments();
            v6.is_loopback()
                || v6.is_unspecified()
                || v6.is_multicast()
                || (s[0] & 0xfe00) == 0xfc00 // unique local
                || (s[0] & 0xffc0) == 0xfe80 // link local
        }
    }
}

fn check_literal_ip(url: &Url) -> Result<(), String> {
    let ip = match url.host() {
        Some(url::Host::Ipv4(ip)) => IpAddr::V4(ip),
        Some(url::Host::Ipv6(ip)) => IpAddr::V6(ip),
        _ => return Ok(()),
    };
    if is_private(ip) {
        return Err(format!(
            "{ip} is a private address; only an operator endpoint may point there"
        ));
    }
    Ok(())
}

fn origin_host(o: &Origin) -> Option<String> {
    match o {
        Origin::Tuple(_, host, _) => Some(host.to_string()),
        Origin::Opaque(_) => None,
    }
}

/// `url`'s path and query on top of `base` (keeping `base`'s path prefix).
fn rebase(base: &Url, url: &Url) -> Url {
    let mut out = base.clone();
    let prefix = base.path().trim_end_matches('/');
    out.set_path(&format!("{prefix}{}", url.path()));
    out.set_query(url.query());
    out
}

fn under(base: &Url, url: &Url) -> bool {
    base.origin() == url.origin() && url.path().starts_with(base.path().trim_end_matches('/'))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn policy(endpoints: &[&str]) -> OriginPolicy {
        let eps: Vec<Endpoint> = endpoints.iter().map(|e| e.parse().unwrap()).collect();
        let origins = vec![
            "https://acme.api.kandji.io".to_string(),
            "https://acme.kandji.io".to_string(),
        ];
        let token = Url::parse("https://acme.api.kandji.io/oauth/token").unwrap();
        OriginPolicy::new(&origins, &eps, Some(&token)).unwrap()
    }

    #[test]
    fn declared_https_origins_only() {
        let p = policy(&[]);
        let r = p
            .route("https://acme.api.kandji.io/api/v1/devices?limit=1")
            .unwrap();
        assert!(r.credentials && !r.local);
        assert!(
            p.route("https://evil.example/x")
                .unwrap_err()
                .contains("not declared")
        );
        assert!(
            p.route("http://acme.api.kandji.io/x")
                .unwrap_err()
                .contains("not declared")
        );
        assert!(p.route("https://acme.api.kandji.io:8443/x").is_err());
        assert!(
            p.route("https://u:p@acme.api.kandji.io/x")
                .unwrap_err()
                .contains("credentials")
        );
        assert!(p.route("not a url").is_err());
    }

    #[test]
    fn token_url_is_host_only() {
        assert!(
            policy(&[])
                .route("https://acme.api.kandji.io/oauth/token")
                .unwrap_err()
                .contains("token URL")
        );
    }

    #[test]
    fn endpoint_maps_every_origin_and_allows_itself() {
        let p = policy(&["http://127.0.0.1:8001/base"]);
        let r = p
            .route("https://acme.api.kandji.io/api/v1/devices?offset=300")
            .unwrap();
        assert_eq!(
            r.url.as_str(),
            "http://127.0.0.1:8001/base/api/v1/devices?offset=300"
        );
        assert!(r.local);
        let r = p
            .route("http://127.0.0.1:8001/base/api/v1/users?cursor=x")
            .unwrap();
        assert!(r.local && r.credentials);
        assert!(p.route("http://127.0.0.1:8002/base/x").is_err());
        assert!(p.route("http://127.0.0.1:8001/other").is_err());
    }

    #[test]
    fn per_host_endpoint() {
        let p = policy(&["acme.kandji.io=http://127.0.0.1:9000"]);
        assert!(!p.route("https://acme.api.kandji.io/x").unwrap().local);
        assert_eq!(
            p.route("https://acme.kandji.io/x").unwrap().url.as_str(),
            "http://127.0.0.1:9000/x"
        );
        let eps = vec!["other.host=http://127.0.0.1:1".parse().unwrap()];
        assert!(OriginPolicy::new(&["https://a.b".into()], &eps, None).is_err());
    }

    #[test]
    fn private_literals_need_an_endpoint() {
        let p = OriginPolicy::new(&["https://10.1.2.3".into()], &[], None).unwrap();
        assert!(
            p.route("https://10.1.2.3/x")
                .unwrap_err()
                .contains("private")
        );
        for ip in [
            "127.0.0.1",
            "10.0.0.1",
            "172.16.5.5",
            "192.168.1.1",
            "169.254.169.254",
            "100.64.0.1",
            "::1",
            "fd00::1",
            "fe80::1",
            "::ffff:127.0.0.1",
        ] {
            assert!(is_private(ip.parse().unwrap()), "{ip}");
        }
        assert!(!is_private("93.184.216.34".parse().unwrap()));
    }

    #[test]
    fn redirects_keep_credentials_only_on_the_same_origin() {
        let p = policy(&[]);
        let from = p.route("https://acme.api.kandji.io/a").unwrap();
        let same = p
            .redirect(&from, &Url::parse("https://acme.api.kandji.io/b").unwrap())
            .unwrap();
        assert!(same.credentials);
        let cross = p
            .redirect(&from, &Url::parse("https://acme.kandji.io/b").unwrap())
            .unwrap();
        assert!(!cross.credentials);
        assert!(
            p.redirect(&from, &Url::parse("https://evil.example/").unwrap())
                .is_err()
        );
    }

    #[test]
    fn host_owned_headers_are_refused() {
        for h in ["Authorization", "cookie", "HOST", "transfer-encoding"] {
            assert!(check_header(h, None).is_err(), "{h}");
        }
        assert!(check_header("x-api-key", Some("X-Api-Key")).is_err());
        assert!(check_header("accept", None).is_ok());
    }
}
