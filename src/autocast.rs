//! bf16 autocast on the CPU and on CUDA, for training.
//!
//! tch 0.24's `tch::autocast` calls libtorch's deprecated
//! `at::autocast::set_enabled`, which since PyTorch 2.4 switches CUDA
//! autocast only, so on a CPU it silently runs float32. libtorch's
//! device-aware API (`set_autocast_enabled(DeviceType, bool)`) is exported by
//! `libtorch_cpu` but not wrapped by tch; its functions take only scalars
//! (an `int8` enum and a `bool`), so on x86-64 and aarch64 the C++ calling
//! convention is the C one and they can be called by their mangled names.
//! tch's CUDA autocast would also keep libtorch's CUDA default dtype, fp16,
//! where we want bf16 (no loss scaling needed, same range as f32), so both
//! devices go through the same device-aware calls here.
//! The region follows `torch.autocast`'s `__enter__`/`__exit__`: nesting
//! counter up, enable with bf16 as the dtype; on exit restore the previous
//! state and, when the outermost region closes, drop the cast-weight cache.
//!
//! Under autocast, convolutions, linear layers and matmuls run in bf16 while
//! norms, softmax and losses stay float32, and the weights stay float32
//! masters: the optimizer never sees bf16.

use serde::{Deserialize, Serialize};
use tch::Device;

/// The arithmetic of a run. Training keeps float32 weights, gradients and
/// optimizer state in both; inference with bf16 casts the weights.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, clap::ValueEnum)]
#[serde(rename_all = "lowercase")]
pub enum Precision {
    /// float32 everywhere.
    F32,
    /// bf16 matmuls and convolutions (training: autocast around the forward
    /// pass; inference: bf16 weights).
    Bf16,
}

mod ffi {
    extern "C" {
        #[link_name = "_ZN2at8autocast19is_autocast_enabledEN3c1010DeviceTypeE"]
        pub fn is_autocast_enabled(device: i8) -> bool;
        #[link_name = "_ZN2at8autocast20set_autocast_enabledEN3c1010DeviceTypeEb"]
        pub fn set_autocast_enabled(device: i8, enabled: bool);
        #[link_name = "_ZN2at8autocast18get_autocast_dtypeEN3c1010DeviceTypeE"]
        pub fn get_autocast_dtype(device: i8) -> i8;
        #[link_name = "_ZN2at8autocast18set_autocast_dtypeEN3c1010DeviceTypeENS1_10ScalarTypeE"]
        pub fn set_autocast_dtype(device: i8, dtype: i8);
        #[link_name = "_ZN2at8autocast17increment_nestingEv"]
        pub fn increment_nesting() -> i32;
        #[link_name = "_ZN2at8autocast17decrement_nestingEv"]
        pub fn decrement_nesting() -> i32;
        #[link_name = "_ZN2at8autocast11clear_cacheEv"]
        pub fn clear_cache();
    }
}

/// `c10::DeviceType::CPU`.
const CPU: i8 = 0;
/// `c10::DeviceType::CUDA`.
const CUDA: i8 = 1;
/// `c10::ScalarType::BFloat16` (the tests check that matmuls come out bf16).
const BFLOAT16: i8 = 15;

/// Restores the previous autocast state of one device type when dropped,
/// also on unwinding.
struct Region {
    device: i8,
    was_enabled: bool,
    was_dtype: i8,
}

impl Region {
    fn enter(device: i8) -> Self {
        // SAFETY: plain-scalar functions of libtorch_cpu, which tch links;
        // they touch only thread-local autocast state.
        unsafe {
            let region = Region {
                device,
                was_enabled: ffi::is_autocast_enabled(device),
                was_dtype: ffi::get_autocast_dtype(device),
            };
            ffi::increment_nesting();
            ffi::set_autocast_dtype(device, BFLOAT16);
            ffi::set_autocast_enabled(device, true);
            region
        }
    }
}

impl Drop for Region {
    fn drop(&mut self) {
        // SAFETY: as in `enter`.
        unsafe {
            if ffi::decrement_nesting() == 0 {
                ffi::clear_cache();
            }
            ffi::set_autocast_enabled(self.device, self.was_enabled);
            ffi::set_autocast_dtype(self.device, self.was_dtype);
        }
    }
}

fn device_type(device: Device) -> i8 {
    match device {
        Device::Cpu => CPU,
        _ => CUDA,
    }
}

/// Runs `f` with bf16 autocast on `device` when `enabled`, else plainly.
pub fn autocast<T>(device: Device, enabled: bool, f: impl FnOnce() -> T) -> T {
    if !enabled {
        return f();
    }
    let _region = Region::enter(device_type(device));
    f()
}

/// Runs `f` in float32 even inside an autocast region: for data synthesis
/// (degradations, resizes) that a bf16 training step calls, so the training
/// data does not depend on the precision of the model.
pub fn float32<T>(f: impl FnOnce() -> T) -> T {
    struct Restore([bool; 2]);
    impl Drop for Restore {
        fn drop(&mut self) {
            // SAFETY: as in `Region::enter`.
            unsafe {
                ffi::set_autocast_enabled(CPU, self.0[0]);
                ffi::set_autocast_enabled(CUDA, self.0[1]);
            }
        }
    }
    let _restore = Restore([cpu_enabled(), enabled(Device::Cuda(0))]);
    // SAFETY: as in `Region::enter`.
    unsafe {
        ffi::set_autocast_enabled(CPU, false);
        ffi::set_autocast_enabled(CUDA, false);
    }
    f()
}

/// Whether CPU autocast is on in this thread (for tests and diagnostics).
pub fn cpu_enabled() -> bool {
    enabled(Device::Cpu)
}

/// Whether autocast for `device`'s type is on in this thread.
pub fn enabled(device: Device) -> bool {
    // SAFETY: as in `Region::enter`.
    unsafe { ffi::is_autocast_enabled(device_type(device)) }
}

#[cfg(test)]
mod tests {
    use super::*;
    use tch::{Kind, Tensor};

    #[test]
    fn matmul_runs_in_bf16_inside_and_f32_outside() {
        let a = Tensor::randn([8, 8], (Kind::Float, Device::Cpu));
        assert_eq!(a.matmul(&a).kind(), Kind::Float);
        let (inside, enabled) =
            autocast(Device::Cpu, true, || (a.matmul(&a).kind(), cpu_enabled()));
        assert_eq!(inside, Kind::BFloat16);
        assert!(enabled);
        assert!(!cpu_enabled(), "the region must restore the previous state");
        assert_eq!(a.matmul(&a).kind(), Kind::Float);
        assert_eq!(
            autocast(Device::Cpu, false, || a.matmul(&a).kind()),
            Kind::Float
        );
    }

    #[test]
    fn gradients_reach_float32_weights() {
        let w = Tensor::randn([4, 4], (Kind::Float, Device::Cpu)).set_requires_grad(true);
        let x = Tensor::randn([2, 4], (Kind::Float, Device::Cpu));
        let loss = autocast(Device::Cpu, true, || {
            x.matmul(&w).to_kind(Kind::Float).square().mean(Kind::Float)
        });
        loss.backward();
        let g = w.grad();
        assert_eq!(g.kind(), Kind::Float);
        // Same gradient as float32 to bf16 accuracy.
        let w32 = w.detach().set_requires_grad(true);
        x.matmul(&w32).square().mean(Kind::Float).backward();
        let err = (&g - w32.grad()).abs().max().double_value(&[]);
        let scale = w32.grad().abs().max().double_value(&[]);
        assert!(
            err <= 0.02 * scale,
            "bf16 gradient off by {err} (scale {scale})"
        );
    }

    #[test]
    fn float32_suspends_autocast_inside_a_region() {
        let a = Tensor::randn([4, 4], (Kind::Float, Device::Cpu));
        autocast(Device::Cpu, true, || {
            assert_eq!(float32(|| a.matmul(&a).kind()), Kind::Float);
            assert_eq!(a.matmul(&a).kind(), Kind::BFloat16);
        });
        assert!(!cpu_enabled());
    }

    /// Run on a GPU machine: `cargo test --release -- --ignored cuda`.
    #[test]
    #[ignore = "needs a CUDA device"]
    fn cuda_autocast_is_bf16_not_fp16() {
        let dev = Device::Cuda(0);
        let a = Tensor::randn([8, 8], (Kind::Float, dev));
        let inside = autocast(dev, true, || a.matmul(&a).kind());
        assert_eq!(inside, Kind::BFloat16);
        assert!(!enabled(dev));
        assert_eq!(a.matmul(&a).kind(), Kind::Float);
        autocast(dev, true, || {
            assert_eq!(float32(|| a.matmul(&a).kind()), Kind::Float)
        });
    }

    #[test]
    fn nested_regions_restore_the_outer_state() {
        autocast(Device::Cpu, true, || {
            autocast(Device::Cpu, true, || assert!(cpu_enabled()));
            assert!(cpu_enabled());
        });
        assert!(!cpu_enabled());
    }
}
