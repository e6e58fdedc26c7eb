//! End to end: the readers whose bytes come through the FUSE inode's page cache, which
//! all containers share: `sendfile(2)` (busybox `cat`, Python's `shutil`), `splice(2)`
//! and a private `mmap(2)` where the kernel has no FUSE passthrough to refuse it (see
//! `fusefs::pagecache`, and `e2e_mmap`). Since Linux 6.5 the kernel
//! splices a direct-I/O file through its page cache, and cut each reader at the length
//! of the previous page-cache reader's rendering.
//!
//! Two containers whose renderings differ (memory limit, cpuset: `/proc/stat`,
//! `cpuinfo` and `cpu/online` differ in length) read in turn; every transfer is compared
//! byte for byte with a plain `read(2)` made just before or just after it in the same
//! container (within the daemon's render cache, so the same rendering). Then both read
//! at once, and each must get its own container's file or a clean `EINVAL`, never a
//! neighbour's bytes, a cut file or zeros.
//!
//! Needs root, /dev/fuse, writable cgroups and python3; busybox (`busybox` in PATH or
//! the VM test's cache) for the real-world reader, skipped with a note without it.

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::path::PathBuf;

use common::*;
use testkit::cgroup::Limit;

/// The files compared: different lengths in the two containers (but meminfo, whose
/// values differ at equal widths).
const FILES: [&str; 4] = [
    "/proc/stat",
    "/proc/cpuinfo",
    "/proc/meminfo",
    "/sys/devices/system/cpu/online",
];

/// What the checkers below start with: `read_to_end(fd)`, every byte from the offset
/// on.
macro_rules! read_to_end_py {
    () => {
        r#"
import os

def read_to_end(fd):
    out = b""
    while True:
        b = os.read(fd, 65536)
        if not b:
            return out
        out += b
"#
    };
}

/// Each transfer of `$METHODS` of each file, against a plain read around it; a line
/// `ok METHOD FILE` or `bad METHOD FILE why` per pair.
const CHECKER: &str = concat!(
    read_to_end_py!(),
    r#"
import errno, mmap, os, subprocess, sys

def read_all(p):
    fd = os.open(p, os.O_RDONLY)
    out = read_to_end(fd)
    os.close(fd)
    return out

def sink_of(fd_out):
    os.lseek(fd_out, 0, 0)
    return read_to_end(fd_out)

def by_sendfile(p, n):
    fd, sink = os.open(p, os.O_RDONLY), os.memfd_create("sink")
    while os.sendfile(sink, fd, None, 1 << 20) > 0:
        pass
    os.close(fd)
    return sink_of(sink)

def by_splice(p, n):
    fd = os.open(p, os.O_RDONLY)
    r, w = os.pipe()
    out = b""
    while True:
        k = os.splice(fd, w, 65536)
        if k == 0:
            break
        out += os.read(r, k)
    os.close(fd)
    return out

def by_mmap(p, n):
    fd = os.open(p, os.O_RDONLY)
    try:
        m = mmap.mmap(fd, n, flags=mmap.MAP_PRIVATE, prot=mmap.PROT_READ)
    except OSError as e:
        # Refused, as the kernel's own file refuses it (e2e_mmap says when).
        if e.errno == errno.ENODEV:
            return None
        raise
    finally:
        os.close(fd)
    return bytes(m[:n])

def by_copy_file_range(p, n):
    fd, sink = os.open(p, os.O_RDONLY), os.memfd_create("sink")
    try:
        while os.copy_file_range(fd, sink, 1 << 20) > 0:
            pass
    except OSError as e:
        # Refused as across file systems (what the kernel's /proc file answers too).
        if e.errno in (errno.EXDEV, errno.EINVAL, errno.EOPNOTSUPP):
            return None
        raise
    return sink_of(sink)

def by_busybox(p, n):
    return subprocess.run([os.environ["BB"], "cat", p], stdout=subprocess.PIPE, check=True).stdout

for method in os.environ["METHODS"].split():
    f = globals()["by_" + method]
    for p in sys.argv[1:]:
        why = ""
        for attempt in range(5):
            before = read_all(p)
            try:
                got = f(p, len(before))
            except OSError as e:
                why = "errno %d" % e.errno
                break
            after = read_all(p)
            if got is None or got in (before, after):
                why = ""
                break
            why = "%d bytes, read gives %d/%d%s%s" % (len(got), len(before), len(after),
                ", zeros" if b"\0" in got else "",
                ", a prefix of the read" if before.startswith(got) else "")
        print("bad" if why else "ok", method, p, why, flush=True)
"#
);

/// busybox, if this machine has one (the VM test caches a static one).
fn busybox() -> Option<PathBuf> {
    if let Some(p) = which("busybox") {
        return Some(p);
    }
    let cache = std::fs::read_dir("/var/cache/lxcfs-rs-vm").ok()?;
    cache
        .flatten()
        .map(|e| e.path().join("busybox"))
        .find(|p| p.is_file())
}

fn require_python() {
    require_env();
    if let Err(e) = require_tools(&["python3"], "python3") {
        panic!("{e}");
    }
}

/// Two containers whose files differ in length where the host allows it: one CPU and
/// a small memory limit, every CPU and a larger one.
fn two_containers() -> (Cgroup, Cgroup) {
    let last = std::thread::available_parallelism().map_or(1, |n| n.get()) - 1;
    let all = if last == 0 {
        "0".to_string()
    } else {
        format!("0-{last}")
    };
    let a = Cgroup::new(
        "pc-a",
        &[Limit::Memory(96 * MIB), Limit::Cpus("0".to_string())],
    );
    let b = Cgroup::new("pc-b", &[Limit::Memory(320 * MIB), Limit::Cpus(all)]);
    (a, b)
}

/// Run the checker with `methods` in a container of `cg`; its report lines.
fn check(cg: &Cgroup, d: &Daemon, methods: &str, bb: &str) -> Vec<String> {
    let script = format!(
        "python3 -c '{}' {}",
        CHECKER.replace('\'', "'\\''"),
        FILES.join(" ")
    );
    let out = run_env(cg, &d.mnt, &script, &[("METHODS", methods), ("BB", bb)]);
    assert!(
        out.status.success(),
        "the checker ({methods}) in {}: {}\n{}\n{}",
        cg.rel,
        out.status,
        out.stdout,
        out.stderr
    );
    let lines: Vec<String> = out.stdout.lines().map(str::to_string).collect();
    let want = methods.split_whitespace().count() * FILES.len();
    assert_eq!(lines.len(), want, "{}\n{}", out.stdout, out.stderr);
    lines
}

fn alternate(args: &[&str], methods: &str) {
    require_python();
    let (bb, methods) = match busybox() {
        Some(p) => (
            p.to_string_lossy().into_owned(),
            format!("{methods} busybox"),
        ),
        None => {
            eprintln!("note: no busybox on this machine: its cat (sendfile) is not run");
            (String::new(), methods.to_string())
        }
    };
    let d = Daemon::start(args);
    let (a, b) = two_containers();
    let mut bad = Vec::new();
    for round in 0..3 {
        for cg in [&a, &b] {
            for line in check(cg, &d, &methods, &bb) {
                if !line.starts_with("ok ") {
                    bad.push(format!("round {round}, {}: {line}", cg.rel));
                }
            }
        }
    }
    assert!(bad.is_empty(), "{args:?}:\n{}", bad.join("\n"));
}

#[test]
fn sendfile_splice_and_mmap_get_the_readers_own_file_under_direct_io() {
    alternate(&[], "sendfile splice mmap copy_file_range");
}

/// A private mapping under passthrough maps the backing file (`fusefs::passthrough`,
/// "mmap"), a documented limit of its own: not compared here.
#[test]
fn sendfile_and_splice_get_the_readers_own_file_under_passthrough() {
    alternate(&["--fuse-passthrough"], "sendfile splice copy_file_range");
}

/// Both containers at once, each transfer checked against its own container's plain
/// read: its own bytes or `EINVAL`, never another rendering's.
#[test]
fn concurrent_readers_never_get_a_neighbours_or_a_cut_file() {
    require_python();
    for args in [&[][..], &["--fuse-passthrough"][..]] {
        let d = Daemon::start(args);
        let (a, b) = two_containers();
        let script = format!(
            "python3 -c '{}' {}",
            CONCURRENT.replace('\'', "'\\''"),
            FILES.join(" ")
        );
        let outs = std::thread::scope(|s| {
            let runs: Vec<_> = [&a, &b]
                .into_iter()
                .map(|cg| s.spawn(|| run(cg, &d.mnt, &script)))
                .collect();
            runs.into_iter()
                .map(|h| h.join().unwrap())
                .collect::<Vec<_>>()
        });
        for (cg, out) in [&a, &b].into_iter().zip(outs) {
            assert!(
                out.status.success() && out.stdout.contains("transfers"),
                "{args:?} {}: {}\n{}\n{}",
                cg.rel,
                out.status,
                out.stdout,
                out.stderr
            );
            eprintln!("{args:?} {}: {}", cg.rel, out.stdout.trim());
        }
    }
}

/// For two seconds: sendfile or splice each file, then read it plainly; the transfer
/// must be a rendering of this container: the same length and the same lines where
/// this container's values do not move (its own limits, CPU list), or `EINVAL`.
const CONCURRENT: &str = concat!(
    read_to_end_py!(),
    r#"
import errno, os, sys, time

def stable(text):
    # Lines that do not move between two renderings of one container.
    keep = (b"MemTotal", b"SwapTotal", b"processor", b"cpu", b"model name")
    return [l.split()[0] if l.startswith(b"cpu") else l for l in text.split(b"\n")
            if l.startswith(keep) or not l.strip(b"0123456789-,\n")]

ok = refused = 0
end = time.time() + 2
while time.time() < end:
    for p in sys.argv[1:]:
        for how in ("sendfile", "splice"):
            fd = os.open(p, os.O_RDONLY)
            try:
                if how == "sendfile":
                    sink = os.memfd_create("s")
                    while os.sendfile(sink, fd, None, 1 << 20) > 0:
                        pass
                    os.lseek(sink, 0, 0)
                    got = read_to_end(sink)
                    os.close(sink)
                else:
                    r, w = os.pipe()
                    got = b""
                    while True:
                        k = os.splice(fd, w, 65536)
                        if k == 0:
                            break
                        got += os.read(r, k)
                    os.close(r); os.close(w)
            except OSError as e:
                if e.errno != errno.EINVAL:
                    raise
                refused += 1
                os.close(fd)
                continue
            os.close(fd)
            fd = os.open(p, os.O_RDONLY)
            plain = read_to_end(fd)
            os.close(fd)
            if b"\0" in got or not got.endswith(b"\n") or stable(got) != stable(plain):
                print("bad", how, p, len(got), len(plain), got[:200], plain[:200])
                sys.exit(1)
            ok += 1
print("transfers: %d right, %d refused with EINVAL" % (ok, refused))
"#
);

/// A pid namespace nested in a container whose init sits in another cgroup renders
/// that cgroup's files (its bounds are charged to the outer container, its pages are
/// not shared with it): with the outer container's `meminfo` held open, the nested
/// one's `sendfile` gets its own file or `EINVAL`, and the outer one's `sendfile`
/// afterwards still gets the outer container's, never pages the nested one filled.
#[test]
fn a_nested_namespace_in_another_cgroup_never_shares_its_pages() {
    require_python();
    let outer = Cgroup::with_memory_limit("pc-outer", 96 * MIB);
    let inner = Cgroup::with_memory_limit("pc-inner", 320 * MIB);
    let procs: Vec<String> = inner
        .procs_files()
        .iter()
        .map(|p| p.to_string_lossy().into_owned())
        .collect();
    let dir = tempfile::tempdir().unwrap();
    let program = dir.path().join("nested.py");
    std::fs::write(&program, NESTED).unwrap();
    for args in [&[][..], &["--fuse-passthrough"][..]] {
        let d = Daemon::start(args);
        let script = format!("python3 {}", program.display());
        let out = run_env(
            &outer,
            &d.mnt,
            &script,
            &[("INNER_PROCS", &procs.join("\n"))],
        );
        assert!(
            out.status.success(),
            "{args:?}: {}\n{}\n{}\n{}",
            out.status,
            out.stdout,
            out.stderr,
            d.log_text()
        );
        let lines: Vec<&str> = out.stdout.lines().collect();
        let want_outer = format!("{}", 96 * 1024);
        let want_inner = format!("{}", 320 * 1024);
        assert_eq!(lines.len(), 3 * 4, "{args:?}:\n{}", out.stdout);
        for l in &lines {
            let f: Vec<&str> = l.split_whitespace().collect();
            match f.as_slice() {
                ["inner", "plain", v] => assert_eq!(*v, want_inner, "{args:?}: {l}"),
                ["inner", "sendfile", v] => {
                    assert!(*v == want_inner || *v == "EINVAL", "{args:?}: {l}")
                }
                ["outer", "plain", v] => assert_eq!(*v, want_outer, "{args:?}: {l}"),
                ["outer", "sendfile", v] => {
                    assert!(*v == want_outer || *v == "EINVAL", "{args:?}: {l}")
                }
                _ => panic!("{args:?}: unexpected line {l:?}\n{}", out.stdout),
            }
        }
    }
}

/// Three rounds: the outer container opens `meminfo` and holds it, a nested pid
/// namespace whose init joined the inner cgroup (`INNER_PROCS`, writing 0: itself)
/// reads it plainly and by `sendfile`, then the outer one transfers its held handle
/// from offset 0 and reads plainly. One line `who how MemTotal` each (or `EINVAL`).
const NESTED: &str = concat!(
    read_to_end_py!(),
    r#"
import errno, os, subprocess, sys

def mem_total(text):
    for l in text.split(b"\n"):
        if l.startswith(b"MemTotal:"):
            return l.split()[1].decode()
    return "none"

def by_sendfile(fd):
    sink = os.memfd_create("s")
    off = 0
    try:
        while True:
            n = os.sendfile(sink, fd, off, 1 << 20)
            if n == 0:
                break
            off += n
    except OSError as e:
        if e.errno != errno.EINVAL:
            raise
        return "EINVAL"
    os.lseek(sink, 0, 0)
    return mem_total(read_to_end(sink))

def plain():
    with open("/proc/meminfo", "rb") as f:
        return mem_total(f.read())

if len(sys.argv) > 1:
    fd = os.open("/proc/meminfo", os.O_RDONLY)
    print("inner plain", plain(), flush=True)
    print("inner sendfile", by_sendfile(fd), flush=True)
    sys.exit(0)

for _ in range(3):
    held = os.open("/proc/meminfo", os.O_RDONLY)
    # The shell itself (the nested init, which then execs python) writes 0: no pipe,
    # whose subshell would move itself instead.
    subprocess.run(["unshare", "-p", "-f", "sh", "-c",
        "IFS='\n'; for f in $INNER_PROCS; do echo 0 > \"$f\" || exit 97; done; "
        "exec python3 \"$0\" inner", sys.argv[0]], check=True)
    print("outer sendfile", by_sendfile(held), flush=True)
    print("outer plain", plain(), flush=True)
    os.close(held)
"#
);
