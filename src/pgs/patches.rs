//! Overlapping V x V latent patches, and their blending back into one latent.
//!
//! PGS denoises every patch on its own, so neighbouring patches disagree a
//! little along their borders. Overlapping them (stride < V) and merging with
//! a window that fades towards each patch's edge hides those seams, as
//! StableSR's tiled sampling does with its Gaussian weights.

use anyhow::{bail, ensure, Result};
use tch::{Kind, Tensor};

/// Weight of a patch's outermost pixels relative to its centre: small, so
/// seams fade, but never zero, so pixels at the image border (covered by one
/// patch edge only) still get a well-defined average.
const WINDOW_FLOOR: f64 = 0.01;

/// Where the patches of an h x w latent sit.
#[derive(Clone, Debug, PartialEq)]
pub struct PatchGrid {
    pub h: usize,
    pub w: usize,
    pub v: usize,
    pub stride: usize,
    /// Top-left corner (y, x) of each patch, row by row.
    pub positions: Vec<(usize, usize)>,
}

impl PatchGrid {
    /// Patches every `stride` pixels; the last row and column snap to the
    /// bottom/right edge so no patch hangs over it. The caller pads latents
    /// smaller than one patch.
    pub fn new(h: usize, w: usize, v: usize, stride: usize) -> Result<Self> {
        ensure!(
            v > 0 && stride > 0,
            "patch size ({v}) and stride ({stride}) must be positive"
        );
        ensure!(
            stride <= v,
            "stride {stride} > patch size {v} would leave pixels uncovered"
        );
        if h < v || w < v {
            bail!("latent {h}x{w} is smaller than one {v}x{v} patch; pad it first");
        }
        let ys = starts(h, v, stride);
        let xs = starts(w, v, stride);
        let positions = ys
            .iter()
            .flat_map(|&y| xs.iter().map(move |&x| (y, x)))
            .collect();
        Ok(Self {
            h,
            w,
            v,
            stride,
            positions,
        })
    }

    pub fn len(&self) -> usize {
        self.positions.len()
    }

    pub fn is_empty(&self) -> bool {
        self.positions.is_empty()
    }

    /// Cut a (1, C, h, w) latent into (P, C, V, V) patches.
    pub fn extract(&self, latent: &Tensor) -> Result<Tensor> {
        self.check_latent(latent, "extract")?;
        let v = self.v as i64;
        let patches: Vec<Tensor> = self
            .positions
            .iter()
            .map(|&(y, x)| {
                latent
                    .narrow(2, y as i64, v)
                    .narrow(3, x as i64, v)
                    .squeeze_dim(0)
            })
            .collect();
        Ok(Tensor::stack(&patches, 0))
    }

    /// Blend (P, C, V, V) patches into a (1, C, h, w) latent: at every pixel,
    /// the window-weighted average of the patches that cover it.
    pub fn merge(&self, patches: &Tensor) -> Result<Tensor> {
        let size = patches.size();
        let v = self.v as i64;
        ensure!(
            size.len() == 4 && size[0] == self.len() as i64 && size[2] == v && size[3] == v,
            "merge: expected ({}, C, {v}, {v}) patches, got {size:?}",
            self.len()
        );
        let opts = (patches.kind(), patches.device());
        let window = self
            .window()
            .to_kind(patches.kind())
            .to_device(patches.device());
        let sum = Tensor::zeros([1, size[1], self.h as i64, self.w as i64], opts);
        let weight = Tensor::zeros([1, 1, self.h as i64, self.w as i64], opts);
        for (i, &(y, x)) in self.positions.iter().enumerate() {
            let (y, x) = (y as i64, x as i64);
            let _ = sum
                .narrow(2, y, v)
                .narrow(3, x, v)
                .g_add_(&(patches.get(i as i64) * &window));
            let _ = weight.narrow(2, y, v).narrow(3, x, v).g_add_(&window);
        }
        Ok(sum / weight)
    }

    /// The separable raised-cosine (Hann) window sampled at pixel centres and
    /// lifted by a floor: (V, V), 1 near the centre, WINDOW_FLOOR-ish at edges.
    pub fn window(&self) -> Tensor {
        let v = self.v;
        let w1: Vec<f64> = (0..v)
            .map(|i| {
                let hann = (std::f64::consts::PI * (i as f64 + 0.5) / v as f64)
                    .sin()
                    .powi(2);
                WINDOW_FLOOR + (1.0 - WINDOW_FLOOR) * hann
            })
            .collect();
        let w1 = Tensor::from_slice(&w1).to_kind(Kind::Float);
        w1.view([-1, 1]) * w1.view([1, -1])
    }

    fn check_latent(&self, latent: &Tensor, what: &str) -> Result<()> {
        let size = latent.size();
        ensure!(
            size.len() == 4 && size[0] == 1 && size[2] == self.h as i64 && size[3] == self.w as i64,
            "{what}: expected a (1, C, {}, {}) latent, got {size:?}",
            self.h,
            self.w
        );
        Ok(())
    }
}

/// 0, stride, 2 stride, ... while the patch stays inside, then `len - v`.
fn starts(len: usize, v: usize, stride: usize) -> Vec<usize> {
    let mut s: Vec<usize> = (0..).step_by(stride).take_while(|&p| p + v < len).collect();
    s.push(len - v);
    s
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::conformance::max_abs_diff;

    const SHAPES: [(usize, usize, usize, usize); 6] = [
        (16, 16, 16, 12),
        (40, 28, 16, 12),
        (33, 47, 16, 12),
        (64, 64, 16, 16),
        (20, 50, 8, 3),
        (17, 16, 16, 1),
    ];

    #[test]
    fn positions_cover_every_pixel_and_snap_to_the_edge() {
        for (h, w, v, s) in SHAPES {
            let grid = PatchGrid::new(h, w, v, s).unwrap();
            let mut covered = vec![false; h * w];
            for &(y, x) in &grid.positions {
                assert!(y + v <= h && x + v <= w);
                for yy in y..y + v {
                    covered[yy * w + x..yy * w + x + v]
                        .iter_mut()
                        .for_each(|c| *c = true);
                }
            }
            assert!(covered.iter().all(|&c| c), "{h}x{w} v={v} s={s}");
            assert_eq!(grid.positions.last(), Some(&(h - v, w - v)));
        }
        assert_eq!(starts(40, 16, 12), vec![0, 12, 24]);
        assert_eq!(starts(16, 16, 12), vec![0]);
    }

    #[test]
    fn split_then_merge_gives_the_latent_back() {
        for (h, w, v, s) in SHAPES {
            let grid = PatchGrid::new(h, w, v, s).unwrap();
            let latent = Tensor::randn([1, 4, h as i64, w as i64], (Kind::Float, tch::Device::Cpu));
            let back = grid.merge(&grid.extract(&latent).unwrap()).unwrap();
            let err = max_abs_diff(&back, &latent);
            assert!(err <= 1e-6, "{h}x{w} v={v} s={s}: {err:e}");
            let constant = Tensor::full(
                [1, 3, h as i64, w as i64],
                0.7,
                (Kind::Float, tch::Device::Cpu),
            );
            let back = grid.merge(&grid.extract(&constant).unwrap()).unwrap();
            assert!(max_abs_diff(&back, &constant) <= 1e-6);
        }
    }

    #[test]
    fn merge_weights_the_patch_centre_over_its_edge() {
        // Two patches overlapping on 8 columns: the blend of a 0-patch and a
        // 1-patch moves from 0 to 1 smoothly across the overlap.
        let grid = PatchGrid::new(16, 24, 16, 8).unwrap();
        let patches = Tensor::cat(
            &[
                Tensor::zeros([1, 1, 16, 16], (Kind::Float, tch::Device::Cpu)),
                Tensor::ones([1, 1, 16, 16], (Kind::Float, tch::Device::Cpu)),
            ],
            0,
        );
        let row = Vec::<f32>::try_from(grid.merge(&patches).unwrap().get(0).get(0).get(8)).unwrap();
        assert!(row[..8].iter().all(|&v| v == 0.0) && row[16..].iter().all(|&v| v == 1.0));
        assert!(row[8..16].windows(2).all(|p| p[0] < p[1]), "{row:?}");
    }

    #[test]
    fn rejects_bad_shapes() {
        assert!(PatchGrid::new(15, 32, 16, 12).is_err());
        assert!(PatchGrid::new(32, 32, 16, 17).is_err());
        assert!(PatchGrid::new(32, 32, 16, 0).is_err());
        let grid = PatchGrid::new(32, 32, 16, 12).unwrap();
        assert!(grid
            .extract(&Tensor::zeros(
                [2, 4, 32, 32],
                (Kind::Float, tch::Device::Cpu)
            ))
            .is_err());
        assert!(grid
            .merge(&Tensor::zeros(
                [3, 4, 16, 16],
                (Kind::Float, tch::Device::Cpu)
            ))
            .is_err());
    }
}
