#!/bin/bash
# demo.sh - the quick start's demo: a 4-node virtual cluster (one node
# diskless), a job of two counting processes started from node0, and one of
# them moved live node0 -> node1 -> node3 (diskless) -> home while it counts.
# The cluster stays up afterwards for you to try things (see the end).
set -u
cd "$(dirname "$0")/.."
REPO=$(pwd)
say() { printf '\n\033[1m== %s\033[0m\n' "$*"; }
vx() { local n=$1; shift; mosctl vcluster exec "$n" -- "$@"; }

say "a virtual cluster: 4 nodes, node3 diskless, each node's cgroup 0.5 CPU"
# each node has its own /tmp and /var/tmp: a clone there must be shared
share=()
case "$REPO" in /tmp/?* | /var/tmp/?*) share=(--share "$REPO") ;; esac
mosctl vcluster up --force --nodes 4 --diskless 1 --cpus 2 --cpu-quota 0.5 "${share[@]}" || exit 1

say "mosexec -n 2 demo-counter.sh, started on node0 (its home)"
vx node0 mosexec -n 2 "$REPO/scripts/demo-counter.sh" 48 &
job_pid=$!
sleep 2
vx node0 mosps
job=$(vx node0 mosps --no-header | awk '/demo-counter/ { print $1; exit }')
[ -n "$job" ] || { echo "demo: the job did not start" >&2; exit 1; }

for n in node1 node3 home; do
	sleep 2.5
	say "mosmigrate $job.0 $n"
	vx node0 mosmigrate --force "$job.0" "$n"
	vx node0 mosps
done
wait $job_pid
rc=$?
say "the job ended with status $rc; rank 0 counted on node0, node1, node3 and node0 again, no line lost"
cat <<EOT

The cluster is still up. Try:
  mosctl vcluster exec node0 -- mosexec -n 8 hostname
  mosctl vcluster exec node0 -- mosexec -n 4 $REPO/scripts/demo-counter.sh 100 &
  mosctl vcluster exec node0 -- mosps
  mosctl vcluster exec node0 -- mosmigrate JOB.RANK node2
  mosctl vcluster down
EOT
exit "$rc"
