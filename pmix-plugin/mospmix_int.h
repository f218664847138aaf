/* mospmix_int.h - what the files of pmix-plugin/ share: the one server
 * state, the queue that moves PMIx upcalls onto the host loop, status
 * mapping and the blocking helper. Not for the host: it includes pmix.h. */
#ifndef MOS_PMIX_INT_H
#define MOS_PMIX_INT_H

#include "mospmix.h"
#include <pmix.h>
#include <pmix_server.h>
#include <pthread.h>

/* One upcall moved to the host loop. RUN frees W; it checks
 * mos_pmix_srv.state: RUNNING calls host ops and answers PMIx, STOPPING
 * answers PMIx with an error, DEAD (PMIx finalized) only frees. */
struct mos_pmix_work {
	struct mos_pmix_work *next;
	void (*run)(struct mos_pmix_work *w);
};

enum mos_pmix_state { MOS_PMIX_DOWN = 0, MOS_PMIX_RUNNING, MOS_PMIX_STOPPING, MOS_PMIX_DEAD };

struct mos_pmix_jobrec {
	struct mos_pmix_jobrec *next;
	char nspace[PMIX_MAX_NSLEN + 1];
	uint32_t nprocs;
	uint32_t this_nodeid;
	uid_t uid;		/* the ranks' owner: a client's job control acts as it */
	uint32_t *rank_node;	/* [nprocs] */
	uint64_t fence_seq;	/* last fence id handed to the host */
	char *dir;		/* TMPDIR/NSPACE.NODEID, removed on deregister */
};

struct mos_pmix_server {
	enum mos_pmix_state state;
	struct event_base *base;
	struct mos_pmix_host_ops ops;
	char hostname[256];
	uint32_t nodeid;
	char *tmpdir;
	/* the upcall queue: filled by the PMIx thread, drained on the loop */
	pthread_mutex_t qlock;
	struct mos_pmix_work *qhead, **qtail;
	int qpipe[2];
	struct event *qev;
	struct mos_pmix_jobrec *jobs;
	uint16_t tool_port;	/* our TCP port (tools and clients), 0 = unknown */
	char *topo_xml;		/* the node's hwloc topology for every job, or NULL */
};

extern struct mos_pmix_server mos_pmix_srv;

/* shift.c */
int mos_pmix_shift_init(void);
void mos_pmix_shift_fini(void);
/* mos_pmix_shift - from any thread: run W->run(W) on the host loop soon. */
void mos_pmix_shift(struct mos_pmix_work *w, void (*run)(struct mos_pmix_work *w));
/* mos_pmix_shift_drain - run everything queued now (host loop only). */
void mos_pmix_shift_drain(void);

/* server.c */
pmix_status_t mos_pmix_to_pmix(int err);
int mos_pmix_from_pmix(pmix_status_t st);
/* wait on the host thread for a PMIx op callback */
struct mos_pmix_sync {
	pthread_mutex_t lock;
	pthread_cond_t cond;
	bool done;
	pmix_status_t status;
};
void mos_pmix_sync_init(struct mos_pmix_sync *s);
void mos_pmix_sync_cb(pmix_status_t status, void *cbdata);
/* RC: what the PMIx call returned; waits only if it will call back. */
pmix_status_t mos_pmix_sync_wait(struct mos_pmix_sync *s, pmix_status_t rc);
/* free() as a pmix_release_cbfunc_t (runs on the PMIx thread) */
void mos_pmix_release_free(void *cbdata);
/* the PMIX_TIMEOUT of an info array, 0 if none */
int mos_pmix_info_timeout(const pmix_info_t info[], size_t ninfo);

/* client.c: upcalls about single clients */
pmix_status_t mos_pmix_up_connected(const pmix_proc_t *proc, void *server_object,
				    pmix_info_t info[], size_t ninfo, pmix_op_cbfunc_t cbfunc,
				    void *cbdata);
pmix_status_t mos_pmix_up_finalized(const pmix_proc_t *proc, void *server_object,
				    pmix_op_cbfunc_t cbfunc, void *cbdata);
pmix_status_t mos_pmix_up_abort(const pmix_proc_t *proc, void *server_object, int status,
				const char msg[], pmix_proc_t procs[], size_t nprocs,
				pmix_op_cbfunc_t cbfunc, void *cbdata);

/* job.c */
struct mos_pmix_jobrec *mos_pmix_job_find(const char *nspace);
void mos_pmix_jobs_fini(void);

/* fence.c */
pmix_status_t mos_pmix_up_fence(const pmix_proc_t procs[], size_t nprocs,
				const pmix_info_t info[], size_t ninfo, char *data, size_t ndata,
				pmix_modex_cbfunc_t cbfunc, void *cbdata);
int mos_pmix_fence_fail_ns(const char *nspace, int status);

/* dmodex.c */
pmix_status_t mos_pmix_up_dmodex(const pmix_proc_t *proc, const pmix_info_t info[], size_t ninfo,
				 pmix_modex_cbfunc_t cbfunc, void *cbdata);
int mos_pmix_dmodex_fail_ns(const char *nspace, int status);

/* tool.c */
void mos_pmix_up_tool_connected(pmix_info_t *info, size_t ninfo,
				pmix_tool_connection_cbfunc_t cbfunc, void *cbdata);
/* after PMIx_server_init with tool support: rendezvous file, our port */
void mos_pmix_tool_start(void);
void mos_pmix_tools_fini(void);
/* mos_pmix_requester_uid - the uid WHO acts as: a tool's (confirmed at
 * connection) or, for a client, its job's owner. 0, or -EPERM with *WHY. */
int mos_pmix_requester_uid(const pmix_proc_t *who, uid_t *uid, const char **why);

/* peercred.c: is every tool connection now waiting for our answer held
 * by a socket of UID (the kernel's word, not the tool's)? */
bool mos_pmix_peer_uid_connected(uid_t uid);

/* query.c */
pmix_status_t mos_pmix_up_query(pmix_proc_t *proct, pmix_query_t *queries, size_t nqueries,
				pmix_info_cbfunc_t cbfunc, void *cbdata);
/* answer every query still waiting for the host with an error */
void mos_pmix_query_fini(void);

/* jobctl.c */
pmix_status_t mos_pmix_up_job_control(const pmix_proc_t *requestor, const pmix_proc_t targets[],
				      size_t ntargets, const pmix_info_t directives[],
				      size_t ndirs, pmix_info_cbfunc_t cbfunc, void *cbdata);
void mos_pmix_jobctl_fini(void);

/* release callback (PMIx thread) for an info array we handed to PMIx */
struct mos_pmix_infos {
	pmix_info_t *info;
	size_t n;
};
void mos_pmix_release_infos(void *cbdata);

#endif
