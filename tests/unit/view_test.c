/* view_test.c - unit tests of the gossip load view (rebalancer/view.c):
 * newest-wins updates, expiry, peer picking and the xorshift64* generator.
 * Golden values were computed independently (a Python model of the same algorithms). */
#include "view.h"
#include "tap.h"
#include <errno.h>
#include <stdbool.h>

static struct mos_load_entry ent(const char *node, uint64_t stamp, uint32_t load)
{
	struct mos_load_entry e = { .ncpus = 4, .load_milli = load, .nprocs = 1, .stamp_ms = stamp };

	snprintf(e.node, sizeof(e.node), "%s", node);
	return e;
}

static void test_rng(void)
{
	static const uint64_t want[] = { 0x47e4ce4b896cdd1dULL, 0xabcfa6a8e079651dULL,
					 0xb9d10d8feb731f57ULL, 0x4db418a0bb1b019dULL };
	uint64_t s = 1, z = 0, a = 7, b = 7, c = 8, va, vc;
	bool same = true;

	for (size_t i = 0; i < sizeof(want) / sizeof(want[0]); i++) {
		uint64_t got = mos_rng_next(&s);

		TAP_OK(got == want[i], "rng seed 1 value %zu is %#llx (got %#llx)", i,
		       (unsigned long long)want[i], (unsigned long long)got);
	}
	va = mos_rng_next(&z);
	TAP_OK(va == 0x0d83b3e29a21487aULL && z != 0, "rng: a 0 state is repaired, not stuck");
	for (int i = 0; i < 100; i++)
		same &= mos_rng_next(&a) == mos_rng_next(&b);
	TAP_OK(same, "rng: same seed, same sequence");
	va = mos_rng_next(&a);
	vc = mos_rng_next(&c);
	TAP_OK(va != vc, "rng: different seeds differ");
}

static void test_update(void)
{
	struct mos_view v;
	struct mos_load_entry e;
	const struct mos_load_entry *f;
	bool all = true;
	char name[16];
	int rc;

	mos_view_init(&v);
	TAP_OK(mos_view_find(&v, "a") == NULL, "empty view finds nothing");
	e = ent("a", 100, 1500);
	rc = mos_view_update(&v, &e);
	TAP_OK(rc == 1, "new node changes the view");
	f = mos_view_find(&v, "a");
	TAP_OK(f && f->load_milli == 1500 && f->stamp_ms == 100, "entry found with its values");
	e = ent("a", 50, 9000);
	rc = mos_view_update(&v, &e);
	TAP_OK(rc == 0, "older entry is stale");
	e = ent("a", 100, 9000);
	rc = mos_view_update(&v, &e);
	TAP_OK(rc == 0, "same stamp is stale");
	f = mos_view_find(&v, "a");
	TAP_OK(f && f->load_milli == 1500, "stale updates leave the entry alone");
	e = ent("a", 200, 250);
	rc = mos_view_update(&v, &e);
	TAP_OK(rc == 1, "newer entry changes the view");
	f = mos_view_find(&v, "a");
	TAP_OK(f && f->load_milli == 250 && f->stamp_ms == 200 && v.n == 1, "newer entry replaced, no duplicate");
	e = ent("", 300, 0);
	rc = mos_view_update(&v, &e);
	TAP_OK(rc == -EINVAL && v.n == 1, "empty name rejected");
	memset(e.node, 'x', sizeof(e.node));
	rc = mos_view_update(&v, &e);
	TAP_OK(rc == -EINVAL && v.n == 1, "unterminated name rejected");

	for (int i = 0; i < 40; i++) {
		snprintf(name, sizeof(name), "n%02d", i);
		e = ent(name, 10 + i, i * 10);
		all &= mos_view_update(&v, &e) == 1;
	}
	TAP_OK(all && v.n == 41, "view grows past its first allocation (n=%zu)", v.n);
	all = true;
	for (int i = 0; i < 40; i++) {
		snprintf(name, sizeof(name), "n%02d", i);
		f = mos_view_find(&v, name);
		all &= f && f->load_milli == (uint32_t)i * 10;
	}
	TAP_OK(all, "every entry findable after growth");
	TAP_OK(mos_view_find(&v, "n40") == NULL, "unknown node not found");
	mos_view_fini(&v);
	TAP_OK(v.n == 0 && v.e == NULL, "fini empties the view");
}

static void test_expire(void)
{
	struct mos_view v;
	struct mos_load_entry e;

	mos_view_init(&v);
	e = ent("old", 100, 0);
	mos_view_update(&v, &e);
	e = ent("edge", 500, 0); /* exactly max_age old: not older than it */
	mos_view_update(&v, &e);
	e = ent("fresh", 900, 0);
	mos_view_update(&v, &e);
	e = ent("self", 0, 0);
	mos_view_update(&v, &e);
	e = ent("future", 1500, 0);
	mos_view_update(&v, &e);
	mos_view_expire(&v, 1000, 500, "self");
	TAP_OK(!mos_view_find(&v, "old"), "expire drops an old entry");
	TAP_OK(mos_view_find(&v, "edge") && mos_view_find(&v, "fresh"), "expire keeps young entries");
	TAP_OK(mos_view_find(&v, "self"), "expire keeps self however old");
	TAP_OK(mos_view_find(&v, "future"), "expire keeps an entry stamped in the future");
	TAP_OK(v.n == 4 && !strcmp(v.e[0].node, "edge") && !strcmp(v.e[1].node, "fresh") &&
		       !strcmp(v.e[2].node, "self") && !strcmp(v.e[3].node, "future"),
	       "expire keeps survivors in order");
	mos_view_expire(&v, 1000, 500, NULL);
	TAP_OK(v.n == 3 && !mos_view_find(&v, "self"), "without self, an old self entry goes too");
	mos_view_expire(&v, 100000, 10, "nobody");
	TAP_OK(v.n == 0, "everything expires eventually");
	mos_view_fini(&v);
}

static void fill10(struct mos_view *v)
{
	char name[16];
	struct mos_load_entry e;

	mos_view_init(v);
	for (int i = 0; i < 10; i++) {
		snprintf(name, sizeof(name), "n%d", i);
		e = ent(name, 1, 0);
		mos_view_update(v, &e);
	}
}

static bool eq(const size_t *a, const size_t *b, size_t n)
{
	for (size_t i = 0; i < n; i++)
		if (a[i] != b[i])
			return false;
	return true;
}

static void test_pick(void)
{
	static const size_t gold1[] = { 9, 7, 0, 6 };
	static const size_t gold2[] = { 9, 2, 8, 5 };
	static const size_t gold3[] = { 8, 6, 9, 0, 4, 1, 7, 2, 5 };
	struct mos_view v;
	size_t out[16], hits[10] = { 0 }, got;
	uint64_t rng = 1;
	bool ok = true;

	fill10(&v);
	got = mos_view_pick(&v, "n3", 4, &rng, out);
	TAP_OK(got == 4 && eq(out, gold1, 4), "pick seed 1: 9,7,0,6");
	got = mos_view_pick(&v, "n3", 4, &rng, out);
	TAP_OK(got == 4 && eq(out, gold2, 4), "pick next: 9,2,8,5");
	got = mos_view_pick(&v, "n3", 20, &rng, out);
	TAP_OK(got == 9 && eq(out, gold3, 9), "pick k > peers returns every peer, shuffled: 8,6,9,0,4,1,7,2,5");
	got = mos_view_pick(&v, "n3", 0, &rng, out);
	TAP_OK(got == 0, "pick k=0 returns nothing");
	got = mos_view_pick(&v, "zz", 20, &rng, out);
	TAP_OK(got == 10, "self not in view: every entry is a peer");

	rng = 12345;
	for (int round = 0; round < 3000 && ok; round++) {
		got = mos_view_pick(&v, "n3", 3, &rng, out);
		ok &= got == 3;
		for (size_t i = 0; i < got; i++) {
			ok &= out[i] < v.n && out[i] != 3;
			for (size_t j = 0; j < i; j++)
				ok &= out[i] != out[j];
			hits[out[i] < 10 ? out[i] : 0]++;
		}
	}
	TAP_OK(ok, "3000 picks: always 3, distinct, in range, never self");
	ok = hits[3] == 0;
	/* expected 1000 each (3000*3/9); sd ~26, so +-150 is about 6 sigma */
	for (int i = 0; i < 10; i++)
		if (i != 3)
			ok &= hits[i] > 850 && hits[i] < 1150;
	TAP_OK(ok, "picks are spread evenly over the peers (n0=%zu n9=%zu)", hits[0], hits[9]);
	mos_view_fini(&v);

	mos_view_init(&v);
	got = mos_view_pick(&v, "n3", 4, &rng, out);
	TAP_OK(got == 0, "empty view: nothing to pick");
	mos_view_fini(&v);
}

int main(void)
{
	test_rng();
	test_update();
	test_expire();
	test_pick();
	return TAP_DONE();
}
