//! A locked pidfile: the lock (not the file's existence) says a daemon is alive, so a
//! file left by a crash never blocks a restart, and two daemons cannot share one.

use std::fs::{File, OpenOptions};
use std::io::{Read, Seek, SeekFrom, Write};
use std::os::unix::fs::OpenOptionsExt;
use std::path::{Path, PathBuf};

use anyhow::{Context, Result, bail};
use rustix::fs::{FlockOperation, flock};

pub struct PidFile {
    path: PathBuf,
    /// Held open for the daemon's life: closing it drops the lock.
    _file: File,
}

impl PidFile {
    pub fn create(path: &Path) -> Result<PidFile> {
        if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
            std::fs::create_dir_all(dir)
                .with_context(|| format!("cannot create pidfile directory {}", dir.display()))?;
        }
        let mut file = OpenOptions::new()
            .read(true)
            .write(true)
            .create(true)
            .truncate(false)
            .mode(0o644)
            .open(path)
            .with_context(|| format!("cannot open pidfile {}", path.display()))?;
        if flock(&file, FlockOperation::NonBlockingLockExclusive).is_err() {
            let mut other = String::new();
            let _ = file.read_to_string(&mut other);
            bail!(
                "pidfile {} is locked by another running daemon (pid {}); use -p to choose another",
                path.display(),
                other.trim()
            );
        }
        file.set_len(0)?;
        file.seek(SeekFrom::Start(0))?;
        writeln!(file, "{}", std::process::id())
            .with_context(|| format!("cannot write pidfile {}", path.display()))?;
        Ok(PidFile {
            path: path.to_path_buf(),
            _file: file,
        })
    }
}

impl Drop for PidFile {
    fn drop(&mut self) {
        let _ = std::fs::remove_file(&self.path);
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    #[test]
    fn second_holder_is_refused_and_file_removed_on_drop() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("sub/x.pid");
        let a = PidFile::create(&p).unwrap();
        let content = std::fs::read_to_string(&p).unwrap();
        assert_eq!(content.trim(), std::process::id().to_string());
        let err = PidFile::create(&p).err().unwrap().to_string();
        assert!(err.contains("locked by another running daemon"), "{err}");
        drop(a);
        assert!(!p.exists());
        // A stale, unlocked file does not block.
        std::fs::write(&p, "12345\n").unwrap();
        let _b = PidFile::create(&p).unwrap();
    }
}
