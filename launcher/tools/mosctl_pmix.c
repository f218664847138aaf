/* mosctl_pmix.c - mosctl as a PMIx tool of the local mosd: ps and loads
 * through PMIx_Query_info, signal/kill/terminate/pause/resume through
 * PMIx_Job_control (doc/pmix-scheduler.md). Only when no PMIx server of mosd
 * can be found does it fall back to mosd's socket (mosctl_job.c). */
#include "mosctl.h"
#include "mospmix.h"
#include "util.h"
#include <errno.h>
#include <glob.h>
#include <pmix_tool.h>
#include <pwd.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* mosd's PMIx server writes its URI to /dev/shm/mosexec-NODE/pmix/
 * pmix.NODE.tool.PID (one mosd per /dev/shm: a host, or a vcluster node). */
#define RENDEZVOUS_GLOB "/dev/shm/mosexec-*/pmix/pmix.*.tool.*"

static int find_uri(char *uri, size_t len)
{
	glob_t g;
	int found = 0;

	if (glob(RENDEZVOUS_GLOB, 0, NULL, &g))
		return -ENOENT;
	for (size_t i = 0; i < g.gl_pathc; i++) {
		const char *dot = strrchr(g.gl_pathv[i], '.');
		char *end, line[512];
		long pid = strtol(dot + 1, &end, 10);
		FILE *f;

		if (*end || pid <= 0 || (kill((pid_t)pid, 0) < 0 && errno != EPERM))
			continue; /* not a PID file, or its mosd is gone */
		f = fopen(g.gl_pathv[i], "r");
		if (!f)
			continue;
		if (fgets(line, sizeof(line), f)) {
			line[strcspn(line, "\n")] = 0;
			snprintf(uri, len, "%s", line);
			found++;
		}
		fclose(f);
	}
	globfree(&g);
	return found == 1 ? 0 : found ? -EEXIST : -ENOENT;
}

/* Attach to the local mosd's PMIx server. 0, or -errno (reason printed
 * unless QUIET). */
static int attach(const char *who, bool quiet)
{
	pmix_proc_t me;
	pmix_info_t info[1];
	char uri[512];
	const char *env = getenv("MOS_PMIX_URI");
	pmix_status_t rc;
	int err = 0;

	if (env && *env)
		snprintf(uri, sizeof(uri), "%s", env);
	else if ((err = find_uri(uri, sizeof(uri)))) {
		if (!quiet || err == -EEXIST)
			fprintf(stderr, "mosctl %s: %s\n", who, err == -EEXIST ?
				"several mosd PMIx servers here: say which with MOS_PMIX_URI" :
				"no PMIx server of mosd found (" RENDEZVOUS_GLOB ")");
		return err;
	}
	PMIX_INFO_LOAD(&info[0], PMIX_SERVER_URI, uri, PMIX_STRING);
	rc = PMIx_tool_init(&me, info, 1);
	PMIX_INFO_DESTRUCT(&info[0]);
	if (rc != PMIX_SUCCESS) {
		fprintf(stderr, "mosctl %s: cannot attach to mosd's PMIx server at %s: %s\n", who, uri,
			PMIx_Error_string(rc));
		return -EHOSTDOWN;
	}
	return 0;
}

static void detach(void)
{
	PMIx_tool_finalize();
}

/* --- queries ---------------------------------------------------------------- */

/* A query of one KEY (NSPACE qualifier unless NULL); the caller frees *RES. */
static pmix_status_t query1(const char *key, const char *nspace, pmix_info_t **res, size_t *nres)
{
	pmix_query_t q;
	pmix_status_t rc;

	PMIX_QUERY_CONSTRUCT(&q);
	PMIX_ARGV_APPEND(rc, q.keys, key);
	if (nspace) {
		PMIX_INFO_CREATE(q.qualifiers, 1);
		q.nqual = 1;
		PMIX_INFO_LOAD(&q.qualifiers[0], PMIX_NSPACE, nspace, PMIX_STRING);
	}
	*res = NULL;
	*nres = 0;
	rc = PMIx_Query_info(&q, 1, res, nres);
	PMIX_QUERY_DESTRUCT(&q);
	return rc;
}

/* The data array under KEY in RES, NULL if none. */
static const pmix_data_array_t *find_array(const pmix_info_t *res, size_t n, const char *key)
{
	for (size_t i = 0; i < n; i++)
		if (PMIX_CHECK_KEY(&res[i], key) && res[i].value.type == PMIX_DATA_ARRAY)
			return res[i].value.data.darray;
	return NULL;
}

static const pmix_value_t *field(const pmix_data_array_t *d, const char *key)
{
	const pmix_info_t *in = d->array;

	for (size_t i = 0; d->type == PMIX_INFO && i < d->size; i++)
		if (PMIX_CHECK_KEY(&in[i], key))
			return &in[i].value;
	return NULL;
}

static const char *fstr(const pmix_data_array_t *d, const char *key)
{
	const pmix_value_t *v = field(d, key);
	return v && v->type == PMIX_STRING && v->data.string ? v->data.string : "?";
}

static uint64_t fnum(const pmix_data_array_t *d, const char *key)
{
	const pmix_value_t *v = field(d, key);
	uint64_t n = 0;
	pmix_status_t rc;

	if (v)
		PMIX_VALUE_GET_NUMBER(rc, v, n, uint64_t);
	(void)rc;
	return n;
}

static void warn_missing(const pmix_info_t *res, size_t n)
{
	for (size_t i = 0; i < n; i++)
		if (PMIX_CHECK_KEY(&res[i], MOS_PMIX_KEY_MISSING) && res[i].value.type == PMIX_STRING)
			fprintf(stderr, "mosctl: no answer from node(s): %s\n", res[i].value.data.string);
}

static void print_procs(const pmix_data_array_t *rows)
{
	const pmix_info_t *r = rows->array;

	printf("%-8s %5s %-10s %-10s %-10s %7s %-9s %5s %7s %4s %s\n", "JOB", "RANK", "USER", "HOME",
	       "WHERE", "PID", "STATE", "CPU%", "RSS", "MIGS", "COMMAND");
	for (size_t i = 0; rows->type == PMIX_INFO && i < rows->size; i++) {
		const pmix_data_array_t *p;
		const char *ns;
		char user[32], rss[16];
		struct passwd *pw;
		uid_t uid;

		if (r[i].value.type != PMIX_DATA_ARRAY)
			continue;
		p = r[i].value.data.darray;
		ns = fstr(p, PMIX_NSPACE);
		uid = (uid_t)fnum(p, PMIX_USERID);
		pw = getpwuid(uid);
		if (pw)
			snprintf(user, sizeof(user), "%s", pw->pw_name);
		else
			snprintf(user, sizeof(user), "%u", (unsigned)uid);
		mos_size_str(fnum(p, MOS_PMIX_KEY_RSS), rss, sizeof(rss));
		printf("%-8s %5u %-10s %-10s %-10s %7u %-9s %5.1f %7s %4u %s\n",
		       strncmp(ns, "mosexec.", 8) ? ns : ns + 8, (unsigned)fnum(p, PMIX_RANK), user,
		       fstr(p, MOS_PMIX_KEY_HOME), fstr(p, PMIX_HOSTNAME), (unsigned)fnum(p, PMIX_PROC_PID),
		       fstr(p, MOS_PMIX_KEY_STATE), (double)fnum(p, MOS_PMIX_KEY_CPU) / 10.0, rss,
		       (unsigned)fnum(p, MOS_PMIX_KEY_MIGRATIONS), fstr(p, MOS_PMIX_KEY_CMD));
	}
}

int mosctl_ps(int argc, char **argv)
{
	uint32_t job = 0;
	int64_t rank;
	char ns[32];
	pmix_info_t *res;
	size_t nres;
	pmix_status_t rc;
	const pmix_data_array_t *rows;

	if (argc > 2 || (argc == 2 && (mos_parse_job_rank(argv[1], &job, &rank) || rank >= 0))) {
		fprintf(stderr, "usage: mosctl ps [JOB]\n");
		return 2;
	}
	int err = attach("ps", true);
	if (err == -ENOENT) {
		fprintf(stderr, "mosctl ps: no PMIx server of mosd found: asking mosd's socket\n");
		return mosctl_sock_ps(job);
	}
	if (err)
		return 1;
	snprintf(ns, sizeof(ns), "mosexec.%u", job);
	rc = query1(MOS_PMIX_KEY_PROC_TABLE, job ? ns : NULL, &res, &nres);
	rows = find_array(res, nres, MOS_PMIX_KEY_PROC_TABLE);
	if (rc == PMIX_ERR_NOT_FOUND && job) {
		fprintf(stderr, "mosctl ps: no job %u\n", job);
	} else if ((rc != PMIX_SUCCESS && rc != PMIX_QUERY_PARTIAL_SUCCESS) || !rows) {
		fprintf(stderr, "mosctl ps: PMIx query: %s\n", PMIx_Error_string(rc));
	} else {
		print_procs(rows);
		warn_missing(res, nres);
	}
	if (res)
		PMIX_INFO_FREE(res, nres);
	detach();
	return rc == PMIX_SUCCESS || rc == PMIX_QUERY_PARTIAL_SUCCESS ? 0 : 1;
}

int mosctl_loads(int argc, char **argv)
{
	pmix_info_t *res;
	size_t nres;
	pmix_status_t rc;
	const pmix_data_array_t *nodes;

	if (argc != 1) {
		fprintf(stderr, "usage: mosctl loads\n");
		return 2;
	}
	if (attach("loads", false))
		return 1;
	rc = query1(MOS_PMIX_KEY_NODE_LOADS, NULL, &res, &nres);
	nodes = find_array(res, nres, MOS_PMIX_KEY_NODE_LOADS);
	if (rc != PMIX_SUCCESS || !nodes) {
		fprintf(stderr, "mosctl loads: PMIx query: %s\n", PMIx_Error_string(rc));
	} else {
		const pmix_info_t *n = nodes->array;

		printf("%-12s %6s %5s %6s %8s\n", "NODE", "LOAD", "CPUS", "PROCS", "AGE_MS");
		for (size_t i = 0; nodes->type == PMIX_INFO && i < nodes->size; i++) {
			const pmix_data_array_t *p;

			if (n[i].value.type != PMIX_DATA_ARRAY)
				continue;
			p = n[i].value.data.darray;
			printf("%-12s %6.2f %5u %6u %8u\n", fstr(p, PMIX_HOSTNAME),
			       (double)fnum(p, MOS_PMIX_KEY_LOAD) / 1000.0, (unsigned)fnum(p, MOS_PMIX_KEY_NCPUS),
			       (unsigned)fnum(p, MOS_PMIX_KEY_NPROCS), (unsigned)fnum(p, MOS_PMIX_KEY_AGE_MS));
		}
	}
	if (res)
		PMIX_INFO_FREE(res, nres);
	detach();
	return rc == PMIX_SUCCESS ? 0 : 1;
}

/* --- job control ------------------------------------------------------------ */

/* What a job-control status means here (PMIx 4.2 passes no text back
 * with a failure). */
static const char *jctl_error(pmix_status_t rc)
{
	switch (rc) {
	case PMIX_ERR_NO_PERMISSIONS: return "permission denied: the job belongs to another user";
	case PMIX_ERR_NOT_FOUND: return "no such job";
	case PMIX_ERR_BAD_PARAM: return "no such rank in the job, or a bad signal";
	case PMIX_ERR_UNREACH: return "the job's home node cannot be reached";
	case PMIX_ERR_TIMEOUT: return "no answer from the job's home node";
	case PMIX_ERR_NOT_SUPPORTED: return "not supported";
	default: return PMIx_Error_string(rc);
	}
}

/* DIRECTIVE (with SIG for PMIX_JOB_CTRL_SIGNAL) to JOB[.RANK]; FALLBACK_SIG
 * is what mosd's socket sends instead when there is no PMIx server. */
static int jobctl(const char *who, const char *target, const char *directive, int sig,
		  int fallback_sig)
{
	uint32_t job;
	int64_t rank;
	pmix_proc_t t;
	pmix_info_t dir, *res = NULL;
	size_t nres = 0;
	pmix_status_t rc;
	bool yes = true;
	char ns[32];
	const char *msg = NULL;

	if (mos_parse_job_rank(target, &job, &rank)) {
		fprintf(stderr, "mosctl %s: '%s' is not JOB or JOB.RANK\n", who, target);
		return 2;
	}
	int err = attach(who, !!fallback_sig);
	if (err == -ENOENT && fallback_sig) {
		fprintf(stderr, "mosctl %s: no PMIx server of mosd found: asking mosd's socket\n", who);
		return mosctl_sock_signal(who, target, fallback_sig);
	}
	if (err)
		return 1;
	snprintf(ns, sizeof(ns), "mosexec.%u", job);
	PMIX_LOAD_PROCID(&t, ns, rank >= 0 ? (pmix_rank_t)rank : PMIX_RANK_WILDCARD);
	if (!strcmp(directive, PMIX_JOB_CTRL_SIGNAL))
		PMIX_INFO_LOAD(&dir, directive, &sig, PMIX_INT);
	else
		PMIX_INFO_LOAD(&dir, directive, &yes, PMIX_BOOL);
	rc = PMIx_Job_control(&t, 1, &dir, 1, &res, &nres);
	PMIX_INFO_DESTRUCT(&dir);
	for (size_t i = 0; i < nres; i++)
		if (PMIX_CHECK_KEY(&res[i], MOS_PMIX_KEY_JCTL_MSG) && res[i].value.type == PMIX_STRING)
			msg = res[i].value.data.string;
	if (rc != PMIX_SUCCESS)
		fprintf(stderr, "mosctl %s: job %s: %s\n", who, target, msg ? msg : jctl_error(rc));
	if (res)
		PMIX_INFO_FREE(res, nres);
	detach();
	return rc == PMIX_SUCCESS ? 0 : 1;
}

static int usage1(int argc, const char *what)
{
	if (argc == 2)
		return 0;
	fprintf(stderr, "usage: mosctl %s JOB[.RANK]\n", what);
	return 2;
}

int mosctl_signal(int argc, char **argv)
{
	if (argc != 3) {
		fprintf(stderr, "usage: mosctl signal JOB[.RANK] SIGNAL\n");
		return 2;
	}
	int sig = mos_sig_parse(argv[2]);
	if (sig < 0) {
		fprintf(stderr, "mosctl signal: '%s' is not a signal\n", argv[2]);
		return 2;
	}
	return jobctl("signal", argv[1], PMIX_JOB_CTRL_SIGNAL, sig, sig);
}

int mosctl_kill(int argc, char **argv)
{
	return usage1(argc, "kill") ?: jobctl("kill", argv[1], PMIX_JOB_CTRL_KILL, 0, SIGKILL);
}

int mosctl_terminate(int argc, char **argv)
{
	return usage1(argc, "terminate") ?: jobctl("terminate", argv[1], PMIX_JOB_CTRL_TERMINATE, 0, 0);
}

int mosctl_pause(int argc, char **argv)
{
	return usage1(argc, "pause") ?: jobctl("pause", argv[1], PMIX_JOB_CTRL_PAUSE, 0, SIGSTOP);
}

int mosctl_resume(int argc, char **argv)
{
	return usage1(argc, "resume") ?: jobctl("resume", argv[1], PMIX_JOB_CTRL_RESUME, 0, SIGCONT);
}
