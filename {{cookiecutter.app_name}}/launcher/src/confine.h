/* The confinement every child of the supervisor takes on after the drop, the worker and the broker alike. */
#ifndef LAUNCHER_CONFINE_H
#define LAUNCHER_CONFINE_H

#include "egress.h"
#include "policy.h"

#include <stdbool.h>

/*
 * After the drop, in the worker and the broker alike: a session and keyring of its own,
 * PR_SET_NO_NEW_PRIVS, then the sandbox (Landlock as the policy says, with the worker's ports
 * or NULL for the broker's own connections; the system-call filter); the audit line when
 * asked. Fails closed (EXIT_SANDBOX).
 */
void confine(const struct policy *policy, const char *tmpdir, const struct egress *egress, bool must_lead, bool audit,
	     int watcher);

#endif
