//! Everything lxcfs-rs reads from the host: cgroup layout and files, `/proc`, and the
//! pid namespace of whoever is reading.
//!
//! Every path is opened relative to a *root* directory: `/` in the daemon, a captured
//! tree under `fixtures/` in tests. All `unsafe` lives in [`sys`].

mod activity;
mod bounded;
mod busiest;
pub mod cache;
pub mod cgroup;
pub mod cgroupview;
mod countslots;
mod cpu;
pub mod cpudir;
mod cpufiles;
mod error;
mod explain;
pub mod files;
mod fsio;
mod hostinputs;
mod initscan;
mod loadavg;
mod logonce;
mod memory;
pub mod observe;
pub mod pidns;
mod psitrigger;
pub mod reason;
mod rendercache;
mod sys;
mod sysinfo;
mod tasks;
mod taskstats;
mod vmstat;

use std::path::Path;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Instant;

use procfile::{CpuView, HostMem};

pub use busiest::{BusyContainer, ReadTally};
pub use cache::{Container, ContainerKey};
pub use cgroup::{Hierarchies, Layout};
pub use error::{Error, Result};
pub use explain::Source;
pub use files::{Renderer, Spec, VirtualFile};
pub use fsio::{Dir, DirEntry};
pub use observe::{Observer, Resolution};
pub use pidns::{InitResolver, NsId, ResolverKind};
pub use reason::HostReason;

use cache::ContainerCache;
use cgroup::{CgroupPaths, Controller};
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
    /// `--enable-cgroup`: serve the `cgroup/` tree (see [`cgroupview`]).
    pub cgroup_view: bool,
    /// `--enable-psi-poll`: PSI triggers on `proc/pressure/*` handles.
    pub psi_poll: bool,
    pub resolver: ResolverKind,
    /// Fault injection for the restart tests: abort the process when rendering this
    /// file, like a worker that crashes on a request. Only debug builds (the tests')
    /// look at it: a release build's read path carries no fault injection.
    pub abort_on: Option<VirtualFile>,
    /// Fault injection for the logging tests: reading this file's container data fails
    /// (an I/O error), so every reader of it gets the host's file. Debug builds only.
    pub fail_on: Option<VirtualFile>,
    /// Fault injection for the restart tests: rendering this file for a reader in a
    /// container (another pid namespace) never finishes, like a worker stuck in a
    /// request when it is killed. Debug builds only.
    pub stall_on: Option<VirtualFile>,
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
            cgroup_view: false,
            psi_poll: false,
            resolver: ResolverKind::Auto,
            abort_on: None,
            fail_on: None,
            stall_on: None,
            before_slow_work: || {},
        }
    }
}

/// Whose a rendering is and who holding it is charged to (see [`Rendered`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Reader {
    pub ns: u64,
    pub owner: u64,
}

/// A file rendered for a reader.
#[derive(Debug, Clone)]
pub struct Rendered {
    /// Shared with every other reader of the same container within the render cache's
    /// lifetime.
    pub bytes: Arc<[u8]>,
    /// Who holding it is charged to: the reader's container's outermost pid namespace
    /// inode (0: unknown; see [`Host::owner_of`]).
    pub owner: u64,
    /// Whose rendering it is: the reader's own pid namespace inode (0: unknown), which
    /// a nested namespace does not share with its container's.
    pub ns: u64,
    /// Where its content came from (for the daemon's counters).
    pub origin: Origin,
    /// Why it is the host's file, when it is (not for [`Origin::HostSwitch`]).
    pub reason: Option<HostReason>,
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
    observer: Option<Arc<dyn Observer>>,
    /// Every reader is served the host's own files (SIGUSR2, LXCFS's kill switch).
    host_files: AtomicBool,
    stats: cpufiles::StatHistory,
    renders: rendercache::RenderCache,
    /// CPU views per container identity (see [`Host::cpu_view`]).
    views: rendercache::Recent<ContainerKey, Option<CpuView>>,
    /// sysinfo(2) answers per container identity (see [`Host::sysinfo`]).
    sysinfos: rendercache::Recent<ContainerKey, procfile::sysinfo::ContainerInfo>,
    loads: loadavg::Loads,
    /// The host's files every container's rendering reads, shared for a moment.
    inputs: hostinputs::HostInputs,
    /// The root is the real `/` (not a fixture): kernel interfaces apply to it.
    real_root: bool,
    /// USER_HZ: the unit of `/proc/stat` and of start times in `/proc/<pid>/stat`.
    clk_tck: u64,
    /// The kernel's task counter for `/proc/stat`'s and `/proc/loadavg`'s task counts
    /// (real host with taskstats only); one count at a time, each a few round trips.
    task_counter: std::sync::Mutex<Option<taskstats::Taskstats>>,
    /// The pid namespace each container is searching `/proc` for the init of (see
    /// `initscan`).
    scanning: countslots::CountSlots<NsId>,
    /// Each container's translation of a `cgroup/` pid list (see `cgroupview`).
    listing: countslots::CountSlots<()>,
    /// Held by the one search of every process under way (see `initscan`).
    full_scans: std::sync::Mutex<()>,
}

impl Host {
    /// Open `root` (`/` for the real host) and detect its cgroup layout.
    pub fn open(root: &Path, opts: Options) -> Result<Host> {
        let real_root = std::fs::canonicalize(root).is_ok_and(|p| p == Path::new("/"));
        let root = Dir::open(root)?;
        let proc = root.subdir("proc")?;
        let mut hier = Hierarchies::detect(&root)?;
        hier.above = crate::cgroup::Above::new(real_root);
        let ioctl_available = pidns::ioctl_works(&proc);
        let resolver = InitResolver::select(opts.resolver, &proc);
        let self_ns = NsId::at(&proc, "self/ns/pid")?;
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
            observer: None,
            host_files: AtomicBool::new(false),
            stats: cpufiles::StatHistory::default(),
            renders: rendercache::RenderCache::default(),
            views: rendercache::Recent::default(),
            sysinfos: rendercache::Recent::default(),
            loads: loadavg::Loads::default(),
            inputs: hostinputs::HostInputs::new(real_root),
            real_root,
            clk_tck: rustix::param::clock_ticks_per_second().max(1),
            task_counter: std::sync::Mutex::new(
                real_root
                    .then(taskstats::Taskstats::open)
                    .and_then(std::result::Result::ok),
            ),
            scanning: countslots::CountSlots::default(),
            listing: countslots::CountSlots::default(),
            full_scans: std::sync::Mutex::new(()),
        })
    }

    /// From now on, tell `o` what is measured (see [`Observer`]).
    pub fn set_observer(&mut self, o: Arc<dyn Observer>) {
        self.observer = Some(o);
    }

    fn observe(&self, f: impl FnOnce(&dyn Observer)) {
        if let Some(o) = &self.observer {
            f(o.as_ref());
        }
    }

    /// The host's root directory (the mirrored sysfs entries are read from it).
    pub fn root(&self) -> &Dir {
        &self.root
    }

    /// The switches it was opened with.
    pub fn options(&self) -> &Options {
        &self.opts
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
            // The reader being init (a container's main process often is) was checked
            // just above.
            if c.init == tid || NsId::of(&self.proc, c.init).ok() == Some(ns) {
                return Ok(c);
            }
            self.cache.remove(ns);
        }
        (self.opts.before_slow_work)();
        let began = Instant::now();
        // Held until the answer is cached (see `initscan`).
        let mut slot = None;
        let found = match self.cache.init_of(ns) {
            // The reader being that init was checked just above.
            Some(i) if i == tid || NsId::of(&self.proc, i).ok() == Some(ns) => {
                Ok((i, Resolution::CachedInit))
            }
            _ => self.resolve_init(tid, ns, &mut slot),
        };
        let how = match &found {
            Ok((_, how)) => *how,
            Err(Error::InitScanBusy { .. }) => Resolution::Busy,
            Err(_) => Resolution::Failed,
        };
        self.observe(|o| o.resolved(how, began.elapsed()));
        let (init, _) = found?;
        let paths = CgroupPaths::read(&self.hier, &self.proc, init)?;
        let c = Arc::new(Container::new(
            init,
            Some(ns),
            paths,
            self.start_ns(init),
            now,
        ));
        let pruned = self.cache.insert(ns, c.clone(), now);
        if pruned > 0 {
            self.observe(|o| o.pruned(pruned));
        }
        Ok(c)
    }

    /// `file` rendered for reader `tid`. When the container's data cannot be read the
    /// host's file is served and the failure logged once per container; `Err` only when
    /// not even that is possible. Renderings of one container within
    /// [`rendercache::FRESH`] are one shared allocation: every handle that reads it
    /// holds the same bytes, not a copy.
    pub fn rendering(&self, file: VirtualFile, tid: u32) -> Result<Rendered> {
        if self.serves_host_files() {
            return self.host_rendering(file, self.reader(tid), Origin::HostSwitch);
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
        #[cfg(debug_assertions)]
        if self.opts.stall_on == Some(file) && self.reader_ns(tid) != self.self_ns.0 {
            tracing::error!(
                "fault injection: stalling while rendering {}",
                file.host_path()
            );
            loop {
                std::thread::sleep(std::time::Duration::from_secs(1));
            }
        }
        match self.render_container(file, tid) {
            Ok(r) => Ok(r),
            Err(e) => {
                let who = self.reader(tid);
                let reason = HostReason::of_error(&e);
                self.log_fallback(file, tid, who, reason, &e);
                let mut r = self.host_rendering(file, who, Origin::HostFallback)?;
                r.reason = Some(reason);
                Ok(r)
            }
        }
    }

    /// The container's cgroup as the host names it: its memory cgroup, else its
    /// cgroup2 group, else its first v1 path.
    pub fn cgroup_name(&self, c: &Container) -> String {
        self.paths_name(&c.paths)
    }

    pub(crate) fn paths_name(&self, p: &CgroupPaths) -> String {
        let path = p
            .locate(&self.hier, Controller::Memory)
            .map(|(_, p)| p)
            .or_else(|| p.unified())
            .or_else(|| p.first_v1())
            .unwrap_or(".");
        if path == "." {
            "/".to_string()
        } else {
            format!("/{path}")
        }
    }

    /// The reader's pid namespace inode, 0 when it cannot be told.
    pub fn reader_ns(&self, tid: u32) -> u64 {
        NsId::of(&self.proc, tid).map_or(0, |n| n.0)
    }

    /// Who reader `tid`'s open files and PSI triggers are charged to: its container's
    /// outermost pid namespace (see [`pidns::outermost`]), the reader's own when that
    /// cannot be told, 0 when not even that can.
    pub fn owner_of(&self, tid: u32) -> u64 {
        self.reader(tid).owner
    }

    /// Reader `tid`'s pid namespace and its owner (see [`Host::reader_owner`]), without
    /// resolving its container: from the cached one when there is one, else walked
    /// for this read alone (the paths that ask this serve the host's files, or the
    /// container could not be resolved).
    pub fn reader(&self, tid: u32) -> Reader {
        let Ok(ns) = NsId::of(&self.proc, tid) else {
            return Reader { ns: 0, owner: 0 };
        };
        let owner = self.reader_owner(tid, ns).unwrap_or(ns);
        Reader {
            ns: ns.0,
            owner: owner.0,
        }
    }

    /// The owner of container `c`, which reader `tid` is in (its namespace itself when
    /// the walk fails: see [`Host::container_owner`]).
    fn owner_for(&self, tid: u32, c: &Container) -> NsId {
        self.container_owner(tid, c)
            .unwrap_or_else(|| c.ns.unwrap_or(self.self_ns))
    }

    /// The owner of container `c`, which reader `tid` is in: walked once per
    /// container (its entry's refreshes keep it); a walk that fails (the reader gone,
    /// its id reused in another namespace) is not kept, and gives `None`.
    fn container_owner(&self, tid: u32, c: &Container) -> Option<NsId> {
        let Some(ns) = c.ns else {
            return Some(self.self_ns);
        };
        if let Some(owner) = c.owner() {
            return Some(owner);
        }
        let owner = self.walk_owner(tid, ns)?;
        c.set_owner(owner);
        Some(owner)
    }

    /// The owner of reader `tid` in namespace `ns`: its cached container's, else
    /// walked for this read alone; `None` when the walk fails (the reader gone, its id
    /// reused).
    pub(crate) fn reader_owner(&self, tid: u32, ns: NsId) -> Option<NsId> {
        match self.cache.get(ns, Instant::now()) {
            Some(c) => self.container_owner(tid, &c),
            None => self.walk_owner(tid, ns),
        }
    }

    /// `None` when the walk failed.
    fn walk_owner(&self, tid: u32, ns: NsId) -> Option<NsId> {
        if ns == self.self_ns || !self.real_root {
            return Some(ns);
        }
        pidns::outermost(&self.proc, tid, ns, self.self_ns).ok()
    }

    /// [`rendering`](Self::rendering) copied into `out` (cleared first).
    pub fn render(&self, file: VirtualFile, tid: u32, out: &mut Vec<u8>) -> Result<()> {
        let r = self.rendering(file, tid)?;
        out.clear();
        out.extend_from_slice(&r.bytes);
        Ok(())
    }

    fn host_rendering(&self, file: VirtualFile, who: Reader, origin: Origin) -> Result<Rendered> {
        let mut out = Vec::with_capacity(4096);
        self.host_file(file, &mut out)?;
        Ok(Rendered {
            bytes: out.into(),
            owner: who.owner,
            ns: who.ns,
            origin,
            reason: None,
        })
    }

    fn render_container(&self, file: VirtualFile, tid: u32) -> Result<Rendered> {
        let c = self.container(tid)?;
        c.reads.fetch_add(1, Ordering::Relaxed);
        #[cfg(debug_assertions)]
        if self.opts.fail_on == Some(file) {
            return Err(Error::io(
                format!("{} (injected fault)", file.host_path()),
                rustix::io::Errno::IO,
            ));
        }
        let (owner, ns) = (self.owner_for(tid, &c).0, c.ns.unwrap_or(self.self_ns).0);
        // Uptime falls back to the reader's own start when init's is unknown: then the
        // rendering is the reader's, not the container's.
        // Fixture trees change between renders in tests: only the live host is cached.
        let shareable = self.real_root
            && !(file == VirtualFile::Uptime && c.ns.is_some() && c.start_ns.is_none());
        let key = (c.key().clone(), file);
        let now = Instant::now();
        if shareable {
            if let Some((bytes, reason)) = self.renders.get(&key, now) {
                return Ok(Rendered {
                    bytes,
                    owner,
                    ns,
                    origin: Origin::Cached,
                    reason,
                });
            }
        }
        (self.opts.before_slow_work)();
        let mut out = Vec::with_capacity(4096);
        Host::clear_host_instead();
        self.render_fresh(file, &c, tid, &mut out)?;
        let reason = Host::took_host_instead();
        let bytes: Arc<[u8]> = out.into();
        if shareable {
            self.renders.put(key, (bytes.clone(), reason), now);
        }
        Ok(Rendered {
            bytes,
            owner,
            ns,
            origin: Origin::Container,
            reason,
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
        let (text, mut vals) = match self.memory_values(c)? {
            Ok(v) => v,
            Err(why) => return self.host_instead(file, out, why),
        };
        match file {
            VirtualFile::Swaps => procfile::render::swaps(&vals, out),
            _ => {
                vals.huge = self.huge_pages(&text, c)?;
                procfile::render::meminfo(&text, &vals, out);
            }
        }
        Ok(())
    }

    /// The host's meminfo text and the container's numbers in it (meminfo, swaps and
    /// sysinfo(2) all show these); `Err(why)` when the host's own values are its own.
    pub(crate) fn memory_values(
        &self,
        c: &Container,
    ) -> Result<std::result::Result<(Arc<str>, procfile::MemValues), HostReason>> {
        let Some(view) = memory::read(&self.hier, &c.paths)? else {
            return Ok(Err(HostReason::MemoryRoot));
        };
        let input = hostinputs::HostInput::Meminfo;
        let text = self.inputs.text(&self.root, input)?;
        let host =
            HostMem::parse(&text).ok_or_else(|| Error::parse(self.root.path_of(input.path())))?;
        let vals = procfile::memory::compute(&host, &view, self.opts.swap);
        Ok(Ok((text, vals)))
    }

    /// The huge page lines bounded by the container's hugetlb limit. A host without
    /// huge pages (the common case) costs no cgroup read: zero stays zero.
    fn huge_pages(&self, meminfo: &str, c: &Container) -> Result<Option<procfile::HugeValues>> {
        let Some(host) = procfile::HostHuge::parse(meminfo) else {
            return Ok(None);
        };
        if host.total == 0 && host.hugetlb_kb.unwrap_or(0) == 0 {
            return Ok(None);
        }
        let size = host.cgroup_size_name();
        let Some(view) = memory::read_huge(&self.hier, &c.paths, &size)? else {
            return Ok(None);
        };
        Ok(procfile::hugetlb::compute(&host, &view))
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
