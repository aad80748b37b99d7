/*
 * The identity broker's side of the launcher. App Service's managed-identity endpoint mints a token
 * for any identity assigned to the site, for any audience, to whoever shows IDENTITY_HEADER. So the
 * worker never gets that header: the broker (identity_broker.py), running as its own account, holds
 * it and serves the worker a look-alike endpoint on loopback, with a header made for this launch,
 * forwarding only the policy's audiences for the app's own identity (AZURE_CLIENT_ID).
 *
 * This file starts the broker, as a child of the supervisor (lifetime.c), which ends it with the worker.
 */
#define _GNU_SOURCE
#include "broker.h"
#include "confine.h"
#include "drop.h"
#include "fail.h"
#include "lifetime.h"

#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/random.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

enum {
	READY_TIMEOUT_MS = 10000,
	HEADER_BYTES = 32, /* 256 bits for the worker's header, as 64 hex digits */
	LISTEN_BACKLOG = 128,
	/* Where the broker finds its listening socket and the pipe it reports readiness on. */
	BROKER_LISTEN_FD = 3,
	BROKER_READY_FD = 4,
	MAX_CLIENT_ID = 64,
};

/* The first NAME=value entry of the launcher's environment, or NULL. */
static char *entry_of(const char *name)
{
	extern char **environ;
	size_t len = strlen(name);

	for (char **e = environ; *e; e++)
		if (strncmp(*e, name, len) == 0 && (*e)[len] == '=')
			return *e;
	return NULL;
}

/* The broker runs Python: its program must be as safe from the worker as the policy is. */
static void check_broker_program(void)
{
	struct stat st;

	if (lstat(BROKER_PATH, &st) != 0)
		die(EXIT_BROKER, "lstat(%s): %s", BROKER_PATH, strerror(errno));
	if (!S_ISREG(st.st_mode))
		die(EXIT_BROKER, "%s: not a regular file", BROKER_PATH);
	if (st.st_uid != 0 || (st.st_mode & (S_IWGRP | S_IWOTH)))
		refuse(EXIT_BROKER, "%s: must be owned by root and writable by nobody else", BROKER_PATH);
}

/* Letters, digits and '-': a client id is a GUID, and it reaches a query string in the broker. */
static char *client_id_entry(void)
{
	char *entry = entry_of("AZURE_CLIENT_ID");
	const char *value = entry ? entry + strlen("AZURE_CLIENT_ID=") : "";
	size_t len = strlen(value);

	if (len == 0)
		die(EXIT_BROKER, "AZURE_CLIENT_ID is not set: the identity broker forwards only for the app's "
				 "user-assigned identity, named by its client id");
	if (len > MAX_CLIENT_ID || strspn(value, "0123456789abcdefABCDEF-") != len)
		die(EXIT_BROKER, "AZURE_CLIENT_ID is not a client id (hexadecimal digits and '-', at most %d)",
		    MAX_CLIENT_ID);
	return entry;
}

static int listen_on_loopback(unsigned *port)
{
	struct sockaddr_in addr = { .sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK) };
	socklen_t len = sizeof addr;
	int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);

	if (fd < 0)
		die(EXIT_BROKER, "socket(AF_INET): %s", strerror(errno));
	if (bind(fd, (struct sockaddr *)&addr, sizeof addr) != 0)
		die(EXIT_BROKER, "bind(127.0.0.1:0): %s", strerror(errno));
	if (listen(fd, LISTEN_BACKLOG) != 0)
		die(EXIT_BROKER, "listen(127.0.0.1): %s", strerror(errno));
	if (getsockname(fd, (struct sockaddr *)&addr, &len) != 0)
		die(EXIT_BROKER, "getsockname: %s", strerror(errno));
	*port = ntohs(addr.sin_port);
	return fd;
}

static void random_hex(char *out, size_t bytes)
{
	unsigned char raw[HEADER_BYTES];
	static const char digits[] = "0123456789abcdef";

	for (size_t got = 0; got < bytes;) {
		ssize_t n = getrandom(raw + got, bytes - got, 0);
		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0)
			die(EXIT_BROKER, "getrandom(%zu): %s", bytes, strerror(errno));
		got += (size_t)n;
	}
	for (size_t i = 0; i < bytes; i++) {
		out[2 * i] = digits[raw[i] >> 4];
		out[2 * i + 1] = digits[raw[i] & 15];
	}
	out[2 * bytes] = '\0';
}

/* The broker's environment: the platform's identity, the app's client id, the worker's header,
 * the audiences, and the policy's fixed values (PATH and, where the interpreter needs one, its
 * library path). Nothing else of the host's. */
static char **broker_environment(const struct policy *p, const char *worker_header)
{
	static char header[sizeof "LAUNCHER_BROKER_HEADER=" + 2 * HEADER_BYTES];
	static char audiences[sizeof "LAUNCHER_BROKER_AUDIENCES=" + POLICY_MAX_AUDIENCES * (POLICY_MAX_AUDIENCE + 1)];
	static char *env[POLICY_MAX_RULES + 6];
	size_t n = 0, used;

	env[n++] = entry_of("IDENTITY_ENDPOINT");
	env[n++] = entry_of("IDENTITY_HEADER");
	env[n++] = client_id_entry();
	snprintf(header, sizeof header, "LAUNCHER_BROKER_HEADER=%s", worker_header);
	env[n++] = header;
	used = (size_t)snprintf(audiences, sizeof audiences, "LAUNCHER_BROKER_AUDIENCES=");
	for (size_t i = 0; i < p->n_audience; i++)
		used += (size_t)snprintf(audiences + used, sizeof audiences - used, "%s%s", i ? " " : "", p->audience[i]);
	env[n++] = audiences;
	for (size_t i = 0; i < p->n_set; i++)
		env[n++] = (char *)p->set[i].entry;
	env[n] = NULL;
	return env;
}

static const char *tmpdir_of_policy(const struct policy *p)
{
	const struct setting *tmpdir = policy_setting(p, "TMPDIR", 6);

	return tmpdir ? tmpdir->entry + tmpdir->name_len + 1 : NULL;
}

/* The broker's child side: its two descriptors, its account, no way back to root, then Python. */
static _Noreturn void become_broker(const struct policy *p, uid_t uid, gid_t gid, int listener, int ready,
				    char **env)
{
	/* -I: no PYTHON* variables, no user site, no script directory on sys.path; -S: no site
	 * packages either, so nothing the app installed runs in the broker. */
	char *argv[] = { (char *)p->exec, "-I", "-S", BROKER_PATH, NULL };
	int high_listener = fcntl(listener, F_DUPFD, 10), high_ready = fcntl(ready, F_DUPFD, 10);

	if (high_listener < 0 || high_ready < 0 || dup2(high_listener, BROKER_LISTEN_FD) != BROKER_LISTEN_FD ||
	    dup2(high_ready, BROKER_READY_FD) != BROKER_READY_FD)
		die(EXIT_BROKER, "dup2 for the broker: %s", strerror(errno));
	close_fds_from(BROKER_READY_FD + 1);
	drop_root(uid, gid);
	die_with_parent();
	/* The broker parses what the worker writes: it gets the worker's sandbox too (its TMPDIR is
	 * the policy's, which it cannot write: it writes nothing), but not the worker's ports: its
	 * job is to reach the platform's identity endpoint. */
	confine(p, tmpdir_of_policy(p), NULL, true, false, -1);
	execve(p->exec, argv, env);
	die(EXIT_EXEC, "execve(%s) for the broker: %s", p->exec, strerror(errno));
}

/* The broker writes "ready\n" once it serves; anything else, or nothing in time, is a failed start. */
static void wait_until_ready(pid_t broker, int ready)
{
	struct pollfd pfd = { .fd = ready, .events = POLLIN };
	char answer[8] = "";
	ssize_t n = 0;
	int status = 0;
	int polled;

	do
		polled = poll(&pfd, 1, READY_TIMEOUT_MS);
	while (polled < 0 && errno == EINTR);
	if (polled > 0)
		do
			n = read(ready, answer, sizeof answer - 1);
		while (n < 0 && errno == EINTR);
	close(ready);
	if (n == 6 && memcmp(answer, "ready\n", 6) == 0)
		return;
	if (polled == 0)
		kill(broker, SIGKILL);
	while (waitpid(broker, &status, 0) < 0 && errno == EINTR) {
	}
	if (polled == 0)
		die(EXIT_BROKER, "identity broker %s was not ready within %d s", BROKER_PATH, READY_TIMEOUT_MS / 1000);
	die(EXIT_BROKER, "identity broker %s exited with status %d before it was ready", BROKER_PATH,
	    exit_code_of(status));
}

pid_t broker_start(const struct policy *p, uid_t uid, gid_t gid, char *endpoint_entry, size_t endpoint_size,
		   char *header_entry, size_t header_size)
{
	char worker_header[2 * HEADER_BYTES + 1];
	char **env;
	unsigned port;
	int listener, pipe_fds[2];
	pid_t broker;

	check_broker_program();
	random_hex(worker_header, HEADER_BYTES);
	env = broker_environment(p, worker_header);
	listener = listen_on_loopback(&port);
	if (pipe2(pipe_fds, O_CLOEXEC) != 0)
		die(EXIT_BROKER, "pipe2: %s", strerror(errno));
	broker = fork_child();
	if (broker == 0)
		become_broker(p, uid, gid, listener, pipe_fds[1], env);
	close(pipe_fds[1]);
	close(listener);
	wait_until_ready(broker, pipe_fds[0]);
	snprintf(endpoint_entry, endpoint_size, "IDENTITY_ENDPOINT=http://127.0.0.1:%u/msi/token", port);
	snprintf(header_entry, header_size, "IDENTITY_HEADER=%s", worker_header);
	if (p->audit) {
		char line[128];
		int len = snprintf(line, sizeof line, "launcher: audit: identity broker pid %d on 127.0.0.1:%u as %s\n",
				   (int)broker, port, p->broker);
		if (len > 0 && write(STDERR_FILENO, line, (size_t)len) < 0) {
			/* Audit output is best effort. */
		}
	}
	return broker;
}
