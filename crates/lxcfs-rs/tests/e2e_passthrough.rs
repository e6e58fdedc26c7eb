//! FUSE passthrough (`--fuse-passthrough`): a reader that opens, reads and closes a file
//! again and again is answered with a backing memfd the kernel reads itself. These tests
//! check that it is really used, that every reader still gets its own container's
//! content, and that worker restarts and upgrades never make an open fail or show a
//! reader another container's rendering.
//!
//! The readers are perl loops (perl is part of every Debian system): one process, one
//! thread, so that from its third open on the daemon answers it with passthrough; a new
//! `cat` per read (the other e2e tests) never gets there.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::path::{Path, PathBuf};
use std::time::Duration;

use common::*;
use rustix::process::Signal;

/// Passthrough of reads is opt-in.
const PT: &str = "--fuse-passthrough";

const A_KB: u64 = 128 * 1024;
const B_KB: u64 = 384 * 1024;

fn require_perl() {
    require_env();
    assert!(
        which("perl").is_some(),
        "these tests need perl (Debian's perl-base) to read in one process"
    );
}

/// `n` open + read-to-the-end + close passes over /proc/meminfo in one process, each
/// checked for MemTotal `want` kB; prints `ok=… bad=… err=…`.
fn loop_script(n: usize, want: u64) -> String {
    format!(
        r#"exec perl -e '
my ($ok, $bad, $err) = (0, 0, 0);
for (1..{n}) {{
    if (open(my $f, "<", "/proc/meminfo")) {{
        local $/; my $t = <$f>; close $f;
        if (defined $t && $t =~ /^MemTotal:\s+(\d+)/m && $1 == {want}) {{ $ok++ }}
        else {{ $bad++; print "BAD: ", (defined $t ? substr($t, 0, 60) : "undef"), "\n" if $bad < 5 }}
    }} else {{ $err++; print "ERR: $!\n" if $err < 5 }}
}}
print "ok=$ok bad=$bad err=$err\n";
'
"#
    )
}

fn counts(out: &str) -> (usize, usize, usize) {
    let line = out
        .lines()
        .find(|l| l.starts_with("ok="))
        .unwrap_or_else(|| panic!("no counts in:\n{out}"));
    let nums: Vec<usize> = line
        .split_whitespace()
        .map(|kv| kv.split_once('=').unwrap().1.parse().unwrap())
        .collect();
    (nums[0], nums[1], nums[2])
}

fn assert_all_ok(out: &Output, n: usize, d: &Daemon) {
    assert_eq!(
        counts(out.ok()),
        (n, 0, 0),
        "{}\n--- daemon\n{}",
        out.ok(),
        d.log_text()
    );
}

/// What the connection's meminfo memfd holds now, read through the supervisor's
/// descriptor (it keeps every memfd for the workers it starts).
fn memfd_meminfo(d: &Daemon) -> String {
    let dir = PathBuf::from(format!("/proc/{}/fd", d.pid));
    for e in std::fs::read_dir(&dir).unwrap() {
        let p = e.unwrap().path();
        let Ok(target) = std::fs::read_link(&p) else {
            continue;
        };
        if target.to_string_lossy().contains("lxcfs-rs:meminfo") {
            return std::fs::read_to_string(&p).unwrap();
        }
    }
    panic!(
        "the supervisor holds no meminfo memfd (passthrough not set up?)\n{}",
        d.log_text()
    );
}

fn mem_total(text: &str) -> Option<u64> {
    meminfo_get(text, "MemTotal")
}

/// Bytes the process has written (`wchar`): replies to the kernel and memfd writes.
fn written(pid: u32) -> u64 {
    let io = std::fs::read_to_string(format!("/proc/{pid}/io")).unwrap();
    io.lines()
        .find_map(|l| l.strip_prefix("wchar: "))
        .unwrap()
        .trim()
        .parse()
        .unwrap()
}

/// Run `n` polling passes in container `cg` (all must be right); what the worker wrote
/// meanwhile, and the file's size.
fn worker_bytes_for_reads(d: &Daemon, cg: &Cgroup, n: usize) -> (u64, u64) {
    let worker = the_worker(d);
    let before = written(worker);
    let out = run(cg, &d.mnt, &loop_script(n, A_KB));
    let after = written(worker);
    assert_all_ok(&out, n, d);
    let size = std::fs::read_to_string(d.path("proc/meminfo"))
        .unwrap()
        .len() as u64;
    (after - before, size)
}

fn the_worker(d: &Daemon) -> u32 {
    let w = d.workers();
    assert_eq!(w.len(), 1, "workers: {w:?}\n{}", d.log_text());
    w[0]
}

fn kill_worker(d: &Daemon) {
    let old = the_worker(d);
    signal(old, Signal::KILL).unwrap();
    poll(DEADLINE, "a new worker", || {
        let now = d.workers();
        (now.len() == 1 && now[0] != old).then_some(())
    });
    // Serving: an open answers.
    std::fs::read_to_string(d.path("proc/uptime")).unwrap();
}

fn wait_file(p: &Path) {
    poll(DEADLINE, "the container's reader", || {
        p.exists().then_some(())
    });
}

/// A container script: two clean passes over meminfo, then an open kept (answered with
/// pure passthrough); prints MemTotal as read through it before and after `go` exists,
/// touching `ready` in between.
fn holder_script(ready: &Path, go: &Path) -> String {
    format!(
        r#"exec perl -e '
sub slurp {{ open(my $f, "<", "/proc/meminfo") or die "open: $!"; local $/; my $t = <$f>; close $f; $t }}
slurp(); slurp();
open(my $h, "<", "/proc/meminfo") or die "open: $!";
my $t; sysread($h, $t, 65536);
print "before: ", ($t =~ /^MemTotal:\s+(\d+)/m)[0], "\n";
open(my $r, ">", "{ready}"); close $r;
for (1..3000) {{ last if -e "{go}"; select(undef, undef, undef, 0.02) }}
sysseek($h, 0, 0); my $u; sysread($h, $u, 65536);
print "after: ", ($u =~ /^MemTotal:\s+(\d+)/m)[0], "\n";
close $h;
'
"#,
        ready = ready.display(),
        go = go.display()
    )
}

#[test]
fn a_polling_reader_is_served_by_the_kernel() {
    require_perl();
    let d = Daemon::start(&[PT]);
    assert!(
        d.log_text().contains("backing files registered"),
        "this kernel should offer FUSE passthrough (6.9+):\n{}",
        d.log_text()
    );
    let cg = Cgroup::with_memory_limit("pt-poll", 128 * MIB);
    let n = 2000;
    let (bytes, size) = worker_bytes_for_reads(&d, &cg, n);
    // Served by us, every pass would cost the worker a reply with the whole file.
    assert!(
        bytes < n as u64 * size / 4,
        "the worker wrote {bytes} bytes for {n} reads of {size} bytes: reads were not passed through"
    );
    assert_eq!(mem_total(&memfd_meminfo(&d)), Some(A_KB));
}

/// By default one FUSE thread reads requests and polls between them (fuser's relay
/// patch) while that measures cheaper than every thread reading: four readers in two
/// containers keep it busy with back-to-back requests, through whichever it chooses.
#[test]
fn polling_containers_each_read_their_own_values() {
    let d = polling_containers("pt", &[PT]);
    assert!(
        d.log_text()
            .contains("one polling for 50 µs after each request"),
        "{}",
        d.log_text()
    );
}

/// The same with the classic event loop, every thread reading the device.
#[test]
fn polling_containers_each_read_their_own_values_without_the_relay() {
    let d = polling_containers("pt-classic", &[PT, "--fuse-poll-us=0"]);
    assert!(!d.log_text().contains("one polling"), "{}", d.log_text());
}

fn polling_containers(tag: &str, args: &[&str]) -> Daemon {
    require_perl();
    let d = Daemon::start(args);
    let a = Cgroup::with_memory_limit(&format!("{tag}-a"), 128 * MIB);
    let b = Cgroup::with_memory_limit(&format!("{tag}-b"), 384 * MIB);
    let n = 1500;
    let outs: Vec<Output> = std::thread::scope(|s| {
        let mut hs = Vec::new();
        for (cg, want) in [(&a, A_KB), (&b, B_KB), (&a, A_KB), (&b, B_KB)] {
            let mnt = d.mnt.clone();
            hs.push(s.spawn(move || run(cg, &mnt, &loop_script(n, want))));
        }
        hs.into_iter().map(|h| h.join().unwrap()).collect()
    });
    for out in &outs {
        assert_all_ok(out, n, &d);
    }
    d
}

/// A container holds a pure open of meminfo (its rendering in the memfd) while
/// `replace` swaps whatever serves the mount (returning the new daemon, if it made
/// one). Another container then polls through the new server: no EIO (it must answer
/// with the same backing), its own values, and the held memfd left alone; the holder
/// still reads its own content, and once it closes, the memfd is free again.
fn a_pure_open_survives(tag: &str, replace: impl FnOnce(&mut Daemon) -> Option<Daemon>) {
    require_perl();
    let mut d = Daemon::start(&[PT]);
    let a = Cgroup::with_memory_limit(&format!("{tag}-a"), 128 * MIB);
    let b = Cgroup::with_memory_limit(&format!("{tag}-b"), 384 * MIB);
    let ready = std::env::temp_dir().join(unique(&format!("{tag}-ready")));
    let go = std::env::temp_dir().join(unique(&format!("{tag}-go")));
    let holder = holder_script(&ready, &go);
    let mnt = d.mnt.clone();
    let a2 = &a;
    std::thread::scope(|s| {
        let h = s.spawn(move || run(a2, &mnt, &holder));
        wait_file(&ready);
        // Its open wrote its rendering: it is pure.
        assert_eq!(
            mem_total(&memfd_meminfo(&d)),
            Some(A_KB),
            "{}",
            d.log_text()
        );
        let replaced = replace(&mut d);
        let d = replaced.as_ref().unwrap_or(&d);
        let out = run(&b, &d.mnt, &loop_script(300, B_KB));
        assert_all_ok(&out, 300, d);
        assert_eq!(mem_total(&memfd_meminfo(d)), Some(A_KB), "{}", d.log_text());
        std::fs::write(&go, b"").unwrap();
        let out = h.join().unwrap();
        let text = out.ok();
        assert!(text.contains(&format!("before: {A_KB}")), "{text}");
        assert!(text.contains(&format!("after: {A_KB}")), "{text}");
        // The held open's release reached the new worker: the memfd is free again.
        let out = run(&b, &d.mnt, &loop_script(300, B_KB));
        assert_all_ok(&out, 300, d);
        assert_eq!(mem_total(&memfd_meminfo(d)), Some(B_KB), "{}", d.log_text());
    });
    let _ = std::fs::remove_file(&ready);
    let _ = std::fs::remove_file(&go);
}

/// The case that kept passthrough off by default: an open the old worker answered with
/// passthrough is still live when another worker takes over.
#[test]
fn a_pure_open_held_across_a_worker_restart() {
    a_pure_open_survives("pt-hold", |d| {
        kill_worker(d);
        None
    });
}

/// Two containers poll while the worker is killed twice and upgraded once.
#[test]
fn polling_readers_survive_kills_and_an_upgrade() {
    require_perl();
    let d = Daemon::start(&[PT]);
    let a = Cgroup::with_memory_limit("pt-up-a", 128 * MIB);
    let b = Cgroup::with_memory_limit("pt-up-b", 384 * MIB);
    let n = 6000;
    std::thread::scope(|s| {
        let mut hs = Vec::new();
        for (cg, want) in [(&a, A_KB), (&b, B_KB)] {
            let mnt = d.mnt.clone();
            hs.push(s.spawn(move || run_timeout(cg, &mnt, &loop_script(n, want), 4 * DEADLINE)));
        }
        std::thread::sleep(Duration::from_millis(300));
        kill_worker(&d);
        std::thread::sleep(Duration::from_millis(300));
        d.upgrade();
        std::thread::sleep(Duration::from_millis(300));
        kill_worker(&d);
        for h in hs {
            assert_all_ok(&h.join().unwrap(), n, &d);
        }
    });
    let log = d.log_text();
    assert!(log.contains("SIGUSR1") && log.contains("SIGKILL"), "{log}");
}

/// By default, and with the flag of the versions where passthrough was the default,
/// every read is served by the worker.
#[test]
fn disabled_passthrough_serves_every_read() {
    require_perl();
    for args in [&[][..], &["--disable-fuse-passthrough"][..]] {
        let d = Daemon::start(args);
        let cg = Cgroup::with_memory_limit("pt-off", 128 * MIB);
        let n = 500;
        let (bytes, size) = worker_bytes_for_reads(&d, &cg, n);
        assert!(
            bytes >= n as u64 * size,
            "{args:?}: the worker wrote only {bytes} bytes for {n} reads of {size} bytes"
        );
        let log = d.log_text();
        assert!(!log.contains("backing files registered"), "{args:?}\n{log}");
        // Linux 6.9 to 6.11 refuse the unmappable backing file, and the daemon says so.
        let said = if kernel_at_least(6, 12) {
            "unmappable backing file"
        } else {
            "does not take a backing file that cannot be read"
        };
        assert!(log.contains(said), "{args:?}\n{log}");
    }
}

/// The supervisor is SIGKILLed with a pure open live and the next daemon adopts its
/// worker: the new supervisor must take the connection's backing files and counts from
/// the orphan (its own would fail every open with EIO, or rewrite the held memfd).
#[test]
fn a_pure_open_held_across_a_supervisor_crash_and_adoption() {
    a_pure_open_survives("pt-adopt", |d| {
        let orphans = d.workers();
        d.stop_with(Signal::KILL);
        // Without --fuse-passthrough: the mount keeps it, and the adopter says so.
        let d2 = d.restart(&[]);
        poll(DEADLINE, "the orphan to be replaced", || {
            (!orphans.iter().any(|&p| is_running(p)) && d2.workers().len() == 1).then_some(())
        });
        let log = d2.log_text();
        assert!(
            log.contains("this mount was made with FUSE passthrough of reads"),
            "{log}"
        );
        Some(d2)
    });
}
