/* pagelink.h - the TCP connection that carries a move's memory between
 * criu's page server on the source and criu lazy-pages on the target
 * (post-copy and direct moves, `criu --ps-socket`). The two daemons make it
 * and prove to each other that they hold the cluster key before criu gets
 * it, so no port waits for just anybody while a process's memory is served:
 * the source listens on its node's address for the target's address only,
 * for one connection that must bring a token bound to this move, and
 * answers with its own. The pages then flow as criu sends them (like the
 * peer links' data, not encrypted). */
#ifndef MOSD_PAGELINK_H
#define MOSD_PAGELINK_H

#include <stdint.h>

struct pagelink;
/* CB(ARG, FD): the link is up and proven (FD >= 0, blocking, now the
 * caller's), or it failed (-errno). Called once; free the pagelink after. */
typedef void (*pagelink_cb)(void *arg, int fd);

/* pagelink_listen - the source: listen on ADDR, port chosen by the kernel
 * (*PORT), for one connection from PEER_ADDR proving move MOVE_ID between
 * SOURCE and TARGET. NULL with errno set. */
struct pagelink *pagelink_listen(const char *addr, const char *peer_addr, uint64_t move_id, const char *source,
				 const char *target, unsigned *port, pagelink_cb cb, void *arg);
/* pagelink_connect - the target: connect from LOCAL_ADDR (the address the
 * source lets in, whatever route the kernel would pick) to ADDR:PORT for
 * the same move. */
struct pagelink *pagelink_connect(const char *local_addr, const char *addr, unsigned port, uint64_t move_id,
				  const char *source, const char *target, pagelink_cb cb, void *arg);
/* pagelink_free - stop (no callback); a socket not handed over is closed. */
void pagelink_free(struct pagelink *l);

#endif
