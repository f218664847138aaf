/* job.c - jobs whose home is this node: placement of the ranks, SPAWN to
 * the nodes, and the home-node model: output, exits and moves of every rank
 * come back here and go to the attached mosexec, wherever the rank runs. */
#include "mosd.h"
#include "log.h"
#include "place.h"
#include "pmixhost.h"
#include "ckpt.h"
#include "util.h"
#include <errno.h>
#include <grp.h>
#include <pwd.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>

#define MAX_PROCS 100000

/* Output that arrived ahead of its turn: while a rank moves, its last lines
 * from the old node and its first from the new one travel on different links. */
struct io_hold {
	struct io_hold *next;
	uint64_t seq;
	struct mos_msg m;
};


struct job *job_find(uint32_t id)
{
	for (struct job *j = mosd.jobs; j; j = j->next)
		if (j->id == id)
			return j;
	return NULL;
}

static uint32_t new_jobid(void)
{
	for (;;) {
		mosd.next_job_seq = mosd.next_job_seq % (MOS_JOBID_SPAN - 1) + 1;
		uint32_t id = (mosd.self->index + 1) * MOS_JOBID_SPAN + mosd.next_job_seq;
		if (!job_find(id))
			return id;
	}
}

static void job_free(struct job *j)
{
	for (struct job **pp = &mosd.jobs; *pp; pp = &(*pp)->next)
		if (*pp == j) {
			*pp = j->next;
			break;
		}
	if (j->client)
		mos_conn_set_data(j->client, NULL);
	for (uint32_t a = 0; a < j->n_apps; a++)
		mos_strv_free(j->app_argv[a]);
	free(j->app_argv);
	free(j->rank_app);
	pmixhost_job_gone(j);
	free(j->app_mpi);
	free(j->mpi_app_of);
	free(j->mpi_rank_of);
	for (uint32_t r = 0; j->ranks && r < j->nprocs; r++)
		while (j->ranks[r].held) {
			struct io_hold *h = j->ranks[r].held;
			j->ranks[r].held = h->next;
			mos_msg_free(&h->m);
			free(h);
		}
	free(j->ranks);
	free(j->name);
	mos_msg_free(&j->spawn_tmpl);
	mos_msg_free(&j->submit);
	mos_msg_free(&j->restart_meta);
	free(j->restart_dir);
	free(j);
}

/* A decoded copy of SRC: its frame and its field index. */
static int copy_msg(struct mos_msg *dst, const struct mos_msg *src)
{
	struct mos_msg tmp;
	char err[128];
	int rc = mos_msg_init(&tmp, src->type);
	for (size_t i = 0; !rc && i < src->n_fields; i++)
		rc = mos_msg_put(&tmp, src->fields[i].tag, src->fields[i].data, src->fields[i].len);
	if (rc) {
		mos_msg_free(&tmp);
		return rc;
	}
	mos_msg_finish(&tmp, 0);
	rc = mos_msg_decode(dst, tmp.buf, tmp.len, err, sizeof(err)); /* takes the frame */
	tmp.buf = NULL;
	mos_msg_free(&tmp);
	return rc;
}

/* Supplementary groups of the asking process, from /proc (what it really
 * has), else from the group database. */
static void put_groups(struct mos_msg *t, pid_t pid, uid_t uid, gid_t gid)
{
	char path[64], line[4096];
	snprintf(path, sizeof(path), "/proc/%d/status", (int)pid);
	FILE *f = fopen(path, "r");
	if (f) {
		while (fgets(line, sizeof(line), f))
			if (!strncmp(line, "Groups:", 7)) {
				char *p = line + 7, *end;
				for (;;) {
					unsigned long g = strtoul(p, &end, 10);
					if (end == p)
						break;
					mos_msg_put_u32(t, MOS_T_GROUP, (uint32_t)g);
					p = end;
				}
				fclose(f);
				return;
			}
		fclose(f);
	}
	struct passwd *pw = getpwuid(uid);
	gid_t gs[256];
	int n = 256;
	if (pw && getgrouplist(pw->pw_name, gid, gs, &n) >= 0)
		for (int i = 0; i < n; i++)
			mos_msg_put_u32(t, MOS_T_GROUP, gs[i]);
}

/* Parse the app contexts (APP nprocs, then its ARGV fields) of SUBMIT. */
static int parse_apps(struct job *j, struct mos_msg *m, char *err, size_t len)
{
	size_t cap = 0, nargs = 0;
	int cur = -1;
	for (size_t i = 0; i < m->n_fields; i++) {
		const struct mos_field *f = &m->fields[i];
		if (f->tag == MOS_T_APP) {
			uint32_t n = mos_field_u32(f);
			if (n == 0 || n > MAX_PROCS || j->nprocs + n > MAX_PROCS) {
				snprintf(err, len, "field 'app': %u processes is out of range 1..%d", n, MAX_PROCS);
				return -EINVAL;
			}
			if (cur >= 0 && nargs == 0)
				break;
			j->app_argv = realloc(j->app_argv, (j->n_apps + 1) * sizeof(char **));
			j->app_mpi = realloc(j->app_mpi, (j->n_apps + 1) * sizeof(bool));
			if (!j->app_mpi)
				return -ENOMEM;
			j->app_mpi[j->n_apps] = i + 1 < m->n_fields && m->fields[i + 1].tag == MOS_T_KIND &&
						 mos_field_u32(&m->fields[i + 1]) == MOS_APP_MPI;
			j->rank_app = realloc(j->rank_app, (j->nprocs + n) * sizeof(uint32_t));
			if (!j->app_argv || !j->rank_app)
				return -ENOMEM;
			for (uint32_t r = 0; r < n; r++)
				j->rank_app[j->nprocs + r] = j->n_apps;
			j->nprocs += n;
			cur = (int)j->n_apps++;
			j->app_argv[cur] = calloc(1, sizeof(char *));
			cap = 1;
			nargs = 0;
		} else if (f->tag == MOS_T_ARGV && cur >= 0) {
			if (nargs + 2 > cap) {
				cap = cap * 2 + 2;
				j->app_argv[cur] = realloc(j->app_argv[cur], cap * sizeof(char *));
			}
			j->app_argv[cur][nargs++] = mos_field_str(f);
			j->app_argv[cur][nargs] = NULL;
		}
	}
	if (cur < 0 || nargs == 0 || !j->app_argv[cur][0][0]) {
		snprintf(err, len, "field 'argv': an app context has no program");
		return -EINVAL;
	}
	return 0;
}

/* --host "a,b:3" -> per-node slots (0 = not named). */
static int parse_hosts(const char *hosts, unsigned *slots, char *err, size_t len)
{
	char *dup = strdup(hosts), *save = NULL;
	int rc = 0;
	for (char *h = strtok_r(dup, ",", &save); h; h = strtok_r(NULL, ",", &save)) {
		unsigned n = 1;
		char *colon = strchr(h, ':');
		if (colon) {
			*colon = 0;
			char *end;
			unsigned long v = strtoul(colon + 1, &end, 10);
			if (*end || v == 0 || v > 4096) {
				snprintf(err, len, "field 'hosts': bad slot count for '%s'", h);
				rc = -EINVAL;
				break;
			}
			n = (unsigned)v;
		}
		int idx = peer_index(h);
		if (idx < 0) {
			snprintf(err, len, "unknown host '%s': not a node of this cluster", h);
			rc = -ENOENT;
			break;
		}
		slots[idx] += colon ? n : 1;
	}
	free(dup);
	return rc;
}

static int place_job(struct job *j, struct mos_msg *m, char *err, size_t len)
{
	size_t n = mosd.conf->n_nodes;
	struct mos_place_node *pn = calloc(n, sizeof(*pn));
	unsigned *hslots = calloc(n, sizeof(*hslots)), *out = calloc(j->nprocs, sizeof(*out));
	char *hosts = mos_msg_get_str(m, MOS_T_HOSTS);
	int rc = -ENOMEM;

	if (!pn || !hslots || !out)
		goto done;
	if (hosts && *hosts && (rc = parse_hosts(hosts, hslots, err, len)))
		goto done;
	for (size_t i = 0; i < n; i++) {
		const struct mos_conf_node *node = &mosd.conf->nodes[i];
		const struct mos_load_entry *e = mos_view_find(&mosd.view, node->name);
		pn[i].name = node->name;
		if (hosts && *hosts) {
			pn[i].slots = hslots[i];
			pn[i].eligible = hslots[i] > 0;
		} else {
			pn[i].slots = node->cpus;
			pn[i].eligible = node->role == MOS_ROLE_FULL;
		}
		/* --host slots are the job's own, as with mpirun: other jobs' load
		 * (gossiped, a round late) does not count against them */
		if (hosts && *hosts)
			pn[i].load_milli = 0;
		else if (node == mosd.self)
			pn[i].load_milli = proc_count_running() * 1000;
		else
			pn[i].load_milli = e ? e->load_milli : 0;
		if (node != mosd.self && peer_known_dead((int)i))
			pn[i].eligible = false;
	}
	bool by_node = j->flags & MOS_SUBMIT_MAP_BY_NODE;
	bool oversub = !(hosts && *hosts) || (j->flags & MOS_SUBMIT_OVERSUB);
	rc = mos_place(pn, n, j->nprocs, by_node ? MOS_MAP_BY_NODE : MOS_MAP_BY_SLOT, oversub, out, err, len);
	if (rc == -ENODEV) { /* say which nodes we could not reach */
		size_t off = (size_t)snprintf(err, len, "no node to run on");
		const char *sep = ": unreachable or refusing us (cluster key?): ";
		for (size_t i = 0; i < n && off < len; i++)
			if (((hosts && *hosts) ? hslots[i] > 0 : mosd.conf->nodes[i].role == MOS_ROLE_FULL) &&
			    &mosd.conf->nodes[i] != mosd.self && peer_known_dead((int)i)) {
				off += (size_t)snprintf(err + off, len - off, "%s%s", sep, mosd.conf->nodes[i].name);
				sep = ", ";
			}
	}
	for (uint32_t r = 0; rc == 0 && r < j->nprocs; r++)
		j->ranks[r].node = (int)out[r];
done:
	free(hosts);
	free(pn);
	free(hslots);
	free(out);
	return rc;
}

/* The SPAWN fields every rank shares. */
/* MPI ranks are the ranks of MPI apps, numbered in order: MPI_COMM_WORLD
 * holds them only, so non-MPI programs can share a job (MPMD). */
static int number_mpi(struct job *j)
{
	bool any = false;
	for (uint32_t a = 0; a < j->n_apps; a++)
		any |= j->app_mpi[a];
	if (!any)
		return 0;
	j->mpi_rank_of = malloc(j->nprocs * sizeof(uint32_t));
	j->mpi_app_of = malloc(j->n_apps * sizeof(uint32_t));
	if (!j->mpi_rank_of || !j->mpi_app_of)
		return -ENOMEM;
	for (uint32_t a = 0, k = 0; a < j->n_apps; a++)
		j->mpi_app_of[a] = j->app_mpi[a] ? k++ : UINT32_MAX;
	for (uint32_t r = 0; r < j->nprocs; r++)
		j->mpi_rank_of[r] = j->app_mpi[j->rank_app[r]] ? j->mpi_size++ : UINT32_MAX;
	return 0;
}

static int build_template(struct job *j, struct mos_msg *m, pid_t pid)
{
	struct mos_msg *t = &j->spawn_tmpl;
	int rc = mos_msg_init(t, MOS_MSG_SPAWN);
	if (rc)
		return rc;
	mos_msg_put_u32(t, MOS_T_JOBID, j->id);
	mos_msg_put_u32(t, MOS_T_NPROCS, j->nprocs);
	mos_msg_put_str(t, MOS_T_HOME, mosd.self->name);
	mos_msg_put_u32(t, MOS_T_UID, j->uid);
	mos_msg_put_u32(t, MOS_T_GID, j->gid);
	mos_msg_put_u32(t, MOS_T_FLAGS, j->flags);
	put_groups(t, pid, j->uid, j->gid);
	for (size_t i = 0; i < m->n_fields; i++) {
		const struct mos_field *f = &m->fields[i];
		if (f->tag == MOS_T_ENV || f->tag == MOS_T_CWD || f->tag == MOS_T_BIND)
			rc = rc ? rc : mos_msg_put(t, f->tag, f->data, f->len);
	}
	return rc;
}

/* LOCAL_RANK is the rank's place among the job's ranks on its node, in rank
 * order (mpirun's local rank), LOCAL_SIZE their number there: the node binds
 * by them (bind.c). */
static int spawn_rank(struct job *j, uint32_t r, uint32_t lrank, uint32_t lsize)
{
	struct mos_msg s;
	struct mos_msg *t = &j->spawn_tmpl;
	int rc = mos_msg_init(&s, MOS_MSG_SPAWN);
	if (rc)
		return rc;
	rc = mos_msg_put(&s, 0, NULL, 0); /* placeholder, replaced below */
	s.len = MOS_MSG_HDR_LEN;
	if (!rc && (rc = mos_msg_put_u32(&s, MOS_T_RANK, r)) == 0)
		rc = mos_msg_put_u32(&s, MOS_T_APPNUM, j->rank_app[r]);
	if (!rc && (rc = mos_msg_put_u32(&s, MOS_T_LOCAL_RANK, lrank)) == 0)
		rc = mos_msg_put_u32(&s, MOS_T_LOCAL_SIZE, lsize);
	if (!rc)
		pmixhost_put_spawn(j, r, &s);
	for (char **a = j->app_argv[j->rank_app[r]]; !rc && *a; a++)
		rc = mos_msg_put_str(&s, MOS_T_ARGV, *a);
	if (!rc && t->len > MOS_MSG_HDR_LEN) { /* append the shared fields as they are */
		size_t extra = t->len - MOS_MSG_HDR_LEN;
		uint8_t *nb = realloc(s.buf, s.len + extra);
		if (!nb)
			rc = -ENOMEM;
		else {
			s.buf = nb;
			memcpy(s.buf + s.len, t->buf + MOS_MSG_HDR_LEN, extra);
			s.len += extra;
			s.cap = s.len;
		}
	}
	if (!rc)
		rc = peer_send(j->ranks[r].node, &s);
	mos_msg_free(&s);
	return rc;
}

static void send_started(struct job *j)
{
	struct mos_msg m;
	if (!j->client || mos_msg_init(&m, MOS_MSG_JOB_STARTED))
		return;
	mos_msg_put_u32(&m, MOS_T_JOBID, j->id);
	mos_msg_put_u32(&m, MOS_T_NPROCS, j->nprocs);
	for (uint32_t r = 0; r < j->nprocs; r++) {
		mos_msg_put_u32(&m, MOS_T_RANK, r);
		mos_msg_put_str(&m, MOS_T_NODE, mosd.conf->nodes[j->ranks[r].node].name);
	}
	mos_conn_send(j->client, &m);
	mos_msg_free(&m);
}

/* A rank ended (or could not start): tell mosexec; finish the job after the last. */
static void rank_ended(struct job *j, uint32_t r, int wstatus, const char *text)
{
	struct rank *rk = &j->ranks[r];
	if (rk->state == RANK_EXITED)
		return;
	rk->state = RANK_EXITED;
	rk->wstatus = wstatus;
	j->n_exited++;
	int code = mos_status_exit_code(wstatus);
	if (code && !j->first_bad)
		j->first_bad = code;
	struct mos_msg m;
	if (j->client && !mos_msg_init(&m, MOS_MSG_EXIT)) {
		mos_msg_put_u32(&m, MOS_T_JOBID, j->id);
		mos_msg_put_u32(&m, MOS_T_RANK, r);
		mos_msg_put_i32(&m, MOS_T_STATUS, wstatus);
		mos_msg_put_str(&m, MOS_T_NODE, mosd.conf->nodes[rk->node].name);
		if (text)
			mos_msg_put_str(&m, MOS_T_TEXT, text);
		mos_conn_send(j->client, &m);
		mos_msg_free(&m);
	}
	if (j->n_exited < j->nprocs)
		return;
	pr_info("job %u done: %s", j->id, j->first_bad ? "failed" : "ok");
	if (j->client && !mos_msg_init(&m, MOS_MSG_JOB_DONE)) {
		mos_msg_put_u32(&m, MOS_T_JOBID, j->id);
		mos_msg_put_i32(&m, MOS_T_STATUS, j->first_bad);
		mos_conn_send(j->client, &m);
		mos_msg_free(&m);
		mos_conn_close_after_flush(j->client);
	}
	job_free(j);
}

static int submit(struct mos_conn *client, struct mos_msg *m, uid_t uid, gid_t gid, pid_t pid,
		  struct mos_msg *meta, const char *dir)
{
	char err[512] = "";
	struct job *j = calloc(1, sizeof(*j));
	uint32_t *on_node = calloc(mosd.conf->n_nodes * 2, sizeof(uint32_t)), bind = MOS_BIND_NONE;
	int rc = -ENOMEM;

	if (!j || !on_node || copy_msg(&j->submit, m))
		goto fail;
	if (mos_msg_get_u32(m, MOS_T_BIND, &bind) == 0 && bind != MOS_BIND_NONE && bind != MOS_BIND_CORE) {
		rc = -EINVAL;
		snprintf(err, sizeof(err), "field 'bind': unknown binding %u (core, none)", bind);
		goto fail;
	}
	if (meta && (copy_msg(&j->restart_meta, meta) || !(j->restart_dir = strdup(dir))))
		goto fail;
	j->uid = uid;
	j->gid = gid;
	mos_msg_get_u32(m, MOS_T_FLAGS, &j->flags);
	if ((rc = parse_apps(j, m, err, sizeof(err))))
		goto fail;
	j->name = strdup(j->app_argv[0][0]);
	j->id = new_jobid();
	if (!(j->ranks = calloc(j->nprocs, sizeof(*j->ranks))))
		goto fail;
	if ((rc = place_job(j, m, err, sizeof(err))))
		goto fail;
	if ((rc = number_mpi(j)) || (rc = build_template(j, m, pid)))
		goto fail;
	if (meta && j->mpi_rank_of) {
		rc = -ENOTSUP;
		snprintf(err, sizeof(err), "the checkpoint holds MPI ranks: they cannot be restarted yet");
		goto fail;
	}
	j->client = client;
	mos_conn_set_data(client, j);
	j->next = mosd.jobs;
	mosd.jobs = j;
	pr_info("job %u: %u processes of '%s' for uid %u%s", j->id, j->nprocs, j->name, (unsigned)uid,
		j->restart_dir ? " (restart)" : "");
	send_started(j);
	for (uint32_t r = 0; r < j->nprocs; r++)
		on_node[j->ranks[r].node]++;
	for (uint32_t r = 0; r < j->nprocs && job_find(j->id) == j; r++) {
		int node = j->ranks[r].node;
		uint32_t lrank = on_node[mosd.conf->n_nodes + node]++;
		if ((rc = j->restart_dir ? ckpt_import_rank(j, r) : spawn_rank(j, r, lrank, on_node[node]))) {
			char text[256];
			snprintf(text, sizeof(text), "cannot reach the mosd of node %s: %s",
				 mosd.conf->nodes[j->ranks[r].node].name, strerror(-rc));
			job_kill(j, text);
			break;
		}
	}
	free(on_node);
	return 0;
fail:
	free(on_node);
	if (!err[0])
		snprintf(err, sizeof(err), "%s", strerror(-rc));
	pr_warn("job from uid %u refused: %s", (unsigned)uid, err);
	mos_conn_send_error(client, rc, "%s", err);
	mos_conn_close_after_flush(client);
	if (j) {
		j->client = NULL;
		j->next = mosd.jobs; /* job_free unlinks it */
		mosd.jobs = j;
		job_free(j);
	}
	return rc;
}

int job_submit(struct mos_conn *client, struct mos_msg *m, uid_t uid, gid_t gid, pid_t pid)
{
	return submit(client, m, uid, gid, pid, NULL, NULL);
}

int job_restart(struct mos_conn *client, struct mos_msg *sub, struct mos_msg *meta, const char *dir,
		uid_t uid, gid_t gid, pid_t pid)
{
	int rc = submit(client, sub, uid, gid, pid, meta, dir);
	if (!rc)
		pr_info("job restarted from checkpoint %s", dir);
	return rc;
}

static struct job *msg_job_rank(struct mos_msg *m, uint32_t *rank)
{
	uint32_t id = 0;
	mos_msg_get_u32(m, MOS_T_JOBID, &id);
	mos_msg_get_u32(m, MOS_T_RANK, rank);
	struct job *j = job_find(id);
	if (!j || *rank >= j->nprocs)
		return NULL;
	return j;
}

/* --report-bindings: the node's line (TEXT of a good SPAWNED) goes to
 * mosexec as a notice marked BIND, which it prints as it is. */
static void report_binding(struct job *j, struct mos_msg *m)
{
	const struct mos_field *t = mos_msg_get(m, MOS_T_TEXT);
	struct mos_msg n;

	if (!t || !j->client || mos_msg_init(&n, MOS_MSG_ERROR))
		return;
	mos_msg_put(&n, MOS_T_TEXT, t->data, t->len);
	mos_msg_put_i32(&n, MOS_T_CODE, 0);
	mos_msg_put_u32(&n, MOS_T_BIND, 1);
	mos_conn_send(j->client, &n);
	mos_msg_free(&n);
}

void job_on_spawned(struct mos_msg *m)
{
	uint32_t r = 0, pid = 0;
	int32_t code = 0;
	struct job *j = msg_job_rank(m, &r);
	if (!j)
		return;
	mos_msg_get_i32(m, MOS_T_CODE, &code);
	mos_msg_get_u32(m, MOS_T_PID, &pid);
	if (code == 0) {
		if (j->ranks[r].state == RANK_PENDING) {
			j->ranks[r].state = RANK_RUNNING;
			j->ranks[r].pid = pid;
			j->n_started++;
		}
		if (j->flags & MOS_SUBMIT_REPORT_BIND)
			report_binding(j, m);
		return;
	}
	char *text = mos_msg_get_str(m, MOS_T_TEXT);
	char why[512];
	snprintf(why, sizeof(why), "rank %u could not start on %s: %s", r,
		 mosd.conf->nodes[j->ranks[r].node].name, text ? text : strerror(-code));
	free(text);
	rank_ended(j, r, 127 << 8, why);
	if ((j = job_find(m->fields ? j->id : 0)))
		job_kill(j, why);
}

static void forward_io(struct job *j, struct mos_msg *m)
{
	struct mos_msg f;
	if (!j->client || mos_msg_init(&f, MOS_MSG_IO))
		return;
	for (size_t i = 0; i < m->n_fields; i++)
		if (m->fields[i].tag != MOS_T_SEQ)
			mos_msg_put(&f, m->fields[i].tag, m->fields[i].data, m->fields[i].len);
	mos_conn_send(j->client, &f);
	mos_msg_free(&f);
}

static void hold_io(struct rank *rk, struct mos_msg *m, uint64_t seq)
{
	struct io_hold *h = calloc(1, sizeof(*h)), **pp = &rk->held;
	if (!h || mos_msg_init(&h->m, MOS_MSG_IO)) {
		free(h);
		return;
	}
	h->seq = seq;
	for (size_t i = 0; i < m->n_fields; i++)
		mos_msg_put(&h->m, m->fields[i].tag, m->fields[i].data, m->fields[i].len);
	mos_msg_finish(&h->m, 0);
	while (*pp && (*pp)->seq < seq)
		pp = &(*pp)->next;
	h->next = *pp;
	*pp = h;
}

void job_on_io(struct mos_msg *m)
{
	uint32_t r = 0;
	uint64_t seq;
	struct job *j = msg_job_rank(m, &r);
	if (!j)
		return;
	struct rank *rk = &j->ranks[r];
	if (mos_msg_get_u64(m, MOS_T_SEQ, &seq)) {
		forward_io(j, m);
		return;
	}
	if (seq < rk->next_seq)
		return; /* a repeat */
	if (seq > rk->next_seq) {
		hold_io(rk, m, seq);
		return;
	}
	forward_io(j, m);
	rk->next_seq++;
	while (rk->held && rk->held->seq == rk->next_seq) {
		struct io_hold *h = rk->held;
		struct mos_msg d;
		char err[128];
		rk->held = h->next;
		uint8_t *frame = malloc(h->m.len);
		if (frame) {
			memcpy(frame, h->m.buf, h->m.len);
			if (!mos_msg_decode(&d, frame, h->m.len, err, sizeof(err))) {
				forward_io(j, &d);
				mos_msg_free(&d);
			}
		}
		rk->next_seq++;
		mos_msg_free(&h->m);
		free(h);
	}
	if (rk->exit_wait && rk->next_seq >= rk->exit_seq) {
		rk->exit_wait = false;
		rank_ended(j, r, rk->exit_ws, NULL);
	}
}

void job_on_exit(struct mos_msg *m)
{
	uint32_t r = 0;
	int32_t ws = 0;
	struct job *j = msg_job_rank(m, &r);
	if (!j)
		return;
	uint64_t seq;
	mos_msg_get_i32(m, MOS_T_STATUS, &ws);
	if (mos_msg_get_u64(m, MOS_T_SEQ, &seq) == 0 && seq > j->ranks[r].next_seq) {
		/* some of its output is still on the way from a node it left */
		j->ranks[r].exit_wait = true;
		j->ranks[r].exit_seq = seq;
		j->ranks[r].exit_ws = ws;
		return;
	}
	char *text = mos_msg_get_str(m, MOS_T_TEXT);
	uint32_t cl = 2, id = j->id;
	mos_msg_get_u32(m, MOS_T_KIND, &cl);
	char why[160] = "";
	if (j->mpi_rank_of && j->mpi_rank_of[r] != UINT32_MAX && cl != PMIX_CL_FINALIZED && !j->killing)
		snprintf(why, sizeof(why), "MPI rank %u (%s) exited without calling %s", j->mpi_rank_of[r],
			 mosd.conf->nodes[j->ranks[r].node].name, cl == PMIX_CL_NONE ? "MPI_Init" : "MPI_Finalize");
	rank_ended(j, r, ws, text);
	free(text);
	if (why[0] && (j = job_find(id))) {
		job_notice(j, why);
		job_fail(j, 1, why);
	}
}

void job_notice(struct job *j, const char *text)
{
	if (j->client)
		mos_conn_send_error(j->client, 0, "%s", text);
}

void job_fail(struct job *j, int status, const char *why)
{
	if (!j->first_bad)
		j->first_bad = status;
	job_kill(j, why);
}

/* Send one message per node that holds live ranks of J (or only RANK). */
static void to_rank_nodes(struct job *j, int64_t rank, unsigned type, uint32_t sig, const char *text)
{
	size_t n = mosd.conf->n_nodes;
	bool *sent = calloc(n, sizeof(bool));
	for (uint32_t r = 0; sent && r < j->nprocs; r++) {
		struct rank *rk = &j->ranks[r];
		if (rk->state == RANK_EXITED || (rank >= 0 && r != rank) || (rank < 0 && sent[rk->node]))
			continue;
		struct mos_msg m;
		if (mos_msg_init(&m, type))
			break;
		mos_msg_put_u32(&m, MOS_T_JOBID, j->id);
		if (rank >= 0)
			mos_msg_put_u32(&m, MOS_T_RANK, (uint32_t)rank);
		if (type == MOS_MSG_SIGNAL)
			mos_msg_put_u32(&m, MOS_T_SIG, sig);
		if (text)
			mos_msg_put_str(&m, MOS_T_TEXT, text);
		if (peer_send(rk->node, &m) == 0)
			sent[rk->node] = true;
		mos_msg_free(&m);
	}
	free(sent);
}

int job_signal(struct job *j, int sig, int64_t rank)
{
	pr_info("job %u: signal %d to %s", j->id, sig, rank >= 0 ? "one rank" : "every rank");
	to_rank_nodes(j, rank, MOS_MSG_SIGNAL, (uint32_t)sig, NULL);
	return 0;
}

void job_kill(struct job *j, const char *why)
{
	uint32_t id = j->id;
	if (j->killing)
		return;
	j->killing = true;
	pr_info("job %u: ending it: %s", j->id, why);
	to_rank_nodes(j, -1, MOS_MSG_KILL_JOB, 0, why);
	/* Ranks not started yet never will be. */
	for (uint32_t r = 0; (j = job_find(id)) && r < j->nprocs; r++)
		if (j->ranks[r].state == RANK_PENDING && r >= j->n_started && peer_known_dead(j->ranks[r].node))
			rank_ended(j, r, SIGKILL, why);
}

void job_client_gone(struct job *j)
{
	j->client = NULL;
	job_kill(j, "mosexec went away");
}

void job_node_lost(int idx)
{
	struct job *next;
	for (struct job *j = mosd.jobs; j; j = next) {
		uint32_t id = j->id;
		next = j->next;
		char text[128];
		snprintf(text, sizeof(text), "node %s was lost", mosd.conf->nodes[idx].name);
		for (uint32_t r = 0; (j = job_find(id)) && r < j->nprocs; r++)
			if (j->ranks[r].node == idx && j->ranks[r].state != RANK_EXITED)
				rank_ended(j, r, SIGKILL, text);
	}
}

/* CRIU restores a process with every cpu allowed: if its job is bound, the
 * node it is on now binds it again (bind.c picks the core there). */
void job_bind_again(struct job *j, uint32_t r)
{
	uint32_t bind = MOS_BIND_NONE;
	struct mos_msg b;

	if (r >= j->nprocs || mos_msg_get_u32(&j->submit, MOS_T_BIND, &bind) || bind == MOS_BIND_NONE ||
	    j->ranks[r].state == RANK_EXITED || mos_msg_init(&b, MOS_MSG_BIND))
		return;
	mos_msg_put_u32(&b, MOS_T_JOBID, j->id);
	mos_msg_put_u32(&b, MOS_T_RANK, r);
	mos_msg_put_u32(&b, MOS_T_BIND, bind);
	peer_send(j->ranks[r].node, &b);
	mos_msg_free(&b);
}

void job_on_moved(struct mos_msg *m)
{
	uint32_t r = 0;
	int32_t code = -1;
	struct job *j = msg_job_rank(m, &r);

	mos_msg_get_i32(m, MOS_T_CODE, &code);
	if (j && !code)
		job_bind_again(j, r);
}

void job_stdin(struct job *j, struct mos_msg *m)
{
	if (j->ranks[0].state == RANK_EXITED)
		return;
	struct mos_msg f;
	const struct mos_field *d = mos_msg_get(m, MOS_T_DATA);
	if (mos_msg_init(&f, MOS_MSG_IO))
		return;
	mos_msg_put_u32(&f, MOS_T_JOBID, j->id);
	mos_msg_put_u32(&f, MOS_T_RANK, 0);
	mos_msg_put_u32(&f, MOS_T_STREAM, 0);
	mos_msg_put(&f, MOS_T_DATA, d ? d->data : NULL, d ? d->len : 0);
	peer_send(j->ranks[0].node, &f);
	mos_msg_free(&f);
}
