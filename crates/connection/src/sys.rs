//! The only module of this crate with `unsafe`: a descriptor inherited by number, and
//! memory mapped by every process that serves the connection.
#![allow(unsafe_code)]

use std::os::fd::AsFd;

use rustix::io::Errno;

/// Take ownership of a descriptor inherited from our parent by number (the supervisor
/// passes the FUSE connection to its workers this way), after checking it is open, and
/// mark it close-on-exec so it goes no further.
pub fn adopt_inherited_fd(n: std::os::fd::RawFd) -> std::io::Result<std::os::fd::OwnedFd> {
    use std::os::fd::{BorrowedFd, FromRawFd, OwnedFd};
    if n < 3 {
        return Err(Errno::BADF.into());
    }
    // SAFETY: `n` is only borrowed for this one fcntl; if it is not an open descriptor
    // the call fails with EBADF and nothing else happens.
    let flags = rustix::io::fcntl_getfd(unsafe { BorrowedFd::borrow_raw(n) })?;
    // SAFETY: `n` is open (checked above) and was inherited for us; nothing else in this
    // process refers to it, so taking sole ownership is sound.
    let fd = unsafe { OwnedFd::from_raw_fd(n) };
    rustix::io::fcntl_setfd(&fd, flags | rustix::io::FdFlags::CLOEXEC)?;
    Ok(fd)
}

/// Words of memory shared between processes: a `MAP_SHARED` mapping of a sealed memfd
/// (the supervisor creates it, every worker maps the descriptor it inherits). Workers
/// that serve one FUSE connection keep their common passthrough bookkeeping there.
pub struct SharedWords {
    ptr: std::ptr::NonNull<std::sync::atomic::AtomicU64>,
    len: usize,
}

// SAFETY: the mapping is only reached through `&[AtomicU64]`, which is Sync, and it
// stays mapped until drop.
unsafe impl Send for SharedWords {}
// SAFETY: as above: shared access is only ever atomic.
unsafe impl Sync for SharedWords {}

impl SharedWords {
    /// A new memfd named `name`, zeroed, of `words` words rounded up to whole pages,
    /// sealed against resizing, and its mapping: what a supervisor hands its workers.
    pub fn create(
        name: &str,
        words: usize,
    ) -> std::io::Result<(std::os::fd::OwnedFd, SharedWords)> {
        use rustix::fs::{MemfdFlags, SealFlags};
        let fd = rustix::fs::memfd_create(name, MemfdFlags::CLOEXEC | MemfdFlags::ALLOW_SEALING)?;
        let bytes = words
            .checked_mul(8)
            .ok_or(Errno::INVAL)?
            .next_multiple_of(4096);
        rustix::fs::ftruncate(&fd, bytes as u64)?;
        rustix::fs::fcntl_add_seals(&fd, SealFlags::SHRINK | SealFlags::GROW | SealFlags::SEAL)?;
        let mapped = SharedWords::map(&fd, words)?;
        Ok((fd, mapped))
    }

    /// Map `words` 64-bit words of `fd`, which must be a memfd sealed against
    /// shrinking and at least that long: a file that could shrink under the mapping
    /// would make an access fault (`SIGBUS`) instead of failing here.
    pub fn map<Fd: AsFd>(fd: Fd, words: usize) -> std::io::Result<SharedWords> {
        use rustix::fs::SealFlags;
        let bytes = words
            .checked_mul(8)
            .filter(|&b| b > 0)
            .ok_or(Errno::INVAL)?;
        let seals = rustix::fs::fcntl_get_seals(&fd)?;
        if !seals.contains(SealFlags::SHRINK) {
            return Err(std::io::Error::other(
                "shared memory is not sealed against shrinking",
            ));
        }
        let size = rustix::fs::fstat(&fd)?.st_size;
        if u64::try_from(size).unwrap_or(0) < bytes as u64 {
            return Err(std::io::Error::other("shared memory is too small"));
        }
        use rustix::mm::{MapFlags, ProtFlags};
        // SAFETY: a fresh mapping chosen by the kernel (null hint) overlaps nothing of
        // ours; the file is at least `bytes` long and cannot shrink (checked above).
        let ptr = unsafe {
            rustix::mm::mmap(
                std::ptr::null_mut(),
                bytes,
                ProtFlags::READ | ProtFlags::WRITE,
                MapFlags::SHARED,
                &fd,
                0,
            )?
        };
        let ptr = std::ptr::NonNull::new(ptr.cast()).ok_or(Errno::NOMEM)?;
        Ok(SharedWords { ptr, len: words })
    }

    /// Map all of `fd`'s words up to `most`, which must be at least `least` (see
    /// [`SharedWords::map`]).
    pub fn map_all<Fd: AsFd>(fd: Fd, least: usize, most: usize) -> std::io::Result<SharedWords> {
        let size = u64::try_from(rustix::fs::fstat(&fd)?.st_size).unwrap_or(0);
        let words = usize::try_from(size / 8).unwrap_or(usize::MAX).min(most);
        SharedWords::map(fd, words.max(least))
    }

    /// Words `start .. start + len` (one record of a table laid out in them); empty
    /// when they are not all mapped.
    pub fn range(&self, start: usize, len: usize) -> &[std::sync::atomic::AtomicU64] {
        start
            .checked_add(len)
            .and_then(|end| self.words().get(start..end))
            .unwrap_or(&[])
    }

    pub fn words(&self) -> &[std::sync::atomic::AtomicU64] {
        // SAFETY: `ptr` is a live, page-aligned mapping of `len` words (see `map`) that
        // outlives the borrow; `AtomicU64` has the size and alignment of `u64`, and every
        // access to the memory, by us or by another process, is atomic.
        unsafe { std::slice::from_raw_parts(self.ptr.as_ptr(), self.len) }
    }
}

impl Drop for SharedWords {
    fn drop(&mut self) {
        // SAFETY: unmaps exactly the mapping made in `map`; no borrow of `words()` can
        // outlive `self`.
        let _ = unsafe { rustix::mm::munmap(self.ptr.as_ptr().cast(), self.len * 8) };
    }
}

impl SharedWords {
    /// `readv(2)` from `fd` into `bytes` bytes of the mapping from word `word` on, then
    /// into `tail`: a request read from `/dev/fuse` this way is in shared memory the
    /// moment the system call returns, so a worker killed right after still leaves it
    /// for the next one (see `inflight`).
    pub fn readv<Fd: AsFd>(
        &self,
        fd: Fd,
        word: usize,
        bytes: usize,
        tail: &mut [u8],
    ) -> std::io::Result<usize> {
        use std::os::fd::AsRawFd;
        let end = word
            .checked_mul(8)
            .and_then(|b| b.checked_add(bytes))
            .ok_or(Errno::INVAL)?;
        if end > self.len * 8 {
            return Err(Errno::INVAL.into());
        }
        let iov = [
            libc::iovec {
                // SAFETY: `word * 8 + bytes` is within the mapping (checked above); the
                // kernel writes there as another process sharing it could, and no
                // reference to those bytes is made here.
                iov_base: unsafe { self.ptr.as_ptr().add(word) }.cast(),
                iov_len: bytes,
            },
            libc::iovec {
                iov_base: tail.as_mut_ptr().cast(),
                iov_len: tail.len(),
            },
        ];
        // SAFETY: both buffers are valid for writes of their lengths for the duration
        // of the call (the mapping lives as long as `self`; `tail` is borrowed mutably).
        let n = unsafe { libc::readv(fd.as_fd().as_raw_fd(), iov.as_ptr(), 2) };
        usize::try_from(n).map_err(|_| std::io::Error::last_os_error())
    }
}
