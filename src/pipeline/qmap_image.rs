//! The paper's Fig. 4 as a picture: the confidence map C beside the input
//! with every patch tinted by its group (green simple, yellow medium, red
//! hard; more groups interpolate), so a user sees where PGS spent its steps.

use super::Upscaled;
use tch::{Kind, Tensor};

/// (1, 3, H, 2W) in [0, 1]: confidence (gray) | input with group tints.
pub fn qmap_figure(up: &Upscaled) -> Tensor {
    let (h, w) = (up.bicubic.size()[2], up.bicubic.size()[3]);
    let (lh, lw) = up.valid_latent;
    let conf = up.confidence.narrow(2, 0, lh).narrow(3, 0, lw).to_kind(Kind::Float);
    let conf = conf.upsample_nearest2d([h, w], None, None).repeat([1, 3, 1, 1]);
    let groups = up.stats.patches_per_group.len().max(1);
    let scale_y = h as f64 / lh as f64;
    let scale_x = w as f64 / lw as f64;
    let tint = Tensor::zeros([1, 3, h, w], (Kind::Float, up.bicubic.device()));
    let count = Tensor::zeros([1, 1, h, w], (Kind::Float, up.bicubic.device()));
    let v = up.grid.v;
    for (&(y, x), &g) in up.grid.positions.iter().zip(&up.assignment) {
        let y0 = ((y as f64) * scale_y) as i64;
        let x0 = ((x as f64) * scale_x) as i64;
        let y1 = (((y + v) as f64) * scale_y).min(h as f64) as i64;
        let x1 = (((x + v) as f64) * scale_x).min(w as f64) as i64;
        if y0 >= h || x0 >= w || y1 <= y0 || x1 <= x0 {
            continue;
        }
        let c = group_colour(g, groups);
        let colour = Tensor::from_slice(&c).view([1, 3, 1, 1]).to_device(up.bicubic.device());
        let _ = tint.narrow(2, y0, y1 - y0).narrow(3, x0, x1 - x0).g_add_(&colour);
        let _ = count.narrow(2, y0, y1 - y0).narrow(3, x0, x1 - x0).g_add_scalar_(1.0);
    }
    let tint = tint / count.clamp_min(1.0);
    let over = &up.bicubic * 0.55 + tint * 0.45;
    Tensor::cat(&[conf, over], 3).clamp(0.0, 1.0)
}

/// Green (group 0, simple) through yellow to red (last group, hard).
fn group_colour(g: usize, groups: usize) -> [f32; 3] {
    if groups <= 1 {
        return [1.0, 0.0, 0.0];
    }
    let a = g as f32 / (groups - 1) as f32;
    if a <= 0.5 {
        [2.0 * a, 1.0, 0.0]
    } else {
        [1.0, 2.0 * (1.0 - a), 0.0]
    }
}
