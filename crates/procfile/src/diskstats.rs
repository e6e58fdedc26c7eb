//! A container's block I/O per device, and `/proc/diskstats` rendered from it.

use std::io::Write;

use crate::value::parse_u64;

/// Cumulative I/O of a container on one device.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct DevIo {
    pub rbytes: u64,
    pub wbytes: u64,
    pub rios: u64,
    pub wios: u64,
    pub dbytes: u64,
    pub dios: u64,
}

impl DevIo {
    pub fn is_idle(&self) -> bool {
        *self == DevIo::default()
    }
}

/// `major:minor`.
pub type Dev = (u32, u32);

fn parse_dev(s: &str) -> Option<Dev> {
    let (a, b) = s.split_once(':')?;
    Some((
        u32::try_from(parse_u64(a)?).ok()?,
        u32::try_from(parse_u64(b)?).ok()?,
    ))
}

fn entry(v: &mut Vec<(Dev, DevIo)>, dev: Dev) -> &mut DevIo {
    let i = match v.iter().position(|(d, _)| *d == dev) {
        Some(i) => i,
        None => {
            v.push((dev, DevIo::default()));
            v.len() - 1
        }
    };
    // `i` is in bounds: found, or just pushed.
    &mut v[i].1
}

/// v2 `io.stat`: `8:0 rbytes=… wbytes=… rios=… wios=… dbytes=… dios=…` per device.
pub fn parse_io_stat(text: &str) -> Vec<(Dev, DevIo)> {
    let mut out = Vec::new();
    for line in text.lines() {
        let mut f = line.split_ascii_whitespace();
        let Some(dev) = f.next().and_then(parse_dev) else {
            continue;
        };
        let e = entry(&mut out, dev);
        for kv in f {
            let Some((k, v)) = kv.split_once('=') else {
                continue;
            };
            let Some(v) = parse_u64(v) else {
                continue;
            };
            match k {
                "rbytes" => e.rbytes = v,
                "wbytes" => e.wbytes = v,
                "rios" => e.rios = v,
                "wios" => e.wios = v,
                "dbytes" => e.dbytes = v,
                "dios" => e.dios = v,
                _ => {}
            }
        }
    }
    out
}

/// v1 `blkio.throttle.io_serviced_recursive` and `…io_service_bytes_recursive`:
/// `8:0 Read 12` lines (and `Write`, `Discard`, `Sync`, `Async`, `Total`).
pub fn parse_blkio(serviced: &str, bytes: &str) -> Vec<(Dev, DevIo)> {
    let mut out = Vec::new();
    for (text, is_bytes) in [(serviced, false), (bytes, true)] {
        for line in text.lines() {
            let mut f = line.split_ascii_whitespace();
            let (Some(dev), Some(op), Some(v), None) = (
                f.next().and_then(parse_dev),
                f.next(),
                f.next().and_then(parse_u64),
                f.next(),
            ) else {
                continue;
            };
            let e = entry(&mut out, dev);
            match (op, is_bytes) {
                ("Read", false) => e.rios = v,
                ("Write", false) => e.wios = v,
                ("Discard", false) => e.dios = v,
                ("Read", true) => e.rbytes = v,
                ("Write", true) => e.wbytes = v,
                ("Discard", true) => e.dbytes = v,
                _ => {}
            }
        }
    }
    out
}

/// `/proc/diskstats` for the devices the container used, in the host's order and with
/// the host's names and field count; counters the cgroup does not track (merges, time,
/// in-flight, flushes) are 0.
pub fn render(host: &str, io: &[(Dev, DevIo)], out: &mut Vec<u8>) {
    for line in host.lines() {
        let mut f = line.split_ascii_whitespace();
        let (Some(major), Some(minor), Some(name)) = (f.next(), f.next(), f.next()) else {
            continue;
        };
        let nfields = f.count();
        let Some(dev) = parse_u64(major)
            .and_then(|a| u32::try_from(a).ok())
            .zip(parse_u64(minor).and_then(|b| u32::try_from(b).ok()))
        else {
            continue;
        };
        let Some((_, d)) = io.iter().find(|(k, _)| *k == dev) else {
            continue;
        };
        if d.is_idle() {
            continue;
        }
        let values = [
            d.rios,
            0,
            d.rbytes / 512,
            0,
            d.wios,
            0,
            d.wbytes / 512,
            0,
            0,
            0,
            0,
            d.dios,
            0,
            d.dbytes / 512,
            0,
            0,
            0,
        ];
        let _ = write!(out, "{:>4} {:>7} {}", dev.0, dev.1, name);
        for i in 0..nfields {
            let _ = write!(out, " {}", values.get(i).copied().unwrap_or(0));
        }
        out.push(b'\n');
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    const HOST: &str = "   7       0 loop0 1 2 3 4 5 6 7 8 9 10 11 12 13 14 15 16 17\n 254       0 vda 9 9 9 9 9 9 9 9 9 9 9 9 9 9 9 9 9\n 254      16 vdb 9 9 9 9 9 9 9 9 9 9 9 9 9 9 9 9 9\n";

    #[test]
    fn io_stat_renders_only_used_devices() {
        let io = parse_io_stat(
            "254:0 rbytes=1048576 wbytes=20971520 rios=10 wios=160 dbytes=0 dios=0\n254:16 rbytes=0 wbytes=0 rios=0 wios=0 dbytes=0 dios=0\ngarbage\n",
        );
        let mut out = Vec::new();
        render(HOST, &io, &mut out);
        assert_eq!(
            String::from_utf8(out).unwrap(),
            " 254       0 vda 10 0 2048 0 160 0 40960 0 0 0 0 0 0 0 0 0 0\n"
        );
    }

    #[test]
    fn blkio_v1_parses() {
        let io = parse_blkio(
            "254:0 Read 3\n254:0 Write 5\n254:0 Sync 8\n254:0 Async 0\n254:0 Discard 0\n254:0 Total 8\nTotal 8\n",
            "254:0 Read 4096\n254:0 Write 8192\n254:0 Total 12288\nTotal 12288\n",
        );
        assert_eq!(
            io,
            vec![(
                (254, 0),
                DevIo {
                    rbytes: 4096,
                    wbytes: 8192,
                    rios: 3,
                    wios: 5,
                    dbytes: 0,
                    dios: 0
                }
            )]
        );
    }

    #[test]
    fn short_host_lines_keep_their_width() {
        let io = parse_io_stat("8:0 rbytes=512 wbytes=0 rios=1 wios=0 dbytes=0 dios=0\n");
        let mut out = Vec::new();
        render(
            "   8       0 sda 1 1 1 1 1 1 1 1 1 1 1\nbad\n",
            &io,
            &mut out,
        );
        assert_eq!(
            String::from_utf8(out).unwrap(),
            "   8       0 sda 1 0 1 0 0 0 0 0 0 0 0\n"
        );
    }
}
