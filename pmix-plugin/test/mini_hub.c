/* mini_hub.c - the wire of the test launcher: a star over a unix socket with
 * node 0 as hub. The hub combines fence blobs (with a default timeout),
 * routes direct modex requests to the node holding the rank and the answers
 * back, and ends the job on every node. Length-prefixed messages (mini.h). */
#include "mini.h"
#include "mospmix.h"
#include "log.h"
#include <errno.h>
#include <inttypes.h>
#include <event2/buffer.h>
#include <event2/bufferevent.h>
#include <event2/event.h>
#include <event2/listener.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

static struct bufferevent **peers;	/* hub: [nnodes], [0] unused; node: [0] = hub */
static struct evconnlistener *listener;
static bool *node_done;
static uint32_t ndone, nconnected;
static bool ending, exiting;
static struct event *exit_timer;

struct hfence {
	struct hfence *next;
	uint64_t id;
	bool *have;
	uint32_t got;
	struct evbuffer *blob;
	struct event *timer;
};
static struct hfence *hfences;

static bool is_hub(void)
{
	return mini.nodeid == 0;
}

void mini_send(uint32_t to, uint32_t type, uint64_t id, uint32_t rank, uint32_t from,
	       int32_t status, const void *data, size_t len)
{
	struct mini_hdr h = { .type = type, .from = from, .rank = rank, .status = status,
			      .id = id, .len = len };
	struct bufferevent *bev = peers[is_hub() ? to : 0];

	if (!bev) {
		pr_warn("no link to node %u for message %u", to, type);
		return;
	}
	bufferevent_write(bev, &h, sizeof(h));
	if (len)
		bufferevent_write(bev, data, len);
}

/* --- hub: fences --------------------------------------------------------- */

static void hfence_finish(struct hfence *f, int status)
{
	size_t len = evbuffer_get_length(f->blob);
	const void *data = evbuffer_pullup(f->blob, -1);

	for (struct hfence **pp = &hfences; *pp; pp = &(*pp)->next)
		if (*pp == f) {
			*pp = f->next;
			break;
		}
	for (uint32_t n = 1; n < mini.nnodes; n++)
		mini_send(n, MINI_FENCE_DONE, f->id, 0, 0, status, status ? NULL : data,
			  status ? 0 : len);
	mos_pmix_fence_done(mini.nspace, f->id, status, data, len);
	if (f->timer)
		event_free(f->timer);
	evbuffer_free(f->blob);
	free(f->have);
	free(f);
}

static void hfence_timeout(evutil_socket_t fd, short what, void *arg)
{
	struct hfence *f = arg;

	fprintf(stderr, "mini_launch: fence %" PRIu64 " of %s: only %u of %u nodes arrived "
		"within %d s, ending the job\n", f->id, mini.nspace, f->got, mini.nodes_used,
		mini.fence_timeout);
	hfence_finish(f, -ETIMEDOUT);
	/* Open MPI 4.1 carries on past a failed fence and spins: end the job */
	mini_job_end(MINI_TIMEOUT_STATUS);
}

static void hub_fence(uint32_t node, uint64_t id, const void *data, size_t len)
{
	struct hfence *f;

	for (f = hfences; f && f->id != id; f = f->next)
		;
	if (!f) {
		f = calloc(1, sizeof(*f));
		f->id = id;
		f->have = calloc(mini.nnodes, sizeof(*f->have));
		f->blob = evbuffer_new();
		if (mini.fence_timeout > 0) {
			struct timeval tv = { .tv_sec = mini.fence_timeout };

			f->timer = evtimer_new(mini.base, hfence_timeout, f);
			evtimer_add(f->timer, &tv);
		}
		f->next = hfences;
		hfences = f;
	}
	if (f->have[node])
		return;
	f->have[node] = true;
	evbuffer_add(f->blob, data, len);
	if (++f->got == mini.nodes_used)
		hfence_finish(f, 0);
}

void mini_fence(void *ctx, const char *nspace, uint64_t id, const void *data, size_t len,
		int timeout_s)
{
	if (is_hub())
		hub_fence(0, id, data, len);
	else
		mini_send(0, MINI_FENCE, id, 0, mini.nodeid, 0, data, len);
}

/* --- direct modex -------------------------------------------------------- */

/* the answer for requester FROM's REQ_ID: deliver or pass on */
static void dmdx_deliver(uint32_t from, uint64_t req_id, int status, const void *data,
			 size_t len)
{
	if (from == mini.nodeid)
		mos_pmix_dmodex_done(req_id, status, data, len);
	else
		mini_send(from, MINI_DMDX_RESP, req_id, 0, from, status, data, len);
}

struct serve_ctx {
	uint32_t from;
	uint64_t req_id;
};

static void serve_reply(void *arg, int status, const void *data, size_t len)
{
	struct serve_ctx *sc = arg;

	dmdx_deliver(sc->from, sc->req_id, status, data, len);
	free(sc);
}

static void dmdx_serve(uint32_t from, uint64_t req_id, uint32_t rank)
{
	struct serve_ctx *sc = malloc(sizeof(*sc));
	int err;

	sc->from = from;
	sc->req_id = req_id;
	err = mos_pmix_dmodex_serve(mini.nspace, rank, serve_reply, sc);
	if (err) {
		free(sc);
		dmdx_deliver(from, req_id, err, NULL, 0);
	}
}

/* a request reaching this node: serve it here or (hub) route it */
static void dmdx_route(uint32_t from, uint64_t req_id, uint32_t rank)
{
	uint32_t owner;

	if (rank >= mini.nprocs) {
		dmdx_deliver(from, req_id, -ENOENT, NULL, 0);
		return;
	}
	owner = mini.rank_node[rank];
	if (owner == mini.nodeid)
		dmdx_serve(from, req_id, rank);
	else
		mini_send(owner, MINI_DMDX_REQ, req_id, rank, from, 0, NULL, 0);
}

void mini_dmodex(void *ctx, const char *nspace, uint32_t rank, uint64_t req_id)
{
	if (is_hub())
		dmdx_route(0, req_id, rank);
	else
		mini_send(0, MINI_DMDX_REQ, req_id, rank, mini.nodeid, 0, NULL, 0);
}

/* --- the end of the job -------------------------------------------------- */

static void exit_timeout(evutil_socket_t fd, short what, void *arg)
{
	mini_leave(mini.job_status);
}

static void hub_check_exit(void)
{
	if (exiting || ndone < mini.nnodes)
		return;
	exiting = true;
	for (uint32_t n = 1; n < mini.nnodes; n++)
		mini_send(n, MINI_EXIT, 0, 0, 0, mini.job_status, NULL, 0);
	if (nconnected == 0) {
		mini_leave(mini.job_status);
		return;
	}
	/* leave when every node hung up, or soon anyway */
	struct timeval tv = { .tv_sec = 2 };

	exit_timer = evtimer_new(mini.base, exit_timeout, NULL);
	evtimer_add(exit_timer, &tv);
}

static void hub_node_done(uint32_t node, int status)
{
	if (node >= mini.nnodes || node_done[node])
		return;
	node_done[node] = true;
	ndone++;
	if (status && !mini.job_status)
		mini.job_status = status;
	hub_check_exit();
}

void mini_job_end(int status)
{
	if (ending)
		return;
	ending = true;
	if (!mini.job_status)
		mini.job_status = status;
	if (is_hub()) {
		for (uint32_t n = 1; n < mini.nnodes; n++)
			mini_send(n, MINI_KILL, 0, 0, 0, mini.job_status, NULL, 0);
	} else {
		mini_send(0, MINI_ABORT, 0, 0, mini.nodeid, status, NULL, 0);
	}
	mini_kill_ranks();
}

void mini_node_done(void)
{
	if (is_hub())
		hub_node_done(0, mini.job_status);
	else
		mini_send(0, MINI_DONE, 0, 0, mini.nodeid, mini.job_status, NULL, 0);
}

/* --- receiving ----------------------------------------------------------- */

static void handle(struct bufferevent *bev, const struct mini_hdr *h, const void *data)
{
	switch (h->type) {
	case MINI_HELLO:
		if (is_hub() && h->from > 0 && h->from < mini.nnodes && !peers[h->from]) {
			peers[h->from] = bev;
			nconnected++;
		}
		break;
	case MINI_FENCE:
		hub_fence(h->from, h->id, data, h->len);
		break;
	case MINI_FENCE_DONE:
		mos_pmix_fence_done(mini.nspace, h->id, h->status, data, h->len);
		break;
	case MINI_DMDX_REQ:
		dmdx_route(h->from, h->id, h->rank);
		break;
	case MINI_DMDX_RESP:
		dmdx_deliver(h->from, h->id, h->status, data, h->len);
		break;
	case MINI_ABORT:
		mini_job_end(h->status);
		break;
	case MINI_KILL:
		ending = true;
		if (!mini.job_status)
			mini.job_status = h->status;
		mini_kill_ranks();
		break;
	case MINI_DONE:
		hub_node_done(h->from, h->status);
		break;
	case MINI_EXIT:
		mini_leave(h->status);
		break;
	default:
		pr_err("unknown message type %u", h->type);
	}
}

static void read_cb(struct bufferevent *bev, void *arg)
{
	struct evbuffer *in = bufferevent_get_input(bev);
	struct mini_hdr h;

	while (evbuffer_get_length(in) >= sizeof(h)) {
		evbuffer_copyout(in, &h, sizeof(h));
		if (evbuffer_get_length(in) < sizeof(h) + h.len)
			return;
		evbuffer_drain(in, sizeof(h));
		handle(bev, &h, h.len ? evbuffer_pullup(in, h.len) : NULL);
		evbuffer_drain(in, h.len);
	}
}

static void event_cb(struct bufferevent *bev, short what, void *arg)
{
	if (!(what & (BEV_EVENT_EOF | BEV_EVENT_ERROR)))
		return;
	if (!is_hub()) {
		pr_err("lost the hub");
		mini.job_status = mini.job_status ?: 1;
		mini_kill_ranks();
		mini_leave(mini.job_status);
		return;
	}
	for (uint32_t n = 1; n < mini.nnodes; n++) {
		if (peers[n] != bev)
			continue;
		peers[n] = NULL;
		nconnected--;
		if (!node_done[n]) {
			pr_err("lost node %u", n);
			mini_job_end(1);
			hub_node_done(n, 1);
		}
	}
	bufferevent_free(bev);
	if (exiting && nconnected == 0)
		mini_leave(mini.job_status);
}

static void accept_cb(struct evconnlistener *l, evutil_socket_t fd, struct sockaddr *sa, int len,
		      void *arg)
{
	struct bufferevent *bev = bufferevent_socket_new(mini.base, fd, BEV_OPT_CLOSE_ON_FREE);

	bufferevent_setcb(bev, read_cb, NULL, event_cb, NULL);
	bufferevent_enable(bev, EV_READ);
}

static int hub_listen(struct sockaddr_un *sun)
{
	unlink(sun->sun_path);
	listener = evconnlistener_new_bind(mini.base, accept_cb, NULL,
					   LEV_OPT_CLOSE_ON_FREE | LEV_OPT_CLOSE_ON_EXEC, 16,
					   (struct sockaddr *)sun, sizeof(*sun));
	if (!listener) {
		pr_err("listen on %s: %m", sun->sun_path);
		return -errno;
	}
	return 0;
}

static int node_connect(struct sockaddr_un *sun)
{
	int fd = -1;

	for (int tries = 0; tries < 200; tries++) {
		fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
		if (connect(fd, (struct sockaddr *)sun, sizeof(*sun)) == 0)
			break;
		close(fd);
		fd = -1;
		usleep(50000);
	}
	if (fd < 0) {
		pr_err("cannot reach the hub at %s", sun->sun_path);
		return -ECONNREFUSED;
	}
	evutil_make_socket_nonblocking(fd);
	peers[0] = bufferevent_socket_new(mini.base, fd, BEV_OPT_CLOSE_ON_FREE);
	bufferevent_setcb(peers[0], read_cb, NULL, event_cb, NULL);
	bufferevent_enable(peers[0], EV_READ);
	mini_send(0, MINI_HELLO, 0, 0, mini.nodeid, 0, NULL, 0);
	return 0;
}

int mini_net_init(void)
{
	struct sockaddr_un sun = { .sun_family = AF_UNIX };

	peers = calloc(mini.nnodes, sizeof(*peers));
	node_done = calloc(mini.nnodes, sizeof(*node_done));
	if (mini.nnodes == 1)
		return 0;
	if (!mini.rdv || strlen(mini.rdv) >= sizeof(sun.sun_path)) {
		pr_err("--rdv PATH needed with more than one node");
		return -EINVAL;
	}
	strcpy(sun.sun_path, mini.rdv);
	return is_hub() ? hub_listen(&sun) : node_connect(&sun);
}

void mini_net_fini(void)
{
	for (uint32_t n = 0; n < mini.nnodes; n++)
		if (peers[n])
			bufferevent_free(peers[n]);
	if (listener) {
		evconnlistener_free(listener);
		unlink(mini.rdv);
	}
	if (exit_timer)
		event_free(exit_timer);
	free(peers);
	free(node_done);
}
