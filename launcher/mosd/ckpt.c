/* ckpt.c - job checkpoints and restarts (see ckpt.h). The home orders each
 * rank's node to dump with the process left running; the images go to the
 * destination (a full node) beside the rank's node's report, so the home
 * writes the manifest only once every rank's images are on disk. A restart
 * is a job whose ranks are not spawned but restored, through the same target
 * path as a migration (mig_in.c), from the checkpoint's directory. */
#include "ckpt.h"
#include "criu.h"
#include "imgstream.h"
#include "log.h"
#include "mig_int.h"
#include "util.h"
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

struct ckpt_req { /* at the home */
	struct ckpt_req *next;
	uint32_t jobid, left;
	uint64_t seq, bytes, t0;
	char requester[MOS_NAME_MAX];
	char dir[PATH_MAX];
	int dest;
	int failed;
	char why[256];
	struct mos_msg meta;
};

struct ckpt_out { /* at a rank's node, while it dumps */
	struct ckpt_out *next;
	uint32_t jobid, rank;
	int dest;
	uint64_t io_seq;
	char dir[PATH_MAX], img[PATH_MAX];
	char pipes[4][32];
	struct imgstream *xfer; /* the images on their way to DEST */
};

struct import { /* at the home of a restarted job */
	struct import *next;
	uint32_t jobid, rank;
	int target;
	char dir[PATH_MAX];
	char pipes[4][32];
	uint64_t io_seq;
	struct imgstream *xfer; /* the images on their way to TARGET */
};

static struct ckpt_req *reqs;
static struct ckpt_out *outs;
static struct import *imports;

static bool safe_dir(const char *dir)
{
	return dir[0] == '/' && !strstr(dir, "/../") && !strstr(dir, "/./") && strlen(dir) < PATH_MAX - 64;
}

struct ckpt_wait { /* where a PMIx tool asked a checkpoint: SEQ -> callback */
	struct ckpt_wait *next;
	uint64_t seq;	/* high bit set: never one of local.c's client SEQs */
	void (*done)(void *arg, int code, const char *text);
	void *arg;
};
static struct ckpt_wait *waits;
static uint64_t wait_seq;

int ckpt_request(uint32_t jobid, uid_t uid, const char *dir, void (*done)(void *, int, const char *), void *arg)
{
	struct mos_msg r; /* a JOBID of no node: peer_send says -EINVAL */
	struct ckpt_wait *w = calloc(1, sizeof(*w));
	if (!w || mos_msg_init(&r, MOS_MSG_CKPT))
		return free(w), -ENOMEM;
	*w = (struct ckpt_wait){ waits, (1ULL << 63) | ++wait_seq, done, arg };
	waits = w;
	mos_msg_put_u32(&r, MOS_T_JOBID, jobid);
	mos_msg_put_u32(&r, MOS_T_KIND, 0);
	mos_msg_put_u32(&r, MOS_T_UID, (uint32_t)uid);
	mos_msg_put_u64(&r, MOS_T_SEQ, w->seq);
	mos_msg_put_str(&r, MOS_T_NAME, mosd.self->name);
	if (dir && *dir)
		mos_msg_put_str(&r, MOS_T_TEXT, dir);
	int rc = peer_send((int)mos_jobid_home(jobid), &r); /* to ourselves: answered inside */
	mos_msg_free(&r);
	if (rc) /* not sent, so not answered: W is still first */
		waits = w->next, free(w);
	return rc;
}

bool ckpt_on_reply(struct mos_msg *m)
{
	uint64_t seq = 0;
	mos_msg_get_u64(m, MOS_T_SEQ, &seq);
	for (struct ckpt_wait **pp = &waits; (seq >> 63) && *pp; pp = &(*pp)->next) {
		struct ckpt_wait *w = *pp;
		if (w->seq != seq)
			continue;
		*pp = w->next;
		int32_t code = 0;
		mos_msg_get_i32(m, MOS_T_CODE, &code);
		char *text = mos_msg_get_str(m, MOS_T_TEXT);
		w->done(w->arg, code, text);
		free(text);
		free(w);
		break;
	}
	return seq >> 63;
}

/* --- the home: ordering a checkpoint ---------------------------------------- */

static int ckpt_check(struct job *j, uint32_t uid, char *err, size_t len)
{
	if (!j)
		return snprintf(err, len, "no such job at its home node"), -ESRCH;
	if (uid != 0 && uid != j->uid)
		return snprintf(err, len, "permission denied: job %u belongs to another user", j->id), -EPERM;
	if (j->mpi_rank_of)
		return snprintf(err, len, "job %u has MPI ranks: they cannot be checkpointed yet", j->id), -ENOTSUP;
	for (uint32_t r = 0; r < j->nprocs; r++)
		if (j->ranks[r].state != RANK_RUNNING)
			return snprintf(err, len, "job %u rank %u is %s", j->id, r,
					j->ranks[r].state == RANK_EXITED ? "finished" : "not running now"), -EBUSY;
	return 0;
}

static int dest_node(void)
{
	if (mosd.self->role == MOS_ROLE_FULL)
		return (int)mosd.self->index;
	for (size_t i = 0; i < mosd.conf->n_nodes; i++)
		if (mosd.conf->nodes[i].role == MOS_ROLE_FULL && !peer_known_dead((int)i))
			return (int)i;
	return -1;
}

void ckpt_home_request(struct mos_msg *m)
{
	uint32_t jobid = 0, uid = UINT32_MAX;
	uint64_t seq = 0;
	char err[256];
	mos_msg_get_u32(m, MOS_T_JOBID, &jobid);
	mos_msg_get_u32(m, MOS_T_UID, &uid);
	mos_msg_get_u64(m, MOS_T_SEQ, &seq);
	char *requester = mos_msg_get_str(m, MOS_T_NAME), *dir = mos_msg_get_str(m, MOS_T_TEXT);
	struct job *j = job_find(jobid);
	int rc = ckpt_check(j, uid, err, sizeof(err)), dest = dest_node();
	struct ckpt_req *q = NULL;
	if (!rc && dest < 0)
		rc = -ENODEV, snprintf(err, sizeof(err), "no full node to write the checkpoint on");
	if (!rc && dir && *dir && !safe_dir(dir))
		rc = -EINVAL, snprintf(err, sizeof(err), "checkpoint directory '%s' must be an absolute path", dir);
	if (!rc && (!(q = calloc(1, sizeof(*q))) || mos_msg_init(&q->meta, MOS_MSG_CKPT_META)))
		rc = -ENOMEM, snprintf(err, sizeof(err), "out of memory");
	if (rc) {
		mig_reply_to(requester ? requester : "", seq, rc, err);
		free(q);
		goto out;
	}
	q->jobid = jobid;
	q->seq = seq;
	q->dest = dest;
	q->left = j->nprocs;
	q->t0 = mos_now_ms();
	snprintf(q->requester, sizeof(q->requester), "%s", requester ? requester : "");
	if (dir && *dir)
		snprintf(q->dir, sizeof(q->dir), "%s", dir);
	else
		snprintf(q->dir, sizeof(q->dir), "%s/checkpoints/job%u-%ld", mosd.conf->state_dir, jobid, (long)time(NULL));
	mos_msg_put(&q->meta, MOS_T_DATA, j->submit.buf, j->submit.len);
	mos_msg_put_u32(&q->meta, MOS_T_UID, j->uid);
	mos_msg_put_u32(&q->meta, MOS_T_GID, j->gid);
	q->next = reqs;
	reqs = q;
	pr_info("checkpoint of job %u into %s on %s", jobid, q->dir, mosd.conf->nodes[dest].name);
	for (uint32_t r = 0; r < j->nprocs; r++) {
		struct mos_msg o;
		if (mos_msg_init(&o, MOS_MSG_CKPT))
			continue;
		mos_msg_put_u32(&o, MOS_T_JOBID, jobid);
		mos_msg_put_u32(&o, MOS_T_KIND, 1);
		mos_msg_put_u32(&o, MOS_T_RANK, r);
		mos_msg_put_u32(&o, MOS_T_UID, j->uid);
		mos_msg_put_str(&o, MOS_T_NODE, mosd.conf->nodes[dest].name);
		mos_msg_put_str(&o, MOS_T_TEXT, q->dir);
		peer_send(j->ranks[r].node, &o);
		mos_msg_free(&o);
	}
out:
	free(requester);
	free(dir);
}

static struct ckpt_req *find_req(uint32_t jobid)
{
	for (struct ckpt_req *q = reqs; q; q = q->next)
		if (q->jobid == jobid)
			return q;
	return NULL;
}

static void req_free(struct ckpt_req *q)
{
	for (struct ckpt_req **pp = &reqs; *pp; pp = &(*pp)->next)
		if (*pp == q) {
			*pp = q->next;
			break;
		}
	mos_msg_free(&q->meta);
	free(q);
}

/* The manifest goes to the destination once every rank is on disk there;
 * a failed checkpoint removes what was written. */
static void send_manifest(struct ckpt_req *q)
{
	struct mos_msg o;
	if (mos_msg_init(&o, MOS_MSG_CKPT))
		return;
	mos_msg_put_u32(&o, MOS_T_JOBID, q->jobid);
	mos_msg_put_u32(&o, MOS_T_KIND, 2);
	mos_msg_put_str(&o, MOS_T_TEXT, q->dir);
	mos_msg_put_i32(&o, MOS_T_CODE, q->failed);
	if (!q->failed) {
		mos_msg_finish(&q->meta, 0);
		mos_msg_put(&o, MOS_T_DATA, q->meta.buf, q->meta.len);
	}
	peer_send(q->dest, &o);
	mos_msg_free(&o);
}

static void home_rank_done(struct mos_msg *m)
{
	uint32_t jobid = 0, rank = 0, kind = 0;
	int32_t code = 0;
	uint64_t seq = 0, size = 0;
	mos_msg_get_u32(m, MOS_T_JOBID, &jobid);
	mos_msg_get_u32(m, MOS_T_RANK, &rank);
	mos_msg_get_u32(m, MOS_T_KIND, &kind);
	mos_msg_get_i32(m, MOS_T_CODE, &code);
	mos_msg_get_u64(m, MOS_T_SEQ, &seq);
	mos_msg_get_u64(m, MOS_T_SIZE, &size);
	struct ckpt_req *q = find_req(jobid);
	char *text = mos_msg_get_str(m, MOS_T_TEXT);
	if (!q)
		goto out;
	if (kind == 2) { /* the manifest is written (or the directory removed) */
		char msg[PATH_MAX + 200];
		if (!q->failed && !code)
			snprintf(msg, sizeof(msg), "checkpoint of job %u: %s on %s (%.1f MiB, %llu ms)", jobid, q->dir,
				 mosd.conf->nodes[q->dest].name, (double)q->bytes / 1048576.0,
				 (unsigned long long)(mos_now_ms() - q->t0));
		else
			snprintf(msg, sizeof(msg), "checkpoint of job %u failed: %s", jobid,
				 q->failed ? q->why : text ? text : strerror(-code));
		mig_reply_to(q->requester, q->seq, q->failed ? q->failed : code, msg);
		req_free(q);
		goto out;
	}
	if (code && !q->failed) {
		q->failed = code;
		snprintf(q->why, sizeof(q->why), "rank %u: %s", rank, text ? text : strerror(-code));
	} else if (!code) {
		mos_msg_put_u32(&q->meta, MOS_T_RANK, rank);
		for (size_t i = 0; i < m->n_fields; i++)
			if (m->fields[i].tag == MOS_T_ARGV)
				mos_msg_put(&q->meta, MOS_T_ARGV, m->fields[i].data, m->fields[i].len);
		mos_msg_put_u64(&q->meta, MOS_T_SEQ, seq);
		q->bytes += size;
	}
	if (--q->left == 0)
		send_manifest(q);
out:
	free(text);
}

/* --- a rank's node: dumping one rank ---------------------------------------- */

static void out_report(struct ckpt_out *o, int code, const char *text, uint64_t size)
{
	struct mos_msg d;
	if (mos_msg_init(&d, MOS_MSG_CKPT_DONE))
		return;
	mos_msg_put_u32(&d, MOS_T_JOBID, o->jobid);
	mos_msg_put_u32(&d, MOS_T_RANK, o->rank);
	mos_msg_put_i32(&d, MOS_T_CODE, code);
	mos_msg_put_u32(&d, MOS_T_KIND, 1);
	mos_msg_put_str(&d, MOS_T_NAME, o->dir);
	if (text)
		mos_msg_put_str(&d, MOS_T_TEXT, text);
	for (int i = 0; i < 4 && !code; i++)
		mos_msg_put_str(&d, MOS_T_ARGV, o->pipes[i]);
	mos_msg_put_u64(&d, MOS_T_SEQ, o->io_seq);
	mos_msg_put_u64(&d, MOS_T_SIZE, size);
	peer_send(o->dest, &d); /* after the images, on the same link */
	mos_msg_free(&d);
}

static void out_free(struct ckpt_out *o)
{
	for (struct ckpt_out **pp = &outs; *pp; pp = &(*pp)->next)
		if (*pp == o) {
			*pp = o->next;
			break;
		}
	imgstream_free(o->xfer);
	if (o->img[0])
		criu_rm_dir(o->img);
	free(o);
}

/* The images are queued on the link (RC 0) or the stream broke off. */
static void ckpt_sent(void *arg, int rc)
{
	struct ckpt_out *o = arg;
	out_report(o, rc, rc ? "cannot send the images" : NULL, rc ? 0 : imgstream_bytes(o->xfer));
	out_free(o);
}

/* The dump is done: its images go to the destination, a few MiB at a time
 * (checkpoint frames carry the destination directory as TEXT). */
static void dumped(void *arg, int ws)
{
	struct ckpt_out *o = arg;
	char why[300];
	if (ws) {
		criu_log_tail(o->img, "dump.log", why, sizeof(why));
		out_report(o, -EIO, why, 0);
		out_free(o);
		return;
	}
	struct imgstream_args a = { .dir = o->img, .peer = o->dest, .type = MOS_MSG_CKPT_DATA, .jobid = o->jobid,
				    .rank = o->rank, .text = o->dir, .cb = ckpt_sent, .arg = o };
	if (!(o->xfer = imgstream_start(&a))) {
		out_report(o, -errno, "cannot send the images", 0);
		out_free(o);
	}
}

static void rank_order(struct mos_msg *m)
{
	uint32_t jobid = 0, rank = 0;
	mos_msg_get_u32(m, MOS_T_JOBID, &jobid);
	mos_msg_get_u32(m, MOS_T_RANK, &rank);
	char *node = mos_msg_get_str(m, MOS_T_NODE), *dir = mos_msg_get_str(m, MOS_T_TEXT);
	struct ckpt_out *o = calloc(1, sizeof(*o));
	struct proc *p = proc_find(jobid, rank);
	if (!o || !node || !dir || peer_index(node) < 0) {
		free(o);
		goto out;
	}
	o->jobid = jobid;
	o->rank = rank;
	o->dest = peer_index(node);
	snprintf(o->dir, sizeof(o->dir), "%s", dir);
	o->next = outs;
	outs = o;
	if (!p || p->mig || p->reaped) {
		out_report(o, -EBUSY, p ? "the process is moving or ending" : "the process is not here", 0);
		out_free(o);
		goto out;
	}
	if (p->pages_pending) { /* a dump now would miss the pages still away */
		char why[160];
		snprintf(why, sizeof(why), "its memory still comes from node %s after a post-copy move: "
			 "try again when it is all there", mosd.conf->nodes[p->pages_from].name);
		out_report(o, -EBUSY, why, 0);
		out_free(o);
		goto out;
	}
	o->io_seq = p->io_seq;
	for (int fd = 0; fd < 4; fd++) {
		char path[64];
		snprintf(path, sizeof(path), "/proc/%d/fd/%d", (int)p->pid, fd);
		ssize_t n = readlink(path, o->pipes[fd], sizeof(o->pipes[fd]) - 1);
		o->pipes[fd][n > 0 ? n : 0] = 0;
	}
	int rc = criu_images_dir(mosd.self->name, "ckpt", jobid, rank, o->img, sizeof(o->img));
	pid_t cp = rc ? rc : criu_checkpoint(p->pid, o->img, dumped, o);
	if (cp < 0) {
		out_report(o, (int)cp, "cannot run criu", 0);
		if (rc)
			o->img[0] = 0;
		out_free(o);
	}
out:
	free(node);
	free(dir);
}

/* --- the destination: writing to disk ---------------------------------------- */

static int mkdir_p(const char *dir, mode_t mode)
{
	char tmp[PATH_MAX];
	snprintf(tmp, sizeof(tmp), "%s", dir);
	for (char *p = tmp + 1; *p; p++)
		if (*p == '/') {
			*p = 0;
			if (mkdir(tmp, 0755) < 0 && errno != EEXIST)
				return -errno;
			*p = '/';
		}
	return mkdir(tmp, mode) < 0 && errno != EEXIST ? -errno : 0;
}

void ckpt_on_data(struct mos_msg *m, int from)
{
	uint32_t jobid = 0, rank = 0;
	mos_msg_get_u32(m, MOS_T_JOBID, &jobid);
	mos_msg_get_u32(m, MOS_T_RANK, &rank);
	char *dir = mos_msg_get_str(m, MOS_T_TEXT), *name = mos_msg_get_str(m, MOS_T_NAME);
	const struct mos_field *d = mos_msg_get(m, MOS_T_DATA);
	char path[PATH_MAX];
	if (!dir || !name || !safe_dir(dir) || strchr(name, '/') || name[0] == '.') {
		pr_warn("checkpoint data of job %u with a bad path, dropped", jobid);
		goto out;
	}
	snprintf(path, sizeof(path), "%s/rank.%u", dir, rank);
	if (mkdir_p(path, 0700)) {
		pr_err("checkpoint of job %u: cannot make %s: %s", jobid, path, strerror(errno));
		goto out;
	}
	chmod(dir, 0700);
	snprintf(path, sizeof(path), "%s/rank.%u/%s", dir, rank, name);
	int fd = open(path, O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0600);
	if (fd < 0 || (d->len && write(fd, d->data, d->len) != (ssize_t)d->len))
		pr_err("checkpoint of job %u: cannot write %s: %s", jobid, path, strerror(errno));
	if (fd >= 0)
		close(fd);
out:
	free(dir);
	free(name);
}

static void rm_tree(const char *dir)
{
	DIR *d = opendir(dir);
	struct dirent *e;
	while (d && (e = readdir(d))) {
		if (!strcmp(e->d_name, ".") || !strcmp(e->d_name, ".."))
			continue;
		char path[PATH_MAX];
		snprintf(path, sizeof(path), "%s/%s", dir, e->d_name);
		if (e->d_type == DT_DIR)
			criu_rm_dir(path);
		else
			unlink(path);
	}
	if (d)
		closedir(d);
	rmdir(dir);
}

static void write_manifest(struct mos_msg *m, int from)
{
	uint32_t jobid = 0;
	int32_t code = 0;
	mos_msg_get_u32(m, MOS_T_JOBID, &jobid);
	mos_msg_get_i32(m, MOS_T_CODE, &code);
	char *dir = mos_msg_get_str(m, MOS_T_TEXT);
	const struct mos_field *d = mos_msg_get(m, MOS_T_DATA);
	char path[PATH_MAX], err[200] = "";
	int rc = 0;
	if (!dir || !safe_dir(dir)) {
		rc = -EINVAL;
	} else if (code || !d) {
		rm_tree(dir);
	} else {
		snprintf(path, sizeof(path), "%s/job.meta", dir);
		int fd = mkdir_p(dir, 0700) ? -1 : open(path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
		if (fd < 0 || write(fd, d->data, d->len) != (ssize_t)d->len || fsync(fd)) {
			rc = -errno;
			snprintf(err, sizeof(err), "cannot write %s: %s", path, strerror(errno));
		}
		if (fd >= 0)
			close(fd);
	}
	struct mos_msg r;
	if (!mos_msg_init(&r, MOS_MSG_CKPT_DONE)) {
		mos_msg_put_u32(&r, MOS_T_JOBID, jobid);
		mos_msg_put_i32(&r, MOS_T_CODE, rc);
		mos_msg_put_u32(&r, MOS_T_KIND, 2);
		if (err[0])
			mos_msg_put_str(&r, MOS_T_TEXT, err);
		peer_send(from, &r);
		mos_msg_free(&r);
	}
	free(dir);
}

void ckpt_on_msg(struct mos_msg *m, int from)
{
	uint32_t kind = 0;
	mos_msg_get_u32(m, MOS_T_KIND, &kind);
	if (kind == 0)
		ckpt_home_request(m);
	else if (kind == 1)
		rank_order(m);
	else if (kind == 2)
		write_manifest(m, from);
}

void ckpt_on_done(struct mos_msg *m, int from)
{
	uint32_t kind = 0, jobid = 0;
	mos_msg_get_u32(m, MOS_T_KIND, &kind);
	mos_msg_get_u32(m, MOS_T_JOBID, &jobid);
	if (!find_req(jobid)) {
		/* at the destination: the rank's images are all here; tell the home */
		if (kind == 1 && mos_jobid_home(jobid) != mosd.self->index)
			peer_send((int)mos_jobid_home(jobid), m);
		return;
	}
	home_rank_done(m);
}

/* --- restart: a job whose ranks are restored, not spawned -------------------- */

static int read_manifest(const char *dir, uid_t uid, struct mos_msg *meta, char *err, size_t len)
{
	char path[PATH_MAX];
	struct stat st;
	snprintf(path, sizeof(path), "%s/job.meta", dir);
	int fd = open(path, O_RDONLY | O_CLOEXEC | O_NOFOLLOW);
	if (fd < 0)
		return snprintf(err, len, "%s: not a checkpoint: %s", path, strerror(errno)), -ENOENT;
	if (fstat(fd, &st) || st.st_uid != 0 || (st.st_mode & 022) || st.st_size > (64 << 20)) {
		close(fd);
		return snprintf(err, len, "%s: not written by mosd (owner, mode or size)", path), -EPERM;
	}
	uint8_t *buf = malloc((size_t)st.st_size + 1);
	ssize_t n = buf ? read(fd, buf, (size_t)st.st_size) : -1;
	close(fd);
	if (n != st.st_size) {
		free(buf);
		return snprintf(err, len, "%s: cannot read", path), -EIO;
	}
	char derr[200];
	int rc = mos_msg_decode(meta, buf, (size_t)n, derr, sizeof(derr));
	if (rc || meta->type != MOS_MSG_CKPT_META) {
		if (!rc)
			mos_msg_free(meta);
		return snprintf(err, len, "%s: damaged: %s", path, rc ? derr : "not a manifest"), -EINVAL;
	}
	uint32_t owner = UINT32_MAX;
	mos_msg_get_u32(meta, MOS_T_UID, &owner);
	if (uid != 0 && uid != owner) {
		mos_msg_free(meta);
		return snprintf(err, len, "permission denied: the checkpoint belongs to another user"), -EPERM;
	}
	return 0;
}

void ckpt_restart(struct mos_conn *client, struct mos_msg *m, uid_t uid, gid_t gid, pid_t pid)
{
	char err[PATH_MAX + 100];
	char *dir = mos_msg_get_str(m, MOS_T_TEXT);
	struct mos_msg meta, submit;
	int rc = dir && safe_dir(dir) ? read_manifest(dir, uid, &meta, err, sizeof(err)) : -EINVAL;
	if (rc == -EINVAL && (!dir || !safe_dir(dir)))
		snprintf(err, sizeof(err), "the checkpoint directory must be an absolute path");
	if (!rc) {
		const struct mos_field *f = mos_msg_get(&meta, MOS_T_DATA);
		uint8_t *frame = malloc(f->len);
		char derr[200];
		if (!frame || (memcpy(frame, f->data, f->len),
			       mos_msg_decode(&submit, frame, f->len, derr, sizeof(derr)))) {
			rc = -EINVAL;
			snprintf(err, sizeof(err), "%s/job.meta: damaged job description", dir);
		} else {
			uint32_t owner = uid, ogid = gid;
			mos_msg_get_u32(&meta, MOS_T_UID, &owner);
			mos_msg_get_u32(&meta, MOS_T_GID, &ogid);
			job_restart(client, &submit, &meta, dir, owner, ogid, pid);
			mos_msg_free(&submit);
		}
		mos_msg_free(&meta);
	}
	if (rc) {
		mos_conn_send_error(client, rc, "%s", err);
		mos_conn_close_after_flush(client);
	}
	free(dir);
}

static struct import *find_import(struct mos_msg *m)
{
	uint32_t jobid = 0, rank = 0;
	mos_msg_get_u32(m, MOS_T_JOBID, &jobid);
	mos_msg_get_u32(m, MOS_T_RANK, &rank);
	for (struct import *i = imports; i; i = i->next)
		if (i->jobid == jobid && i->rank == rank)
			return i;
	return NULL;
}

static void import_free(struct import *im)
{
	for (struct import **pp = &imports; *pp; pp = &(*pp)->next)
		if (*pp == im) {
			*pp = im->next;
			break;
		}
	imgstream_free(im->xfer);
	free(im);
}

/* The import's result becomes the rank's SPAWNED, as if it had started. */
static void import_result(struct import *im, int code, uint32_t pid, const char *text)
{
	struct mos_msg s;
	if (!mos_msg_init(&s, MOS_MSG_SPAWNED)) {
		mos_msg_put_u32(&s, MOS_T_JOBID, im->jobid);
		mos_msg_put_u32(&s, MOS_T_RANK, im->rank);
		mos_msg_put_i32(&s, MOS_T_CODE, code);
		mos_msg_put_u32(&s, MOS_T_PID, pid);
		if (text)
			mos_msg_put_str(&s, MOS_T_TEXT, text);
		struct mos_msg d;
		char err[100];
		if (!mos_msg_reread(&s, &d, err, sizeof(err))) {
			job_on_spawned(&d);
			mos_msg_free(&d);
		}
		struct job *j = code ? NULL : job_find(im->jobid);
		if (j) /* CRIU does not keep the cpu affinity */
			job_bind_again(j, im->rank);
		mos_msg_free(&s);
	}
	import_free(im);
}

int ckpt_import_rank(struct job *j, uint32_t r)
{
	struct import *im = calloc(1, sizeof(*im));
	if (!im)
		return -ENOMEM;
	im->jobid = j->id;
	im->rank = r;
	im->target = j->ranks[r].node;
	snprintf(im->dir, sizeof(im->dir), "%s/rank.%u", j->restart_dir, r);
	/* this rank's pipes and output sequence from the manifest */
	bool mine = false;
	int k = 0;
	for (size_t i = 0; i < j->restart_meta.n_fields; i++) {
		const struct mos_field *f = &j->restart_meta.fields[i];
		if (f->tag == MOS_T_RANK) {
			if (mine)
				break; /* the next rank's record begins */
			mine = mos_field_u32(f) == r;
		} else if (mine && f->tag == MOS_T_ARGV && k < 4 && f->len < sizeof(im->pipes[0]))
			memcpy(im->pipes[k++], f->data, f->len);
		else if (mine && f->tag == MOS_T_SEQ)
			im->io_seq = mos_field_u64(f);
	}
	j->ranks[r].next_seq = im->io_seq;
	im->next = imports;
	imports = im;
	if (k != 4) {
		import_result(im, -EINVAL, 0, "the checkpoint has no record of this rank");
		return 0;
	}
	struct mos_msg q;
	int rc = mos_msg_init(&q, MOS_MSG_MIG_PREPARE);
	if (rc)
		return rc;
	mos_msg_put_u32(&q, MOS_T_JOBID, j->id);
	mos_msg_put_u32(&q, MOS_T_RANK, r);
	mos_msg_put_u32(&q, MOS_T_NPROCS, j->nprocs);
	mos_msg_put_u32(&q, MOS_T_UID, j->uid);
	mos_msg_put_str(&q, MOS_T_HOME, mosd.self->name);
	mos_msg_put_str(&q, MOS_T_ARGV, j->app_argv[j->rank_app[r]][0]);
	mos_msg_put_u32(&q, MOS_T_MIGRATIONS, 0);
	mos_msg_put_u64(&q, MOS_T_RSS, 0);
	mos_msg_put_u32(&q, MOS_T_FLAGS, MOS_MIG_FORCE);
	rc = peer_send(im->target, &q);
	mos_msg_free(&q);
	if (rc)
		import_result(im, rc, 0, "cannot reach the node");
	return 0;
}

static void import_sent(void *arg, int rc);

bool ckpt_import_ready(struct mos_msg *m)
{
	struct import *im = find_import(m);
	int32_t code = 0;
	if (!im)
		return false;
	mos_msg_get_i32(m, MOS_T_CODE, &code);
	if (code) {
		char *t = mos_msg_get_str(m, MOS_T_TEXT);
		import_result(im, code, 0, t);
		free(t);
		return true;
	}
	/* images travel as in a migration: MIG_DATA frames, then COMMIT */
	struct imgstream_args a = { .dir = im->dir, .peer = im->target, .type = MOS_MSG_MIG_DATA,
				    .jobid = im->jobid, .rank = im->rank, .cb = import_sent, .arg = im };
	if (!(im->xfer = imgstream_start(&a)))
		import_result(im, -errno, 0, "cannot send the checkpoint's images");
	return true;
}

/* The images are queued on the link (RC 0): COMMIT follows them. */
static void import_sent(void *arg, int rc)
{
	struct import *im = arg;
	struct mos_msg c;
	if (!rc && !(rc = mos_msg_init(&c, MOS_MSG_MIG_COMMIT))) {
		mos_msg_put_u32(&c, MOS_T_JOBID, im->jobid);
		mos_msg_put_u32(&c, MOS_T_RANK, im->rank);
		for (int i = 0; i < 4; i++)
			mos_msg_put_str(&c, MOS_T_ARGV, im->pipes[i]);
		mos_msg_put(&c, MOS_T_DATA, NULL, 0);
		mos_msg_put_u64(&c, MOS_T_SEQ, im->io_seq);
		mos_msg_put_u32(&c, MOS_T_FLAGS, im->rank == 0 ? 0 : MIG_COMMIT_STDIN_CLOSED);
		rc = peer_send(im->target, &c);
		mos_msg_free(&c);
	}
	if (rc)
		import_result(im, rc, 0, "cannot send the checkpoint's images");
}

bool ckpt_import_done(struct mos_msg *m)
{
	struct import *im = find_import(m);
	int32_t code = 0;
	uint32_t pid = 0;
	if (!im)
		return false;
	mos_msg_get_i32(m, MOS_T_CODE, &code);
	mos_msg_get_u32(m, MOS_T_PID, &pid);
	char *t = code ? mos_msg_get_str(m, MOS_T_TEXT) : NULL;
	import_result(im, code, pid, t);
	free(t);
	return true;
}

void ckpt_peer_lost(int idx)
{
	for (struct ckpt_out *o = outs; o; o = o->next)
		if (o->dest == idx)
			imgstream_fail(o->xfer, -ECONNRESET);
	for (struct import *im = imports; im; im = im->next)
		if (im->target == idx)
			imgstream_fail(im->xfer, -ECONNRESET);
}
