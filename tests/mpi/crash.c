/* crash.c - bad input: rank 1 kills itself (SIGKILL) in the middle of a
 * series of Allreduce calls that the others are still in. The launcher must
 * end the job (status 128+9) and leave no rank behind. */
#include <mpi.h>
#include <signal.h>
#include <stdio.h>
#include <unistd.h>

int main(int argc, char **argv)
{
	int rank, size;
	long x, sum;

	MPI_Init(&argc, &argv);
	MPI_Comm_rank(MPI_COMM_WORLD, &rank);
	MPI_Comm_size(MPI_COMM_WORLD, &size);
	for (int i = 0; i < 1000; i++) {
		if (i == 10 && rank == 1)
			kill(getpid(), SIGKILL);
		x = rank;
		MPI_Allreduce(&x, &sum, 1, MPI_LONG, MPI_SUM, MPI_COMM_WORLD);
		usleep(1000);
	}
	printf("rank %d NOT CRASHED\n", rank);
	MPI_Finalize();
	return 0;
}
