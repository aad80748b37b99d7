/* Where the worker may connect: the policy's ports and the ones this launch names. */
#ifndef LAUNCHER_EGRESS_H
#define LAUNCHER_EGRESS_H

#include "policy.h"

#include <stdbool.h>
#include <stddef.h>

enum { EGRESS_MAX_PORTS = POLICY_MAX_PORTS + 8, EGRESS_MAX_MESSAGE = 200 };

struct egress {
	bool confined; /* the policy has connect lines: TCP connections to other ports are refused */
	size_t n;
	unsigned short port[EGRESS_MAX_PORTS];
};

/*
 * The worker's ports: the policy's `connect` lines, then the host's gRPC port (argv's `--port N`
 * and `--functions-uri URL`), the identity broker's (IDENTITY_ENDPOINT, only in the broker's own
 * shape, http://127.0.0.1:PORT/) and the vault's (KEY_VAULT_URL, https only). Not confined when
 * the policy has no connect line. -1 with message filled in when more ports than fit are named.
 */
int egress_of_worker(const struct policy *policy, char *const *argv, char *const *env, struct egress *egress,
		     char *message, size_t size);

#endif
