/* dmodex.c - direct modex both ways. Asking: a local client needs a remote
 * rank's data; requests for the same rank are merged into one host request
 * (one req_id) and every waiter gets its own copy of the answer; data a
 * remote server pushed unasked answers from a cache. Serving:
 * the host brings a remote server's request here, PMIx hands over the
 * rank's blob once committed, on its own thread - copied there, replied on
 * the host loop. */
#include "mospmix_int.h"
#include "log.h"
#include <errno.h>
#include <event2/event.h>
#include <inttypes.h>
#include <stdlib.h>
#include <string.h>

struct waiter {
	struct waiter *next;
	pmix_modex_cbfunc_t cbfunc;
	void *cbdata;
};

struct dmdx {
	struct dmdx *next;
	uint64_t id;
	pmix_proc_t proc;
	struct waiter *waiters;
	struct event *timer;
};

/* A request for a rank whose data is not posted yet waits at the serving
 * server (PMIx holds it until the rank commits, even before the job is
 * registered there), so the answer may take as long as the slowest rank
 * takes to start. Without a client's PMIX_TIMEOUT, give up after this long
 * (like a fence at the job's home), so that a lost request cannot hang. */
#define MOS_PMIX_DMODEX_TIMEOUT_S 120

static struct dmdx *requests;	/* in flight on the host: host loop only */
static uint64_t last_id;

/* Data pushed to us before any local client asked for it. */
struct pushed {
	struct pushed *next;
	pmix_proc_t proc;
	size_t len;
	char data[];
};
static struct pushed *cache;	/* host loop only */

static struct pushed *cache_take(const pmix_proc_t *proc)
{
	for (struct pushed **pp = &cache; *pp; pp = &(*pp)->next) {
		struct pushed *c = *pp;

		if (PMIX_CHECK_PROCID(&c->proc, proc)) {
			*pp = c->next;
			return c;
		}
	}
	return NULL;
}

static void answer(struct waiter *w, int status, const void *data, size_t len)
{
	char *copy = NULL;

	if (status == 0 && len) {
		copy = malloc(len);
		if (!copy)
			status = -ENOMEM;
		else
			memcpy(copy, data, len);
	}
	if (status)
		len = 0;
	w->cbfunc(mos_pmix_to_pmix(status), copy, len, w->cbdata,
		  copy ? mos_pmix_release_free : NULL, copy);
}

static struct dmdx *req_unlink(uint64_t id)
{
	for (struct dmdx **pp = &requests; *pp; pp = &(*pp)->next) {
		struct dmdx *d = *pp;

		if (d->id == id) {
			*pp = d->next;
			return d;
		}
	}
	return NULL;
}

static void req_complete(struct dmdx *d, int status, const void *data, size_t len)
{
	struct waiter *w, *next;

	if (d->timer)
		event_free(d->timer);
	for (w = d->waiters; w; w = next) {
		next = w->next;
		if (mos_pmix_srv.state != MOS_PMIX_DEAD)
			answer(w, status, data, len);
		free(w);
	}
	free(d);
}

static void req_timeout(evutil_socket_t fd, short what, void *arg)
{
	struct dmdx *d = arg;

	pr_err("pmix: direct modex for %s.%u timed out", d->proc.nspace, d->proc.rank);
	req_complete(req_unlink(d->id), -ETIMEDOUT, NULL, 0);
}

struct dmdx_work {
	struct mos_pmix_work w;
	pmix_proc_t proc;
	int timeout;
	struct waiter *waiter;
};

static int req_start(struct dmdx_work *dw)
{
	struct mos_pmix_server *s = &mos_pmix_srv;
	struct dmdx *d;

	if (!s->ops.dmodex)
		return -ENOTSUP;
	if (!mos_pmix_job_find(dw->proc.nspace))
		return -ENOENT;
	struct pushed *c = cache_take(&dw->proc);
	if (c) {	/* PMIx keeps what we answer: one use is enough */
		answer(dw->waiter, 0, c->data, c->len);
		free(dw->waiter);
		free(c);
		return 0;
	}
	for (d = requests; d; d = d->next) {
		if (PMIX_CHECK_PROCID(&d->proc, &dw->proc)) {
			dw->waiter->next = d->waiters;
			d->waiters = dw->waiter;
			return 0;
		}
	}
	d = calloc(1, sizeof(*d));
	if (!d)
		return -ENOMEM;
	d->id = ++last_id;
	d->proc = dw->proc;
	d->waiters = dw->waiter;
	if (dw->timeout > 0) {
		struct timeval tv = { .tv_sec = dw->timeout };

		d->timer = evtimer_new(s->base, req_timeout, d);
		if (!d->timer) {
			free(d);
			return -ENOMEM;
		}
		evtimer_add(d->timer, &tv);
	}
	d->next = requests;
	requests = d;
	pr_debug("pmix: direct modex %" PRIu64 " for %s.%u", d->id, d->proc.nspace,
		 d->proc.rank);
	s->ops.dmodex(s->ops.ctx, d->proc.nspace, d->proc.rank, d->id);
	return 0;
}

static void dmdx_run(struct mos_pmix_work *w)
{
	struct dmdx_work *dw = (struct dmdx_work *)w;
	int err = -ECANCELED;

	if (mos_pmix_srv.state == MOS_PMIX_RUNNING)
		err = req_start(dw);
	if (err) {
		if (mos_pmix_srv.state != MOS_PMIX_DEAD)
			answer(dw->waiter, err, NULL, 0);
		free(dw->waiter);
	}
	free(dw);
}

pmix_status_t mos_pmix_up_dmodex(const pmix_proc_t *proc, const pmix_info_t info[], size_t ninfo,
				 pmix_modex_cbfunc_t cbfunc, void *cbdata)
{
	struct dmdx_work *dw = malloc(sizeof(*dw));
	struct waiter *w = malloc(sizeof(*w));

	if (!dw || !w) {
		free(dw);
		free(w);
		return PMIX_ERR_NOMEM;
	}
	w->next = NULL;
	w->cbfunc = cbfunc;
	w->cbdata = cbdata;
	dw->proc = *proc;
	dw->timeout = mos_pmix_info_timeout(info, ninfo);
	if (dw->timeout <= 0)
		dw->timeout = MOS_PMIX_DMODEX_TIMEOUT_S;
	dw->waiter = w;
	mos_pmix_shift(&dw->w, dmdx_run);
	return PMIX_SUCCESS;
}

int mos_pmix_dmodex_done(uint64_t req_id, int status, const void *data, size_t len)
{
	struct dmdx *d = req_unlink(req_id);

	if (!d)
		return -ENOENT;
	if (status)
		pr_err("pmix: direct modex for %s.%u failed: %s", d->proc.nspace, d->proc.rank,
		       strerror(-status));
	req_complete(d, status, data, len);
	return 0;
}

int mos_pmix_dmodex_push(const char *nspace, uint32_t rank, const void *data, size_t len)
{
	struct pushed *c;
	pmix_proc_t proc;

	if (!mos_pmix_job_find(nspace))
		return -ENOENT;
	PMIX_LOAD_PROCID(&proc, nspace, rank);
	for (struct dmdx *d = requests; d; d = d->next)
		if (PMIX_CHECK_PROCID(&d->proc, &proc)) {
			req_complete(req_unlink(d->id), 0, data, len);
			return 0;
		}
	if ((c = cache_take(&proc)))	/* a second copy: keep the newer */
		free(c);
	c = malloc(sizeof(*c) + len);
	if (!c)
		return -ENOMEM;
	c->proc = proc;
	c->len = len;
	if (len)
		memcpy(c->data, data, len);
	c->next = cache;
	cache = c;
	return 0;
}

int mos_pmix_dmodex_fail_ns(const char *nspace, int status)
{
	struct dmdx *d;
	int n = 0;

	for (struct pushed **pp = &cache; *pp;) {
		struct pushed *c = *pp;

		if (strcmp(c->proc.nspace, nspace)) {
			pp = &c->next;
			continue;
		}
		*pp = c->next;
		free(c);
	}

	while (true) {
		for (d = requests; d && strcmp(d->proc.nspace, nspace); d = d->next)
			;
		if (!d)
			return n;
		req_complete(req_unlink(d->id), status, NULL, 0);
		n++;
	}
}

/* --- serving a remote server's request -------------------------------- */

struct serve {
	struct mos_pmix_work w;
	void (*reply)(void *arg, int status, const void *data, size_t len);
	void *arg;
	int status;
	size_t len;
	char *data;
};

static void serve_run(struct mos_pmix_work *w)
{
	struct serve *sv = (struct serve *)w;

	if (mos_pmix_srv.state == MOS_PMIX_RUNNING)
		sv->reply(sv->arg, sv->status, sv->data, sv->len);
	free(sv->data);
	free(sv);
}

/* PMIx thread; DATA is freed when we return */
static void serve_cb(pmix_status_t status, char *data, size_t sz, void *cbdata)
{
	struct serve *sv = cbdata;

	sv->status = mos_pmix_from_pmix(status);
	sv->len = 0;
	sv->data = NULL;
	if (status == PMIX_SUCCESS && sz) {
		sv->data = malloc(sz);
		if (sv->data) {
			memcpy(sv->data, data, sz);
			sv->len = sz;
		} else {
			sv->status = -ENOMEM;
		}
	}
	mos_pmix_shift(&sv->w, serve_run);
}

int mos_pmix_dmodex_serve(const char *nspace, uint32_t rank,
			  void (*reply)(void *arg, int status, const void *data, size_t len),
			  void *arg)
{
	struct serve *sv;
	pmix_proc_t proc;
	pmix_status_t rc;

	if (mos_pmix_srv.state != MOS_PMIX_RUNNING)
		return -ESRCH;
	sv = calloc(1, sizeof(*sv));
	if (!sv)
		return -ENOMEM;
	sv->reply = reply;
	sv->arg = arg;
	PMIX_LOAD_PROCID(&proc, nspace, rank);
	rc = PMIx_server_dmodex_request(&proc, serve_cb, sv);
	if (rc != PMIX_SUCCESS) {
		pr_err("pmix: serving direct modex for %s.%u: %s", nspace, rank,
		       PMIx_Error_string(rc));
		free(sv);
		return -EIO;
	}
	return 0;
}
