/* ckpt.h - checkpoints of whole jobs (`mosctl checkpoint JOB [DIR]`) written
 * to a full node's disk, and restarts from them (`mosexec --restart DIR`).
 * A checkpoint is a directory: rank.N/ with each rank's CRIU images and
 * job.meta, a CKPT_META message (the job's original SUBMIT, its owner, and
 * per rank the stdio pipe ids and output sequence). Root-owned, mode 0700. */
#ifndef MOSD_CKPT_H
#define MOSD_CKPT_H

#include "mosd.h"

void ckpt_home_request(struct mos_msg *m);     /* CKPT kind 0, at the home */
void ckpt_on_msg(struct mos_msg *m, int from);  /* CKPT kinds 1, 2 */
void ckpt_on_data(struct mos_msg *m, int from);
void ckpt_on_done(struct mos_msg *m, int from);
/* ckpt_restart - a local user's RESTART: check the checkpoint and start it
 * as a new job attached to CLIENT. */
void ckpt_restart(struct mos_conn *client, struct mos_msg *m, uid_t uid, gid_t gid, pid_t pid);
/* ckpt_import_rank - restore rank R of restarted job J on its node. */
int ckpt_import_rank(struct job *j, uint32_t r);
/* Answers of a target to an import (no migration record on this node). */
bool ckpt_import_ready(struct mos_msg *m);
bool ckpt_import_done(struct mos_msg *m);

#endif
