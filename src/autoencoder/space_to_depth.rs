//! The exact latent (SPEC §7, ours): `z = (PixelUnshuffle_f(x) - shift) * scale`
//! and its inverse `x = PixelShuffle_f(z / scale + shift)`.
//!
//! Every f x f block of pixels becomes one latent pixel of 3 f^2 channels, on
//! the same 1/f grid as the learned autoencoder's latent, so the GRM, PGS's
//! 16 x 16 latent patches (128 x 128 pixels at f = 8), the Patch-DiT and the
//! RTM keep their places and shapes. Nothing is lost (decode(encode(x)) = x
//! up to float rounding), nothing is trained and nothing costs more than a
//! reshape: the learned autoencoder reconstructed at about 25 dB and took 13
//! of the 29 s of a 512 -> 2048 upscale on the CPU.
//!
//! The per-channel shift and scale bring the latent to zero mean and unit
//! variance for the diffusion model; they are measured on training images
//! (`patchscaler train ae` on a space-to-depth model) and stored in the
//! model's `ae.safetensors` as `shift` and `scale`, so a model file alone
//! decodes its own latents.

use tch::{nn, Kind, Tensor};

#[derive(Debug)]
pub struct SpaceToDepth {
    pub factor: i64,
    /// (C,) per latent channel, in the image's [-1, 1] units.
    pub shift: Tensor,
    /// (C,) per latent channel: 1 / std of the shifted channel.
    pub scale: Tensor,
}

impl SpaceToDepth {
    /// Variables `shift` and `scale` under `vs`, at the identity's neutral
    /// values for [-1, 1] images (mean 0, std 1/2) until measured.
    pub fn new(vs: &nn::Path, factor: i64, channels: i64) -> Self {
        let shift = vs.var("shift", &[channels], nn::Init::Const(0.0));
        let scale = vs.var("scale", &[channels], nn::Init::Const(2.0));
        for t in [&shift, &scale] {
            let _ = t.set_requires_grad(false);
        }
        Self { factor, shift, scale }
    }

    fn per_channel(t: &Tensor, like: &Tensor) -> Tensor {
        t.to_device(like.device()).to_kind(like.kind()).view([1, -1, 1, 1])
    }

    /// Image (B, 3, H, W) in [-1, 1], sides multiples of the factor -> latent.
    pub fn encode(&self, x: &Tensor) -> Tensor {
        let z = x.to_kind(Kind::Float).pixel_unshuffle(self.factor);
        (&z - Self::per_channel(&self.shift, &z)) * Self::per_channel(&self.scale, &z)
    }

    /// Latent -> image in [-1, 1] (not clamped).
    pub fn decode(&self, z: &Tensor) -> Tensor {
        let z = z.to_kind(Kind::Float);
        let u = &z / Self::per_channel(&self.scale, &z) + Self::per_channel(&self.shift, &z);
        u.pixel_shuffle(self.factor)
    }

    /// Sets shift and scale from images (B, 3, H, W) in [-1, 1]: per channel
    /// mean and 1 / std over every latent pixel of every image.
    pub fn measure(&mut self, images: &[Tensor]) {
        tch::no_grad(|| {
            let z: Vec<Tensor> = images
                .iter()
                .map(|x| x.to_kind(Kind::Double).pixel_unshuffle(self.factor).transpose(0, 1).flatten(1, -1))
                .collect();
            let z = Tensor::cat(&z, 1);
            let mean = z.mean_dim(1, false, Kind::Double);
            let std = z.std_dim(1, true, false).clamp_min(1e-3);
            self.shift.copy_(&mean.to_kind(self.shift.kind()));
            self.scale.copy_(&std.reciprocal().to_kind(self.scale.kind()));
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use tch::Device;

    #[test]
    fn decode_inverts_encode_and_the_measured_latent_is_standardised() {
        let vs = nn::VarStore::new(Device::Cpu);
        let mut s2d = SpaceToDepth::new(&vs.root(), 4, 48);
        tch::manual_seed(0);
        let x = Tensor::rand([2, 3, 16, 24], (Kind::Float, Device::Cpu)) * 1.5 - 0.9;
        let z = s2d.encode(&x);
        assert_eq!(z.size(), [2, 48, 4, 6]);
        assert!((s2d.decode(&z) - &x).abs().max().double_value(&[]) < 1e-6);
        s2d.measure(&[x.shallow_clone()]);
        let z = s2d.encode(&x).transpose(0, 1).flatten(1, -1);
        let (m, s) = (z.mean_dim(1, false, Kind::Double), z.std_dim(1, true, false));
        assert!(m.abs().max().double_value(&[]) < 1e-5, "{m}");
        assert!((s - 1.0).abs().max().double_value(&[]) < 1e-4);
        assert!((s2d.decode(&s2d.encode(&x)) - &x).abs().max().double_value(&[]) < 1e-5);
    }
}
