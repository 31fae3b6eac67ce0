//! `patchscaler serve` over plain HTTP (no browser): limits, refusals,
//! the job's events and images, and what a client leaves behind.

mod common;
mod serve_common;

use serve_common::*;
use std::time::Duration;

/// Every refusal is a 4xx with a one-line JSON error, before any work.
#[test]
fn limits_and_bad_requests_get_one_line_errors() {
    let d = tempfile::tempdir().unwrap();
    let model = tiny_model(d.path());
    // --memory-limit 910: 1006 input pixels at x4 by `memory::max_input_pixels` (128 MiB kept for the qmap figure);
    // --max-upload-mib 1.
    let s = Server::start(
        &model,
        &d.path().join("tmp"),
        &["--memory-limit", "910", "--max-upload-mib", "1"],
    );
    let (st, ct, body) = get(&format!("{}/", s.url));
    assert_eq!(st, 200);
    assert!(ct.starts_with("text/html"), "{ct}");
    assert!(String::from_utf8_lossy(&body).contains("PatchScaler"));
    for asset in ["app.js", "style.css"] {
        assert_eq!(get(&format!("{}/{asset}", s.url)).0, 200, "{asset}");
    }
    let (st, _, info) = get(&format!("{}/api/info", s.url));
    assert_eq!(st, 200);
    let info: serde_json::Value = serde_json::from_slice(&info).unwrap();
    assert_eq!(info["max_upload_bytes"], 1 << 20);
    assert_eq!(info["max_input_pixels_x4"], 1006);
    assert!(info["devices"]
        .as_array()
        .unwrap()
        .contains(&serde_json::json!("cpu")));

    let small = png_bytes(&rgb_image(24, 20));
    let cases: Vec<(&str, Vec<Part>, u16, &str)> = vec![
        (
            "a text file named .png",
            vec![("image", Some("notes.png"), b"just some text\n".as_slice())],
            415,
            "notes.png: not an image",
        ),
        (
            "no image",
            vec![("preset", None, b"fast".as_slice())],
            400,
            "choose an image",
        ),
        (
            "an empty file",
            vec![("image", Some("empty.png"), b"".as_slice())],
            400,
            "empty.png: the file is empty",
        ),
        (
            "a bad preset",
            vec![("image", Some("a.png"), &small), ("preset", None, b"turbo")],
            400,
            "preset \"turbo\"",
        ),
        (
            "a bad scale",
            vec![("image", Some("a.png"), &small), ("scale", None, b"40")],
            400,
            "scale \"40\"",
        ),
        (
            "a bad seed",
            vec![("image", Some("a.png"), &small), ("seed", None, b"-1")],
            400,
            "seed \"-1\"",
        ),
        (
            "a path as file name",
            vec![("image", Some("../../etc/passwd"), b"root:x:0:0".as_slice())],
            415,
            "passwd: not an image",
        ),
    ];
    for (what, parts, status, msg) in &cases {
        let (st, v) = submit(&s.url, parts);
        let e = v["error"].as_str().unwrap_or_else(|| panic!("{what}: {v}"));
        assert_eq!(st, *status, "{what}: {e}");
        assert!(e.contains(msg), "{what}: {e}");
        assert!(!e.contains('\n') && !e.contains(".rs:"), "{what}: {e}");
        assert!(!e.contains("etc/"), "{what}: a client path echoed: {e}");
    }
    // Too many pixels for the memory limit: refused before decoding.
    let big = png_bytes(&rgb_image(40, 40));
    let (st, v) = submit(&s.url, &[("image", Some("big.png"), &big)]);
    assert_eq!(st, 413, "{v}");
    let e = v["error"].as_str().unwrap();
    assert!(
        e.contains("big.png: 40x40 is too large (1006 pixels at most"),
        "{e}"
    );
    // Over the upload size.
    let huge = vec![0u8; (1 << 20) + 10];
    let (st, v) = submit(&s.url, &[("image", Some("huge.png"), &huge)]);
    assert_eq!(st, 413, "{v}");
    assert!(
        v["error"]
            .as_str()
            .unwrap()
            .contains("upload limit of 1 MiB"),
        "{v}"
    );
    // A truncated PNG is decoded, not trusted by its header.
    let (st, v) = submit(
        &s.url,
        &[("image", Some("cut.png"), &small[..small.len() / 2])],
    );
    assert_eq!(st, 422, "{v}");
    assert!(
        v["error"]
            .as_str()
            .unwrap()
            .contains("cut.png: truncated or corrupt"),
        "{v}"
    );
    // A device the server does not offer.
    if !tch::Cuda::is_available() {
        let (st, v) = submit(
            &s.url,
            &[("image", Some("a.png"), &small), ("device", None, b"cuda")],
        );
        assert_eq!(st, 400, "{v}");
        assert!(
            v["error"]
                .as_str()
                .unwrap()
                .contains("device \"cuda\" is not available"),
            "{v}"
        );
    }
    // Not multipart at all.
    let mut r = agent()
        .post(format!("{}/api/jobs", s.url))
        .header("Content-Type", "application/json")
        .send(&b"{}"[..])
        .unwrap();
    assert_eq!(r.status().as_u16(), 400);
    let v: serde_json::Value =
        serde_json::from_str(&r.body_mut().read_to_string().unwrap()).unwrap();
    assert!(
        v["error"].as_str().unwrap().contains("multipart/form-data"),
        "{v}"
    );
    // Unknown jobs, files and routes.
    for path in [
        "/api/jobs/0123",
        "/api/jobs/0123/events",
        "/api/jobs/0123/result.png",
        "/api/jobs/..%2F..%2Fetc/passwd",
        "/nothing",
    ] {
        let (st, ct, b) = get(&format!("{}{path}", s.url));
        assert_eq!(st, 404, "{path}");
        assert!(ct.starts_with("application/json"), "{path}: {ct}");
        let v: serde_json::Value = serde_json::from_slice(&b).unwrap();
        assert!(v["error"].is_string(), "{path}");
    }
}

/// A job's events go (queued ->) loading -> running -> done; its result has
/// the bytes of `patchscaler upscale` with the same seed and preset; no file
/// stays behind; a result nobody fetches is dropped after --keep-results.
#[test]
fn a_job_matches_the_cli_and_leaves_nothing_behind() {
    let d = tempfile::tempdir().unwrap();
    let model = tiny_model(d.path());
    let mut s = Server::start(&model, &d.path().join("tmp"), &["--keep-results", "5"]);
    let img = rgb_image(24, 20);
    let input = d.path().join("in.png");
    img.save(&input).unwrap();
    let png = std::fs::read(&input).unwrap();
    let cli = cli_upscale(
        &model,
        &input,
        &d.path().join("cli.png"),
        &["--preset", "fast", "--seed", "3"],
    );
    let hr = png_bytes(&rgb_image(96, 80));
    let (st, v) = submit(
        &s.url,
        &[
            ("image", Some("in.png"), &png),
            ("hr", Some("hr.png"), &hr),
            ("preset", None, b"fast"),
            ("seed", None, b"3"),
        ],
    );
    assert_eq!(st, 202, "{v}");
    let id = v["id"].as_str().unwrap().to_string();
    assert_eq!(id.len(), 32);
    let events = follow(&s.url, &id, 1000);
    let states: Vec<&str> = events
        .iter()
        .map(|e| e["state"].as_str().unwrap())
        .collect();
    // The worker may take it before the stream opens; states never go back.
    let rank = |s: &str| {
        ["queued", "loading", "running", "done"]
            .iter()
            .position(|x| *x == s)
    };
    let ranks: Vec<_> = states.iter().map(|s| rank(s).expect(s)).collect();
    assert!(ranks.windows(2).all(|w| w[0] <= w[1]), "{states:?}");
    let done = events.last().unwrap();
    assert_eq!(done["state"], "done", "{done}");
    assert_eq!(
        (done["width"].as_u64(), done["height"].as_u64()),
        (Some(96), Some(80))
    );
    assert_eq!(done["has_hr"], true);
    let summary = done["summary"].as_str().unwrap();
    assert!(
        summary.starts_with("in.png -> in_x4.png: 24x20 -> 96x80 | patches "),
        "{summary}"
    );
    assert!(
        !summary.contains("patchscaler-serve-"),
        "a server path in {summary}"
    );

    let (st, ct, result) = get(&format!("{}/api/jobs/{id}/result.png", s.url));
    assert_eq!((st, ct.as_str()), (200, "image/png"));
    assert!(
        result == cli,
        "serve's result differs from `patchscaler upscale`'s"
    );
    for f in ["bicubic.png", "qmap.png", "hr.png"] {
        let (st, _, b) = get(&format!("{}/api/jobs/{id}/{f}", s.url));
        assert_eq!(st, 200, "{f}");
        let i = image::load_from_memory(&b).unwrap();
        let want = if f == "qmap.png" { (192, 80) } else { (96, 80) };
        assert_eq!((i.width(), i.height()), want, "{f}");
    }
    let r = agent()
        .get(format!("{}/api/jobs/{id}/result.png?download=1", s.url))
        .call()
        .unwrap();
    assert_eq!(
        r.headers().get("content-disposition").unwrap(),
        "attachment; filename=\"in_x4.png\""
    );
    // No job folder is left in the server's temporary folder.
    let work = s.work_dir().expect("the server's temporary folder");
    assert_eq!(std::fs::read_dir(&work).unwrap().count(), 0);
    // Not fetched again within --keep-results 5: dropped.
    wait_for("the result to be dropped", Duration::from_secs(15), || {
        get(&format!("{}/api/jobs/{id}/result.png", s.url)).0 == 404
    });
    // SIGTERM: a clean exit that removes the temporary folder.
    let status = s.stop().expect("serve did not stop on SIGTERM");
    assert!(status.success(), "{status:?}");
    assert!(!work.exists(), "temporary folder left behind");
}

/// One job at a time per device: later jobs wait with their place in line;
/// a job whose event stream closes before it is done is cancelled (out of
/// the queue, or its result dropped if it had started).
#[test]
fn the_queue_shows_places_and_a_closed_stream_cancels_its_job() {
    let d = tempfile::tempdir().unwrap();
    let model = tiny_model(d.path());
    let s = Server::start(&model, &d.path().join("tmp"), &["--threads", "1"]);
    let png = png_bytes(&rgb_image(64, 64));
    let mut ids = Vec::new();
    for _ in 0..3 {
        let (st, v) = submit(&s.url, &[("image", Some("q.png"), &png)]);
        assert_eq!(st, 202, "{v}");
        ids.push(v["id"].as_str().unwrap().to_string());
    }
    // Follow the first two to the end in the background.
    let followers: Vec<_> = ids[..2]
        .iter()
        .map(|id| {
            let (url, id) = (s.url.clone(), id.clone());
            std::thread::spawn(move || follow(&url, &id, 1000))
        })
        .collect();
    // The third waits behind at least one job; close its stream right away.
    let first = follow(&s.url, &ids[2], 1);
    assert_eq!(first[0]["state"], "queued", "{first:?}");
    assert!(first[0]["ahead"].as_u64().unwrap() >= 1, "{first:?}");
    // The server notices the closed stream (at its next keep-alive) and
    // drops the job: no events, no result.
    wait_for(
        "the third job to be cancelled",
        Duration::from_secs(20),
        || get(&format!("{}/api/jobs/{}", s.url, ids[2])).0 == 404,
    );
    for f in followers {
        let ev = f.join().unwrap();
        assert_eq!(ev.last().unwrap()["state"], "done", "{ev:?}");
    }
    assert_eq!(
        get(&format!("{}/api/jobs/{}/result.png", s.url, ids[2])).0,
        404
    );
    let (_, _, info) = get(&format!("{}/api/info", s.url));
    let info: serde_json::Value = serde_json::from_slice(&info).unwrap();
    assert_eq!(info["queue"][0]["waiting"], 0, "{info}");
    assert_eq!(info["queue"][0]["running"], false, "{info}");
    let work = s.work_dir().unwrap();
    assert_eq!(std::fs::read_dir(&work).unwrap().count(), 0);
}

/// The page's options go through `upscale`'s own parsers: a scale the
/// command refuses (8x8 at x0.000000001 made a 1x1 image) is refused by the
/// server with the same reason.
#[test]
fn the_scale_rule_is_upscales() {
    let d = tempfile::tempdir().unwrap();
    let model = tiny_model(d.path());
    let s = Server::start(&model, &d.path().join("tmp"), &[]);
    let tiny = d.path().join("tiny8.png");
    rgb_image(8, 8).save(&tiny).unwrap();
    let o = bin()
        .arg("upscale")
        .arg("--model")
        .arg(&model)
        .arg(&tiny)
        .arg("-o")
        .arg(d.path().join("out.png"))
        .args(["--scale", "0.000000001"])
        .output()
        .unwrap();
    assert!(!o.status.success(), "upscale accepted --scale 0.000000001");
    let cli = String::from_utf8_lossy(&o.stderr);
    let png = std::fs::read(&tiny).unwrap();
    let (st, v) = submit(
        &s.url,
        &[("image", Some("tiny8.png"), &png), ("scale", None, b"0.000000001")],
    );
    assert_eq!(st, 400, "{v}");
    let e = v["error"].as_str().unwrap();
    let reason = e.strip_prefix("scale \"0.000000001\": ").unwrap_or_else(|| panic!("{e}"));
    assert!(cli.contains(reason), "upscale: {cli}\nserve: {e}");
}
