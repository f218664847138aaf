/* mig_load.c - the process that bench/migrate moves: touches SIZE_MIB of
 * memory, then prints "tick N T_US" every 10 ms (T_US = CLOCK_REALTIME in
 * microseconds), so the largest gap between two ticks is the freeze. At the
 * end it checks that its memory still holds what it wrote: "memory ok". */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <sys/syscall.h>
#include <unistd.h>

int main(int argc, char **argv)
{
	size_t mib = argc > 1 ? strtoul(argv[1], NULL, 10) : 10;
	long ticks = argc > 2 ? strtol(argv[2], NULL, 10) : 100000;
	/* descriptors inherited from whoever started us are not ours to carry
	 * (CRIU cannot dump a /dev/null of another mount namespace) */
	syscall(SYS_close_range, 3, ~0U, 0);
	char *mem = malloc(mib << 20);
	if (!mem && mib)
		return 1;
	for (size_t i = 0; i < (mib << 20); i += 4096)
		mem[i] = (char)i;
	printf("ready %zu MiB\n", mib);
	fflush(stdout);
	for (long n = 0; n < ticks; n++) {
		struct timespec ts;
		clock_gettime(CLOCK_REALTIME, &ts);
		printf("tick %ld %lld\n", n, (long long)ts.tv_sec * 1000000 + ts.tv_nsec / 1000);
		fflush(stdout);
		usleep(10000);
	}
	/* the memory must have come along intact */
	for (size_t i = 0; i < (mib << 20); i += 4096)
		if (mem[i] != (char)i) {
			printf("memory BAD at %zu\n", i);
			return 1;
		}
	printf("memory ok\n");
	return 0;
}
