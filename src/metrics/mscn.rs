//! Mean-subtracted, contrast-normalised (MSCN) coefficients, NIQE's Eq. 1:
//! (I − μ) / (σ + 1), with μ and σ the local Gaussian-weighted mean and
//! standard deviation. Natural images give MSCN values close to a
//! generalised Gaussian; distortions bend that shape, which NIQE measures.
//!
//! The arithmetic follows BasicSR exactly: the image stays f32, each
//! convolution (scipy `ndimage.convolve`, `mode='nearest'`) sums in f64 and
//! stores f32. NIQE's grid search amplifies tiny differences here (see the
//! conformance README's float32 quirk), so the precision is deliberate.

use super::plane::Plane;

/// Side of NIQE's Gaussian window.
pub const WINDOW: usize = 7;
const HALF: usize = WINDOW / 2;

/// True convolution (window flipped) with edge-replicated borders, summed in
/// f64 in scipy's order (window rows, then columns) and rounded to f32.
fn convolve_nearest(img: &Plane<f32>, window: &[[f64; WINDOW]; WINDOW]) -> Plane<f32> {
    let (h, w) = (img.height, img.width);
    let padded_w = w + 2 * HALF;
    let clamp = |i: usize, n: usize| i.saturating_sub(HALF).min(n - 1);
    let padded: Vec<f64> = (0..h + 2 * HALF)
        .flat_map(|y| (0..padded_w).map(move |x| (y, x)))
        .map(|(y, x)| img.at(clamp(y, h), clamp(x, w)) as f64)
        .collect();

    let mut out = Vec::with_capacity(h * w);
    let mut acc = vec![0f64; w];
    for y in 0..h {
        acc.iter_mut().for_each(|a| *a = 0.0);
        for a in 0..WINDOW {
            let src = &padded[(y + a) * padded_w..][..padded_w];
            for b in 0..WINDOW {
                let weight = window[WINDOW - 1 - a][WINDOW - 1 - b];
                acc.iter_mut()
                    .zip(&src[b..])
                    .for_each(|(s, &v)| *s += v * weight);
            }
        }
        out.extend(acc.iter().map(|&v| v as f32));
    }
    Plane::new(h, w, out)
}

/// The MSCN coefficients of `img` (values in [0, 255]).
pub fn mscn(img: &Plane<f32>, window: &[[f64; WINDOW]; WINDOW]) -> Plane<f32> {
    let mu = convolve_nearest(img, window);
    let second_moment = convolve_nearest(&img.map(|v| v * v), window);
    let data = img
        .data
        .iter()
        .zip(&mu.data)
        .zip(&second_moment.data)
        .map(|((&v, &m), &m2)| {
            // |·| guards against a slightly negative variance from rounding.
            let sigma = (m2 - m * m).abs().sqrt();
            (v - m) / (sigma + 1.0)
        })
        .collect();
    Plane::new(img.height, img.width, data)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn box_window() -> [[f64; WINDOW]; WINDOW] {
        [[1.0 / 49.0; WINDOW]; WINDOW]
    }

    #[test]
    fn flat_image_has_zero_coefficients() {
        let flat = Plane::new(9, 8, vec![120.0; 72]);
        assert!(mscn(&flat, &box_window())
            .data
            .iter()
            .all(|&v| v.abs() < 1e-4));
    }

    #[test]
    fn convolution_flips_the_window_and_replicates_edges() {
        // A single off-centre weight shifts the image; convolution moves it
        // the opposite way to correlation, and the edge value is repeated.
        let mut window = [[0.0; WINDOW]; WINDOW];
        window[HALF][HALF + 1] = 1.0;
        let img = Plane::from_fn(2, 4, |y, x| (10 * y + x) as f32);
        let out = convolve_nearest(&img, &window);
        assert_eq!(out.data, vec![0.0, 0.0, 1.0, 2.0, 10.0, 10.0, 11.0, 12.0]);
    }
}
