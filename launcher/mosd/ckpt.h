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
/* ckpt_request - checkpoint job JOBID into DIR (NULL: the default place) on
 * behalf of UID, as `mosctl checkpoint` does; the home checks UID. DONE(ARG,
 * code, text) is called once with the home's answer (0 and where it went, or
 * -errno and why), maybe from inside this call. -errno without calling DONE
 * when the request cannot be sent. */
int ckpt_request(uint32_t jobid, uid_t uid, const char *dir, void (*done)(void *arg, int code, const char *text),
		 void *arg);
/* ckpt_on_reply - a REPLY to a ckpt_request of this node: DONE is called,
 * true. False for another's REPLY. */
bool ckpt_on_reply(struct mos_msg *m);
/* ckpt_restart - a local user's RESTART: check the checkpoint and start it
 * as a new job attached to CLIENT. */
void ckpt_restart(struct mos_conn *client, struct mos_msg *m, uid_t uid, gid_t gid, pid_t pid);
/* ckpt_peer_lost - the link to node IDX is gone: images on their way there
 * (a checkpoint's, a restart's) stop, and their requests fail. */
void ckpt_peer_lost(int idx);
/* ckpt_import_rank - restore rank R of restarted job J on its node. */
int ckpt_import_rank(struct job *j, uint32_t r);
/* Answers of a target to an import (no migration record on this node). */
bool ckpt_import_ready(struct mos_msg *m);
bool ckpt_import_done(struct mos_msg *m);

#endif
