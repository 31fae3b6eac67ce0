//! Peak memory of this process, for `bench`: the kernel's high-water mark of
//! the resident set (VmHWM), which is why each configuration runs in its
//! own process.

/// Peak resident set in MiB, or `None` where /proc is unavailable.
pub fn peak_rss_mib() -> Option<f64> {
    parse_vm_hwm(&std::fs::read_to_string("/proc/self/status").ok()?)
}

/// The `VmHWM:  N kB` line of a /proc/<pid>/status text, in MiB.
pub fn parse_vm_hwm(status: &str) -> Option<f64> {
    let line = status.lines().find(|l| l.starts_with("VmHWM:"))?;
    let kb: f64 = line.split_whitespace().nth(1)?.parse().ok()?;
    Some(kb / 1024.0)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_the_high_water_mark() {
        let status = "Name:\tpatchscaler\nVmPeak:\t 9000 kB\nVmHWM:\t  204800 kB\nVmRSS:\t 1000 kB\n";
        assert_eq!(parse_vm_hwm(status), Some(200.0));
        assert_eq!(parse_vm_hwm("VmRSS: 5 kB\n"), None);
        if cfg!(target_os = "linux") {
            assert!(peak_rss_mib().unwrap() > 1.0);
        }
    }
}
