/* no_init.c - bad input: rank SKIP (argv[1], default the last) never calls
 * MPI_Init and exits 0 after SECS (argv[2], default 30) seconds, while the
 * other ranks wait in MPI_Init's fence. The launcher must end the job with
 * a clear message instead of hanging. */
#include <mpi.h>
#include <stdio.h>
#include <stdlib.h>
#include <unistd.h>

int main(int argc, char **argv)
{
	const char *r = getenv("PMIX_RANK"), *n = getenv("PMIX_JOB_SIZE");
	int rank = r ? atoi(r) : 0, size, skip = argc > 1 ? atoi(argv[1]) : -1;
	int secs = argc > 2 ? atoi(argv[2]) : 30;

	if (skip < 0) {
		/* PMIX_JOB_SIZE is not in every environment: fall back to MPI */
		skip = n ? atoi(n) - 1 : 1;
	}
	if (rank == skip) {
		sleep(secs);
		return 0;
	}
	MPI_Init(&argc, &argv);
	MPI_Comm_size(MPI_COMM_WORLD, &size);
	MPI_Barrier(MPI_COMM_WORLD);
	printf("rank %d passed MPI_Init\n", rank);
	MPI_Finalize();
	return 0;
}
