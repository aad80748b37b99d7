/*
 * The supervisor's side of detection. Why relay the worker's output instead of handing it the
 * host's stderr: the Functions host logs whatever the worker process writes, so a worker sharing
 * the launcher's stderr could write a line indistinguishable from a security event (or bury real
 * ones). The host reads lines (.NET's ReadLine: \r, \n and \r\n end one) and, from a line that
 * starts with LanguageWorkerConsoleLog, deletes that prefix wherever it occurs, in any case
 * (WorkerProcessUtilities.RemoveLogPrefix, Azure/azure-functions-host
 * src/WebJobs.Script/Workers/ProcessManagement/WorkerProcessUtilities.cs). So each line of the
 * worker's is held until it ends and looked at as the host may log it: in lower case, without
 * control bytes or that prefix. One that then contains the marker anywhere goes on as
 * "worker: (forged) " and the line with each '-' made '_' (so no query for the marker can match
 * it, however the host trims it) and is reported as a forgery.
 */
#define _GNU_SOURCE
#include "watch.h"
#include "events.h"
#include "fail.h"
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
static const char forged_prefix[] = "worker: (forged) ";
static const char host_prefix[] = "languageworkerconsolelog";

void watch_prepare(struct watch *w)
{
	w->listener = -1;
	w->filter_released = false;
	if (socketpair(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0, w->control) != 0)
		die(EXIT_SYSTEM, "socketpair: %s", strerror(errno));
	for (int i = 0; i < WATCH_STREAMS; i++) {
		if (pipe2(w->pipes[i], O_CLOEXEC) != 0)
			die(EXIT_SYSTEM, "pipe2: %s", strerror(errno));
		w->stream[i].fd = w->pipes[i][0];
		w->stream[i].overlong = false;
		w->stream[i].len = 0;
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

/* Whether a line could reach the host's log holding the marker (any case, the host's prefix cut out). */
static bool imitates_event(const char *line, size_t len)
{
	static char seen[WATCH_LINE_MAX];
	static const char *const mark = EVENT_MARKER;
	size_t n = 0, p = sizeof host_prefix - 1, m = strlen(mark) - 1; /* the colon need not follow */

	for (size_t k = 0; k < len; k++) {
		unsigned char c = (unsigned char)line[k];
		if (c < 0x20 || c == 0x7f)
			continue;
		seen[n++] = (char)(c >= 'A' && c <= 'Z' ? c + ('a' - 'A') : c);
		if (n >= p && memcmp(seen + n - p, host_prefix, p) == 0)
			n -= p; /* can never cut into the marker: no end of the one begins the other */
		if (n >= m && memcmp(seen + n - m, mark, m) == 0)
			return true;
	}
	return false;
}

/* The host's descriptor (1 or 2) gets data, every '-' made '_' if asked. */
static void send_out(int i, const char *data, size_t len, bool defang)
{
	char out[RELAY_CHUNK];

	for (size_t off = 0; off < len;) {
		size_t n = len - off < sizeof out ? len - off : sizeof out;
		for (size_t k = 0; k < n; k++)
			out[k] = defang && data[off + k] == '-' ? '_' : data[off + k];
		for (size_t sent = 0; sent < n;) {
			ssize_t wrote = write(STDOUT_FILENO + i, out + sent, n - sent);
			if (wrote < 0 && errno == EINTR)
				continue;
			if (wrote <= 0)
				return; /* the host closed its end: the output has nowhere to go */
			sent += (size_t)wrote;
		}
		off += n;
	}
}

/* A line held back goes on: as it was, or defanged behind the forged prefix and reported. */
static void pass_line(struct watch *w, int i)
{
	bool forged = imitates_event(w->stream[i].line, w->stream[i].len);

	if (forged) { /* the report first: on stderr it must not land inside the line */
		event_report(EVENT_FORGED, 0, "the worker wrote a line that holds a security event's marker");
		send_out(i, forged_prefix, sizeof forged_prefix - 1, false);
	}
	send_out(i, w->stream[i].line, w->stream[i].len, forged || w->stream[i].overlong);
	w->stream[i].len = 0;
}

/* Passes the worker's output on line by line; a line longer than the buffer loses its '-' to its end. */
static void relay(struct watch *w, int i, const char *data, size_t len)
{
	for (size_t k = 0; k < len; k++) {
		char c = data[k];
		bool ends = c == '\n' || c == '\r';
		if (w->stream[i].overlong) {
			size_t run = k;
			while (run < len && data[run] != '\n' && data[run] != '\r')
				run++;
			send_out(i, data + k, run - k + (run < len), true);
			w->stream[i].overlong = run == len;
			k = run;
			continue;
		}
		w->stream[i].line[w->stream[i].len++] = c;
		if (ends || w->stream[i].len == sizeof w->stream[i].line) {
			w->stream[i].overlong = !ends;
			pass_line(w, i);
		}
	}
}

/* Reads what one stream has; at end of file, the line held back goes out and the stream closes. */
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
	if (w->stream[i].len)
		pass_line(w, i);
	w->stream[i].overlong = false;
	close(w->stream[i].fd);
	w->stream[i].fd = -1;
}

void watch_handle(struct watch *w, const struct pollfd *fds, size_t n)
{
	if (n > 0 && fds[0].fd >= 0 && (fds[0].revents & (POLLIN | POLLERR | POLLHUP | POLLNVAL))) {
		if (fds[0].revents & POLLIN)
			answer(w);
		else {
			/* The kernel hangs up when the filter's last process starts to exit (do_exit,
			 * seccomp_filter_release): every process the filter watched is ending. */
			close(w->listener);
			w->listener = -1;
			w->filter_released = (fds[0].revents & POLLHUP) != 0;
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
