//! End to end: what a container (or the host around the daemon) can do to the daemon
//! without stopping it from serving everyone: a log that cannot be written, and the
//! system calls a reader may make on a served file besides open/read/close.
//!
//! Needs root, /dev/fuse and writable cgroups (v1, hybrid or v2): fails, saying why, without.

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::fs::{self, File};
use std::os::fd::AsFd;
use std::process::Stdio;

use common::*;
use rustix::io::Errno;
use rustix::process::Signal;

/// SIGKILL the daemon's worker and wait until a new one serves: each round makes the
/// supervisor and the new worker log several lines.
fn kill_worker_and_wait(d: &Daemon) {
    let old = d.workers();
    assert!(!old.is_empty(), "no worker to kill");
    for &w in &old {
        let _ = signal(w, Signal::KILL);
    }
    poll(DEADLINE, "a new worker", || {
        let now = d.workers();
        (!now.is_empty() && now.iter().all(|w| !old.contains(w))).then_some(())
    });
}

/// After the log broke: the supervisor lives, a container still gets its own values,
/// and the host reader too.
fn assert_still_serving(d: &mut Daemon) {
    let cg = Cgroup::with_memory_limit("logless", 192 * MIB);
    let out = run(&cg, &d.mnt, "head -n1 /proc/meminfo");
    assert_eq!(
        meminfo_get(&out.stdout, "MemTotal"),
        Some(192 * 1024),
        "a container's meminfo after the log broke: {:?} {:?}",
        out.stdout,
        out.stderr
    );
    let host = read_deadline(&d.path("proc/uptime"), DEADLINE).unwrap();
    assert!(!host.is_empty());
    assert!(d.alive(), "the supervisor exited after its log broke");
}

#[test]
fn a_log_reader_that_goes_away_does_not_stop_the_serving() {
    // CLOEXEC: the daemon must not inherit (and so keep alive) the reading end.
    let (reader, writer) = rustix::pipe::pipe_with(rustix::pipe::PipeFlags::CLOEXEC).unwrap();
    let mut d = Daemon::start_stderr(&[], Stdio::from(writer));
    // With stderr a pipe the worker has a log writer thread, confined like the others.
    let worker = d.workers()[0];
    let threads = fs::read_dir(format!("/proc/{worker}/task"))
        .unwrap()
        .count();
    assert!(
        fs::read_dir(format!("/proc/{worker}/task"))
            .unwrap()
            .any(|t| fs::read_to_string(t.unwrap().path().join("comm"))
                .unwrap()
                .trim()
                == "log"),
        "no log thread among {threads}"
    );
    assert_every_thread_confined(worker);
    // The reader of the log goes away (`| tee` killed, a journal stream restarting).
    drop(reader);
    for _ in 0..3 {
        kill_worker_and_wait(&d);
    }
    assert_still_serving(&mut d);
    // Once the log is gone, the next exit is still clean.
    assert!(d.stop().success());
}

#[test]
fn a_full_disk_for_the_log_does_not_stop_the_serving() {
    // /dev/full: every write fails with ENOSPC, as on a full disk.
    let full = File::options().write(true).open("/dev/full").unwrap();
    let mut d = Daemon::start_stderr(&[], Stdio::from(full));
    for _ in 0..3 {
        kill_worker_and_wait(&d);
    }
    assert_still_serving(&mut d);
    assert!(d.stop().success());
}

/// What a call on a served file and on the kernel's own file returned, side by side.
fn same_as_kernel<T: PartialEq + std::fmt::Debug>(
    what: &str,
    ours: Result<T, Errno>,
    kernel: Result<T, Errno>,
) {
    assert_eq!(
        ours, kernel,
        "{what}: lxcfs-rs (left) and the kernel (right)"
    );
}

/// The calls a reader makes beyond reading, each answered like the kernel's own file
/// (the oracle) in direct I/O and passthrough modes, and none of them logged: every
/// Python `open()` probes `isatty` (TCGETS), `cp` asks for extended attributes.
#[test]
fn probing_calls_answer_like_proc_and_log_nothing() {
    for args in [&["--fuse-passthrough"][..], &[][..]] {
        let d = Daemon::start(args);
        for rel in ["proc/meminfo", "proc/stat", "sys/devices/system/cpu/online"] {
            let ours = File::open(d.path(rel)).unwrap();
            let kernel = File::open(format!("/{rel}")).unwrap();
            // Several times: the kernel may remember an answer for the connection.
            for _ in 0..3 {
                same_as_kernel(
                    &format!("tcgetattr {rel}"),
                    rustix::termios::tcgetattr(ours.as_fd()).map(|_| ()),
                    rustix::termios::tcgetattr(kernel.as_fd()).map(|_| ()),
                );
                same_as_kernel(
                    &format!("isatty {rel}"),
                    Ok(rustix::termios::isatty(ours.as_fd())),
                    Ok(rustix::termios::isatty(kernel.as_fd())),
                );
                let revents = |f: &File| {
                    let mut fds = [rustix::event::PollFd::new(
                        f,
                        rustix::event::PollFlags::IN | rustix::event::PollFlags::OUT,
                    )];
                    rustix::event::poll(&mut fds, None).map(|n| (n, fds[0].revents()))
                };
                same_as_kernel(&format!("poll {rel}"), revents(&ours), revents(&kernel));
                let mut list = [0u8; 256];
                same_as_kernel(
                    &format!("flistxattr {rel}"),
                    rustix::fs::flistxattr(ours.as_fd(), &mut list[..]),
                    rustix::fs::flistxattr(kernel.as_fd(), &mut list[..]),
                );
                let mut value = [0u8; 64];
                same_as_kernel(
                    &format!("fgetxattr {rel}"),
                    rustix::fs::fgetxattr(ours.as_fd(), "user.test", &mut value[..]),
                    rustix::fs::fgetxattr(kernel.as_fd(), "user.test", &mut value[..]),
                );
            }
        }
        let log = d.log_text();
        let noisy: Vec<&str> = log
            .lines()
            .filter(|l| l.contains("WARN") || l.contains("ERROR") || l.contains("Not Implemented"))
            .collect();
        assert!(
            noisy.is_empty(),
            "probing calls were logged ({args:?}):\n{}",
            noisy.join("\n")
        );
        assert!(
            !fs::read_to_string(&d.log).unwrap().contains('\x1b'),
            "colour escapes in a log that is not a terminal:\n{log}"
        );
    }
}

/// `lseek` beyond SEEK_SET/SEEK_CUR, against the kernel's file: `SEEK_DATA` and
/// `SEEK_HOLE` as it answers them (`/proc`: EINVAL; sysfs: its size is one block of
/// data), in direct I/O and passthrough modes, on a fresh open and on an open the kernel
/// serves by passthrough (the third of a thread that read the file to its end twice).
/// `SEEK_END` on a `/proc` file is the documented exception: the kernel answers it for a
/// FUSE file from the size we report, where `/proc` refuses it.
#[test]
fn seek_data_hole_and_end_answer_like_the_kernels_file() {
    use rustix::fs::SeekFrom;
    use std::io::Read;
    let seeks = |f: &File| -> Vec<(String, Result<u64, Errno>)> {
        let mut out = Vec::new();
        // -10 reaches the kernel as a negative offset (rustix passes the bits on).
        for off in [0i64, 10, -10, 5000] {
            out.push((
                format!("SEEK_DATA {off}"),
                rustix::fs::seek(f, SeekFrom::Data(off as u64)),
            ));
            out.push((
                format!("SEEK_HOLE {off}"),
                rustix::fs::seek(f, SeekFrom::Hole(off as u64)),
            ));
        }
        out
    };
    for args in [&["--fuse-passthrough"][..], &[][..]] {
        let d = Daemon::start(args);
        for rel in [
            "proc/meminfo",
            "proc/stat",
            "proc/pressure/cpu",
            "sys/devices/system/cpu/online",
            "sys/devices/system/cpu/cpu0/topology/core_id",
        ] {
            let kernel = File::open(format!("/{rel}")).unwrap();
            // Two clean passes by this thread: its third open may be served by the kernel.
            for _ in 0..2 {
                let mut s = String::new();
                File::open(d.path(rel))
                    .unwrap()
                    .read_to_string(&mut s)
                    .unwrap();
            }
            let pure = File::open(d.path(rel)).unwrap();
            let fresh = File::open(d.path(rel)).unwrap();
            for ours in [&pure, &fresh] {
                for ((what, o), (_, k)) in seeks(ours).into_iter().zip(seeks(&kernel)) {
                    same_as_kernel(&format!("{what} {rel} {args:?}"), o, k);
                }
                let end = rustix::fs::seek(ours, SeekFrom::End(0));
                let kernel_end = rustix::fs::seek(&kernel, SeekFrom::End(0));
                if rel.starts_with("proc/") {
                    let size = ours.metadata().unwrap().len();
                    assert_eq!(
                        (end, kernel_end),
                        (Ok(size), Err(Errno::INVAL)),
                        "SEEK_END {rel} {args:?}: the documented exception changed"
                    );
                } else {
                    same_as_kernel(&format!("SEEK_END {rel} {args:?}"), end, kernel_end);
                }
            }
        }
        assert!(
            d.log_text().lines().all(|l| !l.contains("WARN")),
            "{}",
            d.log_text()
        );
    }
}

/// VmRSS of a process, in KiB.
fn rss_kb(pid: u32) -> u64 {
    let status = fs::read_to_string(format!("/proc/{pid}/status")).unwrap();
    status
        .lines()
        .find_map(|l| l.strip_prefix("VmRSS:"))
        .and_then(|v| v.split_whitespace().next())
        .and_then(|v| v.parse().ok())
        .unwrap()
}

/// One container holding 20 000 open handles of meminfo (20 processes × 1 000) costs
/// the daemon less than 16 MiB: the handles share the container's rendering.
#[test]
fn twenty_thousand_held_handles_cost_the_daemon_little() {
    require_tools(&["python3"], "apt-get install python3").unwrap();
    let d = Daemon::start(&[]);
    // Room for 20 Python processes, and below the RAM of the test VM (1 GiB).
    let cg = Cgroup::with_memory_limit("held", 768 * MIB);
    let ctr = Running::start(&cg, &d.mnt);
    assert!(ctr.exec("head -n1 /proc/meminfo").ok().contains("786432"));
    let worker = d.workers()[0];
    let before = rss_kb(worker);
    let ready = tempfile::tempdir().unwrap();
    let out = ctr.exec(&format!(
        "for i in $(seq 20); do python3 -c '\
import sys, time\n\
held = [open(\"/proc/meminfo\", \"rb\") for _ in range(1000)]\n\
open(sys.argv[1], \"w\").close()\n\
time.sleep(600)' {}/$i >/dev/null 2>&1 & done",
        ready.path().display()
    ));
    out.ok();
    // Twenty Python start-ups: slow under emulation (the VM) on a loaded machine.
    poll(
        4 * DEADLINE,
        "20 processes holding 1000 handles each",
        || (fs::read_dir(ready.path()).unwrap().count() == 20).then_some(()),
    );
    let after = rss_kb(worker);
    let grew = after.saturating_sub(before);
    eprintln!("worker RSS {before} KiB -> {after} KiB with 20 000 held handles");
    assert!(
        grew < 16 * 1024,
        "20 000 held handles grew the worker by {grew} KiB ({before} -> {after})"
    );
}

/// A container that holds more open files than `--max-open-mib` allows gets EMFILE for
/// the opens past it, the daemon says so once, a neighbour opens as usual meanwhile,
/// and the container opens again once it closes its handles.
#[test]
fn a_container_past_its_open_file_memory_gets_emfile_and_its_neighbour_does_not() {
    require_tools(&["python3"], "apt-get install python3").unwrap();
    let d = Daemon::start(&["--max-open-mib", "1"]);
    let greedy = Cgroup::with_memory_limit("greedy", 512 * MIB);
    let calm = Cgroup::with_memory_limit("calm", 256 * MIB);
    let ctr = Running::start(&greedy, &d.mnt);
    let neighbour = Running::start(&calm, &d.mnt);
    // Holds up to 2000 opens, reports how many failed with which errno, then (told by
    // a file appearing) closes them and opens once more.
    let dir = tempfile::tempdir().unwrap();
    let go = dir.path().join("go");
    let report = dir.path().join("report");
    let program = dir.path().join("hold.py");
    fs::write(
        &program,
        r#"import errno, os, sys, time
held, failed = [], {}
for _ in range(2000):
    try:
        held.append(open("/proc/meminfo", "rb"))
    except OSError as e:
        name = errno.errorcode[e.errno]
        failed[name] = failed.get(name, 0) + 1
open(sys.argv[2] + ".held", "w").write("%d %s" % (len(held), failed))
while not os.path.exists(sys.argv[1]):
    time.sleep(0.05)
for f in held:
    f.close()
open(sys.argv[2], "w").write(open("/proc/meminfo").readline())
"#,
    )
    .unwrap();
    let out = ctr.exec(&format!(
        "python3 {} {} {} >/dev/null 2>&1 &",
        program.display(),
        go.display(),
        report.display()
    ));
    out.ok();
    let held_report = report.with_extension("held");
    // Created empty, then written in one write(2): wait for the content.
    let held = poll(DEADLINE, "the greedy container's opens", || {
        fs::read_to_string(&held_report)
            .ok()
            .filter(|s| !s.is_empty())
    });
    let (n, failed) = held.split_once(' ').unwrap();
    let n: usize = n.parse().unwrap();
    // 1 MiB at about 1.7 KiB a handle.
    assert!((300..1500).contains(&n), "{n} opens held: {held}");
    assert!(
        failed.contains(&format!("'EMFILE': {}", 2000 - n)),
        "{held}"
    );
    // The neighbour is not affected while the greedy container holds its handles.
    let other = neighbour.exec("head -n1 /proc/meminfo");
    assert!(other.ok().contains("262144"), "{}", other.ok());
    let log = d.log_text();
    assert_eq!(
        log.matches("--max-open-mib").count(),
        1,
        "one line for {} refusals:\n{log}",
        2000 - n
    );
    // Closed: it opens again.
    fs::write(&go, "").unwrap();
    let again = poll(
        DEADLINE,
        "the greedy container's open after closing",
        || fs::read_to_string(&report).ok().filter(|s| !s.is_empty()),
    );
    assert!(again.contains("524288"), "{again}");
}

/// A container whose processes make pid namespaces of their own (a system container
/// running its own containers, or one dodging its bound) is still one container: the
/// handles held from all its namespaces share its one `--max-open-mib`.
#[test]
fn nested_pid_namespaces_share_their_containers_open_file_memory() {
    require_tools(&["python3"], "apt-get install python3").unwrap();
    const NESTED: usize = 3;
    let d = Daemon::start(&["--max-open-mib", "1"]);
    let greedy = Cgroup::with_memory_limit("nesting", 512 * MIB);
    let ctr = Running::start(&greedy, &d.mnt);
    let dir = tempfile::tempdir().unwrap();
    let program = dir.path().join("hold.py");
    fs::write(
        &program,
        r#"import os, sys, time
held, failed = [], 0
for _ in range(2000):
    try:
        held.append(open("/proc/meminfo", "rb"))
    except OSError:
        failed += 1
open(sys.argv[1] + ".tmp", "w").write("%d %d" % (len(held), failed))
os.rename(sys.argv[1] + ".tmp", sys.argv[1])
time.sleep(600)
"#,
    )
    .unwrap();
    // One after another, so that each finds what the ones before it hold.
    let script: String = (0..NESTED)
        .map(|i| {
            let report = dir.path().join(i.to_string());
            format!(
                "unshare -p -f python3 {} {} </dev/null >/dev/null 2>&1 &\n\
                 while [ ! -e {} ]; do sleep 0.05; done\n",
                program.display(),
                report.display(),
                report.display()
            )
        })
        .collect();
    ctr.exec(&script).ok();
    let held: Vec<usize> = (0..NESTED)
        .map(|i| {
            let text = fs::read_to_string(dir.path().join(i.to_string())).unwrap();
            text.split_whitespace().next().unwrap().parse().unwrap()
        })
        .collect();
    let total: usize = held.iter().sum();
    // 1 MiB at about 1.7 KiB a handle, for the three together.
    assert!(
        (300..1500).contains(&total),
        "{total} opens held by {NESTED} nested pid namespaces: {held:?}"
    );
    assert_eq!(
        held[NESTED - 1],
        0,
        "the last one finds the bound reached: {held:?}"
    );
}

/// The other calls a reader may make on a served file, each answered as the kernel's
/// own file answers it (success or the same errno), in direct I/O and passthrough
/// modes; the data calls also return the bytes a plain read returns.
#[test]
fn transfer_lock_and_open_flags_answer_like_proc() {
    use rustix::fs::{FallocateFlags, FlockOperation, Mode, OFlags, StatxFlags};
    for args in [&["--fuse-passthrough"][..], &[][..]] {
        let d = Daemon::start(args);
        let rel = "proc/meminfo";
        let ours_path = d.path(rel);
        let kernel_path = std::path::PathBuf::from(format!("/{rel}"));
        let expected_len = fs::read(&ours_path).unwrap().len();
        for (name, flags) in [
            ("O_DIRECT", OFlags::RDONLY | OFlags::DIRECT),
            ("O_PATH", OFlags::PATH),
            ("O_NOATIME", OFlags::RDONLY | OFlags::NOATIME),
        ] {
            let open = |p: &std::path::Path| {
                rustix::fs::open(p, flags | OFlags::CLOEXEC, Mode::empty()).map(|_| ())
            };
            same_as_kernel(
                &format!("open {name}"),
                open(&ours_path),
                open(&kernel_path),
            );
        }
        let ours = File::open(&ours_path).unwrap();
        let kernel = File::open(&kernel_path).unwrap();
        same_as_kernel(
            "flock",
            rustix::fs::flock(&ours, FlockOperation::NonBlockingLockShared),
            rustix::fs::flock(&kernel, FlockOperation::NonBlockingLockShared),
        );
        same_as_kernel(
            "fallocate",
            rustix::fs::fallocate(&ours, FallocateFlags::empty(), 0, 4096),
            rustix::fs::fallocate(&kernel, FallocateFlags::empty(), 0, 4096),
        );
        same_as_kernel(
            "statx",
            rustix::fs::statx(
                &ours,
                "",
                rustix::fs::AtFlags::EMPTY_PATH,
                StatxFlags::BASIC_STATS,
            )
            .map(|_| ()),
            rustix::fs::statx(
                &kernel,
                "",
                rustix::fs::AtFlags::EMPTY_PATH,
                StatxFlags::BASIC_STATS,
            )
            .map(|_| ()),
        );
        // sendfile and copy_file_range into a file: the whole content, as read gives it.
        let sink = tempfile::tempfile().unwrap();
        let mut total = 0;
        loop {
            let n = rustix::fs::sendfile(&sink, &ours, None, 65536).unwrap();
            if n == 0 {
                break;
            }
            total += n;
        }
        assert_eq!(total, expected_len, "sendfile {args:?}");
        let sink2 = tempfile::tempfile().unwrap();
        let copied =
            rustix::fs::copy_file_range(File::open(&ours_path).unwrap(), None, &sink2, None, 65536);
        let copied_kernel = rustix::fs::copy_file_range(
            File::open(&kernel_path).unwrap(),
            None,
            &sink2,
            None,
            65536,
        );
        assert_eq!(
            copied.map(|n| n > 0),
            copied_kernel.map(|n| n > 0),
            "copy_file_range {args:?}: lxcfs-rs (left) and the kernel (right)"
        );
        // splice into a pipe.
        let (r, w) = rustix::pipe::pipe().unwrap();
        let src = File::open(&ours_path).unwrap();
        let n = rustix::pipe::splice(
            &src,
            None,
            &w,
            None,
            65536,
            rustix::pipe::SpliceFlags::empty(),
        )
        .unwrap();
        let mut buf = vec![0u8; 65536];
        let got = rustix::io::read(&r, &mut buf).unwrap();
        assert!(
            n > 0 && got == n,
            "splice {args:?}: {n} spliced, {got} read"
        );
        assert!(buf.starts_with(b"MemTotal:"), "splice {args:?}");
        assert!(
            d.log_text().lines().all(|l| !l.contains("WARN")),
            "{}",
            d.log_text()
        );
    }
}

/// Every thread of `worker` keeps only CAP_DAC_READ_SEARCH and CAP_SYS_PTRACE, with
/// no_new_privs and the system call filter.
fn assert_every_thread_confined(worker: u32) {
    let kept = (1u64 << 2) | (1u64 << 19); // CAP_DAC_READ_SEARCH, CAP_SYS_PTRACE
    for task in fs::read_dir(format!("/proc/{worker}/task")).unwrap() {
        assert_thread_confined(&task.unwrap().path(), kept);
    }
}

/// The serving worker keeps only CAP_SYS_PTRACE and CAP_DAC_READ_SEARCH, in every one
/// of its threads, with no_new_privs and the system call filter; and with that it still
/// serves a container whose readers are not root, and one in its own user namespace.
#[test]
fn the_worker_serves_with_two_capabilities_and_a_syscall_filter() {
    let d = Daemon::start(&[]);
    assert_every_thread_confined(d.workers()[0]);
    let cg = Cgroup::with_memory_limit("unprivileged", 160 * MIB);
    let out = run(
        &cg,
        &d.mnt,
        "setpriv --reuid=65534 --regid=65534 --clear-groups head -n1 /proc/meminfo\n\
         unshare -U -r head -n1 /proc/meminfo\n\
         setpriv --reuid=65534 --regid=65534 --clear-groups cat /proc/loadavg",
    );
    let text = out.ok();
    assert_eq!(
        text.lines().filter(|l| l.contains("163840")).count(),
        2,
        "a non-root reader and a user-namespaced one get the container's limit:\n{text}"
    );
    assert!(
        d.log_text()
            .contains("capabilities kept: DAC_READ_SEARCH | SYS_PTRACE")
    );
}
