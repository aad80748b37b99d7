/* The identity broker (broker.c): the worker's look-alike of the platform's managed-identity endpoint. */
#ifndef LAUNCHER_BROKER_H
#define LAUNCHER_BROKER_H

#include "policy.h"

#include <stddef.h>
#include <sys/types.h>

/* Beside the policy, and checked like it: root-owned, writable by nobody else. */
#ifndef BROKER_PATH
#define BROKER_PATH "/etc/launcher/identity_broker.py"
#endif

/*
 * The identity broker (broker.c): started as its own account with the platform's identity
 * variables, it listens on loopback. Returns its pid and fills the worker's two identity entries.
 */
pid_t broker_start(const struct policy *policy, uid_t uid, gid_t gid, char *endpoint_entry, size_t endpoint_size,
		   char *header_entry, size_t header_size);

#endif
