/*
 * For `make bench` only, never part of SOURCES: sandbox.c with sandbox_confine() doing nothing,
 * so that the bench can time the launcher with and without Landlock and the system-call filter.
 */
#define sandbox_confine sandbox_confine_measured
#include "sandbox.c"
#undef sandbox_confine

int sandbox_confine(const struct policy *p, const char *tmpdir, const struct egress *egress, int *listener,
		    struct sandbox_status *status, struct sandbox_failure *failure)
{
	(void)p;
	(void)tmpdir;
	(void)egress;
	(void)listener;
	status->filter = FILTER_PLAIN;
	status->filter_errno = 0;
	(void)failure;
	status->landlock_abi = 0;
	status->landlock_errno = 0;
	return 0;
}
