/* mixed.c - a process with memory of every kind a move must carry, each
 * filled so that what comes back can be checked: private anonymous memory
 * with pages written, pages only read (the kernel's zero page) and pages
 * never touched; a private mapping of a file with some pages written (their
 * own copies) and the rest the file's; memory without PROT_READ; shared
 * anonymous memory; threads whose stacks hold data (each thread's stack
 * pointer page is not lazy, the rest of its stack is). Prints "ready", then
 * "tick N" every 10 ms N times, then checks everything and prints "mixed ok"
 * or "mixed BAD: what" (exit 1).
 * Usage: mixed TICKS FILE   (FILE: at least 1 MiB, any content) */
#define _GNU_SOURCE
#include <fcntl.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/syscall.h>
#include <unistd.h>

#define PG 4096UL
#define MIB (1UL << 20)
#define ANON (16 * MIB)
#define CHUNK (64 * 1024UL)
#define FMAP MIB

static int bad(const char *what, size_t off)
{
	printf("mixed BAD: %s at %zu\n", what, off);
	return 1;
}

static unsigned long val(unsigned long seed, size_t off)
{
	return (seed * 0x9e3779b97f4a7c15UL) ^ off;
}

#define NTHREADS 3
static volatile int stop;

/* fills 96 KiB of its stack, sleeps until told to stop, checks it */
static void *thread_main(void *arg)
{
	unsigned long seed = 10 + (unsigned long)arg, stack[96 * 1024 / sizeof(unsigned long)];
	for (size_t i = 0; i < sizeof(stack) / sizeof(stack[0]); i++)
		stack[i] = val(seed, i);
	while (!stop)
		usleep(5000);
	for (size_t i = 0; i < sizeof(stack) / sizeof(stack[0]); i++)
		if (stack[i] != val(seed, i))
			return (void *)1;
	return NULL;
}

int main(int argc, char **argv)
{
	if (argc < 3)
		return 2;
	long ticks = strtol(argv[1], NULL, 10);
	int fd = open(argv[2], O_RDONLY);
	if (fd < 0)
		return 2;
	unsigned char *a = mmap(NULL, ANON, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	unsigned char *f = mmap(NULL, FMAP, PROT_READ | PROT_WRITE, MAP_PRIVATE, fd, 0);
	unsigned char *n = mmap(NULL, MIB, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	unsigned char *s = mmap(NULL, 2 * MIB, PROT_READ | PROT_WRITE, MAP_SHARED | MAP_ANONYMOUS, -1, 0);
	unsigned char *orig = malloc(FMAP);
	if (a == MAP_FAILED || f == MAP_FAILED || n == MAP_FAILED || s == MAP_FAILED || !orig ||
	    pread(fd, orig, FMAP, 0) != (ssize_t)FMAP)
		return 2;
	close(fd);
	/* descriptors inherited from whoever started us are not ours to carry */
	syscall(SYS_close_range, 3, ~0U, 0);
	volatile unsigned char sink = 0;
	for (size_t c = 0; c < ANON / CHUNK; c++)
		for (size_t o = c * CHUNK; o < (c + 1) * CHUNK; o += PG)
			if (c % 2 == 0) /* written */
				*(unsigned long *)(a + o) = val(1, o);
			else if (o - c * CHUNK < CHUNK / 2) /* only read: the zero page */
				sink += a[o];
	for (size_t o = 0; o < FMAP; o += 4 * PG) /* every 4th page: its own copy */
		*(unsigned long *)(f + o + 8) = val(2, o);
	for (size_t o = 0; o < MIB; o += PG)
		*(unsigned long *)(n + o) = val(3, o);
	mprotect(n, MIB, PROT_NONE);
	for (size_t o = 0; o < 2 * MIB; o += PG)
		*(unsigned long *)(s + o) = val(4, o);
	pthread_t th[NTHREADS];
	for (long i = 0; i < NTHREADS; i++)
		if (pthread_create(&th[i], NULL, thread_main, (void *)i))
			return 2;
	printf("ready\n");
	fflush(stdout);
	for (long t = 0; t < ticks; t++) {
		printf("tick %ld\n", t);
		fflush(stdout);
		usleep(10000);
	}
	stop = 1;
	for (int i = 0; i < NTHREADS; i++) {
		void *r;
		if (pthread_join(th[i], &r) || r)
			return bad("a thread's stack", (size_t)i);
	}
	/* a page that was never written must not have become memory on the way
	 * (asked before anything below reads it) */
	unsigned char vec[CHUNK / PG];
	for (size_t c = 1; c < ANON / CHUNK; c += 2) {
		if (mincore(a + c * CHUNK, CHUNK, vec))
			return bad("mincore", c * CHUNK);
		for (size_t i = 0; i < CHUNK / PG; i++)
			if (vec[i] & 1)
				return bad("a page never written is resident", c * CHUNK + i * PG);
	}
	for (size_t o = 0; o < ANON; o++) {
		size_t c = o / CHUNK;
		if (c % 2 == 0 && o % PG == 0) {
			if (*(unsigned long *)(a + o) != val(1, o))
				return bad("written anonymous memory", o);
			o += sizeof(unsigned long) - 1;
		} else if (a[o])
			return bad("anonymous memory never written is not zero", o);
	}
	for (size_t o = 0; o < FMAP; o++) {
		int own = (o / PG) % 4 == 0 && o % PG >= 8 && o % PG < 16;
		if (own && o % PG == 8) {
			if (*(unsigned long *)(f + o) != val(2, o - 8))
				return bad("a written page of the file mapping", o);
		} else if (!own && f[o] != orig[o])
			return bad("the file mapping differs from the file", o);
	}
	if (mprotect(n, MIB, PROT_READ))
		return bad("mprotect", 0);
	for (size_t o = 0; o < MIB; o += PG)
		if (*(unsigned long *)(n + o) != val(3, o))
			return bad("memory without PROT_READ", o);
	for (size_t o = 0; o < 2 * MIB; o += PG)
		if (*(unsigned long *)(s + o) != val(4, o))
			return bad("shared anonymous memory", o);
	printf("mixed ok\n");
	return (int)sink * 0;
}
