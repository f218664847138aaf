/* criu.h - running the criu binary for the daemon: dump and restore of one
 * pod (a process tree under its own mosinit), asynchronously: the daemon's
 * loop learns of the end through criu_reaped(). Image directories live in
 * tmpfs (/dev/shm), never on a node's disk. */
#ifndef MOSD_CRIU_H
#define MOSD_CRIU_H

#include <stdbool.h>
#include <stddef.h>
#include <sys/types.h>

typedef void (*criu_done_cb)(void *arg, int wstatus);

/* criu_path - the criu binary: $MOS_CRIU, else /usr/local/sbin/criu, else PATH. */
const char *criu_path(void);
/* Post-copy and direct moves: the page link to the other node's criu
 * (pagelink.h), and the fd on which criu writes a byte once it is ready. */
struct criu_lazy {
	int ps_fd;
	int status_fd;
	int go_fd;     /* lazy-pages only, or -1: wait for a byte here first (CRIU patch 0003) */
};

/* criu_dump - `criu dump -t PID -D DIR --leave-stopped ...`. The tree is
 * left stopped on success and left running on failure. With LAZY (may be
 * NULL) memory pages stay behind: criu writes the other images, signals
 * LAZY->status_fd and serves pages on LAZY->ps_fd until the target has
 * them all, then exits. Returns the criu pid or -errno. */
pid_t criu_dump(pid_t pid, const char *dir, const struct criu_lazy *lazy, criu_done_cb cb, void *arg);
/* criu_checkpoint - like criu_dump, but the tree goes on running. */
pid_t criu_checkpoint(pid_t pid, const char *dir, criu_done_cb cb, void *arg);
/* criu_lazy_pages - the target's `criu lazy-pages` daemon fetching pages over
 * LAZY->ps_fd for a restore from DIR; ready when LAZY->status_fd gets a byte. */
pid_t criu_lazy_pages(const char *dir, const struct criu_lazy *lazy, criu_done_cb cb, void *arg);
/* criu_dump, criu_checkpoint, criu_restore and criu_lazy_pages return an id
 * (a pid, or a ticket for a dump waiting its turn: dumps run one at a time
 * per node); these take that id. */
/* criu_retarget - who is told when run ID ends, from now on. */
void criu_retarget(pid_t id, criu_done_cb cb, void *arg);
/* criu_kill - end run ID now (or drop it from the queue: then nobody is told). */
void criu_kill(pid_t id);
/* criu_dump_phase_done - a post-copy dump ID has left its process: the next
 * dump may start while it serves pages. */
void criu_dump_phase_done(pid_t id);
/* criu_restore - `criu restore -D DIR -d --pidfile DIR/restored.pid` with
 * each INHERIT[i] ("pipe:[N]") bound to FDS[i] of the child. HOW: the
 * CRIU_RESTORE_* flags: LAZY, memory comes from a lazy-pages daemon; STREAM,
 * images come from an image server on DIR/streamer-serve.sock (imgserve.h);
 * STOPPED, the restored tree is left stopped. */
#define CRIU_RESTORE_LAZY 0x1u
#define CRIU_RESTORE_STREAM 0x2u
#define CRIU_RESTORE_STOPPED 0x4u /* the tree stays stopped (SIGSTOP) */
pid_t criu_restore(const char *dir, const char *const *inherit, const int *fds, size_t n, unsigned how,
		   criu_done_cb cb, void *arg);
/* Where criu (as scripts/setup.sh builds it: RUNDIR) caches what it
 * learnt of the kernel; only used when it is a tmpfs directory. */
#define CRIU_KDAT_DIR "/dev/shm/mosexec-criu"
/* criu_prepare_kdat_dir - make CRIU_KDAT_DIR a root-only directory (one
 * made by anybody else is moved aside: criu trusts the file in it). */
void criu_prepare_kdat_dir(void);
/* criu_can_lazy - the start-up check found userfaultfd working (criu
 * lazy-pages can fill a restored process's memory): false until it has. */
bool criu_can_lazy(void);
/* criu_no_lazy - that check is over and found no userfaultfd: post-copy
 * and direct moves cannot come here. */
bool criu_no_lazy(void);
/* criu_reaped - route a reaped child: true if it was one of ours. */
bool criu_reaped(pid_t pid, int wstatus);
/* criu_log_tail - the last error line of DIR/NAME, for messages. */
void criu_log_tail(const char *dir, const char *name, char *buf, size_t len);
/* criu_rm_dir - remove an image directory and everything in it. */
void criu_rm_dir(const char *dir);
/* criu_rm_dir_later - the same off the daemon's thread: DIR is renamed
 * away at once and emptied by a helper thread (freeing a 1 GiB image takes
 * this VM ~1 s; 10 MiB took 13-16 ms inside a move's freeze). A daemon
 * that ends first leaves DIR.gone-N, which criu_clean_stale removes. */
void criu_rm_dir_later(const char *dir);
/* criu_clean_stale - remove the image directories a crashed daemon of NODE
 * left behind; returns how many. */
int criu_clean_stale(const char *node);
/* criu_images_dir - make a fresh tmpfs directory for JOB.RANK's images. */
int criu_images_dir(const char *node, const char *what, unsigned job, unsigned rank, char *out, size_t len);

#endif
