//! Questions for the CUDA runtime that libtorch does not answer through tch:
//! a device's name and memory, its compute capability, and why there is no
//! device. Looked up by name in the process (libtorch_cpu of the PyPI wheel
//! already brings libcudart), so the build needs no CUDA headers or
//! libraries, and a process without the runtime just gets `None`.

use std::ffi::{c_char, c_int, c_void, CStr};

fn sym(name: &CStr) -> Option<*mut c_void> {
    // SAFETY: dlsym on the global scope with a NUL-terminated name.
    let p = unsafe { libc::dlsym(libc::RTLD_DEFAULT, name.as_ptr()) };
    (!p.is_null()).then_some(p)
}

pub struct Properties {
    pub name: String,
    pub free: usize,
    pub total: usize,
}

/// Name, free and total bytes of device `i`.
pub fn properties(i: usize) -> Option<Properties> {
    type GetProps = unsafe extern "C" fn(*mut u8, c_int) -> c_int;
    type SetDevice = unsafe extern "C" fn(c_int) -> c_int;
    type MemInfo = unsafe extern "C" fn(*mut usize, *mut usize) -> c_int;
    let props = sym(c"cudaGetDeviceProperties_v2").or_else(|| sym(c"cudaGetDeviceProperties"))?;
    // cudaDeviceProp begins with `char name[256]`; the buffer is far larger
    // than the struct of any CUDA version.
    let mut buf = vec![0u8; 16384];
    // SAFETY: the runtime's documented signatures; buf outlives the calls.
    unsafe {
        let get: GetProps = std::mem::transmute(props);
        if get(buf.as_mut_ptr(), i as c_int) != 0 {
            return None;
        }
    }
    let name = CStr::from_bytes_until_nul(&buf[..256]).map_or(String::new(), |c| c.to_string_lossy().into_owned());
    let (mut free, mut total) = (0usize, 0usize);
    if let (Some(set), Some(mem)) = (sym(c"cudaSetDevice"), sym(c"cudaMemGetInfo")) {
        // SAFETY: as above.
        unsafe {
            let set: SetDevice = std::mem::transmute(set);
            let mem: MemInfo = std::mem::transmute(mem);
            if set(i as c_int) == 0 {
                mem(&mut free, &mut total);
            }
        }
    }
    Some(Properties { name, free, total })
}

/// (major, minor) through `cudaDeviceGetAttribute`, whose attribute numbers
/// (75, 76) are fixed across CUDA versions, unlike cudaDeviceProp's layout.
pub fn compute_capability(i: usize) -> Option<(i32, i32)> {
    type GetAttr = unsafe extern "C" fn(*mut c_int, c_int, c_int) -> c_int;
    let f = sym(c"cudaDeviceGetAttribute")?;
    // SAFETY: the runtime's documented signature.
    unsafe {
        let get: GetAttr = std::mem::transmute(f);
        let (mut major, mut minor) = (0, 0);
        (get(&mut major, 75, i as c_int) == 0 && get(&mut minor, 76, i as c_int) == 0).then_some((major, minor))
    }
}

/// The runtime's own words when it counts no device ("CUDA driver version
/// is insufficient...", "no CUDA-capable device is detected").
pub fn no_device_reason() -> Option<String> {
    type Count = unsafe extern "C" fn(*mut c_int) -> c_int;
    type ErrStr = unsafe extern "C" fn(c_int) -> *const c_char;
    let (count, err_str) = (sym(c"cudaGetDeviceCount")?, sym(c"cudaGetErrorString")?);
    // SAFETY: the runtime's documented signatures; the error string is static.
    unsafe {
        let count: Count = std::mem::transmute(count);
        let err_str: ErrStr = std::mem::transmute(err_str);
        let mut n = 0;
        let code = count(&mut n);
        if code == 0 {
            return (n == 0).then(|| "the CUDA runtime counts 0 devices".into());
        }
        let s = err_str(code);
        let text = if s.is_null() { String::new() } else { CStr::from_ptr(s).to_string_lossy().into_owned() };
        Some(format!("the CUDA runtime says: {text} (error {code})"))
    }
}
