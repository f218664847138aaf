#!/bin/bash
# Where criu cannot use userfaultfd (its start-up check fails), moves copy
# the memory through the dump's images instead of sending it directly, and
# a post-copy move fails cleanly, the process running on where it was.
source "${TOP_SRCDIR:-$(dirname "$0")/..}/tests/lib.sh"
need_root
CRIU_BIN=${MOS_CRIU:-/usr/local/sbin/criu}
[ -x "$CRIU_BIN" ] || CRIU_BIN=$(command -v criu) || skip_all "no criu (scripts/setup.sh builds CRIU 4.2.1)"
"$CRIU_BIN" check >/dev/null 2>&1 || skip_all "criu check fails on this kernel"
# a criu that says the kernel has no userfaultfd, and fails lazy-pages
cat >"$T_TMP/criu" <<S
#!/bin/bash
case " \$* " in
*" uffd-noncoop "* | *" lazy-pages "*) echo "Error: UFFD is not supported (test)" >&2; exit 1 ;;
esac
exec "$CRIU_BIN" "\$@"
S
chmod 755 "$T_TMP" "$T_TMP/criu"
MOS_CRIU=$T_TMP/criu vc_up --nodes 2 --cpus 2 || exit 1
wait_for 10 grep -q "no userfaultfd: moves copy the memory" "$(mosctl vcluster path)/node0/mosd.log"
ok $? "node0's daemon finds no userfaultfd and says so" || diag "$(grep -h criu "$(mosctl vcluster path)/node0/mosd.log" | tail -3)"
cc -O2 -o "$T_TMP/mig_load" "$TOP_SRCDIR/bench/mig_load.c" || exit 1
mosctl vcluster exec node0 -- mosexec -n 1 "$T_TMP/mig_load" 40 400 >"$T_TMP/out" 2>&1 &
mpid=$!
wait_for 20 grep -q "tick 5 " "$T_TMP/out"
job=$(job_of mig_load)
msg=$(vx node0 mosmigrate --force "$job.0" node1 2>&1)
like "$msg" "moved node0 -> node1: 4[0-9]\.[0-9] MiB of images" "the default move copies the memory through the images ($msg)"
before=$(grep -c tick "$T_TMP/out")
vx node0 mosmigrate --lazy --force "$job.0" node0 >/dev/null 2>"$T_TMP/e"
like "$(cat "$T_TMP/e")" "migration to node0 failed.*keeps running on node1" "a post-copy move fails ($(head -c 160 "$T_TMP/e"))"
is "$(where_of "$job" 0)" node1 "the process still runs on node1"
wait_for 10 sh -c "[ \$(grep -c tick '$T_TMP/out') -gt $((before + 20)) ]"
ok $? "and keeps ticking there"
wait $mpid
is $? 0 "the job ends with status 0"
like "$(tail -n 1 "$T_TMP/out")" "^memory ok$" "its memory came along intact"
wait_for 10 no_leftovers
ok $? "no images are left"
done_testing
