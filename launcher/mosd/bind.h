/* bind.h - binding a job's processes to cores of this node, as mpirun's
 * --bind-to core does: which cpus a process started here gets, from the
 * node's hwloc topology, and the line --report-bindings prints for it. */
#ifndef MOSD_BIND_H
#define MOSD_BIND_H

#include "msg.h"
#include <stddef.h>

#define MOS_BIND_MAX_CPUS 4096

/* The affinity a new process gets: what sched_setaffinity takes. */
struct mos_bind {
	size_t len;           /* bytes of mask; 0 = leave the affinity alone */
	unsigned long mask[MOS_BIND_MAX_CPUS / (8 * sizeof(unsigned long))];
};

/* mos_bind_init - load this node's topology (hwloc, the cpus mosd may use).
 * Idempotent; mos_bind_plan calls it on the first bound process, so a node
 * that never binds never pays for it. 0, or -ENODEV when hwloc cannot. */
int mos_bind_init(void);
void mos_bind_fini(void);

/* mos_bind_plan - the binding of the process SPAWN M starts on node NODE:
 * BIND (absent = none), LOCAL_RANK i and LOCAL_SIZE n of M give core
 * i mod ncores. Fills *B (B->len 0: not bound). Writes into TEXT the line
 * for --report-bindings ("[node1] rank 3 bound to core 1 (cpus 2-3)") when
 * M's FLAGS ask for it, else "". Returns 0, or with the reason in TEXT:
 * -EOVERFLOW: n > ncores and FLAGS lack MOS_SUBMIT_OVERSUB;
 * -EINVAL: an unknown BIND kind; -ENODEV: no topology. */
int mos_bind_plan(const struct mos_msg *m, const char *node, struct mos_bind *b, char *text, size_t len);

/* mos_bind_moved - BIND from the home: the rank JOBID.RANK of M arrived here
 * by migration (CRIU does not restore cpu affinity) and is bound again, to
 * the core of this node its job's other ranks here use least; every thread
 * of every process of its pod gets it. Logs what it did; no reply. */
void mos_bind_moved(struct mos_msg *m);

#endif
