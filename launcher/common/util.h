/* util.h - small helpers shared by the daemon and the tools: clocks, local
 * sockets (abstract "@name" or a path), wait-status text, job ids. */
#ifndef MOS_UTIL_H
#define MOS_UTIL_H

#include <stddef.h>
#include <stdint.h>
#include <stdbool.h>
#include <sys/types.h>

#define MOS_ENV_SOCKET "MOSD_SOCKET"

uint64_t mos_now_ms(void);      /* CLOCK_MONOTONIC */
/* mos_local_socket_path - $MOSD_SOCKET, else the default "@mosd". */
const char *mos_local_socket_path(void);
/* mos_unix_listen / mos_unix_connect - PATH "@x" is abstract (per network
 * namespace). Return an fd (CLOEXEC) or -errno. */
int mos_unix_listen(const char *path);
int mos_unix_connect(const char *path);
/* mos_status_str - "exited with status 3" / "killed by signal 9 (Killed)". */
const char *mos_status_str(int wstatus, char *buf, size_t len);
/* mos_size_str - BYTES as "812K", "1.5M" or "2.0G" for tables. */
const char *mos_size_str(uint64_t bytes, char *buf, size_t len);
/* mos_status_exit_code - the shell-style code: status, or 128+signal. */
int mos_status_exit_code(int wstatus);

/* Job ids carry their home node: (home_index + 1) * MOS_JOBID_SPAN + seq. */
#define MOS_JOBID_SPAN 10000u
static inline unsigned mos_jobid_home(uint32_t jobid) { return jobid / MOS_JOBID_SPAN - 1; }
/* mos_parse_job_rank - "JOB" or "JOB.RANK"; rank = -1 when absent. 0 or -EINVAL. */
int mos_parse_job_rank(const char *s, uint32_t *job, int64_t *rank);
/* mos_sig_parse - "TERM", "SIGTERM" or "15" -> 15; -EINVAL otherwise. */
int mos_sig_parse(const char *s);

/* Blocking helpers for the CLIs: one frame out, one frame in. */
struct mos_msg;
int mos_sync_send(int fd, struct mos_msg *m);
/* mos_sync_recv - read one frame into M (decoded). 0, -EPIPE at EOF, or -errno. */
int mos_sync_recv(int fd, struct mos_msg *m, char *err, size_t errlen);

/* mos_ask - send REQ (freed here) to this node's mosd and wait for its
 * REPLY/ERROR {CODE, TEXT}. Prints "WHO: TEXT" on stderr when CODE is not 0,
 * the TEXT (or OK_TEXT) on stdout when it is 0 and OK_TEXT is not NULL.
 * Returns the exit status for a CLI: 0, or 1. */
int mos_ask(const char *who, struct mos_msg *req, const char *ok_text);

#endif
