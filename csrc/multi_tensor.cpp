// libtorch's multi-tensor optimizer kernels, which tch 0.24 does not wrap.
//
// Why: a training step updates every parameter tensor (about 150 in the
// Patch-DiT). Written one tensor at a time, AdamW, the gradient-norm clip and
// the EMA are some 2,000 small kernel launches per step on a GPU, as long as
// the forward pass itself for our small networks. `torch.optim.AdamW(fused=True)`,
// `clip_grad_norm_` and `_foreach_lerp_` do the same work in a handful of
// launches; these shims call the same ATen operators.
//
// Every function takes arrays of tch's tensor handles (`at::Tensor*`), returns
// nullptr on success or a malloc'd message (freed by the caller with `free`),
// and never lets a C++ exception cross into Rust.

#include <ATen/core/Tensor.h>
#include <ATen/ops/_foreach_lerp.h>
#include <ATen/ops/_foreach_norm.h>
#include <ATen/ops/_fused_adamw.h>
#include <ATen/ops/stack.h>

#include <cstdlib>
#include <cstring>
#include <exception>
#include <vector>

namespace {

std::vector<at::Tensor> list(const at::Tensor* const* tensors, int64_t n) {
  std::vector<at::Tensor> out;
  out.reserve(n);
  for (int64_t i = 0; i < n; ++i) out.push_back(*tensors[i]);
  return out;
}

template <typename F>
char* guarded(F f) {
  try {
    f();
    return nullptr;
  } catch (const std::exception& e) {
    return strdup(e.what());
  } catch (...) {
    return strdup("unknown C++ exception");
  }
}

}  // namespace

extern "C" {

// torch.optim.AdamW(fused=True)'s update of `n` parameters: one step with
// learning rate `lr`, bias correction from `step` (a float32 scalar on the
// parameters' device, already counting this update), gradients divided by
// `grad_scale` first when it is not null (that is how the clip is applied).
char* ps_fused_adamw_(const at::Tensor* const* params, const at::Tensor* const* grads,
                      const at::Tensor* const* exp_avgs, const at::Tensor* const* exp_avg_sqs,
                      int64_t n, const at::Tensor* step, double lr, double beta1, double beta2,
                      double weight_decay, double eps, const at::Tensor* grad_scale) {
  return guarded([&] {
    std::vector<at::Tensor> steps(n, *step);
    std::optional<at::Tensor> scale;
    if (grad_scale != nullptr) scale = *grad_scale;
    at::_fused_adamw_(list(params, n), list(grads, n), list(exp_avgs, n), list(exp_avg_sqs, n),
                      {}, steps, lr, beta1, beta2, weight_decay, eps,
                      /*amsgrad=*/false, /*maximize=*/false, scale, std::nullopt);
  });
}

// self[i] += weight * (end[i] - self[i]) for all i (an EMA update).
char* ps_foreach_lerp_(const at::Tensor* const* self, const at::Tensor* const* end, int64_t n,
                       double weight) {
  return guarded([&] { at::_foreach_lerp_(list(self, n), list(end, n), weight); });
}

// Forgets the gradients of `n` tensors (`zero_grad(set_to_none=True)`, torch's
// default): a parameter the next step does not use then has no gradient, so
// the optimizer skips it rather than decaying it with a zero gradient, and no
// kernel is launched to clear memory that backward would overwrite anyway.
char* ps_grads_to_none(const at::Tensor* const* tensors, int64_t n) {
  return guarded([&] {
    for (int64_t i = 0; i < n; ++i) {
      at::Tensor t = *tensors[i];
      t.mutable_grad().reset();
    }
  });
}

// The joint L2 norm of `n` tensors, as `clip_grad_norm_` computes it: each
// tensor's norm, then the norm of those. Writes a new float32 scalar to *out.
char* ps_foreach_norm(const at::Tensor* const* tensors, int64_t n, at::Tensor** out) {
  return guarded([&] {
    auto norms = at::_foreach_norm(list(tensors, n), 2);
    *out = new at::Tensor(at::stack(norms).norm());
  });
}

}  // extern "C"
