//! The accept loop, with hyper's own limits set.
//!
//! `axum::serve` gives hyper no timer, so hyper's header-read timeout never
//! applies there: a client trickling one header line every few seconds held
//! its connection for as long as it liked. Here each connection is served
//! by hyper's HTTP/1 with a tokio timer and `header_read_timeout`: one that
//! has not sent its whole request head within it is closed, and so is an
//! idle keep-alive connection (hyper starts the same timer as it waits for
//! the next request). A response being streamed (the event stream) is not
//! a wait for a request head, so its keep-alives keep it open.
//!
//! At most `max_connections` are open at once; the next ones wait in the
//! kernel's backlog until one closes. Request bodies are bounded by the
//! router (`RequestBodyTimeoutLayer`, `DefaultBodyLimit`) and the upload
//! route (`upload`).

use super::guard::LocalAddr;
use axum::Router;
use hyper::body::Incoming;
use hyper_util::rt::{TokioIo, TokioTimer};
use std::sync::Arc;
use std::time::Duration;
use tokio::net::TcpListener;
use tokio::sync::Semaphore;
use tower::ServiceExt;

/// What bounds connections and the time a client may take.
#[derive(Clone, Copy, Debug)]
pub struct Limits {
    /// Connections open at once (event streams included).
    pub max_connections: usize,
    /// Uploads read and checked at once.
    pub max_uploads: usize,
    /// To send a request's head, and the most a keep-alive connection idles.
    pub header_timeout: Duration,
    /// The longest pause inside a request body.
    pub body_timeout: Duration,
    /// A whole upload's body.
    pub upload_timeout: Duration,
}

/// Serves `app` on `listener` until the returned future is dropped.
pub async fn serve(listener: TcpListener, app: Router, limits: Limits) {
    let open = Arc::new(Semaphore::new(limits.max_connections));
    let mut http = hyper::server::conn::http1::Builder::new();
    http.timer(TokioTimer::new())
        .header_read_timeout(limits.header_timeout);
    loop {
        let Ok(permit) = Arc::clone(&open).acquire_owned().await else {
            return;
        };
        let stream = match listener.accept().await {
            Ok((s, _)) => s,
            Err(e) => {
                // Out of file descriptors and the like: the connections
                // being served will free some.
                tracing::warn!("accept: {e}");
                tokio::time::sleep(Duration::from_millis(100)).await;
                continue;
            }
        };
        let local = stream.local_addr().ok().map(LocalAddr);
        let app = app.clone();
        let svc = hyper::service::service_fn(move |mut req: hyper::Request<Incoming>| {
            if let Some(l) = local {
                req.extensions_mut().insert(l);
            }
            app.clone().oneshot(req)
        });
        let conn = http.serve_connection(TokioIo::new(stream), svc);
        tokio::spawn(async move {
            // An error here is the client's (gone, too slow, malformed).
            let _ = conn.await;
            drop(permit);
        });
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use axum::response::sse::{Event, KeepAlive, Sse};
    use axum::routing::get;
    use std::io::{Read, Write};
    use std::net::TcpStream;
    use std::time::Instant;

    fn limits(max_connections: usize, header_ms: u64) -> Limits {
        Limits {
            max_connections,
            max_uploads: 1,
            header_timeout: Duration::from_millis(header_ms),
            body_timeout: Duration::from_secs(5),
            upload_timeout: Duration::from_secs(5),
        }
    }

    /// A server on a free loopback port, in its own runtime thread.
    fn start(limits: Limits) -> std::net::SocketAddr {
        let app = Router::new().route("/", get(|| async { "ok" })).route(
            "/events",
            get(|| async {
                let never = futures_util::stream::pending::<Result<Event, std::convert::Infallible>>();
                Sse::new(never).keep_alive(KeepAlive::new().interval(Duration::from_millis(150)))
            }),
        );
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let addr = listener.local_addr().unwrap();
        listener.set_nonblocking(true).unwrap();
        std::thread::spawn(move || {
            let rt = tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap();
            rt.block_on(async { serve(TcpListener::from_std(listener).unwrap(), app, limits).await });
        });
        addr
    }

    /// Seconds from `t` until the server closes `s` (reading whatever it sends).
    fn until_closed(mut s: TcpStream, t: Instant, limit: Duration) -> f64 {
        s.set_read_timeout(Some(limit)).unwrap();
        let mut buf = [0u8; 1024];
        loop {
            match s.read(&mut buf) {
                Ok(0) => return t.elapsed().as_secs_f64(),
                Ok(_) => {}
                Err(e) if e.kind() == std::io::ErrorKind::ConnectionReset => return t.elapsed().as_secs_f64(),
                Err(e) => panic!("still open after {limit:?}: {e}"),
            }
        }
    }

    #[test]
    fn slow_and_idle_connections_are_closed_an_event_stream_is_not() {
        let addr = start(limits(8, 400));
        let t = Instant::now();
        let mut slow = TcpStream::connect(addr).unwrap();
        slow.write_all(b"GET / HTTP/1.1\r\nHost: x\r\n").unwrap();
        let idle = TcpStream::connect(addr).unwrap();
        let mut stream = TcpStream::connect(addr).unwrap();
        stream.write_all(b"GET /events HTTP/1.1\r\nHost: x\r\n\r\n").unwrap();
        let s = until_closed(slow, t, Duration::from_secs(3));
        assert!((0.3..1.5).contains(&s), "closed after {s} s");
        let s = until_closed(idle, t, Duration::from_secs(3));
        assert!((0.3..1.5).contains(&s), "idle closed after {s} s");
        // Past twice the header timeout the stream still gets its keep-alives.
        stream.set_read_timeout(Some(Duration::from_secs(1))).unwrap();
        let mut got = Vec::new();
        let t = Instant::now();
        while t.elapsed() < Duration::from_millis(1200) {
            let mut buf = [0u8; 256];
            let n = stream.read(&mut buf).expect("the event stream went quiet");
            assert!(n > 0, "the event stream was closed");
            got.extend_from_slice(&buf[..n]);
        }
        assert!(String::from_utf8_lossy(&got).starts_with("HTTP/1.1 200"));
    }

    /// Past the cap a connection waits for one to close; then it is served.
    #[test]
    fn connections_past_the_cap_wait_for_a_free_place() {
        let addr = start(limits(2, 600));
        let _a = TcpStream::connect(addr).unwrap();
        let _b = TcpStream::connect(addr).unwrap();
        std::thread::sleep(Duration::from_millis(100));
        let t = Instant::now();
        let mut c = TcpStream::connect(addr).unwrap();
        c.write_all(b"GET / HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n").unwrap();
        let mut reply = String::new();
        c.set_read_timeout(Some(Duration::from_secs(3))).unwrap();
        c.read_to_string(&mut reply).unwrap();
        let waited = t.elapsed().as_secs_f64();
        assert!(reply.starts_with("HTTP/1.1 200") && reply.ends_with("ok"), "{reply}");
        assert!(waited > 0.3, "served after {waited} s: the cap did not hold");
    }
}
