#!/bin/bash
# Signals: what mosexec receives reaches every process on every node; Ctrl-Z
# and fg work; if mosexec dies, its processes die too, everywhere.
source "${TOP_SRCDIR:-$(dirname "$0")/..}/tests/lib.sh"
need_root
vc_up --nodes 3 --cpus 2 || exit 1

cat >"$T_TMP/trap.sh" <<'S'
#!/bin/bash
for s in INT HUP USR1 USR2; do trap "echo rank $MOSEXEC_RANK got $s on \$(hostname)" $s; done
trap "echo rank $MOSEXEC_RANK got TERM; exit 3" TERM
echo ready
while :; do sleep 0.1; done
S
chmod +x "$T_TMP/trap.sh"

mosctl vcluster exec node0 -- mosexec -n 6 "$T_TMP/trap.sh" >"$T_TMP/trap.out" 2>&1 &
mpid=$!
wait_for 15 sh -c "[ \$(grep -c ready '$T_TMP/trap.out') = 6 ]"
ok $? "6 ranks are up on several nodes"
for s in INT HUP USR1 USR2; do
	kill -$s $mpid
	wait_for 10 sh -c "[ \$(grep -c 'got $s' '$T_TMP/trap.out') = 6 ]"
	ok $? "SIG$s sent to mosexec reaches all 6 ranks"
done
is "$(grep 'got USR1' "$T_TMP/trap.out" | awk '{print $NF}' | sort -u | wc -l)" 3 "the ranks that got it run on 3 nodes"
kill -TERM $mpid
wait $mpid
is $? 3 "SIGTERM: the ranks' handlers ran and their status came home"

# Ctrl-Z / fg: the processes stop and go on.
cat >"$T_TMP/tick.sh" <<'S'
#!/bin/sh
i=0; while :; do echo "tick $i"; i=$((i + 1)); sleep 0.1; done
S
chmod +x "$T_TMP/tick.sh"
mosctl vcluster exec node0 -- mosexec -n 2 "$T_TMP/tick.sh" >"$T_TMP/tick.out" 2>&1 &
mpid=$!
wait_for 10 sh -c "[ \$(grep -c tick '$T_TMP/tick.out') -ge 10 ]"
kill -TSTP $mpid
sleep 0.5
a=$(wc -l <"$T_TMP/tick.out")
sleep 1
b=$(wc -l <"$T_TMP/tick.out")
is "$b" "$a" "SIGTSTP stops every rank: no output while stopped"
kill -CONT $mpid
wait_for 10 sh -c "[ \$(wc -l <'$T_TMP/tick.out') -gt $b ]"
ok $? "SIGCONT lets them go on"

# mosexec killed: no orphan anywhere.
is "$(pgrep -fc "^/bin/sh $T_TMP/tick.sh")" 2 "both tickers run before mosexec is killed"
kill -KILL $mpid
wait $mpid 2>/dev/null
gone() { ! pgrep -f "^/bin/sh $T_TMP/tick.sh" >/dev/null; }
wait_for 10 gone
ok $? "mosexec killed with SIGKILL: its processes are gone on every node"

cp /bin/sleep "$T_TMP/sleeper"
mosctl vcluster exec node0 -- mosexec -n 4 "$T_TMP/sleeper" 100 >/dev/null 2>&1 &
mpid=$!
wait_for 10 sh -c "[ \$(pgrep -xc sleeper) = 4 ]"
ok $? "4 sleepers run"
kill -INT $mpid
wait $mpid
is $? 130 "SIGINT ends a job that does not catch it: 128+2"
wait_for 10 sh -c "! pgrep -x sleeper"
ok $? "and no sleeper is left"
mosctl vcluster exec node0 -- mosexec -n 2 "$T_TMP/sleeper" 100 >/dev/null 2>&1 &
mpid=$!
wait_for 10 sh -c "[ \$(pgrep -xc sleeper) = 2 ]"
job=$(job_of sleeper)
vx node1 mosctl signal "$job" TERM 2>"$T_TMP/err"
ok $? "mosctl signal from another node than the job's home is accepted"
wait $mpid
is $? 143 "and reaches the job through its home: it ends with 128+15"
done_testing
