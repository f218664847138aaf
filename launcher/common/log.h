/* log.h - the one logging path: level, node name, file:line; stderr and/or
 * syslog. Whoever decides what to do about an error logs it, once. */
#ifndef MOS_LOG_H
#define MOS_LOG_H

enum mos_log_level { MOS_LOG_ERR = 0, MOS_LOG_WARN, MOS_LOG_INFO, MOS_LOG_DEBUG };

/* mos_log_init - PROG and NODE prefix every line; USE_SYSLOG adds syslog. */
void mos_log_init(const char *prog, const char *node, int level, int use_syslog);
void mos_log_set_node(const char *node);
/* mos_log_level_parse - "error|warn|info|debug" -> level, or -1. */
int mos_log_level_parse(const char *s);
void mos_log(int level, const char *file, int line, const char *fmt, ...)
	__attribute__((format(printf, 4, 5)));

#define pr_err(...)   mos_log(MOS_LOG_ERR, __FILE__, __LINE__, __VA_ARGS__)
#define pr_warn(...)  mos_log(MOS_LOG_WARN, __FILE__, __LINE__, __VA_ARGS__)
#define pr_info(...)  mos_log(MOS_LOG_INFO, __FILE__, __LINE__, __VA_ARGS__)
#define pr_debug(...) mos_log(MOS_LOG_DEBUG, __FILE__, __LINE__, __VA_ARGS__)

#endif
