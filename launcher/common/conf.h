/* conf.h - the cluster configuration: one YAML file, loaded once into an
 * immutable struct. Every key is one line of the table in conf.c (name, type,
 * default, range, help); errors name FILE:LINE:COL. */
#ifndef MOS_CONF_H
#define MOS_CONF_H

#include <stddef.h>
#include <stdint.h>
#include <stdbool.h>
#include <stdio.h>

#define MOS_NAME_MAX 64
#define MOS_DEFAULT_PORT 7077
#define MOS_DEFAULT_SOCKET "@mosd"

enum mos_role { MOS_ROLE_FULL = 0, MOS_ROLE_DISKLESS = 1 };

struct mos_conf_node {
	char name[MOS_NAME_MAX];
	char address[MOS_NAME_MAX];   /* IPv4 literal or resolvable host name */
	enum mos_role role;
	unsigned cpus;                /* from `cpus`, or counted PUs of `topology` */
	char *topology;               /* hwloc synthetic string, or NULL */
	uint64_t memory;              /* bytes; 0 = unknown */
	unsigned index;               /* position in the file, 0-based */
};

struct mos_conf {
	char *path;
	char cluster_name[MOS_NAME_MAX];
	unsigned port;                /* cluster.port, 1..65535 */
	char *key_file;               /* cluster.key_file */
	char *socket;                 /* cluster.socket: "@name" = abstract */
	char *state_dir;              /* cluster.state_dir */
	char *log_level;              /* cluster.log_level: error|warn|info|debug */
	struct {
		unsigned interval_ms; /* 10..60000, default 1000 */
		unsigned fanout;      /* 1..16, default 2 */
		unsigned max_age_ms;  /* 100..600000, default 10000 */
	} gossip;
	struct {
		bool enable;          /* default true */
		double threshold;     /* 0..10, default 0.5 (load difference) */
		unsigned interval_ms; /* 100..600000, default 2000 */
		unsigned cooldown_ms; /* 0..3600000, default 10000 */
	} policy;
	size_t n_nodes;
	struct mos_conf_node *nodes;
};

/* mos_conf_load - parse and validate PATH.
 * Returns 0 and sets *out (free with mos_conf_free), or a negative errno and
 * writes "FILE:LINE:COL: message" (or "FILE: message" where no position
 * applies) into err. Unknown keys, wrong types, duplicate node names or
 * addresses, out-of-range values, an empty node list and unreadable files are
 * errors. */
int mos_conf_load(const char *path, struct mos_conf **out, char *err, size_t errlen);
void mos_conf_free(struct mos_conf *conf);

/* mos_conf_node_find - the node called NAME, or NULL. */
const struct mos_conf_node *mos_conf_node_find(const struct mos_conf *conf, const char *name);

/* mos_conf_help - print the key table (name, type, default, range, help). */
void mos_conf_help(FILE *out);

#endif
