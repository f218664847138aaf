/* msg.c - encoder, decoder and the one table of message and field types. */
#include "msg.h"
#include <endian.h>
#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static const struct {
	const char *name;
	enum mos_field_type type;
} field_table[MOS_T__COUNT] = {
	[MOS_T_NONE] = { "none", MOS_FT_BYTES },
	[MOS_T_NODE] = { "node", MOS_FT_STR },
	[MOS_T_NONCE] = { "nonce", MOS_FT_BYTES },
	[MOS_T_TEXT] = { "text", MOS_FT_STR },
	[MOS_T_CODE] = { "code", MOS_FT_I32 },
	[MOS_T_JOBID] = { "jobid", MOS_FT_U32 },
	[MOS_T_RANK] = { "rank", MOS_FT_U32 },
	[MOS_T_NPROCS] = { "nprocs", MOS_FT_U32 },
	[MOS_T_STREAM] = { "stream", MOS_FT_U32 },
	[MOS_T_DATA] = { "data", MOS_FT_BYTES },
	[MOS_T_SIG] = { "sig", MOS_FT_U32 },
	[MOS_T_STATUS] = { "status", MOS_FT_I32 },
	[MOS_T_PID] = { "pid", MOS_FT_U32 },
	[MOS_T_UID] = { "uid", MOS_FT_U32 },
	[MOS_T_GID] = { "gid", MOS_FT_U32 },
	[MOS_T_GROUP] = { "group", MOS_FT_U32 },
	[MOS_T_ARGV] = { "argv", MOS_FT_STR },
	[MOS_T_ENV] = { "env", MOS_FT_STR },
	[MOS_T_CWD] = { "cwd", MOS_FT_STR },
	[MOS_T_HOME] = { "home", MOS_FT_STR },
	[MOS_T_APP] = { "app", MOS_FT_U32 },
	[MOS_T_HOSTS] = { "hosts", MOS_FT_STR },
	[MOS_T_MAPBY] = { "mapby", MOS_FT_STR },
	[MOS_T_FLAGS] = { "flags", MOS_FT_U32 },
	[MOS_T_STATE] = { "state", MOS_FT_STR },
	[MOS_T_CPU] = { "cpu", MOS_FT_U32 },
	[MOS_T_RSS] = { "rss", MOS_FT_U64 },
	[MOS_T_MIGRATIONS] = { "migrations", MOS_FT_U32 },
	[MOS_T_LOAD] = { "load", MOS_FT_U32 },
	[MOS_T_NCPUS] = { "ncpus", MOS_FT_U32 },
	[MOS_T_AGE_MS] = { "age_ms", MOS_FT_U32 },
	[MOS_T_ROLE] = { "role", MOS_FT_U32 },
	[MOS_T_ALL] = { "all", MOS_FT_U32 },
	[MOS_T_SIZE] = { "size", MOS_FT_U64 },
	[MOS_T_OFFSET] = { "offset", MOS_FT_U64 },
	[MOS_T_NAME] = { "name", MOS_FT_STR },
	[MOS_T_KIND] = { "kind", MOS_FT_U32 },
	[MOS_T_SLOTS] = { "slots", MOS_FT_U32 },
	[MOS_T_APPNUM] = { "appnum", MOS_FT_U32 },
	[MOS_T_SEQ] = { "seq", MOS_FT_U64 },
	[MOS_T_MPI_RANK] = { "mpi_rank", MOS_FT_U32 },
	[MOS_T_MPI_SIZE] = { "mpi_size", MOS_FT_U32 },
	[MOS_T_RANKMAP] = { "rankmap", MOS_FT_BYTES },
	[MOS_T_APPMAP] = { "appmap", MOS_FT_BYTES },
	[MOS_T_PORT] = { "port", MOS_FT_U32 },
	[MOS_T_PIPES] = { "pipes", MOS_FT_STR },
	[MOS_T_BIND] = { "bind", MOS_FT_U32 },
	[MOS_T_LOCAL_RANK] = { "local_rank", MOS_FT_U32 },
	[MOS_T_LOCAL_SIZE] = { "local_size", MOS_FT_U32 },
};

#define REQ(...) (const uint16_t[]){ __VA_ARGS__, 0 }
static const struct {
	const char *name;
	const uint16_t *required; /* 0-terminated */
} msg_table[MOS_MSG__COUNT] = {
	[MOS_MSG_NONE] = { "none", NULL },
	[MOS_MSG_HELLO] = { "HELLO", REQ(MOS_T_NODE, MOS_T_NONCE) },
	[MOS_MSG_AUTH] = { "AUTH", NULL },
	[MOS_MSG_ERROR] = { "ERROR", REQ(MOS_T_TEXT, MOS_T_CODE) },
	[MOS_MSG_SUBMIT] = { "SUBMIT", REQ(MOS_T_APP, MOS_T_ARGV, MOS_T_CWD) },
	[MOS_MSG_JOB_STARTED] = { "JOB_STARTED", REQ(MOS_T_JOBID, MOS_T_NPROCS) },
	[MOS_MSG_IO] = { "IO", REQ(MOS_T_JOBID, MOS_T_RANK, MOS_T_STREAM) },
	[MOS_MSG_SIGNAL] = { "SIGNAL", REQ(MOS_T_JOBID, MOS_T_SIG) },
	[MOS_MSG_EXIT] = { "EXIT", REQ(MOS_T_JOBID, MOS_T_RANK, MOS_T_STATUS) },
	[MOS_MSG_JOB_DONE] = { "JOB_DONE", REQ(MOS_T_JOBID, MOS_T_STATUS) },
	[MOS_MSG_SPAWN] = { "SPAWN", REQ(MOS_T_JOBID, MOS_T_RANK, MOS_T_HOME, MOS_T_UID,
					  MOS_T_GID, MOS_T_ARGV, MOS_T_CWD) },
	[MOS_MSG_SPAWNED] = { "SPAWNED", REQ(MOS_T_JOBID, MOS_T_RANK, MOS_T_CODE) },
	[MOS_MSG_KILL_JOB] = { "KILL_JOB", REQ(MOS_T_JOBID) },
	[MOS_MSG_PS_REQ] = { "PS_REQ", NULL },
	[MOS_MSG_PS_REP] = { "PS_REP", NULL },
	[MOS_MSG_LOAD] = { "LOAD", NULL },
	[MOS_MSG_MIGRATE] = { "MIGRATE", REQ(MOS_T_JOBID, MOS_T_RANK, MOS_T_NODE) },
	[MOS_MSG_MIG_PREPARE] = { "MIG_PREPARE", REQ(MOS_T_JOBID, MOS_T_RANK) },
	[MOS_MSG_MIG_READY] = { "MIG_READY", REQ(MOS_T_JOBID, MOS_T_RANK, MOS_T_CODE) },
	[MOS_MSG_MIG_DATA] = { "MIG_DATA", REQ(MOS_T_JOBID, MOS_T_RANK, MOS_T_NAME, MOS_T_DATA) },
	[MOS_MSG_MIG_COMMIT] = { "MIG_COMMIT", REQ(MOS_T_JOBID, MOS_T_RANK) },
	[MOS_MSG_MIG_DONE] = { "MIG_DONE", REQ(MOS_T_JOBID, MOS_T_RANK, MOS_T_CODE) },
	[MOS_MSG_MOVED] = { "MOVED", REQ(MOS_T_JOBID, MOS_T_RANK, MOS_T_NODE) },
	[MOS_MSG_REPLY] = { "REPLY", REQ(MOS_T_CODE) },
	[MOS_MSG_PMIX] = { "PMIX", REQ(MOS_T_KIND) },
	[MOS_MSG_MIG_ABORT] = { "MIG_ABORT", REQ(MOS_T_JOBID, MOS_T_RANK) },
	[MOS_MSG_FAULT] = { "FAULT", REQ(MOS_T_NAME) },
	[MOS_MSG_CKPT] = { "CKPT", REQ(MOS_T_JOBID, MOS_T_KIND) },
	[MOS_MSG_CKPT_DATA] = { "CKPT_DATA", REQ(MOS_T_JOBID, MOS_T_RANK, MOS_T_NAME, MOS_T_DATA, MOS_T_TEXT) },
	[MOS_MSG_CKPT_DONE] = { "CKPT_DONE", REQ(MOS_T_JOBID, MOS_T_CODE) },
	[MOS_MSG_RESTART] = { "RESTART", REQ(MOS_T_TEXT) },
	[MOS_MSG_CKPT_META] = { "CKPT_META", REQ(MOS_T_DATA) },
	[MOS_MSG_BIND] = { "BIND", REQ(MOS_T_JOBID, MOS_T_RANK, MOS_T_BIND) },
	[MOS_MSG_MIG_DECIDE] = { "MIG_DECIDE", REQ(MOS_T_JOBID, MOS_T_RANK, MOS_T_KIND, MOS_T_SEQ) },
	[MOS_MSG_MIG_PULL] = { "MIG_PULL", REQ(MOS_T_JOBID, MOS_T_RANK, MOS_T_NAME) },
};

const char *mos_msg_name(unsigned type)
{
	return type < MOS_MSG__COUNT && msg_table[type].name ? msg_table[type].name : "unknown";
}

const char *mos_tag_name(unsigned tag)
{
	return tag < MOS_T__COUNT && field_table[tag].name ? field_table[tag].name : "unknown";
}

static size_t type_size(enum mos_field_type t)
{
	switch (t) {
	case MOS_FT_U32:
	case MOS_FT_I32:
		return 4;
	case MOS_FT_U64:
		return 8;
	default:
		return 0; /* variable */
	}
}

int mos_msg_init(struct mos_msg *m, unsigned type)
{
	memset(m, 0, sizeof(*m));
	m->type = type;
	m->cap = 256;
	m->buf = malloc(m->cap);
	if (!m->buf)
		return -ENOMEM;
	m->len = MOS_MSG_HDR_LEN;
	return 0;
}

static int reserve(struct mos_msg *m, size_t more)
{
	if (m->len + more > MOS_MSG_HDR_LEN + MOS_MSG_MAX_PAYLOAD)
		return -E2BIG;
	if (m->len + more <= m->cap)
		return 0;
	size_t cap = m->cap * 2;
	while (cap < m->len + more)
		cap *= 2;
	uint8_t *nb = realloc(m->buf, cap);
	if (!nb)
		return -ENOMEM;
	m->buf = nb;
	m->cap = cap;
	return 0;
}

int mos_msg_reserve(struct mos_msg *m, size_t bytes)
{
	return reserve(m, bytes);
}

int mos_msg_put(struct mos_msg *m, unsigned tag, const void *data, size_t len)
{
	int rc = reserve(m, 6 + len);
	if (rc)
		return rc;
	uint16_t t = htole16(tag);
	uint32_t l = htole32((uint32_t)len);
	memcpy(m->buf + m->len, &t, 2);
	memcpy(m->buf + m->len + 2, &l, 4);
	if (len)
		memcpy(m->buf + m->len + 6, data, len);
	m->len += 6 + len;
	return 0;
}

int mos_msg_put_u32(struct mos_msg *m, unsigned tag, uint32_t v)
{
	v = htole32(v);
	return mos_msg_put(m, tag, &v, 4);
}

int mos_msg_put_i32(struct mos_msg *m, unsigned tag, int32_t v)
{
	return mos_msg_put_u32(m, tag, (uint32_t)v);
}

int mos_msg_put_u64(struct mos_msg *m, unsigned tag, uint64_t v)
{
	v = htole64(v);
	return mos_msg_put(m, tag, &v, 8);
}

int mos_msg_put_str(struct mos_msg *m, unsigned tag, const char *s)
{
	return mos_msg_put(m, tag, s, strlen(s));
}

void mos_msg_finish(struct mos_msg *m, uint32_t seq)
{
	uint32_t magic = htole32(MOS_MSG_MAGIC), s = htole32(seq);
	uint32_t plen = htole32((uint32_t)(m->len - MOS_MSG_HDR_LEN));
	uint16_t type = htole16(m->type);

	m->seq = seq;
	memcpy(m->buf, &magic, 4);
	m->buf[4] = MOS_MSG_VERSION;
	m->buf[5] = 0;
	memcpy(m->buf + 6, &type, 2);
	memcpy(m->buf + 8, &s, 4);
	memcpy(m->buf + 12, &plen, 4);
}

void mos_msg_free(struct mos_msg *m)
{
	free(m->buf);
	free(m->fields);
	memset(m, 0, sizeof(*m));
}

int mos_msg_parse_header(const uint8_t *hdr, uint16_t *type, uint32_t *seq, uint32_t *len)
{
	uint32_t magic, s, l;
	uint16_t t;

	memcpy(&magic, hdr, 4);
	memcpy(&t, hdr + 6, 2);
	memcpy(&s, hdr + 8, 4);
	memcpy(&l, hdr + 12, 4);
	if (le32toh(magic) != MOS_MSG_MAGIC || hdr[4] != MOS_MSG_VERSION)
		return -EPROTO;
	t = le16toh(t);
	if (t == MOS_MSG_NONE || t >= MOS_MSG__COUNT)
		return -EPROTO;
	l = le32toh(l);
	if (l > MOS_MSG_MAX_PAYLOAD)
		return -EMSGSIZE;
	*type = t;
	*seq = le32toh(s);
	*len = l;
	return 0;
}

static int decode_fail(struct mos_msg *m, char *err, size_t errlen, const char *fmt, ...)
	__attribute__((format(printf, 4, 5)));
static int decode_fail(struct mos_msg *m, char *err, size_t errlen, const char *fmt, ...)
{
	char what[200];
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(what, sizeof(what), fmt, ap);
	va_end(ap);
	if (err)
		snprintf(err, errlen, "bad %s message: %s", mos_msg_name(m->type), what);
	mos_msg_free(m);
	return -EBADMSG;
}

int mos_msg_reread(struct mos_msg *m, struct mos_msg *copy, char *err, size_t errlen)
{
	mos_msg_finish(m, 0);
	uint8_t *frame = malloc(m->len);
	if (!frame) {
		memset(copy, 0, sizeof(*copy));
		if (err)
			snprintf(err, errlen, "out of memory");
		return -ENOMEM;
	}
	memcpy(frame, m->buf, m->len);
	return mos_msg_decode(copy, frame, m->len, err, errlen);
}

int mos_msg_decode(struct mos_msg *m, uint8_t *frame, size_t len, char *err, size_t errlen)
{
	uint32_t plen;
	int rc;

	memset(m, 0, sizeof(*m));
	m->buf = frame;
	m->len = m->cap = len;
	if (len < MOS_MSG_HDR_LEN)
		return decode_fail(m, err, errlen, "frame of %zu bytes is shorter than a header", len);
	rc = mos_msg_parse_header(frame, &m->type, &m->seq, &plen);
	if (rc)
		return decode_fail(m, err, errlen, "bad header (%s)", rc == -EPROTO ? "magic, version or type" : "size");
	if (plen != len - MOS_MSG_HDR_LEN)
		return decode_fail(m, err, errlen, "payload length %u does not match frame", plen);

	size_t off = MOS_MSG_HDR_LEN, cap = 0;
	while (off < len) {
		uint16_t tag;
		uint32_t flen;
		if (len - off < 6)
			return decode_fail(m, err, errlen, "truncated field header at byte %zu", off);
		memcpy(&tag, frame + off, 2);
		memcpy(&flen, frame + off + 2, 4);
		tag = le16toh(tag);
		flen = le32toh(flen);
		off += 6;
		if (tag == MOS_T_NONE || tag >= MOS_T__COUNT)
			return decode_fail(m, err, errlen, "unknown field tag %u", tag);
		if (flen > len - off)
			return decode_fail(m, err, errlen, "field '%s' length %u overruns the frame",
					   mos_tag_name(tag), flen);
		size_t want = type_size(field_table[tag].type);
		if (want && flen != want)
			return decode_fail(m, err, errlen, "field '%s' has %u bytes, expected %zu",
					   mos_tag_name(tag), flen, want);
		if (field_table[tag].type == MOS_FT_STR && memchr(frame + off, 0, flen))
			return decode_fail(m, err, errlen, "field '%s' holds a NUL byte", mos_tag_name(tag));
		if (m->n_fields == cap) {
			if (cap >= MOS_MSG_MAX_FIELDS * 16)
				return decode_fail(m, err, errlen, "too many fields");
			cap = cap ? cap * 2 : 16;
			struct mos_field *nf = realloc(m->fields, cap * sizeof(*nf));
			if (!nf)
				return decode_fail(m, err, errlen, "out of memory");
			m->fields = nf;
		}
		m->fields[m->n_fields++] = (struct mos_field){ tag, flen, frame + off };
		off += flen;
	}
	const uint16_t *req = msg_table[m->type].required;
	for (; req && *req; req++)
		if (!mos_msg_get(m, *req))
			return decode_fail(m, err, errlen, "required field '%s' missing", mos_tag_name(*req));
	return 0;
}

const struct mos_field *mos_msg_get(const struct mos_msg *m, unsigned tag)
{
	for (size_t i = 0; i < m->n_fields; i++)
		if (m->fields[i].tag == tag)
			return &m->fields[i];
	return NULL;
}

uint32_t mos_field_u32(const struct mos_field *f)
{
	uint32_t v;
	memcpy(&v, f->data, 4);
	return le32toh(v);
}

uint64_t mos_field_u64(const struct mos_field *f)
{
	uint64_t v;
	memcpy(&v, f->data, 8);
	return le64toh(v);
}

char *mos_field_str(const struct mos_field *f)
{
	char *s = malloc(f->len + 1);
	if (s) {
		memcpy(s, f->data, f->len);
		s[f->len] = 0;
	}
	return s;
}

int mos_msg_get_u32(const struct mos_msg *m, unsigned tag, uint32_t *v)
{
	const struct mos_field *f = mos_msg_get(m, tag);
	if (!f || f->len != 4)
		return -ENOENT;
	*v = mos_field_u32(f);
	return 0;
}

int mos_msg_get_i32(const struct mos_msg *m, unsigned tag, int32_t *v)
{
	uint32_t u;
	int rc = mos_msg_get_u32(m, tag, &u);
	if (!rc)
		*v = (int32_t)u;
	return rc;
}

int mos_msg_get_u64(const struct mos_msg *m, unsigned tag, uint64_t *v)
{
	const struct mos_field *f = mos_msg_get(m, tag);
	if (!f || f->len != 8)
		return -ENOENT;
	*v = mos_field_u64(f);
	return 0;
}

char *mos_msg_get_str(const struct mos_msg *m, unsigned tag)
{
	const struct mos_field *f = mos_msg_get(m, tag);
	return f ? mos_field_str(f) : NULL;
}

char **mos_msg_get_strv(const struct mos_msg *m, unsigned tag)
{
	size_t n = 0, k = 0;
	for (size_t i = 0; i < m->n_fields; i++)
		n += m->fields[i].tag == tag;
	char **v = calloc(n + 1, sizeof(*v));
	if (!v)
		return NULL;
	for (size_t i = 0; i < m->n_fields; i++)
		if (m->fields[i].tag == tag && !(v[k++] = mos_field_str(&m->fields[i]))) {
			mos_strv_free(v);
			return NULL;
		}
	return v;
}

void mos_strv_free(char **v)
{
	if (!v)
		return;
	for (char **p = v; *p; p++)
		free(*p);
	free(v);
}
