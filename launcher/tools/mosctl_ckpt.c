/* mosctl_ckpt.c - `mosctl checkpoint JOB [DIR]`: a restartable checkpoint of
 * a running job, written by the daemons to a full node's disk. */
#include "mosctl.h"
#include "msg.h"
#include "util.h"
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

int mosctl_checkpoint(int argc, char **argv)
{
	uint32_t job;
	int64_t rank;
	struct mos_msg m;
	if (argc < 2 || argc > 3 || mos_parse_job_rank(argv[1], &job, &rank) || rank >= 0) {
		fprintf(stderr, "usage: mosctl checkpoint JOB [DIR]   (DIR: a new absolute path on the node that keeps it;\n"
				"       default STATE_DIR/checkpoints/jobJOB-TIME on the job's home, or the first full node)\n");
		return 2;
	}
	if (argc == 3 && argv[2][0] != '/') {
		fprintf(stderr, "mosctl checkpoint: DIR must be an absolute path\n");
		return 2;
	}
	if (mos_msg_init(&m, MOS_MSG_CKPT))
		return 1;
	mos_msg_put_u32(&m, MOS_T_JOBID, job);
	mos_msg_put_u32(&m, MOS_T_KIND, 0);
	if (argc == 3)
		mos_msg_put_str(&m, MOS_T_TEXT, argv[2]);
	return mos_ask("mosctl checkpoint", &m, "checkpoint written");
}
