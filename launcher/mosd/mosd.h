/* mosd.h - the node daemon's shared state and the interfaces between its
 * files: mosd.c (start-up, listeners, gossip timer), peer.c (links to other
 * daemons), local.c (local users' requests), job.c (jobs whose home is this
 * node), proc.c (processes that run on this node), ps.c (cluster tables).
 * Everything runs on one libevent loop; no locks. */
#ifndef MOSD_H
#define MOSD_H

#include "conf.h"
#include "conn.h"
#include "msg.h"
#include "view.h"
#include <stdbool.h>
#include <stdint.h>
#include <sys/types.h>

struct event_base;
struct event;

/* A link to another node's daemon (our outgoing connection). */
struct peer {
	const struct mos_conf_node *node;
	struct mos_conn *conn;        /* NULL when not connected */
	uint64_t dead_since_ms;       /* last failed connect, 0 = not known dead */
};

/* Where a rank of a home job stands. */
enum rank_state { RANK_PENDING, RANK_RUNNING, RANK_MIGRATING, RANK_EXITED };

struct io_hold;

struct rank {
	int node;                     /* index into conf nodes */
	uint64_t next_seq;            /* next IO sequence number to forward */
	struct io_hold *held;         /* IO that arrived ahead of its turn */
	bool exit_wait;               /* EXIT came before the output it follows */
	uint64_t exit_seq;
	int exit_ws;
	uint32_t pid;                 /* on that node */
	enum rank_state state;
	int wstatus;
	uint32_t migrations;
};

/* A job whose home is this node: mosexec is attached here. */
struct job {
	struct job *next;
	uint32_t id;
	uid_t uid;
	gid_t gid;
	struct mos_conn *client;      /* mosexec; NULL once gone */
	uint32_t nprocs, n_exited, n_started;
	uint32_t flags;
	struct rank *ranks;
	int first_bad;                /* first non-zero shell-style exit code, or 0 */
	bool killing;
	struct mos_msg spawn_tmpl;    /* the SPAWN fields every rank shares */
	uint32_t *rank_app;           /* per rank: app context index */
	char ***app_argv;             /* per app context */
	uint32_t n_apps;
	char *name;                   /* argv[0] of the first app */
	bool *app_mpi;                /* per app context: an MPI program */
	uint32_t *mpi_app_of;         /* per app context: index among MPI apps */
	uint32_t *mpi_rank_of;        /* per rank: MPI rank, UINT32_MAX if not MPI; NULL: no MPI */
	uint32_t mpi_size;
	struct mos_msg submit;        /* the SUBMIT as it came: checkpoints keep it */
	char *restart_dir;            /* a restart: ranks come from this checkpoint */
	struct mos_msg restart_meta;
};

/* A process running on this node, whatever its home. */
enum proc_state { PROC_RUNNING, PROC_STOPPED, PROC_MIGRATING, PROC_EXITED };

struct proc {
	struct proc *next;
	uint32_t jobid, rank, nprocs;
	char home[MOS_NAME_MAX];
	uid_t uid;
	pid_t pid;                    /* host PID of its mosinit (pod root) */
	enum proc_state state;
	struct bufferevent *out, *err, *in;
	int status_fd;
	struct event *status_ev;
	bool reaped, out_eof, err_eof, have_status, in_eof, stdin_closed;
	uint64_t io_seq;              /* next IO sequence number: home orders output by it */
	struct mig_out *mig;          /* migration under way, or NULL */
	void *pmix_ns;                /* its MPI namespace here (pmixhost.c), or NULL */
	uint32_t mpi_rank;
	int wstatus;
	uint32_t migrations;
	uint64_t start_ms;
	char *cmd;                    /* for tables */
	/* post-copy: its memory still comes from this node (criu lazy-pages
	 * running here); it cannot be dumped until the last page is in */
	bool pages_pending;
	int pages_from;               /* node index, while pages_pending */
};

struct mosd {
	struct event_base *base;
	struct mos_conf *conf;
	const struct mos_conf_node *self;
	unsigned char key[MOS_KEY_LEN];
	struct peer *peers;           /* one per conf node; self's unused */
	struct job *jobs;
	struct proc *procs;
	struct mos_view view;
	uint64_t rng;
	uint32_t next_job_seq;
	const char *mosinit;
	struct event *gossip_ev, *sigchld_ev, *sigterm_ev, *sigint_ev;
};

extern struct mosd mosd;

/* peer.c */
int peer_init(void);
void peer_fini(void);
/* peer_send - deliver M to node IDX (to ourselves through the same
 * dispatcher). 0 or -errno (-EHOSTDOWN: cannot connect). */
int peer_send(int idx, struct mos_msg *m);
int peer_index(const char *name);
bool peer_known_dead(int idx);
/* peer_conn - our current link to node IDX, or NULL (never connects). */
struct mos_conn *peer_conn(int idx);
/* peer_drop - close our link to node IDX as if it broke (fault injection). */
void peer_drop(int idx);
/* peer_accept - wrap an accepted TCP connection from another daemon. */
void peer_accept(int fd);
/* peer_lost - a node's link broke: jobs and processes react. */
void peer_lost(int idx);
void peer_dispatch(struct mos_conn *c, struct mos_msg *m, int from);

/* local.c */
void local_accept(int fd);

/* job.c - home side */
int job_submit(struct mos_conn *client, struct mos_msg *m, uid_t uid, gid_t gid, pid_t pid);
struct job *job_find(uint32_t id);
void job_on_spawned(struct mos_msg *m);
void job_on_io(struct mos_msg *m);
void job_on_exit(struct mos_msg *m);
void job_client_gone(struct job *j);
int job_signal(struct job *j, int sig, int64_t rank);
void job_kill(struct job *j, const char *why);
void job_node_lost(int idx);
void job_stdin(struct job *j, struct mos_msg *m);
/* job_on_moved - after MOVED: a bound rank is bound again on its new node. */
void job_on_moved(struct mos_msg *m);
/* job_bind_again - rank R of J was brought back by CRIU (moved, restarted):
 * if the job is bound, its node binds it again. */
void job_bind_again(struct job *j, uint32_t r);
/* job_restart - start the job of a checkpoint: SUBMIT is its original
 * description, META the manifest (ckpt.c); ranks are restored from DIR. */
int job_restart(struct mos_conn *client, struct mos_msg *submit, struct mos_msg *meta, const char *dir,
		uid_t uid, gid_t gid, pid_t pid);
/* job_notice - a line for the user's terminal (mosexec prints it). */
void job_notice(struct job *j, const char *text);
/* job_fail - end J: STATUS becomes its exit status unless one came first. */
void job_fail(struct job *j, int status, const char *why);

/* proc.c - where side */
int proc_init(void);
void proc_fini(void);
void proc_on_spawn(struct mos_msg *m);
void proc_on_signal(struct mos_msg *m);
void proc_on_kill_job(struct mos_msg *m);
void proc_on_stdin(struct mos_msg *m);
void proc_reap(void);
void proc_home_lost(const char *home);
void proc_kill_all(void);
unsigned proc_count_running(void);
struct proc *proc_find(uint32_t jobid, uint32_t rank);
/* proc_find_pid - by host PID of the pod root or of the job's process. */
struct proc *proc_find_pid(pid_t pid);
void proc_free(struct proc *p);
int proc_make_pipes(int fds[4][2]);
int proc_attach_fds(struct proc *p, int fds[4][2]);
/* proc_drain_output - send home whatever output sits in P's pipes now. */
void proc_drain_output(struct proc *p);
/* proc_on_reaped - P's pod root ended with wait status WS. */
void proc_on_reaped(struct proc *p, int ws);
/* proc_usage_of - CPU (permille of a core since start) and RSS of P's job. */
void proc_usage_of(struct proc *p, uint32_t *cpu_permille, uint64_t *rss);

/* ps.c */
void ps_request(struct mos_conn *client, struct mos_msg *m);
void ps_on_peer_req(struct mos_conn *c, struct mos_msg *m);
void ps_on_peer_rep(struct mos_msg *m);
void ps_client_gone(struct mos_conn *c);
/* ps_collect - gather every node's process rows as ps_request does and call
 * CB(ARG, ROWS, MISSING) once on the loop (perhaps before this returns):
 * ROWS is a PS_REP message (per row JOBID first, then RANK UID HOME NODE PID
 * STATE CPU RSS MIGRATIONS ARGV), NULL if it could not be built; MISSING
 * names the nodes that did not answer in time ("" if all did). Both valid
 * during the call only. 0, or -ENOMEM and CB is not called. */
typedef void (*ps_collect_cb)(void *arg, struct mos_msg *rows, const char *missing);
int ps_collect(ps_collect_cb cb, void *arg);
/* ps_put_row - one such row of this node (NODE is this node's name). */
void ps_put_row(struct mos_msg *rep, uint32_t jobid, uint32_t rank, uint32_t uid, const char *home, pid_t pid,
		const char *state, uint32_t cpu, uint64_t rss, uint32_t migrations, const char *cmd);

/* mosd.c */
void gossip_on_load(struct mos_msg *m);
void mosd_send_reply(struct mos_conn *c, int code, const char *text);

#endif
