/* imgstream.h - sending a directory of CRIU images to another node as
 * frames {JOBID, RANK, NAME, OFFSET, DATA[, TEXT]} of one message type, a few
 * MiB in flight and refilled as the link drains. A stream can follow the directory
 * while criu still writes into it, so the transfer overlaps the dump. */
#ifndef MOSD_IMGSTREAM_H
#define MOSD_IMGSTREAM_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

struct imgstream;
/* RC 0: every byte is queued on the link; else -errno (the stream is dead:
 * free it). Called from the daemon's loop, never from inside a call below. */
typedef void (*imgstream_done_cb)(void *arg, int rc);

struct imgstream_args {
	const char *dir;        /* the image directory (*.log files stay behind) */
	int peer;               /* node index to send to */
	unsigned type;          /* message type of the frames */
	uint32_t jobid, rank;
	bool follow;            /* a writer is still at work: see imgstream_writer_done() */
	const char *cut_fault;  /* fault point that cuts the link at the 4th file, or NULL */
	uint64_t eager;         /* send at most this much of a file before it is pulled (0: all) */
	const char *text;       /* put in every frame as TEXT, or NULL */
	imgstream_done_cb cb;
	void *arg;
};

/* imgstream_start - start sending A->dir. Returns the stream or NULL with
 * errno set. Without A->follow the directory is complete now. */
struct imgstream *imgstream_start(const struct imgstream_args *a);
/* imgstream_writer_done - the writer has ended: send what is left, then
 * tell the callback. */
void imgstream_writer_done(struct imgstream *s);
/* imgstream_pull - the receiver wants file NAME now: send it (beyond
 * A->eager) up to byte UPTO (UINT64_MAX: all), also if it appears later. */
void imgstream_pull(struct imgstream *s, const char *name, uint64_t upto);
/* imgstream_fail - end S now with RC (< 0): its callback says so. For the
 * owner that learns the link is gone; a migration's streams are ended by
 * mig_out.c, which knows whether the hand-over allows it. */
void imgstream_fail(struct imgstream *s, int rc);
/* imgstream_free - stop (if still running; the callback is not called) and free. */
void imgstream_free(struct imgstream *s);
/* imgstream_bytes - bytes queued so far. */
uint64_t imgstream_bytes(const struct imgstream *s);

/* imgstream_manifest - after imgstream_writer_done(): put one string
 * "SIZE NAME" per image file into M under TAG (the files' final sizes, for
 * a receiver that starts using them before they are all there). */
struct mos_msg;
int imgstream_manifest(const struct imgstream *s, struct mos_msg *m, unsigned tag);
/* imgstream_parse_manifest - one such string: 0, or -EINVAL. */
int imgstream_parse_manifest(const char *entry, uint64_t *size, const char **name);

/* imgstream_store - the receiving side: write the DATA of frame chunk at
 * OFFSET (a frame without OFFSET appends) into DIR/NAME. NAME must be a plain
 * file name. Returns 0 or -errno. */
int imgstream_store(const char *dir, const char *name, size_t name_len, const void *data, size_t len,
		    const uint64_t *offset);

#endif
