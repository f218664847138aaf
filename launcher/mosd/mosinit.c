/* mosinit.c - PID 1 of each job process's own PID namespace (its "pod").
 * mosd starts it with fds 0-2 = the process's stdio pipes and fd 3 = a status
 * pipe. It forwards the signals mosd sends it to the job's process group,
 * reaps everything in the namespace, and on the job's exit writes the raw
 * wait status to fd 3 and exits with the shell-style code. Being the tree's
 * root, it is what CRIU dumps and restores when the process migrates; it
 * keeps no state outside its own memory and those four descriptors. */
#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

static const int fwd_signals[] = { SIGHUP, SIGINT, SIGQUIT, SIGTERM, SIGUSR1, SIGUSR2,
				   SIGTSTP, SIGCONT, SIGALRM, SIGWINCH, SIGTTIN, SIGTTOU };
#define N_FWD (sizeof(fwd_signals) / sizeof(fwd_signals[0]))

static volatile pid_t child;

static void forward(int sig)
{
	if (child > 0)
		kill(-child, sig);
}

int main(int argc, char **argv)
{
	sigset_t all, old;
	int status = 0;

	if (argc < 2) {
		fprintf(stderr, "usage: mosinit PROGRAM [ARGS...] (started by mosd)\n");
		return 2;
	}
	sigfillset(&all);
	sigprocmask(SIG_BLOCK, &all, &old);
	child = fork();
	if (child < 0) {
		fprintf(stderr, "mosexec: fork: %s\n", strerror(errno));
		return 127;
	}
	if (child == 0) {
		setpgid(0, 0);
		close(3);
		sigprocmask(SIG_SETMASK, &old, NULL);
		execvp(argv[1], argv + 1);
		int e = errno;
		fprintf(stderr, "mosexec: %s: %s\n", argv[1], strerror(e));
		_exit(e == ENOENT ? 127 : 126);
	}
	setpgid(child, child);
	struct sigaction sa = { .sa_handler = forward, .sa_flags = SA_RESTART };
	sigemptyset(&sa.sa_mask);
	for (size_t i = 0; i < N_FWD; i++)
		sigaction(fwd_signals[i], &sa, NULL);
	sigprocmask(SIG_SETMASK, &old, NULL);

	for (;;) {
		pid_t p = waitpid(-1, &status, 0);
		if (p < 0 && errno == EINTR)
			continue;
		if (p < 0)
			break; /* no children left (ECHILD) */
		if (p == child)
			break;
	}
	ssize_t w;
	do
		w = write(3, &status, sizeof(status));
	while (w < 0 && errno == EINTR);
	if (WIFEXITED(status))
		return WEXITSTATUS(status);
	return 128 + (WIFSIGNALED(status) ? WTERMSIG(status) : 0);
}
