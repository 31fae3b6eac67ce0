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
use crate::imageio::shown;
use anyhow::{bail, Result};
use std::collections::HashMap;
use std::ffi::{OsStr, OsString};
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
                    shown(path),
                    OUTPUT_EXTS.join(", .")
                );
            }
            bail!(
                "{flag} {} names one file, but there are several inputs (or a folder): give a folder, e.g. {}/",
                shown(path),
                shown(&path.with_extension(""))
            )
        }
        (false, true) => bail!(
            "{flag} {}: no extension; give {}.png for a file or {}/ for a folder",
            shown(path),
            shown(path),
            shown(path)
        ),
        (false, false) => Ok(Target::Folder(path.to_path_buf())),
    }
}

/// The name stem each input's outputs get in a folder, or why it has none.
/// Stems are the file names' own bytes (`OsString`), never a lossy copy, so
/// that names that are not UTF-8 (`caf\xe9.png`, `caf\xe8.png`) stay two
/// names.
pub fn output_stems(inputs: &[PathBuf]) -> Vec<Result<OsString, String>> {
    let stem = |p: &Path| p.file_stem().unwrap_or(OsStr::new("image")).to_os_string();
    let mut by_stem: HashMap<OsString, usize> = HashMap::new();
    for p in inputs {
        *by_stem.entry(stem(p)).or_default() += 1;
    }
    let names: Vec<OsString> = inputs
        .iter()
        .map(|p| match by_stem[&stem(p)] {
            1 => stem(p),
            _ => {
                let mut n = stem(p);
                n.push("_");
                n.push(p.extension().unwrap_or_default());
                n
            }
        })
        .collect();
    names
        .iter()
        .enumerate()
        .map(|(i, n)| match names.iter().enumerate().find(|&(j, m)| j != i && m == n) {
            Some((j, _)) => Err(format!(
                "{}: same file name as {}, so their outputs would overwrite each other (upscale them separately)",
                shown(&inputs[i]),
                shown(&inputs[j])
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
        assert_eq!(s[1], Ok("x_jpg".into()));
        assert_eq!(s[3], Ok("y".into()));
        let e = s[0].clone().unwrap_err();
        assert!(e.contains("d1/x.png") && e.contains("d2/x.png"), "{e}");
        assert!(s[2].is_err());
    }

    /// Issue 21, defect 8: two names that differ only in bytes that are not
    /// UTF-8 keep those bytes in their outputs' names, and a refusal shows
    /// them escaped, so two files never print as one.
    #[test]
    #[cfg(unix)]
    fn names_that_are_not_utf8_stay_distinct() {
        use std::os::unix::ffi::{OsStrExt, OsStringExt};
        let p = |b: &[u8]| PathBuf::from(OsStr::from_bytes(b));
        let s = output_stems(&[p(b"d/caf\xe9.png"), p(b"d/caf\xe8.png")]);
        assert_eq!(s[0].clone().unwrap().into_vec(), b"caf\xe9");
        assert_eq!(s[1].clone().unwrap().into_vec(), b"caf\xe8");
        let s = output_stems(&[p(b"d1/caf\xe9.png"), p(b"d2/caf\xe9.png")]);
        let e = s[0].clone().unwrap_err();
        assert!(e.contains(r"d1/caf\xe9.png") && e.contains(r"d2/caf\xe9.png"), "{e}");
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
