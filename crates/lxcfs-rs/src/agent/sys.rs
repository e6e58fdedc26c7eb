//! The agent's only `unsafe` code: the three seccomp user-notification ioctls, which
//! rustix has no wrappers for.
#![allow(unsafe_code)]

use std::os::fd::{AsFd, FromRawFd, OwnedFd};

use rustix::ioctl::{Opcode, Setter, Updater, ioctl};

/// One stopped system call, as `SECCOMP_IOCTL_NOTIF_RECV` reports it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Notification {
    /// Valid until it is answered or the caller leaves the call (killed).
    pub id: u64,
    /// The caller's thread id, in the agent's pid namespace.
    pub pid: u32,
    pub nr: i32,
    /// `AUDIT_ARCH_*` of the call's ABI.
    pub arch: u32,
    pub args: [u64; 6],
}

/// The answer: the return value, or a negative errno, or "run it yourself".
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Answer {
    Value(i64),
    Errno(i32),
    /// `SECCOMP_USER_NOTIF_FLAG_CONTINUE`: the kernel runs the call as if not filtered.
    Continue,
}

const RECV: Opcode = libc::SECCOMP_IOCTL_NOTIF_RECV as Opcode;
const SEND: Opcode = libc::SECCOMP_IOCTL_NOTIF_SEND as Opcode;
const ID_VALID: Opcode = libc::SECCOMP_IOCTL_NOTIF_ID_VALID as Opcode;
const SET_FLAGS: Opcode = libc::SECCOMP_IOCTL_NOTIF_SET_FLAGS as Opcode;
/// `SECCOMP_USER_NOTIF_FD_SYNC_WAKE_UP` (Linux 6.6).
const SYNC_WAKE_UP: u64 = 1;

/// Ask the kernel to hand the CPU straight from the caller to the agent and back
/// (Linux 6.6+): a notified call then costs two switches on one CPU instead of two
/// cross-CPU wake-ups. Older kernels refuse it (`EINVAL`), which only costs latency.
pub fn sync_wake_up<Fd: AsFd>(fd: Fd) -> rustix::io::Result<()> {
    // SAFETY: the opcode takes a pointer to a u64 of flags, which `Setter` passes;
    // `fd` is borrowed open for the whole call.
    unsafe { ioctl(fd, Setter::<SET_FLAGS, u64>::new(SYNC_WAKE_UP)) }
}

/// Take the next notification from listener `fd`, waiting for one. `ENOENT` when the
/// caller left the call between the wake-up and this receive.
pub fn receive<Fd: AsFd>(fd: Fd) -> rustix::io::Result<Notification> {
    // The kernel refuses (EINVAL) a buffer that is not zeroed.
    let mut n = libc::seccomp_notif {
        id: 0,
        pid: 0,
        flags: 0,
        data: libc::seccomp_data {
            nr: 0,
            arch: 0,
            instruction_pointer: 0,
            args: [0; 6],
        },
    };
    // SAFETY: `seccomp_notif` is the opcode's argument type (the opcode is defined from
    // it), `n` outlives the call, and `fd` is borrowed open for the whole call.
    unsafe { ioctl(fd, Updater::<RECV, libc::seccomp_notif>::new(&mut n)) }?;
    Ok(Notification {
        id: n.id,
        pid: n.pid,
        nr: n.data.nr,
        arch: n.data.arch,
        args: n.data.args,
    })
}

/// Whether notification `id` is still pending: its caller is still stopped in the call,
/// so the pid it came with is still that caller's.
pub fn still_valid<Fd: AsFd>(fd: Fd, id: u64) -> bool {
    // SAFETY: the opcode takes a pointer to a u64 id, which `Setter` passes; `fd` is
    // borrowed open for the whole call.
    unsafe { ioctl(fd, Setter::<ID_VALID, u64>::new(id)) }.is_ok()
}

/// Answer notification `id`. `ENOENT` when its caller already left the call.
pub fn answer<Fd: AsFd>(fd: Fd, id: u64, answer: Answer) -> rustix::io::Result<()> {
    let (val, error, flags) = match answer {
        Answer::Value(v) => (v, 0, 0),
        Answer::Errno(e) => (0, -e.abs(), 0),
        Answer::Continue => (0, 0, libc::SECCOMP_USER_NOTIF_FLAG_CONTINUE as u32),
    };
    let mut resp = libc::seccomp_notif_resp {
        id,
        val,
        error,
        flags,
    };
    // SAFETY: `seccomp_notif_resp` is the opcode's argument type, `resp` outlives the
    // call, and `fd` is borrowed open for the whole call.
    unsafe {
        ioctl(
            fd,
            Updater::<SEND, libc::seccomp_notif_resp>::new(&mut resp),
        )
    }
}

/// Own descriptor `n`, inherited across `execve` from the agent's previous program
/// (see `handover`) or from systemd (`LISTEN_FDS`, see `activation`). The caller
/// checked that it is open (and, for `handover`, of the expected kind), and takes each
/// number once.
pub fn adopt(n: i32) -> rustix::io::Result<OwnedFd> {
    if n < 0 {
        return Err(rustix::io::Errno::BADF);
    }
    // SAFETY: `n` is open (checked by the caller; `sd_notify::listen_fds` fails on a
    // descriptor it cannot set CLOEXEC on) and nothing in this process owns it: the
    // program has opened no handle to it, its number came from the command line its
    // previous program wrote or from systemd's LISTEN_FDS (read once: the crate unsets
    // it), and `handover::take` takes each number once.
    Ok(unsafe { OwnedFd::from_raw_fd(n) })
}

#[cfg(test)]
mod tests {
    /// procfile's encoding of `struct sysinfo` matches libc's layout on this target.
    #[test]
    fn sysinfo_layout_is_libcs() {
        use std::mem::{offset_of, size_of};
        assert_eq!(size_of::<libc::sysinfo>(), procfile::sysinfo::SIZE_64);
        assert_eq!(offset_of!(libc::sysinfo, loads), 8);
        assert_eq!(offset_of!(libc::sysinfo, totalram), 32);
        assert_eq!(offset_of!(libc::sysinfo, freeswap), 72);
        assert_eq!(offset_of!(libc::sysinfo, procs), 80);
        assert_eq!(offset_of!(libc::sysinfo, totalhigh), 88);
        assert_eq!(offset_of!(libc::sysinfo, mem_unit), 104);
    }
}
