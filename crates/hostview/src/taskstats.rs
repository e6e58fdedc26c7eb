//! Per-cgroup task-state counts from the kernel (taskstats `CGROUPSTATS_CMD_GET` over
//! generic netlink): the kernel walks the cgroup's tasks itself, so counting a
//! container costs one round trip instead of one `/proc/<tid>/stat` read per thread.

use std::os::fd::{AsFd, OwnedFd};

use procfile::netlink::{self, CgroupStats, Reply};
use rustix::io::Errno;
use rustix::net::netlink::{GENERIC, SocketAddrNetlink};
use rustix::net::{AddressFamily, RecvFlags, SendFlags, SocketType, bind, recv, sendto, socket};

pub struct Taskstats {
    sock: OwnedFd,
    family: u16,
    seq: u32,
    buf: Vec<u8>,
}

impl Taskstats {
    /// Connect and look up the taskstats family; `Err` when the kernel has none
    /// (CONFIG_TASKSTATS off) or netlink is not allowed here.
    pub fn open() -> Result<Taskstats, Errno> {
        let sock = socket(AddressFamily::NETLINK, SocketType::RAW, Some(GENERIC))?;
        bind(&sock, &SocketAddrNetlink::new(0, 0))?;
        let mut t = Taskstats {
            sock,
            family: 0,
            seq: 0,
            buf: vec![0; 8192],
        };
        let reply = t.request(&netlink::get_family(1))?;
        t.family = netlink::family_id(&reply).ok_or(Errno::NOENT)?;
        Ok(t)
    }

    /// Counts of the cgroup whose directory is open as `dir` (a plain `O_RDONLY`
    /// descriptor: the kernel rejects `O_PATH` ones).
    pub fn cgroup<Fd: AsFd>(&mut self, dir: Fd) -> Result<CgroupStats, Errno> {
        use std::os::fd::AsRawFd;
        self.seq = self.seq.wrapping_add(1);
        let fd = u32::try_from(dir.as_fd().as_raw_fd()).map_err(|_| Errno::BADF)?;
        let msg = netlink::get_cgroupstats(self.family, self.seq, fd);
        let reply = self.request(&msg)?;
        netlink::cgroupstats(&reply).ok_or(Errno::PROTO)
    }

    fn request(&mut self, msg: &[u8]) -> Result<Reply, Errno> {
        sendto(
            &self.sock,
            msg,
            SendFlags::empty(),
            &SocketAddrNetlink::new(0, 0),
        )?;
        let (n, _) = recv(&self.sock, &mut self.buf[..], RecvFlags::empty())?;
        match self.buf.get(..n).and_then(netlink::parse_reply) {
            Some(Reply::Error(e)) if e < 0 => Err(Errno::from_raw_os_error(-e)),
            Some(r) => Ok(r),
            None => Err(Errno::PROTO),
        }
    }
}
