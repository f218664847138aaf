/* bind.c - mpirun's --bind-to for the processes this node starts: the node's
 * hwloc topology (loaded once, the first time a process is bound), each new
 * bound process -> the core this node's bound processes (of any job) use
 * least, the oversubscription check, the --report-bindings line (proc.c
 * applies the mask in the new pod); and binding again a bound rank that
 * migrated here, the same way. */
#include "bind.h"
#include "mosd.h"
#include "log.h"
#include <dirent.h>
#include <errno.h>
#include <hwloc.h>
#include <sched.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static hwloc_topology_t topo;
static bool loaded;

int mos_bind_init(void)
{
	if (loaded)
		return 0;
	if (hwloc_topology_init(&topo) < 0)
		return -ENODEV;
	if (hwloc_topology_load(topo) < 0) {
		hwloc_topology_destroy(topo);
		return -ENODEV;
	}
	loaded = true;
	return 0;
}

void mos_bind_fini(void)
{
	if (loaded)
		hwloc_topology_destroy(topo);
	loaded = false;
}

/* The cpus a process started now gets without binding: mosd's own. */
static int current_cpus(hwloc_bitmap_t set)
{
	cpu_set_t cs;

	if (sched_getaffinity(0, sizeof(cs), &cs) < 0)
		return -errno;
	for (int i = 0; i < CPU_SETSIZE; i++)
		if (CPU_ISSET(i, &cs))
			hwloc_bitmap_set(set, (unsigned)i);
	return 0;
}

static void fill_mask(struct mos_bind *b, hwloc_const_bitmap_t set)
{
	int i;
	const size_t bits = 8 * sizeof(b->mask[0]);

	memset(b->mask, 0, sizeof(b->mask));
	hwloc_bitmap_foreach_begin(i, set) {
		if ((size_t)i < MOS_BIND_MAX_CPUS)
			b->mask[(size_t)i / bits] |= 1ul << ((size_t)i % bits);
	}
	hwloc_bitmap_foreach_end();
	b->len = sizeof(b->mask);
}

/* Core number IDX (wrapped) of this node, or a PU where hwloc sees no cores. */
static hwloc_obj_t nth_core(uint32_t idx, unsigned *ncores)
{
	hwloc_obj_type_t type = HWLOC_OBJ_CORE;
	int n = hwloc_get_nbobjs_by_type(topo, type);

	if (n <= 0) {
		type = HWLOC_OBJ_PU;
		n = hwloc_get_nbobjs_by_type(topo, type);
	}
	*ncores = n > 0 ? (unsigned)n : 0;
	return n > 0 ? hwloc_get_obj_by_type(topo, type, idx % (unsigned)n) : NULL;
}

static int report_unbound(const char *node, uint32_t rank, char *text, size_t len)
{
	hwloc_bitmap_t set = hwloc_bitmap_alloc();
	char cpus[256] = "?";

	if (set && current_cpus(set) == 0)
		hwloc_bitmap_list_snprintf(cpus, sizeof(cpus), set);
	hwloc_bitmap_free(set);
	snprintf(text, len, "[%s] rank %u not bound (cpus %s)", node, rank, cpus);
	return 0;
}

/* The core this node's other processes (all jobs; not P) use least, the
 * first of those on a tie: each process bound to exactly one core counts
 * for it. A job's processes so fill the free cores in rank order, and two
 * bound jobs on one node do not start on the same cores. */
static hwloc_obj_t least_used_core(const struct proc *p)
{
	unsigned ncores, best = 0;
	hwloc_obj_t first = nth_core(0, &ncores);
	unsigned *use = first ? calloc(ncores, sizeof(*use)) : NULL;
	hwloc_bitmap_t set = hwloc_bitmap_alloc();

	for (struct proc *q = mosd.procs; use && set && q; q = q->next) {
		if (q == p || q->reaped || hwloc_get_proc_cpubind(topo, q->pid, set, 0) < 0)
			continue;
		for (unsigned c = 0; c < ncores; c++)
			if (hwloc_bitmap_isequal(set, nth_core(c, &ncores)->cpuset))
				use[c]++;
	}
	for (unsigned c = 1; use && c < ncores; c++)
		if (use[c] < use[best])
			best = c;
	free(use);
	hwloc_bitmap_free(set);
	return first ? nth_core(best, &ncores) : NULL;
}

int mos_bind_plan(const struct mos_msg *m, const char *node, struct mos_bind *b, char *text, size_t len)
{
	uint32_t kind = MOS_BIND_NONE, rank = 0, lsize = 1, flags = 0;
	unsigned ncores;
	char cpus[256];

	mos_msg_get_u32(m, MOS_T_BIND, &kind);
	mos_msg_get_u32(m, MOS_T_RANK, &rank);
	mos_msg_get_u32(m, MOS_T_LOCAL_SIZE, &lsize);
	mos_msg_get_u32(m, MOS_T_FLAGS, &flags);
	b->len = 0;
	text[0] = 0;
	if (kind == MOS_BIND_NONE)
		return flags & MOS_SUBMIT_REPORT_BIND ? report_unbound(node, rank, text, len) : 0;
	if (kind != MOS_BIND_CORE) {
		snprintf(text, len, "unknown binding %u (core, none)", kind);
		return -EINVAL;
	}
	if (mos_bind_init()) {
		snprintf(text, len, "cannot read the cpu topology of node %s (hwloc)", node);
		return -ENODEV;
	}
	hwloc_obj_t core = nth_core(0, &ncores) ? least_used_core(NULL) : NULL;
	if (!core || !core->cpuset) {
		snprintf(text, len, "hwloc finds no cores on node %s", node);
		return -ENODEV;
	}
	if (lsize > ncores && !(flags & MOS_SUBMIT_OVERSUB)) {
		snprintf(text, len, "--bind-to core: %u processes of the job on %s, which has %u cores "
			 "(--oversubscribe lets them share cores)", lsize, node, ncores);
		return -EOVERFLOW;
	}
	fill_mask(b, core->cpuset);
	if (flags & MOS_SUBMIT_REPORT_BIND) {
		hwloc_bitmap_list_snprintf(cpus, sizeof(cpus), core->cpuset);
		snprintf(text, len, "[%s] rank %u bound to core %u (cpus %s)", node, rank, core->logical_index, cpus);
	}
	return 0;
}

/* --- a bound rank that moved here ---------------------------------------- */

/* Every thread of PID and of its descendants gets B; -errno of the first
 * failure (a thread that ended meanwhile does not count). */
static int apply_tree(pid_t pid, const struct mos_bind *b, int depth)
{
	char path[64];
	int rc = 0;

	snprintf(path, sizeof(path), "/proc/%d/task", (int)pid);
	DIR *d = opendir(path);
	if (!d)
		return errno == ENOENT ? 0 : -errno;
	for (struct dirent *e; (e = readdir(d));) {
		pid_t tid = (pid_t)strtol(e->d_name, NULL, 10);
		if (tid <= 0)
			continue;
		if (sched_setaffinity(tid, b->len, (const cpu_set_t *)b->mask) < 0 && errno != ESRCH && !rc)
			rc = -errno;
		snprintf(path, sizeof(path), "/proc/%d/task/%d/children", (int)pid, (int)tid);
		FILE *f = depth < 64 ? fopen(path, "r") : NULL;
		for (int child; f && fscanf(f, "%d", &child) == 1;) {
			int crc = apply_tree(child, b, depth + 1);
			rc = rc ? rc : crc;
		}
		if (f)
			fclose(f);
	}
	closedir(d);
	return rc;
}

void mos_bind_moved(struct mos_msg *m)
{
	uint32_t jobid = 0, rank = 0, kind = MOS_BIND_NONE;
	struct mos_bind b;
	char cpus[256] = "?";
	int rc;

	mos_msg_get_u32(m, MOS_T_JOBID, &jobid);
	mos_msg_get_u32(m, MOS_T_RANK, &rank);
	mos_msg_get_u32(m, MOS_T_BIND, &kind);
	struct proc *p = proc_find(jobid, rank);
	if (!p || p->reaped || kind != MOS_BIND_CORE)
		return;
	if (mos_bind_init()) {
		pr_warn("job %u rank %u arrived bound to a core: no topology here, left unbound", jobid, rank);
		return;
	}
	hwloc_obj_t core = least_used_core(p);
	if (!core || !core->cpuset)
		return;
	fill_mask(&b, core->cpuset);
	/* twice: a process forked by one not yet bound is caught the second time */
	if ((rc = apply_tree(p->pid, &b, 0)) == 0)
		rc = apply_tree(p->pid, &b, 0);
	hwloc_bitmap_list_snprintf(cpus, sizeof(cpus), core->cpuset);
	if (rc)
		pr_warn("job %u rank %u: cannot bind it to core %u (cpus %s) after its move: %s", jobid, rank,
			core->logical_index, cpus, strerror(-rc));
	else
		pr_info("job %u rank %u bound to core %u (cpus %s) after its move", jobid, rank, core->logical_index,
			cpus);
}
