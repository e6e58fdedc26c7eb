#!/bin/sh
# ctr.sh CMD - the init of a test container (busybox sh), started by suite.sh as
#   echo $$ > <cgroup>/cgroup.procs; exec unshare -p -f -m --propagation private sh /ctr.sh CMD
# so it runs as pid 1 of a new pid namespace, in a new mount namespace, inside the
# container's cgroup. It does what a runtime's lxcfs hook does: fresh /proc, private
# /dev/shm, every file lxcfs-rs serves bind-mounted over its /proc or /sys twin; then it
# becomes CMD (exec, so the container's init stays in the container's cgroup).
# A file the daemon does not serve is not bound (runtimes skip those too); the suite
# checks presence separately.
MNT=${LXCFS_MNT:-/var/lib/lxcfs}
PROC_FILES="meminfo swaps cpuinfo stat uptime loadavg diskstats"
SYS_FILES="devices/system/cpu/online"

mount --make-rprivate / || { echo "ctr: make-rprivate failed" >&2; exit 98; }
mount -t proc proc /proc || { echo "ctr: mount proc failed" >&2; exit 98; }
mount -t tmpfs -o mode=1777 shm /dev/shm || { echo "ctr: mount /dev/shm failed" >&2; exit 98; }
for f in $PROC_FILES; do
	[ -e "$MNT/proc/$f" ] || continue
	mount --bind "$MNT/proc/$f" "/proc/$f" || { echo "ctr: bind /proc/$f failed" >&2; exit 98; }
done
for f in $SYS_FILES; do
	[ -e "$MNT/sys/$f" ] || continue
	mount --bind "$MNT/sys/$f" "/sys/$f" || { echo "ctr: bind /sys/$f failed" >&2; exit 98; }
done
exec sh -c "$1"
