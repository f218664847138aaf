/* mosps.h - the cluster process table, shared by mosps and `mosctl ps`. */
#ifndef MOSPS_H
#define MOSPS_H
#include <stdint.h>
#include <stdio.h>
/* mosps_print - ask the local mosd for every node's processes and print
 * the table (only JOB's rows when JOB != 0). Returns an exit status. */
int mosps_print(FILE *out, uint32_t job, int no_header);
#endif
