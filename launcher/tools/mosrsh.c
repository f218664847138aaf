/* mosrsh.c - an rsh-compatible remote launch agent that runs its command on a
 * cluster node through the node daemons instead of ssh, so that Open MPI's
 * own mpirun can start its orted daemons with `--mca plm_rsh_agent mosrsh`.
 * It is mosexec with fixed options: one process on HOST, stdio relayed, the
 * exit status passed back, the process killed when we are. */
#include <errno.h>
#include <limits.h>
#include <pwd.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

static void usage(FILE *f)
{
	fprintf(f,
		"usage: mosrsh [-n] HOST COMMAND [ARGS...]\n"
		"  Run COMMAND on cluster node HOST through the node daemons, like rsh/ssh:\n"
		"  the words are joined with spaces and run by your login shell (-c), in /,\n"
		"  with stdin, stdout and stderr relayed and its exit status returned.\n"
		"  -n   stdin from /dev/null (rsh -n)\n"
		"  For Open MPI: mpirun --mca plm_rsh_agent mosrsh --host node0,node1 ...\n");
}

/* The words of the command joined with spaces, as rsh and ssh send them:
 * the remote shell splits them again (mpirun quotes its values for that). */
static char *join_words(int argc, char **argv)
{
	size_t len = 1;
	for (int i = 0; i < argc; i++)
		len += strlen(argv[i]) + 1;
	char *s = malloc(len), *p = s;
	if (!s)
		return NULL;
	for (int i = 0; i < argc; i++)
		p += sprintf(p, "%s%s", i ? " " : "", argv[i]);
	*p = 0;
	return s;
}

/* mosexec from our own directory (an installed or build tree keeps them
 * together), else from PATH. */
static const char *find_mosexec(char *buf, size_t len)
{
	ssize_t n = readlink("/proc/self/exe", buf, len - 1);
	if (n > 0 && (size_t)n < len - 16) {
		buf[n] = 0;
		char *slash = strrchr(buf, '/');
		if (slash) {
			strcpy(slash + 1, "mosexec");
			if (access(buf, X_OK) == 0)
				return buf;
		}
	}
	return "mosexec";
}

/* The shell ssh would use: the user's login shell, else /bin/sh. */
static const char *login_shell(void)
{
	struct passwd *pw = getpwuid(getuid());
	if (pw && pw->pw_shell && pw->pw_shell[0] == '/' && access(pw->pw_shell, X_OK) == 0)
		return pw->pw_shell;
	return "/bin/sh";
}

int main(int argc, char **argv)
{
	char exe[PATH_MAX], host[300];
	bool no_stdin = false;
	int i = 1;

	for (; i < argc && argv[i][0] == '-'; i++) {
		if (!strcmp(argv[i], "-n")) {
			no_stdin = true;
		} else if (!strcmp(argv[i], "-h") || !strcmp(argv[i], "--help")) {
			usage(stdout);
			return 0;
		} else if (!strcmp(argv[i], "--")) {
			i++;
			break;
		} else {
			fprintf(stderr, "mosrsh: unknown option '%s'\n", argv[i]);
			usage(stderr);
			return 255;
		}
	}
	if (argc - i < 2) {
		fprintf(stderr, "mosrsh: %s\n", argc - i < 1 ? "no host given" : "no command given (no remote login)");
		usage(stderr);
		return 255;
	}
	const char *node = argv[i];
	if (!node[0] || strchr(node, ',') || strchr(node, ':') || strchr(node, '@') ||
	    snprintf(host, sizeof(host), "%s:1", node) >= (int)sizeof(host)) {
		fprintf(stderr, "mosrsh: '%s' is not a node name of the cluster\n", node);
		return 255;
	}
	char *cmd = join_words(argc - i - 1, argv + i + 1);
	if (!cmd) {
		fprintf(stderr, "mosrsh: out of memory\n");
		return 255;
	}
	const char *mosexec = find_mosexec(exe, sizeof(exe));
	/* --oversubscribe: a daemon is no compute process, and the slot of the
	 * previous one on HOST may not be free yet. */
	char *args[16] = { (char *)mosexec, "--host", host, "--oversubscribe", "--no-mpi", "-q", "--wdir", "/" };
	int n = 8;
	if (no_stdin) {
		args[n++] = "--stdin";
		args[n++] = "none";
	}
	args[n++] = "-n";
	args[n++] = "1";
	args[n++] = (char *)login_shell();
	args[n++] = "-c";
	args[n++] = cmd;
	args[n] = NULL;
	execvp(mosexec, args);
	fprintf(stderr, "mosrsh: cannot run %s: %s\n", mosexec, strerror(errno));
	return 255;
}
