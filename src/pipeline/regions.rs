//! The whole pipeline, region by region, for images whose full-resolution
//! buffers would not fit the memory the user allows (`--memory-limit`).
//!
//! The autoencoder alone is tiled in every run (`autoencoder::tiled`), but
//! the rest (bicubic input, latents, patches, decoded image, colour fix)
//! costs about 320 bytes per output pixel, so a 2048 px input needs some 20
//! GiB untiled. Here the LR image is cut into overlapping regions, each goes
//! through the whole pipeline, and the outputs are cross-faded into one
//! image with the autoencoder tiles' raised-cosine window: what stays
//! full-size is one float image and its weights.
//!
//! Regions start at multiples of `alignment`, so that each region's latent
//! and patch grid sit on the whole image's: the start noise of every region
//! is cut from the one noise field of the whole image, and a region's
//! patches are the untiled run's patches away from the image's far edges.
//! What differs from the untiled result is each region's border context
//! (GRM, autoencoder tiles, colour fix), and the window gives those pixels
//! weight zero where another region covers them.

use super::progress::Tracker;
use super::{noise_field, upscale_inner, Upscaled, UPSCALE_STAGES};
use crate::autoencoder::tiled::window;
use crate::model::Model;
use crate::pgs::patches::PatchGrid;
use crate::pgs::sampler::SampleStats;
use super::options::SamplingOptions;
pub use super::region_grid::{alignment, largest_region, min_tile, spans, RegionTiles};
use anyhow::{ensure, Result};
use tch::{Kind, Tensor};

/// The upscale of `lr` (1, 3, h, w) region by region (see the module doc).
pub fn upscale_regions(model: &Model, lr: &Tensor, opts: &SamplingOptions, tiles: &RegionTiles) -> Result<Upscaled> {
    let (s, f) = (model.config.scale, model.ae.downsample_factor());
    let v = opts.pgs.patch as i64;
    let align = alignment(s, f, opts.pgs.stride as i64);
    ensure!(
        tiles.tile % align == 0 && tiles.overlap % align == 0 && tiles.overlap > 0 && tiles.overlap < tiles.tile,
        "regions of {} px overlapping by {} px must be multiples of {align} px, the overlap in (0, tile)",
        tiles.tile,
        tiles.overlap
    );
    ensure!(tiles.tile * s >= v * f, "regions of {} LR px are smaller than one {v}-latent-px patch", tiles.tile);
    let (h, w) = (lr.size()[2], lr.size()[3]);
    let lat = |n: i64| (n * s + f - 1) / f;
    let (lh, lw) = (lat(h).max(v), lat(w).max(v));
    let noise = noise_field(opts.seed, &[1, model.config.ae.latent_channels, lh, lw]);
    let (ys, xs) = (spans(h, tiles, align), spans(w, tiles, align));
    let mut tracker = Tracker::new(opts.progress.clone(), (ys.len() * xs.len()) as u64 * UPSCALE_STAGES);

    let cpu = (Kind::Float, tch::Device::Cpu);
    let mut sr = Tensor::zeros([1, 3, h * s, w * s], cpu);
    let sr_weight = Tensor::zeros([h * s, w * s], cpu);
    let mut conf = Tensor::zeros([1, 1, lat(h), lat(w)], (Kind::Double, tch::Device::Cpu));
    let conf_weight = Tensor::zeros([lat(h), lat(w)], (Kind::Double, tch::Device::Cpu));
    let mut positions = Vec::new();
    let mut assignment = Vec::new();
    let mut stats: Option<SampleStats> = None;
    let mut timings: Vec<(String, std::time::Duration)> = Vec::new();
    for &(y, rh) in &ys {
        for &(x, rw) in &xs {
            let crop = lr.narrow(2, y, rh).narrow(3, x, rw);
            let (ly, lx) = (y * s / f, x * s / f);
            let region_noise = noise.narrow(2, ly, lat(rh).max(v)).narrow(3, lx, lat(rw).max(v));
            let up = upscale_inner(model, &crop, opts, Some(&region_noise), &mut tracker)?;

            let edges = (y > 0, y + rh < h, x > 0, x + rw < w);
            let (wy, wx) = weights(rh * s, rw * s, tiles.overlap * s, edges, Kind::Float);
            let weight = wy.view([-1, 1]) * wx.view([1, -1]);
            let _ = sr.narrow(2, y * s, rh * s).narrow(3, x * s, rw * s).g_add_(&(up.sr.to_device(tch::Device::Cpu) * &weight));
            let _ = sr_weight.narrow(0, y * s, rh * s).narrow(1, x * s, rw * s).g_add_(&weight);

            let (vh, vw) = up.valid_latent;
            let (wy, wx) = weights(vh, vw, (tiles.overlap * s / f).max(1), edges, Kind::Double);
            let weight = wy.view([-1, 1]) * wx.view([1, -1]);
            let c = up.confidence.narrow(2, 0, vh).narrow(3, 0, vw).to_device(tch::Device::Cpu);
            let _ = conf.narrow(2, ly, vh).narrow(3, lx, vw).g_add_(&(c * &weight));
            let _ = conf_weight.narrow(0, ly, vh).narrow(1, lx, vw).g_add_(&weight);

            let (py, px) = (ly as usize, lx as usize);
            positions.extend(up.grid.positions.iter().map(|&(a, b)| (a + py, b + px)));
            assignment.extend(up.assignment);
            stats = Some(match stats {
                None => up.stats,
                Some(t) => add_stats(t, up.stats),
            });
            for (name, d) in up.timings {
                match timings.iter_mut().find(|(n, _)| *n == name) {
                    Some((_, total)) => *total += d,
                    None => timings.push((name, d)),
                }
            }
        }
    }
    // In place: a second full-size image here would double what tiling saves.
    let _ = sr.g_div_(&sr_weight);
    drop(sr_weight);
    let _ = conf.g_div_(&conf_weight);
    Ok(Upscaled {
        sr: sr.clamp_(0.0, 1.0),
        confidence: conf,
        grid: PatchGrid { h: lh as usize, w: lw as usize, v: v as usize, stride: opts.pgs.stride, positions },
        assignment,
        stats: stats.expect("at least one region"),
        timings,
        valid_latent: (lat(h), lat(w)),
    })
}

/// The separable blending window of one region, rows then columns; `edges`
/// says which sides (top, bottom, left, right) border another region.
fn weights(h: i64, w: i64, overlap: i64, edges: (bool, bool, bool, bool), kind: Kind) -> (Tensor, Tensor) {
    let like = Tensor::zeros([1], (Kind::Float, tch::Device::Cpu));
    let (top, bottom, left, right) = edges;
    (
        window(h, overlap, top, bottom, &like).to_kind(kind),
        window(w, overlap, left, right, &like).to_kind(kind),
    )
}

fn add_stats(a: SampleStats, b: SampleStats) -> SampleStats {
    SampleStats {
        patches_per_group: a.patches_per_group.iter().zip(&b.patches_per_group).map(|(x, y)| x + y).collect(),
        evaluations: a.evaluations + b.evaluations,
        uniform_evaluations: a.uniform_evaluations + b.uniform_evaluations,
        time: a.time + b.time,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn alignment_puts_latent_and_patch_grid_on_whole_pixels() {
        // The shipped geometry: x4, f = 8, stride 12 latent px = 24 LR px.
        assert_eq!(alignment(4, 8, 12), 24);
        for (s, f, stride) in [(4, 8, 12), (4, 4, 6), (2, 8, 5), (3, 8, 4)] {
            let a = alignment(s, f, stride);
            assert_eq!(a * s % f, 0, "{s} {f} {stride}");
            assert_eq!((a * s / f) % stride, 0, "{s} {f} {stride}");
        }
    }

    #[test]
    fn spans_cover_the_axis_overlap_enough_start_aligned_and_stay_small() {
        for a in [24, 6, 1] {
            for len in (2 * a)..(40 * a) {
                for n in 2..6 {
                    let t = RegionTiles::for_count(len, n, a);
                    assert_eq!(t.tile % a, 0);
                    let sp = spans(len, &t, a);
                    assert_eq!(sp[0].0, 0);
                    let (ls, lsize) = *sp.last().unwrap();
                    assert_eq!(ls + lsize, len, "{len} {n}: {sp:?}");
                    assert!(sp.len() as i64 <= n.max(1), "{len} {n} {t:?}: {sp:?}");
                    for &(s, size) in &sp {
                        assert!(size <= t.max_side(a) && size > 0, "{len} {n} {t:?}: {sp:?}");
                        assert!(s % a == 0, "{len} {n}: {sp:?}");
                    }
                    for pair in sp.windows(2) {
                        let ((p, pn), (q, _)) = (pair[0], pair[1]);
                        assert!(q > p && p + pn - q >= t.overlap, "{len} {n} {t:?}: {sp:?}");
                    }
                }
            }
        }
        // The shipped geometry: 2048 LR px in 2 regions of about 1056 px.
        let t = RegionTiles::for_count(2048, 2, 24);
        assert_eq!(t, RegionTiles { tile: 1056, overlap: 48 });
        assert_eq!(spans(2048, &t, 24), [(0, 1056), (984, 1064)]);
        assert_eq!(spans(1000, &t, 24), [(0, 1000)]);
    }
}
