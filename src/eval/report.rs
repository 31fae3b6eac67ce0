//! The evaluation's results as a table (stdout) and a CSV: one row per
//! (image, method), then one `mean` row per method.

use super::score::{mean, Score};
use anyhow::{Context, Result};
use std::fmt::Write as _;
use std::path::Path;

/// The name the aggregate rows carry in the `image` column.
pub const MEAN: &str = "mean";
pub const CSV_HEADER: &str = "image,method,psnr_y,ssim_y,niqe,seconds";

#[derive(Clone, Debug, PartialEq)]
pub struct Row {
    pub image: String,
    pub method: String,
    pub score: Score,
}

/// One `mean` row per method, in the order methods first appear.
pub fn mean_rows(rows: &[Row]) -> Vec<Row> {
    let mut methods: Vec<&str> = Vec::new();
    for r in rows {
        if !methods.contains(&r.method.as_str()) {
            methods.push(&r.method);
        }
    }
    methods
        .into_iter()
        .map(|m| {
            let scores: Vec<Score> = rows.iter().filter(|r| r.method == m).map(|r| r.score).collect();
            Row { image: MEAN.into(), method: m.into(), score: mean(&scores) }
        })
        .collect()
}

/// Per-image rows followed by their means; NIQE is empty where undefined.
pub fn write_csv(rows: &[Row], path: &Path) -> Result<()> {
    let mut out = csv::Writer::from_writer(Vec::new());
    out.write_record(CSV_HEADER.split(','))?;
    for r in rows.iter().cloned().chain(mean_rows(rows)) {
        let s = r.score;
        let niqe = s.niqe.map(|v| format!("{v:.6}")).unwrap_or_default();
        out.write_record([r.image, r.method, format!("{:.6}", s.psnr), format!("{:.6}", s.ssim), niqe, format!("{:.6}", s.seconds)])?;
    }
    std::fs::write(path, out.into_inner()?).with_context(|| format!("writing {}", path.display()))
}

/// A fixed-width table of the rows and their means.
pub fn table(rows: &[Row]) -> String {
    let width = rows.iter().map(|r| r.image.chars().count()).max().unwrap_or(0).clamp(MEAN.len(), 40);
    let mut out = format!("{:<width$}  {:<12} {:>9} {:>7} {:>7} {:>9}\n", "image", "method", "PSNR-Y", "SSIM-Y", "NIQE", "seconds");
    let means = mean_rows(rows);
    let line = |out: &mut String, r: &Row| {
        let s = r.score;
        let niqe = s.niqe.map(|v| format!("{v:.3}")).unwrap_or_else(|| "-".into());
        let name: String = r.image.chars().take(width).collect();
        let _ = writeln!(out, "{name:<width$}  {:<12} {:>9.3} {:>7.4} {niqe:>7} {:>9.3}", r.method, s.psnr, s.ssim, s.seconds);
    };
    for r in rows {
        line(&mut out, r);
    }
    out.push_str(&"-".repeat(width + 50));
    out.push('\n');
    for r in &means {
        line(&mut out, r);
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn row(image: &str, method: &str, psnr: f64, niqe: Option<f64>) -> Row {
        Row { image: image.into(), method: method.into(), score: Score { psnr, ssim: 0.5, niqe, seconds: 1.0 } }
    }

    #[test]
    fn csv_has_rows_then_means_and_quotes_odd_names() {
        let d = tempfile::tempdir().unwrap();
        let p = d.path().join("e.csv");
        let rows = vec![row("a,b.png", "bicubic", 20.0, Some(5.0)), row("c.png", "bicubic", 22.0, None), row("c.png", "coarse", 23.0, None)];
        write_csv(&rows, &p).unwrap();
        let text = std::fs::read_to_string(&p).unwrap();
        let lines: Vec<&str> = text.lines().collect();
        assert_eq!(lines[0], CSV_HEADER);
        assert!(lines[1].starts_with("\"a,b.png\",bicubic,20.000000,"), "{}", lines[1]);
        assert_eq!(lines[2], "c.png,bicubic,22.000000,0.500000,,1.000000");
        assert_eq!(lines[4], "mean,bicubic,21.000000,0.500000,5.000000,1.000000");
        assert_eq!(lines[5], "mean,coarse,23.000000,0.500000,,1.000000");
        assert_eq!(lines.len(), 6);
    }

    #[test]
    fn table_shows_missing_niqe_as_a_dash() {
        let t = table(&[row("x.png", "uniform", 25.0, None)]);
        assert!(t.contains("NIQE") && t.lines().nth(1).unwrap().contains(" - "), "{t}");
        assert!(t.lines().last().unwrap().starts_with("mean"), "{t}");
    }
}
