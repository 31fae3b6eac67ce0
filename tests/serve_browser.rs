//! `patchscaler serve` driven in headless Chromium (chromedriver +
//! fantoccini): upload through the page's file input, wait for the
//! before/after slider, compare the downloaded bytes with
//! `patchscaler upscale`, and see the error lines of a file over the upload
//! limit, an image over the pixel limit and a text file. Saves a screenshot
//! to target/serve-screenshot.png.
//!
//! Needs /usr/bin/chromium and /usr/bin/chromedriver (`scripts/setup.sh`
//! installs them with apt-get); fails, never skips, without them.
//! PATCHSCALER_SERVE_MODEL and PATCHSCALER_SERVE_IMAGE swap in another
//! model and input (e.g. for the README's screenshot).

mod common;
mod serve_common;

use fantoccini::{ClientBuilder, Locator};
use futures_util::FutureExt;
use serde_json::json;
use serve_common::*;
use std::net::TcpStream;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

const CHROMIUM: &str = "/usr/bin/chromium";
const CHROMEDRIVER: &str = "/usr/bin/chromedriver";

struct Driver(Child);

impl Drop for Driver {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

fn start_chromedriver() -> (Driver, String) {
    for p in [CHROMIUM, CHROMEDRIVER] {
        assert!(
            Path::new(p).exists(),
            "{p} is missing: the browser test needs Chromium and chromedriver \
             (run scripts/setup.sh, or apt-get install chromium chromium-driver)"
        );
    }
    let port = free_port();
    let child = Command::new(CHROMEDRIVER)
        .arg(format!("--port={port}"))
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("cannot start chromedriver");
    let driver = Driver(child);
    let t = Instant::now();
    while TcpStream::connect(("127.0.0.1", port)).is_err() {
        assert!(
            t.elapsed() < Duration::from_secs(20),
            "chromedriver did not start"
        );
        std::thread::sleep(Duration::from_millis(100));
    }
    (driver, format!("http://127.0.0.1:{port}"))
}

/// The error line of the job card named `name`, once there is one.
async fn error_of(c: &fantoccini::Client, name: &str, timeout: Duration) -> String {
    let t = Instant::now();
    loop {
        let v = c
            .execute(
                "const card = [...document.querySelectorAll('.job')].find(\
                   (j) => j.querySelector('.name').textContent === arguments[0]);\
                 if (!card || card.dataset.state !== 'failed') return null;\
                 return card.querySelector('.error').textContent;",
                vec![json!(name)],
            )
            .await
            .unwrap();
        if let Some(s) = v.as_str() {
            return s.to_string();
        }
        assert!(t.elapsed() < timeout, "no error line for {name}");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_page_upscales_compares_and_reports_errors() {
    let (_driver, wd_url) = start_chromedriver();
    let d = tempfile::tempdir().unwrap();
    let custom_model = std::env::var_os("PATCHSCALER_SERVE_MODEL").map(PathBuf::from);
    let model = custom_model.clone().unwrap_or_else(|| tiny_model(d.path()));
    let input = d.path().join("photo.png");
    match std::env::var_os("PATCHSCALER_SERVE_IMAGE") {
        Some(p) => {
            std::fs::copy(p, &input).unwrap();
        }
        None => rgb_image(24, 20).save(&input).unwrap(),
    }
    let (w, h) = image::image_dimensions(&input).unwrap();
    // --memory-limit 910: 1006 input pixels at x4 by `memory::max_input_pixels` (128 MiB kept for the qmap figure)
    // (the tiny input has 480).
    let limit = if custom_model.is_some() { "8192" } else { "910" };
    let server = Server::start(
        &model,
        &d.path().join("tmp"),
        &["--memory-limit", limit, "--max-upload-mib", "1"],
    );
    let cli = cli_upscale(&model, &input, &d.path().join("cli.png"), &["--seed", "5"]);

    let profile = d.path().join("chromium-profile");
    let mut caps = serde_json::Map::new();
    caps.insert(
        "goog:chromeOptions".into(),
        json!({
            "binary": CHROMIUM,
            "args": [
                "--headless", "--no-sandbox", "--disable-gpu", "--disable-quic",
                "--no-first-run", "--disable-background-networking",
                "--disable-component-update", "--disable-sync",
                "--disable-dev-shm-usage", "--window-size=1100,860",
                format!("--user-data-dir={}", profile.display()),
            ],
        }),
    );
    let c = ClientBuilder::native()
        .capabilities(caps)
        .connect(&wd_url)
        .await
        .expect("cannot start Chromium through chromedriver");

    // Any failure below still closes the browser session (and Chromium).
    let outcome = std::panic::AssertUnwindSafe(async {
        c.goto(&format!("{}/", server.url)).await.unwrap();
        // The page has read /api/info once the limits line is filled.
        let t = Instant::now();
        while c
            .find(Locator::Css("#limits"))
            .await
            .unwrap()
            .text()
            .await
            .unwrap()
            .is_empty()
        {
            assert!(
                t.elapsed() < Duration::from_secs(10),
                "the page did not load /api/info"
            );
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        let file = c.find(Locator::Css("#file")).await.unwrap();

        // Errors first: over the upload size, over the pixel limit, not an image.
        if custom_model.is_none() {
            let huge = d.path().join("huge.png");
            std::fs::write(&huge, vec![7u8; 3 << 19]).unwrap();
            let big = d.path().join("big.png");
            rgb_image(40, 40).save(&big).unwrap();
            let text = d.path().join("notes.png");
            std::fs::write(&text, "not an image\n").unwrap();
            for p in [&huge, &big, &text] {
                file.send_keys(p.to_str().unwrap()).await.unwrap();
            }
            let e = error_of(&c, "huge.png", Duration::from_secs(10)).await;
            assert_eq!(e, "huge.png: larger than the upload limit of 1 MiB");
            let e = error_of(&c, "big.png", Duration::from_secs(10)).await;
            assert!(
                e.starts_with("big.png: 40x40 is too large (1006 pixels at most"),
                "{e}"
            );
            let e = error_of(&c, "notes.png", Duration::from_secs(10)).await;
            assert!(e.starts_with("notes.png: not an image"), "{e}");
        }

        // The image, with seed 5.
        let seed = c.find(Locator::Css("#seed")).await.unwrap();
        seed.clear().await.unwrap();
        seed.send_keys("5").await.unwrap();
        file.send_keys(input.to_str().unwrap()).await.unwrap();
        let wait = if custom_model.is_some() { 600 } else { 40 };
        let t = Instant::now();
        let card = loop {
            if let Ok(card) = c
                .find(Locator::Css(".job[data-state=done][data-loaded='1']"))
                .await
            {
                break card;
            }
            if let Ok(e) = c.find(Locator::Css(".job[data-state=failed] .error")).await {
                let msg = e.text().await.unwrap();
                if msg.contains("photo.png") {
                    panic!("the job failed: {msg}");
                }
            }
            assert!(
                t.elapsed() < Duration::from_secs(wait),
                "no result within {wait} s"
            );
            tokio::time::sleep(Duration::from_millis(200)).await;
        };
        let size = c
            .execute(
                "const i = document.querySelector('.job[data-state=done] .after');\
                 return [i.naturalWidth, i.naturalHeight];",
                vec![],
            )
            .await
            .unwrap();
        assert_eq!(size, json!([w * 4, h * 4]), "the result is not 4x");
        let state = card
            .find(Locator::Css(".state"))
            .await
            .unwrap()
            .text()
            .await
            .unwrap();
        assert!(state.starts_with("done in "), "{state}");
        let summary = card
            .find(Locator::Css(".summary"))
            .await
            .unwrap()
            .text()
            .await
            .unwrap();
        assert!(
            summary.starts_with(&format!(
                "photo.png -> photo_x4.png: {w}x{h} -> {}x{} | patches ",
                w * 4,
                h * 4
            )),
            "{summary}"
        );
        // The download button's bytes equal `patchscaler upscale --seed 5`.
        let href = card
            .find(Locator::Css(".download"))
            .await
            .unwrap()
            .prop("href")
            .await
            .unwrap()
            .unwrap();
        let (st, _, bytes) = get(&href);
        assert_eq!(st, 200);
        assert!(
            bytes == cli,
            "the page's download differs from `patchscaler upscale`"
        );
        // The slider's left side is bicubic; the group overlay toggles.
        let before = card
            .find(Locator::Css(".before"))
            .await
            .unwrap()
            .prop("src")
            .await
            .unwrap()
            .unwrap();
        assert!(before.ends_with("/bicubic.png"), "{before}");
        let overlay = card.find(Locator::Css(".overlay")).await.unwrap();
        assert!(!overlay.is_displayed().await.unwrap());
        let groups = card.find(Locator::Css(".groups")).await.unwrap();
        groups.click().await.unwrap();
        assert!(
            overlay.is_displayed().await.unwrap(),
            "the group overlay did not show"
        );
        groups.click().await.unwrap();
        // Slider at 60 %, then the screenshot (the CI artefact).
        c.execute(
            "const s = document.querySelector('.job[data-state=done] .slider');\
             s.value = 60; s.dispatchEvent(new Event('input'));\
             window.scrollTo(0, 0);",
            vec![],
        )
        .await
        .unwrap();
        let clip = card
            .find(Locator::Css(".before"))
            .await
            .unwrap()
            .css_value("clip-path")
            .await
            .unwrap();
        assert!(
            clip.contains("40%"),
            "the slider did not move the split: {clip}"
        );
        tokio::time::sleep(Duration::from_millis(300)).await;
        let png = c.screenshot().await.unwrap();
        let out = Path::new(env!("CARGO_MANIFEST_DIR")).join("target/serve-screenshot.png");
        std::fs::write(&out, &png).unwrap();
        assert!(image::load_from_memory(&png).is_ok());
    })
    .catch_unwind()
    .await;
    let _ = c.close().await;
    if let Err(p) = outcome {
        std::panic::resume_unwind(p);
    }
}
