/*
 * The worker's lifetime: nothing it starts outlives it, and no launch reaches into another.
 * launcher/README.md, "Lifetime", says which mechanism holds on which kernel.
 */
#ifndef LAUNCHER_LIFETIME_H
#define LAUNCHER_LIFETIME_H

#include "policy.h"
#include "watch.h"

#include <sys/types.h>

enum { LAUNCH_TMPDIR_ENTRY_MAX = POLICY_MAX_LINE + 32 };

/* This launch's account and directory. */
struct launch {
	uid_t uid;
	gid_t gid;
	bool own_uid;                                 /* from launch-uids: no other live launch runs as uid */
	bool leftovers_possible;                      /* uid's last launch did not end clean: kill(-1) first */
	int lock;                                     /* uid's lock (held while this launch lives), or -1 */
	char tmpdir_entry[LAUNCH_TMPDIR_ENTRY_MAX];   /* "TMPDIR=<policy's>/<uid>", or "" without launch-uids */
};

/*
 * As root, with launch-uids: takes the first uid of the range that no live launch holds (a lock
 * beneath TMPDIR, held until this launcher and its supervisor end) and makes its TMPDIR, owned by
 * that uid. Without launch-uids the worker runs as the user's uid. Fails closed.
 */
void launch_claim(const struct policy *policy, uid_t user_uid, gid_t gid, struct launch *launch);

/* Not as root: the TMPDIR entry of a process whose uid is one of launch-uids, or "" otherwise. */
void launch_tmpdir_of(const struct policy *policy, uid_t uid, struct launch *launch);

/*
 * The launcher the host started stays to pass the host's signals down and the exit status up;
 * run(arg) goes on in its child, the supervisor (sharing its memory, on a stack of its own): the
 * subreaper of everything the worker starts, which ends it all when the worker ends, and also
 * when the host kills the launcher (SIGKILL). run ends in supervise().
 */
_Noreturn void become_supervisor(void (*run)(void *), void *arg);

/* vfork(): start(arg) runs in the child, sharing the caller's memory until it execs (or dies:
 * start never returns), with the signal mask the launcher was started with. */
pid_t spawn_child(void (*start)(void *), void *arg);

/* fork(); the child gets back the signal mask the launcher was started with. */
pid_t fork_child(void);

/* In a child of the supervisor, after the drop: die with it (SIGKILL) rather than outlive it. */
void die_with_parent(void);

/* In the worker, as a launch uid of its own whose last launch did not end clean: ends whatever
 * that launch left. */
void end_leftovers_of_uid(void);

/* What the host sees of a child's end: its exit status, or 128 + the signal that killed it. */
int exit_code_of(int status);

/*
 * The supervisor's loop: signals to the worker, the worker's refused calls and output (watch.c);
 * when the worker ends (or the broker, or the launcher above), every process of the worker's
 * group and the broker's is killed and reaped before the exit status goes up, and the uid's lock
 * marked so. broker is 0 when there is none.
 */
_Noreturn void supervise(pid_t broker, pid_t worker, struct watch *watch, const struct launch *launch);

#endif
