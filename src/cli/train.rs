//! `patchscaler train <part>`: one trainer per part of the method. The
//! order that builds a model from nothing: ae, grm, texture, rtm, dit.

use anyhow::Result;
use clap::Subcommand;

#[derive(Subcommand, Debug)]
pub enum TrainCommand {
    /// The autoencoder (presets without a pretrained VAE).
    Ae(crate::train::ae::AeTrainArgs),
    /// The Global Restoration Module, paper Eq. 6, AE frozen.
    Grm(crate::train::grm::GrmTrainArgs),
    /// The texture classifier T, self-supervised (NT-Xent) on latent patches.
    Texture(crate::train::texture::TextureTrainArgs),
    /// The Reference Texture Memory, paper Algorithm 1 (crops -> E -> T -> FPS).
    Rtm(crate::train::rtm::RtmArgs),
    /// Patch-DiT and its texture encoder, paper Eq. 7; AE, GRM, T and RTM frozen.
    Dit(crate::train::dit::DitTrainArgs),
}

pub fn run(c: TrainCommand) -> Result<i32> {
    match c {
        TrainCommand::Ae(a) => crate::train::ae::run(a),
        TrainCommand::Grm(a) => crate::train::grm::run(a),
        TrainCommand::Texture(a) => crate::train::texture::run(a),
        TrainCommand::Rtm(a) => crate::train::rtm::run(a),
        TrainCommand::Dit(a) => crate::train::dit::run(a),
    }
}
