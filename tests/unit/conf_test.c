/* conf_test.c - the cluster configuration loader: values and defaults it
 * loads, and the exact FILE:LINE:COL message of every kind of error. Each case
 * is a small YAML file written into a temporary directory. */
#include "conf.h"
#include "tap.h"
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

static char dir[] = "/tmp/conf_test.XXXXXX";
static char path[256];
static int nfiles;

/* A valid node list, appended to the cases that test another section. */
#define NODES "nodes:\n  - name: n1\n    address: 10.77.0.1\n    cpus: 2\n"

static const char *put(const char *text)
{
	FILE *f;

	snprintf(path, sizeof(path), "%s/c%d.yaml", dir, nfiles++);
	f = fopen(path, "w");
	if (!f || fputs(text, f) < 0 || fclose(f)) {
		printf("Bail out! cannot write %s\n", path);
		exit(1);
	}
	return path;
}

/* error_is - loading TEXT fails with RC and "FILE:" WANT. */
static void error_is(const char *text, int rc, const char *want, const char *name)
{
	struct mos_conf *c = (struct mos_conf *)1;
	char err[512] = "", full[768];
	int got = mos_conf_load(put(text), &c, err, sizeof(err));

	snprintf(full, sizeof(full), "%s:%s", path, want);
	TAP_OK(got == rc && c == NULL, "%s: returns %d and no config (got %d)", name, rc, got);
	TAP_IS_STR(err, full, "%s: message", name);
}

static struct mos_conf *load_ok(const char *text, const char *name)
{
	struct mos_conf *c = NULL;
	char err[512] = "";
	int rc = mos_conf_load(put(text), &c, err, sizeof(err));

	TAP_OK(rc == 0 && c, "%s: loads (%s)", name, err);
	return rc ? NULL : c;
}

static void test_full(void)
{
	struct mos_conf *c = load_ok("cluster:\n  name: lab\n  port: 7100\n  key_file: /k\n"
				     "  socket: /run/m.sock\n  state_dir: /s\n  log_level: debug\n"
				     "gossip: {interval_ms: 10, fanout: 16, max_age_ms: 600000}\n"
				     "policy:\n  enable: off\n  threshold: 2.25\n  interval_ms: 100\n  cooldown_ms: 0\n"
				     "nodes:\n"
				     "  - name: a.b_c-1\n    address: 10.77.0.1\n    cpus: 4096\n    memory: 4G\n"
				     "  - {name: d, address: host-2.Example.org, role: diskless,\n"
				     "     topology: 'package:2 core:3 pu:2', memory: 1536}\n"
				     "  - name: e\n    address: 10.77.0.3\n    role: full\n    cpus: 1\n    memory: 2t\n",
				     "full file");
	const struct mos_conf_node *n;

	if (!c)
		return;
	TAP_IS_STR(c->cluster_name, "lab", "cluster.name");
	TAP_OK(c->port == 7100, "cluster.port");
	TAP_IS_STR(c->key_file, "/k", "cluster.key_file");
	TAP_IS_STR(c->socket, "/run/m.sock", "cluster.socket");
	TAP_IS_STR(c->state_dir, "/s", "cluster.state_dir");
	TAP_IS_STR(c->log_level, "debug", "cluster.log_level");
	TAP_OK(c->gossip.interval_ms == 10 && c->gossip.fanout == 16 && c->gossip.max_age_ms == 600000,
	       "gossip keys at the ends of their ranges");
	TAP_OK(!c->policy.enable && c->policy.threshold == 2.25 && c->policy.interval_ms == 100 &&
		       c->policy.cooldown_ms == 0, "policy keys");
	TAP_OK(c->n_nodes == 3, "three nodes");
	n = &c->nodes[0];
	TAP_OK(!strcmp(n->name, "a.b_c-1") && !strcmp(n->address, "10.77.0.1") && n->role == MOS_ROLE_FULL &&
		       n->cpus == 4096 && !n->topology && n->memory == 4ULL << 30 && n->index == 0,
	       "node 0: cpus, default role, memory 4G");
	n = &c->nodes[1];
	TAP_OK(!strcmp(n->address, "host-2.Example.org") && n->role == MOS_ROLE_DISKLESS && n->cpus == 12 &&
		       n->topology && !strcmp(n->topology, "package:2 core:3 pu:2") && n->memory == 1536 &&
		       n->index == 1, "node 1: diskless, topology counted by hwloc (12 PUs), plain bytes");
	TAP_OK(c->nodes[2].memory == 2ULL << 40 && c->nodes[2].role == MOS_ROLE_FULL, "node 2: memory 2t");
	TAP_OK(mos_conf_node_find(c, "e") == &c->nodes[2], "node_find finds a node");
	TAP_OK(mos_conf_node_find(c, "zz") == NULL, "node_find: NULL for an unknown name");
	TAP_OK(!strncmp(c->path, dir, strlen(dir)), "path kept");
	mos_conf_free(c);
}

static void test_defaults(void)
{
	struct mos_conf *c = load_ok("gossip:\n# all commented out\npolicy:\n" NODES, "defaults");

	if (!c)
		return;
	TAP_IS_STR(c->cluster_name, "mosexec", "default cluster.name");
	TAP_OK(c->port == MOS_DEFAULT_PORT, "default port %d", MOS_DEFAULT_PORT);
	TAP_IS_STR(c->socket, MOS_DEFAULT_SOCKET, "default socket");
	TAP_IS_STR(c->key_file, "/etc/mosexec/cluster.key", "default key_file");
	TAP_IS_STR(c->state_dir, "/var/lib/mosexec", "default state_dir");
	TAP_IS_STR(c->log_level, "info", "default log_level");
	TAP_OK(c->gossip.interval_ms == 1000 && c->gossip.fanout == 2 && c->gossip.max_age_ms == 10000,
	       "default gossip 1000/2/10000");
	TAP_OK(c->policy.enable && c->policy.threshold == 0.5 && c->policy.interval_ms == 2000 &&
		       c->policy.cooldown_ms == 10000, "default policy true/0.5/2000/10000");
	TAP_OK(c->nodes[0].role == MOS_ROLE_FULL && c->nodes[0].memory == 0, "default role full, memory 0");
	mos_conf_free(c);
}

static void test_key_errors(void)
{
	error_is("cluster:\n  prot: 1\n" NODES, -EINVAL,
		 "2:3: unknown key 'prot' in cluster; allowed: name, port, key_file, socket, state_dir, log_level",
		 "unknown key");
	error_is(NODES "    cpu: 2\n", -EINVAL,
		 "5:5: unknown key 'cpu' in a node; allowed: name, address, role, cpus, topology, memory",
		 "unknown node key");
	error_is("clutser: {}\n" NODES, -EINVAL,
		 "1:1: unknown section 'clutser'; allowed: cluster, gossip, policy, nodes", "unknown section");
	error_is("cluster:\n  port: 1\n  port: 2\n" NODES, -EINVAL, "3:3: duplicate key 'port' (first at 2:3)",
		 "duplicate key");
	error_is("cluster:\n  port: abc\n" NODES, -EINVAL, "2:9: port: expected an integer, got 'abc'",
		 "wrong type: integer");
	error_is("cluster:\n  port: [1]\n" NODES, -EINVAL, "2:9: port: expected an integer, got a sequence",
		 "wrong type: sequence for an integer");
	error_is("cluster:\n  port:\n" NODES, -EINVAL, "2:8: port: expected an integer, got an empty value",
		 "wrong type: empty value");
	error_is("policy:\n  threshold: nan\n" NODES, -EINVAL, "2:14: threshold: expected a number, got 'nan'",
		 "wrong type: number");
	error_is("policy:\n  enable: maybe\n" NODES, -EINVAL, "2:11: enable: expected true or false, got 'maybe'",
		 "wrong type: boolean");
	error_is("cluster:\n  log_level: loud\n" NODES, -EINVAL,
		 "2:14: log_level: expected one of error|warn|info|debug, got 'loud'", "wrong word");
	error_is("cluster:\n  name: 'my lab'\n" NODES, -EINVAL,
		 "2:9: name: expected a name of 1..63 characters from A-Z a-z 0-9 . _ -, got 'my lab'",
		 "bad cluster name");
	error_is("cluster: 5\n" NODES, -EINVAL, "1:10: cluster: expected a mapping of keys, got '5'",
		 "section is a scalar");
}

static void test_range_errors(void)
{
	error_is("cluster:\n  port: 70000\n" NODES, -EINVAL, "2:9: port: 70000 is out of range 1..65535",
		 "port too large");
	error_is("gossip:\n  fanout: -1\n" NODES, -EINVAL, "2:11: fanout: -1 is out of range 1..16",
		 "negative fanout");
	error_is("gossip:\n  interval_ms: 99999999999999999999\n" NODES, -EINVAL,
		 "2:16: interval_ms: 99999999999999999999 is out of range 10..60000", "integer overflow");
	error_is("policy:\n  threshold: 10.5\n" NODES, -EINVAL, "2:14: threshold: 10.5 is out of range 0..10",
		 "threshold too large");
	error_is("cluster:\n  socket: ''\n" NODES, -EINVAL, "2:11: socket: length 0 is out of range 1..107 chars",
		 "empty socket");
	error_is("nodes:\n  - name: n1\n    address: 10.77.0.1\n    cpus: 0\n", -EINVAL,
		 "4:11: cpus: 0 is out of range 1..4096", "cpus 0");
	error_is("nodes:\n  - name: n1\n    address: 10.77.0.1\n    cpus: 2\n    memory: 99999999999T\n", -EINVAL,
		 "5:13: memory: '99999999999T' is out of range 0..2^64-1 bytes", "memory overflow");
	error_is("nodes:\n  - name: n1\n    address: 10.77.0.1\n    cpus: 2\n    memory: 4X\n", -EINVAL,
		 "5:13: memory: expected a size in bytes (an integer, optionally with K, M, G or T), got '4X'",
		 "memory bad suffix");
	error_is("nodes:\n  - name: n1\n    address: 10.77.0.1\n    topology: 'core:64 pu:65'\n", -EINVAL,
		 "4:15: topology: 'core:64 pu:65' has 4160 PUs, out of range 1..4096 PUs", "topology too large");
}

static void test_node_errors(void)
{
	error_is(NODES "  - name: n1\n    address: 10.77.0.2\n    cpus: 2\n", -EINVAL,
		 "5:11: duplicate node name 'n1' (first at 2:11)", "duplicate node name");
	error_is(NODES "  - name: n2\n    address: 10.77.0.1\n    cpus: 2\n", -EINVAL,
		 "6:14: duplicate node address '10.77.0.1' (node 'n1' at 3:14)", "duplicate node address");
	error_is(NODES "  - name: n2\n    cpus: 2\n", -EINVAL, "5:5: node 'n2': missing required key 'address'",
		 "missing address");
	error_is(NODES "  - cpus: 2\n    address: 10.77.0.2\n", -EINVAL, "5:5: node: missing required key 'name'",
		 "missing name");
	error_is(NODES "  - name: n2\n    address: 10.77.0.2\n", -EINVAL,
		 "5:5: node 'n2': missing required key 'cpus' or 'topology'", "neither cpus nor topology");
	error_is(NODES "  - name: n2\n    address: 10.77.0.2\n    cpus: 2\n    topology: pu:2\n", -EINVAL,
		 "8:5: node 'n2': give either 'cpus' or 'topology', not both", "both cpus and topology");
	error_is(NODES "  - name: n2\n    address: 10.77.0.2\n    cpus: 1\n    role: thin\n", -EINVAL,
		 "8:11: role: expected one of full|diskless, got 'thin'", "invalid role");
	error_is(NODES "  - name: n2\n    address: 10.77.0.2\n    topology: 'foo:2'\n", -EINVAL,
		 "7:15: topology: expected an hwloc synthetic topology like 'package:1 core:2 pu:1', got 'foo:2'",
		 "bad topology string");
	error_is("nodes:\n  - name: n1\n    address: 10.77.0.256\n    cpus: 2\n", -EINVAL,
		 "3:14: address: expected an IPv4 address or a host name, got '10.77.0.256'", "bad IPv4 address");
	error_is("nodes:\n  - name: n1\n    address: bad_host.example\n    cpus: 2\n", -EINVAL,
		 "3:14: address: expected an IPv4 address or a host name, got 'bad_host.example'", "bad host name");
	error_is("nodes:\n  - just-a-name\n", -EINVAL, "2:5: node: expected a mapping of keys, got 'just-a-name'",
		 "node is a scalar");
}

static void test_shape_errors(void)
{
	error_is("nodes: []\n", -EINVAL, "1:8: nodes: the node list is empty; at least one node is required",
		 "empty node list");
	error_is("cluster:\n  port: 1\nnodes:\n", -EINVAL,
		 "3:7: nodes: the node list is empty; at least one node is required", "node list left empty");
	error_is("cluster:\n  port: 1\n", -EINVAL, "1:1: missing required section 'nodes'", "missing node list");
	error_is("nodes:\n  name: n1\n", -EINVAL, "2:3: nodes: expected a sequence of nodes, got a mapping",
		 "nodes is a mapping");
	error_is("- a\n- b\n", -EINVAL,
		 "1:1: expected a mapping with the sections cluster, gossip, policy, nodes, got a sequence",
		 "top level is a sequence");
	error_is("# only a comment\n", -EINVAL,
		 "1:1: the file is empty; expected the sections cluster, gossip, policy, nodes", "empty file");
	error_is(NODES "---\nnodes: []\n", -EINVAL, "5:1: only one YAML document is allowed in the file",
		 "two documents");
	error_is("cluster:\n  port: 1\n bad: 2\n" NODES, -EINVAL,
		 "3:2: YAML syntax error: did not find expected key (while parsing a block mapping at 1:1)",
		 "YAML syntax error (indentation)");
	error_is("cluster: {port: 1\n" NODES, -EINVAL,
		 "2:6: YAML syntax error: did not find expected ',' or '}' (while parsing a flow mapping at 1:10)",
		 "YAML syntax error (flow mapping)");
	error_is("cluster:\n  name: \xff\n" NODES, -EINVAL, "2:9: YAML error: invalid leading UTF-8 octet (0xff)",
		 "invalid UTF-8");
}

static void test_io_errors(void)
{
	struct mos_conf *c = (struct mos_conf *)1;
	char err[512], want[512];
	int rc;

	snprintf(path, sizeof(path), "%s/absent.yaml", dir);
	rc = mos_conf_load(path, &c, err, sizeof(err));
	snprintf(want, sizeof(want), "%s: cannot read: %s", path, strerror(ENOENT));
	TAP_OK(rc == -ENOENT && !c, "missing file: -ENOENT");
	TAP_IS_STR(err, want, "missing file: message");
	rc = mos_conf_load(dir, &c, err, sizeof(err));
	snprintf(want, sizeof(want), "%s: cannot read: %s", dir, strerror(EISDIR));
	TAP_OK(rc == -EISDIR && !c, "directory: -EISDIR");
	TAP_IS_STR(err, want, "directory: message");
}

static void test_help(void)
{
	static const char *const want[] = { "cluster.name ", "cluster.port ", "cluster.key_file ",
		"cluster.socket ", "cluster.state_dir ", "cluster.log_level ", "gossip.interval_ms ",
		"gossip.fanout ", "gossip.max_age_ms ", "policy.enable ", "policy.threshold ",
		"policy.interval_ms ", "policy.cooldown_ms ", "nodes[].name ", "nodes[].address ",
		"nodes[].role ", "nodes[].cpus ", "nodes[].topology ", "nodes[].memory " };
	char *buf = NULL;
	size_t len = 0, found = 0;
	FILE *f = open_memstream(&buf, &len);

	mos_conf_help(f);
	fclose(f);
	for (size_t i = 0; i < sizeof(want) / sizeof(want[0]); i++)
		found += strstr(buf, want[i]) != NULL;
	TAP_OK(found == sizeof(want) / sizeof(want[0]), "help lists all %zu keys (found %zu)",
	       sizeof(want) / sizeof(want[0]), found);
	TAP_OK(strstr(buf, "7077") && strstr(buf, "1..65535") && strstr(buf, "full|diskless"),
	       "help shows defaults and ranges");
	free(buf);
}

int main(void)
{
	if (!mkdtemp(dir)) {
		printf("Bail out! mkdtemp\n");
		return 1;
	}
	test_full();
	test_defaults();
	test_key_errors();
	test_range_errors();
	test_node_errors();
	test_shape_errors();
	test_io_errors();
	test_help();
	for (int i = 0; i < nfiles; i++) {
		snprintf(path, sizeof(path), "%s/c%d.yaml", dir, i);
		unlink(path);
	}
	rmdir(dir);
	return TAP_DONE();
}
