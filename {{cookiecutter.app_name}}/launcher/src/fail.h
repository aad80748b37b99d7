/* The one way to fail, for every part of the launcher: an exit status and one line on stderr. */
#ifndef LAUNCHER_FAIL_H
#define LAUNCHER_FAIL_H

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

#endif
