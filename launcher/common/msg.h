/* msg.h - the wire format shared by mosd, its peers and the CLIs.
 * A frame is a fixed header {magic, version, type, seq, len} and a payload of
 * TLV fields {tag u16, len u32, bytes}. Every message type and every field is
 * declared once, in the tables of msg.c, from which names, size checks and
 * required fields come. Decoders check every length before reading. */
#ifndef MOS_MSG_H
#define MOS_MSG_H

#include <stddef.h>
#include <stdint.h>
#include <stdbool.h>

#define MOS_MSG_MAGIC 0x4d4f5358u /* "MOSX" */
#define MOS_MSG_VERSION 1
#define MOS_MSG_HDR_LEN 16
#define MOS_MSG_MAX_PAYLOAD (16u << 20)
#define MOS_MSG_MAC_LEN 16        /* crypto_onetimeauth_BYTES (Poly1305) */
#define MOS_MSG_MAX_FIELDS 8192

/* Message types; their names and required fields are one line each in msg.c. */
enum mos_msg_type {
	MOS_MSG_NONE = 0,
	MOS_MSG_HELLO,        /* peer handshake: NODE, NONCE */
	MOS_MSG_AUTH,         /* peer handshake proof (MAC'd, empty) */
	MOS_MSG_ERROR,        /* TEXT, CODE */
	MOS_MSG_SUBMIT,       /* client->home: a job */
	MOS_MSG_JOB_STARTED,  /* home->client: JOBID, NPROCS, (RANK, NODE)* */
	MOS_MSG_IO,           /* JOBID, RANK, STREAM, DATA (empty DATA = EOF) */
	MOS_MSG_SIGNAL,       /* JOBID, SIG [, RANK] */
	MOS_MSG_EXIT,         /* JOBID, RANK, STATUS, NODE */
	MOS_MSG_JOB_DONE,     /* JOBID, STATUS */
	MOS_MSG_SPAWN,        /* home->node: one process */
	MOS_MSG_SPAWNED,      /* node->home: JOBID, RANK, PID, NODE [, CODE, TEXT] */
	MOS_MSG_KILL_JOB,     /* JOBID [, TEXT] */
	MOS_MSG_PS_REQ,       /* [ALL] */
	MOS_MSG_PS_REP,       /* rows: (JOBID RANK UID HOME NODE PID STATE CPU RSS MIGRATIONS ARGV)* */
	MOS_MSG_LOAD,         /* gossip: (NODE, LOAD, NCPUS, NPROCS, AGE_MS, ROLE)* */
	MOS_MSG_MIGRATE,      /* client->home / home->source: JOBID, RANK, NODE */
	MOS_MSG_MIG_PREPARE,  /* source->target: JOBID, RANK, ... */
	MOS_MSG_MIG_READY,    /* target->source */
	MOS_MSG_MIG_DATA,     /* source->target: image chunk */
	MOS_MSG_MIG_COMMIT,   /* source->target: images complete, restore */
	MOS_MSG_MIG_DONE,     /* target->source/home: restored, PID, CODE, TEXT */
	MOS_MSG_MOVED,        /* ->home: JOBID, RANK, NODE, PID */
	MOS_MSG_REPLY,        /* generic OK/err reply: CODE [, TEXT] */
	MOS_MSG_PMIX,         /* pmix-plugin traffic between daemons */
	MOS_MSG_MIG_ABORT,    /* source->target: give up, JOBID, RANK */
	MOS_MSG_FAULT,        /* local root: arm a fault-injection point, NAME */
	MOS_MSG_CKPT,         /* checkpoint: KIND 0 request to home, 1 order to a rank's node, 2 manifest to dest */
	MOS_MSG_CKPT_DATA,    /* rank's node -> dest: JOBID, RANK, NAME, DATA, TEXT(dir) */
	MOS_MSG_CKPT_DONE,    /* rank's node -> dest -> home: JOBID, CODE [, RANK, ARGV x4, SEQ] */
	MOS_MSG_RESTART,      /* client -> mosd: TEXT(dir) */
	MOS_MSG_CKPT_META,    /* the manifest file of a checkpoint: DATA(submit frame), (RANK ARGV*4 SEQ)* */
	MOS_MSG_BIND,         /* home->node: bind again a rank that moved there: JOBID, RANK, BIND */
	MOS_MSG_MIG_DECIDE,   /* source/target -> home: a hand-over question; home -> them: its word: JOBID, RANK, KIND, SEQ (the try) [, NODE] */
	MOS_MSG_MIG_PULL,     /* target->source: criu reads image NAME, send the rest of it: JOBID, RANK, NAME */
	MOS_MSG__COUNT
};

enum mos_field_type { MOS_FT_U32, MOS_FT_U64, MOS_FT_I32, MOS_FT_STR, MOS_FT_BYTES };

enum mos_tag {
	MOS_T_NONE = 0,
	MOS_T_NODE, MOS_T_NONCE, MOS_T_TEXT, MOS_T_CODE, MOS_T_JOBID, MOS_T_RANK,
	MOS_T_NPROCS, MOS_T_STREAM, MOS_T_DATA, MOS_T_SIG, MOS_T_STATUS, MOS_T_PID,
	MOS_T_UID, MOS_T_GID, MOS_T_GROUP, MOS_T_ARGV, MOS_T_ENV, MOS_T_CWD,
	MOS_T_HOME, MOS_T_APP, MOS_T_HOSTS, MOS_T_MAPBY, MOS_T_FLAGS, MOS_T_STATE,
	MOS_T_CPU, MOS_T_RSS, MOS_T_MIGRATIONS, MOS_T_LOAD, MOS_T_NCPUS, MOS_T_AGE_MS,
	MOS_T_ROLE, MOS_T_ALL, MOS_T_SIZE, MOS_T_OFFSET, MOS_T_NAME, MOS_T_KIND,
	MOS_T_SLOTS, MOS_T_APPNUM, MOS_T_SEQ, MOS_T_MPI_RANK, MOS_T_MPI_SIZE, MOS_T_RANKMAP,
	MOS_T_APPMAP, MOS_T_PORT,
	MOS_T_PIPES,  /* a pod's stdio pipes by id ("pipe:[N]"), fds 0..3 in order */
	MOS_T_BIND, MOS_T_LOCAL_RANK, MOS_T_LOCAL_SIZE, /* launcher/mosd/bind.c */
	MOS_T__COUNT
};

/* SUBMIT flags */
#define MOS_SUBMIT_TAG_OUTPUT   0x1u
#define MOS_SUBMIT_MAP_BY_NODE  0x2u
#define MOS_SUBMIT_OVERSUB      0x4u
#define MOS_SUBMIT_STDIN        0x8u
#define MOS_SUBMIT_REPORT_BIND  0x10u /* a line per rank saying where it is bound */

/* MIGRATE and MIG_PREPARE flags */
#define MOS_MIG_FORCE    0x1u
#define MOS_MIG_LAZY     0x2u  /* post-copy: memory follows on demand */
#define MOS_MIG_HANDOVER 0x4u  /* PREPARE: the home decides the hand-over (a move, not a restart) */
/* memory goes straight from the stopped original into the new copy (criu's
 * page server and lazy-pages, as post-copy), all of it before the hand-over:
 * no copy of it in either node's tmpfs */
#define MOS_MIG_DIRECT   0x8u
/* the memory goes through the dump's tmpfs images and the peer link (the
 * default where userfaultfd does not work) */
#define MOS_MIG_COPY     0x10u

/* BIND (SUBMIT, SPAWN): what each process is bound to (launcher/mosd/bind.c).
 * SPAWN adds LOCAL_RANK and LOCAL_SIZE: the rank's place among the job's
 * ranks on that node, and their number there. */
enum mos_bind_kind { MOS_BIND_NONE = 0, MOS_BIND_CORE = 1 };

/* APP KIND (after an APP field): the app context is an MPI program */
#define MOS_APP_MPI 1u

/* PMIX KIND: daemon-to-daemon PMIx traffic (launcher/mosd/pmixhost.c) */
enum mos_pmix_kind { MOS_PMIX_FENCE_IN = 1, MOS_PMIX_FENCE_OUT, MOS_PMIX_DMODEX_REQ, MOS_PMIX_DMODEX_REP,
		     MOS_PMIX_ABORT };

struct mos_field {
	uint16_t tag;
	uint32_t len;
	const uint8_t *data;
};

/* A message under construction or decoded. Decoded fields point into buf. */
struct mos_msg {
	uint16_t type;
	uint32_t seq;
	uint8_t *buf;         /* header + payload */
	size_t len, cap;
	struct mos_field *fields;
	size_t n_fields;
};

const char *mos_msg_name(unsigned type);
const char *mos_tag_name(unsigned tag);

/* Building. All return 0 or -ENOMEM/-E2BIG. */
int mos_msg_init(struct mos_msg *m, unsigned type);
/* mos_msg_reserve - room for BYTES more of fields without reallocation. */
int mos_msg_reserve(struct mos_msg *m, size_t bytes);
int mos_msg_put(struct mos_msg *m, unsigned tag, const void *data, size_t len);
int mos_msg_put_u32(struct mos_msg *m, unsigned tag, uint32_t v);
int mos_msg_put_u64(struct mos_msg *m, unsigned tag, uint64_t v);
int mos_msg_put_i32(struct mos_msg *m, unsigned tag, int32_t v);
int mos_msg_put_str(struct mos_msg *m, unsigned tag, const char *s);
/* mos_msg_finish - fill the header; the frame is m->buf[0..m->len). */
void mos_msg_finish(struct mos_msg *m, uint32_t seq);
void mos_msg_free(struct mos_msg *m);

/* mos_msg_parse_header - check a 16-byte header; sets *type, *seq, *len.
 * Returns 0, or -EPROTO (bad magic/version/type) / -EMSGSIZE. */
int mos_msg_parse_header(const uint8_t *hdr, uint16_t *type, uint32_t *seq, uint32_t *len);

/* mos_msg_decode - take ownership of FRAME (header+payload, malloc'd) and
 * index its fields, checking every length, each field's size for its type,
 * and the type's required fields. On error writes which field is wrong into
 * err and returns -EBADMSG; FRAME is freed either way on error. */
int mos_msg_decode(struct mos_msg *m, uint8_t *frame, size_t len, char *err, size_t errlen);
/* mos_msg_reread - finish M (seq 0) and decode a copy of its frame into COPY,
 * as its receiver would see it (fields indexed); M itself stays usable.
 * 0, or -ENOMEM / -EBADMSG with ERR set; COPY then holds nothing. */
int mos_msg_reread(struct mos_msg *m, struct mos_msg *copy, char *err, size_t errlen);

/* Getters: the first field TAG; 0, or -ENOENT when absent. */
int mos_msg_get_u32(const struct mos_msg *m, unsigned tag, uint32_t *v);
int mos_msg_get_u64(const struct mos_msg *m, unsigned tag, uint64_t *v);
int mos_msg_get_i32(const struct mos_msg *m, unsigned tag, int32_t *v);
/* mos_msg_get_str - a malloc'd NUL-terminated copy, or NULL when absent. */
char *mos_msg_get_str(const struct mos_msg *m, unsigned tag);
const struct mos_field *mos_msg_get(const struct mos_msg *m, unsigned tag);
/* mos_msg_get_strv - every field TAG, in order, as a NULL-terminated
 * malloc'd vector of malloc'd strings (free with mos_strv_free). */
char **mos_msg_get_strv(const struct mos_msg *m, unsigned tag);
void mos_strv_free(char **v);

/* Field helpers for walking repeated groups in order. */
uint32_t mos_field_u32(const struct mos_field *f);
uint64_t mos_field_u64(const struct mos_field *f);
char *mos_field_str(const struct mos_field *f);

#endif
