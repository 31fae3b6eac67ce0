//! The paper's Fig. 4 as a picture: the confidence map C beside the input
//! with every patch tinted by its group (green simple, yellow medium, red
//! hard; more groups interpolate), so a user sees where PGS spent its steps.

use super::Upscaled;
use crate::resize::bicubic::upsample_bicubic;
use anyhow::Result;
use tch::{Kind, Tensor};

/// The longest side of either half of the figure: a figure of a large image
/// at full output size would cost more memory than the tiled upscale itself.
pub const MAX_SIDE: i64 = 1024;

/// The size (h, w) of each half of the figure for an output of `oh` x `ow`:
/// the output's, or scaled down to `MAX_SIDE` on the longer side.
pub fn half_size(oh: i64, ow: i64) -> (i64, i64) {
    let shrink = (MAX_SIDE as f64 / oh.max(ow) as f64).min(1.0);
    (((oh as f64 * shrink).round() as i64).max(1), ((ow as f64 * shrink).round() as i64).max(1))
}

/// (1, 3, H, 2W) in [0, 1] for halves of `(h, w)`: confidence (gray) |
/// input `lr` (bicubic) with group tints.
pub fn qmap_figure(up: &Upscaled, lr: &Tensor, (h, w): (i64, i64)) -> Result<Tensor> {
    let bicubic = upsample_bicubic(&lr.to_kind(Kind::Float), h as usize, w as usize)?.clamp(0.0, 1.0);
    let (lh, lw) = up.valid_latent;
    let conf = confidence_shade(&up.confidence.narrow(2, 0, lh).narrow(3, 0, lw));
    let conf = conf
        .upsample_nearest2d([h, w], None, None)
        .repeat([1, 3, 1, 1]);
    let groups = up.stats.patches_per_group.len().max(1);
    let scale_y = h as f64 / lh as f64;
    let scale_x = w as f64 / lw as f64;
    let tint = Tensor::zeros([1, 3, h, w], (Kind::Float, bicubic.device()));
    let count = Tensor::zeros([1, 1, h, w], (Kind::Float, bicubic.device()));
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
        let colour = Tensor::from_slice(&c)
            .view([1, 3, 1, 1])
            .to_device(bicubic.device());
        let _ = tint
            .narrow(2, y0, y1 - y0)
            .narrow(3, x0, x1 - x0)
            .g_add_(&colour);
        let _ = count
            .narrow(2, y0, y1 - y0)
            .narrow(3, x0, x1 - x0)
            .g_add_scalar_(1.0);
    }
    let tint = tint / count.clamp_min(1.0);
    let over = &bicubic * 0.55 + tint * 0.45;
    Ok(Tensor::cat(&[conf, over], 3).clamp(0.0, 1.0))
}

/// Gray levels for C, given log C: -log(1 - C), stretched to [0, 1] over the
/// image (bright = confident). A GRM trained with Eq. 6 puts C within 1e-9
/// of 1 on most pixels, where a linear scale shows a white square; the log
/// scale shows the order PGS groups by, for any confidence range.
pub fn confidence_shade(log_conf: &Tensor) -> Tensor {
    let l = log_conf.to_kind(Kind::Double);
    // 1 - C = -expm1(log C), exact for log C near 0.
    let v = l.expm1().neg().clamp_min(1e-300).log().neg();
    let (lo, hi) = (v.min().double_value(&[]), v.max().double_value(&[]));
    let shade = if hi - lo > 1e-12 {
        (v - lo) / (hi - lo)
    } else {
        v.ones_like()
    };
    // (A constant map, e.g. a fresh GRM's C = 0.5 everywhere, shows white.)
    shade.to_kind(Kind::Float)
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn shade_keeps_the_order_of_confidences_near_one() {
        let c = Tensor::from_slice(&[0.5f64.ln(), -1e-3, -1e-7, -1e-14]).view([1, 1, 2, 2]);
        let s = Vec::<f32>::try_from(confidence_shade(&c).flatten(0, -1)).unwrap();
        assert_eq!(s[0], 0.0);
        assert_eq!(s[3], 1.0);
        assert!(s[1] > s[0] && s[2] > s[1] && s[3] > s[2], "{s:?}");
        assert_eq!(
            Vec::<f32>::try_from(
                confidence_shade(&Tensor::full(
                    [1, 1, 2, 2],
                    0.5f64.ln(),
                    (Kind::Double, tch::Device::Cpu)
                ))
                .flatten(0, -1)
            )
            .unwrap(),
            vec![1.0; 4]
        );
    }
}
