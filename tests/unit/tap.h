/* tap.h - a minimal TAP producer for the C unit tests. */
#ifndef MOS_TAP_H
#define MOS_TAP_H
#include <stdio.h>
#include <string.h>

static int tap_n, tap_failed;
#define TAP_OK(cond, ...)                                                          \
	do {                                                                       \
		int c_ = !!(cond);                                                 \
		tap_n++;                                                           \
		if (!c_) {                                                     \
			tap_failed++;                                              \
			printf("not ok %d - ", tap_n);                             \
		} else {                                                           \
			printf("ok %d - ", tap_n);                                 \
		}                                                                  \
		printf(__VA_ARGS__);                                               \
		printf("\n");                                                      \
		if (!c_)                                                           \
			printf("#   failed at %s:%d: %s\n", __FILE__, __LINE__, #cond); \
	} while (0)
#define TAP_IS_STR(got, want, ...)                                                 \
	do {                                                                       \
		const char *g_ = (got), *w_ = (want);                              \
		TAP_OK(g_ && w_ && !strcmp(g_, w_), __VA_ARGS__);                  \
		if (!(g_ && w_ && !strcmp(g_, w_)))                                \
			printf("#   got '%s'\n#   want '%s'\n", g_ ? g_ : "(null)", w_); \
	} while (0)
#define TAP_DONE() (printf("1..%d\n", tap_n), tap_failed ? 1 : 0)
#endif
