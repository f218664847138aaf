# tests/lib.sh - TAP helpers for the integration scripts (tests/NNNN-topic.t).
# Source it; call plan N, then ok/is/like; cleanup runs on every exit.
set -u
T_N=0
T_FAIL=0
T_CLEANUPS=()
TOP_SRCDIR=${TOP_SRCDIR:-$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)}
T_TMP=$(mktemp -d /tmp/mostest.XXXXXX)

plan() { echo "1..$1"; }
skip_all() { echo "1..0 # SKIP $*"; exit 0; }
diag() { printf '# %s\n' "$@" | sed '2,$s/^/# /'; }
ok() { # ok COND-EXIT-STATUS NAME
	T_N=$((T_N + 1))
	if [ "$1" -eq 0 ]; then echo "ok $T_N - $2"; else echo "not ok $T_N - $2"; T_FAIL=$((T_FAIL + 1)); fi
}
is() { # is GOT WANT NAME
	T_N=$((T_N + 1))
	if [ "$1" = "$2" ]; then echo "ok $T_N - $3"; else
		echo "not ok $T_N - $3"; diag "got:  '$1'" "want: '$2'"; T_FAIL=$((T_FAIL + 1)); fi
}
like() { # like GOT ERE NAME
	T_N=$((T_N + 1))
	if printf '%s' "$1" | grep -Eq -- "$2"; then echo "ok $T_N - $3"; else
		echo "not ok $T_N - $3"; diag "got:  '$1'" "want match: $2"; T_FAIL=$((T_FAIL + 1)); fi
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
