//! Where each output goes: what `-o` (and `--qmap`) means for a batch, and
//! one distinct output name per input.
//!
//! Rules (also in `upscale --help` and the README):
//! - an existing folder, or a path ending in `/`, is a folder;
//! - one input file and a path with an image extension: that file;
//! - several inputs (or a folder input) and a path without an extension: a
//!   folder (created if missing);
//! - anything else is an error: an unknown extension (never silently a
//!   folder), a file name for several inputs, no extension for one input.
//!
//! In a folder, `x.png` becomes `x_x4.png`. Inputs that share a stem (`x.png`
//! and `x.jpg`) keep their extension in the name (`x_png_x4.png`,
//! `x_jpg_x4.png`); inputs with the same file name from different folders
//! cannot be told apart that way and are refused, both named.

use crate::imageio::save::{output_format, OUTPUT_EXTS};
use anyhow::{bail, Result};
use std::collections::HashMap;
use std::path::{Path, PathBuf};

/// What `-o` or `--qmap` names.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Target {
    File(PathBuf),
    Folder(PathBuf),
}

/// Applies the rules above to `flag`'s value `path`; `one_file` says the
/// batch is a single input file (not a folder).
pub fn resolve(flag: &str, path: &Path, one_file: bool) -> Result<Target> {
    let text = path.as_os_str().to_string_lossy();
    if text.ends_with('/') || path.is_dir() {
        return Ok(Target::Folder(path.to_path_buf()));
    }
    match (path.extension().is_some(), one_file) {
        (true, true) => {
            output_format(path)?;
            Ok(Target::File(path.to_path_buf()))
        }
        (true, false) => {
            if output_format(path).is_err() {
                bail!(
                    "{flag} {}: unknown extension (a file needs one of .{}; end a folder's name with /)",
                    path.display(),
                    OUTPUT_EXTS.join(", .")
                );
            }
            bail!(
                "{flag} {} names one file, but there are several inputs (or a folder): give a folder, e.g. {}/",
                path.display(),
                path.with_extension("").display()
            )
        }
        (false, true) => bail!(
            "{flag} {}: no extension; give {}.png for a file or {}/ for a folder",
            path.display(),
            path.display(),
            path.display()
        ),
        (false, false) => Ok(Target::Folder(path.to_path_buf())),
    }
}

/// The name stem each input's outputs get in a folder, or why it has none.
pub fn output_stems(inputs: &[PathBuf]) -> Vec<Result<String, String>> {
    let stem = |p: &Path| {
        p.file_stem().map(|s| s.to_string_lossy().into_owned()).unwrap_or_else(|| "image".into())
    };
    let ext = |p: &Path| p.extension().map(|e| e.to_string_lossy().into_owned()).unwrap_or_default();
    let mut by_stem: HashMap<String, usize> = HashMap::new();
    for p in inputs {
        *by_stem.entry(stem(p)).or_default() += 1;
    }
    let names: Vec<String> = inputs
        .iter()
        .map(|p| match by_stem[&stem(p)] {
            1 => stem(p),
            _ => format!("{}_{}", stem(p), ext(p)),
        })
        .collect();
    names
        .iter()
        .enumerate()
        .map(|(i, n)| match names.iter().enumerate().find(|&(j, m)| j != i && m == n) {
            Some((j, _)) => Err(format!(
                "{}: same file name as {}, so their outputs would overwrite each other (upscale them separately)",
                inputs[i].display(),
                inputs[j].display()
            )),
            None => Ok(n.clone()),
        })
        .collect()
}

/// "4" for x4, "2.5" for x2.5.
pub fn scale_suffix(scale: f64) -> String {
    if scale.fract() == 0.0 {
        format!("{}", scale as i64)
    } else {
        format!("{scale}")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn same_stems_keep_their_extension_and_same_names_are_refused() {
        let inputs: Vec<PathBuf> = ["d1/x.png", "d1/x.jpg", "d2/x.png", "d1/y.png"].iter().map(PathBuf::from).collect();
        let s = output_stems(&inputs);
        assert_eq!(s[1], Ok("x_jpg".to_string()));
        assert_eq!(s[3], Ok("y".to_string()));
        let e = s[0].clone().unwrap_err();
        assert!(e.contains("d1/x.png") && e.contains("d2/x.png"), "{e}");
        assert!(s[2].is_err());
    }

    #[test]
    fn the_o_rules() {
        let t = |p: &str, one| resolve("-o", Path::new(p), one);
        assert_eq!(t("a.png", true).unwrap(), Target::File("a.png".into()));
        assert_eq!(t("out/", true).unwrap(), Target::Folder("out/".into()));
        assert_eq!(t("out", false).unwrap(), Target::Folder("out".into()));
        for (p, one, says) in [
            ("out.gif", true, "unknown output extension .gif"),
            ("out.pgn", false, "unknown extension"),
            ("out", true, "no extension"),
            ("two.png", false, "several inputs"),
        ] {
            let e = format!("{:#}", t(p, one).unwrap_err());
            assert!(e.contains(says) && e.contains(p), "{p}: {e}");
        }
    }
}
