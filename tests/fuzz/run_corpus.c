/* run_corpus.c - a plain main() for the msg_fuzz target, so that it runs
 * under gcc (with ASan/UBSan) in `make check`: each FILE argument is one
 * input; without files, a fixed-seed stream of random bytes and mutated
 * valid frames. --write-seeds DIR saves the valid frames as a libFuzzer corpus. */
#include "msg.h"
#include <errno.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);
extern unsigned long msg_fuzz_accepted, msg_fuzz_rejected;

#define MAXIN 4096
#define NSEEDS 16

static uint64_t rng_state;
static uint64_t rnd(void) /* xorshift64* */
{
	rng_state ^= rng_state >> 12;
	rng_state ^= rng_state << 25;
	rng_state ^= rng_state >> 27;
	return rng_state * 0x2545f4914f6cdd1dull;
}
static size_t below(size_t n) { return n ? (size_t)(rnd() % n) : 0; }

static struct { uint8_t buf[MAXIN]; size_t len; } seeds[NSEEDS];
static size_t nseeds;

static void keep(struct mos_msg *m, uint32_t seq)
{
	mos_msg_finish(m, seq);
	if (nseeds < NSEEDS && m->len <= MAXIN) {
		memcpy(seeds[nseeds].buf, m->buf, m->len);
		seeds[nseeds++].len = m->len;
	}
	mos_msg_free(m);
}

/* Valid frames of most shapes: fixed and variable fields, repeats, rows. */
static void make_seeds(void)
{
	struct mos_msg m;

	mos_msg_init(&m, MOS_MSG_HELLO);
	mos_msg_put_str(&m, MOS_T_NODE, "node1");
	mos_msg_put(&m, MOS_T_NONCE, "0123456789abcdef0123456789abcdef", 32);
	keep(&m, 0);
	mos_msg_init(&m, MOS_MSG_AUTH);
	keep(&m, 1);
	mos_msg_init(&m, MOS_MSG_ERROR);
	mos_msg_put_i32(&m, MOS_T_CODE, -22);
	mos_msg_put_str(&m, MOS_T_TEXT, "bad thing");
	keep(&m, 2);
	mos_msg_init(&m, MOS_MSG_SUBMIT);
	mos_msg_put_u32(&m, MOS_T_APP, 0);
	mos_msg_put_u32(&m, MOS_T_NPROCS, 4);
	mos_msg_put_str(&m, MOS_T_ARGV, "/bin/echo");
	mos_msg_put_str(&m, MOS_T_ARGV, "hi");
	mos_msg_put_str(&m, MOS_T_ENV, "PATH=/bin");
	mos_msg_put_str(&m, MOS_T_CWD, "/tmp");
	mos_msg_put_u32(&m, MOS_T_FLAGS, MOS_SUBMIT_TAG_OUTPUT);
	keep(&m, 3);
	mos_msg_init(&m, MOS_MSG_IO);
	mos_msg_put_u32(&m, MOS_T_JOBID, 10001);
	mos_msg_put_u32(&m, MOS_T_RANK, 1);
	mos_msg_put_u32(&m, MOS_T_STREAM, 1);
	mos_msg_put(&m, MOS_T_DATA, "out\0put\n", 8);
	mos_msg_put_u64(&m, MOS_T_SEQ, 7);
	keep(&m, 4);
	mos_msg_init(&m, MOS_MSG_EXIT);
	mos_msg_put_u32(&m, MOS_T_JOBID, 10001);
	mos_msg_put_u32(&m, MOS_T_RANK, 0);
	mos_msg_put_i32(&m, MOS_T_STATUS, 9);
	mos_msg_put_str(&m, MOS_T_NODE, "n2");
	keep(&m, 5);
	mos_msg_init(&m, MOS_MSG_PS_REP);
	for (int r = 0; r < 3; r++) {
		mos_msg_put_u32(&m, MOS_T_JOBID, 10001);
		mos_msg_put_u32(&m, MOS_T_RANK, r);
		mos_msg_put_str(&m, MOS_T_STATE, "R");
		mos_msg_put_u64(&m, MOS_T_RSS, 1u << 20);
		mos_msg_put_str(&m, MOS_T_ARGV, "a.out");
	}
	keep(&m, 6);
	mos_msg_init(&m, MOS_MSG_LOAD);
	for (int r = 0; r < 2; r++) {
		mos_msg_put_str(&m, MOS_T_NODE, r ? "n1" : "n0");
		mos_msg_put_u32(&m, MOS_T_LOAD, 1500);
		mos_msg_put_u32(&m, MOS_T_NCPUS, 2);
		mos_msg_put_u32(&m, MOS_T_AGE_MS, 10);
	}
	keep(&m, 7);
	mos_msg_init(&m, MOS_MSG_MIG_DATA);
	mos_msg_put_u32(&m, MOS_T_JOBID, 20001);
	mos_msg_put_u32(&m, MOS_T_RANK, 0);
	mos_msg_put_str(&m, MOS_T_NAME, "pages-1.img");
	mos_msg_put_u64(&m, MOS_T_OFFSET, 4096);
	mos_msg_put(&m, MOS_T_DATA, "\x7f" "ELF\2\1\1", 7);
	keep(&m, 8);
	mos_msg_init(&m, MOS_MSG_PS_REQ);
	keep(&m, 9);
}

static void put_u32(uint8_t *p, uint32_t v)
{
	p[0] = v, p[1] = v >> 8, p[2] = v >> 16, p[3] = v >> 24;
}

static const uint32_t interesting[] = { 0, 1, 3, 4, 5, 7, 8, 0x7f, 0x80, 0xff, 0xffff, 0x10000,
					 MOS_MSG_MAX_PAYLOAD, MOS_MSG_MAX_PAYLOAD + 1, 0x7fffffff,
					 0x80000000u, 0xffffffffu, MOS_T__COUNT, MOS_MSG__COUNT };

/* mutate - one random edit of B[0..*len). */
static void mutate(uint8_t *b, size_t *len)
{
	size_t n = *len, p = below(n + 1), k;

	switch (below(8)) {
	case 0: /* flip a bit */
		if (n)
			b[below(n)] ^= 1u << below(8);
		break;
	case 1: /* a byte */
		if (n)
			b[below(n)] = below(2) ? (uint8_t)rnd() : (uint8_t)interesting[below(10)];
		break;
	case 2: /* insert bytes */
		k = 1 + below(8);
		if (n + k <= MAXIN) {
			memmove(b + p + k, b + p, n - p);
			for (size_t i = 0; i < k; i++)
				b[p + i] = (uint8_t)rnd();
			*len = n + k;
		}
		break;
	case 3: /* delete bytes */
		k = below(n - p + 1);
		memmove(b + p, b + p + k, n - p - k);
		*len = n - k;
		break;
	case 4: /* truncate */
		*len = below(n + 1);
		break;
	case 5: /* a 32-bit value, often where a length lives */
		if (n >= 4) {
			p = below(2) ? below(n - 3) : 2 + 6 * below((n + 5) / 6); /* near a field header */
			if (p + 4 <= n)
				put_u32(b + p, interesting[below(sizeof(interesting) / sizeof(interesting[0]))]);
		}
		break;
	case 6: /* duplicate a chunk somewhere */
		k = below(64);
		if (n && n + k <= MAXIN) {
			size_t from = below(n);
			if (from + k > n)
				k = n - from;
			memmove(b + p + k, b + p, n - p);
			memmove(b + p, b + from + (from >= p ? k : 0), k);
			*len = n + k;
		}
		break;
	default: { /* splice another seed's tail */
		size_t s = below(nseeds), q = below(seeds[s].len + 1);
		k = seeds[s].len - q;
		if (p + k <= MAXIN) {
			memcpy(b + p, seeds[s].buf + q, k);
			*len = p + k;
		}
	}
	}
}

/* next_input - the I-th generated input into B. */
static size_t next_input(uint8_t *b)
{
	size_t len, r = below(16);

	if (r == 0) { /* pure noise */
		len = below(64);
		for (size_t i = 0; i < len; i++)
			b[i] = (uint8_t)rnd();
		return len;
	}
	size_t s = below(nseeds);
	memcpy(b, seeds[s].buf, seeds[s].len);
	len = seeds[s].len;
	if (r == 1) { /* a good header and a noise payload */
		len = MOS_MSG_HDR_LEN + below(128);
		for (size_t i = MOS_MSG_HDR_LEN; i < len; i++)
			b[i] = (uint8_t)rnd();
	} else if (r == 2) {
		return len; /* a valid frame as is */
	} else {
		for (size_t k = 1 + below(4); k; k--)
			mutate(b, &len);
	}
	if (len >= MOS_MSG_HDR_LEN && below(4)) /* mostly keep the header's length honest */
		put_u32(b + 12, (uint32_t)(len - MOS_MSG_HDR_LEN));
	return len;
}

static int write_seeds(const char *dir)
{
	for (size_t i = 0; i < nseeds; i++) {
		char path[4096];
		FILE *f;
		snprintf(path, sizeof(path), "%s/seed-%02zu.bin", dir, i);
		f = fopen(path, "wb");
		if (!f || fwrite(seeds[i].buf, 1, seeds[i].len, f) != seeds[i].len || fclose(f)) {
			fprintf(stderr, "%s: %s\n", path, strerror(errno));
			return 1;
		}
	}
	printf("wrote %zu seeds to %s\n", nseeds, dir);
	return 0;
}

static int run_file(const char *path)
{
	static uint8_t buf[MOS_MSG_HDR_LEN + MOS_MSG_MAX_PAYLOAD + 1];
	FILE *f = fopen(path, "rb");
	size_t n;

	if (!f) {
		fprintf(stderr, "%s: %s\n", path, strerror(errno));
		return 1;
	}
	n = fread(buf, 1, sizeof(buf), f);
	fclose(f);
	LLVMFuzzerTestOneInput(buf, n);
	return 0;
}

int main(int argc, char **argv)
{
	unsigned long count = 200000, seed = 0x6d6f73786563ul;
	int i = 1, bad = 0;

	for (; i < argc && argv[i][0] == '-'; i++) {
		if (!strcmp(argv[i], "-n") && i + 1 < argc)
			count = strtoul(argv[++i], NULL, 0);
		else if (!strcmp(argv[i], "-s") && i + 1 < argc)
			seed = strtoul(argv[++i], NULL, 0);
		else if (!strcmp(argv[i], "--write-seeds") && i + 1 < argc) {
			make_seeds();
			return write_seeds(argv[++i]);
		} else {
			fprintf(stderr, "usage: %s [-n COUNT] [-s SEED] [--write-seeds DIR] [FILE...]\n", argv[0]);
			return 2;
		}
	}
	printf("1..2\n");
	if (i < argc) {
		for (int k = i; k < argc; k++)
			bad += run_file(argv[k]);
		printf("%sok 1 - %d files, no crash\n", bad ? "not " : "", argc - i);
	} else {
		static uint8_t buf[MAXIN];
		rng_state = seed ? seed : 1;
		make_seeds();
		for (unsigned long k = 0; k < count; k++)
			LLVMFuzzerTestOneInput(buf, next_input(buf));
		printf("ok 1 - %lu inputs, no crash\n", count);
	}
	/* the stream is only worth something if it reaches both outcomes */
	bool both = msg_fuzz_accepted && msg_fuzz_rejected;
	printf("%sok 2 - decoder accepted %lu and rejected %lu\n", both || i < argc ? "" : "not ", msg_fuzz_accepted,
	       msg_fuzz_rejected);
	return bad || (!both && i == argc);
}
