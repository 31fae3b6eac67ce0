//! The release bundle end to end (`scripts/release.sh`, packing this build's
//! binary): unpacked into a temporary folder and run with an empty
//! environment, its upscale of the sample is the in-tree run's bytes. And
//! what the binaries carry: an rpath relative to `$ORIGIN` only, no path of
//! the build machine, no CUDA library among what they load.

use std::path::{Path, PathBuf};
use std::process::Command;

mod common;
use common::{bin, text};

const ROOT: &str = env!("CARGO_MANIFEST_DIR");
const EXE: &str = env!("CARGO_BIN_EXE_patchscaler");
/// CUDA libraries that libtorch_cuda needs; none may be loaded at start-up.
/// (libcudart and libcupti may: the PyPI wheel's libtorch_cpu links them.)
const CUDA_LIBS: [&str; 10] =
    ["torch_cuda", "c10_cuda", "cublas", "cudnn", "nccl", "cufft", "cusparse", "curand", "nvshmem", "cusolver"];

fn run(c: &mut Command) -> String {
    let o = c.output().unwrap();
    assert!(o.status.success(), "{c:?}: {}", text(&o));
    String::from_utf8_lossy(&o.stdout).into_owned()
}

fn runpath(exe: &Path) -> String {
    let d = run(Command::new("readelf").arg("-d").arg(exe));
    let line = d.lines().find(|l| l.contains("(RUNPATH)") || l.contains("(RPATH)")).expect(&d);
    line.split('[').nth(1).unwrap().trim_end_matches(']').to_string()
}

fn ldd(exe: &Path) -> String {
    run(Command::new("env").arg("-i").arg("ldd").arg(exe))
}

/// Build-machine paths: this checkout, and any venv, cargo or rustup home.
fn build_paths() -> Vec<String> {
    let mut p = vec![ROOT.to_string(), "site-packages".into(), "/.cargo/registry".into(), "/.rustup/".into()];
    p.extend(std::env::var("LIBTORCH").ok());
    p
}

fn contains(hay: &[u8], needle: &str) -> bool {
    hay.windows(needle.len()).any(|w| w == needle.as_bytes())
}

#[test]
fn the_built_binary_loads_no_cuda_library_and_has_a_relative_rpath() {
    assert_eq!(runpath(Path::new(EXE)), "$ORIGIN/../lib:$ORIGIN/lib");
    let l = ldd(Path::new(EXE));
    assert!(!l.contains("not found"), "starts without LD_LIBRARY_PATH:\n{l}");
    for lib in CUDA_LIBS {
        assert!(!l.contains(lib), "{lib} in\n{l}");
    }
}

#[test]
fn the_bundle_runs_with_an_empty_environment_and_gives_the_in_tree_bytes() {
    let d = tempfile::tempdir().unwrap();
    let dist = d.path().join("dist");
    let o = Command::new(format!("{ROOT}/scripts/release.sh"))
        .env("PS_BIN", EXE)
        .env("DIST", &dist)
        .env("ZSTD_LEVEL", "1")
        .output()
        .unwrap();
    assert!(o.status.success(), "{}", text(&o));
    let tarball: PathBuf = std::fs::read_dir(&dist).unwrap().next().unwrap().unwrap().path();
    let name = tarball.file_name().unwrap().to_str().unwrap();
    assert_eq!(name, format!("patchscaler-{}-linux-x86_64.tar.zst", env!("CARGO_PKG_VERSION")));
    let unpacked = d.path().join("unpacked");
    std::fs::create_dir(&unpacked).unwrap();
    run(Command::new("tar").arg("-I").arg("zstd").arg("-xf").arg(&tarball).arg("-C").arg(&unpacked));
    let root = unpacked.canonicalize().unwrap().join(name.trim_end_matches(".tar.zst"));
    let exe = root.join("bin/patchscaler");

    assert_eq!(runpath(&exe), "$ORIGIN/../lib:$ORIGIN/lib");
    let bytes = std::fs::read(&exe).unwrap();
    for p in build_paths() {
        assert!(!contains(&bytes, &p), "the bundle's binary contains {p:?}");
    }
    let l = ldd(&exe);
    for lib in l.lines().filter_map(|l| l.split("=> ").nth(1)) {
        let lib = std::fs::canonicalize(lib.split(" (").next().unwrap()).unwrap();
        let lib = lib.to_str().unwrap();
        let system = ["libc.so", "libm.so", "libdl.so", "librt.so", "libpthread.so", "libutil.so", "libstdc++.so", "libgcc_s.so"];
        assert!(lib.starts_with(root.join("lib").to_str().unwrap()) || system.iter().any(|s| lib.contains(s)), "{lib} in\n{l}");
    }
    for f in ["README.md", "LICENSE", "licences/libtorch-LICENSE", "licences/rust-crates.txt", "licences/data/README.md", "models/default/model.toml"] {
        assert!(root.join(f).is_file(), "{f} missing");
    }

    let bundled = root.join("sample_x4.png");
    let o = Command::new("env")
        .args(["-i", "PATH=/usr/bin:/bin", "./bin/patchscaler", "upscale", "sample.png", "-o", "sample_x4.png"])
        .current_dir(&root)
        .output()
        .unwrap();
    assert!(o.status.success(), "{}", text(&o));
    let in_tree = d.path().join("in_tree.png");
    let o = bin().arg("upscale").arg(format!("{ROOT}/assets/sample.png")).arg("-o").arg(&in_tree).env_remove("PATCHSCALER_MODEL").output().unwrap();
    assert!(o.status.success(), "{}", text(&o));
    assert!(std::fs::read(&bundled).unwrap() == std::fs::read(&in_tree).unwrap(), "the bundle's output differs from the in-tree run's");

    // Started from elsewhere, it still finds its model and says what CUDA lacks.
    let o = Command::new("env").args(["-i", "PATH=/usr/bin:/bin"]).arg(&exe).arg("devices").current_dir(d.path()).output().unwrap();
    let t = text(&o);
    assert!(o.status.success() && t.contains("cuda: not loaded") && t.contains("libtorch_cuda.so"), "{t}");
}
