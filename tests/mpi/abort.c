/* abort.c - rank 1 calls MPI_Abort(MPI_COMM_WORLD, 7) while the others wait
 * in a barrier: the launcher must end the whole job with status 7. */
#include <mpi.h>
#include <stdio.h>
#include <unistd.h>

int main(int argc, char **argv)
{
	int rank, size;

	MPI_Init(&argc, &argv);
	MPI_Comm_rank(MPI_COMM_WORLD, &rank);
	MPI_Comm_size(MPI_COMM_WORLD, &size);
	if (rank == 1 || size == 1) {
		printf("rank %d aborting\n", rank);
		fflush(stdout);
		MPI_Abort(MPI_COMM_WORLD, 7);
	}
	MPI_Barrier(MPI_COMM_WORLD);
	/* not reached while the abort works: the barrier never completes */
	sleep(30);
	printf("rank %d NOT ABORTED\n", rank);
	MPI_Finalize();
	return 0;
}
