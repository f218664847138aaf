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
#include <sys/stat.h>
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
} ktypes[] = {
	[K_UINT] = { "integer", "an integer" },
	[K_DOUBLE] = { "number", "a number" },
	[K_BOOL] = { "boolean", "true or false" },
	[K_STR] = { "string", "a string" },
	[K_NAME] = { "name", "a name of 1..63 characters from A-Z a-z 0-9 . _ -" },
	[K_ADDR] = { "address", "an IPv4 address or a host name" },
	[K_WORD] = { "word", "one of" },
	[K_ENUM] = { "word", "one of" },
	[K_SIZE] = { "size", "a size in bytes (an integer, optionally with K, M, G or T)" },
	[K_TOPO] = { "topology", "an hwloc synthetic topology like 'package:1 core:2 pu:1'" },
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
	yaml_mark_t key_at[NKEYS];
};

static int fail(struct ctx *c, yaml_mark_t at, const char *fmt, ...)
	__attribute__((format(printf, 3, 4)));
static int fail(struct ctx *c, yaml_mark_t at, const char *fmt, ...)
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

/* --- values --------------------------------------------------------------- */

static void range_str(const struct key *k, char *buf, size_t len)
{
	switch (k->type) {
	case K_UINT:
		snprintf(buf, len, "%.0f..%.0f", k->min, k->max);
		break;
	case K_DOUBLE:
		snprintf(buf, len, "%g..%g", k->min, k->max);
		break;
	case K_BOOL:
		snprintf(buf, len, "true|false");
		break;
	case K_STR:
		snprintf(buf, len, "%.0f..%.0f chars", k->min, k->max);
		break;
	case K_NAME:
		snprintf(buf, len, "[A-Za-z0-9._-]{1,%.0f}", k->max);
		break;
	case K_ADDR:
		snprintf(buf, len, "IPv4 or host name");
		break;
	case K_WORD:
	case K_ENUM:
		snprintf(buf, len, "%s", k->choices);
		break;
	case K_SIZE:
		snprintf(buf, len, "0..2^64-1 bytes");
		break;
	case K_TOPO:
		snprintf(buf, len, "%.0f..%.0f PUs", k->min, k->max);
		break;
	}
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
 * -> 8), ignoring attributes in () and []; bounds the work before hwloc
 * builds the topology. */
static unsigned long long topo_bound(const char *s)
{
	unsigned long long prod = 1;
	int depth = 0;

	for (const char *p = s; *p; p++) {
		if (*p == '(' || *p == '[')
			depth++;
		else if ((*p == ')' || *p == ']') && depth > 0)
			depth--;
		else if (*p == ':' && !depth && p[1] >= '0' && p[1] <= '9') {
			unsigned long long n = strtoull(p + 1, NULL, 10);
			prod = n && prod > ULLONG_MAX / n ? ULLONG_MAX : prod * n;
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
		if (topo_bound(s) > (unsigned long long)k->max)
			return snprintf(why, len, "'%s' has more than %.0f PUs", s, k->max), -ERANGE;
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
