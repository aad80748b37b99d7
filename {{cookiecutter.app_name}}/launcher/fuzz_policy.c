/*
 * libFuzzer harness for the policy parser (`make fuzz`). The parser takes text a person edits, so
 * it must never read or write out of bounds, whatever the bytes; the copy below is exactly
 * size + 1 bytes so that ASan catches any overrun.
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
	return 0;
}
