/* no_finalize.c - bad input: every rank initialises MPI and then rank 1
 * leaves without MPI_Finalize (exit status 0) while the others wait in a
 * barrier. The launcher must end the job with a clear message. */
#include <mpi.h>
#include <stdio.h>
#include <stdlib.h>

int main(int argc, char **argv)
{
	int rank;
	MPI_Init(&argc, &argv);
	MPI_Comm_rank(MPI_COMM_WORLD, &rank);
	if (rank == 1)
		exit(0);
	MPI_Barrier(MPI_COMM_WORLD);
	printf("rank %d NOT STOPPED\n", rank);
	MPI_Finalize();
	return 0;
}
