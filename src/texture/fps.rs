//! Farthest point sampling (paper Algorithm 1 step 4): the subset of the
//! RTM keys that covers the key space, so that 2,000 entries keep rare
//! textures that a random 10% subset would drop.
//!
//! Greedy: start from one key, then repeatedly add the key farthest from
//! everything chosen so far. Each step updates every key's distance to its
//! nearest chosen key with one (N, D) tensor operation: O(N * M) work.

use super::classifier::l2_normalize;
use anyhow::{bail, Result};
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;
use tch::{Kind, Tensor};

/// Indices of `m` distinct rows of `keys` (N, D), in the order chosen. The
/// keys are L2-normalised first, so the distance is a function of cosine
/// similarity, the measure retrieval ranks by. The first index is drawn
/// from `seed`; the rest is deterministic.
pub fn farthest_point_sampling(keys: &Tensor, m: i64, seed: u64) -> Result<Vec<i64>> {
    let size = keys.size();
    if size.len() != 2 || size[0] < 1 {
        bail!("farthest point sampling: keys must be (N >= 1, D), got {size:?}");
    }
    let n = size[0];
    if m < 1 || m > n {
        bail!("farthest point sampling: cannot pick {m} of {n} keys");
    }
    tch::no_grad(|| {
        let x = l2_normalize(&keys.to_kind(Kind::Float));
        let start = ChaCha8Rng::seed_from_u64(seed).random_range(0..n);
        let mut chosen = Vec::with_capacity(m as usize);
        let mut nearest = Tensor::full([n], f64::INFINITY, (Kind::Float, x.device()));
        let mut next = start;
        loop {
            chosen.push(next);
            if chosen.len() as i64 == m {
                return Ok(chosen);
            }
            let dist = (&x - x.get(next)).square().sum_dim_intlist([1i64].as_slice(), false, Kind::Float);
            nearest = nearest.minimum(&dist);
            // Never pick a key twice, even among exact duplicates.
            let _ = nearest.get(next).fill_(-1.0);
            next = nearest.argmax(0, false).int64_value(&[]);
        }
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use tch::Device;

    /// `clusters` tight groups of `per` keys around orthogonal directions.
    fn clustered(clusters: i64, per: i64) -> Tensor {
        tch::manual_seed(3);
        let dim = 8;
        let centres = Tensor::eye(dim, (Kind::Float, Device::Cpu)).narrow(0, 0, clusters);
        let points = centres.repeat_interleave_self_int(per, 0, None);
        points + Tensor::randn([clusters * per, dim], (Kind::Float, Device::Cpu)) * 0.05
    }

    #[test]
    fn picks_one_key_per_well_separated_cluster() {
        let (clusters, per) = (5, 30);
        let keys = clustered(clusters, per);
        for seed in 0..4 {
            let picked = farthest_point_sampling(&keys, clusters, seed).unwrap();
            let mut cluster_ids: Vec<i64> = picked.iter().map(|i| i / per).collect();
            cluster_ids.sort();
            assert_eq!(cluster_ids, (0..clusters).collect::<Vec<_>>(), "seed {seed}: picked {picked:?}");
        }
    }

    #[test]
    fn is_deterministic_for_a_seed() {
        let keys = clustered(5, 30);
        let a = farthest_point_sampling(&keys, 40, 7).unwrap();
        assert_eq!(a, farthest_point_sampling(&keys, 40, 7).unwrap());
        assert_ne!(a[0], farthest_point_sampling(&keys, 40, 8).unwrap()[0], "the seed picks the start");
    }

    #[test]
    fn picks_distinct_indices_even_among_duplicates() {
        let keys = Tensor::ones([6, 3], (Kind::Float, Device::Cpu));
        let mut picked = farthest_point_sampling(&keys, 6, 0).unwrap();
        picked.sort();
        assert_eq!(picked, vec![0, 1, 2, 3, 4, 5]);
    }

    #[test]
    fn impossible_requests_are_errors() {
        let keys = clustered(2, 3);
        assert!(farthest_point_sampling(&keys, 7, 0).is_err());
        assert!(farthest_point_sampling(&keys, 0, 0).is_err());
        assert!(farthest_point_sampling(&keys.flatten(0, -1), 1, 0).is_err());
    }
}
