/*
 * For `make bench` only, never part of SOURCES: lifetime.c without the supervisor, so that the
 * bench can time the launcher against itself as it was before it stayed for the worker's
 * lifetime: no fork, the worker exec'd in the launcher's own process (launch-uids kept).
 */
#define become_supervisor become_supervisor_measured
#define fork_child fork_child_measured
#define die_with_parent die_with_parent_measured
#include "lifetime.c"
#undef become_supervisor
#undef fork_child
#undef die_with_parent

void become_supervisor(void)
{
}

pid_t fork_child(void)
{
	return 0; /* "the child" is the launcher itself: it goes on to exec the worker */
}

void die_with_parent(void)
{
}
