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
typedef void (*imgserve_want_cb)(void *arg, const char *name);
struct imgserve *imgserve_start(const char *dir);
/* imgserve_on_want - WANT(ARG, NAME) whenever criu starts reading image
 * NAME (a sender holding back part of it should send the rest now). */
void imgserve_on_want(struct imgserve *s, imgserve_want_cb want, void *arg);
/* imgserve_manifest - the images are the N files NAMES[i] that will have
 * SIZES[i] bytes in DIR: answer criu from now on. 0 or -errno. */
int imgserve_manifest(struct imgserve *s, char *const *names, const uint64_t *sizes, size_t n);
/* imgserve_more - more image data is in DIR: feed the pipes that wait. */
void imgserve_more(struct imgserve *s);
/* imgserve_offer - LEN bytes of image NAME at OFFSET just came: write what
 * criu's pipe takes now, if criu reads that file and has read everything
 * before OFFSET, so the bytes need not pass through the directory. Returns
 * how many it took (0..LEN); the rest must go into the directory, after
 * them. A file fed this way cannot be served a second time. */
size_t imgserve_offer(struct imgserve *s, const char *name, size_t name_len, uint64_t off, const void *data,
		      size_t len);
/* imgserve_free - stop: pipes still open are closed (criu sees them end
 * early and fails). */
void imgserve_free(struct imgserve *s);

#endif
