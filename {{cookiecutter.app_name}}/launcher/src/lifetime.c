/*
 * The worker's lifetime. An exploit that survives the worker defeats the platform's answer to a
 * misbehaving worker (restart it), and one that shares the worker's account can signal, read
 * and write every later worker. So:
 *  - the launcher the host started clones a supervisor and stays only to pass signals down and
 *    the exit status up; the supervisor is the subreaper of everything below it;
 *  - the worker leads a process group of its own, which the system-call filter keeps every one of
 *    its processes in (setsid and setpgid refused); when the worker ends, the supervisor kills
 *    that group and the broker's and reaps every process before it reports the exit; when the
 *    host kills the launcher itself, the supervisor hears of it (PR_SET_PDEATHSIG) and does the same;
 *  - with launch-uids, each launch runs as a uid no live launch holds, so no launch can signal,
 *    read (/proc/<pid>/mem, environ) or outlive into another, whatever the kernel lacks; and the
 *    worker's first act is to kill whatever an earlier launch of its uid left (only a supervisor
 *    killed itself, by the OOM killer say, could have left any: one that ended everything marks
 *    its uid's lock so, and the next launch of the uid skips the kill).
 * None of it needs a capability beyond root's setuid, a namespace, Landlock or a cgroup.
 *
 * Start-up is what the host waits for on every worker start, so the processes are made cheaply:
 * the supervisor shares the launcher's memory (clone(CLONE_VM), on a stack of its own), and the
 * worker is a vfork() child until its execve. Neither copies an address space, and neither
 * leaves one to tear down at the end. The price: the three share libc's per-thread data, so the
 * launcher's own loop never reads errno, nothing here calls raise() (it signals the thread libc
 * recorded, the launcher's), and the vfork child makes only system calls (drop.c, sandbox.c)
 * before its execve. Once the vfork child has dropped root, the memory it still shares with the
 * launcher is not dumpable (commit_creds in kernel/cred.c clears it on a credential change): no
 * process of the worker's uid can ptrace it or open its /proc/<pid>/mem before the execve.
 */
#define _GNU_SOURCE
#include "lifetime.h"
#include "events.h"
#include "fail.h"
#include "watch.h"

#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <string.h>
#include <sys/file.h>
#include <sched.h>
#include <sys/mman.h>
#include <sys/prctl.h>
#include <sys/resource.h>
#include <sys/signalfd.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

/* What the host may send the worker; the launcher and the supervisor only pass it on. */
static const int forwarded[] = { SIGTERM, SIGINT, SIGHUP, SIGQUIT, SIGUSR1, SIGUSR2 };
/* The supervisor's death signal for the launcher above it: the host killed the launcher. */
#define LAUNCHER_GONE SIGPWR
enum { END_DEADLINE_MS = 5000, BROKER_GRACE_MS = 50 };
#if defined(__has_feature)
#define SANITIZED (__has_feature(address_sanitizer))
#elif defined(__SANITIZE_ADDRESS__)
#define SANITIZED 1
#else
#define SANITIZED 0
#endif
/* The supervisor's stack (a guard page below it): the worker's start runs on it too, until execve. */
enum { SUPERVISOR_STACK_BYTES = 256 * 1024 };
/* A uid's lock file starts with this byte when its last launch ended with every process it
 * started reaped; anything else (a new file, a launch under way) means there may be leftovers.
 * One byte written in place: cheaper than any change of size or mode (no journal entry). */
static const char ended_clean = 'C', under_way = 'U';

static sigset_t original_mask;
static pid_t supervisor;

static const char *tmpdir_path(const struct policy *p, size_t *len)
{
	const struct setting *tmpdir = policy_setting(p, "TMPDIR", 6);
	const char *path = tmpdir->entry + tmpdir->name_len + 1; /* the parser made sure it is absolute */

	*len = strlen(path);
	while (*len > 1 && path[*len - 1] == '/')
		--*len;
	return path;
}

static void set_tmpdir_entry(const struct policy *p, uid_t uid, struct launch *launch)
{
	size_t len;
	const char *path = tmpdir_path(p, &len);

	snprintf(launch->tmpdir_entry, sizeof launch->tmpdir_entry, "TMPDIR=%.*s/%u", (int)len, path, (unsigned)uid);
}

void launch_tmpdir_of(const struct policy *p, uid_t uid, struct launch *launch)
{
	launch->tmpdir_entry[0] = '\0';
	launch->own_uid = p->launch_uid_count && uid >= p->launch_uid_first &&
			  uid - p->launch_uid_first < p->launch_uid_count;
	if (launch->own_uid)
		set_tmpdir_entry(p, uid, launch);
}

/* The lock directory is where a worker could otherwise plant a lock or a link of its own. */
static int open_launch_directory(const struct policy *p)
{
	char path[POLICY_MAX_LINE];
	size_t len;
	const char *tmpdir = tmpdir_path(p, &len);
	struct stat st;
	int dir;

	snprintf(path, sizeof path, "%.*s", (int)len, tmpdir);
	dir = open(path, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
	if (dir < 0)
		die(EXIT_POLICY, "open(%s): %s (launch-uids makes each launch's TMPDIR in it)", path, strerror(errno));
	if (fstat(dir, &st) != 0)
		die(EXIT_POLICY, "fstat(%s): %s", path, strerror(errno));
	if (st.st_uid != 0 || (st.st_mode & (S_IWGRP | S_IWOTH)))
		refuse(EXIT_POLICY, "%s: must be owned by root and writable by nobody else (launch-uids keeps its locks there)",
		       path);
	return dir;
}

void launch_claim(const struct policy *p, uid_t user_uid, gid_t gid, struct launch *launch)
{
	char name[32];
	struct stat st;
	int dir, lock = -1, own;
	uid_t uid = 0;
	char mark;

	launch->gid = gid;
	launch->uid = user_uid;
	launch->own_uid = false;
	launch->leftovers_possible = false;
	launch->lock = -1;
	launch->tmpdir_entry[0] = '\0';
	if (!p->launch_uid_count)
		return;
	dir = open_launch_directory(p);
	for (unsigned i = 0; i < p->launch_uid_count && lock < 0; i++) {
		uid = (uid_t)(p->launch_uid_first + i);
		snprintf(name, sizeof name, "%u.lock", (unsigned)uid);
		/* Kept open (and so locked) by this launcher and the supervisor, closed in every child. */
		lock = openat(dir, name, O_RDWR | O_CREAT | O_NOFOLLOW | O_CLOEXEC, 0600);
		if (lock < 0)
			die(EXIT_SYSTEM, "open(%s): %s", name, strerror(errno));
		if (flock(lock, LOCK_EX | LOCK_NB) == 0)
			break;
		if (errno != EWOULDBLOCK)
			die(EXIT_SYSTEM, "flock(%s): %s", name, strerror(errno));
		close(lock);
		lock = -1;
	}
	if (lock < 0)
		die(EXIT_SYSTEM, "launch-uids: all %u uids are held by running launches (widen the range)",
		    p->launch_uid_count);
	launch->leftovers_possible = pread(lock, &mark, 1, 0) != 1 || mark != ended_clean;
	/* Under way from here: a supervisor that dies before its end leaves it so. */
	if (!launch->leftovers_possible && pwrite(lock, &under_way, 1, 0) != 1)
		die(EXIT_SYSTEM, "write(%s): %s", name, strerror(errno));
	snprintf(name, sizeof name, "%u", (unsigned)uid);
	if (mkdirat(dir, name, 0700) != 0 && errno != EEXIST)
		die(EXIT_SYSTEM, "mkdir(%s): %s", name, strerror(errno));
	own = openat(dir, name, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
	if (own < 0 || fstat(own, &st) != 0)
		die(EXIT_SYSTEM, "open(%s): %s", name, strerror(errno));
	if ((st.st_uid != uid || st.st_gid != gid || (st.st_mode & 07777) != 0700) &&
	    (fchown(own, uid, gid) != 0 || fchmod(own, 0700) != 0))
		die(EXIT_SYSTEM, "chown(%s, %u): %s", name, (unsigned)uid, strerror(errno));
	close(own);
	close(dir);
	launch->lock = lock;
	launch->uid = uid;
	launch->own_uid = true;
	set_tmpdir_entry(p, uid, launch);
}

int exit_code_of(int status)
{
	return WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status);
}

/* Ends as the child ended: its exit status, or killed by its signal (without a core of ours), so
 * that the host sees what it would have seen of the worker alone. */
static _Noreturn void end_as(int status)
{
	struct rlimit no_core = { 0, 0 };
	sigset_t sig;

	if (WIFSIGNALED(status)) {
		(void)setrlimit(RLIMIT_CORE, &no_core);
		(void)signal(WTERMSIG(status), SIG_DFL);
		sigemptyset(&sig);
		sigaddset(&sig, WTERMSIG(status));
		(void)sigprocmask(SIG_UNBLOCK, &sig, NULL);
		(void)kill(getpid(), WTERMSIG(status)); /* not raise(): see the top of this file */
	}
	_exit(exit_code_of(status));
}

/* In a new child: the signal mask the launcher was started with, and SIGPIPE's default back. */
static void restore_signals(void)
{
	if (sigprocmask(SIG_SETMASK, &original_mask, NULL) != 0 || signal(SIGPIPE, SIG_DFL) == SIG_ERR)
		die(EXIT_SYSTEM, "sigprocmask: %s", strerror(errno));
}

pid_t spawn_child(void (*start)(void *), void *arg)
{
	pid_t pid = vfork();

	if (pid == 0) {
		restore_signals();
		start(arg);
		_exit(EXIT_SYSTEM); /* start execs or dies */
	}
	if (pid < 0)
		die(EXIT_SYSTEM, "vfork: %s", strerror(errno));
	return pid;
}

pid_t fork_child(void)
{
	pid_t pid = fork();

	if (pid < 0)
		die(EXIT_SYSTEM, "fork: %s", strerror(errno));
	if (pid == 0)
		restore_signals();
	return pid;
}

/* Set after the drop (a credential change clears it), then checked: the parent may already be gone. */
void die_with_parent(void)
{
	if (prctl(PR_SET_PDEATHSIG, SIGKILL, 0, 0, 0) != 0)
		die(EXIT_SYSTEM, "prctl(PR_SET_PDEATHSIG): %s", strerror(errno));
	if (getppid() != supervisor)
		die(EXIT_SYSTEM, "the launcher (pid %d) is gone", (int)supervisor);
}

void end_leftovers_of_uid(void)
{
	/* As this uid alone: every process the kernel lets it signal is this uid's, and none of a
	 * live launch's (each holds its uid's lock). ESRCH: there was none. */
	if (kill(-1, SIGKILL) != 0 && errno != ESRCH)
		die(EXIT_SYSTEM, "kill(-1) as uid %u: %s", (unsigned)getuid(), strerror(errno));
}

static sigset_t signals_with(int extra)
{
	sigset_t set;

	sigemptyset(&set);
	sigaddset(&set, SIGCHLD);
	for (size_t i = 0; i < sizeof forwarded / sizeof forwarded[0]; i++)
		sigaddset(&set, forwarded[i]);
	if (extra)
		sigaddset(&set, extra);
	return set;
}

/* The launcher's side: forward the host's signals, and exit as the supervisor exits. */
static _Noreturn void relay(pid_t child)
{
	sigset_t set = signals_with(0);

	for (;;) {
		int sig = sigwaitinfo(&set, NULL), status;

		/* errno is the supervisor's too: with a valid set, only an interruption fails. */
		if (sig < 0)
			continue;
		if (sig != SIGCHLD) {
			(void)kill(child, sig);
			continue;
		}
		if (waitpid(child, &status, WNOHANG) == child)
			end_as(status);
	}
}

static void (*supervisor_run)(void *);
static void *supervisor_arg;
static pid_t launcher;

/* The supervisor's first steps, on its own stack; then the launch goes on in supervisor_run. */
static int supervisor_start(void *unused)
{
	sigset_t gone = signals_with(LAUNCHER_GONE);

	(void)unused;
	if (sigprocmask(SIG_BLOCK, &gone, NULL) != 0 || prctl(PR_SET_PDEATHSIG, LAUNCHER_GONE, 0, 0, 0) != 0)
		die(EXIT_SYSTEM, "prctl(PR_SET_PDEATHSIG): %s", strerror(errno));
	if (getppid() != launcher)
		_exit(128 + SIGKILL); /* the host already killed the launcher: nothing was started */
	/* The worker's orphans come back to this process, which ends and reaps them: no zombies. */
	if (prctl(PR_SET_CHILD_SUBREAPER, 1, 0, 0, 0) != 0)
		die(EXIT_SYSTEM, "prctl(PR_SET_CHILD_SUBREAPER): %s", strerror(errno));
	/* It writes the worker's output on to the host, which may be gone: a failed write, not a death. */
	if (signal(SIGPIPE, SIG_IGN) == SIG_ERR)
		die(EXIT_SYSTEM, "signal(SIGPIPE): %s", strerror(errno));
	supervisor = getpid();
	supervisor_run(supervisor_arg);
	_exit(EXIT_SYSTEM); /* supervisor_run ends in supervise() */
}

_Noreturn void become_supervisor(void (*run)(void *), void *arg)
{
	sigset_t held = signals_with(0);
	long page = sysconf(_SC_PAGESIZE);
	char *stack;
	pid_t child;

	/* Held from now on and taken by sigwaitinfo: a SIGTERM during start-up still reaches the worker. */
	if (sigprocmask(SIG_BLOCK, &held, &original_mask) != 0)
		die(EXIT_SYSTEM, "sigprocmask: %s", strerror(errno));
	stack = mmap(NULL, SUPERVISOR_STACK_BYTES, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS | MAP_STACK, -1, 0);
	if (stack == MAP_FAILED || page <= 0 || mprotect(stack, (size_t)page, PROT_NONE) != 0)
		die(EXIT_SYSTEM, "mmap (the supervisor's stack): %s", strerror(errno));
	launcher = getpid();
	supervisor_run = run;
	supervisor_arg = arg;
#if SANITIZED
	/* AddressSanitizer records each thread's stack and cannot follow a clone onto another: the
	 * sanitised build forks (the supervisor's code is the same from its first step on). */
	child = fork();
	if (child == 0)
		supervisor_start(NULL);
#else
	child = clone(supervisor_start, stack + SUPERVISOR_STACK_BYTES, CLONE_VM | SIGCHLD, NULL);
#endif
	if (child < 0)
		die(EXIT_SYSTEM, "clone: %s", strerror(errno));
	relay(child);
}

/*
 * Kills the worker's and the broker's groups (each leads its own; the filter keeps every process
 * of theirs in it) and reaps every child this subreaper has, so that nothing remains. Called
 * while the worker and the broker are still unreaped, so their pids (the groups' ids) cannot
 * have been reused. Returns the worker's wait status; the broker's goes to *broker_status.
 */
static int end_everything(pid_t broker, pid_t worker, int *broker_status)
{
	struct timespec start, now, tick = { 0, BROKER_GRACE_MS * 1000 * 1000 };
	sigset_t chld;
	int worker_status = -1;

	sigemptyset(&chld);
	sigaddset(&chld, SIGCHLD);
	clock_gettime(CLOCK_MONOTONIC, &start);
	/* The broker first gets a SIGTERM, to tell the events it still holds; after its grace, SIGKILL.
	 * By the clock: a SIGCHLD already pending must not cut the grace short. */
	if (broker > 0)
		(void)kill(broker, SIGTERM);
	for (;;) {
		long elapsed_ms;
		int status;
		pid_t pid;

		clock_gettime(CLOCK_MONOTONIC, &now);
		elapsed_ms = (now.tv_sec - start.tv_sec) * 1000 + (now.tv_nsec - start.tv_nsec) / 1000000;
		if (elapsed_ms > END_DEADLINE_MS)
			die(EXIT_SYSTEM, "processes of the worker's survived SIGKILL for %d s", END_DEADLINE_MS / 1000);
		(void)kill(-worker, SIGKILL);
		(void)kill(worker, SIGKILL);
		if (broker > 0 && elapsed_ms >= BROKER_GRACE_MS) {
			(void)kill(-broker, SIGKILL);
			(void)kill(broker, SIGKILL);
		}
		while ((pid = waitpid(-1, &status, WNOHANG)) > 0) {
			if (pid == worker)
				worker_status = status;
			if (pid == broker && broker_status)
				*broker_status = status;
		}
		if (pid < 0 && errno == ECHILD)
			return worker_status < 0 ? EXIT_SYSTEM << 8 : worker_status;
		(void)sigtimedwait(&chld, NULL, &tick);
	}
}

/* Every process the worker and the broker started is gone and reaped: the next launch of this
 * uid need not look for leftovers. A failed mark only costs that launch its kill(-1). */
static void mark_ended_clean(const struct launch *launch)
{
	if (launch->lock >= 0 && pwrite(launch->lock, &ended_clean, 1, 0) != 1) {
		/* Left unmarked: the next launch of the uid looks for leftovers, as after a crash. */
	}
}

/* Which child ended, without reaping it (so that its pid stays its own while the groups die). */
static pid_t ended_child(void)
{
	siginfo_t info;

	info.si_pid = 0;
	if (waitid(P_ALL, 0, &info, WEXITED | WNOHANG | WNOWAIT) != 0)
		return 0;
	return info.si_pid;
}

/* Until the worker has ended, without reaping it (its pid stays its own while the groups die). */
static void wait_for_end_of(pid_t worker)
{
	siginfo_t info;

	while (waitid(P_PID, (id_t)worker, &info, WEXITED | WNOWAIT) != 0 && errno == EINTR) {
	}
}

/* The end of a launch, everything reaped: the worker's last output and the events' counts out,
 * then its status up. */
static _Noreturn void finish(struct watch *watch, const struct launch *launch, pid_t worker, int status)
{
	mark_ended_clean(launch);
	watch_drain(watch);
	event_flush(worker);
	end_as(status);
}

_Noreturn void supervise(pid_t broker, pid_t worker, struct watch *watch, const struct launch *launch)
{
	sigset_t set = signals_with(LAUNCHER_GONE);
	int signals = signalfd(-1, &set, SFD_CLOEXEC);

	if (signals < 0)
		die(EXIT_SYSTEM, "signalfd: %s", strerror(errno));
	for (;;) {
		struct pollfd fds[1 + WATCH_POLLFDS];
		struct signalfd_siginfo info;
		size_t n = watch_pollfds(watch, fds + 1);
		pid_t pid;

		fds[0] = (struct pollfd){ .fd = signals, .events = POLLIN };
		if (poll(fds, 1 + n, -1) < 0) {
			if (errno == EINTR)
				continue;
			die(EXIT_SYSTEM, "poll: %s", strerror(errno));
		}
		watch_handle(watch, fds + 1, n);
		if (watch->filter_released) {
			/* The worker is exiting with everything it started: wait for its end here, rather
			 * than wake once more as its pipes close and again for its SIGCHLD. */
			wait_for_end_of(worker);
			finish(watch, launch, worker, end_everything(broker, worker, NULL));
		}
		if (!(fds[0].revents & POLLIN) || read(signals, &info, sizeof info) != sizeof info)
			continue;
		if (info.ssi_signo == LAUNCHER_GONE) {
			(void)end_everything(broker, worker, NULL);
			finish(watch, launch, worker, SIGKILL);
		}
		if (info.ssi_signo != SIGCHLD) {
			(void)kill(worker, (int)info.ssi_signo);
			continue;
		}
		while ((pid = ended_child()) > 0) {
			if (pid == worker)
				finish(watch, launch, worker, end_everything(broker, worker, NULL));
			if (pid == broker) {
				/* A worker without its broker would fail every token request: stop it, the
				 * host starts a new one. */
				int status = 0;
				(void)end_everything(broker, worker, &status);
				mark_ended_clean(launch);
				watch_drain(watch);
				event_flush(worker);
				die(EXIT_BROKER, "identity broker (pid %d) ended with status %d: the worker was stopped",
				    (int)broker, exit_code_of(status));
			}
			/* An orphan of the worker's, come back to this subreaper: reaped, no zombie. */
			(void)waitpid(pid, NULL, 0);
		}
	}
}
