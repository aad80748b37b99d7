/* What launcher.c, broker.c and lifetime.c share: exit statuses, the one way to fail, and the last steps. */
#ifndef LAUNCHER_LAUNCHER_H
#define LAUNCHER_LAUNCHER_H

#include "egress.h"
#include "policy.h"

#include <sys/types.h>

#ifndef POLICY_PATH
#define POLICY_PATH "/etc/launcher/policy.conf"
#endif
/* Beside the policy, and checked like it: root-owned, writable by nobody else. */
#ifndef BROKER_PATH
#define BROKER_PATH "/etc/launcher/identity_broker.py"
#endif

/* Exit statuses, documented in README.md; the worker's own statuses pass through unchanged. */
enum {
	EXIT_BROKER = 69,    /* the identity broker could not start, or died: the worker is not run, or stopped */
	EXIT_SYSTEM = 71,    /* too many variables, close_range failed: the launcher cannot do its job */
	EXIT_SANDBOX = 72,   /* the sandbox (session, keyring, Landlock when required, seccomp) could not be set up */
	EXIT_PLACEHOLDER = 76, /* the host is in placeholder mode: its reload would replace the worker's environment */
	EXIT_PRIVILEGE = 77, /* could not drop root, or root could be regained, or not root and refused */
	EXIT_POLICY = 78,    /* the policy is missing, unsafe or invalid */
	EXIT_EXEC = 126,     /* execve of the interpreter failed */
};

/* One line on stderr, "launcher: " first, then _exit(status). */
_Noreturn __attribute__((format(printf, 2, 3))) void die(int status, const char *fmt, ...);

/* die(), for a refusal only tampering explains (an unsafe policy, say): a security event first. */
_Noreturn __attribute__((format(printf, 2, 3))) void refuse(int status, const char *fmt, ...);

/* setgroups, setgid, setuid, then proof that root cannot be regained. */
void drop_root(uid_t uid, gid_t gid);

/*
 * After the drop, in the worker and the broker alike: a session and keyring of its own,
 * PR_SET_NO_NEW_PRIVS, then the sandbox (Landlock as the policy says, with the worker's ports
 * or NULL for the broker's own connections; the system-call filter); the audit line when
 * asked. Fails closed (EXIT_SANDBOX).
 */
void confine(const struct policy *policy, const char *tmpdir, const struct egress *egress, bool must_lead, bool audit,
	     int watcher);

/*
 * confine(), descriptors above 2 closed, execve: the last steps of every worker start. watcher:
 * the socket to hand the filter's listener to the supervisor on (watch.c), or -1 for none.
 */
_Noreturn void exec_worker(const struct policy *policy, const char *tmpdir, bool must_lead, int watcher, char **argv,
			   char **env);

/*
 * The identity broker (broker.c): started as its own account with the platform's identity
 * variables, it listens on loopback. Returns its pid and fills the worker's two identity entries.
 */
pid_t broker_start(const struct policy *policy, uid_t uid, gid_t gid, char *endpoint_entry, size_t endpoint_size,
		   char *header_entry, size_t header_size);

/* Closes every descriptor from `first` up (close_range, or what /proc/self/fd lists). */
void close_fds_from(unsigned first);

#endif
