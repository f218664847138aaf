#!/bin/bash
# Users: a job runs with its user's uid, gid and groups on every node; one
# user cannot signal or move another user's job; root can.
source "${TOP_SRCDIR:-$(dirname "$0")/..}/tests/lib.sh"
need_root
U1=mostest1 U2=mostest2
for u in $U1 $U2; do
	userdel -r "$u" >/dev/null 2>&1
	useradd -M -s /bin/sh "$u" || skip_all "useradd failed"
	at_exit "userdel $u"
done
groupadd -f mostestgrp && at_exit "groupdel mostestgrp"
usermod -aG mostestgrp $U1
vc_up --nodes 3 --cpus 2 || exit 1
chmod 755 "$T_TMP"

uid1=$(id -u $U1) gid1=$(id -g $U1) grp=$(getent group mostestgrp | cut -d: -f3)
out=$(vxu $U1 node0 mosexec -n 6 sh -c 'echo "$(id -u) $(id -g) $(hostname)"' | sort -u)
is "$(printf '%s\n' "$out" | awk '{print $1 " " $2}' | sort -u)" "$uid1 $gid1" "every process runs with the user's uid and gid"
is "$(printf '%s\n' "$out" | awk '{print $3}' | sort -u | wc -l)" 3 "on every node"
out=$(vxu $U1 node0 mosexec -n 3 id -G | tr ' ' '\n' | sort -u | tr '\n' ' ')
like "$out" "(^| )$grp( |$)" "with the user's supplementary groups"
out=$(vxu $U1 node0 mosexec -n 1 sh -c 'echo $USER')
is "$out" "$U1" "and the user's environment"

cp /bin/sleep "$T_TMP/usleeper"
chmod 755 "$T_TMP/usleeper"
mosctl vcluster exec node0 --user $U1 -- mosexec -n 2 "$T_TMP/usleeper" 100 >/dev/null 2>&1 &
mpid=$!
wait_for 10 sh -c "[ \$(pgrep -xc usleeper) = 2 ]"
job=$(job_of usleeper)
like "$job" '^[0-9]+$' "the user's job shows in mosps"
is "$(ps -o user= -p "$(pgrep -x usleeper | head -1)")" "$U1" "its processes belong to the user"

vxu $U2 node0 mosctl signal "$job" TERM 2>"$T_TMP/err"
is $? 1 "another user cannot signal the job"
like "$(cat "$T_TMP/err")" "permission denied" "and is told why"
vxu $U2 node0 mosmigrate "$job.0" node1 2>"$T_TMP/err"
like "$(cat "$T_TMP/err")" "permission denied" "nor migrate it"
is "$(pgrep -xc usleeper)" 2 "the job still runs"
vx node0 mosctl signal "$job" TERM
wait $mpid
is $? 143 "root can signal it: the job ends with 128+15"
done_testing
