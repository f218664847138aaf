/* mosps.c - one table of every process of the cluster: where each runs. */
#include "mosps.h"
#include "util.h"
#include <stdio.h>
#include <string.h>

int main(int argc, char **argv)
{
	uint32_t job = 0;
	int64_t rank;
	int no_header = 0;
	for (int i = 1; i < argc; i++) {
		if (!strcmp(argv[i], "--no-header")) {
			no_header = 1;
		} else if (!strcmp(argv[i], "-h") || !strcmp(argv[i], "--help")) {
			printf("usage: mosps [--no-header] [JOB]\n"
			       "  JOB RANK USER HOME WHERE PID STATE CPU%% RSS MIGS COMMAND for every process of the cluster\n");
			return 0;
		} else if (mos_parse_job_rank(argv[i], &job, &rank)) {
			fprintf(stderr, "mosps: '%s' is not a job id\nusage: mosps [--no-header] [JOB]\n", argv[i]);
			return 2;
		}
	}
	return mosps_print(stdout, job, no_header);
}
