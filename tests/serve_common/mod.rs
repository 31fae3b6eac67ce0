//! Shared by the `serve` tests: a tiny model, a running `patchscaler serve`,
//! and a small HTTP client (multipart uploads, server-sent events).
#![allow(dead_code)]

pub use crate::common::{bin, rgb_image, tiny_model};

use std::io::{BufRead, BufReader, Read};
use std::path::{Path, PathBuf};
use std::process::{Child, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

pub fn png_bytes(img: &image::RgbImage) -> Vec<u8> {
    let mut c = std::io::Cursor::new(Vec::new());
    img.write_to(&mut c, image::ImageFormat::Png).unwrap();
    c.into_inner()
}

/// `patchscaler upscale` of `input` with `args`, the output's bytes.
pub fn cli_upscale(model: &Path, input: &Path, out: &Path, args: &[&str]) -> Vec<u8> {
    let o = bin()
        .arg("upscale")
        .arg("--model")
        .arg(model)
        .arg(input)
        .arg("-o")
        .arg(out)
        .args(args)
        .output()
        .unwrap();
    assert!(
        o.status.success(),
        "{}{}",
        String::from_utf8_lossy(&o.stdout),
        String::from_utf8_lossy(&o.stderr)
    );
    std::fs::read(out).unwrap()
}

/// A running `patchscaler serve --port 0`, stopped with SIGTERM on drop.
pub struct Server {
    pub child: Child,
    /// The page's URL without its trailing `/` and token.
    pub url: String,
    /// The `?token=` of the URL the server printed, if any.
    pub token: Option<String>,
    /// The TMPDIR the server was given (its temporary folder is inside).
    pub tmp: PathBuf,
    /// Its stderr so far (also passed through to the test's).
    pub log: Arc<Mutex<String>>,
}

impl Server {
    pub fn start(model: &Path, tmp: &Path, args: &[&str]) -> Server {
        std::fs::create_dir_all(tmp).unwrap();
        let mut child = bin()
            .arg("serve")
            .arg("--port")
            .arg("0")
            .arg("--model")
            .arg(model)
            .args(args)
            .env("TMPDIR", tmp)
            .env_remove("PATCHSCALER_TOKEN")
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap();
        let log = Arc::new(Mutex::new(String::new()));
        let (stderr, log2) = (child.stderr.take().unwrap(), Arc::clone(&log));
        std::thread::spawn(move || {
            for line in BufReader::new(stderr).lines() {
                let Ok(line) = line else { break };
                eprintln!("{line}");
                let mut l = log2.lock().unwrap();
                l.push_str(&line);
                l.push('\n');
            }
        });
        let stdout = child.stdout.take().unwrap();
        let (tx, rx) = std::sync::mpsc::channel();
        std::thread::spawn(move || {
            let mut line = String::new();
            let mut r = BufReader::new(stdout);
            let _ = r.read_line(&mut line);
            let _ = tx.send(line);
            // Keep draining so the server never blocks on a full pipe.
            let mut sink = Vec::new();
            let _ = r.read_to_end(&mut sink);
        });
        let line = rx
            .recv_timeout(Duration::from_secs(60))
            .expect("serve printed no URL within 60 s");
        let (url, token) = match line.trim().split_once("/?token=") {
            Some((u, t)) => (u.to_string(), Some(t.to_string())),
            None => (line.trim().trim_end_matches('/').to_string(), None),
        };
        assert!(url.starts_with("http://127.0.0.1:"), "first line: {line:?}");
        Server {
            child,
            url,
            token,
            tmp: tmp.to_path_buf(),
            log,
        }
    }

    /// `host:port` of the URL.
    pub fn authority(&self) -> &str {
        self.url.trim_start_matches("http://")
    }

    /// The server's peak resident memory so far, in MiB (`VmHWM`).
    pub fn peak_rss_mib(&self) -> u64 {
        let status = std::fs::read_to_string(format!("/proc/{}/status", self.child.id())).unwrap();
        let kib: u64 = status
            .lines()
            .find_map(|l| l.strip_prefix("VmHWM:"))
            .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
            .expect("VmHWM in /proc/PID/status");
        kib / 1024
    }

    /// The server's own temporary folder.
    pub fn work_dir(&self) -> Option<PathBuf> {
        std::fs::read_dir(&self.tmp)
            .ok()?
            .filter_map(|e| e.ok().map(|e| e.path()))
            .find(|p| {
                p.file_name()
                    .is_some_and(|n| n.to_string_lossy().starts_with("patchscaler-serve-"))
            })
    }

    /// SIGTERM, then waits (10 s at most) for the exit.
    pub fn stop(&mut self) -> Option<std::process::ExitStatus> {
        unsafe {
            libc::kill(self.child.id() as i32, libc::SIGTERM);
        }
        let t = Instant::now();
        while t.elapsed() < Duration::from_secs(10) {
            if let Ok(Some(s)) = self.child.try_wait() {
                return Some(s);
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        let _ = self.child.kill();
        let _ = self.child.wait();
        None
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        if let Ok(None) = self.child.try_wait() {
            self.stop();
        }
    }
}

pub fn agent() -> ureq::Agent {
    ureq::Agent::config_builder()
        .http_status_as_error(false)
        .timeout_global(Some(Duration::from_secs(60)))
        .build()
        .into()
}

/// One multipart part: field name, file name (None: a text field), bytes.
pub type Part<'a> = (&'a str, Option<&'a str>, &'a [u8]);

pub fn multipart(parts: &[Part]) -> (String, Vec<u8>) {
    let boundary = "----patchscalertestboundary7MA4YWxkTrZu0gW";
    let mut body = Vec::new();
    for (name, file, bytes) in parts {
        body.extend_from_slice(format!("--{boundary}\r\n").as_bytes());
        match file {
            Some(f) => body.extend_from_slice(
                format!(
                    "Content-Disposition: form-data; name=\"{name}\"; filename=\"{f}\"\r\nContent-Type: application/octet-stream\r\n\r\n"
                )
                .as_bytes(),
            ),
            None => body.extend_from_slice(
                format!("Content-Disposition: form-data; name=\"{name}\"\r\n\r\n").as_bytes(),
            ),
        }
        body.extend_from_slice(bytes);
        body.extend_from_slice(b"\r\n");
    }
    body.extend_from_slice(format!("--{boundary}--\r\n").as_bytes());
    (format!("multipart/form-data; boundary={boundary}"), body)
}

/// POST /api/jobs: (status, JSON body).
pub fn submit(url: &str, parts: &[Part]) -> (u16, serde_json::Value) {
    let (ct, body) = multipart(parts);
    let mut r = agent()
        .post(format!("{url}/api/jobs"))
        .header("Content-Type", ct)
        .send(&body[..])
        .unwrap();
    let status = r.status().as_u16();
    let text = r.body_mut().read_to_string().unwrap();
    let v = serde_json::from_str(&text).unwrap_or_else(|_| panic!("not JSON ({status}): {text}"));
    (status, v)
}

/// GET: (status, content type, bytes).
pub fn get(url: &str) -> (u16, String, Vec<u8>) {
    let mut r = agent().get(url).call().unwrap();
    let ct = r
        .headers()
        .get("content-type")
        .and_then(|v| v.to_str().ok())
        .unwrap_or("")
        .to_string();
    let status = r.status().as_u16();
    let b = r
        .body_mut()
        .with_config()
        .limit(256 << 20)
        .read_to_vec()
        .unwrap();
    (status, ct, b)
}

/// A job's server-sent events until it is done or failed (or `max` events).
pub fn follow(url: &str, id: &str, max: usize) -> Vec<serde_json::Value> {
    let r = agent()
        .get(format!("{url}/api/jobs/{id}/events"))
        .call()
        .unwrap();
    assert_eq!(r.status().as_u16(), 200);
    let mut out = Vec::new();
    for line in BufReader::new(r.into_body().into_reader()).lines() {
        let line = line.unwrap();
        if let Some(d) = line.strip_prefix("data:") {
            let v: serde_json::Value = serde_json::from_str(d.trim()).unwrap();
            let end = matches!(v["state"].as_str(), Some("done" | "failed"));
            out.push(v);
            if end || out.len() >= max {
                break;
            }
        }
    }
    out
}

/// One raw HTTP/1.1 exchange on a fresh connection: `head` (request line
/// and headers, without the blank line) and `body` are sent as given, and
/// the reply read until the server closes or `wait` passes. Returns the
/// reply (status line, headers, body) as text.
pub fn raw(authority: &str, head: &str, body: &[u8], wait: Duration) -> String {
    use std::io::Write;
    let mut s = std::net::TcpStream::connect(authority).unwrap();
    s.write_all(format!("{head}\r\nConnection: close\r\n\r\n").as_bytes()).unwrap();
    let _ = s.write_all(body);
    s.set_read_timeout(Some(wait)).unwrap();
    let mut out = Vec::new();
    let mut buf = [0u8; 4096];
    loop {
        match s.read(&mut buf) {
            Ok(0) => break,
            Ok(n) => out.extend_from_slice(&buf[..n]),
            Err(_) => break,
        }
    }
    String::from_utf8_lossy(&out).into_owned()
}

/// Waits until `cond` holds (polling), or panics with `what`.
pub fn wait_for(what: &str, timeout: Duration, mut cond: impl FnMut() -> bool) {
    let t = Instant::now();
    while !cond() {
        assert!(t.elapsed() < timeout, "timed out waiting for {what}");
        std::thread::sleep(Duration::from_millis(100));
    }
}
