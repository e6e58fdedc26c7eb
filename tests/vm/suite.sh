#!/bin/sh
# suite.sh - lxcfs-rs end-to-end suite for a pure cgroup-v2 host (busybox sh, root).
# Runs inside the VM that scripts/cgroup2-vm-test boots (kernel 6.1: no
# NS_GET_TGID_FROM_PIDNS, so lxcfs-rs must resolve container inits through /proc).
#
# It plays the container runtime: cgroup2 at /sys/fs/cgroup with cpu, cpuset, memory, io
# and pids enabled, a parent cgroup with its own limits and containers below it, each
# container a new pid + mount namespace with the lxcfs-rs files bind-mounted over /proc
# (tests/vm/ctr.sh). Exact expectations where the kernel makes values exact (limits),
# bounds where it does not (usage). Every wait polls with a deadline.
#
# The Rust end-to-end tests run in the same VM after this suite (rust-e2e.sh); what they
# check is not repeated here (the filesystem's modes, offsets, refused writes and unknown
# names went to e2e_memory). What stays: the pod with nested memory, swap and CPU limits,
# swap used for real, exact diskstats and pressure against io.stat and *.pressure, the
# three daemon passes (each init resolver, the flags), worker kills without
# FUSE_NOTIFY_RESEND, and who reads from where.
#
# Output: one "ok: ..." or "FAIL: ..." line per check, "info: ..." lines, and last
# exactly "N passed, M failed". On any failure the daemon logs are printed.
set -u
export PATH=/bin:/sbin:/usr/bin
MNT=/var/lib/lxcfs
export LXCFS_MNT=$MNT
LXCFS=/bin/lxcfs-rs
CG=/sys/fs/cgroup
CONTROLLERS="+cpu +cpuset +memory +io +pids"
ID=lxcfs-vm-$$-$(cut -d' ' -f1 /proc/uptime | tr -d .)
P=$CG/$ID           # the "pod": parent cgroup with its own limits
LOGS=""             # daemon logs, printed on failure
CTR_TIMEOUT=60      # seconds for one container run (a hung FUSE read must not hang the VM)
PASSED=0
FAILED=0

# ------------------------------------------------------------------ helpers
ok() { PASSED=$((PASSED + 1)); echo "ok: $*"; }
fail() { FAILED=$((FAILED + 1)); echo "FAIL: $*"; }
info() { echo "info: $*"; }
now() { cut -d. -f1 /proc/uptime; }
isnum() { case ${1:-} in '' | *[!0-9]*) return 1 ;; esac; }
# wait_until SECONDS CMD...: poll CMD until it succeeds; 1 when the deadline passes
wait_until() {
	local _end
	_end=$(($(now) + $1))
	shift
	while ! "$@"; do
		[ "$(now)" -lt "$_end" ] || return 1
		sleep 0.05
	done
}
# check DESC CMD...
check() {
	local _d
	_d=$1
	shift
	if "$@"; then ok "$_d"; else fail "$_d"; fi
}
# expect_eq DESC EXPECTED GOT
expect_eq() {
	if [ "$2" = "$3" ]; then ok "$1 = $3"; else fail "$1: expected '$2', got '$3'"; fi
}
# expect_range DESC LO HI GOT (integers, inclusive)
expect_range() {
	if isnum "$4" && [ "$4" -ge "$2" ] && [ "$4" -le "$3" ]; then
		ok "$1 = $4 (in [$2, $3])"
	else
		fail "$1: expected in [$2, $3], got '$4'"
	fi
}
# expect_le DESC A B: A <= B (both integers)
expect_le() {
	if isnum "$2" && isnum "$3" && [ "$2" -le "$3" ]; then
		ok "$1 ($2 <= $3)"
	else
		fail "$1: expected '$2' <= '$3'"
	fi
}
# expect_near DESC EXPECTED GOT TOLERANCE
expect_near() {
	if isnum "$2" && isnum "$3" && [ $(($3 - $2)) -le "$4" ] && [ $(($2 - $3)) -le "$4" ]; then
		ok "$1 = $3 (expected $2 +- $4)"
	else
		fail "$1: expected $2 +- $4, got '$3'"
	fi
}
min() { if [ "$1" -le "$2" ]; then echo "$1"; else echo "$2"; fi; }
max() { if [ "$1" -ge "$2" ]; then echo "$1"; else echo "$2"; fi; }
# field TEXT KEY: value column of a "Key: value [kB]" line (meminfo style)
field() { printf '%s\n' "$1" | awk -v k="$2:" '$1 == k { print $2; exit }'; }
# part TEXT N: the N-th (0-based) of the sections separated by "---" lines
part() { printf '%s\n' "$1" | awk -v n="$2" '/^---$/ { i++; next } i == n'; }
# ctr CGROUP CMD: run CMD as a container in CGROUP; prints its stdout
ctr() {
	timeout -s KILL "$CTR_TIMEOUT" sh -c 'echo $$ >"$1/cgroup.procs" || exit 97
		exec unshare -p -f -m --propagation private sh /ctr.sh "$2"' ctr "$1" "$2"
}
# cgset CGROUP FILE VALUE EXPECTED_READBACK
cgset() {
	if echo "$3" >"$1/$2" && [ "$(cat "$1/$2")" = "$4" ]; then
		ok "setup: ${1#"$CG"/}/$2 = $4"
	else
		fail "setup: ${1#"$CG"/}/$2: wrote '$3', expected '$4', reads '$(cat "$1/$2" 2>&1)'"
	fi
}
mounted() { awk -v m="$MNT" '$2 == m { f = 1 } END { exit !f }' /proc/mounts; }
unmounted() { ! mounted; }
gone() { [ ! -e "/proc/$1" ] || [ "$(cut -d' ' -f3 "/proc/$1/stat" 2>/dev/null)" = Z ]; }

# ------------------------------------------------------------------ the pure-v2 host
setup_host() {
	grep -q " $CG cgroup2 " /proc/mounts ||
		mount -t cgroup2 -o nsdelegate,memory_recursiveprot cgroup2 "$CG"
	check "setup: cgroup2 mounted at $CG" grep -q " $CG cgroup2 " /proc/mounts
	check "setup: no cgroup v1 hierarchy mounted" sh -c '! grep -q " cgroup " /proc/mounts'
	mkdir -p /tmp/v1try
	check "setup: cgroup v1 refused (cgroup_no_v1=all)" sh -c '! mount -t cgroup -o memory none /tmp/v1try 2>/dev/null'
	echo "$CONTROLLERS" >"$CG/cgroup.subtree_control"
	expect_eq "setup: root cgroup.subtree_control" "cpuset cpu io memory pids" "$(cat "$CG/cgroup.subtree_control")"
	HOST_MEM=$(field "$(cat /proc/meminfo)" MemTotal)
	HOST_SWAP=$(field "$(cat /proc/meminfo)" SwapTotal)
	check "setup: the VM has swap (SwapTotal $HOST_SWAP kB)" [ "${HOST_SWAP:-0}" -gt 0 ]
	DATA_DEV=$(cat /sys/block/vdb/dev 2>/dev/null)
	check "setup: data disk vdb ($DATA_DEV)" [ -n "$DATA_DEV" ]
}

# Cgroups as a runtime lays them out on v2 (kubelet: pod cgroup, container cgroups below).
setup_cgroups() {
	mkdir "$P" || { fail "setup: mkdir $P"; return; }
	cgset "$P" memory.max 512M 536870912
	cgset "$P" memory.swap.max 256M 268435456
	cgset "$P" cpu.max "150000 100000" "150000 100000"
	echo "$CONTROLLERS" >"$P/cgroup.subtree_control"
	expect_eq "setup: $ID/cgroup.subtree_control" "cpuset cpu io memory pids" "$(cat "$P/cgroup.subtree_control")"

	C=$P/ctr # the main container
	mkdir "$C"
	cgset "$C" memory.max 256M 268435456
	cgset "$C" memory.swap.max 64M 67108864
	cgset "$C" cpuset.cpus 0 0
	cgset "$C" cpu.max "50000 100000" "50000 100000"
	cgset "$C" io.max "$DATA_DEV wbps=8388608 wiops=1000" "$DATA_DEV rbps=max wbps=8388608 riops=max wiops=1000"

	N=$P/nested # no limits of its own: everything comes from the parent
	mkdir "$N"
	expect_eq "setup: $ID/nested/memory.max" max "$(cat "$N/memory.max")"
	expect_eq "setup: $ID/nested/memory.swap.max" max "$(cat "$N/memory.swap.max")"

	Z=$P/noswap
	mkdir "$Z"
	cgset "$Z" memory.max 128M 134217728
	cgset "$Z" memory.swap.max 0 0

	S=$P/swapper # small RAM, room in swap: pushed to swap for real
	mkdir "$S"
	cgset "$S" memory.max 32M 33554432
	cgset "$S" memory.swap.max 64M 67108864

	I=$P/inner # cgroup of a pid namespace nested inside the main container
	mkdir "$I"
	cgset "$I" memory.max 96M 100663296

	C1=$P/cpu1 # a container on host CPU 1 only
	mkdir "$C1"
	cgset "$C1" cpuset.cpus 1 1

	Q=$P/quota # all CPUs, half a CPU of quota
	mkdir "$Q"
	cgset "$Q" cpu.max "50000 100000" "50000 100000"

	LD=$P/load # spins two tasks for loadavg
	mkdir "$LD"

	L=$P/long # a container that keeps running while the host enters it
	mkdir "$L"
	cgset "$L" memory.max 200M 209715200
}

cleanup_cgroups() {
	[ -d "$P" ] || return 0
	for g in "$P"/*/; do
		[ -f "$g/cgroup.kill" ] || continue
		echo 1 >"$g/cgroup.kill"
		wait_until 10 sh -c '[ -z "$(cat "$1/cgroup.procs")" ]' _ "$g"
		rmdir "$g"
	done
	rmdir "$P"
	check "cleanup: test cgroups removed" [ ! -d "$P" ]
}

# ------------------------------------------------------------------ the daemon
# start_daemon LABEL ARGS...: lxcfs-rs ARGS $MNT in the background, from the root cgroup
start_daemon() {
	local _label _f
	_label=$1
	shift
	DLOG=/tmp/lxcfs-rs-$_label.log
	LOGS="$LOGS $DLOG"
	DARGS="$*"
	mkdir -p "$MNT"
	echo "+ lxcfs-rs $DARGS $MNT" >"$DLOG"
	RUST_BACKTRACE=1 "$LXCFS" "$@" "$MNT" >>"$DLOG" 2>&1 &
	DPID=$!
	if wait_until 30 mounted; then
		ok "$_label: lxcfs-rs $DARGS mounted $MNT (pid $DPID)"
	else
		fail "$_label: lxcfs-rs $DARGS did not mount $MNT within 30 s (alive: $(gone $DPID && echo no || echo yes))"
		kill -KILL "$DPID" 2>/dev/null
		wait "$DPID"
		return 1
	fi
	if wait_until 5 grep -q 'kernel features:' "$DLOG"; then
		_f=$(grep -m1 'kernel features:' "$DLOG")
		info "$_label: kernel features: ${_f#*kernel features:}"
		info "$_label: started at VM uptime $(cut -d' ' -f1 /proc/uptime) s"
		ok "$_label: daemon logged its kernel features"
	else
		fail "$_label: no 'kernel features:' line in the daemon log"
	fi
}

stop_daemon() {
	local _label
	_label=$1
	if gone "$DPID"; then
		fail "$_label: daemon died during the checks"
	else
		ok "$_label: daemon still running after the checks"
	fi
	kill -TERM "$DPID" 2>/dev/null
	check "$_label: SIGTERM unmounts $MNT (within 15 s)" wait_until 15 unmounted
	if wait_until 15 gone "$DPID"; then
		wait "$DPID"
		expect_eq "$_label: daemon exit status after SIGTERM" 0 "$?"
	else
		fail "$_label: daemon still running 15 s after SIGTERM; killing it"
		kill -KILL "$DPID"
		wait "$DPID"
	fi
	mounted && umount -l "$MNT"
}

# ------------------------------------------------------------------ checks
# The reader's pid namespace says which container asks; a reader on the host
# (root pid namespace, root cgroup) gets the host's values.
check_host_reader() {
	local _l _host _v _sz
	_l=$1
	_host=$(cat /proc/meminfo)
	_v=$(cat "$MNT/proc/meminfo")
	expect_eq "$_l: host reader: MemTotal (kB) = VM MemTotal" "$(field "$_host" MemTotal)" "$(field "$_v" MemTotal)"
	expect_eq "$_l: host reader: SwapTotal (kB) = VM SwapTotal" "$(field "$_host" SwapTotal)" "$(field "$_v" SwapTotal)"
	expect_le "$_l: host reader: MemFree <= MemTotal" "$(field "$_v" MemFree)" "$(field "$_v" MemTotal)"
	_sz=$(awk 'NR > 1 { s += $3 } END { print s + 0 }' "$MNT/proc/swaps")
	expect_eq "$_l: host reader: /proc/swaps sizes sum to SwapTotal" "$(field "$_host" SwapTotal)" "$_sz"
	# --pid=host: a reader in the host pid namespace is served its own cgroup
	_v=$(sh -c 'echo $$ >"$1/cgroup.procs" && cat "$2/proc/meminfo"' _ "$C" "$MNT")
	expect_eq "$_l: host pid namespace, reader in the ctr cgroup: MemTotal" 262144 "$(field "$_v" MemTotal)"
}

# check_mem LABEL CGROUP MEMTOTAL_KB SWAPTOTAL_KB: one container, everything about
# meminfo, swaps and free that is exact or bounded at rest
check_mem() {
	local _l _g _mt _st _out _mi _sw _cur _free _mf _sf _line
	_l=$1 _g=$2 _mt=$3 _st=$4
	_out=$(ctr "$_g" "cat /proc/meminfo; echo ---; cat /proc/swaps; echo ---; cat $_g/memory.current; echo ---; /usr/bin/free -k")
	_mi=$(part "$_out" 0)
	_sw=$(part "$_out" 1)
	_cur=$(part "$_out" 2)
	_free=$(part "$_out" 3)
	if [ -z "$_mi" ]; then
		fail "$_l: container read no /proc/meminfo (output: $_out)"
		return
	fi
	expect_eq "$_l: MemTotal (kB)" "$_mt" "$(field "$_mi" MemTotal)"
	_mf=$(field "$_mi" MemFree)
	expect_le "$_l: MemFree <= MemTotal" "$_mf" "$_mt"
	expect_le "$_l: MemAvailable <= MemTotal" "$(field "$_mi" MemAvailable)" "$_mt"
	isnum "$_cur" && expect_near "$_l: MemFree = MemTotal - memory.current" $((_mt - _cur / 1024)) "$_mf" 4096
	expect_eq "$_l: SwapTotal (kB)" "$_st" "$(field "$_mi" SwapTotal)"
	_sf=$(field "$_mi" SwapFree)
	expect_le "$_l: SwapFree <= SwapTotal" "$_sf" "$_st"
	expect_eq "$_l: /proc/swaps header (fields)" "Filename Type Size Used Priority" "$(printf '%s\n' "$_sw" | head -1 | awk '{ $1 = $1; print }')"
	if [ "$_st" = 0 ]; then
		expect_eq "$_l: /proc/swaps has only the header (no swap)" 1 "$(printf '%s\n' "$_sw" | wc -l)"
	else
		expect_eq "$_l: /proc/swaps has header + one line" 2 "$(printf '%s\n' "$_sw" | wc -l)"
		_line=$(printf '%s\n' "$_sw" | sed -n 2p)
		expect_eq "$_l: /proc/swaps line: name type size" "none virtual $_st" "$(echo "$_line" | awk '{ print $1, $2, $3 }')"
		isnum "$_sf" && expect_eq "$_l: /proc/swaps Used = SwapTotal - SwapFree" $((_st - _sf)) "$(echo "$_line" | awk '{ print $4 }')"
		expect_eq "$_l: /proc/swaps priority" 0 "$(echo "$_line" | awk '{ print $5 }')"
	fi
	expect_eq "$_l: free -k (procps) Mem total" "$_mt" "$(printf '%s\n' "$_free" | awk '$1 == "Mem:" { print $2 }')"
	expect_eq "$_l: free -k (procps) Swap total" "$_st" "$(printf '%s\n' "$_free" | awk '$1 == "Swap:" { print $2 }')"
}

# Readers in several containers at once each get their own container's values.
check_concurrent() {
	local _l _loop _p1 _p2
	_l=$1
	_loop='i=0; while [ $i -lt 40 ]; do awk "/^MemTotal:/ { print \$2 }" /proc/meminfo; i=$((i + 1)); done | sort | uniq -c | awk "{ print \$2 \"x\" \$1 }"'
	ctr "$C" "$_loop" >/tmp/conc.ctr &
	_p1=$!
	ctr "$N" "$_loop" >/tmp/conc.nested &
	_p2=$!
	wait $_p1 $_p2
	expect_eq "$_l: concurrent readers: ctr saw only its MemTotal" 262144x40 "$(cat /tmp/conc.ctr)"
	expect_eq "$_l: concurrent readers: nested saw only its MemTotal" 524288x40 "$(cat /tmp/conc.nested)"
}

# The container's cgroup is its init's: a process of the container that moved to
# another cgroup still reads the container's values; a pid namespace nested inside
# the container whose init lives in another cgroup reads that cgroup's values.
check_pidns() {
	local _l _out _want
	_l=$1
	_want="0::/$ID/ctr"
	# "; echo ---; ..." keeps the container's sh from exec'ing the command: pid 1 must
	# stay in the container's cgroup while the child moves
	_out=$(ctr "$C" "sh -c 'echo \$\$ >$I/cgroup.procs; cat /proc/meminfo'; echo ---; cat /proc/1/cgroup")
	expect_eq "$_l: moved process: container init stayed in its cgroup" "$_want" "$(part "$_out" 1)"
	expect_eq "$_l: process moved out of the container's cgroup: MemTotal (init's cgroup)" 262144 "$(field "$(part "$_out" 0)" MemTotal)"
	_out=$(ctr "$C" "sh -c 'echo \$\$ >$I/cgroup.procs; exec unshare -p -f sh -c \"cat /proc/meminfo\"'; echo ---; cat /proc/1/cgroup")
	expect_eq "$_l: nested pid namespace: outer init stayed in its cgroup" "$_want" "$(part "$_out" 1)"
	expect_eq "$_l: nested pid namespace, its init in inner: MemTotal" 98304 "$(field "$(part "$_out" 0)" MemTotal)"
}

# ns_init CGROUP: host pid of the process in CGROUP that is pid 1 of its own pid
# namespace, once it is set up (ctr.sh has exec'd the container's command, so its
# mounts are in place)
ns_init() {
	local _p
	for _p in $(cat "$1/cgroup.procs"); do
		awk '$1 == "NSpid:" && NF == 3 && $3 == 1 { found = 1 } END { exit !found }' "/proc/$_p/status" 2>/dev/null || continue
		tr '\0' ' ' <"/proc/$_p/cmdline" | grep -q /ctr.sh && continue
		echo "$_p"
		return 0
	done
	return 1
}
# memtotal_via_nsenter PID: MemTotal read by a process that joined PID's pid and mount
# namespaces with setns (docker exec / nsenter: its parent is outside the container and
# it stays in the caller's cgroup, here the root cgroup)
memtotal_via_nsenter() { field "$(timeout -s KILL 20 nsenter -t "$1" -p -m cat /proc/meminfo)" MemTotal; }
memtotal_is() { [ "$(memtotal_via_nsenter "$1")" = "$2" ]; }

# A running container entered from the host, and its init moved by the runtime.
check_exec() {
	local _l _bg _init
	_l=$1
	ctr "$L" 'exec sleep 600' 2>/dev/null &
	_bg=$!
	if ! wait_until 20 ns_init "$L" >/dev/null; then
		fail "$_l: long-running container did not start"
		kill -KILL $_bg
		wait $_bg
		return
	fi
	_init=$(ns_init "$L")
	expect_eq "$_l: reader entered with setns (nsenter -p -m), root cgroup: MemTotal (init's cgroup)" 204800 "$(memtotal_via_nsenter "$_init")"
	echo "$_init" >"$I/cgroup.procs"
	if wait_until 20 memtotal_is "$_init" 98304; then
		ok "$_l: container init moved to another cgroup: MemTotal follows within 20 s (98304)"
	else
		fail "$_l: container init moved to another cgroup: expected MemTotal 98304 within 20 s, got '$(memtotal_via_nsenter "$_init")'"
	fi
	kill -KILL "$_init"
	wait $_bg 2>/dev/null
}

resolver_checks() {
	local _l
	_l=$1
	check_host_reader "$_l"
	check_mem "$_l ctr" "$C" 262144 "$(min 65536 "$HOST_SWAP")"
	# effective limit = minimum over the ancestors: 512M and 256M swap come from the parent
	check_mem "$_l nested" "$N" 524288 "$(min 262144 "$HOST_SWAP")"
	check_mem "$_l noswap" "$Z" 131072 0
	check_pidns "$_l"
	check_exec "$_l"
	check_concurrent "$_l"
}

# Allocate 50 MiB of tmpfs (shmem) in the container: MemFree drops by about that, and
# shmem must not be counted as available (LXCFS 3-5 did).
check_shmem() {
	local _out _a _b _fa _fb _aa _ab _sa _sb
	_out=$(ctr "$C" "cat /proc/meminfo; echo ---; dd if=/dev/zero of=/dev/shm/x bs=1M count=50 2>/dev/null; cat /proc/meminfo")
	_a=$(part "$_out" 0)
	_b=$(part "$_out" 1)
	_fa=$(field "$_a" MemFree) _fb=$(field "$_b" MemFree)
	_aa=$(field "$_a" MemAvailable) _ab=$(field "$_b" MemAvailable)
	_sa=$(field "$_a" Shmem) _sb=$(field "$_b" Shmem)
	if ! isnum "$_fa" || ! isnum "$_fb" || ! isnum "$_aa" || ! isnum "$_ab"; then
		fail "shmem: unreadable meminfo (output: $_out)"
		return
	fi
	expect_range "shmem: MemFree drop after 50 MiB in tmpfs (kB)" 46080 66560 $((_fa - _fb))
	expect_range "shmem: MemAvailable drop after 50 MiB in tmpfs (kB; shmem is not available)" 46080 66560 $((_aa - _ab))
	expect_le "shmem: MemAvailable <= MemTotal after" "$_ab" 262144
	isnum "$_sa" && isnum "$_sb" &&
		expect_range "shmem: Shmem growth (kB)" 49152 53248 $((_sb - _sa))
}

# Push a container into swap for real: 48 MiB of tmpfs under memory.max 32M.
check_swap_used() {
	local _out _cur _m1 _sw _m2 _st _f1 _f2 _used _u1 _u2
	_out=$(ctr "$S" "dd if=/dev/zero of=/dev/shm/x bs=1M count=48 2>/dev/null; cat $S/memory.swap.current; echo ---; cat /proc/meminfo; echo ---; cat /proc/swaps; echo ---; cat /proc/meminfo")
	_cur=$(part "$_out" 0)
	_m1=$(part "$_out" 1)
	_sw=$(part "$_out" 2)
	_m2=$(part "$_out" 3)
	_st=$(min 65536 "$HOST_SWAP")
	if ! isnum "$_cur"; then
		fail "swap use: container did not run (output: $_out)"
		return
	fi
	expect_range "swap use: kernel swapped out (memory.swap.current, kB)" 12288 65536 $((_cur / 1024))
	expect_eq "swap use: MemTotal (kB)" 32768 "$(field "$_m1" MemTotal)"
	expect_le "swap use: MemFree <= MemTotal" "$(field "$_m1" MemFree)" 32768
	expect_eq "swap use: SwapTotal (kB)" "$_st" "$(field "$_m1" SwapTotal)"
	_f1=$(field "$_m1" SwapFree) _f2=$(field "$_m2" SwapFree)
	_used=$(printf '%s\n' "$_sw" | awk 'NR == 2 { print $4 }')
	if ! isnum "$_f1" || ! isnum "$_f2"; then
		fail "swap use: no SwapFree in meminfo (got '$_f1', '$_f2')"
		return
	fi
	_u1=$((_st - _f1)) _u2=$((_st - _f2))
	expect_near "swap use: SwapTotal - SwapFree = memory.swap.current" $((_cur / 1024)) "$_u1" 2048
	expect_range "swap use: /proc/swaps Used between the two meminfo reads" "$(min $_u1 $_u2)" "$(max $_u1 $_u2)" "$_used"
}

# Filesystem behaviour seen from the host side of the mount.

# check_present REL [EMPTY_OK]: a served file exists, is 0444, non-empty on the host
# side, bound over its twin in the container and readable there (non-empty unless
# EMPTY_OK: a container's diskstats lists only the devices it used).
check_present() {
	local _rel _in _n _sz
	_rel=$1
	_in=/${_rel}
	if [ ! -e "$MNT/$_rel" ]; then
		fail "$_rel: not served ($MNT/$_rel missing)"
		return
	fi
	expect_eq "$_rel: mode" 444 "$(stat -c %a "$MNT/$_rel")"
	check "$_rel: readable and non-empty (host side)" sh -c "[ \"\$(cat $MNT/$_rel | wc -c)\" -gt 0 ]"
	_n=$(ctr "$C" "grep -q ' $_in ' /proc/self/mountinfo && echo bound; cat $_in >/tmp/.r && wc -c </tmp/.r")
	expect_eq "$_rel: bind-mounted over $_in in the container" bound "$(echo "$_n" | head -1)"
	_sz=$(echo "$_n" | sed -n 2p)
	if [ -n "${2:-}" ]; then
		check "$_rel: readable in the container ($_sz bytes)" isnum "$_sz"
	else
		check "$_rel: readable and non-empty in the container ($_sz bytes)" sh -c "[ '${_sz:-0}' -gt 0 ]"
	fi
}

# ---- The CPU view (SEMANTICS.md "The CPU view"): one list of CPUs drives cpuinfo,
# ---- stat, sys/devices/system/cpu/{online,possible,present,offline,cpuN}.
# ids TEXT: processor ids of a cpuinfo, "0 1" style
cpuinfo_ids() { printf '%s\n' "$1" | awk -F': *' '/^processor[ \t]*:/ { printf "%s%s", s, $2; s = " " }'; }
# stat_ids TEXT: N of the cpuN lines of a /proc/stat
stat_ids() { printf '%s\n' "$1" | awk '/^cpu[0-9]+ / { sub("cpu", "", $1); printf "%s%s", s, $1; s = " " }'; }
# stat_sum_ok TEXT: the "cpu" line is the column-wise sum of the cpuN lines
stat_sum_ok() {
	printf '%s\n' "$1" | awk '
		$1 == "cpu" { for (i = 2; i <= NF; i++) agg[i] = $i; n = NF }
		$1 ~ /^cpu[0-9]+$/ { for (i = 2; i <= NF; i++) sum[i] += $i }
		END { if (!n) exit 1; for (i = 2; i <= n; i++) if (agg[i] != sum[i]) exit 1 }'
}
# stat_busy TEXT: user + nice + system + irq + softirq + steal of the "cpu" line, ticks
stat_busy() { printf '%s\n' "$1" | awk '$1 == "cpu" { print $2 + $3 + $4 + $7 + $8 + $9 }'; }
stat_idle() { printf '%s\n' "$1" | awk '$1 == "cpu" { print $5 }'; }
# stat_monotonic A B: every counter of every cpu/cpuN line of B >= the same in A
stat_monotonic() {
	printf '%s\n---\n%s\n' "$1" "$2" | awk '
		/^---$/ { second = 1; next }
		$1 ~ /^cpu[0-9]*$/ { for (i = 2; i <= NF; i++) if (!second) a[$1, i] = $i; else if ($i < a[$1, i]) bad = 1 }
		END { exit bad }'
}
# cpuinfo_blocks TEXT IDS: the processor blocks of IDS without the lines that change
# between reads or with the numbering (processor, cpu MHz)
cpuinfo_blocks() {
	printf '%s\n' "$1" | awk -v ids=" $2 " '
		/^processor[ \t]*:/ { split($0, f, /: */); keep = index(ids, " " f[2] " ") > 0 }
		keep && !/^processor[ \t]*:/ && !/^cpu MHz/'
}
count_words() { set -- $1; echo $#; }
# hundredths "12.34" -> 1234
hundredths() { echo "$1" | awk '{ printf "%d", $1 * 100 + 0.5 }'; }

# check_cpu LABEL CGROUP IDS ONLINE OFFLINE HOSTIDS: the container sees CPUs IDS
# ("0 1"), online/possible/present ONLINE ("0-1"), offline OFFLINE (always empty: the
# container's machine has only the CPUs it sees, offline ⊆ possible); with HOSTIDS (not
# "-"), its cpuinfo blocks are the host's blocks of those CPUs, every field unchanged
# but the processor number.
check_cpu() {
	local _l _g _ids _on _off _hids _out _ci _st _sys _dirs _np _hci
	_l=$1 _g=$2 _ids=$3 _on=$4 _off=$5 _hids=$6
	_out=$(ctr "$_g" "cat /proc/cpuinfo; echo ---; cat /proc/stat; echo ---
		echo \"online=\$(cat /sys/devices/system/cpu/online) possible=\$(cat $MNT/sys/devices/system/cpu/possible) present=\$(cat $MNT/sys/devices/system/cpu/present) offline=[\$(cat $MNT/sys/devices/system/cpu/offline)]\"
		echo ---; ls $MNT/sys/devices/system/cpu | grep -E '^cpu[0-9]+\$' | sed s/cpu// | sort -n | tr '\n' ' '; echo
		echo ---; mount --bind $MNT/sys/devices/system/cpu /sys/devices/system/cpu && nproc --all")
	_hci=$(cat /proc/cpuinfo)
	_ci=$(part "$_out" 0)
	_st=$(part "$_out" 1)
	_sys=$(part "$_out" 2)
	_dirs=$(part "$_out" 3)
	_np=$(part "$_out" 4)
	expect_eq "$_l: cpuinfo processors" "$_ids" "$(cpuinfo_ids "$_ci")"
	expect_eq "$_l: stat cpuN lines" "$_ids" "$(stat_ids "$_st")"
	check "$_l: stat cpu line = sum of the cpuN lines" stat_sum_ok "$_st"
	expect_eq "$_l: sys/devices/system/cpu lists" "online=$_on possible=$_on present=$_on offline=[$_off]" "$_sys"
	expect_eq "$_l: sys cpu cpuN directories" "$_ids" "$(echo $_dirs)"
	expect_eq "$_l: nproc --all with sys/devices/system/cpu bound" "$(count_words "$_ids")" "$_np"
	expect_eq "$_l: stat btime = the host's" "$(awk '$1 == "btime" { print $2 }' /proc/stat)" "$(printf '%s\n' "$_st" | awk '$1 == "btime" { print $2 }')"
	if [ "$_hids" != - ]; then
		if [ "$(cpuinfo_blocks "$_ci" "$_ids")" = "$(cpuinfo_blocks "$_hci" "$_hids")" ] && [ -n "$(cpuinfo_blocks "$_ci" "$_ids")" ]; then
			ok "$_l: cpuinfo blocks are the host's blocks of CPUs $_hids (but processor, cpu MHz)"
		else
			fail "$_l: cpuinfo blocks differ from the host's blocks of CPUs $_hids: $(cpuinfo_blocks "$_ci" "$_ids" | head -3 | tr '\n' '|') vs $(cpuinfo_blocks "$_hci" "$_hids" | head -3 | tr '\n' '|')"
		fi
	else
		expect_eq "$_l: cpuinfo model name" "$(grep -m1 '^model name' /proc/cpuinfo)" "$(printf '%s\n' "$_ci" | grep -m1 '^model name')"
	fi
}

# check_cpu_time LABEL CGROUP QUOTA_PERCENT: spin for a second inside the container:
# busy time grows by at least 0.2 s and by no more than the quota allows (it is the
# container's time, not the host's), every counter is monotonic, uptime advances
# with the wall clock, stays below the host's, and its idle agrees with stat's.
# (uptime is read by the shell right after cat read stat: a second cat would start
# under emulation long enough after for idle, which grows by the wall time of every
# CPU shown, to have moved on by more than the tolerance.)
check_cpu_time() {
	local _l _g _q _out _s1 _u1 _s2 _u2 _vm _b _w _i1 _i2 _ui
	_l=$1 _g=$2 _q=$3
	_out=$(ctr "$_g" "cat /proc/stat; echo ---; read -r u </proc/uptime; echo \"\$u\"; echo ---
		timeout 1 sh -c 'while :; do :; done' 2>/dev/null
		cat /proc/stat; echo ---; read -r u </proc/uptime; echo \"\$u\"")
	_vm=$(cut -d' ' -f1 /proc/uptime)
	_s1=$(part "$_out" 0) _u1=$(part "$_out" 1) _s2=$(part "$_out" 2) _u2=$(part "$_out" 3)
	check "$_l: uptime format '%.2f %.2f'" sh -c "echo '$_u1' | grep -qE '^[0-9]+\.[0-9]{2} [0-9]+\.[0-9]{2}\$'"
	if ! isnum "$(stat_busy "$_s1")" || ! isnum "$(stat_busy "$_s2")" || [ -z "$_u1" ] || [ -z "$_u2" ]; then
		fail "$_l: unreadable stat/uptime in the container (output: $_out)"
		return
	fi
	_b=$(($(stat_busy "$_s2") - $(stat_busy "$_s1")))
	_w=$(($(hundredths "${_u2%% *}") - $(hundredths "${_u1%% *}")))
	expect_range "$_l: uptime advance over a 1 s spin (1/100 s)" 95 3000 "$_w"
	expect_range "$_l: stat busy growth over the spin (ticks; quota $_q% of $_w)" 20 $((_w * _q / 100 + 30)) "$_b"
	check "$_l: stat counters monotonic across the spin" stat_monotonic "$_s1" "$_s2"
	expect_le "$_l: container uptime (1/100 s) <= VM uptime" "$(hundredths "${_u2%% *}")" "$(hundredths "$_vm")"
	_ui=$(hundredths "${_u2#* }")
	expect_near "$_l: uptime idle (1/100 s) = stat idle (ticks)" "$(stat_idle "$_s2")" "$_ui" 100
}

check_cpu_views() {
	local _l
	_l=$1
	# default view: the cpuset, host ids kept
	check_cpu "$_l ctr (cpuset 0)" "$C" "0" 0 "" "0"
	check_cpu "$_l cpu1 (cpuset 1)" "$C1" "1" 1 "" "1"
	check_cpu "$_l quota (0.5 CPU, cpuset 0-1)" "$Q" "0 1" 0-1 "" "0 1"
	check_cpu "$_l nested (1.5 CPU from the parent)" "$N" "0 1" 0-1 "" "0 1"
}

check_cpu_views_cfs() {
	local _l
	_l=$1
	# --enable-cfs: min(ceil(quota/period), |cpuset|, host CPUs), numbered 0..n-1
	check_cpu "$_l ctr (cpuset 0, 0.5 CPU)" "$C" "0" 0 "" -
	check_cpu "$_l cpu1 (cpuset 1, 1.5 CPU from the parent)" "$C1" "0" 0 "" -
	check_cpu "$_l quota (0.5 CPU, cpuset 0-1)" "$Q" "0" 0 "" -
	check_cpu "$_l nested (1.5 CPU from the parent)" "$N" "0 1" 0-1 "" -
}

# ---- diskstats (v2: io.stat): only devices the container used, with its own counts.
# The container writes 4 MiB with O_DIRECT to the data disk vdb (under its io.max).
iostat_key() { printf '%s\n' "$1" | awk -v d="$2" -v k="$3=" '$1 == d { for (i = 2; i <= NF; i++) if (index($i, k) == 1) print substr($i, length(k) + 1) }'; }
check_diskstats() {
	local _out _before _after _io _line _wb _wios _devs _d _bad
	check_present proc/diskstats empty-ok
	_out=$(ctr "$C" "cat /proc/diskstats; echo ---
		dd if=/dev/zero of=/dev/vdb bs=1M count=4 oflag=direct 2>/dev/null
		cat /proc/diskstats; echo ---; cat $C/io.stat")
	_before=$(part "$_out" 0) _after=$(part "$_out" 1) _io=$(part "$_out" 2)
	expect_eq "diskstats: no vdb line before the container used vdb" "" "$(printf '%s\n' "$_before" | awk '$3 == "vdb"')"
	_wb=$(iostat_key "$_io" "$DATA_DEV" wbytes)
	_wios=$(iostat_key "$_io" "$DATA_DEV" wios)
	expect_eq "diskstats: (kernel) io.stat wbytes on vdb after 4 MiB O_DIRECT" 4194304 "$_wb"
	_line=$(printf '%s\n' "$_after" | awk '$3 == "vdb"')
	expect_eq "diskstats: vdb line has the host's major:minor" "$DATA_DEV" "$(echo "$_line" | awk '{ print $1 ":" $2 }')"
	expect_eq "diskstats: vdb line has the host's field count" "$(awk '$3 == "vdb" { print NF }' /proc/diskstats)" "$(echo "$_line" | awk '{ print NF }')"
	isnum "$_wb" && expect_eq "diskstats: vdb sectors written = io.stat wbytes / 512" $((_wb / 512)) "$(echo "$_line" | awk '{ print $10 }')"
	expect_eq "diskstats: vdb writes completed = io.stat wios" "$_wios" "$(echo "$_line" | awk '{ print $8 }')"
	expect_eq "diskstats: vdb sectors read = io.stat rbytes / 512" "$(($(iostat_key "$_io" "$DATA_DEV" rbytes) / 512))" "$(echo "$_line" | awk '{ print $6 }')"
	_devs=$(printf '%s\n' "$_after" | awk 'NF { print $1 ":" $2 }')
	_bad=""
	for _d in $_devs; do
		printf '%s\n' "$_io" | grep -q "^$_d " || _bad="$_bad $_d"
	done
	expect_eq "diskstats: every listed device is in the container's io.stat" "" "$_bad"
}

# ---- /proc/pressure/*: the container's own cgroup files, verbatim. Read between two
# ---- reads of the cgroup file, the "total=" counters must lie in between.
psi_total() { printf '%s\n' "$1" | awk -v k="$2" '$1 == k { for (i = 2; i <= NF; i++) if (index($i, "total=") == 1) print substr($i, 7) }'; }
check_pressure() {
	local _r _out _a _v _b _k
	for _r in cpu memory io; do
		if [ ! -e "$MNT/proc/pressure/$_r" ]; then
			fail "pressure/$_r: not served"
			continue
		fi
		expect_eq "pressure/$_r: mode" 444 "$(stat -c %a "$MNT/proc/pressure/$_r")"
		_out=$(ctr "$C" "cat $C/$_r.pressure; echo ---; cat $MNT/proc/pressure/$_r; echo ---; cat $C/$_r.pressure")
		_a=$(part "$_out" 0) _v=$(part "$_out" 1) _b=$(part "$_out" 2)
		expect_eq "pressure/$_r: same lines as the cgroup's $_r.pressure" \
			"$(printf '%s\n' "$_a" | awk '{ print $1, $2 ~ /^avg10=/, $5 ~ /^total=/ }' | tr '\n' ' ')" \
			"$(printf '%s\n' "$_v" | awk '{ print $1, $2 ~ /^avg10=/, $5 ~ /^total=/ }' | tr '\n' ' ')"
		for _k in some full; do
			[ -n "$(psi_total "$_a" $_k)" ] || continue
			expect_range "pressure/$_r: $_k total (us) between two reads of the cgroup file" \
				"$(psi_total "$_a" $_k)" "$(psi_total "$_b" $_k)" "$(psi_total "$_v" $_k)"
		done
	done
}

# ---- loadavg (-l): per container, sampled every 5 s with the kernel's averages.
loadavg_of() { timeout -s KILL 20 nsenter -t "$1" -p -m cat /proc/loadavg; }
load1_at_least() { [ "$(loadavg_of "$1" | awk -v m="$2" '{ print ($1 >= m) }')" = 1 ]; }
check_loadavg() {
	local _l _bg _init _la _n
	_l=$1
	check_present proc/loadavg
	ctr "$LD" 'sh -c "while :; do :; done" & sh -c "while :; do :; done" & wait' 2>/dev/null &
	_bg=$!
	if ! wait_until 20 ns_init "$LD" >/dev/null; then
		fail "$_l: loadavg: spinning container did not start"
		echo 1 >"$LD/cgroup.kill"
		wait $_bg
		return
	fi
	_init=$(ns_init "$LD")
	# 2 runnable tasks: load1 = 2 * (1 - exp(-t/60)), 0.31 after two 5 s samples
	if wait_until 60 load1_at_least "$_init" 0.25; then
		ok "$_l: loadavg: 2 spinning tasks raise load1 to >= 0.25 within 60 s"
	else
		fail "$_l: loadavg: 2 spinning tasks: load1 still below 0.25 after 60 s ($(loadavg_of "$_init"))"
	fi
	_la=$(loadavg_of "$_init")
	info "$_l: loadavg of the spinning container: $_la"
	check "$_l: loadavg format 'a.bb c.dd e.ff running/total last_pid'" \
		sh -c "echo '$_la' | grep -qE '^[0-9]+\.[0-9]{2} [0-9]+\.[0-9]{2} [0-9]+\.[0-9]{2} [0-9]+/[0-9]+ [0-9]+\$'"
	expect_le "$_l: loadavg: load1 <= 2.10 (two tasks), x100" "$(echo "$_la" | awk '{ printf "%d", $1 * 100 }')" 210
	expect_range "$_l: loadavg: total tasks (the container's 3 and at most a few readers)" 3 8 "$(echo "$_la" | awk '{ split($4, f, "/"); print f[2] }')"
	expect_range "$_l: loadavg: last_pid in the container's numbering" 1 50 "$(echo "$_la" | awk '{ print $5 }')"
	_n=$(ctr "$N" "cat /proc/loadavg")
	# the idle one only ever ran this suite's short readers
	expect_le "$_l: loadavg: an idle container next to it: load1 x100 below the spinning one's" \
		"$(echo "$_n" | awk '{ printf "%d", $1 * 100 }')" "$(($(echo "$_la" | awk '{ printf "%d", $1 * 100 }') - 1))"
	echo 1 >"$LD/cgroup.kill"
	wait $_bg 2>/dev/null
}

# ---- Worker restarts (the supervisor keeps the FUSE connection): on this 6.1 kernel
# ---- there is no FUSE_NOTIFY_RESEND, and the supervisor must say that the next worker
# ---- answers what a dead one had taken from the in-flight table (e2e_restart checks
# ---- that it does, with requests caught in the kill).
worker_of() {
	for _p in /proc/[0-9]*; do
		[ "$(cut -d' ' -f4 "$_p/stat" 2>/dev/null)" = "$1" ] || continue
		tr '\0' ' ' <"$_p/cmdline" 2>/dev/null | grep -q -- '--worker' && echo "${_p#/proc/}"
	done
}
new_worker() { _w=$(worker_of "$DPID"); [ -n "$_w" ] && [ "$_w" != "$1" ]; }
check_worker_restart() {
	local _l _w _w2 _init _bg
	_l=$1
	ctr "$C" 'exec sleep 600' 2>/dev/null &
	_bg=$!
	if ! wait_until 20 ns_init "$C" >/dev/null; then
		fail "$_l: long-running container did not start"
		kill -KILL $_bg
		wait $_bg
		return
	fi
	_init=$(ns_init "$C")
	_w=$(worker_of "$DPID")
	if [ -z "$_w" ]; then
		fail "$_l: no worker process under the supervisor $DPID"
		kill -KILL "$_init"
		wait $_bg 2>/dev/null
		return
	fi
	kill -KILL "$_w"
	check "$_l: a new worker replaces a SIGKILLed one within 5 s" wait_until 5 new_worker "$_w"
	check "$_l: the container reads its own MemTotal after the worker was killed" \
		wait_until 10 memtotal_is "$_init" 262144
	check "$_l: the supervisor logged why the worker died" grep -q "SIGKILL" "$DLOG"
	case $(uname -r) in
	[1-5].* | 6.[0-8].* | 6.[0-8]-*)
		check "$_l: the supervisor says the next worker answers what a dead one had taken (Linux < 6.9)" \
			wait_until 5 grep -q "cannot resend.*answers them from the in-flight table" "$DLOG"
		;;
	esac
	_w2=$(worker_of "$DPID")
	kill -USR1 "$DPID"
	check "$_l: SIGUSR1 replaces the worker (live upgrade)" wait_until 20 new_worker "$_w2"
	check "$_l: the container reads its own MemTotal after the upgrade" \
		wait_until 10 memtotal_is "$_init" 262144
	check "$_l: the mount stayed the same through restart and upgrade" mounted
	kill -KILL "$_init"
	wait $_bg 2>/dev/null
}

# `lxcfs-rs check` (check_lxcfs_check)
. /check.sh

# ------------------------------------------------------------------ main
setup_host
setup_cgroups

# Pass 1: procfs resolver forced, everything.
if start_daemon pass1 --init-resolver=procfs; then
	resolver_checks pass1
	check_shmem
	check_swap_used
	for f in proc/cpuinfo proc/stat proc/uptime sys/devices/system/cpu/online; do check_present $f; done
	check_cpu_views pass1
	check_cpu_time "pass1 ctr" "$C" 50
	check_cpu_time "pass1 quota" "$Q" 50
	check_diskstats
	check_pressure
	stop_daemon pass1
fi

# Pass 2: no flag: 6.1 has no NS_GET_TGID_FROM_PIDNS, the daemon must fall back on its own.
PIDFILE=/run/lxcfs-vm-test.pid
if start_daemon pass2 --pidfile "$PIDFILE"; then
	case $(uname -r) in
	[1-5].* | 6.[0-9].* | 6.10.* | 6.[0-9]-* | 6.10-*)
		check "pass2: on $(uname -r) (no NS_GET_TGID_FROM_PIDNS) auto picked the /proc resolver" \
			grep -qi 'kernel features:.*procfs' "$DLOG"
		;;
	esac
	expect_eq "pass2: pidfile holds the daemon's pid" "$DPID" "$(cat "$PIDFILE" 2>&1)"
	resolver_checks pass2
	check_lxcfs_check pass2
	check_cpu_views pass2
	check_worker_restart pass2
	stop_daemon pass2
	check "pass2: pidfile removed on exit" [ ! -e "$PIDFILE" ]
fi

# Pass 3: -u/--disable-swap: no swap in meminfo and swaps, memory unchanged;
# --enable-cfs: the quota limits the CPU count too; -l: per-container loadavg.
if start_daemon pass3 --disable-swap --enable-cfs -l; then
	check_cpu_views_cfs pass3
	check_loadavg pass3
	check_mem "pass3 ctr" "$C" 262144 0
	check_mem "pass3 nested" "$N" 524288 0
	stop_daemon pass3
fi

cleanup_cgroups

if [ "$FAILED" -gt 0 ]; then
	for l in $LOGS; do
		echo "----- daemon log $l -----"
		cat "$l"
	done
	echo "----- dmesg (last 30 lines) -----"
	dmesg | tail -30
	echo "-----"
fi
echo "$PASSED passed, $FAILED failed"
