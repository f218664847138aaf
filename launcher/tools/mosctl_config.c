/* mosctl_config.c - `mosctl check-config`: validates a cluster YAML file with
 * the same loader mosd uses, so what it accepts is exactly what mosd accepts,
 * and prints the key table. */
#include "mosctl.h"
#include "conf.h"
#include <stdio.h>
#include <string.h>

static void usage(FILE *out)
{
	fprintf(out, "usage: mosctl check-config FILE   validate a cluster configuration\n"
		     "       mosctl check-config --keys  list every key: type, default, range, meaning\n");
}

/* mosctl_check_config - exit status: 0 valid (one summary line on stdout),
 * 1 invalid or unreadable (one FILE:LINE:COL: message on stderr), 2 usage. */
int mosctl_check_config(int argc, char **argv)
{
	unsigned full = 0, diskless = 0, cpus = 0;
	struct mos_conf *conf;
	char err[1024];
	const char *path;

	if (argc == 2 && (!strcmp(argv[1], "-h") || !strcmp(argv[1], "--help"))) {
		usage(stdout);
		return 0;
	}
	if (argc == 2 && !strcmp(argv[1], "--keys")) {
		mos_conf_help(stdout);
		return 0;
	}
	if (argc != 2 || (argv[1][0] == '-' && argv[1][1])) {
		if (argc == 2)
			fprintf(stderr, "mosctl check-config: unknown option '%s'\n", argv[1]);
		usage(stderr);
		return 2;
	}
	path = argv[1];
	if (mos_conf_load(path, &conf, err, sizeof(err)) < 0) {
		fprintf(stderr, "%s\n", err);
		return 1;
	}
	for (size_t i = 0; i < conf->n_nodes; i++) {
		if (conf->nodes[i].role == MOS_ROLE_DISKLESS)
			diskless++;
		else
			full++;
		cpus += conf->nodes[i].cpus;
	}
	printf("%s: ok (%zu nodes: %u full, %u diskless, %u cpus)\n", path, conf->n_nodes, full, diskless, cpus);
	mos_conf_free(conf);
	return 0;
}
