/* client.c - upcalls about one client: connected, finalized (or its
 * connection dropped), abort. Each is copied, moved to the host loop, told
 * to the host, and only then is the client released. */
#include "mospmix_int.h"
#include "log.h"
#include <stdlib.h>
#include <string.h>

enum client_event { CL_CONNECTED, CL_FINALIZED, CL_ABORT };

struct client_work {
	struct mos_pmix_work w;
	enum client_event what;
	pmix_proc_t proc;
	int status;
	pmix_op_cbfunc_t cbfunc;
	void *cbdata;
	char msg[];
};

static void client_run(struct mos_pmix_work *w)
{
	struct client_work *c = (struct client_work *)w;
	struct mos_pmix_server *s = &mos_pmix_srv;
	const struct mos_pmix_host_ops *ops = &s->ops;

	if (s->state == MOS_PMIX_RUNNING) {
		switch (c->what) {
		case CL_CONNECTED:
			if (ops->client_connected)
				ops->client_connected(ops->ctx, c->proc.nspace, c->proc.rank);
			break;
		case CL_FINALIZED:
			if (ops->client_finalized)
				ops->client_finalized(ops->ctx, c->proc.nspace, c->proc.rank);
			break;
		case CL_ABORT:
			pr_info("pmix: %s rank %u aborts with status %d%s%s", c->proc.nspace,
				c->proc.rank, c->status, c->msg[0] ? ": " : "", c->msg);
			if (ops->abort)
				ops->abort(ops->ctx, c->proc.nspace, c->proc.rank, c->status,
					   c->msg);
			break;
		}
	}
	if (c->cbfunc && s->state != MOS_PMIX_DEAD)
		c->cbfunc(PMIX_SUCCESS, c->cbdata);
	free(c);
}

static pmix_status_t client_queue(enum client_event what, const pmix_proc_t *proc, int status,
				  const char *msg, pmix_op_cbfunc_t cbfunc, void *cbdata)
{
	size_t mlen = msg ? strlen(msg) : 0;
	struct client_work *c = malloc(sizeof(*c) + mlen + 1);

	if (!c)
		return PMIX_ERR_NOMEM;
	c->what = what;
	c->proc = *proc;
	c->status = status;
	c->cbfunc = cbfunc;
	c->cbdata = cbdata;
	memcpy(c->msg, msg ? msg : "", mlen + 1);
	mos_pmix_shift(&c->w, client_run);
	return PMIX_SUCCESS;
}

pmix_status_t mos_pmix_up_connected(const pmix_proc_t *proc, void *server_object,
				    pmix_info_t info[], size_t ninfo, pmix_op_cbfunc_t cbfunc,
				    void *cbdata)
{
	/* a notice only: the client goes on at once */
	if (client_queue(CL_CONNECTED, proc, 0, NULL, NULL, NULL) != PMIX_SUCCESS)
		return PMIX_ERR_NOMEM;
	return PMIX_OPERATION_SUCCEEDED;
}

pmix_status_t mos_pmix_up_finalized(const pmix_proc_t *proc, void *server_object,
				    pmix_op_cbfunc_t cbfunc, void *cbdata)
{
	return client_queue(CL_FINALIZED, proc, 0, NULL, cbfunc, cbdata);
}

/* PROCS (whom to kill) is ignored: the whole job ends, as with mpirun. */
pmix_status_t mos_pmix_up_abort(const pmix_proc_t *proc, void *server_object, int status,
				const char msg[], pmix_proc_t procs[], size_t nprocs,
				pmix_op_cbfunc_t cbfunc, void *cbdata)
{
	return client_queue(CL_ABORT, proc, status, msg, cbfunc, cbdata);
}
