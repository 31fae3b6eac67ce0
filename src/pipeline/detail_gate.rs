//! Do no harm where the input has no detail (ours, not in the paper).
//!
//! A flat sky or a smooth gradient has nothing for super-resolution to
//! restore, and bicubic already reproduces it almost exactly; whatever the
//! decoder or the denoiser adds there (texture, a faint patch grid, an edge
//! band) can only be wrong. The gate measures, on the LR itself, how much
//! local structure each place has: the mean absolute Laplacian over a 5 x 5
//! window (in 8-bit levels, largest over the channels). A linear gradient has
//! none (its Laplacian is zero), a smooth curve very little, an edge or a
//! texture a lot. The output is then
//!
//!   bicubic + m * (PatchScaler - bicubic),  m = smoothstep(lo, hi, structure),
//!
//! so where the LR is smooth the output is bicubic, where it has structure
//! the output is unchanged, and in between it fades. The map is upsampled
//! bilinearly, so the transition has no seams.

use anyhow::Result;
use tch::{Kind, Tensor};

/// Structure levels (mean |Laplacian|, 8-bit levels) below which the output is
/// bicubic and above which it is PatchScaler's.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct DetailGate {
    pub lo: f64,
    pub hi: f64,
}

impl Default for DetailGate {
    /// Measured: 8-bit linear and radial ramps give at most 0.33 and (but
    /// for the cone's apex, 1.4) 0.3 levels of structure; on x4-downscaled
    /// scikit-image photos 47-98 % of the places of textured ones exceed 3
    /// levels, and a clear sky or a motion-blurred picture stays below 1.
    fn default() -> Self {
        DetailGate { lo: 1.0, hi: 3.0 }
    }
}

impl DetailGate {
    /// m, (1, 1, out_h, out_w) in [0, 1], from the LR (1, 3, h, w) in [0, 1].
    pub fn mask(&self, lr: &Tensor, out_h: i64, out_w: i64) -> Result<Tensor> {
        tch::no_grad(|| {
            let x = lr.to_kind(Kind::Float) * 255.0;
            let c = x.size()[1];
            let k = Tensor::from_slice(&[0f32, 1., 0., 1., -4., 1., 0., 1., 0.]).view([1, 1, 3, 3]).to_device(x.device()).repeat([c, 1, 1, 1]);
            // A 3 x 3 box blur first: an 8-bit ramp's rounding steps have a
            // Laplacian of +-1 everywhere, the blurred ramp almost none, while
            // edges and textures keep most of theirs. Blur and Laplacian see
            // the interior only and the result's 2-pixel border is replicated:
            // padding the image first would bend a ramp at the border into
            // "structure" (a third of its slope per pixel).
            let (h, w) = (x.size()[2], x.size()[3]);
            let valid = |x: Tensor| {
                x.avg_pool2d([3, 3], [1, 1], [0, 0], false, true, None::<i64>)
                    .conv2d(&k, None::<Tensor>, [1, 1], [0, 0], [1, 1], c)
                    .abs()
            };
            let lap = if h >= 5 && w >= 5 {
                valid(x).replication_pad2d([2, 2, 2, 2])
            } else {
                valid(x.replication_pad2d([2, 2, 2, 2]))
            };
            let structure = lap.amax([1].as_slice(), true).replication_pad2d([2, 2, 2, 2]).avg_pool2d([5, 5], [1, 1], [0, 0], false, true, None::<i64>);
            let up = structure.upsample_bilinear2d([out_h, out_w], false, None, None);
            let t = ((up - self.lo) / (self.hi - self.lo).max(1e-9)).clamp(0.0, 1.0);
            Ok(&t * &t * (t.neg() * 2.0 + 3.0))
        })
    }

    /// bicubic + m * (sr - bicubic), all (1, 3, H, W).
    pub fn apply(&self, sr: &Tensor, bicubic: &Tensor, lr: &Tensor) -> Result<Tensor> {
        let (h, w) = (sr.size()[2], sr.size()[3]);
        let m = self.mask(&lr.to_device(sr.device()), h, w)?;
        Ok(bicubic + m * (sr - bicubic))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use tch::Device;

    fn ramp(h: i64, w: i64) -> Tensor {
        let x = Tensor::linspace(0.1, 0.9, w, (Kind::Float, Device::Cpu)).view([1, 1, 1, w]);
        let y = Tensor::linspace(0.2, 0.6, h, (Kind::Float, Device::Cpu)).view([1, 1, h, 1]);
        Tensor::cat(&[&x + &y * 0.0, &y + &x * 0.0, (&x + &y) * 0.5], 1).expand([1, 3, h, w], false)
    }

    #[test]
    fn flat_and_linear_inputs_close_the_gate_texture_opens_it() {
        let g = DetailGate::default();
        let flat = Tensor::full([1, 3, 20, 24], 0.4, (Kind::Float, Device::Cpu));
        assert_eq!(g.mask(&flat, 80, 96).unwrap().max().double_value(&[]), 0.0);
        assert!(g.mask(&ramp(20, 24), 80, 96).unwrap().max().double_value(&[]) < 1e-6);
        tch::manual_seed(0);
        let texture = Tensor::rand([1, 3, 20, 24], (Kind::Float, Device::Cpu));
        assert!(g.mask(&texture, 80, 96).unwrap().min().double_value(&[]) > 0.99);
    }

    #[test]
    fn a_closed_gate_returns_bicubic_an_open_one_the_result() {
        let g = DetailGate::default();
        let bicubic = Tensor::full([1, 3, 8, 8], 0.5, (Kind::Float, Device::Cpu));
        let sr = Tensor::full([1, 3, 8, 8], 0.7, (Kind::Float, Device::Cpu));
        let flat = Tensor::full([1, 3, 2, 2], 0.5, (Kind::Float, Device::Cpu));
        assert!(g.apply(&sr, &bicubic, &flat).unwrap().equal(&bicubic));
        let checker: Vec<f32> = (0..36).map(|i| ((i / 6 + i % 6) % 2) as f32).collect();
        let busy = Tensor::from_slice(&checker).view([1, 1, 6, 6]).repeat([1, 3, 1, 1]);
        assert!((g.apply(&sr, &bicubic, &busy).unwrap() - &sr).abs().max().double_value(&[]) < 1e-6);
    }
}
