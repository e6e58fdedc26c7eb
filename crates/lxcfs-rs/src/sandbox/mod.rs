//! The serving worker's system calls: an allow-list, installed (with `seccompiler`)
//! once the worker has set up its connection and dropped its capabilities, and before
//! it starts a thread, so every thread has it.
//!
//! A call outside the list fails with `EPERM` instead of running, and the kernel logs
//! it (the filter carries `SECCOMP_FILTER_FLAG_LOG`: an audit record of type 1326 in
//! the kernel log, `comm="lxcfs-rs" ... syscall=N`): a forgotten entry shows up as one
//! failed request and a log line, never as a worker killed without a word. What the
//! list holds is what serving needs: memory and threads (Rust's runtime), reading the
//! files it serves from and answering on `/dev/fuse`, the taskstats netlink socket of
//! the load sampler, pidfds, and the few calls of an exit or an abort. Nothing that
//! writes to the host's filesystems (no `mkdir`, `unlink`, `rename`, `mount`), nothing
//! that starts a program (`execve`), nothing that changes credentials or namespaces.

mod sys;

use std::collections::BTreeMap;

use anyhow::{Context, Result};
use seccompiler::{BpfProgram, SeccompAction, SeccompFilter, TargetArch};

/// Every system call a serving worker makes, by name (x86_64 and aarch64 numbering
/// come from `libc`).
pub const ALLOWED: &[(&str, i64)] = &[
    // memory
    ("brk", libc::SYS_brk),
    ("mmap", libc::SYS_mmap),
    ("munmap", libc::SYS_munmap),
    ("mremap", libc::SYS_mremap),
    ("mprotect", libc::SYS_mprotect),
    ("madvise", libc::SYS_madvise),
    // threads, time, signals
    ("clone", libc::SYS_clone),
    ("clone3", libc::SYS_clone3),
    ("set_robust_list", libc::SYS_set_robust_list),
    ("rseq", libc::SYS_rseq),
    ("futex", libc::SYS_futex),
    ("sched_yield", libc::SYS_sched_yield),
    ("sched_getaffinity", libc::SYS_sched_getaffinity),
    ("sigaltstack", libc::SYS_sigaltstack),
    ("rt_sigaction", libc::SYS_rt_sigaction),
    ("rt_sigprocmask", libc::SYS_rt_sigprocmask),
    ("rt_sigreturn", libc::SYS_rt_sigreturn),
    ("restart_syscall", libc::SYS_restart_syscall),
    ("clock_gettime", libc::SYS_clock_gettime),
    ("clock_nanosleep", libc::SYS_clock_nanosleep),
    ("nanosleep", libc::SYS_nanosleep),
    ("getrandom", libc::SYS_getrandom),
    ("prctl", libc::SYS_prctl),
    ("capget", libc::SYS_capget),
    ("getpid", libc::SYS_getpid),
    ("gettid", libc::SYS_gettid),
    ("getuid", libc::SYS_getuid),
    ("geteuid", libc::SYS_geteuid),
    ("getgid", libc::SYS_getgid),
    ("getegid", libc::SYS_getegid),
    ("prlimit64", libc::SYS_prlimit64),
    ("uname", libc::SYS_uname),
    // a panic's message may name paths relative to the working directory
    ("getcwd", libc::SYS_getcwd),
    // an exit, or an abort after a panic that could not unwind
    ("exit", libc::SYS_exit),
    ("exit_group", libc::SYS_exit_group),
    ("tgkill", libc::SYS_tgkill),
    // files it reads (cgroups, /proc, sysfs), the memfds, /dev/fuse, stderr
    ("openat", libc::SYS_openat),
    ("close", libc::SYS_close),
    ("read", libc::SYS_read),
    ("readv", libc::SYS_readv),
    ("pread64", libc::SYS_pread64),
    ("write", libc::SYS_write),
    ("writev", libc::SYS_writev),
    ("pwrite64", libc::SYS_pwrite64),
    ("ftruncate", libc::SYS_ftruncate),
    ("lseek", libc::SYS_lseek),
    ("fstat", libc::SYS_fstat),
    ("fstatfs", libc::SYS_fstatfs),
    ("newfstatat", libc::SYS_newfstatat),
    ("statx", libc::SYS_statx),
    ("getdents64", libc::SYS_getdents64),
    ("readlinkat", libc::SYS_readlinkat),
    ("fcntl", libc::SYS_fcntl),
    ("ioctl", libc::SYS_ioctl),
    ("poll", libc::SYS_poll),
    ("ppoll", libc::SYS_ppoll),
    ("dup", libc::SYS_dup),
    ("dup3", libc::SYS_dup3),
    ("pipe2", libc::SYS_pipe2),
    ("pidfd_open", libc::SYS_pidfd_open),
    // the load sampler's taskstats netlink socket
    ("socket", libc::SYS_socket),
    ("bind", libc::SYS_bind),
    ("getsockname", libc::SYS_getsockname),
    ("setsockopt", libc::SYS_setsockopt),
    ("getsockopt", libc::SYS_getsockopt),
    ("sendto", libc::SYS_sendto),
    ("recvfrom", libc::SYS_recvfrom),
    ("sendmsg", libc::SYS_sendmsg),
    ("recvmsg", libc::SYS_recvmsg),
];

/// An epoll set: what `--enable-psi-poll` adds (the thread that watches the PSI
/// triggers, see fusefs's `psi`), and the seccomp agent's answering threads.
pub const EPOLL: &[(&str, i64)] = &[
    ("epoll_create1", libc::SYS_epoll_create1),
    ("epoll_ctl", libc::SYS_epoll_ctl),
    ("epoll_pwait", libc::SYS_epoll_pwait),
    ("epoll_pwait2", libc::SYS_epoll_pwait2),
    #[cfg(target_arch = "x86_64")]
    ("epoll_wait", libc::SYS_epoll_wait),
];

/// What the seccomp agent's confined threads add (`lxcfs-rs seccomp-agent`) to
/// [`EPOLL`] (their epoll set of containers' notification descriptors): the runtimes'
/// connections to its socket, and the host's own `sysinfo` that a container's answer
/// is laid over.
pub const AGENT: &[(&str, i64)] = &[
    ("accept4", libc::SYS_accept4),
    #[cfg(target_arch = "x86_64")]
    ("accept", libc::SYS_accept),
    ("sysinfo", libc::SYS_sysinfo),
];

/// Install the allow-list on this thread (and so on every thread it starts).
pub fn confine() -> Result<()> {
    confine_with(&[])
}

/// [`confine`] with `extra` calls allowed too.
pub fn confine_with(extra: &[(&str, i64)]) -> Result<()> {
    let rules: BTreeMap<i64, Vec<seccompiler::SeccompRule>> = ALLOWED
        .iter()
        .chain(extra)
        .map(|&(_, nr)| (nr, Vec::new()))
        .collect();
    let arch = if cfg!(target_arch = "aarch64") {
        TargetArch::aarch64
    } else {
        TargetArch::x86_64
    };
    let filter = SeccompFilter::new(
        rules,
        SeccompAction::Errno(libc::EPERM as u32),
        SeccompAction::Allow,
        arch,
    )
    .context("cannot build the system call filter")?;
    let program: BpfProgram = filter
        .try_into()
        .context("cannot compile the system call filter")?;
    sys::install_logged(&program).context("cannot install the system call filter")
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    /// In a thread of its own (filters belong to the threads that install them and to
    /// those they start): allowed calls work, others fail with EPERM.
    #[test]
    fn allowed_calls_run_and_others_fail_with_eperm() {
        std::thread::spawn(|| {
            confine().unwrap();
            let dir = std::env::temp_dir().join(format!("lxcfs-rs-sandbox-{}", std::process::id()));
            let made = rustix::fs::mkdir(&dir, rustix::fs::Mode::RWXU);
            assert_eq!(made, Err(rustix::io::Errno::PERM));
            // Reading files and starting a thread still work.
            assert!(
                std::fs::read_to_string("/proc/thread-self/status")
                    .unwrap()
                    .contains("Seccomp:\t2")
            );
            std::thread::spawn(rustix::process::getpid).join().unwrap();
        })
        .join()
        .unwrap();
    }
}
