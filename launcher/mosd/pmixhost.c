/* pmixhost.c - mosd as PMIx server (see pmixhost.h). */
#include "pmixhost.h"
#include "log.h"
#include "mospmix.h"
#include "util.h"
#include <endian.h>
#include <errno.h>
#include <event2/event.h>
#include <hwloc.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#define FENCE_TIMEOUT_S 120

/* A namespace registered here (where ranks run). */
struct pns {
	struct pns *next;
	char name[64];
	uint32_t jobid, size, local;
	uint32_t *rank_node;          /* MPI rank -> node index */
	struct { uint32_t mpi_rank; enum pmix_client_state st; } *cl; /* local ranks */
	size_t ncl;
	bool *pushed;                 /* [n_nodes]: our ranks' data sent there unasked */
};

/* A fence being combined at the job's home. */
struct hfence {
	struct hfence *next;
	uint32_t jobid;
	uint64_t id;
	bool *expect, *arrived;
	size_t left;
	uint8_t *buf;
	size_t len;
	struct event *timer;
};

static struct pns *nss;
static struct hfence *fences;
static bool available;

static void nspace_of(uint32_t jobid, char *buf, size_t len) { snprintf(buf, len, "mosexec.%u", jobid); }
static uint32_t jobid_of(const char *nspace)
{
	return (uint32_t)strtoul(nspace + strlen("mosexec."), NULL, 10);
}

static struct pns *pns_find(const char *name)
{
	for (struct pns *n = nss; n; n = n->next)
		if (!strcmp(n->name, name))
			return n;
	return NULL;
}

static void send_pmix(int idx, unsigned kind, const char *nspace, uint64_t seq, int64_t rank, int code,
		      const void *data, size_t len, const char *text)
{
	struct mos_msg m;
	if (idx < 0 || mos_msg_init(&m, MOS_MSG_PMIX))
		return;
	mos_msg_put_u32(&m, MOS_T_KIND, kind);
	mos_msg_put_str(&m, MOS_T_NAME, nspace);
	mos_msg_put_u64(&m, MOS_T_SEQ, seq);
	if (rank >= 0)
		mos_msg_put_u32(&m, MOS_T_RANK, (uint32_t)rank);
	mos_msg_put_i32(&m, MOS_T_CODE, code);
	if (data || kind == MOS_PMIX_FENCE_IN || kind == MOS_PMIX_FENCE_OUT || kind == MOS_PMIX_DMODEX_REP)
		mos_msg_put(&m, MOS_T_DATA, data, len);
	if (text)
		mos_msg_put_str(&m, MOS_T_TEXT, text);
	mos_msg_put_str(&m, MOS_T_NODE, mosd.self->name);
	peer_send(idx, &m);
	mos_msg_free(&m);
}

/* --- host ops (called on our loop by the library) ------------------------- */

static void op_fence(void *ctx, const char *nspace, uint64_t id, const void *data, size_t len, int timeout_s)
{
	send_pmix((int)mos_jobid_home(jobid_of(nspace)), MOS_PMIX_FENCE_IN, nspace, id, -1, 0, data, len, NULL);
}

static void op_dmodex(void *ctx, const char *nspace, uint32_t rank, uint64_t req_id)
{
	struct pns *n = pns_find(nspace);
	if (!n || rank >= n->size) {
		mos_pmix_dmodex_done(req_id, -ENOENT, NULL, 0);
		return;
	}
	send_pmix((int)n->rank_node[rank], MOS_PMIX_DMODEX_REQ, nspace, req_id, rank, 0, NULL, 0, NULL);
}

static void op_abort(void *ctx, const char *nspace, uint32_t rank, int status, const char *msg)
{
	send_pmix((int)mos_jobid_home(jobid_of(nspace)), MOS_PMIX_ABORT, nspace, 0, rank, status, NULL, 0, msg);
}

static void set_client(const char *nspace, uint32_t rank, enum pmix_client_state st)
{
	struct pns *n = pns_find(nspace);
	for (size_t i = 0; n && i < n->ncl; i++)
		if (n->cl[i].mpi_rank == rank && n->cl[i].st < st)
			n->cl[i].st = st;
}

static void op_connected(void *ctx, const char *nspace, uint32_t rank) { set_client(nspace, rank, PMIX_CL_CONNECTED); }
static void op_finalized(void *ctx, const char *nspace, uint32_t rank) { set_client(nspace, rank, PMIX_CL_FINALIZED); }

static const struct mos_pmix_host_ops ops = {
	.fence = op_fence,
	.dmodex = op_dmodex,
	.abort = op_abort,
	.client_connected = op_connected,
	.client_finalized = op_finalized,
	.tool_connected = pmixtool_tool_connected,
	.query = pmixtool_query,
	.job_control = pmixtool_job_control,
};

/* Discover the node once, as Open MPI's ranks would (I/O objects that
 * matter, no "gl" component), and give it to every job through PMIx. */
static void share_topology(void)
{
	hwloc_topology_t t;
	char *xml = NULL;
	int len = 0;
	uint64_t t0 = mos_now_ms();

	if (hwloc_topology_init(&t) < 0)
		return;
	hwloc_topology_set_io_types_filter(t, HWLOC_TYPE_FILTER_KEEP_IMPORTANT);
	hwloc_topology_set_components(t, HWLOC_TOPOLOGY_COMPONENTS_FLAG_BLACKLIST, "gl");
	if (hwloc_topology_load(t) == 0 && hwloc_topology_export_xmlbuffer(t, &xml, &len, 0) == 0) {
		if (mos_pmix_set_topology(xml) == 0)
			pr_debug("hwloc topology for MPI ranks: %d bytes of XML, %llu ms", len,
				 (unsigned long long)(mos_now_ms() - t0));
		hwloc_free_xmlbuffer(t, xml);
	} else {
		pr_warn("cannot discover this node's hwloc topology: each MPI rank will");
	}
	hwloc_topology_destroy(t);
}

int pmixhost_init(void)
{
	char dir[PATH_MAX];
	snprintf(dir, sizeof(dir), "/dev/shm/mosexec-%s", mosd.self->name);
	mkdir(dir, 0755);
	snprintf(dir, sizeof(dir), "/dev/shm/mosexec-%s/pmix", mosd.self->name);
	int rc = mos_pmix_init(mosd.base, mosd.self->name, mosd.self->index, dir, &ops, true);
	if (rc) {
		pr_warn("PMIx server not available (%s): MPI jobs cannot start on this node", strerror(-rc));
		return 0; /* serial jobs still run */
	}
	available = true;
	share_topology();
	return 0;
}

void pmixhost_fini(void)
{
	pmixtool_fini();
	if (available)
		mos_pmix_fini();
	available = false;
}

bool pmixhost_available(void) { return available; }

/* --- where ranks run ------------------------------------------------------ */

static uint32_t *u32_array(const struct mos_field *f, uint32_t n)
{
	if (!f || f->len != (size_t)n * 4)
		return NULL;
	uint32_t *a = malloc((size_t)n * 4 + 4);
	for (uint32_t i = 0; a && i < n; i++) {
		uint32_t v;
		memcpy(&v, f->data + (size_t)i * 4, 4);
		a[i] = le32toh(v);
	}
	return a;
}

static struct pns *pns_register(struct mos_msg *m, struct proc *p, char *err, size_t len)
{
	char *name = mos_msg_get_str(m, MOS_T_NAME);
	uint32_t size = 0, gid = 0;
	mos_msg_get_u32(m, MOS_T_MPI_SIZE, &size);
	mos_msg_get_u32(m, MOS_T_GID, &gid);
	struct pns *n = name ? pns_find(name) : NULL;
	if (n || !name) {
		free(name);
		return n;
	}
	n = calloc(1, sizeof(*n));
	if (n && !(n->pushed = calloc(mosd.conf->n_nodes, sizeof(bool)))) {
		free(n);
		n = NULL;
	}
	uint32_t *appmap = u32_array(mos_msg_get(m, MOS_T_APPMAP), size);
	if (!n || size == 0 || !(n->rank_node = u32_array(mos_msg_get(m, MOS_T_RANKMAP), size)) || !appmap) {
		snprintf(err, len, "bad MPI description in the spawn request (field 'rankmap' or 'appmap')");
		goto fail;
	}
	for (uint32_t r = 0; r < size; r++)
		if (n->rank_node[r] >= mosd.conf->n_nodes) {
			snprintf(err, len, "field 'rankmap': node index %u out of range", n->rank_node[r]);
			goto fail;
		}
	snprintf(n->name, sizeof(n->name), "%s", name);
	n->jobid = p->jobid;
	n->size = size;
	const char **names = calloc(mosd.conf->n_nodes, sizeof(char *));
	for (size_t i = 0; names && i < mosd.conf->n_nodes; i++)
		names[i] = mosd.conf->nodes[i].name;
	struct mos_pmix_job job = { .nspace = n->name, .nprocs = size, .n_nodes = (uint32_t)mosd.conf->n_nodes,
				    .node_names = names, .rank_node = n->rank_node, .rank_app = appmap,
				    .this_nodeid = mosd.self->index, .uid = p->uid, .gid = gid };
	int rc = names ? mos_pmix_register_job(&job) : -ENOMEM;
	free(names);
	if (rc) {
		snprintf(err, len, "cannot register MPI job %s with the PMIx server: %s", n->name, strerror(-rc));
		goto fail;
	}
	free(appmap);
	free(name);
	n->next = nss;
	nss = n;
	return n;
fail:
	free(appmap);
	free(name);
	if (n) {
		free(n->rank_node);
		free(n->pushed);
	}
	free(n);
	return NULL;
}

static int env_default(char ***envp, const char *key, const char *val)
{
	size_t n = 0, kl = strlen(key);
	for (; *envp && (*envp)[n]; n++)
		if (!strncmp((*envp)[n], key, kl) && (*envp)[n][kl] == '=')
			return 0;
	char **e = realloc(*envp, (n + 2) * sizeof(char *));
	if (!e)
		return -ENOMEM;
	*envp = e;
	if (asprintf(&e[n], "%s=%s", key, val) < 0)
		return -ENOMEM;
	e[n + 1] = NULL;
	return 0;
}

int pmixhost_spawn_env(struct mos_msg *m, struct proc *p, char ***envp, char *err, size_t len)
{
	uint32_t mrank;
	if (mos_msg_get_u32(m, MOS_T_MPI_RANK, &mrank))
		return 0; /* not an MPI rank */
	if (!available) {
		snprintf(err, len, "this node's mosd has no PMIx server: MPI programs cannot run here");
		return -ENOTSUP;
	}
	struct pns *n = pns_register(m, p, err, len);
	if (!n)
		return -EINVAL;
	void *cl = realloc(n->cl, (n->ncl + 1) * sizeof(*n->cl));
	if (!cl)
		return -ENOMEM;
	n->cl = cl;
	n->cl[n->ncl].mpi_rank = mrank;
	n->cl[n->ncl].st = PMIX_CL_NONE;
	n->ncl++;
	n->local++;
	p->pmix_ns = n;
	p->mpi_rank = mrank;
	/* Each rank has its own PID namespace (so that it can move): Open MPI's
	 * shared-memory transport names segments by PID and reads peers' memory
	 * by PID, so ranks talk TCP, also on one node, unless the user says
	 * otherwise (-x OMPI_MCA_btl=...). */
	int rc = env_default(envp, "OMPI_MCA_btl", "self,tcp");
	if (!rc)
		rc = mos_pmix_setup_fork(n->name, mrank, envp);
	if (rc)
		snprintf(err, len, "PMIx setup of MPI rank %u failed: %s", mrank, strerror(-rc));
	return rc;
}

enum pmix_client_state pmixhost_proc_gone(struct proc *p)
{
	struct pns *n = p->pmix_ns;
	enum pmix_client_state st = PMIX_CL_NONE;
	if (!n)
		return PMIX_CL_FINALIZED; /* not MPI: nothing to say */
	for (size_t i = 0; i < n->ncl; i++)
		if (n->cl[i].mpi_rank == p->mpi_rank)
			st = n->cl[i].st;
	p->pmix_ns = NULL;
	if (--n->local == 0) {
		mos_pmix_deregister_job(n->name);
		for (struct pns **pp = &nss; *pp; pp = &(*pp)->next)
			if (*pp == n) {
				*pp = n->next;
				break;
			}
		free(n->rank_node);
		free(n->cl);
		free(n->pushed);
		free(n);
	}
	return st;
}

struct dmx_arg {
	int to;
	uint64_t req;
	char nspace[64];
	uint32_t rank;
};

/* REQ 0: pushed unasked (request ids start at 1) */
static void dmodex_reply(void *arg, int status, const void *data, size_t len)
{
	struct dmx_arg *a = arg;
	if (a->req || status == 0)
		send_pmix(a->to, MOS_PMIX_DMODEX_REP, a->nspace, a->req, a->rank, status, data, len, NULL);
	free(a);
}

static int dmodex_serve(const char *nspace, uint32_t rank, int to, uint64_t req)
{
	struct dmx_arg *a = calloc(1, sizeof(*a));
	if (!a)
		return -ENOMEM;
	a->to = to;
	a->req = req;
	a->rank = rank;
	snprintf(a->nspace, sizeof(a->nspace), "%s", nspace);
	int rc = available ? mos_pmix_dmodex_serve(nspace, rank, dmodex_reply, a) : -ESRCH;
	if (rc)
		free(a);
	return rc;
}

/* The first request from node TO for a job here: its ranks will want our
 * other ranks' data too (an all-to-all asks for every peer, each a round
 * trip between the daemons otherwise), so send each as it is posted. */
static void push_node_mates(const char *nspace, uint32_t asked, int to)
{
	struct pns *n = pns_find(nspace);
	if (!n || n->pushed[to])
		return;
	n->pushed[to] = true;
	for (size_t i = 0; i < n->ncl; i++)
		if (n->cl[i].mpi_rank != asked)
			dmodex_serve(nspace, n->cl[i].mpi_rank, to, 0);
}

/* --- the home: fences and aborts ------------------------------------------- */

static void fence_free(struct hfence *f)
{
	for (struct hfence **pp = &fences; *pp; pp = &(*pp)->next)
		if (*pp == f) {
			*pp = f->next;
			break;
		}
	if (f->timer)
		event_free(f->timer);
	free(f->expect);
	free(f->arrived);
	free(f->buf);
	free(f);
}

static void fence_timeout(evutil_socket_t fd, short what, void *arg)
{
	struct hfence *f = arg;
	struct job *j = job_find(f->jobid);
	char text[512];
	size_t off = (size_t)snprintf(text, sizeof(text), "MPI fence %llu timed out after %d s; no contribution from",
				      (unsigned long long)f->id, FENCE_TIMEOUT_S);
	for (size_t i = 0; i < mosd.conf->n_nodes && off < sizeof(text); i++)
		if (f->expect[i] && !f->arrived[i])
			off += (size_t)snprintf(text + off, sizeof(text) - off, " %s", mosd.conf->nodes[i].name);
	fence_free(f);
	if (j) {
		job_notice(j, text);
		job_fail(j, 1, text);
	}
}

static struct hfence *fence_get(struct job *j, uint64_t id)
{
	for (struct hfence *f = fences; f; f = f->next)
		if (f->jobid == j->id && f->id == id)
			return f;
	struct hfence *f = calloc(1, sizeof(*f));
	size_t n = mosd.conf->n_nodes;
	if (!f || !(f->expect = calloc(n, sizeof(bool))) || !(f->arrived = calloc(n, sizeof(bool)))) {
		if (f)
			free(f->expect);
		free(f);
		return NULL;
	}
	f->jobid = j->id;
	f->id = id;
	for (uint32_t r = 0; r < j->nprocs; r++)
		if (j->mpi_rank_of && j->mpi_rank_of[r] != UINT32_MAX && !f->expect[j->ranks[r].node]) {
			f->expect[j->ranks[r].node] = true;
			f->left++;
		}
	f->timer = evtimer_new(mosd.base, fence_timeout, f);
	struct timeval tv = { FENCE_TIMEOUT_S, 0 };
	evtimer_add(f->timer, &tv);
	f->next = fences;
	fences = f;
	return f;
}

static void home_fence_in(struct mos_msg *m, int from, const char *nspace)
{
	uint64_t id = 0;
	mos_msg_get_u64(m, MOS_T_SEQ, &id);
	const struct mos_field *d = mos_msg_get(m, MOS_T_DATA);
	struct job *j = job_find(jobid_of(nspace));
	struct hfence *f = j ? fence_get(j, id) : NULL;
	if (!f || !f->expect[from] || f->arrived[from])
		return;
	f->arrived[from] = true;
	if (d && d->len) {
		uint8_t *nb = realloc(f->buf, f->len + d->len);
		if (!nb)
			return;
		memcpy(nb + f->len, d->data, d->len);
		f->buf = nb;
		f->len += d->len;
	}
	if (--f->left)
		return;
	for (size_t i = 0; i < mosd.conf->n_nodes; i++)
		if (f->expect[i])
			send_pmix((int)i, MOS_PMIX_FENCE_OUT, nspace, id, -1, 0, f->buf, f->len, NULL);
	fence_free(f);
}

static void home_abort(struct mos_msg *m, const char *nspace)
{
	uint32_t rank = 0;
	int32_t status = 1;
	mos_msg_get_u32(m, MOS_T_RANK, &rank);
	mos_msg_get_i32(m, MOS_T_CODE, &status);
	char *msg = mos_msg_get_str(m, MOS_T_TEXT);
	struct job *j = job_find(jobid_of(nspace));
	if (j) {
		char text[640];
		snprintf(text, sizeof(text), "MPI rank %u called MPI_Abort with status %d%s%s", rank, status,
			 msg && *msg ? ": " : "", msg ? msg : "");
		job_notice(j, text);
		job_fail(j, status ? status : 1, text);
	}
	free(msg);
}

void pmixhost_on_msg(struct mos_msg *m, int from)
{
	uint32_t kind = 0, rank = 0;
	uint64_t seq = 0;
	int32_t code = 0;
	char *nspace = mos_msg_get_str(m, MOS_T_NAME);
	const struct mos_field *d = mos_msg_get(m, MOS_T_DATA);
	mos_msg_get_u32(m, MOS_T_KIND, &kind);
	mos_msg_get_u64(m, MOS_T_SEQ, &seq);
	mos_msg_get_u32(m, MOS_T_RANK, &rank);
	mos_msg_get_i32(m, MOS_T_CODE, &code);
	if (!nspace || strncmp(nspace, "mosexec.", 8)) {
		pr_warn("PMIx message without a valid namespace from %s", mosd.conf->nodes[from].name);
		free(nspace);
		return;
	}
	switch (kind) {
	case MOS_PMIX_FENCE_IN: home_fence_in(m, from, nspace); break;
	case MOS_PMIX_FENCE_OUT:
		if (available)
			mos_pmix_fence_done(nspace, seq, code, d ? d->data : NULL, d ? d->len : 0);
		break;
	case MOS_PMIX_DMODEX_REQ:
		if (dmodex_serve(nspace, rank, from, seq))
			send_pmix(from, MOS_PMIX_DMODEX_REP, nspace, seq, rank, -ENOENT, NULL, 0, NULL);
		else
			push_node_mates(nspace, rank, from);
		break;
	case MOS_PMIX_DMODEX_REP:
		if (available && seq == 0)
			mos_pmix_dmodex_push(nspace, rank, d ? d->data : NULL, d ? d->len : 0);
		else if (available)
			mos_pmix_dmodex_done(seq, code, d ? d->data : NULL, d ? d->len : 0);
		break;
	case MOS_PMIX_ABORT: home_abort(m, nspace); break;
	case MOS_PMIX_JOBCTL_REQ:
	case MOS_PMIX_JOBCTL_REP: pmixtool_on_msg(m, from, kind, nspace); break;
	default:
		pr_warn("unknown PMIx message kind %u from %s", kind, mosd.conf->nodes[from].name);
	}
	free(nspace);
}

/* --- home: the MPI description in each SPAWN ------------------------------- */

void pmixhost_put_spawn(struct job *j, uint32_t rank, struct mos_msg *s)
{
	char ns[64];
	if (!j->mpi_rank_of || j->mpi_rank_of[rank] == UINT32_MAX)
		return;
	nspace_of(j->id, ns, sizeof(ns));
	mos_msg_put_str(s, MOS_T_NAME, ns);
	mos_msg_put_u32(s, MOS_T_MPI_RANK, j->mpi_rank_of[rank]);
	mos_msg_put_u32(s, MOS_T_MPI_SIZE, j->mpi_size);
	uint32_t *map = malloc((size_t)j->mpi_size * 4), *apps = malloc((size_t)j->mpi_size * 4);
	for (uint32_t r = 0, k = 0; map && apps && r < j->nprocs; r++)
		if (j->mpi_rank_of[r] != UINT32_MAX) {
			map[k] = htole32((uint32_t)j->ranks[r].node);
			apps[k++] = htole32(j->mpi_app_of[j->rank_app[r]]);
		}
	if (map && apps) {
		mos_msg_put(s, MOS_T_RANKMAP, map, (size_t)j->mpi_size * 4);
		mos_msg_put(s, MOS_T_APPMAP, apps, (size_t)j->mpi_size * 4);
	}
	free(map);
	free(apps);
}

void pmixhost_job_gone(struct job *j)
{
	for (struct hfence *f = fences, *next; f; f = next) {
		next = f->next;
		if (f->jobid == j->id)
			fence_free(f);
	}
}
