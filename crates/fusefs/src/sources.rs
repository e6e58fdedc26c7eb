//! What each inode shows the reader asking: a virtual file of the static tree, an entry
//! of the mirrored CPU directory (`sys/devices/system/cpu`, the reader's CPUs) or of the
//! cgroup view (`--enable-cgroup`), and its rendering for that reader.

use fuser::{Errno, FileAttr, FileType, Request};
use hostview::{Origin, Rendered};

use crate::handles::Source;
use crate::tree::{self, Kind};
use crate::{LxcFs, attr, cgroupfs, errno, sysfs};

impl LxcFs {
    /// Path (as the container names it) of a mirrored inode or of a child of one.
    pub(crate) fn dyn_path(&self, parent: u64, name: Option<&str>) -> Option<String> {
        if cgroupfs::CgroupTree::is_dir_here(parent) {
            return None;
        }
        let base = if parent == tree::SYS_CPU {
            None
        } else {
            Some(self.inodes.path(parent, self.host.root())?)
        };
        match (base, name) {
            (Some(b), Some(n)) => Some(format!("{b}/{n}")),
            (Some(b), None) => Some(b),
            (None, Some(n)) => Some(n.to_string()),
            (None, None) => None,
        }
    }

    /// Attributes of a mirrored path for this reader.
    pub(crate) fn dyn_attr(&self, req: &Request, rel: &str) -> Result<FileAttr, Errno> {
        let host_rel = self
            .host
            .cpu_dir_host_path(req.pid(), rel)
            .ok_or(Errno::ENOENT)?;
        let st = self.host.root().lstat(&host_rel).map_err(|e| errno(&e))?;
        let a = attr::of_host(self.inodes.intern(rel), &st, self.started);
        self.cache.attr_sent(a.ino.0, a.size);
        Ok(a)
    }

    /// What an inode's content comes from, for this reader.
    pub(crate) fn source(&self, req: &Request, ino: u64) -> Result<Source, Errno> {
        if cgroupfs::owns(ino) {
            return self.cgroups.source(&self.host, req.pid(), ino);
        }
        match tree::node(ino).map(|n| n.kind) {
            // Without `default_permissions` the kernel leaves mode checks to us.
            Some(Kind::File(f)) if f.root_only() && req.uid() != 0 => Err(Errno::EACCES),
            Some(Kind::File(f)) => Ok(Source::Virtual(f)),
            Some(Kind::Dir) => Err(Errno::EISDIR),
            None => {
                let host_rel = self
                    .dyn_path(ino, None)
                    .and_then(|r| self.host.cpu_dir_host_path(req.pid(), &r))
                    .ok_or(Errno::ENOENT)?;
                if req.uid() != 0 {
                    let st = self.host.root().lstat(&host_rel).map_err(|e| errno(&e))?;
                    if !attr::readable(st.st_mode, req.uid(), req.gid()) {
                        return Err(Errno::EACCES);
                    }
                }
                Ok(Source::Host(host_rel))
            }
        }
    }

    /// `src` rendered for this reader.
    pub(crate) fn render(&self, req: &Request, src: &Source) -> Result<Rendered, Errno> {
        match src {
            Source::Virtual(f) => self.host.rendering(*f, req.pid()),
            Source::Pids(p) => {
                let who = self.host.reader(req.pid());
                let mut buf = Vec::with_capacity(4096);
                self.host
                    .cgroup_pids(req.pid(), p, &mut buf)
                    .map(|()| Rendered {
                        bytes: buf.into(),
                        owner: who.owner,
                        ns: who.ns,
                        origin: Origin::Container,
                        reason: None,
                    })
            }
            Source::Host(p) => {
                let who = self.host.reader(req.pid());
                let mut buf = Vec::with_capacity(4096);
                self.host.root().read_into(p, &mut buf).map(|()| Rendered {
                    bytes: buf.into(),
                    owner: who.owner,
                    ns: who.ns,
                    // The mirrored sysfs entries are the host's by design.
                    origin: Origin::Container,
                    reason: None,
                })
            }
        }
        .map_err(|e| errno(&e))
    }

    /// What inode `ino` shows this reader, and its rendering.
    pub(crate) fn source_rendered(
        &self,
        req: &Request,
        ino: u64,
    ) -> Result<(Source, Rendered), Errno> {
        let src = self.source(req, ino)?;
        let buf = self.render(req, &src)?;
        Ok((src, buf))
    }

    /// The mirrored entries of a directory, for this reader.
    pub(crate) fn dyn_entries(
        &self,
        req: &Request,
        ino: u64,
    ) -> Result<Vec<(u64, FileType, String)>, Errno> {
        let rel = if ino == tree::SYS_CPU {
            String::new()
        } else {
            self.inodes
                .path(ino, self.host.root())
                .ok_or(Errno::ENOENT)?
        };
        let entries = self
            .host
            .cpu_dir_entries(req.pid(), &rel)
            .map_err(|e| errno(&e))?;
        Ok(entries
            .into_iter()
            .map(|e| {
                let path = if rel.is_empty() {
                    e.name.clone()
                } else {
                    format!("{rel}/{}", e.name)
                };
                (self.inodes.intern(&path), attr::kind(e.kind), e.name)
            })
            .collect())
    }
}

/// A mirrored sysfs entry below the CPU directory.
pub(crate) fn is_dynamic(ino: u64) -> bool {
    ino >= sysfs::DYN_BASE && !cgroupfs::owns(ino)
}
