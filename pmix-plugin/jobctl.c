/* jobctl.c - PMIx_Job_control: one action per request (KILL, TERMINATE,
 * SIGNAL, PAUSE, RESUME, CHECKPOINT - into mosexec.ckpt.dir if given) for
 * whole namespaces or listed ranks, done by the host on behalf of the
 * requester's uid (a tool's, as confirmed when it attached; never the
 * server's). Every other directive - RESTART, CANCEL, PROVISION,
 * PREEMPTIBLE, a migrate request - answers PMIX_ERR_NOT_SUPPORTED at once. */
#include "mospmix_int.h"
#include "log.h"
#include <errno.h>
#include <stdlib.h>
#include <string.h>

static const struct {
	const char *key;
	enum mos_pmix_jctl action;
} actions[] = {
	{ PMIX_JOB_CTRL_KILL, MOS_PMIX_JCTL_KILL },
	{ PMIX_JOB_CTRL_TERMINATE, MOS_PMIX_JCTL_TERMINATE },
	{ PMIX_JOB_CTRL_SIGNAL, MOS_PMIX_JCTL_SIGNAL },
	{ PMIX_JOB_CTRL_PAUSE, MOS_PMIX_JCTL_PAUSE },
	{ PMIX_JOB_CTRL_RESUME, MOS_PMIX_JCTL_RESUME },
	{ PMIX_JOB_CTRL_CHECKPOINT, MOS_PMIX_JCTL_CHECKPOINT },
};

struct jctl {
	struct mos_pmix_work w;
	struct jctl *next;
	uint64_t id;
	pmix_proc_t requester;
	enum mos_pmix_jctl action;
	int sig;
	char *dir;		/* CHECKPOINT's mosexec.ckpt.dir, or NULL */
	pmix_info_cbfunc_t cbfunc;
	void *cbdata;
	size_t n;
	struct mos_pmix_target *targets;	/* nspace points into names */
	char (*names)[PMIX_MAX_NSLEN + 1];
};

static struct jctl *pending;	/* waiting for the host: host loop only */
static uint64_t jctl_seq;

static void jctl_free(struct jctl *c)
{
	free(c->targets);
	free(c->names);
	free(c->dir);
	free(c);
}

static void answer(struct jctl *c, int status, const char *text)
{
	struct mos_pmix_infos *rel = NULL;
	pmix_info_t *info = NULL;

	if (mos_pmix_srv.state == MOS_PMIX_DEAD || !c->cbfunc)
		goto out;
	if (text && text[0] && (rel = malloc(sizeof(*rel)))) {
		PMIX_INFO_CREATE(info, 1);
		if (info) {
			PMIX_INFO_LOAD(&info[0], MOS_PMIX_KEY_JCTL_MSG, text, PMIX_STRING);
			rel->info = info;
			rel->n = 1;
		} else {
			free(rel);
			rel = NULL;
		}
	}
	c->cbfunc(mos_pmix_to_pmix(status), info, info ? 1 : 0, c->cbdata,
		  rel ? mos_pmix_release_infos : NULL, rel);
out:
	jctl_free(c);
}

static void jctl_run(struct mos_pmix_work *w)
{
	struct jctl *c = (struct jctl *)w;
	const struct mos_pmix_host_ops *ops = &mos_pmix_srv.ops;
	const char *why;
	uid_t uid;
	int err;

	if (mos_pmix_srv.state != MOS_PMIX_RUNNING) {
		answer(c, -ECANCELED, NULL);
		return;
	}
	if (!ops->job_control) {
		answer(c, -ENOTSUP, NULL);
		return;
	}
	err = mos_pmix_requester_uid(&c->requester, &uid, &why);
	if (err) {
		pr_warn("pmix: job control from %s.%u refused: %s", c->requester.nspace,
			c->requester.rank, why);
		answer(c, err, why);
		return;
	}
	c->id = ++jctl_seq;
	c->next = pending;
	pending = c;
	ops->job_control(ops->ctx, c->id, uid, c->action, c->sig, c->dir, c->targets, c->n);
}

/* The one action DIRS ask for; PMIX_ERR_NOT_SUPPORTED for a directive we
 * do not do, PMIX_ERR_BAD_PARAM for none or several actions. */
static pmix_status_t parse_dirs(const pmix_info_t dirs[], size_t ndirs, struct jctl *c)
{
	size_t nact = 0;

	for (size_t i = 0; i < ndirs; i++) {
		const pmix_info_t *d = &dirs[i];
		bool known = false;

		for (size_t k = 0; k < sizeof(actions) / sizeof(actions[0]); k++) {
			if (!PMIX_CHECK_KEY(d, actions[k].key))
				continue;
			known = true;
			if (actions[k].action == MOS_PMIX_JCTL_SIGNAL) {
				pmix_status_t rc;

				PMIX_VALUE_GET_NUMBER(rc, &d->value, c->sig, int);
				if (rc != PMIX_SUCCESS || c->sig <= 0 || c->sig >= 65)
					return PMIX_ERR_BAD_PARAM;
			} else if (actions[k].action == MOS_PMIX_JCTL_CHECKPOINT && d->value.type == PMIX_STRING) {
				/* the standard's form: an id for the checkpoint (not kept) */
			} else if (!PMIX_INFO_TRUE(d)) {
				break; /* "pause: false" asks for nothing */
			}
			c->action = actions[k].action;
			nact++;
		}
		if (known || PMIX_CHECK_KEY(d, PMIX_JOB_CTRL_ID))
			continue;
		if (PMIX_CHECK_KEY(d, MOS_PMIX_KEY_CKPT_DIR)) {
			if (d->value.type != PMIX_STRING || !d->value.data.string || c->dir)
				return PMIX_ERR_BAD_PARAM;
			if (!(c->dir = strdup(d->value.data.string)))
				return PMIX_ERR_NOMEM;
			continue;
		}
		/* restart, cancel, provision, preemptible, migrate... */
		if (!strncmp(d->key, "pmix.jctrl.", 11) || !strncmp(d->key, "mosexec.jctrl.", 14) ||
		    PMIX_INFO_IS_REQUIRED(d)) {
			pr_info("pmix: job control directive %s is not supported", d->key);
			return PMIX_ERR_NOT_SUPPORTED;
		}
	}
	return nact == 1 ? PMIX_SUCCESS : PMIX_ERR_BAD_PARAM;
}

/* PMIx thread. REQUESTOR is the tool itself here (unlike a query's). */
pmix_status_t mos_pmix_up_job_control(const pmix_proc_t *requestor, const pmix_proc_t targets[],
				      size_t ntargets, const pmix_info_t directives[],
				      size_t ndirs, pmix_info_cbfunc_t cbfunc, void *cbdata)
{
	struct jctl *c;
	pmix_status_t rc;

	if (!mos_pmix_srv.ops.job_control) /* ops are fixed before PMIx starts */
		return PMIX_ERR_NOT_SUPPORTED;
	c = calloc(1, sizeof(*c));
	if (!c)
		return PMIX_ERR_NOMEM;
	rc = parse_dirs(directives, ndirs, c);
	if (rc == PMIX_SUCCESS && (!ntargets || !targets))
		rc = PMIX_ERR_BAD_PARAM; /* a tool has no namespace of its own to mean */
	if (rc == PMIX_SUCCESS && c->dir && c->action != MOS_PMIX_JCTL_CHECKPOINT)
		rc = PMIX_ERR_BAD_PARAM;
	if (rc != PMIX_SUCCESS) {
		jctl_free(c);
		return rc;
	}
	c->targets = calloc(ntargets, sizeof(*c->targets));
	c->names = calloc(ntargets, sizeof(*c->names));
	if (!c->targets || !c->names) {
		jctl_free(c);
		return PMIX_ERR_NOMEM;
	}
	for (size_t i = 0; i < ntargets; i++) {
		pmix_rank_t r = targets[i].rank;

		if (r >= PMIX_RANK_VALID && r != PMIX_RANK_WILDCARD) {
			jctl_free(c);
			return PMIX_ERR_BAD_PARAM;
		}
		PMIX_LOAD_NSPACE(c->names[i], targets[i].nspace);
		c->targets[i].nspace = c->names[i];
		c->targets[i].rank = r == PMIX_RANK_WILDCARD ? MOS_PMIX_RANK_ALL : r;
	}
	c->n = ntargets;
	c->requester = *requestor;
	c->cbfunc = cbfunc;
	c->cbdata = cbdata;
	mos_pmix_shift(&c->w, jctl_run);
	return PMIX_SUCCESS;
}

int mos_pmix_job_control_done(uint64_t req_id, int status, const char *text)
{
	for (struct jctl **pp = &pending; *pp; pp = &(*pp)->next) {
		struct jctl *c = *pp;

		if (c->id != req_id)
			continue;
		*pp = c->next;
		answer(c, status, text);
		return 0;
	}
	return -ENOENT;
}

void mos_pmix_jobctl_fini(void)
{
	while (pending) {
		struct jctl *c = pending;

		pending = c->next;
		answer(c, -ECANCELED, NULL);
	}
}
