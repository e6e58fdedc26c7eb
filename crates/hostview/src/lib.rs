//! Everything lxcfs-rs reads from the host: cgroup layout and files, `/proc`, and the
//! pid namespace of whoever is reading.
//!
//! Every path is opened relative to a *root* directory: `/` in the daemon, a captured
//! tree under `fixtures/` in tests. All `unsafe` lives in [`sys`].

mod activity;
pub mod cache;
pub mod cgroup;
mod cpu;
pub mod cpudir;
mod cpufiles;
mod error;
mod explain;
pub mod files;
mod fsio;
mod loadavg;
mod logonce;
mod memory;
pub mod pidns;
mod rendercache;
mod sys;
mod tasks;
mod taskstats;
mod vmstat;

use std::path::Path;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Instant;

use procfile::{CpuView, HostMem};

pub use cache::{Container, ContainerKey};
pub use cgroup::{Hierarchies, Layout};
pub use error::{Error, Result};
pub use explain::Source;
pub use files::{Renderer, Spec, VirtualFile};
pub use fsio::{Dir, DirEntry};
pub use pidns::{InitResolver, NsId, ResolverKind};

use cache::ContainerCache;
use cgroup::CgroupPaths;
use logonce::LogOnce;

/// Behaviour switches from the command line, and what the server needs told.
#[derive(Debug, Clone, Copy)]
pub struct Options {
    /// Show the container's swap (off with `-u`).
    pub swap: bool,
    /// `--enable-cfs`: CPU count from the quota too.
    pub cfs: bool,
    /// `-l`: per-container load average.
    pub loadavg: bool,
    /// `--enable-cpu-shares`: CPU count bounded by ⌈shares / 1024⌉ too.
    pub cpu_shares: bool,
    /// `--host-uptime`: every reader gets the host's /proc/uptime.
    pub host_uptime: bool,
    pub resolver: ResolverKind,
    /// Fault injection for the restart tests: abort the process when rendering this
    /// file, like a worker that crashes on a request. Only debug builds (the tests')
    /// look at it: a release build's read path carries no fault injection.
    pub abort_on: Option<VirtualFile>,
    /// Called before each piece of work that reads the host's files (a rendering, a
    /// namespace resolution, a CPU view: tens of microseconds, more on a big host). The
    /// FUSE server passes its hand-off here: the thread that reads requests and serves
    /// the quick ones itself lets another take over reading first, or every other
    /// container's request would queue behind this one (see fusefs's `serve`).
    pub before_slow_work: fn(),
}

impl Default for Options {
    fn default() -> Self {
        Options {
            swap: true,
            cfs: false,
            loadavg: false,
            cpu_shares: false,
            host_uptime: false,
            resolver: ResolverKind::Auto,
            abort_on: None,
            before_slow_work: || {},
        }
    }
}

/// A file rendered for a reader.
#[derive(Debug, Clone)]
pub struct Rendered {
    /// Shared with every other reader of the same container within the render cache's
    /// lifetime.
    pub bytes: Arc<[u8]>,
    /// Who holding it is charged to: the reader's pid namespace inode (0: unknown).
    pub owner: u64,
    /// Where its content came from (for the daemon's counters).
    pub origin: Origin,
}

/// Where a [`Rendered`] came from.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Origin {
    /// Rendered now for the reader's container.
    Container,
    /// The container's rendering of the last 100 ms (shared by its readers).
    Cached,
    /// The host's file: the container's data could not be read.
    HostFallback,
    /// The host's file: every reader is served the host's (SIGUSR2, safe mode).
    HostSwitch,
}

/// The host as the daemon sees it. Shared by every FUSE thread.
pub struct Host {
    root: Dir,
    proc: Dir,
    hier: Hierarchies,
    resolver: InitResolver,
    ioctl_available: bool,
    self_ns: NsId,
    opts: Options,
    cache: ContainerCache,
    failures: LogOnce,
    /// Every reader is served the host's own files (SIGUSR2, LXCFS's kill switch).
    host_files: AtomicBool,
    stats: cpufiles::StatHistory,
    renders: rendercache::RenderCache,
    /// CPU views per container identity (see [`Host::cpu_view`]).
    views: rendercache::Recent<ContainerKey, Option<CpuView>>,
    loads: loadavg::Loads,
    /// The root is the real `/` (not a fixture): kernel interfaces apply to it.
    real_root: bool,
    /// USER_HZ: the unit of `/proc/stat` and of start times in `/proc/<pid>/stat`.
    clk_tck: u64,
    /// The kernel's task counter for `/proc/stat`'s and `/proc/loadavg`'s task counts
    /// (real host with taskstats only); one count at a time, each a few round trips.
    task_counter: std::sync::Mutex<Option<taskstats::Taskstats>>,
}

impl Host {
    /// Open `root` (`/` for the real host) and detect its cgroup layout.
    pub fn open(root: &Path, opts: Options) -> Result<Host> {
        let real_root = std::fs::canonicalize(root).is_ok_and(|p| p == Path::new("/"));
        let root = Dir::open(root)?;
        let proc = root.subdir("proc")?;
        let hier = Hierarchies::detect(&root)?;
        let ioctl_available = pidns::ioctl_works(&proc);
        let resolver = InitResolver::select(opts.resolver, &proc);
        let self_ns = NsId::parse(proc.readlink("self/ns/pid")?.as_bytes())
            .ok_or_else(|| Error::parse(proc.path_of("self/ns/pid")))?;
        Ok(Host {
            root,
            proc,
            hier,
            resolver,
            ioctl_available,
            self_ns,
            opts,
            cache: ContainerCache::default(),
            failures: LogOnce::default(),
            host_files: AtomicBool::new(false),
            stats: cpufiles::StatHistory::default(),
            renders: rendercache::RenderCache::default(),
            views: rendercache::Recent::default(),
            loads: loadavg::Loads::default(),
            real_root,
            clk_tck: rustix::param::clock_ticks_per_second().max(1),
            task_counter: std::sync::Mutex::new(
                real_root
                    .then(taskstats::Taskstats::open)
                    .and_then(std::result::Result::ok),
            ),
        })
    }

    /// The host's root directory (the mirrored sysfs entries are read from it).
    pub fn root(&self) -> &Dir {
        &self.root
    }

    pub fn layout(&self) -> Layout {
        self.hier.layout()
    }

    pub fn hierarchies(&self) -> &Hierarchies {
        &self.hier
    }

    pub fn resolver(&self) -> InitResolver {
        self.resolver
    }

    /// The kernel has `NS_GET_TGID_FROM_PIDNS` (Linux 6.11+).
    pub fn has_pidns_ioctl(&self) -> bool {
        self.ioctl_available
    }

    /// One line for the start-up log: what the kernel offers and what we use.
    pub fn features(&self) -> String {
        format!(
            "kernel features: NS_GET_TGID_FROM_PIDNS={}; init resolver: {}; cgroup layout: {}; hierarchies: {}",
            if self.ioctl_available { "yes" } else { "no" },
            match self.resolver {
                InitResolver::Ioctl => "ioctl",
                InitResolver::Procfs => "procfs",
            },
            self.hier.layout(),
            self.hier.describe()
        )
    }

    /// Serve host files to everyone (SIGUSR2, LXCFS's kill switch) or stop doing so.
    pub fn set_serve_host_files(&self, on: bool) {
        self.host_files.store(on, Ordering::Relaxed);
    }

    pub fn serves_host_files(&self) -> bool {
        self.host_files.load(Ordering::Relaxed)
    }

    /// Entries held per container: (paths, `/proc/stat` history, recent renderings).
    pub fn cached_containers(&self) -> (usize, usize, usize) {
        (self.cache.len(), self.stats.len(), self.renders.len())
    }

    /// The container of the reader whose thread id (in our pid namespace) is `tid`.
    pub fn container(&self, tid: u32) -> Result<Arc<Container>> {
        if tid == 0 {
            return Err(Error::NoCaller { tid });
        }
        let ns = NsId::of(&self.proc, tid)?;
        let now = Instant::now();
        if ns == self.self_ns {
            // A host reader (or `--pid=host`) is served its own cgroup.
            let paths = CgroupPaths::read(&self.hier, &self.proc, tid)?;
            return Ok(Arc::new(Container::new(tid, None, paths, None, now)));
        }
        if let Some(c) = self.cache.get(ns, now) {
            if NsId::of(&self.proc, c.init).ok() == Some(ns) {
                return Ok(c);
            }
            self.cache.remove(ns);
        }
        (self.opts.before_slow_work)();
        let init = match self.cache.init_of(ns) {
            Some(i) if NsId::of(&self.proc, i).ok() == Some(ns) => i,
            _ => self.resolver.resolve(&self.proc, tid, ns)?,
        };
        let paths = CgroupPaths::read(&self.hier, &self.proc, init)?;
        let c = Arc::new(Container::new(
            init,
            Some(ns),
            paths,
            self.start_ns(init),
            now,
        ));
        self.cache.insert(ns, c.clone(), now);
        Ok(c)
    }

    /// `file` rendered for reader `tid`. When the container's data cannot be read the
    /// host's file is served and the failure logged once per container; `Err` only when
    /// not even that is possible. Renderings of one container within
    /// [`rendercache::FRESH`] are one shared allocation: every handle that reads it
    /// holds the same bytes, not a copy.
    pub fn rendering(&self, file: VirtualFile, tid: u32) -> Result<Rendered> {
        if self.serves_host_files() {
            return self.host_rendering(file, self.reader_ns(tid), Origin::HostSwitch);
        }
        // A crash while virtualizing, as the tests inject it.
        #[cfg(debug_assertions)]
        if self.opts.abort_on == Some(file) {
            tracing::error!(
                "fault injection: aborting while rendering {}",
                file.host_path()
            );
            std::process::abort();
        }
        match self.render_container(file, tid) {
            Ok(r) => Ok(r),
            Err(e) => {
                let ns = self.reader_ns(tid);
                let key = if ns == 0 { u64::from(tid) } else { ns };
                if self.failures.first(key, error_kind(&e)) {
                    tracing::warn!(
                        "serving the host's {} to reader {tid}: {e}",
                        file.host_path()
                    );
                }
                self.host_rendering(file, ns, Origin::HostFallback)
            }
        }
    }

    /// The reader's pid namespace inode, 0 when it cannot be told.
    pub fn reader_ns(&self, tid: u32) -> u64 {
        NsId::of(&self.proc, tid).map_or(0, |n| n.0)
    }

    /// [`rendering`](Self::rendering) copied into `out` (cleared first).
    pub fn render(&self, file: VirtualFile, tid: u32, out: &mut Vec<u8>) -> Result<()> {
        let r = self.rendering(file, tid)?;
        out.clear();
        out.extend_from_slice(&r.bytes);
        Ok(())
    }

    fn host_rendering(&self, file: VirtualFile, owner: u64, origin: Origin) -> Result<Rendered> {
        let mut out = Vec::with_capacity(4096);
        self.host_file(file, &mut out)?;
        Ok(Rendered {
            bytes: out.into(),
            owner,
            origin,
        })
    }

    fn render_container(&self, file: VirtualFile, tid: u32) -> Result<Rendered> {
        let c = self.container(tid)?;
        let owner = c.ns.unwrap_or(self.self_ns).0;
        // Uptime falls back to the reader's own start when init's is unknown: then the
        // rendering is the reader's, not the container's.
        // Fixture trees change between renders in tests: only the live host is cached.
        let shareable = self.real_root
            && !(file == VirtualFile::Uptime && c.ns.is_some() && c.start_ns.is_none());
        let key = (c.key().clone(), file);
        let now = Instant::now();
        if shareable {
            if let Some(bytes) = self.renders.get(&key, now) {
                return Ok(Rendered {
                    bytes,
                    owner,
                    origin: Origin::Cached,
                });
            }
        }
        (self.opts.before_slow_work)();
        let mut out = Vec::with_capacity(4096);
        self.render_fresh(file, &c, tid, &mut out)?;
        let bytes: Arc<[u8]> = out.into();
        if shareable {
            self.renders.put(key, bytes.clone(), now);
        }
        Ok(Rendered {
            bytes,
            owner,
            origin: Origin::Container,
        })
    }

    fn render_fresh(
        &self,
        file: VirtualFile,
        c: &Container,
        tid: u32,
        out: &mut Vec<u8>,
    ) -> Result<()> {
        match file.spec().renderer {
            Renderer::Memory => self.render_memory(file, c, out),
            Renderer::Cpu => self.render_cpu(file, c, tid, out),
            Renderer::Activity => self.render_activity(file, c, out),
        }
    }

    fn render_memory(&self, file: VirtualFile, c: &Container, out: &mut Vec<u8>) -> Result<()> {
        let Some(view) = memory::read(&self.hier, &c.paths)? else {
            return self.host_instead(
                file,
                out,
                "no memory controller, or its memory cgroup is the root: the host's values are its own",
            );
        };
        let text = self.root.read_string("proc/meminfo")?;
        let host =
            HostMem::parse(&text).ok_or_else(|| Error::parse(self.root.path_of("proc/meminfo")))?;
        let vals = procfile::memory::compute(&host, &view, self.opts.swap);
        match file {
            VirtualFile::Swaps => procfile::render::swaps(&vals, out),
            _ => procfile::render::meminfo(&text, &vals, out),
        }
        Ok(())
    }

    /// When `pid` started, in ns since boot (field 22 of `/proc/<pid>/stat`).
    pub(crate) fn start_ns(&self, pid: u32) -> Option<u64> {
        let text = self.proc.read_lossy(&format!("{pid}/stat")).ok()?;
        let ticks = procfile::pid::parse_stat(&text)?.starttime;
        let ns = u128::from(ticks) * 1_000_000_000 / u128::from(self.clk_tck);
        u64::try_from(ns).ok()
    }

    /// The host's own file.
    pub fn host_file(&self, file: VirtualFile, out: &mut Vec<u8>) -> Result<()> {
        self.root.read_into(file.host_path(), out)
    }

    /// A page-multiple size to report in `st_size`: readers size their first read from
    /// it, so it must not be smaller than the content; larger is harmless under
    /// direct I/O. (GNU `wc -c` trusts sizes that are not page multiples.)
    pub fn size_hint(&self, file: VirtualFile) -> u64 {
        const PAGE: u64 = 4096;
        let mut buf = Vec::new();
        let len = match self.host_file(file, &mut buf) {
            Ok(()) => buf.len() as u64,
            Err(_) => 0,
        };
        let want = len.saturating_add(len / 2).max(PAGE);
        want.div_ceil(PAGE).saturating_mul(PAGE)
    }
}

fn error_kind(e: &Error) -> &'static str {
    match e {
        Error::Io { .. } => "io",
        Error::Parse { .. } => "parse",
        Error::InitNotFound { .. } => "init",
        Error::NoCaller { .. } => "caller",
        Error::NoCgroups => "cgroups",
        Error::OutsideHierarchy { .. } => "outside",
    }
}
