/*
 * For the tests only, never part of SOURCES: runs the system-call filter that sandbox.c builds
 * over every number up to 1023 (and the arguments it looks at), in a small interpreter of the
 * classic BPF it uses, and compares each verdict with the rule it comes from: refused[] and
 * the special cases, searched one by one. The kernel proves the real refusals
 * (tests/test_sandbox_attacks.py); this proves the search finds every rule and nothing else.
 * Prints the program's length and its longest path (what installing it costs, per number).
 */
#include "sandbox.c"

#include <err.h>
#include <stdlib.h>

struct call {
	uint32_t arch, nr, arg0, arg1, arg2, arg3;
};

/* The word of struct seccomp_data at offset k, of those the filter reads. */
static uint32_t field(const struct call *c, uint32_t k, size_t pc)
{
	switch (k) {
	case DATA_ARCH:
		return c->arch;
	case DATA_NR:
		return c->nr;
	case DATA_ARG0_LOW:
		return c->arg0;
	case DATA_ARG1_LOW:
		return c->arg1;
	case DATA_ARG2_LOW:
		return c->arg2;
	case DATA_ARG3_LOW:
		return c->arg3;
	default:
		errx(1, "instruction %zu loads offset %u, which the interpreter does not know", pc, k);
	}
}

static uint32_t run(const struct filter_insn *prog, size_t len, const struct call *c, size_t *steps)
{
	uint32_t a = 0;

	*steps = 0;
	for (size_t pc = 0; pc < len; pc++) {
		const struct filter_insn *i = &prog[pc];
		++*steps;
		switch (i->code) {
		case LOAD_WORD_ABS:
			a = field(c, i->k, pc);
			break;
		case JUMP_EQ:
			pc += a == i->k ? i->jt : i->jf;
			break;
		case JUMP_GE:
			pc += a >= i->k ? i->jt : i->jf;
			break;
		case JUMP_SET:
			pc += (a & i->k) ? i->jt : i->jf;
			break;
		case RETURN:
			return i->k;
		default:
			errx(1, "instruction %zu has code %#x, which the interpreter does not know", pc, i->code);
		}
	}
	errx(1, "the program runs off its end for system call %u", c->nr);
}

/* The rules as written, looked up one by one; `refuse` is EPERM, or RET_USER_NOTIF when watched. */
static uint32_t expected(const struct call *c, uint32_t refuse)
{
	if (c->arch != NATIVE_ARCH)
		return RET_KILL_PROCESS;
#if defined(__x86_64__)
	if (c->nr & X32_SYSCALL_BIT)
		return RET_KILL_PROCESS;
#endif
	const uint32_t execute = 0111, creates = 0100 | 020000000;

	if (c->nr == SANDBOX_PROBE_NR)
		return RET_ERRNO | SANDBOX_PROBE_ERRNO;
	if (c->nr == SYS_seccomp)
		return c->arg1 & 8 ? refuse : RET_ALLOW; /* SECCOMP_FILTER_FLAG_NEW_LISTENER */
	if (c->nr == SYS_clone3 || c->nr == SYS_openat2)
		return RET_ERRNO | ENOSYS;
	if (c->nr == SYS_setxattr || c->nr == SYS_lsetxattr || c->nr == SYS_fsetxattr || c->nr == SYS_setxattrat)
		return RET_ERRNO | EOPNOTSUPP;
	if (c->nr == SYS_fchmod)
		return c->arg1 & execute ? refuse : RET_ALLOW;
	if (c->nr == SYS_fchmodat || c->nr == SYS_fchmodat2 || c->nr == SYS_mknodat)
		return c->arg2 & execute ? refuse : RET_ALLOW;
	if (c->nr == SYS_openat)
		return (c->arg2 & creates) && (c->arg3 & execute) ? refuse : RET_ALLOW;
	if (c->nr == SYS_memfd_create)
		return (c->arg1 & 0x10) || !(c->arg1 & 0x8) ? refuse : RET_ALLOW;
#ifdef SYS_chmod
	if (c->nr == SYS_chmod || c->nr == SYS_creat || c->nr == SYS_mknod)
		return c->arg1 & execute ? refuse : RET_ALLOW;
	if (c->nr == SYS_open)
		return (c->arg1 & creates) && (c->arg2 & execute) ? refuse : RET_ALLOW;
#endif
	if (c->nr == SYS_clone)
		return c->arg0 & CLONE_NEW_ANY ? refuse : RET_ALLOW;
	if (c->nr == SYS_socket)
		return c->arg0 == 43 || c->arg2 == 262 ? refuse : RET_ALLOW; /* AF_SMC, IPPROTO_MPTCP */
	if (c->nr == SYS_ioctl)
		return c->arg1 == IOCTL_TIOCSTI || c->arg1 == IOCTL_TIOCLINUX ? refuse : RET_ALLOW;
	for (size_t i = 0; i < REFUSED; i++)
		if (refused[i].nr == c->nr)
			return refuse;
	return RET_ALLOW;
}

/* Every number, ABI and pair of argument values against the rules; the longest path taken. */
static size_t check(uint32_t refuse, size_t *checked, size_t *refusals, size_t *len)
{
	static struct filter_insn prog[MAX_INSNS];
	size_t steps, longest = 0;
	/* clone flags, ioctl commands, open flags (O_CREAT, O_TMPFILE), modes, memfd flags (NOEXEC_SEAL,
	 * EXEC), seccomp's NEW_LISTENER flag (8), socket's AF_SMC (43) and IPPROTO_MPTCP (262). */
	const uint32_t args[] = { 0, 0x11, 0x5412, 0x541c, 0x10000000, 0x20000, 0x7e020000, 0x1200011, 0xffffffff,
				  0x40, 0x410000, 0x1ed, 0x1a4, 0x8, 0x10, 0x9, 0x41, 0100, 43, 262, 6 };
	const uint32_t arches[] = { NATIVE_ARCH, 0x40000003U /* i386 */, 0x40000028U /* arm */, 0 };

	*len = build_filter(prog, refuse);
	for (size_t a = 0; a < sizeof arches / sizeof arches[0]; a++)
		for (uint32_t nr = 0; nr < 1024; nr++)
			for (size_t i = 0; i < sizeof args / sizeof args[0]; i++)
				for (size_t j = 0; j < sizeof args / sizeof args[0]; j++) {
					uint32_t numbers[] = { nr, nr | X32_SYSCALL_BIT };
					for (size_t x = 0; x < 2; x++) {
						/* Every pair of values, in every pair of neighbouring arguments. */
						struct call c = { arches[a], numbers[x], args[i], args[j], args[i], args[j] };
						uint32_t got = run(prog, *len, &c, &steps), want = expected(&c, refuse);
						if (got != want)
							errx(1, "arch %#x, system call %u (%#x, %#x): the filter answers %#x, the rules %#x",
							     c.arch, c.nr, c.arg0, c.arg1, got, want);
						if (steps > longest)
							longest = steps;
						*refusals += got == refuse;
						++*checked;
					}
				}
	return longest;
}

int main(void)
{
	size_t checked = 0, refusals = 0, len = 0, longest = check(RET_ERRNO | EPERM, &checked, &refusals, &len);
	size_t watched_len = 0, watched_longest = check(RET_USER_NOTIF, &checked, &refusals, &watched_len);

	if (watched_len > len)
		len = watched_len;
	if (watched_longest > longest)
		longest = watched_longest;
	printf("filter: %zu instructions, longest path %zu; %zu calls checked against the rules, %zu refused\n", len,
	       longest, checked, refusals);
	return 0;
}
