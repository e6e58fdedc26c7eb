//! LXC (Debian's lxc 5.0) runs a busybox container with the CDI spec's full device as
//! `lxc.mount.entry` lines: it takes every file, `/proc/pressure/*`, `slabinfo` and `vmstat`
//! included (LXC has no /proc allow-list), and with a 256 MiB limit and cpuset 1 the
//! container sees its own values.
//!
//! Needs root, /dev/fuse, cgroups, lxc and busybox-static (`.ci/run` installs them):
//! fails, saying why, without.

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use common::*;
use testkit::runtime::{CdiSpec, Lxc, Rootfs};

/// A labelled part of the script's output, trimmed.
fn part<'a>(out: &'a str, name: &str) -> &'a str {
    script_part(out, name).trim()
}

#[test]
fn lxc_takes_every_file_of_the_full_device_and_shows_the_containers_values() {
    require_env();
    if let Err(e) = require_tools(
        &["lxc-execute", "lxc-stop", "busybox"],
        "lxc busybox-static",
    ) {
        panic!("LXC tests cannot run here: {e}");
    }
    let d = Daemon::start(&[]);
    let spec = CdiSpec::of(&d.mnt);
    let all = spec.device("all");
    assert!(
        all.iter().any(|m| m.container_path == "/proc/pressure/cpu"),
        "this host has PSI, so the full device must carry the pressure files: {}",
        spec.text
    );
    let rootfs = Rootfs::busybox();
    let mut ct = Lxc::new(&rootfs);
    ct.limits(256 * MIB, "1").cdi(&all);
    let out = ct.run(
        r#"
echo "== meminfo"; head -1 /proc/meminfo
echo "== online"; cat /sys/devices/system/cpu/online
echo "== processors"; grep -c '^processor' /proc/cpuinfo
echo "== pressure"; cat /proc/pressure/cpu /proc/pressure/memory /proc/pressure/io | grep -c '^some'
echo "== slabinfo"; head -1 /proc/slabinfo
echo "== vmstat"; grep -c '^pgpgin ' /proc/vmstat
echo "== mounts"; grep -c ' fuse.lxcfs-rs ' /proc/self/mountinfo
echo "== end"
"#,
        DEADLINE,
    );
    assert!(
        out.status.success(),
        "{out:?}\n--- lxc log\n{}",
        ct.log_text()
    );
    let text = &out.stdout;
    assert_eq!(
        meminfo_value(part(text, "meminfo"), "MemTotal"),
        256 * 1024,
        "{text}"
    );
    assert_eq!(part(text, "online"), "1", "{text}");
    assert_eq!(part(text, "processors"), "1", "{text}");
    assert_eq!(part(text, "pressure"), "3", "{text}");
    assert!(
        part(text, "slabinfo").starts_with("slabinfo - version"),
        "{text}"
    );
    assert_eq!(part(text, "vmstat"), "1", "{text}");
    // Every bind of the device is there (each is a mount of the FUSE filesystem).
    assert_eq!(part(text, "mounts"), all.len().to_string(), "{text}");
}
