# tests/lib.sh - TAP helpers for the integration scripts (tests/NNNN-topic.t).
# Source it; call plan N, then ok/is/like; cleanup runs on every exit.
set -u
T_N=0
T_FAIL=0
T_CLEANUPS=()
TOP_SRCDIR=${TOP_SRCDIR:-$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)}
T_TMP=$(mktemp -d /tmp/mostest.XXXXXX)

plan() { echo "1..$1"; T_PLANNED=1; }
# done_testing: print the plan after the fact and exit 0 (the TAP driver
# judges the points); a script that dies before it has no plan and fails.
done_testing() { [ -n "${T_PLANNED:-}" ] || echo "1..$T_N"; exit 0; }
skip_all() { echo "1..0 # SKIP $*"; exit 0; }
diag() { printf '%s\n' "$@" | sed 's/^/# /'; }
ok() { # ok COND-EXIT-STATUS NAME
	T_N=$((T_N + 1))
	if [ "$1" -eq 0 ]; then echo "ok $T_N - $2"; else echo "not ok $T_N - $2"; T_FAIL=$((T_FAIL + 1)); return 1; fi
}
is() { # is GOT WANT NAME
	T_N=$((T_N + 1))
	if [ "$1" = "$2" ]; then echo "ok $T_N - $3"; else
		echo "not ok $T_N - $3"; diag "got:  '$1'" "want: '$2'"; T_FAIL=$((T_FAIL + 1)); return 1; fi
}
like() { # like GOT ERE NAME
	T_N=$((T_N + 1))
	if printf '%s' "$1" | grep -Eq -- "$2"; then echo "ok $T_N - $3"; else
		echo "not ok $T_N - $3"; diag "got:  '$1'" "want match: $2"; T_FAIL=$((T_FAIL + 1)); return 1; fi
}
skip() { T_N=$((T_N + 1)); echo "ok $T_N # SKIP $*"; }
at_exit() { T_CLEANUPS+=("$*"); }
t_cleanup() {
	local i
	for ((i = ${#T_CLEANUPS[@]} - 1; i >= 0; i--)); do eval "${T_CLEANUPS[$i]}" >/dev/null 2>&1 || true; done
	rm -rf "$T_TMP"
}
trap t_cleanup EXIT
trap 'exit 130' INT TERM
need_root() { [ "$(id -u)" = 0 ] || skip_all "needs root"; }

# --- the virtual cluster ----------------------------------------------------
# vc_up ARGS: a fresh cluster for this test (taken down on exit, pass or fail);
# T_TMP is visible on every node.
vc_up() {
	mosctl vcluster down >/dev/null 2>&1
	at_exit "mosctl vcluster down"
	if ! mosctl vcluster up --share "$T_TMP" "$@" >"$T_TMP/vcluster-up.log" 2>&1; then
		diag "vcluster up failed:" "$(tail -n 20 "$T_TMP/vcluster-up.log")"
		return 1
	fi
}
# vx NODE CMD...: run CMD on NODE.
vx() { local n=$1; shift; mosctl vcluster exec "$n" -- "$@"; }
# vxu USER NODE CMD...: run CMD on NODE as USER.
vxu() { local u=$1 n=$2; shift 2; mosctl vcluster exec "$n" --user "$u" -- "$@"; }
# wait_for TIMEOUT_S CMD...: poll until CMD succeeds; 1 on time-out.
wait_for() {
	local end=$((SECONDS + $1)); shift
	until "$@" >/dev/null 2>&1; do
		[ $SECONDS -ge $end ] && return 1
		sleep 0.2
	done
}
# job_of PATTERN: the job id of the first mosps row whose command matches.
job_of() { vx node0 mosps --no-header 2>/dev/null | awk -v p="$1" '$0 ~ p { print $1; exit }'; }
# where_of JOB RANK: the node a rank runs on.
where_of() { vx node0 mosps --no-header 2>/dev/null | awk -v j="$1" -v r="$2" '$1 == j && $2 == r { print $5; exit }'; }
# no_leftovers: every node's /dev/shm holds no migration images.
no_leftovers() { local n; for n in $(awk '{print $1}' "$(mosctl vcluster path)/nodes" 2>/dev/null); do
	[ -z "$(vx "$n" sh -c 'ls -d /dev/shm/mosexec-*/in-* /dev/shm/mosexec-*/out-* 2>/dev/null')" ] || return 1; done; }
