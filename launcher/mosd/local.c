/* local.c - requests from users on this node (mosexec, mosps, mosctl) over
 * the unix socket. Who asks is what SO_PEERCRED says, nothing else. */
#include "mosd.h"
#include "log.h"
#include "mig.h"
#include "ckpt.h"
#include "util.h"
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

struct client {
	pid_t pid;
	uid_t uid;
	gid_t gid;
	struct job *job;
};

static void client_signal(struct mos_conn *c, struct client *cl, struct mos_msg *m)
{
	uint32_t jobid = 0, sig = 0;
	int32_t rank = -1;
	mos_msg_get_u32(m, MOS_T_JOBID, &jobid);
	mos_msg_get_u32(m, MOS_T_SIG, &sig);
	mos_msg_get_i32(m, MOS_T_RANK, &rank);
	struct job *j = job_find(jobid);
	if (!j) {
		mosd_send_reply(c, -ESRCH, "no such job at this node (signal a job from its home node)");
		return;
	}
	if (cl->uid != 0 && cl->uid != j->uid) {
		pr_warn("uid %u may not signal job %u of uid %u", (unsigned)cl->uid, jobid, (unsigned)j->uid);
		mosd_send_reply(c, -EPERM, "permission denied: the job belongs to another user");
		return;
	}
	if (sig == 0 || sig >= 65) {
		mosd_send_reply(c, -EINVAL, "bad signal number");
		return;
	}
	if (rank >= 0 && (uint32_t)rank >= j->nprocs) {
		mosd_send_reply(c, -EINVAL, "no such rank in the job");
		return;
	}
	job_signal(j, (int)sig, rank);
	if (cl->job != j) /* mosexec expects no reply to its forwarded signals */
		mosd_send_reply(c, 0, NULL);
}

/* Requests answered by another node: SEQ -> the client waiting. */
struct pending {
	struct pending *next;
	uint64_t seq;
	struct mos_conn *c;
};
static struct pending *pendings;
static uint64_t pending_seq;

uint64_t local_pending_add(struct mos_conn *c)
{
	struct pending *p = calloc(1, sizeof(*p));
	if (!p)
		return 0;
	p->seq = ++pending_seq;
	p->c = c;
	p->next = pendings;
	pendings = p;
	return p->seq;
}

static void pending_drop_conn(struct mos_conn *c)
{
	for (struct pending **pp = &pendings; *pp;) {
		struct pending *p = *pp;
		if (p->c == c) {
			*pp = p->next;
			free(p);
		} else {
			pp = &p->next;
		}
	}
}

void local_on_reply(struct mos_msg *m)
{
	uint64_t seq = 0;
	int32_t code = 0;
	if (ckpt_on_reply(m)) /* a PMIx tool's checkpoint */
		return;
	mos_msg_get_u64(m, MOS_T_SEQ, &seq);
	mos_msg_get_i32(m, MOS_T_CODE, &code);
	for (struct pending **pp = &pendings; *pp; pp = &(*pp)->next) {
		struct pending *p = *pp;
		if (p->seq != seq)
			continue;
		*pp = p->next;
		char *text = mos_msg_get_str(m, MOS_T_TEXT);
		mosd_send_reply(p->c, code, text);
		free(text);
		free(p);
		return;
	}
}

/* MIGRATE from a user: find the job (by JOB.RANK or a local PID), and send
 * the request to the job's home, which checks and orders it. */
static void client_migrate(struct mos_conn *c, struct client *cl, struct mos_msg *m)
{
	uint32_t jobid = 0, rank = 0, pid = 0, flags = 0;
	char *node = mos_msg_get_str(m, MOS_T_NODE);
	mos_msg_get_u32(m, MOS_T_JOBID, &jobid);
	mos_msg_get_u32(m, MOS_T_RANK, &rank);
	mos_msg_get_u32(m, MOS_T_FLAGS, &flags);
	if (mos_msg_get_u32(m, MOS_T_PID, &pid) == 0) {
		struct proc *p = proc_find_pid((pid_t)pid);
		if (!p) {
			mosd_send_reply(c, -ESRCH, "no process of a mosexec job has that PID on this node");
			free(node);
			return;
		}
		jobid = p->jobid;
		rank = p->rank;
	}
	unsigned home = mos_jobid_home(jobid);
	if (!jobid || home >= mosd.conf->n_nodes) {
		mosd_send_reply(c, -ESRCH, "no such job");
		free(node);
		return;
	}
	const char *target = node && !strcmp(node, "home") ? mosd.conf->nodes[home].name : node;
	struct mos_msg r;
	uint64_t seq = local_pending_add(c);
	if (!seq || mos_msg_init(&r, MOS_MSG_MIGRATE)) {
		mosd_send_reply(c, -ENOMEM, "out of memory");
		free(node);
		return;
	}
	mos_msg_put_u32(&r, MOS_T_JOBID, jobid);
	mos_msg_put_u32(&r, MOS_T_RANK, rank);
	mos_msg_put_str(&r, MOS_T_NODE, target ? target : "");
	mos_msg_put_u32(&r, MOS_T_UID, cl->uid);
	mos_msg_put_u32(&r, MOS_T_FLAGS, flags);
	mos_msg_put_u64(&r, MOS_T_SEQ, seq);
	mos_msg_put_str(&r, MOS_T_NAME, mosd.self->name);
	mos_msg_put_u32(&r, MOS_T_KIND, 0);
	if (peer_send((int)home, &r)) {
		pending_drop_conn(c);
		mosd_send_reply(c, -EHOSTDOWN, "cannot reach the job's home node");
	}
	mos_msg_free(&r);
	free(node);
}

/* CHECKPOINT from a user: to the job's home, like a migration request. */
static void client_checkpoint(struct mos_conn *c, struct client *cl, struct mos_msg *m)
{
	uint32_t jobid = 0;
	mos_msg_get_u32(m, MOS_T_JOBID, &jobid);
	unsigned home = mos_jobid_home(jobid);
	char *dir = mos_msg_get_str(m, MOS_T_TEXT);
	struct mos_msg r;
	uint64_t seq;
	if (!jobid || home >= mosd.conf->n_nodes) {
		mosd_send_reply(c, -ESRCH, "no such job");
	} else if (!(seq = local_pending_add(c)) || mos_msg_init(&r, MOS_MSG_CKPT)) {
		mosd_send_reply(c, -ENOMEM, "out of memory");
	} else {
		mos_msg_put_u32(&r, MOS_T_JOBID, jobid);
		mos_msg_put_u32(&r, MOS_T_KIND, 0);
		mos_msg_put_u32(&r, MOS_T_UID, cl->uid);
		mos_msg_put_u64(&r, MOS_T_SEQ, seq);
		mos_msg_put_str(&r, MOS_T_NAME, mosd.self->name);
		if (dir)
			mos_msg_put_str(&r, MOS_T_TEXT, dir);
		if (peer_send((int)home, &r)) {
			pending_drop_conn(c);
			mosd_send_reply(c, -EHOSTDOWN, "cannot reach the job's home node");
		}
		mos_msg_free(&r);
	}
	free(dir);
}

static void client_fault(struct mos_conn *c, struct client *cl, struct mos_msg *m)
{
	char *name = mos_msg_get_str(m, MOS_T_NAME);
	int rc = cl->uid != 0 ? -EPERM : fault_set(name);
	mosd_send_reply(c, rc, rc == -EPERM ? "only root may inject faults" : rc ? "unknown fault name" : NULL);
	free(name);
}

static void on_local_msg(struct mos_conn *c, struct mos_msg *m, void *arg)
{
	struct client *cl = arg;
	switch (m->type) {
	case MOS_MSG_SUBMIT:
		if (cl->job) {
			mos_conn_send_error(c, -EBUSY, "this connection already has a job");
			break;
		}
		job_submit(c, m, cl->uid, cl->gid, cl->pid);
		cl->job = mos_conn_get_data(c);
		break;
	case MOS_MSG_IO:
		if (cl->job)
			job_stdin(cl->job, m);
		break;
	case MOS_MSG_SIGNAL:
		client_signal(c, cl, m);
		break;
	case MOS_MSG_PS_REQ:
		ps_request(c, m);
		break;
	case MOS_MSG_MIGRATE:
		client_migrate(c, cl, m);
		break;
	case MOS_MSG_FAULT:
		client_fault(c, cl, m);
		break;
	case MOS_MSG_CKPT:
		client_checkpoint(c, cl, m);
		break;
	case MOS_MSG_RESTART:
		if (cl->job) {
			mos_conn_send_error(c, -EBUSY, "this connection already has a job");
			break;
		}
		ckpt_restart(c, m, cl->uid, cl->gid, cl->pid);
		cl->job = mos_conn_get_data(c);
		break;
	default:
		mos_conn_send_error(c, -EPROTO, "unexpected %s message from a local client", mos_msg_name(m->type));
	}
}

static void on_local_close(struct mos_conn *c, int err, void *arg)
{
	struct client *cl = arg;
	struct job *j = mos_conn_get_data(c);
	if (j)
		job_client_gone(j);
	ps_client_gone(c);
	pending_drop_conn(c);
	free(cl);
	mos_conn_free(c);
}

void local_accept(int fd)
{
	struct client *cl = calloc(1, sizeof(*cl));
	struct mos_conn *c;
	if (!cl || !(c = mos_conn_new(mosd.base, fd, NULL, NULL, on_local_msg, on_local_close, cl))) {
		pr_err("out of memory accepting a local client");
		free(cl);
		close(fd);
		return;
	}
	if (mos_conn_peercred(c, &cl->pid, &cl->uid, &cl->gid)) {
		pr_err("SO_PEERCRED failed: refusing local client");
		free(cl);
		mos_conn_free(c);
	}
}
