/* view.c - the gossip load view: one entry per node, the newest one wins,
 * old entries expire, and random peers are picked for the next gossip round.
 * Pure policy: time and randomness come from the caller. */
#include "view.h"
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <sys/types.h>

/* Any non-zero value works; this one (2^64 / golden ratio) is well mixed. */
#define RNG_ZERO_FIX 0x9E3779B97F4A7C15ULL

uint64_t mos_rng_next(uint64_t *s)
{
	uint64_t x = *s ? *s : RNG_ZERO_FIX;

	x ^= x >> 12;
	x ^= x << 25;
	x ^= x >> 27;
	*s = x;
	return x * 0x2545F4914F6CDD1DULL;
}

/* A number in [0, m), m > 0. The modulo bias is at most m / 2^64. */
static uint64_t rng_below(uint64_t *s, uint64_t m)
{
	return mos_rng_next(s) % m;
}

void mos_view_init(struct mos_view *v)
{
	v->n = 0;
	v->cap = 0;
	v->e = NULL;
}

void mos_view_fini(struct mos_view *v)
{
	free(v->e);
	mos_view_init(v);
}

static bool name_ok(const char *name)
{
	size_t len = strnlen(name, MOS_VIEW_NAME_MAX);

	return len > 0 && len < MOS_VIEW_NAME_MAX;
}

static ssize_t find_index(const struct mos_view *v, const char *node)
{
	for (size_t i = 0; i < v->n; i++)
		if (!strncmp(v->e[i].node, node, MOS_VIEW_NAME_MAX))
			return (ssize_t)i;
	return -1;
}

static int grow(struct mos_view *v)
{
	size_t cap = v->cap ? v->cap * 2 : 16;
	struct mos_load_entry *e;

	if (cap > SIZE_MAX / sizeof(*e))
		return -ENOMEM;
	e = realloc(v->e, cap * sizeof(*e));
	if (!e)
		return -ENOMEM;
	v->e = e;
	v->cap = cap;
	return 0;
}

int mos_view_update(struct mos_view *v, const struct mos_load_entry *e)
{
	ssize_t i;
	int rc;

	if (!name_ok(e->node))
		return -EINVAL;
	i = find_index(v, e->node);
	if (i >= 0) {
		/* Equal stamps are the same measurement seen twice: not news. */
		if (e->stamp_ms <= v->e[i].stamp_ms)
			return 0;
		v->e[i] = *e;
		return 1;
	}
	if (v->n == v->cap) {
		rc = grow(v);
		if (rc)
			return rc;
	}
	v->e[v->n++] = *e;
	return 1;
}

const struct mos_load_entry *mos_view_find(const struct mos_view *v, const char *node)
{
	ssize_t i;

	if (!node)
		return NULL;
	i = find_index(v, node);
	return i >= 0 ? &v->e[i] : NULL;
}

static bool is_self(const struct mos_load_entry *e, const char *self)
{
	return self && !strncmp(e->node, self, MOS_VIEW_NAME_MAX);
}

/* Keeps the survivors in their order, so picks stay reproducible. An entry
 * stamped in the future (clock skew) is not old and stays. */
void mos_view_expire(struct mos_view *v, uint64_t now_ms, uint64_t max_age_ms, const char *self)
{
	size_t w = 0;

	for (size_t r = 0; r < v->n; r++) {
		const struct mos_load_entry *e = &v->e[r];
		bool old = now_ms > e->stamp_ms && now_ms - e->stamp_ms > max_age_ms;

		if (old && !is_self(e, self))
			continue;
		if (w != r)
			v->e[w] = *e;
		w++;
	}
	v->n = w;
}

/* Selection sampling (Knuth's algorithm S) picks a uniform K-subset in one
 * pass with no scratch memory; the chosen indices are then shuffled so the
 * order of OUT is uniform too. */
size_t mos_view_pick(const struct mos_view *v, const char *self, size_t k, uint64_t *rng, size_t *out)
{
	size_t cand = 0, seen = 0, got = 0;

	if (!k || !out)
		return 0;
	for (size_t i = 0; i < v->n; i++)
		cand += !is_self(&v->e[i], self);
	if (k > cand)
		k = cand;
	for (size_t i = 0; i < v->n && got < k; i++) {
		if (is_self(&v->e[i], self))
			continue;
		if (rng_below(rng, cand - seen) < k - got)
			out[got++] = i;
		seen++;
	}
	for (size_t i = got; i > 1; i--) {
		size_t j = (size_t)rng_below(rng, i);
		size_t t = out[i - 1];

		out[i - 1] = out[j];
		out[j] = t;
	}
	return got;
}
