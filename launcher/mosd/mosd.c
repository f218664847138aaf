/* mosd.c - the node daemon: start-up (a goto ladder that unwinds), the TCP
 * listener for peers, the unix listener for local users, signals, and the
 * load gossip timer (MOSIX-style: each tick sends this node's load and a few
 * entries of its view to `fanout` random peers: constant cost per node). */
#include "mosd.h"
#include "log.h"
#include "pmixhost.h"
#include "criu.h"
#include "util.h"
#include <arpa/inet.h>
#include <errno.h>
#include <malloc.h>
#include <event2/event.h>
#include <event2/listener.h>
#include <getopt.h>
#include <limits.h>
#include <netinet/in.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <unistd.h>

struct mosd mosd;
static struct evconnlistener *tcp_lis, *unix_lis;
static const char *pidfile;

void mosd_send_reply(struct mos_conn *c, int code, const char *text)
{
	struct mos_msg r;
	if (mos_msg_init(&r, MOS_MSG_REPLY))
		return;
	mos_msg_put_i32(&r, MOS_T_CODE, code);
	if (text)
		mos_msg_put_str(&r, MOS_T_TEXT, text);
	mos_conn_send(c, &r);
	mos_msg_free(&r);
}

static void on_tcp_accept(struct evconnlistener *l, evutil_socket_t fd, struct sockaddr *sa, int len, void *arg)
{
	peer_accept(fd);
}

static void on_unix_accept(struct evconnlistener *l, evutil_socket_t fd, struct sockaddr *sa, int len, void *arg)
{
	local_accept(fd);
}

/* --- gossip ------------------------------------------------------------- */

static void self_entry(struct mos_load_entry *e)
{
	memset(e, 0, sizeof(*e));
	snprintf(e->node, sizeof(e->node), "%s", mosd.self->name);
	e->ncpus = mosd.self->cpus;
	e->nprocs = proc_count_running();
	e->load_milli = e->nprocs * 1000;
	e->role = mosd.self->role;
	e->stamp_ms = mos_now_ms();
}

static void put_entry(struct mos_msg *m, const struct mos_load_entry *e, uint64_t now)
{
	mos_msg_put_str(m, MOS_T_NODE, e->node);
	mos_msg_put_u32(m, MOS_T_LOAD, e->load_milli);
	mos_msg_put_u32(m, MOS_T_NCPUS, e->ncpus);
	mos_msg_put_u32(m, MOS_T_NPROCS, e->nprocs);
	mos_msg_put_u32(m, MOS_T_ROLE, e->role);
	mos_msg_put_u32(m, MOS_T_AGE_MS, (uint32_t)(now > e->stamp_ms ? now - e->stamp_ms : 0));
}

static void gossip_tick(evutil_socket_t fd, short what, void *arg)
{
	struct mos_load_entry self;
	uint64_t now = mos_now_ms();
	size_t n = mosd.conf->n_nodes, fan = mosd.conf->gossip.fanout;

	self_entry(&self);
	mos_view_update(&mosd.view, &self);
	mos_view_expire(&mosd.view, now, mosd.conf->gossip.max_age_ms, mosd.self->name);

	struct mos_msg m;
	if (mos_msg_init(&m, MOS_MSG_LOAD))
		return;
	put_entry(&m, &self, now);
	size_t idx[4];
	size_t k = mos_view_pick(&mosd.view, mosd.self->name, 4, &mosd.rng, idx);
	for (size_t i = 0; i < k; i++)
		put_entry(&m, &mosd.view.e[idx[i]], now);
	/* Targets are drawn from the configuration, not the view, so that
	 * nodes nobody has heard of yet are found. */
	for (size_t i = 0; i < fan && n > 1; i++) {
		size_t t = mos_rng_next(&mosd.rng) % n;
		if (&mosd.conf->nodes[t] == mosd.self)
			t = (t + 1) % n;
		peer_send((int)t, &m);
	}
	mos_msg_free(&m);
}

/* Once at start: tell every node we are up, so that none of them keeps us
 * marked down from an attempt made before we listened. */
static void announce(void)
{
	struct mos_load_entry self;
	struct mos_msg m;
	self_entry(&self);
	mos_view_update(&mosd.view, &self);
	if (mos_msg_init(&m, MOS_MSG_LOAD))
		return;
	put_entry(&m, &self, mos_now_ms());
	for (size_t i = 0; i < mosd.conf->n_nodes; i++)
		if (&mosd.conf->nodes[i] != mosd.self)
			peer_send((int)i, &m);
	mos_msg_free(&m);
}

void gossip_on_load(struct mos_msg *m)
{
	uint64_t now = mos_now_ms();
	struct mos_load_entry e;
	bool have = false;

	for (size_t i = 0; i <= m->n_fields; i++) {
		const struct mos_field *f = i < m->n_fields ? &m->fields[i] : NULL;
		if ((!f || f->tag == MOS_T_NODE) && have) {
			if (strcmp(e.node, mosd.self->name) && mos_conf_node_find(mosd.conf, e.node)) {
				int idx = peer_index(e.node);
				if (mos_view_update(&mosd.view, &e) > 0 && idx >= 0)
					mosd.peers[idx].dead_since_ms = 0;
			}
			have = false;
		}
		if (!f)
			break;
		switch (f->tag) {
		case MOS_T_NODE:
			memset(&e, 0, sizeof(e));
			snprintf(e.node, sizeof(e.node), "%.*s", (int)(f->len < 63 ? f->len : 63), f->data);
			e.stamp_ms = now;
			have = true;
			break;
		case MOS_T_LOAD: e.load_milli = mos_field_u32(f); break;
		case MOS_T_NCPUS: e.ncpus = mos_field_u32(f); break;
		case MOS_T_NPROCS: e.nprocs = mos_field_u32(f); break;
		case MOS_T_ROLE: e.role = mos_field_u32(f); break;
		case MOS_T_AGE_MS: {
			uint32_t age = mos_field_u32(f);
			e.stamp_ms = now > age ? now - age : 0;
			break;
		}
		}
	}
}

/* --- signals ------------------------------------------------------------ */

static void on_sigchld(evutil_socket_t s, short w, void *a) { proc_reap(); }

static void on_sigterm(evutil_socket_t s, short w, void *a)
{
	pr_info("signal %d: shutting down, ending the processes of this node", (int)s);
	proc_kill_all();
	event_base_loopexit(mosd.base, NULL);
}

/* --- start-up ----------------------------------------------------------- */

static int listen_tcp(void)
{
	struct sockaddr_in sin = { .sin_family = AF_INET, .sin_port = htons(mosd.conf->port) };
	if (inet_pton(AF_INET, mosd.self->address, &sin.sin_addr) != 1) {
		pr_err("node %s: address '%s' is not an IPv4 address", mosd.self->name, mosd.self->address);
		return -EINVAL;
	}
	tcp_lis = evconnlistener_new_bind(mosd.base, on_tcp_accept, NULL,
					  LEV_OPT_CLOSE_ON_FREE | LEV_OPT_REUSEABLE | LEV_OPT_CLOSE_ON_EXEC, 128,
					  (struct sockaddr *)&sin, sizeof(sin));
	if (!tcp_lis) {
		int e = errno;
		pr_err("cannot listen on %s:%u: %s", mosd.self->address, mosd.conf->port, strerror(e));
		return -e;
	}
	return 0;
}

static int listen_unix(void)
{
	int fd = mos_unix_listen(mosd.conf->socket);
	if (fd < 0) {
		pr_err("cannot listen on unix socket %s: %s", mosd.conf->socket, strerror(-fd));
		return fd;
	}
	evutil_make_socket_nonblocking(fd);
	unix_lis = evconnlistener_new(mosd.base, on_unix_accept, NULL, LEV_OPT_CLOSE_ON_FREE, -1, fd);
	return unix_lis ? 0 : -ENOMEM;
}

static const char *find_mosinit(void)
{
	static char buf[PATH_MAX];
	const char *e = getenv("MOS_MOSINIT");
	if (e && *e)
		return e;
	ssize_t n = readlink("/proc/self/exe", buf, sizeof(buf) - 16);
	if (n > 0) {
		buf[n] = 0;
		char *slash = strrchr(buf, '/');
		if (slash) {
			strcpy(slash + 1, "mosinit");
			if (access(buf, X_OK) == 0)
				return buf;
		}
	}
	return PKGLIBEXECDIR "/mosinit";
}

static void usage(FILE *out)
{
	fprintf(out, "usage: mosd --config FILE [--node NAME] [--pidfile FILE] [--log-level L] [--syslog]\n"
		     "  --node defaults to this host's name; the node must be in the config.\n");
}

static int parse_args(int argc, char **argv, const char **config, const char **node, int *level, int *use_syslog)
{
	static const struct option opts[] = {
		{ "config", required_argument, 0, 'c' }, { "node", required_argument, 0, 'n' },
		{ "pidfile", required_argument, 0, 'p' }, { "log-level", required_argument, 0, 'l' },
		{ "syslog", no_argument, 0, 's' }, { "help", no_argument, 0, 'h' }, { 0, 0, 0, 0 }
	};
	int c;
	while ((c = getopt_long(argc, argv, "c:n:p:l:sh", opts, NULL)) != -1) {
		switch (c) {
		case 'c': *config = optarg; break;
		case 'n': *node = optarg; break;
		case 'p': pidfile = optarg; break;
		case 'l':
			if ((*level = mos_log_level_parse(optarg)) < 0) {
				fprintf(stderr, "mosd: --log-level: expected error|warn|info|debug, got '%s'\n", optarg);
				return -1;
			}
			break;
		case 's': *use_syslog = 1; break;
		case 'h': usage(stdout); exit(0);
		default: usage(stderr); return -1;
		}
	}
	if (!*config || optind != argc) {
		usage(stderr);
		return -1;
	}
	return 0;
}

int main(int argc, char **argv)
{
	const char *config = NULL, *node = NULL;
	int level = -1, use_syslog = 0, rc = 1;
	char err[1024], host[256];

	if (parse_args(argc, argv, &config, &node, &level, &use_syslog))
		return 2;
	mos_log_init("mosd", NULL, level < 0 ? MOS_LOG_INFO : level, use_syslog);
	if (mos_conf_load(config, &mosd.conf, err, sizeof(err))) {
		pr_err("%s", err);
		return 1;
	}
	if (level < 0 && mosd.conf->log_level)
		mos_log_init("mosd", NULL, mos_log_level_parse(mosd.conf->log_level), use_syslog);
	if (!node && gethostname(host, sizeof(host)) == 0)
		node = host;
	if (!node || !(mosd.self = mos_conf_node_find(mosd.conf, node))) {
		pr_err("%s: this node ('%s') is not in the cluster; pass --node NAME", config, node ? node : "?");
		goto out_conf;
	}
	mos_log_set_node(mosd.self->name);
	if (mos_key_load(mosd.conf->key_file, mosd.key, err, sizeof(err))) {
		pr_err("%s", err);
		goto out_conf;
	}
	signal(SIGPIPE, SIG_IGN);
	/* image frames are 1 MiB: served from the heap and kept there, not an
	 * mmap and fresh zeroed pages for each one (a third of a move's cost) */
	mallopt(M_MMAP_THRESHOLD, 32 << 20);
	mallopt(M_TRIM_THRESHOLD, 64 << 20);
	prctl(PR_SET_CHILD_SUBREAPER, 1);
	mosd.mosinit = find_mosinit();
	criu_prepare_kdat_dir();
	int stale = criu_clean_stale(mosd.self->name);
	if (stale)
		pr_warn("removed %d migration image directories left by an earlier run", stale);
	mosd.rng = ((uint64_t)getpid() << 32) ^ mos_now_ms() ^ (uint64_t)mosd.self->index * 0x9e3779b97f4a7c15ull;
	if (!mosd.rng)
		mosd.rng = 1;
	mos_view_init(&mosd.view);
	if (!(mosd.base = event_base_new()))
		goto out_view;
	if (peer_init())
		goto out_base;
	if (proc_init())
		goto out_peer;
	pmixhost_init();
	if (listen_tcp())
		goto out_proc;
	if (listen_unix())
		goto out_tcp;
	mosd.sigchld_ev = evsignal_new(mosd.base, SIGCHLD, on_sigchld, NULL);
	mosd.sigterm_ev = evsignal_new(mosd.base, SIGTERM, on_sigterm, NULL);
	mosd.sigint_ev = evsignal_new(mosd.base, SIGINT, on_sigterm, NULL);
	mosd.gossip_ev = event_new(mosd.base, -1, EV_PERSIST, gossip_tick, NULL);
	struct timeval tv = { mosd.conf->gossip.interval_ms / 1000, (mosd.conf->gossip.interval_ms % 1000) * 1000 };
	if (!mosd.sigchld_ev || !mosd.sigterm_ev || !mosd.sigint_ev || !mosd.gossip_ev)
		goto out_events;
	event_add(mosd.sigchld_ev, NULL);
	proc_reap(); /* a child (criu's start-up check) may have ended before we listened */
	event_add(mosd.sigterm_ev, NULL);
	event_add(mosd.sigint_ev, NULL);
	event_add(mosd.gossip_ev, &tv);
	announce();
	if (pidfile) {
		FILE *f = fopen(pidfile, "w");
		if (!f) {
			pr_err("%s: cannot write pidfile: %s", pidfile, strerror(errno));
			goto out_events;
		}
		fprintf(f, "%d\n", (int)getpid());
		fclose(f);
	}
	pr_info("node %s up: peers on %s:%u, users on %s, %u cpus, %s", mosd.self->name, mosd.self->address,
		mosd.conf->port, mosd.conf->socket, mosd.self->cpus,
		mosd.self->role == MOS_ROLE_DISKLESS ? "diskless" : "full");
	event_base_dispatch(mosd.base);
	rc = 0;
	if (pidfile)
		unlink(pidfile);
out_events:
	if (mosd.gossip_ev) event_free(mosd.gossip_ev);
	if (mosd.sigchld_ev) event_free(mosd.sigchld_ev);
	if (mosd.sigterm_ev) event_free(mosd.sigterm_ev);
	if (mosd.sigint_ev) event_free(mosd.sigint_ev);
	evconnlistener_free(unix_lis);
out_tcp:
	evconnlistener_free(tcp_lis);
out_proc:
	proc_fini();
	pmixhost_fini();
out_peer:
	peer_fini();
out_base:
	event_base_free(mosd.base);
out_view:
	mos_view_fini(&mosd.view);
out_conf:
	mos_conf_free(mosd.conf);
	return rc;
}
