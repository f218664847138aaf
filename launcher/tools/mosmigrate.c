/* mosmigrate.c - move a running process of a mosexec job to another node,
 * live: `mosmigrate JOB.RANK|PID NODE|home`. Waits for the move to finish
 * and says how long the process was frozen. */
#include "msg.h"
#include "util.h"
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

static void usage(FILE *f)
{
	fprintf(f, "usage: mosmigrate [--force] [--lazy|--direct|--copy] [-q] JOB.RANK|PID NODE|home\n"
		   "  JOB.RANK   a rank of a job (see mosps); PID: a process's PID on this node\n"
		   "  NODE       a node of the cluster, or 'home' for the job's home node\n"
		   "  --force    move even to a node whose cpus are all busy, or a process\n"
		   "             holding a timerfd (CRIU 4.2.1 may restore it disarmed)\n"
		   "  --lazy     post-copy: memory pages follow on demand (shorter freeze;\n"
		   "             the process needs its old node until the last page is in,\n"
		   "             and cannot move or be checkpointed again before)\n"
		   "  --direct   (the default where the kernel has userfaultfd) memory goes\n"
		   "             straight from the stopped process into its new copy, all of\n"
		   "             it before the hand-over, never into either node's tmpfs\n"
		   "  --copy     memory goes through the dump's images in tmpfs and the\n"
		   "             daemons' link (the default without userfaultfd)\n");
}

int main(int argc, char **argv)
{
	uint32_t flags = 0, job = 0;
	int64_t rank = -1;
	int quiet = 0, i = 1;
	for (; i < argc && argv[i][0] == '-'; i++) {
		if (!strcmp(argv[i], "--force"))
			flags |= MOS_MIG_FORCE;
		else if (!strcmp(argv[i], "--lazy"))
			flags |= MOS_MIG_LAZY;
		else if (!strcmp(argv[i], "--direct"))
			flags |= MOS_MIG_DIRECT;
		else if (!strcmp(argv[i], "--copy"))
			flags |= MOS_MIG_COPY;
		else if (!strcmp(argv[i], "-q"))
			quiet = 1;
		else if (!strcmp(argv[i], "-h") || !strcmp(argv[i], "--help")) {
			usage(stdout);
			return 0;
		} else {
			fprintf(stderr, "mosmigrate: unknown option '%s'\n", argv[i]);
			usage(stderr);
			return 2;
		}
	}
	if (__builtin_popcount(flags & (MOS_MIG_LAZY | MOS_MIG_DIRECT | MOS_MIG_COPY)) > 1) {
		fprintf(stderr, "mosmigrate: --lazy, --direct and --copy exclude each other\n");
		return 2;
	}
	if (argc - i != 2) {
		usage(stderr);
		return 2;
	}
	const char *what = argv[i], *node = argv[i + 1];
	if (mos_parse_job_rank(what, &job, &rank)) {
		fprintf(stderr, "mosmigrate: '%s' is neither JOB.RANK nor a PID\n", what);
		return 2;
	}
	struct mos_msg m;
	if (mos_msg_init(&m, MOS_MSG_MIGRATE))
		return 1;
	if (rank < 0) { /* a bare number is a PID on this node */
		mos_msg_put_u32(&m, MOS_T_PID, job);
		job = 0;
	}
	mos_msg_put_u32(&m, MOS_T_JOBID, job);
	mos_msg_put_u32(&m, MOS_T_RANK, rank < 0 ? 0 : (uint32_t)rank);
	mos_msg_put_str(&m, MOS_T_NODE, node);
	mos_msg_put_u32(&m, MOS_T_FLAGS, flags);
	return mos_ask("mosmigrate", &m, quiet ? NULL : "moved");
}
