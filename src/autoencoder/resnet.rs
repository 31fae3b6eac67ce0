//! The VAE's residual block (diffusers `ResnetBlock2D` without a time
//! embedding): the unit every encoder and decoder level is made of.

use crate::nn::{conv2d, group_norm};
use tch::{nn, nn::Module, Tensor};

/// Every GroupNorm of the VAE uses this eps; 1e-5 moves the latents by 4e-5.
pub const NORM_EPS: f64 = 1e-6;

#[derive(Debug)]
pub struct ResnetBlock2D {
    norm1: nn::GroupNorm,
    conv1: nn::Conv2D,
    norm2: nn::GroupNorm,
    conv2: nn::Conv2D,
    /// A 1x1 projection, present only when the channel count changes.
    conv_shortcut: Option<nn::Conv2D>,
}

impl ResnetBlock2D {
    pub fn new(vs: &nn::Path, cin: i64, cout: i64, groups: i64) -> Self {
        Self {
            norm1: group_norm(vs / "norm1", groups, cin, NORM_EPS),
            conv1: conv2d(vs / "conv1", cin, cout, 3, 1),
            norm2: group_norm(vs / "norm2", groups, cout, NORM_EPS),
            conv2: conv2d(vs / "conv2", cout, cout, 3, 1),
            conv_shortcut: (cin != cout).then(|| conv2d(vs / "conv_shortcut", cin, cout, 1, 1)),
        }
    }

    /// `shortcut(x) + conv2(silu(norm2(conv1(silu(norm1(x))))))`, output scale 1.
    pub fn forward(&self, x: &Tensor) -> Tensor {
        let h = self.conv1.forward(&self.norm1.forward(x).silu());
        let h = self.conv2.forward(&self.norm2.forward(&h).silu());
        match &self.conv_shortcut {
            Some(proj) => proj.forward(x) + h,
            None => x + h,
        }
    }
}

/// Halves the resolution. The zero padding is on the right and bottom only
/// (as in the original LDM code), so the 3x3 stride-2 window is anchored at
/// the top-left pixel; symmetric padding would shift every latent by half a
/// pixel.
#[derive(Debug)]
pub struct Downsample2D {
    conv: nn::Conv2D,
}

impl Downsample2D {
    pub fn new(vs: &nn::Path, channels: i64) -> Self {
        let cfg = nn::ConvConfig { stride: 2, padding: 0, ..Default::default() };
        Self { conv: nn::conv2d(vs / "conv", channels, channels, 3, cfg) }
    }

    pub fn forward(&self, x: &Tensor) -> Tensor {
        self.conv.forward(&x.constant_pad_nd([0, 1, 0, 1]))
    }
}

/// Doubles the resolution: nearest-neighbour copy, then a 3x3 conv to
/// smooth the blocks.
#[derive(Debug)]
pub struct Upsample2D {
    conv: nn::Conv2D,
}

impl Upsample2D {
    pub fn new(vs: &nn::Path, channels: i64) -> Self {
        Self { conv: conv2d(vs / "conv", channels, channels, 3, 1) }
    }

    pub fn forward(&self, x: &Tensor) -> Tensor {
        let (h, w) = (x.size()[2], x.size()[3]);
        self.conv.forward(&x.upsample_nearest2d([2 * h, 2 * w], 2.0, 2.0))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use tch::{Device, Kind};

    #[test]
    fn shortcut_exists_only_when_channels_change() {
        let vs = nn::VarStore::new(Device::Cpu);
        ResnetBlock2D::new(&(vs.root() / "a"), 8, 8, 4);
        ResnetBlock2D::new(&(vs.root() / "b"), 8, 16, 4);
        let vars = vs.variables();
        assert!(!vars.contains_key("a.conv_shortcut.weight"));
        assert_eq!(vars["b.conv_shortcut.weight"].size(), [16, 8, 1, 1]);
    }

    #[test]
    fn downsample_pads_right_and_bottom_only() {
        let vs = nn::VarStore::new(Device::Cpu);
        let down = Downsample2D::new(&vs.root(), 1);
        tch::no_grad(|| {
            // A kernel that reads only its top-left tap: output (i, j) is the
            // input at (2i, 2j) exactly when no padding precedes the image.
            let mut vars = vs.variables();
            vars.get_mut("conv.weight").unwrap().copy_(&Tensor::from_slice(&[1f32, 0., 0., 0., 0., 0., 0., 0., 0.]).view([1, 1, 3, 3]));
            let _ = vars.get_mut("conv.bias").unwrap().zero_();
        });
        let x = Tensor::arange(36, (Kind::Float, Device::Cpu)).view([1, 1, 6, 6]);
        let y = down.forward(&x);
        assert_eq!(y.size(), [1, 1, 3, 3]);
        let expect = x.slice(2, 0, 6, 2).slice(3, 0, 6, 2);
        assert_eq!(crate::conformance::max_abs_diff(&y, &expect), 0.0);
    }

    #[test]
    fn upsample_doubles_the_size() {
        let vs = nn::VarStore::new(Device::Cpu);
        let up = Upsample2D::new(&vs.root(), 2);
        assert_eq!(up.forward(&Tensor::zeros([1, 2, 3, 5], (Kind::Float, Device::Cpu))).size(), [1, 2, 6, 10]);
    }
}
