#!/bin/busybox sh
# PID 1 of the cgroup2 test VM (copied to /init of the initramfs by scripts/cgroup2-vm-test).
# Brings up the bare machine (devices, /proc, /sys, modules, swap), runs /suite.sh and
# /rust-e2e.sh and powers off. Everything cgroup-related is the suite's job, as on a real host where the
# init system and the container runtime do it.
/bin/busybox mount -t devtmpfs devtmpfs /dev
exec </dev/console >/dev/console 2>&1
/bin/busybox --install -s /bin
export PATH=/bin:/sbin:/usr/bin
mount -t proc proc /proc
mount -t sysfs sysfs /sys
mount -t tmpfs -o mode=1777 tmpfs /tmp
mount -t tmpfs -o mode=0755 tmpfs /run
mkdir -p /dev/shm /dev/pts
mount -t tmpfs -o mode=1777 tmpfs /dev/shm
# terminals for tmux (e2e_screen draws htop in one)
mount -t devpts -o newinstance,ptmxmode=0666 devpts /dev/pts && ln -sf pts/ptmx /dev/ptmx

vm_fail() {
	echo "vm: $*"
	echo "0 passed, 1 failed"
	poweroff -f
}
# loopback: the metrics tests scrape --metrics-addr 127.0.0.1
ip link set lo up || vm_fail "cannot bring up lo"
for m in $(cat /lib/modules/load.list); do
	insmod "/lib/modules/$m.ko" || vm_fail "insmod $m failed"
done

# deadline-polled wait for the two virtio disks (vda = swap, vdb = data)
end=$(($(cut -d. -f1 /proc/uptime) + 20))
while [ ! -b /dev/vda ] || [ ! -b /dev/vdb ]; do
	[ "$(cut -d. -f1 /proc/uptime)" -lt "$end" ] || vm_fail "virtio disks did not appear: $(ls /dev)"
	sleep 0.05
done
mkswap /dev/vda >/dev/null || vm_fail "mkswap /dev/vda failed"
swapon /dev/vda || vm_fail "swapon /dev/vda failed"

echo
echo "vm: kernel $(uname -r), $(nproc) cpus, $(awk '/^MemTotal/{print $2" kB RAM"}' /proc/meminfo)," \
	"swap $(awk '/^SwapTotal/{print $2" kB"}' /proc/meminfo), cmdline: $(cat /proc/cmdline)"
sh /suite.sh
echo "vm: suite exited $?, uptime $(cut -d' ' -f1 /proc/uptime)s"
# Then the Rust end-to-end binaries, on the same host (the shell suite cleaned up).
sh /rust-e2e.sh
echo "vm: rust e2e exited $?, uptime $(cut -d' ' -f1 /proc/uptime)s"
sync
poweroff -f
