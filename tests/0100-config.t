# 0100-config.t - `mosctl check-config`: the example configuration passes;
# broken files fail with exit 1 and one FILE:LINE:COL message on stderr that
# points at the offending key or value; usage errors exit 2.
source "$TOP_SRCDIR/tests/lib.sh"

command -v mosctl >/dev/null || skip_all "mosctl not on PATH (build it first)"
plan 57

# run ARGS... - sets RC, OUT, ERR of `mosctl ARGS...`
run() {
	mosctl "$@" >"$T_TMP/out" 2>"$T_TMP/err"
	RC=$?
	OUT=$(cat "$T_TMP/out")
	ERR=$(cat "$T_TMP/err")
}

example="$TOP_SRCDIR/conf/example-cluster.yaml"
run check-config "$example"
is "$RC" 0 "example: exit 0"
is "$OUT" "$example: ok (4 nodes: 3 full, 1 diskless, 44 cpus)" "example: ok line counts nodes, roles and cpus"
is "$ERR" "" "example: nothing on stderr"

nodes='nodes:
  - name: n1
    address: 10.77.0.1
    cpus: 2'

# bad NAME LINE:COL MESSAGE-ERE CONTENT - the file fails at LINE:COL.
bad() {
	local f="$T_TMP/$1.yaml"
	printf '%s\n' "$4" >"$f"
	run check-config "$f"
	is "$RC" 1 "$1: exit 1"
	like "$ERR" "^$f:$2: $3\$" "$1: error at $2"
	is "$OUT" "" "$1: nothing on stdout"
}

bad unknown-key 2:3 "unknown key 'prot' in cluster; allowed: name, port, key_file, socket, state_dir, log_level" \
"cluster:
  prot: 7077
$nodes"
bad wrong-type 3:9 "port: expected an integer, got 'abc'" \
"cluster:
  name: lab
  port: abc
$nodes"
bad out-of-range 2:16 "interval_ms: 5 is out of range 10\.\.60000" \
"gossip:
  interval_ms: 5
$nodes"
bad duplicate-name 6:11 "duplicate node name 'n1' \(first at 3:11\)" \
"
$nodes
  - name: n1
    address: 10.77.0.2
    cpus: 2"
bad duplicate-address 6:14 "duplicate node address '10\.77\.0\.1' \(node 'n1' at 3:14\)" \
"$nodes
  - name: n2
    address: 10.77.0.1
    cpus: 2"
bad missing-key 5:5 "node 'n2': missing required key 'address'" \
"$nodes
  - name: n2
    cpus: 2"
bad empty-node-list 2:8 "nodes: the node list is empty; at least one node is required" \
"cluster: {port: 7000}
nodes: []"
bad missing-node-list 1:1 "missing required section 'nodes'" \
"cluster:
  port: 7000"
bad yaml-syntax 3:2 "YAML syntax error: did not find expected key \(while parsing a block mapping at 1:1\)" \
"cluster:
  port: 7000
 name: x
$nodes"
bad top-level-shape 1:1 "expected a mapping with the sections cluster, gossip, policy, nodes, got a sequence" \
"- n1
- n2"
bad invalid-role 8:11 "role: expected one of full\|diskless, got 'thin'" \
"$nodes
  - name: n2
    address: 10.77.0.2
    cpus: 2
    role: thin"
bad bad-topology 7:15 "topology: expected an hwloc synthetic topology like 'package:1 core:2 pu:1', got 'socket2 pu:x'" \
"$nodes
  - name: n2
    address: 10.77.0.2
    topology: socket2 pu:x"
bad cpus-and-topology 8:5 "node 'n2': give either 'cpus' or 'topology', not both" \
"$nodes
  - name: n2
    address: 10.77.0.2
    cpus: 4
    topology: 'core:2 pu:2'"
bad bad-address 3:14 "address: expected an IPv4 address or a host name, got '10\.77\.0\.300'" \
"nodes:
  - name: n1
    address: 10.77.0.300
    cpus: 2"
bad bad-memory 5:13 "memory: expected a size in bytes \(an integer, optionally with K, M, G or T\), got '4GB'" \
"$nodes
    memory: 4GB"

# Unreadable files: a missing one and a directory; no position applies.
run check-config "$T_TMP/absent.yaml"
is "$RC" 1 "missing file: exit 1"
is "$ERR" "$T_TMP/absent.yaml: cannot read: No such file or directory" "missing file: message"
run check-config "$T_TMP"
is "$RC" 1 "directory: exit 1"
is "$ERR" "$T_TMP: cannot read: Is a directory" "directory: message"

# Usage.
run check-config
is "$RC" 2 "no argument: exit 2"
like "$ERR" "usage: mosctl check-config FILE" "no argument: usage on stderr"
run check-config "$example" extra
is "$RC" 2 "two arguments: exit 2"
run check-config --keys
is "$RC" 0 "--keys: exit 0"
like "$OUT" "nodes\[\]\.topology +topology" "--keys: lists the node keys"
