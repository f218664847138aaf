/* query.c - PMIx_Query_info from tools: the keys we answer are copied off
 * PMIx's thread, the host gathers the cluster's process table and node
 * loads (ops.query), and the answer is built here, filtered by namespace
 * and node. Unknown keys make a partial answer (PMIX_QUERY_PARTIAL_SUCCESS)
 * or, alone, PMIX_ERR_NOT_SUPPORTED. */
#include "mospmix_int.h"
#include "log.h"
#include <errno.h>
#include <stdlib.h>
#include <string.h>

enum qkind { Q_NAMESPACES, Q_PROC_TABLE, Q_LOCAL_PROC_TABLE, Q_LOADS, Q_MOS_PROCS };

static const struct {
	const char *key;
	enum qkind kind;
	unsigned need;
} qkeys[] = {
	{ PMIX_QUERY_NAMESPACES, Q_NAMESPACES, MOS_PMIX_NEED_PROCS },
	{ PMIX_QUERY_PROC_TABLE, Q_PROC_TABLE, MOS_PMIX_NEED_PROCS },
	{ PMIX_QUERY_LOCAL_PROC_TABLE, Q_LOCAL_PROC_TABLE, MOS_PMIX_NEED_PROCS },
	{ MOS_PMIX_KEY_NODE_LOADS, Q_LOADS, MOS_PMIX_NEED_LOADS },
	{ MOS_PMIX_KEY_PROC_TABLE, Q_MOS_PROCS, MOS_PMIX_NEED_PROCS },
};

struct qitem {
	enum qkind kind;
	char nspace[PMIX_MAX_NSLEN + 1];	/* PMIX_NSPACE qualifier, or "" */
};

/* A query: queued, then waiting for the host (host loop only from then). */
struct query {
	struct mos_pmix_work w;
	struct query *next;
	uint64_t id;
	size_t nitems, unknown;
	pmix_info_cbfunc_t cbfunc;
	void *cbdata;
	struct qitem items[];
};

static struct query *pending;
static uint64_t query_seq;

static void answer_error(struct query *q, int status)
{
	if (mos_pmix_srv.state != MOS_PMIX_DEAD && q->cbfunc)
		q->cbfunc(mos_pmix_to_pmix(status), NULL, 0, q->cbdata, NULL, NULL);
	free(q);
}

static void query_run(struct mos_pmix_work *w)
{
	struct query *q = (struct query *)w;
	const struct mos_pmix_host_ops *ops = &mos_pmix_srv.ops;
	unsigned need = 0;

	if (mos_pmix_srv.state != MOS_PMIX_RUNNING) {
		answer_error(q, -ECANCELED);
		return;
	}
	if (!ops->query) {
		answer_error(q, -ENOTSUP);
		return;
	}
	for (size_t i = 0; i < q->nitems; i++)
		for (size_t k = 0; k < sizeof(qkeys) / sizeof(qkeys[0]); k++)
			if (qkeys[k].kind == q->items[i].kind)
				need |= qkeys[k].need;
	q->id = ++query_seq;
	/* linked first: the host may answer from inside the call */
	q->next = pending;
	pending = q;
	ops->query(ops->ctx, q->id, need);
}

static int key_kind(const char *key)
{
	for (size_t k = 0; k < sizeof(qkeys) / sizeof(qkeys[0]); k++)
		if (!strcmp(key, qkeys[k].key))
			return (int)qkeys[k].kind;
	return -1;
}

/* PMIx thread: PROCT is the server's own id (PMIx 4.2), not the tool's;
 * queries are open to every tool, so it does not matter here. */
pmix_status_t mos_pmix_up_query(pmix_proc_t *proct, pmix_query_t *queries, size_t nqueries,
				pmix_info_cbfunc_t cbfunc, void *cbdata)
{
	size_t nkeys = 0, n = 0, unknown = 0;
	struct query *q;

	if (!mos_pmix_srv.ops.query) /* ops are fixed before PMIx starts */
		return PMIX_ERR_NOT_SUPPORTED;
	for (size_t i = 0; i < nqueries; i++)
		for (size_t k = 0; queries[i].keys && queries[i].keys[k]; k++)
			nkeys++;
	q = calloc(1, sizeof(*q) + (nkeys ? nkeys : 1) * sizeof(struct qitem));
	if (!q)
		return PMIX_ERR_NOMEM;
	for (size_t i = 0; i < nqueries; i++) {
		const char *ns = "";

		for (size_t k = 0; k < queries[i].nqual; k++)
			if (PMIX_CHECK_KEY(&queries[i].qualifiers[k], PMIX_NSPACE) &&
			    queries[i].qualifiers[k].value.type == PMIX_STRING &&
			    queries[i].qualifiers[k].value.data.string)
				ns = queries[i].qualifiers[k].value.data.string;
		for (size_t k = 0; queries[i].keys && queries[i].keys[k]; k++) {
			int kind = key_kind(queries[i].keys[k]);

			if (kind < 0) {
				unknown++;
				continue;
			}
			q->items[n].kind = (enum qkind)kind;
			snprintf(q->items[n].nspace, sizeof(q->items[n].nspace), "%s", ns);
			n++;
		}
	}
	if (!n) {
		free(q);
		return PMIX_ERR_NOT_SUPPORTED;
	}
	q->nitems = n;
	q->unknown = unknown;
	q->cbfunc = cbfunc;
	q->cbdata = cbdata;
	mos_pmix_shift(&q->w, query_run);
	return PMIX_SUCCESS;
}

/* --- building the answer (host loop) ----------------------------------- */

static const struct mos_pmix_proc_row **sorted;	/* rows in (nspace, rank) order */

static int row_cmp(const void *a, const void *b)
{
	const struct mos_pmix_proc_row *x = *(const struct mos_pmix_proc_row *const *)a;
	const struct mos_pmix_proc_row *y = *(const struct mos_pmix_proc_row *const *)b;
	size_t lx = strlen(x->nspace), ly = strlen(y->nspace);
	int c = lx != ly ? (lx < ly ? -1 : 1) : strcmp(x->nspace, y->nspace);

	if (c)
		return c;
	return x->rank < y->rank ? -1 : x->rank > y->rank;
}

static bool row_wanted(const struct mos_pmix_proc_row *r, const struct qitem *it)
{
	if (it->nspace[0] && strcmp(r->nspace, it->nspace))
		return false;
	return it->kind != Q_LOCAL_PROC_TABLE || (r->node && !strcmp(r->node, mos_pmix_srv.hostname));
}

static pmix_proc_state_t pmix_state(const char *s)
{
	if (!s)
		return PMIX_PROC_STATE_UNDEF;
	if (!strcmp(s, "migrating") || !strcmp(s, "arriving"))
		return PMIX_PROC_STATE_MIGRATING;
	if (!strcmp(s, "exited"))
		return PMIX_PROC_STATE_TERMINATED;
	return PMIX_PROC_STATE_RUNNING; /* "run", and "stop": alive, paused */
}

/* Add the data array D (freed here) under KEY. */
static int add_darray(void *list, const char *key, pmix_data_array_t *d)
{
	pmix_status_t rc = PMIx_Info_list_add(list, key, d, PMIX_DATA_ARRAY);

	PMIX_DATA_ARRAY_FREE(d);
	return rc == PMIX_SUCCESS ? 0 : -ENOMEM;
}

/* Close the info list SUB of N entries into a data array added to LIST
 * under KEY (PMIx will not convert an empty list: N = 0 adds an empty array). */
static int add_sublist(void *list, const char *key, void *sub, size_t n)
{
	pmix_data_array_t *d = NULL;
	pmix_status_t rc = PMIX_ERR_NOMEM;

	if (!n) {
		PMIX_DATA_ARRAY_CREATE(d, n, PMIX_INFO); /* n == 0 */
		rc = d ? PMIX_SUCCESS : PMIX_ERR_NOMEM;
	} else if ((d = calloc(1, sizeof(*d)))) {
		rc = PMIx_Info_list_convert(sub, d);
	}
	PMIx_Info_list_release(sub);
	if (rc != PMIX_SUCCESS) {
		free(d);
		return -ENOMEM;
	}
	return add_darray(list, key, d);
}

static int put_namespaces(void *list, const struct mos_pmix_table *t)
{
	size_t len = 1, off = 0;
	char *s;
	int err;

	for (size_t i = 0; i < t->nprocs; i++)
		len += strlen(sorted[i]->nspace) + 1;
	s = malloc(len);
	if (!s)
		return -ENOMEM;
	s[0] = 0;
	for (size_t i = 0; i < t->nprocs; i++) {
		if (i && !strcmp(sorted[i]->nspace, sorted[i - 1]->nspace))
			continue;
		off += (size_t)sprintf(s + off, "%s%s", off ? "," : "", sorted[i]->nspace);
	}
	err = PMIx_Info_list_add(list, PMIX_QUERY_NAMESPACES, s, PMIX_STRING) == PMIX_SUCCESS ?
		      0 : -ENOMEM;
	free(s);
	return err;
}

static int put_proc_table(void *list, const struct mos_pmix_table *t, const struct qitem *it)
{
	pmix_data_array_t *d;
	pmix_proc_info_t *pi;
	size_t n = 0;

	for (size_t i = 0; i < t->nprocs; i++)
		n += row_wanted(sorted[i], it);
	if (!n && it->nspace[0])
		return -ENOENT;
	PMIX_DATA_ARRAY_CREATE(d, n, PMIX_PROC_INFO);
	if (!d)
		return -ENOMEM;
	pi = d->array;
	for (size_t i = 0, k = 0; i < t->nprocs; i++) {
		const struct mos_pmix_proc_row *r = sorted[i];

		if (!row_wanted(r, it))
			continue;
		PMIX_LOAD_PROCID(&pi[k].proc, r->nspace, r->rank);
		pi[k].hostname = strdup(r->node ? r->node : "");
		pi[k].executable_name = strdup(r->cmd ? r->cmd : "");
		pi[k].pid = r->pid;
		pi[k].state = pmix_state(r->state);
		k++;
	}
	return add_darray(list, it->kind == Q_LOCAL_PROC_TABLE ? PMIX_QUERY_LOCAL_PROC_TABLE :
								  PMIX_QUERY_PROC_TABLE, d);
}

static int put_mos_procs(void *list, const struct mos_pmix_table *t, const struct qitem *it)
{
	void *rows = PMIx_Info_list_start();
	size_t n = 0;

	for (size_t i = 0; i < t->nprocs; i++) {
		const struct mos_pmix_proc_row *r = sorted[i];
		void *p;
		uint32_t uid = (uint32_t)r->uid;

		if (!row_wanted(r, it))
			continue;
		p = PMIx_Info_list_start();
		PMIx_Info_list_add(p, PMIX_NSPACE, r->nspace, PMIX_STRING);
		PMIx_Info_list_add(p, PMIX_RANK, &r->rank, PMIX_PROC_RANK);
		PMIx_Info_list_add(p, PMIX_HOSTNAME, r->node ? r->node : "", PMIX_STRING);
		PMIx_Info_list_add(p, PMIX_PROC_PID, &r->pid, PMIX_PID);
		PMIx_Info_list_add(p, PMIX_USERID, &uid, PMIX_UINT32);
		PMIx_Info_list_add(p, MOS_PMIX_KEY_HOME, r->home ? r->home : "", PMIX_STRING);
		PMIx_Info_list_add(p, MOS_PMIX_KEY_STATE, r->state ? r->state : "?", PMIX_STRING);
		PMIx_Info_list_add(p, MOS_PMIX_KEY_CPU, &r->cpu_permille, PMIX_UINT32);
		PMIx_Info_list_add(p, MOS_PMIX_KEY_RSS, &r->rss, PMIX_UINT64);
		PMIx_Info_list_add(p, MOS_PMIX_KEY_MIGRATIONS, &r->migrations, PMIX_UINT32);
		PMIx_Info_list_add(p, MOS_PMIX_KEY_CMD, r->cmd ? r->cmd : "", PMIX_STRING);
		if (add_sublist(rows, MOS_PMIX_KEY_PROC, p, 11)) {
			PMIx_Info_list_release(rows);
			return -ENOMEM;
		}
		n++;
	}
	if (!n && it->nspace[0]) {
		PMIx_Info_list_release(rows);
		return -ENOENT;
	}
	return add_sublist(list, MOS_PMIX_KEY_PROC_TABLE, rows, n);
}

static int put_loads(void *list, const struct mos_pmix_table *t)
{
	void *nodes = PMIx_Info_list_start();

	for (size_t i = 0; i < t->nloads; i++) {
		const struct mos_pmix_node_load *l = &t->loads[i];
		void *p = PMIx_Info_list_start();

		PMIx_Info_list_add(p, PMIX_HOSTNAME, l->node, PMIX_STRING);
		PMIx_Info_list_add(p, MOS_PMIX_KEY_LOAD, &l->load_milli, PMIX_UINT32);
		PMIx_Info_list_add(p, MOS_PMIX_KEY_NCPUS, &l->ncpus, PMIX_UINT32);
		PMIx_Info_list_add(p, MOS_PMIX_KEY_NPROCS, &l->nprocs, PMIX_UINT32);
		PMIx_Info_list_add(p, MOS_PMIX_KEY_AGE_MS, &l->age_ms, PMIX_UINT32);
		if (add_sublist(nodes, MOS_PMIX_KEY_NODE, p, 5)) {
			PMIx_Info_list_release(nodes);
			return -ENOMEM;
		}
	}
	return add_sublist(list, MOS_PMIX_KEY_NODE_LOADS, nodes, t->nloads);
}

static int put_item(void *list, const struct mos_pmix_table *t, const struct qitem *it)
{
	switch (it->kind) {
	case Q_NAMESPACES:
		return put_namespaces(list, t);
	case Q_PROC_TABLE:
	case Q_LOCAL_PROC_TABLE:
		return put_proc_table(list, t, it);
	case Q_LOADS:
		return put_loads(list, t);
	case Q_MOS_PROCS:
		return put_mos_procs(list, t, it);
	}
	return -EINVAL;
}

static void answer(struct query *q, const struct mos_pmix_table *t)
{
	void *list = PMIx_Info_list_start();
	size_t ok = 0;
	pmix_data_array_t arr = PMIX_DATA_ARRAY_STATIC_INIT;
	struct mos_pmix_infos *rel = malloc(sizeof(*rel));
	pmix_status_t st;

	sorted = calloc(t->nprocs ? t->nprocs : 1, sizeof(*sorted));
	if (!list || !rel || !sorted)
		goto fail;
	for (size_t i = 0; i < t->nprocs; i++)
		sorted[i] = &t->procs[i];
	qsort(sorted, t->nprocs, sizeof(*sorted), row_cmp);
	for (size_t i = 0; i < q->nitems; i++)
		ok += put_item(list, t, &q->items[i]) == 0;
	if (!ok) {
		PMIx_Info_list_release(list);
		free(rel);
		free(sorted);
		sorted = NULL;
		answer_error(q, -ENOENT); /* e.g. the one namespace asked for is gone */
		return;
	}
	if (t->missing && t->missing[0])
		PMIx_Info_list_add(list, MOS_PMIX_KEY_MISSING, t->missing, PMIX_STRING);
	if (PMIx_Info_list_convert(list, &arr) != PMIX_SUCCESS)
		goto fail;
	PMIx_Info_list_release(list);
	free(sorted);
	sorted = NULL;
	st = ok == q->nitems && !q->unknown ? PMIX_SUCCESS :
	     ok ? PMIX_QUERY_PARTIAL_SUCCESS : PMIX_ERR_NOT_FOUND;
	rel->info = arr.array;
	rel->n = arr.size;
	q->cbfunc(st, arr.array, arr.size, q->cbdata, mos_pmix_release_infos, rel);
	free(q);
	return;
fail:
	if (list)
		PMIx_Info_list_release(list);
	free(rel);
	free(sorted);
	sorted = NULL;
	answer_error(q, -ENOMEM);
}

int mos_pmix_query_done(uint64_t req_id, int status, const struct mos_pmix_table *table)
{
	struct query *q = NULL;

	for (struct query **pp = &pending; *pp; pp = &(*pp)->next)
		if ((*pp)->id == req_id) {
			q = *pp;
			*pp = q->next;
			break;
		}
	if (!q)
		return -ENOENT;
	if (status || !table)
		answer_error(q, status ? status : -EINVAL);
	else
		answer(q, table);
	return 0;
}

void mos_pmix_query_fini(void)
{
	while (pending) {
		struct query *q = pending;

		pending = q->next;
		answer_error(q, -ECANCELED);
	}
}
