//! Who may use the server: checks every request passes before any route.
//!
//! - `Host` must name this server: its address or the one the connection
//!   came in on, or `localhost`, with the port. A site whose name an
//!   attacker re-points at 127.0.0.1 (DNS rebinding) sends its own name and
//!   is refused, so a page from it cannot read or drive this server.
//! - `Origin`, when sent, must be the page's own (`http://` and that Host).
//!   A browser sends a cross-site form POST (`multipart/form-data` needs no
//!   CORS preflight) without asking, but always with its `Origin`.
//! - Beyond loopback, every `/api` call carries the server's token:
//!   `Authorization: Bearer`, `X-Patchscaler-Token`, or `?token=` for what
//!   a page cannot give headers (`EventSource`, `<img src>`, a download
//!   link). Without it, whoever reaches the port could queue jobs and fetch
//!   or delete them. The page itself needs no token: it holds no secret.

use super::api_error::ApiError;
use axum::extract::{Request, State};
use axum::http::{header, HeaderMap, StatusCode};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use std::net::{IpAddr, SocketAddr};
use std::sync::Arc;

/// The header a script may use instead of `Authorization: Bearer`.
pub const TOKEN_HEADER: &str = "x-patchscaler-token";

/// Where the server listens and what a caller must show.
#[derive(Clone, Debug)]
pub struct Access {
    /// The bound address, with its port (never 0).
    pub bound: SocketAddr,
    /// Required on every `/api` call when set.
    pub token: Option<String>,
}

/// The local address of a request's connection (one server bound to
/// 0.0.0.0 is reached at several), inserted by `limits::serve`.
#[derive(Clone, Copy, Debug)]
pub struct LocalAddr(pub SocketAddr);

/// The token a bind needs: the given one, checked, or for a bind beyond
/// loopback a new random one (128 bits from the thread's CSPRNG).
pub fn token_for(bind: IpAddr, given: Option<String>) -> Result<Option<String>, String> {
    match given {
        Some(t) => {
            let ok = t.len() >= 16 && t.bytes().all(|b| b.is_ascii_alphanumeric() || b"._~-".contains(&b));
            if ok {
                Ok(Some(t))
            } else {
                Err("--token: give at least 16 characters of A-Z a-z 0-9 . _ ~ - (it travels in URLs)".into())
            }
        }
        None if bind.is_loopback() => Ok(None),
        None => Ok(Some(format!("{:032x}", rand::random::<u128>()))),
    }
}

impl Access {
    /// The page's URL for this machine (an unspecified bind is reached at
    /// loopback), with the token the page then sends on each call.
    pub fn page_url(&self) -> String {
        let shown = match self.bound.ip() {
            IpAddr::V4(ip) if ip.is_unspecified() => SocketAddr::from(([127, 0, 0, 1], self.bound.port())),
            IpAddr::V6(ip) if ip.is_unspecified() => SocketAddr::from((std::net::Ipv6Addr::LOCALHOST, self.bound.port())),
            _ => self.bound,
        };
        match &self.token {
            Some(t) => format!("http://{shown}/?token={t}"),
            None => format!("http://{shown}/"),
        }
    }

    /// One line for the log: who can reach the server, and what they need.
    pub fn reach_line(&self) -> String {
        let url = self.page_url();
        let ip = self.bound.ip();
        let who = if ip.is_loopback() {
            "this machine only".to_string()
        } else if ip.is_unspecified() {
            format!(
                "every network this machine is on (at http://<this machine's address>:{}/)",
                self.bound.port()
            )
        } else {
            format!("the network at {}", self.bound)
        };
        let token = match self.token {
            Some(_) => "every /api call needs the token in the URL",
            None => "no token",
        };
        format!("serving PatchScaler on {url}: reachable from {who}; {token} (Ctrl-C to stop)")
    }

    /// Why `req` is refused, if it is.
    fn refusal(&self, req: &Request) -> Option<ApiError> {
        let local = req.extensions().get::<LocalAddr>().map(|l| l.0);
        let h = req.headers();
        let host = h.get(header::HOST).and_then(|v| v.to_str().ok()).unwrap_or("");
        if !self.host_is_ours(host, local) {
            return Some(ApiError::new(
                StatusCode::FORBIDDEN,
                format!(
                    "Host {host:?} is not this server: open {} (other names are refused against DNS rebinding)",
                    self.page_url()
                ),
            ));
        }
        if let Some(origin) = h.get(header::ORIGIN) {
            let origin = origin.to_str().unwrap_or("");
            if !origin.eq_ignore_ascii_case(&format!("http://{host}")) {
                return Some(ApiError::new(
                    StatusCode::FORBIDDEN,
                    format!("Origin {origin:?} is not this server's page: calls from other sites are refused"),
                ));
            }
        }
        let path = req.uri().path();
        if let Some(want) = &self.token {
            if (path == "/api" || path.starts_with("/api/")) && !token_matches(h, req.uri().query(), want) {
                return Some(ApiError::new(
                    StatusCode::UNAUTHORIZED,
                    "this server needs its token: open the URL it printed at start (…/?token=…), \
                     or send Authorization: Bearer <token>",
                ));
            }
        }
        None
    }

    fn host_is_ours(&self, host: &str, local: Option<SocketAddr>) -> bool {
        let port = self.bound.port();
        if let Ok(a) = host.parse::<SocketAddr>() {
            let ip = a.ip().to_canonical();
            return a.port() == port
                && (ip.is_loopback() || ip == self.bound.ip().to_canonical() || local.is_some_and(|l| l.ip().to_canonical() == ip));
        }
        // A name; browsers leave out the port for 80.
        let (name, p) = match host.rsplit_once(':') {
            Some((n, p)) => (n, p.parse::<u16>().ok()),
            None => (host, Some(80)),
        };
        name.eq_ignore_ascii_case("localhost") && p == Some(port)
    }
}

/// The token from the headers or the query, compared in constant time.
fn token_matches(h: &HeaderMap, query: Option<&str>, want: &str) -> bool {
    let bearer = h
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.strip_prefix("Bearer "));
    let header = h.get(TOKEN_HEADER).and_then(|v| v.to_str().ok());
    let query = query
        .into_iter()
        .flat_map(|q| q.split('&'))
        .find_map(|kv| kv.strip_prefix("token="));
    [bearer, header, query]
        .into_iter()
        .flatten()
        .any(|got| same(got.trim().as_bytes(), want.as_bytes()))
}

fn same(a: &[u8], b: &[u8]) -> bool {
    a.len() == b.len() && a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}

/// The middleware: refuses what `Access::refusal` names, before any route.
pub async fn check(State(access): State<Arc<Access>>, req: Request, next: Next) -> Response {
    match access.refusal(&req) {
        Some(e) => e.into_response(),
        None => next.run(req).await,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use axum::body::Body;

    fn access(bound: &str, token: Option<&str>) -> Access {
        Access { bound: bound.parse().unwrap(), token: token.map(String::from) }
    }

    fn req(uri: &str, headers: &[(&str, &str)], local: Option<&str>) -> Request {
        let mut b = Request::builder().uri(uri);
        for (k, v) in headers {
            b = b.header(*k, *v);
        }
        let mut r = b.body(Body::empty()).unwrap();
        if let Some(l) = local {
            r.extensions_mut().insert(LocalAddr(l.parse().unwrap()));
        }
        r
    }

    fn status(a: &Access, r: &Request) -> Option<u16> {
        a.refusal(r).map(|e| e.status().as_u16())
    }

    #[test]
    fn host_names_this_server_or_is_refused() {
        let a = access("127.0.0.1:8080", None);
        for ok in ["127.0.0.1:8080", "localhost:8080", "LocalHost:8080", "[::1]:8080"] {
            assert_eq!(status(&a, &req("/", &[("host", ok)], None)), None, "{ok}");
        }
        for bad in ["evil.example:8080", "localhost:8081", "127.0.0.1", "localhost", "", "10.0.0.2:8080"] {
            assert_eq!(status(&a, &req("/", &[("host", bad)], None)), Some(403), "{bad}");
        }
        // Bound to every address: the one the connection came in on.
        let a = access("0.0.0.0:80", Some("0123456789abcdef"));
        let r = req("/", &[("host", "192.168.1.5")], Some("192.168.1.5:80"));
        assert_eq!(status(&a, &r), Some(403), "no port means 80 for names only");
        let r = req("/", &[("host", "192.168.1.5:80")], Some("192.168.1.5:80"));
        assert_eq!(status(&a, &r), None);
        let r = req("/", &[("host", "localhost")], Some("127.0.0.1:80"));
        assert_eq!(status(&a, &r), None);
        let r = req("/", &[("host", "192.168.1.6:80")], Some("192.168.1.5:80"));
        assert_eq!(status(&a, &r), Some(403));
    }

    #[test]
    fn origin_when_sent_is_the_pages_own() {
        let a = access("127.0.0.1:8080", None);
        let h = ("host", "localhost:8080");
        assert_eq!(status(&a, &req("/api/jobs", &[h, ("origin", "http://localhost:8080")], None)), None);
        for bad in ["http://127.0.0.1:8080", "https://localhost:8080", "http://evil.example", "null"] {
            let e = a.refusal(&req("/api/jobs", &[h, ("origin", bad)], None)).unwrap();
            assert_eq!(e.status(), StatusCode::FORBIDDEN, "{bad}");
            assert!(e.message().starts_with("Origin "), "{}", e.message());
        }
    }

    #[test]
    fn the_token_guards_the_api_only() {
        let t = "0123456789abcdef0123";
        let a = access("0.0.0.0:8080", Some(t));
        let h = ("host", "127.0.0.1:8080");
        assert_eq!(status(&a, &req("/", &[h], None)), None);
        assert_eq!(status(&a, &req("/api/info", &[h], None)), Some(401));
        assert_eq!(status(&a, &req("/api/info?token=0123456789abcdef0124", &[h], None)), Some(401));
        assert_eq!(status(&a, &req(&format!("/api/info?x=1&token={t}"), &[h], None)), None);
        let bearer = format!("Bearer {t}");
        assert_eq!(status(&a, &req("/api/info", &[h, ("authorization", &bearer)], None)), None);
        assert_eq!(status(&a, &req("/api/jobs/x", &[h, (TOKEN_HEADER, t)], None)), None);
    }

    #[test]
    fn only_loopback_goes_without_a_token() {
        assert_eq!(token_for("127.0.0.1".parse().unwrap(), None).unwrap(), None);
        assert_eq!(token_for("::1".parse().unwrap(), None).unwrap(), None);
        let t = token_for("0.0.0.0".parse().unwrap(), None).unwrap().unwrap();
        assert_eq!(t.len(), 32);
        assert_ne!(Some(t), token_for("0.0.0.0".parse().unwrap(), None).unwrap());
        assert!(token_for("127.0.0.1".parse().unwrap(), Some("short".into())).is_err());
        assert!(token_for("10.0.0.1".parse().unwrap(), Some("has spaces in it, 16+".into())).is_err());
        let a = access("0.0.0.0:8080", Some("0123456789abcdef"));
        assert_eq!(a.page_url(), "http://127.0.0.1:8080/?token=0123456789abcdef");
        assert!(a.reach_line().contains("every network"), "{}", a.reach_line());
        assert!(access("127.0.0.1:1", None).reach_line().contains("this machine only"));
    }
}
