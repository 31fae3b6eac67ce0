//! End-to-end: `patchscaler degrade` makes byte-identical LR sets per seed,
//! for the Real-ESRGAN and the light protocol.

use std::process::Command;

fn degrade(args: &[&str]) -> std::process::Output {
    Command::new(env!("CARGO_BIN_EXE_patchscaler")).arg("degrade").args(args).output().unwrap()
}

#[test]
fn same_seed_same_bytes_bicubic_sizes_and_bad_files_reported() {
    let d = tempfile::tempdir().unwrap();
    let hr = d.path().join("hr");
    std::fs::create_dir(&hr).unwrap();
    let img = image::RgbImage::from_fn(96, 80, |x, y| image::Rgb([(x * 2) as u8, (y * 3) as u8, ((x ^ y) * 4) as u8]));
    img.save(hr.join("a.png")).unwrap();
    std::fs::write(hr.join("broken.png"), b"\x89PNG\r\n\x1a\nnope").unwrap();
    let (o1, o2, o3) = (d.path().join("o1"), d.path().join("o2"), d.path().join("o3"));
    for o in [&o1, &o2] {
        let r = degrade(&[hr.to_str().unwrap(), "-o", o.to_str().unwrap(), "--seed", "5"]);
        let err = String::from_utf8_lossy(&r.stderr);
        assert_eq!(r.status.code(), Some(1), "{err}");
        assert!(err.contains("broken.png"), "{err}");
    }
    let a1 = std::fs::read(o1.join("a.png")).unwrap();
    assert_eq!(a1, std::fs::read(o2.join("a.png")).unwrap(), "same seed must give the same bytes");
    assert_eq!(image::load_from_memory(&a1).unwrap().width(), 24);
    let r = degrade(&[hr.join("a.png").to_str().unwrap(), "-o", o3.to_str().unwrap(), "--bicubic"]);
    assert!(r.status.success(), "{}", String::from_utf8_lossy(&r.stderr));
    assert_eq!(image::image_dimensions(o3.join("a.png")).unwrap(), (24, 20));
    // The light protocol: seeded per file as Real-ESRGAN's, other bytes.
    let light = |o: &str| {
        let o = d.path().join(o);
        let r = degrade(&[hr.join("a.png").to_str().unwrap(), "-o", o.to_str().unwrap(), "--light", "--seed", "5"]);
        assert!(r.status.success(), "{}", String::from_utf8_lossy(&r.stderr));
        std::fs::read(o.join("a.png")).unwrap()
    };
    let l1 = light("l1");
    assert_eq!(l1, light("l2"), "same seed must give the same bytes");
    assert_ne!(l1, a1);
    assert_eq!(image::load_from_memory(&l1).unwrap().width(), 24);
    let both = degrade(&[hr.to_str().unwrap(), "-o", o3.to_str().unwrap(), "--light", "--bicubic"]);
    assert!(!both.status.success(), "--light and --bicubic exclude each other");
}
