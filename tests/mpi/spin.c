/* spin.c - a long-running MPI program for job-control tests: loops
 * MPI_Allreduce with a short sleep; rank 0 prints "iter N sum S" each
 * iteration; every rank says "rank R got USR1" once per SIGUSR1.
 * Usage: spin [ITERATIONS (default: forever)] [SLEEP_MS (default 200)] */
#include <mpi.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <time.h>

static volatile sig_atomic_t got_usr1;

static void on_usr1(int sig)
{
	(void)sig;
	got_usr1++;
}

int main(int argc, char **argv)
{
	long iters = argc > 1 ? atol(argv[1]) : 0;
	long ms = argc > 2 ? atol(argv[2]) : 200;
	struct timespec ts = { ms / 1000, (ms % 1000) * 1000000L };
	sig_atomic_t seen = 0;
	int rank, size;

	signal(SIGUSR1, on_usr1);
	MPI_Init(&argc, &argv);
	MPI_Comm_rank(MPI_COMM_WORLD, &rank);
	MPI_Comm_size(MPI_COMM_WORLD, &size);
	for (long i = 1; iters == 0 || i <= iters; i++) {
		int one = 1, sum = 0;

		MPI_Allreduce(&one, &sum, 1, MPI_INT, MPI_SUM, MPI_COMM_WORLD);
		if (sum != size) {
			fprintf(stderr, "rank %d: iteration %ld: sum %d, want %d\n", rank, i, sum, size);
			MPI_Abort(MPI_COMM_WORLD, 3);
		}
		if (rank == 0)
			printf("iter %ld sum %d\n", i, sum);
		while (seen < got_usr1) {
			seen++;
			printf("rank %d got USR1\n", rank);
		}
		fflush(stdout);
		nanosleep(&ts, NULL);
	}
	MPI_Finalize();
	return 0;
}
