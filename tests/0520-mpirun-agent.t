#!/bin/bash
# Open MPI's own mpirun starting its orted daemons through the cluster's node
# daemons: mosrsh as its remote launch agent (--mca plm_rsh_agent mosrsh) on a
# 3-node virtual cluster. The agent behaves like rsh (command, stdio, exit
# status, killed with its caller); mpirun's job runs on all three nodes with
# correct results, an MPI_Abort job ends with its status, and no orted, rank
# or agent stays behind on any node.
source "${TOP_SRCDIR:-$(dirname "$0")/..}/tests/lib.sh"
need_root
MPICC=${MPICC:-mpicc}
command -v "$MPICC" >/dev/null || skip_all "no mpicc (Debian package libopenmpi-dev)"
command -v mpirun >/dev/null && command -v orted >/dev/null || skip_all "no mpirun/orted (Debian package openmpi-bin)"
command -v mosrsh >/dev/null || skip_all "mosrsh is not on PATH (build it first)"
for p in hello_allreduce abort no_init; do
	"$MPICC" -O2 -o "$T_TMP/$p" "$TOP_SRCDIR/tests/mpi/$p.c" || { echo "Bail out! cannot build $p"; exit 1; }
done
cp "$(command -v sleep)" "$T_TMP/nap"
chmod 755 "$T_TMP" "$T_TMP"/*
vc_up --nodes 3 --cpus 2 --cpu-quota 0.5 || exit 1
NODES="node0 node1 node2"
MPIRUN=(mpirun --allow-run-as-root --oversubscribe --mca plm_rsh_agent mosrsh --host node0,node1,node2)

# left_on NODE: orted daemons, ranks of our programs and mosrsh's mosexec
# processes that run in NODE's network namespace (other clusters' are not ours).
left_on() {
	vx "$1" sh -c 'me=$(readlink /proc/self/ns/net)
		for p in $(pgrep -x orted; pgrep -f "^$0/"; pgrep -f "mosexec --host [^ ]* --oversubscribe --no-mpi -q"); do
			[ "$(readlink /proc/$p/ns/net 2>/dev/null)" = "$me" ] && echo "$p $(tr "\0" " " </proc/$p/cmdline | cut -c1-60)"
		done' "$T_TMP"
}
nothing_left() { local n; for n in $NODES; do [ -z "$(left_on "$n")" ] || return 1; done
	[ -z "$(vx node0 mosps --no-header 2>/dev/null)" ]; }
# clean_after TIMEOUT NAME: the point NAME is that nothing_left holds within TIMEOUT s.
clean_after() {
	local n rc
	wait_for "$1" nothing_left
	rc=$?
	ok $rc "$2"
	[ $rc = 0 ] && return
	for n in $NODES; do diag "$n: $(left_on "$n")"; done
	diag "mosps: $(vx node0 mosps --no-header 2>&1)"
}

# --- the agent alone, like rsh --------------------------------------------------
out=$(vx node0 mosrsh node1 'echo "on $(hostname)"; exit 3' 2>"$T_TMP/err")
rc=$?
is "$out" "on node1" "mosrsh runs the command line on the named node through its shell"
is $rc 3 "and returns its exit status"
is "$(echo hello | vx node0 mosrsh node2 cat)" "hello" "stdin reaches the remote command"
is "$(vx node0 mosrsh -n node2 cat </dev/zero | wc -c)" 0 "-n: stdin is /dev/null"
is "$(vx node0 mosrsh node1 echo '"a  b"' 'c')" "a  b c" "the words are joined and split again by the remote shell, as rsh does"
vx node0 mosrsh node2 'kill -9 $$'
is $? 137 "a remote command killed by a signal gives 128+N"
vx node0 mosrsh nodeX true >/dev/null 2>"$T_TMP/err"
rc=$?
ok $((rc == 0)) "an unknown node fails (status $rc)"
like "$(cat "$T_TMP/err")" "nodeX" "and is named"
has_nap() { left_on "$1" | grep -q "$T_TMP/nap"; }
vx node0 sh -c "echo \$\$ >$T_TMP/agent.pid; exec mosrsh node1 $T_TMP/nap 300" 2>/dev/null &
wait_for 10 has_nap node1
ok $? "a remote command runs on node1"
kill -9 "$(cat "$T_TMP/agent.pid")"
clean_after 10 "killing the agent (SIGKILL) ends the remote command"

# --- mpirun through the agent --------------------------------------------------
out=$(vx node0 timeout 120 "${MPIRUN[@]}" -np 6 "$T_TMP/hello_allreduce" 2>"$T_TMP/err")
rc=$?
is $rc 0 "mpirun -np 6 over node0..2 with mosrsh exits 0"
[ $rc = 0 ] || diag "$(tail -n 20 "$T_TMP/err")"
is "$(printf '%s\n' "$out" | grep -c '^rank [0-5] of 6 ok')" 6 "every rank checked its results"
like "$out" "ALL OK sum=15" "the Allreduce sum is right"
is "$(printf '%s\n' "$out" | grep -o 'host node[0-2]' | sort -u | tr '\n' ' ')" "host node0 host node1 host node2 " \
	"the ranks ran on all three nodes"
clean_after 10 "no orted, rank or agent is left after a normal end"

start=$SECONDS
vx node0 timeout 120 "${MPIRUN[@]}" --map-by node -np 6 "$T_TMP/abort" >"$T_TMP/out" 2>"$T_TMP/err"
is $? 7 "an MPI_Abort(7) job (the aborting rank on node1) ends mpirun with status 7"
like "$(cat "$T_TMP/err")" "MPI_ABORT was invoked on rank 1" "mpirun says who aborted"
ok $((SECONDS - start > 60)) "without waiting for a time-out ($((SECONDS - start)) s)"
clean_after 10 "no orted, rank or agent is left on any node after the abort"

# mpirun itself killed (SIGKILL) while 5 ranks wait in MPI_Init for rank 5,
# which sleeps: the orteds lose their lifeline and end with their ranks.
vx node0 sh -c "echo \$\$ >$T_TMP/mpirun.pid; exec ${MPIRUN[*]} -np 6 $T_TMP/no_init 5 300" >/dev/null 2>&1 &
two_on_node2() { [ "$(left_on node2 | grep -c "$T_TMP/no_init")" -ge 2 ]; }
wait_for 30 two_on_node2
ok $? "a hanging mpirun job has its two ranks on node2"
is "$(left_on node2 | grep -c ' orted ')" 1 "with its orted on node2"
kill -9 "$(cat "$T_TMP/mpirun.pid")"
clean_after 20 "mpirun killed with SIGKILL: no orted, rank or agent is left on any node"
done_testing
