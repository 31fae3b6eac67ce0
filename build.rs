//! Where the binaries find libtorch, and the C++ shims they call.
//!
//! The rpath is relative only: `$ORIGIN/../lib` (the release bundle's
//! `bin/` beside its `lib/`; also the test binaries in `target/<profile>/deps`)
//! and `$ORIGIN/lib` (`target/<profile>/patchscaler`). So that the build
//! machine needs no LD_LIBRARY_PATH, `target/<profile>/lib` is made a link to
//! the libtorch the build used: the binary carries no path of this machine,
//! and a copied binary finds libraries only beside itself (the bundle's
//! layout), never in a build folder that may be gone.
//!
//! libtorch_cuda is not linked: nothing calls it directly (tch's own
//! `-ltorch_cuda` is dropped by `--as-needed`), and linking it made every
//! CPU run need cuBLAS, cuDNN, NCCL and the rest. `src/device/cuda.rs` loads
//! it when a CUDA device is asked for.
//!
//! It also compiles `csrc/` against the same libtorch's headers: the
//! multi-tensor optimizer operators that tch does not wrap
//! (`src/train/multi_tensor.rs`) and the CUDA backend's probe
//! (`src/device/cuda.rs`).
use std::path::{Path, PathBuf};

fn main() {
    println!("cargo:rerun-if-env-changed=DEP_TCH_LIBTORCH_LIB");
    let Ok(dir) = std::env::var("DEP_TCH_LIBTORCH_LIB") else {
        return;
    };
    println!("cargo:rustc-link-arg=-Wl,-rpath,$ORIGIN/../lib:$ORIGIN/lib");
    link_profile_lib(Path::new(&dir));
    compile_shims(Path::new(&dir));
}

/// `target/<profile>/lib` -> libtorch's folder (replaced when the build's
/// libtorch changes). A failure costs only the LD_LIBRARY_PATH-free start,
/// so it is a warning.
fn link_profile_lib(lib_dir: &Path) {
    let out = PathBuf::from(std::env::var("OUT_DIR").unwrap());
    // OUT_DIR is <target>/<profile>/build/<package>-<hash>/out.
    let Some(profile) = out.ancestors().nth(3) else { return };
    let link = profile.join("lib");
    let target = lib_dir.canonicalize().unwrap_or_else(|_| lib_dir.to_path_buf());
    if std::fs::read_link(&link).is_ok_and(|t| t == target) {
        return;
    }
    let _ = std::fs::remove_file(&link);
    if let Err(e) = std::os::unix::fs::symlink(&target, &link) {
        println!("cargo:warning=cannot link {} -> {}: {e}", link.display(), target.display());
    }
}

/// The C++ shims, built as tch's own `libtch` is (torch-sys's build script):
/// C++17, position-independent, the libtorch headers beside its `lib`. The
/// wheels of PyTorch 2.11 (the project's pinned version) use the C++11 ABI.
/// The file-prefix maps keep this machine's paths out of the assertion
/// messages that libtorch's headers expand with `__FILE__`.
fn compile_shims(lib_dir: &Path) {
    println!("cargo:rerun-if-changed=csrc/multi_tensor.cpp");
    println!("cargo:rerun-if-changed=csrc/cuda_probe.cpp");
    let torch = lib_dir.join("..");
    let include = torch.join("include");
    let root = std::env::var("CARGO_MANIFEST_DIR").unwrap();
    let mut build = cc::Build::new();
    build
        .cpp(true)
        .pic(true)
        .warnings(false)
        .include(&include)
        .include(include.join("torch").join("csrc").join("api").join("include"))
        .flag("-std=c++17")
        .flag("-D_GLIBCXX_USE_CXX11_ABI=1")
        .flag(format!("-ffile-prefix-map={}=libtorch", torch.display()))
        .flag(format!("-ffile-prefix-map={root}=."));
    if let Ok(real) = torch.canonicalize() {
        build.flag(format!("-ffile-prefix-map={}=libtorch", real.display()));
    }
    build
        .file("csrc/multi_tensor.cpp")
        .file("csrc/cuda_probe.cpp")
        .compile("patchscaler_shims");
}
