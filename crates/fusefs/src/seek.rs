//! `lseek` with `SEEK_DATA` / `SEEK_HOLE`, the only whence values the kernel asks a
//! FUSE server about (`SEEK_SET`/`SEEK_CUR`/`SEEK_END` it answers itself, `SEEK_END`
//! from the size we report). We answer as the kernel's own file would:
//!
//! - a `/proc` file (seq_file's `seq_lseek`) refuses both with `EINVAL`;
//! - a sysfs attribute (kernfs, `generic_file_llseek` over its 4096-byte size) treats
//!   the whole size as data: `SEEK_DATA` at an offset inside it stays there,
//!   `SEEK_HOLE` goes to the end, and an offset at or past the end (or negative) is
//!   `ENXIO`.
//!
//! Answering (rather than `ENOSYS`, which switches the kernel to its generic lseek for
//! the whole connection) is what lets the `/proc` files refuse.

use fuser::Errno;

pub const SEEK_DATA: i32 = 3;
pub const SEEK_HOLE: i32 = 4;

/// The new offset for `whence` at `offset` in a file of `size` bytes, in the sysfs
/// tree (`in_sys`) or in `/proc`.
pub fn data_or_hole(in_sys: bool, size: u64, offset: i64, whence: i32) -> Result<i64, Errno> {
    if !in_sys || !(whence == SEEK_DATA || whence == SEEK_HOLE) {
        return Err(Errno::EINVAL);
    }
    let end = i64::try_from(size).map_err(|_| Errno::EINVAL)?;
    if offset < 0 || offset >= end {
        return Err(Errno::ENXIO);
    }
    Ok(if whence == SEEK_DATA { offset } else { end })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn proc_refuses_and_sysfs_is_one_block_of_data() {
        for w in [SEEK_DATA, SEEK_HOLE] {
            assert_eq!(data_or_hole(false, 4096, 0, w), Err(Errno::EINVAL));
            assert_eq!(data_or_hole(true, 4096, -10, w), Err(Errno::ENXIO));
            assert_eq!(data_or_hole(true, 4096, 4096, w), Err(Errno::ENXIO));
        }
        assert_eq!(data_or_hole(true, 4096, 10, SEEK_DATA), Ok(10));
        assert_eq!(data_or_hole(true, 4096, 10, SEEK_HOLE), Ok(4096));
        assert_eq!(data_or_hole(true, 4096, 0, 2), Err(Errno::EINVAL));
    }
}
