//! Where the regions of `regions` lie: their size for a count, their
//! aligned starts along an axis, the largest one (what the memory plan
//! prices). Geometry only, so the sampling options and the memory plan can
//! name it without the code that runs the regions.

use serde::{Deserialize, Serialize};

/// Region geometry in LR pixels.
#[derive(Serialize, Deserialize, Clone, Copy, Debug, PartialEq, Eq)]
pub struct RegionTiles {
    /// Longest side of a region (the last row and column may be up to
    /// `alignment - 1` longer, to end at the border on an aligned start).
    pub tile: i64,
    /// Band two neighbouring regions share at least, and cross-fade over.
    pub overlap: i64,
}

impl RegionTiles {
    /// The smallest aligned regions that cover `len` LR px in `n` regions
    /// overlapping by two alignments (48 px, 192 output px, for the
    /// shipped model: wider than the autoencoder tiles' overlap).
    pub fn for_count(len: i64, n: i64, alignment: i64) -> Self {
        let a = alignment.max(1);
        let overlap = 2 * a;
        let n = n.max(1);
        let tile = ceil_to(ceil_div(len + (n - 1) * overlap, n), a).max(2 * overlap);
        Self { tile, overlap }
    }

    /// The largest side a region of these tiles can have.
    pub fn max_side(&self, alignment: i64) -> i64 {
        self.tile + alignment.max(1) - 1
    }
}

/// The smallest region side `for_count` hands out: four alignments.
pub fn min_tile(alignment: i64) -> i64 {
    4 * alignment.max(1)
}

fn ceil_div(a: i64, b: i64) -> i64 {
    (a + b - 1) / b
}

fn ceil_to(a: i64, m: i64) -> i64 {
    ceil_div(a, m) * m
}

/// LR pixels between two region starts that keep the latent and the patch
/// grid aligned: the smallest o with o * s / f a whole multiple of the PGS
/// stride, i.e. f * stride / gcd(s, f * stride).
pub fn alignment(scale: i64, factor: i64, stride: i64) -> i64 {
    let fs = factor * stride;
    fs / gcd(scale, fs)
}

fn gcd(a: i64, b: i64) -> i64 {
    if b == 0 {
        a.abs()
    } else {
        gcd(b, a % b)
    }
}

/// (start, size) of the regions along one axis of `len` LR px: the fewest
/// regions of at most `tile` px that overlap by `overlap`, shrunk to share
/// the axis evenly, on aligned starts; the last starts at the largest
/// aligned offset that leaves it a whole region (or, if that is no further
/// on, the one before it is stretched to the end). Neighbours overlap by at
/// least `overlap`, and no region is longer than `max_side`.
pub fn spans(len: i64, tiles: &RegionTiles, alignment: i64) -> Vec<(i64, i64)> {
    let (n, t, last) = axis(len, tiles, alignment);
    (0..n).map(|k| if k + 1 < n { (k * (t - tiles.overlap), t) } else { (last, len - last) }).collect()
}

/// The regions along one axis without listing them: their count, the side
/// of all but the last, and the last one's start.
fn axis(len: i64, tiles: &RegionTiles, alignment: i64) -> (i64, i64, i64) {
    let RegionTiles { tile, overlap } = *tiles;
    if len <= tile {
        return (1, len, 0);
    }
    let n = ceil_div(len - overlap, tile - overlap);
    let t = ceil_to(ceil_div(len + (n - 1) * overlap, n), alignment).min(tile);
    let last = (len - t) / alignment * alignment;
    let before = (n - 2) * (t - overlap);
    if last > before {
        (n, t, last)
    } else {
        (n - 1, t, before)
    }
}

/// The largest region (rows, columns) an `h` x `w` image is cut into.
pub fn largest_region(h: i64, w: i64, tiles: &RegionTiles, alignment: i64) -> (i64, i64) {
    let longest = |len| {
        let (_, t, last) = axis(len, tiles, alignment);
        t.max(len - last)
    };
    (longest(h), longest(w))
}
