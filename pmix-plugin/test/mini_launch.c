/* mini_launch.c - test launcher for pmix-plugin (not part of mosd): plays
 * node NODEID of NNODES on this host, runs the PMIx server of that node and
 * its block of ranks, and meets the other launchers through mini_hub.c.
 *   mini_launch [--nodeid I --nnodes K --rdv SOCK] -n N [--nspace NS]
 *               [--map C0,C1,..] [--fence-timeout S] [--tmpdir D] [--tool] [-v]
 *               [--apps A0,A1,..] -- PROG ARGS [: PROG ARGS ...]
 * Exit status: the job's (an abort's status, a failed rank's status or
 * 128+signal, else 0), the same on every launcher. */
#include "mini.h"
#include "mospmix.h"
#include "log.h"
#include <errno.h>
#include <event2/event.h>
#include <getopt.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

struct mini mini = { .nnodes = 1, .nspace = "mini", .fence_timeout = 60 };
static char **node_names;
static uint32_t *rank_app;	/* NULL: one app */
static char **app_argv[16];	/* each app's program, split at ":" */

void mini_kill_ranks(void)
{
	mini.killing = true;
	for (uint32_t i = 0; i < mini.nlocal; i++)
		if (mini.pids[i] > 0)
			kill(mini.pids[i], SIGKILL);
}

void mini_leave(int status)
{
	mini.exit_status = status;
	event_base_loopbreak(mini.base);
}

/* --- the library's host ops ---------------------------------------------- */

static void op_abort(void *ctx, const char *nspace, uint32_t rank, int status, const char *msg)
{
	fprintf(stderr, "mini_launch: rank %u of %s called abort with status %d%s%s\n", rank,
		nspace, status, *msg ? ": " : "", msg);
	mini_job_end(status ? status : 1);
}

static int local_index(uint32_t rank)
{
	for (uint32_t i = 0; i < mini.nlocal; i++)
		if (mini.ranks[i] == rank)
			return i;
	return -1;
}

static void op_connected(void *ctx, const char *nspace, uint32_t rank)
{
	int i = local_index(rank);

	pr_debug("rank %u of %s connected", rank, nspace);
	if (i >= 0) {
		mini.state[i] |= MINI_CONNECTED;
		mini.nconnected++;
	}
}

static void op_finalized(void *ctx, const char *nspace, uint32_t rank)
{
	int i = local_index(rank);

	pr_debug("rank %u of %s finalized", rank, nspace);
	if (i >= 0)
		mini.state[i] |= MINI_FINALIZED;
}

static const struct mos_pmix_host_ops ops = {
	.fence = mini_fence,
	.dmodex = mini_dmodex,
	.abort = op_abort,
	.client_connected = op_connected,
	.client_finalized = op_finalized,
};

/* --- ranks ----------------------------------------------------------------- */

static void rank_exited(uint32_t i, int wstatus)
{
	int code = WIFEXITED(wstatus) ? WEXITSTATUS(wstatus) : 128 + WTERMSIG(wstatus);

	pr_debug("rank %u exited: %d", mini.ranks[i], code);
	mini.pids[i] = 0;
	mini.nalive--;
	if (code && !mini.killing) {
		fprintf(stderr, "mini_launch: rank %u exited with status %d, ending the job\n",
			mini.ranks[i], code);
		mini_job_end(code);
	} else if (!mini.killing && mini.nconnected && !(mini.state[i] & MINI_FINALIZED)) {
		/* its peers would wait for it in the next fence forever */
		fprintf(stderr, "mini_launch: rank %u exited without %s, ending the job\n",
			mini.ranks[i], mini.state[i] & MINI_CONNECTED ? "MPI_Finalize" :
			"calling MPI_Init");
		mini_job_end(1);
	}
	if (mini.nalive == 0)
		mini_node_done();
}

static void sigchld_cb(evutil_socket_t sig, short what, void *arg)
{
	int wstatus;
	pid_t pid;

	while ((pid = waitpid(-1, &wstatus, WNOHANG)) > 0)
		for (uint32_t i = 0; i < mini.nlocal; i++)
			if (mini.pids[i] == pid)
				rank_exited(i, wstatus);
}

static void sigterm_cb(evutil_socket_t sig, short what, void *arg)
{
	mini_job_end(128 + (int)sig);
}

static int start_rank(uint32_t i)
{
	char **argv = app_argv[rank_app ? rank_app[mini.ranks[i]] : 0];
	extern char **environ;
	size_t n = 0;
	char **env;
	int err;

	while (environ[n])
		n++;
	env = calloc(n + 1, sizeof(*env));
	for (size_t k = 0; k < n; k++)
		env[k] = strdup(environ[k]);
	err = mos_pmix_setup_fork(mini.nspace, mini.ranks[i], &env);
	if (err) {
		pr_err("setup_fork rank %u: %s", mini.ranks[i], strerror(-err));
		return err;
	}
	mini.pids[i] = fork();
	if (mini.pids[i] == 0) {
		sigset_t all;

		sigemptyset(&all);
		sigprocmask(SIG_SETMASK, &all, NULL);
		signal(SIGPIPE, SIG_DFL);
		execve(argv[0], argv, env);
		fprintf(stderr, "mini_launch: exec %s: %m\n", argv[0]);
		_exit(127);
	}
	for (char **e = env; *e; e++)
		free(*e);
	free(env);
	if (mini.pids[i] < 0)
		return -errno;
	mini.nalive++;
	return 0;
}

/* --- set-up ---------------------------------------------------------------- */

static int parse_map(const char *map)
{
	uint32_t r = 0, node = 0;

	for (const char *p = map; *p && node < mini.nnodes; node++) {
		char *end;
		unsigned long c = strtoul(p, &end, 10);

		for (unsigned long k = 0; k < c && r < mini.nprocs; k++)
			mini.rank_node[r++] = node;
		p = *end == ',' ? end + 1 : end;
	}
	return r == mini.nprocs ? 0 : -EINVAL;
}

static int layout(const char *map)
{
	mini.rank_node = calloc(mini.nprocs, sizeof(*mini.rank_node));
	if (map) {
		if (parse_map(map))
			return -EINVAL;
	} else {
		for (uint32_t r = 0; r < mini.nprocs; r++)
			mini.rank_node[r] = (uint64_t)r * mini.nnodes / mini.nprocs;
	}
	mini.pids = calloc(mini.nprocs, sizeof(*mini.pids));
	mini.ranks = calloc(mini.nprocs, sizeof(*mini.ranks));
	mini.state = calloc(mini.nprocs, sizeof(*mini.state));
	bool *used = calloc(mini.nnodes, sizeof(*used));
	for (uint32_t r = 0; r < mini.nprocs; r++) {
		if (!used[mini.rank_node[r]]) {
			used[mini.rank_node[r]] = true;
			mini.nodes_used++;
		}
		if (mini.rank_node[r] == mini.nodeid)
			mini.ranks[mini.nlocal++] = r;
	}
	free(used);
	node_names = calloc(mini.nnodes, sizeof(*node_names));
	for (uint32_t n = 0; n < mini.nnodes; n++)
		if (asprintf(&node_names[n], "mini%u", n) < 0)
			return -ENOMEM;
	return 0;
}

/* PROG ARGS [: PROG ARGS ...] with --apps C0,C1,..: ranks per app, in order */
static int split_apps(char **argv, const char *apps)
{
	uint32_t napps = 0, r = 0;

	app_argv[napps++] = argv;
	for (; *argv; argv++) {
		if (strcmp(*argv, ":"))
			continue;
		*argv = NULL;
		if (napps == 16 || !argv[1])
			return -EINVAL;
		app_argv[napps++] = argv + 1;
	}
	if (!apps)
		return napps == 1 ? 0 : -EINVAL;
	rank_app = calloc(mini.nprocs, sizeof(*rank_app));
	for (uint32_t a = 0; a < napps && *apps; a++) {
		char *end;
		unsigned long c = strtoul(apps, &end, 10);

		for (unsigned long k = 0; k < c && r < mini.nprocs; k++)
			rank_app[r++] = a;
		apps = *end == ',' ? end + 1 : end;
	}
	return r == mini.nprocs ? 0 : -EINVAL;
}

static int usage(void)
{
	fprintf(stderr, "usage: mini_launch [--nodeid I --nnodes K --rdv SOCK] -n N [--nspace NS]"
			" [--map C0,C1..] [--fence-timeout S] [--tmpdir D] [--tool] [-v]\n"
			"       [--apps A0,A1..] -- PROG ARGS [: PROG ARGS ...]\n");
	return 2;
}

static int run(const char *tmpdir, bool tool)
{
	struct mos_pmix_job job = {
		.nspace = mini.nspace, .nprocs = mini.nprocs, .n_nodes = mini.nnodes,
		.node_names = (const char *const *)node_names, .rank_node = mini.rank_node,
		.rank_app = rank_app, .this_nodeid = mini.nodeid, .uid = getuid(), .gid = getgid(),
	};
	struct event *sigs[3];
	int err;

	err = mos_pmix_init(mini.base, node_names[mini.nodeid], mini.nodeid, tmpdir, &ops, tool);
	if (err)
		return err;
	err = mini_net_init();
	if (!err)
		err = mos_pmix_register_job(&job);
	if (err)
		goto out;
	sigs[0] = evsignal_new(mini.base, SIGCHLD, sigchld_cb, NULL);
	sigs[1] = evsignal_new(mini.base, SIGTERM, sigterm_cb, NULL);
	sigs[2] = evsignal_new(mini.base, SIGINT, sigterm_cb, NULL);
	for (int i = 0; i < 3; i++)
		evsignal_add(sigs[i], NULL);
	for (uint32_t i = 0; i < mini.nlocal && !mini.killing; i++)
		if (start_rank(i))
			mini_job_end(126);
	if (mini.nlocal == 0)
		mini_node_done();
	event_base_dispatch(mini.base);
	mini_kill_ranks();
	while (mini.nalive && waitpid(-1, NULL, 0) > 0)
		mini.nalive--;
	for (int i = 0; i < 3; i++)
		event_free(sigs[i]);
	mos_pmix_deregister_job(mini.nspace);
out:
	mos_pmix_fini();
	mini_net_fini();
	return err;
}

int main(int argc, char **argv)
{
	static const struct option lo[] = {
		{ "nodeid", 1, NULL, 'i' }, { "nnodes", 1, NULL, 'k' }, { "rdv", 1, NULL, 'r' },
		{ "nspace", 1, NULL, 's' }, { "map", 1, NULL, 'm' }, { "tmpdir", 1, NULL, 't' },
		{ "fence-timeout", 1, NULL, 'f' }, { "tool", 0, NULL, 'T' }, { "apps", 1, NULL, 'a' },
		{ NULL, 0, NULL, 0 },
	};
	char tmpl[64], *tmpdir = NULL, *map = NULL, *apps = NULL;
	int c, verbose = 0, err;
	bool tool = false;

	while ((c = getopt_long(argc, argv, "+n:v", lo, NULL)) != -1) {
		switch (c) {
		case 'i': mini.nodeid = atoi(optarg); break;
		case 'k': mini.nnodes = atoi(optarg); break;
		case 'r': mini.rdv = optarg; break;
		case 's': mini.nspace = optarg; break;
		case 'm': map = optarg; break;
		case 't': tmpdir = optarg; break;
		case 'f': mini.fence_timeout = atoi(optarg); break;
		case 'n': mini.nprocs = atoi(optarg); break;
		case 'v': verbose++; break;
		case 'T': tool = true; break;
		case 'a': apps = optarg; break;
		default: return usage();
		}
	}
	if (optind >= argc || !mini.nprocs || !mini.nnodes || mini.nodeid >= mini.nnodes)
		return usage();
	snprintf(tmpl, sizeof(tmpl), "mini%u", mini.nodeid);
	mos_log_init("mini_launch", tmpl, verbose ? MOS_LOG_DEBUG : MOS_LOG_WARN, 0);
	if (layout(map))
		return usage();
	signal(SIGPIPE, SIG_IGN);
	mini.base = event_base_new();
	if (!tmpdir) {
		snprintf(tmpl, sizeof(tmpl), "/tmp/mini_launch.%u.XXXXXX", mini.nodeid);
		tmpdir = mkdtemp(tmpl);
	}
	if (split_apps(argv + optind, apps))
		return usage();
	err = run(tmpdir, tool);
	if (tmpdir == tmpl) {
		char cmd[128];

		snprintf(cmd, sizeof(cmd), "rm -rf '%s'", tmpdir);
		if (system(cmd))
			pr_warn("cannot remove %s", tmpdir);
	}
	event_base_free(mini.base);
	if (err) {
		fprintf(stderr, "mini_launch: %s\n", strerror(-err));
		return 1;
	}
	return mini.exit_status;
}
