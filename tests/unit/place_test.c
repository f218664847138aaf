/* place_test.c - golden tests of initial placement (rebalancer/place.c):
 * by-slot, by-node, load, oversubscription, ENOSPC/ENODEV and eligibility.
 * Every expectation is a literal array worked out by hand from the rules. */
#include "place.h"
#include "tap.h"
#include <errno.h>
#include <limits.h>

#define N(a) (sizeof(a) / sizeof((a)[0]))
#define SENTINEL 0xdeadu

static const struct mos_place_node four_by_two[] = {
	{ "a", 2, 0, true }, { "b", 2, 0, true }, { "c", 2, 0, true }, { "d", 2, 0, true }
};

static void fmt(char *buf, size_t len, const unsigned *v, size_t n)
{
	size_t off = 0;

	buf[0] = 0;
	for (size_t i = 0; i < n && off < len; i++)
		off += snprintf(buf + off, len - off, "%s%u", i ? "," : "", v[i]);
}

/* Runs one placement and checks both rc 0 and the exact rank map. */
static void golden(const char *what, const struct mos_place_node *nodes, size_t n, enum mos_map_by by,
		   bool over, const unsigned *want, unsigned nprocs)
{
	unsigned out[64];
	char err[128] = "junk", got[256], exp[256];
	int rc;

	for (size_t i = 0; i < N(out); i++)
		out[i] = SENTINEL;
	rc = mos_place(nodes, n, nprocs, by, over, out, err, sizeof(err));
	fmt(got, sizeof(got), out, nprocs);
	fmt(exp, sizeof(exp), want, nprocs);
	TAP_OK(rc == 0 && !err[0], "%s: rc %d", what, rc);
	TAP_IS_STR(got, exp, "%s: %s", what, exp);
	TAP_OK(out[nprocs] == SENTINEL, "%s: nothing written past nprocs", what);
}

/* Runs one placement that must fail with RC and message MSG, leaving OUT alone. */
static void fails(const char *what, const struct mos_place_node *nodes, size_t n, unsigned nprocs,
		  bool over, int want_rc, const char *msg)
{
	unsigned out[64];
	char err[128] = "";
	bool untouched = true;
	int rc;

	for (size_t i = 0; i < N(out); i++)
		out[i] = SENTINEL;
	rc = mos_place(nodes, n, nprocs, MOS_MAP_BY_SLOT, over, out, err, sizeof(err));
	for (size_t i = 0; i < N(out); i++)
		untouched &= out[i] == SENTINEL;
	TAP_OK(rc == want_rc && untouched, "%s: rc %d (want %d), out untouched", what, rc, want_rc);
	TAP_IS_STR(err, msg, "%s: message", what);
}

static void test_basic(void)
{
	static const unsigned slot8[] = { 0, 0, 1, 1, 2, 2, 3, 3 };
	static const unsigned node8[] = { 0, 1, 2, 3, 0, 1, 2, 3 };
	static const unsigned slot16[] = { 0, 0, 1, 1, 2, 2, 3, 3, 0, 1, 2, 3, 0, 1, 2, 3 };
	static const unsigned node16[] = { 0, 1, 2, 3, 0, 1, 2, 3, 0, 1, 2, 3, 0, 1, 2, 3 };
	static const unsigned slot3[] = { 0, 0, 1 };
	unsigned out[16], count[4] = { 0 };
	int rc;

	golden("4x2 8 by slot", four_by_two, 4, MOS_MAP_BY_SLOT, false, slot8, 8);
	golden("4x2 8 by node", four_by_two, 4, MOS_MAP_BY_NODE, false, node8, 8);
	golden("4x2 3 by slot", four_by_two, 4, MOS_MAP_BY_SLOT, false, slot3, 3);
	golden("4x2 16 by slot oversubscribed", four_by_two, 4, MOS_MAP_BY_SLOT, true, slot16, 16);
	golden("4x2 16 by node oversubscribed", four_by_two, 4, MOS_MAP_BY_NODE, true, node16, 16);
	rc = mos_place(four_by_two, 4, 16, MOS_MAP_BY_SLOT, true, out, NULL, 0);
	for (int i = 0; i < 16 && !rc; i++)
		count[out[i]]++;
	TAP_OK(!rc && count[0] == 4 && count[1] == 4 && count[2] == 4 && count[3] == 4,
	       "16 oversubscribed on 4x2: 4 each (NULL err is fine)");
	fails("4x2 16 without --oversubscribe", four_by_two, 4, 16, false, -ENOSPC,
	      "need 16 slots, only 8 free on 4 nodes (use --oversubscribe)");
	rc = mos_place(four_by_two, 4, 0, MOS_MAP_BY_SLOT, false, NULL, NULL, 0);
	TAP_OK(rc == 0, "0 ranks: nothing to do");
	rc = mos_place(four_by_two, 4, 1, (enum mos_map_by)7, false, out, NULL, 0);
	TAP_OK(rc == -EINVAL, "unknown mapping: -EINVAL");
}

static void test_load(void)
{
	/* free: a 0 (1.5 cores busy), b 1 (0.5 busy), c 2, d 2 -> order c,d,b,a */
	static const struct mos_place_node loaded[] = {
		{ "a", 2, 1500, true }, { "b", 2, 500, true }, { "c", 2, 0, true }, { "d", 2, 0, true }
	};
	static const unsigned slot5[] = { 2, 2, 3, 3, 1 };
	static const unsigned node5[] = { 2, 3, 1, 2, 3 };
	static const unsigned over8[] = { 2, 2, 3, 3, 1, 0, 0, 1 };
	/* free: 1 (ceil 0.001 = 1), 1 (exactly 1.000), 0 (ceil 1.001 = 2), 0 (floored) */
	static const struct mos_place_node rounding[] = {
		{ "a", 2, 1, true }, { "b", 2, 1000, true }, { "c", 2, 1001, true }, { "d", 2, UINT_MAX, true }
	};
	static const unsigned round2[] = { 0, 1 };
	/* no free capacity anywhere: straight to slots-weighted round-robin */
	static const struct mos_place_node full[] = { { "a", 2, 2000, true }, { "b", 1, 3000, true } };
	static const unsigned full6[] = { 0, 1, 0, 0, 1, 0 };

	golden("loaded node skipped first, by slot", loaded, 4, MOS_MAP_BY_SLOT, false, slot5, 5);
	golden("loaded node skipped first, by node", loaded, 4, MOS_MAP_BY_NODE, false, node5, 5);
	golden("loaded, oversubscribed 8", loaded, 4, MOS_MAP_BY_SLOT, true, over8, 8);
	fails("loaded, 6 ranks", loaded, 4, 6, false, -ENOSPC,
	      "need 6 slots, only 5 free on 4 nodes (use --oversubscribe)");
	golden("load rounds up to whole cores", rounding, 4, MOS_MAP_BY_SLOT, false, round2, 2);
	fails("load rounding, 3 ranks", rounding, 4, 3, false, -ENOSPC,
	      "need 3 slots, only 2 free on 4 nodes (use --oversubscribe)");
	golden("all full, oversubscribed", full, 2, MOS_MAP_BY_NODE, true, full6, 6);
	fails("all full, 1 rank", full, 2, 1, false, -ENOSPC,
	      "need 1 slot, only 0 free on 2 nodes (use --oversubscribe)");
}

static void test_uneven(void)
{
	/* free 1, 4, 2 -> order b, c, a */
	static const struct mos_place_node uneven[] = {
		{ "a", 1, 0, true }, { "b", 4, 0, true }, { "c", 2, 0, true }
	};
	static const unsigned slot7[] = { 1, 1, 1, 1, 2, 2, 0 };
	static const unsigned node7[] = { 1, 2, 0, 1, 2, 1, 1 };
	static const unsigned slot14[] = { 1, 1, 1, 1, 2, 2, 0, 0, 1, 2, 1, 1, 2, 1 };
	static const unsigned node5[] = { 1, 2, 0, 1, 2 };

	golden("uneven slots by slot", uneven, 3, MOS_MAP_BY_SLOT, false, slot7, 7);
	golden("uneven slots by node", uneven, 3, MOS_MAP_BY_NODE, false, node7, 7);
	golden("uneven slots by node, 5 of 7", uneven, 3, MOS_MAP_BY_NODE, false, node5, 5);
	golden("uneven slots oversubscribed 14 (2,8,4)", uneven, 3, MOS_MAP_BY_SLOT, true, slot14, 14);
	fails("one node", uneven, 1, 2, false, -ENOSPC,
	      "need 2 slots, only 1 free on 1 node (use --oversubscribe)");
}

static void test_eligible(void)
{
	static const struct mos_place_node mixed[] = {
		{ "a", 2, 0, true }, { "b", 8, 0, false }, { "c", 0, 0, true }, { "d", 2, 0, true }
	};
	static const unsigned node10[] = { 0, 3, 0, 3, 0, 3, 0, 3, 0, 3 };
	static const unsigned slot4[] = { 0, 0, 3, 3 };
	static const struct mos_place_node none[] = { { "a", 4, 0, false }, { "b", 0, 0, true } };

	golden("ineligible and 0-slot nodes never chosen, by slot", mixed, 4, MOS_MAP_BY_SLOT, false, slot4, 4);
	golden("ineligible and 0-slot nodes never chosen, oversubscribed", mixed, 4, MOS_MAP_BY_NODE, true,
	       node10, 10);
	fails("ineligible nodes are not counted", mixed, 4, 5, false, -ENOSPC,
	      "need 5 slots, only 4 free on 2 nodes (use --oversubscribe)");
	fails("no eligible node", none, 2, 1, true, -ENODEV, "no eligible node");
	fails("no node at all", NULL, 0, 1, true, -ENODEV, "no eligible node");
}

int main(void)
{
	test_basic();
	test_load();
	test_uneven();
	test_eligible();
	return TAP_DONE();
}
