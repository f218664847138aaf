#!/bin/bash
# Memory of every kind comes along on every kind of move (post-copy, direct,
# copy): private anonymous pages written, read only (the zero page) and never
# touched, a private file mapping partly written, memory without PROT_READ,
# shared anonymous memory, threads' stacks (tests/mem/mixed.c checks them all
# at its end), and pages that were never written do not become memory on the
# way.
source "${TOP_SRCDIR:-$(dirname "$0")/..}/tests/lib.sh"
need_root
command -v criu >/dev/null || [ -x /usr/local/sbin/criu ] || skip_all "no criu (scripts/setup.sh builds CRIU 4.2.1)"
vc_up --nodes 2 --cpus 2 || exit 1
wait_for 10 grep -q "userfaultfd works" "$(mosctl vcluster path)/node0/mosd.log" ||
	skip_all "criu finds no userfaultfd here (tests/0420 covers that case)"
cc -O2 -Wall -pthread -o "$T_TMP/mixed" "$TOP_SRCDIR/tests/mem/mixed.c" || exit 1
head -c 1048576 /dev/urandom >"$T_TMP/file"
chmod 755 "$T_TMP" "$T_TMP/mixed"
chmod 644 "$T_TMP/file"
mosctl vcluster exec node0 -- mosexec -n 1 "$T_TMP/mixed" 1500 "$T_TMP/file" >"$T_TMP/out" 2>&1 &
mpid=$!
wait_for 30 grep -q "tick 5$" "$T_TMP/out"
job=$(job_of mixed)
msg=$(vx node0 mosmigrate --lazy "$job.0" node1 2>&1)
# the images hold what cannot come later (file-mapping copies, memory without
# PROT_READ, shared memory: 3-4 MiB), not the 8 MiB written anonymous memory
like "$msg" "moved node0 -> node1: [0-7]\.[0-9] MiB of images" "post-copy: node0 -> node1, the written anonymous memory outside the images ($msg)"
wait_for 60 grep -q "job $job rank 0: all of its memory is here" "$(mosctl vcluster path)/node1/mosd.log"
ok $? "post-copy: all of its memory arrives"
msg=$(vx node0 mosmigrate "$job.0" node0 2>&1)
like "$msg" "moved node1 -> node0: [0-7]\.[0-9] MiB of images" "direct (the default): node1 -> node0, the same ($msg)"
msg=$(vx node0 mosmigrate --copy "$job.0" node1 2>&1)
like "$msg" "moved node0 -> node1: 1[0-9]\.[0-9] MiB of images" "copy: node0 -> node1, everything in the images ($msg)"
is "$(vx node0 mosps --no-header | awk -v j="$job" '$1 == j { print $5, $10 }')" "node1 3" "mosps: it runs on node1 after 3 moves"
wait $mpid
is $? 0 "the job ends with status 0"
like "$(tail -n 1 "$T_TMP/out")" "^mixed ok$" "every kind of memory came along intact, and no page never written became memory"
is "$(grep -c '^tick' "$T_TMP/out")" 1500 "no tick lost or repeated"
wait_for 10 no_leftovers
ok $? "no images are left"
done_testing
