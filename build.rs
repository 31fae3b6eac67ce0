//! Bakes libtorch's folder into the binaries' rpath, so `patchscaler` and the
//! test binaries start without LD_LIBRARY_PATH on the machine that built them,
//! and links `libtorch_cuda.so` whenever that libtorch ships it.
//!
//! Why the explicit CUDA link: nothing in our code (nor tch's) calls a symbol
//! of `libtorch_cuda.so`, so with `--as-needed` (the default of Debian's and
//! most linkers) it is dropped from NEEDED; then the CUDA backend never
//! registers at load time and `Cuda::is_available()` is false even on a
//! GPU machine (tch-rs documents this). `--no-as-needed` keeps it. The same
//! binary still runs on a machine without a GPU: the library loads, and
//! libtorch reports zero CUDA devices.
//!
//! It also compiles `csrc/multi_tensor.cpp` against the same libtorch's
//! headers: the multi-tensor optimizer operators (fused AdamW, foreach lerp
//! and norm) that tch does not wrap, called by `src/train/multi_tensor.rs`.
use std::path::Path;

fn main() {
    println!("cargo:rerun-if-env-changed=DEP_TCH_LIBTORCH_LIB");
    let Ok(dir) = std::env::var("DEP_TCH_LIBTORCH_LIB") else {
        return;
    };
    println!("cargo:rustc-link-arg=-Wl,-rpath,{dir}");
    compile_multi_tensor(Path::new(&dir));
    for lib in ["torch_cuda", "c10_cuda"] {
        if Path::new(&dir).join(format!("lib{lib}.so")).exists() {
            println!("cargo:rustc-link-arg=-Wl,--no-as-needed,-l{lib},--as-needed");
        }
    }
}

/// The C++ shims, built as tch's own `libtch` is (torch-sys's build script):
/// C++17, position-independent, the libtorch headers beside its `lib`. The
/// wheels of PyTorch 2.11 (the project's pinned version) use the C++11 ABI.
fn compile_multi_tensor(lib_dir: &Path) {
    println!("cargo:rerun-if-changed=csrc/multi_tensor.cpp");
    let include = lib_dir.join("..").join("include");
    cc::Build::new()
        .cpp(true)
        .pic(true)
        .warnings(false)
        .include(&include)
        .include(include.join("torch").join("csrc").join("api").join("include"))
        .flag("-std=c++17")
        .flag("-D_GLIBCXX_USE_CXX11_ABI=1")
        .file("csrc/multi_tensor.cpp")
        .compile("patchscaler_multi_tensor");
}
