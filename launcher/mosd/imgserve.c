/* imgserve.c - image server for `criu restore --stream` (see imgserve.h).
 * criu's side of the protocol (criu/img-streamer.c, CRIU 4.2): per image, a
 * request {u32 len, img_streamer_request_entry{1: filename}}, our reply
 * {u32 len, img_streamer_reply_entry{1: exists}}, then, if it exists, the
 * write end of a pipe passed with SCM_RIGHTS; we write the file into it and
 * close it. */
#include "imgserve.h"
#include "log.h"
#include "mosd.h"
#include <errno.h>
#include <event2/buffer.h>
#include <event2/event.h>
#include <fcntl.h>
#include <limits.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

#define SOCK_NAME "streamer-serve.sock"
#define MAX_REQ 4096
#define WINDOW (16u << 20)      /* bytes a sender may send ahead of criu's reading */

struct feed {                   /* one image going into criu's pipe */
	struct feed *next;
	struct imgserve *s;
	size_t file;            /* index into names/sizes */
	int pipe, fd;           /* our write end; the image file (-1 until it exists) */
	loff_t off;             /* into the pipe so far */
	struct event *ev;       /* the pipe has room again */
	/* Bytes that come while criu reads the file are kept here, not put
	 * into the directory: the file's bytes from mem_start to mem_end. */
	struct evbuffer *q;
	uint64_t mem_start, mem_end;
	uint64_t granted;       /* the sender was told it may send up to here */
};

struct imgserve {
	char dir[PATH_MAX];
	char **names;
	uint64_t *sizes;
	bool *direct;           /* a file that went into criu's pipe past the directory */
	size_t n;
	int lsk, sk;            /* listening socket, criu's connection */
	struct event *lev, *sev;
	uint8_t req[MAX_REQ + 4];
	size_t have;            /* bytes of the current request */
	bool want_fd;           /* we said "exists": criu's pipe comes next */
	bool known;             /* the manifest is here */
	size_t held;            /* a request (its length) that waits for the manifest */
	size_t want_file;
	struct feed *feeds;
	imgserve_want_cb want;
	void *want_arg;
};

static void feed_free(struct feed *f)
{
	struct imgserve *s = f->s;
	for (struct feed **pp = &s->feeds; *pp; pp = &(*pp)->next)
		if (*pp == f) {
			*pp = f->next;
			break;
		}
	if (f->ev)
		event_free(f->ev);
	if (f->q)
		evbuffer_free(f->q);
	close(f->pipe);
	if (f->fd >= 0)
		close(f->fd);
	free(f);
}

/* Ask the sender for more once criu has read half of what it may send. */
static void grant(struct feed *f)
{
	struct imgserve *s = f->s;
	uint64_t upto = (uint64_t)f->off + WINDOW;
	if (upto > s->sizes[f->file])
		upto = s->sizes[f->file];
	if (s->want && upto > f->granted && (upto - f->granted >= WINDOW / 2 || upto == s->sizes[f->file])) {
		f->granted = upto;
		s->want(s->want_arg, s->names[f->file], upto);
	}
}

/* Move what the file has into the pipe: first what is in the directory,
 * then what is kept in memory. 1 when the file is through, 0 while it waits
 * for more bytes or room in the pipe, or -errno. */
static int feed_run(struct feed *f)
{
	struct imgserve *s = f->s;
	uint64_t size = s->sizes[f->file];
	while ((uint64_t)f->off < size) {
		uint64_t disk_end = f->q ? f->mem_start : size;
		ssize_t n;
		if ((uint64_t)f->off >= disk_end) { /* from memory */
			if (evbuffer_get_length(f->q) == 0)
				return 0; /* not here yet: imgserve_offer() calls again */
			n = evbuffer_write(f->q, f->pipe);
		} else {
			if (f->fd < 0) {
				char path[PATH_MAX];
				snprintf(path, sizeof(path), "%s/%s", s->dir, s->names[f->file]);
				f->fd = open(path, O_RDONLY | O_CLOEXEC);
				if (f->fd < 0)
					return errno == ENOENT ? 0 : -errno;
			}
			loff_t o = f->off;
			n = splice(f->fd, &o, f->pipe, NULL, (size_t)(disk_end - (uint64_t)f->off),
				   SPLICE_F_NONBLOCK | SPLICE_F_MOVE);
			if (n == 0) /* not here yet: imgserve_more() calls again */
				return 0;
		}
		if (n > 0) {
			f->off += n;
			grant(f);
			continue;
		}
		if (errno == EAGAIN) {
			event_add(f->ev, NULL);
			return 0;
		}
		return errno == EINTR ? 0 : -errno;
	}
	return 1;
}

static void feed_step(struct feed *f)
{
	int rc = feed_run(f);
	if (rc < 0)
		pr_warn("streaming image %s to criu: %s", f->s->names[f->file], strerror(-rc));
	if (rc != 0)
		feed_free(f);
}

static void on_pipe(evutil_socket_t fd, short what, void *arg)
{
	feed_step(arg);
}

static int reply(struct imgserve *s, bool exists)
{
	uint8_t r[6] = { 2, 0, 0, 0, 0x08, exists ? 1 : 0 };
	return send(s->sk, r, sizeof(r), MSG_NOSIGNAL) == (ssize_t)sizeof(r) ? 0 : -EIO;
}

/* A whole request is in s->req: find the name (field 1) and answer. */
static int on_request(struct imgserve *s, size_t len)
{
	const uint8_t *p = s->req + 4, *end = p + len;
	if (len < 2 || *p++ != 0x0a)
		return -EPROTO;
	uint64_t l = 0;
	for (int sh = 0; p < end && sh < 35; sh += 7) {
		l |= (uint64_t)(*p & 0x7f) << sh;
		if (!(*p++ & 0x80))
			break;
	}
	if (l > (uint64_t)(end - p))
		return -EPROTO;
	if (!s->known) { /* criu waits for our answer: so does the request */
		s->held = len;
		event_del(s->sev);
		return 0;
	}
	for (size_t i = 0; i < s->n; i++)
		if (strlen(s->names[i]) == l && !memcmp(s->names[i], p, l) && !s->direct[i]) {
			s->want_fd = true;
			s->want_file = i;
			return reply(s, true);
		}
	return reply(s, false);
}

static int take_pipe(struct imgserve *s)
{
	char dummy;
	struct iovec iov = { &dummy, 1 };
	union {
		char buf[CMSG_SPACE(sizeof(int))];
		struct cmsghdr align;
	} u;
	struct msghdr mh = { .msg_iov = &iov, .msg_iovlen = 1, .msg_control = u.buf, .msg_controllen = sizeof(u.buf) };
	ssize_t n = recvmsg(s->sk, &mh, MSG_CMSG_CLOEXEC);
	if (n < 0)
		return errno == EAGAIN ? 0 : -errno;
	struct cmsghdr *c = CMSG_FIRSTHDR(&mh);
	if (n == 0 || !c || c->cmsg_type != SCM_RIGHTS || c->cmsg_len != CMSG_LEN(sizeof(int)))
		return -EPROTO;
	int pfd;
	memcpy(&pfd, CMSG_DATA(c), sizeof(int));
	s->want_fd = false;
	struct feed *f = calloc(1, sizeof(*f));
	if (!f) {
		close(pfd);
		return -ENOMEM;
	}
	f->pipe = pfd;
	f->s = s;
	f->file = s->want_file;
	f->fd = -1;
	fcntl(f->pipe, F_SETFL, O_WRONLY | O_NONBLOCK);
	fcntl(f->pipe, F_SETPIPE_SZ, 1 << 20);
	f->ev = event_new(mosd.base, f->pipe, EV_WRITE, on_pipe, f);
	f->next = s->feeds;
	s->feeds = f;
	grant(f);
	feed_step(f);
	return 1;
}

static void on_sock(evutil_socket_t fd, short what, void *arg)
{
	struct imgserve *s = arg;
	int rc = 0;
	for (;;) {
		if (s->want_fd) {
			if ((rc = take_pipe(s)) <= 0)
				break;
			continue;
		}
		size_t need = 4;
		if (s->have >= 4) {
			uint32_t len;
			memcpy(&len, s->req, 4);
			if (len > MAX_REQ) {
				rc = -EPROTO;
				break;
			}
			need = 4 + len;
		}
		ssize_t n = recv(s->sk, s->req + s->have, need - s->have, 0);
		if (n <= 0) { /* criu is done with us (or gone) */
			rc = n == 0 || errno != EAGAIN ? -ECONNRESET : 0;
			break;
		}
		s->have += (size_t)n;
		if (s->have == need && need > 4) {
			s->have = 0;
			if ((rc = on_request(s, need - 4)) || s->held)
				break;
		}
	}
	if (rc < 0) { /* criu keeps the pipes it has; we just stop answering */
		if (rc != -ECONNRESET)
			pr_warn("image server %s: %s", s->dir, strerror(-rc));
		event_del(s->sev);
	}
}

static void on_accept(evutil_socket_t fd, short what, void *arg)
{
	struct imgserve *s = arg;
	int sk = accept4(s->lsk, NULL, NULL, SOCK_NONBLOCK | SOCK_CLOEXEC);
	if (sk < 0 || s->sk >= 0) { /* one criu per server */
		if (sk >= 0)
			close(sk);
		return;
	}
	s->sk = sk;
	s->sev = event_new(mosd.base, sk, EV_READ | EV_PERSIST, on_sock, s);
	if (s->sev)
		event_add(s->sev, NULL);
	event_del(s->lev);
}

struct imgserve *imgserve_start(const char *dir)
{
	struct imgserve *s = calloc(1, sizeof(*s));
	struct sockaddr_un a = { .sun_family = AF_UNIX };
	int e = ENOMEM;
	if (!s)
		goto fail;
	s->lsk = s->sk = -1;
	snprintf(s->dir, sizeof(s->dir), "%s", dir);
	if ((size_t)snprintf(a.sun_path, sizeof(a.sun_path), "%s/%s", dir, SOCK_NAME) >= sizeof(a.sun_path)) {
		e = ENAMETOOLONG;
		goto fail;
	}
	s->lsk = socket(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
	if (s->lsk < 0 || bind(s->lsk, (struct sockaddr *)&a, sizeof(a)) < 0 || listen(s->lsk, 1) < 0) {
		e = errno;
		goto fail;
	}
	s->lev = event_new(mosd.base, s->lsk, EV_READ | EV_PERSIST, on_accept, s);
	if (!s->lev || event_add(s->lev, NULL))
		goto fail;
	return s;
fail:
	imgserve_free(s);
	errno = e;
	return NULL;
}

void imgserve_on_want(struct imgserve *s, imgserve_want_cb want, void *arg)
{
	s->want = want;
	s->want_arg = arg;
}

int imgserve_manifest(struct imgserve *s, char *const *names, const uint64_t *sizes, size_t n)
{
	if (s->known)
		return -EALREADY;
	s->names = calloc(n + 1, sizeof(char *));
	s->sizes = calloc(n + 1, sizeof(uint64_t));
	s->direct = calloc(n + 1, sizeof(bool));
	if (!s->names || !s->sizes || !s->direct)
		return -ENOMEM;
	for (s->n = 0; s->n < n; s->n++) {
		if (!(s->names[s->n] = strdup(names[s->n])))
			return -ENOMEM;
		s->sizes[s->n] = sizes[s->n];
	}
	s->known = true;
	if (s->held) { /* answer the request that waited, then listen again */
		size_t len = s->held;
		s->held = 0;
		int rc = on_request(s, len);
		if (rc)
			return rc;
		event_add(s->sev, NULL);
		on_sock(s->sk, EV_READ, s);
	}
	return 0;
}

void imgserve_more(struct imgserve *s)
{
	for (struct feed *f = s ? s->feeds : NULL, *next; f; f = next) {
		next = f->next;
		if (!event_pending(f->ev, EV_WRITE, NULL))
			feed_step(f);
	}
}

size_t imgserve_offer(struct imgserve *s, const char *name, size_t name_len, uint64_t off, const void *data,
		      size_t len)
{
	struct feed *f = s ? s->feeds : NULL;
	while (f && !(strlen(s->names[f->file]) == name_len && !memcmp(s->names[f->file], name, name_len)))
		f = f->next;
	if (!f)
		return 0; /* criu does not read it yet: it goes into the directory */
	if (!f->q) { /* from here on the file's bytes stay in memory */
		char path[PATH_MAX];
		struct stat st;
		snprintf(path, sizeof(path), "%s/%s", s->dir, s->names[f->file]);
		uint64_t have = stat(path, &st) == 0 ? (uint64_t)st.st_size : 0;
		if (off != have || !(f->q = evbuffer_new()))
			return 0;
		f->mem_start = f->mem_end = off;
	}
	uint64_t end = f->mem_end;
	size_t direct = 0; /* criu has read all before: what its pipe takes now skips the queue */
	if (off == end && len <= s->sizes[f->file] - off && (uint64_t)f->off == off &&
	    !event_pending(f->ev, EV_WRITE, NULL)) {
		ssize_t n = write(f->pipe, data, len);
		direct = n > 0 ? (size_t)n : 0;
	}
	if (off != end || len > s->sizes[f->file] - off ||
	    evbuffer_add(f->q, (const uint8_t *)data + direct, len - direct)) {
		/* out of order, or more than the manifest said: criu cannot get
		 * this file whole, so it fails, and with it the move */
		pr_warn("image %s: %zu bytes at %llu do not follow the %llu before: the restore fails",
			s->names[f->file], len, (unsigned long long)off, (unsigned long long)end);
		feed_free(f);
		return len;
	}
	f->mem_end += len;
	f->off += direct;
	s->direct[f->file] = true;
	if (direct)
		grant(f);
	if (!event_pending(f->ev, EV_WRITE, NULL))
		feed_step(f);
	return len;
}

void imgserve_free(struct imgserve *s)
{
	if (!s)
		return;
	while (s->feeds)
		feed_free(s->feeds);
	if (s->sev)
		event_free(s->sev);
	if (s->lev)
		event_free(s->lev);
	if (s->sk >= 0)
		close(s->sk);
	if (s->lsk >= 0)
		close(s->lsk);
	for (size_t i = 0; s->names && i < s->n; i++)
		free(s->names[i]);
	free(s->names);
	free(s->sizes);
	free(s->direct);
	free(s);
}
