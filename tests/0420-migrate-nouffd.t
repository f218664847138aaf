#!/bin/bash
# Where criu cannot use userfaultfd (its start-up check fails), moves copy
# the memory through the dump's images instead of sending it directly, and
# a post-copy move fails cleanly, the process running on where it was. In a
# cluster where only some nodes have it (here node2), a node that has it
# copies to one that has not, and a direct move asked for fails, saying why.
source "${TOP_SRCDIR:-$(dirname "$0")/..}/tests/lib.sh"
need_root
CRIU_BIN=${MOS_CRIU:-/usr/local/sbin/criu}
[ -x "$CRIU_BIN" ] || CRIU_BIN=$(command -v criu) || skip_all "no criu (scripts/setup.sh builds CRIU 4.2.1)"
"$CRIU_BIN" check >/dev/null 2>&1 || skip_all "criu check fails on this kernel"
# a criu that says the kernel has no userfaultfd, and fails lazy-pages,
# except on node2 (each node has its own host name)
cat >"$T_TMP/criu" <<S
#!/bin/bash
case " \$* " in
*" uffd-noncoop "* | *" lazy-pages "*)
	[ "\$(hostname)" = node2 ] || { echo "Error: UFFD is not supported (test)" >&2; exit 1; } ;;
esac
exec "$CRIU_BIN" "\$@"
S
chmod 755 "$T_TMP" "$T_TMP/criu"
MOS_CRIU=$T_TMP/criu vc_up --nodes 3 --cpus 2 || exit 1
wait_for 10 grep -q "no userfaultfd: moves copy the memory" "$(mosctl vcluster path)/node0/mosd.log"
ok $? "node0's daemon finds no userfaultfd and says so" || diag "$(grep -h criu "$(mosctl vcluster path)/node0/mosd.log" | tail -3)"
wait_for 10 grep -q "userfaultfd works" "$(mosctl vcluster path)/node2/mosd.log"
ok $? "node2's daemon finds it works"
cc -O2 -o "$T_TMP/mig_load" "$TOP_SRCDIR/bench/mig_load.c" || exit 1
mosctl vcluster exec node0 -- mosexec -n 1 "$T_TMP/mig_load" 40 1200 >"$T_TMP/out" 2>&1 &
mpid=$!
wait_for 20 grep -q "tick 5 " "$T_TMP/out"
job=$(job_of mig_load)
msg=$(vx node0 mosmigrate --force "$job.0" node1 2>&1)
like "$msg" "moved node0 -> node1: 4[0-9]\.[0-9] MiB of images" "the default move copies the memory through the images ($msg)"
# refused FLAG TARGET FROM HOW: a move with FLAG to TARGET, which has no
# userfaultfd, fails at PREPARE saying its memory cannot come HOW; the
# process runs on at FROM
refused() {
	local before=$(grep -c tick "$T_TMP/out")
	vx node0 mosmigrate "$1" --force "$job.0" "$2" >/dev/null 2>"$T_TMP/e"
	like "$(cat "$T_TMP/e")" "migration to $2 failed in step 'prepare': node $2 has no userfaultfd: its memory cannot come $4 \\(--copy can\\).*keeps running on $3" \
		"$1 to $2 (without) fails, the target saying why ($(head -c 200 "$T_TMP/e"))"
	is "$(where_of "$job" 0)" "$3" "$1: the process still runs on $3"
	wait_for 10 sh -c "[ \$(grep -c tick '$T_TMP/out') -gt $((before + 20)) ]"
	ok $? "$1: and keeps ticking there"
}
refused --lazy node0 node1 post-copy
msg=$(vx node0 mosmigrate --force "$job.0" node2 2>&1)
like "$msg" "moved node1 -> node2: 4[0-9]\.[0-9] MiB of images" "node1 (without) -> node2 (with userfaultfd): a copy ($msg)"
refused --direct node1 node2 directly
msg=$(vx node0 mosmigrate --force "$job.0" node0 2>&1)
like "$msg" "moved node2 -> node0: 4[0-9]\.[0-9] MiB of images" "node2 -> node0 (without), not asked how: a copy ($msg)"
grep -q "job $job rank 0: node node0 has no userfaultfd: its memory cannot come directly (--copy can): copying its memory instead" \
	"$(mosctl vcluster path)/node2/mosd.log"
ok $? "node2 tried direct first, and says why it copied"
wait $mpid
is $? 0 "the job ends with status 0"
like "$(tail -n 1 "$T_TMP/out")" "^memory ok$" "its memory came along intact"
wait_for 10 no_leftovers
ok $? "no images are left"
done_testing
