#!/bin/bash
# 0200-vcluster.t - `mosctl vcluster`: nodes with their own hostname, address,
# /tmp and CPU quota, `exec` into them, and a `down` that leaves nothing behind,
# also after a killed or half-finished `up`; named instances side by side,
# isolated from each other and removed one by one or all at once. The default
# cluster is only touched when none is up at the start (someone may use it).
source "${TOP_SRCDIR:-$(cd "$(dirname "$0")/.." && pwd)}/tests/lib.sh"
need_root
for t in ip unshare nsenter setsid flock findmnt; do
	command -v $t >/dev/null || skip_all "$t not found (iproute2, util-linux)"
done
[ -e /sys/fs/cgroup/cgroup.controllers ] || grep -Eq '^cgroup [^ ]+ cgroup [^ ]*\bcpu\b' /proc/mounts ||
	skip_all "no cgroup cpu controller"

unset MOS_VCLUSTER_NAME
export MOS_VCLUSTER=${MOS_VCLUSTER:-$TOP_SRCDIR/launcher/tools/mos-vcluster}
if command -v mosctl >/dev/null; then VC=(mosctl vcluster); else VC=("$MOS_VCLUSTER"); fi
vc() { "${VC[@]}" "$@"; }
RUN=/run/mosexec/vcluster

# mounts_under DIR...: mount points at or below any DIR
mounts_under() {
	awk -v dirs="$*" 'BEGIN { n = split(dirs, d, " ") }
		{ for (i = 1; i <= n; i++) if ($2 == d[i] || index($2, d[i] "/") == 1) print $2 }' /proc/mounts
}
leftovers() { # everything of the default cluster still there, one line each
	ip netns list 2>/dev/null | grep '^mosvc-'
	ip -o link show 2>/dev/null | grep -oE '^[0-9]+: (mosvc0|mosvc-veth[0-9]+)\b'
	ls -d /sys/fs/cgroup/mosvc /sys/fs/cgroup/*/mosvc 2>/dev/null
	mounts_under "$RUN" /var/lib/mosexec/vcluster
	pgrep -af "mosd --config $RUN/"
	ls -d /var/lib/mosexec/vcluster 2>/dev/null
}
leftovers_of() { # leftovers_of NAME: the same for instance NAME
	ip netns list 2>/dev/null | grep "^mosvc$1-"
	ip -o link show 2>/dev/null | grep -oE "^[0-9]+: (mosvc${1}0|mosvc$1-v[0-9]+)\b"
	ls -d "/sys/fs/cgroup/mosvc-$1" /sys/fs/cgroup/*/"mosvc-$1" 2>/dev/null
	mounts_under "$RUN-$1" "/var/lib/mosexec/vcluster-$1"
	pgrep -af "mosd --config $RUN-$1/"
	ls -d "/var/lib/mosexec/vcluster-$1" 2>/dev/null
}
# The default cluster may be in use by someone: then only named instances are tested.
DEFAULT_FREE=1
[ -z "$(leftovers)" ] || { DEFAULT_FREE=; diag "a default virtual cluster is up: not touching it" "$(leftovers | head -n 3)"; }
[ -z "$DEFAULT_FREE" ] || at_exit "${VC[*]} down"

# Two instance names nobody uses.
for n in $(seq 0 99); do
	A=ta$n B=tb$n
	[ -z "$(leftovers_of $A)$(leftovers_of $B)" ] && break
done
[ -z "$(leftovers_of $A)$(leftovers_of $B)" ] || skip_all "no free instance names ta*/tb*"
at_exit "${VC[*]} down --name $A"
at_exit "${VC[*]} down --name $B"

MOSD_OPT=(--no-mosd)
if command -v mosd >/dev/null; then MOSD_OPT=(); else diag "mosd not on PATH: nodes without daemons"; fi

quota_of() { # quota_of NODE [CGROUP]: the CPU quota of a node's cgroup, in us per 100 ms
	local cg=${2:-mosvc}
	if [ -e /sys/fs/cgroup/cgroup.controllers ]; then
		awk '$2 == 100000 { print $1 }' "/sys/fs/cgroup/$cg/$1/cpu.max"
	else
		local d
		d=$(awk '$3 == "cgroup" && ("," $4 ",") ~ /,cpu,/ { print $2; exit }' /proc/mounts)
		[ "$(cat "$d/$cg/$1/cpu.cfs_period_us")" = 100000 ] && cat "$d/$cg/$1/cpu.cfs_quota_us"
	fi
}
skip_n() { local i; for ((i = 0; i < $1; i++)); do skip "$2"; done; }

plan 121

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
bad "--name ABC" up --name ABC --nodes 2 --no-mosd
bad "--name abcde (too long)" up --name abcde --nodes 2 --no-mosd
bad "--name a-b" status --name a-b
bad "--name ''" path --name ''
bad "--name without a value" status --name
MOS_VCLUSTER_NAME=x_y bad "bad MOS_VCLUSTER_NAME" path
bad "down --all --name" down --all --name "$A"
is "$(leftovers_of "$A")$(leftovers_of ABC)$(leftovers_of abcde)" "" "bad arguments made nothing"

default_tests() {
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
is "$(ip netns list | grep '^mosvc-')" "" "down: no netns left"
ip link show mosvc0 >/dev/null 2>&1
is "$?" 1 "down: no bridge"
is "$(ip -o link show | grep -oE ': mosvc-veth[0-9]+')" "" "down: no veth"
is "$(ls -d /sys/fs/cgroup/mosvc /sys/fs/cgroup/*/mosvc 2>/dev/null)" "" "down: no cgroup"
is "$(mounts_under "$RUN" /var/lib/mosexec/vcluster)" "" "down: no mount"
is "$(pgrep -af "mosd --config $RUN/")" "" "down: no mosd"
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
}
if [ -n "$DEFAULT_FREE" ]; then default_tests; else skip_n 51 "a default cluster is in use"; fi

# --- named instances side by side ---------------------------------------------
RA=$RUN-$A RB=$RUN-$B
is "$(vc path --name "$A")" "$RA" "path --name NAME: the instance's run directory"
is "$(MOS_VCLUSTER_NAME=$A vc path)" "$RA" "path with MOS_VCLUSTER_NAME"
is "$(MOS_VCLUSTER_NAME=$B vc path --name "$A")" "$RA" "--name wins over MOS_VCLUSTER_NAME"
is "$(vc path)" "$RUN" "path without a name: the default cluster's"
vc exec --name "$A" node0 -- true 2>/dev/null
is "$?" 2 "exec on a named cluster that is not up: exit status 2"
vc status --name "$A" >/dev/null 2>&1
is "$?" 1 "status of a named cluster that is not up: exit status 1"

out=$(vc up --name "$A" --nodes 2 "${MOSD_OPT[@]}" 2>&1)
rc=$?
is "$rc" 0 "up --name $A --nodes 2 ${MOSD_OPT[*]:-(with mosd)}"
[ "$rc" = 0 ] || diag "$out"
like "$out" "exec --name $A node0 -- " "up --name prints how to use that instance"
out=$(MOS_VCLUSTER_NAME=$B vc up --nodes 3 "${MOSD_OPT[@]}" 2>&1)
rc=$?
is "$rc" 0 "MOS_VCLUSTER_NAME=$B up --nodes 3, at the same time"
[ "$rc" = 0 ] || diag "$out"
vc up --name "$A" --nodes 2 --no-mosd >/dev/null 2>&1
[ $? -ne 0 ]
ok $? "a second up of the same instance fails"
is "$(awk '{ print $1 }' "$RA/nodes" | tr '\n' ' ')/$(awk '{ print $1 }' "$RB/nodes" | tr '\n' ' ')" \
	"node0 node1 /node0 node1 node2 " "each instance lists its own nodes"
is "$(ip netns list | awk -v p="^mosvc$A-" '$1 ~ p { print $1 }' | LC_ALL=C sort | tr '\n' ' ')" \
	"mosvc$A-node0 mosvc$A-node1 " "netns mosvc$A-nodeI"
is "$(ip -o link show | awk -F': ' '{ sub(/@.*/, "", $2); print $2 }' |
	grep -E "^mosvc(${A}0|$A-v[0-9]+)\$" | LC_ALL=C sort | tr '\n' ' ')" \
	"mosvc$A-v0 mosvc$A-v1 mosvc${A}0 " "bridge mosvc${A}0 and veths mosvc$A-vI"
is "$(ip -o link show master "mosvc${B}0" | grep -c "mosvc$B-v")" 3 "the veths of $B are on $B's bridge"
is "$(quota_of node1 "mosvc-$A") $(quota_of node2 "mosvc-$B")" "50000 50000" "cgroups mosvc-NAME/nodeI"
is "$(awk '$1 == "state_dir:" || $1 == "key_file:" { print $2 }' "$RA/cluster.yaml" | tr '\n' ' ')" \
	"$RA/cluster.key /var/lib/mosexec/vcluster-$A/state " "key and state_dir are the instance's"
if command -v mosctl >/dev/null; then
	mosctl check-config "$RB/cluster.yaml" >/dev/null 2>&1
	ok $? "$B's cluster.yaml passes check-config"
else
	skip "mosctl not built"
fi
is "$(vc exec --name "$A" node1 -- hostname) $(vc exec --name "$B" node2 -- hostname)" "node1 node2" \
	"exec --name reaches that instance's nodes"
is "$(vc exec node1 --name "$A" -- ip -4 -o addr show dev eth0 | awk '{ print $4 }')" "10.77.0.11/16" \
	"--name after the node; same addresses in every instance"
like "$(vc exec --name "$A" node1 -- cat /proc/self/cgroup)" "mosvc-$A/node1" "exec runs in the instance's cgroup"
vc exec --name "$A" node2 -- true 2>/dev/null
is "$?" 2 "$A has no node2"
like "$(vc --name "$B" status)" "node2 +10\.77\.0\.12" "--name before the command; status shows $B"
[ -z "$(vc status --name "$A" | grep node2)" ]
ok $? "status --name $A does not show $B's nodes"
vc exec --name "$A" node0 -- sh -c 'echo a >/tmp/mosvc-probe-a'
vc exec --name "$A" node0 -- test -e /tmp/mosvc-probe-a && ! vc exec --name "$B" node0 -- test -e /tmp/mosvc-probe-a
ok $? "node0 of $A and node0 of $B have their own /tmp"
is "$(ip -4 -o addr show | grep -c ' 10\.77\.')/$(ip -4 route show table all | grep -c '10\.77\.')" "0/0" \
	"the host neither addresses nor routes 10.77/16"
if command -v ping >/dev/null; then
	! vc exec --name "$A" node0 -- ping -c1 -W1 10.77.0.12 >/dev/null 2>&1
	ok $? "isolated: $A's node0 cannot reach 10.77.0.12 ($B's node2)"
	vc exec --name "$B" node0 -- ping -c1 -W1 10.77.0.12 >/dev/null
	ok $? "$B's node0 pings its node2"
else
	skip "ping not installed (iputils-ping)"
	skip "ping not installed (iputils-ping)"
fi
if [ ${#MOSD_OPT[@]} -eq 0 ]; then
	good=0
	for c in "$A 0" "$A 1" "$B 2"; do
		set -- $c
		pid=$(cat "$RUN-$1/node$2/mosd.pid" 2>/dev/null)
		[ -n "$pid" ] && kill -0 "$pid" &&
			[ "$(readlink "/proc/$pid/ns/net")" = "net:[$(stat -L -c %i "/run/netns/mosvc$1-node$2")]" ] &&
			grep -q "mosvc-$1/node$2\$" "/proc/$pid/cgroup" ||
			{ good=1; diag "$1 node$2: mosd pid '$pid'" "$(tail -n 5 "$RUN-$1/node$2/mosd.log")"; }
	done
	ok $good "a mosd runs in each node's netns and cgroup, in both instances"
	like "$(vc exec --name "$B" node2 -- ss -ltn)" "10\.77\.0\.12:7077" "$B's node2 mosd listens on its address"
else
	skip "no mosd"
	skip "no mosd"
fi

vc down --name "$A" >/dev/null
is "$?.$(leftovers_of "$A")" "0." "down --name $A leaves nothing of $A"
vc status --name "$B" >/dev/null
is "$?" 0 "and $B is intact"
if command -v ping >/dev/null; then
	vc exec --name "$B" node0 -- ping -c1 -W1 10.77.0.12 >/dev/null
	ok $? "$B's nodes still talk"
else
	skip "ping not installed (iputils-ping)"
fi

# --- the default cluster next to named ones, and down --all -----------------------
# Only when nobody else's cluster is up: down --all would take it down.
others() { vc list | grep -vx -e "$A" -e "$B"; }
if [ -n "$DEFAULT_FREE" ] && [ -z "$(leftovers)" ] && [ -z "$(others)" ]; then
	vc up --nodes 2 --no-mosd >/dev/null && vc down >/dev/null
	ok $? "default up and down while $B is up"
	vc status --name "$B" >/dev/null
	is "$?.$(leftovers)" "0." "down without a name removes the default cluster only"
	vc up --nodes 1 --no-mosd >/dev/null && vc up --name "$A" --nodes 1 --no-mosd >/dev/null
	ok $? "default and $A up again"
	is "$(vc list | tr '\n' ' ')" "- $A $B " "list: the default and both named instances"
	vc down --all >/dev/null
	is "$?" 0 "down --all"
	is "$(leftovers)$(leftovers_of "$A")$(leftovers_of "$B")" "" "down --all leaves nothing of any instance"
	is "$(vc list)" "" "list: nothing"
else
	[ -z "$(others)" ] || diag "other clusters are up: $(others | sed 's/^-$/(default)/' | tr '\n' ' ')"
	skip_n 6 "another cluster is up: not testing down --all"
	vc down --name "$B" >/dev/null
	is "$?.$(leftovers_of "$B")" "0." "down --name $B leaves nothing of $B"
fi
