/* conf.c - the cluster configuration loader: one table of keys (name, type,
 * default, range, help), a libyaml document walk that fills struct mos_conf,
 * and error messages that name FILE:LINE:COL of the offending key or value. */
#include "conf.h"
#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <hwloc.h>
#include <math.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <unistd.h>
#include <yaml.h>

#define CONF_MAX_BYTES (4 << 20)
#define CONF_MAX_CPUS 4096
#define ARRAY_SIZE(a) (sizeof(a) / sizeof((a)[0]))

enum sec { SEC_CLUSTER, SEC_GOSSIP, SEC_POLICY, SEC_NODE, SEC_COUNT };
static const char *const sec_names[SEC_COUNT] = { "cluster", "gossip", "policy", "nodes" };

enum ktype { K_UINT, K_DOUBLE, K_BOOL, K_STR, K_NAME, K_ADDR, K_WORD, K_ENUM, K_SIZE, K_TOPO };

static const struct {
	const char *name;   /* the TYPE column of the help */
	const char *expect; /* "KEY: expected <this>, got ..." */
	const char *range;  /* the RANGE column, printf'd with (min, max) */
} ktypes[] = {
	[K_UINT] = { "integer", "an integer", "%.0f..%.0f" },
	[K_DOUBLE] = { "number", "a number", "%g..%g" },
	[K_BOOL] = { "boolean", "true or false", "true|false" },
	[K_STR] = { "string", "a string", "%.0f..%.0f chars" },
	[K_NAME] = { "name", "a name of 1..63 characters from A-Z a-z 0-9 . _ -", "[A-Za-z0-9._-]{%.0f,%.0f}" },
	[K_ADDR] = { "address", "an IPv4 address or a host name", "IPv4 or host name" },
	[K_WORD] = { "word", "one of", NULL },
	[K_ENUM] = { "word", "one of", NULL },
	[K_SIZE] = { "size", "a size in bytes (an integer, optionally with K, M, G or T)", "0..2^64-1 bytes" },
	[K_TOPO] = { "topology", "an hwloc synthetic topology like 'package:1 core:2 pu:1'", "%.0f..%.0f PUs" },
};

enum { K_OPTIONAL = 0, K_REQUIRED = 1, K_ONE_OF = 2 };

struct key {
	enum sec sec;
	const char *name;
	enum ktype type;
	const char *def;     /* parsed like a value from the file; NULL: none */
	double min, max;     /* numbers: value range; strings: length range */
	const char *choices; /* K_WORD, K_ENUM: "a|b|c" */
	size_t off;          /* into struct mos_conf, or mos_conf_node for SEC_NODE */
	int need;            /* K_OPTIONAL, K_REQUIRED, K_ONE_OF (exactly one of its group) */
	const char *help;
};

#define C(f) offsetof(struct mos_conf, f)
#define N(f) offsetof(struct mos_conf_node, f)
static const struct key keys[] = {
	{ SEC_CLUSTER, "name", K_NAME, "mosexec", 1, MOS_NAME_MAX - 1, NULL, C(cluster_name), 0,
	  "cluster name, shown by the tools and in logs" },
	{ SEC_CLUSTER, "port", K_UINT, "7077", 1, 65535, NULL, C(port), 0,
	  "TCP port every mosd listens on and dials its peers at" },
	{ SEC_CLUSTER, "key_file", K_STR, "/etc/mosexec/cluster.key", 1, 4095, NULL, C(key_file), 0,
	  "file holding the shared secret that authenticates the daemons" },
	{ SEC_CLUSTER, "socket", K_STR, MOS_DEFAULT_SOCKET, 1, 107, NULL, C(socket), 0,
	  "mosd's local control socket; '@name' is an abstract socket" },
	{ SEC_CLUSTER, "state_dir", K_STR, "/var/lib/mosexec", 1, 4095, NULL, C(state_dir), 0,
	  "directory where mosd keeps its state (job records, checkpoints)" },
	{ SEC_CLUSTER, "log_level", K_WORD, "info", 0, 0, "error|warn|info|debug", C(log_level), 0,
	  "least severe message level that is logged" },
	{ SEC_GOSSIP, "interval_ms", K_UINT, "1000", 10, 60000, NULL, C(gossip.interval_ms), 0,
	  "milliseconds between two rounds of load gossip" },
	{ SEC_GOSSIP, "fanout", K_UINT, "2", 1, 16, NULL, C(gossip.fanout), 0,
	  "peers each round sends the load view to" },
	{ SEC_GOSSIP, "max_age_ms", K_UINT, "10000", 100, 600000, NULL, C(gossip.max_age_ms), 0,
	  "a node not heard of for this many milliseconds leaves the view" },
	{ SEC_POLICY, "enable", K_BOOL, "true", 0, 0, NULL, C(policy.enable), 0,
	  "let the rebalancer migrate processes on its own" },
	{ SEC_POLICY, "threshold", K_DOUBLE, "0.5", 0, 10, NULL, C(policy.threshold), 0,
	  "load difference (runnable processes per CPU) that triggers a migration" },
	{ SEC_POLICY, "interval_ms", K_UINT, "2000", 100, 600000, NULL, C(policy.interval_ms), 0,
	  "milliseconds between two rebalancing decisions" },
	{ SEC_POLICY, "cooldown_ms", K_UINT, "10000", 0, 3600000, NULL, C(policy.cooldown_ms), 0,
	  "a migrated process stays where it is for at least this long" },
	{ SEC_NODE, "name", K_NAME, NULL, 1, MOS_NAME_MAX - 1, NULL, N(name), K_REQUIRED,
	  "node name, unique in the cluster (mosd finds its own entry by it)" },
	{ SEC_NODE, "address", K_ADDR, NULL, 1, MOS_NAME_MAX - 1, NULL, N(address), K_REQUIRED,
	  "where the node's mosd listens, unique in the cluster" },
	{ SEC_NODE, "role", K_ENUM, "full", 0, 0, "full|diskless", N(role), 0,
	  "full: runs and starts processes; diskless: only hosts migrated ones" },
	{ SEC_NODE, "cpus", K_UINT, NULL, 1, CONF_MAX_CPUS, NULL, N(cpus), K_ONE_OF,
	  "number of CPUs (give cpus or topology, exactly one)" },
	{ SEC_NODE, "topology", K_TOPO, NULL, 1, CONF_MAX_CPUS, NULL, N(topology), K_ONE_OF,
	  "hwloc synthetic topology; cpus = its number of PUs" },
	{ SEC_NODE, "memory", K_SIZE, "0", 0, 0, NULL, N(memory), 0,
	  "memory in bytes, suffix K/M/G/T = 2^10/2^20/2^30/2^40; 0 = unknown" },
};
#define NKEYS ARRAY_SIZE(keys)

struct ctx {
	const char *path;
	char *err;
	size_t errlen;
	yaml_document_t *doc;
	struct mos_conf *conf;
	yaml_mark_t *name_at, *addr_at; /* per node, for duplicate messages */
};

/* Which keys a mapping gave, and where. */
struct seen {
	unsigned char has[NKEYS];
	yaml_mark_t key_at[NKEYS], val_at[NKEYS];
};

static int __attribute__((format(printf, 3, 4))) fail(struct ctx *c, yaml_mark_t at, const char *fmt, ...)
{
	va_list ap;
	int n;

	n = snprintf(c->err, c->errlen, "%s:%zu:%zu: ", c->path, at.line + 1, at.column + 1);
	if (n >= 0 && (size_t)n < c->errlen) {
		va_start(ap, fmt);
		vsnprintf(c->err + n, c->errlen - n, fmt, ap);
		va_end(ap);
	}
	return -EINVAL;
}

/* sys_fail - an error without a position (memory, I/O): "FILE: message". */
static int sys_fail(struct ctx *c, const char *what, int rc)
{
	snprintf(c->err, c->errlen, "%s: %s%s", c->path, what, strerror(-rc));
	return rc;
}

/* --- values --------------------------------------------------------------- */

static void range_str(const struct key *k, char *buf, size_t len)
{
	if (k->choices)
		snprintf(buf, len, "%s", k->choices);
	else
		snprintf(buf, len, ktypes[k->type].range, k->min, k->max);
}

static int parse_ll(const char *s, long long *v)
{
	char *end;

	if (!*s || (*s != '-' && *s != '+' && (*s < '0' || *s > '9')))
		return -EINVAL;
	errno = 0;
	*v = strtoll(s, &end, 10);
	if (*end)
		return -EINVAL;
	return errno == ERANGE ? -ERANGE : 0;
}

static int parse_bool(const char *s, bool *b)
{
	static const char *const t[] = { "true", "yes", "on" }, *const f[] = { "false", "no", "off" };

	for (size_t i = 0; i < ARRAY_SIZE(t); i++) {
		if (!strcasecmp(s, t[i]))
			return *b = true, 0;
		if (!strcasecmp(s, f[i]))
			return *b = false, 0;
	}
	return -EINVAL;
}

/* parse_size - "4096", "512M", "4G": bytes, suffixes are powers of 1024. */
static int parse_size(const char *s, uint64_t *v)
{
	static const char units[] = "KMGT";
	unsigned long long n;
	const char *u;
	char *end;

	if (*s < '0' || *s > '9')
		return -EINVAL;
	errno = 0;
	n = strtoull(s, &end, 10);
	if (errno == ERANGE)
		return -ERANGE;
	if (!*end)
		return *v = n, 0;
	if (end[1] || !(u = strchr(units, end[0] & ~0x20)) || !end[0])
		return -EINVAL;
	unsigned shift = 10 * (unsigned)(u - units + 1);
	if (n > (UINT64_MAX >> shift))
		return -ERANGE;
	*v = (uint64_t)n << shift;
	return 0;
}

static bool valid_name(const char *s, size_t max)
{
	size_t n = strspn(s, "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789._-");

	return n >= 1 && n <= max && !s[n];
}

/* valid_address - an IPv4 literal (anything made of digits and dots must be
 * one) or an RFC 1123 host name. Names are not resolved here: a config check
 * must not depend on the DNS of the machine that runs it. */
static bool valid_address(const char *s, size_t max)
{
	struct in_addr a;
	size_t len = strlen(s), lab = 0;

	if (!len || len > max)
		return false;
	if (strspn(s, "0123456789.") == len)
		return inet_pton(AF_INET, s, &a) == 1;
	for (const char *p = s;; p++) {
		if (*p == '.' || !*p) {
			if (!lab || p[-1] == '-')
				return false;
			if (!*p)
				return true;
			lab = 0;
		} else if ((*p >= 'a' && *p <= 'z') || (*p >= 'A' && *p <= 'Z') ||
			   (*p >= '0' && *p <= '9') || (*p == '-' && lab)) {
			if (++lab > 63)
				return false;
		} else {
			return false;
		}
	}
}

/* topo_bound - product of the arities of a synthetic string ("core:2 pu:4"
 * or "2 4" -> 8), skipping attributes in () and []; bounds the work before
 * hwloc builds the topology. */
static unsigned long long topo_bound(const char *s)
{
	unsigned long long prod = 1, n;
	int depth = 0;

	for (const char *p = s; *p; p++) {
		if (*p == '(' || *p == '[')
			depth++;
		else if ((*p == ')' || *p == ']') && depth > 0)
			depth--;
		else if (!depth && *p >= '0' && *p <= '9' && (p == s || strchr(": \t", p[-1]))) {
			n = strtoull(p, NULL, 10);
			prod = n && prod > ULLONG_MAX / n ? ULLONG_MAX : prod * n;
			while (p[1] >= '0' && p[1] <= '9')
				p++;
		}
	}
	return prod;
}

/* topo_count - number of PUs of the synthetic topology S. */
static int topo_count(const char *s, unsigned *pus)
{
	hwloc_topology_t t;
	int n, rc = -EINVAL;

	if (hwloc_topology_init(&t) < 0)
		return -ENOMEM;
	if (hwloc_topology_set_synthetic(t, s) == 0 && hwloc_topology_load(t) == 0) {
		n = hwloc_get_nbobjs_by_type(t, HWLOC_OBJ_PU);
		if (n > 0) {
			*pus = (unsigned)n;
			rc = 0;
		}
	}
	hwloc_topology_destroy(t);
	return rc;
}

/* choice_index - position of S in CHOICES "a|b|c", or -EINVAL. */
static int choice_index(const char *choices, const char *s)
{
	size_t slen = strlen(s);
	int i = 0;

	for (const char *c = choices;; c++, i++) {
		size_t n = strcspn(c, "|");
		if (n == slen && !strncmp(c, s, n))
			return i;
		c += n;
		if (!*c)
			return -EINVAL;
	}
}

static int set_string(char **dst, const char *s)
{
	char *d = strdup(s);

	if (!d)
		return -ENOMEM;
	free(*dst);
	*dst = d;
	return 0;
}

/* set_typed - the key types that need more than a number check. */
static int set_typed(const struct key *k, const char *s, void *base, char *why, size_t len)
{
	void *p = (char *)base + k->off;
	size_t slen = strlen(s);
	unsigned long long bound;
	uint64_t size;
	unsigned pus;
	char range[48];
	int rc;

	range_str(k, range, sizeof(range));
	switch (k->type) {
	case K_STR:
		if (slen < k->min || slen > k->max)
			return snprintf(why, len, "length %zu is out of range %s", slen, range), -ERANGE;
		return set_string(p, s);
	case K_NAME:
	case K_ADDR:
		if (!(k->type == K_NAME ? valid_name(s, k->max) : valid_address(s, k->max)))
			return -EINVAL;
		snprintf(p, MOS_NAME_MAX, "%s", s);
		return 0;
	case K_WORD:
	case K_ENUM:
		rc = choice_index(k->choices, s);
		if (rc < 0)
			return rc;
		if (k->type == K_WORD)
			return set_string(p, s);
		*(int *)p = rc; /* the enum's values are the choices' positions */
		return 0;
	case K_SIZE:
		rc = parse_size(s, &size);
		if (rc == -ERANGE)
			snprintf(why, len, "'%s' is out of range %s", s, range);
		if (!rc)
			*(uint64_t *)p = size;
		return rc;
	case K_TOPO:
		bound = topo_bound(s);
		if (bound > (unsigned long long)k->max && bound < ULLONG_MAX)
			return snprintf(why, len, "'%s' has %llu PUs, out of range %s", s, bound, range), -ERANGE;
		if (bound > (unsigned long long)k->max)
			return snprintf(why, len, "'%s' has too many PUs, out of range %s", s, range), -ERANGE;
		rc = topo_count(s, &pus);
		if (rc)
			return rc;
		if (pus < k->min || pus > k->max)
			return snprintf(why, len, "'%s' has %u PUs, out of range %s", s, pus, range), -ERANGE;
		/* cpus is what every consumer reads; topology only explains it */
		((struct mos_conf_node *)base)->cpus = pus;
		return set_string(p, s);
	default:
		return -EINVAL;
	}
}

/* parse_value - store the text S of key K into BASE. Returns 0, -EINVAL when
 * S is not of K's type, -ERANGE with WHY filled when it is out of range, or
 * -ENOMEM. */
static int parse_value(const struct key *k, const char *s, void *base, char *why, size_t len)
{
	void *p = (char *)base + k->off;
	char range[48];
	long long ll;
	double d;
	char *end;
	int rc;

	range_str(k, range, sizeof(range));
	switch (k->type) {
	case K_UINT:
		rc = parse_ll(s, &ll);
		if (rc == -EINVAL)
			return rc;
		if (rc || ll < k->min || ll > k->max)
			return snprintf(why, len, "%s is out of range %s", s, range), -ERANGE;
		*(unsigned *)p = (unsigned)ll;
		return 0;
	case K_DOUBLE:
		errno = 0;
		d = strtod(s, &end);
		if (!*s || *end || !isfinite(d))
			return -EINVAL;
		if (d < k->min || d > k->max)
			return snprintf(why, len, "%s is out of range %s", s, range), -ERANGE;
		*(double *)p = d;
		return 0;
	case K_BOOL:
		return parse_bool(s, p);
	default:
		return set_typed(k, s, base, why, len);
	}
}

/* got - how an error message shows the value N that was found. */
static const char *got(const yaml_node_t *n, char *buf, size_t len)
{
	if (n->type != YAML_SCALAR_NODE)
		return n->type == YAML_MAPPING_NODE ? "a mapping" : "a sequence";
	if (!n->data.scalar.length)
		return "an empty value";
	if (n->data.scalar.length > 60)
		snprintf(buf, len, "'%.57s...'", (const char *)n->data.scalar.value);
	else
		snprintf(buf, len, "'%s'", (const char *)n->data.scalar.value);
	return buf;
}

static int set_value(struct ctx *c, const struct key *k, yaml_node_t *v, void *base)
{
	char why[160] = "", buf[80];
	const char *s;
	int rc = -EINVAL;

	if (v->type == YAML_SCALAR_NODE) {
		s = (const char *)v->data.scalar.value;
		if (strlen(s) == v->data.scalar.length) /* no NUL inside */
			rc = parse_value(k, s, base, why, sizeof(why));
	}
	if (rc == -ERANGE)
		return fail(c, v->start_mark, "%s: %s", k->name, why);
	if (rc == -EINVAL)
		return fail(c, v->start_mark, "%s: expected %s%s%s, got %s", k->name,
			    ktypes[k->type].expect, k->choices ? " " : "", k->choices ? k->choices : "",
			    got(v, buf, sizeof(buf)));
	return rc ? sys_fail(c, "", rc) : 0;
}

/* apply_defaults - every key of SEC that has a default, into BASE. */
static int apply_defaults(enum sec sec, void *base)
{
	char why[160];
	int rc = 0;

	for (size_t i = 0; i < NKEYS && !rc; i++)
		if (keys[i].sec == sec && keys[i].def)
			rc = parse_value(&keys[i], keys[i].def, base, why, sizeof(why));
	return rc;
}

static const struct key *key_find(enum sec sec, const char *name)
{
	for (size_t i = 0; i < NKEYS; i++)
		if (keys[i].sec == sec && !strcmp(keys[i].name, name))
			return &keys[i];
	return NULL;
}

static void key_list(enum sec sec, char *buf, size_t len)
{
	size_t n = 0;

	buf[0] = 0;
	for (size_t i = 0; i < NKEYS && n < len; i++)
		if (sec == SEC_COUNT ? i < SEC_COUNT : keys[i].sec == sec)
			n += snprintf(buf + n, len - n, "%s%s", n ? ", " : "",
				      sec == SEC_COUNT ? sec_names[i] : keys[i].name);
}

/* check_key - the key of PAIR in MAP must be a scalar not given before. */
static int check_key(struct ctx *c, yaml_node_t *map, yaml_node_pair_t *pair, const char **name)
{
	yaml_node_t *k = yaml_document_get_node(c->doc, pair->key);
	char buf[80];

	if (k->type != YAML_SCALAR_NODE || strlen((char *)k->data.scalar.value) != k->data.scalar.length)
		return fail(c, k->start_mark, "expected a key name, got %s", got(k, buf, sizeof(buf)));
	*name = (const char *)k->data.scalar.value;
	for (yaml_node_pair_t *p = map->data.mapping.pairs.start; p < pair; p++) {
		yaml_node_t *o = yaml_document_get_node(c->doc, p->key);
		if (o->type == YAML_SCALAR_NODE && !strcmp((char *)o->data.scalar.value, *name))
			return fail(c, k->start_mark, "duplicate key '%s' (first at %zu:%zu)", *name,
				    o->start_mark.line + 1, o->start_mark.column + 1);
	}
	return 0;
}

/* walk_section - the keys of mapping MAP into BASE; an empty value keeps the
 * defaults (a section whose keys are all commented out). */
static int walk_section(struct ctx *c, enum sec sec, const char *what, yaml_node_t *map, void *base,
			struct seen *seen)
{
	char buf[160];
	const char *name;
	int rc;

	memset(seen, 0, sizeof(*seen));
	if (map->type == YAML_SCALAR_NODE && !map->data.scalar.length &&
	    map->data.scalar.style == YAML_PLAIN_SCALAR_STYLE && sec != SEC_NODE)
		return 0;
	if (map->type != YAML_MAPPING_NODE)
		return fail(c, map->start_mark, "%s: expected a mapping of keys, got %s", what,
			    got(map, buf, sizeof(buf)));
	for (yaml_node_pair_t *p = map->data.mapping.pairs.start; p < map->data.mapping.pairs.top; p++) {
		rc = check_key(c, map, p, &name);
		if (rc)
			return rc;
		const struct key *k = key_find(sec, name);
		yaml_node_t *kn = yaml_document_get_node(c->doc, p->key);
		if (!k) {
			key_list(sec, buf, sizeof(buf));
			return fail(c, kn->start_mark, "unknown key '%s' in %s; allowed: %s", name,
				    sec == SEC_NODE ? "a node" : sec_names[sec], buf);
		}
		rc = set_value(c, k, yaml_document_get_node(c->doc, p->value), base);
		if (rc)
			return rc;
		seen->has[k - keys] = 1;
		seen->key_at[k - keys] = kn->start_mark;
		seen->val_at[k - keys] = yaml_document_get_node(c->doc, p->value)->start_mark;
	}
	return 0;
}

/* --- nodes ---------------------------------------------------------------- */

static int check_node(struct ctx *c, yaml_node_t *map, struct mos_conf_node *n, const struct seen *seen)
{
	char who[MOS_NAME_MAX + 8] = "node";
	const struct key *one = key_find(SEC_NODE, "cpus"), *two = key_find(SEC_NODE, "topology");
	size_t i = n->index;

	if (n->name[0])
		snprintf(who, sizeof(who), "node '%s'", n->name);
	for (const struct key *k = keys; k < keys + NKEYS; k++)
		if (k->sec == SEC_NODE && k->need == K_REQUIRED && !seen->has[k - keys])
			return fail(c, map->start_mark, "%s: missing required key '%s'", who, k->name);
	if (!seen->has[one - keys] && !seen->has[two - keys])
		return fail(c, map->start_mark, "%s: missing required key '%s' or '%s'", who, one->name,
			    two->name);
	if (seen->has[one - keys] && seen->has[two - keys]) {
		yaml_mark_t a = seen->key_at[one - keys], b = seen->key_at[two - keys];
		return fail(c, a.index > b.index ? a : b, "%s: give either '%s' or '%s', not both", who,
			    one->name, two->name);
	}
	c->name_at[i] = seen->val_at[key_find(SEC_NODE, "name") - keys];
	c->addr_at[i] = seen->val_at[key_find(SEC_NODE, "address") - keys];
	for (size_t j = 0; j < i; j++) {
		const struct mos_conf_node *o = &c->conf->nodes[j];
		if (!strcmp(o->name, n->name))
			return fail(c, c->name_at[i], "duplicate node name '%s' (first at %zu:%zu)", n->name,
				    c->name_at[j].line + 1, c->name_at[j].column + 1);
		if (!strcasecmp(o->address, n->address))
			return fail(c, c->addr_at[i], "duplicate node address '%s' (node '%s' at %zu:%zu)",
				    n->address, o->name, c->addr_at[j].line + 1, c->addr_at[j].column + 1);
	}
	return 0;
}

static int walk_nodes(struct ctx *c, yaml_node_t *seq)
{
	struct seen seen;
	char buf[80];
	size_t n = 0;
	int rc;

	if (seq->type == YAML_SEQUENCE_NODE)
		n = seq->data.sequence.items.top - seq->data.sequence.items.start;
	else if (seq->type != YAML_SCALAR_NODE || seq->data.scalar.length)
		return fail(c, seq->start_mark, "nodes: expected a sequence of nodes, got %s",
			    got(seq, buf, sizeof(buf)));
	if (!n)
		return fail(c, seq->start_mark, "nodes: the node list is empty; at least one node is required");
	c->conf->nodes = calloc(n, sizeof(*c->conf->nodes));
	c->name_at = calloc(n, sizeof(*c->name_at));
	c->addr_at = calloc(n, sizeof(*c->addr_at));
	if (!c->conf->nodes || !c->name_at || !c->addr_at)
		return sys_fail(c, "", -ENOMEM);
	for (size_t i = 0; i < n; i++) {
		struct mos_conf_node *node = &c->conf->nodes[i];
		yaml_node_t *map = yaml_document_get_node(c->doc, seq->data.sequence.items.start[i]);

		c->conf->n_nodes = i + 1; /* so that mos_conf_free sees it */
		node->index = i;
		rc = apply_defaults(SEC_NODE, node);
		if (!rc)
			rc = walk_section(c, SEC_NODE, "node", map, node, &seen);
		if (!rc)
			rc = check_node(c, map, node, &seen);
		if (rc)
			return rc;
	}
	return 0;
}

/* --- document ------------------------------------------------------------- */

static int walk_root(struct ctx *c, yaml_node_t *root)
{
	yaml_node_t *nodes = NULL;
	struct seen seen;
	char buf[80], list[80];
	const char *name;
	int rc, s;

	key_list(SEC_COUNT, list, sizeof(list));
	if (root->type != YAML_MAPPING_NODE)
		return fail(c, root->start_mark, "expected a mapping with the sections %s, got %s", list,
			    got(root, buf, sizeof(buf)));
	for (yaml_node_pair_t *p = root->data.mapping.pairs.start; p < root->data.mapping.pairs.top; p++) {
		rc = check_key(c, root, p, &name);
		if (rc)
			return rc;
		for (s = 0; s < SEC_COUNT && strcmp(sec_names[s], name); s++)
			;
		yaml_node_t *v = yaml_document_get_node(c->doc, p->value);
		if (s == SEC_COUNT)
			return fail(c, yaml_document_get_node(c->doc, p->key)->start_mark,
				    "unknown section '%s'; allowed: %s", name, list);
		if (s == SEC_NODE)
			nodes = v;
		else if ((rc = walk_section(c, s, sec_names[s], v, c->conf, &seen)))
			return rc;
	}
	if (!nodes)
		return fail(c, root->start_mark, "missing required section 'nodes'");
	return walk_nodes(c, nodes);
}

/* offset_mark - line and column of byte OFF (reader errors carry no mark). */
static yaml_mark_t offset_mark(const unsigned char *buf, size_t len, size_t off)
{
	yaml_mark_t m = { .index = off };

	for (size_t i = 0; i < off && i < len; i++) {
		if (buf[i] == '\n')
			m.line++, m.column = 0;
		else if ((buf[i] & 0xc0) != 0x80)
			m.column++;
	}
	return m;
}

static int yaml_fail(struct ctx *c, const yaml_parser_t *p, const unsigned char *buf, size_t len)
{
	yaml_mark_t cm = p->context_mark;

	switch (p->error) {
	case YAML_MEMORY_ERROR:
		return sys_fail(c, "", -ENOMEM);
	case YAML_READER_ERROR:
		if (p->problem_value != -1)
			return fail(c, offset_mark(buf, len, p->problem_offset), "YAML error: %s (0x%x)",
				    p->problem, (unsigned)p->problem_value);
		return fail(c, offset_mark(buf, len, p->problem_offset), "YAML error: %s", p->problem);
	default:
		if (p->context)
			return fail(c, p->problem_mark, "YAML syntax error: %s (%s at %zu:%zu)", p->problem,
				    p->context, cm.line + 1, cm.column + 1);
		return fail(c, p->problem_mark, "YAML syntax error: %s", p->problem ? p->problem : "unknown");
	}
}

/* parse_yaml - BUF into DOC (delete it after use), refusing a second document. */
static int parse_yaml(struct ctx *c, const unsigned char *buf, size_t len, yaml_document_t *doc)
{
	yaml_parser_t parser;
	yaml_document_t extra;
	int rc = 0;

	if (!yaml_parser_initialize(&parser))
		return sys_fail(c, "", -ENOMEM);
	yaml_parser_set_input_string(&parser, buf, len);
	if (!yaml_parser_load(&parser, doc)) {
		rc = yaml_fail(c, &parser, buf, len);
		goto out;
	}
	if (!yaml_parser_load(&parser, &extra)) {
		rc = yaml_fail(c, &parser, buf, len);
		yaml_document_delete(doc);
		goto out;
	}
	if (yaml_document_get_root_node(&extra)) {
		rc = fail(c, extra.start_mark, "only one YAML document is allowed in the file");
		yaml_document_delete(doc);
	}
	yaml_document_delete(&extra);
out:
	yaml_parser_delete(&parser);
	return rc;
}

/* read_file - the whole file, at most CONF_MAX_BYTES, into a malloc'd *OUT. */
static int read_file(const char *path, unsigned char **out, size_t *outlen)
{
	unsigned char *buf = NULL, *nb;
	size_t cap = 0, len = 0;
	int fd, rc = 0;
	ssize_t n;

	if ((fd = open(path, O_RDONLY | O_CLOEXEC | O_NOCTTY)) < 0)
		return -errno;
	do {
		if (len == cap) {
			if (cap >= CONF_MAX_BYTES || !(nb = realloc(buf, cap += 65536))) {
				rc = cap >= CONF_MAX_BYTES ? -EFBIG : -ENOMEM;
				break;
			}
			buf = nb;
		}
		n = read(fd, buf + len, cap - len);
		if (n < 0 && errno != EINTR)
			rc = -errno;
		len += n > 0 ? n : 0;
	} while (n && !rc);
	close(fd);
	if (rc)
		free(buf);
	else
		*out = buf, *outlen = len;
	return rc;
}

int mos_conf_load(const char *path, struct mos_conf **out, char *err, size_t errlen)
{
	struct ctx c = { .path = path, .err = err, .errlen = err ? errlen : 0 };
	yaml_document_t doc;
	unsigned char *buf = NULL;
	size_t len = 0;
	int rc;

	*out = NULL;
	rc = read_file(path, &buf, &len);
	if (rc)
		return sys_fail(&c, "cannot read: ", rc);
	c.conf = calloc(1, sizeof(*c.conf));
	if (!c.conf || !(c.conf->path = strdup(path))) {
		rc = sys_fail(&c, "", -ENOMEM);
		goto out;
	}
	for (int s = 0; s < SEC_NODE && !rc; s++)
		rc = apply_defaults(s, c.conf);
	if (!rc)
		rc = parse_yaml(&c, buf, len, &doc);
	if (rc)
		goto out;
	c.doc = &doc;
	if (!yaml_document_get_root_node(&doc))
		rc = fail(&c, doc.start_mark,
			  "the file is empty; expected the sections cluster, gossip, policy, nodes");
	else
		rc = walk_root(&c, yaml_document_get_root_node(&doc));
	yaml_document_delete(&doc);
out:
	free(buf);
	free(c.name_at);
	free(c.addr_at);
	if (rc)
		mos_conf_free(c.conf);
	else
		*out = c.conf;
	return rc;
}

void mos_conf_free(struct mos_conf *conf)
{
	if (!conf)
		return;
	for (size_t i = 0; i < conf->n_nodes; i++)
		free(conf->nodes[i].topology);
	free(conf->nodes);
	free(conf->path);
	free(conf->key_file);
	free(conf->socket);
	free(conf->state_dir);
	free(conf->log_level);
	free(conf);
}

const struct mos_conf_node *mos_conf_node_find(const struct mos_conf *conf, const char *name)
{
	for (size_t i = 0; conf && name && i < conf->n_nodes; i++)
		if (!strcmp(conf->nodes[i].name, name))
			return &conf->nodes[i];
	return NULL;
}

void mos_conf_help(FILE *out)
{
	char key[40], range[48];

	fprintf(out, "%-21s %-8s %-24s %-22s %s\n", "KEY", "TYPE", "DEFAULT", "RANGE", "MEANING");
	for (const struct key *k = keys; k < keys + NKEYS; k++) {
		snprintf(key, sizeof(key), "%s%s.%s", sec_names[k->sec], k->sec == SEC_NODE ? "[]" : "", k->name);
		range_str(k, range, sizeof(range));
		fprintf(out, "%-21s %-8s %-24s %-22s %s\n", key, ktypes[k->type].name,
			k->def ? k->def : k->need == K_REQUIRED ? "(required)" : "(one required)", range, k->help);
	}
}
