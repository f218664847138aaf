/* fence.c - fences across servers. PMIx calls fence_nb once per fence when
 * every local rank arrived; we number the fences of each namespace (1, 2,
 * ...: the same on every server, every fence spanning the whole namespace),
 * hand this server's blob to the host, and give the combined blob the host
 * returns - or an error, or PMIX_TIMEOUT's expiry - back to PMIx. */
#include "mospmix_int.h"
#include "log.h"
#include <errno.h>
#include <inttypes.h>
#include <event2/event.h>
#include <stdlib.h>
#include <string.h>

struct fence {
	struct fence *next;
	char nspace[PMIX_MAX_NSLEN + 1];
	uint64_t id;
	pmix_modex_cbfunc_t cbfunc;
	void *cbdata;
	struct event *timer;
};

static struct fence *fences;	/* pending on the host: host loop only */

struct fence_work {
	struct mos_pmix_work w;
	pmix_proc_t *procs;
	size_t nprocs;
	int timeout;
	pmix_modex_cbfunc_t cbfunc;
	void *cbdata;
	size_t len;
	char data[];
};

static void fence_answer(pmix_modex_cbfunc_t cbfunc, void *cbdata, int status, const void *data,
			 size_t len)
{
	char *copy = NULL;

	if (mos_pmix_srv.state == MOS_PMIX_DEAD)
		return;
	if (status == 0 && len) {
		copy = malloc(len);
		if (!copy)
			status = -ENOMEM;
		else
			memcpy(copy, data, len);
	}
	if (status)
		len = 0;
	/* PMIx calls the release on its own thread: plain free() */
	cbfunc(mos_pmix_to_pmix(status), copy, len, cbdata, copy ? mos_pmix_release_free : NULL,
	       copy);
}

static struct fence *fence_unlink(const char *nspace, uint64_t id)
{
	for (struct fence **pp = &fences; *pp; pp = &(*pp)->next) {
		struct fence *f = *pp;

		if (f->id == id && !strcmp(f->nspace, nspace)) {
			*pp = f->next;
			return f;
		}
	}
	return NULL;
}

static void fence_complete(struct fence *f, int status, const void *data, size_t len)
{
	if (f->timer)
		event_free(f->timer);
	fence_answer(f->cbfunc, f->cbdata, status, data, len);
	free(f);
}

static void fence_timeout(evutil_socket_t fd, short what, void *arg)
{
	struct fence *f = arg;

	pr_err("pmix: fence %" PRIu64 " of %s timed out", f->id, f->nspace);
	fence_complete(fence_unlink(f->nspace, f->id), -ETIMEDOUT, NULL, 0);
}

/* The participants must be the whole of one namespace. */
static struct mos_pmix_jobrec *fence_job(const struct fence_work *fw)
{
	struct mos_pmix_jobrec *j;

	if (!fw->nprocs)
		return NULL;
	j = mos_pmix_job_find(fw->procs[0].nspace);
	if (!j)
		return NULL;
	if (fw->nprocs == 1 && fw->procs[0].rank == PMIX_RANK_WILDCARD)
		return j;
	/* an explicit list naming every rank once is accepted too */
	if (fw->nprocs != j->nprocs)
		return NULL;
	for (size_t i = 0; i < fw->nprocs; i++)
		if (strcmp(fw->procs[i].nspace, j->nspace) || fw->procs[i].rank >= j->nprocs)
			return NULL;
	return j;
}

static int fence_start(struct fence_work *fw)
{
	struct mos_pmix_server *s = &mos_pmix_srv;
	struct mos_pmix_jobrec *j = fence_job(fw);
	struct fence *f;

	if (!j) {
		pr_err("pmix: fence over %zu procs of %s: only whole-namespace fences are "
		       "supported", fw->nprocs, fw->nprocs ? fw->procs[0].nspace : "?");
		return -ENOTSUP;
	}
	if (!s->ops.fence)
		return -ENOTSUP;
	f = calloc(1, sizeof(*f));
	if (!f)
		return -ENOMEM;
	strcpy(f->nspace, j->nspace);
	f->id = ++j->fence_seq;
	f->cbfunc = fw->cbfunc;
	f->cbdata = fw->cbdata;
	if (fw->timeout > 0) {
		struct timeval tv = { .tv_sec = fw->timeout };

		f->timer = evtimer_new(s->base, fence_timeout, f);
		if (!f->timer) {
			free(f);
			return -ENOMEM;
		}
		evtimer_add(f->timer, &tv);
	}
	/* linked first: the host may answer from inside the call */
	f->next = fences;
	fences = f;
	pr_debug("pmix: fence %" PRIu64 " of %s: %zu bytes to exchange", f->id, f->nspace,
		 fw->len);
	s->ops.fence(s->ops.ctx, j->nspace, f->id, fw->data, fw->len, fw->timeout);
	return 0;
}

static void fence_run(struct mos_pmix_work *w)
{
	struct fence_work *fw = (struct fence_work *)w;
	int err = -ECANCELED;

	if (mos_pmix_srv.state == MOS_PMIX_RUNNING)
		err = fence_start(fw);
	if (err)
		fence_answer(fw->cbfunc, fw->cbdata, err, NULL, 0);
	free(fw->procs);
	free(fw);
}

pmix_status_t mos_pmix_up_fence(const pmix_proc_t procs[], size_t nprocs,
				const pmix_info_t info[], size_t ninfo, char *data, size_t ndata,
				pmix_modex_cbfunc_t cbfunc, void *cbdata)
{
	struct fence_work *fw = malloc(sizeof(*fw) + ndata);

	if (!fw)
		return PMIX_ERR_NOMEM;
	fw->procs = malloc((nprocs ? nprocs : 1) * sizeof(*procs));
	if (!fw->procs) {
		free(fw);
		return PMIX_ERR_NOMEM;
	}
	memcpy(fw->procs, procs, nprocs * sizeof(*procs));
	fw->nprocs = nprocs;
	fw->timeout = mos_pmix_info_timeout(info, ninfo);
	fw->cbfunc = cbfunc;
	fw->cbdata = cbdata;
	fw->len = ndata;
	if (ndata)
		memcpy(fw->data, data, ndata);
	mos_pmix_shift(&fw->w, fence_run);
	return PMIX_SUCCESS;
}

int mos_pmix_fence_done(const char *nspace, uint64_t fence_id, int status, const void *data,
			size_t len)
{
	struct fence *f = fence_unlink(nspace, fence_id);

	if (!f)
		return -ENOENT;
	if (status)
		pr_err("pmix: fence %" PRIu64 " of %s failed: %s", fence_id, nspace,
		       strerror(-status));
	fence_complete(f, status, data, len);
	return 0;
}

int mos_pmix_fence_fail_ns(const char *nspace, int status)
{
	struct fence *f;
	int n = 0;

	while (true) {
		for (f = fences; f && strcmp(f->nspace, nspace); f = f->next)
			;
		if (!f)
			return n;
		fence_complete(fence_unlink(f->nspace, f->id), status, NULL, 0);
		n++;
	}
}
