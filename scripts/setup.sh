#!/bin/bash
# Prepares a Debian 12 machine for mosexec and builds it: missing packages,
# CRIU >= 4.2 (built from Debian's 4.2.1 source tarball when needed), sysctls,
# then an out-of-tree build in build/ installed to /usr/local.
#
# Usage: scripts/setup.sh           set up and build only
#        scripts/setup.sh --demo    ... then exec scripts/demo.sh
#        scripts/setup.sh --test    ... then make check and print "N passed, N failed"
# Runs as root, is idempotent, and a second run only re-checks.
set -euo pipefail

TOP=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
BUILD=$TOP/build
LOG=$BUILD/setup.log
CRIU_VER=4.2.1
CRIU_MIN=4.2
CRIU_TARBALL=criu_${CRIU_VER}.orig.tar.xz
CRIU_SHA256=29ec0ee09e296479fe7048c80980e8ef1d0684d0b0204c2b101dfea19f6725b9
CRIU_WORK=/var/cache/mosexec/criu-build
# CRIU caches what it learnt of the kernel (20 ms per run otherwise) in
# RUNDIR/criu.kdat, only on a tmpfs; /run may not be one. mosd keeps this
# directory root-only (launcher/mosd/criu.h: CRIU_KDAT_DIR).
CRIU_RUNDIR=/dev/shm/mosexec-criu
# Our fixes on top of the tarball (scripts/criu-patches/README.md); a criu
# without them works, only slower, but is rebuilt. The mark is a string the
# last patch puts into the binary.
CRIU_PATCHES=$TOP/scripts/criu-patches
CRIU_PATCHED_MARK="mosexec: a run of %lu lazy pages at %lx, read from the task when asked"

PKGS=(build-essential autoconf automake libtool pkg-config
	libopenmpi-dev openmpi-bin libpmix-dev libhwloc-dev hwloc
	libyaml-dev libevent-dev libsodium-dev
	iproute2 iptables iputils-arping util-linux procps psmisc xz-utils
	# CRIU's build dependencies
	libprotobuf-dev libprotobuf-c-dev protobuf-c-compiler protobuf-compiler
	python3 patch libnl-3-dev libnet1-dev libcap-dev uuid-dev libbsd-dev)

export DEBIAN_FRONTEND=noninteractive
export PATH=/usr/local/sbin:/usr/local/bin:$PATH
T0=$SECONDS
MODE=

say() { echo "setup: $*"; }

die() {
	say "FAILED: $*" >&2
	if [ -s "$LOG" ]; then
		echo "---- last lines of $LOG ----" >&2
		tail -n 60 "$LOG" >&2
		echo "----" >&2
	fi
	# CI reads the last line: a setup that never reached the tests failed them.
	if [ "$MODE" = --test ]; then echo "0 passed, 1 failed"; fi
	exit 1
}

# run WHAT CMD...: runs CMD with its output in the log; dies with the log's tail on failure.
run() {
	local what=$1
	shift
	echo "=== $what: $* ($(date '+%F %T'))" >>"$LOG"
	("$@") </dev/null >>"$LOG" 2>&1 || die "$what"
}

usage() {
	echo "usage: $0 [--demo | --test]" >&2
	exit 2
}

# --- packages ---------------------------------------------------------------
install_packages() {
	local missing=() p
	local installed
	installed=$(dpkg-query -W -f='${Package} ${db:Status-Abbrev}\n' "${PKGS[@]}" 2>/dev/null |
		awk '$2 == "ii" { print $1 }' || true)
	for p in "${PKGS[@]}"; do
		grep -qxF "$p" <<<"$installed" || missing+=("$p")
	done
	if [ ${#missing[@]} -eq 0 ]; then
		say "packages ok"
		return
	fi
	say "installing ${missing[*]}"
	run "apt-get update" apt-get update
	run "apt-get install" apt-get install -y --no-install-recommends "${missing[@]}"
}

# --- CRIU -------------------------------------------------------------------
# criu_good: true when the criu in PATH is >= CRIU_MIN, passes "criu check",
# keeps its kernel cache in CRIU_RUNDIR, and libcriu is installed (pkg-config
# file and ld.so cache).
criu_good() {
	local v
	command -v criu >/dev/null || return 1
	v=$(criu --version 2>/dev/null | awk '/^Version:/ { print $2 }')
	[ -n "$v" ] && dpkg --compare-versions "$v" ge "$CRIU_MIN" || return 1
	criu check >>"$LOG" 2>&1 || return 1
	grep -qa "$CRIU_RUNDIR/criu.kdat" "$(command -v criu)" || return 1
	grep -qa "$CRIU_PATCHED_MARK" "$(command -v criu)" || return 1
	pkg-config --exists criu || return 1
	[[ $(ldconfig -p) == *"libcriu.so.2 "* ]] || return 1
}

# archive_uris: the Debian archive URIs of this machine's apt sources (not security).
archive_uris() {
	local f
	{
		for f in /etc/apt/sources.list.d/*.sources; do
			[ -f "$f" ] && awk 'tolower($1) == "uris:" { for (i = 2; i <= NF; i++) print $i }' "$f"
		done
		for f in /etc/apt/sources.list /etc/apt/sources.list.d/*.list; do
			[ -f "$f" ] && awk '$1 == "deb" || $1 == "deb-src" {
				i = 2; if ($i ~ /^\[/) { while ($i !~ /\]$/) i++; i++ } print $i }' "$f"
		done
	} | grep -v -e security -e '^cdrom:' | awk '!seen[$0]++' || true
}

criu_fetch_apt_helper() {
	local uri
	for uri in $(archive_uris); do
		uri=${uri%/}/pool/main/c/criu/$CRIU_TARBALL
		echo "=== apt-helper download-file $uri" >>"$LOG"
		/usr/lib/apt/apt-helper download-file "$uri" "$CRIU_WORK/$CRIU_TARBALL" \
			"SHA256:$CRIU_SHA256" </dev/null >>"$LOG" 2>&1 && return 0
	done
	return 1
}

# Fallback: "apt-get source" from a deb-src entry for sid kept in a private
# sources list, so the machine's own apt configuration stays untouched.
criu_fetch_apt_source() {
	local uri d=$CRIU_WORK/apt
	uri=$(archive_uris | head -n 1)
	[ -n "$uri" ] || return 1
	rm -rf "$d"
	mkdir -p "$d/lists/partial" "$d/cache/archives/partial" "$d/src"
	echo "deb-src [signed-by=/usr/share/keyrings/debian-archive-keyring.gpg] $uri sid main" >"$d/sources.list"
	local opts=(-o "Dir::Etc::sourcelist=$d/sources.list" -o Dir::Etc::sourceparts=-
		-o "Dir::State::Lists=$d/lists" -o "Dir::Cache=$d/cache")
	echo "=== apt-get source (private sid deb-src list)" >>"$LOG"
	apt-get "${opts[@]}" update </dev/null >>"$LOG" 2>&1 || return 1
	# The .debian.tar.xz may be missing on the mirror: only the .orig matters.
	(cd "$d/src" && apt-get "${opts[@]}" source --download-only "criu=$CRIU_VER-1") \
		</dev/null >>"$LOG" 2>&1 || true
	[ -f "$d/src/$CRIU_TARBALL" ] || return 1
	mv "$d/src/$CRIU_TARBALL" "$CRIU_WORK/$CRIU_TARBALL"
}

criu_fetch() {
	local f=$CRIU_WORK/$CRIU_TARBALL
	if [ -f "$f" ] && echo "$CRIU_SHA256  $f" | sha256sum -c --status; then
		return 0
	fi
	rm -f "$f"
	say "fetching $CRIU_TARBALL"
	criu_fetch_apt_helper || criu_fetch_apt_source || die "cannot download $CRIU_TARBALL"
	echo "$CRIU_SHA256  $f" | sha256sum -c --status || die "$CRIU_TARBALL: wrong SHA256"
}

install_criu() {
	local v t src stamp p
	if criu_good; then
		v=$(criu --version | awk '/^Version:/ { print $2 }')
		say "CRIU $v ok ($(command -v criu))"
		return
	fi
	t=$SECONDS
	say "building CRIU $CRIU_VER in $CRIU_WORK"
	mkdir -p "$CRIU_WORK"
	criu_fetch
	src=$CRIU_WORK/criu-$CRIU_VER
	stamp=$src/.mosexec-unpacked-$(cat "$CRIU_PATCHES"/*.patch | sha256sum | cut -c1-16)
	if [ ! -f "$stamp" ]; then
		rm -rf "$src"
		run "unpack CRIU" tar -C "$CRIU_WORK" -xJf "$CRIU_WORK/$CRIU_TARBALL"
		[ -d "$src" ] || die "tarball did not unpack to criu-$CRIU_VER"
		for p in "$CRIU_PATCHES"/*.patch; do
			run "patch CRIU with $(basename "$p")" patch -d "$src" -p1 -i "$p"
		done
		touch "$stamp"
	fi
	touch "$src/criu/kerndat.c" # RUNDIR is compiled into it
	run "build CRIU" make -C "$src" -j2 criu lib RUNDIR="$CRIU_RUNDIR"
	# pycriu (pip) is not needed and would need pip and python3-protobuf.
	run "install CRIU" make -C "$src" install-criu install-lib PREFIX=/usr/local SKIP_PIP_INSTALL=1 \
		RUNDIR="$CRIU_RUNDIR"
	run "ldconfig" ldconfig
	hash -r
	criu_good || die "CRIU $CRIU_VER installed but 'criu check' or libcriu fails"
	say "CRIU $CRIU_VER ok ($(command -v criu), built in $((SECONDS - t)) s)"
}

set_sysctls() {
	# Lazy-page migration asks for a ~3.3 MiB pipe, and root here lacks CAP_SYS_RESOURCE.
	run "sysctl" sysctl -w fs.pipe-max-size=4194304
}

# --- the project --------------------------------------------------------------
configure_in_build() {
	cd "$BUILD" && ../configure
}

build_project() {
	local t=$SECONDS
	if [ ! -x "$TOP/configure" ] || [ "$TOP/configure.ac" -nt "$TOP/configure" ] ||
		[ "$TOP/Makefile.am" -nt "$TOP/configure" ]; then
		say "autogen"
		run "autogen" "$TOP/autogen.sh"
		touch "$TOP/configure"
	fi
	# Makefile.am names the TAP driver directly, which autoreconf does not install.
	if [ ! -f "$TOP/build-aux/tap-driver.sh" ]; then
		local drv
		drv=$(find /usr/share -maxdepth 2 -path '/usr/share/automake-*/tap-driver.sh' | sort -V | tail -n 1)
		[ -n "$drv" ] || die "tap-driver.sh not found (package automake)"
		cp "$drv" "$TOP/build-aux/tap-driver.sh"
	fi
	if [ ! -f "$BUILD/Makefile" ]; then
		say "configure"
		run "configure" configure_in_build
	fi
	say "make"
	run "make" make -C "$BUILD" -j2
	run "make install" make -C "$BUILD" install
	say "built and installed to /usr/local in $((SECONDS - t)) s"
}

# --- tests --------------------------------------------------------------------
# summarize DIR [EXTRA]: prints the failing tests' logs, per-file counts, and
# "N passed, N failed[, N skipped]" from the :test-result: lines of
# DIR/tests/**/*.trs (PASS, XPASS, XFAIL pass; SKIP skips; FAIL, ERROR fail),
# adding EXTRA failures found outside any test point; returns 1 if any failed.
summarize() {
	local dir=$1 fail=${2:-0} pass=0 skip=0 trs log p f s
	local -a files
	mapfile -t files < <(find "$dir/tests" -name '*.trs' 2>/dev/null | sort)
	for trs in "${files[@]}"; do
		read -r p f s < <(awk '$1 == ":test-result:" {
				if ($2 == "PASS" || $2 == "XPASS" || $2 == "XFAIL") p++
				else if ($2 == "SKIP") s++
				else f++
			} END { print p + 0, f + 0, s + 0 }' "$trs")
		pass=$((pass + p)) fail=$((fail + f)) skip=$((skip + s))
		[ "$f" -eq 0 ] && continue
		log=${trs%.trs}.log
		echo "---- ${trs#"$dir"/}: $f failed; last lines of ${log#"$dir"/} ----"
		if [ -f "$log" ]; then tail -n 40 "$log"; fi
	done
	for trs in "${files[@]}"; do
		printf '  %-32s %s\n' "${trs#"$dir"/}" "$(awk '$1 == ":test-result:" { n[$2]++ }
			END { for (k in n) { printf "%s%d %s", sep, n[k], k; sep = ", " } }' "$trs")"
	done
	if [ "$skip" -gt 0 ]; then
		echo "$pass passed, $fail failed, $skip skipped"
	else
		echo "$pass passed, $fail failed"
	fi
	[ "$fail" -eq 0 ]
}

run_tests() {
	local rc=0 extra=0 t=$SECONDS from
	# Old results of tests no longer listed would skew the count.
	find "$BUILD/tests" \( -name '*.trs' -o -name '*.log' \) -delete 2>/dev/null || true
	say "make check"
	from=$(($(wc -l <"$LOG") + 1))
	echo "=== make check ($(date '+%F %T'))" >>"$LOG"
	env -u VERBOSE make -C "$BUILD" check </dev/null >>"$LOG" 2>&1 || rc=$?
	# Show what did not simply pass; the per-file table and total come below.
	tail -n +"$from" "$LOG" | grep -E '^(FAIL|ERROR|XPASS|SKIP):' || true
	say "tests ran in $((SECONDS - t)) s"
	if [ $rc -ne 0 ] && ! grep -rqE --include='*.trs' '^:test-result: (FAIL|ERROR)' "$BUILD/tests"; then
		# make failed outside any test point (a build error, a missing test file).
		echo "---- make check failed (exit $rc) outside any test; last lines of ${LOG#"$TOP"/} ----"
		tail -n +"$from" "$LOG" | tail -n 60
		extra=1
	fi
	summarize "$BUILD" "$extra"
}

main() {
	case "${1:-}" in
	"") ;;
	--demo | --test) MODE=$1 ;;
	*) usage ;;
	esac
	[ $# -le 1 ] || usage
	[ "$(id -u)" -eq 0 ] || { echo "setup: must run as root" >&2; exit 1; }
	mkdir -p "$BUILD"
	: >"$LOG"

	install_packages
	install_criu
	set_sysctls
	build_project
	say "done in $((SECONDS - T0)) s (log: ${LOG#"$TOP"/})"

	case "$MODE" in
	--demo)
		[ -f "$TOP/scripts/demo.sh" ] || { echo "setup: scripts/demo.sh does not exist yet" >&2; exit 1; }
		exec bash "$TOP/scripts/demo.sh"
		;;
	--test)
		run_tests
		;;
	esac
}

main "$@"
