#!/bin/bash
# Cluster membership: a daemon without the cluster's key is refused and the
# refusal is logged; garbage on the daemon's ports does not bring it down.
source "${TOP_SRCDIR:-$(dirname "$0")/..}/tests/lib.sh"
need_root
vc_up --nodes 3 --cpus 2 || exit 1
V=$(mosctl vcluster path)

# Replace node2's mosd by one with another key.
oldpid=$(cat $V/node2/mosd.pid)
kill "$oldpid"
wait_for 10 sh -c "! kill -0 $oldpid 2>/dev/null"
head -c 32 /dev/urandom >"$T_TMP/wrong.key"
chmod 600 "$T_TMP/wrong.key"
sed "s|key_file:.*|key_file: $T_TMP/wrong.key|" $V/cluster.yaml >"$T_TMP/wrong.yaml"
mosctl vcluster exec node2 -- mosd --config "$T_TMP/wrong.yaml" --node node2 >"$T_TMP/node2.log" 2>&1 &
badpid=$!
at_exit "kill $badpid"
wait_for 10 sh -c "mosctl vcluster exec node2 -- ss -ltn | grep -q ':7077'"

vx node0 mosexec --host node2 -n 1 hostname >"$T_TMP/out" 2>"$T_TMP/err"
rc=$?
ok $((rc == 0)) "a job cannot run on a node with the wrong key"
like "$(cat "$T_TMP/err")" "node2" "mosexec says which node failed"
wait_for 5 grep -q "authentication failed" "$T_TMP/node2.log" $V/node0/mosd.log
like "$(cat "$T_TMP/node2.log" $V/node0/mosd.log)" "authentication failed \(wrong or missing cluster key\?\)" "the refusal is logged"
out=$(vx node0 mosexec --host node0,node1 -n 2 hostname | sort | tr '\n' ' ')
is "$out" "node0 node1 " "the nodes with the right key still work together"

# Garbage on the TCP port and on the local socket: the daemon stays up.
vx node1 sh -c 'head -c 5000 /dev/urandom > /dev/tcp/10.77.0.10/7077' 2>/dev/null
vx node1 sh -c 'printf "XSOM\001\000\004\000\000\000\000\000\377\377\377\377" > /dev/tcp/10.77.0.10/7077' 2>/dev/null
vx node0 python3 -c '
import socket
s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
s.connect("\0mosd")
s.sendall(b"XSOM\x01\x00\x04\x00\x00\x00\x00\x00\x06\x00\x00\x00\x07\x00\xff\xff\xff\x7f")
print(s.recv(4096))
' >"$T_TMP/reply" 2>&1
like "$(cat "$T_TMP/reply")" "XSOM" "a malformed local request gets an answer"
like "$(cat "$T_TMP/reply")" "bad SUBMIT message: field 'nprocs' length 2147483647 overruns the frame" "which names the bad field"
kill -0 "$(cat $V/node0/mosd.pid)"
ok $? "node0's mosd is still up after the garbage"
out=$(vx node0 mosexec --host node0,node1 -n 2 hostname | sort | tr '\n' ' ')
is "$out" "node0 node1 " "and still runs jobs"
done_testing
