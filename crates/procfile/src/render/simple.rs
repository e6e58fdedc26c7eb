use std::io::Write;

use crate::CpuSet;

/// `/proc/uptime`: seconds since the container started and the idle seconds summed over
/// its CPUs, `%.2f %.2f` (truncated, as the kernel does).
pub fn uptime(uptime_ns: u64, idle_ns: u64, out: &mut Vec<u8>) {
    let f = |ns: u64| (ns / 1_000_000_000, (ns % 1_000_000_000) / 10_000_000);
    let (us, uc) = f(uptime_ns);
    let (is, ic) = f(idle_ns);
    let _ = writeln!(out, "{us}.{uc:02} {is}.{ic:02}");
}

/// A sysfs CPU list file (`online`, `possible`, `present`, `offline`): the list and a
/// newline (an empty list is just the newline, as the kernel prints `offline`).
pub fn cpu_list(set: &CpuSet, out: &mut Vec<u8>) {
    let _ = writeln!(out, "{set}");
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn uptime_format() {
        let mut out = Vec::new();
        uptime(12_345_678_901, 999_999_999, &mut out);
        assert_eq!(out, b"12.34 0.99\n");
    }

    #[test]
    fn cpu_list_format() {
        let mut out = Vec::new();
        cpu_list(&CpuSet::default(), &mut out);
        assert_eq!(out, b"\n");
    }
}
