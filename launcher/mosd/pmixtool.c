/* pmixtool.c - mosd's answers to PMIx tools (schedulers, mosctl): queries
 * get the cluster's process table (ps.c's fan-out) and the gossip view's
 * loads; job control goes to each job's home, which checks the tool's uid
 * and signals the ranks: KILL, TERMINATE (TERM, KILL after a grace time),
 * SIGNAL, PAUSE (STOP), RESUME (CONT); CHECKPOINT is ckpt.c's, as for
 * `mosctl checkpoint`. Every job is namespace "mosexec.<jobid>", serial jobs
 * too. See doc/pmix-scheduler.md. */
#include "pmixhost.h"
#include "ckpt.h"
#include "log.h"
#include "mospmix.h"
#include "util.h"
#include <errno.h>
#include <event2/event.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define JCTL_TIMEOUT_S 10	/* a home that does not answer */
#define CKPT_TIMEOUT_S 600	/* nor a checkpoint (images of every rank) */
#define TERM_GRACE_S 5		/* TERMINATE: SIGKILL after this long */

/* --- queries ---------------------------------------------------------------- */

static void put_loads(struct mos_pmix_node_load *l, size_t *n)
{
	uint64_t now = mos_now_ms();
	unsigned here = proc_count_running();
	*n = 0;
	for (size_t i = 0; i < mosd.conf->n_nodes; i++) {
		const struct mos_conf_node *node = &mosd.conf->nodes[i];
		const struct mos_load_entry *e = mos_view_find(&mosd.view, node->name);
		struct mos_pmix_node_load *x = &l[*n];
		x->node = node->name;
		if (node == mosd.self) {
			x->load_milli = here * 1000;
			x->ncpus = node->cpus;
			x->nprocs = here;
			x->age_ms = 0;
		} else if (e && !peer_known_dead((int)i)) {
			x->load_milli = e->load_milli;
			x->ncpus = e->ncpus;
			x->nprocs = e->nprocs;
			x->age_ms = (uint32_t)(now > e->stamp_ms ? now - e->stamp_ms : 0);
		} else {
			continue; /* not heard of lately: no figure to give */
		}
		(*n)++;
	}
}

struct qrows {
	uint64_t req;
	unsigned need;
};

static void row_free(struct mos_pmix_proc_row *r)
{
	free((char *)r->nspace);
	free((char *)r->node);
	free((char *)r->home);
	free((char *)r->cmd);
	free((char *)r->state);
}

/* ROWS (a PS_REP) -> rows the library understands; *N of them. */
static struct mos_pmix_proc_row *parse_rows(struct mos_msg *m, size_t *n)
{
	size_t cap = 0;
	struct mos_pmix_proc_row *rows = NULL, *r = NULL;
	*n = 0;
	for (size_t i = 0; m && i < m->n_fields; i++) {
		const struct mos_field *f = &m->fields[i];
		if (f->tag == MOS_T_JOBID) {
			if (*n == cap) {
				struct mos_pmix_proc_row *nr = realloc(rows, (cap = cap * 2 + 16) * sizeof(*rows));
				if (!nr)
					break;
				rows = nr;
			}
			r = &rows[(*n)++];
			memset(r, 0, sizeof(*r));
			char ns[32];
			snprintf(ns, sizeof(ns), "mosexec.%u", mos_field_u32(f));
			r->nspace = strdup(ns);
			continue;
		}
		if (!r)
			continue;
		switch (f->tag) {
		case MOS_T_RANK: r->rank = mos_field_u32(f); break;
		case MOS_T_UID: r->uid = mos_field_u32(f); break;
		case MOS_T_PID: r->pid = (pid_t)mos_field_u32(f); break;
		case MOS_T_CPU: r->cpu_permille = mos_field_u32(f); break;
		case MOS_T_MIGRATIONS: r->migrations = mos_field_u32(f); break;
		case MOS_T_RSS: r->rss = mos_field_u64(f); break;
		case MOS_T_HOME: free((char *)r->home); r->home = mos_field_str(f); break;
		case MOS_T_NODE: free((char *)r->node); r->node = mos_field_str(f); break;
		case MOS_T_STATE: free((char *)r->state); r->state = mos_field_str(f); break;
		case MOS_T_ARGV: free((char *)r->cmd); r->cmd = mos_field_str(f); break;
		}
	}
	/* a row whose strings did not fit in memory is dropped, not half-given */
	size_t k = 0;
	for (size_t i = 0; i < *n; i++)
		if (rows[i].nspace && rows[i].node)
			rows[k++] = rows[i];
		else
			row_free(&rows[i]);
	*n = k;
	return rows;
}

static void answer_query(uint64_t req, unsigned need, struct mos_msg *rows, const char *missing)
{
	struct mos_pmix_table t = { .missing = missing };
	struct mos_pmix_node_load *loads = NULL;
	struct mos_pmix_proc_row *procs = NULL;
	if (need & MOS_PMIX_NEED_LOADS) {
		loads = calloc(mosd.conf->n_nodes, sizeof(*loads));
		if (loads)
			put_loads(loads, &t.nloads);
	}
	if (need & MOS_PMIX_NEED_PROCS)
		procs = parse_rows(rows, &t.nprocs);
	t.loads = loads;
	t.procs = procs;
	bool nomem = ((need & MOS_PMIX_NEED_LOADS) && !loads) || ((need & MOS_PMIX_NEED_PROCS) && !rows);
	mos_pmix_query_done(req, nomem ? -ENOMEM : 0, &t);
	for (size_t i = 0; i < t.nprocs; i++)
		row_free(&procs[i]);
	free(procs);
	free(loads);
}

static void on_rows(void *arg, struct mos_msg *rows, const char *missing)
{
	struct qrows *q = arg;
	if (missing && *missing)
		pr_info("PMIx query: no process table from node(s) %s", missing);
	answer_query(q->req, q->need, rows, missing);
	free(q);
}

void pmixtool_query(void *ctx, uint64_t req, unsigned need)
{
	if (!(need & MOS_PMIX_NEED_PROCS)) {
		answer_query(req, need, NULL, NULL);
		return;
	}
	struct qrows *q = malloc(sizeof(*q));
	if (q) { /* set before: ps_collect may answer from inside the call */
		q->req = req;
		q->need = need;
	}
	if (!q || ps_collect(on_rows, q)) {
		free(q);
		mos_pmix_query_done(req, -ENOMEM, NULL);
	}
}

void pmixtool_tool_connected(void *ctx, const char *tool, uid_t uid, gid_t gid)
{
	pr_debug("PMIx tool %s attached for uid %u", tool, (unsigned)uid);
}

/* --- job control: at the job's home ----------------------------------------- */

static const char *const action_names[] = {
	[MOS_PMIX_JCTL_KILL] = "kill", [MOS_PMIX_JCTL_TERMINATE] = "terminate",
	[MOS_PMIX_JCTL_SIGNAL] = "signal", [MOS_PMIX_JCTL_PAUSE] = "pause",
	[MOS_PMIX_JCTL_RESUME] = "resume",
};

/* TERMINATE's second step: SIGKILL for what is left after the grace time. */
struct term {
	struct term *next;
	uint32_t jobid;
	int64_t rank;
	struct event *ev;
};
static struct term *terms;

static void term_free(struct term *t)
{
	for (struct term **pp = &terms; *pp; pp = &(*pp)->next)
		if (*pp == t) {
			*pp = t->next;
			break;
		}
	if (t->ev)
		event_free(t->ev);
	free(t);
}

static void term_fire(evutil_socket_t fd, short what, void *arg)
{
	struct term *t = arg;
	uint32_t id = t->jobid;
	int64_t rank = t->rank;
	term_free(t);
	struct job *j = job_find(id);
	if (!j)
		return;
	if (rank < 0) {
		char why[96];
		snprintf(why, sizeof(why), "it did not end within %d s of SIGTERM (PMIx terminate)", TERM_GRACE_S);
		job_kill(j, why);
	} else if (j->ranks[rank].state != RANK_EXITED) {
		job_signal(j, SIGKILL, rank);
	}
}

static void term_arm(uint32_t jobid, int64_t rank)
{
	struct term *t = calloc(1, sizeof(*t));
	struct timeval tv = { TERM_GRACE_S, 0 };
	if (!t || !(t->ev = evtimer_new(mosd.base, term_fire, t))) {
		free(t);
		pr_err("job %u: out of memory: no SIGKILL will follow the SIGTERM", jobid);
		return;
	}
	t->jobid = jobid;
	t->rank = rank;
	evtimer_add(t->ev, &tv);
	t->next = terms;
	terms = t;
}

/* Do ACTION to RANK (or every rank) of job JOBID for UID; TEXT gets the
 * reason of a refusal. 0, -ENOENT, -EPERM, -EINVAL. */
static int apply(uint32_t jobid, uint32_t rank, uid_t uid, uint32_t action, int sig, char *text, size_t len)
{
	struct job *j = job_find(jobid);
	if (!j) {
		snprintf(text, len, "no job %u", jobid);
		return -ENOENT;
	}
	if (uid != 0 && uid != j->uid) {
		pr_warn("uid %u may not control job %u of uid %u", (unsigned)uid, jobid, (unsigned)j->uid);
		snprintf(text, len, "permission denied: job %u belongs to another user", jobid);
		return -EPERM;
	}
	if (rank != MOS_PMIX_RANK_ALL && rank >= j->nprocs) {
		snprintf(text, len, "job %u has no rank %u", jobid, rank);
		return -EINVAL;
	}
	if (action < MOS_PMIX_JCTL_KILL || action > MOS_PMIX_JCTL_RESUME ||
	    (action == MOS_PMIX_JCTL_SIGNAL && (sig <= 0 || sig >= 65))) {
		snprintf(text, len, "bad job-control request");
		return -EINVAL;
	}
	int64_t r = rank == MOS_PMIX_RANK_ALL ? -1 : (int64_t)rank;
	pr_info("job %u: PMIx %s (%s) for uid %u", jobid, action_names[action],
		r < 0 ? "every rank" : "one rank", (unsigned)uid);
	switch (action) {
	case MOS_PMIX_JCTL_KILL:
		if (r < 0) {
			char why[96];
			snprintf(why, sizeof(why), "killed through PMIx by uid %u", (unsigned)uid);
			job_kill(j, why);
		} else {
			job_signal(j, SIGKILL, r);
		}
		break;
	case MOS_PMIX_JCTL_TERMINATE: /* a paused process acts on TERM once it runs */
		job_signal(j, SIGTERM, r);
		job_signal(j, SIGCONT, r);
		term_arm(jobid, r);
		break;
	case MOS_PMIX_JCTL_SIGNAL: job_signal(j, sig, r); break;
	case MOS_PMIX_JCTL_PAUSE: job_signal(j, SIGSTOP, r); break;
	case MOS_PMIX_JCTL_RESUME: job_signal(j, SIGCONT, r); break;
	}
	return 0;
}

/* --- job control: where the tool asked ------------------------------------- */

/* One request of a tool, answered when every target's home has. */
struct jreq {
	struct jreq *next;
	uint64_t seq;		/* ours: SEQ of the JOBCTL messages */
	uint64_t req;		/* the library's */
	size_t left;
	int status;
	char text[256];
	struct event *timer;
};
static struct jreq *jreqs;
static uint64_t jreq_seq;

static void jreq_free(struct jreq *q)
{
	for (struct jreq **pp = &jreqs; *pp; pp = &(*pp)->next)
		if (*pp == q) {
			*pp = q->next;
			break;
		}
	if (q->timer)
		event_free(q->timer);
	free(q);
}

/* One target answered: the first error wins; what successes say (where a
 * checkpoint went) is kept while none failed. */
static void jreq_sub_done(struct jreq *q, int status, const char *text)
{
	if (status && !q->status) {
		q->status = status;
		snprintf(q->text, sizeof(q->text), "%s", text && *text ? text : strerror(-status));
	} else if (!status && !q->status && text && *text) {
		size_t l = strlen(q->text);
		snprintf(q->text + l, sizeof(q->text) - l, "%s%s", l ? "; " : "", text);
	}
	if (--q->left)
		return;
	mos_pmix_job_control_done(q->req, q->status, q->text[0] ? q->text : NULL);
	jreq_free(q);
}

static struct jreq *jreq_find(uint64_t seq)
{
	struct jreq *q = jreqs;
	while (q && q->seq != seq)
		q = q->next;
	return q;
}

/* ckpt_request's answer for target ARG (the jreq's SEQ: it may be gone). */
static void ckpt_done(void *arg, int code, const char *text)
{
	struct jreq *q = jreq_find((uint64_t)(uintptr_t)arg);
	if (q)
		jreq_sub_done(q, code, text);
}

static void checkpoint(struct jreq *q, uint32_t jobid, const struct mos_pmix_target *t, uid_t uid, const char *dir,
		       size_t n)
{
	int rc = -EINVAL;
	char text[160];
	if (t->rank != MOS_PMIX_RANK_ALL)
		snprintf(text, sizeof(text), "a checkpoint is of a whole job: target %s with PMIX_RANK_WILDCARD",
			 t->nspace);
	else if (dir && *dir && n > 1)
		snprintf(text, sizeof(text), "one checkpoint directory (%s) for %zu jobs", MOS_PMIX_KEY_CKPT_DIR, n);
	else if ((rc = ckpt_request(jobid, uid, dir, ckpt_done, (void *)(uintptr_t)q->seq)))
		snprintf(text, sizeof(text), "cannot ask the home of job %u for a checkpoint: %s", jobid,
			 strerror(-rc));
	if (rc)
		jreq_sub_done(q, rc, text);
}

static void jreq_timeout(evutil_socket_t fd, short what, void *arg)
{
	struct jreq *q = arg;
	q->left = 1;
	jreq_sub_done(q, -ETIMEDOUT, "no answer from the job's home node");
}

static bool parse_nspace(const char *ns, uint32_t *jobid)
{
	char *end;
	if (strncmp(ns, "mosexec.", 8) || !ns[8] || ns[8] < '0' || ns[8] > '9')
		return false;
	unsigned long v = strtoul(ns + 8, &end, 10);
	*jobid = (uint32_t)v;
	return !*end && v > 0 && v <= UINT32_MAX && mos_jobid_home(*jobid) < mosd.conf->n_nodes;
}

static void send_jctl(int to, unsigned kind, const char *nspace, uint64_t seq, uint32_t rank, int code,
		      int sig, uid_t uid, const char *text)
{
	struct mos_msg m;
	if (mos_msg_init(&m, MOS_MSG_PMIX))
		return;
	mos_msg_put_u32(&m, MOS_T_KIND, kind);
	mos_msg_put_str(&m, MOS_T_NAME, nspace);
	mos_msg_put_u64(&m, MOS_T_SEQ, seq);
	if (rank != MOS_PMIX_RANK_ALL)
		mos_msg_put_u32(&m, MOS_T_RANK, rank);
	mos_msg_put_i32(&m, MOS_T_CODE, code);
	mos_msg_put_u32(&m, MOS_T_SIG, (uint32_t)sig);
	mos_msg_put_u32(&m, MOS_T_UID, (uint32_t)uid);
	if (text)
		mos_msg_put_str(&m, MOS_T_TEXT, text);
	mos_msg_put_str(&m, MOS_T_NODE, mosd.self->name);
	int rc = peer_send(to, &m);
	mos_msg_free(&m);
	if (rc && kind == MOS_PMIX_JOBCTL_REQ) {
		struct jreq *q = jreq_find(seq);
		char why[160];
		snprintf(why, sizeof(why), "cannot reach node %s, the home of job %s", mosd.conf->nodes[to].name, nspace);
		if (q)
			jreq_sub_done(q, rc, why);
	}
}

void pmixtool_job_control(void *ctx, uint64_t req, uid_t uid, enum mos_pmix_jctl action, int sig, const char *dir,
			  const struct mos_pmix_target *targets, size_t n)
{
	struct jreq *q = calloc(1, sizeof(*q));
	struct timeval tv = { action == MOS_PMIX_JCTL_CHECKPOINT ? CKPT_TIMEOUT_S : JCTL_TIMEOUT_S, 0 };
	if (!q || !(q->timer = evtimer_new(mosd.base, jreq_timeout, q))) {
		free(q);
		mos_pmix_job_control_done(req, -ENOMEM, NULL);
		return;
	}
	q->seq = ++jreq_seq;
	q->req = req;
	q->left = n + 1; /* +1: our own hold while sending */
	evtimer_add(q->timer, &tv);
	q->next = jreqs;
	jreqs = q;
	for (size_t i = 0; i < n; i++) {
		uint32_t jobid;
		char text[256] = "";
		if (!parse_nspace(targets[i].nspace, &jobid)) {
			snprintf(text, sizeof(text), "no job has namespace '%s' (mosexec.<jobid>)", targets[i].nspace);
			jreq_sub_done(q, -ENOENT, text);
			continue;
		}
		unsigned home = mos_jobid_home(jobid);
		if (action == MOS_PMIX_JCTL_CHECKPOINT) {
			checkpoint(q, jobid, &targets[i], uid, dir, n);
		} else if (&mosd.conf->nodes[home] == mosd.self) {
			int rc = apply(jobid, targets[i].rank, uid, action, sig, text, sizeof(text));
			jreq_sub_done(q, rc, text);
		} else {
			send_jctl((int)home, MOS_PMIX_JOBCTL_REQ, targets[i].nspace, q->seq, targets[i].rank,
				  (int)action, sig, uid, NULL);
		}
	}
	jreq_sub_done(q, 0, NULL);
}

void pmixtool_on_msg(struct mos_msg *m, int from, unsigned kind, const char *nspace)
{
	uint64_t seq = 0;
	uint32_t rank = MOS_PMIX_RANK_ALL, sig = 0, uid = UINT32_MAX, jobid;
	int32_t code = 0;
	mos_msg_get_u64(m, MOS_T_SEQ, &seq);
	mos_msg_get_u32(m, MOS_T_RANK, &rank);
	mos_msg_get_i32(m, MOS_T_CODE, &code);
	mos_msg_get_u32(m, MOS_T_SIG, &sig);
	mos_msg_get_u32(m, MOS_T_UID, &uid);
	if (kind == MOS_PMIX_JOBCTL_REQ) {
		char text[256] = "";
		int rc = parse_nspace(nspace, &jobid) && &mosd.conf->nodes[mos_jobid_home(jobid)] == mosd.self ?
				 apply(jobid, rank, (uid_t)uid, (uint32_t)code, (int)sig, text, sizeof(text)) :
				 -ENOENT;
		if (rc == -ENOENT && !text[0])
			snprintf(text, sizeof(text), "no job %s here", nspace);
		send_jctl(from, MOS_PMIX_JOBCTL_REP, nspace, seq, MOS_PMIX_RANK_ALL, rc, 0, uid, rc ? text : NULL);
		return;
	}
	struct jreq *q = jreq_find(seq);
	if (!q)
		return; /* timed out already */
	char *text = mos_msg_get_str(m, MOS_T_TEXT);
	jreq_sub_done(q, code, text);
	free(text);
}

void pmixtool_fini(void)
{
	while (terms)
		term_free(terms);
	while (jreqs)
		jreq_free(jreqs);
}
