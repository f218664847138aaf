/* mig_out.c - the source side of a migration: prepare the target, dump the
 * pod leaving it stopped, send the images, hand over; roll back to the
 * stopped copy on any failure before the target runs the process. */
#include "mig_int.h"
#include "pagelink.h"
#include "ckpt.h"
#include "criu.h"
#include "imgstream.h"
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
	uint64_t t_commit;
	int broken;                 /* -errno: the transfer failed while criu dumped */
	uint64_t move_id;           /* this try, for the home's decision */
	pid_t new_pid;              /* hand-over: the target's restored copy */
	char rtext[96];             /* the target's timings */
	size_t bytes;
	struct event *timer;
	pid_t dump_pid;             /* criu dump, while it runs */
	struct imgstream *xfer;     /* the images on their way, from the dump's start */
	bool dumped;                /* criu has left the process (all images written) */
	bool queued;                /* every image is queued on the link */
	bool finishing;             /* committed; finish_move() when the timer fires (fault) */
	int lazy_rd;                /* post-copy: criu says "images ready" here */
	struct event *lazy_ev;
	struct pagelink *pl;        /* post-copy, direct: the target's page link, until it is up */
	int ps_fd;                  /* ... and once it is, until criu has it */
	bool ready;                 /* the target said READY: the dump waits for the page link */
	bool direct_chosen;         /* direct by default (not asked for): a copy if the target cannot */
	bool ended;                 /* the process ended (was killed) during the move */
};

/* After a post-copy hand-over, the source's criu still serves pages: the
 * stopped tree and the image directory go when it ends. */
struct lazy_tail {
	pid_t tree;
	char dir[PATH_MAX];
};

static void tail_done(void *arg, int ws)
{
	struct lazy_tail *t = arg;
	if (ws)
		pr_warn("post-copy page server for %s ended with status 0x%x", t->dir, ws);
	kill(t->tree, SIGKILL);
	criu_rm_dir_later(t->dir);
	free(t);
}

static void set_state_out(struct mig_out *mo, enum mig_state s)
{
	pr_debug("migration of job %u rank %u: %s -> %s", mo->p->jobid, mo->p->rank, mig_state2str(mo->state),
		 mig_state2str(s));
	mo->state = s;
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

static void xfer_close(struct mig_out *mo);

/* Post-copy and direct moves: criu serves the memory from the stopped
 * process; only the rest of its state goes through us. */
static bool pages_served(const struct mig_out *mo)
{
	return mo->flags & (MOS_MIG_LAZY | MOS_MIG_DIRECT);
}

static void out_free(struct mig_out *mo)
{
	xfer_close(mo);
	if (mo->timer)
		event_free(mo->timer);
	if (mo->lazy_ev)
		event_free(mo->lazy_ev);
	if (mo->lazy_rd > 0)
		close(mo->lazy_rd);
	if (mo->dump_pid > 0) { /* a dump still running or serving pages: stop it */
		criu_retarget(mo->dump_pid, mig_criu_noop, NULL);
		criu_kill(mo->dump_pid);
	}
	if (mo->dir[0])
		criu_rm_dir_later(mo->dir);
	pagelink_free(mo->pl);
	if (mo->ps_fd >= 0)
		close(mo->ps_fd);
	mo->p->mig = NULL;
	free(mo);
}

/* Roll back: the source's copy runs on as if nothing happened. */
/* A criu that served pages held the tree under ptrace: SIGCONT again once
 * it is gone, whatever state its death left the tasks in. */
static void resume_when_gone(void *arg, int ws)
{
	pid_t *tree = arg;
	mig_resume_tree(*tree);
	free(tree);
}

static void out_fail(struct mig_out *mo, int code, const char *why)
{
	struct proc *p = mo->p;
	const char *now = mo->ended ? "it ended" : "it keeps running";
	pr_warn("migration of job %u rank %u to %s failed in state %s: %s; %s here", p->jobid, p->rank,
		mosd.conf->nodes[mo->target].name, mig_state2str(mo->state), why, now);
	if (mo->state >= MIG_SEND && !mo->ended) { /* dumped: stopped, not gone */
		pid_t *tree = mo->dump_pid > 0 ? malloc(sizeof(*tree)) : NULL;
		if (tree) { /* post-copy, direct: criu still serves pages */
			*tree = p->pid;
			criu_retarget(mo->dump_pid, resume_when_gone, tree);
			criu_kill(mo->dump_pid);
			mo->dump_pid = 0;
		}
		mig_resume_tree(p->pid);
	}
	mig_send_to(mo->target, MOS_MSG_MIG_ABORT, p->jobid, p->rank, -ECANCELED, why);
	p->state = PROC_RUNNING;
	char text[512];
	snprintf(text, sizeof(text), "migration to %s failed in step '%s': %s (%s on %s)",
		 mosd.conf->nodes[mo->target].name, mig_state2str(mo->state), why,
		 mo->ended ? "the process ended" : "the process keeps running", mosd.self->name);
	report_home(mo, code ? code : -EIO, p->pid, text);
	out_free(mo);
}

static void finish_move(struct mig_out *mo);

static void on_out_timeout(evutil_socket_t fd, short what, void *arg)
{
	struct mig_out *mo = arg;
	if (mo->finishing) {
		finish_move(mo);
		return;
	}
	if (mo->state == MIG_HANDOVER) { /* only the home may say which copy lives */
		struct timeval tv = { 2, 0 };
		evtimer_add(mo->timer, &tv); /* before asking: the answer may free mo */
		mig_ask_home(mo->p->home, MIG_ASK_ABORT, mo->p->jobid, mo->p->rank, mo->move_id, mo->target);
		return;
	}
	out_fail(mo, -ETIMEDOUT, "timed out");
}

static int read_pipe_ids(struct mig_out *mo);
static void start_dump(struct mig_out *mo);
static void send_prepare(struct mig_out *mo);

/* The target's page link is up and proven (or not): the dump may start
 * once the target is ready too. */
static void page_link_up(void *arg, int fd)
{
	struct mig_out *mo = arg;
	pagelink_free(mo->pl);
	mo->pl = NULL;
	if (fd < 0) {
		out_fail(mo, fd, "the target did not make the page link");
		return;
	}
	mo->ps_fd = fd;
	if (mo->ready)
		start_dump(mo);
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
	mo->ps_fd = -1;
	p->mig = mo;
	mo->target = target;
	mo->t0 = mos_now_ms();
	mos_msg_get_u32(m, MOS_T_FLAGS, &mo->flags);
	if (!(mo->flags & (MOS_MIG_LAZY | MOS_MIG_DIRECT | MOS_MIG_COPY)) && criu_can_lazy()) {
		mo->flags |= MOS_MIG_DIRECT; /* the default: no copy of the memory in tmpfs */
		mo->direct_chosen = true;
	}
	mos_msg_get_u64(m, MOS_T_SEQ, &mo->seq);
	char *rq = mos_msg_get_str(m, MOS_T_NAME);
	snprintf(mo->requester, sizeof(mo->requester), "%s", rq ? rq : "");
	free(rq);
	mo->state = MIG_PREPARE;
	p->state = PROC_MIGRATING;
	/* after a post-copy move its pages still come from the old node: a
	 * dump now would miss them (the copy would find zeroes or crash) */
	if (p->pages_pending) {
		char why[160];
		snprintf(why, sizeof(why), "its memory still comes from node %s after a post-copy move: "
			 "try again when it is all there", mosd.conf->nodes[p->pages_from].name);
		out_fail(mo, -EBUSY, why);
		return;
	}
	/* CRIU 4.2.1 restores a periodic timerfd that fired but was not yet
	 * read disarmed (upstream issue #3162): the process would wait forever */
	if (!(mo->flags & MOS_MIG_FORCE) && mig_tree_has_fd(p->pid, "anon_inode:[timerfd]")) {
		out_fail(mo, -ENOTSUP, "it holds a timerfd, which CRIU 4.2.1 can bring back disarmed "
				       "(mosmigrate --force moves it anyway)");
		return;
	}
	/* the copy on the target would wait for the lock this one holds until
	 * the move timed out, the process frozen all that while */
	char locked[PATH_MAX], why[PATH_MAX + 128];
	if (mig_tree_has_lock(p->pid, locked, sizeof(locked))) {
		snprintf(why, sizeof(why), "it holds a file lock on %s, which its copy on the target could not "
			 "take while this one holds it", locked[0] ? locked : "a file");
		out_fail(mo, -ENOTSUP, why);
		return;
	}
	mo->timer = evtimer_new(mosd.base, on_out_timeout, mo);
	struct timeval tv = { MIG_TIMEOUT_S, 0 };
	evtimer_add(mo->timer, &tv);
	send_prepare(mo);
}

/* Ask the target to take the process (PREPARE): what it must know before
 * the images come, and for post-copy and direct moves the page link. */
static void send_prepare(struct mig_out *mo)
{
	struct proc *p = mo->p;
	int target = mo->target;
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
	mos_msg_put_u32(&q, MOS_T_FLAGS, mo->flags | MOS_MIG_HANDOVER);
	mo->move_id = mos_rng_next(&mosd.rng);
	mos_msg_put_u64(&q, MOS_T_SEQ, mo->move_id);
	if (pages_served(mo)) { /* criu's pages go over a link of their own, made now */
		unsigned port = 0;
		mo->pl = pagelink_listen(mosd.self->address, mosd.conf->nodes[target].address, mo->move_id,
					 mosd.self->name, mosd.conf->nodes[target].name, &port, page_link_up, mo);
		if (!mo->pl) {
			int e = -errno;
			mos_msg_free(&q);
			out_fail(mo, e, "cannot listen for the page link");
			return;
		}
		mos_msg_put_u32(&q, MOS_T_PORT, port);
	}
	int rc = read_pipe_ids(mo);
	for (int i = 0; !rc && i < 4; i++) /* the target may start its restore with them */
		mos_msg_put_str(&q, MOS_T_PIPES, mo->pipes[i]);
	if (rc) {
		mos_msg_free(&q);
		out_fail(mo, rc, "the process's stdio is not ours");
		return;
	}
	rc = peer_send(target, &q);
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

static void commit(struct mig_out *mo);

static void xfer_close(struct mig_out *mo)
{
	imgstream_free(mo->xfer);
	mo->xfer = NULL;
}

/* The image stream has queued everything (RC 0) or broke off. */
static void xfer_done(void *arg, int rc)
{
	struct mig_out *mo = arg;
	if (rc) {
		xfer_close(mo);
		if (mo->state == MIG_DUMP && mo->dump_pid > 0) /* never kill criu inside the process */
			mo->broken = rc;
		else
			out_fail(mo, rc, "the image transfer broke off");
		return;
	}
	mo->queued = true;
	mo->bytes = imgstream_bytes(mo->xfer);
	if (mo->dumped && pages_served(mo))
		commit(mo);
}

#define EAGER (32ull << 20)


static struct mig_out *find_out(struct mos_msg *m, struct proc **pp);

/* MIG_PULL: the target's restore reads image NAME: send it up to OFFSET
 * (all of it without one). */
void mig_on_pull(struct mos_msg *m)
{
	struct mig_out *mo = find_out(m, NULL);
	char *name = mos_msg_get_str(m, MOS_T_NAME);
	uint64_t upto = UINT64_MAX;
	mos_msg_get_u64(m, MOS_T_OFFSET, &upto);
	if (mo && mo->xfer && name)
		imgstream_pull(mo->xfer, name, upto);
	free(name);
}

static int xfer_start(struct mig_out *mo, bool follow)
{
	struct imgstream_args a = { .dir = mo->dir, .peer = mo->target, .type = MOS_MSG_MIG_DATA,
				    .jobid = mo->p->jobid, .rank = mo->p->rank, .follow = follow,
				    .cut_fault = "mig_xfer_cut", .cb = xfer_done, .arg = mo };
	/* Big images (memory) beyond the first EAGER bytes wait on our tmpfs
	 * until the target's restore reads them: then they flow into criu's
	 * pipe there, a window ahead of its reading, not through the target's
	 * tmpfs (post-copy keeps memory out of the images anyway). */
	if (!pages_served(mo))
		a.eager = EAGER;
	mo->xfer = imgstream_start(&a);
	return mo->xfer ? 0 : -errno;
}

static void images_ready(struct mig_out *mo);

static void dump_done(void *arg, int ws)
{
	struct mig_out *mo = arg;
	char why[300];
	mo->dump_pid = 0;
	if (mo->state != MIG_DUMP) { /* post-copy: the page server ended early */
		if (ws)
			pr_warn("post-copy page server of job %u rank %u failed (0x%x)", mo->p->jobid, mo->p->rank, ws);
		return;
	}
	if (ws != 0 || pages_served(mo)) {
		criu_log_tail(mo->dir, "dump.log", why, sizeof(why));
		out_fail(mo, -EIO, why);
		return;
	}
	images_ready(mo);
}

static void on_lazy_ready(evutil_socket_t fd, short what, void *arg)
{
	struct mig_out *mo = arg;
	char c;
	ssize_t n = read(fd, &c, 1);
	event_del(mo->lazy_ev);
	if (n != 1) { /* criu closed it without a word: its exit says why */
		return;
	}
	criu_dump_phase_done(mo->dump_pid);
	images_ready(mo);
}

/* The images but memory (post-copy) or all of them are written: the
 * process is stopped; what is not yet on its way goes now. */
static void images_ready(struct mig_out *mo)
{
	set_state_out(mo, MIG_SEND);
	mo->t_sent = mos_now_ms();
	proc_drain_output(mo->p); /* lines written before the freeze go home from here */
	if (mo->broken || !mo->xfer) {
		out_fail(mo, mo->broken ? mo->broken : -EIO, "the image transfer broke off");
		return;
	}
	mo->dumped = true;
	imgstream_writer_done(mo->xfer);
	if (!pages_served(mo)) /* the target restores while the images still arrive */
		commit(mo);
}

/* Hand over the rest of the process's state: after every image is queued
 * (post-copy), or once the dump is written with the list of its images. */
static void commit(struct mig_out *mo)
{
	struct proc *p = mo->p;
	int rc;
	uint8_t *in = NULL;
	size_t in_len = take_stdin(p, &in);
	struct mos_msg cm;
	if ((rc = mos_msg_init(&cm, MOS_MSG_MIG_COMMIT))) {
		free(in);
		out_fail(mo, rc, "out of memory");
		return;
	}
	mos_msg_put_u32(&cm, MOS_T_JOBID, p->jobid);
	mos_msg_put_u32(&cm, MOS_T_RANK, p->rank);
	for (int i = 0; i < 4; i++)
		mos_msg_put_str(&cm, MOS_T_ARGV, mo->pipes[i]);
	mos_msg_put(&cm, MOS_T_DATA, in, in_len);
	mos_msg_put_u64(&cm, MOS_T_SEQ, p->io_seq);
	mos_msg_put_u32(&cm, MOS_T_FLAGS, ((p->in && !p->in_eof) ? 0 : MIG_COMMIT_STDIN_CLOSED) |
					     (pages_served(mo) ? MIG_COMMIT_LAZY : 0) |
					     ((mo->flags & MOS_MIG_DIRECT) ? MIG_COMMIT_FULL : 0));
	rc = imgstream_manifest(mo->xfer, &cm, MOS_T_NAME);
	if (!rc)
		rc = peer_send(mo->target, &cm);
	mos_msg_free(&cm);
	free(in);
	if (rc) {
		out_fail(mo, rc, "cannot reach the target node");
		return;
	}
	set_state_out(mo, MIG_RESTORE);
	mo->t_commit = mos_now_ms();
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
	if (!mo && ckpt_import_ready(m)) /* a restart's rank, not a move */
		return;
	if (!mo || mo->state != MIG_PREPARE)
		return;
	mos_msg_get_i32(m, MOS_T_CODE, &code);
	if (code == -EPROTONOSUPPORT && mo->direct_chosen) {
		/* the target has no userfaultfd: copy, the way every node can take */
		char *t = mos_msg_get_str(m, MOS_T_TEXT);
		pr_info("job %u rank %u: %s: copying its memory instead", mo->p->jobid, mo->p->rank, t ? t : "");
		free(t);
		pagelink_free(mo->pl);
		mo->pl = NULL;
		mo->flags &= ~MOS_MIG_DIRECT;
		mo->direct_chosen = false;
		send_prepare(mo);
		return;
	}
	if (code) {
		char *t = mos_msg_get_str(m, MOS_T_TEXT);
		out_fail(mo, code, t ? t : strerror(-code));
		free(t);
		return;
	}
	mo->ready = true;
	if (!pages_served(mo) || mo->ps_fd >= 0)
		start_dump(mo);
}

static void start_dump(struct mig_out *mo)
{
	int rc = criu_images_dir(mosd.self->name, "out", mo->p->jobid, mo->p->rank, mo->dir, sizeof(mo->dir));
	if (rc) {
		out_fail(mo, rc, "cannot make an image directory");
		return;
	}
	set_state_out(mo, MIG_DUMP);
	mo->t_dump = mos_now_ms();
	if ((rc = xfer_start(mo, true))) { /* the images go as criu writes them */
		out_fail(mo, rc, "cannot follow the image directory");
		return;
	}
	struct criu_lazy lazy = { mo->ps_fd, -1, -1 };
	if (pages_served(mo)) {
		int sp[2];
		if (pipe2(sp, O_CLOEXEC) < 0) {
			out_fail(mo, -errno, "cannot make a pipe");
			return;
		}
		mo->lazy_rd = sp[0];
		lazy.status_fd = sp[1];
		mo->lazy_ev = event_new(mosd.base, sp[0], EV_READ, on_lazy_ready, mo);
		if (mo->lazy_ev)
			event_add(mo->lazy_ev, NULL);
	}
	pid_t dpid = criu_dump(fault_injected("mig_dump_fail") ? 999999999 : mo->p->pid, mo->dir,
			       pages_served(mo) ? &lazy : NULL, dump_done, mo);
	if (lazy.status_fd >= 0)
		close(lazy.status_fd);
	if (mo->ps_fd >= 0) { /* criu has it now (or failed to start) */
		close(mo->ps_fd);
		mo->ps_fd = -1;
	}
	if (dpid < 0) {
		out_fail(mo, (int)dpid, "cannot run criu");
		return;
	}
	mo->dump_pid = dpid;
}

void mig_crash_now(evutil_socket_t fd, short what, void *arg)
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
	if (!mo && ckpt_import_done(m))
		return;
	if (!mo)
		return;
	mos_msg_get_i32(m, MOS_T_CODE, &code);
	mos_msg_get_u32(m, MOS_T_PID, &pid);
	if (code && mo->state == MIG_DUMP && mo->dump_pid > 0) { /* an early restore failed: after the dump */
		mo->broken = code;
		xfer_close(mo);
		return;
	}
	if ((mo->state != MIG_RESTORE && !code) || mo->state == MIG_HANDOVER)
		return;
	if (code) {
		char *t = mos_msg_get_str(m, MOS_T_TEXT);
		out_fail(mo, code, t ? t : strerror(-code));
		free(t);
		return;
	}
	/* The target holds the restored copy stopped: the home decides. */
	char *ttext = mos_msg_get_str(m, MOS_T_TEXT);
	snprintf(mo->rtext, sizeof(mo->rtext), "%s", ttext ? ttext : "restore ?");
	free(ttext);
	mo->new_pid = (pid_t)pid;
	set_state_out(mo, MIG_HANDOVER);
	struct timeval tv = { 5, 0 }; /* no word by then: ask again (see on_out_timeout) */
	evtimer_add(mo->timer, &tv);
	/* last: when we are the home, the answer comes at once and frees mo */
	mig_ask_home(p->home, MIG_ASK_COMMIT, p->jobid, p->rank, mo->move_id, mo->target);
}

/* Committed: the target's copy runs; our stopped copy goes, silently. */
static void finish_move(struct mig_out *mo)
{
	struct proc *p = mo->p;
	uint64_t now = mos_now_ms();
	char text[512];
	snprintf(text, sizeof(text),
		 "job %u rank %u moved %s -> %s: %.1f MiB of images, frozen %llu ms (dump %llu, send %llu, %s), total %llu ms",
		 p->jobid, p->rank, mosd.self->name, mosd.conf->nodes[mo->target].name,
		 (double)(mo->xfer ? imgstream_bytes(mo->xfer) : mo->bytes) / 1048576.0,
		 (unsigned long long)(now - mo->t_dump), (unsigned long long)(mo->t_sent - mo->t_dump),
		 (unsigned long long)(mo->t_commit - mo->t_sent), mo->rtext, (unsigned long long)(now - mo->t0));
	pr_info("%s", text);
	if (mo->dump_pid > 0) { /* post-copy: pages still flow from here */
		struct lazy_tail *t = calloc(1, sizeof(*t));
		if (t) {
			t->tree = p->pid;
			snprintf(t->dir, sizeof(t->dir), "%s", mo->dir);
			criu_retarget(mo->dump_pid, tail_done, t);
			mo->dump_pid = 0;
			mo->dir[0] = 0;
		}
	} else {
		kill(p->pid, SIGKILL);
	}
	proc_drain_output(p);
	set_state_out(mo, MIG_FINISHED);
	report_home(mo, 0, mo->new_pid, text);
	out_free(mo);
	proc_free(p);
	if (fault_injected("mig_source_crash")) {
		struct timeval tv = { 0, 200000 }; /* let MOVED leave first */
		event_base_once(mosd.base, -1, EV_TIMEOUT, mig_crash_now, NULL, &tv);
	}
}

void mig_out_decided(uint32_t jobid, uint32_t rank, uint64_t attempt, bool commit)
{
	struct proc *p = proc_find(jobid, rank);
	struct mig_out *mo = p ? p->mig : NULL;
	/* an abort may come unasked, while we still wait for the target's word
	 * over a link that broke without our noticing */
	if (!mo || mo->move_id != attempt || mo->finishing ||
	    (mo->state != MIG_HANDOVER && (commit || mo->state != MIG_RESTORE)))
		return;
	if (commit && fault_injected("mig_finish_slow")) { /* the target runs it, we still hold ours */
		struct timeval tv = { 3, 0 };
		mo->finishing = true;
		evtimer_add(mo->timer, &tv);
	} else if (commit)
		finish_move(mo);
	else
		out_fail(mo, -ECANCELED, "the home decided against the hand-over (the link to the target failed)");
}

void mig_out_ended(struct proc *p)
{
	p->mig->ended = true;
	out_fail(p->mig, -ESRCH, "the process ended while it moved");
}

bool mig_forward_stdin(struct proc *p, struct mos_msg *m)
{
	if (p->mig->state != MIG_RESTORE && p->mig->state != MIG_HANDOVER)
		return false;
	peer_send(p->mig->target, m);
	return true;
}

void mig_out_peer_lost(int idx)
{
	for (struct proc *p = mosd.procs, *next; p; p = next) {
		next = p->next;
		struct mig_out *mo = p->mig;
		if (mo && mo->target == idx && mo->state == MIG_DUMP && mo->dump_pid > 0) {
			xfer_close(mo); /* the dump ends first, then we fail */
			mo->broken = -ECONNRESET;
		} else if (mo && mo->target == idx && mo->state == MIG_HANDOVER) {
			; /* the home decides: we asked it already */
		} else if (mo && mo->target == idx) {
			out_fail(mo, -ECONNRESET, "lost the link to the target node");
		}
	}
}
