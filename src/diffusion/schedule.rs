//! The forward-process noise schedule: betas over the 1000 training steps
//! and their running product abar_t = prod_{s <= t} (1 - beta_s).
//!
//! Kept in float64 as LDM/DiT keep it, so abar at late steps (~4e-5 for DiT's
//! linear schedule) does not lose its digits before it reaches a sampler.
//! The schedule is part of the model file: training and sampling must use the
//! same one (SPEC section 3).

use serde::{Deserialize, Serialize};

/// Which beta schedule the model was trained with.
///
/// Naming trap: LDM/StableSR call `ScaledLinear` "linear"; diffusers calls
/// it "scaled_linear". DiT's "linear" is the plain `Linear` below.
#[derive(Serialize, Deserialize, Clone, Copy, Debug, PartialEq)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum BetaSchedule {
    /// Stable Diffusion: betas = linspace(sqrt(start), sqrt(end), T)^2.
    ScaledLinear { start: f64, end: f64 },
    /// DiT / ADM: betas = linspace(start, end, T).
    Linear { start: f64, end: f64 },
}

impl BetaSchedule {
    /// The Stable Diffusion schedule (0.00085 .. 0.012, squared-root spacing).
    pub fn stable_diffusion() -> Self {
        BetaSchedule::ScaledLinear {
            start: 0.00085,
            end: 0.012,
        }
    }

    /// DiT's linear schedule (1e-4 .. 0.02).
    pub fn dit() -> Self {
        BetaSchedule::Linear {
            start: 1e-4,
            end: 0.02,
        }
    }
}

/// The training diffusion process: how many steps, and which betas.
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq)]
pub struct DiffusionConfig {
    pub num_timesteps: usize,
    pub schedule: BetaSchedule,
}

impl Default for DiffusionConfig {
    /// The project's choice: 1000 steps of the Stable Diffusion schedule,
    /// the one the SD autoencoder latents were designed around.
    fn default() -> Self {
        Self {
            num_timesteps: 1000,
            schedule: BetaSchedule::stable_diffusion(),
        }
    }
}

impl DiffusionConfig {
    /// DiT's process: 1000 steps of its linear schedule.
    pub fn dit() -> Self {
        Self {
            num_timesteps: 1000,
            schedule: BetaSchedule::dit(),
        }
    }

    pub fn betas(&self) -> Vec<f64> {
        let n = self.num_timesteps;
        match self.schedule {
            BetaSchedule::Linear { start, end } => linspace(start, end, n),
            BetaSchedule::ScaledLinear { start, end } => linspace(start.sqrt(), end.sqrt(), n)
                .into_iter()
                .map(|b| b * b)
                .collect(),
        }
    }

    /// abar_t for t = 0 .. num_timesteps - 1, a cumulative product in f64.
    pub fn alphas_cumprod(&self) -> Vec<f64> {
        self.betas()
            .into_iter()
            .scan(1.0, |acc, beta| {
                *acc *= 1.0 - beta;
                Some(*acc)
            })
            .collect()
    }
}

/// numpy's `linspace`: start + i * step, with the last point pinned to `end`.
fn linspace(start: f64, end: f64, n: usize) -> Vec<f64> {
    match n {
        0 => vec![],
        1 => vec![start],
        _ => {
            let step = (end - start) / (n - 1) as f64;
            (0..n)
                .map(|i| {
                    if i == n - 1 {
                        end
                    } else {
                        start + i as f64 * step
                    }
                })
                .collect()
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::conformance;

    fn max_rel_err(ours: &[f64], reference: &tch::Tensor) -> f64 {
        let reference = Vec::<f64>::try_from(reference).unwrap();
        assert_eq!(ours.len(), reference.len());
        ours.iter()
            .zip(&reference)
            .map(|(a, b)| ((a - b) / b).abs())
            .fold(0.0, f64::max)
    }

    #[test]
    fn schedules_match_the_reference_tables() {
        let Some(kit) = conformance::load("schedules/alphas_cumprod.safetensors") else {
            return;
        };
        for (cfg, name) in [
            (DiffusionConfig::default(), "sd_scaled_linear"),
            (DiffusionConfig::dit(), "dit_linear"),
        ] {
            let betas = max_rel_err(&cfg.betas(), &kit[&format!("{name}_betas")]);
            let abar = max_rel_err(
                &cfg.alphas_cumprod(),
                &kit[&format!("{name}_alphas_cumprod")],
            );
            eprintln!("{name}: betas rel err {betas:e}, alphas_cumprod rel err {abar:e}");
            assert!(betas < 1e-12 && abar < 1e-12, "{name}: {betas:e} {abar:e}");
        }
    }

    #[test]
    fn config_round_trips_through_json() {
        let cfg = DiffusionConfig::dit();
        let text = serde_json::to_string(&cfg).unwrap();
        assert_eq!(serde_json::from_str::<DiffusionConfig>(&text).unwrap(), cfg);
    }
}
