// Whether libtorch's CUDA backend is registered in this process.
//
// Why: libtorch_cuda registers its CUDA hooks when it is loaded, and
// libtorch caches the hooks the first time anything asks about CUDA; asked
// before the load, the process keeps the CPU-only stubs for good. The stubs
// throw where the real hooks return the CUDA runtime version the library was
// built against, which needs no GPU and no driver: so this tells a
// successful load from one that came too late, on any machine.

#include <ATen/detail/CUDAHooksInterface.h>

#include <exception>

// The CUDA runtime version libtorch_cuda was built with (e.g. 13000), or -1
// when only the stubs are registered.
extern "C" long ps_cuda_hooks_runtime_version() {
  try {
    return at::detail::getCUDAHooks().versionCUDART();
  } catch (const std::exception&) {
    return -1;
  }
}
