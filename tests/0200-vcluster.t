#!/bin/bash
# 0200-vcluster.t - `mosctl vcluster`: nodes with their own hostname, address,
# /tmp and CPU quota, `exec` into them, and a `down` that leaves nothing behind,
# also after a killed or half-finished `up`.
source "${TOP_SRCDIR:-$(cd "$(dirname "$0")/.." && pwd)}/tests/lib.sh"
need_root
for t in ip unshare nsenter setsid flock findmnt; do
	command -v $t >/dev/null || skip_all "$t not found (iproute2, util-linux)"
done
[ -e /sys/fs/cgroup/cgroup.controllers ] || grep -Eq '^cgroup [^ ]+ cgroup [^ ]*\bcpu\b' /proc/mounts ||
	skip_all "no cgroup cpu controller"

export MOS_VCLUSTER=${MOS_VCLUSTER:-$TOP_SRCDIR/launcher/tools/mos-vcluster}
if command -v mosctl >/dev/null; then VC=(mosctl vcluster); else VC=("$MOS_VCLUSTER"); fi
vc() { "${VC[@]}" "$@"; }
RUN=/run/mosexec/vcluster

leftovers() { # everything of a cluster still there, one line each
	ip netns list 2>/dev/null | grep mosvc
	ip -o link show 2>/dev/null | grep -o 'mosvc[^:@]*'
	ls -d /sys/fs/cgroup/mosvc /sys/fs/cgroup/*/mosvc 2>/dev/null
	grep mosexec /proc/mounts
	pgrep -af "mosd --config $RUN"
	ls -d /var/lib/mosexec/vcluster 2>/dev/null
}
[ -z "$(leftovers)" ] || skip_all "a virtual cluster is already up (run 'mosctl vcluster down' first)"
at_exit "${VC[*]} down"

MOSD_OPT=(--no-mosd)
if command -v mosd >/dev/null; then MOSD_OPT=(); else diag "mosd not on PATH: nodes without daemons"; fi

quota_of() { # the CPU quota of a node's cgroup, in microseconds per 100 ms
	if [ -e /sys/fs/cgroup/cgroup.controllers ]; then
		awk '$2 == 100000 { print $1 }' "/sys/fs/cgroup/mosvc/$1/cpu.max"
	else
		local d
		d=$(awk '$3 == "cgroup" && ("," $4 ",") ~ /,cpu,/ { print $2; exit }' /proc/mounts)
		[ "$(cat "$d/mosvc/$1/cpu.cfs_period_us")" = 100000 ] && cat "$d/mosvc/$1/cpu.cfs_quota_us"
	fi
}

plan 68

# --- bad input ---------------------------------------------------------------
bad() { # bad NAME ARGS... - must fail with status 2 and say why
	local out rc
	out=$(vc "${@:2}" 2>&1)
	rc=$?
	is "$rc" 2 "$1: exit status 2"
	[ -n "$out" ]
	ok $? "$1: says why"
}
bad "--nodes 0" up --nodes 0 --no-mosd
bad "--nodes 201" up --nodes 201 --no-mosd
bad "--nodes abc" up --nodes abc --no-mosd
bad "--diskless > nodes" up --nodes 3 --diskless 4 --no-mosd
bad "unknown option" up --nodes 3 --bogus --no-mosd
bad "--cpu-quota x" up --nodes 3 --cpu-quota x --no-mosd
bad "--port 70000" up --nodes 2 --port 70000 --no-mosd
bad "no --nodes" up --no-mosd
is "$(leftovers)" "" "bad arguments made nothing"
out=$(vc exec node0 -- true 2>&1)
is "$?" 2 "exec with no cluster: exit status 2"
vc status >/dev/null 2>&1
is "$?" 1 "status with no cluster: exit status 1"

# --- up ------------------------------------------------------------------------
cat >"$T_TMP/probe" <<'EOF'
#!/bin/sh
echo "probe on $(hostname)"
EOF
chmod +x "$T_TMP/probe"
out=$(vc up --nodes 3 --diskless 1 --share "$T_TMP" "${MOSD_OPT[@]}" 2>&1)
rc=$?
is "$rc" 0 "up --nodes 3 --diskless 1 ${MOSD_OPT[*]:-(with mosd)}"
[ "$rc" = 0 ] || diag "$out"
like "$out" "$RUN/cluster.yaml" "up prints the config path"
like "$out" "exec node0 -- " "up prints how to use it"
out=$(vc up --nodes 2 --no-mosd 2>&1)
[ $? -ne 0 ]
ok $? "a second up fails"
like "$out" "down" "and says to run down"
if command -v mosctl >/dev/null && mosctl check-config "$RUN/cluster.yaml" >/dev/null 2>&1; then
	ok 0 "cluster.yaml passes check-config"
elif command -v mosctl >/dev/null; then
	ok 1 "cluster.yaml passes check-config"; diag "$(mosctl check-config "$RUN/cluster.yaml" 2>&1)"
else
	skip "mosctl not built: cannot check cluster.yaml"
fi
is "$(stat -c '%s %a' "$RUN/cluster.key")" "32 600" "cluster.key: 32 bytes, mode 600"
is "$(findmnt -n -o FSTYPE "$RUN")" tmpfs "cluster state is on a tmpfs"

for i in 0 1 2; do
	is "$(vc exec node$i -- hostname)" "node$i" "node$i: hostname"
	is "$(vc exec node$i -- ip -4 -o addr show dev eth0 | awk '{ print $4 }')" "10.77.0.1$i/16" \
		"node$i: address"
done
is "$(ip -o addr show dev mosvc0)" "" "the bridge has no address"
if command -v ping >/dev/null; then
	vc exec node0 -- ping -c1 -W1 10.77.0.12 >/dev/null
	ok $? "node0 pings node2"
else
	skip "ping not installed (iputils-ping)"
fi

# --- file systems --------------------------------------------------------------
state_dir=$(awk '$1 == "state_dir:" { print $2 }' "$RUN/cluster.yaml")
is "$(vc exec node2 -- stat -f -c %T /tmp /var/tmp "$state_dir" | sort -u)" tmpfs \
	"diskless node2: /tmp, /var/tmp, state dir are tmpfs"
[ "$(vc exec node0 -- stat -f -c %T /tmp)" != tmpfs ]
ok $? "full node0: /tmp is not tmpfs"
rm -f /tmp/mosvc-probe
vc exec node0 -- sh -c 'echo x >/tmp/mosvc-probe'
vc exec node0 -- test -e /tmp/mosvc-probe && ! vc exec node1 -- test -e /tmp/mosvc-probe &&
	! test -e /tmp/mosvc-probe && test -e /var/lib/mosexec/vcluster/node0/tmp/mosvc-probe
ok $? "node0's /tmp is its own, on disk"
is "$(vc exec node0 -- "$T_TMP/probe") $(vc exec node2 -- "$T_TMP/probe")" \
	"probe on node0 probe on node2" "a --share directory under /tmp is seen by every node"

# --- cgroups -------------------------------------------------------------------
is "$(quota_of node0) $(quota_of node1) $(quota_of node2)" "50000 50000 50000" "cpu quota 0.5 on every node"
like "$(vc exec node1 -- cat /proc/self/cgroup)" "mosvc/node1" "exec runs in the node's cgroup"

# --- exec ----------------------------------------------------------------------
vc exec node0 -- sh -c 'exit 7'
is "$?" 7 "exec passes the exit status"
is "$(cd /usr && FOO=bar vc exec node0 -- sh -c 'echo "$FOO $PWD"')" "bar /usr" "exec keeps environment and cwd"
is "$(echo hello | vc exec node2 -- cat)" hello "exec keeps stdin"
is "$(vc exec node1 --user nobody -- id -un)" nobody "exec --user"
vc exec node9 -- true 2>/dev/null
is "$?" 2 "exec on an unknown node: exit status 2"
vc exec node0 true 2>/dev/null
is "$?" 2 "exec without --: exit status 2"
out=$(vc status)
is "$?" 0 "status"
like "$out" "node2 +10\.77\.0\.12 +diskless" "status lists node, address and role"

# --- mosd ----------------------------------------------------------------------
if [ ${#MOSD_OPT[@]} -eq 0 ]; then
	good=0
	for i in 0 1 2; do
		pid=$(cat "$RUN/node$i/mosd.pid" 2>/dev/null)
		[ -n "$pid" ] && kill -0 "$pid" &&
			[ "$(readlink "/proc/$pid/ns/net")" = "net:[$(stat -L -c %i "/run/netns/mosvc-node$i")]" ] &&
			grep -q "mosvc/node$i\$" "/proc/$pid/cgroup" || { good=1; diag "node$i: mosd pid '$pid'"; }
	done
	ok $good "a mosd runs in each node's netns and cgroup"
	like "$(vc exec node0 -- ss -ltn)" "10\.77\.0\.10:7077" "node0's mosd listens on its address"
else
	skip "no mosd"
	skip "no mosd"
fi

# --- down ----------------------------------------------------------------------
vc down >/dev/null
is "$?" 0 "down"
is "$(ip netns list | grep mosvc)" "" "down: no netns left"
ip link show mosvc0 >/dev/null 2>&1
is "$?" 1 "down: no bridge"
is "$(ip -o link show | grep -o 'mosvc[^:@]*')" "" "down: no veth"
is "$(ls -d /sys/fs/cgroup/mosvc /sys/fs/cgroup/*/mosvc 2>/dev/null)" "" "down: no cgroup"
is "$(grep mosexec /proc/mounts)" "" "down: no mount"
is "$(pgrep -af "mosd --config $RUN")" "" "down: no mosd"
is "$(leftovers)" "" "down: nothing at all"
vc down >/dev/null
is "$?" 0 "down again: nothing to do, exit 0"

# --- leftovers of a crash ------------------------------------------------------
ip netns add mosvc-node7
vc up --nodes 2 --no-mosd >/dev/null 2>&1
[ $? -ne 0 ]
ok $? "up refuses while a stray mosvc-node7 netns exists"
vc down >/dev/null
is "$?.$(leftovers)" "0." "down removes the stray netns"

setsid "${VC[@]}" up --nodes 40 --no-mosd >/dev/null 2>&1 &
pg=$!
for _ in $(seq 200); do [ -e /run/netns/mosvc-node2 ] && break; sleep 0.05; done
[ -e /run/netns/mosvc-node2 ] && ! [ -e "$RUN/complete" ]
ok $? "an up is midway"
kill -KILL -- "-$pg"
wait "$pg" 2>/dev/null
vc status >/dev/null 2>&1
is "$?" 1 "status after a killed up: exit status 1"
vc down >/dev/null
is "$?.$(leftovers)" "0." "down after a killed up leaves nothing"

vc up --nodes 2 --no-mosd >/dev/null && vc up --nodes 2 --cpu-quota 0.25 --force --no-mosd >/dev/null
ok $? "up --force over a running cluster"
is "$(quota_of node1)" 25000 "the new cluster has the new quota"
vc down >/dev/null
is "$?.$(leftovers)" "0." "final down leaves nothing"
