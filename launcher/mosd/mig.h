/* mig.h - live migration of one pod (a process tree under mosinit) between
 * nodes with CRIU. The home node validates and records; the source dumps
 * (leaving the tree stopped), streams the images into the target's tmpfs,
 * and hands over; the target restores with fresh stdio pipes and keeps the
 * restored tree stopped. The home then decides, once: commit (the target's
 * copy runs, the source's goes) or abort (the other way round). Source and
 * target both obey the home's word, asked for whenever the link between
 * them fails, so any failure leaves exactly one live copy. */
#ifndef MOSD_MIG_H
#define MOSD_MIG_H

#include "mosd.h"

enum mig_state { MIG_PREPARE, MIG_DUMP, MIG_SEND, MIG_RESTORE, MIG_HANDOVER, MIG_FINISHED };
const char *mig_state2str(enum mig_state s);

/* home side: a MIGRATE request (from a local user through any node). */
void mig_home_request(struct mos_msg *m);
/* home side: the source's report (MOVED with CODE). */
void mig_home_result(struct mos_msg *m);
/* source side */
void mig_source_start(struct mos_msg *m);
void mig_on_ready(struct mos_msg *m);
void mig_on_done(struct mos_msg *m);
void mig_on_pull(struct mos_msg *m);
/* mig_out_ended - P ended (was killed) while it moved from here: the move
 * is off, the target lets go of what it has, the home hears of both. */
void mig_out_ended(struct proc *p);
/* mig_forward_stdin - stdin for P that must follow it to its new node. */
bool mig_forward_stdin(struct proc *p, struct mos_msg *m);
/* target side */
void mig_on_prepare(struct mos_msg *m, int from);
void mig_on_data(struct mos_msg *m, int from);
void mig_on_commit(struct mos_msg *m, int from);
void mig_on_abort(struct mos_msg *m, int from);
bool mig_on_stdin(uint32_t jobid, uint32_t rank, const struct mos_field *d);
/* all three: MIG_DECIDE, a question to the home or its answer. */
void mig_on_decide(struct mos_msg *m, int from);
/* both: a link to node IDX broke; a child was reaped. */
void mig_peer_lost(int idx);
void mig_note_reaped(pid_t pid, int wstatus);
/* target: a process-table row (as ps.c's) for each restored copy that waits
 * for the home's word, in state "arriving". */
void mig_in_put_rows(struct mos_msg *rep);

/* requester side (local.c): route a REPLY with SEQ back to its client. */
uint64_t local_pending_add(struct mos_conn *c);
void local_on_reply(struct mos_msg *m);

/* fault.c: named fault-injection points (MOS_FAULT=a,b or `mosctl fault`). */
bool fault_injected(const char *name);
int fault_set(const char *spec);

#endif
