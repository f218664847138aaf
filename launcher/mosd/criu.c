/* criu.c - asynchronous criu runs and image directories (see criu.h). */
#include "criu.h"
#include "log.h"
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
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
	criu_done_cb cb;
	void *arg;
};

static struct run *runs;

const char *criu_path(void)
{
	const char *e = getenv("MOS_CRIU");
	if (e && *e)
		return e;
	if (access("/usr/local/sbin/criu", X_OK) == 0)
		return "/usr/local/sbin/criu";
	return "criu";
}

/* Fork criu with ARGV; fds listed in KEEP survive as they are. */
static pid_t spawn(char **argv, const int *keep, size_t nkeep, criu_done_cb cb, void *arg)
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
		sigset_t none;
		sigemptyset(&none);
		sigprocmask(SIG_SETMASK, &none, NULL);
		for (int s = 1; s < NSIG; s++)
			signal(s, SIG_DFL);
		execvp(argv[0], argv);
		_exit(127);
	}
	r->pid = pid;
	r->cb = cb;
	r->arg = arg;
	r->next = runs;
	runs = r;
	return pid;
}

pid_t criu_dump(pid_t pid, const char *dir, const struct criu_lazy *lazy, criu_done_cb cb, void *arg)
{
	char spid[16], port[16], sfd[16];
	snprintf(spid, sizeof(spid), "%d", (int)pid);
	char *argv[24] = { (char *)criu_path(), "dump", "-t", spid, "-D", (char *)dir, "--leave-stopped",
			   "--file-locks", "-o", "dump.log", "-v2" };
	size_t k = 11;
	if (lazy) {
		snprintf(port, sizeof(port), "%u", lazy->port);
		snprintf(sfd, sizeof(sfd), "%d", lazy->status_fd);
		argv[k++] = "--lazy-pages";
		argv[k++] = "--address";
		argv[k++] = (char *)lazy->addr;
		argv[k++] = "--port";
		argv[k++] = port;
		argv[k++] = "--status-fd";
		argv[k++] = sfd;
	}
	argv[k] = NULL;
	pr_debug("criu dump -t %s -D %s%s", spid, dir, lazy ? " (lazy)" : "");
	return spawn(argv, lazy ? &lazy->status_fd : NULL, lazy ? 1 : 0, cb, arg);
}

pid_t criu_lazy_pages(const char *dir, const struct criu_lazy *lazy, criu_done_cb cb, void *arg)
{
	char port[16], sfd[16];
	snprintf(port, sizeof(port), "%u", lazy->port);
	snprintf(sfd, sizeof(sfd), "%d", lazy->status_fd);
	char *argv[] = { (char *)criu_path(), "lazy-pages", "--page-server", "--address", (char *)lazy->addr,
			 "--port", port, "-D", (char *)dir, "-o", "lazy.log", "-v2", "--status-fd", sfd, NULL };
	return spawn(argv, &lazy->status_fd, 1, cb, arg);
}

void criu_retarget(pid_t pid, criu_done_cb cb, void *arg)
{
	for (struct run *r = runs; r; r = r->next)
		if (r->pid == pid) {
			r->cb = cb;
			r->arg = arg;
		}
}

pid_t criu_restore(const char *dir, const char *const *inherit, const int *fds, size_t n, bool lazy,
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
	if (lazy)
		argv[k++] = "--lazy-pages";
	for (size_t i = 0; i < n; i++) {
		snprintf(specs[i], sizeof(specs[i]), "fd[%d]:%s", fds[i], inherit[i]);
		argv[k++] = "--inherit-fd";
		argv[k++] = specs[i];
	}
	argv[k] = NULL;
	return spawn(argv, fds, n, cb, arg);
}

bool criu_reaped(pid_t pid, int wstatus)
{
	for (struct run **pp = &runs; *pp; pp = &(*pp)->next) {
		struct run *r = *pp;
		if (r->pid != pid)
			continue;
		*pp = r->next;
		r->cb(r->arg, wstatus);
		free(r);
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
