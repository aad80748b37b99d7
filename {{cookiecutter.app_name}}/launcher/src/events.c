/*
 * Security events, rate-limited per kind so that a flood of refusals (thousands a second) costs
 * a few lines and a count, not a log the host drowns in.
 */
#define _GNU_SOURCE
#include "events.h"

#include <stdio.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

enum { EVENT_BURST = 10, EVENT_WINDOW_SECONDS = 10, EVENT_LINE_MAX = 512, EVENT_DETAIL_MAX = 200 };

static const char *const kind_names[EVENT_KINDS] = { "syscall", "launcher", "forged" };

static struct {
	time_t window_start;
	unsigned printed;
	unsigned long suppressed;
} limits[EVENT_KINDS];

static void print_event(enum event_kind kind, pid_t pid, const char *detail)
{
	char line[EVENT_LINE_MAX], when[32];
	struct timespec now;
	struct tm utc;
	size_t n;

	clock_gettime(CLOCK_REALTIME, &now);
	gmtime_r(&now.tv_sec, &utc);
	strftime(when, sizeof when, "%Y-%m-%dT%H:%M:%SZ", &utc);
	n = (size_t)snprintf(line, sizeof line, EVENT_MARKER " warning v1 kind=%s pid=%d time=%s suppressed=%lu detail=",
			     kind_names[kind], (int)pid, when, limits[kind].suppressed);
	/* Printable ASCII only: nothing a log line could be bent with. */
	for (size_t i = 0; detail[i] && i < EVENT_DETAIL_MAX && n < sizeof line - 1; i++)
		line[n++] = detail[i] >= 0x20 && detail[i] < 0x7f ? detail[i] : '?';
	line[n++] = '\n';
	limits[kind].suppressed = 0;
	if (write(STDERR_FILENO, line, n) < 0) {
		/* Nowhere left to report to; the refusal itself already happened. */
	}
}

void event_report(enum event_kind kind, pid_t pid, const char *detail)
{
	struct timespec now;

	clock_gettime(CLOCK_MONOTONIC, &now);
	if (now.tv_sec - limits[kind].window_start >= EVENT_WINDOW_SECONDS) {
		limits[kind].window_start = now.tv_sec;
		limits[kind].printed = 0;
	}
	if (limits[kind].printed >= EVENT_BURST) {
		limits[kind].suppressed++;
		return;
	}
	limits[kind].printed++;
	print_event(kind, pid, detail);
}

void event_flush(pid_t pid)
{
	for (int kind = 0; kind < EVENT_KINDS; kind++)
		if (limits[kind].suppressed)
			print_event((enum event_kind)kind, pid, "summary: the rest of a flood, counted");
}
