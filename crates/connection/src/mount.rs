//! Mounting the connection, unmounting it, and asking the kernel to resend.

use std::ffi::CString;
use std::io;
use std::os::fd::{AsFd, AsRawFd, OwnedFd};
use std::path::Path;

use rustix::fs::{Mode, OFlags};
use rustix::mount::{MountFlags, UnmountFlags};

/// The filesystem type and source shown in mountinfo.
pub const FSTYPE: &str = "fuse.lxcfs-rs";
pub const SOURCE: &str = "lxcfs-rs";

/// Open `/dev/fuse` and mount it at `mountpoint`: `ro,nosuid,nodev,noexec`,
/// `allow_other` (containers read as any uid), owned by root, through `mount(2)`
/// directly (we are root; no fusermount). Returns the connection's descriptor.
/// `writable`: without `ro`, for `--enable-psi-poll`'s triggers (the server refuses
/// every other write itself).
pub fn open_and_mount(
    mountpoint: &Path,
    extra_options: &[String],
    writable: bool,
) -> io::Result<OwnedFd> {
    let fd = rustix::fs::open("/dev/fuse", OFlags::RDWR | OFlags::CLOEXEC, Mode::empty())?;
    let mut data = format!(
        "fd={},rootmode=40000,user_id=0,group_id=0,allow_other",
        fd.as_raw_fd()
    );
    for o in extra_options {
        data.push(',');
        data.push_str(o);
    }
    let data = CString::new(data).map_err(|_| io::Error::from(io::ErrorKind::InvalidInput))?;
    rustix::mount::mount(
        SOURCE,
        mountpoint,
        FSTYPE,
        if writable {
            MountFlags::empty()
        } else {
            MountFlags::RDONLY
        } | MountFlags::NOSUID
            | MountFlags::NODEV
            | MountFlags::NOEXEC,
        data.as_c_str(),
    )?;
    Ok(fd)
}

/// Detach the mount. Bind mounts of it in containers keep the connection referenced;
/// it ends when its last descriptor is closed.
pub fn unmount(mountpoint: &Path) -> io::Result<()> {
    rustix::mount::unmount(mountpoint, UnmountFlags::DETACH)?;
    Ok(())
}

/// `FUSE_NOTIFY_POLL`: the file whose kernel poll handle is `kh` may be ready; its
/// pollers ask again. A handle the kernel no longer knows (its file was closed) is
/// ignored by it.
pub fn notify_poll<Fd: AsFd>(fd: Fd, kh: u64) -> io::Result<()> {
    const FUSE_NOTIFY_POLL: i32 = 1;
    let mut msg = [0u8; 24];
    msg[0..4].copy_from_slice(&24u32.to_ne_bytes());
    msg[4..8].copy_from_slice(&FUSE_NOTIFY_POLL.to_ne_bytes());
    msg[16..24].copy_from_slice(&kh.to_ne_bytes());
    let n = rustix::io::write(fd, &msg)?;
    if n == msg.len() {
        Ok(())
    } else {
        Err(io::Error::from(io::ErrorKind::WriteZero))
    }
}

/// `FUSE_NOTIFY_RESEND` (Linux 6.9+): put every request a server has read but not
/// answered back in the queue, so the next worker answers what a dead one had taken.
/// `Err(EINVAL)` on older kernels.
pub fn notify_resend<Fd: AsFd>(fd: Fd) -> io::Result<()> {
    const FUSE_NOTIFY_RESEND: i32 = 7;
    let mut msg = [0u8; 16];
    msg[0..4].copy_from_slice(&16u32.to_ne_bytes());
    msg[4..8].copy_from_slice(&FUSE_NOTIFY_RESEND.to_ne_bytes());
    let n = rustix::io::write(fd, &msg)?;
    if n == msg.len() {
        Ok(())
    } else {
        Err(io::Error::from(io::ErrorKind::WriteZero))
    }
}
