/* mosctl_vcluster.c - `mosctl vcluster up|down|exec|status`: hands its
 * arguments to the mos-vcluster script, which builds and removes the local
 * virtual cluster (namespaces, bridge, cgroups, one mosd per node). */
#include "mosctl.h"
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#ifndef PKGLIBEXECDIR
#define PKGLIBEXECDIR "/usr/local/libexec/mosexec"
#endif

/* mosctl_vcluster - ARGV[0] is "vcluster"; ARGV[1..] go to the script, found
 * in $MOS_VCLUSTER or else PKGLIBEXECDIR/mos-vcluster. Replaces this process
 * on success, so the script's exit status is mosctl's. Returns 127 (script
 * missing) or 126 (cannot run it) otherwise. */
int mosctl_vcluster(int argc, char **argv)
{
	const char *script = getenv("MOS_VCLUSTER");
	char **args;
	int err;

	if (!script || !*script)
		script = PKGLIBEXECDIR "/mos-vcluster";
	/* slot 0 for "bash" if the script lacks its execute bit, slot 1 for it */
	args = calloc((size_t)argc + 2, sizeof(*args));
	if (!args) {
		fprintf(stderr, "mosctl vcluster: out of memory\n");
		return 126;
	}
	args[0] = "bash";
	args[1] = (char *)script;
	for (int i = 1; i < argc; i++)
		args[i + 1] = argv[i];

	execv(script, args + 1);
	err = errno;
	if (err == EACCES || err == ENOEXEC) {
		execvp("bash", args);
		err = errno;
	}
	fprintf(stderr, "mosctl vcluster: cannot run %s: %s\n", script, strerror(err));
	free(args);
	return err == ENOENT ? 127 : 126;
}
