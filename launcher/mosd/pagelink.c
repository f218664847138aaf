/* pagelink.c - the authenticated connection for criu's page server (see
 * pagelink.h). Tokens: BLAKE2b keyed with the cluster key over a label, the
 * move's random id and both node names; the target sends the "to source"
 * token first, the source answers with the "to target" one. */
#include "pagelink.h"
#include "log.h"
#include "mig.h"
#include "mosd.h"
#include <arpa/inet.h>
#include <errno.h>
#include <event2/event.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <sodium.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#define TOKEN 32
#define PROVE_S 10 /* the other side has this long to connect and prove itself */

struct pagelink {
	bool source;
	int lsk, sk;                  /* listening socket (source), the connection */
	struct in_addr peer;          /* source: the only address let in */
	unsigned char mine[TOKEN], theirs[TOKEN];
	unsigned char got[TOKEN];
	size_t have, sent;
	struct event *lev, *ev, *timer;
	pagelink_cb cb;
	void *arg;
};

static void token(unsigned char out[TOKEN], const char *label, uint64_t move_id, const char *source,
		  const char *target)
{
	crypto_generichash_state st;
	unsigned char id[8];
	for (int i = 0; i < 8; i++)
		id[i] = (unsigned char)(move_id >> (8 * i));
	crypto_generichash_init(&st, mosd.key, MOS_KEY_LEN, TOKEN);
	crypto_generichash_update(&st, (const unsigned char *)label, strlen(label) + 1);
	crypto_generichash_update(&st, id, sizeof(id));
	crypto_generichash_update(&st, (const unsigned char *)source, strlen(source) + 1);
	crypto_generichash_update(&st, (const unsigned char *)target, strlen(target) + 1);
	crypto_generichash_final(&st, out, TOKEN);
}

static struct pagelink *alloc(bool source, uint64_t move_id, const char *src, const char *tgt, pagelink_cb cb,
			      void *arg)
{
	struct pagelink *l = calloc(1, sizeof(*l));
	if (!l)
		return NULL;
	l->source = source;
	l->lsk = l->sk = -1;
	l->cb = cb;
	l->arg = arg;
	token(source ? l->mine : l->theirs, "mosexec pages: to target", move_id, src, tgt);
	token(source ? l->theirs : l->mine, "mosexec pages: to source", move_id, src, tgt);
	return l;
}

void pagelink_free(struct pagelink *l)
{
	if (!l)
		return;
	if (l->lev)
		event_free(l->lev);
	if (l->ev)
		event_free(l->ev);
	if (l->timer)
		event_free(l->timer);
	if (l->lsk >= 0)
		close(l->lsk);
	if (l->sk >= 0)
		close(l->sk);
	sodium_memzero(l, sizeof(*l));
	free(l);
}

static void done(struct pagelink *l, int rc)
{
	int fd = -1;
	if (!rc) {
		fd = l->sk;
		l->sk = -1;
		fcntl(fd, F_SETFL, fcntl(fd, F_GETFL) & ~O_NONBLOCK);
	}
	if (l->ev)
		event_del(l->ev);
	if (l->lev)
		event_del(l->lev);
	if (l->timer)
		event_del(l->timer);
	l->cb(l->arg, rc ? rc : fd);
}

/* A connection that is not the target, or fails to prove itself, goes;
 * the source listens on for the real one. */
static void drop(struct pagelink *l, const char *why)
{
	pr_warn("page link: a connection dropped: %s", why);
	event_free(l->ev);
	l->ev = NULL;
	close(l->sk);
	l->sk = -1;
	l->have = l->sent = 0;
	event_add(l->lev, NULL);
}

static void on_io(evutil_socket_t fd, short what, void *arg);

/* The exchange failed: the source waits for another connection, the
 * target gives up with E. */
static void failed(struct pagelink *l, int e, const char *why)
{
	if (l->source)
		drop(l, why);
	else
		done(l, e);
}

/* The exchange goes on the other way: wait for FD to become WHAT. */
static void turn(struct pagelink *l, evutil_socket_t fd, short what)
{
	event_free(l->ev);
	l->ev = event_new(mosd.base, fd, what | EV_PERSIST, on_io, l);
	if (!l->ev || event_add(l->ev, NULL))
		done(l, -ENOMEM);
}

static void on_io(evutil_socket_t fd, short what, void *arg)
{
	struct pagelink *l = arg;
	/* the target speaks first: it sends, then reads; the source reads, then sends */
	bool sending = l->source ? l->have == TOKEN : l->sent < TOKEN;
	if (sending) {
		ssize_t n = send(fd, l->mine + l->sent, TOKEN - l->sent, MSG_NOSIGNAL);
		if (n < 0 && (errno == EAGAIN || errno == EINTR))
			return;
		if (n <= 0) {
			int e = n < 0 ? -errno : -EPIPE;
			failed(l, e, strerror(-e));
			return;
		}
		l->sent += (size_t)n;
		if (l->sent < TOKEN)
			return;
		if (l->source) { /* proven both ways */
			done(l, 0);
			return;
		}
		turn(l, fd, EV_READ);
		return;
	}
	ssize_t n = recv(fd, l->got + l->have, TOKEN - l->have, 0);
	if (n < 0 && (errno == EAGAIN || errno == EINTR))
		return;
	if (n <= 0) {
		failed(l, n < 0 ? -errno : -ECONNRESET, "closed before it proved itself");
		return;
	}
	l->have += (size_t)n;
	if (l->have < TOKEN)
		return;
	if (crypto_verify_32(l->got, l->theirs)) {
		failed(l, -EACCES, "wrong token (another cluster key, or not a move of ours)");
		return;
	}
	if (!l->source) {
		done(l, 0);
		return;
	}
	turn(l, fd, EV_WRITE); /* answer */
}

static void on_accept(evutil_socket_t fd, short what, void *arg)
{
	struct pagelink *l = arg;
	struct sockaddr_in a;
	socklen_t alen = sizeof(a);
	int sk = accept4(fd, (struct sockaddr *)&a, &alen, SOCK_NONBLOCK | SOCK_CLOEXEC);
	if (sk < 0)
		return;
	if (l->sk >= 0 || a.sin_family != AF_INET || a.sin_addr.s_addr != l->peer.s_addr) {
		char who[INET_ADDRSTRLEN] = "?";
		inet_ntop(AF_INET, &a.sin_addr, who, sizeof(who));
		pr_warn("page link: connection from %s refused (not the target)", who);
		close(sk);
		return;
	}
	l->sk = sk;
	l->ev = event_new(mosd.base, sk, EV_READ | EV_PERSIST, on_io, l);
	if (!l->ev || event_add(l->ev, NULL)) {
		done(l, -ENOMEM);
		return;
	}
	event_del(l->lev); /* one at a time */
}

static void on_timeout(evutil_socket_t fd, short what, void *arg)
{
	done(arg, -ETIMEDOUT);
}

/* Wait for FD (WHAT) with FN, and at most PROVE_S in all; L goes on failure. */
static struct pagelink *watch(struct pagelink *l, int fd, short what, event_callback_fn fn, struct event **ev)
{
	struct timeval tv = { PROVE_S, 0 };
	*ev = event_new(mosd.base, fd, what | EV_PERSIST, fn, l);
	l->timer = evtimer_new(mosd.base, on_timeout, l);
	if (*ev && l->timer && !event_add(*ev, NULL) && !evtimer_add(l->timer, &tv))
		return l;
	pagelink_free(l);
	errno = ENOMEM;
	return NULL;
}

static struct pagelink *fail(struct pagelink *l, int e)
{
	pagelink_free(l);
	errno = e;
	return NULL;
}

struct pagelink *pagelink_listen(const char *addr, const char *peer_addr, uint64_t move_id, const char *source,
				 const char *target, unsigned *port, pagelink_cb cb, void *arg)
{
	struct pagelink *l = alloc(true, move_id, source, target, cb, arg);
	struct sockaddr_in a = { .sin_family = AF_INET };
	socklen_t alen = sizeof(a);
	if (!l)
		return NULL;
	if (inet_pton(AF_INET, addr, &a.sin_addr) != 1 || inet_pton(AF_INET, peer_addr, &l->peer) != 1)
		return fail(l, EINVAL);
	l->lsk = socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
	if (l->lsk < 0 || bind(l->lsk, (struct sockaddr *)&a, sizeof(a)) < 0 || listen(l->lsk, 4) < 0 ||
	    getsockname(l->lsk, (struct sockaddr *)&a, &alen) < 0)
		return fail(l, errno);
	*port = ntohs(a.sin_port);
	return watch(l, l->lsk, EV_READ, on_accept, &l->lev);
}

struct pagelink *pagelink_connect(const char *local_addr, const char *addr, unsigned port, uint64_t move_id,
				  const char *source, const char *target, pagelink_cb cb, void *arg)
{
	struct pagelink *l = alloc(false, move_id, source, target, cb, arg);
	struct sockaddr_in a = { .sin_family = AF_INET, .sin_port = htons((uint16_t)port) };
	struct sockaddr_in me = { .sin_family = AF_INET };
	if (!l)
		return NULL;
	if (!port || port > 65535 || inet_pton(AF_INET, addr, &a.sin_addr) != 1 ||
	    inet_pton(AF_INET, local_addr, &me.sin_addr) != 1)
		return fail(l, EINVAL);
	if (fault_injected("mig_pagelink_forge")) /* as one without the cluster key would */
		l->mine[0] ^= 1;
	bool mute = fault_injected("mig_pagelink_mute"); /* wait to be spoken to: nobody will */
	l->sk = socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
	if (l->sk < 0 || bind(l->sk, (struct sockaddr *)&me, sizeof(me)) < 0 ||
	    (connect(l->sk, (struct sockaddr *)&a, sizeof(a)) < 0 && errno != EINPROGRESS))
		return fail(l, errno);
	/* writable once connected; a refused connect shows as a failed send */
	return watch(l, l->sk, mute ? EV_READ : EV_WRITE, on_io, &l->ev);
}
