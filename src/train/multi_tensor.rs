//! libtorch's multi-tensor optimizer operators: fused AdamW, foreach lerp
//! (the EMA) and foreach norm (the gradient clip), through the C++ shims of
//! `csrc/multi_tensor.cpp`.
//!
//! Why: one tensor at a time, a training step's optimizer, clip and EMA are
//! about a dozen kernel launches per parameter tensor; on a GPU, for networks
//! as small as ours, that costs as much as the forward and backward passes.
//! These are the operators `torch.optim.AdamW(fused=True)`,
//! `clip_grad_norm_` and `torch._foreach_lerp_` run: a few launches per step.

use anyhow::{bail, Result};
use std::ffi::{c_char, CStr};
use tch::Tensor;
use torch_sys::C_tensor;

mod ffi {
    use super::*;
    extern "C" {
        #[allow(clippy::too_many_arguments)]
        pub fn ps_fused_adamw_(
            params: *const *const C_tensor,
            grads: *const *const C_tensor,
            exp_avgs: *const *const C_tensor,
            exp_avg_sqs: *const *const C_tensor,
            n: i64,
            step: *const C_tensor,
            lr: f64,
            beta1: f64,
            beta2: f64,
            weight_decay: f64,
            eps: f64,
            grad_scale: *const C_tensor,
        ) -> *mut c_char;
        pub fn ps_foreach_lerp_(
            this: *const *const C_tensor,
            end: *const *const C_tensor,
            n: i64,
            weight: f64,
        ) -> *mut c_char;
        pub fn ps_grads_to_none(tensors: *const *const C_tensor, n: i64) -> *mut c_char;
        pub fn ps_foreach_norm(
            tensors: *const *const C_tensor,
            n: i64,
            out: *mut *mut C_tensor,
        ) -> *mut c_char;
    }
}

/// The shims' error convention: null, or a malloc'd message.
fn check(what: &str, err: *mut c_char) -> Result<()> {
    if err.is_null() {
        return Ok(());
    }
    // SAFETY: a NUL-terminated string from strdup, ours to free.
    let message = unsafe {
        let m = CStr::from_ptr(err).to_string_lossy().into_owned();
        libc::free(err.cast());
        m
    };
    bail!("{what}: {message}")
}

fn handles(tensors: &[&Tensor]) -> Vec<*const C_tensor> {
    tensors.iter().map(|t| t.as_ptr()).collect()
}

/// The hyper-parameters of one fused AdamW update.
#[derive(Debug, Clone, Copy)]
pub struct AdamWStep {
    pub lr: f64,
    pub beta1: f64,
    pub beta2: f64,
    pub weight_decay: f64,
    pub eps: f64,
}

/// One AdamW update of `params` in place (with their moments), as
/// `torch.optim.AdamW(fused=True)`: `step` is a float32 scalar on the
/// parameters' device holding the number of updates including this one;
/// gradients are divided by `grad_scale` (a scalar) first when given.
pub fn fused_adamw_(
    params: &[&Tensor],
    grads: &[&Tensor],
    exp_avgs: &[&Tensor],
    exp_avg_sqs: &[&Tensor],
    step: &Tensor,
    h: AdamWStep,
    grad_scale: Option<&Tensor>,
) -> Result<()> {
    let n = params.len();
    if [grads.len(), exp_avgs.len(), exp_avg_sqs.len()] != [n, n, n] {
        bail!("fused AdamW: {n} parameters but {} gradients, {} and {} moments", grads.len(), exp_avgs.len(), exp_avg_sqs.len());
    }
    if n == 0 {
        return Ok(());
    }
    let (p, g, m, v) = (handles(params), handles(grads), handles(exp_avgs), handles(exp_avg_sqs));
    let scale = grad_scale.map_or(std::ptr::null(), |s| s.as_ptr());
    // SAFETY: every pointer is a live tch tensor borrowed for the call; the
    // shim copies the handles and catches every C++ exception.
    let err = unsafe {
        ffi::ps_fused_adamw_(
            p.as_ptr(), g.as_ptr(), m.as_ptr(), v.as_ptr(), n as i64, step.as_ptr(),
            h.lr, h.beta1, h.beta2, h.weight_decay, h.eps, scale,
        )
    };
    check("fused AdamW", err)
}

/// `this[i] += weight * (end[i] - this[i])` for every i, in place.
pub fn foreach_lerp_(this: &[&Tensor], end: &[&Tensor], weight: f64) -> Result<()> {
    if this.len() != end.len() {
        bail!("foreach lerp: {} tensors against {}", this.len(), end.len());
    }
    if this.is_empty() {
        return Ok(());
    }
    let (a, b) = (handles(this), handles(end));
    // SAFETY: as in `fused_adamw_`.
    let err = unsafe { ffi::ps_foreach_lerp_(a.as_ptr(), b.as_ptr(), a.len() as i64, weight) };
    check("foreach lerp", err)
}

/// Drops the gradients of `tensors` (PyTorch's `zero_grad(set_to_none=True)`):
/// after it `grad()` is undefined until a backward pass reaches the tensor.
pub fn grads_to_none(tensors: &[&Tensor]) -> Result<()> {
    let t = handles(tensors);
    // SAFETY: as in `fused_adamw_`.
    let err = unsafe { ffi::ps_grads_to_none(t.as_ptr(), t.len() as i64) };
    check("zero grad", err)
}

/// The joint L2 norm of all `tensors`, a float32 scalar on their device
/// (no host synchronisation).
pub fn foreach_norm(tensors: &[&Tensor]) -> Result<Tensor> {
    if tensors.is_empty() {
        bail!("foreach norm of no tensors");
    }
    let t = handles(tensors);
    let mut out: *mut C_tensor = std::ptr::null_mut();
    // SAFETY: as in `fused_adamw_`; on success `out` is a new tensor handle
    // that the returned `Tensor` owns.
    let err = unsafe { ffi::ps_foreach_norm(t.as_ptr(), t.len() as i64, &mut out) };
    check("foreach norm", err)?;
    // SAFETY: a handle made by `new at::Tensor`, as tch's own are.
    Ok(unsafe { Tensor::from_ptr(out) })
}

#[cfg(test)]
mod tests {
    use super::*;
    use tch::{Device, Kind};

    #[test]
    fn norm_is_the_joint_l2_norm() {
        let a = Tensor::from_slice(&[3.0f32, 0.0]);
        let b = Tensor::from_slice(&[4.0f32]).view([1, 1]);
        let n = foreach_norm(&[&a, &b]).unwrap();
        assert_eq!(n.kind(), Kind::Float);
        assert_eq!(n.double_value(&[]), 5.0);
    }

    #[test]
    fn lerp_moves_each_tensor_towards_its_end() {
        let a = Tensor::zeros([2], (Kind::Float, Device::Cpu));
        let b = Tensor::ones([3], (Kind::Float, Device::Cpu));
        let (ea, eb) = (Tensor::from_slice(&[4.0f32, 8.0]), Tensor::full([3], -2.0, (Kind::Float, Device::Cpu)));
        foreach_lerp_(&[&a, &b], &[&ea, &eb], 0.25).unwrap();
        assert_eq!(Vec::<f32>::try_from(&a).unwrap(), [1.0, 2.0]);
        assert_eq!(Vec::<f32>::try_from(&b).unwrap(), [0.25, 0.25, 0.25]);
    }

    #[test]
    fn gradients_set_to_none_are_undefined_until_the_next_backward() {
        let p = Tensor::ones([2], (Kind::Float, Device::Cpu)).set_requires_grad(true);
        (&p * 3.0).sum(Kind::Float).backward();
        assert!(p.grad().defined());
        grads_to_none(&[&p]).unwrap();
        assert!(!p.grad().defined());
        (&p * 2.0).sum(Kind::Float).backward();
        assert_eq!(Vec::<f32>::try_from(&p.grad()).unwrap(), [2.0, 2.0], "a fresh gradient, not an accumulated one");
    }

    #[test]
    fn a_libtorch_error_is_an_error_not_an_abort() {
        let a = Tensor::zeros([2], (Kind::Float, Device::Cpu));
        let b = Tensor::zeros([3], (Kind::Float, Device::Cpu));
        let err = foreach_lerp_(&[&a], &[&b], 0.5).unwrap_err().to_string();
        assert!(err.starts_with("foreach lerp:"), "{err}");
    }
}
