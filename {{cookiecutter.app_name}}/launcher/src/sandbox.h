/* The worker's sandbox: what it may do, beyond what it may see (the environment) and who it is. */
#ifndef LAUNCHER_SANDBOX_H
#define LAUNCHER_SANDBOX_H

#include "egress.h"
#include "policy.h"

#include <stddef.h>
#include <stdint.h>

enum { SANDBOX_MAX_MESSAGE = 200 };

/* A number no architecture gives a system call: the launcher's filter answers it with this
 * errno, so that a re-exec knows the filter is already in place. */
#define SANDBOX_PROBE_NR 1001
#define SANDBOX_PROBE_ERRNO 133 /* EHWPOISON */

enum sandbox_filter {
	FILTER_PLAIN,     /* refusals answered EPERM by the kernel, unreported */
	FILTER_WATCHED,   /* refusals go to the supervisor's listener, which reports and answers EPERM */
	FILTER_INHERITED, /* already in place (a re-exec): not installed again */
};

/* What the worker got, for the audit line; filled in as the steps run. */
struct sandbox_status {
	int landlock_abi;        /* > 0: enforced at that ABI; 0: not enforced (see landlock_errno) */
	int landlock_errno;      /* why Landlock is unavailable (best-effort), 0 when off or enforced */
	const struct egress *egress; /* the worker's ports (NULL: the broker, whose connections are its own) */
	bool connect_enforced;   /* Landlock refuses TCP connections to any other port (ABI 4 and later) */
	int keyring_errno;       /* 0: a new session keyring; else why keyctl refused (nothing to hand over) */
	enum sandbox_filter filter;
	int filter_errno;        /* why a watched filter could not be had (then it is plain) */
};

struct sandbox_failure {
	char message[SANDBOX_MAX_MESSAGE]; /* "call(argument): error", one line, no variable's value */
};

/*
 * Leaves root's session, after the drop: setsid() (no controlling terminal or process group of
 * the host's, and a group of the worker's own that its supervisor ends with it; already leading a
 * session, as on a re-exec, is fine; must_lead false accepts keeping a group one leads), then a new, empty session
 * keyring in place of root's, owned by the worker since the drop came first.
 */
int sandbox_leave_root_session(bool must_lead, struct sandbox_status *status, struct sandbox_failure *failure);

/*
 * Landlock (as the policy says; writes beneath tmpdir, this launch's TMPDIR; TCP connections to
 * egress's ports only, when it is confined: NULL for none) and then the
 * system-call filter: with listener, watched where the kernel can (the listener's descriptor is
 * stored there, else -1 stays), else plain; not again where it is already in place. Call it after
 * PR_SET_NO_NEW_PRIVS, before closing descriptors and execve. Fails closed: -1 means the worker
 * must not run.
 */
int sandbox_confine(const struct policy *policy, const char *tmpdir, const struct egress *egress, int *listener,
		    struct sandbox_status *status, struct sandbox_failure *failure);

/* Whether the launcher's filter already confines this process. */
bool sandbox_filter_in_place(void);

/* The name of a system call the filter refuses (for events), or "?". */
const char *sandbox_call_name(uint32_t nr);

/* One audit line on stderr, "launcher: audit: sandbox: ...": what the worker got. */
void sandbox_audit(const struct policy *policy, const struct sandbox_status *status);

#endif
