//! `patchscaler serve` attacked as a hostile client or page would, on
//! loopback only, each test bounded in requests and seconds: slow headers,
//! a huge declared body, a stalled upload, a full queue, many clients at
//! once, other sites' pages and names, and a network bind without its token.

mod common;
mod serve_common;

use serve_common::*;
use std::io::{Read, Write};
use std::net::TcpStream;
use std::time::{Duration, Instant};

const HEADER_TIMEOUT_S: f64 = 2.0;

/// Seconds until the server closed a connection that sends one more
/// header line every 250 ms and never ends its head (None: still open
/// after `give_up`).
fn slow_headers(authority: String, give_up: Duration) -> Option<f64> {
    let t = Instant::now();
    let mut s = TcpStream::connect(&authority).unwrap();
    s.set_read_timeout(Some(Duration::from_millis(250))).unwrap();
    let mut line = format!("GET /api/info HTTP/1.1\r\nHost: {authority}\r\n");
    let mut buf = [0u8; 512];
    while t.elapsed() < give_up {
        if s.write_all(line.as_bytes()).is_err() {
            return Some(t.elapsed().as_secs_f64());
        }
        line = format!("X-Slow-{}: a\r\n", t.elapsed().as_millis());
        match s.read(&mut buf) {
            Ok(0) => return Some(t.elapsed().as_secs_f64()),
            Ok(_) => panic!("the server answered a request whose head never ended"),
            Err(e) if matches!(e.kind(), std::io::ErrorKind::WouldBlock | std::io::ErrorKind::TimedOut) => {}
            Err(_) => return Some(t.elapsed().as_secs_f64()),
        }
    }
    None
}

/// 20 connections trickling their headers and one declaring a 93 GiB body
/// do not keep a normal request from an answer within 2 s; the huge body is
/// refused (413) before any of it is sent; each slow connection is closed
/// by the server within its header timeout (2 s here) plus 1 s.
#[test]
fn slow_headers_and_a_huge_declared_body_leave_the_server_answering() {
    let d = tempfile::tempdir().unwrap();
    let model = tiny_model(d.path());
    let s = Server::start(&model, &d.path().join("tmp"), &["--header-timeout", "2"]);
    let slow: Vec<_> = (0..20)
        .map(|_| {
            let a = s.authority().to_string();
            std::thread::spawn(move || slow_headers(a, Duration::from_secs(8)))
        })
        .collect();
    std::thread::sleep(Duration::from_millis(300));

    let t = Instant::now();
    let head = format!(
        "POST /api/jobs HTTP/1.1\r\nHost: {}\r\nContent-Type: multipart/form-data; boundary=x\r\nContent-Length: 99999999999",
        s.authority()
    );
    let reply = raw(s.authority(), &head, b"", Duration::from_secs(2));
    let waited = t.elapsed();
    assert!(reply.starts_with("HTTP/1.1 413"), "after {waited:?}: {reply:?}");
    assert!(reply.contains("larger than the limit of 32 MiB per file"), "{reply}");
    assert!(waited < Duration::from_secs(2), "413 after {waited:?}");

    let t = Instant::now();
    let (st, _, _) = get(&format!("{}/api/info", s.url));
    assert_eq!(st, 200);
    assert!(t.elapsed() < Duration::from_secs(2), "answered after {:?}", t.elapsed());

    for (i, h) in slow.into_iter().enumerate() {
        let closed = h.join().unwrap().unwrap_or_else(|| panic!("slow connection {i} still open after 8 s"));
        assert!(
            (HEADER_TIMEOUT_S - 0.3..HEADER_TIMEOUT_S + 1.0).contains(&closed),
            "slow connection {i} closed after {closed:.2} s (header timeout {HEADER_TIMEOUT_S} s)"
        );
    }
}

/// An upload whose body is still coming holds the last place in the queue:
/// the next upload gets 503 with `Retry-After` from its headers alone; the
/// stalled one is cut (408) after the body timeout, and its place is free.
#[test]
fn a_full_queue_is_refused_before_the_body_and_a_stalled_body_is_cut() {
    let d = tempfile::tempdir().unwrap();
    let model = tiny_model(d.path());
    let s = Server::start(
        &model,
        &d.path().join("tmp"),
        &["--max-queue", "1", "--body-timeout", "1.5"],
    );
    let (ct, body) = multipart(&[("image", Some("a.png"), &png_bytes(&rgb_image(16, 16)))]);
    let head = |len: usize| {
        format!(
            "POST /api/jobs HTTP/1.1\r\nHost: {}\r\nContent-Type: {ct}\r\nContent-Length: {len}",
            s.authority()
        )
    };
    // The stalled upload: its headers and a tenth of its body.
    let mut stalled = TcpStream::connect(s.authority()).unwrap();
    stalled
        .write_all(format!("{}\r\n\r\n", head(body.len())).as_bytes())
        .unwrap();
    stalled.write_all(&body[..body.len() / 10]).unwrap();
    let t0 = Instant::now();
    std::thread::sleep(Duration::from_millis(300));

    let t = Instant::now();
    let reply = raw(s.authority(), &head(body.len()), b"", Duration::from_secs(2));
    assert!(t.elapsed() < Duration::from_secs(1), "503 after {:?}", t.elapsed());
    assert!(reply.starts_with("HTTP/1.1 503"), "{reply:?}");
    assert!(reply.to_ascii_lowercase().contains("\r\nretry-after: 5\r\n"), "{reply}");
    assert!(reply.contains("the queue is full"), "{reply}");

    let mut cut = String::new();
    stalled.set_read_timeout(Some(Duration::from_secs(4))).unwrap();
    let _ = stalled.read_to_string(&mut cut);
    let after = t0.elapsed().as_secs_f64();
    assert!(cut.starts_with("HTTP/1.1 408"), "after {after:.1} s: {cut:?}");
    assert!(cut.contains("the upload stalled"), "{cut}");
    assert!((1.4..3.0).contains(&after), "cut after {after:.2} s (body timeout 1.5 s)");

    let (st, v) = submit(&s.url, &[("image", Some("a.png"), &png_bytes(&rgb_image(16, 16)))]);
    assert_eq!(st, 202, "the stalled upload's place did not come back: {v}");
}

/// Past --max-uploads, an upload is refused (503, `Retry-After`) from its
/// headers alone while the others are read.
#[test]
fn uploads_past_the_cap_are_refused_at_once() {
    let d = tempfile::tempdir().unwrap();
    let model = tiny_model(d.path());
    let s = Server::start(
        &model,
        &d.path().join("tmp"),
        &["--max-uploads", "1", "--body-timeout", "1"],
    );
    let head = format!(
        "POST /api/jobs HTTP/1.1\r\nHost: {}\r\nContent-Type: multipart/form-data; boundary=x\r\nContent-Length: 100000",
        s.authority()
    );
    let mut reading = TcpStream::connect(s.authority()).unwrap();
    reading.write_all(format!("{head}\r\n\r\n--x\r\n").as_bytes()).unwrap();
    std::thread::sleep(Duration::from_millis(300));
    let t = Instant::now();
    let reply = raw(s.authority(), &head, b"", Duration::from_secs(2));
    assert!(t.elapsed() < Duration::from_secs(1), "503 after {:?}", t.elapsed());
    assert!(reply.starts_with("HTTP/1.1 503"), "{reply:?}");
    assert!(reply.to_ascii_lowercase().contains("\r\nretry-after: 5\r\n"), "{reply}");
    assert!(reply.contains("as many uploads as it takes at once (1)"), "{reply}");
}

/// 200 requests from 16 clients at once (a quarter uploads followed to the
/// end, a quarter uploads deleted at once, a quarter huge declared bodies, a
/// quarter queue reads): every refusal is 413 or a 503 with `Retry-After`;
/// every accepted job ends done or deleted; at most --max-results results
/// stay; the server's peak RSS stays below 768 MiB (448 MiB measured).
#[test]
fn two_hundred_requests_from_sixteen_clients_stay_bounded() {
    const RSS_BOUND_MIB: u64 = 768;
    let d = tempfile::tempdir().unwrap();
    let model = tiny_model(d.path());
    let s = Server::start(
        &model,
        &d.path().join("tmp"),
        &["--max-queue", "6", "--max-results", "4", "--threads", "1", "--devices", "cpu"],
    );
    let rss_at_start = s.peak_rss_mib();
    let png = png_bytes(&rgb_image(16, 12));
    let t = Instant::now();
    let clients: Vec<_> = (0..16)
        .map(|c| {
            let (url, authority, png) = (s.url.clone(), s.authority().to_string(), png.clone());
            std::thread::spawn(move || {
                let mut followed = Vec::new();
                let (mut accepted, mut busy) = (0, 0);
                for i in (c..200).step_by(16) {
                    match i % 4 {
                        kind @ (0 | 1) => {
                            let (ct, body) = multipart(&[("image", Some("a.png"), &png)]);
                            let mut r = agent()
                                .post(format!("{url}/api/jobs"))
                                .header("Content-Type", ct)
                                .send(&body[..])
                                .unwrap();
                            let st = r.status().as_u16();
                            if st == 503 {
                                assert!(r.headers().get("retry-after").is_some(), "503 without Retry-After");
                                busy += 1;
                                continue;
                            }
                            let v: serde_json::Value =
                                serde_json::from_str(&r.body_mut().read_to_string().unwrap()).unwrap();
                            assert_eq!(st, 202, "{v}");
                            accepted += 1;
                            let id = v["id"].as_str().unwrap().to_string();
                            if kind == 0 {
                                let ev = follow(&url, &id, 10_000);
                                assert_eq!(ev.last().unwrap()["state"], "done", "{ev:?}");
                                followed.push(id);
                            } else {
                                let r = agent().delete(format!("{url}/api/jobs/{id}")).call().unwrap();
                                assert_eq!(r.status().as_u16(), 204, "job {id} not cancelled");
                            }
                        }
                        2 => {
                            let head = format!(
                                "POST /api/jobs HTTP/1.1\r\nHost: {authority}\r\nContent-Type: multipart/form-data; boundary=x\r\nContent-Length: 999999999"
                            );
                            let reply = raw(&authority, &head, b"", Duration::from_secs(5));
                            assert!(reply.starts_with("HTTP/1.1 413"), "{reply:?}");
                        }
                        _ => assert_eq!(get(&format!("{url}/api/info")).0, 200),
                    }
                }
                (followed, accepted, busy)
            })
        })
        .collect();
    let (mut followed, mut accepted, mut busy) = (Vec::new(), 0, 0);
    for c in clients {
        let (f, a, b) = c.join().unwrap();
        followed.extend(f);
        accepted += a;
        busy += b;
    }
    let elapsed = t.elapsed();
    // Nothing waits or runs; of the results only the newest few are kept.
    let (_, _, info) = get(&format!("{}/api/info", s.url));
    let info: serde_json::Value = serde_json::from_slice(&info).unwrap();
    assert_eq!(info["queue"][0]["waiting"], 0, "{info}");
    let kept = followed
        .iter()
        .filter(|id| get(&format!("{}/api/jobs/{id}/result.png", s.url)).0 == 200)
        .count();
    assert!(kept <= 4, "{kept} results kept past --max-results 4");
    let rss = s.peak_rss_mib();
    eprintln!(
        "{accepted} jobs accepted ({} followed to done), {busy} refused as busy, in {elapsed:.1?}; peak RSS {rss} MiB ({rss_at_start} MiB at start)",
        followed.len()
    );
    assert!(accepted >= 16, "only {accepted} of 100 uploads accepted");
    assert!(rss < RSS_BOUND_MIB, "peak RSS {rss} MiB");
}

/// A page from another site can neither post a job (its `Origin`) nor,
/// through DNS rebinding, read this server under its own name (`Host`).
#[test]
fn other_sites_pages_and_names_are_refused() {
    let d = tempfile::tempdir().unwrap();
    let model = tiny_model(d.path());
    let s = Server::start(&model, &d.path().join("tmp"), &[]);
    let port = s.authority().rsplit_once(':').unwrap().1.to_string();
    let (ct, body) = multipart(&[("image", Some("a.png"), &png_bytes(&rgb_image(16, 16)))]);
    let post = |host: &str, origin: &str| {
        let head = format!(
            "POST /api/jobs HTTP/1.1\r\nHost: {host}\r\nOrigin: {origin}\r\nContent-Type: {ct}\r\nContent-Length: {}",
            body.len()
        );
        raw(s.authority(), &head, &body, Duration::from_secs(10))
    };
    let r = post(s.authority(), "http://evil.example");
    assert!(r.starts_with("HTTP/1.1 403"), "{r:?}");
    assert!(r.contains(r#"{"error":"Origin \"http://evil.example\" is not this server's page"#), "{r}");
    let r = post(s.authority(), "null");
    assert!(r.starts_with("HTTP/1.1 403"), "{r:?}");
    let (_, _, info) = get(&format!("{}/api/info", s.url));
    assert!(String::from_utf8_lossy(&info).contains(r#""waiting":0"#), "a refused post was queued");

    for path in ["/", "/api/info"] {
        let host = format!("rebound.evil.example:{port}");
        let r = raw(s.authority(), &format!("GET {path} HTTP/1.1\r\nHost: {host}"), b"", Duration::from_secs(5));
        assert!(r.starts_with("HTTP/1.1 403"), "{path}: {r:?}");
        assert!(r.contains(r#"{"error":"Host \"rebound.evil.example:"#), "{r}");
    }
    // The page's own names and origin pass.
    let local = format!("localhost:{port}");
    let r = raw(s.authority(), &format!("GET /api/info HTTP/1.1\r\nHost: {local}"), b"", Duration::from_secs(5));
    assert!(r.starts_with("HTTP/1.1 200"), "{r:?}");
    let r = post(&local, &format!("http://{local}"));
    assert!(r.starts_with("HTTP/1.1 202"), "{r:?}");
}

/// Bound beyond loopback, the server makes up a token, prints it in the
/// page's URL and says who can reach it; every /api call needs it (header
/// or `?token=`), the page itself does not.
#[test]
fn a_network_bind_needs_the_token() {
    let d = tempfile::tempdir().unwrap();
    let model = tiny_model(d.path());
    let s = Server::start(&model, &d.path().join("tmp"), &["--bind", "0.0.0.0"]);
    let token = s.token.clone().expect("no ?token= in the printed URL");
    assert_eq!(token.len(), 32, "{token}");
    assert!(token.bytes().all(|b| b.is_ascii_hexdigit()), "{token}");
    wait_for("the log line", Duration::from_secs(5), || s.log.lock().unwrap().contains("reachable"));
    let log = s.log.lock().unwrap().clone();
    assert!(log.contains("reachable from every network"), "{log}");
    assert!(log.contains("needs the token"), "{log}");

    let info = format!("{}/api/info", s.url);
    let status = |r: Result<ureq::http::Response<ureq::Body>, ureq::Error>| r.unwrap().status().as_u16();
    let mut r = agent().get(&info).call().unwrap();
    assert_eq!(r.status().as_u16(), 401);
    assert!(r.body_mut().read_to_string().unwrap().contains("needs its token"));
    let wrong = format!("{}0", &token[1..]);
    assert_eq!(status(agent().get(&info).header("Authorization", format!("Bearer {wrong}")).call()), 401);
    assert_eq!(status(agent().get(&info).header("Authorization", format!("Bearer {token}")).call()), 200);
    assert_eq!(status(agent().get(&info).header("X-Patchscaler-Token", &token).call()), 200);
    assert_eq!(get(&format!("{info}?token={token}")).0, 200);
    // What a page cannot give headers (EventSource, <img>) uses the query.
    let events = format!("{}/api/jobs/0123/events", s.url);
    assert_eq!(get(&events).0, 401);
    assert_eq!(get(&format!("{events}?token={token}")).0, 404);
    let (ct, body) = multipart(&[("image", Some("a.png"), &png_bytes(&rgb_image(16, 16)))]);
    let post = agent().post(format!("{}/api/jobs", s.url)).header("Content-Type", ct);
    assert_eq!(status(post.send(&body[..])), 401);
    assert_eq!(get(&format!("{}/", s.url)).0, 200);

    // On loopback: no token, and the log says so.
    let l = Server::start(&model, &d.path().join("tmp2"), &[]);
    assert_eq!(l.token, None);
    wait_for("the log line", Duration::from_secs(5), || l.log.lock().unwrap().contains("reachable"));
    assert!(l.log.lock().unwrap().contains("reachable from this machine only; no token"));
}
