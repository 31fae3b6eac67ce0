//! CUDA only when asked for, on any machine: `devices` and `--device cuda`
//! load libtorch_cuda and say what they found. Without the CUDA libraries
//! (the light set-up) the error names the missing library; with them (the
//! full set-up, or PATCHSCALER_TEST_CUDA_LIB naming a full torch/lib) the
//! backend registers, which needs no GPU: `devices` reports the CUDA runtime
//! version that only the registered hooks know.

mod common;
use common::{bin, text, tiny_model};

fn devices(cuda_lib: Option<&str>) -> String {
    let mut c = bin();
    c.arg("devices");
    if let Some(l) = cuda_lib {
        c.env("PATCHSCALER_CUDA_LIB", l);
    }
    let o = c.output().unwrap();
    assert!(o.status.success(), "{}", text(&o));
    text(&o)
}

/// The library a loader error names ("libfoo.so.1: cannot open shared object file").
fn names_a_missing_library(t: &str) -> bool {
    t.split_whitespace().any(|w| w.contains(".so") && w.ends_with(':')) && t.contains("cannot open shared object file")
}

fn cuda_line(t: &str) -> &str {
    t.lines().find(|l| l.starts_with("cuda")).expect(t)
}

#[test]
fn devices_says_what_was_found_and_device_cuda_says_what_is_missing() {
    let t = devices(None);
    let line = cuda_line(&t);
    assert!(t.lines().any(|l| l.starts_with("libtorch: /")), "{t}");
    if line.starts_with("cuda: not loaded") {
        assert!(names_a_missing_library(line), "{line}");
        let d = tempfile::tempdir().unwrap();
        let model = tiny_model(d.path());
        let input = d.path().join("in.png");
        common::rgb_image(8, 8).save(&input).unwrap();
        let o = bin().arg("upscale").arg(&input).arg("-o").arg(d.path().join("o.png")).arg("--model").arg(&model).args(["--device", "cuda"]).output().unwrap();
        let e = text(&o);
        assert!(!o.status.success() && e.contains("--device cuda: cannot load libtorch's CUDA backend") && names_a_missing_library(&e), "{e}");
    } else {
        assert!(line.contains("loaded (CUDA runtime 1"), "{line}");
    }
}

#[test]
fn a_full_torch_folder_registers_the_cuda_backend_without_a_gpu() {
    let Ok(lib) = std::env::var("PATCHSCALER_TEST_CUDA_LIB") else {
        eprintln!("PATCHSCALER_TEST_CUDA_LIB unset: the registration is checked only where the set-up is full");
        return;
    };
    let t = devices(Some(&lib));
    let line = cuda_line(&t);
    assert!(line.contains("libtorch_cuda.so loaded (CUDA runtime 1"), "{t}");
}

#[test]
fn a_folder_without_libtorch_cuda_is_named() {
    let d = tempfile::tempdir().unwrap();
    let t = devices(Some(d.path().to_str().unwrap()));
    let line = cuda_line(&t);
    assert!(line.contains("not loaded") && line.contains(d.path().to_str().unwrap()) && line.contains("libtorch_cuda.so"), "{line}");
}
