/* The worker's sandbox: what it may do, beyond what it may see (the environment) and who it is. */
#ifndef LAUNCHER_SANDBOX_H
#define LAUNCHER_SANDBOX_H

#include "policy.h"

#include <stddef.h>

enum { SANDBOX_MAX_MESSAGE = 200 };

/* What the worker got, for the audit line; filled in as the steps run. */
struct sandbox_status {
	int landlock_abi;        /* > 0: enforced at that ABI; 0: not enforced (see landlock_errno) */
	int landlock_errno;      /* why Landlock is unavailable (best-effort), 0 when off or enforced */
	int keyring_errno;       /* 0: a new session keyring; else why keyctl refused (nothing to hand over) */
};

struct sandbox_failure {
	char message[SANDBOX_MAX_MESSAGE]; /* "call(argument): error", one line, no variable's value */
};

/*
 * Leaves the host's session: the worker gets no controlling terminal of root's and no job
 * control over root's processes. Already a session leader (a re-exec of itself) is fine.
 */
int sandbox_leave_session(struct sandbox_failure *failure);

/*
 * Replaces the session keyring inherited from root with a new, empty one. Call it after the
 * drop, so that the new keyring belongs to the worker and nothing of root's remains.
 */
int sandbox_leave_keyring(struct sandbox_status *status, struct sandbox_failure *failure);

/*
 * Landlock (as the policy says) and then the system-call filter. Call it after
 * PR_SET_NO_NEW_PRIVS, before closing descriptors and execve. Fails closed: -1 means the worker
 * must not run.
 */
int sandbox_confine(const struct policy *policy, struct sandbox_status *status, struct sandbox_failure *failure);

/* One audit line, "launcher: audit: sandbox: ...", into line (at least 256 bytes). */
void sandbox_describe(const struct policy *policy, const struct sandbox_status *status, char *line, size_t size);

#endif
