/* tool.c - tools (PMIx_tool_init: schedulers, mosctl): the connection hook
 * names each tool; query and job control answer PMIX_ERR_NOT_SUPPORTED
 * until the host ops for them exist (issue 3, item 4). */
#include "mospmix_int.h"
#include "log.h"
#include <stdatomic.h>
#include <stdio.h>

static atomic_uint tool_count;

/* PMIx thread. Touches no host state: a name from a counter. */
void mos_pmix_up_tool_connected(pmix_info_t *info, size_t ninfo,
				pmix_tool_connection_cbfunc_t cbfunc, void *cbdata)
{
	pmix_proc_t proc;
	char ns[PMIX_MAX_NSLEN + 1];

	snprintf(ns, sizeof(ns), "mos-tool.%u.%u", mos_pmix_srv.nodeid,
		 atomic_fetch_add(&tool_count, 1) + 1);
	PMIX_LOAD_PROCID(&proc, ns, 0);
	if (cbfunc)
		cbfunc(PMIX_SUCCESS, &proc, cbdata);
}

pmix_status_t mos_pmix_up_query(pmix_proc_t *proct, pmix_query_t *queries, size_t nqueries,
				pmix_info_cbfunc_t cbfunc, void *cbdata)
{
	return PMIX_ERR_NOT_SUPPORTED;
}

pmix_status_t mos_pmix_up_job_control(const pmix_proc_t *requestor, const pmix_proc_t targets[],
				      size_t ntargets, const pmix_info_t directives[],
				      size_t ndirs, pmix_info_cbfunc_t cbfunc, void *cbdata)
{
	return PMIX_ERR_NOT_SUPPORTED;
}
