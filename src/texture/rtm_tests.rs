use super::*;
use tch::nn;

fn classifier() -> (nn::VarStore, TextureClassifier) {
    tch::manual_seed(0);
    let vs = nn::VarStore::new(Device::Cpu);
    let t = TextureClassifier::new(&vs.root(), &TextureConfig::tiny()).unwrap();
    (vs, t)
}

fn pool(n: i64) -> (Tensor, Vec<String>) {
    let values = Tensor::randn([n, 4, 16, 16], (Kind::Float, Device::Cpu));
    (values, (0..n).map(|i| format!("pool/{i}")).collect())
}

/// Writes a file the way `save` does, but with whatever tensors and header.
fn write_raw(path: &Path, tensors: &[(&str, &Tensor)], meta: Option<&RtmMeta>) {
    let bytes: Vec<Vec<u8>> = tensors.iter().map(|(_, t)| f32_bytes(t).unwrap()).collect();
    let views: Vec<_> = tensors
        .iter()
        .zip(&bytes)
        .map(|((name, t), b)| (*name, safetensors::tensor::TensorView::new(Dtype::F32, dims(t), b).unwrap()))
        .collect();
    let header = meta.map(|m| HashMap::from([(META_KEY.to_string(), serde_json::to_string(m).unwrap())]));
    safetensors::serialize_to_file(views, header, path).unwrap();
}

#[test]
fn build_keeps_the_sampled_entries_with_their_provenance() {
    let (_vs, t) = classifier();
    let (values, names) = pool(50);
    let rtm = Rtm::build(&values, &t, 10, 3, names.clone()).unwrap();
    assert_eq!(rtm.len(), 10);
    assert_eq!(rtm.meta.pool_size, 50);
    assert_eq!(rtm.meta.texture, TextureConfig::tiny());
    for (j, name) in rtm.meta.provenance.iter().enumerate() {
        let i: i64 = name.strip_prefix("pool/").unwrap().parse().unwrap();
        assert!(rtm.values.get(j as i64).equal(&values.get(i)), "entry {j} is not {name}");
        let key = tch::no_grad(|| t.keys(&values.narrow(0, i, 1))).unwrap();
        assert!(crate::conformance::max_abs_diff(&rtm.keys.narrow(0, j as i64, 1), &key) < 1e-5);
    }
    let again = Rtm::build(&values, &t, 10, 3, names).unwrap();
    assert_eq!(again.meta, rtm.meta, "building is repeatable");
    assert!(again.keys.equal(&rtm.keys) && again.values.equal(&rtm.values));
}

#[test]
fn build_rejects_patches_of_the_wrong_shape() {
    let (_vs, t) = classifier();
    let (values, names) = pool(5);
    let err = Rtm::build(&values.narrow(2, 0, 8), &t, 2, 0, names).unwrap_err();
    assert!(err.to_string().contains("(N, 4, 16, 16)"), "{err}");
}

#[test]
fn save_load_round_trip_keeps_keys_exact_and_values_to_half_precision() {
    let (_vs, t) = classifier();
    let (values, names) = pool(30);
    let rtm = Rtm::build(&values, &t, 8, 1, names).unwrap();
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("rtm.safetensors");
    rtm.save(&path).unwrap();
    let back = Rtm::load(&path, Device::Cpu).unwrap();
    assert!(back.keys.equal(&rtm.keys));
    assert!(back.values.equal(&rtm.values.to_kind(Kind::Half).to_kind(Kind::Float)));
    assert!((&back.values - &rtm.values).abs().max().double_value(&[]) > 0.0, "values are stored in half precision");
    assert_eq!(back.meta, rtm.meta);
}

#[test]
fn broken_files_give_errors_naming_the_file_and_the_problem() {
    let (_vs, t) = classifier();
    let (values, names) = pool(12);
    let rtm = Rtm::build(&values, &t, 4, 0, names).unwrap();
    let dir = tempfile::tempdir().unwrap();
    let check = |file: &str, expect: &str| {
        let path = dir.path().join(file);
        let msg = format!("{:#}", Rtm::load(&path, Device::Cpu).unwrap_err());
        assert!(msg.contains(file) && msg.contains(expect), "{file}: {msg}");
    };

    std::fs::write(dir.path().join("garbage.safetensors"), b"not a tensor file at all").unwrap();
    check("garbage.safetensors", "not a safetensors file");

    write_raw(&dir.path().join("bare.safetensors"), &[("keys", &rtm.keys), ("values", &rtm.values)], None);
    check("bare.safetensors", "not a texture memory");

    write_raw(&dir.path().join("no_values.safetensors"), &[("keys", &rtm.keys)], Some(&rtm.meta));
    check("no_values.safetensors", "missing tensor `values`");

    let extra = Tensor::cat(&[&rtm.values, &rtm.values.narrow(0, 0, 1)], 0);
    write_raw(&dir.path().join("mismatch.safetensors"), &[("keys", &rtm.keys), ("values", &extra)], Some(&rtm.meta));
    check("mismatch.safetensors", "same M");

    let scaled = &rtm.keys * 2.0;
    write_raw(&dir.path().join("unnormalised.safetensors"), &[("keys", &scaled), ("values", &rtm.values)], Some(&rtm.meta));
    check("unnormalised.safetensors", "not unit vectors");

    check("does_not_exist.safetensors", "cannot read");
}

#[test]
fn provenance_must_cover_every_entry() {
    let (_vs, t) = classifier();
    let (values, names) = pool(6);
    let rtm = Rtm::build(&values, &t, 3, 0, names).unwrap();
    let meta = RtmMeta { provenance: vec!["only one".into()], ..rtm.meta.clone() };
    let err = Rtm::new(rtm.keys.shallow_clone(), rtm.values.shallow_clone(), meta).unwrap_err();
    assert!(err.to_string().contains("provenance"), "{err}");
}
