#!/bin/sh
# demo-counter.sh - counts, and says on which node each number was printed.
i=0
while [ "$i" -lt "${1:-40}" ]; do
	echo "rank ${MOSEXEC_RANK:-?}: count $i on $(hostname)"
	i=$((i + 1))
	sleep 0.25
done
