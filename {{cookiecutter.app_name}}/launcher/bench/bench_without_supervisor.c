/*
 * For `make bench` only, never part of SOURCES: lifetime.c without the supervisor, and so
 * without its watch (watch.c), so that the bench can time the launcher against itself as it was
 * before it stayed for the worker's lifetime: no new process, the worker exec'd in the
 * launcher's own process with the host's stdout and stderr (launch-uids kept).
 */
/* Its launches leave their uid's lock as they find it (lifetime.c marks it): none of them could
 * say it ended clean, and a mark of "under way" would cost the supervised launches timed beside
 * them a kill(-1) they do not pay in the image. */
#define _GNU_SOURCE
#include <unistd.h> /* declared before the stand-in below takes its name */
#define pwrite(fd, buffer, count, offset) ((ssize_t)(count))
#define become_supervisor become_supervisor_measured
#define spawn_child spawn_child_measured
#define die_with_parent die_with_parent_measured
#include "lifetime.c"
#undef become_supervisor
#undef spawn_child
#undef die_with_parent

_Noreturn void become_supervisor(void (*run)(void *), void *arg)
{
	run(arg);
	_exit(EXIT_SYSTEM);
}

pid_t spawn_child(void (*start)(void *), void *arg)
{
	start(arg); /* "the child" is the launcher itself: it goes on to exec the worker */
	_exit(EXIT_SYSTEM);
}

void die_with_parent(void)
{
}

/* No supervisor, nothing to watch with: the filter gets no listener, the output is the host's. */
void watch_prepare(struct watch *watch)
{
	(void)watch;
}

int watch_in_worker(struct watch *watch)
{
	(void)watch;
	return -1;
}

void watch_send_listener(int control, int listener)
{
	(void)control;
	(void)listener;
}

void watch_in_supervisor(struct watch *watch)
{
	(void)watch;
}

size_t watch_pollfds(const struct watch *watch, struct pollfd *fds)
{
	(void)watch;
	(void)fds;
	return 0;
}

void watch_handle(struct watch *watch, const struct pollfd *fds, size_t n)
{
	(void)watch;
	(void)fds;
	(void)n;
}

void watch_drain(struct watch *watch)
{
	(void)watch;
}
