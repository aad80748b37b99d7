/*
 * For `make bench` only: what the system-call filter adds to one system call. Loops of raw
 * system calls are timed in child processes, alternately without and with the launcher's filter
 * (a filter cannot be removed once installed). Two calls: getpid, whose verdict the kernel caches
 * (seccomp's constant-action bitmap: it allows getpid whatever the arguments, so the filter runs
 * once), and ioctl on a bad descriptor, whose verdict depends on an argument, so the whole filter
 * runs on every call. The fastest of the rounds is the one other processes disturbed least.
 */
#define _GNU_SOURCE
#include "sandbox.h"

#include <err.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/ioctl.h>
#include <sys/prctl.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

enum { CALLS = 200000, ROUNDS = 21 };

static double elapsed_ns(const struct timespec *start, const struct timespec *end)
{
	return (double)(end->tv_sec - start->tv_sec) * 1e9 + (double)(end->tv_nsec - start->tv_nsec);
}

static double ns_per_call(int use_ioctl)
{
	struct timespec start, end;

	clock_gettime(CLOCK_MONOTONIC, &start);
	for (int i = 0; i < CALLS; i++)
		if (use_ioctl)
			syscall(SYS_ioctl, -1, TCGETS, 0);
		else
			syscall(SYS_getpid);
	clock_gettime(CLOCK_MONOTONIC, &end);
	return elapsed_ns(&start, &end) / CALLS;
}

/* In the child: ns per call, or with use_ioctl < 0, the ns that installing the filter took. */
static double measure_in_child(int filtered, int use_ioctl)
{
	struct timespec start, end;
	static struct policy policy; /* landlock off: the filter alone */
	struct sandbox_status status;
	struct sandbox_failure failure;
	int fds[2];
	double result = 0;
	pid_t pid;

	if (pipe(fds) != 0)
		err(1, "pipe");
	pid = fork();
	if (pid < 0)
		err(1, "fork");
	if (pid == 0) {
		if (prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) != 0)
			err(1, "prctl(PR_SET_NO_NEW_PRIVS)");
		clock_gettime(CLOCK_MONOTONIC, &start);
		if (filtered && sandbox_confine(&policy, NULL, NULL, NULL, &status, &failure) != 0)
			errx(1, "%s", failure.message);
		clock_gettime(CLOCK_MONOTONIC, &end);
		result = use_ioctl < 0 ? elapsed_ns(&start, &end) : ns_per_call(use_ioctl);
		if (write(fds[1], &result, sizeof result) != sizeof result)
			_exit(1);
		_exit(0);
	}
	if (read(fds[0], &result, sizeof result) != sizeof result)
		errx(1, "the measuring child failed");
	waitpid(pid, NULL, 0);
	close(fds[0]);
	close(fds[1]);
	return result;
}

static int by_value(const void *a, const void *b)
{
	double x = *(const double *)a, y = *(const double *)b;
	return (x > y) - (x < y);
}

static void report(const char *name, int use_ioctl)
{
	double plain[ROUNDS], filtered[ROUNDS];

	for (int round = 0; round < ROUNDS; round++) {
		plain[round] = measure_in_child(0, use_ioctl);
		filtered[round] = measure_in_child(1, use_ioctl);
	}
	qsort(plain, ROUNDS, sizeof plain[0], by_value);
	qsort(filtered, ROUNDS, sizeof filtered[0], by_value);
	printf("%s: fastest %.1f ns without the filter, %.1f ns with it (medians %.1f, %.1f; %d rounds of %d)\n", name,
	       plain[0], filtered[0], plain[ROUNDS / 2], filtered[ROUNDS / 2], ROUNDS, CALLS);
	printf("filter cost per system call, %s: %.1f ns\n", name, filtered[0] - plain[0]);
}

int main(void)
{
	double install[ROUNDS];

	for (int round = 0; round < ROUNDS; round++)
		install[round] = measure_in_child(1, -1);
	qsort(install, ROUNDS, sizeof install[0], by_value);
	/* The kernel checks and JIT-compiles the program and works out its verdict for every system
	 * call number it can (the constant-action cache): a one-time cost, paid once per worker start. */
	printf("installing the filter: fastest %.1f us, median %.1f us (%d rounds)\n", install[0] / 1000,
	       install[ROUNDS / 2] / 1000, ROUNDS);
	report("getpid", 0);
	report("ioctl", 1);
	return 0;
}
