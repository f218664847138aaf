/* place.c - initial placement of a job's ranks on nodes: fill free capacity
 * by slot or by node, then oversubscribe in proportion to slots if allowed.
 * Pure policy: no syscalls, no globals, no clock. */
#include "place.h"
#include <errno.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>

struct cand {
	unsigned idx;  /* index into the caller's nodes */
	unsigned free; /* slots - ceil(load), floored at 0 */
};

static bool usable(const struct mos_place_node *nd)
{
	return nd->eligible && nd->slots > 0;
}

static unsigned free_slots(const struct mos_place_node *nd)
{
	/* ceil(load_milli / 1000) without overflowing near UINT_MAX */
	unsigned busy = nd->load_milli / 1000 + (nd->load_milli % 1000 != 0);

	return busy >= nd->slots ? 0 : nd->slots - busy;
}

/* Most free capacity first; ties keep the caller's order. */
static int cand_cmp(const void *a, const void *b)
{
	const struct cand *x = a, *y = b;

	if (x->free != y->free)
		return x->free > y->free ? -1 : 1;
	return x->idx < y->idx ? -1 : x->idx > y->idx;
}

static void set_err(char *err, size_t errlen, const char *msg)
{
	if (err && errlen)
		snprintf(err, errlen, "%s", msg);
}

/* Consecutive ranks fill one node's free slots before the next node. */
static unsigned fill_by_slot(const struct cand *c, size_t nc, unsigned nprocs, unsigned *out)
{
	unsigned r = 0;

	for (size_t i = 0; i < nc && r < nprocs; i++)
		for (unsigned s = 0; s < c[i].free && r < nprocs; s++)
			out[r++] = c[i].idx;
	return r;
}

/* One rank per node per round. C is sorted by free capacity descending, so
 * the nodes still taking ranks in round R are always a prefix of C. */
static unsigned fill_by_node(const struct cand *c, size_t nc, unsigned nprocs, unsigned *out)
{
	size_t active = nc;
	unsigned r = 0;

	for (unsigned round = 0; r < nprocs; round++) {
		while (active && c[active - 1].free <= round)
			active--;
		if (!active)
			break;
		for (size_t i = 0; i < active && r < nprocs; i++)
			out[r++] = c[i].idx;
	}
	return r;
}

/* Weighted round-robin: each further rank goes to the eligible node with the
 * smallest assigned/slots (ties to the lowest index), so the totals end up
 * proportional to slots. COUNT[i] holds each node's ranks so far. */
static void fill_over(const struct mos_place_node *nodes, size_t n, unsigned from, unsigned nprocs,
		      unsigned *count, unsigned *out)
{
	for (unsigned r = from; r < nprocs; r++) {
		size_t best = n;

		for (size_t i = 0; i < n; i++) {
			if (!usable(&nodes[i]))
				continue;
			/* count[i]/slots[i] < count[best]/slots[best], cross-multiplied */
			if (best == n || (uint64_t)count[i] * nodes[best].slots <
						 (uint64_t)count[best] * nodes[i].slots)
				best = i;
		}
		out[r] = (unsigned)best;
		count[best]++;
	}
}

static int place_sorted(const struct mos_place_node *nodes, size_t n, struct cand *c, size_t nc,
			unsigned nprocs, enum mos_map_by by, unsigned *out)
{
	unsigned done, *count;

	done = by == MOS_MAP_BY_NODE ? fill_by_node(c, nc, nprocs, out)
				     : fill_by_slot(c, nc, nprocs, out);
	if (done == nprocs)
		return 0;
	count = calloc(n, sizeof(*count));
	if (!count)
		return -ENOMEM;
	for (unsigned r = 0; r < done; r++)
		count[out[r]]++;
	fill_over(nodes, n, done, nprocs, count, out);
	free(count);
	return 0;
}

int mos_place(const struct mos_place_node *nodes, size_t n, unsigned nprocs, enum mos_map_by by,
	      bool oversubscribe, unsigned *out, char *err, size_t errlen)
{
	struct cand *c;
	size_t nc = 0;
	uint64_t total = 0;
	int rc;

	if ((n && !nodes) || (nprocs && !out) || n > UINT32_MAX ||
	    (by != MOS_MAP_BY_SLOT && by != MOS_MAP_BY_NODE)) {
		set_err(err, errlen, "invalid arguments");
		return -EINVAL;
	}
	for (size_t i = 0; i < n; i++)
		nc += usable(&nodes[i]);
	if (!nc) {
		set_err(err, errlen, "no eligible node");
		return -ENODEV;
	}
	c = calloc(nc, sizeof(*c));
	if (!c) {
		set_err(err, errlen, "out of memory");
		return -ENOMEM;
	}
	nc = 0;
	for (size_t i = 0; i < n; i++) {
		if (!usable(&nodes[i]))
			continue;
		c[nc].idx = (unsigned)i;
		c[nc].free = free_slots(&nodes[i]);
		total += c[nc].free;
		nc++;
	}
	if (total < nprocs && !oversubscribe) {
		if (err && errlen)
			snprintf(err, errlen, "need %u slot%s, only %llu free on %zu node%s (use --oversubscribe)",
				 nprocs, nprocs == 1 ? "" : "s", (unsigned long long)total, nc,
				 nc == 1 ? "" : "s");
		free(c);
		return -ENOSPC;
	}
	qsort(c, nc, sizeof(*c), cand_cmp);
	rc = place_sorted(nodes, n, c, nc, nprocs, by, out);
	free(c);
	if (rc) {
		set_err(err, errlen, "out of memory");
		return rc;
	}
	set_err(err, errlen, "");
	return 0;
}
