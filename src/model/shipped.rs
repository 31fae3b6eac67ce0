//! The shipped model's folder, found at run time when no `--model` (or
//! `PATCHSCALER_MODEL`) names one: `models/default` in the first of the
//! executable's parent folders that has it. The first parent is the release
//! bundle's root (`bin/patchscaler` beside `models/`); two and three up are the
//! source tree of a build (`target/<profile>/patchscaler`,
//! `target/<profile>/deps/...`). Nothing of the build machine is compiled
//! in, so a moved bundle or checkout still finds its own model.

use anyhow::{bail, Result};
use std::path::{Path, PathBuf};

/// Folders above the executable's that are searched.
const LEVELS: usize = 3;

pub fn default_dir() -> Result<PathBuf> {
    let exe = std::env::current_exe()?;
    let tried = candidates(&exe);
    if let Some(dir) = tried.iter().find(|d| d.join("model.toml").is_file()) {
        return Ok(dir.clone());
    }
    let list: Vec<String> = tried.iter().map(|d| d.display().to_string()).collect();
    bail!(
        "no model given and no shipped model found (looked in {}); give --model DIR or set PATCHSCALER_MODEL",
        list.join(", ")
    )
}

/// `<parent>/models/default` for the executable's first `LEVELS` parents.
fn candidates(exe: &Path) -> Vec<PathBuf> {
    exe.ancestors().skip(2).take(LEVELS).map(|p| p.join("models").join("default")).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_bundle_comes_before_the_source_tree() {
        let c = candidates(Path::new("/opt/ps/target/release/deps/t"));
        let c: Vec<_> = c.iter().map(|p| p.to_str().unwrap()).collect();
        assert_eq!(c, ["/opt/ps/target/release/models/default", "/opt/ps/target/models/default", "/opt/ps/models/default"]);
        assert_eq!(candidates(Path::new("/b/bin/patchscaler"))[0], Path::new("/b/models/default"));
    }

    #[test]
    fn a_test_binary_finds_the_source_trees_model() {
        let d = default_dir().unwrap();
        assert!(d.join("model.toml").is_file() && d.ends_with("models/default"), "{}", d.display());
    }
}
