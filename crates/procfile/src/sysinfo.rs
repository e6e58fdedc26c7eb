//! `struct sysinfo` (sysinfo(2)) as a container should see it: the host's answer with
//! the container's uptime, loads, memory, swap and task count laid over it, and its
//! 64-bit wire layout, written into the caller's buffer by the seccomp agent.

use crate::loadavg::{FSHIFT, LoadAvg};
use crate::memory::MemValues;

/// `sizeof(struct sysinfo)` on 64-bit Linux (x86_64, aarch64, riscv64…; also x32, whose
/// `__kernel_long_t` is 64 bits): eight-byte longs, 20 bytes of padding at the end
/// reduced to nothing by the longs, rounded up to the struct's alignment.
pub const SIZE_64: usize = 112;

/// The kernel's `SI_LOAD_SHIFT`: `loads` are fixed point with 16 fraction bits, where
/// `/proc/loadavg`'s averages have [`FSHIFT`] (11).
pub const SI_LOAD_SHIFT: u32 = 16;

/// Every field of `struct sysinfo`; memory fields count `mem_unit`-byte units.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Sysinfo {
    pub uptime: i64,
    pub loads: [u64; 3],
    pub totalram: u64,
    pub freeram: u64,
    pub sharedram: u64,
    pub bufferram: u64,
    pub totalswap: u64,
    pub freeswap: u64,
    pub procs: u16,
    pub totalhigh: u64,
    pub freehigh: u64,
    pub mem_unit: u32,
}

/// What the container has of its own; `None` keeps the host's field (a container at
/// the root cgroup, no memory controller, the load sampler off…), exactly where its
/// files show the host's.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ContainerInfo {
    /// Its age, as `/proc/uptime` shows it.
    pub uptime_ns: Option<u64>,
    /// As `/proc/loadavg` shows it.
    pub load: Option<LoadAvg>,
    /// Its tasks (threads), `/proc/loadavg`'s total.
    pub procs: Option<u64>,
    /// As `/proc/meminfo` and `/proc/swaps` show them (kB).
    pub mem: Option<MemValues>,
}

/// The host's answer with the container's values laid over it.
///
/// Memory is expressed in the host answer's `mem_unit` (1 on 64-bit kernels, which
/// normalise to bytes when the totals fit), so a caller multiplying by `mem_unit`, as
/// every libc does, gets the bytes its `/proc/meminfo` shows. Uptime rounds up, as the
/// kernel rounds a partial second. Nothing overflows: values saturate.
pub fn overlay(host: &Sysinfo, c: &ContainerInfo) -> Sysinfo {
    let mut s = *host;
    if let Some(ns) = c.uptime_ns {
        let secs = ns / 1_000_000_000 + u64::from(ns % 1_000_000_000 != 0);
        s.uptime = i64::try_from(secs).unwrap_or(i64::MAX);
    }
    if let Some(load) = c.load {
        let shift = SI_LOAD_SHIFT - FSHIFT;
        for (out, l) in s.loads.iter_mut().zip(load.0) {
            *out = if l > u64::MAX >> shift {
                u64::MAX
            } else {
                l << shift
            };
        }
    }
    if let Some(p) = c.procs {
        s.procs = u16::try_from(p).unwrap_or(u16::MAX);
    }
    if let Some(m) = &c.mem {
        let unit = u64::from(host.mem_unit.max(1));
        let units = |kb: u64| kb.saturating_mul(1024) / unit;
        s.totalram = units(m.mem_total);
        s.freeram = units(m.mem_free);
        s.sharedram = units(m.shmem.unwrap_or(0));
        // /proc/meminfo's Buffers is 0 for a container: cgroups do not track them.
        s.bufferram = 0;
        s.totalswap = units(m.swap_total);
        s.freeswap = units(m.swap_free);
        s.mem_unit = host.mem_unit.max(1);
    }
    s
}

impl Sysinfo {
    /// The 64-bit native-endian layout of `struct sysinfo`.
    pub fn encode(&self) -> [u8; SIZE_64] {
        let mut b = [0u8; SIZE_64];
        let mut put = |at: usize, bytes: &[u8]| {
            if let Some(dst) = b.get_mut(at..at + bytes.len()) {
                dst.copy_from_slice(bytes);
            }
        };
        put(0, &self.uptime.to_ne_bytes());
        for (i, l) in self.loads.iter().enumerate() {
            put(8 + 8 * i, &l.to_ne_bytes());
        }
        let longs = [
            self.totalram,
            self.freeram,
            self.sharedram,
            self.bufferram,
            self.totalswap,
            self.freeswap,
        ];
        for (i, v) in longs.iter().enumerate() {
            put(32 + 8 * i, &v.to_ne_bytes());
        }
        put(80, &self.procs.to_ne_bytes());
        // 82: `pad` (u16), 84: four bytes of alignment padding, both zero.
        put(88, &self.totalhigh.to_ne_bytes());
        put(96, &self.freehigh.to_ne_bytes());
        put(104, &self.mem_unit.to_ne_bytes());
        b
    }

    /// Read the 64-bit layout back (`None` when `b` is too short).
    pub fn decode(b: &[u8]) -> Option<Sysinfo> {
        let u64_at = |at: usize| -> Option<u64> {
            Some(u64::from_ne_bytes(b.get(at..at + 8)?.try_into().ok()?))
        };
        let u16_at = |at: usize| -> Option<u16> {
            Some(u16::from_ne_bytes(b.get(at..at + 2)?.try_into().ok()?))
        };
        let u32_at = |at: usize| -> Option<u32> {
            Some(u32::from_ne_bytes(b.get(at..at + 4)?.try_into().ok()?))
        };
        Some(Sysinfo {
            uptime: i64::from_ne_bytes(b.get(0..8)?.try_into().ok()?),
            loads: [u64_at(8)?, u64_at(16)?, u64_at(24)?],
            totalram: u64_at(32)?,
            freeram: u64_at(40)?,
            sharedram: u64_at(48)?,
            bufferram: u64_at(56)?,
            totalswap: u64_at(64)?,
            freeswap: u64_at(72)?,
            procs: u16_at(80)?,
            totalhigh: u64_at(88)?,
            freehigh: u64_at(96)?,
            mem_unit: u32_at(104)?,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn host() -> Sysinfo {
        Sysinfo {
            uptime: 100_000,
            loads: [65536, 2 * 65536, 3 * 65536],
            totalram: 24 << 30,
            freeram: 10 << 30,
            sharedram: 1 << 20,
            bufferram: 1 << 25,
            totalswap: 0,
            freeswap: 0,
            procs: 900,
            totalhigh: 0,
            freehigh: 0,
            mem_unit: 1,
        }
    }

    fn mem(total_kb: u64, free_kb: u64) -> MemValues {
        MemValues {
            mem_total: total_kb,
            mem_free: free_kb,
            shmem: Some(64),
            swap_total: 1024,
            swap_free: 512,
            ..MemValues::default()
        }
    }

    #[test]
    fn nothing_of_its_own_is_the_host() {
        assert_eq!(overlay(&host(), &ContainerInfo::default()), host());
    }

    #[test]
    fn container_values_in_bytes_with_mem_unit_1() {
        let c = ContainerInfo {
            uptime_ns: Some(12_000_000_001),
            load: Some(LoadAvg([2048, 1024, 0])),
            procs: Some(7),
            mem: Some(mem(262_144, 200_000)),
        };
        let s = overlay(&host(), &c);
        assert_eq!(s.totalram, 256 << 20);
        assert_eq!(s.freeram, 200_000 * 1024);
        assert_eq!(s.sharedram, 64 * 1024);
        assert_eq!(s.bufferram, 0);
        assert_eq!((s.totalswap, s.freeswap), (1 << 20, 512 * 1024));
        assert_eq!(s.uptime, 13, "a partial second rounds up, as the kernel's");
        assert_eq!(s.loads, [65536, 32768, 0]);
        assert_eq!(s.procs, 7);
        assert_eq!(s.mem_unit, 1);
    }

    #[test]
    fn mem_unit_is_honoured() {
        let h = Sysinfo {
            mem_unit: 4096,
            ..host()
        };
        let s = overlay(
            &h,
            &ContainerInfo {
                mem: Some(mem(262_144, 0)),
                ..ContainerInfo::default()
            },
        );
        assert_eq!(s.mem_unit, 4096);
        assert_eq!(s.totalram * u64::from(s.mem_unit), 256 << 20);
    }

    #[test]
    fn huge_values_saturate() {
        let c = ContainerInfo {
            uptime_ns: Some(u64::MAX),
            load: Some(LoadAvg([u64::MAX; 3])),
            procs: Some(1 << 40),
            mem: Some(mem(u64::MAX, u64::MAX)),
        };
        let s = overlay(&host(), &c);
        assert_eq!(s.procs, u16::MAX);
        assert_eq!(s.loads, [u64::MAX; 3]);
        assert_eq!(s.totalram, u64::MAX);
    }

    #[test]
    fn layout_round_trips_and_matches_the_offsets() {
        let s = overlay(
            &host(),
            &ContainerInfo {
                procs: Some(3),
                ..ContainerInfo::default()
            },
        );
        let b = s.encode();
        assert_eq!(Sysinfo::decode(&b), Some(s));
        assert_eq!(&b[80..82], &3u16.to_ne_bytes());
        assert_eq!(&b[104..108], &1u32.to_ne_bytes());
        assert_eq!(Sysinfo::decode(&b[..100]), None);
    }
}
