//! Checked loading and saving of a part's weights.
//!
//! Loading compares every tensor's name and shape with the network the config
//! builds and reports all mismatches at once: a user with a wrong file sees
//! the whole problem in one run, not one key per attempt.

use anyhow::{bail, Context, Result};
use std::collections::{BTreeMap, BTreeSet};
use std::path::Path;
use tch::{nn::VarStore, Kind, Tensor};

/// Loads `path` into `vs`. `rename` maps a file key to the network's key
/// (for legacy layouts); it returns `None` to keep the key unchanged.
pub fn load_checked(vs: &mut VarStore, path: &Path, rename: &dyn Fn(&str) -> Option<String>) -> Result<()> {
    if !path.exists() {
        bail!("{}: model file is missing", path.display());
    }
    let pairs = Tensor::read_safetensors(path)
        .map_err(|e| anyhow::anyhow!("{}: not a readable safetensors file: {e}", path.display()))?;
    let file: BTreeMap<String, Tensor> = pairs.into_iter().map(|(k, t)| (rename(&k).unwrap_or(k), t)).collect();
    let vars = vs.variables();
    let mut problems = Vec::new();
    let want: BTreeSet<&String> = vars.keys().collect();
    for k in want.iter().filter(|k| !file.contains_key(**k)) {
        problems.push(format!("missing tensor `{k}` (shape {:?})", vars[*k].size()));
    }
    for k in file.keys().filter(|k| !vars.contains_key(*k)) {
        problems.push(format!("unexpected tensor `{k}`"));
    }
    for (k, v) in &vars {
        if let Some(t) = file.get(k) {
            if t.size() != v.size() {
                problems.push(format!("tensor `{k}` has shape {:?}, the config needs {:?}", t.size(), v.size()));
            }
        }
    }
    if !problems.is_empty() {
        bail!(
            "{}: does not match the model config ({} problem(s)):\n  {}",
            path.display(),
            problems.len(),
            problems.join("\n  ")
        );
    }
    tch::no_grad(|| {
        for (k, mut v) in vars {
            let src = file[&k].to_kind(v.kind()).to_device(v.device());
            v.copy_(&src);
        }
    });
    Ok(())
}

/// Saves `vs` to `path` atomically, in f16 when `half` (the shipped models),
/// else in the store's own precision (checkpoints).
pub fn save(vs: &VarStore, path: &Path, half: bool) -> Result<()> {
    let mut named: Vec<(String, Tensor)> = vs
        .variables()
        .into_iter()
        .map(|(k, v)| {
            let t = if half { v.to_kind(Kind::Half) } else { v.shallow_clone() };
            (k, t.to_device(tch::Device::Cpu).contiguous())
        })
        .collect();
    named.sort_by(|a, b| a.0.cmp(&b.0));
    save_tensors(&named, path)
}

/// Writes named tensors to a safetensors file through a temporary file, so a
/// crash never leaves a half-written file under the final name.
pub fn save_tensors(named: &[(String, Tensor)], path: &Path) -> Result<()> {
    let tmp = crate::atomic::temp_file_in(crate::atomic::parent_dir(path), ".safetensors")?;
    Tensor::write_safetensors(named, tmp.path()).with_context(|| format!("{}: cannot write", path.display()))?;
    tmp.persist(path).map_err(|e| anyhow::anyhow!("{}: cannot move into place: {}", path.display(), e.error))?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use tch::nn;

    fn store() -> VarStore {
        let vs = VarStore::new(tch::Device::Cpu);
        let root = vs.root();
        let _ = nn::linear(&root / "a", 3, 2, Default::default());
        let _ = nn::conv2d(&root / "b", 2, 4, 3, Default::default());
        vs
    }

    #[test]
    fn round_trip_and_all_mismatches_reported() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("w.safetensors");
        let vs = store();
        save(&vs, &p, false).unwrap();
        let mut other = store();
        load_checked(&mut other, &p, &|_| None).unwrap();
        for (k, v) in vs.variables() {
            assert!(v.equal(&other.variables()[&k]), "{k} differs after round trip");
        }
        // A file with one wrong shape, one missing and one extra tensor.
        let bad = dir.path().join("bad.safetensors");
        let named = vec![
            ("a.weight".to_string(), Tensor::zeros([2, 5], (Kind::Float, tch::Device::Cpu))),
            ("a.bias".to_string(), Tensor::zeros([2], (Kind::Float, tch::Device::Cpu))),
            ("b.weight".to_string(), Tensor::zeros([4, 2, 3, 3], (Kind::Float, tch::Device::Cpu))),
            ("zzz".to_string(), Tensor::zeros([1], (Kind::Float, tch::Device::Cpu))),
        ];
        save_tensors(&named, &bad).unwrap();
        let err = load_checked(&mut other, &bad, &|_| None).unwrap_err().to_string();
        assert!(err.contains("bad.safetensors"), "{err}");
        assert!(err.contains("missing tensor `b.bias`"), "{err}");
        assert!(err.contains("unexpected tensor `zzz`"), "{err}");
        assert!(err.contains("tensor `a.weight` has shape [2, 5]"), "{err}");
        assert!(err.contains("3 problem(s)"), "{err}");
    }

    #[test]
    fn missing_and_corrupt_files_are_named() {
        let dir = tempfile::tempdir().unwrap();
        let mut vs = store();
        let missing = dir.path().join("none.safetensors");
        let e = load_checked(&mut vs, &missing, &|_| None).unwrap_err().to_string();
        assert!(e.contains("none.safetensors") && e.contains("missing"), "{e}");
        let junk = dir.path().join("junk.safetensors");
        std::fs::write(&junk, b"not a tensor file").unwrap();
        let e = load_checked(&mut vs, &junk, &|_| None).unwrap_err().to_string();
        assert!(e.contains("junk.safetensors") && e.contains("not a readable"), "{e}");
    }

    #[test]
    fn half_save_loads_back_into_f32() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("h.safetensors");
        let vs = store();
        save(&vs, &p, true).unwrap();
        let mut other = store();
        load_checked(&mut other, &p, &|_| None).unwrap();
        let a = &vs.variables()["a.weight"];
        let b = &other.variables()["a.weight"];
        assert_eq!(b.kind(), Kind::Float);
        assert!((a - b).abs().max().double_value(&[]) < 1e-3);
    }
}
