/* place.h - initial assignment of a job's processes to nodes. Pure. */
#ifndef MOS_PLACE_H
#define MOS_PLACE_H

#include <stddef.h>
#include <stdbool.h>

enum mos_map_by { MOS_MAP_BY_SLOT = 0, MOS_MAP_BY_NODE = 1 };

struct mos_place_node {
	const char *name;
	unsigned slots;       /* cores (or the hostfile's slots=) */
	unsigned load_milli;  /* current load, thousandths of a core */
	bool eligible;        /* full node, named by --host if given, alive */
};

/* mos_place - assign NPROCS ranks; OUT[rank] = index into NODES.
 * Free capacity of a node is slots - ceil(load). by-slot fills the node with
 * the most free capacity first, then the next; by-node deals ranks round-robin
 * over nodes ordered by free capacity. When free capacity runs out, the rest
 * goes round-robin in proportion to slots if OVERSUBSCRIBE, else the call
 * fails with -ENOSPC and a message in ERR. No eligible node: -ENODEV. */
int mos_place(const struct mos_place_node *nodes, size_t n, unsigned nprocs, enum mos_map_by by,
	      bool oversubscribe, unsigned *out, char *err, size_t errlen);

#endif
