//! The only module with `unsafe`: ioctls rustix has no wrapper for.
#![allow(unsafe_code)]

use std::ffi::c_void;
use std::os::fd::{AsFd, FromRawFd, OwnedFd};

use rustix::io::Errno;
use rustix::ioctl::{Ioctl, IoctlOutput, Opcode, ioctl};

/// The pid translations of nsfs (Linux 6.11+), each taking a pid by value and returning
/// a pid. `NS_GET_TGID_FROM_PIDNS` translates a pid *inside* the pid namespace behind
/// an nsfs descriptor into the caller's namespace: the kernel grew these precisely so
/// that LXCFS-like daemons could stop forking into each namespace to find its init.
/// `NS_GET_PID_IN_PIDNS` goes the other way, a thread of ours as that namespace
/// numbers it.
struct NsPid {
    op: Opcode,
    pid: usize,
}

// SAFETY: both opcodes take their argument by value (a pid), read and write no user
// memory, and return the translated pid as the ioctl's return value.
unsafe impl Ioctl for NsPid {
    type Output = u32;
    const IS_MUTATING: bool = false;

    fn opcode(&self) -> Opcode {
        self.op
    }

    fn as_ptr(&mut self) -> *mut c_void {
        self.pid as *mut c_void
    }

    unsafe fn output_from_ptr(out: IoctlOutput, _: *mut c_void) -> rustix::io::Result<u32> {
        u32::try_from(out)
            .ok()
            .filter(|&p| p != 0)
            .ok_or(Errno::SRCH)
    }
}

/// Host pid of the process that is pid `pid` in the pid namespace `ns_fd` refers to.
/// `ESRCH` when it is gone or not visible, `ENOTTY`/`EINVAL` on kernels before 6.11.
pub fn ns_pid_to_host<Fd: AsFd>(ns_fd: Fd, pid: u32) -> rustix::io::Result<u32> {
    let req = NsPid {
        op: libc::NS_GET_TGID_FROM_PIDNS as Opcode,
        pid: pid as usize,
    };
    // SAFETY: `ns_fd` is an open descriptor for the whole call (borrowed), and the
    // request's argument is a plain integer (see the `Ioctl` impl above).
    unsafe { ioctl(ns_fd, req) }
}

/// Thread `tid` of our pid namespace as the pid namespace `ns_fd` refers to numbers
/// it. `ESRCH` when it is gone or not visible there, `ENOTTY`/`EINVAL` before 6.11.
pub fn host_tid_in_ns<Fd: AsFd>(ns_fd: Fd, tid: u32) -> rustix::io::Result<u32> {
    let req = NsPid {
        op: libc::NS_GET_PID_IN_PIDNS as Opcode,
        pid: tid as usize,
    };
    // SAFETY: as in `ns_pid_to_host`.
    unsafe { ioctl(ns_fd, req) }
}

/// `NS_GET_PARENT` (Linux 4.9+): the parent of the namespace behind an nsfs
/// descriptor, as a new descriptor.
struct NsParent;

// SAFETY: the opcode takes no argument and touches no user memory; its return value
// is a new descriptor the caller owns, or the call fails.
unsafe impl Ioctl for NsParent {
    type Output = OwnedFd;
    const IS_MUTATING: bool = false;

    fn opcode(&self) -> Opcode {
        libc::NS_GET_PARENT as Opcode
    }

    fn as_ptr(&mut self) -> *mut c_void {
        std::ptr::null_mut()
    }

    unsafe fn output_from_ptr(out: IoctlOutput, _: *mut c_void) -> rustix::io::Result<OwnedFd> {
        // SAFETY: rustix hands us only a successful call's return value, and a
        // successful NS_GET_PARENT on an nsfs file (`ns_parent` checks that it is one)
        // returns a descriptor opened for us, which nothing else owns.
        Ok(unsafe { OwnedFd::from_raw_fd(out) })
    }
}

/// The parent pid (or user) namespace of `ns_fd`'s. `EPERM` when it lies outside the
/// caller's namespace, or there is none; `ENOTTY` when `ns_fd` is not a namespace.
pub fn ns_parent<Fd: AsFd>(ns_fd: Fd) -> rustix::io::Result<OwnedFd> {
    // The opcode means NS_GET_PARENT to nsfs only; a driver could give it a meaning of
    // its own, and what it returned would not be a descriptor of ours.
    if rustix::fs::fstatfs(&ns_fd)?.f_type as u64 != NSFS_MAGIC {
        return Err(Errno::NOTTY);
    }
    // SAFETY: `ns_fd` is an open nsfs descriptor for the whole call (borrowed), and
    // the request takes no argument (see the `Ioctl` impl above).
    unsafe { ioctl(ns_fd, NsParent) }
}

/// `statfs(2)`'s type of nsfs (`linux/magic.h`).
const NSFS_MAGIC: u64 = 0x6e73_6673;
