/*
 * The sandbox put in place, from outside sandbox.c: its steps in order, each failing closed
 * (fail.h), and the filter's listener handed to the supervisor (watch.c).
 */
#define _GNU_SOURCE
#include "confine.h"
#include "fail.h"
#include "sandbox.h"
#include "watch.h"

#include <errno.h>
#include <string.h>
#include <sys/prctl.h>

void confine(const struct policy *policy, const char *tmpdir, const struct egress *egress, bool must_lead, bool audit,
	     int watcher)
{
	struct sandbox_status sandbox;
	struct sandbox_failure failure;
	int listener = -1;

	/* After the drop: the new keyring is the account's, and root's is gone with the old one. A
	 * re-exec inside a launch (the filter already in place) has both, and may leave neither: its
	 * setsid and keyctl would only be refused, and reported as an attack. */
	sandbox.keyring_errno = 0;
	if (!sandbox_filter_in_place() && sandbox_leave_root_session(must_lead, &sandbox, &failure) != 0)
		die(EXIT_SANDBOX, "%s", failure.message);
	if (prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) != 0)
		die(EXIT_PRIVILEGE, "prctl(PR_SET_NO_NEW_PRIVS): %s", strerror(errno));
	if (sandbox_confine(policy, tmpdir, egress, watcher >= 0 ? &listener : NULL, &sandbox, &failure) != 0)
		die(EXIT_SANDBOX, "%s", failure.message);
	if (listener >= 0)
		watch_send_listener(watcher, listener);
	if (audit)
		sandbox_audit(policy, &sandbox);
}
