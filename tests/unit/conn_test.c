/* conn_test.c - framed, authenticated connections (launcher/common/conn.c)
 * on a real libevent loop over socketpairs: the HELLO/AUTH handshake, queued
 * early sends, wrong keys, and a man in the middle that flips, replays,
 * relabels or reflects bytes; plain local conns; the cluster key loader. */
#include "conn.h"
#include "tap.h"
#include <errno.h>
#include <event2/event.h>
#include <fcntl.h>
#include <signal.h>
#include <sodium.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#define MAXMSG 16
#define BIG (1u << 20)

static struct event_base *base;
static const unsigned char key1[MOS_KEY_LEN] = "0123456789abcdef0123456789abcde";
static const unsigned char key2[MOS_KEY_LEN] = "0123456789abcdef0123456789abcdX";

/* One end of a connection and what it saw. */
struct side {
	struct mos_conn *c;
	int nmsg;
	uint16_t type[MAXMSG];
	char text[MAXMSG][32];
	size_t data_len;      /* DATA of the last message that had one */
	bool data_ok;         /* ... and it held the expected pattern */
	bool closed;
	int err;
	bool free_in_cb;      /* mos_conn_free() from inside the first message */
};

static void on_msg(struct mos_conn *c, struct mos_msg *m, void *arg)
{
	struct side *s = arg;
	const struct mos_field *d = mos_msg_get(m, MOS_T_DATA);
	char *t = mos_msg_get_str(m, MOS_T_TEXT);

	if (s->nmsg < MAXMSG) {
		s->type[s->nmsg] = m->type;
		snprintf(s->text[s->nmsg], sizeof(s->text[0]), "%s", t ? t : "");
	}
	s->nmsg++;
	free(t);
	if (d) {
		s->data_len = d->len;
		s->data_ok = true;
		for (size_t i = 0; i < d->len; i++)
			s->data_ok &= d->data[i] == (uint8_t)(i * 7 + 1);
	}
	if (s->free_in_cb) {
		mos_conn_free(c);
		s->c = NULL;
	}
}

static void on_close(struct mos_conn *c, int err, void *arg)
{
	struct side *s = arg;

	s->closed = true;
	s->err = err;
}

static void tick(evutil_socket_t fd, short what, void *arg) {}

static long now_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return ts.tv_sec * 1000L + ts.tv_nsec / 1000000;
}

/* run_until - turn the loop until DONE(arg) or MS milliseconds passed. */
static bool run_until(bool (*done)(void *), void *arg, int ms)
{
	struct event *t = evtimer_new(base, tick, NULL);
	struct timeval tv = { 0, 10000 };
	long end = now_ms() + ms;
	bool ok;

	while (!(ok = done(arg)) && now_ms() < end) {
		evtimer_add(t, &tv);
		event_base_loop(base, EVLOOP_ONCE);
	}
	event_free(t);
	return ok;
}

struct want { struct side *s; int nmsg; bool closed; };
static bool want_done(void *arg)
{
	for (struct want *w = arg; w->s; w++)
		if (w->s->nmsg < w->nmsg || (w->closed && !w->s->closed))
			return false;
	return true;
}

static void send_text(struct side *s, unsigned type, const char *text)
{
	struct mos_msg m;

	mos_msg_init(&m, type);
	mos_msg_put_i32(&m, MOS_T_CODE, 0);
	mos_msg_put_str(&m, MOS_T_TEXT, text);
	if (mos_conn_send(s->c, &m))
		printf("# send '%s' failed\n", text);
	mos_msg_free(&m);
}

/* The frame length of a REPLY carrying TEXT, as send_text() builds it. */
static size_t text_frame_len(const char *text)
{
	return MOS_MSG_HDR_LEN + 6 + 4 + 6 + strlen(text);
}

static size_t hello_len(const char *name)
{
	return MOS_MSG_HDR_LEN + 6 + strlen(name) + 6 + 32;
}

static void free_side(struct side *s)
{
	mos_conn_free(s->c);
	s->c = NULL;
}

static void pair(int sv[2])
{
	if (socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sv)) {
		printf("Bail out! socketpair: %s\n", strerror(errno));
		exit(1);
	}
}

static void open_side(struct side *s, int fd, const unsigned char *key, const char *name)
{
	memset(s, 0, sizeof(*s));
	s->c = mos_conn_new(base, fd, key, name, on_msg, on_close, s);
	if (!s->c) {
		printf("Bail out! mos_conn_new\n");
		exit(1);
	}
}

/* A MIG_DATA frame of LEN bytes of the pattern on_msg() checks. */
static int send_big(struct side *s, size_t len)
{
	struct mos_msg m;
	uint8_t *big = malloc(len);
	for (size_t i = 0; i < len; i++)
		big[i] = (uint8_t)(i * 7 + 1);
	mos_msg_init(&m, MOS_MSG_MIG_DATA);
	mos_msg_put_u32(&m, MOS_T_JOBID, 1);
	mos_msg_put_u32(&m, MOS_T_RANK, 0);
	mos_msg_put_str(&m, MOS_T_NAME, "pages-1.img");
	mos_msg_put(&m, MOS_T_DATA, big, len);
	int rc = mos_conn_send(s->c, &m);
	mos_msg_free(&m);
	free(big);
	return rc;
}


static void test_handshake(void)
{
	struct side a, b;
	int sv[2];

	pair(sv);
	open_side(&a, sv[0], key1, "nodeA");
	open_side(&b, sv[1], key1, "nodeB");
	send_text(&a, MOS_MSG_REPLY, "a1");
	send_text(&a, MOS_MSG_REPLY, "a2");
	send_text(&a, MOS_MSG_REPLY, "a3");
	send_text(&b, MOS_MSG_REPLY, "b1");
	TAP_OK(mos_conn_output_pending(a.c) == hello_len("nodeA"),
	       "before the handshake only HELLO is written; sends are queued (%zu bytes pending)",
	       mos_conn_output_pending(a.c));
	TAP_OK(!mos_conn_is_authenticated(a.c) && !strcmp(mos_conn_peer_name(a.c), ""),
	       "not authenticated, no peer name yet");
	struct want w[] = { { &a, 1, false }, { &b, 3, false }, { 0 } };
	TAP_OK(run_until(want_done, w, 5000), "same key: queued messages arrive both ways");
	TAP_OK(mos_conn_is_authenticated(a.c) && mos_conn_is_authenticated(b.c), "both ends authenticated");
	TAP_IS_STR(mos_conn_peer_name(a.c), "nodeB", "A knows its peer as nodeB");
	TAP_IS_STR(mos_conn_peer_name(b.c), "nodeA", "B knows its peer as nodeA");
	TAP_OK(b.nmsg == 3 && !strcmp(b.text[0], "a1") && !strcmp(b.text[1], "a2") && !strcmp(b.text[2], "a3") &&
		       b.type[0] == MOS_MSG_REPLY, "B got a1 a2 a3, in order, once each");
	TAP_OK(a.nmsg == 1 && !strcmp(a.text[0], "b1"), "A got b1");

	/* after the handshake: sent at once, and a 1 MiB frame crosses in pieces */
	TAP_OK(send_big(&a, BIG) == 0 && send_big(&b, BIG) == 0, "1 MiB sends queue");
	send_text(&b, MOS_MSG_REPLY, "b2");
	struct want w2[] = { { &a, 3, false }, { &b, 4, false }, { 0 } };
	TAP_OK(run_until(want_done, w2, 5000), "1 MiB frames arrive both ways");
	TAP_OK(a.data_len == BIG && a.data_ok && b.data_len == BIG && b.data_ok, "their bytes are intact");
	TAP_OK(a.type[1] == MOS_MSG_MIG_DATA && !strcmp(a.text[2], "b2"), "and in order with what followed");

	/* orderly close: A drains and closes, B sees EOF; neither with an error */
	send_text(&a, MOS_MSG_REPLY, "last");
	mos_conn_close_after_flush(a.c);
	TAP_OK(mos_conn_is_closed(a.c), "close_after_flush: A is closing");
	struct mos_msg e;
	mos_msg_init(&e, MOS_MSG_PS_REQ);
	TAP_OK(mos_conn_send(a.c, &e) == -EPIPE, "send on a closing conn: -EPIPE");
	mos_msg_free(&e);
	struct want w3[] = { { &a, 0, true }, { &b, 5, false }, { 0 } };
	TAP_OK(run_until(want_done, w3, 5000) && a.err == 0, "A closes with 0 once flushed (err %d)", a.err);
	free_side(&a);
	struct want w4[] = { { &b, 5, true }, { 0 } };
	TAP_OK(run_until(want_done, w4, 5000) && b.err == 0 && !strcmp(b.text[4], "last"),
	       "B got 'last', then EOF with 0 (err %d)", b.err);
	free_side(&b);
}

/* Over TCP (loopback) big frames arrive in many segments: mosd reads what a
 * frame lacks at once and asks the kernel to wake it only when most of it
 * is there. Frames must still come whole, and a small message that follows,
 * at once or much later, must not wait for anything. */
static bool not_done(void *arg) { return false; }

static void test_tcp_big(void)
{
	struct sockaddr_in a = { .sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK) };
	socklen_t al = sizeof(a);
	int l = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0), cfd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
	if (l < 0 || cfd < 0 || bind(l, (struct sockaddr *)&a, sizeof(a)) || listen(l, 1) ||
	    getsockname(l, (struct sockaddr *)&a, &al) || connect(cfd, (struct sockaddr *)&a, sizeof(a))) {
		printf("Bail out! loopback TCP: %s\n", strerror(errno));
		exit(1);
	}
	int sfd = accept4(l, NULL, NULL, SOCK_CLOEXEC);
	close(l);
	evutil_make_socket_nonblocking(cfd);
	evutil_make_socket_nonblocking(sfd);
	struct side x, y;
	open_side(&x, cfd, key1, "nodeA");
	open_side(&y, sfd, key1, "nodeB");
	for (int i = 0; i < 3; i++)
		if (send_big(&x, 3u << 20))
			printf("# big send failed\n");
	send_text(&x, MOS_MSG_REPLY, "after");
	struct want w[] = { { &y, 4, false }, { 0 } };
	TAP_OK(run_until(want_done, w, 10000), "TCP: three 3 MiB frames and a small one arrive (%d)", y.nmsg);
	TAP_OK(y.data_len == (3u << 20) && y.data_ok && !strcmp(y.text[3], "after"),
	       "whole and in order, the small one last");
	run_until(not_done, NULL, 200); /* idle: nothing half-read is waited for now */
	send_text(&x, MOS_MSG_REPLY, "late");
	struct want w2[] = { { &y, 5, false }, { 0 } };
	long t0 = now_ms();
	TAP_OK(run_until(want_done, w2, 5000) && !strcmp(y.text[4], "late"),
	       "a small message sent later arrives (in %ld ms)", now_ms() - t0);
	free_side(&x);
	free_side(&y);
}

static void test_wrong_key(void)
{
	struct side a, b;
	int sv[2];

	pair(sv);
	open_side(&a, sv[0], key1, "nodeA");
	open_side(&b, sv[1], key2, "nodeB");
	send_text(&a, MOS_MSG_REPLY, "secret-a");
	send_text(&b, MOS_MSG_REPLY, "secret-b");
	struct want w[] = { { &a, 0, true }, { &b, 0, true }, { 0 } };
	TAP_OK(run_until(want_done, w, 5000), "different keys: both ends close");
	TAP_OK(a.err == -EACCES && b.err == -EACCES, "both with -EACCES (A %d, B %d)", a.err, b.err);
	TAP_OK(a.nmsg == 0 && b.nmsg == 0, "no message delivered");
	TAP_OK(!mos_conn_is_authenticated(a.c) && !mos_conn_is_authenticated(b.c), "neither is authenticated");
	free_side(&a);
	free_side(&b);
}

/* --- a man in the middle: A <-> relay <-> B ---------------------------- */
struct dir {
	int from, to;
	size_t pos;               /* stream offset of the next byte */
	size_t flip_at;           /* XOR 0x01 into this byte; SIZE_MAX: none */
	const uint8_t *subst;     /* replace [subst_at, subst_at + subst_len) */
	size_t subst_at, subst_len;
	size_t dup_off, dup_len;  /* send these bytes again right after them */
	bool dup_done;
	uint8_t log[8192];        /* the first bytes as forwarded */
	struct event *ev;
};

static void write_all(int fd, const uint8_t *p, size_t n)
{
	while (n) {
		ssize_t w = write(fd, p, n);
		if (w <= 0)
			return; /* the far end is gone */
		p += w;
		n -= (size_t)w;
	}
}

static void relay(evutil_socket_t fd, short what, void *arg)
{
	struct dir *d = arg;
	uint8_t buf[65536];
	ssize_t n = read(d->from, buf, sizeof(buf));

	if (n <= 0) {
		shutdown(d->to, SHUT_WR);
		event_del(d->ev);
		return;
	}
	for (ssize_t i = 0; i < n; i++) {
		size_t p = d->pos + (size_t)i;
		if (p == d->flip_at)
			buf[i] ^= 0x01;
		if (d->subst && p >= d->subst_at && p < d->subst_at + d->subst_len)
			buf[i] = d->subst[p - d->subst_at];
		if (p < sizeof(d->log))
			d->log[p] = buf[i];
	}
	write_all(d->to, buf, (size_t)n);
	d->pos += (size_t)n;
	if (d->dup_len && !d->dup_done && d->pos >= d->dup_off + d->dup_len) {
		write_all(d->to, d->log + d->dup_off, d->dup_len);
		d->dup_done = true;
	}
}

struct mitm {
	struct side a, b;
	struct dir ab, ba;
	int fds[2];
};

static void dir_init(struct dir *d, int from, int to)
{
	memset(d, 0, sizeof(*d));
	d->from = from;
	d->to = to;
	d->flip_at = SIZE_MAX;
	d->ev = event_new(base, from, EV_READ | EV_PERSIST, relay, d);
	event_add(d->ev, NULL);
}

/* A (nodeA, key1) -> ab -> B (nodeB, key1), and back through ba. Set the
 * directions' tampering before the loop runs. */
static void mitm_open(struct mitm *t)
{
	int sa[2], sb[2];

	pair(sa);
	pair(sb);
	t->fds[0] = sa[1];
	t->fds[1] = sb[1];
	dir_init(&t->ab, sa[1], sb[1]);
	dir_init(&t->ba, sb[1], sa[1]);
	open_side(&t->a, sa[0], key1, "nodeA");
	open_side(&t->b, sb[0], key1, "nodeB");
}

static void mitm_close(struct mitm *t)
{
	free_side(&t->a);
	free_side(&t->b);
	event_free(t->ab.ev);
	event_free(t->ba.ev);
	close(t->fds[0]);
	close(t->fds[1]);
}

/* Where A's first message starts in the A->B stream: after HELLO and AUTH. */
#define FIRST_MSG (hello_len("nodeA") + MOS_MSG_HDR_LEN + MOS_MSG_MAC_LEN)

static void test_untouched_relay(void)
{
	struct mitm t;

	mitm_open(&t);
	send_text(&t.a, MOS_MSG_REPLY, "one");
	send_text(&t.b, MOS_MSG_REPLY, "back");
	struct want w[] = { { &t.a, 1, false }, { &t.b, 1, false }, { 0 } };
	TAP_OK(run_until(want_done, w, 5000) && !strcmp(t.b.text[0], "one") && !strcmp(t.a.text[0], "back"),
	       "through an honest relay: messages both ways");
	TAP_OK(t.ab.pos == FIRST_MSG + text_frame_len("one") + MOS_MSG_MAC_LEN, "A->B stream is HELLO, AUTH, frame + MAC (%zu)",
	       t.ab.pos);
	mitm_close(&t);
}

static void test_tamper(const char *what, size_t flip_at, int want_msgs)
{
	struct mitm t;

	mitm_open(&t);
	t.ab.flip_at = flip_at;
	send_text(&t.a, MOS_MSG_REPLY, "one");
	send_text(&t.a, MOS_MSG_REPLY, "two");
	struct want w[] = { { &t.b, 0, true }, { 0 } };
	TAP_OK(run_until(want_done, w, 5000) && t.b.err == -EACCES, "%s: B closes with -EACCES (err %d)", what,
	       t.b.err);
	TAP_OK(t.b.nmsg == want_msgs && (!want_msgs || !strcmp(t.b.text[0], "one")),
	       "%s: B delivered only the %d message(s) before it", what, want_msgs);
	mitm_close(&t);
}

static void test_replay(void)
{
	struct mitm t;
	size_t one = text_frame_len("one") + MOS_MSG_MAC_LEN;

	mitm_open(&t);
	t.ab.dup_off = FIRST_MSG;
	t.ab.dup_len = one;
	send_text(&t.a, MOS_MSG_REPLY, "one");
	struct want w[] = { { &t.b, 0, true }, { 0 } };
	bool closed = run_until(want_done, w, 5000);
	TAP_OK(t.ab.dup_done, "replay: the relay sent A's first frame twice");
	TAP_OK(closed && t.b.err == -EACCES, "replay: B closes with -EACCES (err %d)", t.b.err);
	TAP_OK(t.b.nmsg == 1 && !strcmp(t.b.text[0], "one"), "replay: 'one' delivered once (%d)", t.b.nmsg);
	struct mos_msg m;
	mos_msg_init(&m, MOS_MSG_PS_REQ);
	TAP_OK(mos_conn_send(t.b.c, &m) == -EPIPE, "replay: B refuses to send");
	mos_msg_free(&m);
	mitm_close(&t);

	/* a frame recorded in one session is no good in the next */
	uint8_t old[256];
	mitm_open(&t);
	send_text(&t.a, MOS_MSG_REPLY, "one");
	struct want w1[] = { { &t.b, 1, false }, { 0 } };
	run_until(want_done, w1, 5000);
	memcpy(old, t.ab.log + FIRST_MSG, one);
	mitm_close(&t);
	mitm_open(&t);
	t.ab.subst = old;
	t.ab.subst_at = FIRST_MSG;
	t.ab.subst_len = one;
	send_text(&t.a, MOS_MSG_REPLY, "one");
	closed = run_until(want_done, w, 5000);
	TAP_OK(closed && t.b.err == -EACCES && t.b.nmsg == 0,
	       "a frame from an earlier session: -EACCES, nothing delivered (err %d, %d msgs)", t.b.err, t.b.nmsg);
	mitm_close(&t);
}

/* HELLO travels in clear, but what it says is bound into the keys. */
static void test_hello_tamper(void)
{
	struct mitm t;

	mitm_open(&t);
	t.ab.flip_at = MOS_MSG_HDR_LEN + 6 + 5 + 6 + 3; /* a nonce byte */
	send_text(&t.a, MOS_MSG_REPLY, "one");
	struct want w[] = { { &t.a, 0, true }, { &t.b, 0, true }, { 0 } };
	TAP_OK(run_until(want_done, w, 5000) && t.a.err == -EACCES && t.b.err == -EACCES && !t.b.nmsg,
	       "altered HELLO nonce: both ends -EACCES (A %d, B %d)", t.a.err, t.b.err);
	mitm_close(&t);

	mitm_open(&t);
	t.ab.subst = (const uint8_t *)"nodeX";
	t.ab.subst_at = MOS_MSG_HDR_LEN + 6;
	t.ab.subst_len = 5;
	send_text(&t.a, MOS_MSG_REPLY, "one");
	bool closed = run_until(want_done, w, 5000);
	TAP_OK(closed && t.b.err == -EACCES && t.a.err == -EACCES && !t.b.nmsg,
	       "HELLO relabelled nodeA -> nodeX: both ends -EACCES, not a peer 'nodeX' (A %d, B %d, B sees '%s')",
	       t.a.err, t.b.err, mos_conn_peer_name(t.b.c));
	mitm_close(&t);
}

/* Everything A writes comes straight back to A. */
static void test_reflect(void)
{
	struct side a;
	struct dir d;
	int sv[2];

	pair(sv);
	dir_init(&d, sv[1], sv[1]);
	open_side(&a, sv[0], key1, "nodeA");
	send_text(&a, MOS_MSG_REPLY, "one");
	struct want w[] = { { &a, 0, true }, { 0 } };
	TAP_OK(run_until(want_done, w, 5000) && a.err == -EACCES && !a.nmsg,
	       "own HELLO reflected back: -EACCES, nothing delivered (err %d, %d msgs)", a.err, a.nmsg);
	free_side(&a);
	event_free(d.ev);
	close(sv[1]);
}

static void test_plain(void)
{
	struct side a, b;
	int sv[2];
	pid_t pid;
	uid_t uid;
	gid_t gid;

	pair(sv);
	open_side(&a, sv[0], NULL, NULL);
	open_side(&b, sv[1], NULL, "ignored");
	send_text(&a, MOS_MSG_REPLY, "a1");
	TAP_OK(mos_conn_output_pending(a.c) == text_frame_len("a1"), "no key: a send is written at once, no MAC");
	send_text(&b, MOS_MSG_REPLY, "b1");
	send_text(&a, MOS_MSG_REPLY, "a2");
	struct want w[] = { { &a, 1, false }, { &b, 2, false }, { 0 } };
	TAP_OK(run_until(want_done, w, 5000) && !strcmp(b.text[0], "a1") && !strcmp(b.text[1], "a2") &&
		       !strcmp(a.text[0], "b1"), "no key: messages both ways");
	TAP_OK(!mos_conn_is_authenticated(a.c) && !strcmp(mos_conn_peer_name(b.c), ""),
	       "no key: not authenticated, no peer name");
	TAP_OK(mos_conn_peercred(b.c, &pid, &uid, &gid) == 0 && pid == getpid() && uid == getuid() &&
		       gid == getgid(), "peercred is this process");
	int x = 1;
	mos_conn_set_data(a.c, &x);
	TAP_OK(mos_conn_get_data(a.c) == &x, "per-conn data");
	free_side(&a);
	free_side(&b);

	/* a callback may free its own conn: nothing after it is delivered */
	pair(sv);
	open_side(&a, sv[0], NULL, NULL);
	open_side(&b, sv[1], NULL, NULL);
	b.free_in_cb = true;
	send_text(&a, MOS_MSG_REPLY, "a1");
	send_text(&a, MOS_MSG_REPLY, "a2");
	struct want w2[] = { { &a, 0, true }, { 0 } };
	TAP_OK(run_until(want_done, w2, 5000) && a.err == 0, "freed from its own callback: the peer sees EOF");
	TAP_OK(b.nmsg == 1 && !b.closed && !b.c, "one message delivered, no close callback after the free");
	free_side(&a);
}

/* Raw bytes, then EOF, into a conn; returns after it closed. The raw end
 * stays open for reading so that the conn's own writes do not fail first;
 * what the conn wrote back is left in back[0..*backlen). */
static uint8_t back[4096];
static size_t backlen;
static void raw_frame(const unsigned char *key, const void *bytes, size_t len, struct side *s)
{
	int sv[2];
	ssize_t n;

	pair(sv);
	open_side(s, sv[0], key, "nodeA");
	write_all(sv[1], bytes, len);
	shutdown(sv[1], SHUT_WR);
	struct want w[] = { { s, 0, true }, { 0 } };
	if (!run_until(want_done, w, 5000))
		printf("# conn did not close\n");
	fcntl(sv[1], F_SETFL, O_NONBLOCK);
	backlen = 0;
	while (backlen < sizeof(back) && (n = read(sv[1], back + backlen, sizeof(back) - backlen)) > 0)
		backlen += (size_t)n;
	close(sv[1]);
}

/* told - the conn answered with one ERROR {CODE, TEXT}, and nothing else. */
static bool told(int code, const char *text)
{
	struct mos_msg m;
	char err[256];
	int32_t c = 0;
	uint8_t *f = malloc(backlen ? backlen : 1);
	bool ok;

	memcpy(f, back, backlen);
	if (mos_msg_decode(&m, f, backlen, err, sizeof(err))) {
		printf("# answer (%zu bytes): %s\n", backlen, err);
		return false;
	}
	char *t = mos_msg_get_str(&m, MOS_T_TEXT);
	ok = m.type == MOS_MSG_ERROR && !mos_msg_get_i32(&m, MOS_T_CODE, &c) && c == code && t && !strcmp(t, text);
	if (!ok)
		printf("# answer: %s %d '%s'\n", mos_msg_name(m.type), c, t ? t : "");
	free(t);
	mos_msg_free(&m);
	return ok;
}

static void test_bad_frames(void)
{
	struct side s;
	struct mos_msg m;

	raw_frame(NULL, "XXXXXXXXXXXXXXXXXXXXXXXX", 24, &s);
	TAP_OK(s.closed && !s.nmsg, "no key, garbage header: closed, nothing delivered (err %d)", s.err);
	TAP_OK(told(-EPROTO, "bad frame header"), "... and the client is told: ERROR -EPROTO 'bad frame header'");
	free_side(&s);

	mos_msg_init(&m, MOS_MSG_REPLY);
	mos_msg_put_str(&m, MOS_T_TEXT, "no code");
	mos_msg_finish(&m, 0);
	raw_frame(NULL, m.buf, m.len, &s);
	TAP_OK(s.closed && !s.nmsg, "no key, REPLY without CODE: closed, nothing delivered (err %d)", s.err);
	TAP_OK(told(-EBADMSG, "bad REPLY message: required field 'code' missing"),
	       "... and the client is told which field");
	free_side(&s);
	mos_msg_free(&m);

	mos_msg_init(&m, MOS_MSG_REPLY);
	mos_msg_put_i32(&m, MOS_T_CODE, 0);
	mos_msg_finish(&m, 0);
	raw_frame(NULL, m.buf, m.len, &s);
	TAP_OK(s.closed && s.err == 0 && s.nmsg == 1 && !backlen,
	       "no key, a frame then EOF: delivered, then closed with 0, nothing said");
	free_side(&s);

	raw_frame(key1, m.buf, m.len, &s);
	TAP_OK(s.closed && s.err == -EPROTO && !s.nmsg, "key, first frame not a HELLO: -EPROTO (err %d)", s.err);
	free_side(&s);
	mos_msg_free(&m);

	mos_msg_init(&m, MOS_MSG_HELLO);
	mos_msg_put_str(&m, MOS_T_NODE, "nodeB");
	mos_msg_finish(&m, 0);
	raw_frame(key1, m.buf, m.len, &s);
	TAP_OK(s.closed && s.err == -EBADMSG && !s.nmsg, "key, HELLO without NONCE: -EBADMSG (err %d)", s.err);
	free_side(&s);
	mos_msg_free(&m);

	mos_msg_init(&m, MOS_MSG_HELLO);
	mos_msg_put_str(&m, MOS_T_NODE, "nodeB");
	mos_msg_put(&m, MOS_T_NONCE, "short", 5);
	mos_msg_finish(&m, 0);
	raw_frame(key1, m.buf, m.len, &s);
	TAP_OK(s.closed && s.err == -EPROTO && !s.nmsg, "key, HELLO with a 5-byte nonce: -EPROTO (err %d)", s.err);
	free_side(&s);
	mos_msg_free(&m);

	/* a full HELLO, then an AUTH without a MAC: the next MAC bytes never come */
	uint8_t buf[512];
	size_t n;
	mos_msg_init(&m, MOS_MSG_HELLO);
	mos_msg_put_str(&m, MOS_T_NODE, "nodeB");
	mos_msg_put(&m, MOS_T_NONCE, "01234567890123456789012345678901", 32);
	mos_msg_finish(&m, 0);
	memcpy(buf, m.buf, m.len);
	n = m.len;
	mos_msg_free(&m);
	mos_msg_init(&m, MOS_MSG_AUTH);
	mos_msg_finish(&m, 0);
	memcpy(buf + n, m.buf, m.len);
	n += m.len;
	memset(buf + n, 0, MOS_MSG_MAC_LEN); /* a zero MAC */
	n += MOS_MSG_MAC_LEN;
	mos_msg_free(&m);
	raw_frame(key1, buf, n, &s);
	TAP_OK(s.closed && s.err == -EACCES && !mos_conn_is_authenticated(s.c) && !s.nmsg,
	       "key, AUTH with a forged MAC: -EACCES (err %d)", s.err);
	free_side(&s);
}

static const char *put_file(const char *dir, const char *name, const void *data, size_t len, mode_t mode)
{
	static char path[256];
	int fd;

	snprintf(path, sizeof(path), "%s/%s", dir, name);
	fd = open(path, O_WRONLY | O_CREAT | O_TRUNC, 0600);
	if (fd < 0 || write(fd, data, len) != (ssize_t)len || fchmod(fd, mode) || close(fd)) {
		printf("Bail out! cannot write %s\n", path);
		exit(1);
	}
	return path;
}

static void test_key_load(void)
{
	char dir[] = "/tmp/conn_test.XXXXXX", err[512], want[512];
	unsigned char k[MOS_KEY_LEN], k2[MOS_KEY_LEN], h[MOS_KEY_LEN];
	const char *p;

	if (!mkdtemp(dir)) {
		printf("Bail out! mkdtemp\n");
		exit(1);
	}
	p = put_file(dir, "group", key1, 32, 0640);
	snprintf(want, sizeof(want), "%s: cluster key must not be readable by group or others (chmod 600)", p);
	err[0] = 0;
	TAP_OK(mos_key_load(p, k, err, sizeof(err)) == -EPERM, "group-readable key file: -EPERM");
	TAP_IS_STR(err, want, "... and says chmod 600");
	p = put_file(dir, "other", key1, 32, 0604);
	TAP_OK(mos_key_load(p, k, err, sizeof(err)) == -EPERM, "other-readable key file: -EPERM");

	p = put_file(dir, "short", "12345678", 8, 0600);
	snprintf(want, sizeof(want), "%s: cluster key too short (8 bytes, need at least 16)", p);
	TAP_OK(mos_key_load(p, k, err, sizeof(err)) == -EINVAL, "8-byte key file: -EINVAL");
	TAP_IS_STR(err, want, "... and says how long it must be");
	p = put_file(dir, "empty", "", 0, 0600);
	TAP_OK(mos_key_load(p, k, err, sizeof(err)) == -EINVAL && strstr(err, "too short (0 bytes"), "empty key file");

	char path[300];
	snprintf(path, sizeof(path), "%s/missing", dir);
	snprintf(want, sizeof(want), "%s: cannot read cluster key: No such file or directory", path);
	TAP_OK(mos_key_load(path, k, err, sizeof(err)) == -ENOENT, "missing key file: -ENOENT");
	TAP_IS_STR(err, want, "... and says so");

	p = put_file(dir, "good", key1, 32, 0600);
	TAP_OK(mos_key_load(p, k, err, sizeof(err)) == 0, "0600 32-byte key loads");
	crypto_generichash(h, sizeof(h), key1, 32, NULL, 0);
	TAP_OK(!memcmp(k, h, sizeof(k)), "the key is the BLAKE2b hash of the file");
	p = put_file(dir, "good16", key1, 16, 0400);
	TAP_OK(mos_key_load(p, k2, err, sizeof(err)) == 0 && memcmp(k, k2, sizeof(k)),
	       "a 16-byte 0400 file loads, to another key");

	static const char *const names[] = { "group", "other", "short", "empty", "good", "good16" };
	for (size_t i = 0; i < sizeof(names) / sizeof(names[0]); i++) {
		snprintf(path, sizeof(path), "%s/%s", dir, names[i]);
		unlink(path);
	}
	rmdir(dir);
}

int main(void)
{
	if (sodium_init() < 0) {
		printf("Bail out! sodium_init\n");
		return 1;
	}
	signal(SIGPIPE, SIG_IGN); /* as in mosd: a peer gone mid-write is an error, not a death */
	base = event_base_new();
	test_handshake();
	test_tcp_big();
	test_wrong_key();
	test_untouched_relay();
	test_tamper("flipped text byte in the 2nd frame", FIRST_MSG + text_frame_len("one") + MOS_MSG_MAC_LEN + 16 + 6 + 4 + 6,
		    1);
	test_tamper("flipped MAC byte of the 1st frame", FIRST_MSG + text_frame_len("one") + 5, 0);
	test_tamper("flipped seq byte of the 1st frame", FIRST_MSG + 8, 0);
	test_tamper("flipped seq byte of AUTH", hello_len("nodeA") + 8, 0);
	test_tamper("flipped MAC byte of AUTH", hello_len("nodeA") + MOS_MSG_HDR_LEN + MOS_MSG_MAC_LEN - 1, 0);
	test_replay();
	test_hello_tamper();
	test_reflect();
	test_plain();
	test_bad_frames();
	test_key_load();
	event_base_free(base);
	return TAP_DONE();
}
