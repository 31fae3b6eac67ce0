//! Retrieval of texture priors (paper Algorithm 2): the K memory entries
//! whose keys are most similar to the coarse HR patch's own key.

use super::classifier::TextureClassifier;
use super::rtm::Rtm;
use anyhow::{bail, Result};
use tch::Tensor;

/// For coarse HR patches `y0` (B, c, V, V): the priors (B, K, c, V, V) and
/// their cosine similarities (B, K), most similar first. The similarities
/// go to Patch-DiT with the priors, so it can weigh a poor match less.
/// `classifier` must be the T that keyed the memory.
pub fn retrieve(rtm: &Rtm, classifier: &TextureClassifier, y0: &Tensor, k: i64) -> Result<(Tensor, Tensor)> {
    let values = rtm.values.size();
    let size = y0.size();
    if size.len() != 4 || size[1..] != values[1..] {
        bail!("retrieval: patches must be (B, {}, {}, {}) like the memory's, got {size:?}", values[1], values[2], values[3]);
    }
    if k < 1 || k > rtm.len() {
        bail!("retrieval: cannot take the top {k} of {} memory entries", rtm.len());
    }
    tch::no_grad(|| {
        let query = classifier.keys(y0)?.to_device(rtm.keys.device()).to_kind(rtm.keys.kind());
        if query.size()[1] != rtm.keys.size()[1] {
            bail!("retrieval: classifier gives {}-d keys, the memory holds {}-d", query.size()[1], rtm.keys.size()[1]);
        }
        let sims = query.matmul(&rtm.keys.tr());
        let (top_sims, top_idx) = sims.topk(k, 1, true, true);
        let priors = rtm.values.index_select(0, &top_idx.flatten(0, -1)).reshape([size[0], k, values[1], values[2], values[3]]);
        Ok((priors, top_sims))
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::conformance::max_abs_diff;
    use crate::texture::TextureConfig;
    use tch::{nn, Device, Kind};

    fn memory() -> (nn::VarStore, TextureClassifier, Rtm, Tensor) {
        tch::manual_seed(0);
        let vs = nn::VarStore::new(Device::Cpu);
        let t = TextureClassifier::new(&vs.root(), &TextureConfig::tiny()).unwrap();
        let pool = Tensor::randn([40, 4, 16, 16], (Kind::Float, Device::Cpu));
        let names = (0..40).map(|i| format!("pool/{i}")).collect();
        let rtm = Rtm::build(&pool, &t, 12, 0, names).unwrap();
        (vs, t, rtm, pool)
    }

    #[test]
    fn a_patch_stored_in_the_memory_retrieves_itself_first_with_similarity_one() {
        let (_vs, t, rtm, _) = memory();
        let y0 = rtm.values.narrow(0, 5, 1).shallow_clone();
        let (priors, sims) = retrieve(&rtm, &t, &y0, 3).unwrap();
        assert_eq!(priors.size(), [1, 3, 4, 16, 16]);
        assert_eq!(sims.size(), [1, 3]);
        assert!((sims.double_value(&[0, 0]) - 1.0).abs() < 1e-5, "sim {}", sims.double_value(&[0, 0]));
        assert_eq!(max_abs_diff(&priors.get(0).get(0), &y0.get(0)), 0.0);
    }

    #[test]
    fn top_k_is_sorted_and_matches_the_brute_force_ranking() {
        let (_vs, t, rtm, pool) = memory();
        let y0 = pool.narrow(0, 0, 6);
        let k = 5;
        let (priors, sims) = retrieve(&rtm, &t, &y0, k).unwrap();
        let all = tch::no_grad(|| t.keys(&y0)).unwrap().matmul(&rtm.keys.tr());
        for b in 0..6 {
            let row: Vec<f32> = Vec::try_from(sims.get(b)).unwrap();
            assert!(row.windows(2).all(|w| w[0] >= w[1]), "not descending: {row:?}");
            let mut brute: Vec<f32> = Vec::try_from(all.get(b)).unwrap();
            brute.sort_by(|a, b| b.total_cmp(a));
            for (got, want) in row.iter().zip(&brute) {
                assert!((got - want).abs() < 1e-6);
            }
        }
        // Each prior is the memory value its similarity belongs to.
        let query = tch::no_grad(|| t.keys(&y0)).unwrap();
        let prior_keys = tch::no_grad(|| t.keys(&priors.flatten(0, 1))).unwrap().reshape([6, k, -1]);
        let recomputed = prior_keys.matmul(&query.unsqueeze(2)).squeeze_dim(2);
        assert!(max_abs_diff(&recomputed, &sims) < 1e-5);
    }

    #[test]
    fn bad_requests_are_errors() {
        let (_vs, t, rtm, pool) = memory();
        assert!(retrieve(&rtm, &t, &pool.narrow(0, 0, 1), 13).is_err());
        assert!(retrieve(&rtm, &t, &pool.narrow(0, 0, 1), 0).is_err());
        assert!(retrieve(&rtm, &t, &pool.narrow(0, 0, 1).narrow(2, 0, 8), 2).is_err());
    }
}
