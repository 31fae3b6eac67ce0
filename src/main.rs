fn main() {
    let t = tch::Tensor::from_slice(&[1f32, 2., 3.]);
    println!("{}", t.sum(tch::Kind::Float).double_value(&[]));
}
