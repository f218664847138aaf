/* env.c - the environment of a rank: PMIx's own (server URI, namespace,
 * rank) plus what Open MPI 4.1 needs to take the direct launch and to run
 * several "nodes" on one host (the measured facts are in README.md). */
#include "mospmix_int.h"
#include "log.h"
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static bool env_has(char **env, const char *name)
{
	size_t n = strlen(name);

	for (; env && *env; env++)
		if (!strncmp(*env, name, n) && (*env)[n] == '=')
			return true;
	return false;
}

/* add NAME=VALUE unless NAME is there already */
static int env_add(char ***envp, const char *name, const char *value)
{
	size_t n = 0;
	char **env = *envp, *kv;

	if (env_has(env, name))
		return 0;
	while (env && env[n])
		n++;
	if (asprintf(&kv, "%s=%s", name, value) < 0)
		return -ENOMEM;
	env = realloc(env, (n + 2) * sizeof(*env));
	if (!env) {
		free(kv);
		return -ENOMEM;
	}
	env[n] = kv;
	env[n + 1] = NULL;
	*envp = env;
	return 0;
}

/* Open MPI's direct modex: the modex fence collects no data, a rank fetches
 * a peer's data when it first talks to it, and MPI_Init ends without its
 * last barrier. The fence itself stays (async_modex 0): without it a rank
 * could ask for a peer's data before that peer had committed it all, get
 * what was there, and fail in MPI_Init with "PML add procs failed: Not
 * found" (a 64-rank job on 2 busy cores: in 3 runs of 2-15; with the fence
 * none in 25). All three or none: a user who sets any of them chose. */
static int add_direct_modex(char ***envp)
{
	static const char *const kv[][2] = {
		{ "OMPI_MCA_pmix_base_async_modex", "0" },
		{ "OMPI_MCA_pmix_base_collect_data", "0" },
		{ "OMPI_MCA_mpi_async_mpi_init", "1" },
	};
	int err = 0;

	for (size_t i = 0; i < 3; i++)
		if (env_has(*envp, kv[i][0]))
			return 0;
	for (size_t i = 0; i < 3 && !err; i++)
		err = env_add(envp, kv[i][0], kv[i][1]);
	return err;
}

int mos_pmix_setup_fork(const char *nspace, uint32_t rank, char ***envp)
{
	struct mos_pmix_jobrec *j = mos_pmix_job_find(nspace);
	pmix_proc_t proc;
	pmix_status_t rc;
	int err = 0;

	if (!j)
		return -ENOENT;
	if (rank >= j->nprocs || j->rank_node[rank] != j->this_nodeid)
		return -EINVAL;
	PMIX_LOAD_PROCID(&proc, nspace, rank);
	rc = PMIx_server_setup_fork(&proc, envp);
	if (rc != PMIX_SUCCESS) {
		pr_err("pmix: setup_fork %s.%u: %s", nspace, rank, PMIx_Error_string(rc));
		return -EIO;
	}
	/* Open MPI 4.1 takes a direct launch only from a resource manager it
	 * knows; the JSM trigger also leaves process binding to us */
	err = err ?: env_add(envp, "JSM_JSRUN_PORT", "0");
	err = err ?: env_add(envp, "PMIX_MCA_gds", "hash");
	/* one shared-memory directory per node: nodes may share a host */
	err = err ?: env_add(envp, "OMPI_MCA_btl_vader_backing_directory", j->dir);
	/* mpirun sets it on oversubscribed nodes; a direct launch does not */
	err = err ?: env_add(envp, "OMPI_MCA_mpi_yield_when_idle", "1");
	/* skips ~200 ms of probing for psm/psm2/ofi in pml cm; we run on TCP */
	err = err ?: env_add(envp, "OMPI_MCA_pml", "ob1");
	err = err ?: add_direct_modex(envp);
	return err;
}
