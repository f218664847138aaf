/* mosctl.h - the subcommands of mosctl, one file per family. Each returns the
 * process exit status. */
#ifndef MOSCTL_H
#define MOSCTL_H
int mosctl_check_config(int argc, char **argv);   /* mosctl_config.c */
int mosctl_vcluster(int argc, char **argv);       /* mosctl_vcluster.c */
int mosctl_ps(int argc, char **argv);             /* mosctl_job.c */
int mosctl_signal(int argc, char **argv);         /* mosctl_job.c */
int mosctl_kill(int argc, char **argv);           /* mosctl_job.c */
int mosctl_fault(int argc, char **argv);          /* mosctl_job.c */
int mosctl_checkpoint(int argc, char **argv);     /* mosctl_ckpt.c */
#endif
