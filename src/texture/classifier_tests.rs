use super::*;
use crate::conformance::max_abs_diff;
use tch::Device;

fn tiny() -> (nn::VarStore, TextureClassifier) {
    tch::manual_seed(0);
    let vs = nn::VarStore::new(Device::Cpu);
    let t = TextureClassifier::new(&vs.root(), &TextureConfig::tiny()).unwrap();
    (vs, t)
}

#[test]
fn weights_are_named_by_module_path() {
    let (vs, _) = tiny();
    let names = vs.variables();
    for key in ["stem.weight", "blocks.0.conv.weight", "blocks.1.conv.bias", "blocks.2.norm.weight", "proj.weight"] {
        assert!(names.contains_key(key), "missing {key}; have {:?}", names.keys());
    }
    assert_eq!(names["proj.weight"].size(), [32, 64], "proj sees mean and std of 2 * width channels");
}

#[test]
fn keys_are_unit_vectors_for_any_patch_size() {
    let (_vs, t) = tiny();
    for (h, w) in [(16, 16), (7, 9), (1, 1)] {
        let x = Tensor::randn([3, 4, h, w], (Kind::Float, Device::Cpu));
        let k = tch::no_grad(|| t.keys(&x)).unwrap();
        assert_eq!(k.size(), [3, 32]);
        let norms = k.norm_scalaropt_dim(2, [1i64].as_slice(), false);
        assert!(max_abs_diff(&norms, &norms.ones_like()) < 1e-5);
    }
}

#[test]
fn a_key_does_not_depend_on_the_rest_of_the_batch() {
    let (_vs, t) = tiny();
    let x = Tensor::randn([10, 4, 16, 16], (Kind::Float, Device::Cpu));
    let all = t.keys_batched(&x, 4).unwrap();
    let one = tch::no_grad(|| t.keys(&x.narrow(0, 7, 1))).unwrap();
    assert!(max_abs_diff(&all.narrow(0, 7, 1), &one) < 1e-5);
    assert!(max_abs_diff(&all, &tch::no_grad(|| t.keys(&x)).unwrap()) < 1e-5);
}

#[test]
fn wrong_channel_count_is_an_error() {
    let (_vs, t) = tiny();
    assert!(t.forward(&Tensor::zeros([1, 3, 16, 16], (Kind::Float, Device::Cpu))).is_err());
}

#[test]
fn nt_xent_matches_hand_computation() {
    // Two orthogonal patches, each view identical to its partner. Every row
    // sees logits (0, 1/T, 0) for (other patch, partner, other's partner):
    // loss = ln(2 + e^(1/T)) - 1/T.
    let z = Tensor::from_slice(&[1.0f32, 0.0, 0.0, 3.0]).reshape([2, 2]);
    let got = contrastive_loss(&z, &(&z * 2.0), 0.5).unwrap().double_value(&[]);
    let want = (2.0 + 2f64.exp()).ln() - 2.0;
    assert!((got - want).abs() < 1e-6, "{got} vs {want}");
}

#[test]
fn nt_xent_prefers_matching_views() {
    tch::manual_seed(1);
    let z1 = Tensor::randn([16, 32], (Kind::Float, Device::Cpu));
    let close = &z1 + Tensor::randn([16, 32], (Kind::Float, Device::Cpu)) * 0.1;
    let shuffled = close.roll([1i64].as_slice(), [0i64].as_slice());
    let good = contrastive_loss(&z1, &close, 0.1).unwrap().double_value(&[]);
    let bad = contrastive_loss(&z1, &shuffled, 0.1).unwrap().double_value(&[]);
    assert!(good < 0.1 && bad > 5.0, "matched {good}, shuffled {bad}");
}

#[test]
fn nt_xent_rejects_bad_input() {
    let z = Tensor::ones([4, 8], (Kind::Float, Device::Cpu));
    assert!(contrastive_loss(&z, &z.narrow(0, 0, 3), 0.1).is_err());
    assert!(contrastive_loss(&z, &z, 0.0).is_err());
}
