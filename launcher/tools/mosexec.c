/* mosexec.c - start a job on the cluster and be its home terminal: every
 * rank's output arrives here whole-line, stdin goes to rank 0, signals go to
 * every rank, and the exit status of the job is ours. Accepts the common
 * mpirun options so that a script can swap mpirun for mosexec. */
#include "conn.h"
#include "log.h"
#include "msg.h"
#include "util.h"
#include <errno.h>
#include <event2/event.h>
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <elf.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

extern char **environ;

struct app {
	unsigned nprocs;
	int mpi;            /* -1 = look at the program, 0 = no, 1 = yes */
	char **argv;
	int argc;
};

static struct opts {
	struct app apps[64];
	int n_apps;
	char *hosts;
	char *hostfile;
	const char *wdir;
	const char *map_by;
	const char *bind_to;
	char **xvars;
	int n_xvars;
	bool tag_output, oversubscribe, stdin_none, quiet, report_bindings;
	int mpi;            /* --mpi / --no-mpi for every app: 1 / 0, else -1 */
	const char *restart; /* --restart DIR */
} o = { .mpi = -1 };

static struct state {
	struct event_base *base;
	struct mos_conn *conn;
	uint32_t jobid, nprocs;
	char **rank_node;
	struct obuf { char *d; size_t len, cap; } *bufs; /* [rank*2 + stream-1] */
	struct event *stdin_ev;
	int exit_code;
	bool done;
	unsigned n_reported;
} st = { .exit_code = 1 };

static void usage(FILE *f)
{
	fprintf(f,
		"usage: mosexec [OPTIONS] -n N PROGRAM [ARGS] [: -n M PROGRAM2 [ARGS]]...\n"
		"  -n, -np N             number of processes of this app context\n"
		"  -H, --host LIST       only these nodes: node0,node1:4 (:N = slots)\n"
		"  --hostfile FILE       nodes from a file: 'node0 slots=4' per line\n"
		"  --map-by node|slot    spread ranks round-robin over nodes, or fill nodes (default slot)\n"
		"  --bind-to core|none   bind each process to one core of its node (local rank i -> core\n"
		"                        i mod cores; more processes than cores needs --oversubscribe),\n"
		"                        or leave the cpu affinity alone (none, the default)\n"
		"  --report-bindings     print each rank's binding on stderr: [node] rank R bound to ...\n"
		"  -x VAR[=VALUE]        set VAR for the processes (all of mosexec's environment goes anyway)\n"
		"  --wdir DIR            working directory of the processes (default: the current one)\n"
		"  --tag-output          prefix each line with [job,rank]<stdout|stderr>:\n"
		"  --oversubscribe       allow more processes than slots on --host/--hostfile nodes, and\n"
		"                        than cores with --bind-to core (they share cores, round-robin)\n"
		"  --stdin none          do not forward stdin to rank 0\n"
		"  --mpi | --no-mpi      the programs are (not) MPI programs; default: an ELF program\n"
		"                        linked with libmpi is one (its ranks form MPI_COMM_WORLD)\n"
		"  --restart DIR         resume a job from its checkpoint (mosctl checkpoint JOB DIR)\n"
		"  --allow-run-as-root   accepted for mpirun compatibility\n");
}

static int parse_hostfile(const char *path)
{
	FILE *f = fopen(path, "r");
	char line[512];
	unsigned lineno = 0;
	size_t len = 0, cap = 256;
	char *out = calloc(1, cap);
	if (!f) {
		fprintf(stderr, "mosexec: %s: cannot read hostfile: %s\n", path, strerror(errno));
		free(out);
		return -1;
	}
	while (fgets(line, sizeof(line), f)) {
		char name[256];
		unsigned slots = 1;
		lineno++;
		char *hash = strchr(line, '#');
		if (hash)
			*hash = 0;
		int n = sscanf(line, "%255s slots=%u", name, &slots);
		if (n <= 0)
			continue;
		if (slots == 0 || (n == 1 && strstr(line, "slots"))) {
			fprintf(stderr, "mosexec: %s:%u: bad line (expected 'NODE [slots=N]')\n", path, lineno);
			fclose(f);
			free(out);
			return -1;
		}
		while (len + strlen(name) + 16 > cap)
			out = realloc(out, cap *= 2);
		len += (size_t)sprintf(out + len, "%s%s:%u", len ? "," : "", name, slots);
	}
	fclose(f);
	if (!len) {
		fprintf(stderr, "mosexec: %s: no nodes in hostfile\n", path);
		free(out);
		return -1;
	}
	free(o.hosts);
	o.hosts = out;
	return 0;
}

static int need_arg(int i, int argc, char **argv)
{
	if (i + 1 >= argc) {
		fprintf(stderr, "mosexec: option %s needs a value\n", argv[i]);
		return -1;
	}
	return 0;
}

/* mpirun-style: options, then a program and its arguments; ':' starts the
 * next app context. */
static int parse_args(int argc, char **argv)
{
	int i = 1;
	while (i < argc) {
		struct app *a = &o.apps[o.n_apps];
		a->nprocs = 0;
		for (; i < argc && argv[i][0] == '-'; i++) {
			const char *opt = argv[i];
			if (opt[1] == '-')
				opt++;
			if (!strcmp(opt, "-n") || !strcmp(opt, "-np") || !strcmp(opt, "-c")) {
				char *end;
				if (need_arg(i, argc, argv))
					return -1;
				long v = strtol(argv[++i], &end, 10);
				if (*end || v <= 0 || v > 100000) {
					fprintf(stderr, "mosexec: %s: '%s' is not a process count (1..100000)\n", argv[i - 1], argv[i]);
					return -1;
				}
				a->nprocs = (unsigned)v;
			} else if (!strcmp(opt, "-H") || !strcmp(opt, "-host")) {
				if (need_arg(i, argc, argv))
					return -1;
				free(o.hosts);
				o.hosts = strdup(argv[++i]);
			} else if (!strcmp(opt, "-hostfile") || !strcmp(opt, "-machinefile")) {
				if (need_arg(i, argc, argv) || parse_hostfile(argv[++i]))
					return -1;
			} else if (!strcmp(opt, "-map-by")) {
				if (need_arg(i, argc, argv))
					return -1;
				o.map_by = argv[++i];
				if (strcmp(o.map_by, "node") && strcmp(o.map_by, "slot") && strcmp(o.map_by, "core")) {
					fprintf(stderr, "mosexec: --map-by: '%s' is not supported (node, slot)\n", o.map_by);
					return -1;
				}
			} else if (!strcmp(opt, "-bind-to")) {
				if (need_arg(i, argc, argv))
					return -1;
				o.bind_to = argv[++i];
				if (strcmp(o.bind_to, "core") && strcmp(o.bind_to, "none")) {
					fprintf(stderr, "mosexec: --bind-to: '%s' is not supported (core, none)\n", o.bind_to);
					return -1;
				}
			} else if (!strcmp(opt, "-x")) {
				if (need_arg(i, argc, argv))
					return -1;
				o.xvars = realloc(o.xvars, (size_t)(o.n_xvars + 1) * sizeof(char *));
				o.xvars[o.n_xvars++] = argv[++i];
			} else if (!strcmp(opt, "-wdir") || !strcmp(opt, "-wd")) {
				if (need_arg(i, argc, argv))
					return -1;
				o.wdir = argv[++i];
			} else if (!strcmp(opt, "-report-bindings")) {
				o.report_bindings = true;
			} else if (!strcmp(opt, "-tag-output")) {
				o.tag_output = true;
			} else if (!strcmp(opt, "-oversubscribe")) {
				o.oversubscribe = true;
			} else if (!strcmp(opt, "-stdin")) {
				if (need_arg(i, argc, argv))
					return -1;
				i++;
				o.stdin_none = !strcmp(argv[i], "none");
			} else if (!strcmp(opt, "-restart")) {
				if (need_arg(i, argc, argv))
					return -1;
				o.restart = argv[++i];
				if (o.restart[0] != '/') {
					fprintf(stderr, "mosexec: --restart: '%s' must be an absolute path\n", o.restart);
					return -1;
				}
			} else if (!strcmp(opt, "-mpi") || !strcmp(opt, "-no-mpi")) {
				o.mpi = !strcmp(opt, "-mpi");
			} else if (!strcmp(opt, "-allow-run-as-root") || !strcmp(opt, "-q") || !strcmp(opt, "-quiet")) {
				o.quiet = o.quiet || opt[1] == 'q';
			} else if (!strcmp(opt, "-h") || !strcmp(opt, "-help")) {
				usage(stdout);
				exit(0);
			} else {
				fprintf(stderr, "mosexec: unknown option '%s' (see mosexec --help)\n", argv[i]);
				return -1;
			}
		}
		if (o.restart && i >= argc && !o.n_apps)
			return 0; /* the program comes from the checkpoint */
		if (i >= argc || !strcmp(argv[i], ":")) {
			fprintf(stderr, "mosexec: no program given%s\n", o.n_apps ? " after ':'" : "");
			return -1;
		}
		a->argv = argv + i;
		while (i < argc && strcmp(argv[i], ":"))
			i++;
		a->argc = (int)(argv + i - a->argv);
		if (!a->nprocs)
			a->nprocs = 1;
		if (++o.n_apps == 64 && i < argc) {
			fprintf(stderr, "mosexec: at most 64 app contexts\n");
			return -1;
		}
		if (i < argc)
			i++; /* skip ':' */
	}
	if (o.restart && o.n_apps) {
		fprintf(stderr, "mosexec: --restart takes no program: the checkpoint holds it\n");
		return -1;
	}
	if (!o.n_apps && !o.restart) {
		usage(stderr);
		return -1;
	}
	return 0;
}

/* Find PROG as execvp would, with the caller's PATH. */
static int resolve(const char *prog, char *out, size_t len)
{
	if (strchr(prog, '/')) {
		snprintf(out, len, "%s", prog);
		return access(out, X_OK);
	}
	const char *path = getenv("PATH");
	char *dup = strdup(path ? path : "/usr/bin:/bin"), *save = NULL;
	for (char *d = strtok_r(dup, ":", &save); d; d = strtok_r(NULL, ":", &save)) {
		snprintf(out, len, "%s/%s", *d ? d : ".", prog);
		if (access(out, X_OK) == 0) {
			free(dup);
			return 0;
		}
	}
	free(dup);
	return -1;
}

/* An MPI program: a 64-bit ELF whose dynamic section needs libmpi. */
static bool is_mpi_program(const char *prog)
{
	char path[4096];
	bool mpi = false;
	if (resolve(prog, path, sizeof(path)))
		return false;
	int fd = open(path, O_RDONLY | O_CLOEXEC);
	struct stat sb;
	if (fd < 0 || fstat(fd, &sb) || sb.st_size < (off_t)sizeof(Elf64_Ehdr) || sb.st_size > (1 << 30)) {
		if (fd >= 0)
			close(fd);
		return false;
	}
	uint8_t *img = mmap(NULL, (size_t)sb.st_size, PROT_READ, MAP_PRIVATE, fd, 0);
	close(fd);
	if (img == MAP_FAILED)
		return false;
	size_t size = (size_t)sb.st_size;
	const Elf64_Ehdr *eh = (const void *)img;
	if (memcmp(eh->e_ident, ELFMAG, SELFMAG) || eh->e_ident[EI_CLASS] != ELFCLASS64 ||
	    eh->e_shoff + (size_t)eh->e_shnum * sizeof(Elf64_Shdr) > size)
		goto out;
	const Elf64_Shdr *sh = (const void *)(img + eh->e_shoff);
	for (unsigned i = 0; i < eh->e_shnum && !mpi; i++) {
		if (sh[i].sh_type != SHT_DYNAMIC || sh[i].sh_link >= eh->e_shnum)
			continue;
		const Elf64_Shdr *strs = &sh[sh[i].sh_link];
		if (sh[i].sh_offset + sh[i].sh_size > size || strs->sh_offset + strs->sh_size > size)
			break;
		const Elf64_Dyn *dyn = (const void *)(img + sh[i].sh_offset);
		for (size_t k = 0; k < sh[i].sh_size / sizeof(*dyn) && dyn[k].d_tag != DT_NULL; k++)
			if (dyn[k].d_tag == DT_NEEDED && dyn[k].d_un.d_val < strs->sh_size) {
				const char *name = (const char *)img + strs->sh_offset + dyn[k].d_un.d_val;
				if (!strncmp(name, "libmpi.so", 9) || !strncmp(name, "libmpi_", 7))
					mpi = true;
			}
	}
out:
	munmap(img, size);
	return mpi;
}

static int build_submit(struct mos_msg *m)
{
	char cwd[4096];
	uint32_t flags = 0;
	int rc = mos_msg_init(m, MOS_MSG_SUBMIT);
	if (rc)
		return rc;
	for (int a = 0; a < o.n_apps; a++) {
		mos_msg_put_u32(m, MOS_T_APP, o.apps[a].nprocs);
		if (o.mpi == 1 || (o.mpi < 0 && is_mpi_program(o.apps[a].argv[0])))
			mos_msg_put_u32(m, MOS_T_KIND, MOS_APP_MPI);
		for (int k = 0; k < o.apps[a].argc; k++)
			mos_msg_put_str(m, MOS_T_ARGV, o.apps[a].argv[k]);
	}
	for (int k = 0; k < o.n_xvars; k++) /* -x first: they win over environ below */
		if (strchr(o.xvars[k], '=')) {
			char *eq = strchr(o.xvars[k], '=');
			setenv(strndup(o.xvars[k], (size_t)(eq - o.xvars[k])), eq + 1, 1);
		}
	for (char **e = environ; *e; e++)
		if (strncmp(*e, "MOSD_SOCKET=", 12))
			mos_msg_put_str(m, MOS_T_ENV, *e);
	if (o.wdir)
		snprintf(cwd, sizeof(cwd), "%s", o.wdir);
	else if (!getcwd(cwd, sizeof(cwd)))
		snprintf(cwd, sizeof(cwd), "/");
	mos_msg_put_str(m, MOS_T_CWD, cwd);
	if (o.hosts)
		mos_msg_put_str(m, MOS_T_HOSTS, o.hosts);
	if (o.map_by && !strcmp(o.map_by, "node"))
		flags |= MOS_SUBMIT_MAP_BY_NODE;
	if (o.bind_to && !strcmp(o.bind_to, "core"))
		mos_msg_put_u32(m, MOS_T_BIND, MOS_BIND_CORE);
	if (o.report_bindings)
		flags |= MOS_SUBMIT_REPORT_BIND;
	if (o.oversubscribe)
		flags |= MOS_SUBMIT_OVERSUB;
	if (o.tag_output)
		flags |= MOS_SUBMIT_TAG_OUTPUT;
	if (!o.stdin_none)
		flags |= MOS_SUBMIT_STDIN;
	return mos_msg_put_u32(m, MOS_T_FLAGS, flags);
}

/* --- output ------------------------------------------------------------- */

static void write_all(int fd, const char *p, size_t n)
{
	while (n) {
		ssize_t w = write(fd, p, n);
		if (w < 0 && errno == EINTR)
			continue;
		if (w <= 0)
			return;
		p += w;
		n -= (size_t)w;
	}
}

/* Write out the complete lines of B (all of it when AT_EOF). */
static void flush_lines(uint32_t rank, unsigned stream, struct obuf *b, bool at_eof)
{
	int fd = stream == 2 ? 2 : 1;
	size_t upto = b->len;
	if (!at_eof) {
		while (upto && b->d[upto - 1] != '\n')
			upto--;
	}
	if (!upto)
		return;
	if (!o.tag_output) {
		write_all(fd, b->d, upto);
	} else {
		char prefix[64];
		int pl = snprintf(prefix, sizeof(prefix), "[%u,%u]<%s>:", st.jobid, rank, stream == 2 ? "stderr" : "stdout");
		size_t start = 0;
		char *line = malloc(upto + (size_t)pl + 1);
		while (line && start < upto) {
			char *nl = memchr(b->d + start, '\n', upto - start);
			size_t end = nl ? (size_t)(nl - b->d) + 1 : upto;
			memcpy(line, prefix, (size_t)pl);
			memcpy(line + pl, b->d + start, end - start);
			write_all(fd, line, (size_t)pl + end - start);
			start = end;
		}
		free(line);
	}
	memmove(b->d, b->d + upto, b->len - upto);
	b->len -= upto;
}

static void on_io(struct mos_msg *m)
{
	uint32_t rank = 0, stream = 1;
	mos_msg_get_u32(m, MOS_T_RANK, &rank);
	mos_msg_get_u32(m, MOS_T_STREAM, &stream);
	const struct mos_field *d = mos_msg_get(m, MOS_T_DATA);
	if (rank >= st.nprocs || (stream != 1 && stream != 2) || !st.bufs)
		return;
	struct obuf *b = &st.bufs[rank * 2 + stream - 1];
	if (!d || !d->len) {
		flush_lines(rank, stream, b, true);
		return;
	}
	if (b->len + d->len > b->cap) {
		size_t cap = b->cap ? b->cap : 4096;
		while (cap < b->len + d->len)
			cap *= 2;
		char *nd = realloc(b->d, cap);
		if (!nd)
			return;
		b->d = nd;
		b->cap = cap;
	}
	memcpy(b->d + b->len, d->data, d->len);
	b->len += d->len;
	flush_lines(rank, stream, b, false);
	if (b->len > (1u << 20)) /* a huge line without end: let it through */
		flush_lines(rank, stream, b, true);
}

static void on_started(struct mos_msg *m)
{
	mos_msg_get_u32(m, MOS_T_JOBID, &st.jobid);
	mos_msg_get_u32(m, MOS_T_NPROCS, &st.nprocs);
	st.bufs = calloc((size_t)st.nprocs * 2, sizeof(*st.bufs));
	st.rank_node = calloc(st.nprocs, sizeof(char *));
	uint32_t r = UINT32_MAX;
	for (size_t i = 0; i < m->n_fields; i++) {
		const struct mos_field *f = &m->fields[i];
		if (f->tag == MOS_T_RANK)
			r = mos_field_u32(f);
		else if (f->tag == MOS_T_NODE && r < st.nprocs && st.rank_node)
			st.rank_node[r] = mos_field_str(f);
	}
}

static void on_exit_msg(struct mos_msg *m)
{
	uint32_t rank = 0;
	int32_t ws = 0;
	char buf[128];
	mos_msg_get_u32(m, MOS_T_RANK, &rank);
	mos_msg_get_i32(m, MOS_T_STATUS, &ws);
	char *node = mos_msg_get_str(m, MOS_T_NODE), *text = mos_msg_get_str(m, MOS_T_TEXT);
	if (rank < st.nprocs && st.bufs) { /* whatever is left of its output */
		flush_lines(rank, 1, &st.bufs[rank * 2], true);
		flush_lines(rank, 2, &st.bufs[rank * 2 + 1], true);
	}
	if ((ws || text) && !o.quiet && st.n_reported++ < 16)
		fprintf(stderr, "mosexec: rank %u (on %s) %s%s%s\n", rank, node ? node : "?",
			mos_status_str(ws, buf, sizeof(buf)), text ? ": " : "", text ? text : "");
	free(node);
	free(text);
}

static void on_msg(struct mos_conn *c, struct mos_msg *m, void *arg)
{
	switch (m->type) {
	case MOS_MSG_JOB_STARTED: on_started(m); break;
	case MOS_MSG_IO: on_io(m); break;
	case MOS_MSG_EXIT: on_exit_msg(m); break;
	case MOS_MSG_JOB_DONE: {
		int32_t s = 0;
		mos_msg_get_i32(m, MOS_T_STATUS, &s);
		st.exit_code = s;
		st.done = true;
		if (st.n_reported > 16)
			fprintf(stderr, "mosexec: ... %u more ranks failed\n", st.n_reported - 16);
		event_base_loopexit(st.base, NULL);
		break;
	}
	case MOS_MSG_ERROR: {
		char *t = mos_msg_get_str(m, MOS_T_TEXT);
		int32_t code = -1;
		mos_msg_get_i32(m, MOS_T_CODE, &code);
		if (code == 0 && mos_msg_get(m, MOS_T_BIND)) /* --report-bindings: "[node] rank R ..." */
			fprintf(stderr, "%s\n", t ? t : "");
		else
			fprintf(stderr, "mosexec: %s\n", t ? t : "error");
		free(t);
		if (code == 0) /* a notice: the job goes on (or ends by itself) */
			break;
		st.exit_code = 1;
		st.done = true;
		event_base_loopexit(st.base, NULL);
		break;
	}
	default:
		break;
	}
}

static void on_close(struct mos_conn *c, int err, void *arg)
{
	if (!st.done) {
		fprintf(stderr, "mosexec: lost the connection to mosd%s%s\n", err ? ": " : "", err ? strerror(-err) : "");
		st.exit_code = 1;
	}
	event_base_loopexit(st.base, NULL);
}

/* --- stdin and signals ---------------------------------------------------- */

static void send_stdin(const void *data, size_t len)
{
	struct mos_msg m;
	if (mos_msg_init(&m, MOS_MSG_IO))
		return;
	mos_msg_put_u32(&m, MOS_T_JOBID, st.jobid);
	mos_msg_put_u32(&m, MOS_T_RANK, 0);
	mos_msg_put_u32(&m, MOS_T_STREAM, 0);
	mos_msg_put(&m, MOS_T_DATA, data, len);
	mos_conn_send(st.conn, &m);
	mos_msg_free(&m);
}

static void on_stdin(evutil_socket_t fd, short what, void *arg)
{
	char buf[65536];
	ssize_t n = read(fd, buf, sizeof(buf));
	if (n < 0 && (errno == EAGAIN || errno == EINTR))
		return;
	if (n <= 0) {
		send_stdin(NULL, 0);
		event_del(st.stdin_ev);
		return;
	}
	send_stdin(buf, (size_t)n);
}

static void start_stdin(void)
{
	struct stat sb;
	if (o.stdin_none || fstat(0, &sb) < 0) {
		send_stdin(NULL, 0);
		return;
	}
	if (S_ISREG(sb.st_mode) || (S_ISCHR(sb.st_mode) && !isatty(0))) { /* files, /dev/null: not pollable */
		char buf[65536];
		ssize_t n;
		while ((n = read(0, buf, sizeof(buf))) > 0)
			send_stdin(buf, (size_t)n);
		send_stdin(NULL, 0);
		return;
	}
	st.stdin_ev = event_new(st.base, 0, EV_READ | EV_PERSIST, on_stdin, NULL);
	if (!st.stdin_ev || event_add(st.stdin_ev, NULL))
		send_stdin(NULL, 0);
}

static void on_signal(evutil_socket_t sig, short what, void *arg)
{
	struct mos_msg m;
	if (!st.jobid) { /* nothing started yet: dropping the link cancels it */
		fprintf(stderr, "mosexec: interrupted before the job started\n");
		st.exit_code = 128 + (int)sig;
		event_base_loopexit(st.base, NULL);
		return;
	}
	if (mos_msg_init(&m, MOS_MSG_SIGNAL))
		return;
	mos_msg_put_u32(&m, MOS_T_JOBID, st.jobid);
	mos_msg_put_u32(&m, MOS_T_SIG, (uint32_t)sig);
	mos_conn_send(st.conn, &m);
	mos_msg_free(&m);
}

int main(int argc, char **argv)
{
	static const int sigs[] = { SIGINT, SIGTERM, SIGHUP, SIGUSR1, SIGUSR2, SIGTSTP, SIGCONT };
	struct mos_msg m;

	if (parse_args(argc, argv))
		return 2;
	signal(SIGPIPE, SIG_IGN);
	const char *path = mos_local_socket_path();
	int fd = mos_unix_connect(path);
	if (fd < 0) {
		fprintf(stderr, "mosexec: cannot reach mosd at %s: %s (is mosd running on this node?)\n", path, strerror(-fd));
		return 1;
	}
	st.base = event_base_new();
	st.conn = mos_conn_new(st.base, fd, NULL, NULL, on_msg, on_close, NULL);
	int brc = -1;
	if (o.restart && !mos_msg_init(&m, MOS_MSG_RESTART))
		brc = mos_msg_put_str(&m, MOS_T_TEXT, o.restart);
	else if (!o.restart)
		brc = build_submit(&m);
	if (!st.base || !st.conn || brc) {
		fprintf(stderr, "mosexec: out of memory\n");
		return 1;
	}
	mos_conn_send(st.conn, &m);
	mos_msg_free(&m);
	for (size_t i = 0; i < sizeof(sigs) / sizeof(sigs[0]); i++) {
		struct event *ev = evsignal_new(st.base, sigs[i], on_signal, NULL);
		if (ev)
			event_add(ev, NULL);
	}
	start_stdin();
	event_base_dispatch(st.base);
	/* Anything still buffered (a job that ended abnormally) goes out now. */
	for (uint32_t r = 0; st.bufs && r < st.nprocs; r++) {
		flush_lines(r, 1, &st.bufs[r * 2], true);
		flush_lines(r, 2, &st.bufs[r * 2 + 1], true);
	}
	return st.exit_code;
}
