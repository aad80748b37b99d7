/*
 * launcher: the `python` that the Functions host starts. The host runs as root and its environment
 * holds the platform's secrets (storage keys, encryption keys, registry passwords, every app setting
 * again as APPSETTING_*). The worker runs the function code, so one bug there would hand all of that
 * over. This program stands between them: it reads a root-owned policy, keeps only the variables the
 * policy allows, drops root for good and execve()s the real interpreter with argv unchanged.
 *
 * As root it stays, with a supervisor below it (lifetime.c), as the parent of the worker and,
 * when the platform gave a managed identity, of the identity broker (broker.c): nothing the
 * worker starts outlives it, and the worker never sees the platform's identity header.
 *
 * Every step fails closed: one line on stderr naming the file and line or the call, a distinct exit
 * status (see README.md), and nothing is run. No variable's value is ever printed.
 */
#define _GNU_SOURCE
#include "broker.h"
#include "confine.h"
#include "drop.h"
#include "egress.h"
#include "fail.h"
#include "lifetime.h"
#include "policy.h"
#include "watch.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#ifndef POLICY_PATH
#define POLICY_PATH "/etc/launcher/policy.conf"
#endif

/* Far above any real host (a Functions host passes about a hundred). */
enum { LAUNCHER_MAX_ENV = 4096 };

extern char **environ;

/* Whoever can write the policy's directory can replace the file itself, whatever its own mode. */
static void check_policy_directory(void)
{
	char dir[sizeof POLICY_PATH];
	struct stat st;
	char *slash;

	memcpy(dir, POLICY_PATH, sizeof dir);
	slash = strrchr(dir, '/'); /* the Makefile accepts absolute paths only */
	*(slash == dir ? slash + 1 : slash) = '\0'; /* "/policy.conf" lives in "/" */
	if (stat(dir, &st) != 0)
		die(EXIT_POLICY, "stat(%s): %s", dir, strerror(errno));
	if (st.st_uid != 0)
		refuse(EXIT_POLICY, "%s: owned by uid %u, not root (chown root)", dir, (unsigned)st.st_uid);
	if (st.st_mode & (S_IWGRP | S_IWOTH))
		refuse(EXIT_POLICY, "%s: writable by group or others (chmod go-w)", dir);
}

/* Reads fd into buf until end of file or until buf is full, then closes it: the length read. A
 * caller tells a file that filled buf (too large) from one that fit by giving one byte to spare. */
static size_t read_file(int fd, const char *file, char *buf, size_t size)
{
	size_t len = 0;

	while (len < size) {
		ssize_t n = read(fd, buf + len, size - len);
		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0)
			die(EXIT_POLICY, "read(%s): %s", file, strerror(errno));
		if (n == 0)
			break;
		len += (size_t)n;
	}
	close(fd);
	return len;
}

/* The policy decides what the worker sees, so anyone who could edit it would own the worker too. */
static size_t read_policy(char *text)
{
	struct stat st;
	size_t len;
	int fd;

	check_policy_directory();
	fd = open(POLICY_PATH, O_RDONLY | O_NOFOLLOW | O_CLOEXEC | O_NOCTTY);

	if (fd < 0)
		die(EXIT_POLICY, "open(%s): %s", POLICY_PATH, strerror(errno));
	if (fstat(fd, &st) != 0)
		die(EXIT_POLICY, "fstat(%s): %s", POLICY_PATH, strerror(errno));
	if (!S_ISREG(st.st_mode))
		die(EXIT_POLICY, "%s: not a regular file", POLICY_PATH);
	if (st.st_uid != 0)
		refuse(EXIT_POLICY, "%s: owned by uid %u, not root (chown root)", POLICY_PATH, (unsigned)st.st_uid);
	if (st.st_mode & (S_IWGRP | S_IWOTH))
		refuse(EXIT_POLICY, "%s: writable by group or others (chmod go-w)", POLICY_PATH);
	if (st.st_size > POLICY_MAX_BYTES)
		die(EXIT_POLICY, "%s: larger than %d bytes", POLICY_PATH, POLICY_MAX_BYTES);
	len = read_file(fd, POLICY_PATH, text, (size_t)POLICY_MAX_BYTES + 1);
	if (len > POLICY_MAX_BYTES)
		die(EXIT_POLICY, "%s: larger than %d bytes", POLICY_PATH, POLICY_MAX_BYTES);
	return len;
}

/* A writable interpreter would let whoever can write it run code with the worker's environment. */
static void check_exec(const struct policy *p)
{
	struct stat st;

	if (stat(p->exec, &st) != 0)
		die(EXIT_POLICY, "%s:%u: exec %s: %s", POLICY_PATH, p->exec_line, p->exec, strerror(errno));
	if (!S_ISREG(st.st_mode) || !(st.st_mode & S_IXUSR))
		die(EXIT_POLICY, "%s:%u: exec %s: not an executable file", POLICY_PATH, p->exec_line, p->exec);
	if (st.st_mode & (S_IWGRP | S_IWOTH))
		refuse(EXIT_POLICY, "%s:%u: exec %s: writable by group or others", POLICY_PATH, p->exec_line, p->exec);
	if (st.st_uid != 0)
		refuse(EXIT_POLICY, "%s:%u: exec %s: owned by uid %u, not root", POLICY_PATH, p->exec_line, p->exec,
		       (unsigned)st.st_uid);
}

static int lookup_id(const char *file, const char *name, size_t name_len, int field, unsigned *id, unsigned *next)
{
	static char buf[ACCOUNT_MAX_BYTES];
	size_t len;
	int fd;

	if (parse_id(name, name_len, id) == 0)
		return 0;
	fd = open(file, O_RDONLY | O_CLOEXEC | O_NOCTTY);
	if (fd < 0)
		die(EXIT_POLICY, "open(%s): %s", file, strerror(errno));
	len = read_file(fd, file, buf, sizeof buf);
	if (len == sizeof buf)
		die(EXIT_POLICY, "%s: %zu bytes or more", file, sizeof buf);
	switch (account_ids(buf, len, name, name_len, field, id, next)) {
	case 0:
		return 0;
	case -2:
		die(EXIT_POLICY, "%s: malformed entry for %.*s", file, (int)name_len, name);
	default:
		return -1;
	}
}

/* `user` or `broker`: NAME, NAME:GROUP or UID:GID, resolved without NSS; never root. */
static void resolve_account(const char *directive, const char *account, unsigned line, uid_t *uid, gid_t *gid)
{
	const char *colon = strchr(account, ':');
	size_t user_len = colon ? (size_t)(colon - account) : strlen(account);
	unsigned u = 0, g = 0;

	if (lookup_id("/etc/passwd", account, user_len, 2, &u, &g) != 0)
		die(EXIT_POLICY, "%s:%u: %s %.*s: not in /etc/passwd", POLICY_PATH, line, directive, (int)user_len, account);
	if (colon && lookup_id("/etc/group", colon + 1, strlen(colon + 1), 2, &g, NULL) != 0)
		die(EXIT_POLICY, "%s:%u: group %s: not in /etc/group", POLICY_PATH, line, colon + 1);
	if (u == 0 || g == 0)
		die(EXIT_POLICY, "%s:%u: %s %s resolves to uid %u gid %u: the %s must not be root", POLICY_PATH, line,
		    directive, account, u, g, strcmp(directive, "user") == 0 ? "worker" : "broker");
	*uid = (uid_t)u;
	*gid = (gid_t)g;
}

/* Names only, never values; bytes that could garble a log line are shown as '?'. */
static void audit_dropped(const char *entry, size_t name_len)
{
	char line[POLICY_MAX_LINE + 32];
	size_t n = 0;
	const char *prefix = "launcher: audit: dropped ";

	n = strlen(prefix);
	memcpy(line, prefix, n);
	if (name_len > POLICY_MAX_LINE)
		name_len = POLICY_MAX_LINE;
	for (size_t i = 0; i < name_len; i++)
		line[n++] = entry[i] > 0x20 && entry[i] < 0x7f ? entry[i] : '?';
	line[n++] = '\n';
	if (write(STDERR_FILENO, line, n) < 0) {
		/* Audit output is best effort; the filtering itself already happened. */
	}
}

/*
 * The worker's environment: allowed host variables (first occurrence only), then every set, then
 * room for the broker's two identity entries. A fixed array: no allocator to start, and a host
 * with more variables than this is not normal. The identity variables follow their own rule:
 * as root they are the platform's and are always dropped (the broker's replace them); not as
 * root, with a broker in the policy, they are the broker's, handed down by an earlier launch.
 */
static char **build_env(const struct policy *p, bool as_root, size_t *count)
{
	static char *env[LAUNCHER_MAX_ENV + POLICY_MAX_RULES + 3];
	size_t kept = 0;

	for (size_t i = 0; environ[i]; i++) {
		const char *entry = environ[i];
		const char *eq = strchr(entry, '=');
		size_t name_len = eq ? (size_t)(eq - entry) : strlen(entry);
		bool identity = policy_is_identity_variable(entry, name_len);
		bool keep = eq && (identity ? !as_root && p->broker : policy_allows(p, entry, name_len)) &&
			    !policy_setting(p, entry, name_len);

		if (i == LAUNCHER_MAX_ENV)
			die(EXIT_SYSTEM, "environ: more than %d variables", LAUNCHER_MAX_ENV);
		for (size_t j = 0; keep && j < kept; j++)
			keep = strncmp(env[j], entry, name_len + 1) != 0;
		if (keep)
			env[kept++] = (char *)entry;
		else if (p->audit)
			audit_dropped(eq ? entry : "(an entry without '=')", eq ? name_len : 22);
	}
	for (size_t i = 0; i < p->n_set; i++)
		env[kept++] = (char *)p->set[i].entry;
	env[kept] = NULL;
	*count = kept;
	return env;
}

/*
 * confine(), descriptors above 2 closed, execve: the last steps of every worker start. watcher:
 * the socket to hand the filter's listener to the supervisor on (watch.c), or -1 for none.
 */
static _Noreturn void exec_worker(const struct policy *policy, const char *tmpdir, bool must_lead, int watcher,
				  char **argv, char **env)
{
	static struct egress egress;
	char message[EGRESS_MAX_MESSAGE];

	if (egress_of_worker(policy, argv, env, &egress, message, sizeof message) != 0)
		die(EXIT_SANDBOX, "%s", message);
	confine(policy, tmpdir, &egress, must_lead, policy->audit, watcher);
	close_fds_from(3); /* the host's open sockets and files must not leak into the worker */
	execve(policy->exec, argv, env);
	die(EXIT_EXEC, "execve(%s): %s", policy->exec, strerror(errno));
}

/* Whether the platform gave a managed identity: both variables, or neither (anything else is broken). */
static bool platform_identity(void)
{
	const char *endpoint = getenv("IDENTITY_ENDPOINT"), *header = getenv("IDENTITY_HEADER");
	bool has_endpoint = endpoint && *endpoint, has_header = header && *header;

	if (has_endpoint != has_header)
		die(EXIT_BROKER, "%s is set but %s is not: the platform's managed identity is incomplete",
		    has_endpoint ? "IDENTITY_ENDPOINT" : "IDENTITY_HEADER", has_endpoint ? "IDENTITY_HEADER" : "IDENTITY_ENDPOINT");
	return has_endpoint;
}

/*
 * A host in placeholder mode (WEBSITE_PLACEHOLDER_MODE=1, EnvironmentExtensions.IsPlaceholderModeEnabled
 * in Azure/azure-functions-host) specialises its worker later with a FunctionEnvironmentReloadRequest
 * that carries the host's whole environment (GrpcWorkerChannel.SendFunctionEnvironmentReloadRequest),
 * and the worker copies it into os.environ: the filtering below would be void. So no worker at all.
 */
static void refuse_placeholder_mode(void)
{
	const char *mode = getenv("WEBSITE_PLACEHOLDER_MODE");

	if (mode && strcmp(mode, "1") == 0)
		refuse(EXIT_PLACEHOLDER, "WEBSITE_PLACEHOLDER_MODE=1: the host's environment reload would reach the "
					 "worker past the policy; not starting it");
}

/* The worker's TMPDIR: this launch's own under launch-uids (in env, in place of the policy's), else the policy's. */
static const char *worker_tmpdir(const struct policy *p, const struct launch *launch, char **env)
{
	const struct setting *tmpdir = policy_setting(p, "TMPDIR", 6);

	if (!tmpdir)
		return NULL;
	if (!launch->tmpdir_entry[0])
		return tmpdir->entry + tmpdir->name_len + 1;
	for (char **e = env; *e; e++)
		if (*e == tmpdir->entry)
			*e = (char *)launch->tmpdir_entry;
	return launch->tmpdir_entry + tmpdir->name_len + 1;
}

/* What the supervisor and the worker's start need of main's work (they run on the supervisor's stack). */
struct start {
	struct policy policy;
	struct launch launch;
	struct watch watch;
	const char *tmpdir;
	char **argv, **env;
	size_t n_env;
	bool identity;
	uid_t broker_uid;
	gid_t broker_gid;
	char endpoint_entry[64], header_entry[96];
};

/* The worker's side of spawn_child: the drop, the leftovers of its uid, the sandbox, execve. */
static void start_worker(void *arg)
{
	struct start *s = arg;
	int watcher = watch_in_worker(&s->watch);

	drop_root(s->launch.uid, s->launch.gid);
	die_with_parent();
	if (s->launch.own_uid && s->launch.leftovers_possible)
		end_leftovers_of_uid();
	exec_worker(&s->policy, s->tmpdir, true, watcher, s->argv, s->env);
}

/* The supervisor's side: the broker, if the platform gave an identity; the worker; its watch. */
static void start_launch(void *arg)
{
	struct start *s = arg;
	pid_t broker = 0, worker;

	if (s->identity) {
		broker = broker_start(&s->policy, s->broker_uid, s->broker_gid, s->endpoint_entry,
				      sizeof s->endpoint_entry, s->header_entry, sizeof s->header_entry);
		s->env[s->n_env++] = s->endpoint_entry;
		s->env[s->n_env++] = s->header_entry;
		s->env[s->n_env] = NULL;
	}
	watch_prepare(&s->watch);
	worker = spawn_child(start_worker, s);
	watch_in_supervisor(&s->watch);
	supervise(broker, worker, &s->watch, &s->launch);
}

int main(int argc, char **argv)
{
	static char text[POLICY_MAX_BYTES + 1];
	static struct start s;
	struct policy *policy = &s.policy;
	struct policy_error err;
	bool as_root = geteuid() == 0;
	uid_t uid;
	gid_t gid;

	(void)argc;
	refuse_placeholder_mode();
	if (policy_parse(text, read_policy(text), policy, &err) != 0)
		die(EXIT_POLICY, "%s:%u: %s", POLICY_PATH, err.line, err.message);
	check_exec(policy);
	resolve_account("user", policy->user, policy->user_line, &uid, &gid);
	s.argv = argv;
	s.env = build_env(policy, as_root, &s.n_env);
	if (!as_root) {
		if (policy->nonroot == NONROOT_REFUSE)
			refuse(EXIT_PRIVILEGE, "running as uid %u, not root: the policy says nonroot refuse",
			       (unsigned)geteuid());
		launch_tmpdir_of(policy, geteuid(), &s.launch);
		exec_worker(policy, worker_tmpdir(policy, &s.launch, s.env), false, -1, argv, s.env);
	}
	launch_claim(policy, uid, gid, &s.launch);
	s.tmpdir = worker_tmpdir(policy, &s.launch, s.env);
	s.identity = policy->broker && platform_identity();
	if (s.identity) {
		/* A managed identity: the broker holds it, the worker gets the broker's look-alike. */
		resolve_account("broker", policy->broker, policy->broker_line, &s.broker_uid, &s.broker_gid);
		if (s.broker_uid == uid || s.broker_uid == s.launch.uid || s.broker_gid == gid)
			die(EXIT_POLICY, "%s:%u: broker %s shares uid %u or gid %u with the worker: give it its own account",
			    POLICY_PATH, policy->broker_line, policy->broker, (unsigned)s.broker_uid, (unsigned)gid);
		if (policy->launch_uid_count && s.broker_uid >= policy->launch_uid_first &&
		    s.broker_uid - policy->launch_uid_first < policy->launch_uid_count)
			die(EXIT_POLICY, "%s:%u: broker %s: uid %u is one of launch-uids (line %u): give it its own account",
			    POLICY_PATH, policy->broker_line, policy->broker, (unsigned)s.broker_uid,
			    policy->launch_uids_line);
	}
	become_supervisor(start_launch, &s);
}
