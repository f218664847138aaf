/* imgserve.h - the target's image server for `criu restore --stream`: criu
 * asks for image files by name on DIR/streamer-serve.sock and reads each one
 * from a pipe that this server fills from DIR as the file arrives from the
 * source, so that the restore runs while the images are still on their way. */
#ifndef MOSD_IMGSERVE_H
#define MOSD_IMGSERVE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

struct imgserve;

/* imgserve_start - listen on DIR/streamer-serve.sock for one criu. Its
 * requests wait until imgserve_manifest() says which images there are.
 * Returns the server or NULL with errno set. */
typedef void (*imgserve_want_cb)(void *arg, const char *name, uint64_t upto);
struct imgserve *imgserve_start(const char *dir);
/* imgserve_on_want - WANT(ARG, NAME, UPTO) when criu starts reading image
 * NAME and again as it reads on: a sender holding back part of it should
 * send it up to byte UPTO now (a window ahead of criu's reading, so that
 * what waits for criu stays small and in memory). */
void imgserve_on_want(struct imgserve *s, imgserve_want_cb want, void *arg);
/* imgserve_manifest - the images are the N files NAMES[i] that will have
 * SIZES[i] bytes in DIR: answer criu from now on. 0 or -errno. */
int imgserve_manifest(struct imgserve *s, char *const *names, const uint64_t *sizes, size_t n);
/* imgserve_more - more image data is in DIR: feed the pipes that wait. */
void imgserve_more(struct imgserve *s);
/* imgserve_offer - LEN bytes of image NAME at OFFSET just came: if criu
 * reads that file, they go into its pipe, or wait in memory behind what
 * came before them, and never into the directory. Returns how many it took:
 * LEN, or 0 if criu does not read the file yet (the bytes belong in the
 * directory). A file fed this way cannot be served a second time. */
size_t imgserve_offer(struct imgserve *s, const char *name, size_t name_len, uint64_t off, const void *data,
		      size_t len);
/* imgserve_free - stop: pipes still open are closed (criu sees them end
 * early and fails). */
void imgserve_free(struct imgserve *s);

#endif
