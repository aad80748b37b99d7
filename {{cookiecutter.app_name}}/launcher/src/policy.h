/* The policy parser, on its own so that the fuzz harness can link it without main(). */
#ifndef LAUNCHER_POLICY_H
#define LAUNCHER_POLICY_H

#include <stdbool.h>
#include <stddef.h>

/* Bounds: everything the launcher holds about a policy lives in fixed arrays. */
enum {
	POLICY_MAX_BYTES = 65536,
	POLICY_MAX_LINE = 1024,
	POLICY_MAX_RULES = 512,
	POLICY_MAX_MESSAGE = 200,
	POLICY_MAX_AUDIENCES = 16,
	POLICY_MAX_AUDIENCE = 200,
	POLICY_MAX_LAUNCH_UIDS = 64,
	POLICY_MAX_PORTS = 16,
};

/* The audience the identity broker forwards when the policy names none: Key Vault. */
#define POLICY_DEFAULT_AUDIENCE "https://vault.azure.net"


/* `allow NAME`, `allow PREFIX*`; deny also takes `*SUFFIX` and `*PART*` (then suffix is set). */
struct pattern {
	const char *text;
	size_t len;
	bool prefix;
	bool suffix;
	unsigned line;
};

/* `set NAME=VALUE`: entry is the whole "NAME=VALUE", ready for execve. */
struct setting {
	const char *entry;
	size_t name_len;
	unsigned line;
};

enum nonroot_mode { NONROOT_REFUSE, NONROOT_FILTER };

/* `landlock required|best-effort|off`: whether the worker's writes must be, may be, or are not confined. */
enum landlock_mode { LANDLOCK_OFF, LANDLOCK_BEST_EFFORT, LANDLOCK_REQUIRED };

struct policy {
	const char *exec;
	unsigned exec_line;
	const char *user;
	unsigned user_line;
	bool audit;
	unsigned audit_line;
	enum nonroot_mode nonroot;
	unsigned nonroot_line;
	enum landlock_mode landlock;
	unsigned landlock_line;
	/* `broker ACCOUNT`: the identity broker's account, or NULL (no broker: no identity variables). */
	const char *broker;
	unsigned broker_line;
	/* `launch-uids FIRST-LAST`: each root launch runs its worker as a uid of its own from this
	 * range (count 0: every launch as the user's uid). */
	unsigned launch_uid_first;
	unsigned launch_uid_count;
	unsigned launch_uids_line;
	/* `connect PORT`: TCP ports the worker may connect to, besides those of its host, broker and
	 * vault (egress.c); none: connections are not confined. */
	unsigned short connect[POLICY_MAX_PORTS];
	size_t n_connect;
	unsigned connect_line; /* the first */
	/* `audience URL`: what the broker forwards (POLICY_DEFAULT_AUDIENCE when none is given). */
	const char *audience[POLICY_MAX_AUDIENCES];
	size_t n_audience;
	struct pattern allow[POLICY_MAX_RULES];
	size_t n_allow;
	struct pattern deny[POLICY_MAX_RULES];
	size_t n_deny;
	struct setting set[POLICY_MAX_RULES];
	size_t n_set;
};

struct policy_error {
	unsigned line;
	char message[POLICY_MAX_MESSAGE];
};

/*
 * Parses len bytes of text in place: text must have room for len + 1 bytes, and the parsed
 * policy points into it. Returns 0, or -1 with err filled in (never quoting a set value).
 */
int policy_parse(char *text, size_t len, struct policy *policy, struct policy_error *err);

/* Whether the variable NAME (name_len bytes, not NUL-terminated) may pass from the host. */
bool policy_allows(const struct policy *policy, const char *name, size_t name_len);

/*
 * IDENTITY_ENDPOINT and IDENTITY_HEADER: the platform's token endpoint and the header that
 * unlocks it. Only the broker holds the platform's values; the policy can neither allow nor set them.
 */
bool policy_is_identity_variable(const char *name, size_t name_len);

/* The set directive for NAME, or NULL. */
const struct setting *policy_setting(const struct policy *policy, const char *name, size_t name_len);

/* /etc/passwd and /etc/group are read whole into a buffer this large at most. */
enum { ACCOUNT_MAX_BYTES = 1 << 20 };

/* A decimal id: digits only, below UINT_MAX (which setuid takes as "no change"). 0 or -1. */
int parse_id(const char *s, size_t len, unsigned *id);

/*
 * Finds NAME in field 0 of passwd- or group-format text and parses field `field` into id (and
 * the next field into next, when next is not NULL). 0 found, -1 absent, -2 malformed entry.
 */
int account_ids(const char *text, size_t len, const char *name, size_t name_len, int field, unsigned *id,
		unsigned *next);

#endif
