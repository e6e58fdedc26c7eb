//! Just enough generic netlink to ask taskstats for per-cgroup task-state counts
//! (`CGROUPSTATS_CMD_GET`): message encoding and a total decoder of the replies.

const NLMSG_HDRLEN: usize = 16;
const GENL_HDRLEN: usize = 4;
const NLA_HDRLEN: usize = 4;
pub const NLM_F_REQUEST: u16 = 1;
pub const NLMSG_ERROR: u16 = 2;
pub const GENL_ID_CTRL: u16 = 0x10;
const CTRL_CMD_GETFAMILY: u8 = 3;
const CTRL_ATTR_FAMILY_ID: u16 = 1;
const CTRL_ATTR_FAMILY_NAME: u16 = 2;
/// `__TASKSTATS_CMD_MAX` + 1 (linux/cgroupstats.h).
const CGROUPSTATS_CMD_GET: u8 = 4;
const CGROUPSTATS_CMD_ATTR_FD: u16 = 1;
const CGROUPSTATS_TYPE_CGROUP_STATS: u16 = 1;
const TASKSTATS_GENL_VERSION: u8 = 1;

/// `struct cgroupstats`: task counts of one cgroup (not its descendants).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct CgroupStats {
    pub sleeping: u64,
    pub running: u64,
    pub stopped: u64,
    pub uninterruptible: u64,
    pub io_wait: u64,
}

fn align4(n: usize) -> usize {
    (n + 3) & !3
}

fn message(ty: u16, seq: u32, cmd: u8, version: u8, attr_type: u16, payload: &[u8]) -> Vec<u8> {
    let attr_len = NLA_HDRLEN + payload.len();
    let len = NLMSG_HDRLEN + GENL_HDRLEN + align4(attr_len);
    let mut m = Vec::with_capacity(len);
    m.extend_from_slice(&(len as u32).to_ne_bytes());
    m.extend_from_slice(&ty.to_ne_bytes());
    m.extend_from_slice(&NLM_F_REQUEST.to_ne_bytes());
    m.extend_from_slice(&seq.to_ne_bytes());
    m.extend_from_slice(&0u32.to_ne_bytes());
    m.extend_from_slice(&[cmd, version, 0, 0]);
    m.extend_from_slice(&(attr_len as u16).to_ne_bytes());
    m.extend_from_slice(&attr_type.to_ne_bytes());
    m.extend_from_slice(payload);
    m.resize(len, 0);
    m
}

/// Ask the generic netlink controller for the id of the `TASKSTATS` family.
pub fn get_family(seq: u32) -> Vec<u8> {
    message(
        GENL_ID_CTRL,
        seq,
        CTRL_CMD_GETFAMILY,
        1,
        CTRL_ATTR_FAMILY_NAME,
        b"TASKSTATS\0",
    )
}

/// Ask for the counts of the cgroup whose directory is open as `fd`.
pub fn get_cgroupstats(family: u16, seq: u32, fd: u32) -> Vec<u8> {
    message(
        family,
        seq,
        CGROUPSTATS_CMD_GET,
        TASKSTATS_GENL_VERSION,
        CGROUPSTATS_CMD_ATTR_FD,
        &fd.to_ne_bytes(),
    )
}

/// A decoded reply.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Reply {
    /// `NLMSG_ERROR` with this (negative) errno; 0 is an acknowledgement.
    Error(i32),
    /// Attributes of a generic netlink message.
    Attrs(Vec<(u16, Vec<u8>)>),
}

/// The first message in `buf`; `None` when it is malformed.
pub fn parse_reply(buf: &[u8]) -> Option<Reply> {
    let len = u32::from_ne_bytes(buf.get(0..4)?.try_into().ok()?) as usize;
    let ty = u16::from_ne_bytes(buf.get(4..6)?.try_into().ok()?);
    let msg = buf.get(..len)?;
    if len < NLMSG_HDRLEN {
        return None;
    }
    if ty == NLMSG_ERROR {
        let err = i32::from_ne_bytes(msg.get(16..20)?.try_into().ok()?);
        return Some(Reply::Error(err));
    }
    let mut attrs = Vec::new();
    let mut rest = msg.get(NLMSG_HDRLEN + GENL_HDRLEN..)?;
    while rest.len() >= NLA_HDRLEN {
        let alen = u16::from_ne_bytes(rest.get(0..2)?.try_into().ok()?) as usize;
        let aty = u16::from_ne_bytes(rest.get(2..4)?.try_into().ok()?) & 0x3fff;
        if alen < NLA_HDRLEN {
            return None;
        }
        attrs.push((aty, rest.get(NLA_HDRLEN..alen)?.to_vec()));
        rest = rest.get(align4(alen).min(rest.len())..)?;
    }
    Some(Reply::Attrs(attrs))
}

/// The family id in a `CTRL_CMD_GETFAMILY` reply.
pub fn family_id(reply: &Reply) -> Option<u16> {
    let Reply::Attrs(attrs) = reply else {
        return None;
    };
    let (_, v) = attrs.iter().find(|(t, _)| *t == CTRL_ATTR_FAMILY_ID)?;
    Some(u16::from_ne_bytes(v.get(0..2)?.try_into().ok()?))
}

/// The counts in a `CGROUPSTATS_CMD_GET` reply.
pub fn cgroupstats(reply: &Reply) -> Option<CgroupStats> {
    let Reply::Attrs(attrs) = reply else {
        return None;
    };
    let (_, v) = attrs
        .iter()
        .find(|(t, _)| *t == CGROUPSTATS_TYPE_CGROUP_STATS)?;
    let f = |i: usize| -> Option<u64> {
        Some(u64::from_ne_bytes(
            v.get(i * 8..i * 8 + 8)?.try_into().ok()?,
        ))
    };
    Some(CgroupStats {
        sleeping: f(0)?,
        running: f(1)?,
        stopped: f(2)?,
        uninterruptible: f(3)?,
        io_wait: f(4)?,
    })
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    #[test]
    fn request_layout() {
        let m = get_cgroupstats(0x1c, 7, 5);
        assert_eq!(m.len(), 28);
        assert_eq!(&m[0..4], &28u32.to_ne_bytes());
        assert_eq!(&m[4..6], &0x1cu16.to_ne_bytes());
        assert_eq!(m[16], CGROUPSTATS_CMD_GET);
        assert_eq!(&m[20..22], &8u16.to_ne_bytes());
        assert_eq!(&m[24..28], &5u32.to_ne_bytes());
        let f = get_family(1);
        assert_eq!(f.len() % 4, 0);
    }

    #[test]
    fn replies_decode() {
        // A CGROUPSTATS reply carrying 5 counters.
        let mut payload = Vec::new();
        for v in [3u64, 2, 0, 1, 0] {
            payload.extend_from_slice(&v.to_ne_bytes());
        }
        let m = message(
            0x1c,
            1,
            CGROUPSTATS_CMD_GET,
            1,
            CGROUPSTATS_TYPE_CGROUP_STATS,
            &payload,
        );
        let r = parse_reply(&m).unwrap();
        let s = cgroupstats(&r).unwrap();
        assert_eq!((s.sleeping, s.running, s.uninterruptible), (3, 2, 1));
        let fam = message(
            GENL_ID_CTRL,
            1,
            1,
            1,
            CTRL_ATTR_FAMILY_ID,
            &0x1cu16.to_ne_bytes(),
        );
        assert_eq!(family_id(&parse_reply(&fam).unwrap()), Some(0x1c));
        let mut err = vec![0u8; 36];
        err[0..4].copy_from_slice(&36u32.to_ne_bytes());
        err[4..6].copy_from_slice(&NLMSG_ERROR.to_ne_bytes());
        err[16..20].copy_from_slice(&(-22i32).to_ne_bytes());
        assert_eq!(parse_reply(&err), Some(Reply::Error(-22)));
        assert_eq!(parse_reply(&[1, 2, 3]), None);
        assert_eq!(parse_reply(&[]), None);
    }
}
