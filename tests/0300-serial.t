#!/bin/bash
# Serial jobs on a 4-node virtual cluster (3 full, 1 diskless): placement over
# the full nodes, whole-line output, exit codes, stdin, options, bad input.
source "${TOP_SRCDIR:-$(dirname "$0")/..}/tests/lib.sh"
need_root
vc_up --nodes 4 --diskless 1 --cpus 2 || exit 1

# 16 processes print their rank and node: every line arrives, once.
out=$(vx node0 mosexec -n 16 sh -c 'echo "rank $MOSEXEC_RANK of $MOSEXEC_SIZE on $(hostname)"')
ok $? "16 serial processes exit 0"
is "$(printf '%s\n' "$out" | wc -l)" 16 "16 lines arrive"
is "$(printf '%s\n' "$out" | awk '{print $2}' | sort -n | tr '\n' ' ')" "$(seq 0 15 | tr '\n' ' ')" "each rank printed once"
like "$out" "rank 0 of 16 on node" "the size and the node name reach the processes"
is "$(printf '%s\n' "$out" | grep -c 'on node3')" 0 "no process starts on the diskless node"
is "$(printf '%s\n' "$out" | awk '{print $NF}' | sort -u | wc -l)" 3 "the processes spread over the 3 full nodes"

# Long lines from many ranks at once are never cut or interleaved.
cat >"$T_TMP/lines.sh" <<'S'
#!/bin/sh
line=$(head -c 3000 /dev/zero | tr '\0' x)
i=0
while [ $i -lt 100 ]; do echo "R$MOSEXEC_RANK $i $line"; i=$((i + 1)); done
echo "R$MOSEXEC_RANK err-line $line" >&2
S
chmod +x "$T_TMP/lines.sh"
vx node0 mosexec -n 8 "$T_TMP/lines.sh" >"$T_TMP/lines.out" 2>"$T_TMP/lines.err"
ok $? "8 ranks x 100 lines of 3 KB exit 0"
is "$(grep -cE '^R[0-7] [0-9]+ x{3000}$' "$T_TMP/lines.out")" 800 "all 800 stdout lines arrive whole"
is "$(wc -l <"$T_TMP/lines.out")" 800 "no stray or split line on stdout"
is "$(grep -cE '^R[0-7] err-line x{3000}$' "$T_TMP/lines.err")" 8 "stderr lines arrive whole on stderr"

# Exit status: the first non-zero code, or 128+signal.
vx node0 mosexec -n 4 sh -c 'exit $(( MOSEXEC_RANK == 2 ? 7 : 0 ))' 2>"$T_TMP/err"
is $? 7 "mosexec exits with the failing rank's status"
like "$(cat "$T_TMP/err")" "rank 2 \(on node[0-2]\) exited with status 7" "the failing rank is named"
vx node0 mosexec -n 2 sh -c '[ $MOSEXEC_RANK = 1 ] && kill -SEGV $$; exit 0' 2>"$T_TMP/err"
is $? 139 "a rank killed by SIGSEGV makes 128+11"
like "$(cat "$T_TMP/err")" "rank 1 .* killed by signal 11" "the signal is named"
vx node0 mosexec -n 1 /nonexistent/prog 2>"$T_TMP/err"
is $? 127 "a missing program exits 127"
like "$(cat "$T_TMP/err")" "/nonexistent/prog: No such file or directory" "and says why"

# stdin goes to rank 0 only.
out=$(printf 'alpha\nbeta\n' | vx node0 mosexec -n 3 sh -c 'sed "s/^/r$MOSEXEC_RANK:/"')
is "$out" "$(printf 'r0:alpha\nr0:beta')" "stdin reaches rank 0 and no other rank"

# mpirun-style options.
out=$(vx node0 mosexec -n 2 -x MOS_T_VAR=hello --wdir /usr sh -c 'echo "$MOS_T_VAR $(pwd)"' | sort -u)
is "$out" "hello /usr" "-x and --wdir reach the processes"
out=$(vx node0 mosexec --tag-output -n 2 sh -c 'echo hi' | sort)
like "$out" '^\[[0-9]+,0\]<stdout>:hi' "--tag-output prefixes each line"
out=$(vx node0 mosexec -n 1 echo A : -n 2 echo B | sort | tr '\n' ' ')
is "$out" "A B B " "MPMD ':' runs both app contexts"
out=$(vx node0 mosexec --host node1:3 -n 3 hostname | sort -u)
is "$out" "node1" "--host puts every process on the named node"
vx node0 mosexec --host node1 -n 3 true 2>"$T_TMP/err"
like "$(cat "$T_TMP/err")" "need 3 slots, only 1 free on 1 node \(use --oversubscribe\)" "too few slots on --host: mpirun's rule and message"
out=$(vx node0 mosexec --oversubscribe --host node1 -n 3 hostname | sort -u)
is "$out" "node1" "--oversubscribe lifts it"
# --host slots belong to the job (mpirun's rule): another job's processes
# there do not take them (nor its exits, which the gossip learns a round late).
vx node0 mosexec --host node0:2 -n 2 sleep 4 &
bg=$!
wait_for 10 sh -c "[ \"\$(mosctl vcluster exec node0 -- mosps --no-header | grep -c 'sleep 4')\" = 2 ]"
vx node0 mosexec --host node0:2 -n 2 true 2>"$T_TMP/err"
ok $? "a job's --host slots do not count another job's processes $(cat "$T_TMP/err")"
vx node0 mosexec --host node2:2,node1:1 -n 3 true 2>"$T_TMP/err" &&
	vx node0 mosexec --host node2:2,node1:1 -n 3 true 2>>"$T_TMP/err"
ok $? "nor the load of the job just before on other nodes $(cat "$T_TMP/err")"
wait $bg
printf 'node2 slots=2\n# comment\nnode1 slots=1\n' >"$T_TMP/hosts"
out=$(vx node0 mosexec --hostfile "$T_TMP/hosts" -n 3 hostname | sort | uniq -c | awk '{print $2 "=" $1}' | tr '\n' ' ')
is "$out" "node1=1 node2=2 " "--hostfile slots decide the placement"
out=$(vx node0 mosexec --map-by node -n 3 sh -c 'echo $MOSEXEC_RANK $(hostname)' | sort -n | awk '{print $2}' | sort -u | wc -l)
is "$out" 3 "--map-by node deals ranks over the nodes"

# Bad input: clear message, non-zero exit, daemons stay up.
vx node0 mosexec --bogus -n 1 true 2>"$T_TMP/err"
is $? 2 "an unknown option exits 2"
like "$(cat "$T_TMP/err")" "unknown option '--bogus'" "and names it"
vx node0 mosexec -n 0 true 2>"$T_TMP/err"
is $? 2 "-n 0 is refused"
vx node0 mosexec --host nosuchnode -n 1 true 2>"$T_TMP/err"
is $? 1 "an unknown host fails"
like "$(cat "$T_TMP/err")" "unknown host 'nosuchnode'" "and names it"
vx node0 env MOSD_SOCKET=@nosuchsocket mosexec -n 1 true 2>"$T_TMP/err"
like "$(cat "$T_TMP/err")" "cannot reach mosd at @nosuchsocket" "no daemon: a clear message"
out=$(vx node0 mosexec -n 2 true; echo "rc=$?")
is "$out" "rc=0" "the daemons still run jobs after the bad input"

# mosps: one table for the cluster, with where each process runs.
vx node0 mosexec -n 6 sleep 30 >/dev/null 2>&1 &
wait_for 10 sh -c "[ \$(mosctl vcluster exec node1 -- mosps --no-header | grep -c 'sleep 30') = 6 ]"
out=$(vx node1 mosps)
like "$(printf '%s\n' "$out" | head -1)" "JOB +RANK +USER +HOME +WHERE +PID +STATE +CPU% +RSS +MIGS +COMMAND" "mosps shows its columns"
kill %1 2>/dev/null
wait
done_testing
