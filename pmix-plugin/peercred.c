/* peercred.c - who really holds a tool's connection. PMIx 4.2 reaches its
 * server over loopback TCP only, and its native security module takes the
 * uid a tool's library sends; a tool could say it is root. The kernel knows
 * better: at tool_connected time the tool's connection has sent us its
 * handshake and we have not answered it yet. sock_diag lists those
 * connections (our port, data received, no data sent) with the uid that
 * owns the tool's end; the claim stands only if every one of them is that
 * uid (two users attaching at the same instant: refused, attach again). */
#include "mospmix_int.h"
#include "log.h"
#include <errno.h>
#include <linux/inet_diag.h>
#include <linux/netlink.h>
#include <linux/rtnetlink.h>
#include <linux/sock_diag.h>
#include <linux/tcp.h>
#include <netinet/in.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#define TCP_ESTABLISHED_STATE 1

struct sk {
	uint16_t sport, dport;	/* host order */
	uint32_t src, dst;	/* network order */
	uid_t uid;
	bool quiet;		/* has received data and sent none */
};

struct sklist {
	struct sk *v;
	size_t n, cap;
};

static void add_sk(struct sklist *l, const struct inet_diag_msg *m, size_t len)
{
	const struct tcp_info *ti = NULL;
	struct rtattr *a = (struct rtattr *)(m + 1);
	int left = (int)(len - NLMSG_ALIGN(sizeof(*m)));
	struct sk *s;

	for (; RTA_OK(a, left); a = RTA_NEXT(a, left))
		if (a->rta_type == INET_DIAG_INFO &&
		    RTA_PAYLOAD(a) >= (int)(offsetof(struct tcp_info, tcpi_data_segs_out) + 4))
			ti = RTA_DATA(a);
	if (l->n == l->cap) {
		size_t cap = l->cap ? l->cap * 2 : 64;
		struct sk *v = realloc(l->v, cap * sizeof(*v));

		if (!v)
			return;
		l->v = v;
		l->cap = cap;
	}
	s = &l->v[l->n++];
	s->sport = ntohs(m->id.idiag_sport);
	s->dport = ntohs(m->id.idiag_dport);
	s->src = m->id.idiag_src[0];
	s->dst = m->id.idiag_dst[0];
	s->uid = m->idiag_uid;
	s->quiet = ti && ti->tcpi_bytes_received > 0 && ti->tcpi_data_segs_out == 0;
}

/* Every established IPv4 TCP socket of our network namespace. */
static int dump_tcp(struct sklist *l)
{
	struct {
		struct nlmsghdr nlh;
		struct inet_diag_req_v2 r;
	} req = {
		.nlh = { .nlmsg_len = sizeof(req), .nlmsg_type = SOCK_DIAG_BY_FAMILY,
			 .nlmsg_flags = NLM_F_REQUEST | NLM_F_DUMP },
		.r = { .sdiag_family = AF_INET, .sdiag_protocol = IPPROTO_TCP,
		       .idiag_states = 1u << TCP_ESTABLISHED_STATE,
		       .idiag_ext = 1u << (INET_DIAG_INFO - 1) },
	};
	static char buf[32768] __attribute__((aligned(8)));
	int fd = socket(AF_NETLINK, SOCK_DGRAM | SOCK_CLOEXEC, NETLINK_SOCK_DIAG), err = 0;

	if (fd < 0)
		return -errno;
	if (send(fd, &req, sizeof(req), 0) < 0) {
		err = -errno;
		goto out;
	}
	for (;;) {
		int n = (int)recv(fd, buf, sizeof(buf), 0);
		struct nlmsghdr *h = (struct nlmsghdr *)buf;

		if (n <= 0) {
			err = n < 0 ? -errno : -EIO;
			goto out;
		}
		for (; NLMSG_OK(h, n); h = NLMSG_NEXT(h, n)) {
			if (h->nlmsg_type == NLMSG_DONE)
				goto out;
			if (h->nlmsg_type == NLMSG_ERROR) {
				err = -EIO;
				goto out;
			}
			if (h->nlmsg_len >= NLMSG_LENGTH(sizeof(struct inet_diag_msg)))
				add_sk(l, NLMSG_DATA(h), h->nlmsg_len - NLMSG_HDRLEN);
		}
	}
out:
	close(fd);
	return err;
}

bool mos_pmix_peer_uid_connected(uid_t uid)
{
	uint16_t port = mos_pmix_srv.tool_port;
	struct sklist l = { 0 };
	size_t waiting = 0, match = 0;
	int err;

	if (!port)
		return false;
	err = dump_tcp(&l);
	if (err) {
		pr_warn("pmix: sock_diag: %s: a tool's user cannot be confirmed", strerror(-err));
		free(l.v);
		return false;
	}
	for (size_t i = 0; i < l.n; i++) {
		const struct sk *srv = &l.v[i];

		if (srv->sport != port || !srv->quiet)
			continue;
		waiting++;
		for (size_t k = 0; k < l.n; k++) {
			const struct sk *cl = &l.v[k];

			if (cl->sport == srv->dport && cl->dport == port && cl->src == srv->dst &&
			    cl->dst == srv->src) {
				if (cl->uid == uid)
					match++;
				break;
			}
		}
	}
	free(l.v);
	if (!waiting || match != waiting)
		pr_warn("pmix: tool says uid %u: %zu connection(s) wait for our answer, %zu of that uid",
			(unsigned)uid, waiting, match);
	return waiting && match == waiting;
}
