/* shift.c - moves PMIx upcalls from PMIx's progress thread onto the host's
 * loop: a locked FIFO plus a self-pipe whose read end is an event on the
 * host's event_base. Nothing else in pmix-plugin/ is touched off the loop. */
#include "mospmix_int.h"
#include "log.h"
#include <errno.h>
#include <event2/event.h>
#include <fcntl.h>
#include <unistd.h>

static void wake_cb(evutil_socket_t fd, short what, void *arg)
{
	char buf[256];

	while (read(fd, buf, sizeof(buf)) > 0)
		;
	mos_pmix_shift_drain();
}

int mos_pmix_shift_init(void)
{
	struct mos_pmix_server *s = &mos_pmix_srv;

	pthread_mutex_init(&s->qlock, NULL);
	s->qhead = NULL;
	s->qtail = &s->qhead;
	if (pipe2(s->qpipe, O_CLOEXEC | O_NONBLOCK) < 0)
		return -errno;
	s->qev = event_new(s->base, s->qpipe[0], EV_READ | EV_PERSIST, wake_cb, NULL);
	if (!s->qev || event_add(s->qev, NULL) < 0) {
		if (s->qev)
			event_free(s->qev);
		s->qev = NULL;
		close(s->qpipe[0]);
		close(s->qpipe[1]);
		return -ENOMEM;
	}
	return 0;
}

/* After PMIx_server_finalize: nothing can be queued any more. */
void mos_pmix_shift_fini(void)
{
	struct mos_pmix_server *s = &mos_pmix_srv;

	if (!s->qev)
		return;
	mos_pmix_shift_drain();
	event_free(s->qev);
	s->qev = NULL;
	close(s->qpipe[0]);
	close(s->qpipe[1]);
	pthread_mutex_destroy(&s->qlock);
}

void mos_pmix_shift(struct mos_pmix_work *w, void (*run)(struct mos_pmix_work *w))
{
	struct mos_pmix_server *s = &mos_pmix_srv;
	bool was_empty;

	w->run = run;
	w->next = NULL;
	pthread_mutex_lock(&s->qlock);
	was_empty = !s->qhead;
	*s->qtail = w;
	s->qtail = &w->next;
	pthread_mutex_unlock(&s->qlock);
	/* one byte per empty->non-empty transition; a full pipe already wakes */
	if (was_empty && write(s->qpipe[1], "", 1) < 0 && errno != EAGAIN)
		pr_err("pmix: cannot wake the host loop: %m");
}

void mos_pmix_shift_drain(void)
{
	struct mos_pmix_server *s = &mos_pmix_srv;
	struct mos_pmix_work *w, *next;

	pthread_mutex_lock(&s->qlock);
	w = s->qhead;
	s->qhead = NULL;
	s->qtail = &s->qhead;
	pthread_mutex_unlock(&s->qlock);
	for (; w; w = next) {
		next = w->next;
		w->run(w);
	}
}
