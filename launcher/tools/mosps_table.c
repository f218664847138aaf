/* mosps_table.c - fetch and print the cluster's process table. */
#include "mosps.h"
#include "msg.h"
#include "util.h"
#include <errno.h>
#include <pwd.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

struct row {
	uint32_t job, rank, uid, pid, cpu, migs;
	uint64_t rss;
	char *home, *node, *state, *cmd;
};

static int cmp_row(const void *a, const void *b)
{
	const struct row *x = a, *y = b;
	if (x->job != y->job)
		return x->job < y->job ? -1 : 1;
	return x->rank < y->rank ? -1 : x->rank > y->rank;
}

int mosps_print(FILE *out, uint32_t job, int no_header)
{
	struct mos_msg m;
	char err[256];
	const char *path = mos_local_socket_path();
	int fd = mos_unix_connect(path), rc;

	if (fd < 0) {
		fprintf(stderr, "mosps: cannot reach mosd at %s: %s\n", path, strerror(-fd));
		return 1;
	}
	if ((rc = mos_msg_init(&m, MOS_MSG_PS_REQ)) || (rc = mos_sync_send(fd, &m))) {
		fprintf(stderr, "mosps: cannot send request: %s\n", strerror(-rc));
		return 1;
	}
	mos_msg_free(&m);
	if ((rc = mos_sync_recv(fd, &m, err, sizeof(err)))) {
		fprintf(stderr, "mosps: no answer from mosd: %s\n", rc == -EBADMSG ? err : strerror(-rc));
		return 1;
	}
	close(fd);
	size_t n = 0, cap = 16;
	struct row *rows = calloc(cap, sizeof(*rows)), *r = NULL;
	for (size_t i = 0; i < m.n_fields; i++) {
		const struct mos_field *f = &m.fields[i];
		if (f->tag == MOS_T_JOBID) {
			if (n == cap)
				rows = realloc(rows, (cap *= 2) * sizeof(*rows));
			r = &rows[n++];
			memset(r, 0, sizeof(*r));
			r->job = mos_field_u32(f);
			continue;
		}
		if (!r)
			continue;
		switch (f->tag) {
		case MOS_T_RANK: r->rank = mos_field_u32(f); break;
		case MOS_T_UID: r->uid = mos_field_u32(f); break;
		case MOS_T_PID: r->pid = mos_field_u32(f); break;
		case MOS_T_CPU: r->cpu = mos_field_u32(f); break;
		case MOS_T_MIGRATIONS: r->migs = mos_field_u32(f); break;
		case MOS_T_RSS: r->rss = mos_field_u64(f); break;
		case MOS_T_HOME: r->home = mos_field_str(f); break;
		case MOS_T_NODE: r->node = mos_field_str(f); break;
		case MOS_T_STATE: r->state = mos_field_str(f); break;
		case MOS_T_ARGV: r->cmd = mos_field_str(f); break;
		}
	}
	qsort(rows, n, sizeof(*rows), cmp_row);
	if (!no_header)
		fprintf(out, "%-8s %5s %-10s %-10s %-10s %7s %-9s %5s %7s %4s %s\n", "JOB", "RANK", "USER", "HOME",
			"WHERE", "PID", "STATE", "CPU%", "RSS", "MIGS", "COMMAND");
	for (size_t i = 0; i < n; i++) {
		struct row *x = &rows[i];
		char user[32], rss[16];
		if (job && x->job != job)
			continue;
		struct passwd *pw = getpwuid(x->uid);
		snprintf(user, sizeof(user), "%s", pw ? pw->pw_name : "");
		if (!pw)
			snprintf(user, sizeof(user), "%u", x->uid);
		mos_size_str(x->rss, rss, sizeof(rss));
		fprintf(out, "%-8u %5u %-10s %-10s %-10s %7u %-9s %5.1f %7s %4u %s\n", x->job, x->rank, user,
			x->home ? x->home : "?", x->node ? x->node : "?", x->pid, x->state ? x->state : "?",
			x->cpu / 10.0, rss, x->migs, x->cmd ? x->cmd : "");
	}
	char *missing = mos_msg_get_str(&m, MOS_T_TEXT);
	if (missing)
		fprintf(stderr, "mosps: no answer from node(s): %s\n", missing);
	free(missing);
	for (size_t i = 0; i < n; i++) {
		free(rows[i].home);
		free(rows[i].node);
		free(rows[i].state);
		free(rows[i].cmd);
	}
	free(rows);
	mos_msg_free(&m);
	return 0;
}
