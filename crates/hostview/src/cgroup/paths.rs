//! A process's cgroup paths, per hierarchy, relative to each hierarchy's mount.

use procfile::pid::cgroup_lines;

use super::{Backend, Controller, Hierarchies};
use crate::error::{Error, Result};
use crate::fsio::Dir;

/// Relative paths (`.` for a hierarchy's root) for one process, as in its
/// `/proc/<pid>/cgroup`, with a trailing `/init.scope` pruned: for a systemd container
/// the container is the cgroup *above* its init's scope.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CgroupPaths {
    /// Indexed like [`Hierarchies::v1`].
    v1: Vec<Option<String>>,
    v2: Option<String>,
}

impl CgroupPaths {
    pub fn read(hier: &Hierarchies, proc: &Dir, pid: u32) -> Result<CgroupPaths> {
        let text = proc.read_string(&format!("{pid}/cgroup"))?;
        CgroupPaths::parse(hier, &text, pid)
    }

    pub fn parse(hier: &Hierarchies, text: &str, pid: u32) -> Result<CgroupPaths> {
        let mut v1 = vec![None; hier.v1.len()];
        let mut v2 = None;
        for line in cgroup_lines(text) {
            if line.hierarchy == 0 && line.controllers.is_empty() {
                if let Some(h) = &hier.v2 {
                    v2 = Some(within(&h.mount_root, line.path, "cgroup2", pid)?);
                }
                continue;
            }
            let names: Vec<&str> = line.controllers.split(',').collect();
            for (i, h) in hier.v1.iter().enumerate() {
                if h.controllers.iter().all(|c| names.contains(&c.as_str())) {
                    v1[i] = Some(within(&h.mount_root, line.path, "cgroup", pid)?);
                }
            }
        }
        Ok(CgroupPaths { v1, v2 })
    }

    /// The directory and relative path of `c` for this process.
    pub fn locate<'h>(&self, hier: &'h Hierarchies, c: Controller) -> Option<(&'h Dir, &str)> {
        let b = hier.backend(c)?;
        let path = match b {
            Backend::V1(i) => self.v1.get(i)?.as_deref()?,
            Backend::V2 => self.v2.as_deref()?,
        };
        Some((hier.backend_dir(b)?, path))
    }

    /// The path in the first v1 hierarchy that has one.
    pub fn first_v1(&self) -> Option<&str> {
        self.v1.iter().flatten().next().map(String::as_str)
    }

    /// The path in v1 hierarchy `i` (indexed like [`Hierarchies::v1`]).
    pub fn v1_at(&self, i: usize) -> Option<&str> {
        self.v1.get(i)?.as_deref()
    }

    /// The v2 path even on a hybrid host whose v2 hierarchy has no controllers (PSI).
    pub fn unified(&self) -> Option<&str> {
        self.v2.as_deref()
    }
}

/// `path` relative to a mount showing `mount_root` of the hierarchy, with `init.scope`
/// pruned.
fn within(mount_root: &str, path: &str, what: &'static str, pid: u32) -> Result<String> {
    let root = mount_root.trim_end_matches('/');
    let rest = path
        .strip_prefix(root)
        .ok_or_else(|| Error::OutsideHierarchy {
            controller: what,
            path: path.to_string(),
            pid,
        })?;
    if !(rest.is_empty() || rest.starts_with('/')) {
        return Err(Error::OutsideHierarchy {
            controller: what,
            path: path.to_string(),
            pid,
        });
    }
    let rest = rest.strip_suffix("/init.scope").unwrap_or(rest);
    let rel = rest.trim_matches('/');
    Ok(if rel.is_empty() {
        ".".to_string()
    } else {
        rel.to_string()
    })
}

/// `path` and its ancestors up to the hierarchy root (`.`), nearest first.
pub fn ancestors(path: &str) -> impl Iterator<Item = &str> {
    let mut next = Some(path);
    std::iter::from_fn(move || {
        let cur = next?;
        next = if cur == "." {
            None
        } else {
            Some(cur.rfind('/').map_or(".", |i| &cur[..i]))
        };
        Some(cur)
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ancestors_walk_to_root() {
        let v: Vec<&str> = ancestors("a/b/c").collect();
        assert_eq!(v, ["a/b/c", "a/b", "a", "."]);
        let v: Vec<&str> = ancestors(".").collect();
        assert_eq!(v, ["."]);
    }

    #[test]
    fn within_prunes_init_scope_and_mount_root() {
        assert_eq!(
            within("/", "/lxc/c1/init.scope", "x", 1).ok().as_deref(),
            Some("lxc/c1")
        );
        assert_eq!(within("/", "/", "x", 1).ok().as_deref(), Some("."));
        assert_eq!(
            within("/lxc", "/lxc/c1", "x", 1).ok().as_deref(),
            Some("c1")
        );
        assert!(within("/lxc", "/lxcx/c1", "x", 1).is_err());
        assert!(within("/lxc", "/other", "x", 1).is_err());
    }
}
