/* view.h - a node's view of the cluster's load, fed by gossip.
 * Pure: no syscalls, no clock, no globals; time and randomness are passed in,
 * so the daemon and the simulator run the same code. */
#ifndef MOS_VIEW_H
#define MOS_VIEW_H

#include <stddef.h>
#include <stdint.h>
#include <stdbool.h>

#define MOS_VIEW_NAME_MAX 64

struct mos_load_entry {
	char node[MOS_VIEW_NAME_MAX];
	uint32_t ncpus;       /* CPU capacity (cores) */
	uint32_t load_milli;  /* runnable work in thousandths of a core */
	uint32_t nprocs;      /* processes mosd runs there */
	uint32_t role;        /* enum mos_role */
	uint64_t stamp_ms;    /* when the origin measured it, in the holder's clock */
};

struct mos_view {
	size_t n, cap;
	struct mos_load_entry *e;
};

void mos_view_init(struct mos_view *v);
void mos_view_fini(struct mos_view *v);
/* mos_view_update - insert E or replace the entry of the same node when E is
 * newer. Returns 1 if the view changed, 0 if E was stale, -ENOMEM.
 * (Also -EINVAL if E's node name is empty or not NUL-terminated.) */
int mos_view_update(struct mos_view *v, const struct mos_load_entry *e);
/* mos_view_find - the entry for NODE, or NULL. */
const struct mos_load_entry *mos_view_find(const struct mos_view *v, const char *node);
/* mos_view_expire - drop entries older than MAX_AGE_MS at NOW_MS (except SELF). */
void mos_view_expire(struct mos_view *v, uint64_t now_ms, uint64_t max_age_ms, const char *self);
/* mos_view_pick - up to K distinct entries other than SELF, chosen uniformly
 * with the caller's xorshift64 state *RNG; writes indices into OUT, returns count. */
size_t mos_view_pick(const struct mos_view *v, const char *self, size_t k, uint64_t *rng, size_t *out);
/* mos_rng_next - advance the xorshift64 state *S and return the next
 * xorshift64* value. The state must never be 0; a 0 state is replaced by a
 * fixed non-zero constant first, so it can never stick at 0. */
uint64_t mos_rng_next(uint64_t *s);

#endif
