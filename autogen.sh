#!/bin/sh
# Regenerates the build system from configure.ac and the Makefile.am files.
set -e
cd "$(dirname "$0")"
mkdir -p m4 build-aux
autoreconf -fi
# automake's TAP driver is not installed by autoreconf: take the system's copy.
if [ ! -f build-aux/tap-driver.sh ]; then
	cp "$(ls -d /usr/share/automake-*/ | sort -V | tail -n 1)tap-driver.sh" build-aux/
fi
