/*
 * How every part of the launcher fails: one line on stderr, "launcher: " first, then a distinct
 * exit status (fail.h); a refusal only tampering explains is a security event first (events.c).
 */
#define _GNU_SOURCE
#include "fail.h"
#include "events.h"

#include <stdarg.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

/* One write, so that concurrent output never splits the line. */
_Noreturn void die(int status, const char *fmt, ...)
{
	char line[512];
	int n = snprintf(line, sizeof line, "launcher: ");
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(line + n, sizeof line - (size_t)n - 1, fmt, ap);
	va_end(ap);
	n = (int)strlen(line);
	line[n++] = '\n';
	if (write(STDERR_FILENO, line, (size_t)n) < 0) {
		/* Nothing left to report to; the exit status still says what happened. */
	}
	_exit(status);
}

_Noreturn void refuse(int status, const char *fmt, ...)
{
	char message[400];
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(message, sizeof message, fmt, ap);
	va_end(ap);
	event_report(EVENT_LAUNCHER, getpid(), message);
	die(status, "%s", message);
}
