/* mosctl.h - the subcommands of mosctl, one file per family. Each returns the
 * process exit status. */
#ifndef MOSCTL_H
#define MOSCTL_H
int mosctl_check_config(int argc, char **argv);   /* mosctl_config.c */
int mosctl_vcluster(int argc, char **argv);       /* mosctl_vcluster.c */
int mosctl_ps(int argc, char **argv);             /* mosctl_pmix.c: through PMIx */
int mosctl_loads(int argc, char **argv);          /* mosctl_pmix.c */
int mosctl_signal(int argc, char **argv);         /* mosctl_pmix.c */
int mosctl_kill(int argc, char **argv);           /* mosctl_pmix.c */
int mosctl_terminate(int argc, char **argv);      /* mosctl_pmix.c */
int mosctl_pause(int argc, char **argv);          /* mosctl_pmix.c */
int mosctl_resume(int argc, char **argv);         /* mosctl_pmix.c */
int mosctl_fault(int argc, char **argv);          /* mosctl_job.c */
/* mosctl_job.c: the same through mosd's socket, when no PMIx server is found */
#include <stdint.h>
int mosctl_sock_ps(uint32_t job);
int mosctl_sock_signal(const char *who, const char *target, int sig);
int mosctl_checkpoint(int argc, char **argv);     /* mosctl_ckpt.c */
#endif
