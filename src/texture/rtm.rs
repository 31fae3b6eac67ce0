//! The Reference Texture Memory (paper Sec. 3.4): latent patches of
//! high-quality images (values) with their unit-length classifier features
//! (keys). It is built once, offline, and ships as a file of its own next to
//! the model: a safetensors file with tensors `keys` (M, D) and `values`
//! (M, c, V, V), and in its metadata header the JSON of [`RtmMeta`].

use super::classifier::TextureClassifier;
use super::config::TextureConfig;
use super::fps::farthest_point_sampling;
use anyhow::{bail, Context, Result};
use safetensors::{Dtype, SafeTensors};
use serde::{Deserialize, Serialize};
use std::collections::HashMap;
use std::path::Path;
use tch::{Device, Kind, Tensor};

/// Header key of the metadata JSON; also marks the file as an RTM.
const META_KEY: &str = "patchscaler.rtm";
/// How far from 1 a stored key's norm may be (float32 round-off).
const NORM_TOL: f64 = 1e-4;
/// Patches per classifier call while building.
const BUILD_BATCH: i64 = 256;

#[derive(Serialize, Deserialize, Clone, Debug, PartialEq)]
pub struct RtmMeta {
    /// Where each entry was cropped from, one per row (e.g. "DIV2K/0801.png@x=128,y=64").
    pub provenance: Vec<String>,
    /// The classifier the keys were made with; retrieval must use the same.
    pub texture: TextureConfig,
    /// Seed of the FPS start point.
    pub seed: u64,
    /// Number of candidate patches FPS chose from (20,000 in the paper).
    pub pool_size: i64,
    /// Program and version that wrote the memory.
    pub created_by: String,
}

#[derive(Debug)]
pub struct Rtm {
    /// (M, D), unit rows.
    pub keys: Tensor,
    /// (M, c, V, V) latent patches: the texture priors.
    pub values: Tensor,
    pub meta: RtmMeta,
}

impl Rtm {
    /// Checks that keys, values and metadata agree.
    pub fn new(keys: Tensor, values: Tensor, meta: RtmMeta) -> Result<Self> {
        let rtm = Self { keys, values, meta };
        rtm.validate()?;
        Ok(rtm)
    }

    /// Algorithm 1, steps 3-5: key every candidate patch with T, keep the
    /// `target_size` that farthest point sampling spreads over key space.
    /// `values_init` (N, c, V, V) are the encoded random crops (steps 1-2);
    /// `provenance` names each of them.
    pub fn build(
        values_init: &Tensor,
        classifier: &TextureClassifier,
        target_size: i64,
        seed: u64,
        provenance: Vec<String>,
    ) -> Result<Self> {
        let cfg = classifier.config();
        let size = values_init.size();
        if size.len() != 4 || size[1..] != [cfg.latent_channels, cfg.patch, cfg.patch] {
            bail!(
                "RTM build: candidate patches must be (N, {}, {p}, {p}), got {size:?}",
                cfg.latent_channels,
                p = cfg.patch
            );
        }
        if provenance.len() as i64 != size[0] {
            bail!("RTM build: {} provenance entries for {} patches", provenance.len(), size[0]);
        }
        let keys_init = classifier.keys_batched(values_init, BUILD_BATCH)?;
        let picked = farthest_point_sampling(&keys_init, target_size, seed)?;
        let index = Tensor::from_slice(&picked);
        let meta = RtmMeta {
            provenance: picked.iter().map(|&i| provenance[i as usize].clone()).collect(),
            texture: cfg.clone(),
            seed,
            pool_size: size[0],
            created_by: format!("patchscaler {}", env!("CARGO_PKG_VERSION")),
        };
        let keys = keys_init.index_select(0, &index.to_device(keys_init.device()));
        let values = values_init.index_select(0, &index.to_device(values_init.device()));
        Self::new(keys, values.detach(), meta)
    }

    pub fn len(&self) -> i64 {
        self.keys.size()[0]
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    pub fn to_device(&self, device: Device) -> Self {
        Self { keys: self.keys.to_device(device), values: self.values.to_device(device), meta: self.meta.clone() }
    }

    /// Writes float32 tensors and the metadata header.
    pub fn save(&self, path: impl AsRef<Path>) -> Result<()> {
        let path = path.as_ref();
        let keys = f32_bytes(&self.keys)?;
        let values = f16_bytes(&self.values)?;
        let views = [
            ("keys", safetensors::tensor::TensorView::new(Dtype::F32, dims(&self.keys), &keys)?),
            ("values", safetensors::tensor::TensorView::new(Dtype::F16, dims(&self.values), &values)?),
        ];
        let header = HashMap::from([(META_KEY.to_string(), serde_json::to_string(&self.meta)?)]);
        safetensors::serialize_to_file(views, Some(header), path)
            .with_context(|| format!("writing RTM file {}", path.display()))
    }

    /// Reads and validates an RTM file; every error names the file.
    pub fn load(path: impl AsRef<Path>, device: Device) -> Result<Self> {
        let path = path.as_ref();
        Self::read(path, device).with_context(|| format!("RTM file {}", path.display()))
    }

    fn read(path: &Path, device: Device) -> Result<Self> {
        let bytes = std::fs::read(path).context("cannot read")?;
        let file = SafeTensors::deserialize(&bytes).context("not a safetensors file")?;
        let (_, header) = SafeTensors::read_metadata(&bytes)?;
        let meta_json = header
            .metadata()
            .as_ref()
            .and_then(|m| m.get(META_KEY))
            .with_context(|| format!("no `{META_KEY}` metadata: not a texture memory"))?;
        let meta: RtmMeta = serde_json::from_str(meta_json).context("bad RTM metadata")?;
        // Keys stay float32 (their unit norm is checked to 1e-4); values may
        // be float16, as `save` writes them.
        let tensor = |name: &str, half_ok: bool| -> Result<Tensor> {
            let view = file.tensor(name).with_context(|| format!("missing tensor `{name}`"))?;
            let kind = match view.dtype() {
                Dtype::F32 => Kind::Float,
                Dtype::F16 if half_ok => Kind::Half,
                other => bail!("tensor `{name}` is {other:?}, expected F32{}", if half_ok { " or F16" } else { "" }),
            };
            let shape: Vec<i64> = view.shape().iter().map(|&d| d as i64).collect();
            Ok(Tensor::from_data_size(view.data(), &shape, kind).to_kind(Kind::Float).to_device(device))
        };
        Self::new(tensor("keys", false)?, tensor("values", true)?, meta)
    }

    fn validate(&self) -> Result<()> {
        let (k, v, cfg) = (self.keys.size(), self.values.size(), &self.meta.texture);
        if k.len() != 2 || v.len() != 4 || k[0] != v[0] {
            bail!("keys {k:?} and values {v:?} must be (M, D) and (M, c, V, V) with the same M");
        }
        if k[0] < 1 {
            bail!("the memory is empty");
        }
        if k[1] != cfg.feature_dim || v[1..] != [cfg.latent_channels, cfg.patch, cfg.patch] {
            bail!("keys {k:?} and values {v:?} do not fit the texture config {cfg:?}");
        }
        if self.meta.provenance.len() as i64 != k[0] {
            bail!("{} provenance entries for {} entries", self.meta.provenance.len(), k[0]);
        }
        let norms = self.keys.norm_scalaropt_dim(2, [1i64].as_slice(), false);
        let worst = (norms - 1.0).abs().max().double_value(&[]);
        if !(worst <= NORM_TOL) {
            bail!("keys are not unit vectors (a norm is off by {worst:e})");
        }
        Ok(())
    }
}

fn dims(t: &Tensor) -> Vec<usize> {
    t.size().iter().map(|&d| d as usize).collect()
}

/// Little-endian float32 bytes, as safetensors stores them.
fn f32_bytes(t: &Tensor) -> Result<Vec<u8>> {
    let flat = t.to_device(Device::Cpu).to_kind(Kind::Float).contiguous().flatten(0, -1);
    let data = Vec::<f32>::try_from(&flat)?;
    Ok(data.iter().flat_map(|x| x.to_le_bytes()).collect())
}

/// Little-endian float16 bytes: the values are latent patches of about unit
/// variance, for which half precision's 3 digits are plenty, and they are
/// most of a model's size (the exact latent's patches are 49,152 values each).
fn f16_bytes(t: &Tensor) -> Result<Vec<u8>> {
    let flat = t.to_device(Device::Cpu).to_kind(Kind::Half).contiguous().flatten(0, -1);
    let mut bytes = vec![0u8; flat.numel() * 2];
    flat.copy_data_u8(&mut bytes, flat.numel());
    Ok(bytes)
}

#[cfg(test)]
#[path = "rtm_tests.rs"]
mod tests;
