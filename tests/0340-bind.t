#!/bin/bash
# --bind-to core|none and --report-bindings on a 2-node virtual cluster: each
# bound process gets exactly one core of its node (the one the node's bound
# processes use least: local rank i -> core i mod cores on an idle node, and
# a second job does not share the first one's cores), unbound ones keep every cpu, too many processes for the cores fail
# cleanly unless --oversubscribe, and a bound process moved by CRIU is bound
# again on its new node.
source "${TOP_SRCDIR:-$(dirname "$0")/..}/tests/lib.sh"
need_root
vc_up --nodes 2 --cpus 2 || exit 1

# The machine's cores as the kernel lists their cpus (each node sees them all).
cores=$(cat /sys/devices/system/cpu/cpu[0-9]*/topology/core_cpus_list 2>/dev/null | sort -u)
[ -n "$cores" ] || cores=$(cat /sys/devices/system/cpu/cpu[0-9]*/topology/thread_siblings_list | sort -u)
ncores=$(printf '%s\n' "$cores" | wc -l)
all=$(vx node0 sh -c 'grep Cpus_allowed_list /proc/self/status' | awk '{print $2}')
diag "cores: $(echo $cores) ($ncores); a node's processes may use cpus $all"
show='echo "$MOSEXEC_RANK $(hostname) $(grep Cpus_allowed_list /proc/self/status | cut -f2)"'
is_core() { printf '%s\n' "$cores" | grep -qxF -- "$1"; }

# Two ranks per node, bound: each gets one core, distinct on a node.
n=$((ncores < 2 ? 1 : 2))
vx node0 mosexec --bind-to core --report-bindings --host node0:$n,node1:$n -n $((2 * n)) sh -c "$show" \
	>"$T_TMP/core.out" 2>"$T_TMP/core.err"
ok $? "--bind-to core: $((2 * n)) processes exit 0"
bad=0
while read -r rank node list; do
	is_core "$list" || { diag "rank $rank on $node has cpus '$list'"; bad=1; }
	grep -qxF "[$node] rank $rank bound to core $(awk -v r="$rank" '$3 == r { print $7 }' "$T_TMP/core.err") (cpus $list)" \
		"$T_TMP/core.err" || { diag "no matching report for rank $rank: $(cat "$T_TMP/core.err")"; bad=1; }
done <"$T_TMP/core.out"
is "$(wc -l <"$T_TMP/core.out")" $((2 * n)) "every rank printed its cpus"
ok $bad "each rank's Cpus_allowed_list is exactly one core, and --report-bindings says the same"
is "$(grep -c ' bound to core ' "$T_TMP/core.err")" $((2 * n)) "--report-bindings: one line per rank on stderr"
if [ "$ncores" -ge 2 ]; then
	is "$(awk '{print $2, $3}' "$T_TMP/core.out" | sort -u | wc -l)" 4 "local ranks of a node have distinct cores"
	is "$(awk '$2 == "node0" {print $3}' "$T_TMP/core.out" | sort | tr '\n' ' ')" \
		"$(printf '%s\n' "$cores" | head -n 2 | sort | tr '\n' ' ')" "local ranks 0 and 1 get the node's cores 0 and 1"
else
	skip "one core only: no distinct cores to check"
	skip "one core only"
fi

# none, and the default: the affinity is left alone.
out=$(vx node0 mosexec --bind-to none --report-bindings --host node0:2 -n 2 sh -c "$show" 2>"$T_TMP/none.err")
ok $? "--bind-to none: exit 0"
is "$(printf '%s\n' "$out" | awk '{print $3}' | sort -u)" "$all" "--bind-to none: every cpu of the node"
is "$(grep -c "not bound (cpus $all)" "$T_TMP/none.err")" 2 "--report-bindings says 'not bound' for each rank"
out=$(vx node0 mosexec -n 2 sh -c "$show" 2>"$T_TMP/def.err")
is "$(printf '%s\n' "$out" | awk '{print $3}' | sort -u)" "$all" "default: every cpu of the node"
is "$(cat "$T_TMP/def.err")" "" "no binding report without --report-bindings"

# More processes than cores on a node: refused, naming the node; nothing stays.
# node0's rank starts (it fits), node1's three do not: the whole job ends.
start=$SECONDS
vx node0 mosexec --bind-to core --host node0:1,node1:$((ncores + 1)) -n $((ncores + 2)) sleep 60 \
	>"$T_TMP/over.out" 2>"$T_TMP/over.err"
rc=$?
ok $((rc == 0)) "too many processes for node1's cores: mosexec fails (exit $rc)"
like "$(cat "$T_TMP/over.err")" "$((ncores + 1)) processes of the job on node1, which has $ncores cores \(--oversubscribe" \
	"the message names the node, the counts and --oversubscribe"
ok $((SECONDS - start > 20)) "it fails at once, without waiting for the rank that started"
wait_for 10 sh -c "[ -z \"\$(mosctl vcluster exec node0 -- mosps --no-header)\" ]"
ok $? "nothing is left running"
vx node0 mosexec --bind-to core --host node0:$((ncores + 1)) -n $((ncores + 1)) true 2>"$T_TMP/over2.err"
ok $((! $?)) "the same on the home node itself"
like "$(cat "$T_TMP/over2.err")" "on node0, which has $ncores cores" "the home node is named"

# --oversubscribe: they wrap around the cores like mpirun's overload-allowed.
vx node0 mosexec --bind-to core --oversubscribe --host node0:$((ncores + 1)) -n $((ncores + 1)) sh -c "$show" \
	>"$T_TMP/wrap.out" 2>"$T_TMP/wrap.err"
ok $? "--oversubscribe: $((ncores + 1)) bound processes on node0 run"
is "$(awk -v n=$ncores '$1 == n {print $3}' "$T_TMP/wrap.out")" "$(awk '$1 == 0 {print $3}' "$T_TMP/wrap.out")" \
	"local rank $ncores wraps around to core 0"
bad=0
while read -r rank node list; do is_core "$list" || bad=1; done <"$T_TMP/wrap.out"
ok $bad "each still has exactly one core"

# Two bound jobs on one node: the second does not start on the first one's
# core (mosd counts the bound processes of every job on the node).
if [ "$ncores" -ge 2 ]; then
	vx node0 mosexec --bind-to core --host node0 -n 1 sh -c "$show; exec sleep 30" >"$T_TMP/j1.out" 2>&1 &
	j1=$!
	at_exit "kill $j1 2>/dev/null"
	wait_for 10 grep -q . "$T_TMP/j1.out"
	out=$(vx node0 mosexec --bind-to core --host node0 -n 1 sh -c "$show")
	first=$(awk '{print $3}' "$T_TMP/j1.out")
	is_core "$first" && is_core "$(echo "$out" | awk '{print $3}')" && [ "$(echo "$out" | awk '{print $3}')" != "$first" ]
	ok $? "a second bound job gets another core (cpus $(echo "$out" | awk '{print $3}'); the first job has $first)"
	vx node0 mosctl kill "$(job_of sleep)" >/dev/null 2>&1
	wait $j1 2>/dev/null
else
	skip "one core only: two jobs must share it"
fi

# A bound rank that migrates is bound again on its new node (CRIU restores it
# with every cpu allowed): to the core its job's ranks there use least.
CRIU_BIN=${MOS_CRIU:-/usr/local/sbin/criu}
[ -x "$CRIU_BIN" ] || CRIU_BIN=$(command -v criu)
if [ -n "$CRIU_BIN" ] && "$CRIU_BIN" check >/dev/null 2>&1 && [ "$ncores" -ge 2 ]; then
	cat >"$T_TMP/loop.sh" <<'S'
#!/bin/bash
while :; do echo "$MOSEXEC_RANK $(hostname) $(grep Cpus_allowed_list /proc/self/status | cut -f2)"; sleep 0.2; done
S
	chmod 755 "$T_TMP" "$T_TMP/loop.sh"
	vx node0 mosexec --bind-to core --host node0:2 -n 2 "$T_TMP/loop.sh" >"$T_TMP/mig.out" 2>"$T_TMP/mig.err" &
	at_exit "kill $! 2>/dev/null"
	wait_for 10 sh -c "grep -q '^1 node0' '$T_TMP/mig.out' && grep -q '^0 node0' '$T_TMP/mig.out'"
	job=$(job_of loop.sh)
	last() { grep "^$1 $2 " "$T_TMP/mig.out" | tail -n 1 | awk '{print $3}'; }
	c1=$(last 1 node0)
	like "$c1" '^[0-9]' "rank 1 starts bound on node0 (cpus $c1)"
	moved() { # moved RANK NODE: wait for 3 lines from RANK on NODE
		local before
		before=$(grep -c "^$1 $2 " "$T_TMP/mig.out")
		wait_for 10 sh -c "[ \$(grep -c '^$1 $2 ' '$T_TMP/mig.out') -gt $((before + 2)) ]"
	}
	vx node0 mosmigrate --force "$job.1" node1 >/dev/null && moved 1 node1
	ok $? "rank 1 moves to node1 and keeps running"
	got=$(last 1 node1)
	is_core "$got"
	ok $? "on node1 it is bound to one core again (cpus $got)"
	vx node0 mosmigrate --force "$job.0" node1 >/dev/null && moved 0 node1
	ok $? "rank 0 moves to node1 too"
	got0=$(last 0 node1)
	is_core "$got0" && [ "$got0" != "$(last 1 node1)" ]
	ok $? "it gets the other core there (cpus $got0, rank 1 has $(last 1 node1))"
	vx node0 mosmigrate --force "$job.1" node0 >/dev/null && moved 1 node0
	is_core "$(last 1 node0)"
	ok $? "back home on node0, rank 1 is bound to one core (cpus $(last 1 node0))"
	vx node0 mosctl kill "$job" >/dev/null 2>&1
	wait_for 10 sh -c "[ -z \"\$(mosctl vcluster exec node0 -- mosps --no-header)\" ]"
	ok $? "the job ends and nothing is left"
else
	skip "no working criu: a moved bound rank is not tested"
fi

# Bad values.
vx node0 mosexec --bind-to foo -n 1 true 2>"$T_TMP/foo.err"
is $? 2 "--bind-to foo: exit 2"
like "$(cat "$T_TMP/foo.err")" "--bind-to: 'foo' is not supported \(core, none\)" "--bind-to foo: a clear message"
vx node0 mosexec --bind-to 2>"$T_TMP/noval.err"
like "$(cat "$T_TMP/noval.err")" "option --bind-to needs a value" "--bind-to without a value: a clear message"
like "$(vx node0 mosexec --help)" "--report-bindings" "--help lists --report-bindings"

done_testing
