/* conn.c - framed, authenticated message connections (see conn.h). */
#include "conn.h"
#include "log.h"
#include <arpa/inet.h>
#include <errno.h>
#include <event2/buffer.h>
#include <event2/bufferevent.h>
#include <event2/event.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <sodium.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/uio.h>
#include <sys/stat.h>
#include <unistd.h>

#define NONCE_LEN 32

enum conn_state { CS_HELLO, CS_AUTH, CS_OPEN, CS_CLOSED };

struct pending {
	struct pending *next;
	size_t len;
	uint8_t buf[];
};

struct mos_conn {
	struct bufferevent *bev;
	enum conn_state state;
	bool authed;                 /* key in use */
	unsigned char key[MOS_KEY_LEN];
	unsigned char k_tx[crypto_auth_KEYBYTES], k_rx[crypto_auth_KEYBYTES];
	unsigned char my_nonce[NONCE_LEN];
	char self[64], peer[64];
	uint32_t seq_tx, seq_rx;
	bool keys_ready;             /* peer HELLO seen: we can MAC */
	struct pending *q_head, *q_tail;
	mos_conn_msg_cb on_msg;
	mos_conn_close_cb on_close;
	void *arg, *data;
	bool closing, in_cb, dead;
	char last_err[256];           /* why the last frame was refused */
	void (*drain_cb)(void *arg);
	void *drain_arg;
	int lowat;                   /* SO_RCVLOWAT now set (0: the default) */
};

static void conn_fail(struct mos_conn *c, int err)
{
	if (c->state == CS_CLOSED)
		return;
	c->state = CS_CLOSED;
	bufferevent_disable(c->bev, EV_READ | EV_WRITE);
	if (c->on_close)
		c->on_close(c, err, c->arg);
}

/* One direction's key: both nonces and both node names, sender first, so
 * that what each HELLO claimed (not only its nonce) is authenticated. */
static void derive_dir(unsigned char *out, const unsigned char *key, const unsigned char *from_nonce,
		       const unsigned char *to_nonce, const char *from, const char *to)
{
	crypto_generichash_state st;
	unsigned char l;

	crypto_generichash_init(&st, key, MOS_KEY_LEN, crypto_auth_KEYBYTES);
	crypto_generichash_update(&st, (const unsigned char *)"mosexec1", 8);
	crypto_generichash_update(&st, from_nonce, NONCE_LEN);
	crypto_generichash_update(&st, to_nonce, NONCE_LEN);
	l = (unsigned char)strlen(from); /* names are < 64 bytes */
	crypto_generichash_update(&st, &l, 1);
	crypto_generichash_update(&st, (const unsigned char *)from, l);
	l = (unsigned char)strlen(to);
	crypto_generichash_update(&st, &l, 1);
	crypto_generichash_update(&st, (const unsigned char *)to, l);
	crypto_generichash_final(&st, out, crypto_auth_KEYBYTES);
	sodium_memzero(&st, sizeof(st));
}

static void derive(struct mos_conn *c, const unsigned char *peer_nonce)
{
	derive_dir(c->k_tx, c->key, c->my_nonce, peer_nonce, c->self, c->peer);
	derive_dir(c->k_rx, c->key, peer_nonce, c->my_nonce, c->peer, c->self);
	c->keys_ready = true;
}

/* A frame's MAC: Poly1305 under a one-time key, the ChaCha20 keystream of
 * the direction's session key at nonce SEQ (the ChaCha20-Poly1305
 * construction, authentication only). A key never serves two frames, and it
 * is several times faster than HMAC on migration images. */
static void frame_mac(unsigned char mac[MOS_MSG_MAC_LEN], const uint8_t *buf, size_t len, uint32_t seq,
		      const unsigned char *key)
{
	unsigned char otk[crypto_onetimeauth_KEYBYTES], nonce[crypto_stream_chacha20_NONCEBYTES] = { 0 };
	uint32_t s = htole32(seq);
	memcpy(nonce, &s, sizeof(s));
	crypto_stream_chacha20(otk, sizeof(otk), nonce, key);
	crypto_onetimeauth(mac, buf, len, otk);
	sodium_memzero(otk, sizeof(otk));
}

/* Hand a frame that found the output queue empty to the kernel now, not on
 * the loop's next turn: a daemon that goes on with other work after sending
 * (a source that finishes a move after telling the target to resume) would
 * hold it back meanwhile. libevent keeps the queue's front frozen for its
 * own writer; if we empty the queue its writer writes nothing and would not
 * call on_write, so a bulk sender waiting for the drain is told by a
 * deferred trigger. */
static void write_now(struct mos_conn *c)
{
	struct evbuffer *out = bufferevent_get_output(c->bev);
	evbuffer_unfreeze(out, 1);
	int n = evbuffer_write(out, bufferevent_getfd(c->bev));
	evbuffer_freeze(out, 1);
	if (n > 0 && c->drain_cb)
		bufferevent_trigger(c->bev, EV_WRITE, BEV_TRIG_DEFER_CALLBACKS);
}

/* Write one finished frame, with its MAC when the keys are up. */
static int write_frame(struct mos_conn *c, uint8_t *buf, size_t len)
{
	if (c->authed) {
		uint32_t seq = c->seq_tx++;
		unsigned char mac[MOS_MSG_MAC_LEN];
		uint32_t s = htole32(seq);
		bool idle = c->state == CS_OPEN && evbuffer_get_length(bufferevent_get_output(c->bev)) == 0;
		memcpy(buf + 8, &s, 4);
		frame_mac(mac, buf, len, seq, c->k_tx);
		if (bufferevent_write(c->bev, buf, len) || bufferevent_write(c->bev, mac, sizeof(mac)))
			return -ENOMEM;
		if (idle)
			write_now(c);
		return 0;
	}
	return bufferevent_write(c->bev, buf, len) ? -ENOMEM : 0;
}

static int send_raw(struct mos_conn *c, struct mos_msg *m)
{
	mos_msg_finish(m, 0);
	return bufferevent_write(c->bev, m->buf, m->len) ? -ENOMEM : 0;
}

static void flush_queue(struct mos_conn *c)
{
	while (c->q_head) {
		struct pending *p = c->q_head;
		c->q_head = p->next;
		write_frame(c, p->buf, p->len);
		free(p);
	}
	c->q_tail = NULL;
}

int mos_conn_send(struct mos_conn *c, struct mos_msg *m)
{
	if (c->state == CS_CLOSED || c->closing)
		return -EPIPE;
	mos_msg_finish(m, 0);
	if (c->authed && c->state != CS_OPEN) {
		struct pending *p = malloc(sizeof(*p) + m->len);
		if (!p)
			return -ENOMEM;
		p->next = NULL;
		p->len = m->len;
		memcpy(p->buf, m->buf, m->len);
		if (c->q_tail)
			c->q_tail->next = p;
		else
			c->q_head = p;
		c->q_tail = p;
		return 0;
	}
	return write_frame(c, m->buf, m->len);
}

int mos_conn_send_error(struct mos_conn *c, int code, const char *fmt, ...)
{
	char text[1024];
	struct mos_msg m;
	va_list ap;
	int rc;

	va_start(ap, fmt);
	vsnprintf(text, sizeof(text), fmt, ap);
	va_end(ap);
	if ((rc = mos_msg_init(&m, MOS_MSG_ERROR)))
		return rc;
	mos_msg_put_i32(&m, MOS_T_CODE, code);
	mos_msg_put_str(&m, MOS_T_TEXT, text);
	rc = mos_conn_send(c, &m);
	mos_msg_free(&m);
	return rc;
}

static int handle_handshake(struct mos_conn *c, struct mos_msg *m)
{
	if (c->state == CS_HELLO) {
		const struct mos_field *n = mos_msg_get(m, MOS_T_NONCE);
		const struct mos_field *name = mos_msg_get(m, MOS_T_NODE);
		if (m->type != MOS_MSG_HELLO || n->len != NONCE_LEN || name->len >= sizeof(c->peer))
			return -EPROTO;
		if (!memcmp(n->data, c->my_nonce, NONCE_LEN)) {
			pr_warn("our own HELLO came back: a reflected connection");
			return -EACCES; /* else both directions would share one key */
		}
		memcpy(c->peer, name->data, name->len);
		c->peer[name->len] = 0;
		derive(c, n->data);
		c->state = CS_AUTH;
		struct mos_msg a;
		if (mos_msg_init(&a, MOS_MSG_AUTH))
			return -ENOMEM;
		mos_msg_finish(&a, 0);
		int rc = write_frame(c, a.buf, a.len);
		mos_msg_free(&a);
		return rc;
	}
	/* CS_AUTH: the MAC was already verified by the reader. */
	if (m->type != MOS_MSG_AUTH)
		return -EACCES;
	c->state = CS_OPEN;
	flush_queue(c);
	return 0;
}

/* The header of the frame at the head of IN: its SEQ, payload length PLEN
 * and the bytes NEED it takes in IN (its MAC included). 1, 0 if the header
 * is not all here yet, or -errno for a bad header. */
static int frame_head(struct mos_conn *c, struct evbuffer *in, uint32_t *seq, uint32_t *plen, size_t *need)
{
	uint8_t hdr[MOS_MSG_HDR_LEN];
	uint16_t type;
	int rc;

	if (evbuffer_get_length(in) < MOS_MSG_HDR_LEN)
		return 0;
	evbuffer_copyout(in, hdr, sizeof(hdr));
	if ((rc = mos_msg_parse_header(hdr, &type, seq, plen)))
		return rc;
	*need = MOS_MSG_HDR_LEN + *plen + (c->authed && c->state != CS_HELLO ? MOS_MSG_MAC_LEN : 0);
	return 1;
}

/* One frame is complete in the input buffer: take, check, dispatch it. */
static int read_frame(struct mos_conn *c, struct evbuffer *in)
{
	uint32_t seq, plen;
	size_t need;
	int rc;

	if ((rc = frame_head(c, in, &seq, &plen, &need)) <= 0)
		return rc;
	bool with_mac = c->authed && c->state != CS_HELLO;
	if (evbuffer_get_length(in) < need)
		return 0;
	uint8_t *frame = malloc(MOS_MSG_HDR_LEN + plen);
	unsigned char mac[MOS_MSG_MAC_LEN], want[MOS_MSG_MAC_LEN];
	if (!frame)
		return -ENOMEM;
	evbuffer_remove(in, frame, MOS_MSG_HDR_LEN + plen);
	if (with_mac) {
		evbuffer_remove(in, mac, sizeof(mac));
		frame_mac(want, frame, MOS_MSG_HDR_LEN + plen, c->seq_rx, c->k_rx);
		if (sodium_memcmp(mac, want, sizeof(mac)) || seq != c->seq_rx) {
			free(frame);
			return -EACCES;
		}
		c->seq_rx++;
	}
	struct mos_msg m;
	if ((rc = mos_msg_decode(&m, frame, MOS_MSG_HDR_LEN + plen, c->last_err, sizeof(c->last_err)))) {
		pr_warn("%s%s: %s", c->peer[0] ? "peer " : "client", c->peer, c->last_err);
		return rc;
	}
	if (c->authed && c->state != CS_OPEN) {
		rc = handle_handshake(c, &m);
		mos_msg_free(&m);
		return rc ? rc : 1;
	}
	c->on_msg(c, &m, c->arg);
	mos_msg_free(&m);
	return 1;
}

/* Bytes the frame at the head of IN still lacks (0: none, or no header yet). */
static size_t frame_missing(struct mos_conn *c, struct evbuffer *in)
{
	uint32_t seq, plen;
	size_t need, have = evbuffer_get_length(in);
	return frame_head(c, in, &seq, &plen, &need) > 0 && need > have ? need - have : 0;
}

/* A big frame (image data: 1 MiB) would come in 4 KiB reads, one loop turn
 * each (libevent 2.1 reads at most 4096 bytes at a time): read what it
 * lacks straight into the input buffer, and have the kernel wake us when
 * most of the rest is here (SO_RCVLOWAT), not for each segment. Only what
 * the frame's header promises is waited for, so a small message that
 * follows is never held back. 1 if it read something. */
#define BIG_READ 16384
#define LOWAT_MAX (256 << 10)
static int read_rest(struct mos_conn *c, struct evbuffer *in)
{
	size_t missing = frame_missing(c, in);
	int fd = bufferevent_getfd(c->bev), got = 0, want = 0;
	evbuffer_unfreeze(in, 0); /* the bufferevent keeps its end frozen between its reads */
	while (missing >= BIG_READ) {
		struct evbuffer_iovec v[2];
		int nv = evbuffer_reserve_space(in, (ev_ssize_t)missing, v, 2);
		if (nv <= 0)
			break;
		size_t room = 0;
		for (int i = 0; i < nv; i++) { /* no more than the frame lacks */
			if (v[i].iov_len > missing - room)
				v[i].iov_len = missing - room;
			room += v[i].iov_len;
		}
		ssize_t n = readv(fd, (struct iovec *)v, nv);
		if (n <= 0) {
			evbuffer_commit_space(in, v, 0);
			break; /* nothing now, the end, or an error: libevent sees it */
		}
		for (int i = 0; i < nv; i++) { /* commit what came */
			size_t l = (size_t)n < v[i].iov_len ? (size_t)n : v[i].iov_len;
			v[i].iov_len = l;
			n -= (ssize_t)l;
		}
		evbuffer_commit_space(in, v, nv);
		got = 1;
		missing = frame_missing(c, in);
	}
	evbuffer_freeze(in, 0);
	if (c->authed && missing > 1)
		want = missing > LOWAT_MAX ? LOWAT_MAX : (int)missing;
	if (want != c->lowat) {
		int v = want ? want : 1;
		if (setsockopt(fd, SOL_SOCKET, SO_RCVLOWAT, &v, sizeof(v)) == 0)
			c->lowat = want;
	}
	return got;
}

/* Callbacks may free the conn: while one of ours runs, mos_conn_free()
 * only marks it dead and the outermost callback frees it on the way out. */
static void drain(struct mos_conn *c)
{
	struct evbuffer *in = bufferevent_get_input(c->bev);
	int rc = 0;

	while (c->state != CS_CLOSED && !c->closing && !c->dead &&
	       ((rc = read_frame(c, in)) > 0 || (rc == 0 && read_rest(c, in))))
		;
	if (c->state != CS_CLOSED && !c->closing && !c->dead && rc < 0) {
		if (rc == -EACCES)
			pr_err("connection from %s: authentication failed (wrong or missing cluster key?)",
			       c->peer[0] ? c->peer : "unknown peer");
		if (!c->authed) { /* a local client is told what was wrong */
			mos_conn_send_error(c, rc, "%s", c->last_err[0] ? c->last_err : "bad frame header");
			mos_conn_close_after_flush(c);
			return;
		}
		conn_fail(c, rc);
	}
}

static void leave(struct mos_conn *c)
{
	c->in_cb = false;
	if (c->dead)
		mos_conn_free(c);
}

static void on_read(struct bufferevent *bev, void *arg)
{
	struct mos_conn *c = arg;
	c->in_cb = true;
	drain(c);
	leave(c);
}

static void on_write(struct bufferevent *bev, void *arg)
{
	struct mos_conn *c = arg;
	c->in_cb = true;
	if (c->closing && evbuffer_get_length(bufferevent_get_output(bev)) == 0)
		conn_fail(c, 0);
	else if (c->drain_cb && c->state != CS_CLOSED)
		c->drain_cb(c->drain_arg);
	leave(c);
}

static void on_event(struct bufferevent *bev, short what, void *arg)
{
	struct mos_conn *c = arg;
	if (what & BEV_EVENT_CONNECTED) {
		int one = 1;
		setsockopt(bufferevent_getfd(bev), IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
		return;
	}
	c->in_cb = true;
	if (what & BEV_EVENT_EOF) {
		drain(c); /* frames may still sit in the input buffer */
		if (!c->dead)
			conn_fail(c, 0);
	} else if (what & (BEV_EVENT_ERROR | BEV_EVENT_TIMEOUT)) {
		int e = EVUTIL_SOCKET_ERROR();
		conn_fail(c, -(e ? e : ECONNRESET));
	}
	leave(c);
}

static struct mos_conn *conn_alloc(struct event_base *base, int fd, const unsigned char *key,
				   const char *self_name, mos_conn_msg_cb on_msg,
				   mos_conn_close_cb on_close, void *arg)
{
	if (sodium_init() < 0) /* picks the fast implementations; idempotent */
		return NULL;
	struct mos_conn *c = calloc(1, sizeof(*c));
	if (!c)
		return NULL;
	c->bev = bufferevent_socket_new(base, fd, BEV_OPT_CLOSE_ON_FREE);
	if (!c->bev) {
		free(c);
		return NULL;
	}
	c->on_msg = on_msg;
	c->on_close = on_close;
	c->arg = arg;
	snprintf(c->self, sizeof(c->self), "%s", self_name ? self_name : "");
	c->state = CS_OPEN;
	if (key) {
		c->authed = true;
		memcpy(c->key, key, MOS_KEY_LEN);
		randombytes_buf(c->my_nonce, NONCE_LEN);
		c->state = CS_HELLO;
	}
	bufferevent_setcb(c->bev, on_read, on_write, on_event, c);
	/* libevent moves 16 KiB per loop turn by default: too little for
	 * migration images; frames may be 16 MiB. */
	bufferevent_set_max_single_read(c->bev, 1 << 20);
	bufferevent_set_max_single_write(c->bev, 1 << 20);
	bufferevent_enable(c->bev, EV_READ | EV_WRITE);
	return c;
}

static void send_hello(struct mos_conn *c)
{
	struct mos_msg h;
	if (mos_msg_init(&h, MOS_MSG_HELLO))
		return;
	mos_msg_put_str(&h, MOS_T_NODE, c->self);
	mos_msg_put(&h, MOS_T_NONCE, c->my_nonce, NONCE_LEN);
	send_raw(c, &h);
	mos_msg_free(&h);
}

struct mos_conn *mos_conn_new(struct event_base *base, int fd, const unsigned char *key,
			      const char *self_name, mos_conn_msg_cb on_msg,
			      mos_conn_close_cb on_close, void *arg)
{
	evutil_make_socket_nonblocking(fd);
	evutil_make_socket_closeonexec(fd);
	struct mos_conn *c = conn_alloc(base, fd, key, self_name, on_msg, on_close, arg);
	if (c && key)
		send_hello(c);
	return c;
}

struct mos_conn *mos_conn_connect_tcp(struct event_base *base, const char *addr, unsigned port,
				      const unsigned char *key, const char *self_name,
				      mos_conn_msg_cb on_msg, mos_conn_close_cb on_close, void *arg)
{
	struct sockaddr_in sin = { .sin_family = AF_INET, .sin_port = htons(port) };
	if (inet_pton(AF_INET, addr, &sin.sin_addr) != 1) {
		errno = EINVAL;
		return NULL;
	}
	struct mos_conn *c = conn_alloc(base, -1, key, self_name, on_msg, on_close, arg);
	if (!c)
		return NULL;
	if (bufferevent_socket_connect(c->bev, (struct sockaddr *)&sin, sizeof(sin)) < 0) {
		bufferevent_free(c->bev);
		free(c);
		return NULL;
	}
	evutil_make_socket_closeonexec(bufferevent_getfd(c->bev));
	if (key)
		send_hello(c); /* buffered until connected */
	return c;
}

void mos_conn_close_after_flush(struct mos_conn *c)
{
	if (c->state == CS_CLOSED)
		return;
	c->closing = true;
	bufferevent_disable(c->bev, EV_READ);
	if (evbuffer_get_length(bufferevent_get_output(c->bev)) == 0)
		conn_fail(c, 0);
}

void mos_conn_free(struct mos_conn *c)
{
	if (!c)
		return;
	if (c->in_cb) { /* freed from inside its own message callback */
		c->dead = true;
		c->state = CS_CLOSED;
		return;
	}
	while (c->q_head) {
		struct pending *p = c->q_head;
		c->q_head = p->next;
		free(p);
	}
	bufferevent_free(c->bev);
	sodium_memzero(c, sizeof(*c));
	free(c);
}

const char *mos_conn_peer_name(const struct mos_conn *c) { return c->peer; }
bool mos_conn_is_authenticated(const struct mos_conn *c) { return c->authed && c->state == CS_OPEN; }
bool mos_conn_is_closed(const struct mos_conn *c) { return c->state == CS_CLOSED || c->closing; }
void *mos_conn_get_data(const struct mos_conn *c) { return c->data; }
void mos_conn_set_data(struct mos_conn *c, void *data) { c->data = data; }
void mos_conn_on_drain(struct mos_conn *c, void (*cb)(void *arg), void *arg, size_t low)
{
	c->drain_cb = cb;
	c->drain_arg = arg;
	bufferevent_setwatermark(c->bev, EV_WRITE, cb ? low : 0, 0);
}

size_t mos_conn_output_pending(const struct mos_conn *c)
{
	return evbuffer_get_length(bufferevent_get_output(c->bev));
}

int mos_conn_peercred(const struct mos_conn *c, pid_t *pid, uid_t *uid, gid_t *gid)
{
	struct ucred cr;
	socklen_t len = sizeof(cr);
	if (getsockopt(bufferevent_getfd(c->bev), SOL_SOCKET, SO_PEERCRED, &cr, &len) < 0)
		return -errno;
	*pid = cr.pid;
	*uid = cr.uid;
	*gid = cr.gid;
	return 0;
}

int mos_key_load(const char *path, unsigned char key[MOS_KEY_LEN], char *err, size_t errlen)
{
	unsigned char buf[4096];
	struct stat st;
	int fd = open(path, O_RDONLY | O_CLOEXEC);

	if (fd < 0) {
		int e = errno;
		snprintf(err, errlen, "%s: cannot read cluster key: %s", path, strerror(e));
		return -e;
	}
	if (fstat(fd, &st) == 0 && (st.st_mode & 0077)) {
		snprintf(err, errlen, "%s: cluster key must not be readable by group or others (chmod 600)", path);
		close(fd);
		return -EPERM;
	}
	ssize_t n = read(fd, buf, sizeof(buf));
	close(fd);
	if (n < 16) {
		snprintf(err, errlen, "%s: cluster key too short (%zd bytes, need at least 16)", path, n);
		return -EINVAL;
	}
	crypto_generichash(key, MOS_KEY_LEN, buf, (size_t)n, NULL, 0);
	sodium_memzero(buf, sizeof(buf));
	return 0;
}
