/* criu.c - asynchronous criu runs and image directories (see criu.h). */
#include "criu.h"
#include "log.h"
#include "mosd.h"
#include <event2/event.h>
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <unistd.h>

struct run {
	struct run *next;
	pid_t pid;
	pid_t id;      /* the handle the caller has: the pid, or a queue ticket */
	char **argv;   /* a dump's command, kept for a retry */
	int tries;
	criu_done_cb cb;
	void *arg;
};

static struct run *runs;

/* Dumps run one at a time per node: the parasite CRIU puts in a process
 * whose /proc is not its own makes a scratch directory of a fixed name, and
 * two dumps at once collide there (seen: "Can't create a directory (-17)"). */
struct queued {
	struct queued *next;
	char **argv;
	int keep[2];   /* fds criu inherits (dups, held until it starts) */
	size_t nkeep;
	criu_done_cb cb;
	void *arg;
	pid_t id;      /* the ticket handed out */
	int tries;
};
static pid_t next_ticket = 0x7f000000;
static struct queued *q_head, *q_tail;
static pid_t dump_running;
static bool can_lazy;     /* criu check: userfaultfd works (uffd_done) */
static bool lazy_checked; /* ... and that check is over */

const char *criu_path(void)
{
	const char *e = getenv("MOS_CRIU");
	if (e && *e)
		return e;
	if (access("/usr/local/sbin/criu", X_OK) == 0)
		return "/usr/local/sbin/criu";
	return "criu";
}

/* Fork criu with ARGV (and ENV, "NAME=VALUE", if not NULL); fds listed in
 * KEEP survive as they are. */
static pid_t spawn_env(char **argv, const char *env, const int *keep, size_t nkeep, criu_done_cb cb, void *arg)
{
	struct run *r = calloc(1, sizeof(*r));
	if (!r)
		return -ENOMEM;
	pid_t pid = fork();
	if (pid < 0) {
		int e = errno;
		free(r);
		return -e;
	}
	if (pid == 0) {
		int null = open("/dev/null", O_RDWR);
		dup2(null, 0);
		dup2(null, 1);
		dup2(null, 2);
		for (size_t i = 0; i < nkeep; i++) /* clear CLOEXEC on what criu must inherit */
			fcntl(keep[i], F_SETFD, 0);
		if (env)
			putenv((char *)env);
		/* criu stops each process's parasite on its way out at a hardware
		 * breakpoint, and the kernel's first one after a quiet second
		 * (its PTRACE_POKEUSER of a debug register) took 5-13 ms here,
		 * inside the freeze of every move. FI_NO_BREAKPOINTS (130) is
		 * criu's switch to the path it takes on kernels without them:
		 * stepping the parasite's last system calls (~30 us). */
		putenv("CRIU_FAULT=130");
		sigset_t none;
		sigemptyset(&none);
		sigprocmask(SIG_SETMASK, &none, NULL);
		for (int s = 1; s < NSIG; s++)
			signal(s, SIG_DFL);
		execvp(argv[0], argv);
		_exit(127);
	}
	r->pid = r->id = pid;
	r->cb = cb;
	r->arg = arg;
	r->next = runs;
	runs = r;
	return pid;
}

static pid_t spawn(char **argv, const int *keep, size_t nkeep, criu_done_cb cb, void *arg)
{
	return spawn_env(argv, NULL, keep, nkeep, cb, arg);
}

static char **dup_argv(char **argv)
{
	size_t n = 0;
	while (argv[n])
		n++;
	char **v = calloc(n + 1, sizeof(char *));
	for (size_t i = 0; v && i < n; i++)
		if (!(v[i] = strdup(argv[i]))) {
			for (size_t k = 0; k < i; k++)
				free(v[k]);
			free(v);
			return NULL;
		}
	return v;
}

static void free_argv(char **v)
{
	for (char **p = v; p && *p; p++)
		free(*p);
	free(v);
}

/* A dump starts now if none runs, else when the one before it ends. A
 * queued dump's pid is negative (-1) until it starts: callers keep the id
 * returned here only to recognise its end, which criu_reaped() reports. */
static pid_t spawn_dump(char **argv, const int *keep, size_t nkeep, criu_done_cb cb, void *arg)
{
	if (!dump_running) {
		pid_t p = spawn(argv, keep, nkeep, cb, arg);
		if (p > 0) {
			dump_running = p;
			if (!nkeep)
				runs->argv = dup_argv(argv);
		}
		return p;
	}
	struct queued *q = calloc(1, sizeof(*q));
	if (!q || !(q->argv = dup_argv(argv))) {
		free(q);
		return -ENOMEM;
	}
	q->cb = cb;
	q->arg = arg;
	for (size_t i = 0; i < nkeep && i < 2; i++) { /* the fds must stay open until the dump starts */
		char was[16], now[16];
		q->keep[q->nkeep] = fcntl(keep[i], F_DUPFD_CLOEXEC, 3);
		snprintf(was, sizeof(was), "%d", keep[i]);
		snprintf(now, sizeof(now), "%d", q->keep[q->nkeep]);
		for (char **a = q->argv; *a && a[1]; a++) /* the new number in its option */
			if ((!strcmp(*a, "--status-fd") || !strcmp(*a, "--ps-socket")) && !strcmp(a[1], was)) {
				free(a[1]);
				a[1] = strdup(now);
				break;
			}
		q->nkeep++;
	}
	if (q_tail)
		q_tail->next = q;
	else
		q_head = q;
	q_tail = q;
	q->id = next_ticket++;
	pr_debug("criu dump queued behind pid %d", (int)dump_running);
	return q->id;
}

static void start_next_dump(void)
{
	dump_running = 0;
	while (q_head && !dump_running) {
		struct queued *q = q_head;
		q_head = q->next;
		if (!q_head)
			q_tail = NULL;
		pid_t p = spawn(q->argv, q->keep, q->nkeep, q->cb, q->arg);
		for (size_t i = 0; i < q->nkeep; i++)
			close(q->keep[i]);
		if (p > 0) {
			dump_running = p;
			runs->id = q->id; /* spawn() put it first */
			runs->tries = q->tries;
			if (!q->nkeep) {
				runs->argv = q->argv;
				q->argv = NULL;
			}
		} else
			q->cb(q->arg, 127 << 8); /* could not start: a failed dump */
		free_argv(q->argv);
		free(q);
	}
}

pid_t criu_dump(pid_t pid, const char *dir, const struct criu_lazy *lazy, criu_done_cb cb, void *arg)
{
	char spid[16], psk[16], sfd[16];
	snprintf(spid, sizeof(spid), "%d", (int)pid);
	char *argv[24] = { (char *)criu_path(), "dump", "-t", spid, "-D", (char *)dir, "--leave-stopped",
			   "--file-locks", "-o", "dump.log", "-v2" };
	size_t k = 11;
	if (lazy) {
		snprintf(psk, sizeof(psk), "%d", lazy->ps_fd);
		snprintf(sfd, sizeof(sfd), "%d", lazy->status_fd);
		argv[k++] = "--lazy-pages";
		argv[k++] = "--ps-socket";
		argv[k++] = psk;
		argv[k++] = "--status-fd";
		argv[k++] = sfd;
	}
	argv[k] = NULL;
	pr_debug("criu dump -t %s -D %s%s", spid, dir, lazy ? " (lazy)" : "");
	int keep[2] = { lazy ? lazy->status_fd : -1, lazy ? lazy->ps_fd : -1 };
	return spawn_dump(argv, keep, lazy ? 2 : 0, cb, arg);
}

pid_t criu_checkpoint(pid_t pid, const char *dir, criu_done_cb cb, void *arg)
{
	char spid[16];
	snprintf(spid, sizeof(spid), "%d", (int)pid);
	char *argv[] = { (char *)criu_path(), "dump", "-t", spid, "-D", (char *)dir, "--leave-running",
			 "--file-locks", "-o", "dump.log", "-v2", NULL };
	return spawn_dump(argv, NULL, 0, cb, arg);
}

pid_t criu_lazy_pages(const char *dir, const struct criu_lazy *lazy, criu_done_cb cb, void *arg)
{
	char psk[16], sfd[16];
	snprintf(psk, sizeof(psk), "%d", lazy->ps_fd);
	snprintf(sfd, sizeof(sfd), "%d", lazy->status_fd);
	char *argv[] = { (char *)criu_path(), "lazy-pages", "--page-server", "--ps-socket", psk,
			 "-D", (char *)dir, "-o", "lazy.log", "-v2", "--status-fd", sfd, NULL };
	int keep[3] = { lazy->status_fd, lazy->ps_fd, lazy->go_fd };
	char env[48];
	snprintf(env, sizeof(env), "CRIU_LAZY_PAGES_GO_FD=%d", lazy->go_fd);
	return spawn_env(argv, lazy->go_fd >= 0 ? env : NULL, keep, lazy->go_fd >= 0 ? 3 : 2, cb, arg);
}

void criu_retarget(pid_t id, criu_done_cb cb, void *arg)
{
	for (struct run *r = runs; r; r = r->next)
		if (r->id == id) {
			r->cb = cb;
			r->arg = arg;
		}
	for (struct queued *q = q_head; q; q = q->next)
		if (q->id == id) {
			q->cb = cb;
			q->arg = arg;
		}
}

void criu_kill(pid_t id)
{
	for (struct run *r = runs; r; r = r->next)
		if (r->id == id)
			kill(r->pid, SIGKILL);
	for (struct queued **pp = &q_head; *pp; pp = &(*pp)->next)
		if ((*pp)->id == id) { /* never started: just forget it */
			struct queued *q = *pp;
			*pp = q->next;
			if (q_tail == q) {
				q_tail = NULL;
				for (struct queued *t = q_head; t; t = t->next)
					q_tail = t;
			}
			for (size_t i = 0; i < q->nkeep; i++)
				close(q->keep[i]);
			free_argv(q->argv);
			free(q);
			break;
		}
}

void criu_dump_phase_done(pid_t id)
{
	for (struct run *r = runs; r; r = r->next)
		if (r->id == id && r->pid == dump_running)
			start_next_dump();
}

pid_t criu_restore(const char *dir, const char *const *inherit, const int *fds, size_t n, unsigned how,
		   criu_done_cb cb, void *arg)
{
	char pidfile[PATH_MAX], specs[8][64];
	char *argv[40];
	size_t k = 0;
	if (n > 8)
		return -EINVAL;
	snprintf(pidfile, sizeof(pidfile), "%s/restored.pid", dir);
	argv[k++] = (char *)criu_path();
	argv[k++] = "restore";
	argv[k++] = "-D";
	argv[k++] = (char *)dir;
	argv[k++] = "-d";
	argv[k++] = "--pidfile";
	argv[k++] = pidfile;
	argv[k++] = "--file-locks";
	argv[k++] = "--manage-cgroups=ignore";
	argv[k++] = "-o";
	argv[k++] = "restore.log";
	argv[k++] = "-v2";
	if (how & CRIU_RESTORE_LAZY)
		argv[k++] = "--lazy-pages";
	if (how & CRIU_RESTORE_STREAM)
		argv[k++] = "--stream";
	if (how & CRIU_RESTORE_STOPPED)
		argv[k++] = "--leave-stopped";
	for (size_t i = 0; i < n; i++) {
		snprintf(specs[i], sizeof(specs[i]), "fd[%d]:%s", fds[i], inherit[i]);
		argv[k++] = "--inherit-fd";
		argv[k++] = specs[i];
	}
	argv[k] = NULL;
	return spawn(argv, fds, n, cb, arg);
}

/* The parasite makes "proc.crtools" in the dumped process's working
 * directory; two dumps of processes sharing one (on a shared file tree, from
 * two nodes) collide there. That failure leaves the process as it was: try
 * again a little later, a few times. */
static bool collided(char **argv)
{
	char buf[300];
	for (char **a = argv; a && *a; a++)
		if (!strcmp(*a, "-D") && a[1]) {
			criu_log_tail(a[1], "dump.log", buf, sizeof(buf));
			return strstr(buf, "Can't create a directory (-17)") != NULL;
		}
	return false;
}

static void retry_now(evutil_socket_t fd, short what, void *arg)
{
	struct queued *q = arg;
	q->next = q_head; /* first in line */
	q_head = q;
	if (!q_tail)
		q_tail = q;
	if (!dump_running)
		start_next_dump();
}

static bool retry_later(struct run *r)
{
	struct queued *q = calloc(1, sizeof(*q));
	if (!q)
		return false;
	q->argv = r->argv;
	r->argv = NULL;
	q->cb = r->cb;
	q->arg = r->arg;
	q->id = r->id;
	q->tries = r->tries + 1;
	struct timeval tv = { 0, 100000 + (long)(mos_rng_next(&mosd.rng) % 300000) };
	if (event_base_once(mosd.base, -1, EV_TIMEOUT, retry_now, q, &tv)) {
		r->argv = q->argv;
		free(q);
		return false;
	}
	pr_info("criu dump collided with another in the same working directory: trying again");
	return true;
}

bool criu_reaped(pid_t pid, int wstatus)
{
	for (struct run **pp = &runs; *pp; pp = &(*pp)->next) {
		struct run *r = *pp;
		if (r->pid != pid)
			continue;
		*pp = r->next;
		if (!(wstatus && r->argv && r->tries < 4 && collided(r->argv) && retry_later(r)))
			r->cb(r->arg, wstatus);
		free_argv(r->argv);
		free(r);
		if (pid == dump_running)
			start_next_dump();
		return true;
	}
	return false;
}

void criu_log_tail(const char *dir, const char *name, char *buf, size_t len)
{
	char path[PATH_MAX], line[512];
	snprintf(path, sizeof(path), "%s/%s", dir, name);
	snprintf(buf, len, "criu failed (no log)");
	FILE *f = fopen(path, "r");
	if (!f)
		return;
	while (fgets(line, sizeof(line), f)) {
		if (!strstr(line, "Error") && !strstr(line, "error"))
			continue;
		if (strstr(line, "RLIMIT_NOFILE")) /* harmless here, see reference/criu.md */
			continue;
		line[strcspn(line, "\n")] = 0;
		char *msg = strstr(line, "): ");
		snprintf(buf, len, "%s", msg ? msg + 3 : line);
		break; /* the first error is the cause; later ones follow from it */
	}
	fclose(f);
}

static void kdat_done(void *arg, int ws)
{
	if (ws)
		pr_debug("criu check: 0x%x (its kernel cache may be missing)", ws);
}

/* The kernel lets criu's lazy-pages fill a process's memory (userfaultfd):
 * moves default to direct. Then the kernel cache, if that check left none. */
static void uffd_done(void *arg, int ws)
{
	can_lazy = ws == 0;
	lazy_checked = true;
	pr_info("criu: %s", can_lazy ? "userfaultfd works: moves send memory directly"
				     : "no userfaultfd: moves copy the memory through tmpfs, --lazy fails");
	char *argv[] = { (char *)criu_path(), "check", NULL };
	if (access(CRIU_KDAT_DIR "/criu.kdat", F_OK) < 0 && spawn(argv, NULL, 0, kdat_done, NULL) < 0)
		pr_debug("cannot run criu check to fill its kernel cache");
}

void criu_prepare_kdat_dir(void)
{
	struct stat st;
	if (lstat(CRIU_KDAT_DIR, &st) == 0 &&
	    !(S_ISDIR(st.st_mode) && st.st_uid == 0 && !(st.st_mode & 077))) {
		char aside[PATH_MAX];
		snprintf(aside, sizeof(aside), "%s.untrusted.%d", CRIU_KDAT_DIR, (int)getpid());
		pr_warn("%s is not root's own directory: moved aside to %s", CRIU_KDAT_DIR, aside);
		if (rename(CRIU_KDAT_DIR, aside) < 0) {
			pr_warn("cannot move %s aside: %s; criu will not cache kernel facts", CRIU_KDAT_DIR,
				strerror(errno));
			return;
		}
	}
	if (mkdir(CRIU_KDAT_DIR, 0700) < 0 && errno != EEXIST)
		pr_debug("cannot make %s: %s", CRIU_KDAT_DIR, strerror(errno));
	/* Each node has its own /dev/shm: without this its first dump, often a
	 * process's first move, would probe the kernel inside the freeze (the
	 * dump of a 10 MiB process: 43 ms in criu's log instead of 17). */
	char *argv[] = { (char *)criu_path(), "check", "--feature", "uffd-noncoop", NULL };
	if (spawn(argv, NULL, 0, uffd_done, NULL) < 0)
		pr_warn("cannot run criu check: moves copy the memory through tmpfs");
}

bool criu_can_lazy(void)
{
	return can_lazy;
}

bool criu_no_lazy(void)
{
	return lazy_checked && !can_lazy;
}

void criu_rm_dir(const char *dir)
{
	DIR *d = opendir(dir);
	struct dirent *e;
	char path[PATH_MAX];
	if (!d)
		return;
	while ((e = readdir(d))) {
		if (!strcmp(e->d_name, ".") || !strcmp(e->d_name, ".."))
			continue;
		snprintf(path, sizeof(path), "%s/%s", dir, e->d_name);
		unlink(path);
	}
	closedir(d);
	rmdir(dir);
}

static void *rm_dir_thread(void *arg)
{
	criu_rm_dir(arg);
	free(arg);
	return NULL;
}

void criu_rm_dir_later(const char *dir)
{
	static unsigned n;
	char *gone = malloc(PATH_MAX);
	pthread_attr_t a;
	pthread_t t;
	/* out of the way at once: the next move of the same rank may make
	 * the same directory right after us */
	if (!gone || (size_t)snprintf(gone, PATH_MAX, "%s.gone-%u", dir, n++) >= PATH_MAX ||
	    rename(dir, gone) < 0) {
		free(gone);
		criu_rm_dir(dir);
		return;
	}
	pthread_attr_init(&a);
	pthread_attr_setdetachstate(&a, PTHREAD_CREATE_DETACHED);
	if (pthread_create(&t, &a, rm_dir_thread, gone)) {
		criu_rm_dir(gone);
		free(gone);
	}
	pthread_attr_destroy(&a);
}

int criu_clean_stale(const char *node)
{
	char base[PATH_MAX], path[PATH_MAX];
	int n = 0;
	snprintf(base, sizeof(base), "/dev/shm/mosexec-%s", node);
	DIR *d = opendir(base);
	struct dirent *e;
	while (d && (e = readdir(d))) {
		if (strncmp(e->d_name, "in-", 3) && strncmp(e->d_name, "out-", 4))
			continue;
		snprintf(path, sizeof(path), "%s/%s", base, e->d_name);
		criu_rm_dir(path);
		n++;
	}
	if (d)
		closedir(d);
	return n;
}

int criu_images_dir(const char *node, const char *what, unsigned job, unsigned rank, char *out, size_t len)
{
	char base[PATH_MAX];
	snprintf(base, sizeof(base), "/dev/shm/mosexec-%s", node);
	if (mkdir(base, 0700) < 0 && errno != EEXIST)
		return -errno;
	snprintf(out, len, "%s/%s-%u.%u", base, what, job, rank);
	criu_rm_dir(out); /* a leftover of a crashed run */
	if (mkdir(out, 0700) < 0)
		return -errno;
	return 0;
}
