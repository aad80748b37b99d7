/*
 * What the supervisor watches of the worker: the system calls its filter refuses (through
 * seccomp's user notification: the supervisor reports each, then answers EPERM itself, the same
 * verdict), and its output, which the supervisor passes on to the host so that no line of the
 * worker's can pass for a security event.
 */
#ifndef LAUNCHER_WATCH_H
#define LAUNCHER_WATCH_H

#include <poll.h>
#include <stdbool.h>
#include <stddef.h>
#include <sys/types.h>

/* Application Insights keeps 32,768 characters of a trace's message; a longer line is defanged whole. */
enum { WATCH_STREAMS = 2, WATCH_POLLFDS = WATCH_STREAMS + 1, WATCH_LINE_MAX = 32768 };

struct watch {
	int control[2];                   /* a socket pair: the worker sends its filter's listener */
	int pipes[WATCH_STREAMS][2];      /* the worker's stdout and stderr */
	int listener;                     /* the filter's listener, -1 without one */
	bool filter_released;             /* the listener hung up: every process under the filter is exiting */
	struct {
		int fd;                   /* read end, -1 at end of file */
		bool overlong;            /* the line passed on so far outgrew line[]: defanged to its end */
		size_t len;               /* the line so far, held back until it ends */
		char line[WATCH_LINE_MAX];
	} stream[WATCH_STREAMS];
};

/* In the supervisor, before the worker starts. */
void watch_prepare(struct watch *watch);

/* In the worker: its stdout and stderr become the pipes; returns the socket to send the listener on. */
int watch_in_worker(struct watch *watch);

/* In the worker, once its filter is in place: hands the listener to the supervisor and closes it. */
void watch_send_listener(int control, int listener);

/* In the supervisor, after the worker's vfork: takes the listener it sent (none if it sent none). */
void watch_in_supervisor(struct watch *watch);

/* The descriptors to poll (fds[0..n)), and what to do when they are ready. */
size_t watch_pollfds(const struct watch *watch, struct pollfd *fds);
void watch_handle(struct watch *watch, const struct pollfd *fds, size_t n);

/* After every process of the worker's has ended: pass on what is left of its output. */
void watch_drain(struct watch *watch);

#endif
