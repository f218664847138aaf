/* util.c - small shared helpers (see util.h). */
#include "util.h"
#include "msg.h"
#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

uint64_t mos_now_ms(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000 + (uint64_t)ts.tv_nsec / 1000000;
}

const char *mos_local_socket_path(void)
{
	const char *p = getenv(MOS_ENV_SOCKET);
	return p && *p ? p : "@mosd";
}

static int unix_addr(const char *path, struct sockaddr_un *sun, socklen_t *len)
{
	size_t n = strlen(path);
	memset(sun, 0, sizeof(*sun));
	sun->sun_family = AF_UNIX;
	if (n == 0 || n >= sizeof(sun->sun_path))
		return -ENAMETOOLONG;
	memcpy(sun->sun_path, path, n);
	if (path[0] == '@')
		sun->sun_path[0] = 0;
	*len = (socklen_t)(offsetof(struct sockaddr_un, sun_path) + n + (path[0] == '@' ? 0 : 1));
	return 0;
}

int mos_unix_listen(const char *path)
{
	struct sockaddr_un sun;
	socklen_t len;
	int rc = unix_addr(path, &sun, &len), fd;

	if (rc)
		return rc;
	if ((fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0)) < 0)
		return -errno;
	if (path[0] != '@')
		unlink(path);
	if (bind(fd, (struct sockaddr *)&sun, len) < 0 || listen(fd, 128) < 0) {
		rc = -errno;
		close(fd);
		return rc;
	}
	if (path[0] != '@')
		chmod(path, 0666);
	return fd;
}

int mos_unix_connect(const char *path)
{
	struct sockaddr_un sun;
	socklen_t len;
	int rc = unix_addr(path, &sun, &len), fd;

	if (rc)
		return rc;
	if ((fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0)) < 0)
		return -errno;
	if (connect(fd, (struct sockaddr *)&sun, len) < 0) {
		rc = -errno;
		close(fd);
		return rc;
	}
	return fd;
}

const char *mos_status_str(int ws, char *buf, size_t len)
{
	if (WIFEXITED(ws))
		snprintf(buf, len, "exited with status %d", WEXITSTATUS(ws));
	else if (WIFSIGNALED(ws))
		snprintf(buf, len, "killed by signal %d (%s)", WTERMSIG(ws), strsignal(WTERMSIG(ws)));
	else
		snprintf(buf, len, "ended with wait status 0x%x", ws);
	return buf;
}

const char *mos_size_str(uint64_t b, char *buf, size_t len)
{
	if (b >= (1ull << 30))
		snprintf(buf, len, "%.1fG", (double)b / (double)(1ull << 30));
	else if (b >= (1ull << 20))
		snprintf(buf, len, "%.1fM", (double)b / (double)(1ull << 20));
	else
		snprintf(buf, len, "%lluK", (unsigned long long)(b >> 10));
	return buf;
}

int mos_status_exit_code(int ws)
{
	if (WIFEXITED(ws))
		return WEXITSTATUS(ws);
	if (WIFSIGNALED(ws))
		return 128 + WTERMSIG(ws);
	return 255;
}

int mos_parse_job_rank(const char *s, uint32_t *job, int64_t *rank)
{
	char *end;
	errno = 0;
	unsigned long j = strtoul(s, &end, 10);
	if (errno || end == s || j == 0 || j > UINT32_MAX)
		return -EINVAL;
	*job = (uint32_t)j;
	*rank = -1;
	if (*end == 0)
		return 0;
	if (*end != '.')
		return -EINVAL;
	const char *r = end + 1;
	unsigned long k = strtoul(r, &end, 10);
	if (errno || end == r || *end || k > UINT32_MAX)
		return -EINVAL;
	*rank = (int64_t)k;
	return 0;
}

int mos_sig_parse(const char *s)
{
	char *end;
	long n = strtol(s, &end, 10);
	if (*s && !*end)
		return n > 0 && n < NSIG ? (int)n : -EINVAL;
	if (!strncasecmp(s, "SIG", 3))
		s += 3;
	for (int i = 1; i < NSIG; i++) {
		const char *name = sigabbrev_np(i);
		if (name && !strcasecmp(name, s))
			return i;
	}
	return -EINVAL;
}

static int write_all(int fd, const void *buf, size_t len)
{
	const char *p = buf;
	while (len) {
		ssize_t n = write(fd, p, len);
		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0)
			return -errno;
		p += n;
		len -= (size_t)n;
	}
	return 0;
}

static int read_all(int fd, void *buf, size_t len)
{
	char *p = buf;
	while (len) {
		ssize_t n = read(fd, p, len);
		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0)
			return -errno;
		if (n == 0)
			return -EPIPE;
		p += n;
		len -= (size_t)n;
	}
	return 0;
}

int mos_sync_send(int fd, struct mos_msg *m)
{
	mos_msg_finish(m, 0);
	return write_all(fd, m->buf, m->len);
}

int mos_sync_recv(int fd, struct mos_msg *m, char *err, size_t errlen)
{
	uint8_t hdr[MOS_MSG_HDR_LEN];
	uint16_t type;
	uint32_t seq, len;
	int rc = read_all(fd, hdr, sizeof(hdr));

	if (rc)
		return rc;
	if ((rc = mos_msg_parse_header(hdr, &type, &seq, &len))) {
		snprintf(err, errlen, "bad frame header from mosd");
		return rc;
	}
	uint8_t *frame = malloc(MOS_MSG_HDR_LEN + len);
	if (!frame)
		return -ENOMEM;
	memcpy(frame, hdr, sizeof(hdr));
	if ((rc = read_all(fd, frame + MOS_MSG_HDR_LEN, len))) {
		free(frame);
		return rc;
	}
	return mos_msg_decode(m, frame, MOS_MSG_HDR_LEN + len, err, errlen);
}

int mos_ask(const char *who, struct mos_msg *req, const char *ok_text)
{
	struct mos_msg rep;
	char err[256];
	const char *path = mos_local_socket_path();
	int fd = mos_unix_connect(path), rc;
	if (fd < 0) {
		mos_msg_free(req);
		fprintf(stderr, "%s: cannot reach mosd at %s: %s (is mosd running on this node?)\n", who, path,
			strerror(-fd));
		return 1;
	}
	rc = mos_sync_send(fd, req);
	mos_msg_free(req);
	if (!rc)
		rc = mos_sync_recv(fd, &rep, err, sizeof(err));
	close(fd);
	if (rc) {
		fprintf(stderr, "%s: no answer from mosd: %s\n", who, rc == -EBADMSG ? err : strerror(-rc));
		return 1;
	}
	int32_t code = -EPROTO;
	mos_msg_get_i32(&rep, MOS_T_CODE, &code);
	char *text = mos_msg_get_str(&rep, MOS_T_TEXT);
	if (code)
		fprintf(stderr, "%s: %s\n", who, text ? text : strerror(-code));
	else if (ok_text)
		printf("%s\n", text ? text : ok_text);
	free(text);
	mos_msg_free(&rep);
	return code ? 1 : 0;
}
