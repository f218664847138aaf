#!/bin/bash
# The README's quick-start demo (scripts/demo.sh, what `scripts/setup.sh
# --demo` runs): a 4-node cluster, a two-process job whose rank 0 is moved
# node0 -> node1 -> node3 (diskless) -> home while it counts, nothing lost.
source "${TOP_SRCDIR:-$(dirname "$0")/..}/tests/lib.sh"
need_root
CRIU_BIN=${MOS_CRIU:-/usr/local/sbin/criu}
[ -x "$CRIU_BIN" ] && "$CRIU_BIN" check >/dev/null 2>&1 || skip_all "no working criu (scripts/setup.sh builds CRIU 4.2.1)"
mosctl vcluster down >/dev/null 2>&1
at_exit "mosctl vcluster down"
timeout 120 bash "$TOP_SRCDIR/scripts/demo.sh" >"$T_TMP/demo.out" 2>&1
is $? 0 "scripts/demo.sh runs to its end"
out=$(sed 's/\x1b\[[0-9;]*m//g' "$T_TMP/demo.out")
like "$out" "the job ended with status 0" "the job ends with status 0"
for n in node1 node3 node0; do
	like "$out" "job [0-9]+ rank 0 moved [a-z0-9]+ -> $n: .*frozen [0-9]+ ms" "rank 0 is moved to $n, and says how long it was frozen"
done
for n in node1 node3; do
	like "$out" "rank 0: count [0-9]+ on $n" "rank 0 counted on $n"
done
counts=$(printf '%s\n' "$out" | awk '$1 == "rank" && $2 == "0:" && $3 == "count" { print $4 }')
is "$(printf '%s\n' "$counts" | tr '\n' ' ')" "$(seq 0 47 | tr '\n' ' ')" "rank 0's counts 0..47 arrive once each, in order"
is "$(printf '%s\n' "$out" | grep -c '^rank 1: count')" 48 "rank 1's 48 lines too"
done_testing
