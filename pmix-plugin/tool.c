/* tool.c - tools (PMIx_tool_init: schedulers, mosctl): their connections,
 * the table of who each tool is (its uid, for job control), and the tool
 * rendezvous file, made readable so that every user's tools can attach.
 * Queries are in query.c, job control in jobctl.c. */
#include "mospmix_int.h"
#include "log.h"
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

/* The tools we named, newest last; a ring: a tool evicted by MAX_TOOLS
 * newer ones is unknown and may no longer control jobs (reconnecting helps).
 * Host loop only. */
#define MAX_TOOLS 1024

struct tool {
	uint32_t n;		/* its number in its name; 0 = free slot */
	uid_t uid;
	gid_t gid;
	bool verified;		/* a socket of UID is connected to us (peercred.c) */
};

static struct tool tools[MAX_TOOLS];
static uint32_t tool_count;

struct tool_work {
	struct mos_pmix_work w;
	bool have_uid;
	uid_t uid;
	gid_t gid;
	pmix_tool_connection_cbfunc_t cbfunc;
	void *cbdata;
};

static void tool_name(uint32_t n, char *buf, size_t len)
{
	snprintf(buf, len, "mos-tool.%u.%u", mos_pmix_srv.nodeid, n);
}

static void tool_run(struct mos_pmix_work *w)
{
	struct tool_work *tw = (struct tool_work *)w;
	struct mos_pmix_server *s = &mos_pmix_srv;
	const struct mos_pmix_host_ops *ops = &s->ops;
	pmix_proc_t proc;
	struct tool *t;
	char ns[PMIX_MAX_NSLEN + 1];

	if (s->state == MOS_PMIX_DEAD)
		goto out;
	if (s->state != MOS_PMIX_RUNNING || !tw->have_uid) {
		if (!tw->have_uid)
			pr_warn("pmix: a tool connected without credentials: refused");
		if (tw->cbfunc)
			tw->cbfunc(PMIX_ERR_NO_PERMISSIONS, NULL, tw->cbdata);
		goto out;
	}
	if (++tool_count == 0)
		tool_count = 1;
	t = &tools[tool_count % MAX_TOOLS];
	t->n = tool_count;
	t->uid = tw->uid;
	t->gid = tw->gid;
	t->verified = mos_pmix_peer_uid_connected(tw->uid);
	tool_name(t->n, ns, sizeof(ns));
	if (t->verified) /* schedulers may attach often: not at info level */
		pr_debug("pmix: tool %s attached (uid %u)", ns, (unsigned)t->uid);
	else
		pr_warn("pmix: tool %s says it is uid %u; the kernel does not confirm it: "
			"no job control for it", ns, (unsigned)t->uid);
	if (ops->tool_connected)
		ops->tool_connected(ops->ctx, ns, t->uid, t->gid);
	PMIX_LOAD_PROCID(&proc, ns, 0);
	if (tw->cbfunc)
		tw->cbfunc(PMIX_SUCCESS, &proc, tw->cbdata);
out:
	free(tw);
}

/* PMIx thread: copy the credentials, name the tool on the loop. */
void mos_pmix_up_tool_connected(pmix_info_t *info, size_t ninfo,
				pmix_tool_connection_cbfunc_t cbfunc, void *cbdata)
{
	struct tool_work *tw = calloc(1, sizeof(*tw));
	bool have_gid = false;

	if (!tw) {
		if (cbfunc)
			cbfunc(PMIX_ERR_NOMEM, NULL, cbdata);
		return;
	}
	for (size_t i = 0; i < ninfo; i++) {
		if (info[i].value.type != PMIX_UINT32)
			continue;
		if (PMIX_CHECK_KEY(&info[i], PMIX_USERID)) {
			tw->uid = info[i].value.data.uint32;
			tw->have_uid = true;
		} else if (PMIX_CHECK_KEY(&info[i], PMIX_GRPID)) {
			tw->gid = info[i].value.data.uint32;
			have_gid = true;
		}
	}
	if (!have_gid)
		tw->gid = (gid_t)-1;
	tw->cbfunc = cbfunc;
	tw->cbdata = cbdata;
	mos_pmix_shift(&tw->w, tool_run);
}

int mos_pmix_requester_uid(const pmix_proc_t *who, uid_t *uid, const char **why)
{
	char ns[PMIX_MAX_NSLEN + 1];
	struct mos_pmix_jobrec *j;
	const char *prefix = "mos-tool.";
	unsigned node, n;

	*why = NULL;
	if (!strncmp(who->nspace, prefix, strlen(prefix))) {
		if (sscanf(who->nspace + strlen(prefix), "%u.%u", &node, &n) == 2 &&
		    node == mos_pmix_srv.nodeid && n) {
			struct tool *t = &tools[n % MAX_TOOLS];

			tool_name(n, ns, sizeof(ns));
			if (t->n == n && !strcmp(ns, who->nspace)) {
				if (!t->verified) {
					*why = "the tool's user could not be confirmed";
					return -EPERM;
				}
				*uid = t->uid;
				return 0;
			}
		}
		*why = "unknown tool (attach again)";
		return -EPERM;
	}
	j = mos_pmix_job_find(who->nspace);
	if (j) { /* one of our clients: it acts as its job's owner */
		*uid = j->uid;
		return 0;
	}
	*why = "the requester is neither a tool nor a process of a job";
	return -EPERM;
}

/* The rendezvous file PMIx wrote for tools holds our URI: learn our port
 * from it (peercred.c matches sockets by it) and let every user read it. */
void mos_pmix_tool_start(void)
{
	struct mos_pmix_server *s = &mos_pmix_srv;
	char path[4096], line[512];
	const char *port;
	FILE *f;

	snprintf(path, sizeof(path), "%s/pmix.%s.tool.%d", s->tmpdir, s->hostname,
		 (int)getpid());
	if (chmod(path, 0644) < 0)
		pr_warn("pmix: chmod %s: %m (tools of other users cannot attach)", path);
	f = fopen(path, "r");
	if (!f) {
		pr_warn("pmix: %s: %m: tools' users cannot be confirmed", path);
		return;
	}
	if (fgets(line, sizeof(line), f) && (port = strrchr(line, ':')))
		s->tool_port = (uint16_t)atoi(port + 1);
	fclose(f);
	if (!s->tool_port)
		pr_warn("pmix: no port in %s: tools' users cannot be confirmed", path);
}

void mos_pmix_tools_fini(void)
{
	memset(tools, 0, sizeof(tools));
	mos_pmix_srv.tool_port = 0;
	tool_count = 0;
}
