#!/bin/bash
# Scheduler integration through PMIx: a PMIx tool (the C example of
# doc/pmix-scheduler.md, and mosctl) asks any node's mosd for the jobs, where
# each process runs now and the nodes' loads, and pauses, resumes, signals,
# terminates, kills and checkpoints serial and MPI jobs (a checkpoint made
# through PMIx restarts with mosexec --restart). Another user's tool may not
# control a job, not even by lying about its uid; what is not there answers
# NOT-SUPPORTED.
source "${TOP_SRCDIR:-$(dirname "$0")/..}/tests/lib.sh"
need_root
MPICC=${MPICC:-mpicc}
command -v "$MPICC" >/dev/null || skip_all "no mpicc (Debian package libopenmpi-dev)"
pkg-config --exists pmix || skip_all "no PMIx development files (libpmix-dev)"
"$MPICC" -O2 -o "$T_TMP/spin" "$TOP_SRCDIR/tests/mpi/spin.c" || { echo "Bail out! cannot build spin"; exit 1; }
sed -n '/^```c$/,/^```$/p' "$TOP_SRCDIR/doc/pmix-scheduler.md" | sed '1d;$d' >"$T_TMP/sched.c"
# shellcheck disable=SC2046
${CC:-cc} -Wall -o "$T_TMP/sched" "$T_TMP/sched.c" $(pkg-config --cflags --libs pmix) ||
	{ echo "Bail out! the example of doc/pmix-scheduler.md does not build"; exit 1; }
printf '#include <sys/types.h>\nuid_t geteuid(void) { return 0; }\nuid_t getuid(void) { return 0; }\n' >"$T_TMP/liar.c"
${CC:-cc} -shared -fPIC -o "$T_TMP/liar.so" "$T_TMP/liar.c" || { echo "Bail out! cannot build liar.so"; exit 1; }
U=mospmixt
userdel "$U" >/dev/null 2>&1
useradd -M -s /bin/sh "$U" || skip_all "useradd failed"
at_exit "userdel $U"
chmod 755 "$T_TMP" "$T_TMP"/*
vc_up --nodes 3 --cpus 2 --cpu-quota 0.4 || exit 1
at_exit "pkill -KILL -f '^$T_TMP/spin'"

count() { grep -c "$1" "$2" 2>/dev/null; }
# grows FILE PATTERN: its count of PATTERN grows within 5 s
grows() { local c; c=$(count "$2" "$1"); wait_for 5 sh -c "[ \$(grep -c '$2' '$1') -gt $c ]"; }
# still FILE PATTERN: its count of PATTERN stays the same for 1.5 s
still() { local c; c=$(count "$2" "$1"); sleep 1.5; [ "$(count "$2" "$1")" = "$c" ]; }
# ends PID: wait (at most 20 s) for background PID to end; RC = its status
ended() { local s; s=$(sed 's/.*) //' "/proc/$1/stat" 2>/dev/null | cut -d' ' -f1); [ -z "$s" ] || [ "$s" = Z ]; }
ends() { if wait_for 20 ended "$1"; then wait "$1"; RC=$?; else kill -KILL "$1"; wait "$1"; RC=hung; fi; }
uri() { vx "$1" sh -c "head -1 /dev/shm/mosexec-$1/pmix/pmix.$1.tool.[0-9]*"; }

vx node0 mosexec -n 3 "$T_TMP/spin" >"$T_TMP/mpi.out" 2>"$T_TMP/mpi.err" &
mpid=$!
vx node0 mosexec -n 1 --host node1 sh -c 'trap "echo got USR1" USR1; i=0; while :; do i=$((i + 1)); echo "tick $i"; sleep 0.2; done' >"$T_TMP/ser.out" 2>"$T_TMP/ser.err" &
spid=$!
wait_for 30 grep -q "iter 3 sum 3" "$T_TMP/mpi.out"
ok $? "an MPI job runs"
wait_for 10 grep -q "tick 3" "$T_TMP/ser.out"
ok $? "a serial job runs"
mjob=$(job_of spin)
sjob=$(job_of tick)

# --- queries --------------------------------------------------------------
# a node's load is known once gossip brought it (nodes not heard of are left out)
wait_for 15 sh -c "[ \$(mosctl vcluster exec node2 -- mosctl loads | grep -c '^node[0-2] ') = 3 ]"
ok $? "mosctl loads lists every node's load"
out=$(vx node2 "$T_TMP/sched" "$(uri node2)" "$mjob" 2>&1)
like "$out" "jobs: .*mosexec\.$mjob" "PMIX_QUERY_NAMESPACES lists the MPI job"
like "$out" "jobs: .*mosexec\.$sjob" "and the serial job"
want=""
for r in 0 1 2; do want+="rank $r on $(where_of "$mjob" $r) "; done
is "$(printf '%s\n' "$out" | grep '^rank' | awk '{printf "%s %s %s %s ", $1, $2, $3, $4}')" "$want" \
	"PMIX_QUERY_PROC_TABLE: every rank with the node it runs on"
is "$(printf '%s\n' "$out" | grep -c '^node node[0-2] load [0-9.]*$')" 3 "mosexec.node.loads: every node's load"
out=$(vx node2 mosctl ps 2>"$T_TMP/err")
ok $? "mosctl ps works through PMIx from a node without jobs"
is "$(cat "$T_TMP/err")" "" "without falling back to mosd's socket"
is "$(printf '%s\n' "$out" | awk -v j="$sjob" '$1 == j { print $2 " " $5 " " $7 }')" "0 node1 run" \
	"it shows the serial job's rank on node1"
vx node0 mosmigrate "$sjob.0" node2 >/dev/null 2>&1
ok $? "mosmigrate moves the serial rank to node2"
is "$(vx node1 mosctl ps "$sjob" | awk -v j="$sjob" '$1 == j { print $5 " " $10 }')" "node2 1" \
	"the proc table shows its new node and one migration"
like "$(vx node1 "$T_TMP/sched" "$(uri node1)" "$sjob")" "rank 0 on node2 " \
	"so does PMIX_QUERY_PROC_TABLE"

# --- pause, resume, signal -------------------------------------------------
vx node1 mosctl pause "$mjob"
ok $? "mosctl pause of the MPI job (from a node that is not its home)"
still "$T_TMP/mpi.out" "^iter"
ok $? "its output stops"
is "$(vx node0 mosctl ps "$mjob" | awk 'NR > 1 { print $7 }' | sort -u)" stop "every rank shows as stopped"
vx node0 mosctl resume "$mjob"
ok $? "mosctl resume"
grows "$T_TMP/mpi.out" "^iter"
ok $? "its output continues"
vx node2 "$T_TMP/sched" "$(uri node2)" "$sjob" 3 "$T_TMP/ck" >"$T_TMP/sched.out" 2>&1 &
schedpid=$!
wait_for 10 grep -q "pause: SUCCESS" "$T_TMP/sched.out"
ok $? "the example pauses the serial job through PMIx_Job_control"
still "$T_TMP/ser.out" "^tick"
ok $? "its output stops"
wait_for 10 grep -q "resume: SUCCESS" "$T_TMP/sched.out"
ok $? "the example resumes it"
grows "$T_TMP/ser.out" "^tick"
ok $? "its output continues"
ends $schedpid
like "$(cat "$T_TMP/sched.out")" "checkpoint: SUCCESS" "the example checkpoints it (PMIX_JOB_CTRL_CHECKPOINT)"
like "$(cat "$T_TMP/sched.out")" "checkpoint of job $sjob: $T_TMP/ck on node0 " "and is told where it went"
ok "$(test -s "$T_TMP/ck/job.meta" && test -d "$T_TMP/ck/rank.0"; echo $?)" \
	"into the directory mosexec.ckpt.dir: a manifest and the rank's images"
grows "$T_TMP/ser.out" "^tick"
ok $? "the job goes on running"
last=$(grep -o '^tick [0-9]*' "$T_TMP/ser.out" | tail -1 | cut -d' ' -f2)
like "$(vx node2 "$T_TMP/sched" "$(uri node2)" "$mjob" 0 2>&1)" "checkpoint: NOT-SUPPORTED" \
	"a job with MPI ranks cannot be checkpointed yet: NOT-SUPPORTED"
vx node2 mosctl signal "$mjob" USR1
ok $? "mosctl signal USR1"
wait_for 10 sh -c "[ \$(grep -c '^rank [0-2] got USR1' '$T_TMP/mpi.out') = 3 ]"
ok $? "USR1 reaches every MPI rank"
vx node0 mosctl signal "$sjob.0" USR1
wait_for 10 grep -q "got USR1" "$T_TMP/ser.out"
ok $? "and the serial rank (JOB.RANK)"

# --- who may ----------------------------------------------------------------
vxu "$U" node0 mosctl pause "$mjob" 2>"$T_TMP/err"
is $? 1 "another user's tool may not pause the job"
like "$(cat "$T_TMP/err")" "permission denied" "and is told why"
like "$(vxu "$U" node2 "$T_TMP/sched" "$(uri node2)" "$sjob" 0 "$T_TMP/ck2" 2>&1)" "checkpoint: NO-PERM" \
	"nor checkpoint it through PMIx"
ok "$(test ! -e "$T_TMP/ck2"; echo $?)" "and nothing is written"
vxu "$U" node1 env LD_PRELOAD="$T_TMP/liar.so" mosctl kill "$sjob" 2>"$T_TMP/err"
is $? 1 "nor kill it by claiming to be root (the kernel says who holds the connection)"
grows "$T_TMP/mpi.out" "^iter"
ok $? "the MPI job still runs"
grows "$T_TMP/ser.out" "^tick"
ok $? "and the serial job"
vxu "$U" node0 mosexec -n 2 sleep 60 >/dev/null 2>&1 &
upid=$!
wait_for 10 sh -c "mosctl vcluster exec node0 -- mosps --no-header | grep -q 'sleep 60'"
vxu "$U" node2 mosctl kill "$(job_of 'sleep 60')"
ok $? "a user's tool may kill the user's own job"
ends $upid
is $RC 137 "which ends with 137"
vx node0 mosctl kill 99999 2>"$T_TMP/err"
like "$(cat "$T_TMP/err")" "no such job" "a job that does not exist: no such job"

# --- ending jobs --------------------------------------------------------------
vx node2 mosctl kill "$mjob"
ok $? "mosctl kill of the MPI job"
ends $mpid
is $RC 137 "mosexec exits 137"
vx node0 mosctl terminate "$sjob"
ends $spid
is $RC 143 "mosctl terminate ends the serial job with SIGTERM: 143"
# its checkpoint asks for node1 (--host): free once node0 hears node1 is idle
wait_for 15 sh -c "mosctl vcluster exec node0 -- mosctl loads | awk '\$1 == \"node1\" && \$2 < 0.5 { f = 1 } END { exit !f }'"
vx node0 mosexec --restart "$T_TMP/ck" >"$T_TMP/rst.out" 2>"$T_TMP/rst.err" &
rpid=$!
wait_for 15 grep -q "^tick" "$T_TMP/rst.out"
ok $? "mosexec --restart of the checkpoint taken through PMIx runs the job again"
[ -s "$T_TMP/rst.err" ] && diag "$(cat "$T_TMP/rst.err")"
first=$(grep -o '^tick [0-9]*' "$T_TMP/rst.out" | head -1 | cut -d' ' -f2)
ok $(( ${first:-0} > 3 && ${first:-0} <= last + 1 ? 0 : 1 )) "from where the checkpoint caught it (tick $first, not 1)"
# (it shows as plain 'sh': a restored process's command line is not known)
vx node2 mosctl kill "$(vx node0 mosps --no-header | awk '$NF == "sh" { print $1; exit }')"
ends $rpid
is $RC 137 "the restarted job is a job like any other (mosctl kill: 137)"
vx node0 mosexec -n 2 sh -c 'trap "" TERM; while :; do sleep 0.2; done' >/dev/null 2>&1 &
tpid=$!
wait_for 10 sh -c "mosctl vcluster exec node0 -- mosps --no-header | grep -q 'trap \"\" TERM'"
start=$SECONDS
vx node0 mosctl terminate "$(job_of 'trap "" TERM')"
ends $tpid
is $RC 137 "a job that ignores SIGTERM gets SIGKILL after the grace time"
ok $((SECONDS - start < 4 || SECONDS - start > 12)) "after the grace time of 5 s ($((SECONDS - start)) s)"
wait_for 10 sh -c "! pgrep -f '^$T_TMP/spin' >/dev/null"
ok $? "no MPI process is left on any node"
is "$(vx node0 mosctl ps | wc -l)" 1 "the process table is empty"
done_testing
