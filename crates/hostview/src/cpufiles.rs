//! The CPU files: cpuinfo, stat, uptime and the sysfs CPU lists, all rendered from one
//! [`CpuView`] per read so they agree with each other.

use std::collections::HashMap;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use procfile::render::ProcessCounts;

use crate::tasks::Counts;
use procfile::{CpuSet, CpuView, StatState};

use crate::bounded::make_room;
use crate::cache::{Container, ContainerKey};
use crate::countslots::{CountSlots, Slot};
use crate::cpu;
use crate::error::{Error, Result};
use crate::files::VirtualFile;
use crate::hostinputs::{self, HostInput};
use crate::reason::HostReason;
use crate::rendercache::FRESH;
use crate::{Host, tasks};

/// Task counts are a gauge; recounting them more than once a second per container
/// would make `/proc/stat` cost O(tasks) per read.
const COUNTS_TTL: Duration = Duration::from_secs(1);
/// History of containers not read for this long is dropped (their counters restart
/// from their cumulative usage, which is still monotonic for a reader that returns).
const IDLE: Duration = Duration::from_secs(120);
const PRUNE_EVERY: Duration = Duration::from_secs(10);
/// A hard bound of each table (a tenant making a pid namespace for every read makes a
/// key for every read).
const MAX_ENTRIES: usize = 16384;
/// The stat history's bound also shrinks with the CPUs of the container making room
/// (each entry keeps about 56 bytes per CPU it shows): `MAX_SLOTS` over its CPUs, so
/// containers shown all of a 4096-CPU host's hold about this many counters together.
const MAX_SLOTS: usize = 1 << 20;
/// A cgroup counted before is shown its last count while another is being made, if
/// it is no older than this; an older one waits its turn.
const COUNTS_STALE: Duration = Duration::from_secs(5);

struct Entry {
    state: StatState,
    /// When it was last advanced to now.
    last_used: Instant,
}

/// What each container's `/proc/stat` showed last, so the next read only adds to it.
#[derive(Default)]
pub(crate) struct StatHistory {
    map: Mutex<HashMap<ContainerKey, Entry>>,
    /// Recent task counts per counted cgroup, and the highest `last_pid` shown.
    counts: Mutex<HashMap<CountsKey, (Instant, Counts)>>,
    /// When each table was last pruned of idle entries.
    pruned: Mutex<Option<Instant>>,
    counts_pruned: Mutex<Option<Instant>>,
    /// The cgroup each container is counting now.
    counting: CountSlots<CountsKey>,
}

/// Counts are of a cgroup, whoever reads them: the cgroup (in the hierarchy that lists
/// tasks) and whether the reader is in a pid namespace of its own (which is shown its
/// `last_pid`). Every pid namespace of a container shares one count a second, however
/// many it makes. (A cgroup made again under its name is shown the old one's count
/// until the next, a few seconds at most.)
type CountsKey = (String, bool);

impl StatHistory {
    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<ContainerKey, Entry>> {
        self.map.lock().unwrap_or_else(|p| p.into_inner())
    }

    pub(crate) fn len(&self) -> usize {
        self.lock().len()
    }

    /// True at most once per PRUNE_EVERY for the table `clock` is of.
    fn prune_due(clock: &Mutex<Option<Instant>>, now: Instant) -> bool {
        let mut last = clock.lock().unwrap_or_else(|p| p.into_inner());
        match *last {
            Some(t) if now.saturating_duration_since(t) < PRUNE_EVERY => false,
            _ => {
                *last = Some(now);
                true
            }
        }
    }
}

impl Host {
    /// The reader's CPU view; `None` for the host itself (root of every CPU hierarchy),
    /// which is shown the host's own files.
    /// The CPUs reader `tid` sees.
    pub fn cpu_view(&self, tid: u32) -> Result<Option<CpuView>> {
        self.view_of(&*self.container(tid)?)
    }

    /// The CPUs container `c` sees. The `/sys/devices/system/cpu` tree asks on every
    /// lookup, getattr and readdir (its entries depend on the reader, so the kernel may
    /// not cache them) and `lscpu` makes hundreds: the view of a container is computed
    /// once per [`rendercache::FRESH`](crate::rendercache::FRESH), and the CPU files
    /// rendered in that time use the same one.
    pub(crate) fn view_of(&self, c: &Container) -> Result<Option<CpuView>> {
        if !self.real_root {
            return self.compute_view(c);
        }
        let key = c.key().clone();
        let now = std::time::Instant::now();
        if let Some(v) = self.views.get(&key, now) {
            return Ok(v);
        }
        (self.opts.before_slow_work)();
        let v = self.compute_view(c)?;
        self.views.put(key, v.clone(), now);
        Ok(v)
    }

    fn compute_view(&self, c: &Container) -> Result<Option<CpuView>> {
        if cpu::at_root(&self.hier, &c.paths) {
            return Ok(None);
        }
        let input = HostInput::CpuOnline;
        let online = CpuSet::parse(&self.inputs.text(&self.root, input)?)
            .ok_or_else(|| Error::parse(self.root.path_of(input.path())))?;
        cpu::view(
            &self.hier,
            &c.paths,
            &online,
            self.opts.cfs,
            self.opts.cpu_shares,
        )
        .map(Some)
    }

    pub(crate) fn render_cpu(
        &self,
        file: VirtualFile,
        c: &Container,
        reader: u32,
        out: &mut Vec<u8>,
    ) -> Result<()> {
        let Some(view) = self.view_of(c)? else {
            return self.host_instead(file, out, HostReason::CpuRoot);
        };
        match file {
            VirtualFile::Cpuinfo => {
                let host = self.root.read_string(file.host_path())?;
                procfile::render::cpuinfo(&host, &view, out);
            }
            VirtualFile::CpuOnline
            | VirtualFile::CpuPossible
            | VirtualFile::CpuPresent
            | VirtualFile::CpuOffline => {
                let l = view.sysfs_lists();
                let list = match file {
                    VirtualFile::CpuOnline => &l.online,
                    VirtualFile::CpuPossible => &l.possible,
                    VirtualFile::CpuPresent => &l.present,
                    _ => &l.offline,
                };
                procfile::render::cpu_list(list, out);
            }
            VirtualFile::Stat => {
                let host = self.inputs.text(&self.root, HostInput::Stat)?;
                let state = self.advance_stat(c, &view)?;
                let counts = self.task_counts(c)?;
                let now = self.boottime_ns()?;
                let procs = ProcessCounts {
                    processes: counts.last_pid,
                    // The reader is running as far as it knows (the kernel counts it);
                    // while it waits for us it is asleep in the count.
                    procs_running: Some(counts.running.max(1)),
                    procs_blocked: Some(counts.blocked),
                    // intr, ctxt and softirq since the container started (see there).
                    lifetime: c
                        .ns
                        .and(c.start_ns)
                        .map(|start| (now.saturating_sub(start), now)),
                };
                procfile::render::stat(&host, &state, self.clk_tck, &procs, out);
            }
            VirtualFile::Uptime => {
                let uptime = match self.uptime_ns(c, reader)? {
                    Ok(ns) => ns,
                    Err(why) => return self.host_instead(file, out, why),
                };
                let state = self.advance_stat(c, &view)?;
                procfile::render::uptime(uptime, state.total().idle, out);
            }
            _ => return self.host_instead(file, out, HostReason::NotVirtualized),
        }
        Ok(())
    }

    /// The container's age in ns, as `/proc/uptime` and sysinfo(2) show it; `Err(why)`
    /// where the host's uptime is shown instead. (The file also needs a CPU view, for
    /// idle: the caller checks that.)
    pub(crate) fn uptime_ns(
        &self,
        c: &Container,
        reader: u32,
    ) -> Result<std::result::Result<u64, HostReason>> {
        // Uptime is the container's age: a host reader gets the host's. When init's
        // start can't be read, the reader's own start keeps it sane.
        if c.ns.is_none() {
            return Ok(Err(HostReason::HostReader));
        }
        if self.opts.host_uptime {
            return Ok(Err(HostReason::HostUptimeOption));
        }
        let Some(start) = c.start_ns.or_else(|| self.start_ns(reader)) else {
            return Ok(Err(HostReason::NoStartTime));
        };
        Ok(Ok(self.boottime_ns()?.saturating_sub(start)))
    }

    /// Advance the container's counters to now and return them. Counters advanced in
    /// the last [`FRESH`] are returned as they are: `top` reads `/proc/stat` and
    /// `/proc/uptime` (whose idle is the same counters) back to back, and the second
    /// need not read the container's CPU usage again.
    fn advance_stat(&self, c: &Container, view: &CpuView) -> Result<StatState> {
        if self.real_root {
            let map = self.stats.lock();
            if let Some(e) = map.get(c.key()) {
                if e.last_used.elapsed() < FRESH {
                    return Ok(e.state.clone());
                }
            }
        }
        let usage = cpu::usage(&self.hier, &c.paths)?;
        let now = self.boottime_ns()?;
        let age = c.start_ns.map_or(now, |s| now.saturating_sub(s));
        let t = Instant::now();
        let mut map = self.stats.lock();
        let k = c.key().clone();
        // Dead containers' history goes after IDLE, checked every PRUNE_EVERY, so
        // memory follows the live containers; a full table makes room at once.
        let max = MAX_ENTRIES.min(MAX_SLOTS / view.len().max(1));
        if StatHistory::prune_due(&self.stats.pruned, t)
            || (map.len() >= max && !map.contains_key(&k))
        {
            make_room(&mut map, max, IDLE, t, |e| e.last_used);
        }
        let entry = map.entry(k).or_insert_with(|| Entry {
            state: StatState::start(view, &usage, age, now),
            last_used: t,
        });
        entry.state.advance(view, &usage, now);
        entry.last_used = t;
        Ok(entry.state.clone())
    }

    /// The container's task counts, recounted at most once a second; `last_pid` never
    /// decreases, like the kernel's fork counter.
    pub(crate) fn task_counts(&self, c: &Container) -> Result<Counts> {
        let Some(path) = tasks::container_path(&self.hier, &c.paths) else {
            return Ok(Counts::default());
        };
        let k: CountsKey = (path.to_string(), c.ns.is_some());
        let t = Instant::now();
        let prev = self.recent_counts(&k);
        if let Some((at, counts)) = prev {
            if t.saturating_duration_since(at) < COUNTS_TTL {
                return Ok(counts);
            }
        }
        // One thread of each container counts or waits for the counter, and one more
        // may wait for it (see `countslots`); the others are shown what there is, so
        // that one container's reads cannot hold every serving thread. (Host readers
        // have no container to be charged to, and are trusted.)
        let _slot = match c
            .ns
            .map(|ns| self.count_slot(c.owner().unwrap_or(ns).0, &k))
        {
            Some(Err(shown)) => return Ok(shown),
            Some(Ok(slot)) => Some(slot),
            None => None,
        };
        // One count at a time: a container with thousands of tasks must not occupy
        // every serving thread at once. A cgroup counted lately is shown its last
        // count while another is under way (a gauge a few seconds old), rather than
        // waiting: a tenant keeping the counter busy would hold every reader.
        // (A count of this cgroup may have landed while this reader waited for the slot.)
        let prev = self.recent_counts(&k);
        let now = Instant::now();
        if let Some((at, counts)) = prev {
            if now.saturating_duration_since(at) < COUNTS_TTL {
                return Ok(counts);
            }
        }
        let mut counter = match self.task_counter.try_lock() {
            Ok(g) => g,
            Err(std::sync::TryLockError::Poisoned(p)) => p.into_inner(),
            Err(std::sync::TryLockError::WouldBlock) => match prev {
                Some((at, counts)) if now.saturating_duration_since(at) < COUNTS_STALE => {
                    return Ok(counts);
                }
                _ => self.task_counter.lock().unwrap_or_else(|p| p.into_inner()),
            },
        };
        if let Some((at, counts)) = self.recent_counts(&k) {
            if Instant::now().saturating_duration_since(at) < COUNTS_TTL {
                return Ok(counts);
            }
        }
        let mut counts = tasks::count(
            &self.hier,
            &c.paths,
            &self.proc,
            c.ns.is_some(),
            counter.as_mut(),
        )?;
        drop(counter);
        if let (Some(new), Some((_, old))) = (counts.last_pid, prev) {
            if old.cgroup_ino == counts.cgroup_ino {
                counts.last_pid = Some(new.max(old.last_pid.unwrap_or(0)));
            }
        }
        let mut map = self.stats.counts.lock().unwrap_or_else(|p| p.into_inner());
        if StatHistory::prune_due(&self.stats.counts_pruned, t)
            || (map.len() >= MAX_ENTRIES && !map.contains_key(&k))
        {
            make_room(&mut map, MAX_ENTRIES, IDLE, t, |(at, _)| *at);
        }
        map.insert(k, (t, counts));
        Ok(counts)
    }

    /// The slot of container `owner` to count `k`, or the counts to show instead: the
    /// cgroup's last, however old, when another of the container's cgroups is being
    /// counted (or this one's, and the last is not too old), else its nearest counted
    /// ancestor's. A reader with nothing recent of its own waits once, while no other
    /// thread of its container waits; one with nothing at all to show waits until
    /// there is (a container's first counts).
    fn count_slot(
        &self,
        owner: u64,
        k: &CountsKey,
    ) -> std::result::Result<Slot<'_, CountsKey>, Counts> {
        let mut waited = false;
        loop {
            let counting = match self.stats.counting.take(owner, k) {
                Ok(slot) => return Ok(slot),
                Err(counting) => counting,
            };
            let mine = self.recent_counts(k);
            if let Some((at, counts)) = mine {
                if counting != *k || Instant::now().saturating_duration_since(at) < COUNTS_STALE {
                    return Err(counts);
                }
            }
            if !waited && self.stats.counting.wait(owner, false) {
                waited = true;
                continue;
            }
            if let Some(counts) = mine.map(|(_, c)| c).or_else(|| self.ancestor_counts(k)) {
                return Err(counts);
            }
            self.stats.counting.wait(owner, true);
        }
    }

    /// The last count of the nearest counted cgroup above `k`'s (not the root), whose
    /// tasks include `k`'s; without its `last_pid`, of another pid namespace's numbers.
    fn ancestor_counts(&self, k: &CountsKey) -> Option<Counts> {
        let map = self.stats.counts.lock().unwrap_or_else(|p| p.into_inner());
        crate::cgroup::ancestors(&k.0)
            .skip(1)
            .take_while(|p| *p != ".")
            .find_map(|p| map.get(&(p.to_string(), k.1)))
            .map(|(_, counts)| Counts {
                last_pid: None,
                ..*counts
            })
    }

    /// The last count of a cgroup and when it was made.
    fn recent_counts(&self, k: &CountsKey) -> Option<(Instant, Counts)> {
        let map = self.stats.counts.lock().unwrap_or_else(|p| p.into_inner());
        map.get(k).copied()
    }

    /// Nanoseconds since boot (see [`hostinputs::boottime_ns`]).
    pub(crate) fn boottime_ns(&self) -> Result<u64> {
        hostinputs::boottime_ns(&self.root, self.real_root)
    }
}
