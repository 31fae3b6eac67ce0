//! Behaviour of the whole degradation pipeline.

use super::config::DegradeConfig;
use super::files::{degrade_file, file_seed};
use super::pipeline::{bicubic_x4_lr, degrade};
use super::protocol::Degradation;
use rand::SeedableRng;
use rand_chacha::ChaCha8Rng;
use tch::{Device, Kind, Tensor};

/// A smooth but structured 96x80 HR, deterministic.
fn hr() -> Tensor {
    let y = Tensor::linspace(0.0, 6.0, 96, (Kind::Float, Device::Cpu)).view([96, 1]);
    let x = Tensor::linspace(0.0, 5.0, 80, (Kind::Float, Device::Cpu)).view([1, 80]);
    let r = ((&y * 2.0).sin() * (&x * 3.0).cos() + 1.0) / 2.0;
    let g = ((&y + &x).sin() + 1.0) / 2.0;
    let b = (&x / 5.0).expand([96, 80], false) * (&y / 6.0);
    Tensor::stack(&[r, g, b], 0).unsqueeze(0)
}

fn run(seed: u64, cfg: &DegradeConfig) -> Tensor {
    degrade(&hr(), 4, &mut ChaCha8Rng::seed_from_u64(seed), cfg).unwrap()
}

fn assert_valid_lr(lr: &Tensor) {
    assert_eq!(lr.size(), [1, 3, 24, 20]);
    assert!(lr.min().double_value(&[]) >= 0.0 && lr.max().double_value(&[]) <= 1.0);
    let steps = lr * 255.0;
    let off_grid = (&steps - steps.round()).abs().max().double_value(&[]);
    assert!(off_grid < 1e-4, "not quantised to 1/255: {off_grid}");
}

#[test]
fn same_seed_is_byte_identical_and_seeds_differ() {
    let cfg = DegradeConfig::realesrgan();
    let a = run(5, &cfg);
    assert_valid_lr(&a);
    assert!(a.equal(&run(5, &cfg)), "same seed, different LR");
    let differing = (6..10).filter(|s| !run(*s, &cfg).equal(&a)).count();
    assert_eq!(differing, 4, "another seed gave the same LR");
}

#[test]
fn outputs_are_valid_over_many_seeds() {
    // Exercises the random branches: sinc / no sinc, both final orders, up,
    // down and keep resizes, Gaussian and Poisson noise.
    let cfg = DegradeConfig::realesrgan();
    for seed in 0..24 {
        assert_valid_lr(&run(seed, &cfg));
    }
}

#[test]
fn each_stage_alone_runs_and_changes_the_result() {
    let full = DegradeConfig::realesrgan();
    let base = DegradeConfig::none();
    let plain = run(1, &base);
    assert_valid_lr(&plain);
    let stages: Vec<(&str, DegradeConfig)> = vec![
        (
            "usm",
            DegradeConfig {
                sharpen_hr: true,
                ..base.clone()
            },
        ),
        (
            "blur1",
            DegradeConfig {
                blur1: full.blur1.clone(),
                ..base.clone()
            },
        ),
        (
            "resize1",
            DegradeConfig {
                resize1: full.resize1.clone(),
                ..base.clone()
            },
        ),
        (
            "noise1",
            DegradeConfig {
                noise1: full.noise1.clone(),
                ..base.clone()
            },
        ),
        (
            "jpeg1",
            DegradeConfig {
                jpeg1: full.jpeg1,
                ..base.clone()
            },
        ),
        (
            "blur2",
            DegradeConfig {
                blur2: full.blur2.clone(),
                blur2_prob: 1.0,
                ..base.clone()
            },
        ),
        (
            "resize2",
            DegradeConfig {
                resize2: full.resize2.clone(),
                ..base.clone()
            },
        ),
        (
            "noise2",
            DegradeConfig {
                noise2: full.noise2.clone(),
                ..base.clone()
            },
        ),
        (
            "jpeg2",
            DegradeConfig {
                jpeg2: full.jpeg2,
                ..base.clone()
            },
        ),
        (
            "sinc",
            DegradeConfig {
                final_sinc_prob: 1.0,
                ..base.clone()
            },
        ),
        (
            "antialias",
            DegradeConfig {
                antialias: true,
                ..base.clone()
            },
        ),
    ];
    for (name, cfg) in stages {
        // Some draws are legitimately no-ops (a "keep" resize), so a stage
        // counts as active once any of a few seeds changes the output.
        let outputs: Vec<Tensor> = (1..5).map(|s| run(s, &cfg)).collect();
        outputs.iter().for_each(assert_valid_lr);
        assert!(outputs.iter().any(|o| !o.equal(&plain)), "stage {name} had no effect");
    }
}

/// `hr()` with fine detail on top (stripes of 3 px and a checkerboard), so
/// that blur, aliasing and JPEG all show.
fn detailed_hr() -> Tensor {
    let y = Tensor::arange(96, (Kind::Float, Device::Cpu)).view([96, 1]);
    let x = Tensor::arange(80, (Kind::Float, Device::Cpu)).view([1, 80]);
    let stripes = ((&x * 2.1).sin() * 0.15).expand([96, 80], false);
    let checks = ((&x + &y).remainder(2.0) - 0.5) * 0.1;
    (hr() * 0.7 + (stripes + checks).unsqueeze(0).unsqueeze(0)).clamp(0.0, 1.0)
}

#[test]
fn light_lrs_are_valid_seeded_and_close_to_bicubic() {
    let (light, real) = (DegradeConfig::light(), DegradeConfig::realesrgan());
    let hr = detailed_hr();
    let lr = |seed: u64, cfg: &DegradeConfig| degrade(&hr, 4, &mut ChaCha8Rng::seed_from_u64(seed), cfg).unwrap();
    let a = lr(5, &light);
    assert!(a.equal(&lr(5, &light)), "same seed, different LR");
    assert_eq!((6..10).filter(|s| !lr(*s, &light).equal(&a)).count(), 4, "another seed gave the same LR");
    // Mild, measured: mean absolute difference to the benchmark LR over 16 seeds.
    let bicubic = bicubic_x4_lr(&hr).unwrap();
    let gap = |cfg: &DegradeConfig| {
        (0..16).map(|s| (lr(s, cfg) - &bicubic).abs().mean(Kind::Double).double_value(&[])).sum::<f64>() / 16.0
    };
    let (light_gap, real_gap) = (gap(&light), gap(&real));
    eprintln!("mean |LR - bicubic LR|: light {light_gap:.4}, Real-ESRGAN {real_gap:.4}");
    assert!(light_gap < real_gap / 2.0, "light {light_gap} not much closer to bicubic than Real-ESRGAN {real_gap}");
    for seed in 0..16 {
        assert_valid_lr(&lr(seed, &light));
    }
}

#[test]
fn the_antialiased_shrink_refuses_a_random_rescale() {
    let cfg = DegradeConfig { resize1: DegradeConfig::realesrgan().resize1, ..DegradeConfig::light() };
    let e = degrade(&hr(), 4, &mut ChaCha8Rng::seed_from_u64(0), &cfg).unwrap_err();
    assert!(e.to_string().contains("antialiased"), "{e}");
}

#[test]
fn rejects_images_too_small_for_the_blurs() {
    let tiny = Tensor::rand([1, 3, 40, 40], (Kind::Float, Device::Cpu));
    assert!(degrade(
        &tiny,
        4,
        &mut ChaCha8Rng::seed_from_u64(0),
        &DegradeConfig::realesrgan()
    )
    .is_err());
}

#[test]
fn config_round_trips_through_json() {
    for cfg in [DegradeConfig::realesrgan(), DegradeConfig::light()] {
        let text = serde_json::to_string(&cfg).unwrap();
        assert_eq!(serde_json::from_str::<DegradeConfig>(&text).unwrap(), cfg);
    }
    // Configs written before the light degradation have no `antialias`.
    let old = serde_json::to_string(&DegradeConfig::realesrgan()).unwrap().replace(",\"antialias\":false", "");
    assert!(!old.contains("antialias"), "{old}");
    assert_eq!(serde_json::from_str::<DegradeConfig>(&old).unwrap(), DegradeConfig::realesrgan());
}

#[test]
fn bicubic_lr_is_a_quarter_and_8_bit() {
    let lr = bicubic_x4_lr(&hr().narrow(2, 0, 94)).unwrap();
    assert_eq!(lr.size(), [1, 3, 23, 20], "HR is cropped to a multiple of 4");
    let steps = &lr * 255.0;
    assert!(
        (&steps - steps.round()).abs().max().double_value(&[]) < 1e-4,
        "not 8-bit"
    );
}

#[test]
fn file_seeds_depend_on_seed_and_name_only() {
    assert_eq!(file_seed(3, "a.png"), file_seed(3, "a.png"));
    assert_ne!(file_seed(3, "a.png"), file_seed(4, "a.png"));
    assert_ne!(file_seed(3, "a.png"), file_seed(3, "b.png"));
}

#[test]
fn degrade_file_writes_the_same_png_for_the_same_seed() {
    let dir = tempfile::tempdir().unwrap();
    let (bytes, w, h) = super::jpeg::to_rgb8(&hr()).unwrap();
    let input = dir.path().join("hr.png");
    image::save_buffer(&input, &bytes, w, h, image::ColorType::Rgb8).unwrap();
    let (a, b) = (dir.path().join("a.png"), dir.path().join("b.png"));
    for kind in [Degradation::Realesrgan, Degradation::Light] {
        degrade_file(&input, &a, 9, kind, 4).unwrap();
        degrade_file(&input, &b, 9, kind, 4).unwrap();
        assert_eq!(std::fs::read(&a).unwrap(), std::fs::read(&b).unwrap(), "{kind:?}");
        assert_eq!(image::image_dimensions(&a).unwrap(), (20, 24));
    }
    degrade_file(&input, &b, 9, Degradation::Bicubic, 4).unwrap();
    assert_eq!(image::image_dimensions(&b).unwrap(), (20, 24));
    assert!(degrade_file(&dir.path().join("missing.png"), &b, 9, Degradation::Realesrgan, 4).is_err());
}
