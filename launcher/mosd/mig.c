/* mig.c - live migration (see mig.h): the home's checks, the source's and
 * the target's state machines. One message moves each step; every step that
 * can fail rolls back to the source's copy, which stays stopped, not gone,
 * until the target has restored. */
#include "mig.h"
#include "criu.h"
#include "log.h"
#include "util.h"
#include <dirent.h>
#include <event2/bufferevent.h>
#include <errno.h>
#include <event2/event.h>
#include <fcntl.h>
#include <limits.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#define MIG_TIMEOUT_S 120
#define CHUNK (1u << 20)

struct mig_out { /* source side, hangs off its proc */
	struct proc *p;
	enum mig_state state;
	int target;
	uint32_t flags;
	uint64_t seq;               /* the requester's request id */
	char requester[MOS_NAME_MAX];
	char dir[PATH_MAX];
	char pipes[4][32];          /* "pipe:[N]" of the pod's fds 0..3 */
	uint64_t t0, t_dump, t_sent;
	bool sending, link_lost;    /* a broken link while we send is handled after */
	size_t bytes;
	struct event *timer;
};

struct mig_in { /* target side */
	struct mig_in *next;
	uint32_t jobid, rank, nprocs, uid, migrations;
	int source;
	enum mig_state state;
	bool abort, stdin_eof, stdin_closed;
	char home[MOS_NAME_MAX];
	char *cmd;
	char dir[PATH_MAX];
	int fds[4][2];
	uint8_t *stdin_buf;
	size_t stdin_len;
	uint64_t io_seq;
	struct event *timer;
};

static struct mig_in *incoming;
static struct { pid_t pid; int ws; } reaped_ring[64];
static unsigned ring_pos;

const char *mig_state2str(enum mig_state s)
{
	static const char *const n[] = { "prepare", "dump", "send", "restore", "finished" };
	return s <= MIG_FINISHED ? n[s] : "?";
}

static void set_state_out(struct mig_out *mo, enum mig_state s)
{
	pr_debug("migration of job %u rank %u: %s -> %s", mo->p->jobid, mo->p->rank, mig_state2str(mo->state),
		 mig_state2str(s));
	mo->state = s;
}

static int send_to(int idx, unsigned type, uint32_t jobid, uint32_t rank, int code, const char *text)
{
	struct mos_msg m;
	int rc = mos_msg_init(&m, type);
	if (rc)
		return rc;
	mos_msg_put_u32(&m, MOS_T_JOBID, jobid);
	mos_msg_put_u32(&m, MOS_T_RANK, rank);
	mos_msg_put_i32(&m, MOS_T_CODE, code);
	if (text)
		mos_msg_put_str(&m, MOS_T_TEXT, text);
	rc = peer_send(idx, &m);
	mos_msg_free(&m);
	return rc;
}

/* --- home ------------------------------------------------------------------ */

static void reply_to(const char *requester, uint64_t seq, int code, const char *text)
{
	struct mos_msg r;
	int idx = peer_index(requester);
	if (idx < 0 || mos_msg_init(&r, MOS_MSG_REPLY))
		return;
	mos_msg_put_u64(&r, MOS_T_SEQ, seq);
	mos_msg_put_i32(&r, MOS_T_CODE, code);
	if (text)
		mos_msg_put_str(&r, MOS_T_TEXT, text);
	peer_send(idx, &r);
	mos_msg_free(&r);
}

static int home_check(struct mos_msg *m, struct job **jp, int *target, char *err, size_t len)
{
	uint32_t jobid = 0, rank = 0, uid = UINT32_MAX;
	mos_msg_get_u32(m, MOS_T_JOBID, &jobid);
	mos_msg_get_u32(m, MOS_T_RANK, &rank);
	mos_msg_get_u32(m, MOS_T_UID, &uid);
	char *node = mos_msg_get_str(m, MOS_T_NODE);
	struct job *j = job_find(jobid);
	int rc = 0;

	*target = node ? peer_index(node) : -1;
	if (!j)
		rc = -ESRCH, snprintf(err, len, "no job %u (it may have finished)", jobid);
	else if (rank >= j->nprocs)
		rc = -EINVAL, snprintf(err, len, "job %u has no rank %u (it has %u)", jobid, rank, j->nprocs);
	else if (uid != 0 && uid != j->uid)
		rc = -EPERM, snprintf(err, len, "permission denied: job %u belongs to another user", jobid);
	else if (j->ranks[rank].state == RANK_EXITED)
		rc = -ESRCH, snprintf(err, len, "job %u rank %u has finished", jobid, rank);
	else if (j->ranks[rank].state == RANK_MIGRATING)
		rc = -EBUSY, snprintf(err, len, "job %u rank %u is already migrating", jobid, rank);
	else if (j->mpi_rank_of && j->mpi_rank_of[rank] != UINT32_MAX)
		rc = -ENOTSUP, snprintf(err, len, "job %u rank %u is an MPI rank: MPI ranks do not migrate yet", jobid, rank);
	else if (j->ranks[rank].state == RANK_PENDING)
		rc = -EAGAIN, snprintf(err, len, "job %u rank %u has not started yet", jobid, rank);
	else if (*target < 0)
		rc = -ENOENT, snprintf(err, len, "unknown node '%s': not in the cluster", node ? node : "");
	else if (*target == j->ranks[rank].node)
		rc = -EALREADY, snprintf(err, len, "job %u rank %u already runs on %s", jobid, rank, node);
	else if (peer_known_dead(*target))
		rc = -EHOSTDOWN, snprintf(err, len, "node %s is down", node);
	free(node);
	*jp = j;
	return rc;
}

void mig_home_request(struct mos_msg *m)
{
	char err[256], *requester = mos_msg_get_str(m, MOS_T_NAME);
	uint64_t seq = 0;
	uint32_t rank = 0;
	struct job *j;
	int target;
	mos_msg_get_u64(m, MOS_T_SEQ, &seq);
	mos_msg_get_u32(m, MOS_T_RANK, &rank);
	int rc = home_check(m, &j, &target, err, sizeof(err));
	if (rc) {
		pr_info("migration refused: %s", err);
		reply_to(requester ? requester : "", seq, rc, err);
		free(requester);
		return;
	}
	struct mos_msg o;
	if (mos_msg_init(&o, MOS_MSG_MIGRATE) == 0) {
		for (size_t i = 0; i < m->n_fields; i++)
			if (m->fields[i].tag != MOS_T_KIND)
				mos_msg_put(&o, m->fields[i].tag, m->fields[i].data, m->fields[i].len);
		mos_msg_put_u32(&o, MOS_T_KIND, 1);
		if ((rc = peer_send(j->ranks[rank].node, &o)) == 0)
			j->ranks[rank].state = RANK_MIGRATING;
		mos_msg_free(&o);
	}
	if (rc)
		reply_to(requester ? requester : "", seq, rc, "cannot reach the node the process runs on");
	free(requester);
}

void mig_home_result(struct mos_msg *m)
{
	uint32_t jobid = 0, rank = 0, pid = 0;
	int32_t code = 0;
	uint64_t seq = 0;
	mos_msg_get_u32(m, MOS_T_JOBID, &jobid);
	mos_msg_get_u32(m, MOS_T_RANK, &rank);
	mos_msg_get_u32(m, MOS_T_PID, &pid);
	mos_msg_get_i32(m, MOS_T_CODE, &code);
	mos_msg_get_u64(m, MOS_T_SEQ, &seq);
	char *node = mos_msg_get_str(m, MOS_T_NODE), *text = mos_msg_get_str(m, MOS_T_TEXT);
	char *requester = mos_msg_get_str(m, MOS_T_NAME);
	struct job *j = job_find(jobid);
	int idx = node ? peer_index(node) : -1;
	if (j && rank < j->nprocs && j->ranks[rank].state != RANK_EXITED) {
		struct rank *rk = &j->ranks[rank];
		rk->state = RANK_RUNNING;
		if (code == 0 && idx >= 0) {
			rk->node = idx;
			rk->pid = pid;
			rk->migrations++;
			pr_info("job %u rank %u now runs on %s (pid %u)", jobid, rank, node, pid);
		}
	}
	if (requester && *requester)
		reply_to(requester, seq, code, text);
	free(node);
	free(text);
	free(requester);
}

/* --- source ------------------------------------------------------------------ */

static void report_home(struct mig_out *mo, int code, pid_t pid, const char *text)
{
	struct proc *p = mo->p;
	struct mos_msg m;
	if (mos_msg_init(&m, MOS_MSG_MOVED))
		return;
	mos_msg_put_u32(&m, MOS_T_JOBID, p->jobid);
	mos_msg_put_u32(&m, MOS_T_RANK, p->rank);
	mos_msg_put_str(&m, MOS_T_NODE, code ? mosd.self->name : mosd.conf->nodes[mo->target].name);
	mos_msg_put_u32(&m, MOS_T_PID, (uint32_t)pid);
	mos_msg_put_i32(&m, MOS_T_CODE, code);
	mos_msg_put_u64(&m, MOS_T_SEQ, mo->seq);
	mos_msg_put_str(&m, MOS_T_NAME, mo->requester);
	if (text)
		mos_msg_put_str(&m, MOS_T_TEXT, text);
	peer_send(peer_index(p->home), &m);
	mos_msg_free(&m);
}

/* SIGCONT every task of the pod rooted at PID (left stopped by the dump). */
static void resume_tree(pid_t pid, int depth)
{
	char path[64];
	kill(pid, SIGCONT);
	if (depth > 32)
		return;
	snprintf(path, sizeof(path), "/proc/%d/task", (int)pid);
	DIR *d = opendir(path);
	struct dirent *e;
	while (d && (e = readdir(d))) {
		if (e->d_name[0] == '.')
			continue;
		char cpath[128];
		snprintf(cpath, sizeof(cpath), "%s/%s/children", path, e->d_name);
		FILE *f = fopen(cpath, "r");
		int c;
		while (f && fscanf(f, "%d", &c) == 1)
			resume_tree(c, depth + 1);
		if (f)
			fclose(f);
	}
	if (d)
		closedir(d);
}

static void out_free(struct mig_out *mo)
{
	if (mo->timer)
		event_free(mo->timer);
	if (mo->dir[0])
		criu_rm_dir(mo->dir);
	mo->p->mig = NULL;
	free(mo);
}

/* Roll back: the source's copy runs on as if nothing happened. */
static void out_fail(struct mig_out *mo, int code, const char *why)
{
	struct proc *p = mo->p;
	pr_warn("migration of job %u rank %u to %s failed in state %s: %s; it keeps running here", p->jobid,
		p->rank, mosd.conf->nodes[mo->target].name, mig_state2str(mo->state), why);
	if (mo->state >= MIG_SEND) { /* dumped: stopped, not gone */
		resume_tree(p->pid, 0);
		send_to(mo->target, MOS_MSG_MIG_ABORT, p->jobid, p->rank, -ECANCELED, why);
	} else if (mo->state == MIG_PREPARE || mo->state == MIG_DUMP) {
		send_to(mo->target, MOS_MSG_MIG_ABORT, p->jobid, p->rank, -ECANCELED, why);
	}
	p->state = PROC_RUNNING;
	char text[512];
	snprintf(text, sizeof(text), "migration to %s failed in step '%s': %s (the process keeps running on %s)",
		 mosd.conf->nodes[mo->target].name, mig_state2str(mo->state), why, mosd.self->name);
	report_home(mo, code ? code : -EIO, p->pid, text);
	out_free(mo);
}

static void on_out_timeout(evutil_socket_t fd, short what, void *arg)
{
	out_fail(arg, -ETIMEDOUT, "timed out");
}

void mig_source_start(struct mos_msg *m)
{
	uint32_t jobid = 0, rank = 0;
	mos_msg_get_u32(m, MOS_T_JOBID, &jobid);
	mos_msg_get_u32(m, MOS_T_RANK, &rank);
	char *node = mos_msg_get_str(m, MOS_T_NODE);
	int target = node ? peer_index(node) : -1;
	struct proc *p = proc_find(jobid, rank);
	struct mig_out *mo = calloc(1, sizeof(*mo));
	free(node);
	if (!mo || !p || p->mig || p->reaped || target < 0) {
		struct mig_out tmp = { .p = p, .target = target < 0 ? 0 : target };
		mos_msg_get_u64(m, MOS_T_SEQ, &tmp.seq);
		char *rq = mos_msg_get_str(m, MOS_T_NAME);
		snprintf(tmp.requester, sizeof(tmp.requester), "%s", rq ? rq : "");
		free(rq);
		free(mo);
		if (p) /* report through the proc's home */
			report_home(&tmp, p->mig ? -EBUSY : -ESRCH, p->pid, p->mig ? "already migrating" : "process has ended");
		return;
	}
	mo->p = p;
	p->mig = mo;
	mo->target = target;
	mo->t0 = mos_now_ms();
	mos_msg_get_u32(m, MOS_T_FLAGS, &mo->flags);
	mos_msg_get_u64(m, MOS_T_SEQ, &mo->seq);
	char *rq = mos_msg_get_str(m, MOS_T_NAME);
	snprintf(mo->requester, sizeof(mo->requester), "%s", rq ? rq : "");
	free(rq);
	mo->state = MIG_PREPARE;
	p->state = PROC_MIGRATING;
	mo->timer = evtimer_new(mosd.base, on_out_timeout, mo);
	struct timeval tv = { MIG_TIMEOUT_S, 0 };
	evtimer_add(mo->timer, &tv);

	struct mos_msg q;
	uint32_t cpu;
	uint64_t rss = 0;
	proc_usage_of(p, &cpu, &rss);
	if (mos_msg_init(&q, MOS_MSG_MIG_PREPARE)) {
		out_fail(mo, -ENOMEM, "out of memory");
		return;
	}
	mos_msg_put_u32(&q, MOS_T_JOBID, p->jobid);
	mos_msg_put_u32(&q, MOS_T_RANK, p->rank);
	mos_msg_put_u32(&q, MOS_T_NPROCS, p->nprocs);
	mos_msg_put_u32(&q, MOS_T_UID, p->uid);
	mos_msg_put_str(&q, MOS_T_HOME, p->home);
	mos_msg_put_str(&q, MOS_T_ARGV, p->cmd ? p->cmd : "?");
	mos_msg_put_u32(&q, MOS_T_MIGRATIONS, p->migrations);
	mos_msg_put_u64(&q, MOS_T_RSS, rss);
	mos_msg_put_u32(&q, MOS_T_FLAGS, mo->flags);
	int rc = peer_send(target, &q);
	mos_msg_free(&q);
	if (rc)
		out_fail(mo, rc, "cannot reach the target node");
}

static int read_pipe_ids(struct mig_out *mo)
{
	for (int fd = 0; fd < 4; fd++) {
		char path[64];
		snprintf(path, sizeof(path), "/proc/%d/fd/%d", (int)mo->p->pid, fd);
		ssize_t n = readlink(path, mo->pipes[fd], sizeof(mo->pipes[fd]) - 1);
		if (n <= 0 || strncmp(mo->pipes[fd], "pipe:[", 6))
			return -EBADF;
		mo->pipes[fd][n] = 0;
	}
	return 0;
}

/* Unread stdin: still in the old pipe; it goes with the process. */
static size_t take_stdin(struct proc *p, uint8_t **buf)
{
	size_t len = 0, cap = 0;
	*buf = NULL;
	if (!p->in)
		return 0;
	char path[64];
	snprintf(path, sizeof(path), "/proc/self/fd/%d", (int)bufferevent_getfd(p->in));
	int fd = open(path, O_RDONLY | O_NONBLOCK | O_CLOEXEC);
	if (fd < 0)
		return 0;
	for (;;) {
		if (len + 65536 > cap) {
			uint8_t *nb = realloc(*buf, cap = cap ? cap * 2 : 65536);
			if (!nb)
				break;
			*buf = nb;
		}
		ssize_t n = read(fd, *buf + len, cap - len);
		if (n <= 0)
			break;
		len += (size_t)n;
	}
	close(fd);
	return len;
}

static int send_images(struct mig_out *mo)
{
	DIR *d = opendir(mo->dir);
	struct dirent *e;
	int rc = 0, nfiles = 0;
	uint8_t *buf = malloc(CHUNK);
	if (!d || !buf) {
		if (d)
			closedir(d);
		free(buf);
		return -ENOMEM;
	}
	while (!rc && (e = readdir(d))) {
		size_t l = strlen(e->d_name);
		if (e->d_name[0] == '.' || (l > 4 && !strcmp(e->d_name + l - 4, ".log")))
			continue;
		if (nfiles++ == 3 && fault_injected("mig_xfer_cut")) {
			peer_drop(mo->target);
			rc = -ECONNRESET;
			break;
		}
		char path[PATH_MAX];
		snprintf(path, sizeof(path), "%s/%s", mo->dir, e->d_name);
		int fd = open(path, O_RDONLY | O_CLOEXEC);
		ssize_t n;
		bool first = true;
		while (fd >= 0 && !rc && ((n = read(fd, buf, CHUNK)) > 0 || first)) {
			struct mos_msg m;
			first = false;
			if ((rc = mos_msg_init(&m, MOS_MSG_MIG_DATA)))
				break;
			mos_msg_put_u32(&m, MOS_T_JOBID, mo->p->jobid);
			mos_msg_put_u32(&m, MOS_T_RANK, mo->p->rank);
			mos_msg_put_str(&m, MOS_T_NAME, e->d_name);
			mos_msg_put(&m, MOS_T_DATA, buf, n > 0 ? (size_t)n : 0);
			rc = peer_send(mo->target, &m);
			mos_msg_free(&m);
			mo->bytes += n > 0 ? (size_t)n : 0;
			if (n <= 0)
				break;
		}
		if (fd >= 0)
			close(fd);
		else
			rc = -errno;
	}
	closedir(d);
	free(buf);
	return rc;
}

static void dump_done(void *arg, int ws)
{
	struct mig_out *mo = arg;
	struct proc *p = mo->p;
	char why[300];
	if (ws != 0) {
		criu_log_tail(mo->dir, "dump.log", why, sizeof(why));
		out_fail(mo, -EIO, why);
		return;
	}
	set_state_out(mo, MIG_SEND);
	mo->t_sent = mos_now_ms();
	proc_drain_output(p); /* lines written before the freeze go home from here */
	mo->sending = true;
	int rc = send_images(mo);
	mo->sending = false;
	if (!rc && mo->link_lost)
		rc = -ECONNRESET;
	if (rc) {
		out_fail(mo, rc, "the image transfer broke off");
		return;
	}
	uint8_t *in = NULL;
	size_t in_len = take_stdin(p, &in);
	struct mos_msg c;
	if ((rc = mos_msg_init(&c, MOS_MSG_MIG_COMMIT))) {
		free(in);
		out_fail(mo, rc, "out of memory");
		return;
	}
	mos_msg_put_u32(&c, MOS_T_JOBID, p->jobid);
	mos_msg_put_u32(&c, MOS_T_RANK, p->rank);
	for (int i = 0; i < 4; i++)
		mos_msg_put_str(&c, MOS_T_ARGV, mo->pipes[i]);
	mos_msg_put(&c, MOS_T_DATA, in, in_len);
	mos_msg_put_u64(&c, MOS_T_SEQ, p->io_seq);
	mos_msg_put_u32(&c, MOS_T_FLAGS, (p->in && !p->in_eof) ? 0 : 1);
	rc = peer_send(mo->target, &c);
	mos_msg_free(&c);
	free(in);
	if (rc) {
		out_fail(mo, rc, "cannot reach the target node");
		return;
	}
	set_state_out(mo, MIG_RESTORE);
}

static struct mig_out *find_out(struct mos_msg *m, struct proc **pp)
{
	uint32_t jobid = 0, rank = 0;
	mos_msg_get_u32(m, MOS_T_JOBID, &jobid);
	mos_msg_get_u32(m, MOS_T_RANK, &rank);
	struct proc *p = proc_find(jobid, rank);
	if (pp)
		*pp = p;
	return p ? p->mig : NULL;
}

void mig_on_ready(struct mos_msg *m)
{
	struct mig_out *mo = find_out(m, NULL);
	int32_t code = 0;
	if (!mo || mo->state != MIG_PREPARE)
		return;
	mos_msg_get_i32(m, MOS_T_CODE, &code);
	if (code) {
		char *t = mos_msg_get_str(m, MOS_T_TEXT);
		out_fail(mo, code, t ? t : strerror(-code));
		free(t);
		return;
	}
	int rc = read_pipe_ids(mo);
	if (!rc)
		rc = criu_images_dir(mosd.self->name, "out", mo->p->jobid, mo->p->rank, mo->dir, sizeof(mo->dir));
	if (rc) {
		out_fail(mo, rc, rc == -EBADF ? "the process's stdio is not ours" : "cannot make an image directory");
		return;
	}
	set_state_out(mo, MIG_DUMP);
	mo->t_dump = mos_now_ms();
	pid_t dpid = fault_injected("mig_dump_fail") ? criu_dump(999999999, mo->dir, false, dump_done, mo)
						      : criu_dump(mo->p->pid, mo->dir, mo->flags & MOS_MIG_LAZY, dump_done, mo);
	if (dpid < 0)
		out_fail(mo, (int)dpid, "cannot run criu");
}

static void crash_now(evutil_socket_t fd, short what, void *arg)
{
	pr_err("fault injection: this daemon dies now");
	_exit(1);
}

void mig_on_done(struct mos_msg *m)
{
	struct proc *p;
	struct mig_out *mo = find_out(m, &p);
	int32_t code = 0;
	uint32_t pid = 0;
	if (!mo || mo->state != MIG_RESTORE)
		return;
	mos_msg_get_i32(m, MOS_T_CODE, &code);
	mos_msg_get_u32(m, MOS_T_PID, &pid);
	if (code) {
		char *t = mos_msg_get_str(m, MOS_T_TEXT);
		out_fail(mo, code, t ? t : strerror(-code));
		free(t);
		return;
	}
	/* The target runs it now: our stopped copy goes, silently. */
	uint64_t now = mos_now_ms();
	char text[512];
	snprintf(text, sizeof(text), "job %u rank %u moved %s -> %s: %.1f MiB of images, frozen %llu ms, total %llu ms",
		 p->jobid, p->rank, mosd.self->name, mosd.conf->nodes[mo->target].name, (double)mo->bytes / 1048576.0,
		 (unsigned long long)(now - mo->t_dump), (unsigned long long)(now - mo->t0));
	pr_info("%s", text);
	kill(p->pid, SIGKILL);
	proc_drain_output(p);
	set_state_out(mo, MIG_FINISHED);
	report_home(mo, 0, (pid_t)pid, text);
	out_free(mo);
	proc_free(p);
	if (fault_injected("mig_source_crash")) {
		struct timeval tv = { 0, 200000 }; /* let MOVED leave first */
		event_base_once(mosd.base, -1, EV_TIMEOUT, crash_now, NULL, &tv);
	}
}

bool mig_forward_stdin(struct proc *p, struct mos_msg *m)
{
	if (p->mig->state != MIG_RESTORE)
		return false;
	peer_send(p->mig->target, m);
	return true;
}

/* --- target ------------------------------------------------------------------ */

static struct mig_in *find_in(uint32_t jobid, uint32_t rank)
{
	for (struct mig_in *mi = incoming; mi; mi = mi->next)
		if (mi->jobid == jobid && mi->rank == rank)
			return mi;
	return NULL;
}

static void in_free(struct mig_in *mi)
{
	for (struct mig_in **pp = &incoming; *pp; pp = &(*pp)->next)
		if (*pp == mi) {
			*pp = mi->next;
			break;
		}
	for (int i = 0; i < 4; i++)
		for (int k = 0; k < 2; k++)
			if (mi->fds[i][k] >= 0)
				close(mi->fds[i][k]);
	if (mi->timer)
		event_free(mi->timer);
	if (mi->dir[0])
		criu_rm_dir(mi->dir);
	free(mi->stdin_buf);
	free(mi->cmd);
	free(mi);
}

static void on_in_timeout(evutil_socket_t fd, short what, void *arg)
{
	struct mig_in *mi = arg;
	if (mi->state == MIG_RESTORE) { /* criu still runs: decide when it ends */
		mi->abort = true;
		return;
	}
	pr_warn("incoming job %u rank %u: timed out, discarded", mi->jobid, mi->rank);
	in_free(mi);
}

static uint64_t local_rss(void)
{
	uint64_t sum = 0;
	for (struct proc *p = mosd.procs; p; p = p->next) {
		uint32_t cpu;
		uint64_t rss = 0;
		proc_usage_of(p, &cpu, &rss);
		sum += rss;
	}
	return sum;
}

static int admit(uint64_t rss, uint32_t flags, char *err, size_t len)
{
	const struct mos_conf_node *me = mosd.self;
	if (fault_injected("mig_refuse")) {
		snprintf(err, len, "node %s is out of memory (injected fault)", me->name);
		return -ENOMEM;
	}
	if (me->memory) {
		uint64_t used = local_rss(), free_b = me->memory > used ? me->memory - used : 0;
		if (rss > free_b) {
			snprintf(err, len, "node %s has %.1f MiB of memory free, the process needs %.1f MiB", me->name,
				 (double)free_b / 1048576.0, (double)rss / 1048576.0);
			return -ENOMEM;
		}
	}
	unsigned running = proc_count_running();
	if (!(flags & MOS_MIG_FORCE) && running >= me->cpus) {
		snprintf(err, len, "node %s is full: %u processes on %u cpus (mosmigrate --force to move anyway)",
			 me->name, running, me->cpus);
		return -ENOSPC;
	}
	return 0;
}

void mig_on_prepare(struct mos_msg *m, int mig_sender)
{
	uint32_t jobid = 0, rank = 0, flags = 0;
	uint64_t rss = 0;
	char err[256] = "";
	mos_msg_get_u32(m, MOS_T_JOBID, &jobid);
	mos_msg_get_u32(m, MOS_T_RANK, &rank);
	mos_msg_get_u32(m, MOS_T_FLAGS, &flags);
	mos_msg_get_u64(m, MOS_T_RSS, &rss);
	char *home = mos_msg_get_str(m, MOS_T_HOME);
	int source = -1, rc = 0;
	struct mig_in *mi = NULL;
	if (proc_find(jobid, rank) || find_in(jobid, rank))
		rc = -EEXIST, snprintf(err, sizeof(err), "job %u rank %u is already here", jobid, rank);
	else if (!home || peer_index(home) < 0)
		rc = -EINVAL, snprintf(err, sizeof(err), "unknown home node");
	else
		rc = admit(rss, flags, err, sizeof(err));
	source = mig_sender;
	if (!rc && !(mi = calloc(1, sizeof(*mi))))
		rc = -ENOMEM;
	if (!rc) {
		memset(mi->fds, -1, sizeof(mi->fds));
		mi->jobid = jobid;
		mi->rank = rank;
		mi->source = source;
		mos_msg_get_u32(m, MOS_T_NPROCS, &mi->nprocs);
		mos_msg_get_u32(m, MOS_T_UID, &mi->uid);
		mos_msg_get_u32(m, MOS_T_MIGRATIONS, &mi->migrations);
		snprintf(mi->home, sizeof(mi->home), "%s", home);
		mi->cmd = mos_msg_get_str(m, MOS_T_ARGV);
		rc = criu_images_dir(mosd.self->name, "in", jobid, rank, mi->dir, sizeof(mi->dir));
		if (rc) {
			snprintf(err, sizeof(err), "cannot make an image directory: %s", strerror(-rc));
			mi->dir[0] = 0;
			in_free(mi);
		} else {
			mi->state = MIG_SEND;
			mi->next = incoming;
			incoming = mi;
			mi->timer = evtimer_new(mosd.base, on_in_timeout, mi);
			struct timeval tv = { MIG_TIMEOUT_S, 0 };
			evtimer_add(mi->timer, &tv);
		}
	}
	if (rc)
		pr_info("incoming job %u rank %u refused: %s", jobid, rank, err);
	send_to(source, MOS_MSG_MIG_READY, jobid, rank, rc, rc ? err : NULL);
	free(home);
}

static struct mig_in *msg_in(struct mos_msg *m)
{
	uint32_t jobid = 0, rank = 0;
	mos_msg_get_u32(m, MOS_T_JOBID, &jobid);
	mos_msg_get_u32(m, MOS_T_RANK, &rank);
	return find_in(jobid, rank);
}

void mig_on_data(struct mos_msg *m, int mig_sender)
{
	struct mig_in *mi = msg_in(m);
	const struct mos_field *name = mos_msg_get(m, MOS_T_NAME), *d = mos_msg_get(m, MOS_T_DATA);
	if (!mi || mi->state != MIG_SEND || mi->source != mig_sender)
		return;
	char fname[256], path[PATH_MAX];
	if (name->len == 0 || name->len >= sizeof(fname) || memchr(name->data, '/', name->len) || name->data[0] == '.') {
		pr_warn("incoming job %u rank %u: bad image name, discarded", mi->jobid, mi->rank);
		in_free(mi);
		return;
	}
	memcpy(fname, name->data, name->len);
	fname[name->len] = 0;
	snprintf(path, sizeof(path), "%s/%s", mi->dir, fname);
	int fd = open(path, O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0600);
	if (fd < 0 || (d->len && write(fd, d->data, d->len) != (ssize_t)d->len)) {
		pr_err("incoming job %u rank %u: cannot store image %s: %s", mi->jobid, mi->rank, fname, strerror(errno));
		mi->abort = true;
	}
	if (fd >= 0)
		close(fd);
}

static void restored(void *arg, int ws)
{
	struct mig_in *mi = arg;
	char why[300];
	for (int i = 0; i < 4; i++) { /* the child's ends now belong to the restored tree */
		int child_end = i == 0 ? 0 : 1;
		close(mi->fds[i][child_end]);
		mi->fds[i][child_end] = -1;
	}
	if (ws != 0) {
		criu_log_tail(mi->dir, "restore.log", why, sizeof(why));
		pr_warn("incoming job %u rank %u: restore failed: %s", mi->jobid, mi->rank, why);
		send_to(mi->source, MOS_MSG_MIG_DONE, mi->jobid, mi->rank, -EIO, why);
		in_free(mi);
		return;
	}
	char path[PATH_MAX];
	int pid = 0;
	snprintf(path, sizeof(path), "%s/restored.pid", mi->dir);
	FILE *f = fopen(path, "r");
	if (!f || fscanf(f, "%d", &pid) != 1 || pid <= 0)
		pid = 0;
	if (f)
		fclose(f);
	if (mi->abort || !pid) {
		if (pid)
			kill(pid, SIGKILL);
		send_to(mi->source, MOS_MSG_MIG_DONE, mi->jobid, mi->rank, -ECANCELED, "restore abandoned");
		in_free(mi);
		return;
	}
	struct proc *p = calloc(1, sizeof(*p));
	if (!p) {
		kill(pid, SIGKILL);
		send_to(mi->source, MOS_MSG_MIG_DONE, mi->jobid, mi->rank, -ENOMEM, "out of memory");
		in_free(mi);
		return;
	}
	p->jobid = mi->jobid;
	p->rank = mi->rank;
	p->nprocs = mi->nprocs;
	p->uid = mi->uid;
	p->pid = pid;
	p->state = PROC_RUNNING;
	p->migrations = mi->migrations + 1;
	p->io_seq = mi->io_seq;
	p->start_ms = mos_now_ms();
	p->cmd = mi->cmd;
	p->stdin_closed = mi->stdin_closed;
	mi->cmd = NULL;
	snprintf(p->home, sizeof(p->home), "%s", mi->home);
	int fds[4][2];
	memcpy(fds, mi->fds, sizeof(fds));
	memset(mi->fds, -1, sizeof(mi->fds));
	proc_attach_fds(p, fds);
	p->next = mosd.procs;
	mosd.procs = p;
	if (p->in && mi->stdin_len)
		bufferevent_write(p->in, mi->stdin_buf, mi->stdin_len);
	if (p->in && mi->stdin_eof) {
		p->in_eof = true;
		if (!mi->stdin_len) {
			bufferevent_free(p->in);
			p->in = NULL;
		}
	}
	struct mos_msg d;
	if (mos_msg_init(&d, MOS_MSG_MIG_DONE) == 0) {
		mos_msg_put_u32(&d, MOS_T_JOBID, p->jobid);
		mos_msg_put_u32(&d, MOS_T_RANK, p->rank);
		mos_msg_put_i32(&d, MOS_T_CODE, 0);
		mos_msg_put_u32(&d, MOS_T_PID, (uint32_t)pid);
		peer_send(mi->source, &d);
		mos_msg_free(&d);
	}
	pr_info("job %u rank %u restored here: pid %d (migration %u)", p->jobid, p->rank, pid, p->migrations);
	in_free(mi);
	for (unsigned i = 0; i < 64; i++) /* ended before we knew its pid? */
		if (reaped_ring[i].pid == pid) {
			reaped_ring[i].pid = 0;
			proc_on_reaped(p, reaped_ring[i].ws);
			break;
		}
}

void mig_on_commit(struct mos_msg *m, int mig_sender)
{
	struct mig_in *mi = msg_in(m);
	if (!mi || mi->state != MIG_SEND || mi->source != mig_sender)
		return;
	char **specs = mos_msg_get_strv(m, MOS_T_ARGV);
	const struct mos_field *in = mos_msg_get(m, MOS_T_DATA);
	uint32_t flags = 0;
	int fds[4][2], rc;
	mos_msg_get_u64(m, MOS_T_SEQ, &mi->io_seq);
	mos_msg_get_u32(m, MOS_T_FLAGS, &flags);
	mi->stdin_closed = flags & 1;
	if (in && in->len && (mi->stdin_buf = malloc(in->len))) {
		memcpy(mi->stdin_buf + mi->stdin_len, in->data, in->len);
		mi->stdin_len = in->len;
	}
	if (fault_injected("mig_target_crash"))
		crash_now(-1, 0, NULL);
	if (fault_injected("mig_restore_fail")) {
		char path[PATH_MAX];
		snprintf(path, sizeof(path), "%s/pstree.img", mi->dir);
		FILE *f = fopen(path, "w");
		if (f) {
			fputs("damaged on purpose", f);
			fclose(f);
		}
	}
	size_t n = 0;
	while (specs && specs[n])
		n++;
	if (mi->abort || n != 4 || (rc = proc_make_pipes(fds))) {
		send_to(mi->source, MOS_MSG_MIG_DONE, mi->jobid, mi->rank, -EIO, "bad hand-over");
		mos_strv_free(specs);
		in_free(mi);
		return;
	}
	memcpy(mi->fds, fds, sizeof(fds));
	/* the process's ends: stdin read end; stdout, stderr, status write ends */
	int child[4] = { fds[0][0], fds[1][1], fds[2][1], fds[3][1] };
	mi->state = MIG_RESTORE;
	pid_t cp = criu_restore(mi->dir, (const char *const *)specs, child, 4, restored, mi);
	mos_strv_free(specs);
	if (cp < 0) {
		send_to(mi->source, MOS_MSG_MIG_DONE, mi->jobid, mi->rank, (int)cp, "cannot run criu");
		in_free(mi);
	}
}

bool mig_on_stdin(uint32_t jobid, uint32_t rank, const struct mos_field *d)
{
	struct mig_in *mi = find_in(jobid, rank);
	if (!mi)
		return false;
	if (!d || !d->len) {
		mi->stdin_eof = true;
		return true;
	}
	uint8_t *nb = realloc(mi->stdin_buf, mi->stdin_len + d->len);
	if (nb) {
		memcpy(nb + mi->stdin_len, d->data, d->len);
		mi->stdin_buf = nb;
		mi->stdin_len += d->len;
	}
	return true;
}

void mig_on_abort(struct mos_msg *m, int mig_sender)
{
	struct mig_in *mi = msg_in(m);
	if (!mi || mi->source != mig_sender)
		return;
	if (mi->state == MIG_RESTORE)
		mi->abort = true;
	else
		in_free(mi);
}

/* --- both ------------------------------------------------------------------ */

void mig_peer_lost(int idx)
{
	for (struct proc *p = mosd.procs, *next; p; p = next) {
		next = p->next;
		if (p->mig && p->mig->target == idx && p->mig->sending)
			p->mig->link_lost = true;
		else if (p->mig && p->mig->target == idx)
			out_fail(p->mig, -ECONNRESET, "lost the link to the target node");
	}
	for (struct mig_in *mi = incoming, *next; mi; mi = next) {
		next = mi->next;
		if (mi->source != idx)
			continue;
		if (mi->state == MIG_RESTORE)
			mi->abort = true; /* the source resumes its copy: ours must not run */
		else
			in_free(mi);
	}
}

void mig_note_reaped(pid_t pid, int ws)
{
	reaped_ring[ring_pos].pid = pid;
	reaped_ring[ring_pos].ws = ws;
	ring_pos = (ring_pos + 1) % 64;
}
