/* imgstream.c - image directories sent as chunked frames (see imgstream.h).
 * Files only grow while criu writes them (it appends, never seeks), so a
 * file can be sent by offsets as it grows; inotify says when there is more,
 * and a file written again after it was closed is sent again from 0. */
#include "imgstream.h"
#include "conn.h"
#include "log.h"
#include "mig.h"
#include "mosd.h"
#include "msg.h"
#include <dirent.h>
#include <errno.h>
#include <event2/event.h>
#include <fcntl.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/inotify.h>
#include <sys/stat.h>
#include <unistd.h>

#define CHUNK (1u << 20)
#define QUEUE (8u << 20)        /* bytes in flight on the link */
#define LOW (2u << 20)          /* refill below this */

struct file {
	char name[256];
	int fd;
	uint64_t off;           /* sent up to here */
	bool sent;              /* at least one frame (an empty file is one empty frame) */
	bool closed;            /* the writer closed it */
	uint64_t pulled;        /* the receiver wants it up to here */
};

struct imgstream {
	struct imgstream_args a;
	char dir[PATH_MAX], text[PATH_MAX];
	struct imgstream *next;
	struct file *files;
	size_t n, cap;
	int dfd;                /* the directory */
	int ino;                /* inotify fd while following, else -1 */
	struct event *ino_ev, *later;
	uint8_t *buf;
	uint64_t bytes;
	int rc;                 /* 1 while running, then the result */
	bool writing;           /* the writer is still at work */
	unsigned opened;        /* files opened so far (for the cut fault) */
	char **pulls;           /* pulled before they appeared */
	uint64_t *pulls_upto;
	size_t n_pulls;
	bool cut;               /* the cut fault fired */
};

static struct imgstream *streams;

static void pump(struct imgstream *s);

static bool wanted(const char *name)
{
	size_t l = strlen(name);
	return name[0] != '.' && l < 256 && !(l > 4 && !strcmp(name + l - 4, ".log"));
}

static struct file *file_of(struct imgstream *s, const char *name)
{
	for (size_t i = 0; i < s->n; i++)
		if (!strcmp(s->files[i].name, name))
			return &s->files[i];
	return NULL;
}

static int add_file(struct imgstream *s, const char *name)
{
	if (!wanted(name) || file_of(s, name))
		return 0;
	if (s->n == s->cap) {
		size_t cap = s->cap ? s->cap * 2 : 32;
		struct file *f = realloc(s->files, cap * sizeof(*f));
		if (!f)
			return -ENOMEM;
		s->files = f;
		s->cap = cap;
	}
	struct file *f = &s->files[s->n];
	memset(f, 0, sizeof(*f));
	snprintf(f->name, sizeof(f->name), "%s", name);
	if (s->a.cut_fault && s->opened++ == 3 && fault_injected(s->a.cut_fault)) {
		s->cut = true; /* the link goes after the callback (it frees us) */
		return -ECONNRESET;
	}
	if ((f->fd = openat(s->dfd, name, O_RDONLY | O_CLOEXEC)) < 0)
		return errno == ENOENT ? 0 : -errno;
	f->closed = !s->writing;
	for (size_t i = 0; i < s->n_pulls; i++)
		if (!strcmp(s->pulls[i], name) && s->pulls_upto[i] > f->pulled)
			f->pulled = s->pulls_upto[i];
	s->n++;
	return 0;
}

static int scan(struct imgstream *s)
{
	int fd = dup(s->dfd), rc = 0;
	DIR *d = fd >= 0 ? fdopendir(fd) : NULL;
	struct dirent *e;
	if (!d) {
		if (fd >= 0)
			close(fd);
		return -errno;
	}
	while (!rc && (e = readdir(d)))
		if (e->d_type == DT_REG || e->d_type == DT_UNKNOWN)
			rc = add_file(s, e->d_name);
	closedir(d);
	return rc;
}

/* The end, told from the loop. */
static void finish_later(evutil_socket_t fd, short what, void *arg)
{
	struct imgstream *s = arg;
	int peer = s->a.peer;
	bool cut = s->cut;
	s->a.cb(s->a.arg, s->rc); /* may free s */
	if (cut)
		peer_drop(peer);
}

static void finish(struct imgstream *s, int rc)
{
	if (s->rc != 1)
		return;
	s->rc = rc;
	if (s->ino_ev)
		event_del(s->ino_ev);
	struct timeval now = { 0, 0 };
	evtimer_add(s->later, &now);
}

static int send_chunk(struct imgstream *s, struct file *f, size_t n)
{
	struct mos_msg m;
	int rc;
	if ((rc = mos_msg_init(&m, s->a.type)) || (rc = mos_msg_reserve(&m, n + 512)))
		return rc;
	mos_msg_put_u32(&m, MOS_T_JOBID, s->a.jobid);
	mos_msg_put_u32(&m, MOS_T_RANK, s->a.rank);
	mos_msg_put_str(&m, MOS_T_NAME, f->name);
	mos_msg_put_u64(&m, MOS_T_OFFSET, f->off);
	mos_msg_put(&m, MOS_T_DATA, s->buf, n);
	if (s->a.text)
		mos_msg_put_str(&m, MOS_T_TEXT, s->a.text);
	rc = peer_send(s->a.peer, &m);
	mos_msg_free(&m);
	if (!rc) {
		f->off += n;
		f->sent = true;
		s->bytes += n;
	}
	return rc;
}

static size_t pending(struct imgstream *s)
{
	struct mos_conn *c = peer_conn(s->a.peer);
	return c ? mos_conn_output_pending(c) : 0;
}

/* Everything sent that can be now? */
static bool all_sent(struct imgstream *s)
{
	for (size_t i = 0; i < s->n; i++) {
		struct stat st;
		struct file *f = &s->files[i];
		if (!f->sent || fstat(f->fd, &st) < 0 || (uint64_t)st.st_size != f->off)
			return false;
	}
	return true;
}

static void drained(void *arg)
{
	int peer = (int)(intptr_t)arg;
	for (struct imgstream *s = streams; s; s = s->next)
		if (s->a.peer == peer && s->rc == 1)
			pump(s);
}

static void pump(struct imgstream *s)
{
	int rc = 0;
	bool more = true;
	while (!rc && more && s->rc == 1 && pending(s) < QUEUE) {
		more = false;
		for (size_t i = 0; !rc && i < s->n && pending(s) < QUEUE; i++) {
			struct file *f = &s->files[i];
			size_t want = CHUNK;
			if (s->a.eager) { /* the rest as far as the receiver asks */
				uint64_t upto = f->pulled > s->a.eager ? f->pulled : s->a.eager;
				if (f->off >= upto && f->sent)
					continue;
				if (upto - f->off < want)
					want = (size_t)(upto - f->off);
			}
			ssize_t n = pread(f->fd, s->buf, want, (off_t)f->off);
			if (n < 0)
				rc = -errno;
			else if (n > 0 || (!f->sent && f->closed))
				rc = send_chunk(s, f, (size_t)n), more = true;
		}
	}
	if (rc) {
		finish(s, rc);
		return;
	}
	struct mos_conn *c = peer_conn(s->a.peer);
	if (c && pending(s) >= QUEUE)
		mos_conn_on_drain(c, drained, (void *)(intptr_t)s->a.peer, LOW);
	else if (!c && peer_index(mosd.self->name) != s->a.peer)
		finish(s, -ECONNRESET);
	else if (!s->writing && all_sent(s))
		finish(s, 0);
}

/* A file written again after it was closed starts over. */
static void restart(struct file *f)
{
	f->off = 0;
	f->sent = false;
	f->closed = false;
}

static void on_inotify(evutil_socket_t fd, short what, void *arg)
{
	struct imgstream *s = arg;
	char buf[4096] __attribute__((aligned(__alignof__(struct inotify_event))));
	ssize_t len;
	int rc = 0;
	while (!rc && (len = read(fd, buf, sizeof(buf))) > 0)
		for (char *p = buf; !rc && p < buf + len;) {
			struct inotify_event *e = (struct inotify_event *)p;
			p += sizeof(*e) + e->len;
			if (e->mask & IN_Q_OVERFLOW) {
				rc = scan(s);
				continue;
			}
			if (!e->len)
				continue;
			struct file *f = file_of(s, e->name);
			if (!f && (e->mask & (IN_CREATE | IN_MOVED_TO | IN_MODIFY | IN_CLOSE_WRITE)))
				rc = add_file(s, e->name), f = file_of(s, e->name);
			if (f && f->closed && (e->mask & IN_MODIFY))
				restart(f);
			if (f && (e->mask & IN_CLOSE_WRITE))
				f->closed = true;
		}
	if (rc)
		finish(s, rc);
	else
		pump(s);
}

struct imgstream *imgstream_start(const struct imgstream_args *a)
{
	struct imgstream *s = calloc(1, sizeof(*s));
	int rc = -ENOMEM;
	if (!s)
		goto fail;
	s->a = *a;
	snprintf(s->dir, sizeof(s->dir), "%s", a->dir);
	s->a.dir = s->dir;
	if (a->text) {
		snprintf(s->text, sizeof(s->text), "%s", a->text);
		s->a.text = s->text;
	}
	s->rc = 1;
	s->ino = -1;
	s->writing = a->follow;
	s->dfd = open(s->dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	s->buf = malloc(CHUNK);
	s->later = evtimer_new(mosd.base, finish_later, s);
	s->next = streams;
	streams = s;
	if (s->dfd < 0) {
		rc = -errno;
		goto fail;
	}
	if (!s->buf || !s->later)
		goto fail;
	if (a->follow) {
		s->ino = inotify_init1(IN_NONBLOCK | IN_CLOEXEC);
		if (s->ino < 0 || inotify_add_watch(s->ino, s->dir, IN_CREATE | IN_MOVED_TO | IN_MODIFY |
								IN_CLOSE_WRITE) < 0) {
			rc = -errno;
			goto fail;
		}
		if (!(s->ino_ev = event_new(mosd.base, s->ino, EV_READ | EV_PERSIST, on_inotify, s)) ||
		    event_add(s->ino_ev, NULL))
			goto fail;
	}
	if ((rc = scan(s)))
		goto fail;
	pump(s);
	return s;
fail:
	imgstream_free(s);
	errno = -rc;
	return NULL;
}

void imgstream_writer_done(struct imgstream *s)
{
	if (s->rc != 1 || !s->writing)
		return;
	s->writing = false;
	if (s->ino_ev) /* what inotify still holds, then a last look */
		on_inotify(s->ino, EV_READ, s);
	int rc = s->rc == 1 ? scan(s) : 0;
	for (size_t i = 0; !rc && i < s->n; i++) {
		struct stat st;
		struct file *f = &s->files[i];
		f->closed = true;
		if (fstat(f->fd, &st) < 0)
			rc = -errno;
		else if ((uint64_t)st.st_size < f->off) /* truncated and written again */
			restart(f), f->closed = true;
	}
	if (rc)
		finish(s, rc);
	else
		pump(s);
}

void imgstream_pull(struct imgstream *s, const char *name, uint64_t upto)
{
	if (!s || s->rc != 1)
		return;
	struct file *f = file_of(s, name);
	if (f) {
		if (upto > f->pulled)
			f->pulled = upto;
	} else { /* not seen yet */
		char **p = realloc(s->pulls, (s->n_pulls + 1) * sizeof(char *));
		uint64_t *u = p ? realloc(s->pulls_upto, (s->n_pulls + 1) * sizeof(uint64_t)) : NULL;
		s->pulls = p ? p : s->pulls;
		s->pulls_upto = u ? u : s->pulls_upto;
		if (!p || !u || !(p[s->n_pulls] = strdup(name))) {
			finish(s, -ENOMEM);
			return;
		}
		u[s->n_pulls++] = upto;
	}
	pump(s);
}

void imgstream_fail(struct imgstream *s, int rc)
{
	if (s)
		finish(s, rc);
}

void imgstream_free(struct imgstream *s)
{
	if (!s)
		return;
	for (struct imgstream **pp = &streams; *pp; pp = &(*pp)->next)
		if (*pp == s) {
			*pp = s->next;
			break;
		}
	bool others = false;
	for (struct imgstream *o = streams; o; o = o->next)
		others |= o->a.peer == s->a.peer;
	struct mos_conn *c = peer_conn(s->a.peer);
	if (c && !others)
		mos_conn_on_drain(c, NULL, NULL, 0);
	for (size_t i = 0; i < s->n; i++)
		close(s->files[i].fd);
	free(s->files);
	for (size_t i = 0; i < s->n_pulls; i++)
		free(s->pulls[i]);
	free(s->pulls);
	free(s->pulls_upto);
	if (s->ino_ev)
		event_free(s->ino_ev);
	if (s->later)
		event_free(s->later);
	if (s->ino >= 0)
		close(s->ino);
	if (s->dfd >= 0)
		close(s->dfd);
	free(s->buf);
	free(s);
}

uint64_t imgstream_bytes(const struct imgstream *s)
{
	return s ? s->bytes : 0;
}

int imgstream_manifest(const struct imgstream *s, struct mos_msg *m, unsigned tag)
{
	int rc = 0;
	for (size_t i = 0; !rc && i < s->n; i++) {
		struct stat st;
		char e[300];
		if (fstat(s->files[i].fd, &st) < 0)
			return -errno;
		snprintf(e, sizeof(e), "%llu %s", (unsigned long long)st.st_size, s->files[i].name);
		rc = mos_msg_put_str(m, tag, e);
	}
	return rc;
}

int imgstream_parse_manifest(const char *entry, uint64_t *size, const char **name)
{
	char *end;
	errno = 0;
	unsigned long long v = strtoull(entry, &end, 10);
	if (errno || end == entry || *end != ' ' || !end[1] || strchr(end + 1, '/') || end[1] == '.')
		return -EINVAL;
	*size = v;
	*name = end + 1;
	return 0;
}

int imgstream_store(const char *dir, const char *name, size_t name_len, const void *data, size_t len,
		    const uint64_t *offset)
{
	char fname[256], path[PATH_MAX];
	if (name_len == 0 || name_len >= sizeof(fname) || memchr(name, '/', name_len) || memchr(name, 0, name_len) ||
	    name[0] == '.')
		return -EINVAL;
	memcpy(fname, name, name_len);
	fname[name_len] = 0;
	snprintf(path, sizeof(path), "%s/%s", dir, fname);
	int flags = O_WRONLY | O_CREAT | O_CLOEXEC | (offset ? (*offset ? 0 : O_TRUNC) : O_APPEND);
	int fd = open(path, flags, 0600), rc = 0;
	if (fd < 0)
		return -errno;
	ssize_t n = len == 0 ? 0 : offset ? pwrite(fd, data, len, (off_t)*offset) : write(fd, data, len);
	if (n < 0)
		rc = -errno;
	else if ((size_t)n != len)
		rc = -ENOSPC;
	close(fd);
	return rc;
}
