/* ps.c - the cluster's process table: a local user's PS_REQ (or mosd's own
 * ps_collect(), for PMIx tools) fans out to every node not known dead; each
 * answers with the processes it runs; the rows are merged and returned
 * within a bounded time, naming nodes that did not answer. */
#include "mosd.h"
#include "log.h"
#include "mig.h"
#include "util.h"
#include <errno.h>
#include <event2/event.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#define PS_TIMEOUT_MS 2000

struct ps_req {
	struct ps_req *next;
	uint64_t seq;
	struct mos_conn *client;
	ps_collect_cb cb;             /* instead of a client: ps_collect() */
	void *cb_arg;
	struct mos_msg rows;
	bool *answered;
	size_t pending;
	struct event *timer;
};

static struct ps_req *reqs;
static uint64_t ps_seq;

static size_t missing_nodes(struct ps_req *r, char *missing, size_t len)
{
	size_t off = 0;
	missing[0] = 0;
	for (size_t i = 0; i < mosd.conf->n_nodes; i++)
		if (!r->answered[i] && off < len - 70)
			off += (size_t)snprintf(missing + off, len - off, "%s%s", off ? "," : "",
					       mosd.conf->nodes[i].name);
	return off;
}

/* ps_collect's caller gets the rows as a decoded message, like a client. */
static void ps_finish_cb(struct ps_req *r)
{
	char missing[1024], err[128];
	struct mos_msg copy;
	missing_nodes(r, missing, sizeof(missing));
	if (mos_msg_reread(&r->rows, &copy, err, sizeof(err))) {
		r->cb(r->cb_arg, NULL, missing);
		return;
	}
	r->cb(r->cb_arg, &copy, missing);
	mos_msg_free(&copy);
}

/* While a process changes nodes both may list it: the source its copy as
 * "migrating" until it lets go, the target its restored copy as "arriving"
 * until it takes over, then as running. Every rank is listed once, where it
 * runs now: a migrating row goes if the rank has a running one, an
 * arriving row if the rank has any other. Rows start with JOBID; 0 or
 * -errno (the rows stay as they were). */
static int drop_old_copies(struct mos_msg *rows)
{
	struct mos_msg d, out;
	char err[128];
	int rc = mos_msg_reread(rows, &d, err, sizeof(err));
	if (rc)
		return rc;
	size_t n = 0, *start = calloc(d.n_fields + 1, sizeof(size_t));
	uint64_t *key = calloc(d.n_fields + 1, sizeof(uint64_t));
	int *old = calloc(d.n_fields + 1, sizeof(int)); /* 0 running, 1 migrating, 2 arriving */
	bool *drop = calloc(d.n_fields + 1, sizeof(bool));
	bool dropped = false;
	rc = start && key && old && drop ? 0 : -ENOMEM;
	for (size_t i = 0; !rc && i < d.n_fields; i++) { /* the rows: which rank, old copy? */
		const struct mos_field *f = &d.fields[i];
		if (f->tag == MOS_T_JOBID)
			start[n] = i, key[n++] = (uint64_t)mos_field_u32(f) << 32;
		else if (n && f->tag == MOS_T_RANK)
			key[n - 1] |= mos_field_u32(f);
		else if (n && f->tag == MOS_T_STATE)
			old[n - 1] = f->len == 9 && !memcmp(f->data, "migrating", 9) ? 1 :
				     f->len == 8 && !memcmp(f->data, "arriving", 8) ? 2 : 0;
	}
	if (!rc)
		start[n] = d.n_fields;
	for (size_t i = 0; !rc && i < n; i++)
		for (size_t j = 0; old[i] && j < n; j++)
			if (j != i && key[j] == key[i] && (!old[j] || (old[i] == 2 && old[j] == 1))) {
				drop[i] = dropped = true;
				break;
			}
	if (!rc && dropped && !(rc = mos_msg_init(&out, MOS_MSG_PS_REP))) {
		for (size_t i = 0; !rc && i < (n ? start[0] : d.n_fields); i++) /* before the rows */
			rc = mos_msg_put(&out, d.fields[i].tag, d.fields[i].data, d.fields[i].len);
		for (size_t k = 0; !rc && k < n; k++)
			for (size_t i = start[k]; !rc && !drop[k] && i < start[k + 1]; i++)
				rc = mos_msg_put(&out, d.fields[i].tag, d.fields[i].data, d.fields[i].len);
		if (rc) {
			mos_msg_free(&out);
		} else {
			mos_msg_free(rows);
			*rows = out;
		}
	}
	free(start);
	free(key);
	free(old);
	free(drop);
	mos_msg_free(&d);
	return rc;
}

static void req_finish(struct ps_req *r)
{
	for (struct ps_req **pp = &reqs; *pp; pp = &(*pp)->next)
		if (*pp == r) {
			*pp = r->next;
			break;
		}
	drop_old_copies(&r->rows);
	if (r->client) {
		char missing[1024];
		size_t off = missing_nodes(r, missing, sizeof(missing));
		if (off)
			mos_msg_put_str(&r->rows, MOS_T_TEXT, missing);
		mos_conn_send(r->client, &r->rows);
	}
	if (r->cb)
		ps_finish_cb(r);
	event_free(r->timer);
	mos_msg_free(&r->rows);
	free(r->answered);
	free(r);
}

static void on_timeout(evutil_socket_t fd, short what, void *arg) { req_finish(arg); }

void ps_client_gone(struct mos_conn *c)
{
	for (struct ps_req *r = reqs; r; r = r->next)
		if (r->client == c)
			r->client = NULL;
}

static struct ps_req *req_new(void)
{
	struct ps_req *r = calloc(1, sizeof(*r));
	if (!r || !(r->answered = calloc(mosd.conf->n_nodes, sizeof(bool))) || mos_msg_init(&r->rows, MOS_MSG_PS_REP)) {
		free(r ? r->answered : NULL);
		free(r);
		return NULL;
	}
	return r;
}

static void req_start(struct ps_req *r);

void ps_request(struct mos_conn *client, struct mos_msg *m)
{
	struct ps_req *r = req_new();
	if (!r) {
		mos_conn_send_error(client, -ENOMEM, "out of memory");
		return;
	}
	r->client = client;
	req_start(r);
}

int ps_collect(ps_collect_cb cb, void *arg)
{
	struct ps_req *r = req_new();
	if (!r)
		return -ENOMEM;
	r->cb = cb;
	r->cb_arg = arg;
	req_start(r);
	return 0;
}

static void req_start(struct ps_req *r)
{
	r->seq = ++ps_seq;
	r->timer = evtimer_new(mosd.base, on_timeout, r);
	struct timeval tv = { PS_TIMEOUT_MS / 1000, (PS_TIMEOUT_MS % 1000) * 1000 };
	evtimer_add(r->timer, &tv);
	r->next = reqs;
	reqs = r;
	r->pending = mosd.conf->n_nodes + 1; /* +1: our own hold while sending */
	for (size_t i = 0; i < mosd.conf->n_nodes; i++) {
		struct mos_msg q;
		if (mos_msg_init(&q, MOS_MSG_PS_REQ)) {
			r->pending--;
			continue;
		}
		mos_msg_put_u64(&q, MOS_T_SEQ, r->seq);
		mos_msg_put_str(&q, MOS_T_HOME, mosd.self->name);
		if ((peer_known_dead((int)i) && &mosd.conf->nodes[i] != mosd.self) || peer_send((int)i, &q))
			r->pending--;
		mos_msg_free(&q);
	}
	if (--r->pending == 0)
		req_finish(r);
}

static void proc_usage(struct proc *p, pid_t pid, uint32_t *cpu_permille, uint64_t *rss)
{
	char path[64], buf[1024];
	*cpu_permille = 0;
	*rss = 0;
	snprintf(path, sizeof(path), "/proc/%d/stat", (int)pid);
	FILE *f = fopen(path, "r");
	if (f) {
		if (fgets(buf, sizeof(buf), f)) {
			char *s = strrchr(buf, ')');
			unsigned long ut = 0, st = 0;
			long rss_pages = 0;
			/* fields after ')': state(3) ... utime(14) stime(15) ... rss(24) */
			if (s && sscanf(s + 2, "%*c %*d %*d %*d %*d %*d %*u %*u %*u %*u %*u %lu %lu %*d %*d %*d %*d %*d %*d %*u %*u %ld",
					&ut, &st, &rss_pages) == 3) {
				uint64_t el = mos_now_ms() - p->start_ms;
				double cpu_ms = (double)(ut + st) * 1000.0 / (double)sysconf(_SC_CLK_TCK);
				*cpu_permille = el ? (uint32_t)(cpu_ms * 1000.0 / (double)el) : 0;
				*rss = (uint64_t)rss_pages * (uint64_t)sysconf(_SC_PAGESIZE);
			}
		}
		fclose(f);
	}
}

static pid_t first_child(pid_t pid)
{
	char path[64];
	int c = 0;
	snprintf(path, sizeof(path), "/proc/%d/task/%d/children", (int)pid, (int)pid);
	FILE *f = fopen(path, "r");
	if (f) {
		if (fscanf(f, "%d", &c) != 1)
			c = 0;
		fclose(f);
	}
	return c > 0 ? c : pid;
}

static const char *state_name(struct proc *p)
{
	switch (p->state) {
	case PROC_RUNNING: return "run";
	case PROC_STOPPED: return "stop";
	case PROC_MIGRATING: return "migrating";
	default: return "exited";
	}
}

void proc_usage_of(struct proc *p, uint32_t *cpu, uint64_t *rss)
{
	proc_usage(p, first_child(p->pid), cpu, rss);
}

void ps_put_row(struct mos_msg *rep, uint32_t jobid, uint32_t rank, uint32_t uid, const char *home, pid_t pid,
		const char *state, uint32_t cpu, uint64_t rss, uint32_t migrations, const char *cmd)
{
	mos_msg_put_u32(rep, MOS_T_JOBID, jobid);
	mos_msg_put_u32(rep, MOS_T_RANK, rank);
	mos_msg_put_u32(rep, MOS_T_UID, uid);
	mos_msg_put_str(rep, MOS_T_HOME, home);
	mos_msg_put_str(rep, MOS_T_NODE, mosd.self->name);
	mos_msg_put_u32(rep, MOS_T_PID, (uint32_t)pid);
	mos_msg_put_str(rep, MOS_T_STATE, state);
	mos_msg_put_u32(rep, MOS_T_CPU, cpu);
	mos_msg_put_u64(rep, MOS_T_RSS, rss);
	mos_msg_put_u32(rep, MOS_T_MIGRATIONS, migrations);
	mos_msg_put_str(rep, MOS_T_ARGV, cmd ? cmd : "?");
}

static void put_rows(struct mos_msg *rep)
{
	for (struct proc *p = mosd.procs; p; p = p->next) {
		uint32_t cpu;
		uint64_t rss;
		pid_t pid = first_child(p->pid);
		proc_usage(p, pid, &cpu, &rss);
		ps_put_row(rep, p->jobid, p->rank, p->uid, p->home, pid, state_name(p), cpu, rss, p->migrations,
			   p->cmd);
	}
	mig_in_put_rows(rep); /* a moving process whose source may let go first */
}

void ps_on_peer_req(struct mos_conn *c, struct mos_msg *m)
{
	uint64_t seq = 0;
	struct mos_msg rep;
	mos_msg_get_u64(m, MOS_T_SEQ, &seq);
	if (mos_msg_init(&rep, MOS_MSG_PS_REP))
		return;
	mos_msg_put_u64(&rep, MOS_T_SEQ, seq);
	mos_msg_put_str(&rep, MOS_T_NAME, mosd.self->name);
	put_rows(&rep);
	if (c)
		mos_conn_send(c, &rep);
	else { /* from ourselves */
		char err[128];
		struct mos_msg copy;
		if (!mos_msg_reread(&rep, &copy, err, sizeof(err))) {
			ps_on_peer_rep(&copy);
			mos_msg_free(&copy);
		}
	}
	mos_msg_free(&rep);
}

void ps_on_peer_rep(struct mos_msg *m)
{
	uint64_t seq = 0;
	mos_msg_get_u64(m, MOS_T_SEQ, &seq);
	char *name = mos_msg_get_str(m, MOS_T_NAME);
	int idx = name ? peer_index(name) : -1;
	free(name);
	struct ps_req *r = reqs;
	while (r && r->seq != seq)
		r = r->next;
	if (!r || idx < 0 || r->answered[idx])
		return;
	r->answered[idx] = true;
	for (size_t i = 0; i < m->n_fields; i++)
		if (m->fields[i].tag != MOS_T_SEQ && m->fields[i].tag != MOS_T_NAME)
			mos_msg_put(&r->rows, m->fields[i].tag, m->fields[i].data, m->fields[i].len);
	if (--r->pending == 0)
		req_finish(r);
}
