/* msg_test.c - the TLV wire format (launcher/common/msg.c): round trips of
 * every field type, literal golden frames and numbering, and the exact reason
 * the decoder gives for every kind of malformed frame; plus the small parsers
 * of util.h (job.rank, signal names, wait statuses). */
#include "msg.h"
#include "util.h"
#include "tap.h"
#include <errno.h>
#include <limits.h>
#include <signal.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>

#define N(a) (sizeof(a) / sizeof((a)[0]))

/* Wire numbering and field types, written out so that renumbering a tag or a
 * type (a wire-incompatible change) fails here. u=u32 i=i32 U=u64 s=str b=bytes */
static const struct {
	unsigned tag;
	const char *name;
	char type;
} tags[] = {
	{ 1, "node", 's' },    { 2, "nonce", 'b' },  { 3, "text", 's' },
	{ 4, "code", 'i' },    { 5, "jobid", 'u' },  { 6, "rank", 'u' },
	{ 7, "nprocs", 'u' },  { 8, "stream", 'u' }, { 9, "data", 'b' },
	{ 10, "sig", 'u' },    { 11, "status", 'i' }, { 12, "pid", 'u' },
	{ 13, "uid", 'u' },    { 14, "gid", 'u' },   { 15, "group", 'u' },
	{ 16, "argv", 's' },   { 17, "env", 's' },   { 18, "cwd", 's' },
	{ 19, "home", 's' },   { 20, "app", 'u' },   { 21, "hosts", 's' },
	{ 22, "mapby", 's' },  { 23, "flags", 'u' }, { 24, "state", 's' },
	{ 25, "cpu", 'u' },    { 26, "rss", 'U' },   { 27, "migrations", 'u' },
	{ 28, "load", 'u' },   { 29, "ncpus", 'u' }, { 30, "age_ms", 'u' },
	{ 31, "role", 'u' },   { 32, "all", 'u' },   { 33, "size", 'U' },
	{ 34, "offset", 'U' }, { 35, "name", 's' },  { 36, "kind", 'u' },
	{ 37, "slots", 'u' },  { 38, "appnum", 'u' }, { 39, "seq", 'U' },
};

/* Every message type by wire number with its required fields. */
#define R(...) { __VA_ARGS__, 0 }
static const struct {
	unsigned type;
	const char *name;
	unsigned req[8];
} types[] = {
	{ 1, "HELLO", R(MOS_T_NODE, MOS_T_NONCE) },
	{ 2, "AUTH", { 0 } },
	{ 3, "ERROR", R(MOS_T_TEXT, MOS_T_CODE) },
	{ 4, "SUBMIT", R(MOS_T_APP, MOS_T_ARGV, MOS_T_CWD) },
	{ 5, "JOB_STARTED", R(MOS_T_JOBID, MOS_T_NPROCS) },
	{ 6, "IO", R(MOS_T_JOBID, MOS_T_RANK, MOS_T_STREAM) },
	{ 7, "SIGNAL", R(MOS_T_JOBID, MOS_T_SIG) },
	{ 8, "EXIT", R(MOS_T_JOBID, MOS_T_RANK, MOS_T_STATUS) },
	{ 9, "JOB_DONE", R(MOS_T_JOBID, MOS_T_STATUS) },
	{ 10, "SPAWN", R(MOS_T_JOBID, MOS_T_RANK, MOS_T_HOME, MOS_T_UID, MOS_T_GID, MOS_T_ARGV, MOS_T_CWD) },
	{ 11, "SPAWNED", R(MOS_T_JOBID, MOS_T_RANK, MOS_T_CODE) },
	{ 12, "KILL_JOB", R(MOS_T_JOBID) },
	{ 13, "PS_REQ", { 0 } },
	{ 14, "PS_REP", { 0 } },
	{ 15, "LOAD", { 0 } },
	{ 16, "MIGRATE", R(MOS_T_JOBID, MOS_T_RANK, MOS_T_NODE) },
	{ 17, "MIG_PREPARE", R(MOS_T_JOBID, MOS_T_RANK) },
	{ 18, "MIG_READY", R(MOS_T_JOBID, MOS_T_RANK, MOS_T_CODE) },
	{ 19, "MIG_DATA", R(MOS_T_JOBID, MOS_T_RANK, MOS_T_NAME, MOS_T_DATA) },
	{ 20, "MIG_COMMIT", R(MOS_T_JOBID, MOS_T_RANK) },
	{ 21, "MIG_DONE", R(MOS_T_JOBID, MOS_T_RANK, MOS_T_CODE) },
	{ 22, "MOVED", R(MOS_T_JOBID, MOS_T_RANK, MOS_T_NODE) },
	{ 23, "REPLY", R(MOS_T_CODE) },
	{ 24, "PMIX", R(MOS_T_KIND) },
	{ 25, "MIG_ABORT", R(MOS_T_JOBID, MOS_T_RANK) },
	{ 26, "FAULT", R(MOS_T_NAME) },
};

static char tag_type(unsigned tag)
{
	for (size_t i = 0; i < N(tags); i++)
		if (tags[i].tag == tag)
			return tags[i].type;
	return '?';
}

/* put_any - a valid field for TAG whatever its type. */
static void put_any(struct mos_msg *m, unsigned tag)
{
	switch (tag_type(tag)) {
	case 'u': mos_msg_put_u32(m, tag, 7); break;
	case 'i': mos_msg_put_i32(m, tag, -7); break;
	case 'U': mos_msg_put_u64(m, tag, 7); break;
	case 'b': mos_msg_put(m, tag, "\0\1\2", 3); break;
	default: mos_msg_put_str(m, tag, "v"); break;
	}
}

/* decode - decode a malloc'd copy of B; rc, with the text in err. */
static int decode(const void *b, size_t len, struct mos_msg *m, char *err, size_t errlen)
{
	uint8_t *f = malloc(len ? len : 1);

	if (!f) {
		printf("Bail out! out of memory\n");
		exit(1);
	}
	memcpy(f, b, len);
	err[0] = 0;
	return mos_msg_decode(m, f, len, err, errlen);
}

/* rejects - decoding B fails with -EBADMSG and the exact text WANT. */
static void rejects(const void *b, size_t len, const char *want, const char *what)
{
	struct mos_msg m;
	char err[256];
	int rc = decode(b, len, &m, err, sizeof(err));

	TAP_OK(rc == -EBADMSG, "%s: rejected (rc %d)", what, rc);
	TAP_IS_STR(err, want, "%s: says why", what);
	if (!rc)
		mos_msg_free(&m);
}

static void set_u32(uint8_t *p, uint32_t v)
{
	p[0] = v, p[1] = v >> 8, p[2] = v >> 16, p[3] = v >> 24;
}

/* Tags and types appended after these tables are wire-compatible; they are
 * named here so that someone adds them to the tables above. */
static void test_numbering(void)
{
	bool ok = true;

	TAP_OK(MOS_T__COUNT >= N(tags) + 1, "the %zu field tags listed here all exist", N(tags));
	TAP_OK(MOS_MSG__COUNT >= N(types) + 1, "the %zu message types listed here all exist", N(types));
	for (unsigned t = N(tags) + 1; t < MOS_T__COUNT; t++)
		printf("# tag %u '%s' is not in msg_test's table yet\n", t, mos_tag_name(t));
	for (unsigned t = N(types) + 1; t < MOS_MSG__COUNT; t++)
		printf("# type %u '%s' is not in msg_test's table yet\n", t, mos_msg_name(t));
	for (size_t i = 0; i < N(tags); i++)
		if (strcmp(mos_tag_name(tags[i].tag), tags[i].name)) {
			printf("# tag %u is '%s', want '%s'\n", tags[i].tag, mos_tag_name(tags[i].tag), tags[i].name);
			ok = false;
		}
	TAP_OK(ok, "every tag keeps its wire number and name");
	ok = true;
	for (size_t i = 0; i < N(types); i++)
		if (strcmp(mos_msg_name(types[i].type), types[i].name)) {
			printf("# type %u is '%s', want '%s'\n", types[i].type, mos_msg_name(types[i].type), types[i].name);
			ok = false;
		}
	TAP_OK(ok, "every message type keeps its wire number and name");
	TAP_IS_STR(mos_msg_name(MOS_MSG__COUNT), "unknown", "type past the table is 'unknown'");
	TAP_IS_STR(mos_msg_name(0xffff), "unknown", "type 0xffff is 'unknown'");
	TAP_IS_STR(mos_tag_name(MOS_T__COUNT), "unknown", "tag past the table is 'unknown'");
	ok = true;
	for (unsigned t = 1; t < MOS_T__COUNT; t++)
		ok &= strcmp(mos_tag_name(t), "unknown") != 0;
	for (unsigned t = 1; t < MOS_MSG__COUNT; t++)
		ok &= strcmp(mos_msg_name(t), "unknown") != 0;
	TAP_OK(ok, "every tag and type below the counts has a name in msg.c's tables");
}

static void test_round_trip(void)
{
	static const uint8_t bin[] = { 0, 1, 0, 0xff, 0x80, 0 };
	struct mos_msg m, d;
	char err[256];
	uint32_t u;
	int32_t i;
	uint64_t q;

	mos_msg_init(&m, MOS_MSG_PS_REP);
	mos_msg_put_u32(&m, MOS_T_JOBID, 0xfedcba98u);
	mos_msg_put_u32(&m, MOS_T_RANK, 0);
	mos_msg_put_i32(&m, MOS_T_CODE, -123456);
	mos_msg_put_i32(&m, MOS_T_STATUS, INT32_MIN);
	mos_msg_put_u64(&m, MOS_T_RSS, 0x0123456789abcdefull);
	mos_msg_put_u64(&m, MOS_T_SIZE, UINT64_MAX);
	mos_msg_put_str(&m, MOS_T_TEXT, "h\xc3\xa9llo world");
	mos_msg_put_str(&m, MOS_T_CWD, "");
	mos_msg_put(&m, MOS_T_DATA, bin, sizeof(bin));
	mos_msg_put(&m, MOS_T_NONCE, NULL, 0);
	mos_msg_put_u32(&m, MOS_T_JOBID, 2); /* a repeat: getters return the first */
	mos_msg_finish(&m, 0xa1b2c3d4u);
	TAP_OK(m.len == MOS_MSG_HDR_LEN + 11 * 6 + 4 * 4 + 2 * 8 + 12 + 0 + 6 + 0 + 4,
	       "frame length is header + fields (%zu)", m.len);
	int rc = decode(m.buf, m.len, &d, err, sizeof(err));
	TAP_OK(rc == 0, "round trip decodes (%s)", err);
	if (rc)
		return;
	TAP_OK(d.type == MOS_MSG_PS_REP && d.seq == 0xa1b2c3d4u && d.n_fields == 11,
	       "type, seq and field count survive (%u %#x %zu)", d.type, d.seq, d.n_fields);
	TAP_OK(!mos_msg_get_u32(&d, MOS_T_JOBID, &u) && u == 0xfedcba98u, "u32 (first of two)");
	TAP_OK(!mos_msg_get_u32(&d, MOS_T_RANK, &u) && u == 0, "u32 zero");
	TAP_OK(!mos_msg_get_i32(&d, MOS_T_CODE, &i) && i == -123456, "i32 negative");
	TAP_OK(!mos_msg_get_i32(&d, MOS_T_STATUS, &i) && i == INT32_MIN, "i32 INT32_MIN");
	TAP_OK(!mos_msg_get_u64(&d, MOS_T_RSS, &q) && q == 0x0123456789abcdefull, "u64");
	TAP_OK(!mos_msg_get_u64(&d, MOS_T_SIZE, &q) && q == UINT64_MAX, "u64 max");
	char *s = mos_msg_get_str(&d, MOS_T_TEXT);
	TAP_IS_STR(s, "h\xc3\xa9llo world", "string (UTF-8)");
	free(s);
	s = mos_msg_get_str(&d, MOS_T_CWD);
	TAP_IS_STR(s, "", "empty string");
	free(s);
	const struct mos_field *f = mos_msg_get(&d, MOS_T_DATA);
	TAP_OK(f && f->len == sizeof(bin) && !memcmp(f->data, bin, sizeof(bin)), "bytes with NULs");
	f = mos_msg_get(&d, MOS_T_NONCE);
	TAP_OK(f && f->len == 0, "empty bytes field is present");
	TAP_OK(d.fields[10].tag == MOS_T_JOBID && mos_field_u32(&d.fields[10]) == 2,
	       "fields keep their order; the repeat is the last");
	TAP_OK(mos_msg_get_u32(&d, MOS_T_RSS, &u) == -ENOENT, "u32 getter on a u64 field: -ENOENT");
	TAP_OK(mos_msg_get_u64(&d, MOS_T_JOBID, &q) == -ENOENT, "u64 getter on a u32 field: -ENOENT");
	mos_msg_free(&d);
	mos_msg_free(&m);
}

/* Each tag carries a value of its type; fixed-size tags reject other sizes,
 * string tags reject an inner NUL, bytes tags accept one. */
static void test_every_tag(void)
{
	int bad_trip = 0, bad_size = 0, bad_nul = 0;
	char err[256], want[256];

	for (size_t k = 0; k < N(tags); k++) {
		unsigned tag = tags[k].tag;
		char type = tags[k].type;
		struct mos_msg m, d;
		uint32_t u = 0;
		uint64_t q = 0;

		mos_msg_init(&m, MOS_MSG_LOAD);
		if (type == 'u' || type == 'i')
			mos_msg_put_u32(&m, tag, 0x80000001u + tag);
		else if (type == 'U')
			mos_msg_put_u64(&m, tag, 0x8000000000000001ull + tag);
		else
			mos_msg_put(&m, tag, type == 's' ? "abc" : "a\0c", 3);
		mos_msg_finish(&m, tag);
		if (decode(m.buf, m.len, &d, err, sizeof(err))) {
			printf("# tag %s: %s\n", tags[k].name, err);
			bad_trip++;
		} else {
			if (type == 'u' || type == 'i')
				bad_trip += mos_msg_get_u32(&d, tag, &u) || u != 0x80000001u + tag;
			else if (type == 'U')
				bad_trip += mos_msg_get_u64(&d, tag, &q) || q != 0x8000000000000001ull + tag;
			else
				bad_trip += d.n_fields != 1 || d.fields[0].len != 3 ||
					    memcmp(d.fields[0].data, type == 's' ? "abc" : "a\0c", 3);
			mos_msg_free(&d);
		}
		mos_msg_free(&m);

		size_t fixed = type == 'U' ? 8 : type == 'u' || type == 'i' ? 4 : 0;
		static const size_t sizes[] = { 0, 1, 3, 4, 5, 7, 8, 9, 16 };
		for (size_t j = 0; fixed && j < N(sizes); j++) {
			if (sizes[j] == fixed)
				continue;
			mos_msg_init(&m, MOS_MSG_LOAD);
			mos_msg_put(&m, tag, "\1\2\3\4\5\6\7\10\11\12\13\14\15\16\17\20", sizes[j]);
			mos_msg_finish(&m, 0);
			snprintf(want, sizeof(want), "bad LOAD message: field '%s' has %zu bytes, expected %zu",
				 tags[k].name, sizes[j], fixed);
			int rc = decode(m.buf, m.len, &d, err, sizeof(err));
			if (rc != -EBADMSG || strcmp(err, want)) {
				printf("# tag %s size %zu: rc %d '%s'\n", tags[k].name, sizes[j], rc, err);
				bad_size++;
			}
			if (!rc)
				mos_msg_free(&d);
			mos_msg_free(&m);
		}
		if (type == 's') {
			mos_msg_init(&m, MOS_MSG_LOAD);
			mos_msg_put(&m, tag, "ab\0", 3);
			mos_msg_finish(&m, 0);
			snprintf(want, sizeof(want), "bad LOAD message: field '%s' holds a NUL byte", tags[k].name);
			int rc = decode(m.buf, m.len, &d, err, sizeof(err));
			if (rc != -EBADMSG || strcmp(err, want)) {
				printf("# tag %s NUL: rc %d '%s'\n", tags[k].name, rc, err);
				bad_nul++;
			}
			if (!rc)
				mos_msg_free(&d);
			mos_msg_free(&m);
		}
	}
	TAP_OK(!bad_trip, "every tag round-trips a value of its type (%d bad)", bad_trip);
	TAP_OK(!bad_size, "every fixed-size tag rejects 8 wrong sizes, naming the field (%d bad)", bad_size);
	TAP_OK(!bad_nul, "every string tag rejects an inner NUL, naming the field (%d bad)", bad_nul);
}

static void test_absent(void)
{
	struct mos_msg m, d;
	char err[256];
	uint32_t u = 42;
	int32_t i = 42;
	uint64_t q = 42;

	mos_msg_init(&m, MOS_MSG_PS_REQ);
	mos_msg_finish(&m, 1);
	if (decode(m.buf, m.len, &d, err, sizeof(err))) {
		TAP_OK(0, "empty PS_REQ decodes: %s", err);
		return;
	}
	TAP_OK(d.n_fields == 0 && d.len == MOS_MSG_HDR_LEN, "empty message is a bare header");
	TAP_OK(mos_msg_get_u32(&d, MOS_T_JOBID, &u) == -ENOENT && u == 42, "absent u32: -ENOENT, value untouched");
	TAP_OK(mos_msg_get_i32(&d, MOS_T_CODE, &i) == -ENOENT && i == 42, "absent i32: -ENOENT, value untouched");
	TAP_OK(mos_msg_get_u64(&d, MOS_T_RSS, &q) == -ENOENT && q == 42, "absent u64: -ENOENT, value untouched");
	TAP_OK(mos_msg_get_str(&d, MOS_T_TEXT) == NULL, "absent string: NULL");
	TAP_OK(mos_msg_get(&d, MOS_T_DATA) == NULL, "absent field: NULL");
	char **v = mos_msg_get_strv(&d, MOS_T_ARGV);
	TAP_OK(v && !v[0], "absent strv: an empty vector");
	mos_strv_free(v);
	mos_strv_free(NULL);
	mos_msg_free(&d);
	mos_msg_free(&m);
}

static void test_strv(void)
{
	static const char *const argv[] = { "prog", "", "a b", "--x=\xe2\x82\xac" };
	struct mos_msg m, d;
	char err[256];

	mos_msg_init(&m, MOS_MSG_SUBMIT);
	mos_msg_put_u32(&m, MOS_T_APP, 0);
	mos_msg_put_str(&m, MOS_T_ARGV, argv[0]);
	mos_msg_put_str(&m, MOS_T_ENV, "A=1");
	mos_msg_put_str(&m, MOS_T_ARGV, argv[1]);
	mos_msg_put_str(&m, MOS_T_CWD, "/");
	mos_msg_put_str(&m, MOS_T_ARGV, argv[2]);
	mos_msg_put_str(&m, MOS_T_ENV, "B=2");
	mos_msg_put_str(&m, MOS_T_ARGV, argv[3]);
	mos_msg_finish(&m, 0);
	if (decode(m.buf, m.len, &d, err, sizeof(err))) {
		TAP_OK(0, "SUBMIT decodes: %s", err);
		return;
	}
	char **v = mos_msg_get_strv(&d, MOS_T_ARGV), **e = mos_msg_get_strv(&d, MOS_T_ENV);
	bool same = v != NULL;
	for (size_t i = 0; same && i < N(argv); i++)
		same = v[i] && !strcmp(v[i], argv[i]);
	TAP_OK(same && !v[N(argv)], "strv: 4 interleaved ARGV fields in order, then NULL");
	TAP_OK(e && e[0] && e[1] && !e[2] && !strcmp(e[0], "A=1") && !strcmp(e[1], "B=2"), "strv: ENV separately");
	mos_strv_free(v);
	mos_strv_free(e);
	mos_msg_free(&d);
	mos_msg_free(&m);
}

/* Literal frames: a change of byte order, header layout or numbering shows. */
static void test_golden(void)
{
	static const uint8_t signal[] = {
		0x58, 0x53, 0x4f, 0x4d, 0x01, 0x00, 0x07, 0x00, 0x04, 0x03, 0x02, 0x01, 0x14, 0x00, 0x00, 0x00,
		0x05, 0x00, 0x04, 0x00, 0x00, 0x00, 0x11, 0x27, 0x00, 0x00, /* jobid 10001 */
		0x0a, 0x00, 0x04, 0x00, 0x00, 0x00, 0x0f, 0x00, 0x00, 0x00, /* sig 15 */
	};
	static const uint8_t error[] = {
		0x58, 0x53, 0x4f, 0x4d, 0x01, 0x00, 0x03, 0x00, 0x00, 0x00, 0x00, 0x00, 0x12, 0x00, 0x00, 0x00,
		0x04, 0x00, 0x04, 0x00, 0x00, 0x00, 0xfe, 0xff, 0xff, 0xff, /* code -2 */
		0x03, 0x00, 0x02, 0x00, 0x00, 0x00, 'n', 'o',               /* text "no" */
	};
	static const uint8_t psrep[] = {
		0x58, 0x53, 0x4f, 0x4d, 0x01, 0x00, 0x0e, 0x00, 0x05, 0x00, 0x00, 0x00, 0x16, 0x00, 0x00, 0x00,
		0x1a, 0x00, 0x08, 0x00, 0x00, 0x00, 0x08, 0x07, 0x06, 0x05, 0x04, 0x03, 0x02, 0x01, /* rss */
		0x09, 0x00, 0x02, 0x00, 0x00, 0x00, 0x00, 0xff,                                     /* data */
	};
	struct mos_msg m, d;
	char err[256];
	uint32_t u;

	mos_msg_init(&m, MOS_MSG_SIGNAL);
	mos_msg_put_u32(&m, MOS_T_JOBID, 10001);
	mos_msg_put_u32(&m, MOS_T_SIG, 15);
	mos_msg_finish(&m, 0x01020304);
	TAP_OK(m.len == sizeof(signal) && !memcmp(m.buf, signal, sizeof(signal)), "golden SIGNAL frame");
	mos_msg_free(&m);
	mos_msg_init(&m, MOS_MSG_ERROR);
	mos_msg_put_i32(&m, MOS_T_CODE, -2);
	mos_msg_put_str(&m, MOS_T_TEXT, "no");
	mos_msg_finish(&m, 0);
	TAP_OK(m.len == sizeof(error) && !memcmp(m.buf, error, sizeof(error)), "golden ERROR frame");
	mos_msg_free(&m);
	mos_msg_init(&m, MOS_MSG_PS_REP);
	mos_msg_put_u64(&m, MOS_T_RSS, 0x0102030405060708ull);
	mos_msg_put(&m, MOS_T_DATA, "\0\xff", 2);
	mos_msg_finish(&m, 5);
	TAP_OK(m.len == sizeof(psrep) && !memcmp(m.buf, psrep, sizeof(psrep)), "golden PS_REP frame");
	mos_msg_free(&m);

	int rc = decode(signal, sizeof(signal), &d, err, sizeof(err));
	TAP_OK(!rc && d.type == MOS_MSG_SIGNAL && d.seq == 0x01020304 && !mos_msg_get_u32(&d, MOS_T_SIG, &u) &&
		       u == 15, "golden SIGNAL bytes decode (%s)", err);
	if (!rc)
		mos_msg_free(&d);
}

/* A frame whose required fields come last, so that no proper prefix of its
 * fields is a valid message: NODE "n1", TEXT "hi", JOBID, RANK, STATUS. */
static void build_exit(struct mos_msg *m)
{
	mos_msg_init(m, MOS_MSG_EXIT);
	mos_msg_put_str(m, MOS_T_NODE, "n1");
	mos_msg_put_str(m, MOS_T_TEXT, "hi");
	mos_msg_put_u32(m, MOS_T_JOBID, 10001);
	mos_msg_put_u32(m, MOS_T_RANK, 3);
	mos_msg_put_i32(m, MOS_T_STATUS, 0);
	mos_msg_finish(m, 9);
}

/* expected_cut - what the decoder must say about the payload cut at P. */
static void expected_cut(size_t p, char *want, size_t len)
{
	static const struct { unsigned tag; const char *name; size_t flen; } f[] = {
		{ MOS_T_NODE, "node", 2 }, { MOS_T_TEXT, "text", 2 }, { MOS_T_JOBID, "jobid", 4 },
		{ MOS_T_RANK, "rank", 4 }, { MOS_T_STATUS, "status", 4 },
	};
	size_t off = 0;

	for (size_t i = 0; i < N(f); off += 6 + f[i].flen, i++) {
		if (p == off) { /* a clean cut between fields: JOBID is the first required one missing */
			snprintf(want, len, "bad EXIT message: required field '%s' missing",
				 i <= 2 ? "jobid" : i == 3 ? "rank" : "status");
			return;
		}
		if (p < off + 6) {
			snprintf(want, len, "bad EXIT message: truncated field header at byte %zu", MOS_MSG_HDR_LEN + off);
			return;
		}
		if (p < off + 6 + f[i].flen) {
			snprintf(want, len, "bad EXIT message: field '%s' length %zu overruns the frame", f[i].name, f[i].flen);
			return;
		}
	}
	snprintf(want, len, "(not a cut)");
}

static void test_truncation(void)
{
	struct mos_msg m, d;
	char err[256], want[256];
	int bad_raw = 0, bad_fixed = 0;

	build_exit(&m);
	for (size_t l = 0; l < m.len; l++) {
		if (l < MOS_MSG_HDR_LEN)
			snprintf(want, sizeof(want), "bad none message: frame of %zu bytes is shorter than a header", l);
		else
			snprintf(want, sizeof(want), "bad EXIT message: payload length %zu does not match frame",
				 m.len - MOS_MSG_HDR_LEN);
		int rc = decode(m.buf, l, &d, err, sizeof(err));
		if (rc != -EBADMSG || strcmp(err, want)) {
			printf("# cut at %zu: rc %d '%s', want '%s'\n", l, rc, err, want);
			bad_raw++;
		}
		if (!rc)
			mos_msg_free(&d);

		if (l < MOS_MSG_HDR_LEN)
			continue;
		/* the same prefix with its header's length made to agree */
		uint8_t *b = malloc(m.len);
		memcpy(b, m.buf, l);
		set_u32(b + 12, (uint32_t)(l - MOS_MSG_HDR_LEN));
		expected_cut(l - MOS_MSG_HDR_LEN, want, sizeof(want));
		rc = decode(b, l, &d, err, sizeof(err));
		if (rc != -EBADMSG || strcmp(err, want)) {
			printf("# re-headed cut at %zu: rc %d '%s', want '%s'\n", l, rc, err, want);
			bad_fixed++;
		}
		if (!rc)
			mos_msg_free(&d);
		free(b);
	}
	TAP_OK(!bad_raw, "all %zu truncations of a %zu-byte frame are rejected (%d bad)", m.len, m.len, bad_raw);
	TAP_OK(!bad_fixed, "all %zu truncations with a matching header length are rejected, naming the field (%d bad)",
	       m.len - MOS_MSG_HDR_LEN, bad_fixed);
	int rc = decode(m.buf, m.len, &d, err, sizeof(err));
	TAP_OK(rc == 0, "the whole frame decodes (%s)", err);
	if (!rc)
		mos_msg_free(&d);
	mos_msg_free(&m);
}

static void test_bad_fields(void)
{
	struct mos_msg m;
	uint8_t *b;

	build_exit(&m);
	b = m.buf;
	/* the NODE field header is at 16: tag 16..17, length 18..21 */
	set_u32(b + 18, 0xffffffffu);
	rejects(b, m.len, "bad EXIT message: field 'node' length 4294967295 overruns the frame", "huge field length");
	set_u32(b + 18, (uint32_t)(m.len - MOS_MSG_HDR_LEN - 6 + 1));
	char want[128];
	snprintf(want, sizeof(want), "bad EXIT message: field 'node' length %zu overruns the frame",
		 m.len - MOS_MSG_HDR_LEN - 6 + 1);
	rejects(b, m.len, want, "field length one past the frame");
	set_u32(b + 18, 2);

	b[16] = 0, b[17] = 0;
	rejects(b, m.len, "bad EXIT message: unknown field tag 0", "tag 0");
	b[16] = MOS_T__COUNT;
	snprintf(want, sizeof(want), "bad EXIT message: unknown field tag %u", MOS_T__COUNT);
	rejects(b, m.len, want, "tag past the table");
	b[16] = 0xff, b[17] = 0xff;
	rejects(b, m.len, "bad EXIT message: unknown field tag 65535", "tag 65535");
	b[16] = MOS_T_NODE, b[17] = 0;

	b[22] = 0; /* "n1" -> "\0" "1" */
	rejects(b, m.len, "bad EXIT message: field 'node' holds a NUL byte", "NUL inside a string");
	b[22] = 'n';
	mos_msg_free(&m);

	/* more fields than the decoder indexes: 16 * MOS_MSG_MAX_FIELDS */
	struct mos_msg big, d;
	char err[256];
	mos_msg_init(&big, MOS_MSG_LOAD);
	for (unsigned i = 0; i < 16 * MOS_MSG_MAX_FIELDS; i++)
		mos_msg_put(&big, MOS_T_DATA, NULL, 0);
	mos_msg_finish(&big, 0);
	int rc = decode(big.buf, big.len, &d, err, sizeof(err));
	TAP_OK(rc == 0 && d.n_fields == 16 * MOS_MSG_MAX_FIELDS, "%u empty fields decode (%s)",
	       16 * MOS_MSG_MAX_FIELDS, err);
	if (!rc)
		mos_msg_free(&d);
	mos_msg_put(&big, MOS_T_DATA, NULL, 0);
	mos_msg_finish(&big, 0);
	rejects(big.buf, big.len, "bad LOAD message: too many fields", "one field more");
	mos_msg_free(&big);
}

static void test_required(void)
{
	int bad_full = 0, bad_missing = 0, nmissing = 0;
	char err[256], want[256];

	for (size_t k = 0; k < N(types); k++) {
		struct mos_msg m, d;
		const unsigned *req = types[k].req;

		mos_msg_init(&m, types[k].type);
		for (size_t j = 0; req[j]; j++)
			put_any(&m, req[j]);
		mos_msg_finish(&m, 0);
		int rc = decode(m.buf, m.len, &d, err, sizeof(err));
		if (rc) {
			printf("# %s with its required fields: %s\n", types[k].name, err);
			bad_full++;
		} else {
			mos_msg_free(&d);
		}
		mos_msg_free(&m);

		for (size_t omit = 0; req[omit]; omit++, nmissing++) {
			mos_msg_init(&m, types[k].type);
			for (size_t j = 0; req[j]; j++)
				if (j != omit)
					put_any(&m, req[j]);
			mos_msg_finish(&m, 0);
			snprintf(want, sizeof(want), "bad %s message: required field '%s' missing", types[k].name,
				 mos_tag_name(req[omit]));
			rc = decode(m.buf, m.len, &d, err, sizeof(err));
			if (rc != -EBADMSG || strcmp(err, want)) {
				printf("# %s without %s: rc %d '%s'\n", types[k].name, mos_tag_name(req[omit]), rc, err);
				bad_missing++;
			}
			if (!rc)
				mos_msg_free(&d);
			mos_msg_free(&m);
		}
	}
	TAP_OK(!bad_full, "each of %zu types decodes with exactly its required fields (%d bad)", N(types), bad_full);
	TAP_OK(!bad_missing && nmissing > 40, "each of %d required fields, when missing, is named (%d bad)", nmissing,
	       bad_missing);
}

static void test_header(void)
{
	struct mos_msg m;
	uint16_t type = 0;
	uint32_t seq = 0, len = 0;
	uint8_t h[MOS_MSG_HDR_LEN];
	const char *badhdr = "bad none message: bad header (magic, version or type)";

	build_exit(&m);
	memcpy(h, m.buf, sizeof(h));
	TAP_OK(mos_msg_parse_header(h, &type, &seq, &len) == 0 && type == MOS_MSG_EXIT && seq == 9 &&
		       len == m.len - MOS_MSG_HDR_LEN, "parse_header of a good header");
	for (int i = 0; i < 4; i++) {
		char what[64];
		m.buf[i] ^= 0x20;
		snprintf(what, sizeof(what), "magic byte %d changed", i);
		TAP_OK(mos_msg_parse_header(m.buf, &type, &seq, &len) == -EPROTO, "%s: -EPROTO", what);
		rejects(m.buf, m.len, badhdr, what);
		m.buf[i] ^= 0x20;
	}
	static const uint8_t versions[] = { 0, 2, 0xff };
	for (size_t i = 0; i < N(versions); i++) {
		m.buf[4] = versions[i];
		TAP_OK(mos_msg_parse_header(m.buf, &type, &seq, &len) == -EPROTO, "version %u: -EPROTO", versions[i]);
	}
	rejects(m.buf, m.len, badhdr, "version 255");
	m.buf[4] = MOS_MSG_VERSION;
	static const uint16_t btypes[] = { 0, MOS_MSG__COUNT, 0xffff };
	for (size_t i = 0; i < N(btypes); i++) {
		m.buf[6] = btypes[i] & 0xff, m.buf[7] = btypes[i] >> 8;
		TAP_OK(mos_msg_parse_header(m.buf, &type, &seq, &len) == -EPROTO, "type %u: -EPROTO", btypes[i]);
		rejects(m.buf, m.len, badhdr, "bad type");
	}
	m.buf[6] = MOS_MSG_EXIT, m.buf[7] = 0;

	char want[128];
	uint32_t plen = (uint32_t)(m.len - MOS_MSG_HDR_LEN);
	set_u32(m.buf + 12, plen + 1);
	snprintf(want, sizeof(want), "bad EXIT message: payload length %u does not match frame", plen + 1);
	rejects(m.buf, m.len, want, "payload length one too long");
	set_u32(m.buf + 12, plen - 1);
	snprintf(want, sizeof(want), "bad EXIT message: payload length %u does not match frame", plen - 1);
	rejects(m.buf, m.len, want, "payload length one too short");

	set_u32(m.buf + 12, MOS_MSG_MAX_PAYLOAD);
	TAP_OK(mos_msg_parse_header(m.buf, &type, &seq, &len) == 0 && len == MOS_MSG_MAX_PAYLOAD,
	       "declared length MOS_MSG_MAX_PAYLOAD is accepted by parse_header");
	set_u32(m.buf + 12, MOS_MSG_MAX_PAYLOAD + 1);
	TAP_OK(mos_msg_parse_header(m.buf, &type, &seq, &len) == -EMSGSIZE, "MOS_MSG_MAX_PAYLOAD + 1: -EMSGSIZE");
	set_u32(m.buf + 12, 0xffffffffu);
	TAP_OK(mos_msg_parse_header(m.buf, &type, &seq, &len) == -EMSGSIZE, "0xffffffff: -EMSGSIZE");
	rejects(m.buf, m.len, "bad none message: bad header (size)", "oversized declared length");
	mos_msg_free(&m);
}

static void test_encoder_limit(void)
{
	struct mos_msg m;
	void *big = calloc(1, MOS_MSG_MAX_PAYLOAD);

	mos_msg_init(&m, MOS_MSG_LOAD);
	TAP_OK(mos_msg_put(&m, MOS_T_DATA, big, MOS_MSG_MAX_PAYLOAD - 5) == -E2BIG && m.len == MOS_MSG_HDR_LEN,
	       "a field one byte over the payload limit: -E2BIG, message unchanged");
	TAP_OK(mos_msg_put(&m, MOS_T_DATA, big, MOS_MSG_MAX_PAYLOAD - 6) == 0, "a field filling the payload exactly");
	TAP_OK(mos_msg_put(&m, MOS_T_DATA, NULL, 0) == -E2BIG, "then even an empty field: -E2BIG");
	mos_msg_finish(&m, 0);
	struct mos_msg d;
	char err[256];
	int rc = decode(m.buf, m.len, &d, err, sizeof(err));
	TAP_OK(rc == 0 && d.fields[0].len == MOS_MSG_MAX_PAYLOAD - 6, "the largest frame decodes (%s)", err);
	if (!rc)
		mos_msg_free(&d);
	mos_msg_free(&m);
	free(big);
}

static void test_util(void)
{
	uint32_t job = 0;
	int64_t rank = 0;
	char buf[128];

	TAP_OK(mos_parse_job_rank("10001", &job, &rank) == 0 && job == 10001 && rank == -1, "job: rank -1");
	TAP_OK(mos_parse_job_rank("10001.7", &job, &rank) == 0 && job == 10001 && rank == 7, "job.rank");
	TAP_OK(mos_parse_job_rank("20000.0", &job, &rank) == 0 && rank == 0, "rank 0");
	TAP_OK(mos_parse_job_rank("4294967295.4294967295", &job, &rank) == 0 && job == UINT32_MAX &&
		       rank == UINT32_MAX, "largest job and rank");
	static const char *const bad[] = { "", "0", "x", "1x", "1.", "1.x", "1.2.3", "1.2x", ".1", "-1",
					   "1.-1", "4294967296", "1.4294967296", "99999999999999999999999" };
	int nbad = 0;
	for (size_t i = 0; i < N(bad); i++)
		if (mos_parse_job_rank(bad[i], &job, &rank) != -EINVAL) {
			printf("# '%s' accepted\n", bad[i]);
			nbad++;
		}
	TAP_OK(!nbad, "%zu malformed job ids: -EINVAL", N(bad));

	TAP_OK(mos_sig_parse("TERM") == SIGTERM, "TERM");
	TAP_OK(mos_sig_parse("SIGKILL") == SIGKILL, "SIGKILL");
	TAP_OK(mos_sig_parse("sigusr1") == SIGUSR1 && mos_sig_parse("Hup") == SIGHUP, "case-insensitive");
	TAP_OK(mos_sig_parse("15") == 15 && mos_sig_parse("1") == 1 && mos_sig_parse("64") == 64, "numbers");
	static const char *const badsig[] = { "", "0", "-9", "65", "SIG", "SIGFOO", "KILLX", "9x", "TERM ",
					      "99999999999999999999" };
	nbad = 0;
	for (size_t i = 0; i < N(badsig); i++)
		if (mos_sig_parse(badsig[i]) != -EINVAL) {
			printf("# signal '%s' accepted\n", badsig[i]);
			nbad++;
		}
	TAP_OK(!nbad, "%zu bad signal names: -EINVAL", N(badsig));

	TAP_IS_STR(mos_status_str(W_EXITCODE(3, 0), buf, sizeof(buf)), "exited with status 3", "status: exit 3");
	TAP_IS_STR(mos_status_str(W_EXITCODE(0, 0), buf, sizeof(buf)), "exited with status 0", "status: exit 0");
	TAP_IS_STR(mos_status_str(W_EXITCODE(0, SIGKILL), buf, sizeof(buf)), "killed by signal 9 (Killed)",
		   "status: SIGKILL");
	TAP_IS_STR(mos_status_str(W_EXITCODE(0, SIGSEGV) | WCOREFLAG, buf, sizeof(buf)),
		   "killed by signal 11 (Segmentation fault)", "status: SIGSEGV with core");
	TAP_IS_STR(mos_status_str(W_STOPCODE(SIGSTOP), buf, sizeof(buf)), "ended with wait status 0x137f",
		   "status: stopped");
	TAP_OK(mos_status_exit_code(W_EXITCODE(3, 0)) == 3 && mos_status_exit_code(W_EXITCODE(255, 0)) == 255,
	       "exit code: the status");
	TAP_OK(mos_status_exit_code(W_EXITCODE(0, SIGKILL)) == 137 &&
		       mos_status_exit_code(W_EXITCODE(0, SIGSEGV) | WCOREFLAG) == 139, "exit code: 128 + signal");
	TAP_OK(mos_status_exit_code(W_STOPCODE(SIGSTOP)) == 255, "exit code: 255 otherwise");
}

int main(void)
{
	test_numbering();
	test_round_trip();
	test_every_tag();
	test_absent();
	test_strv();
	test_golden();
	test_truncation();
	test_bad_fields();
	test_required();
	test_header();
	test_encoder_limit();
	test_util();
	return TAP_DONE();
}
