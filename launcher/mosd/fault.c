/* fault.c - named fault-injection points, compiled in, so that every
 * rollback path can be driven by a test: MOS_FAULT=name[,name] at start or
 * `mosctl fault NAME|clear` (root) at run time. Each armed fault fires once. */
#include "mig.h"
#include "log.h"
#include <errno.h>
#include <stdlib.h>
#include <string.h>

static const char *const known[] = {
	"mig_refuse",       /* target answers PREPARE with "out of memory" */
	"mig_dump_fail",    /* source's criu dump fails for real (bad option) */
	"mig_xfer_cut",     /* source cuts its link to the target mid-transfer */
	"mig_restore_fail", /* target damages an image so criu restore fails */
	"mig_target_crash", /* target daemon dies on COMMIT, before restoring */
	"mig_source_crash", /* source daemon dies right after the hand-over */
	"mig_done_lost",    /* target's link to the source breaks right after its restore */
	"mig_finish_slow",  /* source lets go of its copy 3 s after the commit */
	"mig_adopt_slow",   /* target takes over its copy 3 s after the commit */
	"mig_pages_fail",   /* direct move: target's lazy-pages daemon dies while it fetches memory */
	"mig_pagelink_forge", /* target proves itself on the page link with a wrong token */
	"mig_pagelink_mute",  /* target connects the page link and never proves itself (time-out) */
};
#define N_KNOWN (sizeof(known) / sizeof(known[0]))
static bool armed[N_KNOWN];
static bool env_read;

int fault_set(const char *spec)
{
	char *dup = strdup(spec ? spec : ""), *save = NULL;
	int rc = 0;
	if (!dup)
		return -ENOMEM;
	for (char *t = strtok_r(dup, ",", &save); t; t = strtok_r(NULL, ",", &save)) {
		if (!strcmp(t, "clear")) {
			memset(armed, 0, sizeof(armed));
			continue;
		}
		size_t i = 0;
		while (i < N_KNOWN && strcmp(known[i], t))
			i++;
		if (i == N_KNOWN) {
			rc = -ENOENT;
			continue;
		}
		armed[i] = true;
		pr_warn("fault injection armed: %s", t);
	}
	free(dup);
	return rc;
}

bool fault_injected(const char *name)
{
	if (!env_read) {
		env_read = true;
		if (getenv("MOS_FAULT"))
			fault_set(getenv("MOS_FAULT"));
	}
	for (size_t i = 0; i < N_KNOWN; i++)
		if (armed[i] && !strcmp(known[i], name)) {
			armed[i] = false;
			pr_warn("fault injected: %s", name);
			return true;
		}
	return false;
}
