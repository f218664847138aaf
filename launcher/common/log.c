/* log.c - the one logging path (see log.h). */
#include "log.h"
#include <stdarg.h>
#include <stdio.h>
#include <string.h>
#include <syslog.h>
#include <time.h>
#include <unistd.h>

static char log_prog[32] = "mos";
static char log_node[64];
static int log_level = MOS_LOG_INFO;
static int log_syslog;

static const char *const level_names[] = { "error", "warn", "info", "debug" };
static const int syslog_prio[] = { LOG_ERR, LOG_WARNING, LOG_INFO, LOG_DEBUG };

void mos_log_init(const char *prog, const char *node, int level, int use_syslog)
{
	snprintf(log_prog, sizeof(log_prog), "%s", prog);
	mos_log_set_node(node);
	log_level = level;
	log_syslog = use_syslog;
	if (use_syslog)
		openlog(log_prog, LOG_PID, LOG_DAEMON);
}

void mos_log_set_node(const char *node)
{
	snprintf(log_node, sizeof(log_node), "%s", node ? node : "");
}

int mos_log_level_parse(const char *s)
{
	for (int i = 0; i < 4; i++)
		if (!strcmp(s, level_names[i]))
			return i;
	return -1;
}

void mos_log(int level, const char *file, int line, const char *fmt, ...)
{
	char msg[2048];
	va_list ap;

	if (level > log_level)
		return;
	va_start(ap, fmt);
	vsnprintf(msg, sizeof(msg), fmt, ap);
	va_end(ap);
	const char *base = strrchr(file, '/');
	base = base ? base + 1 : file;

	struct timespec ts;
	clock_gettime(CLOCK_REALTIME, &ts);
	struct tm tm;
	localtime_r(&ts.tv_sec, &tm);
	fprintf(stderr, "%02d:%02d:%02d.%03ld %s%s%s[%d] %s %s:%d: %s\n", tm.tm_hour, tm.tm_min,
		tm.tm_sec, ts.tv_nsec / 1000000, log_prog, log_node[0] ? "@" : "", log_node,
		(int)getpid(), level_names[level], base, line, msg);
	if (log_syslog)
		syslog(syslog_prio[level], "%s%s%s:%d: %s", log_node, log_node[0] ? " " : "", base,
		       line, msg);
}
