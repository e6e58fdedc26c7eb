//! Reading files relative to a directory descriptor.
//!
//! Every open goes through a [`Dir`] (the host's `/proc`, a cgroup hierarchy, or the same
//! paths below a fixture directory), so tests point the whole crate at a captured tree
//! and the daemon never re-walks `/` on the hot path.

use std::ffi::CString;
use std::os::fd::{AsFd, BorrowedFd, OwnedFd};
use std::path::Path;

use rustix::fs::{Mode, OFlags, openat, readlinkat};
use rustix::io::Errno;

use crate::error::{Error, Result};

/// Files we read are a few KiB; anything past this is not a cgroup or proc file we
/// understand, and reading on would let a pathological file exhaust memory.
const MAX_FILE: usize = 16 << 20;

/// A directory opened with `O_PATH`, used only as an anchor for `*at` calls.
#[derive(Debug)]
pub struct Dir {
    fd: OwnedFd,
    /// For error messages only.
    name: String,
}

impl Dir {
    pub fn open(path: &Path) -> Result<Dir> {
        let name = path.display().to_string();
        let fd = rustix::fs::open(
            path,
            OFlags::PATH | OFlags::DIRECTORY | OFlags::CLOEXEC,
            Mode::empty(),
        )
        .map_err(|e| Error::io(name.clone(), e))?;
        Ok(Dir { fd, name })
    }

    pub fn subdir(&self, rel: &str) -> Result<Dir> {
        let rel = relative(rel);
        let fd = openat(
            &self.fd,
            rel,
            OFlags::PATH | OFlags::DIRECTORY | OFlags::CLOEXEC,
            Mode::empty(),
        )
        .map_err(|e| Error::io(self.path_of(rel), e))?;
        Ok(Dir {
            fd,
            name: self.path_of(rel),
        })
    }

    pub fn name(&self) -> &str {
        &self.name
    }

    pub fn fd(&self) -> BorrowedFd<'_> {
        self.fd.as_fd()
    }

    pub fn path_of(&self, rel: &str) -> String {
        format!("{}/{}", self.name.trim_end_matches('/'), relative(rel))
    }

    /// Replace `buf` with the whole content of `rel`.
    pub fn read_into(&self, rel: &str, buf: &mut Vec<u8>) -> Result<()> {
        let rel = relative(rel);
        buf.clear();
        let fd = openat(
            &self.fd,
            rel,
            OFlags::RDONLY | OFlags::CLOEXEC | OFlags::NOCTTY,
            Mode::empty(),
        )
        .map_err(|e| Error::io(self.path_of(rel), e))?;
        read_all(&fd, buf).map_err(|e| Error::io(self.path_of(rel), e))
    }

    pub fn read_string(&self, rel: &str) -> Result<String> {
        let mut buf = Vec::with_capacity(512);
        self.read_into(rel, &mut buf)?;
        String::from_utf8(buf).map_err(|_| Error::parse(self.path_of(rel)))
    }

    /// Like [`Dir::read_string`], for files that hold a process name among numbers
    /// (`/proc/<pid>/stat`, `status`): the name is whatever bytes the process chose, so
    /// bytes that are not UTF-8 are replaced instead of failing the read; the numbers
    /// around it are what callers parse.
    pub fn read_lossy(&self, rel: &str) -> Result<String> {
        let mut buf = Vec::with_capacity(512);
        self.read_into(rel, &mut buf)?;
        Ok(String::from_utf8(buf)
            .unwrap_or_else(|e| String::from_utf8_lossy(e.as_bytes()).into_owned()))
    }

    /// Like [`Dir::read_string`], but a missing file is `Ok(None)`.
    pub fn read_optional(&self, rel: &str) -> Result<Option<String>> {
        match self.read_string(rel) {
            Ok(s) => Ok(Some(s)),
            Err(e) if e.is_not_found() => Ok(None),
            Err(e) => Err(e),
        }
    }

    pub fn readlink(&self, rel: &str) -> Result<CString> {
        let rel = relative(rel);
        readlinkat(&self.fd, rel, Vec::with_capacity(64))
            .map_err(|e| Error::io(self.path_of(rel), e))
    }

    /// Numeric entries of this directory (pids, when it is `/proc`).
    pub fn numeric_entries(&self) -> Result<Vec<u32>> {
        Ok(self
            .entries(".")?
            .into_iter()
            .filter_map(|e| procfile::value::parse_u64(&e.name).and_then(|n| u32::try_from(n).ok()))
            .collect())
    }

    /// The entries of directory `rel`, without `.` and `..`.
    pub fn entries(&self, rel: &str) -> Result<Vec<DirEntry>> {
        self.listable(rel)?.into_entries()
    }

    /// Directory `rel`, opened for reading: it lists its entries and anchors `*at`
    /// calls alike, and names the directory where one is wanted (taskstats).
    pub fn listable(&self, rel: &str) -> Result<Dir> {
        let rel = relative(rel);
        let fd = openat(
            &self.fd,
            rel,
            OFlags::RDONLY | OFlags::DIRECTORY | OFlags::CLOEXEC,
            Mode::empty(),
        )
        .map_err(|e| Error::io(self.path_of(rel), e))?;
        Ok(Dir {
            fd,
            name: self.path_of(rel),
        })
    }

    /// The entries of this directory (opened by [`Dir::listable`]), without `.` and
    /// `..`.
    pub fn into_entries(self) -> Result<Vec<DirEntry>> {
        let mut out = Vec::new();
        self.each_entry(|name, kind| {
            out.push(DirEntry {
                name: name.to_string(),
                kind,
            });
            true
        })?;
        Ok(out)
    }

    /// Call `f` with the name and type of each entry of this directory (opened by
    /// [`Dir::listable`]) but `.` and `..`, until it returns false. Names that are not
    /// UTF-8 are skipped.
    pub fn each_entry(self, mut f: impl FnMut(&str, rustix::fs::FileType) -> bool) -> Result<()> {
        let Dir { fd, name } = self;
        // The stream takes this descriptor (`read_from` would open `.` again through it).
        let mut dir = rustix::fs::Dir::new(fd).map_err(|e| Error::io(name.clone(), e))?;
        for entry in dir.by_ref() {
            let entry = entry.map_err(|e| Error::io(name.clone(), e))?;
            let Ok(entry_name) = entry.file_name().to_str() else {
                continue;
            };
            if entry_name == "." || entry_name == ".." {
                continue;
            }
            if !f(entry_name, entry.file_type()) {
                break;
            }
        }
        Ok(())
    }

    /// Open `rel` for reading and writing and write `bytes` to it in one `write(2)`:
    /// what registers a PSI trigger, whose descriptor must then stay open.
    pub fn open_and_write(&self, rel: &str, bytes: &[u8]) -> Result<OwnedFd> {
        let rel = relative(rel);
        let fd = openat(
            &self.fd,
            rel,
            OFlags::RDWR | OFlags::CLOEXEC | OFlags::NOCTTY | OFlags::NONBLOCK,
            Mode::empty(),
        )
        .map_err(|e| Error::io(self.path_of(rel), e))?;
        rustix::io::write(&fd, bytes).map_err(|e| Error::io(self.path_of(rel), e))?;
        Ok(fd)
    }

    /// `lstat` of `rel` (symlinks are not followed).
    pub fn lstat(&self, rel: &str) -> Result<rustix::fs::Stat> {
        let rel = relative(rel);
        rustix::fs::statat(&self.fd, rel, rustix::fs::AtFlags::SYMLINK_NOFOLLOW)
            .map_err(|e| Error::io(self.path_of(rel), e))
    }
}

/// One directory entry.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DirEntry {
    pub name: String,
    pub kind: rustix::fs::FileType,
}

/// Paths inside a hierarchy come from `/proc/<pid>/cgroup` with a leading `/`; the
/// hierarchy's own root is `/` or empty. `*at` calls need them relative.
pub fn relative(path: &str) -> &str {
    let p = path.trim_start_matches('/');
    if p.is_empty() { "." } else { p }
}

fn read_all(fd: &OwnedFd, buf: &mut Vec<u8>) -> std::result::Result<(), Errno> {
    loop {
        if buf.len() >= MAX_FILE {
            return Err(Errno::FBIG);
        }
        if buf.capacity() - buf.len() < 1024 {
            buf.reserve(buf.capacity().max(4096));
        }
        // `spare_capacity` grows `buf` by exactly what the kernel wrote.
        match rustix::io::read(fd, rustix::buffer::spare_capacity(buf)) {
            Ok(0) => return Ok(()),
            Ok(_) => {}
            Err(Errno::INTR) => {}
            Err(e) => return Err(e),
        }
    }
}
