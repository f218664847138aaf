/* mig_in.c - the target side of a migration: admit, receive the images
 * into tmpfs, restore with fresh stdio pipes, adopt the process. */
#include "mig_int.h"
#include "criu.h"
#include "pagelink.h"
#include "imgserve.h"
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
	char specs[4][32];          /* the old pipes' ids, for --inherit-fd */
	bool lazy;
	bool full;                  /* direct: every page is in before the hand-over */
	int lazy_ws;                /* how our lazy-pages daemon ended (once lazy_pid is 0) */
	struct pagelink *pl;        /* post-copy, direct: the page link to the source, until it is up */
	int ps_fd;                  /* ... and once it is, until our lazy-pages daemon has it */
	bool pages_served;          /* post-copy or direct (PREPARE's flags) */
	int go_wr;                  /* our lazy-pages daemon, started early, waits for a byte here */
	uint64_t t_data, t_restore;   /* first image byte, restore start */
	pid_t lazy_pid;             /* post-copy: our criu lazy-pages daemon */
	int lazy_rd;
	struct event *lazy_ev;
	struct imgserve *serve;     /* streamed restore: feeds criu as images arrive */
	bool early;                 /* criu restore started at PREPARE and waits for the images */
	bool handover;              /* a move: the restored copy waits stopped for the home's word */
	char **files;               /* post-copy, early restore: the image list, until the daemon is ready */
	bool damage;                /* (fault mig_restore_fail armed at COMMIT) */
	pid_t pid;                  /* the restored tree, while it waits */
	uint64_t move_id;           /* the source's id of this try */
	bool adopting;              /* committed; adopted when the timer fires (fault) */
};

/* The lazy-pages daemon outlives the migration record: its socket and log
 * are in the image directory, which goes when it ends. Until then the
 * process's memory is not all here. */
struct lazy_tail {
	uint32_t jobid, rank;
	pid_t pid;
	uint64_t t0;
	char dir[PATH_MAX];
};

static void lazy_tail_done(void *arg, int ws)
{
	struct lazy_tail *t = arg;
	struct proc *p = proc_find(t->jobid, t->rank);
	bool ours = p && p->pid == t->pid;
	if (ours)
		p->pages_pending = false;
	if (ws) {
		char why[300];
		criu_log_tail(t->dir, "lazy.log", why, sizeof(why));
		pr_warn("job %u rank %u: post-copy lazy-pages daemon ended with status 0x%x: %s", t->jobid, t->rank,
			ws, why);
	} else {
		pr_info("job %u rank %u: all of its memory is here, %llu ms after its restore%s", t->jobid, t->rank,
			(unsigned long long)(mos_now_ms() - t->t0), ours ? "" : " (it has ended)");
	}
	criu_rm_dir_later(t->dir);
	free(t);
}

static struct mig_in *incoming;
static struct { pid_t pid; int ws; } reaped_ring[64];
static unsigned ring_pos;

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
	if (mi->lazy_ev)
		event_free(mi->lazy_ev);
	if (mi->lazy_rd > 0)
		close(mi->lazy_rd);
	if (mi->lazy_pid > 0) { /* still fetching pages for nothing */
		criu_retarget(mi->lazy_pid, mig_criu_noop, NULL);
		criu_kill(mi->lazy_pid);
	}
	imgserve_free(mi->serve);
	if (mi->go_wr >= 0)
		close(mi->go_wr);
	pagelink_free(mi->pl);
	if (mi->ps_fd >= 0)
		close(mi->ps_fd);
	if (mi->dir[0])
		criu_rm_dir_later(mi->dir);
	free(mi->stdin_buf);
	free(mi->cmd);
	mos_strv_free(mi->files);
	free(mi);
}

static void ask_home(struct mig_in *mi);

/* Give up on this move: a streamed restore is cut off from its images,
 * so criu fails; any other restore runs to its end and is then undone. */
static void stop_serving(struct mig_in *mi)
{
	mi->abort = true;
	imgserve_free(mi->serve);
	mi->serve = NULL;
}

static void adopt(struct mig_in *mi, pid_t pid, bool tell_source);

static void on_in_timeout(evutil_socket_t fd, short what, void *arg)
{
	struct mig_in *mi = arg;
	if (mi->adopting) {
		pid_t pid = mi->pid;
		adopt(mi, pid, false);
		mig_resume_tree(pid);
		return;
	}
	if (mi->state == MIG_HANDOVER) {
		ask_home(mi);
		return;
	}
	if (mi->state == MIG_RESTORE) { /* criu still runs: decide when it ends */
		stop_serving(mi);
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

static void start_restore(struct mig_in *mi);

/* criu reads image NAME: what the source holds back of it comes now, up
 * to byte UPTO. */
static void want_image(void *arg, const char *name, uint64_t upto)
{
	struct mig_in *mi = arg;
	struct mos_msg m;
	if (mos_msg_init(&m, MOS_MSG_MIG_PULL))
		return;
	mos_msg_put_u32(&m, MOS_T_JOBID, mi->jobid);
	mos_msg_put_u32(&m, MOS_T_RANK, mi->rank);
	mos_msg_put_str(&m, MOS_T_NAME, name);
	mos_msg_put_u64(&m, MOS_T_OFFSET, upto);
	peer_send(mi->source, &m);
	mos_msg_free(&m);
}

/* criu restore starts now and waits at our image server for the images
 * while the source dumps: its start-up is out of the process's freeze.
 * Post-copy too: its images are let through once our lazy-pages daemon,
 * which reads them from the directory, is ready. */
static void restore_early(struct mig_in *mi, struct mos_msg *m, bool lazy)
{
	char **pipes = mos_msg_get_strv(m, MOS_T_PIPES);
	size_t n = 0;
	while (pipes && pipes[n])
		n++;
	for (size_t i = 0; i < 4 && n == 4; i++)
		snprintf(mi->specs[i], sizeof(mi->specs[i]), "%s", pipes[i]);
	mos_strv_free(pipes);
	if (n != 4 || !(mi->serve = imgserve_start(mi->dir)))
		return; /* the restore starts at COMMIT, as it always could */
	imgserve_on_want(mi->serve, want_image, mi);
	mi->early = true;
	mi->lazy = lazy; /* its pages come later, from our lazy-pages daemon */
	start_restore(mi);
}

/* The page link to the source is up (it holds the cluster key too), or
 * not: then the source hears it and calls the move off. */
static void start_lazy(struct mig_in *mi, bool early);

static void page_link_up(void *arg, int fd)
{
	struct mig_in *mi = arg;
	pagelink_free(mi->pl);
	mi->pl = NULL;
	if (fd >= 0) {
		mi->ps_fd = fd;
		if (mi->pages_served) /* its start-up out of the freeze; it waits for COMMIT */
			start_lazy(mi, true);
		return;
	}
	char why[160];
	snprintf(why, sizeof(why), "cannot make the page link to the source: %s", strerror(-fd));
	pr_warn("incoming job %u rank %u: %s", mi->jobid, mi->rank, why);
	mig_send_to(mi->source, MOS_MSG_MIG_DONE, mi->jobid, mi->rank, fd, why);
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
	/* post-copy, direct: criu's pages come over a link of their own */
	bool served = flags & (MOS_MIG_LAZY | MOS_MIG_DIRECT);
	char *home = mos_msg_get_str(m, MOS_T_HOME);
	int source = -1, rc = 0;
	struct mig_in *mi = NULL;
	if (proc_find(jobid, rank) || find_in(jobid, rank))
		rc = -EEXIST, snprintf(err, sizeof(err), "job %u rank %u is already here", jobid, rank);
	else if (!home || peer_index(home) < 0)
		rc = -EINVAL, snprintf(err, sizeof(err), "unknown home node");
	else
		rc = admit(rss, flags, err, sizeof(err));
	if (!rc && served && criu_no_lazy())
		rc = -EPROTONOSUPPORT, snprintf(err, sizeof(err), "node %s has no userfaultfd: its memory cannot come "
						    "%s (--copy can)", mosd.self->name,
						 (flags & MOS_MIG_LAZY) ? "post-copy" : "directly");
	source = mig_sender;
	if (!rc && !(mi = calloc(1, sizeof(*mi))))
		rc = -ENOMEM;
	if (!rc) {
		memset(mi->fds, -1, sizeof(mi->fds));
		mi->ps_fd = -1;
		mi->go_wr = -1;
		mi->pages_served = served;
		mi->jobid = jobid;
		mi->rank = rank;
		mi->source = source;
		mi->handover = flags & MOS_MIG_HANDOVER;
		mos_msg_get_u64(m, MOS_T_SEQ, &mi->move_id);
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
	if (!rc && served) {
		uint32_t port = 0;
		mos_msg_get_u32(m, MOS_T_PORT, &port);
		mi->pl = pagelink_connect(mosd.self->address, mosd.conf->nodes[source].address, port, mi->move_id,
					  mosd.conf->nodes[source].name, mosd.self->name, page_link_up, mi);
		if (!mi->pl) {
			rc = -errno;
			snprintf(err, sizeof(err), "cannot make the page link: %s", strerror(errno));
			in_free(mi);
		}
	}
	mig_send_to(source, MOS_MSG_MIG_READY, jobid, rank, rc, rc ? err : NULL);
	free(home);
	if (!rc)
		restore_early(mi, m, served);
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
	if (!mi || mi->source != mig_sender || !(mi->state == MIG_SEND || (mi->state == MIG_RESTORE && mi->serve)))
		return;
	uint64_t off;
	const uint64_t *offp = mos_msg_get_u64(m, MOS_T_OFFSET, &off) == 0 ? &off : NULL;
	if (!mi->t_data)
		mi->t_data = mos_now_ms();
	size_t took = 0; /* what criu's pipe takes at once does not touch the directory */
	if (name && d && offp && mi->serve && !mi->lazy) /* the lazy-pages daemon reads the directory */
		took = imgserve_offer(mi->serve, (const char *)name->data, name->len, off, d->data, d->len);
	off += took;
	int rc = name ? imgstream_store(mi->dir, (const char *)name->data, name->len, d ? d->data + took : NULL,
					d ? d->len - took : 0, offp)
		      : -EINVAL;
	if (rc == -EINVAL) {
		pr_warn("incoming job %u rank %u: bad image name, discarded", mi->jobid, mi->rank);
		in_free(mi);
	} else if (rc) {
		pr_err("incoming job %u rank %u: cannot store an image: %s", mi->jobid, mi->rank, strerror(-rc));
		stop_serving(mi);
	} else {
		imgserve_more(mi->serve);
	}
}

static void adopt(struct mig_in *mi, pid_t pid, bool tell_source);
static void send_done(struct mig_in *mi, pid_t pid);

static void handover_ready(struct mig_in *mi);
static void pages_failed(struct mig_in *mi);

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
		mig_send_to(mi->source, MOS_MSG_MIG_DONE, mi->jobid, mi->rank, -EIO, why);
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
		mig_send_to(mi->source, MOS_MSG_MIG_DONE, mi->jobid, mi->rank, -ECANCELED, "restore abandoned");
		in_free(mi);
		return;
	}
	if (!mi->handover) { /* a restart: nobody else has a copy */
		adopt(mi, pid, true);
		return;
	}
	mi->pid = pid;
	mi->state = MIG_HANDOVER;
	if (mi->full && mi->lazy_pid > 0) {
		if (fault_injected("mig_pages_fail"))
			criu_kill(mi->lazy_pid);
		return; /* the source hears of it when the last page is in (lazy_ended) */
	}
	if (mi->full && mi->lazy_ws) {
		pages_failed(mi);
		return;
	}
	handover_ready(mi);
}

/* A direct move whose memory did not all come: the copy goes, the
 * source's resumes. */
static void pages_failed(struct mig_in *mi)
{
	char why[360], tail[300];
	criu_log_tail(mi->dir, "lazy.log", tail, sizeof(tail));
	snprintf(why, sizeof(why), "fetching its memory failed (criu lazy-pages status 0x%x): %s", mi->lazy_ws, tail);
	pr_warn("incoming job %u rank %u: %s", mi->jobid, mi->rank, why);
	kill(mi->pid, SIGKILL);
	mig_send_to(mi->source, MOS_MSG_MIG_DONE, mi->jobid, mi->rank, -EIO, why);
	in_free(mi);
}

/* The restored copy waits, stopped and whole: tell the source. */
static void handover_ready(struct mig_in *mi)
{
	pid_t pid = mi->pid;
	struct timeval tv = { 5, 0 }; /* no word by then: ask the home (on_in_timeout) */
	evtimer_add(mi->timer, &tv);
	if (fault_injected("mig_done_lost")) { /* the link fails before the source hears of it */
		pr_warn("fault injection: the link to the source breaks before DONE");
		peer_drop(mi->source);
		return;
	}
	send_done(mi, pid);
}

/* Tell the source the restore worked, with our timings. */
static void send_done(struct mig_in *mi, pid_t pid)
{
	struct mos_msg d;
	if (mos_msg_init(&d, MOS_MSG_MIG_DONE))
		return;
	mos_msg_put_u32(&d, MOS_T_JOBID, mi->jobid);
	mos_msg_put_u32(&d, MOS_T_RANK, mi->rank);
	mos_msg_put_i32(&d, MOS_T_CODE, 0);
	mos_msg_put_u32(&d, MOS_T_PID, (uint32_t)pid);
	char t[96];
	uint64_t now = mos_now_ms();
	snprintf(t, sizeof(t), "receive %llu, restore %llu",
		 (unsigned long long)(mi->t_data && mi->t_restore > mi->t_data ? mi->t_restore - mi->t_data : 0),
		 (unsigned long long)(now - mi->t_restore));
	mos_msg_put_str(&d, MOS_T_TEXT, t);
	peer_send(mi->source, &d);
	mos_msg_free(&d);
}

/* The restored copy is ours for good: it becomes a process of this node. */
static void adopt(struct mig_in *mi, pid_t pid, bool tell_source)
{
	struct proc *p = calloc(1, sizeof(*p));
	if (!p) { /* the source keeps its copy if it can still be told */
		kill(pid, SIGKILL);
		if (tell_source)
			mig_send_to(mi->source, MOS_MSG_MIG_DONE, mi->jobid, mi->rank, -ENOMEM, "target out of memory");
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
	if (tell_source)
		send_done(mi, pid);
	pr_info("job %u rank %u restored here: pid %d (migration %u%s)", p->jobid, p->rank, pid, p->migrations,
		mi->lazy_pid > 0 ? ", memory follows on demand" : "");
	if (mi->lazy_pid > 0) {
		struct lazy_tail *t = calloc(1, sizeof(*t));
		if (t) {
			*t = (struct lazy_tail){ p->jobid, p->rank, pid, mos_now_ms(), "" };
			snprintf(t->dir, sizeof(t->dir), "%s", mi->dir);
			criu_retarget(mi->lazy_pid, lazy_tail_done, t);
			p->pages_pending = true;
			p->pages_from = mi->source;
			mi->lazy_pid = 0;
			mi->dir[0] = 0;
		}
	}
	in_free(mi);
	for (unsigned i = 0; i < 64; i++) /* ended before we knew its pid? */
		if (reaped_ring[i].pid == pid) {
			reaped_ring[i].pid = 0;
			proc_on_reaped(p, reaped_ring[i].ws);
			break;
		}
}

void mig_in_decided(uint32_t jobid, uint32_t rank, uint64_t attempt, bool commit)
{
	struct mig_in *mi = find_in(jobid, rank);
	if (!mi || mi->state != MIG_HANDOVER || mi->move_id != attempt || mi->adopting)
		return;
	pid_t pid = mi->pid;
	if (!commit) {
		pr_warn("job %u rank %u: the home decided against the hand-over: the restored copy goes", jobid, rank);
		kill(pid, SIGKILL); /* the pod's init: its whole PID namespace goes */
		in_free(mi);
		return;
	}
	if (fault_injected("mig_adopt_slow")) { /* the source lets go, we take it 3 s later */
		struct timeval tv = { 3, 0 };
		mi->adopting = true;
		evtimer_add(mi->timer, &tv);
		return;
	}
	mig_resume_tree(pid); /* first: the freeze ends here; its output waits in the pipes */
	adopt(mi, pid, false);
}

void mig_in_put_rows(struct mos_msg *rep)
{
	for (struct mig_in *mi = incoming; mi; mi = mi->next)
		if (mi->state == MIG_HANDOVER)
			ps_put_row(rep, mi->jobid, mi->rank, mi->uid, mi->home, mi->pid, "arriving", 0, 0,
				   mi->migrations + 1, mi->cmd);
}

/* Lost touch with the source while our copy waits: ask the home, again
 * until it answers. */
static void ask_home(struct mig_in *mi)
{
	struct timeval tv = { 1, 0 };
	evtimer_add(mi->timer, &tv); /* before asking: the answer may free mi */
	mig_ask_home(mi->home, MIG_ASK_QUERY, mi->jobid, mi->rank, mi->move_id, -1);
}

static void start_restore(struct mig_in *mi)
{
	int fds[4][2], rc;
	const char *specs[4] = { mi->specs[0], mi->specs[1], mi->specs[2], mi->specs[3] };
	if ((rc = proc_make_pipes(fds))) {
		mig_send_to(mi->source, MOS_MSG_MIG_DONE, mi->jobid, mi->rank, rc, "cannot make pipes");
		in_free(mi);
		return;
	}
	memcpy(mi->fds, fds, sizeof(fds));
	/* the process's ends: stdin read end; stdout, stderr, status write ends */
	int child[4] = { fds[0][0], fds[1][1], fds[2][1], fds[3][1] };
	mi->state = MIG_RESTORE;
	mi->t_restore = mos_now_ms();
	pid_t cp = criu_restore(mi->dir, specs, child, 4,
				(mi->lazy ? CRIU_RESTORE_LAZY : 0) | (mi->serve ? CRIU_RESTORE_STREAM : 0) |
					(mi->handover ? CRIU_RESTORE_STOPPED : 0),
				restored, mi);
	if (cp < 0) {
		mig_send_to(mi->source, MOS_MSG_MIG_DONE, mi->jobid, mi->rank, (int)cp, "cannot run criu");
		in_free(mi);
	}
}

static int serve_images(struct mig_in *mi, char **files, bool damage);

static void lazy_ended(void *arg, int ws)
{
	struct mig_in *mi = arg;
	mi->lazy_pid = 0;
	mi->lazy_ws = ws;
	if (mi->full && mi->state == MIG_HANDOVER) { /* a direct move: all pages in, or the move fails */
		if (ws == 0)
			handover_ready(mi);
		else
			pages_failed(mi);
		return;
	}
	if (mi->state == MIG_RESTORE && mi->early && mi->files) { /* never got ready: the held restore fails */
		stop_serving(mi);
		return;
	}
	if (mi->state >= MIG_RESTORE) /* restore under way or done: its own end decides */
		return;
	char why[300];
	criu_log_tail(mi->dir, "lazy.log", why, sizeof(why));
	mig_send_to(mi->source, MOS_MSG_MIG_DONE, mi->jobid, mi->rank, -EIO, why);
	in_free(mi);
}

static void on_lazy_ready(evutil_socket_t fd, short what, void *arg)
{
	struct mig_in *mi = arg;
	char c;
	event_del(mi->lazy_ev);
	if (read(fd, &c, 1) != 1)
		return; /* the daemon died: lazy_ended says why */
	if (!mi->early) {
		start_restore(mi);
		return;
	}
	char **files = mi->files;
	mi->files = NULL;
	mi->t_restore = mos_now_ms(); /* what follows is the restore proper */
	int rc = files && files[0] ? serve_images(mi, files, mi->damage) : -EPROTO;
	mos_strv_free(files);
	if (rc)
		stop_serving(mi);
}

/* Post-copy: our lazy-pages daemon first, the restore once it is ready. */
/* EARLY: at PREPARE, the daemon waiting (CRIU patch 0003) for a byte on
 * go_wr that COMMIT sends once the images it reads are all here. */
static void start_lazy(struct mig_in *mi, bool early)
{
	int sp[2], go[2] = { -1, -1 };
	if (mi->ps_fd < 0 || pipe2(sp, O_CLOEXEC) < 0) {
		mig_send_to(mi->source, MOS_MSG_MIG_DONE, mi->jobid, mi->rank, -EINVAL, "no page link to the source");
		in_free(mi);
		return;
	}
	if (early && pipe2(go, O_CLOEXEC) < 0) {
		close(sp[0]);
		close(sp[1]);
		return; /* it starts at COMMIT */
	}
	struct criu_lazy lz = { mi->ps_fd, sp[1], go[0] };
	mi->lazy_rd = sp[0];
	mi->lazy_ev = event_new(mosd.base, sp[0], EV_READ, on_lazy_ready, mi);
	if (mi->lazy_ev)
		event_add(mi->lazy_ev, NULL);
	pid_t lp = criu_lazy_pages(mi->dir, &lz, lazy_ended, mi);
	close(sp[1]);
	close(mi->ps_fd); /* criu's now */
	mi->ps_fd = -1;
	if (early) {
		close(go[0]);
		mi->go_wr = go[1];
	}
	if (lp < 0) {
		mig_send_to(mi->source, MOS_MSG_MIG_DONE, mi->jobid, mi->rank, (int)lp, "cannot run criu lazy-pages");
		in_free(mi);
		return;
	}
	mi->lazy_pid = lp;
}

/* The source sent the list of images with their final sizes: criu restores
 * from them while the rest of their bytes are still on the way. */
static int serve_images(struct mig_in *mi, char **files, bool damage)
{
	size_t n = 0, k = 0;
	while (files[n])
		n++;
	char **names = calloc(n + 1, sizeof(char *));
	uint64_t *sizes = calloc(n + 1, sizeof(uint64_t));
	int rc = names && sizes ? 0 : -ENOMEM;
	for (size_t i = 0; !rc && i < n; i++) {
		const char *name;
		if ((rc = imgstream_parse_manifest(files[i], &sizes[k], &name)))
			break;
		if (!(damage && !strcmp(name, "pstree.img"))) /* the fault: criu finds no process tree */
			names[k++] = (char *)name;
	}
	if (!rc && !mi->serve && !(mi->serve = imgserve_start(mi->dir)))
		rc = -errno;
	if (!rc)
		rc = imgserve_manifest(mi->serve, names, sizes, k);
	free(names);
	free(sizes);
	return rc;
}

void mig_on_commit(struct mos_msg *m, int mig_sender)
{
	struct mig_in *mi = msg_in(m);
	if (!mi || !(mi->state == MIG_SEND || (mi->state == MIG_RESTORE && mi->early)) || mi->source != mig_sender)
		return;
	char **specs = mos_msg_get_strv(m, MOS_T_ARGV);
	const struct mos_field *in = mos_msg_get(m, MOS_T_DATA);
	uint32_t flags = 0;
	mos_msg_get_u64(m, MOS_T_SEQ, &mi->io_seq);
	mos_msg_get_u32(m, MOS_T_FLAGS, &flags);
	mi->stdin_closed = flags & MIG_COMMIT_STDIN_CLOSED;
	if (in && in->len && (mi->stdin_buf = malloc(in->len))) {
		memcpy(mi->stdin_buf + mi->stdin_len, in->data, in->len);
		mi->stdin_len = in->len;
	}
	if (fault_injected("mig_target_crash"))
		mig_crash_now(-1, 0, NULL);
	bool damage = fault_injected("mig_restore_fail");
	if (damage) {
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
	for (size_t i = 0; i < 4 && i < n && !mi->early; i++)
		snprintf(mi->specs[i], sizeof(mi->specs[i]), "%s", specs[i]);
	mos_strv_free(specs);
	if (mi->abort || n != 4) {
		if (mi->early) { /* criu is running: it fails without its images */
			stop_serving(mi);
			return;
		}
		mig_send_to(mi->source, MOS_MSG_MIG_DONE, mi->jobid, mi->rank, -EIO, "bad hand-over");
		in_free(mi);
		return;
	}
	mi->lazy = flags & MIG_COMMIT_LAZY;
	mi->full = mi->lazy && (flags & MIG_COMMIT_FULL);
	char **files = mos_msg_get_strv(m, MOS_T_NAME);
	if (mi->lazy) {
		mos_strv_free(mi->files);
		mi->files = files; /* for the early restore, once the daemon is ready */
		mi->damage = damage;
		if (mi->go_wr >= 0) { /* our daemon waits for its images: here they are */
			if (write(mi->go_wr, "g", 1) != 1)
				pr_warn("incoming job %u rank %u: cannot wake the lazy-pages daemon", mi->jobid, mi->rank);
			close(mi->go_wr);
			mi->go_wr = -1;
		} else if (mi->lazy_pid <= 0) {
			start_lazy(mi, false);
		}
		return;
	}
	int rc = files && files[0] ? serve_images(mi, files, damage) : 0;
	mos_strv_free(files);
	if (rc && mi->early) {
		pr_warn("incoming job %u rank %u: cannot serve the images to criu: %s", mi->jobid, mi->rank,
			strerror(-rc));
		stop_serving(mi);
	} else if (rc) {
		mig_send_to(mi->source, MOS_MSG_MIG_DONE, mi->jobid, mi->rank, rc, "cannot serve the images to criu");
		in_free(mi);
	} else if (!mi->early) {
		start_restore(mi);
	} else {
		mi->t_restore = mos_now_ms(); /* what follows is the restore proper */
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
	if (mi->state == MIG_HANDOVER)
		ask_home(mi); /* the home has decided: which way, it says */
	else if (mi->state == MIG_RESTORE)
		stop_serving(mi);
	else
		in_free(mi);
}

void mig_in_peer_lost(int idx)
{
	for (struct mig_in *mi = incoming, *next; mi; mi = next) {
		next = mi->next;
		if (mi->state == MIG_HANDOVER && !strcmp(mosd.conf->nodes[idx].name, mi->home)) {
			kill(mi->pid, SIGKILL); /* the job is gone with its home */
			in_free(mi);
			continue;
		}
		if (mi->source != idx)
			continue;
		if (mi->state == MIG_HANDOVER)
			ask_home(mi);
		else if (mi->state == MIG_RESTORE)
			stop_serving(mi); /* the source resumes its copy: ours must not run */
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
