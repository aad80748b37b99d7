/*
 * Security events: a refusal that only exploited code (or a broken dependency) triggers becomes
 * one line of a fixed shape on the host's stderr, which the Functions host logs at Warning under
 * Host.Function.Console (launcher/README.md, "Detection"). Never a value, a header or a token.
 */
#ifndef LAUNCHER_EVENTS_H
#define LAUNCHER_EVENTS_H

#include <sys/types.h>

/* Every event line starts with this; the worker's own output never can (watch.c). */
#define EVENT_MARKER "launcher-security-event:"

enum event_kind {
	EVENT_SYSCALL,  /* the system-call filter refused a call */
	EVENT_LAUNCHER, /* the launcher refused to start */
	EVENT_FORGED,   /* the worker wrote a line that imitates an event */
	EVENT_KINDS,
};

/*
 * "launcher-security-event: warning v1 kind=K pid=P time=T suppressed=N detail=D": at most
 * EVENT_BURST lines of a kind per EVENT_WINDOW_SECONDS; the rest are counted, and the count
 * goes out with the next line of that kind (or event_flush).
 */
void event_report(enum event_kind kind, pid_t pid, const char *detail);

/* One line for each kind with a count still untold: the end of a launch. */
void event_flush(pid_t pid);

#endif
