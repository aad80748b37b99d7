/*
 * The ports the worker may connect to over TCP (sandbox.c hands them to Landlock). Whoever holds
 * a token endpoint other than the broker mints tokens around it: the metadata endpoint
 * (169.254.169.254:80) answers token requests wherever the platform runs on a VM's network, and
 * the platform's own identity endpoint (port 8081 on App Service, localhost:42356 on Container
 * Apps) needs only its header. Landlock allows connections by port, not by address: so the
 * worker may reach the ports it needs (HTTPS, its host, its broker, its vault) and no other.
 */
#include "egress.h"

#include <stdio.h>
#include <string.h>

static int add(struct egress *e, unsigned long port, char *message, size_t size)
{
	if (port == 0 || port > 65535)
		return 0; /* not a port: nothing to allow (the worker could not connect to it either) */
	for (size_t i = 0; i < e->n; i++)
		if (e->port[i] == port)
			return 0;
	if (e->n == EGRESS_MAX_PORTS) {
		snprintf(message, size, "egress: more than %d ports to allow (connect lines and the launch's own)",
			 EGRESS_MAX_PORTS);
		return -1;
	}
	e->port[e->n++] = (unsigned short)port;
	return 0;
}

/* Decimal digits up to the end or `stop`; 0 when there are none or too many. */
static unsigned long port_of(const char *s, const char *stop)
{
	unsigned long value = 0;
	size_t digits = strspn(s, "0123456789");

	if (digits == 0 || digits > 5 || !strchr(stop, s[digits]))
		return 0;
	for (size_t i = 0; i < digits; i++)
		value = value * 10 + (unsigned long)(s[i] - '0');
	return value;
}

/* scheme://host[:port][/...]: the explicit port, or the scheme's own (80 for http, 443 for https). */
static unsigned long url_port(const char *url)
{
	const char *authority, *end, *colon;
	bool https = strncmp(url, "https://", 8) == 0;

	if (!https && strncmp(url, "http://", 7) != 0)
		return 0;
	authority = url + (https ? 8 : 7);
	end = authority + strcspn(authority, "/?#");
	colon = memchr(authority, ']', (size_t)(end - authority)); /* [v6]:port */
	colon = memchr(colon ? colon : authority, ':', (size_t)(end - (colon ? colon : authority)));
	if (!colon)
		return https ? 443 : 80;
	return port_of(colon + 1, "/?#");
}

static const char *value_of(char *const *env, const char *name)
{
	size_t len = strlen(name);

	for (char *const *e = env; *e; e++)
		if (strncmp(*e, name, len) == 0 && (*e)[len] == '=')
			return *e + len + 1;
	return NULL;
}

int egress_of_worker(const struct policy *p, char *const *argv, char *const *env, struct egress *e, char *message,
		     size_t size)
{
	const char *broker = value_of(env, "IDENTITY_ENDPOINT"), *vault = value_of(env, "KEY_VAULT_URL");

	e->n = 0;
	e->confined = p->n_connect > 0;
	if (!e->confined)
		return 0;
	for (size_t i = 0; i < p->n_connect; i++)
		if (add(e, p->connect[i], message, size) != 0)
			return -1;
	/* The host passes its gRPC address twice, `--port N` and `--functions-uri http://H:N/`
	 * (Azure/azure-functions-host, src/WebJobs.Script/Workers/Rpc/RpcWorkerContext.cs,
	 * GetFormattedArguments); the Python worker takes either. argv comes from the host, not
	 * from the worker. */
	for (size_t i = 1; argv[0] && argv[i] && argv[i + 1]; i++) {
		unsigned long port = 0;
		if (strcmp(argv[i], "--port") == 0)
			port = port_of(argv[i + 1], "");
		else if (strcmp(argv[i], "--functions-uri") == 0)
			port = url_port(argv[i + 1]);
		if (add(e, port, message, size) != 0)
			return -1;
	}
	/* Only the broker's own shape (broker.c): never a platform endpoint passed down by mistake. */
	if (broker && strncmp(broker, "http://127.0.0.1:", 17) == 0 && add(e, port_of(broker + 17, "/"), message, size) != 0)
		return -1;
	if (vault && strncmp(vault, "https://", 8) == 0 && add(e, url_port(vault), message, size) != 0)
		return -1;
	return 0;
}
