//! End to end: /proc/meminfo and /proc/swaps as containers (real cgroups, v1 or v2, a new
//! pid + mount namespace, the files bind-mounted over /proc) and host readers see them.
//!
//! Needs root, /dev/fuse and writable cgroups (v1, hybrid or v2): fails, saying why, without.

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::fs::{self, File, OpenOptions};
use std::io::Read;
use std::os::unix::fs::{FileExt, MetadataExt};
use std::sync::{Arc, Barrier};

use common::*;
use rustix::process::Signal;

const KB_256M: u64 = 256 * 1024;

/// What a reader on the host (this test process) must see as MemTotal: its own cgroup's
/// effective limit, or the host's when unlimited.
fn host_reader_mem_total() -> u64 {
    let host = host_mem_total_kb();
    own_memory_limit().map_or(host, |l| (l / 1024).min(host))
}

#[test]
fn free_top_and_meminfo_show_a_256mib_limit() {
    let d = Daemon::start(&[]);
    let cg = Cgroup::with_memory_limit("m256", 256 * MIB);
    let out = run(
        &cg,
        &d.mnt,
        "free -k; echo ---; top -bn1; echo ---; cat /proc/meminfo; echo ---\n\
         grep ' - fuse' /proc/self/mountinfo | cut -d' ' -f5",
    );
    let s = sections(out.ok());
    assert_eq!(s.len(), 4, "{}", out.stdout);
    // The harness's container: our files bound over /proc and /sys, and our mount
    // itself; no other FUSE mount.
    let ours = d.mnt.to_string_lossy();
    let mut fuse: Vec<&str> = s[3].lines().filter(|m| *m != ours).collect();
    fuse.sort_unstable();
    assert_eq!(
        fuse,
        [
            "/proc/cpuinfo",
            "/proc/diskstats",
            "/proc/loadavg",
            "/proc/meminfo",
            "/proc/stat",
            "/proc/swaps",
            "/proc/uptime",
            "/sys/devices/system/cpu/online"
        ],
        "FUSE mounts in the container"
    );

    assert_eq!(free_total(&s[0]), KB_256M, "free -k:\n{}", s[0]);
    assert!(
        free_column(&s[0], "Mem:", 1) <= KB_256M,
        "used > total:\n{}",
        s[0]
    );

    let mem = s[1]
        .lines()
        .find(|l| l.starts_with("MiB Mem"))
        .unwrap_or_else(|| panic!("no 'MiB Mem' line in top -bn1:\n{}", s[1]));
    let total = mem
        .split_once(':')
        .and_then(|(_, r)| r.split(',').next())
        .map(str::trim)
        .unwrap_or("");
    assert_eq!(total, "256.0 total", "top: {mem:?}");

    let mi = &s[2];
    assert_meminfo_well_formed(mi);
    let total = meminfo_value(mi, "MemTotal");
    let free = meminfo_value(mi, "MemFree");
    let avail = meminfo_value(mi, "MemAvailable");
    assert_eq!(total, KB_256M, "{mi}");
    assert!(free <= total, "MemFree {free} > MemTotal {total}");
    assert!(avail <= total, "MemAvailable {avail} > MemTotal {total}");
    assert!(avail >= free, "MemAvailable {avail} < MemFree {free}");
    // A fresh container uses a few MiB at most.
    assert!(
        free > total / 2,
        "MemFree {free} is implausibly low for an idle container"
    );

    let host = host_meminfo();
    assert_eq!(
        mi.lines().count(),
        host.lines().count(),
        "line count differs from the host's"
    );
    assert_eq!(
        meminfo_labels(mi),
        meminfo_labels(&host),
        "labels differ from the host's"
    );
}

/// Page cache and slab are charged to the container, so what `free` shows as buff/cache
/// cannot exceed what the container uses (total − free). Host values passed through for
/// keys that v1's memory.stat lacks would break this: a small container "having" the
/// host's slab.
#[test]
fn cache_and_slab_fit_in_what_the_container_uses() {
    // Slack for per-CPU charge batching between usage_in_bytes and memory.stat.
    const SLACK_KB: u64 = 4096;
    let d = Daemon::start(&[]);
    let cg = Cgroup::with_memory_limit("m128", 128 * MIB);
    let out = run(&cg, &d.mnt, "free -k; echo ---; cat /proc/meminfo");
    let s = sections(out.ok());
    let (free_out, mi) = (&s[0], &s[1]);

    let total = free_total(free_out);
    let used = total - free_column(free_out, "Mem:", 2);
    let buff_cache = free_column(free_out, "Mem:", 4);
    assert!(
        buff_cache <= used + SLACK_KB,
        "free -k: buff/cache {buff_cache} kB > the container's usage {used} kB:\n{free_out}"
    );

    let usage = meminfo_value(mi, "MemTotal") - meminfo_value(mi, "MemFree");
    let cache = ["Buffers", "Cached", "SReclaimable"]
        .iter()
        .map(|k| meminfo_value(mi, k))
        .sum::<u64>();
    assert!(
        cache <= usage + SLACK_KB,
        "Buffers+Cached+SReclaimable {cache} kB > usage {usage} kB:\n{mi}"
    );
    for k in ["Slab", "SUnreclaim", "KReclaimable", "AnonPages", "Shmem"] {
        if let Some(v) = meminfo_get(mi, k) {
            assert!(
                v <= usage + SLACK_KB,
                "{k} {v} kB > usage {usage} kB:\n{mi}"
            );
        }
    }
}

#[test]
fn nested_limits_take_the_minimum_over_ancestors() {
    let d = Daemon::start(&[]);
    let gib = Limit::Memory(1024 * MIB);
    let mib200 = Limit::Memory(200 * MIB);

    // Parent tighter than the child.
    let parent = Cgroup::with_memory_limit("nest-p", 200 * MIB);
    let child = parent.child("c", std::slice::from_ref(&gib));
    let out = run(&child, &d.mnt, "free -k; echo ---; cat /proc/meminfo");
    let s = sections(out.ok());
    assert_eq!(free_total(&s[0]), 204_800, "parent 200 MiB, child 1 GiB");
    assert_eq!(meminfo_value(&s[1], "MemTotal"), 204_800);

    // Child tighter than the parent.
    let parent2 = Cgroup::new("nest-q", &[gib]);
    let child2 = parent2.child("c", &[mib200]);
    let out = run(&child2, &d.mnt, "cat /proc/meminfo");
    assert_eq!(
        meminfo_value(out.ok(), "MemTotal"),
        204_800,
        "parent 1 GiB, child 200 MiB"
    );
    drop(child2);
    drop(child);
}

#[test]
fn concurrent_containers_never_see_each_others_values() {
    const READS: usize = 200;
    let d = Daemon::start(&[]);
    let a = Cgroup::with_memory_limit("c128", 128 * MIB);
    let b = Cgroup::with_memory_limit("c384", 384 * MIB);
    let host_want = host_reader_mem_total();
    // `read` is a shell builtin: one open and many small reads per iteration, no fork.
    let script = format!(
        "i=0; while [ $i -lt {READS} ]; do read -r l < /proc/meminfo && echo \"$l\"; i=$((i+1)); done"
    );
    let barrier = Arc::new(Barrier::new(3));
    std::thread::scope(|s| {
        for (cg, want) in [(&a, 128 * 1024), (&b, 384 * 1024)] {
            let (barrier, script, mnt) = (barrier.clone(), &script, &d.mnt);
            s.spawn(move || {
                barrier.wait();
                let out = run(cg, mnt, script);
                let lines: Vec<&str> = out.ok().lines().collect();
                assert_eq!(lines.len(), READS, "{}", out.stdout);
                for l in lines {
                    assert_eq!(meminfo_value(l, "MemTotal"), want, "a read saw {l:?}");
                }
            });
        }
        let (barrier, path) = (barrier.clone(), d.path("proc/meminfo"));
        s.spawn(move || {
            barrier.wait();
            for _ in 0..READS {
                let text = fs::read_to_string(&path).unwrap();
                assert_eq!(meminfo_value(&text, "MemTotal"), host_want, "host read");
            }
        });
    });
}

/// Digits masked: the layout of a rendering without its (moving) numbers.
fn layout(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes).replace(|c: char| c.is_ascii_digit(), "#")
}

/// Reads by this process (a host reader) at odd offsets and chunk sizes. A pass over the
/// file starts at offset 0 and is served from one rendering; like the kernel's seq_file,
/// a new read at offset 0 on the same descriptor starts a new pass (`top` rereads
/// `/proc/stat` that way), so numbers may move between passes but never within one.
#[test]
fn reads_at_any_offset_and_in_any_chunk_size() {
    let d = Daemon::start(&[]);
    let path = d.path("proc/meminfo");

    // pread at 100 on a fresh descriptor, before anything else: data, from the snapshot
    // rendered at open; reading there again gives the same bytes.
    let f = File::open(&path).unwrap();
    let mut at100 = vec![0u8; 64 * 1024];
    let n = f.read_at(&mut at100, 100).unwrap();
    assert!(
        n > 0,
        "pread at offset 100 on a fresh descriptor returned nothing"
    );
    let at100 = at100[..n].to_vec();
    let mut again = vec![0u8; 64 * 1024];
    let m = f.read_at(&mut again, 100).unwrap();
    assert_eq!(
        String::from_utf8_lossy(&again[..m]),
        String::from_utf8_lossy(&at100),
        "two preads at offset 100 of one descriptor differ"
    );
    // A pass from 0 in 4 KiB reads: a whole, well-formed file of which the first pread
    // was the tail (same layout; the numbers may have moved).
    let mut full = Vec::new();
    let mut buf = vec![0u8; 4096];
    loop {
        let k = f.read_at(&mut buf, full.len() as u64).unwrap();
        if k == 0 {
            break;
        }
        full.extend_from_slice(&buf[..k]);
    }
    assert!(full.len() > 100, "meminfo is {} bytes", full.len());
    assert_eq!(
        layout(&at100),
        layout(&full[100..]),
        "pread(100) is not the tail of a full read"
    );
    // Past the end: nothing.
    assert_eq!(f.read_at(&mut buf, full.len() as u64 + 10).unwrap(), 0);
    let full = String::from_utf8(full).unwrap();
    assert_meminfo_well_formed(&full);

    // 7-byte chunks on a fresh descriptor rebuild a well-formed file.
    for name in ["proc/meminfo", "proc/swaps"] {
        let mut g = File::open(d.path(name)).unwrap();
        let mut out = Vec::new();
        let mut chunk = [0u8; 7];
        loop {
            let k = g.read(&mut chunk).unwrap();
            if k == 0 {
                break;
            }
            assert!(k <= 7);
            out.extend_from_slice(&chunk[..k]);
        }
        let text = String::from_utf8(out).unwrap();
        if name == "proc/meminfo" {
            assert_meminfo_well_formed(&text);
            assert_eq!(meminfo_labels(&text), meminfo_labels(&host_meminfo()));
        } else {
            assert!(text.starts_with("Filename"), "swaps: {text:?}");
            assert!(text.ends_with('\n'), "swaps: {text:?}");
        }
    }
}

/// The same from inside a container, with the tools people use.
#[test]
fn container_tools_read_the_whole_file() {
    let d = Daemon::start(&[]);
    let cg = Cgroup::with_memory_limit("rd", 256 * MIB);
    let out = run(
        &cg,
        &d.mnt,
        "wc -c < /proc/meminfo; cat /proc/meminfo | wc -c; echo ---\n\
         dd if=/proc/meminfo bs=1 skip=100 count=20 2>/dev/null | wc -c; echo ---\n\
         stat -L -c '%a %s' /proc/meminfo /proc/swaps",
    );
    let s = sections(out.ok());
    let counts: Vec<u64> = s[0].lines().map(|l| l.trim().parse().unwrap()).collect();
    assert_eq!(counts.len(), 2, "{}", s[0]);
    assert!(counts[1] > 0);
    assert_eq!(
        counts[0], counts[1],
        "wc -c disagrees with the length of cat"
    );
    assert_eq!(s[1].trim(), "20", "dd bs=1 skip=100 count=20");
    for (i, l) in s[2].lines().enumerate() {
        let (mode, size) = l.split_once(' ').unwrap();
        assert_eq!(mode, "444", "{l}");
        let size: u64 = size.parse().unwrap();
        // The page-multiple hint, or, once a reader went through the page cache (busybox
        // `cat` sendfiles), the end of that read: the kernel sets i_size to it (see
        // `fusefs::pagecache`). Only meminfo was read by `cat` here.
        assert!(
            size > 0 && (size % 4096 == 0 || (i == 0 && size == counts[1])),
            "st_size {size} ({l}), cat read {} bytes",
            counts[1]
        );
    }
}

#[test]
fn attributes_writes_and_unknown_names() {
    let d = Daemon::start(&[]);
    for dir in [
        "",
        "proc",
        "sys",
        "sys/devices",
        "sys/devices/system",
        "sys/devices/system/cpu",
    ] {
        let m = fs::metadata(d.path(dir)).unwrap();
        assert!(m.is_dir(), "{dir}");
        assert_eq!(m.mode() & 0o7777, 0o555, "mode of {dir}/");
    }
    let mut files: Vec<String> = PROC_FILES.iter().map(|f| format!("proc/{f}")).collect();
    files.push("sys/devices/system/cpu/online".into());
    for f in &files {
        let p = d.path(f);
        let m = fs::metadata(&p).unwrap();
        assert!(m.is_file(), "{f}");
        assert_eq!(m.mode() & 0o7777, 0o444, "mode of {f}");
        assert_eq!((m.uid(), m.gid()), (0, 0), "owner of {f}");
        assert!(
            m.len() > 0 && m.len() % 4096 == 0,
            "st_size of {f} is {}",
            m.len()
        );
        let content = fs::read(&p).unwrap();
        assert!(!content.is_empty(), "{f} is empty");
        assert!(
            (content.len() as u64) <= m.len(),
            "{f}: {} bytes but st_size {}",
            content.len(),
            m.len()
        );

        for (what, opts) in [
            ("O_WRONLY", OpenOptions::new().write(true).clone()),
            ("O_RDWR", OpenOptions::new().read(true).write(true).clone()),
            (
                "O_WRONLY|O_TRUNC",
                OpenOptions::new().write(true).truncate(true).clone(),
            ),
        ] {
            let e = opts
                .open(&p)
                .err()
                .unwrap_or_else(|| panic!("{what} {f} succeeded"));
            assert!(
                matches!(e.raw_os_error(), Some(libc::EROFS | libc::EACCES)),
                "{what} {f}: {e}"
            );
        }
    }
    // The files runtimes bind are listed (the tree may hold more), and what is listed
    // exists.
    let listed: Vec<String> = fs::read_dir(d.path("proc"))
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    for f in PROC_FILES {
        assert!(
            listed.iter().any(|l| l == f),
            "proc/{f} not listed: {listed:?}"
        );
    }
    for l in &listed {
        assert!(
            d.path("proc").join(l).exists(),
            "proc/{l} listed but missing"
        );
    }

    let e = File::create(d.path("proc/new")).expect_err("creating a file succeeded");
    assert!(
        matches!(e.raw_os_error(), Some(libc::EROFS | libc::EACCES)),
        "create: {e}"
    );
    for missing in [
        "proc/nope",
        "nope",
        "sys/devices/system/cpu/nope",
        "proc/meminfo/x",
    ] {
        let e = fs::metadata(d.path(missing)).unwrap_err();
        let want = if missing.ends_with("meminfo/x") {
            libc::ENOTDIR
        } else {
            libc::ENOENT
        };
        assert_eq!(e.raw_os_error(), Some(want), "stat {missing}: {e}");
        let e = File::open(d.path(missing)).unwrap_err();
        assert_eq!(e.raw_os_error(), Some(want), "open {missing}: {e}");
    }
}

#[test]
fn no_swap_inside_a_container_on_a_host_without_swap() {
    let host_swap = meminfo_value(&host_meminfo(), "SwapTotal");
    let cg = Cgroup::with_memory_limit("swap", 256 * MIB);
    for args in [&[][..], &["-u"][..]] {
        let d = Daemon::start(args);
        let out = run(
            &cg,
            &d.mnt,
            "cat /proc/meminfo; echo ---; cat /proc/swaps; echo ---; free -k",
        );
        let s = sections(out.ok());
        let (mi, swaps, free) = (&s[0], &s[1], &s[2]);
        let total = meminfo_value(mi, "SwapTotal");
        let sfree = meminfo_value(mi, "SwapFree");
        assert!(
            sfree <= total,
            "SwapFree {sfree} > SwapTotal {total} ({args:?})"
        );
        if host_swap == 0 || args == ["-u"] {
            assert_eq!(
                total, 0,
                "SwapTotal with {args:?}, host swap {host_swap} kB"
            );
            assert_eq!(sfree, 0, "SwapFree with {args:?}");
            assert_eq!(swaps.lines().count(), 1, "/proc/swaps ({args:?}):\n{swaps}");
            assert_eq!(free_column(free, "Swap:", 0), 0, "{free}");
        } else {
            assert!(total <= host_swap, "SwapTotal {total} > host {host_swap}");
        }
        let header = swaps.lines().next().unwrap_or("");
        for w in ["Filename", "Type", "Size", "Used", "Priority"] {
            assert!(header.contains(w), "swaps header {header:?}");
        }
    }
}

/// `docker exec`: the reader enters the namespaces with setns, so its parent is outside
/// the container's pid namespace.
fn exec_reader_sees_the_container(args: &[&str]) {
    let d = Daemon::start(args);
    let cg = Cgroup::with_memory_limit("exec", 256 * MIB);
    let c = Running::start(&cg, &d.mnt);
    // First read of this namespace ever: no cache to lean on.
    let out =
        c.exec("grep PPid /proc/$$/status; echo ---; head -n1 /proc/meminfo; echo ---; free -k");
    let s = sections(out.ok());
    assert_eq!(
        s[0].split_whitespace().nth(1),
        Some("0"),
        "the reader's parent should be outside the namespace: {}",
        s[0]
    );
    assert_eq!(meminfo_value(&s[1], "MemTotal"), KB_256M, "{args:?}");
    assert_eq!(free_total(&s[2]), KB_256M, "{args:?}");
    // And a reader started by the container's own processes agrees.
    let out = c.exec("sh -c 'sh -c \"head -n1 /proc/meminfo\"'");
    assert_eq!(meminfo_value(out.ok(), "MemTotal"), KB_256M);
}

#[test]
fn exec_reader_sees_the_container_default_resolver() {
    exec_reader_sees_the_container(&[]);
}

#[test]
fn exec_reader_sees_the_container_procfs_resolver() {
    exec_reader_sees_the_container(&["--init-resolver", "procfs"]);
}

#[test]
fn procfs_resolver_is_the_one_in_use_when_asked() {
    let d = Daemon::start(&["--init-resolver", "procfs"]);
    let cg = Cgroup::with_memory_limit("procfs", 256 * MIB);
    let out = run(&cg, &d.mnt, "head -n1 /proc/meminfo");
    assert_eq!(meminfo_value(out.ok(), "MemTotal"), KB_256M);
    let log = d.log_text();
    assert!(log.contains("init resolver: procfs"), "log:\n{log}");
}

#[test]
fn host_reader_gets_host_values() {
    let d = Daemon::start(&[]);
    let text = read_deadline(&d.path("proc/meminfo"), DEADLINE).unwrap();
    assert_meminfo_well_formed(&text);
    let want = host_reader_mem_total();
    assert_eq!(
        meminfo_value(&text, "MemTotal"),
        want,
        "own memory cgroup limit: {:?}",
        own_memory_limit()
    );
    assert!(meminfo_value(&text, "MemFree") <= want);
    assert!(meminfo_value(&text, "MemAvailable") <= want);
    assert_eq!(meminfo_labels(&text), meminfo_labels(&host_meminfo()));
    // In the root cpuset, a host reader sees the host's CPUs.
    let own = fs::read_to_string("/proc/self/cgroup").unwrap();
    let processors = |t: &str| t.lines().filter(|l| l.starts_with("processor")).count();
    let (ours, host) = (
        processors(&read_deadline(&d.path("proc/cpuinfo"), DEADLINE).unwrap()),
        processors(&fs::read_to_string("/proc/cpuinfo").unwrap()),
    );
    if own.lines().any(|l| l.ends_with(":cpuset:/")) {
        assert_eq!(ours, host, "processors in cpuinfo");
        assert_eq!(
            read_deadline(&d.path("sys/devices/system/cpu/online"), DEADLINE).unwrap(),
            fs::read_to_string("/sys/devices/system/cpu/online").unwrap()
        );
    } else {
        assert!(
            ours >= 1 && ours <= host,
            "processors in cpuinfo: {ours} of {host}"
        );
    }
}

#[test]
fn sigusr2_toggles_serving_the_host_files() {
    let d = Daemon::start(&[]);
    let cg = Cgroup::with_memory_limit("usr2", 256 * MIB);
    let c = Running::start(&cg, &d.mnt);
    let total = || meminfo_value(c.exec("head -n1 /proc/meminfo").ok(), "MemTotal");
    assert_eq!(total(), KB_256M);
    let host = host_mem_total_kb();

    d.signal(Signal::USR2);
    poll(DEADLINE, "the host's MemTotal after SIGUSR2", || {
        (total() == host).then_some(())
    });
    d.signal(Signal::USR2);
    poll(
        DEADLINE,
        "the container's MemTotal after a second SIGUSR2",
        || (total() == KB_256M).then_some(()),
    );
}
