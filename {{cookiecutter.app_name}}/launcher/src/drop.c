/*
 * Dropping root for good (the worker and the broker alike), and closing what the host left open.
 * Every step fails closed (fail.h).
 */
#define _GNU_SOURCE
#include "drop.h"
#include "fail.h"

#include <dirent.h>
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/syscall.h>
#include <unistd.h>

/*
 * After this, nothing the worker runs can become root again: checked, not assumed. The system
 * calls themselves, not libc's wrappers: those change every thread of a process by signalling
 * them (the launcher has one), and the worker drops root in a vfork child (lifetime.c) that
 * must leave libc's shared state alone. Credentials are per process, as the wrappers make them.
 */
void drop_root(uid_t uid, gid_t gid)
{
	uid_t ruid, euid, suid;
	gid_t rgid, egid, sgid;

	if (syscall(SYS_setgroups, 0, NULL) != 0)
		die(EXIT_PRIVILEGE, "setgroups(0): %s", strerror(errno));
	if (syscall(SYS_setresgid, gid, gid, gid) != 0)
		die(EXIT_PRIVILEGE, "setgid(%u): %s", (unsigned)gid, strerror(errno));
	if (syscall(SYS_setresuid, uid, uid, uid) != 0)
		die(EXIT_PRIVILEGE, "setuid(%u): %s", (unsigned)uid, strerror(errno));
	if (syscall(SYS_setresuid, 0, 0, 0) == 0 || syscall(SYS_setresgid, 0, 0, 0) == 0)
		die(EXIT_PRIVILEGE, "setuid(0): succeeded after dropping root");
	if (getresuid(&ruid, &euid, &suid) != 0 || ruid != uid || euid != uid || suid != uid)
		die(EXIT_PRIVILEGE, "getresuid(%u): not every uid was changed", (unsigned)uid);
	if (getresgid(&rgid, &egid, &sgid) != 0 || rgid != gid || egid != gid || sgid != gid)
		die(EXIT_PRIVILEGE, "getresgid(%u): not every gid was changed", (unsigned)gid);
	if (getgroups(0, NULL) != 0)
		die(EXIT_PRIVILEGE, "getgroups(0): supplementary groups remain");
}

void close_fds_from(unsigned first)
{
	DIR *dir;
	struct dirent *d;
	struct rlimit lim;

#ifdef SYS_close_range
	if (syscall(SYS_close_range, first, ~0U, 0U) == 0)
		return;
	if (errno != ENOSYS)
		die(EXIT_SYSTEM, "close_range(%u): %s", first, strerror(errno));
#endif
	/* Kernels before 5.9: close what /proc lists, or everything up to the limit. */
	dir = opendir("/proc/self/fd");
	if (dir) {
		int own = dirfd(dir);
		while ((d = readdir(dir)) != NULL) {
			int fd = atoi(d->d_name);
			if (fd >= (int)first && fd != own)
				close(fd);
		}
		closedir(dir);
		return;
	}
	if (getrlimit(RLIMIT_NOFILE, &lim) != 0)
		die(EXIT_SYSTEM, "getrlimit(RLIMIT_NOFILE): %s", strerror(errno));
	for (rlim_t fd = first; fd < lim.rlim_cur && fd < 65536; fd++)
		close((int)fd);
}
