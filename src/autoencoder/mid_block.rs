//! The lowest-resolution stage shared by encoder and decoder (diffusers
//! `UNetMidBlock2D` without time embedding): resnet, attention, resnet.

use super::attention::MidAttention;
use super::resnet::ResnetBlock2D;
use tch::{nn, Tensor};

#[derive(Debug)]
pub struct MidBlock {
    resnet_in: ResnetBlock2D,
    /// The only global operation in the VAE; optional in the config.
    attention: Option<MidAttention>,
    resnet_out: ResnetBlock2D,
}

impl MidBlock {
    pub fn new(vs: &nn::Path, channels: i64, groups: i64, add_attention: bool) -> Self {
        Self {
            resnet_in: ResnetBlock2D::new(&(vs / "resnets" / "0"), channels, channels, groups),
            attention: add_attention.then(|| MidAttention::new(&(vs / "attentions" / "0"), channels, groups)),
            resnet_out: ResnetBlock2D::new(&(vs / "resnets" / "1"), channels, channels, groups),
        }
    }

    pub fn forward(&self, x: &Tensor) -> Tensor {
        let h = self.resnet_in.forward(x);
        let h = match &self.attention {
            Some(attention) => attention.forward(&h),
            None => h,
        };
        self.resnet_out.forward(&h)
    }
}
