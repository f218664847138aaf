/* hello_allreduce.c - an unmodified MPI program for the launch tests: checks
 * Allreduce, a point-to-point ring, Bcast and Alltoall, prints
 * "rank R of N ok (node-local L, host H, app A[, arg X])" and rank 0
 * "ALL OK sum=S". L is how many ranks Open MPI sees on this rank's node, H
 * the launcher's name for the node (PMIX_HOSTNAME, "?" if unset), A the
 * MPMD app number (MPI_APPNUM), X the first argument if any. */
#include <mpi.h>
#include <stdio.h>
#include <stdlib.h>

static void fail(int rank, const char *what, long got, long want)
{
	fprintf(stderr, "rank %d FAIL %s: got %ld want %ld\n", rank, what, got, want);
	MPI_Abort(MPI_COMM_WORLD, 2);
}

int main(int argc, char **argv)
{
	int rank, size, lsize;
	long sum, want, got, tok;
	MPI_Comm local;

	MPI_Init(&argc, &argv);
	MPI_Comm_rank(MPI_COMM_WORLD, &rank);
	MPI_Comm_size(MPI_COMM_WORLD, &size);

	want = (long)size * (size - 1) / 2;
	tok = rank;
	MPI_Allreduce(&tok, &sum, 1, MPI_LONG, MPI_SUM, MPI_COMM_WORLD);
	if (sum != want)
		fail(rank, "allreduce", sum, want);

	/* ring: send my rank right, receive my left neighbour's */
	int right = (rank + 1) % size, left = (rank + size - 1) % size;
	MPI_Sendrecv(&tok, 1, MPI_LONG, right, 1, &got, 1, MPI_LONG, left, 1, MPI_COMM_WORLD,
		     MPI_STATUS_IGNORE);
	if (got != left)
		fail(rank, "ring", got, left);

	got = rank == 0 ? 12345 + size : -1;
	MPI_Bcast(&got, 1, MPI_LONG, 0, MPI_COMM_WORLD);
	if (got != 12345 + size)
		fail(rank, "bcast", got, 12345 + size);

	long *out = malloc(size * sizeof(long)), *in = malloc(size * sizeof(long));
	for (int i = 0; i < size; i++)
		out[i] = rank * 1000L + i;
	MPI_Alltoall(out, 1, MPI_LONG, in, 1, MPI_LONG, MPI_COMM_WORLD);
	for (int i = 0; i < size; i++)
		if (in[i] != i * 1000L + rank)
			fail(rank, "alltoall", in[i], i * 1000L + rank);
	free(out);
	free(in);

	MPI_Comm_split_type(MPI_COMM_WORLD, MPI_COMM_TYPE_SHARED, 0, MPI_INFO_NULL, &local);
	MPI_Comm_size(local, &lsize);
	MPI_Comm_free(&local);

	const char *host = getenv("PMIX_HOSTNAME");

	int *appnum, flag;

	MPI_Comm_get_attr(MPI_COMM_WORLD, MPI_APPNUM, &appnum, &flag);
	printf("rank %d of %d ok (node-local %d, host %s, app %d%s%s)\n", rank, size, lsize,
	       host ? host : "?", flag ? *appnum : -1, argc > 1 ? ", arg " : "",
	       argc > 1 ? argv[1] : "");
	fflush(stdout);
	MPI_Barrier(MPI_COMM_WORLD);
	if (rank == 0) {
		printf("ALL OK sum=%ld\n", sum);
		fflush(stdout);
	}
	MPI_Finalize();
	return 0;
}
