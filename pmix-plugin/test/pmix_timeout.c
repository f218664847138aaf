/* pmix_timeout.c - a bare PMIx client for the PMIX_TIMEOUT path: rank 0
 * fences with PMIX_TIMEOUT=1 while rank 1 (on another server) waits 3 s
 * before fencing. Rank 0 must get PMIX_ERR_TIMEOUT from the server library
 * after ~1 s and prints "timeout ok"; rank 1's late fence still completes. */
#include <pmix.h>
#include <stdio.h>
#include <unistd.h>

int main(void)
{
	pmix_proc_t me, all;
	pmix_info_t info;
	pmix_status_t rc;
	int secs = 1, bad = 1;

	if (PMIx_Init(&me, NULL, 0) != PMIX_SUCCESS)
		return 3;
	PMIX_LOAD_PROCID(&all, me.nspace, PMIX_RANK_WILDCARD);
	if (me.rank == 0) {
		PMIX_INFO_LOAD(&info, PMIX_TIMEOUT, &secs, PMIX_INT);
		rc = PMIx_Fence(&all, 1, &info, 1);
		printf("rank 0 fence: %s\n", PMIx_Error_string(rc));
		if (rc == PMIX_ERR_TIMEOUT) {
			printf("timeout ok\n");
			bad = 0;
		}
	} else {
		sleep(3);
		rc = PMIx_Fence(&all, 1, NULL, 0);
		printf("rank %u fence: %s\n", me.rank, PMIx_Error_string(rc));
		bad = rc != PMIX_SUCCESS;
	}
	fflush(stdout);
	PMIx_Finalize(NULL, 0);
	return bad;
}
