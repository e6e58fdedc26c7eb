//! The only module of this crate with `unsafe`: installing a compiled seccomp filter
//! with `SECCOMP_FILTER_FLAG_LOG`, which `seccompiler`'s own installers do not set.
#![allow(unsafe_code)]

use std::io;

use seccompiler::BpfProgram;

/// Install `program` on the calling thread with `no_new_privs` (required) and
/// `SECCOMP_FILTER_FLAG_LOG`, so that the kernel logs every call the filter refuses.
pub fn install_logged(program: &BpfProgram) -> io::Result<()> {
    let len = u16::try_from(program.len()).map_err(|_| io::Error::other("filter too long"))?;
    rustix::thread::set_no_new_privs(true)?;
    let prog = libc::sock_fprog {
        len,
        // seccompiler's `sock_filter` is `#[repr(C)]` with the kernel's layout
        // (code: u16, jt: u8, jf: u8, k: u32), as libc's is.
        filter: program.as_ptr().cast::<libc::sock_filter>().cast_mut(),
    };
    // SAFETY: `prog` points at `len` instructions owned by `program`, which outlives
    // the call; the kernel copies the filter (`copy_from_user`) and keeps no pointer to
    // our memory. The other arguments are plain integers.
    let rc = unsafe {
        libc::syscall(
            libc::SYS_seccomp,
            libc::SECCOMP_SET_MODE_FILTER,
            libc::SECCOMP_FILTER_FLAG_LOG,
            &prog as *const libc::sock_fprog,
        )
    };
    if rc != 0 {
        return Err(io::Error::last_os_error());
    }
    Ok(())
}
