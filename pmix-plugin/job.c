/* job.c - namespaces: what a job looks like to PMIx (sizes, node and process
 * maps, local peers, per-rank local/node ranks, hosts, apps), its local
 * clients and its directory. */
#include "mospmix_int.h"
#include "log.h"
#include <errno.h>
#include <ftw.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

struct mos_pmix_jobrec *mos_pmix_job_find(const char *nspace)
{
	for (struct mos_pmix_jobrec *j = mos_pmix_srv.jobs; j; j = j->next)
		if (!strcmp(j->nspace, nspace))
			return j;
	return NULL;
}

static int check_job(const struct mos_pmix_job *job, uint32_t *napps)
{
	size_t len = job->nspace ? strlen(job->nspace) : 0;

	if (!len || len > PMIX_MAX_NSLEN || strchr(job->nspace, '/') || !job->nprocs ||
	    !job->n_nodes || !job->node_names || !job->rank_node ||
	    job->this_nodeid >= job->n_nodes || job->nprocs > UINT16_MAX * job->n_nodes)
		return -EINVAL;
	for (uint32_t n = 0; n < job->n_nodes; n++)	/* ',' ';' would break the maps */
		if (!job->node_names[n] || !job->node_names[n][0] ||
		    strpbrk(job->node_names[n], ",;"))
			return -EINVAL;
	*napps = 1;
	for (uint32_t r = 0; r < job->nprocs; r++) {
		if (job->rank_node[r] >= job->n_nodes)
			return -EINVAL;
		if (job->rank_app && job->rank_app[r] >= *napps) {
			if (job->rank_app[r] != *napps)
				return -EINVAL;	/* apps 0.. in rank order */
			(*napps)++;
		}
	}
	return 0;
}

/* Each rank's index on its node and in its app, ranks per node and app. */
struct layout {
	uint32_t *count;	/* [n_nodes] */
	uint32_t *lrank;	/* [nprocs] */
	uint32_t *appsize;	/* [napps] */
	uint32_t *apprank;	/* [nprocs] */
	uint32_t used;		/* nodes with ranks */
};

static uint32_t app_of(const struct mos_pmix_job *job, uint32_t r)
{
	return job->rank_app ? job->rank_app[r] : 0;
}

static int layout_build(const struct mos_pmix_job *job, uint32_t napps, struct layout *l)
{
	l->count = calloc(job->n_nodes, sizeof(*l->count));
	l->lrank = calloc(job->nprocs, sizeof(*l->lrank));
	l->appsize = calloc(napps, sizeof(*l->appsize));
	l->apprank = calloc(job->nprocs, sizeof(*l->apprank));
	if (!l->count || !l->lrank || !l->appsize || !l->apprank)
		return -ENOMEM;
	l->used = 0;
	for (uint32_t r = 0; r < job->nprocs; r++) {
		uint32_t n = job->rank_node[r];

		if (!l->count[n]++)
			l->used++;
		l->lrank[r] = l->count[n] - 1;
		l->apprank[r] = l->appsize[app_of(job, r)]++;
	}
	return 0;
}

static void layout_free(struct layout *l)
{
	free(l->count);
	free(l->lrank);
	free(l->appsize);
	free(l->apprank);
}

/* "r,r,r" of NODE's ranks; NULL on ENOMEM */
static char *node_ranks(const struct mos_pmix_job *job, uint32_t node)
{
	char *buf = NULL;
	size_t len;
	FILE *f = open_memstream(&buf, &len);
	bool first = true;

	if (!f)
		return NULL;
	for (uint32_t r = 0; r < job->nprocs; r++) {
		if (job->rank_node[r] != node)
			continue;
		fprintf(f, "%s%u", first ? "" : ",", r);
		first = false;
	}
	if (fclose(f))
		return NULL;
	return buf;
}

/* PMIX_NODE_MAP and PMIX_PROC_MAP over the nodes that have ranks. */
static int add_maps(void *list, const struct mos_pmix_job *job, const struct layout *l)
{
	char *nodes = NULL, *procs = NULL, *nregex = NULL, *pregex = NULL;
	size_t nlen, plen;
	FILE *nf = open_memstream(&nodes, &nlen), *pf = open_memstream(&procs, &plen);
	bool first = true;
	int err = -ENOMEM;

	if (!nf || !pf)
		goto out;
	for (uint32_t n = 0; n < job->n_nodes; n++) {
		char *ranks;

		if (!l->count[n])
			continue;
		ranks = node_ranks(job, n);
		if (!ranks)
			goto out;
		fprintf(nf, "%s%s", first ? "" : ",", job->node_names[n]);
		fprintf(pf, "%s%s", first ? "" : ";", ranks);
		free(ranks);
		first = false;
	}
	if (fclose(nf) | fclose(pf))
		goto out_closed;
	nf = pf = NULL;
	err = -EIO;
	if (PMIx_generate_regex(nodes, &nregex) != PMIX_SUCCESS ||
	    PMIx_generate_ppn(procs, &pregex) != PMIX_SUCCESS) {
		pr_err("pmix: cannot build the node/process maps of %s", job->nspace);
		goto out_closed;
	}
	PMIx_Info_list_add(list, PMIX_NODE_MAP, nregex, PMIX_REGEX);
	PMIx_Info_list_add(list, PMIX_PROC_MAP, pregex, PMIX_REGEX);
	err = 0;
out:
	if (nf)
		fclose(nf);
	if (pf)
		fclose(pf);
out_closed:
	free(nodes);
	free(procs);
	free(nregex);
	free(pregex);
	return err;
}

static int add_data_array(void *list, const char *key, void *inner)
{
	pmix_data_array_t arr = PMIX_DATA_ARRAY_STATIC_INIT;
	pmix_status_t rc = PMIx_Info_list_convert(inner, &arr);

	PMIx_Info_list_release(inner);
	if (rc != PMIX_SUCCESS)
		return -ENOMEM;
	rc = PMIx_Info_list_add(list, key, &arr, PMIX_DATA_ARRAY);
	PMIx_Data_array_destruct(&arr);
	return rc == PMIX_SUCCESS ? 0 : -ENOMEM;
}

/* Per rank, local or not: PMIX_RANK first, as PMIx wants. */
static int add_proc_data(void *list, const struct mos_pmix_job *job, const struct layout *l)
{
	for (uint32_t r = 0; r < job->nprocs; r++) {
		void *in = PMIx_Info_list_start();
		uint32_t node = job->rank_node[r], app = app_of(job, r);
		pmix_rank_t rank = r, apprank = l->apprank[r];
		uint16_t lr = l->lrank[r];

		PMIx_Info_list_add(in, PMIX_RANK, &rank, PMIX_PROC_RANK);
		PMIx_Info_list_add(in, PMIX_LOCAL_RANK, &lr, PMIX_UINT16);
		PMIx_Info_list_add(in, PMIX_NODE_RANK, &lr, PMIX_UINT16);
		PMIx_Info_list_add(in, PMIX_GLOBAL_RANK, &rank, PMIX_PROC_RANK);
		PMIx_Info_list_add(in, PMIX_APPNUM, &app, PMIX_UINT32);
		PMIx_Info_list_add(in, PMIX_APP_RANK, &apprank, PMIX_PROC_RANK);
		PMIx_Info_list_add(in, PMIX_NODEID, &node, PMIX_UINT32);
		PMIx_Info_list_add(in, PMIX_HOSTNAME, job->node_names[node], PMIX_STRING);
		if (add_data_array(list, PMIX_PROC_DATA, in))
			return -ENOMEM;
	}
	return 0;
}

static int add_app_data(void *list, const struct mos_pmix_job *job, const struct layout *l,
			uint32_t napps)
{
	pmix_rank_t ldr = 0;

	for (uint32_t a = 0; a < napps; a++) {
		void *in = PMIx_Info_list_start();

		while (app_of(job, ldr) != a)	/* apps come in rank order */
			ldr++;
		PMIx_Info_list_add(in, PMIX_APPNUM, &a, PMIX_UINT32);
		PMIx_Info_list_add(in, PMIX_APP_SIZE, &l->appsize[a], PMIX_UINT32);
		PMIx_Info_list_add(in, PMIX_APPLDR, &ldr, PMIX_PROC_RANK);
		if (add_data_array(list, PMIX_APP_INFO_ARRAY, in))
			return -ENOMEM;
	}
	return 0;
}

/* Job- and this-node-level keys, the maps, the apps, every rank. */
static int build_info(void *list, const struct mos_pmix_job *job, const struct layout *l,
		      uint32_t napps, const char *dir)
{
	uint32_t me = job->this_nodeid, nlocal = l->count[me];
	bool yes = true;
	int err;

	PMIx_Info_list_add(list, PMIX_JOBID, job->nspace, PMIX_STRING);
	PMIx_Info_list_add(list, PMIX_UNIV_SIZE, &job->nprocs, PMIX_UINT32);
	PMIx_Info_list_add(list, PMIX_JOB_SIZE, &job->nprocs, PMIX_UINT32);
	PMIx_Info_list_add(list, PMIX_MAX_PROCS, &job->nprocs, PMIX_UINT32);
	PMIx_Info_list_add(list, PMIX_NUM_NODES, &l->used, PMIX_UINT32);
	PMIx_Info_list_add(list, PMIX_JOB_NUM_APPS, &napps, PMIX_UINT32);
	PMIx_Info_list_add(list, PMIX_NODEID, &me, PMIX_UINT32);
	PMIx_Info_list_add(list, PMIX_HOSTNAME, job->node_names[me], PMIX_STRING);
	PMIx_Info_list_add(list, PMIX_TMPDIR, dir, PMIX_STRING);
	PMIx_Info_list_add(list, PMIX_NSDIR, dir, PMIX_STRING);
	PMIx_Info_list_add(list, PMIX_TDIR_RMCLEAN, &yes, PMIX_BOOL);
	PMIx_Info_list_add(list, PMIX_LOCAL_SIZE, &nlocal, PMIX_UINT32);
	PMIx_Info_list_add(list, PMIX_NODE_SIZE, &nlocal, PMIX_UINT32);
	if (mos_pmix_srv.topo_xml) {	/* read by Open MPI 4.1's hwloc base */
		PMIx_Info_list_add(list, PMIX_HWLOC_XML_V2, mos_pmix_srv.topo_xml, PMIX_STRING);
	}
	if (nlocal) {
		char *peers = node_ranks(job, me);
		pmix_rank_t ldr = 0;

		if (!peers)
			return -ENOMEM;
		while (job->rank_node[ldr] != me)
			ldr++;
		PMIx_Info_list_add(list, PMIX_LOCAL_PEERS, peers, PMIX_STRING);
		PMIx_Info_list_add(list, PMIX_LOCALLDR, &ldr, PMIX_PROC_RANK);
		free(peers);
	}
	err = add_maps(list, job, l);
	if (!err)
		err = add_app_data(list, job, l, napps);
	if (!err)
		err = add_proc_data(list, job, l);
	return err;
}

static int rm_one(const char *path, const struct stat *st, int flag, struct FTW *ftw)
{
	if (remove(path) < 0 && errno != ENOENT)
		pr_warn("pmix: cannot remove %s: %m", path);
	return 0;
}

static void rmtree(const char *dir)
{
	nftw(dir, rm_one, 16, FTW_DEPTH | FTW_PHYS);
}

static int make_dir(const struct mos_pmix_job *job, char **dirp)
{
	char *dir;
	int err;

	if (asprintf(&dir, "%s/%s.%u", mos_pmix_srv.tmpdir, job->nspace, job->this_nodeid) < 0)
		return -ENOMEM;
	rmtree(dir);	/* a stale one from a killed host */
	if (mkdir(dir, 0700) < 0 ||
	    (geteuid() == 0 && chown(dir, job->uid, job->gid) < 0)) {
		err = -errno;
		pr_err("pmix: job directory %s: %m", dir);
		rmtree(dir);
		free(dir);
		return err;
	}
	*dirp = dir;
	return 0;
}

static int register_clients(const struct mos_pmix_job *job)
{
	for (uint32_t r = 0; r < job->nprocs; r++) {
		struct mos_pmix_sync sync;
		pmix_proc_t proc;
		pmix_status_t rc;

		if (job->rank_node[r] != job->this_nodeid)
			continue;
		PMIX_LOAD_PROCID(&proc, job->nspace, r);
		mos_pmix_sync_init(&sync);
		rc = PMIx_server_register_client(&proc, job->uid, job->gid, NULL, mos_pmix_sync_cb,
						 &sync);
		rc = mos_pmix_sync_wait(&sync, rc);
		if (rc != PMIX_SUCCESS) {
			pr_err("pmix: register client %s.%u: %s", job->nspace, r,
			       PMIx_Error_string(rc));
			return -EIO;
		}
	}
	return 0;
}

static int register_nspace(const struct mos_pmix_job *job, const struct layout *l,
			   uint32_t napps, const char *dir)
{
	pmix_data_array_t arr = PMIX_DATA_ARRAY_STATIC_INIT;
	struct mos_pmix_sync sync;
	void *list = PMIx_Info_list_start();
	pmix_status_t rc;
	int err = build_info(list, job, l, napps, dir);

	if (!err && PMIx_Info_list_convert(list, &arr) != PMIX_SUCCESS)
		err = -ENOMEM;
	PMIx_Info_list_release(list);
	if (err)
		return err;
	mos_pmix_sync_init(&sync);
	rc = PMIx_server_register_nspace(job->nspace, l->count[job->this_nodeid], arr.array,
					 arr.size, mos_pmix_sync_cb, &sync);
	rc = mos_pmix_sync_wait(&sync, rc);
	PMIx_Data_array_destruct(&arr);
	if (rc != PMIX_SUCCESS) {
		pr_err("pmix: register nspace %s: %s", job->nspace, PMIx_Error_string(rc));
		return -EIO;
	}
	return 0;
}

static void pmix_forget(const char *nspace)
{
	struct mos_pmix_sync sync;

	mos_pmix_sync_init(&sync);
	PMIx_server_deregister_nspace(nspace, mos_pmix_sync_cb, &sync);
	mos_pmix_sync_wait(&sync, PMIX_SUCCESS);
}

int mos_pmix_register_job(const struct mos_pmix_job *job)
{
	struct mos_pmix_jobrec *j;
	struct layout l = { 0 };
	uint32_t napps;
	int err;

	if (mos_pmix_srv.state != MOS_PMIX_RUNNING)
		return -ESRCH;
	err = check_job(job, &napps);
	if (err)
		return err;
	if (mos_pmix_job_find(job->nspace))
		return -EEXIST;
	err = -ENOMEM;
	j = calloc(1, sizeof(*j));
	if (!j)
		return err;
	j->rank_node = malloc(job->nprocs * sizeof(*j->rank_node));
	if (!j->rank_node || (err = layout_build(job, napps, &l)))
		goto out_free;
	memcpy(j->rank_node, job->rank_node, job->nprocs * sizeof(*j->rank_node));
	strcpy(j->nspace, job->nspace);
	j->nprocs = job->nprocs;
	j->this_nodeid = job->this_nodeid;
	j->uid = job->uid;
	err = make_dir(job, &j->dir);
	if (err)
		goto out_free;
	err = register_nspace(job, &l, napps, j->dir);
	if (err)
		goto out_dir;
	err = register_clients(job);
	if (err)
		goto out_ns;
	pr_debug("pmix: job %s registered: %u ranks, %u here", j->nspace, j->nprocs,
		 l.count[job->this_nodeid]);
	layout_free(&l);
	j->next = mos_pmix_srv.jobs;
	mos_pmix_srv.jobs = j;
	return 0;

out_ns:
	pmix_forget(job->nspace);
out_dir:
	rmtree(j->dir);
	free(j->dir);
out_free:
	layout_free(&l);
	free(j->rank_node);
	free(j);
	return err;
}

static void job_free(struct mos_pmix_jobrec *j)
{
	mos_pmix_fence_fail_ns(j->nspace, -ECANCELED);
	mos_pmix_dmodex_fail_ns(j->nspace, -ECANCELED);
	pmix_forget(j->nspace);
	rmtree(j->dir);
	free(j->dir);
	free(j->rank_node);
	free(j);
}

int mos_pmix_deregister_job(const char *nspace)
{
	struct mos_pmix_jobrec **pp;

	for (pp = &mos_pmix_srv.jobs; *pp; pp = &(*pp)->next) {
		struct mos_pmix_jobrec *j = *pp;

		if (strcmp(j->nspace, nspace))
			continue;
		*pp = j->next;
		job_free(j);
		return 0;
	}
	return -ENOENT;
}

void mos_pmix_jobs_fini(void)
{
	while (mos_pmix_srv.jobs) {
		struct mos_pmix_jobrec *j = mos_pmix_srv.jobs;

		mos_pmix_srv.jobs = j->next;
		job_free(j);
	}
}

int mos_pmix_job_fail(const char *nspace, int status)
{
	return mos_pmix_fence_fail_ns(nspace, status) + mos_pmix_dmodex_fail_ns(nspace, status);
}
