/* local.c - requests from users on this node (mosexec, mosps, mosctl) over
 * the unix socket. Who asks is what SO_PEERCRED says, nothing else. */
#include "mosd.h"
#include "log.h"
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
