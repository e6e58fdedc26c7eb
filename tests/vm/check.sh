# check.sh - sourced by suite.sh: `lxcfs-rs check` on the pure cgroup-v2 host, with what
# this kernel (Debian's 6.1) and the suite's layout make exact.

# check_lxcfs_check LABEL: the host report, the served mountpoint, and a container's
# files (a long-running container in $C).
check_lxcfs_check() {
	local _l _out _rc _bg _init _line
	_l=$1
	_out=$("$LXCFS" check "$MNT")
	_rc=$?
	expect_eq "$_l: check: exit status with $MNT served" 0 "$_rc"
	# "  LEVEL    NAME                     FOUND": the human form's columns
	_line() { printf '%s\n' "$_out" | awk -v n="$1" 'substr($0, 12, length(n)) == n { print $1; exit }'; }
	expect_eq "$_l: check: cgroup layout" "ok unified (cgroup v2)" \
		"$(printf '%s\n' "$_out" | awk '$2 == "cgroup" && $3 == "layout" { print $1, $4, $5, $6; exit }' | tr -d :)"
	expect_eq "$_l: check: memory controller on v2" "ok" "$(_line "memory controller")"
	expect_eq "$_l: check: swap accounting (memory.swap.max below the root)" "ok" "$(_line "swap accounting")"
	expect_eq "$_l: check: no cpuacct line on a unified host" "" "$(_line "cpuacct controller")"
	case $(uname -r) in
	[1-5].* | 6.[0-8].* | 6.[0-8]-*)
		# The in-flight table stands in for it: nothing waits.
		expect_eq "$_l: check: FUSE_NOTIFY_RESEND before 6.9" "ok" "$(_line "FUSE_NOTIFY_RESEND")"
		expect_eq "$_l: check: FUSE passthrough before 6.9" "limited" "$(_line "FUSE passthrough")"
		expect_eq "$_l: check: NS_GET_TGID_FROM_PIDNS before 6.11" "limited" "$(_line "NS_GET_TGID_FROM_PIDNS")"
		;;
	esac
	check "$_l: check: $MNT served by lxcfs-rs (supervisor $DPID)" \
		sh -c 'printf "%s\n" "$1" | grep -q "served by lxcfs-rs .* (supervisor $2, worker "' _ "$_out" "$DPID"

	ctr "$C" 'exec sleep 600' 2>/dev/null &
	_bg=$!
	if ! wait_until 20 ns_init "$C" >/dev/null; then
		fail "$_l: check: long-running container did not start"
		kill -KILL $_bg
		wait $_bg
		return
	fi
	_init=$(ns_init "$C")
	_out=$("$LXCFS" check --pid "$_init" "$MNT")
	expect_eq "$_l: check --pid: exit status" 0 "$?"
	_src() { printf '%s\n' "$_out" | awk -v f="$1" '$1 == f { print $2; exit }'; }
	check "$_l: check --pid: init $_init named" \
		sh -c 'printf "%s\n" "$1" | grep -q "whose init is $2 (sleep)"' _ "$_out" "$_init"
	expect_eq "$_l: check --pid: memory cgroup" "$CG/$ID/ctr" \
		"$(printf '%s\n' "$_out" | awk '$1 == "memory" { print $2; exit }')"
	for _f in proc/meminfo proc/swaps proc/cpuinfo proc/stat proc/uptime proc/diskstats \
		proc/pressure/cpu proc/pressure/memory proc/pressure/io sys/devices/system/cpu/online; do
		expect_eq "$_l: check --pid: $_f" "container" "$(_src "$_f")"
	done
	# cgroup v2 keeps no per-cgroup slabinfo.
	expect_eq "$_l: check --pid: proc/slabinfo" "host:" "$(_src proc/slabinfo)"
	kill -KILL "$_init"
	wait $_bg 2>/dev/null
}
