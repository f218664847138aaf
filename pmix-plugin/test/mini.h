/* mini.h - the test launcher of pmix-plugin (not part of mosd): K launcher
 * processes, one PMIx server each, play K nodes on one host. Node 0 is the
 * hub of a star over a unix socket; it combines fence blobs, routes direct
 * modex requests and answers, and ends the job everywhere. */
#ifndef MINI_H
#define MINI_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

enum mini_msg {
	MINI_HELLO = 1,	/* from: node id */
	MINI_FENCE,	/* id, payload: this node's blob */
	MINI_FENCE_DONE,/* id, status, payload: combined blob */
	MINI_DMDX_REQ,	/* id (requester's req_id), rank, from: requester */
	MINI_DMDX_RESP,	/* id, status, from: requester, payload */
	MINI_ABORT,	/* status: a rank aborted or failed, end the job */
	MINI_KILL,	/* status: hub -> all: kill your ranks */
	MINI_DONE,	/* status: this node's ranks are all gone */
	MINI_EXIT,	/* status: hub -> all: the job's exit status, leave */
};

/* the job's status when a fence timed out */
#define MINI_TIMEOUT_STATUS 124

enum { MINI_CONNECTED = 1, MINI_FINALIZED = 2 };

struct mini_hdr {
	uint32_t type, from, rank;
	int32_t status;
	uint64_t id;
	uint32_t len;
} __attribute__((packed));

struct mini {
	struct event_base *base;
	const char *nspace;
	uint32_t nodeid, nnodes, nprocs;
	uint32_t *rank_node;
	uint32_t nodes_used;	/* nodes that hold ranks */
	int fence_timeout;	/* s, hub only: 0 = none */
	const char *rdv;	/* hub's unix socket */
	/* ranks of this node */
	pid_t *pids;
	uint32_t *ranks;
	uint8_t *state;		/* MINI_CONNECTED | MINI_FINALIZED */
	uint32_t nlocal, nalive, nconnected;
	bool killing;
	int job_status;		/* first failure or abort status */
	int exit_status;	/* what this launcher returns */
};

extern struct mini mini;

/* mini_hub.c */
int mini_net_init(void);
void mini_net_fini(void);
void mini_send(uint32_t to, uint32_t type, uint64_t id, uint32_t rank, uint32_t from,
	       int32_t status, const void *data, size_t len);
/* host side of the library's ops */
void mini_fence(void *ctx, const char *nspace, uint64_t id, const void *data, size_t len,
		int timeout_s);
void mini_dmodex(void *ctx, const char *nspace, uint32_t rank, uint64_t req_id);
/* end the job on every node with STATUS (first caller wins) */
void mini_job_end(int status);
/* this node's ranks are gone */
void mini_node_done(void);

/* mini_launch.c */
void mini_kill_ranks(void);
void mini_leave(int status);

#endif
