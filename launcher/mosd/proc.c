/* proc.c - the processes that run on this node, whatever their home: start
 * each in its own PID namespace under mosinit (so it can later be restored on
 * any node without a PID clash), relay its stdio to its home node, deliver
 * signals, and report its exit home once all its output has gone. */
#include "mosd.h"
#include "log.h"
#include "util.h"
#include "criu.h"
#include "mig.h"
#include "pmixhost.h"
#include "bind.h"
#include <errno.h>
#include <event2/buffer.h>
#include <event2/bufferevent.h>
#include <event2/event.h>
#include <fcntl.h>
#include <grp.h>
#include <pthread.h>
#include <sched.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/syscall.h>
#include <sys/uio.h>
#include <sys/wait.h>
#include <unistd.h>

#define IO_CHUNK 65536
#define STACK_SIZE (256 * 1024)

static pid_t job_pgid(struct proc *p);

int proc_init(void) { return 0; }

void proc_fini(void)
{
	proc_kill_all();
	mos_bind_fini();
}

struct proc *proc_find(uint32_t jobid, uint32_t rank)
{
	for (struct proc *p = mosd.procs; p; p = p->next)
		if (p->jobid == jobid && p->rank == rank)
			return p;
	return NULL;
}

struct proc *proc_find_pid(pid_t pid)
{
	for (struct proc *p = mosd.procs; p; p = p->next)
		if (p->pid == pid || job_pgid(p) == pid)
			return p;
	return NULL;
}

unsigned proc_count_running(void)
{
	unsigned n = 0;
	for (struct proc *p = mosd.procs; p; p = p->next)
		n += p->state == PROC_RUNNING;
	return n;
}

static int home_index(struct proc *p) { return peer_index(p->home); }

static void send_home(struct proc *p, struct mos_msg *m)
{
	int rc = peer_send(home_index(p), m);
	if (rc)
		pr_warn("job %u rank %u: cannot reach home %s: %s", p->jobid, p->rank, p->home, strerror(-rc));
}

void proc_free(struct proc *p)
{
	if (p->pmix_ns)
		pmixhost_proc_gone(p);
	for (struct proc **pp = &mosd.procs; *pp; pp = &(*pp)->next)
		if (*pp == p) {
			*pp = p->next;
			break;
		}
	if (p->out) bufferevent_free(p->out);
	if (p->err) bufferevent_free(p->err);
	if (p->in) bufferevent_free(p->in);
	if (p->status_ev) event_free(p->status_ev);
	if (p->status_fd >= 0) close(p->status_fd);
	free(p->cmd);
	free(p);
}

static void read_status(struct proc *p)
{
	int ws;
	if (p->have_status || p->status_fd < 0)
		return;
	if (read(p->status_fd, &ws, sizeof(ws)) == (ssize_t)sizeof(ws)) {
		p->wstatus = ws;
		p->have_status = true;
	}
}

/* Exit goes home only after the last byte of output did: same link, in order. */
static void maybe_finish(struct proc *p)
{
	if (!p->reaped || !p->out_eof || !p->err_eof)
		return;
	read_status(p);
	char buf[96];
	pr_info("job %u rank %u (pid %d) %s", p->jobid, p->rank, (int)p->pid, mos_status_str(p->wstatus, buf, sizeof(buf)));
	struct mos_msg m;
	if (!mos_msg_init(&m, MOS_MSG_EXIT)) {
		mos_msg_put_u32(&m, MOS_T_JOBID, p->jobid);
		mos_msg_put_u32(&m, MOS_T_RANK, p->rank);
		mos_msg_put_i32(&m, MOS_T_STATUS, p->wstatus);
		mos_msg_put_str(&m, MOS_T_NODE, mosd.self->name);
		mos_msg_put_u64(&m, MOS_T_SEQ, p->io_seq);
		mos_msg_put_u32(&m, MOS_T_KIND, pmixhost_proc_gone(p));
		send_home(p, &m);
		mos_msg_free(&m);
	}
	proc_free(p);
}

static void send_io(struct proc *p, unsigned stream, const void *data, size_t len)
{
	struct mos_msg m;
	if (mos_msg_init(&m, MOS_MSG_IO))
		return;
	mos_msg_put_u32(&m, MOS_T_JOBID, p->jobid);
	mos_msg_put_u32(&m, MOS_T_RANK, p->rank);
	mos_msg_put_u32(&m, MOS_T_STREAM, stream);
	mos_msg_put_u64(&m, MOS_T_SEQ, p->io_seq++);
	mos_msg_put(&m, MOS_T_DATA, data, len);
	send_home(p, &m);
	mos_msg_free(&m);
}

static void on_output(struct bufferevent *bev, void *arg)
{
	struct proc *p = arg;
	unsigned stream = bev == p->out ? 1 : 2;
	struct evbuffer *in = bufferevent_get_input(bev);
	uint8_t buf[IO_CHUNK];
	size_t n;
	while ((n = evbuffer_remove(in, buf, sizeof(buf))) > 0)
		send_io(p, stream, buf, n);
}

static void on_output_event(struct bufferevent *bev, short what, void *arg)
{
	struct proc *p = arg;
	if (!(what & (BEV_EVENT_EOF | BEV_EVENT_ERROR)))
		return;
	on_output(bev, arg);
	bool is_out = bev == p->out;
	send_io(p, is_out ? 1 : 2, NULL, 0); /* EOF */
	bufferevent_free(bev);
	if (is_out) {
		p->out = NULL;
		p->out_eof = true;
	} else {
		p->err = NULL;
		p->err_eof = true;
	}
	maybe_finish(p);
}

static void on_status(evutil_socket_t fd, short what, void *arg)
{
	struct proc *p = arg;
	read_status(p);
	event_del(p->status_ev);
}

static void on_stdin_drained(struct bufferevent *bev, void *arg)
{
	struct proc *p = arg;
	if (bev == p->in && p->in_eof) {
		bufferevent_free(bev);
		p->in = NULL;
	}
}

/* --- starting a process --------------------------------------------------- */

struct child_args {
	int in, out, err, st;
	uid_t uid;
	gid_t gid;
	gid_t *groups;
	size_t ngroups;
	const char *cwd;
	char **argv, **envp;
	const char *mosinit;
	const struct mos_bind *bind;
};

/* The child shares mosd's memory until it execs (CLONE_VM): only system
 * calls from here on, no malloc, no stdio, no locale (strerrordesc_np is a
 * table lookup), and glibc's set*id() would signal mosd's other threads. */
static void child_fail(const char *what, const char *arg)
{
	const char *why = strerrordesc_np(errno);
	struct iovec v[] = {
		{ (void *)"mosexec: ", 9 }, { (void *)what, strlen(what) }, { (void *)" ", arg ? 1 : 0 },
		{ (void *)(arg ? arg : ""), arg ? strlen(arg) : 0 }, { (void *)": ", 2 },
		{ (void *)(why ? why : "error"), strlen(why ? why : "error") }, { (void *)"\n", 1 },
	};
	if (writev(2, v, 7) < 0) { /* nothing left to tell */ }
	_exit(126);
}

/* Runs in the new PID namespace as its PID 1, until it execs mosinit; mosd's
 * thread that cloned it waits meanwhile (CLONE_VFORK), all signals blocked. */
static int child_main(void *arg)
{
	struct child_args *a = arg;
	struct sigaction dfl = { .sa_handler = SIG_DFL };
	sigset_t none;
	sigemptyset(&none);
	for (int s = 1; s < NSIG; s++)
		sigaction(s, &dfl, NULL); /* no handler of mosd's may run here */
	sigprocmask(SIG_SETMASK, &none, NULL);
	if (dup2(a->in, 0) < 0 || dup2(a->out, 1) < 0 || dup2(a->err, 2) < 0 || dup2(a->st, 3) < 0)
		_exit(126);
	syscall(SYS_close_range, 4, ~0U, 0);
	if (a->bind->len && syscall(SYS_sched_setaffinity, 0, a->bind->len, a->bind->mask) < 0)
		child_fail("cannot bind to cpus", NULL);
	setsid();
	if (syscall(SYS_setgroups, a->ngroups, a->groups) < 0)
		child_fail("setgroups", NULL);
	if (syscall(SYS_setgid, a->gid) < 0)
		child_fail("setgid", NULL);
	if (syscall(SYS_setuid, a->uid) < 0)
		child_fail("setuid", NULL);
	if (chdir(a->cwd) < 0)
		child_fail("cannot change directory to", a->cwd);
	execve(a->mosinit, a->argv, a->envp);
	child_fail("cannot start", a->mosinit);
	return 126;
}

static char **build_env(struct mos_msg *m, struct proc *p, const char *appnum)
{
	char **env = mos_msg_get_strv(m, MOS_T_ENV);
	size_t n = 0;
	while (env && env[n])
		n++;
	char **e = realloc(env, (n + 8) * sizeof(char *));
	if (!e) {
		mos_strv_free(env);
		return NULL;
	}
	if (asprintf(&e[n++], "MOSEXEC_JOBID=%u", p->jobid) < 0 ||
	    asprintf(&e[n++], "MOSEXEC_RANK=%u", p->rank) < 0 ||
	    asprintf(&e[n++], "MOSEXEC_SIZE=%u", p->nprocs) < 0 ||
	    asprintf(&e[n++], "MOSEXEC_HOME=%s", p->home) < 0 ||
	    asprintf(&e[n++], "MOSEXEC_APPNUM=%s", appnum) < 0) {
		e[n - 1] = NULL;
		mos_strv_free(e);
		return NULL;
	}
	e[n] = NULL;
	return e;
}

static char *join_argv(char **argv)
{
	size_t len = 1;
	for (char **a = argv; *a; a++)
		len += strlen(*a) + 1;
	char *s = calloc(1, len);
	for (char **a = argv; s && *a; a++) {
		if (a != argv)
			strcat(s, " ");
		strcat(s, *a);
	}
	return s;
}

void proc_drain_output(struct proc *p)
{
	struct bufferevent *b[2] = { p->out, p->err };
	for (int i = 0; i < 2; i++) {
		if (!b[i])
			continue;
		uint8_t buf[IO_CHUNK];
		ssize_t n;
		int fd = bufferevent_getfd(b[i]);
		on_output(b[i], p); /* what libevent already read */
		while ((n = read(fd, buf, sizeof(buf))) > 0)
			send_io(p, i + 1, buf, (size_t)n);
	}
}

int proc_make_pipes(int fds[4][2])
{
	for (int i = 0; i < 4; i++)
		if (pipe2(fds[i], O_CLOEXEC) < 0) {
			int e = errno;
			while (i--) {
				close(fds[i][0]);
				close(fds[i][1]);
			}
			return -e;
		}
	return 0;
}

/* Wire the parent's ends of the pipes into the loop. */
int proc_attach_fds(struct proc *p, int fds[4][2])
{
	evutil_make_socket_nonblocking(fds[0][1]);
	evutil_make_socket_nonblocking(fds[1][0]);
	evutil_make_socket_nonblocking(fds[2][0]);
	p->in = bufferevent_socket_new(mosd.base, fds[0][1], BEV_OPT_CLOSE_ON_FREE);
	p->out = bufferevent_socket_new(mosd.base, fds[1][0], BEV_OPT_CLOSE_ON_FREE);
	p->err = bufferevent_socket_new(mosd.base, fds[2][0], BEV_OPT_CLOSE_ON_FREE);
	p->status_fd = fds[3][0];
	p->status_ev = event_new(mosd.base, p->status_fd, EV_READ, on_status, p);
	if (!p->in || !p->out || !p->err || !p->status_ev)
		return -ENOMEM;
	bufferevent_setcb(p->out, on_output, NULL, on_output_event, p);
	bufferevent_setcb(p->err, on_output, NULL, on_output_event, p);
	bufferevent_enable(p->out, EV_READ);
	bufferevent_enable(p->err, EV_READ);
	bufferevent_setcb(p->in, NULL, on_stdin_drained, NULL, p);
	event_add(p->status_ev, NULL);
	if (p->rank != 0 || p->stdin_closed) { /* only rank 0 reads the user's stdin */
		bufferevent_free(p->in);
		p->in = NULL;
	}
	return 0;
}

static int start_proc(struct proc *p, struct mos_msg *m, char **argv, char **envp, const struct mos_bind *bind)
{
	int fds[4][2], rc;
	uint32_t gid = 0;
	mos_msg_get_u32(m, MOS_T_GID, &gid);
	char *cwd = mos_msg_get_str(m, MOS_T_CWD);
	gid_t groups[256];
	size_t ng = 0;
	for (size_t i = 0; i < m->n_fields && ng < 256; i++)
		if (m->fields[i].tag == MOS_T_GROUP)
			groups[ng++] = mos_field_u32(&m->fields[i]);

	if ((rc = proc_make_pipes(fds))) {
		free(cwd);
		return rc;
	}
	struct child_args a = { fds[0][0], fds[1][1], fds[2][1], fds[3][1], p->uid, gid, groups, ng,
				cwd, argv, envp, mosd.mosinit, bind };
	/* Like posix_spawn: no copy of mosd's page tables (a fork-like clone
	 * cost grew with mosd's size), the child borrows its memory until exec. */
	sigset_t all, old;
	sigfillset(&all);
	void *stack = mmap(NULL, STACK_SIZE, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS | MAP_STACK, -1, 0);
	pthread_sigmask(SIG_SETMASK, &all, &old);
	pid_t pid = stack == MAP_FAILED ? -1 : clone(child_main, (char *)stack + STACK_SIZE,
						     CLONE_VM | CLONE_VFORK | CLONE_NEWPID | SIGCHLD, &a);
	rc = pid < 0 ? -errno : 0;
	pthread_sigmask(SIG_SETMASK, &old, NULL);
	if (stack != MAP_FAILED)
		munmap(stack, STACK_SIZE);
	free(cwd);
	close(fds[0][0]);
	close(fds[1][1]);
	close(fds[2][1]);
	close(fds[3][1]);
	if (rc) {
		for (int i = 0; i < 4; i++)
			close(fds[i][i == 0 ? 1 : 0]);
		return rc;
	}
	p->pid = pid;
	return proc_attach_fds(p, fds);
}

static void reply_spawned(struct mos_msg *req, uint32_t jobid, uint32_t rank, int code, pid_t pid, const char *text)
{
	struct mos_msg r;
	char *home = mos_msg_get_str(req, MOS_T_HOME);
	int idx = home ? peer_index(home) : -1;
	free(home);
	if (idx < 0 || mos_msg_init(&r, MOS_MSG_SPAWNED))
		return;
	mos_msg_put_u32(&r, MOS_T_JOBID, jobid);
	mos_msg_put_u32(&r, MOS_T_RANK, rank);
	mos_msg_put_i32(&r, MOS_T_CODE, code);
	mos_msg_put_u32(&r, MOS_T_PID, (uint32_t)pid);
	mos_msg_put_str(&r, MOS_T_NODE, mosd.self->name);
	if (text)
		mos_msg_put_str(&r, MOS_T_TEXT, text);
	peer_send(idx, &r);
	mos_msg_free(&r);
}

void proc_on_spawn(struct mos_msg *m)
{
	uint32_t jobid = 0, rank = 0, uid = 0, nprocs = 1, appnum = 0;
	char text[256] = "", appbuf[16];
	char **argv = NULL, **envp = NULL, **full = NULL;
	struct mos_bind bind;
	char *home = mos_msg_get_str(m, MOS_T_HOME);
	int rc = -ENOMEM;

	mos_msg_get_u32(m, MOS_T_JOBID, &jobid);
	mos_msg_get_u32(m, MOS_T_RANK, &rank);
	mos_msg_get_u32(m, MOS_T_UID, &uid);
	mos_msg_get_u32(m, MOS_T_NPROCS, &nprocs);
	mos_msg_get_u32(m, MOS_T_APPNUM, &appnum);
	struct proc *p = calloc(1, sizeof(*p));
	if (!p || !home)
		goto fail;
	if (proc_find(jobid, rank) || peer_index(home) < 0) {
		rc = -EEXIST;
		snprintf(text, sizeof(text), "duplicate rank or unknown home");
		goto fail;
	}
	p->jobid = jobid;
	p->rank = rank;
	p->nprocs = nprocs;
	p->uid = uid;
	p->status_fd = -1;
	p->start_ms = mos_now_ms();
	snprintf(p->home, sizeof(p->home), "%s", home);
	snprintf(appbuf, sizeof(appbuf), "%u", appnum);
	argv = mos_msg_get_strv(m, MOS_T_ARGV);
	if (!argv || !argv[0])
		goto fail;
	size_t n = 0;
	while (argv[n])
		n++;
	full = calloc(n + 2, sizeof(char *));
	envp = build_env(m, p, appbuf);
	if (!full || !envp)
		goto fail;
	if ((rc = pmixhost_spawn_env(m, p, &envp, text, sizeof(text))))
		goto fail;
	full[0] = (char *)"mosinit";
	memcpy(full + 1, argv, n * sizeof(char *));
	p->cmd = join_argv(argv);
	if ((rc = mos_bind_plan(m, mosd.self->name, &bind, text, sizeof(text))))
		goto fail;
	if ((rc = start_proc(p, m, full, envp, &bind))) {
		snprintf(text, sizeof(text), "cannot start the process: %s", strerror(-rc));
		goto fail;
	}
	p->next = mosd.procs;
	mosd.procs = p;
	pr_info("job %u rank %u started: pid %d, home %s: %s", jobid, rank, (int)p->pid, home, p->cmd);
	reply_spawned(m, jobid, rank, 0, p->pid, text[0] ? text : NULL); /* --report-bindings */
	goto out;
fail:
	pr_warn("job %u rank %u not started: %s", jobid, rank, text[0] ? text : strerror(-rc));
	reply_spawned(m, jobid, rank, rc, 0, text[0] ? text : NULL);
	if (p && p->pid == 0) {
		if (p->pmix_ns)
			pmixhost_proc_gone(p);
		free(p->cmd);
		free(p);
	}
out:
	free(full);
	mos_strv_free(argv);
	mos_strv_free(envp);
	free(home);
}

/* --- signals and exits ---------------------------------------------------- */

/* The job's process group inside the pod: the pod root's first child. */
static pid_t job_pgid(struct proc *p)
{
	char path[64];
	snprintf(path, sizeof(path), "/proc/%d/task/%d/children", (int)p->pid, (int)p->pid);
	FILE *f = fopen(path, "r");
	int pid = 0;
	if (f) {
		if (fscanf(f, "%d", &pid) != 1)
			pid = 0;
		fclose(f);
	}
	return pid;
}

static void deliver(struct proc *p, int sig)
{
	pid_t pg = sig == SIGKILL ? 0 : job_pgid(p);
	if (pg > 0 && kill(-pg, sig) == 0)
		return;
	kill(p->pid, sig); /* mosinit forwards what it can catch; KILL ends the pod */
}

static void for_job(struct mos_msg *m, int sig)
{
	uint32_t jobid = 0, rank = 0;
	bool one = mos_msg_get_u32(m, MOS_T_RANK, &rank) == 0;
	mos_msg_get_u32(m, MOS_T_JOBID, &jobid);
	for (struct proc *p = mosd.procs; p; p = p->next)
		if (p->jobid == jobid && (!one || p->rank == rank) && !p->reaped) {
			deliver(p, sig);
			if (sig == SIGTSTP || sig == SIGSTOP)
				p->state = PROC_STOPPED;
			else if (sig == SIGCONT)
				p->state = PROC_RUNNING;
		}
}

void proc_on_signal(struct mos_msg *m)
{
	uint32_t sig = 0;
	mos_msg_get_u32(m, MOS_T_SIG, &sig);
	if (sig > 0 && sig < 65)
		for_job(m, (int)sig);
}

void proc_on_kill_job(struct mos_msg *m)
{
	for_job(m, SIGKILL);
}

void proc_on_stdin(struct mos_msg *m)
{
	uint32_t jobid = 0, rank = 0;
	mos_msg_get_u32(m, MOS_T_JOBID, &jobid);
	mos_msg_get_u32(m, MOS_T_RANK, &rank);
	struct proc *p = proc_find(jobid, rank);
	const struct mos_field *d = mos_msg_get(m, MOS_T_DATA);
	if (p && p->mig && mig_forward_stdin(p, m))
		return;
	if (!p || !p->in) {
		mig_on_stdin(jobid, rank, d); /* for a process arriving here */
		return;
	}
	if (d && d->len) {
		bufferevent_write(p->in, d->data, d->len);
		return;
	}
	/* EOF: close once what is queued has been written. */
	p->in_eof = true;
	if (evbuffer_get_length(bufferevent_get_output(p->in)) == 0) {
		bufferevent_free(p->in);
		p->in = NULL;
		p->stdin_closed = true;
	}
}

void proc_reap(void)
{
	int ws;
	pid_t pid;
	while ((pid = waitpid(-1, &ws, WNOHANG)) > 0) {
		if (criu_reaped(pid, ws))
			continue;
		mig_note_reaped(pid, ws);
		for (struct proc *p = mosd.procs; p; p = p->next)
			if (p->pid == pid) {
				proc_on_reaped(p, ws);
				break;
			}
	}
}

void proc_on_reaped(struct proc *p, int ws)
{
	if (p->mig)
		mig_out_ended(p);
	p->reaped = true;
	p->state = PROC_EXITED;
	read_status(p);
	if (!p->have_status)
		p->wstatus = ws;
	maybe_finish(p);
}

void proc_home_lost(const char *home)
{
	for (struct proc *p = mosd.procs; p; p = p->next)
		if (!strcmp(p->home, home) && !p->reaped) {
			pr_warn("job %u rank %u: home %s lost, ending the process", p->jobid, p->rank, home);
			kill(p->pid, SIGKILL);
		}
}

void proc_kill_all(void)
{
	for (struct proc *p = mosd.procs; p; p = p->next)
		if (!p->reaped)
			kill(p->pid, SIGKILL);
}
