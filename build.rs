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
use std::path::Path;

fn main() {
    println!("cargo:rerun-if-env-changed=DEP_TCH_LIBTORCH_LIB");
    let Ok(dir) = std::env::var("DEP_TCH_LIBTORCH_LIB") else {
        return;
    };
    println!("cargo:rustc-link-arg=-Wl,-rpath,{dir}");
    for lib in ["torch_cuda", "c10_cuda"] {
        if Path::new(&dir).join(format!("lib{lib}.so")).exists() {
            println!("cargo:rustc-link-arg=-Wl,--no-as-needed,-l{lib},--as-needed");
        }
    }
}
