/* mospmix.h - the PMIx server as a library: one server per process, driven
 * from the host's libevent loop. The same code runs inside mosd (a node of
 * many ranks) or inside a per-rank pod init (a "node" of one rank).
 *
 * Threads. Every mos_pmix_*() call and every host op runs on the host's loop
 * thread (the one running the event_base given to mos_pmix_init). PMIx
 * upcalls arrive on PMIx's own progress thread; the library queues them onto
 * the host loop (a pipe read by an event on that base) before touching any
 * state. The host never sees the PMIx thread.
 *
 * Status values handed across this interface are 0 or -errno:
 *   -ETIMEDOUT   timed out          -EHOSTDOWN  a server/node is gone
 *   -ENOENT      unknown nspace/id  -ENOTSUP    not supported
 *   -ECANCELED   job deregistered   other       generic error
 */
#ifndef MOS_PMIX_H
#define MOS_PMIX_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

struct event_base;

/* --- tools: queries and job control (tool.c, query.c, jobctl.c) --------- */

/* Query keys of our own (doc/pmix-scheduler.md), next to PMIx's
 * PMIX_QUERY_NAMESPACES, PMIX_QUERY_PROC_TABLE, PMIX_QUERY_LOCAL_PROC_TABLE. */
#define MOS_PMIX_KEY_NODE_LOADS "mosexec.node.loads"	/* array of MOS_PMIX_KEY_NODE */
#define MOS_PMIX_KEY_NODE "mosexec.node"		/* array: PMIX_HOSTNAME and: */
#define MOS_PMIX_KEY_LOAD "mosexec.load"		/* uint32: runnable procs x 1000 */
#define MOS_PMIX_KEY_NCPUS "mosexec.ncpus"		/* uint32 */
#define MOS_PMIX_KEY_NPROCS "mosexec.nprocs"		/* uint32 */
#define MOS_PMIX_KEY_AGE_MS "mosexec.age_ms"		/* uint32: age of the figures */
#define MOS_PMIX_KEY_PROC_TABLE "mosexec.proc.table"	/* array of MOS_PMIX_KEY_PROC */
#define MOS_PMIX_KEY_PROC "mosexec.proc"		/* array: PMIX_NSPACE, PMIX_RANK,
							 * PMIX_HOSTNAME, PMIX_PROC_PID,
							 * PMIX_USERID and: */
#define MOS_PMIX_KEY_HOME "mosexec.home"		/* string: the job's home node */
#define MOS_PMIX_KEY_STATE "mosexec.state"		/* string: run stop migrating exited */
#define MOS_PMIX_KEY_CPU "mosexec.cpu_permille"	/* uint32 */
#define MOS_PMIX_KEY_RSS "mosexec.rss"			/* uint64: bytes */
#define MOS_PMIX_KEY_MIGRATIONS "mosexec.migrations"	/* uint32 */
#define MOS_PMIX_KEY_CMD "mosexec.cmd"			/* string */
#define MOS_PMIX_KEY_MISSING "mosexec.nodes.missing"	/* string: nodes that did not answer */
/* Job control: the reason of a refusal, in PMIx_Job_control's results. */
#define MOS_PMIX_KEY_JCTL_MSG "mosexec.jctrl.msg"
/* Job control: where PMIX_JOB_CTRL_CHECKPOINT writes (string: an absolute
 * directory on the full node that takes the checkpoint; default: one under
 * mosd's state directory). The answer's mosexec.jctrl.msg says where. */
#define MOS_PMIX_KEY_CKPT_DIR "mosexec.ckpt.dir"
/* Reserved: moving processes through PMIx (PMIX_ERR_NOT_SUPPORTED for now). */
#define MOS_PMIX_KEY_JCTL_MIGRATE "mosexec.jctrl.migrate"

/* What a tool's query needs from the host (bits of the NEED argument). */
#define MOS_PMIX_NEED_PROCS 1u	/* every process of every job, cluster-wide */
#define MOS_PMIX_NEED_LOADS 2u	/* every node's load */

/* One process as the host knows it. */
struct mos_pmix_proc_row {
	const char *nspace;	/* its job's namespace (also for non-MPI jobs) */
	uint32_t rank;		/* its rank in the job */
	const char *node;	/* the node it runs on now */
	const char *home;	/* the job's home node (may be NULL) */
	const char *cmd;	/* its command line (may be NULL) */
	const char *state;	/* "run", "stop", "migrating" or "exited" */
	pid_t pid;		/* on NODE */
	uid_t uid;
	uint32_t cpu_permille;	/* of one core, since it started */
	uint64_t rss;		/* bytes */
	uint32_t migrations;
};

/* One node's load as the host knows it. */
struct mos_pmix_node_load {
	const char *node;
	uint32_t load_milli;	/* runnable processes x 1000 */
	uint32_t ncpus;
	uint32_t nprocs;
	uint32_t age_ms;	/* how old the figure is (0: this node) */
};

/* The answer to MOS_PMIX_NEED_* (what was not asked for may be empty). */
struct mos_pmix_table {
	const struct mos_pmix_proc_row *procs;
	size_t nprocs;
	const struct mos_pmix_node_load *loads;
	size_t nloads;
	const char *missing;	/* nodes that did not answer ("a,b"), or NULL */
};

/* Job-control actions (PMIx_Job_control directives the library accepts;
 * every other directive is answered PMIX_ERR_NOT_SUPPORTED by the library). */
enum mos_pmix_jctl {
	MOS_PMIX_JCTL_KILL = 1,	/* PMIX_JOB_CTRL_KILL: SIGKILL now */
	MOS_PMIX_JCTL_TERMINATE,	/* PMIX_JOB_CTRL_TERMINATE: SIGTERM, SIGKILL later */
	MOS_PMIX_JCTL_SIGNAL,	/* PMIX_JOB_CTRL_SIGNAL: the given signal */
	MOS_PMIX_JCTL_PAUSE,	/* PMIX_JOB_CTRL_PAUSE: freeze every process */
	MOS_PMIX_JCTL_RESUME,	/* PMIX_JOB_CTRL_RESUME: thaw them */
	MOS_PMIX_JCTL_CHECKPOINT,	/* PMIX_JOB_CTRL_CHECKPOINT: a restartable
					 * checkpoint of the whole job */
};

#define MOS_PMIX_RANK_ALL UINT32_MAX	/* a target meaning every rank of the job */

struct mos_pmix_target {
	const char *nspace;
	uint32_t rank;		/* or MOS_PMIX_RANK_ALL */
};

/* What the host does for the library. Called on the host loop thread. Every
 * pointer argument is valid only during the call: copy what you keep. */
struct mos_pmix_host_ops {
	void *ctx;
	/* A fence of NSPACE is locally complete on this server (every local
	 * rank arrived). FENCE_ID is this namespace's fence sequence number
	 * (1, 2, 3, ... - Open MPI 4.1 does three), equal on every server for
	 * the same fence because every fence spans the whole namespace. The
	 * host exchanges DATA with every other server holding ranks of NSPACE
	 * and then calls mos_pmix_fence_done(NSPACE, FENCE_ID, 0, all, len)
	 * with the concatenation, in any order, of every server's blob (this
	 * one's included); a server with no local data contributes len 0.
	 * TIMEOUT_S > 0 when a client asked for one: the library fails the
	 * fence by itself when it expires, the host may give up too. A host
	 * that must re-send after a reconnect (a moved pod) keeps its own copy
	 * of DATA until it calls mos_pmix_fence_done(). Open MPI 4.1 does not
	 * stop on a failed fence (it went on to the next one and spun): when a
	 * fence fails, end the job too. */
	void (*fence)(void *ctx, const char *nspace, uint64_t fence_id, const void *data,
		      size_t len, int timeout_s);
	/* A local client wants RANK's data (direct modex; RANK is remote). The
	 * host forwards (NSPACE, RANK, REQ_ID) to the server holding RANK,
	 * which calls mos_pmix_dmodex_serve(); the answer comes back here
	 * through mos_pmix_dmodex_done(REQ_ID, ...). Duplicate requests are
	 * merged by the library: one REQ_ID per (NSPACE, RANK) in flight.
	 * NULL: direct modex requests fail with PMIX_ERR_NOT_SUPPORTED. */
	void (*dmodex)(void *ctx, const char *nspace, uint32_t rank, uint64_t req_id);
	/* RANK called PMIx_Abort (MPI_Abort): the host ends the whole job with
	 * STATUS and shows MSG (may be empty). The client is released after
	 * this returns; it exits by itself soon after. */
	void (*abort)(void *ctx, const char *nspace, uint32_t rank, int status, const char *msg);
	/* RANK connected to this server (PMIx_Init, i.e. MPI_Init). May be NULL. */
	void (*client_connected)(void *ctx, const char *nspace, uint32_t rank);
	/* RANK called PMIx_Finalize (MPI_Finalize). May be NULL. With libpmix
	 * 4.2.2 a connection that merely drops does not come here (measured),
	 * so "connected, exited, never finalized" means the rank left without
	 * MPI_Finalize: its peers would wait in the next fence, end the job. */
	void (*client_finalized)(void *ctx, const char *nspace, uint32_t rank);
	/* A tool attached (PMIx_tool_init) and was named TOOL; UID/GID are the
	 * credentials PMIx's security module gave (see tool.c for how far they
	 * are checked). A notice only; may be NULL. */
	void (*tool_connected)(void *ctx, const char *tool, uid_t uid, gid_t gid);
	/* A tool asked PMIx_Query_info for something that needs NEED
	 * (MOS_PMIX_NEED_* bits). The host gathers it - from every node if it
	 * must - and calls mos_pmix_query_done(REQ_ID, ...) exactly once, from
	 * inside this call or later; the library builds the PMIx answer (it
	 * filters by namespace and node itself). Queries are not restricted by
	 * user: like ps(1), everyone sees every process. NULL: every query
	 * answers PMIX_ERR_NOT_SUPPORTED. */
	void (*query)(void *ctx, uint64_t req_id, unsigned need);
	/* PMIx_Job_control: do ACTION (SIG for MOS_PMIX_JCTL_SIGNAL; DIR, or
	 * NULL, for MOS_PMIX_JCTL_CHECKPOINT) to the N TARGETS on behalf of UID - the requesting tool's user as PMIx
	 * authenticated it at connection, or the owner of the requesting
	 * client's namespace; never the server's own id. The host checks that
	 * UID owns every targeted job or is 0, acts, and calls
	 * mos_pmix_job_control_done(REQ_ID, status, text) exactly once (0,
	 * -EPERM, -ENOENT no such job, -EINVAL bad rank or signal, -EHOSTDOWN,
	 * -ETIMEDOUT); TEXT, also with 0, goes to the tool as
	 * mosexec.jctrl.msg. NULL: job control answers PMIX_ERR_NOT_SUPPORTED. */
	void (*job_control)(void *ctx, uint64_t req_id, uid_t uid, enum mos_pmix_jctl action,
			    int sig, const char *dir, const struct mos_pmix_target *targets, size_t n);
};

/* mos_pmix_init - start the PMIx server of this process on BASE.
 * HOSTNAME/NODEID: this server's name and index as they appear in the node
 * lists of mos_pmix_register_job() (a pod's name and index for a pod init).
 * TMPDIR: a directory private to this server (created if missing); PMIx
 * rendezvous files and the per-job directories live there. OPS is copied.
 * TOOL_SUPPORT accepts PMIx tool connections (PMIx_tool_init with
 * PMIX_SERVER_PIDINFO = this pid; the tool finds TMPDIR/pmix.HOSTNAME.tool.PID
 * only when run with PMIX_HOSTNAME=HOSTNAME and PMIX_SYSTEM_TMPDIR=TMPDIR);
 * the library makes that file readable by everyone (it holds only the
 * server's URI, which PMIx_tool_init also takes as PMIX_SERVER_URI).
 * Query and job control go to ops.query / ops.job_control.
 * Once per process. Sets PMIX_MCA_gds=hash in the process environment unless
 * set (no shared-memory store to carry along when a pod moves). The host
 * must ignore SIGPIPE (PMIx writes to sockets of clients that may have
 * died). Returns 0, -EALREADY, -EINVAL, -errno from
 * mkdir/pipe, or -EIO when PMIx_server_init fails (logged). */
int mos_pmix_init(struct event_base *base, const char *hostname, uint32_t nodeid,
		  const char *tmpdir, const struct mos_pmix_host_ops *ops, bool tool_support);

/* mos_pmix_fini - fail every pending fence and direct-modex request,
 * deregister every job (removing its directory) and stop the PMIx server.
 * Host ops are not called from here on. Safe to call if init failed. */
void mos_pmix_fini(void);

/* mos_pmix_set_topology - hand every job registered from now on this
 * node's hwloc topology, XML (hwloc 2 format, copied; NULL forgets it), as
 * job data (PMIX_HWLOC_XML_V2): Open MPI 4.1 loads it
 * from there instead of discovering the node in every rank (~10 ms of CPU
 * each, measured; sysfs PCI reads serialise on the kernel's PCI lock). The
 * host discovers it once, the way Open MPI would (I/O objects kept). A rank
 * given -x OMPI_MCA_hwloc_base_topo_file=... still gets this one: Open MPI
 * prefers what PMIx gives. Returns 0 or -ENOMEM. */
int mos_pmix_set_topology(const char *xml);

/* One job as every server sees it. Register the same description on every
 * server holding ranks of the job (and on a server that only relays). */
struct mos_pmix_job {
	const char *nspace;		/* < 256 chars, no '/' */
	uint32_t nprocs;		/* ranks 0 .. nprocs-1 */
	uint32_t n_nodes;
	const char *const *node_names;	/* [n_nodes], index = nodeid; no ',' ';' */
	const uint32_t *rank_node;	/* [nprocs]: nodeid of each rank */
	const uint32_t *rank_app;	/* [nprocs]: app (MPMD ':'), NULL = all 0;
					 * apps must be numbered 0.. in rank order */
	uint32_t this_nodeid;		/* which of the nodes this server is */
	uid_t uid;			/* the ranks' credentials: PMIx refuses */
	gid_t gid;			/* connections from anyone else */
};

/* mos_pmix_register_job - register JOB's namespace with node, process and
 * per-rank data (sizes, maps, local peers, local/node ranks, hostnames,
 * apps) and its ranks on this node as clients; creates the job directory
 * TMPDIR/NSPACE.NODEID (PMIX_TMPDIR/PMIX_NSDIR, Open MPI's vader backing
 * directory). Nodes without ranks are left out of the maps. Returns 0,
 * -EINVAL (bad description), -EEXIST, -ENOMEM, -errno from mkdir, -EIO. */
int mos_pmix_register_job(const struct mos_pmix_job *job);

/* mos_pmix_setup_fork - append to *ENVP (a NULL-terminated malloc'd array
 * of malloc'd "K=V" strings, *ENVP may be NULL; the caller frees it) what
 * RANK of NSPACE needs: PMIx's client environment (server URI, namespace,
 * rank), the direct-launch trigger for Open MPI 4.1 (JSM_JSRUN_PORT=0, which
 * also leaves binding to the launcher), PMIX_MCA_gds=hash, the per-node
 * OMPI_MCA_btl_vader_backing_directory, OMPI_MCA_mpi_yield_when_idle=1,
 * OMPI_MCA_pml=ob1 and Open MPI's direct modex without the init barrier
 * (OMPI_MCA_pmix_base_async_modex=1, OMPI_MCA_pmix_base_collect_data=0,
 * OMPI_MCA_mpi_async_mpi_init=1: all three unless *ENVP has any of them:
 * a peer's data is then fetched through the dmodex host op when a rank first
 * talks to it). A variable already in *ENVP is never overridden, so the
 * host sets its own choice first (e.g. OMPI_MCA_mpi_yield_when_idle=0 on an
 * undersubscribed node). Returns 0, -ENOENT (unknown nspace), -EINVAL (rank
 * not on this node), -ENOMEM, -EIO. */
int mos_pmix_setup_fork(const char *nspace, uint32_t rank, char ***envp);

/* mos_pmix_fence_done - complete this server's fence FENCE_ID of NSPACE
 * with STATUS and, on success, the combined DATA (copied). Returns 0 or
 * -ENOENT (unknown, already completed or timed out - harmless). */
int mos_pmix_fence_done(const char *nspace, uint64_t fence_id, int status, const void *data,
			size_t len);

/* mos_pmix_dmodex_serve - fetch local RANK's data for a remote server's
 * direct modex request; waits inside PMIx until RANK has committed it.
 * REPLY(ARG, status, data, len) is called once on the host loop, data valid
 * during the call only - but only if this returned 0. Returns 0, -ENOMEM,
 * -EIO (PMIx refused, e.g. rank unknown). */
int mos_pmix_dmodex_serve(const char *nspace, uint32_t rank,
			  void (*reply)(void *arg, int status, const void *data, size_t len),
			  void *arg);

/* mos_pmix_dmodex_done - answer direct modex request REQ_ID with STATUS and
 * the data (copied) that the serving node returned. Returns 0 or -ENOENT. */
int mos_pmix_dmodex_done(uint64_t req_id, int status, const void *data, size_t len);

/* mos_pmix_dmodex_push - RANK's data (copied), sent by the server holding
 * RANK without being asked by us (it sends its other ranks' data along with
 * its first answer to us: an all-to-all asks for every peer, one round trip
 * each otherwise). Answers our request in flight for RANK if there is one,
 * else is kept for the next (until used or the job is deregistered).
 * Returns 0, -ENOENT (unknown job) or -ENOMEM. */
int mos_pmix_dmodex_push(const char *nspace, uint32_t rank, const void *data, size_t len);

/* mos_pmix_job_fail - complete every pending fence and direct-modex request
 * of NSPACE with STATUS (e.g. -EHOSTDOWN when a node of the job died, so
 * that no rank waits forever). Returns how many were failed. */
int mos_pmix_job_fail(const char *nspace, int status);

/* mos_pmix_deregister_job - mos_pmix_job_fail(-ECANCELED), forget NSPACE in
 * PMIx and remove its job directory. Call after its local ranks are gone.
 * Returns 0 or -ENOENT. */
int mos_pmix_deregister_job(const char *nspace);

/* mos_pmix_query_done - answer query REQ_ID with STATUS and, on success,
 * TABLE (read during the call only). Returns 0 or -ENOENT (unknown or
 * already answered - e.g. failed at fini; harmless). */
int mos_pmix_query_done(uint64_t req_id, int status, const struct mos_pmix_table *table);

/* mos_pmix_job_control_done - answer job-control request REQ_ID with
 * STATUS; TEXT (may be NULL) says why, or what was done: the string
 * "mosexec.jctrl.msg" in PMIx_Job_control's results (libpmix 4.2's tool side
 * drops results that come with a failure, so its tools see only the
 * status). 0 or -ENOENT. */
int mos_pmix_job_control_done(uint64_t req_id, int status, const char *text);

#endif
