/* conn.h - a framed, optionally authenticated message connection on the
 * daemon's libevent loop. Peers (TCP) authenticate with the cluster key:
 * HELLO {node, nonce} each way, then every frame carries a Poly1305 MAC
 * under a per-direction session key derived from both nonces, and a strict
 * sequence number, so a frame cannot be forged, altered or replayed.
 * Local clients (unix socket) are unauthenticated; mosd trusts SO_PEERCRED. */
#ifndef MOS_CONN_H
#define MOS_CONN_H

#include "msg.h"
#include <stdbool.h>
#include <sys/types.h>

struct event_base;
struct mos_conn;

#define MOS_KEY_LEN 32

/* Called for each decoded message; the message is freed after it returns. */
typedef void (*mos_conn_msg_cb)(struct mos_conn *c, struct mos_msg *m, void *arg);
/* Called once when the connection ends: 0 on orderly EOF, else -errno
 * (-EACCES: authentication failed, -EPROTO/-EBADMSG: bad frame). The callee
 * must mos_conn_free() it (not necessarily at once). */
typedef void (*mos_conn_close_cb)(struct mos_conn *c, int err, void *arg);

/* mos_conn_new - wrap connected (or connecting) socket FD; the conn owns FD.
 * KEY non-NULL turns on the peer handshake as SELF_NAME. Messages sent
 * before the handshake completes are queued. NULL on ENOMEM. */
struct mos_conn *mos_conn_new(struct event_base *base, int fd, const unsigned char *key,
			      const char *self_name, mos_conn_msg_cb on_msg,
			      mos_conn_close_cb on_close, void *arg);
/* mos_conn_connect_tcp - start a non-blocking connect to ADDR:PORT. */
struct mos_conn *mos_conn_connect_tcp(struct event_base *base, const char *addr, unsigned port,
				      const unsigned char *key, const char *self_name,
				      mos_conn_msg_cb on_msg, mos_conn_close_cb on_close, void *arg);
/* mos_conn_send - finish M's header, MAC it and queue it. M stays the
 * caller's. 0, or -EPIPE when the conn is closed, -ENOMEM. */
int mos_conn_send(struct mos_conn *c, struct mos_msg *m);
/* mos_conn_send_error - send ERROR {CODE, TEXT}. */
int mos_conn_send_error(struct mos_conn *c, int code, const char *fmt, ...)
	__attribute__((format(printf, 3, 4)));
/* mos_conn_close_after_flush - stop reading; free once the output drained. */
void mos_conn_close_after_flush(struct mos_conn *c);
void mos_conn_free(struct mos_conn *c);

/* The authenticated peer node's name ("" before HELLO or for local clients). */
const char *mos_conn_peer_name(const struct mos_conn *c);
bool mos_conn_is_authenticated(const struct mos_conn *c);
bool mos_conn_is_closed(const struct mos_conn *c);
/* mos_conn_peercred - SO_PEERCRED of a unix socket conn: 0 or -errno. */
int mos_conn_peercred(const struct mos_conn *c, pid_t *pid, uid_t *uid, gid_t *gid);
void *mos_conn_get_data(const struct mos_conn *c);
void mos_conn_set_data(struct mos_conn *c, void *data);
size_t mos_conn_output_pending(const struct mos_conn *c);
/* mos_conn_on_drain - call CB(ARG) whenever the output queue has drained to
 * LOW bytes or less (CB NULL: stop). For senders of bulk data that keep only
 * a few megabytes queued. */
void mos_conn_on_drain(struct mos_conn *c, void (*cb)(void *arg), void *arg, size_t low);

/* mos_key_load - read a 32-byte (or longer, hashed) key file that only root
 * may read. 0 or -errno; a message in err. */
int mos_key_load(const char *path, unsigned char key[MOS_KEY_LEN], char *err, size_t errlen);

#endif
