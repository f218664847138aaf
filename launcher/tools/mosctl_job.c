/* mosctl_job.c - job control through mosd's own socket: the fallback of
 * mosctl_pmix.c when no PMIx server of mosd is found; fault injection. */
#include "mosctl.h"
#include "mosps.h"
#include "msg.h"
#include "util.h"
#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

int mosctl_sock_ps(uint32_t job)
{
	return mosps_print(stdout, job, 0);
}

int mosctl_sock_signal(const char *who, const char *target, int sig)
{
	uint32_t job;
	int64_t rank;
	struct mos_msg m;
	if (mos_parse_job_rank(target, &job, &rank)) {
		fprintf(stderr, "mosctl %s: '%s' is not JOB or JOB.RANK\n", who, target);
		return 2;
	}
	if (mos_msg_init(&m, MOS_MSG_SIGNAL))
		return 1;
	mos_msg_put_u32(&m, MOS_T_JOBID, job);
	mos_msg_put_u32(&m, MOS_T_SIG, (uint32_t)sig);
	if (rank >= 0)
		mos_msg_put_i32(&m, MOS_T_RANK, (int32_t)rank);
	char name[64];
	snprintf(name, sizeof(name), "mosctl %s", who);
	return mos_ask(name, &m, NULL);
}

int mosctl_fault(int argc, char **argv)
{
	struct mos_msg m;
	if (argc != 2) {
		fprintf(stderr, "usage: mosctl fault NAME[,NAME]|clear   (root; arms fault injection in this node's mosd)\n");
		return 2;
	}
	if (mos_msg_init(&m, MOS_MSG_FAULT))
		return 1;
	mos_msg_put_str(&m, MOS_T_NAME, argv[1]);
	return mos_ask("mosctl fault", &m, NULL);
}
