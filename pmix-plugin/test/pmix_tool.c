/* pmix_tool.c - a PMIx tool for the tool path of pmix-plugin: attaches to
 * the server of process PID (argv[1]) and prints what query and job control
 * answer ("query: STATUS", "job_control: STATUS"); exit 0 when attached. */
#include <pmix_tool.h>
#include <stdio.h>
#include <stdlib.h>

int main(int argc, char **argv)
{
	pmix_proc_t me;
	pmix_info_t info[2], *res = NULL;
	pmix_query_t q;
	pmix_status_t rc;
	pid_t pid = argc > 1 ? atoi(argv[1]) : 0;
	bool yes = true;
	size_t nres = 0;

	PMIX_INFO_LOAD(&info[0], PMIX_SERVER_PIDINFO, &pid, PMIX_PID);
	PMIX_INFO_LOAD(&info[1], PMIX_TOOL_DO_NOT_CONNECT, &yes, PMIX_BOOL);
	rc = PMIx_tool_init(&me, info, 1);
	if (rc != PMIX_SUCCESS) {
		printf("tool_init: %s\n", PMIx_Error_string(rc));
		return 1;
	}
	printf("attached as %s.%u\n", me.nspace, me.rank);
	PMIX_QUERY_CONSTRUCT(&q);
	PMIX_ARGV_APPEND(rc, q.keys, PMIX_QUERY_NAMESPACES);
	rc = PMIx_Query_info(&q, 1, &res, &nres);
	printf("query: %s\n", PMIx_Error_string(rc));
	PMIX_INFO_LOAD(&info[0], PMIX_JOB_CTRL_KILL, &yes, PMIX_BOOL);
	rc = PMIx_Job_control(NULL, 0, info, 1, &res, &nres);
	printf("job_control: %s\n", PMIx_Error_string(rc));
	fflush(stdout);
	PMIx_tool_finalize();
	return 0;
}
