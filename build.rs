//! Bakes libtorch's folder into the binaries' rpath, so `patchscaler` and the
//! test binaries start without LD_LIBRARY_PATH on the machine that built them.
fn main() {
    if let Ok(dir) = std::env::var("DEP_TCH_LIBTORCH_LIB") {
        println!("cargo:rustc-link-arg=-Wl,-rpath,{dir}");
    }
    println!("cargo:rerun-if-env-changed=DEP_TCH_LIBTORCH_LIB");
}
