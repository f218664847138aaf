#!/bin/bash
# MPI without mpirun: unmodified Open MPI programs started by mosexec across a
# 6-node virtual cluster, mosd being their PMIx server. Results are checked;
# bad programs end their job with a clear message, nothing hangs, nothing is
# left behind.
source "${TOP_SRCDIR:-$(dirname "$0")/..}/tests/lib.sh"
need_root
MPICC=${MPICC:-mpicc}
command -v "$MPICC" >/dev/null || skip_all "no mpicc (Debian package libopenmpi-dev)"
for p in hello_allreduce abort crash no_init no_finalize; do
	"$MPICC" -O2 -o "$T_TMP/$p" "$TOP_SRCDIR/tests/mpi/$p.c" || { echo "Bail out! cannot build $p"; exit 1; }
done
chmod 755 "$T_TMP" "$T_TMP"/*
vc_up --nodes 6 --cpus 2 --cpu-quota 0.4 || exit 1

for n in 4 16; do
	out=$(vx node0 mosexec -n $n "$T_TMP/hello_allreduce" 2>"$T_TMP/err")
	ok $? "-n $n: MPI_Init, point-to-point, Bcast, Alltoall, Allreduce, Finalize exit 0"
	is "$(printf '%s\n' "$out" | grep -c "^rank [0-9]* of $n ok")" $n "-n $n: every rank checked its results"
	like "$out" "ALL OK sum=$((n * (n - 1) / 2))" "-n $n: the Allreduce sum is right"
done
is "$(printf '%s\n' "$out" | grep -o 'host node[0-9]' | sort -u | wc -l)" 6 "the 16 ranks ran on all 6 nodes"
out=$(vx node3 mosexec -n 64 "$T_TMP/hello_allreduce" 2>"$T_TMP/err")
ok $? "-n 64 exits 0" || diag "$(head -n 20 "$T_TMP/err")" "the home's log:" \
	"$(grep -E 'ending it|exited|abort|failed|killed|lost|refused' "$(mosctl vcluster path)/node3/mosd.log" | head -n 30)"
like "$out" "ALL OK sum=2016" "-n 64: the Allreduce sum is right"
# mosd discovered the node once; ranks load it from PMIx instead of each
# probing the node with hwloc (what Open MPI does when it finds nothing).
out=$(vx node1 mosexec -n 2 -x OMPI_MCA_hwloc_base_verbose=1 "$T_TMP/hello_allreduce" 2>&1)
is "$(printf '%s\n' "$out" | grep -c 'loading topology from XML')" 2 "every rank loads the node's topology from mosd"
is "$(printf '%s\n' "$out" | grep -c 'discovering topology')" 0 "no rank discovers it itself"
# Direct modex without the modex fence (asked for): rank 0 (node0) passes
# MPI_Init at once and asks for rank 1's data (node1) before rank 1 has even
# started; node1 holds the request until rank 1 posts its data, then answers.
out=$(vx node0 mosexec --mpi --host node0,node1 -n 2 -x OMPI_MCA_pmix_base_async_modex=1 \
	-x OMPI_MCA_pmix_base_collect_data=0 sh -c '[ "$MOSEXEC_RANK" = 1 ] && sleep 3; exec "$0"' "$T_TMP/hello_allreduce" 2>&1)
like "$out" "ALL OK sum=1" "a peer's data asked for before it is posted is held until it is"
count='env | grep -c "^OMPI_MCA_pmix_base_async_modex=0\|^OMPI_MCA_pmix_base_collect_data=0\|^OMPI_MCA_mpi_async_mpi_init=1"'
is "$(vx node0 mosexec --mpi -n 1 sh -c "$count" 2>/dev/null)" 3 "MPI ranks get the three direct-modex settings by default"
is "$(vx node0 mosexec --mpi -n 1 -x OMPI_MCA_pmix_base_async_modex=1 sh -c "$count" 2>/dev/null)" 0 \
	"a user's own choice replaces all three"
out=$(vx node0 mosexec -n 8 -x OMPI_MCA_pmix_base_async_modex=1 -x OMPI_MCA_pmix_base_collect_data=0 "$T_TMP/hello_allreduce")
like "$out" "ALL OK sum=28" "direct modex across nodes works"

# MPMD: MPI and non-MPI programs in one job; MPI_COMM_WORLD holds the MPI ones.
out=$(vx node0 mosexec -n 3 "$T_TMP/hello_allreduce" : -n 2 sh -c 'echo "plain rank $MOSEXEC_RANK"')
ok $? "MPMD with a non-MPI program exits 0"
like "$out" "ALL OK sum=3" "the MPI program sees a world of 3"
is "$(printf '%s\n' "$out" | grep -c '^plain rank [34]$')" 2 "the plain program ran as ranks 3 and 4"

# Bad programs: a clear message, the right status, no hang, nothing left.
vx node0 mosexec -n 4 "$T_TMP/abort" >/dev/null 2>"$T_TMP/err"
is $? 7 "MPI_Abort(7) ends the job with status 7"
like "$(cat "$T_TMP/err")" "MPI rank 1 called MPI_Abort with status 7" "and says who aborted"
vx node0 mosexec -n 4 "$T_TMP/crash" >"$T_TMP/out" 2>"$T_TMP/err"
is $? 137 "a rank killed mid-collective ends the job with 128+9"
like "$(cat "$T_TMP/err")" "MPI rank 1 \(node[0-9]\) exited without calling MPI_Finalize" "and names it"
is "$(grep -c 'NOT CRASHED' "$T_TMP/out")" 0 "no other rank went on"
start=$SECONDS
vx node0 mosexec -n 4 "$T_TMP/no_init" 1 2 >/dev/null 2>"$T_TMP/err"
rc=$?
ok $((rc == 0)) "a rank that never calls MPI_Init fails the job (status $rc)"
like "$(cat "$T_TMP/err")" "MPI rank 1 \(node[0-9]\) exited without calling MPI_Init" "and is named"
ok $((SECONDS - start > 20)) "without waiting for a time-out ($((SECONDS - start)) s)"
vx node0 mosexec -n 4 "$T_TMP/no_finalize" >"$T_TMP/out" 2>"$T_TMP/err"
rc=$?
ok $((rc == 0)) "a rank that exits before MPI_Finalize fails the job (status $rc)"
like "$(cat "$T_TMP/err")" "exited without calling MPI_Finalize" "and is named"
wait_for 10 sh -c "! pgrep -f '^$T_TMP/' >/dev/null"
ok $? "no MPI process is left on any node"

vx node0 mosexec -n 2 "$T_TMP/no_init" 0 30 >/dev/null 2>&1 &
wait_for 10 sh -c "[ -n \"\$(mosctl vcluster exec node0 -- mosps --no-header | grep no_init)\" ]"
job=$(job_of no_init)
vx node0 mosmigrate "$job.1" node5 2>"$T_TMP/err"
like "$(cat "$T_TMP/err")" "MPI ranks do not migrate yet" "moving an MPI rank is refused with a reason"
vx node0 mosctl kill "$job"
wait
done_testing
