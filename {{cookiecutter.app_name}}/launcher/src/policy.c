/*
 * The policy parser. It reads untrusted-looking text (a root-owned file, but one a person edits), so
 * it is strict: every line must be a known directive with a well-formed argument, and anything else
 * is an error with the line number. It never copies or allocates; it writes NULs into the buffer.
 * The /etc/passwd and /etc/group reader lives here too, so that the fuzz harness covers it.
 */
#include "policy.h"

#include <limits.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>

static __attribute__((format(printf, 3, 4))) int fail(struct policy_error *err, unsigned line, const char *fmt, ...)
{
	va_list ap;

	err->line = line;
	va_start(ap, fmt);
	vsnprintf(err->message, sizeof err->message, fmt, ap);
	va_end(ap);
	return -1;
}

static bool is_blank(char c) { return c == ' ' || c == '\t'; }
static bool is_digit(char c) { return c >= '0' && c <= '9'; }
static bool is_alpha(char c) { return (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || c == '_'; }

/* Variable names as a POSIX shell would accept them; anything else can only be a typo here. */
static bool is_variable_name(const char *s, size_t len)
{
	if (len == 0 || !is_alpha(s[0]))
		return false;
	for (size_t i = 1; i < len; i++)
		if (!is_alpha(s[i]) && !is_digit(s[i]))
			return false;
	return true;
}

/* ASCII only: the launcher never calls setlocale, and a locale must not change what a deny matches. */
static bool same_ignoring_case(const char *a, const char *b, size_t len)
{
	for (size_t i = 0; i < len; i++) {
		char x = a[i] >= 'a' && a[i] <= 'z' ? (char)(a[i] - 32) : a[i];
		char y = b[i] >= 'a' && b[i] <= 'z' ? (char)(b[i] - 32) : b[i];
		if (x != y)
			return false;
	}
	return true;
}

/* The end or the middle of a name, for deny *SUFFIX and *PART*. */
static bool is_name_part(const char *s, size_t len)
{
	for (size_t i = 0; i < len; i++)
		if (!is_alpha(s[i]) && !is_digit(s[i]))
			return false;
	return len > 0;
}

/* useradd's rules for a name, or a decimal id. */
static bool is_account(const char *s, size_t len)
{
	bool numeric = len > 0 && len <= 10;

	for (size_t i = 0; i < len; i++)
		numeric = numeric && is_digit(s[i]);
	if (numeric)
		return true;
	if (len == 0 || len > 32 || !((s[0] >= 'a' && s[0] <= 'z') || s[0] == '_'))
		return false;
	for (size_t i = 1; i < len; i++) {
		char c = s[i];
		bool last_dollar = c == '$' && i == len - 1;
		if (!(c >= 'a' && c <= 'z') && !is_digit(c) && c != '_' && c != '-' && !last_dollar)
			return false;
	}
	return true;
}

static bool is_number(const char *s, size_t len)
{
	for (size_t i = 0; i < len; i++)
		if (!is_digit(s[i]))
			return false;
	return len > 0;
}

static int parse_user(const char *arg, unsigned line, struct policy_error *err)
{
	const char *colon = strchr(arg, ':');
	size_t user_len = colon ? (size_t)(colon - arg) : strlen(arg);

	if (!is_account(arg, user_len) || (colon && !is_account(colon + 1, strlen(colon + 1))))
		return fail(err, line, "user takes NAME, NAME:GROUP or UID:GID");
	if (is_number(arg, user_len) && !colon)
		return fail(err, line, "user %s needs a group: write UID:GID", arg);
	if ((user_len == 4 && memcmp(arg, "root", 4) == 0) || (is_number(arg, user_len) && strspn(arg, "0") == user_len))
		return fail(err, line, "user is root: the worker must run unprivileged");
	return 0;
}

/*
 * Allows stay narrow (NAME or PREFIX*); denies may also be *SUFFIX or *PART*, a safety net for
 * names nobody listed yet (*PASSWORD*, *CONNECTION_STRING*).
 */
static int parse_pattern(struct pattern *list, size_t *count, const char *directive, char *arg,
			 unsigned line, struct policy_error *err)
{
	bool is_deny = strcmp(directive, "deny") == 0;
	bool suffix = is_deny && arg[0] == '*';
	char *name = suffix ? arg + 1 : arg;
	size_t len = strlen(name);
	bool prefix = len > 0 && name[len - 1] == '*';
	size_t name_len = prefix ? len - 1 : len;

	if (name_len == 0 && (prefix || suffix))
		return fail(err, line, "%s * would match every variable: name a prefix", directive);
	if (suffix ? !is_name_part(name, name_len) : !is_variable_name(name, name_len))
		return fail(err, line, is_deny ? "deny takes NAME, PREFIX*, *SUFFIX or *PART* (letters, digits, _)"
					       : "allow takes NAME or PREFIX* (letters, digits, _)");
	if (!is_deny && !prefix && policy_is_identity_variable(name, name_len))
		return fail(err, line, "allow %s: the identity variables are the broker's to set (broker ACCOUNT)", name);
	/* FUNCTIONS_WORKER_RUNTIME* would also pass FUNCTIONS_WORKER_RUNTIMEPASS: a prefix must end
	 * where a word does, so that it passes only names of the family it was written for. */
	if (!is_deny && prefix && name[name_len - 1] != '_')
		return fail(err, line, "allow %s: a prefix must end in '_' (NAME_*), or list the exact names", arg);
	for (size_t i = 0; i < *count; i++)
		if (list[i].prefix == prefix && list[i].suffix == suffix && list[i].len == name_len &&
		    memcmp(list[i].text, name, name_len) == 0)
			return fail(err, line, "duplicate %s %s (first on line %u)", directive, arg, list[i].line);
	if (*count == POLICY_MAX_RULES)
		return fail(err, line, "more than %d %s directives", POLICY_MAX_RULES, directive);
	list[(*count)++] = (struct pattern){ .text = name, .len = name_len, .prefix = prefix, .suffix = suffix, .line = line };
	return 0;
}

/* An https URL of letters, digits and -._~:/ only: nothing a query string or a log line could bend. */
static int parse_audience(struct policy *p, const char *arg, unsigned line, struct policy_error *err)
{
	size_t len = strlen(arg);

	if (strncmp(arg, "https://", 8) != 0 || len == 8 || len > POLICY_MAX_AUDIENCE ||
	    strspn(arg, "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-._~:/") != len)
		return fail(err, line, "audience takes an https:// URL of at most %d letters, digits and -._~:/",
			    POLICY_MAX_AUDIENCE);
	if (arg[len - 1] == '/' || (len >= 9 && strcmp(arg + len - 9, "/.default") == 0))
		return fail(err, line, "audience %s: write it without a trailing / or /.default", arg);
	for (size_t i = 0; i < p->n_audience; i++)
		if (strlen(p->audience[i]) == len && same_ignoring_case(p->audience[i], arg, len))
			return fail(err, line, "duplicate audience %s", arg);
	if (p->n_audience == POLICY_MAX_AUDIENCES)
		return fail(err, line, "more than %d audience directives", POLICY_MAX_AUDIENCES);
	p->audience[p->n_audience++] = arg;
	return 0;
}

static int parse_set(struct policy *p, char *arg, unsigned line, struct policy_error *err)
{
	char *eq = strchr(arg, '=');
	size_t name_len;

	if (!eq)
		return fail(err, line, "set takes NAME=VALUE: '=' is missing");
	name_len = (size_t)(eq - arg);
	if (!is_variable_name(arg, name_len))
		return fail(err, line, "set needs a variable name before '=' (letters, digits, _)");
	if (policy_is_identity_variable(arg, name_len))
		return fail(err, line, "set %.*s: the identity variables are the broker's to set (broker ACCOUNT)",
			    (int)name_len, arg);
	if (policy_setting(p, arg, name_len))
		return fail(err, line, "duplicate set %.*s (first on line %u)", (int)name_len, arg,
			    policy_setting(p, arg, name_len)->line);
	if (p->n_set == POLICY_MAX_RULES)
		return fail(err, line, "more than %d set directives", POLICY_MAX_RULES);
	p->set[p->n_set++] = (struct setting){ .entry = arg, .name_len = name_len, .line = line };
	return 0;
}

static int parse_landlock(struct policy *p, const char *arg, unsigned line, struct policy_error *err)
{
	if (p->landlock_line)
		return fail(err, line, "duplicate landlock (first on line %u)", p->landlock_line);
	if (strcmp(arg, "required") == 0)
		p->landlock = LANDLOCK_REQUIRED;
	else if (strcmp(arg, "best-effort") == 0)
		p->landlock = LANDLOCK_BEST_EFFORT;
	else if (strcmp(arg, "off") == 0)
		p->landlock = LANDLOCK_OFF;
	else
		return fail(err, line, "landlock takes required, best-effort or off");
	p->landlock_line = line;
	return 0;
}

/* A TCP port, 1 to 65535: what the worker may connect to (egress.c adds the launch's own). */
static int parse_connect(struct policy *p, const char *arg, unsigned line, struct policy_error *err)
{
	unsigned port;

	if (strlen(arg) > 5 || parse_id(arg, strlen(arg), &port) != 0 || port == 0 || port > 65535 || arg[0] == '0')
		return fail(err, line, "connect takes a TCP port, 1 to 65535");
	for (size_t i = 0; i < p->n_connect; i++)
		if (p->connect[i] == port)
			return fail(err, line, "duplicate connect %u", port);
	if (p->n_connect == POLICY_MAX_PORTS)
		return fail(err, line, "more than %d connect directives", POLICY_MAX_PORTS);
	if (!p->n_connect)
		p->connect_line = line;
	p->connect[p->n_connect++] = (unsigned short)port;
	return 0;
}

/*
 * FIRST-LAST: uids of no account but these launches, so that no launch can signal, read or
 * outlive into another (launcher/README.md, "Lifetime").
 */
static int parse_launch_uids(struct policy *p, const char *arg, unsigned line, struct policy_error *err)
{
	const char *dash = strchr(arg, '-');
	unsigned first, last;

	if (p->launch_uids_line)
		return fail(err, line, "duplicate launch-uids (first on line %u)", p->launch_uids_line);
	if (!dash || parse_id(arg, (size_t)(dash - arg), &first) != 0 || parse_id(dash + 1, strlen(dash + 1), &last) != 0 ||
	    first == 0 || last < first)
		return fail(err, line, "launch-uids takes FIRST-LAST, two uids above 0 with FIRST <= LAST");
	if (last - first >= POLICY_MAX_LAUNCH_UIDS)
		return fail(err, line, "launch-uids: at most %d uids", POLICY_MAX_LAUNCH_UIDS);
	p->launch_uid_first = first;
	p->launch_uid_count = last - first + 1;
	p->launch_uids_line = line;
	return 0;
}

/* One directive with its argument (arg is "" when there is none; set keeps its inner blanks). */
static int parse_directive(struct policy *p, const char *word, char *arg, unsigned line, struct policy_error *err)
{
	bool has_arg = arg[0] != '\0';
	bool one_word = strcspn(arg, " \t") == strlen(arg);

	if (strcmp(word, "set") == 0)
		return parse_set(p, arg, line, err);
	if (strcmp(word, "audit") == 0) {
		if (has_arg)
			return fail(err, line, "audit takes no argument");
		if (p->audit_line)
			return fail(err, line, "duplicate audit (first on line %u)", p->audit_line);
		p->audit = true;
		p->audit_line = line;
		return 0;
	}
	if (strcmp(word, "exec") != 0 && strcmp(word, "user") != 0 && strcmp(word, "allow") != 0 &&
	    strcmp(word, "deny") != 0 && strcmp(word, "nonroot") != 0 && strcmp(word, "landlock") != 0 &&
	    strcmp(word, "broker") != 0 && strcmp(word, "audience") != 0 && strcmp(word, "launch-uids") != 0 &&
	    strcmp(word, "connect") != 0)
		return fail(err, line,
			    "unknown directive '%.32s' (exec, user, allow, deny, set, audit, nonroot, landlock, broker, "
			    "audience, launch-uids, connect)",
			    word);
	if (!has_arg)
		return fail(err, line, "%s needs an argument", word);
	if (!one_word)
		return fail(err, line, "%s takes one argument", word);
	if (strcmp(word, "allow") == 0)
		return parse_pattern(p->allow, &p->n_allow, "allow", arg, line, err);
	if (strcmp(word, "deny") == 0)
		return parse_pattern(p->deny, &p->n_deny, "deny", arg, line, err);
	if (strcmp(word, "exec") == 0) {
		if (p->exec_line)
			return fail(err, line, "duplicate exec (first on line %u)", p->exec_line);
		if (arg[0] != '/')
			return fail(err, line, "exec needs an absolute path (no PATH search)");
		p->exec = arg;
		p->exec_line = line;
		return 0;
	}
	if (strcmp(word, "audience") == 0)
		return parse_audience(p, arg, line, err);
	if (strcmp(word, "broker") == 0) {
		if (p->broker_line)
			return fail(err, line, "duplicate broker (first on line %u)", p->broker_line);
		p->broker = arg;
		p->broker_line = line;
		if (parse_user(arg, line, err) != 0)
			return fail(err, line, "broker takes NAME, NAME:GROUP or UID:GID, never root");
		return 0;
	}
	if (strcmp(word, "user") == 0) {
		if (p->user_line)
			return fail(err, line, "duplicate user (first on line %u)", p->user_line);
		p->user = arg;
		p->user_line = line;
		return parse_user(arg, line, err);
	}
	if (strcmp(word, "landlock") == 0)
		return parse_landlock(p, arg, line, err);
	if (strcmp(word, "launch-uids") == 0)
		return parse_launch_uids(p, arg, line, err);
	if (strcmp(word, "connect") == 0)
		return parse_connect(p, arg, line, err);
	if (p->nonroot_line)
		return fail(err, line, "duplicate nonroot (first on line %u)", p->nonroot_line);
	if (strcmp(arg, "refuse") != 0 && strcmp(arg, "filter") != 0)
		return fail(err, line, "nonroot takes refuse or filter");
	p->nonroot = strcmp(arg, "filter") == 0 ? NONROOT_FILTER : NONROOT_REFUSE;
	p->nonroot_line = line;
	return 0;
}

/* Cuts a comment, trims blanks, splits the directive word from its argument. */
static int parse_line(struct policy *p, char *s, size_t len, unsigned line, struct policy_error *err)
{
	char *word, *arg, *end;

	if (len > POLICY_MAX_LINE)
		return fail(err, line, "line longer than %d bytes", POLICY_MAX_LINE);
	if (memchr(s, '\0', len))
		return fail(err, line, "NUL byte in line");
	s[len] = '\0';
	for (size_t i = 0; i < len; i++) {
		unsigned char c = (unsigned char)s[i];
		if (c == '#' && (i == 0 || is_blank(s[i - 1]))) {
			s[i] = '\0';
			len = i;
			break;
		}
		if (c == '\r')
			return fail(err, line, "carriage return in line (save the file with Unix line endings)");
		if ((c < 0x20 && c != '\t') || c == 0x7f)
			return fail(err, line, "control character 0x%02x in line", c);
	}
	while (len > 0 && is_blank(s[len - 1]))
		s[--len] = '\0';
	word = s + strspn(s, " \t");
	if (*word == '\0')
		return 0;
	end = word + strcspn(word, " \t");
	arg = end + strspn(end, " \t");
	*end = '\0';
	return parse_directive(p, word, arg, line, err);
}

static bool same(const char *a, const char *b, size_t len, bool ignore_case)
{
	return ignore_case ? same_ignoring_case(a, b, len) : memcmp(a, b, len) == 0;
}

static bool matches(const struct pattern *pat, const char *name, size_t name_len, bool ignore_case)
{
	if (name_len < pat->len || (!pat->prefix && !pat->suffix && name_len != pat->len))
		return false;
	if (pat->prefix && pat->suffix) {
		for (size_t at = 0; at + pat->len <= name_len; at++)
			if (same(pat->text, name + at, pat->len, ignore_case))
				return true;
		return false;
	}
	if (pat->suffix)
		return same(pat->text, name + name_len - pat->len, pat->len, ignore_case);
	return same(pat->text, name, pat->len, ignore_case);
}

/* Deny matches regardless of case: a host that spells a secret's name differently must not slip past. */
static const struct pattern *denied_by(const struct policy *p, const char *name, size_t name_len)
{
	for (size_t i = 0; i < p->n_deny; i++)
		if (matches(&p->deny[i], name, name_len, true))
			return &p->deny[i];
	return NULL;
}

int policy_parse(char *text, size_t len, struct policy *p, struct policy_error *err)
{
	size_t pos = 0;
	unsigned line = 0;

	/* Reset only the header: zeroing the rule arrays would touch ~50 KiB on every start. */
	p->exec = p->user = p->broker = NULL;
	p->exec_line = p->user_line = p->audit_line = p->nonroot_line = p->landlock_line = p->broker_line = 0;
	p->n_audience = p->n_connect = 0;
	p->connect_line = 0;
	p->launch_uid_first = p->launch_uid_count = p->launch_uids_line = 0;
	p->audit = false;
	p->nonroot = NONROOT_REFUSE;
	p->landlock = LANDLOCK_OFF;
	p->n_allow = p->n_deny = p->n_set = 0;
	if (len > POLICY_MAX_BYTES)
		return fail(err, 1, "policy larger than %d bytes", POLICY_MAX_BYTES);
	while (pos < len) {
		char *start = text + pos;
		char *newline = memchr(start, '\n', len - pos);
		size_t line_len = newline ? (size_t)(newline - start) : len - pos;

		line++;
		if (parse_line(p, start, line_len, line, err) != 0)
			return -1;
		pos += line_len + 1;
	}
	if (line == 0)
		line = 1;
	if (!p->exec_line)
		return fail(err, line, "no exec directive: the policy must name the interpreter");
	if (!p->user_line)
		return fail(err, line, "no user directive: the policy must name the worker account");
	if (p->n_audience && !p->broker_line)
		return fail(err, line, "audience without broker: name the broker's account (broker ACCOUNT)");
	if (p->broker_line && !p->n_audience)
		p->audience[p->n_audience++] = POLICY_DEFAULT_AUDIENCE;
	for (size_t i = 0; i < p->n_allow; i++) {
		const struct pattern *deny = denied_by(p, p->allow[i].text, p->allow[i].len);
		if (deny && !p->allow[i].prefix)
			return fail(err, p->allow[i].line, "allow %.*s is denied by line %u (deny wins: remove one)",
				    (int)p->allow[i].len, p->allow[i].text, deny->line);
	}
	if (p->landlock != LANDLOCK_OFF) {
		/* Landlock confines the worker's writes to its TMPDIR: the policy must say which it is. */
		const struct setting *tmpdir = policy_setting(p, "TMPDIR", 6);
		if (!tmpdir || tmpdir->entry[7] != '/')
			return fail(err, p->landlock_line, "landlock needs set TMPDIR=/absolute/path (where the worker writes)");
	}
	if (p->launch_uids_line) {
		/* Each launch gets a directory of its own beneath TMPDIR, made and owned for its uid. */
		const struct setting *tmpdir = policy_setting(p, "TMPDIR", 6);
		if (!tmpdir || tmpdir->entry[7] != '/')
			return fail(err, p->launch_uids_line,
				    "launch-uids needs set TMPDIR=/absolute/path (each launch's directory is made beneath it)");
		if (tmpdir->entry[7 + strspn(tmpdir->entry + 7, "/")] == '\0')
			return fail(err, p->launch_uids_line, "launch-uids: TMPDIR must not be /");
	}
	for (size_t i = 0; i < p->n_set; i++) {
		const struct pattern *deny = denied_by(p, p->set[i].entry, p->set[i].name_len);
		if (deny)
			return fail(err, p->set[i].line, "set %.*s contradicts deny on line %u", (int)p->set[i].name_len,
				    p->set[i].entry, deny->line);
	}
	return 0;
}

/* Deny wins over allow. Allow is exact (case included), so it never passes more than written. */
bool policy_allows(const struct policy *p, const char *name, size_t name_len)
{
	bool allowed = false;

	if (denied_by(p, name, name_len))
		return false;
	for (size_t i = 0; i < p->n_allow && !allowed; i++)
		allowed = matches(&p->allow[i], name, name_len, false);
	return allowed;
}

bool policy_is_identity_variable(const char *name, size_t name_len)
{
	return (name_len == 17 && memcmp(name, "IDENTITY_ENDPOINT", 17) == 0) ||
	       (name_len == 15 && memcmp(name, "IDENTITY_HEADER", 15) == 0);
}

const struct setting *policy_setting(const struct policy *p, const char *name, size_t name_len)
{
	for (size_t i = 0; i < p->n_set; i++)
		if (p->set[i].name_len == name_len && memcmp(p->set[i].entry, name, name_len) == 0)
			return &p->set[i];
	return NULL;
}

int parse_id(const char *s, size_t len, unsigned *id)
{
	unsigned long value = 0;

	if (len == 0 || len > 10)
		return -1;
	for (size_t i = 0; i < len; i++) {
		if (!is_digit(s[i]))
			return -1;
		value = value * 10 + (unsigned long)(s[i] - '0');
	}
	if (value >= UINT_MAX)
		return -1;
	*id = (unsigned)value;
	return 0;
}

/* Lines are "name:x:id:id:..."; a name matches only in full, never as a prefix of a longer one. */
int account_ids(const char *text, size_t len, const char *name, size_t name_len, int field, unsigned *id,
		unsigned *next)
{
	const char *stop = text + len;

	for (const char *line = text; line < stop;) {
		const char *end = memchr(line, '\n', (size_t)(stop - line));
		const char *fields[4];
		size_t lens[4];
		int count = 0;

		if (!end)
			end = stop;
		for (const char *start = line; count < 4;) {
			const char *colon = memchr(start, ':', (size_t)(end - start));
			fields[count] = start;
			lens[count++] = (size_t)((colon ? colon : end) - start);
			if (!colon)
				break;
			start = colon + 1;
		}
		if (lens[0] == name_len && memcmp(line, name, name_len) == 0) {
			if (field < 0 || count <= field || parse_id(fields[field], lens[field], id) != 0)
				return -2;
			if (next && (count <= field + 1 || parse_id(fields[field + 1], lens[field + 1], next) != 0))
				return -2;
			return 0;
		}
		if (end == stop)
			break;
		line = end + 1;
	}
	return -1;
}
