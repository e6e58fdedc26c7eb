//! One notified call: receive it, write the container's `struct sysinfo` into the
//! caller's buffer, let the call return 0.
//!
//! The caller is named by a thread id, and ids are recycled: a caller killed while it
//! waits leaves the call and its id may name another process a moment later. So the
//! caller's memory is opened first (`/proc/<tid>/mem` is bound to the process it was
//! opened for, whatever happens to the number later), and only then is the
//! notification checked to be still pending (`SECCOMP_IOCTL_NOTIF_ID_VALID`): if it
//! is, the process opened was the caller, stopped in the call, and the write goes to
//! it; if not, nothing is written. The id is checked again before answering.
//!
//! When the answer cannot be written at all (the memory cannot be opened), the call is
//! let through to the kernel (`SECCOMP_USER_NOTIF_FLAG_CONTINUE`): the caller gets the
//! host's numbers rather than an error it likely ignores. Letting a call through is
//! unsafe for calls whose arguments a filter checks (they can change meanwhile);
//! sysinfo's only argument is where the kernel writes, so nothing is decided on it.

use std::fs::File;
use std::os::fd::BorrowedFd;
use std::os::unix::fs::FileExt;

use hostview::Host;
use procfile::sysinfo::{self, Sysinfo};
use rustix::io::Errno;

use super::sys::{self, Answer, Notification};

#[cfg(target_arch = "x86_64")]
const NATIVE_ARCH: u32 = 0xC000_003E; // AUDIT_ARCH_X86_64 (also x32's)
#[cfg(target_arch = "aarch64")]
const NATIVE_ARCH: u32 = 0xC000_00B7; // AUDIT_ARCH_AARCH64
/// x32 calls are x86_64's with this bit set; their `struct sysinfo` is the 64-bit one.
const X32_SYSCALL_BIT: i32 = 0x4000_0000;

/// Receive one call from `fd` and answer it.
pub fn one(fd: BorrowedFd<'_>, host: &Host) {
    let n = match sys::receive(fd) {
        Ok(n) => n,
        // The caller left the call (killed) between the wake-up and the receive.
        Err(Errno::NOENT) | Err(Errno::INTR) => return,
        Err(e) => {
            tracing::debug!("SECCOMP_IOCTL_NOTIF_RECV: {e}");
            return;
        }
    };
    let Some(a) = respond(fd, host, &n) else {
        return;
    };
    match sys::answer(fd, n.id, a) {
        Ok(()) | Err(Errno::NOENT) => {}
        Err(e) => tracing::debug!("SECCOMP_IOCTL_NOTIF_SEND: {e}"),
    }
}

/// The answer to `n`; `None` when its caller already left the call.
fn respond(fd: BorrowedFd<'_>, host: &Host, n: &Notification) -> Option<Answer> {
    let nr = if cfg!(target_arch = "x86_64") {
        n.nr & !X32_SYSCALL_BIT
    } else {
        n.nr
    };
    if i64::from(nr) != libc::SYS_sysinfo {
        // A profile sent us a call we do not answer: as if no one listened.
        return Some(Answer::Errno(libc::ENOSYS));
    }
    if n.arch != NATIVE_ARCH {
        // A 32-bit caller's struct has another layout: the kernel answers it.
        return Some(Answer::Continue);
    }
    let bytes = sysinfo_for(host, n.pid).encode();
    let mem = match File::options()
        .write(true)
        .open(format!("/proc/{}/mem", n.pid))
    {
        Ok(m) => m,
        Err(e) => {
            if !sys::still_valid(fd, n.id) {
                return None;
            }
            tracing::debug!("cannot open /proc/{}/mem ({e}): the kernel answers", n.pid);
            return Some(Answer::Continue);
        }
    };
    if !sys::still_valid(fd, n.id) {
        return None;
    }
    let written = mem.write_at(&bytes, n.args[0]);
    if !sys::still_valid(fd, n.id) {
        return None;
    }
    Some(match written {
        Ok(len) if len == bytes.len() => Answer::Value(0),
        // A bad pointer: what the kernel says for one.
        _ => Answer::Errno(libc::EFAULT),
    })
}

/// The host's sysinfo with the caller's container laid over it; the host's alone when
/// the container's data cannot be read (as its files then serve the host's).
fn sysinfo_for(host: &Host, tid: u32) -> Sysinfo {
    let own = host_sysinfo();
    match host.sysinfo(tid) {
        Ok(info) => sysinfo::overlay(&own, &info),
        Err(e) => {
            tracing::debug!("sysinfo for {tid}: the host's ({e})");
            own
        }
    }
}

fn host_sysinfo() -> Sysinfo {
    let s = rustix::system::sysinfo();
    Sysinfo {
        uptime: s.uptime,
        loads: s.loads,
        totalram: s.totalram,
        freeram: s.freeram,
        sharedram: s.sharedram,
        bufferram: s.bufferram,
        totalswap: s.totalswap,
        freeswap: s.freeswap,
        procs: s.procs,
        totalhigh: s.totalhigh,
        freehigh: s.freehigh,
        mem_unit: s.mem_unit,
    }
}
