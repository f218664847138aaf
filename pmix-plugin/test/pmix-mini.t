#!/bin/bash
# pmix-mini.t - the PMIx server library (pmix-plugin/) starting unmodified
# Open MPI programs through the test launcher mini_launch: K launchers on
# this host play K nodes (mini0..), so fences and direct modex go through
# the library's host ops. Checks results, exit statuses, timeouts, clean-up.
source "${TOP_SRCDIR:-$(cd "$(dirname "$0")/../.." && pwd)}/tests/lib.sh"

MPICC=${MPICC:-mpicc}
[ "$MPICC" != no ] && command -v "$MPICC" >/dev/null || skip_all "mpicc not found (libopenmpi-dev)"
pkg-config --exists pmix libevent || skip_all "pmix/libevent development files missing"
[ "$(id -u)" != 0 ] || export OMPI_ALLOW_RUN_AS_ROOT=1 OMPI_ALLOW_RUN_AS_ROOT_CONFIRM=1

P=$TOP_SRCDIR/pmix-plugin
B=$T_TMP/bin
mkdir -p "$B"
CF="-std=gnu11 -O1 -g -Wall -Wextra -Wno-unused-parameter -D_GNU_SOURCE -I$P -I$TOP_SRCDIR/launcher/common"
# shellcheck disable=SC2046
${CC:-cc} $CF $(pkg-config --cflags pmix libevent) -o "$B/mini_launch" "$P"/*.c \
	"$P/test/mini_launch.c" "$P/test/mini_hub.c" "$TOP_SRCDIR/launcher/common/log.c" \
	$(pkg-config --libs pmix libevent) -lpthread || skip_all "cannot build mini_launch"
for p in hello_allreduce abort crash no_init; do
	"$MPICC" -O1 -o "$B/$p" "$TOP_SRCDIR/tests/mpi/$p.c" || skip_all "cannot build $p"
done
for p in pmix_timeout pmix_tool; do
	# shellcheck disable=SC2046
	${CC:-cc} -o "$B/$p" "$P/test/$p.c" $(pkg-config --cflags --libs pmix) ||
		skip_all "cannot build $p"
done

# ranks talk TCP over loopback only (every "node" is this host)
export OMPI_MCA_btl_tcp_if_include=lo
LPIDS=()
at_exit 'for p in "${LPIDS[@]}"; do kill -KILL "$p"; done'
N=0

# mj N K [launcher options] -- PROG ARGS: run K launchers, sets RCS ("0 0"),
# OUT (all stdout), ERR (all stderr), MS (wall time)
mj() {
	local n=$1 k=$2 i rc t0 pids=()
	shift 2
	N=$((N + 1))
	t0=$(date +%s%N)
	for ((i = 0; i < k; i++)); do
		mkdir -p "$T_TMP/srv$N.$i"
		timeout 60 "$B/mini_launch" --nodeid $i --nnodes "$k" --rdv "$T_TMP/rdv$N" \
			--nspace "job$N" --tmpdir "$T_TMP/srv$N.$i" -n "$n" "$@" \
			>"$T_TMP/out$N.$i" 2>"$T_TMP/err$N.$i" &
		pids+=($!)
		LPIDS+=($!)
	done
	RCS=
	for i in "${pids[@]}"; do
		wait "$i"
		rc=$?
		RCS="${RCS:+$RCS }$rc"
	done
	MS=$((($(date +%s%N) - t0) / 1000000))
	OUT=$(cat "$T_TMP"/out$N.*)
	ERR=$(cat "$T_TMP"/err$N.*)
}

# hello N K WHAT [options]: the full MPI check
hello() {
	local n=$1 k=$2 what=$3 ok
	shift 3
	mj "$n" "$k" "$@" -- "$B/hello_allreduce"
	ok=$(grep -c "^rank [0-9]* of $n ok" <<<"$OUT")
	is "$RCS:$ok:$(grep -o 'ALL OK.*' <<<"$OUT")" \
		"$(printf '0 %.0s' $(seq "$k") | sed 's/ $//'):$n:ALL OK sum=$((n * (n - 1) / 2))" \
		"-n $n on $k server(s)$what: results checked, exit 0 ($MS ms)"
	[ "$RCS" = "${RCS//[1-9]/}" ] || diag "$ERR"
}

plan 21

hello 4 1 ""
like "$OUT" "node-local 4, host mini0" "one server: Open MPI sees 4 ranks on node mini0"
PMIX_MCA_pmix_server_fence_localonly_opt=0 hello 4 1 ", fence through the host op"
hello 4 2 ""
is "$(grep -o 'rank [0-3] .*' <<<"$OUT" | sed 's/ of.*host / /;s/,.*//' | sort | tr '\n' ' ')" \
	"rank 0 mini0 rank 1 mini0 rank 2 mini1 rank 3 mini1 " "ranks 0,1 on mini0, 2,3 on mini1"
is "$(grep -c 'node-local 2' <<<"$OUT")" 4 "Open MPI sees 2 ranks per node"
hello 16 2 ""
hello 16 3 " (6+5+5)"
OMPI_MCA_pmix_base_async_modex=1 OMPI_MCA_pmix_base_collect_data=0 hello 4 2 ", direct modex"
OMPI_MCA_pmix_base_async_modex=1 OMPI_MCA_pmix_base_collect_data=0 hello 16 2 ", direct modex"

mj 6 2 --apps 1,3,2 -- "$B/hello_allreduce" x : "$B/hello_allreduce" y : "$B/hello_allreduce" z
is "$RCS:$(grep -o 'rank [0-5] .*' <<<"$OUT" | sed 's/ of.*app / /;s/, arg / /;s/)//' | sort |
	tr '\n' ' ')$(grep -o 'ALL OK.*' <<<"$OUT")" \
	"0 0:rank 0 0 x rank 1 1 y rank 2 1 y rank 3 1 y rank 4 2 z rank 5 2 z ALL OK sum=15" \
	"MPMD 1+3+2 on two servers: MPI_APPNUM and programs right ($MS ms)"

mj 4 1 -- "$B/abort"
is "$RCS" 7 "MPI_Abort(7) on one server: launcher exits 7 ($MS ms)"
mj 4 2 -- "$B/abort"
is "$RCS" "7 7" "MPI_Abort(7) on two servers: both launchers exit 7 ($MS ms)"
like "$ERR" "rank 1 of job$N called abort with status 7" "the host abort op got rank 1, status 7"

mj 4 2 -- "$B/crash"
is "$RCS" "137 137" "a rank killed mid-Allreduce ends the job with 137 ($MS ms)"

mj 4 2 --fence-timeout 2 -- "$B/no_init" 3 20
is "$RCS" "124 124" "a rank that never calls MPI_Init: fence timeout ends the job ($MS ms)"
like "$ERR" "fence 1 of job$N: only 1 of 2 nodes arrived" "... with a clear message"
mj 4 1 -- "$B/no_init" 3 1
is "$RCS:$(grep -c 'rank 3 exited without calling MPI_Init' <<<"$ERR")" "1:1" \
	"one server: the rank's exit without MPI_Init ends the job ($MS ms)"

mj 2 2 -- "$B/pmix_timeout"
is "$RCS:$(grep -c 'timeout ok' <<<"$OUT")" "0 0:1" \
	"PMIX_TIMEOUT=1 on a fence: the library fails it with PMIX_ERR_TIMEOUT ($MS ms)"

# a PMIx tool attaches (tool_connected names it), query/job control: not yet
mkdir -p "$T_TMP/tool"
"$B/mini_launch" --tool --tmpdir "$T_TMP/tool" -n 1 -- /bin/sleep 2 >/dev/null 2>&1 &
L=$!
LPIDS+=($L)
for _ in $(seq 50); do [ -e "$T_TMP/tool/pmix.mini0.tool.$L" ] && break; sleep 0.1; done
OUT=$(PMIX_HOSTNAME=mini0 PMIX_SYSTEM_TMPDIR=$T_TMP/tool timeout 10 "$B/pmix_tool" "$L" 2>&1)
is "$(tr '\n' ' ' <<<"$OUT")" \
	"attached as mos-tool.0.1.0 query: NOT-SUPPORTED job_control: NOT-SUPPORTED " \
	"a PMIx tool attaches; query and job control answer NOT-SUPPORTED"
wait "$L"

left=$(pgrep -f "$B/" | tr '\n' ' ')
dirs=$(find "$T_TMP" -mindepth 2 -maxdepth 2 -path "$T_TMP/srv*/job*" | head -3)
is "${left:-none}:${dirs:-none}" "none:none" "no process and no job directory left behind"
