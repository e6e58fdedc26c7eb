//! Files of the cgroups above containers, read once per [`FRESH`] for all of them.
//!
//! A container's limits are the tightest over its own cgroup and every ancestor, so
//! each rendering read the same ancestors' files (the hierarchy root's; under
//! Kubernetes the QoS class's and the pod's) that its neighbours had just read. Levels
//! above the container are shared for [`FRESH`], the age the render cache already
//! allows a rendering, so no value is staler than before; the container's own level is
//! always read. Only on the real host: tests rewrite a fixture tree between reads.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::Instant;

use crate::error::{Error, Result};
use crate::fsio::Dir;
use crate::rendercache::FRESH;

/// Bound on remembered files; past it the stale ones go, and if that is not enough,
/// all (a host with this many distinct ancestors gains little from sharing them).
const MAX_ENTRIES: usize = 16384;

type Text = Option<Arc<str>>;

#[derive(Debug, Default)]
pub struct Above {
    /// `None` for a fixture tree: every read goes to the file.
    files: Option<Mutex<HashMap<String, (Instant, Text)>>>,
}

impl Above {
    pub fn new(shared: bool) -> Above {
        Above {
            files: shared.then(|| Mutex::new(HashMap::new())),
        }
    }

    /// File `name` of cgroup `level` under `dir`, for a container whose cgroup is
    /// `own`: read now at `own`, at most [`FRESH`] old above it. `None` when missing.
    pub fn read(&self, dir: &Dir, own: &str, level: &str, name: &str) -> Result<Text> {
        let rel = format!("{level}/{name}");
        let Some(files) = self.files.as_ref().filter(|_| level != own) else {
            return Ok(dir.read_optional(&rel)?.map(Arc::from));
        };
        let key = dir.path_of(&rel);
        let now = Instant::now();
        if let Some((at, text)) = lock(files).get(&key) {
            if now.saturating_duration_since(*at) < FRESH {
                return Ok(text.clone());
            }
        }
        // Read outside the lock: other renderings go on meanwhile, and two that miss
        // together both read, which costs no more than before sharing.
        let text: Text = dir.read_optional(&rel)?.map(Arc::from);
        let mut map = lock(files);
        if map.len() >= MAX_ENTRIES {
            map.retain(|_, (at, _)| now.saturating_duration_since(*at) < FRESH);
            if map.len() >= MAX_ENTRIES {
                map.clear();
            }
        }
        map.insert(key, (now, text.clone()));
        Ok(text)
    }

    /// [`Above::read`], parsed by `parse`; a file it refuses is an error naming it.
    pub fn parse<T>(
        &self,
        dir: &Dir,
        own: &str,
        level: &str,
        name: &str,
        parse: impl FnOnce(&str) -> Option<T>,
    ) -> Result<Option<T>> {
        let Some(text) = self.read(dir, own, level, name)? else {
            return Ok(None);
        };
        parse(&text)
            .map(Some)
            .ok_or_else(|| Error::parse(dir.path_of(&format!("{level}/{name}"))))
    }

    #[cfg(test)]
    fn len(&self) -> usize {
        self.files.as_ref().map_or(0, |f| lock(f).len())
    }
}

fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    // A panic while holding it leaves a map of whole entries.
    m.lock().unwrap_or_else(|p| p.into_inner())
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    fn tree() -> (tempfile::TempDir, Dir) {
        let t = tempfile::tempdir().unwrap();
        std::fs::create_dir_all(t.path().join("pod/ctr")).unwrap();
        std::fs::write(t.path().join("memory.max"), "max\n").unwrap();
        std::fs::write(t.path().join("pod/memory.max"), "100\n").unwrap();
        std::fs::write(t.path().join("pod/ctr/memory.max"), "50\n").unwrap();
        let d = Dir::open(t.path()).unwrap();
        (t, d)
    }

    #[test]
    fn levels_above_are_shared_for_a_moment_and_the_own_level_never() {
        let (t, d) = tree();
        let a = Above::new(true);
        let read = |level| a.read(&d, "pod/ctr", level, "memory.max").unwrap();
        assert_eq!(read("pod").as_deref(), Some("100\n"));
        assert_eq!(read(".").as_deref(), Some("max\n"));
        assert_eq!(read("pod/ctr").as_deref(), Some("50\n"));
        std::fs::write(t.path().join("pod/memory.max"), "200\n").unwrap();
        std::fs::write(t.path().join("pod/ctr/memory.max"), "60\n").unwrap();
        // Within FRESH the pod's is remembered, the container's read again.
        assert_eq!(read("pod").as_deref(), Some("100\n"));
        assert_eq!(read("pod/ctr").as_deref(), Some("60\n"));
        std::thread::sleep(FRESH);
        assert_eq!(read("pod").as_deref(), Some("200\n"));
        // A missing file is remembered as missing, and nothing of the own level is kept.
        assert_eq!(a.read(&d, "pod/ctr", "pod", "memory.high").unwrap(), None);
        assert_eq!(a.len(), 3);
    }

    #[test]
    fn a_file_that_does_not_parse_is_an_error_naming_it() {
        let (_t, d) = tree();
        let a = Above::new(true);
        let n = a.parse(&d, "pod/ctr", "pod", "memory.max", |s| {
            s.trim().parse::<u64>().ok()
        });
        assert_eq!(n.unwrap(), Some(100));
        let e = a.parse(&d, "pod/ctr", ".", "memory.max", |s| {
            s.trim().parse::<u64>().ok()
        });
        assert!(e.unwrap_err().to_string().contains("memory.max"));
        let none = a.parse(&d, "pod/ctr", "pod", "cpu.max", |_| Some(0));
        assert_eq!(none.unwrap(), None);
    }

    #[test]
    fn a_fixture_tree_is_always_read() {
        let (t, d) = tree();
        let a = Above::new(false);
        assert_eq!(
            a.read(&d, "pod/ctr", "pod", "memory.max")
                .unwrap()
                .as_deref(),
            Some("100\n")
        );
        std::fs::write(t.path().join("pod/memory.max"), "200\n").unwrap();
        assert_eq!(
            a.read(&d, "pod/ctr", "pod", "memory.max")
                .unwrap()
                .as_deref(),
            Some("200\n")
        );
        assert_eq!(a.len(), 0);
    }
}
