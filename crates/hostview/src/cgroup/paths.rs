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
    let rel = clamp(rest.trim_matches('/'));
    Ok(if rel.is_empty() {
        ".".to_string()
    } else {
        rel.to_string()
    })
}

/// Levels below a hierarchy's root that a container's cgroup is read at. Runtimes nest
/// a few (Kubernetes five; a container's own containers, systemd in them, a few more),
/// and a tenant nesting 100 deep is still shown its own limits; past this it is only a
/// tenant's own nesting, and each level costs every read of a deeper
/// cgroup a path lookup per ancestor per limit file (0.3 s a `meminfo` at 1 000
/// levels, 1.1 s at 1 900): a deeper cgroup is read as its ancestor this many levels
/// down, whose limits and usage include its own.
pub const MAX_LEVELS: usize = 128;

/// `rel` cut to its first [`MAX_LEVELS`] levels (said once, the first time).
fn clamp(rel: &str) -> &str {
    static SAID: std::sync::atomic::AtomicBool = std::sync::atomic::AtomicBool::new(false);
    let Some((cut, _)) = rel.match_indices('/').nth(MAX_LEVELS - 1) else {
        return rel;
    };
    if !SAID.swap(true, std::sync::atomic::Ordering::Relaxed) {
        tracing::info!(
            "a cgroup more than {MAX_LEVELS} levels deep is read as its ancestor \
             {MAX_LEVELS} levels down (said once): {}...",
            rel[..cut].chars().take(200).collect::<String>()
        );
    }
    &rel[..cut]
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
    #![allow(clippy::unwrap_used)]
    use super::*;

    #[test]
    fn ancestors_walk_to_root() {
        let v: Vec<&str> = ancestors("a/b/c").collect();
        assert_eq!(v, ["a/b/c", "a/b", "a", "."]);
        let v: Vec<&str> = ancestors(".").collect();
        assert_eq!(v, ["."]);
    }

    #[test]
    fn a_path_past_max_levels_is_read_at_its_ancestor_that_deep() {
        let deep = vec!["a"; 1500].join("/");
        let rel = within("/", &format!("/{deep}/init.scope"), "x", 1).unwrap();
        assert_eq!(rel, vec!["a"; MAX_LEVELS].join("/"));
        let exact = vec!["b"; MAX_LEVELS].join("/");
        assert_eq!(within("/", &format!("/{exact}"), "x", 1).unwrap(), exact);
        // Counted below the mount's root.
        let under = within("/lxc", &format!("/lxc/{deep}"), "x", 1).unwrap();
        assert_eq!(under.split('/').count(), MAX_LEVELS);
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
