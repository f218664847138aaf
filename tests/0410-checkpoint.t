#!/bin/bash
# Checkpoints: `mosctl checkpoint JOB DIR` writes a restartable checkpoint of
# a running job to a full node's disk while it keeps running; `mosexec
# --restart DIR` resumes it from that point. Bad requests are refused.
source "${TOP_SRCDIR:-$(dirname "$0")/..}/tests/lib.sh"
need_root
CRIU_BIN=${MOS_CRIU:-/usr/local/sbin/criu}
[ -x "$CRIU_BIN" ] || skip_all "no criu (scripts/setup.sh builds CRIU 4.2.1)"
vc_up --nodes 3 --diskless 1 --cpus 2 --memory 80M || exit 1
cat >"$T_TMP/count.sh" <<'S'
#!/bin/sh
i=0
while [ $i -lt 40 ]; do echo "rank $MOSEXEC_RANK count $i"; i=$((i + 1)); sleep 0.1; done
exit 5
S
chmod 755 "$T_TMP" "$T_TMP/count.sh"

mosctl vcluster exec node0 -- mosexec -n 3 "$T_TMP/count.sh" >"$T_TMP/out" 2>&1 &
mpid=$!
wait_for 10 grep -q "count 8" "$T_TMP/out"
job=$(job_of count.sh)
msg=$(vx node0 mosctl checkpoint "$job" /var/tmp/ck-test)
ok $? "checkpoint of a running 3-rank job: $msg"
at_exit "mosctl vcluster exec node0 -- rm -rf /var/tmp/ck-test"
is "$(vx node0 stat -c '%U %a' /var/tmp/ck-test)" "root 700" "the checkpoint directory is root's, mode 700"
is "$(vx node0 sh -c 'ls -d /var/tmp/ck-test/rank.* | wc -l')" 3 "it holds the images of the 3 ranks"
before=$(grep -c count "$T_TMP/out")
wait_for 10 sh -c "[ \$(grep -c count '$T_TMP/out') -gt $((before + 3)) ]"
ok $? "the job goes on running after the checkpoint"
vx node0 mosctl kill "$job"
wait $mpid

# The restart resumes every rank from where the checkpoint caught it.
vx node0 mosexec --restart /var/tmp/ck-test >"$T_TMP/out2" 2>"$T_TMP/err2"
is $? 5 "the restarted job runs to its end and its exit status comes home (5)"
is "$(grep -c 'count 39' "$T_TMP/out2")" 3 "every rank counted to the end"
first=$(grep -o 'rank 0 count [0-9]*' "$T_TMP/out2" | head -1 | awk '{print $4}')
ok $(( first > 3 ? 0 : 1 )) "rank 0 resumed from its checkpoint (first count after restart: $first), not from 0"
is "$(grep -c 'rank 1 count' "$T_TMP/out2")" "$(( 40 - $(grep -o 'rank 1 count [0-9]*' "$T_TMP/out2" | head -1 | awk '{print $4}') ))" "no count of rank 1 lost or repeated after the restart"

# A job bound with --bind-to core is bound again when it restarts (CRIU
# brings processes back with every cpu allowed).
cat >"$T_TMP/bcount.sh" <<'S'
#!/bin/sh
i=0
while [ $i -lt 30 ]; do echo "count $i cpus $(grep Cpus_allowed_list /proc/self/status | cut -f2)"; i=$((i + 1)); sleep 0.1; done
S
chmod 755 "$T_TMP/bcount.sh"
all=$(vx node0 sh -c 'grep Cpus_allowed_list /proc/self/status' | awk '{print $2}')
mosctl vcluster exec node0 -- mosexec --bind-to core --host node0 -n 1 "$T_TMP/bcount.sh" >"$T_TMP/b.out" 2>&1 &
bpid=$!
wait_for 10 grep -q "count 3 " "$T_TMP/b.out"
bjob=$(job_of bcount.sh)
vx node0 mosctl checkpoint "$bjob" /var/tmp/ck-bind >/dev/null
ok $? "checkpoint of a bound job"
at_exit "mosctl vcluster exec node0 -- rm -rf /var/tmp/ck-bind"
vx node0 mosctl kill "$bjob" >/dev/null 2>&1
wait $bpid 2>/dev/null
bound=$(awk 'NR == 1 {print $4}' "$T_TMP/b.out")
vx node0 mosexec --restart /var/tmp/ck-bind >"$T_TMP/b2.out" 2>&1
# a line or two may be printed before the new node binds it
after=$(awk '{print $4}' "$T_TMP/b2.out" | tail -n 5 | sort -u)
ok $(( $(grep -c 'count 29 ' "$T_TMP/b2.out") == 1 ? 0 : 1 )) "the restarted bound job runs to its end"
if [ "$bound" != "$all" ]; then
	is "$after" "$bound" "after the restart it is bound to one core again (cpus $after; all: $all)"
else
	skip "one cpu only: bound and unbound look the same"
fi

# Bad requests.
vx node0 mosctl checkpoint 99999 /var/tmp/x 2>"$T_TMP/e"
like "$(cat "$T_TMP/e")" "no such job" "an unknown job: refused"
vx node0 mosctl checkpoint "$job" relative/dir 2>"$T_TMP/e"
is $? 2 "a relative directory: usage error"
vx node0 mosexec --restart /nonexistent 2>"$T_TMP/e"
like "$(cat "$T_TMP/e")" "/nonexistent/job.meta: not a checkpoint" "restart from a directory that is not a checkpoint: refused"
vx node0 sh -c 'mkdir -p /var/tmp/fake && echo garbage > /var/tmp/fake/job.meta'
vx node0 mosexec --restart /var/tmp/fake 2>"$T_TMP/e"
like "$(cat "$T_TMP/e")" "damaged" "a damaged manifest: refused with a reason"
# A node without the memory for a process refuses it.
cc -O2 -o "$T_TMP/mig_load" "$TOP_SRCDIR/bench/mig_load.c" && chmod 755 "$T_TMP/mig_load"
mosctl vcluster exec node0 -- mosexec -n 1 "$T_TMP/mig_load" 100 3000 >"$T_TMP/big.out" 2>&1 &
bpid=$!
wait_for 20 grep -q "tick 3 " "$T_TMP/big.out"
bjob=$(job_of mig_load)
vx node0 mosmigrate --force "$bjob.0" node1 2>"$T_TMP/e"
like "$(cat "$T_TMP/e")" "node1 has [0-9.]+ MiB of memory free, the process needs 10[0-9.]+ MiB" "a node without enough memory: refused"
is "$(where_of "$bjob" 0)" node0 "the process stays where it was"
vx node0 mosctl kill "$bjob"
wait $bpid 2>/dev/null

# A checkpoint goes out a few MiB at a time: the daemon of the rank's node
# never holds the images in its own memory (it held all of them before).
mosctl vcluster exec node0 -- mosexec -n 1 --host node1 "$T_TMP/mig_load" 60 3000 >"$T_TMP/c60.out" 2>&1 &
cpid=$!
wait_for 20 grep -q "tick 3 " "$T_TMP/c60.out"
cjob=$(job_of mig_load)
is "$(where_of "$cjob" 0)" node1 "a 60 MiB process runs on node1"
msg=$(vx node0 mosctl checkpoint "$cjob" /var/tmp/ck-big)
ok $? "its checkpoint: $msg"
at_exit "mosctl vcluster exec node0 -- rm -rf /var/tmp/ck-big"
hwm=$(awk '/VmHWM/ {print int($2 / 1024)}' /proc/"$(cat "$(mosctl vcluster path)/node1/mosd.pid")"/status)
ok $(( hwm < 40 ? 0 : 1 )) "node1's mosd peaked at $hwm MiB while it sent 60 MiB of images to node0 (< 40)"
vx node0 mosctl kill "$cjob" >/dev/null
wait $cpid 2>/dev/null

useradd -M mosck1 2>/dev/null; at_exit "userdel mosck1"
vxu mosck1 node0 mosexec --restart /var/tmp/ck-test 2>"$T_TMP/e"
like "$(cat "$T_TMP/e")" "permission denied|not a checkpoint" "another user cannot restart root's checkpoint"
done_testing
