#!/bin/sh
# rust-e2e.sh - the Rust end-to-end test binaries (crates/lxcfs-rs/tests/e2e_*.rs), run
# on the pure cgroup-v2 host of the VM, after suite.sh. scripts/cgroup2-vm-test builds
# them statically and copies them to /e2e; each finds the daemon through LXCFS_RS_BIN.
#
# Output: per binary "ok: rust <name>: ..." or "FAIL: rust <name>: ..." (with its whole
# output on failure), and last exactly "rust: N passed, M failed", counted in tests.
set -u
# The real tools (procps free/top/uptime, util-linux setpriv, coreutils tr) before
# busybox's applets: the tests parse what the real ones print.
export PATH=/usr/bin:/bin:/sbin
export LXCFS_RS_BIN=/bin/lxcfs-rs
# One binary at a time, two tests of it at a time: the VM has 2 vCPUs under emulation.
THREADS=2
# A whole binary; far above what one takes, so only a hang reaches it.
BIN_TIMEOUT=900
PASSED=0
FAILED=0

# The diskstats test writes under /var/tmp and wants it on a block device: the data
# disk, which the shell suite used raw and is done with.
# (busybox makes ext2; the ext4 driver mounts it)
mkdir -p /var/tmp
if ! mke2fs -q /dev/vdb >/tmp/mke2fs.out 2>&1 || ! mount -t ext4 /dev/vdb /var/tmp; then
	echo "info: rust-e2e: cannot put /var/tmp on /dev/vdb; the diskstats test will say why"
	cat /tmp/mke2fs.out
	dmesg | tail -3
fi

for t in /e2e/*; do
	[ -x "$t" ] || continue
	name=${t##*/}
	out=/tmp/rust-e2e-$name.out
	start=$(cut -d. -f1 /proc/uptime)
	timeout "$BIN_TIMEOUT" "$t" --test-threads="$THREADS" >"$out" 2>&1
	rc=$?
	secs=$(($(cut -d. -f1 /proc/uptime) - start))
	# "test result: ok. 13 passed; 0 failed; 0 ignored; ..."
	res=$(grep -a '^test result:' "$out" | tail -1)
	p=$(echo "$res" | sed -n 's/.* \([0-9][0-9]*\) passed;.*/\1/p')
	f=$(echo "$res" | sed -n 's/.* \([0-9][0-9]*\) failed;.*/\1/p')
	if [ -z "$p" ] || [ -z "$f" ]; then
		# No result line: it hung (timeout) or crashed; count the binary as one failure.
		p=0
		f=1
	fi
	PASSED=$((PASSED + p))
	FAILED=$((FAILED + f))
	if [ "$rc" = 0 ] && [ "$f" = 0 ]; then
		echo "ok: rust $name: $p passed in ${secs}s"
	else
		echo "FAIL: rust $name: exit $rc, $p passed, $f failed in ${secs}s"
		sed 's/^/    /' "$out"
	fi
done
echo "rust: $PASSED passed, $FAILED failed"
