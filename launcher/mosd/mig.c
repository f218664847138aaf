/* mig.c - live migration (see mig.h): what is common, and the home's part:
 * checking a request, ordering the source, recording the result and
 * answering whoever asked. The source's part is mig_out.c, the target's
 * mig_in.c. */
#include "mig_int.h"
#include "criu.h"
#include "ckpt.h"
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
const char *mig_state2str(enum mig_state s)
{
	static const char *const n[] = { "prepare", "dump", "send", "restore", "hand-over", "finished" };
	return s <= MIG_FINISHED ? n[s] : "?";
}

int mig_send_to(int idx, unsigned type, uint32_t jobid, uint32_t rank, int code, const char *text)
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

void mig_reply_to(const char *requester, uint64_t seq, int code, const char *text)
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
		mig_reply_to(requester ? requester : "", seq, rc, err);
		free(requester);
		return;
	}
	struct mos_msg o;
	if (mos_msg_init(&o, MOS_MSG_MIGRATE) == 0) {
		for (size_t i = 0; i < m->n_fields; i++)
			if (m->fields[i].tag != MOS_T_KIND)
				mos_msg_put(&o, m->fields[i].tag, m->fields[i].data, m->fields[i].len);
		mos_msg_put_u32(&o, MOS_T_KIND, 1);
		/* before sending: a source that is this node answers at once */
		j->ranks[rank].state = RANK_MIGRATING;
		if ((rc = peer_send(j->ranks[rank].node, &o)) != 0)
			j->ranks[rank].state = RANK_RUNNING;
		mos_msg_free(&o);
	}
	if (rc)
		mig_reply_to(requester ? requester : "", seq, rc, "cannot reach the node the process runs on");
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
		mig_reply_to(requester, seq, code, text);
	free(node);
	free(text);
	free(requester);
}
void mig_criu_noop(void *arg, int ws) { }

/* The home's word on each hand-over, kept a while for late questions. */
struct decision {
	struct decision *next;
	uint32_t jobid, rank;
	uint64_t attempt;
	int target;
	bool commit;
	uint64_t at_ms;
};
static struct decision *decisions;
#define DECISION_KEEP_MS (30u * 60 * 1000)

static struct decision *decide(uint32_t jobid, uint32_t rank, uint64_t attempt, int target, bool commit)
{
	uint64_t now = mos_now_ms();
	for (struct decision **pp = &decisions; *pp;) { /* forget old ones */
		struct decision *d = *pp;
		if (now - d->at_ms > DECISION_KEEP_MS) {
			*pp = d->next;
			free(d);
		} else {
			pp = &d->next;
		}
	}
	for (struct decision *d = decisions; d; d = d->next)
		if (d->jobid == jobid && d->rank == rank && d->attempt == attempt)
			return d; /* said once, said for good */
	struct decision *d = calloc(1, sizeof(*d));
	if (!d)
		return NULL;
	*d = (struct decision){ decisions, jobid, rank, attempt, target, commit, now };
	decisions = d;
	pr_info("job %u rank %u, move %016llx: the home decides %s", jobid, rank, (unsigned long long)attempt,
		commit ? "to commit (the target's copy runs)" : "to abort (the source's copy runs)");
	return d;
}

static int send_decide(int idx, unsigned kind, uint32_t jobid, uint32_t rank, uint64_t attempt, int target)
{
	struct mos_msg m;
	int rc = mos_msg_init(&m, MOS_MSG_MIG_DECIDE);
	if (rc)
		return rc;
	mos_msg_put_u32(&m, MOS_T_JOBID, jobid);
	mos_msg_put_u32(&m, MOS_T_RANK, rank);
	mos_msg_put_u32(&m, MOS_T_KIND, kind);
	mos_msg_put_u64(&m, MOS_T_SEQ, attempt);
	if (target >= 0)
		mos_msg_put_str(&m, MOS_T_NODE, mosd.conf->nodes[target].name);
	rc = peer_send(idx, &m);
	mos_msg_free(&m);
	return rc;
}

int mig_ask_home(const char *home, unsigned kind, uint32_t jobid, uint32_t rank, uint64_t attempt, int target)
{
	int idx = peer_index(home);
	return idx < 0 ? -ENOENT : send_decide(idx, kind, jobid, rank, attempt, target);
}

/* The home: commit only when the source asks for it first; an abort asked
 * for by the source, or a question from a target that lost its source
 * before any commit, aborts. The answer goes to whoever asked, and a commit
 * also to the target, whose copy waits stopped for it. */
static void home_decide(uint32_t kind, uint32_t jobid, uint32_t rank, uint64_t attempt, int target, int from)
{
	struct decision *d = decide(jobid, rank, attempt, target, kind == MIG_ASK_COMMIT);
	if (!d)
		return; /* out of memory: the askers ask again */
	unsigned answer = d->commit ? MIG_DECIDED_COMMIT : MIG_DECIDED_ABORT;
	/* the target first: what the source's answer sets off (MOVED, and the
	 * home's messages to the process's new node) must find it adopted */
	if (d->commit && d->target >= 0 && d->target != from)
		send_decide(d->target, answer, jobid, rank, attempt, d->target);
	send_decide(from, answer, jobid, rank, attempt, d->target);
	/* an abort asked for by the target: the source, which may not know yet
	 * that the link broke, resumes its copy now instead of at its time-out */
	struct job *j = job_find(jobid);
	int source = j && rank < j->nprocs ? j->ranks[rank].node : -1;
	if (!d->commit && source >= 0 && source != from && source != d->target)
		send_decide(source, answer, jobid, rank, attempt, d->target);
}

void mig_on_decide(struct mos_msg *m, int from)
{
	uint32_t jobid = 0, rank = 0, kind = 0;
	uint64_t attempt = 0;
	mos_msg_get_u32(m, MOS_T_JOBID, &jobid);
	mos_msg_get_u32(m, MOS_T_RANK, &rank);
	mos_msg_get_u32(m, MOS_T_KIND, &kind);
	mos_msg_get_u64(m, MOS_T_SEQ, &attempt);
	char *node = mos_msg_get_str(m, MOS_T_NODE);
	int target = node ? peer_index(node) : -1;
	free(node);
	switch (kind) {
	case MIG_ASK_COMMIT:
	case MIG_ASK_ABORT:
	case MIG_ASK_QUERY:
		if (!job_find(jobid)) {
			pr_warn("hand-over question for job %u, which is not ours: ignored", jobid);
			return;
		}
		home_decide(kind, jobid, rank, attempt, target, from);
		break;
	case MIG_DECIDED_COMMIT:
	case MIG_DECIDED_ABORT:
		mig_out_decided(jobid, rank, attempt, kind == MIG_DECIDED_COMMIT);
		mig_in_decided(jobid, rank, attempt, kind == MIG_DECIDED_COMMIT);
		break;
	default:
		pr_warn("MIG_DECIDE of unknown kind %u: ignored", kind);
	}
}

/* Call FN on PID and every descendant until it returns true (depth-first,
 * through /proc/PID/task/T/children); true if some call did. */
static bool walk_tree(pid_t pid, int depth, bool (*fn)(pid_t, void *), void *arg)
{
	if (fn(pid, arg))
		return true;
	if (depth > 32)
		return false;
	char path[64];
	snprintf(path, sizeof(path), "/proc/%d/task", (int)pid);
	DIR *d = opendir(path);
	struct dirent *e;
	bool stop = false;
	while (d && !stop && (e = readdir(d))) {
		if (e->d_name[0] == '.')
			continue;
		char cpath[128];
		snprintf(cpath, sizeof(cpath), "%s/%s/children", path, e->d_name);
		FILE *f = fopen(cpath, "r");
		int c;
		while (f && !stop && fscanf(f, "%d", &c) == 1)
			stop = walk_tree(c, depth + 1, fn, arg);
		if (f)
			fclose(f);
	}
	if (d)
		closedir(d);
	return stop;
}

static bool has_fd(pid_t pid, void *link)
{
	char path[64], target[128];
	snprintf(path, sizeof(path), "/proc/%d/fd", (int)pid);
	DIR *d = opendir(path);
	struct dirent *e;
	bool found = false;
	while (d && !found && (e = readdir(d))) {
		char fpath[320];
		snprintf(fpath, sizeof(fpath), "%s/%s", path, e->d_name);
		ssize_t n = readlink(fpath, target, sizeof(target) - 1);
		found = n > 0 && (target[n] = 0, !strcmp(target, link));
	}
	if (d)
		closedir(d);
	return found;
}

bool mig_tree_has_fd(pid_t pid, const char *link)
{
	return walk_tree(pid, 0, has_fd, (void *)link);
}

/* A file lock (fcntl, flock, OFD) shows as a "lock:" line in the fdinfo of
 * the descriptor it was taken through; PATH gets that file's name. */
struct lock_find {
	char *path;
	size_t len;
};

static bool has_lock(pid_t pid, void *arg)
{
	struct lock_find *lf = arg;
	char dir[64], buf[4096];
	snprintf(dir, sizeof(dir), "/proc/%d/fdinfo", (int)pid);
	DIR *d = opendir(dir);
	struct dirent *e;
	bool found = false;
	while (d && !found && (e = readdir(d))) {
		if (e->d_name[0] == '.')
			continue;
		char fpath[320];
		snprintf(fpath, sizeof(fpath), "%s/%s", dir, e->d_name);
		int fd = open(fpath, O_RDONLY | O_CLOEXEC);
		ssize_t n = fd >= 0 ? read(fd, buf, sizeof(buf) - 1) : -1;
		if (fd >= 0)
			close(fd);
		if (n <= 0)
			continue;
		buf[n] = 0;
		if (strncmp(buf, "lock:", 5) && !strstr(buf, "\nlock:"))
			continue;
		found = true;
		snprintf(fpath, sizeof(fpath), "/proc/%d/fd/%s", (int)pid, e->d_name);
		ssize_t l = readlink(fpath, lf->path, lf->len - 1);
		lf->path[l > 0 ? l : 0] = 0;
	}
	if (d)
		closedir(d);
	return found;
}

bool mig_tree_has_lock(pid_t pid, char *path, size_t len)
{
	struct lock_find lf = { path, len };
	path[0] = 0;
	return walk_tree(pid, 0, has_lock, &lf);
}

static bool resume_one(pid_t pid, void *unused)
{
	kill(pid, SIGCONT);
	return false;
}

/* SIGCONT every task of the pod rooted at PID (left stopped by criu). */
void mig_resume_tree(pid_t pid)
{
	walk_tree(pid, 0, resume_one, NULL);
}

/* --- both ------------------------------------------------------------------ */

void mig_peer_lost(int idx)
{
	mig_out_peer_lost(idx);
	mig_in_peer_lost(idx);
	ckpt_peer_lost(idx);
}
