/* peer.c - links to the other daemons. We send over our own outgoing
 * connection to each node (made on first use, authenticated with the cluster
 * key) and receive on the connections they make to us. A message to
 * ourselves takes the same dispatcher, so every path is the same wherever a
 * process runs. */
#include "mosd.h"
#include "log.h"
#include "mig.h"
#include "pmixhost.h"
#include "ckpt.h"
#include "bind.h"
#include "util.h"
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#define DEAD_RETRY_MS 2000

int peer_init(void)
{
	mosd.peers = calloc(mosd.conf->n_nodes, sizeof(*mosd.peers));
	if (!mosd.peers)
		return -ENOMEM;
	for (size_t i = 0; i < mosd.conf->n_nodes; i++)
		mosd.peers[i].node = &mosd.conf->nodes[i];
	return 0;
}

void peer_fini(void)
{
	if (!mosd.peers)
		return;
	for (size_t i = 0; i < mosd.conf->n_nodes; i++)
		mos_conn_free(mosd.peers[i].conn);
	free(mosd.peers);
	mosd.peers = NULL;
}

int peer_index(const char *name)
{
	const struct mos_conf_node *n = mos_conf_node_find(mosd.conf, name);
	return n ? (int)n->index : -1;
}

bool peer_known_dead(int idx)
{
	uint64_t d = mosd.peers[idx].dead_since_ms;
	return d && mos_now_ms() - d < DEAD_RETRY_MS;
}

void peer_dispatch(struct mos_conn *c, struct mos_msg *m, int from)
{
	switch (m->type) {
	case MOS_MSG_LOAD: gossip_on_load(m); break;
	case MOS_MSG_SPAWN: proc_on_spawn(m); break;
	case MOS_MSG_SPAWNED: job_on_spawned(m); break;
	case MOS_MSG_IO: {
		uint32_t stream = 1;
		mos_msg_get_u32(m, MOS_T_STREAM, &stream);
		if (stream == 0)
			proc_on_stdin(m);
		else
			job_on_io(m);
		break;
	}
	case MOS_MSG_EXIT: job_on_exit(m); break;
	case MOS_MSG_MOVED: mig_home_result(m); job_on_moved(m); break;
	case MOS_MSG_BIND: mos_bind_moved(m); break;
	case MOS_MSG_MIGRATE: {
		uint32_t kind = 0;
		mos_msg_get_u32(m, MOS_T_KIND, &kind);
		if (kind == 0)
			mig_home_request(m);
		else
			mig_source_start(m);
		break;
	}
	case MOS_MSG_MIG_PREPARE: mig_on_prepare(m, from); break;
	case MOS_MSG_MIG_READY: mig_on_ready(m); break;
	case MOS_MSG_MIG_DATA: mig_on_data(m, from); break;
	case MOS_MSG_MIG_COMMIT: mig_on_commit(m, from); break;
	case MOS_MSG_MIG_DONE: mig_on_done(m); break;
	case MOS_MSG_MIG_ABORT: mig_on_abort(m, from); break;
	case MOS_MSG_MIG_DECIDE: mig_on_decide(m, from); break;
	case MOS_MSG_MIG_PULL: mig_on_pull(m); break;
	case MOS_MSG_REPLY: local_on_reply(m); break;
	case MOS_MSG_PMIX: pmixhost_on_msg(m, from); break;
	case MOS_MSG_CKPT: ckpt_on_msg(m, from); break;
	case MOS_MSG_CKPT_DATA: ckpt_on_data(m, from); break;
	case MOS_MSG_CKPT_DONE: ckpt_on_done(m, from); break;
	case MOS_MSG_SIGNAL: proc_on_signal(m); break;
	case MOS_MSG_KILL_JOB: proc_on_kill_job(m); break;
	case MOS_MSG_PS_REQ: ps_on_peer_req(c, m); break;
	case MOS_MSG_PS_REP: ps_on_peer_rep(m); break;
	default:
		pr_warn("peer %s: unexpected %s message, ignored", c ? mos_conn_peer_name(c) : "self",
			mos_msg_name(m->type));
	}
}

static void on_peer_msg(struct mos_conn *c, struct mos_msg *m, void *arg)
{
	int from = peer_index(mos_conn_peer_name(c));
	if (from == (int)mosd.self->index && c != mosd.peers[from].conn) {
		pr_err("a connection claims to be this very node (%s): a reflected link, closed", mosd.self->name);
		mos_conn_close_after_flush(c);
		return;
	}
	if (from < 0) {
		pr_err("connection claims to be node '%s', which is not in the cluster: closed",
		       mos_conn_peer_name(c));
		mos_conn_close_after_flush(c);
		return;
	}
	mosd.peers[from].dead_since_ms = 0; /* we hear from it: it is up */
	peer_dispatch(c, m, from);
}

static void on_in_close(struct mos_conn *c, int err, void *arg)
{
	int idx = peer_index(mos_conn_peer_name(c));
	if (err && err != -EACCES)
		pr_debug("incoming link from %s closed: %s", mos_conn_peer_name(c), strerror(-err));
	if (idx >= 0 && mos_conn_is_authenticated(c))
		mig_peer_lost(idx); /* a migration from there cannot complete */
	mos_conn_free(c);
}

void peer_accept(int fd)
{
	if (!mos_conn_new(mosd.base, fd, mosd.key, mosd.self->name, on_peer_msg, on_in_close, NULL))
		pr_err("out of memory accepting a peer");
}

static void on_out_close(struct mos_conn *c, int err, void *arg)
{
	struct peer *p = arg;
	int idx = (int)p->node->index;

	if (err == -EACCES)
		pr_err("node %s refused us or failed authentication: check the cluster key", p->node->name);
	else
		pr_warn("link to node %s lost%s%s", p->node->name, err ? ": " : "", err ? strerror(-err) : "");
	p->conn = NULL;
	p->dead_since_ms = mos_now_ms();
	mos_conn_free(c);
	peer_lost(idx);
}

struct mos_conn *peer_conn(int idx)
{
	return idx >= 0 && (size_t)idx < mosd.conf->n_nodes ? mosd.peers[idx].conn : NULL;
}

void peer_drop(int idx)
{
	struct peer *p = &mosd.peers[idx];
	if (p->conn)
		on_out_close(p->conn, -ECONNRESET, p);
}

void peer_lost(int idx)
{
	mig_peer_lost(idx);
	job_node_lost(idx);
	proc_home_lost(mosd.conf->nodes[idx].name);
}

static int send_self(struct mos_msg *m)
{
	struct mos_msg copy;
	char err[256];
	int rc = mos_msg_reread(m, &copy, err, sizeof(err));
	if (rc) {
		pr_err("internal: %s", err);
		return rc;
	}
	peer_dispatch(NULL, &copy, (int)mosd.self->index);
	mos_msg_free(&copy);
	return 0;
}

int peer_send(int idx, struct mos_msg *m)
{
	if (idx < 0 || (size_t)idx >= mosd.conf->n_nodes)
		return -EINVAL;
	if (&mosd.conf->nodes[idx] == mosd.self)
		return send_self(m);
	struct peer *p = &mosd.peers[idx];
	if (!p->conn) {
		p->conn = mos_conn_connect_tcp(mosd.base, p->node->address, mosd.conf->port, mosd.key,
					       mosd.self->name, on_peer_msg, on_out_close, p);
		if (!p->conn) {
			p->dead_since_ms = mos_now_ms();
			return -EHOSTDOWN;
		}
	}
	return mos_conn_send(p->conn, m);
}
