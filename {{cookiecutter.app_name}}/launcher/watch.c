/*
 * The supervisor's side of detection. Why relay the worker's output instead of handing it the
 * host's stderr: the Functions host logs whatever the worker process writes, so a worker sharing
 * the launcher's stderr could write a line indistinguishable from a security event (or bury real
 * ones). Every line of the worker's that starts with EVENT_MARKER is passed on behind a
 * "worker: (forged) " prefix, which no alert matches, and reported as a forgery.
 */
#define _GNU_SOURCE
#include "watch.h"
#include "events.h"
#include "launcher.h"
#include "sandbox.h"

#include <errno.h>
#include <fcntl.h>
#include <linux/seccomp.h>
#include <stdio.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/socket.h>
#include <sys/syscall.h>
#include <unistd.h>

enum { NOTIF_BUFFER = 512, RELAY_CHUNK = 4096 };
static const char marker[] = EVENT_MARKER;
static const char forged_prefix[] = "worker: (forged) ";

void watch_prepare(struct watch *w)
{
	w->listener = -1;
	if (socketpair(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0, w->control) != 0)
		die(EXIT_SYSTEM, "socketpair: %s", strerror(errno));
	for (int i = 0; i < WATCH_STREAMS; i++) {
		if (pipe2(w->pipes[i], O_CLOEXEC) != 0)
			die(EXIT_SYSTEM, "pipe2: %s", strerror(errno));
		w->stream[i].fd = w->pipes[i][0];
		w->stream[i].mid_line = false;
		w->stream[i].matched = 0;
	}
}

int watch_in_worker(struct watch *w)
{
	for (int i = 0; i < WATCH_STREAMS; i++)
		if (dup2(w->pipes[i][1], STDOUT_FILENO + i) != STDOUT_FILENO + i)
			die(EXIT_SYSTEM, "dup2: %s", strerror(errno));
	return w->control[1]; /* everything else above 2 is closed before execve */
}

void watch_send_listener(int control, int listener)
{
	char byte = 'L', space[CMSG_SPACE(sizeof(int))];
	struct iovec iov = { .iov_base = &byte, .iov_len = 1 };
	struct msghdr msg = { .msg_iov = &iov, .msg_iovlen = 1, .msg_control = space, .msg_controllen = sizeof space };
	struct cmsghdr *cmsg = CMSG_FIRSTHDR(&msg);

	cmsg->cmsg_level = SOL_SOCKET;
	cmsg->cmsg_type = SCM_RIGHTS;
	cmsg->cmsg_len = CMSG_LEN(sizeof(int));
	memcpy(CMSG_DATA(cmsg), &listener, sizeof(int));
	/* Unsent, the refusals still hold: the kernel answers ENOSYS once no listener is left. */
	(void)sendmsg(control, &msg, MSG_NOSIGNAL);
	close(listener);
}

void watch_in_supervisor(struct watch *w)
{
	char byte, space[CMSG_SPACE(sizeof(int))];
	struct iovec iov = { .iov_base = &byte, .iov_len = 1 };
	struct msghdr msg = { .msg_iov = &iov, .msg_iovlen = 1, .msg_control = space, .msg_controllen = sizeof space };
	struct cmsghdr *cmsg;
	ssize_t n;

	close(w->control[1]);
	for (int i = 0; i < WATCH_STREAMS; i++)
		close(w->pipes[i][1]);
	do
		n = recvmsg(w->control[0], &msg, MSG_CMSG_CLOEXEC);
	while (n < 0 && errno == EINTR);
	cmsg = n > 0 ? CMSG_FIRSTHDR(&msg) : NULL;
	if (cmsg && cmsg->cmsg_level == SOL_SOCKET && cmsg->cmsg_type == SCM_RIGHTS)
		memcpy(&w->listener, CMSG_DATA(cmsg), sizeof(int));
	close(w->control[0]);
}

size_t watch_pollfds(const struct watch *w, struct pollfd *fds)
{
	size_t n = 0;

	fds[n++] = (struct pollfd){ .fd = w->listener, .events = POLLIN };
	for (int i = 0; i < WATCH_STREAMS; i++)
		fds[n++] = (struct pollfd){ .fd = w->stream[i].fd, .events = POLLIN };
	return n; /* a negative fd is skipped by poll */
}

/* One refused call: the verdict first (the worker waits for it), then the report. */
static void answer(struct watch *w)
{
	static union {
		struct seccomp_notif notif;
		char bytes[NOTIF_BUFFER];
	} request;
	struct seccomp_notif_resp response;
	char detail[96];

	memset(&request, 0, sizeof request);
	if (syscall(SYS_ioctl, w->listener, SECCOMP_IOCTL_NOTIF_RECV, &request.notif) != 0) {
		if (errno != EINTR && errno != ENOENT) { /* ENOENT: the caller died meanwhile */
			close(w->listener);
			w->listener = -1;
		}
		return;
	}
	memset(&response, 0, sizeof response);
	response.id = request.notif.id;
	response.error = -EPERM;
	(void)syscall(SYS_ioctl, w->listener, SECCOMP_IOCTL_NOTIF_SEND, &response);
	snprintf(detail, sizeof detail, "%s refused (system call %d)", sandbox_call_name((uint32_t)request.notif.data.nr),
		 request.notif.data.nr);
	event_report(EVENT_SYSCALL, (pid_t)request.notif.pid, detail);
}

/* Passes data on to the host's descriptor (1 or 2), a forged line's start rewritten. */
static void relay(struct watch *w, int i, const char *data, size_t len)
{
	char out[RELAY_CHUNK * 2 + sizeof forged_prefix + sizeof marker];
	size_t n = 0;

	for (size_t k = 0; k < len; k++) {
		char c = data[k];
		if (!w->stream[i].mid_line && c == marker[w->stream[i].matched]) {
			if (++w->stream[i].matched < sizeof marker - 1)
				continue; /* held back until the line shows what it is */
			memcpy(out + n, forged_prefix, sizeof forged_prefix - 1);
			n += sizeof forged_prefix - 1;
			memcpy(out + n, marker, sizeof marker - 1);
			n += sizeof marker - 1;
			w->stream[i].matched = 0;
			w->stream[i].mid_line = true;
			event_report(EVENT_FORGED, 0, "the worker wrote a line that starts like a security event");
			continue;
		}
		if (w->stream[i].matched) { /* not the marker after all: what was held goes out as it was */
			memcpy(out + n, marker, w->stream[i].matched);
			n += w->stream[i].matched;
			w->stream[i].matched = 0;
		}
		out[n++] = c;
		/* The host reads lines as .NET's StreamReader.ReadLine does: \r, \n and \r\n end one. */
		w->stream[i].mid_line = c != '\n' && c != '\r';
	}
	for (size_t off = 0; off < n;) {
		ssize_t wrote = write(STDOUT_FILENO + i, out + off, n - off);
		if (wrote < 0 && errno == EINTR)
			continue;
		if (wrote <= 0)
			break; /* the host closed its end: the output has nowhere to go */
		off += (size_t)wrote;
	}
}

/* Reads what one stream has; at end of file, what was held back goes out and the stream closes. */
static void pass_on(struct watch *w, int i)
{
	char data[RELAY_CHUNK];
	ssize_t n;

	do
		n = read(w->stream[i].fd, data, sizeof data);
	while (n < 0 && errno == EINTR);
	if (n > 0) {
		relay(w, i, data, (size_t)n);
		return;
	}
	if (w->stream[i].matched) {
		size_t held = w->stream[i].matched;
		w->stream[i].matched = 0;
		w->stream[i].mid_line = true;
		relay(w, i, marker, held);
	}
	close(w->stream[i].fd);
	w->stream[i].fd = -1;
}

void watch_handle(struct watch *w, const struct pollfd *fds, size_t n)
{
	if (n > 0 && fds[0].fd >= 0 && (fds[0].revents & (POLLIN | POLLERR | POLLHUP | POLLNVAL))) {
		if (fds[0].revents & POLLIN)
			answer(w);
		else {
			close(w->listener); /* every process the filter watched has ended */
			w->listener = -1;
		}
	}
	for (size_t k = 1; k < n; k++)
		if (fds[k].fd >= 0 && (fds[k].revents & (POLLIN | POLLHUP | POLLERR)))
			pass_on(w, (int)k - 1);
}

void watch_drain(struct watch *w)
{
	for (int i = 0; i < WATCH_STREAMS; i++)
		while (w->stream[i].fd >= 0)
			pass_on(w, i);
	if (w->listener >= 0)
		close(w->listener);
	w->listener = -1;
}
