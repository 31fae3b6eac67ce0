use super::*;
use crate::eval::report::write_csv;

fn row(image: &str, method: &str, psnr: f64, ssim: f64, niqe: Option<f64>) -> Row {
    Row { image: image.into(), method: method.into(), score: Score { psnr, ssim, niqe, seconds: 0.1 } }
}

/// An evaluation of 10 images; `ps` gives PatchScaler's (psnr, niqe) of image i.
fn evaluation(ps: impl Fn(usize) -> (f64, f64), coarse_gain: f64) -> Vec<Row> {
    let mut rows = Vec::new();
    for i in 0..10 {
        let name = format!("img{i}.png");
        let base = 25.0 + i as f64;
        rows.push(row(&name, "bicubic", base, 0.7, Some(11.0)));
        rows.push(row(&name, "coarse", base + coarse_gain, 0.72, Some(10.5)));
        let (p, n) = ps(i);
        rows.push(row(&name, DECIDING_METHOD, p, 0.71, Some(n)));
    }
    rows
}

fn write_eval(dir: &Path, rows: &[Row]) {
    for p in PROTOCOLS {
        std::fs::create_dir_all(dir.join(p)).unwrap();
        write_csv(rows, &dir.join(p).join("eval.csv")).unwrap();
    }
}

#[test]
fn csv_round_trips_without_the_mean_rows() {
    let dir = tempfile::tempdir().unwrap();
    let rows = vec![row("a,b.png", "coarse", 30.5, 0.8, None), row("c.png", "coarse", 31.0, 0.81, Some(9.5))];
    let path = dir.path().join("eval.csv");
    write_csv(&rows, &path).unwrap();
    assert_eq!(read_eval_csv(&path).unwrap(), rows);
}

#[test]
fn a_uniform_gain_is_better_and_a_uniform_loss_worse() {
    let base = evaluation(|i| (25.0 + i as f64, 10.0), 0.0);
    // +0.1 dB on every image, give or take 0.02: far beyond its noise.
    let up = evaluation(|i| (25.1 + i as f64 + if i % 2 == 0 { 0.02 } else { -0.02 }, 10.0), 0.0);
    let d = difference("bicubic", Metric::Psnr, DECIDING_METHOD, &base, &up).unwrap();
    assert!((d.gain - 0.1).abs() < 1e-9 && d.better() && !d.worse(), "{d:?}");
    let d = difference("bicubic", Metric::Psnr, DECIDING_METHOD, &up, &base).unwrap();
    assert!(d.worse(), "{d:?}");
    // NIQE: lower is better.
    let sharper = evaluation(|i| (25.0 + i as f64, 9.8 + 0.01 * i as f64), 0.0);
    let d = difference("bicubic", Metric::Niqe, DECIDING_METHOD, &base, &sharper).unwrap();
    assert!(d.better() && d.candidate_mean < d.base_mean, "{d:?}");
}

#[test]
fn an_image_reproduced_exactly_is_left_out_not_a_nan() {
    let mut base = evaluation(|i| (25.0 + i as f64, 10.0), 0.0);
    let mut up = evaluation(|i| (25.1 + i as f64, 10.0), 0.0);
    for rows in [&mut base, &mut up] {
        for r in rows.iter_mut().filter(|r| r.image == "img3.png") {
            r.score.psnr = f64::INFINITY;
        }
    }
    let d = difference("bicubic", Metric::Psnr, DECIDING_METHOD, &base, &up).unwrap();
    assert_eq!(d.images, 9);
    assert!((d.gain - 0.1).abs() < 1e-9 && d.better(), "{d:?}");
    let dir = tempfile::tempdir().unwrap();
    write_eval(dir.path(), &base);
    assert!(stage_gaps(dir.path()).unwrap().iter().all(|(_, g)| g.is_finite()));
}

#[test]
fn a_mean_gain_carried_by_one_image_is_noise() {
    let base = evaluation(|i| (25.0 + i as f64, 10.0), 0.0);
    // One image +2 dB, nine -0.1: the mean is +0.11 but not beyond 2 SE.
    let lucky = evaluation(|i| (25.0 + i as f64 + if i == 0 { 2.0 } else { -0.1 }, 10.0), 0.0);
    let d = difference("light", Metric::Psnr, DECIDING_METHOD, &base, &lucky).unwrap();
    assert!(d.gain > 0.0 && !d.better() && !d.worse(), "{d:?}");
}

#[test]
fn the_verdict_needs_one_gain_and_no_loss_on_any_protocol() {
    let dir = tempfile::tempdir().unwrap();
    let (a, b, c) = (dir.path().join("a"), dir.path().join("b"), dir.path().join("c"));
    write_eval(&a, &evaluation(|i| (25.0 + i as f64, 10.0), 0.0));
    write_eval(&b, &evaluation(|i| (25.2 + i as f64 + 0.01 * (i % 3) as f64, 10.0), 0.0));
    let v = compare_dirs(&a, &b).unwrap();
    assert_eq!(v.differences.len(), 9);
    assert!(v.accepted(), "{}", v.table());
    assert!(v.table().contains("| bicubic | PSNR-Y | 29.50 | 29.71 | +0.21 |"), "{}", v.table());
    assert!(!compare_dirs(&a, &a).unwrap().accepted(), "equal is not better");
    // Better PSNR bought with worse NIQE on one protocol: refused.
    write_eval(&c, &evaluation(|i| (25.2 + i as f64, 10.5 + 0.01 * i as f64), 0.0));
    let v = compare_dirs(&a, &c).unwrap();
    assert!(!v.accepted() && v.table().contains("worse"), "{}", v.table());
}

#[test]
fn a_metric_no_image_defines_is_listed_not_compared() {
    let dir = tempfile::tempdir().unwrap();
    let (a, b) = (dir.path().join("a"), dir.path().join("b"));
    let no_niqe = |shift: f64| {
        let mut rows = evaluation(|i| (25.0 + shift + i as f64, 10.0), 0.0);
        rows.iter_mut().for_each(|r| r.score.niqe = None);
        rows
    };
    write_eval(&a, &no_niqe(0.0));
    write_eval(&b, &no_niqe(0.3));
    let v = compare_dirs(&a, &b).unwrap();
    assert_eq!((v.differences.len(), v.not_compared.len()), (6, 3));
    assert!(v.accepted() && v.table().contains("| light | NIQE | - |"), "{}", v.table());
}

#[test]
fn a_missing_protocol_is_an_error_that_names_the_file() {
    let dir = tempfile::tempdir().unwrap();
    write_eval(dir.path(), &evaluation(|i| (25.0 + i as f64, 10.0), 0.0));
    std::fs::remove_file(dir.path().join("light/eval.csv")).unwrap();
    let e = format!("{:#}", compare_dirs(dir.path(), dir.path()).unwrap_err());
    assert!(e.contains("light/eval.csv"), "{e}");
}

#[test]
fn the_stage_furthest_from_its_target_comes_first() {
    let dir = tempfile::tempdir().unwrap();
    // Coarse = bicubic + 0.2 (GRM 0.8 dB short); PatchScaler 0.6 dB under coarse (DiT 0.1 short).
    write_eval(dir.path(), &evaluation(|i| (25.0 + i as f64 - 0.4, 10.0), 0.2));
    let gaps = stage_gaps(dir.path()).unwrap();
    assert_eq!(gaps[0].0, "grm");
    assert!((gaps[0].1 - 0.8).abs() < 1e-9 && (gaps[1].1 - 0.1).abs() < 1e-9, "{gaps:?}");
    // A GRM at its target and PatchScaler 1.5 dB under it: the DiT first.
    write_eval(dir.path(), &evaluation(|i| (25.0 + i as f64 - 0.5, 10.0), 1.0));
    let gaps = stage_gaps(dir.path()).unwrap();
    assert_eq!(gaps, vec![("dit", 1.0), ("grm", 0.0)]);
}
