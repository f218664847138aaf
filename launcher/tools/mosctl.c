/* mosctl.c - the administrator's tool: dispatches to one subcommand family. */
#include "mosctl.h"
#include <stdio.h>
#include <string.h>

static const struct {
	const char *name;
	int (*fn)(int, char **);
	const char *help;
} cmds[] = {
	{ "check-config", mosctl_check_config, "check-config FILE   validate a cluster YAML file" },
	{ "vcluster", mosctl_vcluster, "vcluster up|down|exec|status ...   a local virtual cluster" },
	{ "ps", mosctl_ps, "ps [JOB]            the cluster's processes (like mosps)" },
	{ "loads", mosctl_loads, "loads               every node's load" },
	{ "signal", mosctl_signal, "signal JOB[.RANK] SIG   send a signal to every process of a job (or one rank)" },
	{ "kill", mosctl_kill, "kill JOB[.RANK]     end a job at once (SIGKILL)" },
	{ "terminate", mosctl_terminate, "terminate JOB[.RANK]   SIGTERM, then SIGKILL after 5 s" },
	{ "pause", mosctl_pause, "pause JOB[.RANK]    freeze a job's processes (SIGSTOP)" },
	{ "resume", mosctl_resume, "resume JOB[.RANK]   let them run again (SIGCONT)" },
	{ "checkpoint", mosctl_checkpoint, "checkpoint JOB [DIR]  a restartable checkpoint (mosexec --restart DIR)" },
	{ "fault", mosctl_fault, "fault NAME|clear    arm a fault-injection point in this node's mosd (root)" },
};

static void usage(FILE *out)
{
	fprintf(out, "usage: mosctl COMMAND [ARGS]\n");
	for (size_t i = 0; i < sizeof(cmds) / sizeof(cmds[0]); i++)
		fprintf(out, "  mosctl %s\n", cmds[i].help);
}

int main(int argc, char **argv)
{
	if (argc < 2 || !strcmp(argv[1], "-h") || !strcmp(argv[1], "--help")) {
		usage(argc < 2 ? stderr : stdout);
		return argc < 2 ? 2 : 0;
	}
	for (size_t i = 0; i < sizeof(cmds) / sizeof(cmds[0]); i++)
		if (!strcmp(argv[1], cmds[i].name))
			return cmds[i].fn(argc - 1, argv + 1);
	fprintf(stderr, "mosctl: unknown command '%s'\n", argv[1]);
	usage(stderr);
	return 2;
}
