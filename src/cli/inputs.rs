//! The batch's input list: files as given, the images inside given folders,
//! each once, and a one-line reason for every path that yields nothing.

use crate::imageio::{image_files, io_error, shown};
use std::collections::HashSet;
use std::path::PathBuf;

/// Files as given and the image files inside given folders (sorted), each
/// file once even when named twice (or as a file and inside its folder);
/// beside them, one error line per path that yields no image.
pub fn collect_inputs(inputs: &[PathBuf]) -> (Vec<PathBuf>, Vec<String>) {
    let mut out = Vec::new();
    let mut errors = Vec::new();
    let mut seen = HashSet::new();
    let mut push = |p: PathBuf, out: &mut Vec<PathBuf>| {
        if seen.insert(p.canonicalize().unwrap_or_else(|_| p.clone())) {
            out.push(p);
        }
    };
    for p in inputs {
        // metadata() follows links: a loop is ELOOP here, not "missing".
        let meta = match std::fs::metadata(p) {
            Ok(m) => m,
            Err(e) => {
                errors.push(format!("{:#}", io_error(p, &e)));
                continue;
            }
        };
        if !meta.is_dir() {
            push(p.clone(), &mut out);
            continue;
        }
        match image_files(p, false) {
            Ok(files) => {
                if files.is_empty() {
                    errors.push(format!("{}: folder holds no images", shown(p)));
                }
                for f in files {
                    push(f, &mut out);
                }
            }
            Err(e) => errors.push(format!("{}: cannot list the folder: {e}", shown(p))),
        }
    }
    (out, errors)
}

/// `collect_inputs`, with each error printed as it is and only counted.
pub fn expand_inputs(inputs: &[PathBuf]) -> (Vec<PathBuf>, usize) {
    let (files, errors) = collect_inputs(inputs);
    for e in &errors {
        eprintln!("error: {e}");
    }
    (files, errors.len())
}
