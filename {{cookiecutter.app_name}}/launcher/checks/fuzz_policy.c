/*
 * libFuzzer harness for the policy parser (`make fuzz`). The parser takes text a person edits, so
 * it must never read or write out of bounds, whatever the bytes; the copy below is exactly
 * size + 1 bytes so that ASan catches any overrun. The /etc/passwd reader gets the same bytes.
 */
#include "policy.h"

#include <stdint.h>
#include <stdlib.h>
#include <string.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static struct policy policy;
	struct policy_error err;
	char *text = malloc(size + 1);

	if (!text)
		return 0;
	memcpy(text, data, size);
	if (policy_parse(text, size, &policy, &err) == 0) {
		/* Exercise matching on what was parsed, as the launcher does for each variable. */
		for (size_t i = 0; i < policy.n_allow; i++)
			(void)policy_allows(&policy, policy.allow[i].text, policy.allow[i].len);
		(void)policy_allows(&policy, (const char *)data, size);
		(void)policy_setting(&policy, (const char *)data, size);
	} else if (memchr(err.message, '\0', sizeof err.message) == NULL) {
		abort(); /* every error message must be a terminated string */
	}
	free(text);

	/* The passwd/group reader on the same bytes: the first line's first field is the name. */
	{
		const char *nl = memchr(data, '\n', size);
		const char *colon = memchr(data, ':', nl ? (size_t)(nl - (const char *)data) : size);
		size_t name_len = colon ? (size_t)(colon - (const char *)data) : 0;
		char *copy = malloc(size ? size : 1);
		unsigned id, next;

		if (copy) {
			memcpy(copy, data, size);
			(void)account_ids(copy, size, copy, name_len, 2, &id, &next);
			(void)account_ids(copy, size, copy, name_len, 3, &id, NULL);
			free(copy);
		}
	}
	return 0;
}
