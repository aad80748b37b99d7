/*
 * For `make bench-detection` only, never part of SOURCES: sandbox.c installing the same filter
 * without a listener (the kernel answers EPERM itself; nothing is reported), so that the bench
 * can time the launcher with and without the watch on refused calls.
 */
#define sandbox_confine sandbox_confine_watched
#include "sandbox.c"
#undef sandbox_confine

int sandbox_confine(const struct policy *p, const char *tmpdir, const struct egress *egress, int *listener,
		    struct sandbox_status *status, struct sandbox_failure *failure)
{
	(void)listener;
	return sandbox_confine_watched(p, tmpdir, egress, NULL, status, failure);
}
