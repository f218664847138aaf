/* mig_int.h - what the migration files share (mig.c: home and common,
 * mig_out.c: the source, mig_in.c: the target). */
#ifndef MOSD_MIG_INT_H
#define MOSD_MIG_INT_H

#include "mig.h"
#include <event2/util.h>

#define MIG_TIMEOUT_S 120
#define CHUNK (1u << 20)
/* COMMIT flags */
#define MIG_COMMIT_STDIN_CLOSED 0x1u
#define MIG_COMMIT_LAZY 0x2u
#define MIG_COMMIT_FULL 0x4u /* (with LAZY) every page is in before the hand-over */

/* criu_noop - for a criu run whose end nobody waits for any more. */
void mig_criu_noop(void *arg, int ws);

/* mig_send_to - a {JOBID, RANK, CODE[, TEXT]} message of TYPE to node IDX. */
int mig_send_to(int idx, unsigned type, uint32_t jobid, uint32_t rank, int code, const char *text);
/* mig_crash_now - fault injection: this daemon dies on the spot. */
void mig_crash_now(evutil_socket_t fd, short what, void *arg);
/* mig_reply_to - REPLY {SEQ, CODE, TEXT} to the node REQUESTER, whose local
 * client waits for it (local.c routes it). */
void mig_reply_to(const char *requester, uint64_t seq, int code, const char *text);
void mig_out_peer_lost(int idx);
/* MIG_DECIDE kinds: questions to the home, and its answers */
enum { MIG_ASK_COMMIT = 1, MIG_ASK_ABORT, MIG_ASK_QUERY, MIG_DECIDED_COMMIT, MIG_DECIDED_ABORT };
/* mig_ask_home - ask HOME about the move ATTEMPT (a random id the source
 * gives each try) of JOBID.RANK to node TARGET; the answer comes as
 * mig_out_decided()/mig_in_decided(), at once when we are the home. */
int mig_ask_home(const char *home, unsigned kind, uint32_t jobid, uint32_t rank, uint64_t attempt, int target);
void mig_out_decided(uint32_t jobid, uint32_t rank, uint64_t attempt, bool commit);
void mig_in_decided(uint32_t jobid, uint32_t rank, uint64_t attempt, bool commit);
/* mig_tree_has_fd - does a task of the pod rooted at PID hold a file whose
 * /proc link reads LINK (e.g. "anon_inode:[timerfd]")? */
bool mig_tree_has_fd(pid_t pid, const char *link);
/* mig_tree_has_lock - does a task of the pod rooted at PID hold a file lock?
 * PATH gets the locked file's name. */
bool mig_tree_has_lock(pid_t pid, char *path, size_t len);
/* mig_resume_tree - SIGCONT every task of the pod rooted at PID. */
void mig_resume_tree(pid_t pid);
void mig_in_peer_lost(int idx);

#endif
