//! End-to-end tests of `patchscaler upscale` against issue 10's findings,
//! one test per row: bad flags, colliding and ill-formed outputs, broken
//! inputs, and everything the preflight must catch before the model loads.

use image::{ImageBuffer, LumaA};
use std::path::{Path, PathBuf};
use std::process::Output;

mod common;
use common::{bin, rgb_image, text, tiny_model};

fn upscale(model: &Path, args: &[&Path]) -> Output {
    bin().arg("upscale").arg("--model").arg(model).args(args).output().unwrap()
}

fn p(s: &str) -> &Path {
    Path::new(s)
}

/// The error line that names `what`, or a panic showing all output.
fn error_line<'a>(t: &'a str, what: &Path) -> &'a str {
    let w = what.to_str().unwrap();
    t.lines().find(|l| l.starts_with("error:") && l.contains(w)).unwrap_or_else(|| panic!("no error line for {w}:\n{t}"))
}

/// A model folder that does not exist: a run that gets as far as loading it
/// says "model folder not found", so its absence shows the preflight stopped first.
fn no_model(d: &Path) -> PathBuf {
    d.join("no-model")
}

/// Row 1: --threads 0 or negative is a usage error (exit 2), never libtorch's panic.
#[test]
fn row1_threads_out_of_range_is_a_usage_error() {
    let d = tempfile::tempdir().unwrap();
    let inp = d.path().join("a.png");
    rgb_image(8, 8).save(&inp).unwrap();
    for cmd in ["upscale", "eval", "bench"] {
        for v in ["--threads=0", "--threads=-3"] {
            let o = bin().arg(cmd).arg(v).arg(&inp).arg("-o").arg(d.path().join("b.png")).output().unwrap();
            let t = text(&o);
            assert_eq!(o.status.code(), Some(2), "{cmd} {v}: {t}");
            assert!(t.contains("--threads") && !t.contains("panicked") && !t.contains("frame #"), "{cmd} {v}: {t}");
        }
    }
}

/// Row 2: inputs with one stem get distinct names; one file name from two
/// folders is refused with both named, and nothing is overwritten.
#[test]
fn row2_same_stems_never_overwrite_each_other() {
    let d = tempfile::tempdir().unwrap();
    let model = tiny_model(d.path());
    let (d1, d2) = (d.path().join("d1"), d.path().join("d2"));
    std::fs::create_dir_all(&d1).unwrap();
    std::fs::create_dir_all(&d2).unwrap();
    rgb_image(12, 12).save(d1.join("x.png")).unwrap();
    rgb_image(12, 12).save(d1.join("x.jpg")).unwrap();
    rgb_image(12, 12).save(d2.join("x.png")).unwrap();
    rgb_image(12, 12).save(d2.join("y.png")).unwrap();
    let out = d.path().join("out");
    let o = upscale(&model, &[&d1, &d2, p("-o"), &out]);
    let t = text(&o);
    assert_eq!(o.status.code(), Some(1), "{t}");
    let line = error_line(&t, &d1.join("x.png"));
    assert!(line.contains(d2.join("x.png").to_str().unwrap()), "{line}");
    let mut made: Vec<String> = std::fs::read_dir(&out).unwrap().map(|e| e.unwrap().file_name().into_string().unwrap()).collect();
    made.sort();
    assert_eq!(made, ["x_jpg_x4.png", "y_x4.png"], "{t}");
    assert!(t.contains("done 2, failed 0, skipped 2"), "{t}");
}

/// Row 3: --qmap naming the -o file is refused; neither file is written.
#[test]
fn row3_qmap_equal_to_output_is_refused() {
    let d = tempfile::tempdir().unwrap();
    let inp = d.path().join("a.png");
    rgb_image(8, 8).save(&inp).unwrap();
    let q = d.path().join("q.png");
    let o = upscale(&no_model(d.path()), &[&inp, p("-o"), &q, p("--qmap"), &q]);
    let t = text(&o);
    assert_eq!(o.status.code(), Some(1), "{t}");
    assert!(error_line(&t, &q).contains("same file"), "{t}");
    assert!(!q.exists() && !t.contains("model folder not found"), "{t}");
}

/// Row 5: a JPEG cut at 60 % is "truncated or corrupt", not an image with a grey half.
#[test]
fn row5_truncated_jpeg_is_refused() {
    let d = tempfile::tempdir().unwrap();
    let full = d.path().join("a.jpg");
    rgb_image(64, 64).save(&full).unwrap();
    let bytes = std::fs::read(&full).unwrap();
    let cut = d.path().join("t.jpg");
    std::fs::write(&cut, &bytes[..bytes.len() * 6 / 10]).unwrap();
    let out = d.path().join("t.png");
    let o = upscale(&no_model(d.path()), &[&cut, p("-o"), &out]);
    let t = text(&o);
    assert_eq!(o.status.code(), Some(1), "{t}");
    assert!(error_line(&t, &cut).contains("truncated or corrupt"), "{t}");
    assert!(!out.exists());
}

/// Row 6: -o with an unknown extension, none for one input, or a file name
/// for two inputs is an error listing what works; no folder appears.
#[test]
fn row6_ill_formed_outputs_are_errors_not_folders() {
    let d = tempfile::tempdir().unwrap();
    let (a, b) = (d.path().join("a.png"), d.path().join("b.png"));
    rgb_image(8, 8).save(&a).unwrap();
    rgb_image(8, 8).save(&b).unwrap();
    let model = no_model(d.path());
    for (out, inputs, says) in [
        ("out.gif", vec![&a], ".png"),
        ("out.pgn", vec![&a], ".png"),
        ("noext", vec![&a], "no extension"),
        ("two.png", vec![&a, &b], "several inputs"),
    ] {
        let target = d.path().join(out);
        let mut args: Vec<&Path> = inputs.iter().map(|p| p.as_path()).collect();
        args.extend([p("-o"), &target]);
        let o = upscale(&model, &args);
        let t = text(&o);
        assert_eq!(o.status.code(), Some(2), "{out}: {t}");
        assert!(t.contains(out) && t.contains(says), "{out}: {t}");
        assert!(!target.exists(), "{out} was created");
    }
}

/// Row 7: gray+alpha to TIFF (which has no such type) is written as RGBA;
/// an output folder that cannot exist and an output equal to the input are
/// refused in the preflight, before the model loads.
#[test]
fn row7_output_problems_are_found_before_computing() {
    let d = tempfile::tempdir().unwrap();
    let model = tiny_model(d.path());
    let ga = d.path().join("ga.png");
    ImageBuffer::from_fn(12, 10, |x, y| LumaA([(x * 20) as u8, (y * 25) as u8])).save(&ga).unwrap();
    let tiff = d.path().join("g.tiff");
    let o = upscale(&model, &[&ga, p("-o"), &tiff]);
    assert!(o.status.success(), "{}", text(&o));
    let img = image::open(&tiff).unwrap();
    assert_eq!((img.width(), img.height(), img.color()), (48, 40, image::ColorType::Rgba8));

    let blocker = d.path().join("blocker");
    std::fs::write(&blocker, b"a file, not a folder").unwrap();
    let o = upscale(&no_model(d.path()), &[&ga, &tiff, p("-o"), &blocker.join("sub/")]);
    let t = text(&o);
    assert_eq!(o.status.code(), Some(1), "{t}");
    assert!(error_line(&t, &blocker).contains("not a folder"), "{t}");
    assert!(t.contains("skipped 2") && !t.contains("model folder not found"), "{t}");

    let o = upscale(&no_model(d.path()), &[&ga, p("-o"), &ga]);
    let t = text(&o);
    assert!(t.contains("refusing to overwrite") && !t.contains("model folder not found"), "{t}");
}

/// Row 8: bad headers are reported before the model loads, a symlink loop
/// is named as one, an absurd size names --memory-limit, and a tally ends the run.
#[test]
fn row8_preflight_reports_first_and_a_tally_ends_the_batch() {
    let d = tempfile::tempdir().unwrap();
    let model = tiny_model(d.path());
    let good = d.path().join("good.png");
    rgb_image(12, 12).save(&good).unwrap();
    let bad = d.path().join("bad.png");
    std::fs::write(&bad, b"\x89PNG\r\n\x1a\nnot a png").unwrap();
    let (l1, l2) = (d.path().join("loop1.png"), d.path().join("loop2.png"));
    std::os::unix::fs::symlink(&l2, &l1).unwrap();
    std::os::unix::fs::symlink(&l1, &l2).unwrap();
    // A valid PNG header for 2147483647 x 1 (the data need not follow).
    let huge = d.path().join("huge.png");
    std::fs::write(&huge, png_header(2147483647, 1)).unwrap();
    let out = d.path().join("out");
    let o = upscale(&model, &[&bad, &l1, &huge, &good, p("-o"), &out, p("--memory-limit"), p("4096")]);
    let t = text(&o);
    assert_eq!(o.status.code(), Some(1), "{t}");
    assert!(error_line(&t, &l1).contains("too many levels of symbolic links"), "{t}");
    assert!(error_line(&t, &huge).contains("--memory-limit"), "{t}");
    assert!(String::from_utf8_lossy(&o.stdout).trim_end().ends_with("done 1, failed 0, skipped 3"), "{t}");
    // Preflight lines come before the model loads (here: fails to).
    let o = upscale(&no_model(d.path()), &[&bad, &good, p("-o"), &out]);
    let e = String::from_utf8_lossy(&o.stderr);
    let (refused, model_error) = (e.find(bad.to_str().unwrap()), e.find("model folder not found"));
    assert!(refused.is_some() && model_error.is_some() && refused < model_error, "{e}");
    // A lone loop keeps its file-shaped -o and is named as a loop.
    let o = upscale(&no_model(d.path()), &[&l1, p("-o"), &d.path().join("x.png")]);
    assert!(error_line(&text(&o), &l1).contains("too many levels of symbolic links"), "{}", text(&o));
    // With nothing left to do, the model is never loaded.
    let o = upscale(&no_model(d.path()), &[&bad, p("-o"), &out]);
    let t = text(&o);
    assert!(!t.contains("model folder not found") && t.contains("skipped 1"), "{t}");
}

/// Row 9: the default prints one compact line per image; --verbose the
/// per-stage timings; --quiet nothing but errors.
#[test]
fn row9_verbosity_levels() {
    let d = tempfile::tempdir().unwrap();
    let model = tiny_model(d.path());
    let inp = d.path().join("a.png");
    rgb_image(12, 12).save(&inp).unwrap();
    let out = d.path().join("b.png");
    let run = |flag: Option<&str>| {
        let mut c = bin();
        c.arg("upscale").arg("--model").arg(&model).arg(&inp).arg("-o").arg(&out);
        c.args(flag);
        let o = c.output().unwrap();
        assert!(o.status.success(), "{}", text(&o));
        text(&o)
    };
    let default = run(None);
    assert!(default.contains("a.png -> ") && default.contains("12x12 -> 48x48") && !default.contains("encode"), "{default}");
    let verbose = run(Some("--verbose"));
    assert!(verbose.contains("denoiser evals") && verbose.contains("encode"), "{verbose}");
    assert_eq!(run(Some("--quiet")), "");
}

/// A PNG that declares `w` x `h` and then holds (almost) no data.
fn png_header(w: u32, h: u32) -> Vec<u8> {
    let mut ihdr = w.to_be_bytes().to_vec();
    ihdr.extend_from_slice(&h.to_be_bytes());
    ihdr.extend_from_slice(&[8, 2, 0, 0, 0]);
    let mut v = b"\x89PNG\r\n\x1a\n".to_vec();
    for (name, data) in [(b"IHDR", ihdr), (b"IDAT", vec![0x78, 0x9c, 0x03, 0x00]), (b"IEND", vec![])] {
        v.extend_from_slice(&(data.len() as u32).to_be_bytes());
        let mut body = name.to_vec();
        body.extend_from_slice(&data);
        v.extend_from_slice(&body);
        v.extend_from_slice(&crc32(&body).to_be_bytes());
    }
    v
}

fn crc32(data: &[u8]) -> u32 {
    let mut c = !0u32;
    for &b in data {
        c ^= b as u32;
        for _ in 0..8 {
            c = if c & 1 != 0 { 0xEDB88320 ^ (c >> 1) } else { c >> 1 };
        }
    }
    !c
}

#[path = "common/animated.rs"]
mod animated;

/// Issue 21, defect 8: two names that are not UTF-8 and differ only there
/// (`caf\xe9.png`, `caf\xe8.png`) are two outputs with their raw bytes, and
/// every line shows them escaped; the same name from two folders is refused
/// with both shown as they are, not as `caf\u{FFFD}.png` twice.
#[test]
fn issue21_defect8_names_that_are_not_utf8_stay_distinct() {
    use std::os::unix::ffi::{OsStrExt, OsStringExt};
    let d = tempfile::tempdir().unwrap();
    let model = tiny_model(d.path());
    let name = |dir: &Path, b: &[u8]| dir.join(std::ffi::OsStr::from_bytes(b));
    let src = d.path().join("nonutf");
    std::fs::create_dir_all(&src).unwrap();
    for b in [&b"caf\xe9.png"[..], b"caf\xe8.png"] {
        rgb_image(12, 12).save(name(&src, b)).unwrap();
    }
    let out = d.path().join("out");
    let o = upscale(&model, &[&src, p("-o"), &out]);
    let t = text(&o);
    assert_eq!(o.status.code(), Some(0), "{t}");
    let mut made: Vec<Vec<u8>> = std::fs::read_dir(&out).unwrap().map(|e| e.unwrap().file_name().into_vec()).collect();
    made.sort();
    assert_eq!(made, [b"caf\xe8_x4.png".to_vec(), b"caf\xe9_x4.png".to_vec()], "{t}");
    assert!(t.contains(r"caf\xe9.png -> ") && t.contains(r"caf\xe9_x4.png"), "{t}");
    assert!(t.contains(r"caf\xe8.png -> ") && t.contains(r"caf\xe8_x4.png"), "{t}");

    let other = d.path().join("other");
    std::fs::create_dir_all(&other).unwrap();
    rgb_image(12, 12).save(name(&other, b"caf\xe9.png")).unwrap();
    let o = upscale(&no_model(d.path()), &[&name(&src, b"caf\xe9.png"), &name(&other, b"caf\xe9.png"), p("-o"), &out]);
    let t = text(&o);
    let line = t.lines().find(|l| l.contains("same file name")).unwrap_or_else(|| panic!("{t}"));
    assert!(line.contains(r"nonutf/caf\xe9.png") && line.contains(r"other/caf\xe9.png"), "{line}");
    assert!(!t.contains('\u{FFFD}'), "{t}");
}

/// Issue 21, defect 9: an animated GIF, APNG or WebP is refused with its
/// frame count before the model loads, never upscaled from its first frame.
#[test]
fn issue21_defect9_animations_are_refused_with_their_frame_count() {
    let d = tempfile::tempdir().unwrap();
    let files = [("anim.gif", animated::gif(3), 3), ("anim.png", animated::apng(4), 4), ("anim.webp", animated::webp(2), 2)];
    for (name, bytes, frames) in files {
        let inp = d.path().join(name);
        std::fs::write(&inp, bytes).unwrap();
        let out = d.path().join("out.png");
        let o = upscale(&no_model(d.path()), &[&inp, p("-o"), &out]);
        let t = text(&o);
        assert_eq!(o.status.code(), Some(1), "{name}: {t}");
        let line = error_line(&t, &inp);
        assert!(line.contains(&format!("animated ({frames} frames)")) && line.contains("only still images"), "{line}");
        assert!(!t.contains("model folder not found") && !out.exists(), "{name}: {t}");
    }
}

/// Issue 21, defect 9: a folder yields what naming its files would: a still
/// `.gif`, which a named file always was, is no longer skipped by the scan.
#[test]
fn issue21_defect9_a_folder_and_named_files_accept_the_same_formats() {
    let d = tempfile::tempdir().unwrap();
    let model = tiny_model(d.path());
    let src = d.path().join("in");
    std::fs::create_dir_all(&src).unwrap();
    std::fs::write(src.join("still.gif"), animated::gif(1)).unwrap();
    rgb_image(8, 6).save(src.join("photo.png")).unwrap();
    std::fs::write(src.join("notes.txt"), b"not an image").unwrap();
    let out = d.path().join("out");
    let o = upscale(&model, &[&src, p("-o"), &out]);
    let t = text(&o);
    assert_eq!(o.status.code(), Some(0), "{t}");
    assert!(t.contains("done 2, failed 0, skipped 0"), "{t}");
    assert_eq!(image::image_dimensions(out.join("still_x4.png")).unwrap(), (32, 24));
}

/// Issue 21, defect 9: an output folder on a read-only file system is named
/// in the error, not the temporary probe file the preflight tried to make.
/// Needs a user namespace to mount one (`unshare -rm`); skipped without.
#[test]
fn issue21_defect9_an_unwritable_folder_is_named_not_a_probe_file() {
    let d = tempfile::tempdir().unwrap();
    let inp = d.path().join("a.png");
    rgb_image(8, 8).save(&inp).unwrap();
    let ro = d.path().join("ro");
    std::fs::create_dir_all(&ro).unwrap();
    let script = r#"mount --bind "$1" "$1" && mount -o remount,bind,ro "$1" || exit 77; shift; exec "$@""#;
    let o = std::process::Command::new("unshare")
        .args(["-rm", "sh", "-c", script, "sh"])
        .arg(&ro)
        .arg(env!("CARGO_BIN_EXE_patchscaler"))
        .args(["upscale", "--model"])
        .arg(no_model(d.path()))
        .arg(&inp)
        .arg("-o")
        .arg(ro.join("a_x4.png"))
        .output();
    let Ok(o) = o.map_err(|e| eprintln!("skipped: no unshare ({e})")) else { return };
    if o.status.code() == Some(77) || String::from_utf8_lossy(&o.stderr).contains("unshare:") {
        eprintln!("skipped: cannot mount a read-only folder here: {}", text(&o));
        return;
    }
    let t = text(&o);
    assert_eq!(o.status.code(), Some(1), "{t}");
    let line = error_line(&t, &ro);
    assert!(line.ends_with(&format!("{}: read-only file system", ro.display())), "{line}");
    assert!(!t.contains(".patchscaler-check"), "{t}");
}
