//! Access to the reference vectors in `../shared/conformance` for tests.
//!
//! The folder is found through `PATCHSCALER_CONFORMANCE`, else next to the
//! repository. A test that cannot find it fails loudly unless
//! `PATCHSCALER_ALLOW_MISSING_CONFORMANCE=1` is set, in which case it prints
//! a warning on stderr and passes; CI never sets that variable.

use std::collections::HashMap;
use std::path::PathBuf;
use tch::Tensor;

/// The conformance folder, or `None` (after a loud warning) when it is
/// missing and skipping was explicitly allowed.
pub fn dir() -> Option<PathBuf> {
    let p = std::env::var_os("PATCHSCALER_CONFORMANCE")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../shared/conformance"));
    if p.join("README.md").exists() {
        return Some(p);
    }
    if std::env::var("PATCHSCALER_ALLOW_MISSING_CONFORMANCE").as_deref() == Ok("1") {
        eprintln!("WARNING: conformance folder {} is missing; SKIPPING a conformance test", p.display());
        return None;
    }
    panic!("conformance folder {} is missing (set PATCHSCALER_CONFORMANCE)", p.display());
}

/// All tensors of one safetensors file in the kit, by name.
pub fn load(rel: &str) -> Option<HashMap<String, Tensor>> {
    let path = dir()?.join(rel);
    let pairs = Tensor::read_safetensors(&path)
        .unwrap_or_else(|e| panic!("reading {}: {e}", path.display()));
    Some(pairs.into_iter().collect())
}

/// A JSON file of the kit.
pub fn json(rel: &str) -> Option<serde_json::Value> {
    let path = dir()?.join(rel);
    let text = std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("reading {}: {e}", path.display()));
    Some(serde_json::from_str(&text).unwrap_or_else(|e| panic!("parsing {}: {e}", path.display())))
}

/// Largest absolute difference, in f64.
pub fn max_abs_diff(a: &Tensor, b: &Tensor) -> f64 {
    assert_eq!(a.size(), b.size(), "shape mismatch");
    (a.to_kind(tch::Kind::Double) - b.to_kind(tch::Kind::Double)).abs().max().double_value(&[])
}
