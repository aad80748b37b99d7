/* What a child of root gives up before it runs anything: root itself, and the descriptors it inherited. */
#ifndef LAUNCHER_DROP_H
#define LAUNCHER_DROP_H

#include <sys/types.h>

/* setgroups, setgid, setuid, then proof that root cannot be regained. */
void drop_root(uid_t uid, gid_t gid);

/* Closes every descriptor from `first` up (close_range, or what /proc/self/fd lists). */
void close_fds_from(unsigned first);

#endif
