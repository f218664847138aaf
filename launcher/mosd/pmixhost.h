/* pmixhost.h - mosd as the PMIx server of the MPI ranks it runs: the glue
 * between pmix-plugin/ (one PMIx server per daemon) and the daemons' links.
 * Where ranks run: registration, fork environment, fence contributions to
 * the job's home, direct modex between nodes, abort. At the home: fences are
 * combined and handed back, with a time limit. */
#ifndef MOSD_PMIXHOST_H
#define MOSD_PMIXHOST_H

#include "mosd.h"
#include "mospmix.h"

/* What a local MPI rank did, reported home with its exit. */
enum pmix_client_state { PMIX_CL_NONE = 0, PMIX_CL_CONNECTED = 1, PMIX_CL_FINALIZED = 2 };

int pmixhost_init(void);
void pmixhost_fini(void);
bool pmixhost_available(void);
/* pmixhost_spawn_env - SPAWN M is an MPI rank: register its namespace here
 * if needed and add the PMIx/Open MPI environment to *ENVP. 0 (also for a
 * non-MPI spawn), or -errno with a message in ERR. */
int pmixhost_spawn_env(struct mos_msg *m, struct proc *p, char ***envp, char *err, size_t len);
/* pmixhost_proc_gone - P ended: its client state for the EXIT message, and
 * the namespace is dropped with its last local rank. */
enum pmix_client_state pmixhost_proc_gone(struct proc *p);
void pmixhost_on_msg(struct mos_msg *m, int from);

/* pmixtool.c - PMIx tools: queries and job control (host ops of the
 * library), and the job-control messages between a tool's node and a job's
 * home. The kinds extend enum mos_pmix_kind (msg.h) and travel only between
 * pmixtool.c instances. */
enum { MOS_PMIX_JOBCTL_REQ = 16, MOS_PMIX_JOBCTL_REP };
struct mos_pmix_target;
void pmixtool_query(void *ctx, uint64_t req, unsigned need);
void pmixtool_job_control(void *ctx, uint64_t req, uid_t uid, enum mos_pmix_jctl action, int sig, const char *dir,
			  const struct mos_pmix_target *targets, size_t n);
void pmixtool_tool_connected(void *ctx, const char *tool, uid_t uid, gid_t gid);
void pmixtool_on_msg(struct mos_msg *m, int from, unsigned kind, const char *nspace);
void pmixtool_fini(void);

/* home side (job.c): the MPI description of a job, added to each SPAWN. */
void pmixhost_put_spawn(struct job *j, uint32_t rank, struct mos_msg *s);
void pmixhost_job_gone(struct job *j);

#endif
