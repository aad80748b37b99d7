/*
 * The worker's sandbox. The launcher already decides what the worker sees (its environment) and
 * who it is (not root); this decides what exploited code in it can still do:
 *  - no session or keyring of root's (setsid, a new session keyring);
 *  - writes only where the worker must write (Landlock, where the kernel has it);
 *  - none of the kernel interfaces that container escapes and privilege escalations start from
 *    (a seccomp filter): namespaces, mounts, keyrings, bpf, perf events, userfaultfd, io_uring,
 *    ptrace and its relatives, module and kernel loading, terminal input injection.
 * Both Landlock and seccomp last across execve and only ever narrow: the worker cannot undo them.
 *
 * The kernel's constants are spelled out here, with their uapi header named: the builder's
 * headers (Debian 12: Linux 6.1) predate some of them, and musl-gcc sees no kernel headers at all.
 */
#define _GNU_SOURCE
#include "sandbox.h"

#include <errno.h>
#include <fcntl.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/syscall.h>
#include <unistd.h>

/* linux/audit.h, and the ABI's own syscall table: the filter refuses every other one. */
#define ARCH_X86_64 0xc000003eU
#define ARCH_AARCH64 0xc00000b7U
#if defined(__x86_64__)
#define NATIVE_ARCH ARCH_X86_64
#define NATIVE_ARCH_NAME "x86_64"
#elif defined(__aarch64__)
#define NATIVE_ARCH ARCH_AARCH64
#define NATIVE_ARCH_NAME "aarch64"
#else
#error "the system-call filter knows x86_64 and aarch64 only: add the architecture's numbers first"
#endif
/* arch/x86/include/uapi/asm/unistd.h: x32 system calls are x86_64 numbers with this bit set. */
#define X32_SYSCALL_BIT 0x40000000U

/* linux/filter.h and linux/seccomp.h */
struct filter_insn {
	uint16_t code;
	uint8_t jt, jf;
	uint32_t k;
};
struct filter_prog {
	unsigned short len;
	struct filter_insn *insns;
};
enum {
	LOAD_WORD_ABS = 0x20, /* BPF_LD | BPF_W | BPF_ABS */
	JUMP_EQ = 0x15,       /* BPF_JMP | BPF_JEQ | BPF_K */
	JUMP_GE = 0x35,       /* BPF_JMP | BPF_JGE | BPF_K */
	JUMP_SET = 0x45,      /* BPF_JMP | BPF_JSET | BPF_K */
	RETURN = 0x06,        /* BPF_RET | BPF_K */
};
#define RET_KILL_PROCESS 0x80000000U
#define RET_ERRNO 0x00050000U
#define RET_USER_NOTIF 0x7fc00000U
#define RET_ALLOW 0x7fff0000U
/* struct seccomp_data: int nr; u32 arch; u64 instruction_pointer; u64 args[6] (little-endian). */
enum { DATA_NR = 0, DATA_ARCH = 4, DATA_ARG0_LOW = 16, DATA_ARG1_LOW = 24, DATA_ARG2_LOW = 32, DATA_ARG3_LOW = 40 };
#ifndef PR_SET_SECCOMP
#define PR_SET_SECCOMP 22
#endif
#define SECCOMP_MODE_FILTER 2
/* linux/seccomp.h: seccomp(2)'s operation and flag that hand back a listener for RET_USER_NOTIF. */
#define SECCOMP_SET_MODE_FILTER 1
#define SECCOMP_FILTER_FLAG_NEW_LISTENER 8U

/* linux/sched.h: every CLONE_NEW* flag clone() accepts (CLONE_NEWTIME is clone3/unshare only). */
#define CLONE_NEW_ANY 0x7e020000U /* NEWNS | NEWCGROUP | NEWUTS | NEWIPC | NEWUSER | NEWPID | NEWNET */
/* asm-generic/ioctls.h: push bytes into a terminal's input; write to a virtual console. */
#define IOCTL_TIOCSTI 0x5412U
#define IOCTL_TIOCLINUX 0x541cU

/* linux/socket.h and linux/in.h: sockets that carry TCP under another name. */
#define FAMILY_SMC 43U
#define PROTOCOL_MPTCP 262U

/* The execute bits of a mode; asm-generic/fcntl.h: O_CREAT and __O_TMPFILE (x86_64 and aarch64
 * alike); linux/memfd.h: MFD_NOEXEC_SEAL and MFD_EXEC (Linux 6.3). */
#define MODE_EXECUTE_BITS 0111U
#define OPEN_CREATES (0100U | 020000000U)
#define MFD_NOEXEC_SEAL_FLAG 0x0008U
#define MFD_EXEC_FLAG 0x0010U

/* Numbers from 424 on are the same on every architecture (asm-generic/unistd.h). */
#ifndef SYS_io_uring_setup
#define SYS_io_uring_setup 425
#define SYS_io_uring_enter 426
#define SYS_io_uring_register 427
#endif
#ifndef SYS_open_tree
#define SYS_open_tree 428
#define SYS_move_mount 429
#define SYS_fsopen 430
#define SYS_fsconfig 431
#define SYS_fsmount 432
#define SYS_fspick 433
#endif
#ifndef SYS_clone3
#define SYS_clone3 435
#endif
#ifndef SYS_pidfd_getfd
#define SYS_pidfd_getfd 438
#endif
#ifndef SYS_mount_setattr
#define SYS_mount_setattr 442
#endif
#ifndef SYS_quotactl_fd
#define SYS_quotactl_fd 443
#endif
#ifndef SYS_openat2
#define SYS_openat2 437
#endif
#ifndef SYS_fchmodat2
#define SYS_fchmodat2 452
#endif
#ifndef SYS_setxattrat
#define SYS_setxattrat 463
#endif
#ifndef SYS_landlock_create_ruleset
#define SYS_landlock_create_ruleset 444
#define SYS_landlock_add_rule 445
#define SYS_landlock_restrict_self 446
#endif

/* A system call's number and its name, for the events the supervisor reports. */
struct named {
	uint32_t nr;
	const char *name;
};
#define NAMED(call) { SYS_##call, #call }

/* Refused with EPERM (or, watched, reported and then refused: see sandbox.h), whatever the arguments. */
static const struct named refused[] = {
	/* New namespaces give a full capability set over a fresh kernel surface: the first step
	 * of most container escapes. clone's flags are checked below; clone3 answers ENOSYS. */
	NAMED(unshare), NAMED(setns),
	/* The worker's process group is how its supervisor ends everything it started: no process
	 * of the worker's may leave it (launcher/README.md, "Lifetime"). */
	NAMED(setsid), NAMED(setpgid),
	/* Mounts: useless to a worker, and with a user namespace, a way to reshape its view. */
	NAMED(mount), NAMED(umount2), NAMED(pivot_root), NAMED(open_tree), NAMED(move_mount), NAMED(fsopen), NAMED(fsconfig),
	NAMED(fsmount), NAMED(fspick), NAMED(mount_setattr),
	/* Keyrings are not namespaced: whatever a key grants, the kernel hands out by uid. */
	NAMED(keyctl), NAMED(add_key), NAMED(request_key),
	/* Kernel-side programs, events and paging tricks: the usual exploit primitives. */
	NAMED(bpf), NAMED(perf_event_open), NAMED(userfaultfd), NAMED(io_uring_setup), NAMED(io_uring_enter),
	NAMED(io_uring_register),
	/* Reading or steering another process of the worker's own account (a sibling worker). */
	NAMED(ptrace), NAMED(process_vm_readv), NAMED(process_vm_writev), NAMED(pidfd_getfd), NAMED(kcmp),
	/* Replacing the kernel or loading into it. */
	NAMED(kexec_load), NAMED(kexec_file_load), NAMED(init_module), NAMED(finit_module), NAMED(delete_module),
	/* Root's business; nothing a worker calls. */
	NAMED(open_by_handle_at), NAMED(fanotify_init), NAMED(acct), NAMED(swapon), NAMED(swapoff), NAMED(reboot),
	NAMED(quotactl), NAMED(quotactl_fd), NAMED(syslog),
#ifdef SYS_modify_ldt
	NAMED(modify_ldt), /* x86 only: 16-bit segments, a long history of kernel bugs */
#endif
#ifdef SYS_uselib
	NAMED(uselib),
#endif
};

enum { REFUSED = sizeof refused / sizeof refused[0] };

/*
 * What the filter answers a system call, by its number: refused, not there, not supported, or
 * decided by its arguments. Every other number is allowed.
 */
enum verdict {
	VERDICT_REFUSE,
	VERDICT_ENOSYS,
	VERDICT_EOPNOTSUPP,
	VERDICT_CLONE_FLAGS,
	VERDICT_IOCTL_COMMAND,
	VERDICT_MODE_ARG1,       /* refused when the mode (second argument) has an execute bit */
	VERDICT_MODE_ARG2,       /* the same, mode third */
	VERDICT_CREATE_ARG1_ARG2, /* open: creating (flags second) with an execute bit (mode third) */
	VERDICT_CREATE_ARG2_ARG3, /* openat: the same, one argument later */
	VERDICT_MEMFD_FLAGS,     /* memfd_create: only with MFD_NOEXEC_SEAL, never MFD_EXEC */
	VERDICT_NO_LISTENER,     /* seccomp: never a listener of the worker's own (see below) */
	VERDICT_SOCKET,          /* socket: never one that reaches TCP ports past Landlock (see below) */
	VERDICT_PROBE,           /* SANDBOX_PROBE_NR: this filter is already in place */
	VERDICTS,
};
struct rule {
	uint32_t nr;
	enum verdict verdict;
	const char *name;
};

/*
 * The worker runs no program but the interpreter: a file it makes can never carry an execute
 * bit, so nothing it writes (TMPDIR, /dev/shm, a copy of a system binary) can be executed. On
 * every kernel: the modes and flags are plain arguments the filter reads. Landlock, where the
 * kernel has it, also refuses executing any file but the interpreter, the launcher and the loader.
 */
static const struct rule by_arguments[] = {
	/* clone3 passes its flags in memory the filter cannot read: ENOSYS, and glibc falls back
	 * to clone, whose flags it can. openat2 likewise hides its mode: callers fall back to openat. */
	{ SYS_clone3, VERDICT_ENOSYS, "clone3" },
	{ SYS_openat2, VERDICT_ENOSYS, "openat2" },
	{ SYS_clone, VERDICT_CLONE_FLAGS, "clone" },
	{ SYS_ioctl, VERDICT_IOCTL_COMMAND, "ioctl" },
	{ SYS_fchmod, VERDICT_MODE_ARG1, "fchmod" },
	{ SYS_fchmodat, VERDICT_MODE_ARG2, "fchmodat" },
	{ SYS_fchmodat2, VERDICT_MODE_ARG2, "fchmodat2" },
	{ SYS_mknodat, VERDICT_MODE_ARG2, "mknodat" },
	{ SYS_openat, VERDICT_CREATE_ARG2_ARG3, "openat" },
	{ SYS_memfd_create, VERDICT_MEMFD_FLAGS, "memfd_create" },
#ifdef SYS_chmod
	{ SYS_chmod, VERDICT_MODE_ARG1, "chmod" },
	{ SYS_creat, VERDICT_MODE_ARG1, "creat" },
	{ SYS_mknod, VERDICT_MODE_ARG1, "mknod" },
	{ SYS_open, VERDICT_CREATE_ARG1_ARG2, "open" },
#endif
	/* An access ACL's owner entry is the mode's owner bits: setting one is a chmod the filter
	 * cannot read (the name and value are in memory). "Not supported", which copiers accept. */
	/* A newer filter's RET_USER_NOTIF wins over an older one's, and its listener may let the call
	 * through (linux/seccomp.h): a worker holding a listener could undo every watched refusal. */
	{ SYS_seccomp, VERDICT_NO_LISTENER, "seccomp" },
	{ SANDBOX_PROBE_NR, VERDICT_PROBE, "probe" },
	/* Landlock's connect rules hold for TCP sockets only: an MPTCP socket (IPPROTO_MPTCP) or an
	 * SMC one (AF_SMC) connects to any port and falls back to plain TCP when the server speaks
	 * nothing else (checked here on Linux 6.18: tests/test_egress.py). */
	{ SYS_socket, VERDICT_SOCKET, "socket" },
	{ SYS_setxattr, VERDICT_EOPNOTSUPP, "setxattr" },
	{ SYS_lsetxattr, VERDICT_EOPNOTSUPP, "lsetxattr" },
	{ SYS_fsetxattr, VERDICT_EOPNOTSUPP, "fsetxattr" },
	{ SYS_setxattrat, VERDICT_EOPNOTSUPP, "setxattrat" },
};

enum { SPECIAL = sizeof by_arguments / sizeof by_arguments[0], RULES = REFUSED + SPECIAL, LEAF_RULES = 4 };

/*
 * The numbers are searched as a balanced tree, not one comparison after another: the kernel
 * runs the program once per system-call number when it installs it (to cache the verdicts that
 * depend on the number alone: kernel/seccomp.c, seccomp_cache_prepare), so the program's
 * longest path, not its length, is what installing costs. The same rules in one linear list took
 * 64 to 86 us to install here; in this tree, 36 to 40 us (make bench-sandbox prints it).
 * Classic BPF jumps only forward, by at most 255: a program under 256 instructions stays in reach.
 */
enum { MAX_INSNS = 255, VERDICT_BLOCKS_INSNS = 45 };
/* At most: the header; per rule a comparison, and (leaves hold two rules or more) half a leaf's
 * allow and half a split; the verdicts' blocks. */
_Static_assert(6 + 2 * RULES + VERDICT_BLOCKS_INSNS <= MAX_INSNS, "the filter could outgrow its jumps' reach");

static void emit(struct filter_insn *prog, size_t *n, uint16_t code, uint8_t jt, uint8_t jf, uint32_t k)
{
	prog[(*n)++] = (struct filter_insn){ .code = code, .jt = jt, .jf = jf, .k = k };
}

/*
 * rules[lo, hi), sorted: split on the middle number until a few are left, then compare each.
 * A comparison's jump holds its rule's verdict until the verdicts' blocks have their places.
 */
static void emit_search(struct filter_insn *prog, size_t *n, const struct rule *rules, size_t lo, size_t hi)
{
	size_t split, mid;

	if (hi - lo <= LEAF_RULES) {
		for (size_t i = lo; i < hi; i++)
			emit(prog, n, JUMP_EQ, (uint8_t)rules[i].verdict, 0, rules[i].nr);
		emit(prog, n, RETURN, 0, 0, RET_ALLOW);
		return;
	}
	mid = lo + (hi - lo) / 2;
	split = *n;
	emit(prog, n, JUMP_GE, 0, 0, rules[mid].nr); /* false: the lower half, which follows */
	emit_search(prog, n, rules, lo, mid);
	prog[split].jt = (uint8_t)(*n - split - 1);
	emit_search(prog, n, rules, mid, hi);
}

/* Insertion sort: a few dozen rules, and no allocation (a libc's qsort may allocate). */
static void sort_by_number(struct rule *rules, size_t n)
{
	for (size_t i = 1; i < n; i++) {
		struct rule next = rules[i];
		size_t j = i;
		for (; j > 0 && rules[j - 1].nr > next.nr; j--)
			rules[j] = rules[j - 1];
		rules[j] = next;
	}
}

/* Refused when the argument at `offset` has one of `bits`. */
static void emit_bits_check(struct filter_insn *prog, size_t *n, uint32_t offset, uint32_t bits, uint32_t refusal)
{
	emit(prog, n, LOAD_WORD_ABS, 0, 0, offset);
	emit(prog, n, JUMP_SET, 0, 1, bits);
	emit(prog, n, RETURN, 0, 0, refusal);
	emit(prog, n, RETURN, 0, 0, RET_ALLOW);
}

/* Only a call that creates (O_CREAT, O_TMPFILE) has a mode the kernel uses. */
static void emit_create_check(struct filter_insn *prog, size_t *n, uint32_t flags, uint32_t mode, uint32_t refusal)
{
	emit(prog, n, LOAD_WORD_ABS, 0, 0, flags);
	emit(prog, n, JUMP_SET, 1, 0, OPEN_CREATES);
	emit(prog, n, RETURN, 0, 0, RET_ALLOW);
	emit_bits_check(prog, n, mode, MODE_EXECUTE_BITS, refusal);
}

/*
 * The program: check the ABI, search the number, then the blocks that give each verdict. What
 * only exploited code (or a broken dependency) asks for is answered with `refusal`: EPERM, or
 * RET_USER_NOTIF when the supervisor watches (it reports, then answers EPERM itself).
 */
static size_t build_filter(struct filter_insn *prog, uint32_t refusal)
{
	struct rule rules[RULES];
	size_t n = 0, search, searched, block[VERDICTS];

	for (size_t i = 0; i < REFUSED; i++)
		rules[i] = (struct rule){ refused[i].nr, VERDICT_REFUSE, refused[i].name };
	for (size_t i = 0; i < SPECIAL; i++)
		rules[REFUSED + i] = by_arguments[i];
	sort_by_number(rules, RULES);

	emit(prog, &n, LOAD_WORD_ABS, 0, 0, DATA_ARCH);
	emit(prog, &n, JUMP_EQ, 1, 0, NATIVE_ARCH); /* a foreign ABI (i386 via int 0x80, arm32) is killed */
	emit(prog, &n, RETURN, 0, 0, RET_KILL_PROCESS);
	emit(prog, &n, LOAD_WORD_ABS, 0, 0, DATA_NR);
#if defined(__x86_64__)
	emit(prog, &n, JUMP_GE, 0, 1, X32_SYSCALL_BIT); /* the x32 ABI shares the arch value: killed */
	emit(prog, &n, RETURN, 0, 0, RET_KILL_PROCESS);
#endif
	search = n;
	emit_search(prog, &n, rules, 0, RULES);
	searched = n;

	block[VERDICT_REFUSE] = n;
	emit(prog, &n, RETURN, 0, 0, refusal);
	block[VERDICT_ENOSYS] = n;
	emit(prog, &n, RETURN, 0, 0, RET_ERRNO | ENOSYS);
	block[VERDICT_EOPNOTSUPP] = n;
	emit(prog, &n, RETURN, 0, 0, RET_ERRNO | EOPNOTSUPP);
	block[VERDICT_CLONE_FLAGS] = n;
	emit_bits_check(prog, &n, DATA_ARG0_LOW, CLONE_NEW_ANY, refusal);
	/* The kernel reads ioctl's command as 32 bits: the low word is the whole command. */
	block[VERDICT_IOCTL_COMMAND] = n;
	emit(prog, &n, LOAD_WORD_ABS, 0, 0, DATA_ARG1_LOW);
	emit(prog, &n, JUMP_EQ, 2, 0, IOCTL_TIOCSTI);
	emit(prog, &n, JUMP_EQ, 1, 0, IOCTL_TIOCLINUX);
	emit(prog, &n, RETURN, 0, 0, RET_ALLOW);
	emit(prog, &n, RETURN, 0, 0, refusal);
	/* Modes and flags are 32-bit in the kernel (umode_t, int): the low word is all of them. */
	block[VERDICT_MODE_ARG1] = n;
	emit_bits_check(prog, &n, DATA_ARG1_LOW, MODE_EXECUTE_BITS, refusal);
	block[VERDICT_MODE_ARG2] = n;
	emit_bits_check(prog, &n, DATA_ARG2_LOW, MODE_EXECUTE_BITS, refusal);
	block[VERDICT_CREATE_ARG1_ARG2] = n;
	emit_create_check(prog, &n, DATA_ARG1_LOW, DATA_ARG2_LOW, refusal);
	block[VERDICT_CREATE_ARG2_ARG3] = n;
	emit_create_check(prog, &n, DATA_ARG2_LOW, DATA_ARG3_LOW, refusal);
	block[VERDICT_MEMFD_FLAGS] = n;
	emit(prog, &n, LOAD_WORD_ABS, 0, 0, DATA_ARG1_LOW);
	emit(prog, &n, JUMP_SET, 2, 0, MFD_EXEC_FLAG);
	emit(prog, &n, JUMP_SET, 0, 1, MFD_NOEXEC_SEAL_FLAG);
	emit(prog, &n, RETURN, 0, 0, RET_ALLOW);
	emit(prog, &n, RETURN, 0, 0, refusal);
	block[VERDICT_NO_LISTENER] = n;
	emit_bits_check(prog, &n, DATA_ARG1_LOW, SECCOMP_FILTER_FLAG_NEW_LISTENER, refusal);
	block[VERDICT_SOCKET] = n;
	emit(prog, &n, LOAD_WORD_ABS, 0, 0, DATA_ARG0_LOW);
	emit(prog, &n, JUMP_EQ, 3, 0, FAMILY_SMC);
	emit(prog, &n, LOAD_WORD_ABS, 0, 0, DATA_ARG2_LOW);
	emit(prog, &n, JUMP_EQ, 1, 0, PROTOCOL_MPTCP);
	emit(prog, &n, RETURN, 0, 0, RET_ALLOW);
	emit(prog, &n, RETURN, 0, 0, refusal);
	block[VERDICT_PROBE] = n;
	emit(prog, &n, RETURN, 0, 0, RET_ERRNO | SANDBOX_PROBE_ERRNO);

	for (size_t pc = search; pc < searched; pc++) /* the comparisons' jumps, to their verdict's block */
		if (prog[pc].code == JUMP_EQ)
			prog[pc].jt = (uint8_t)(block[prog[pc].jt] - pc - 1);
	return n;
}

static __attribute__((format(printf, 2, 3))) int fail(struct sandbox_failure *failure, const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(failure->message, sizeof failure->message, fmt, ap);
	va_end(ap);
	return -1;
}

/* linux/keyctl.h */
#define KEYCTL_JOIN_SESSION_KEYRING 1

int sandbox_leave_root_session(bool must_lead, struct sandbox_status *status, struct sandbox_failure *failure)
{
	/* Already leading a session (a re-exec) is fine. Not as root, a process group leader keeps
	 * its group: there is no root session to leave, and the root launch already made this one. */
	if (setsid() < 0 && getsid(0) != getpid() && must_lead)
		return fail(failure, "setsid(): %s", strerror(errno));
	status->keyring_errno = 0;
	if (syscall(SYS_keyctl, KEYCTL_JOIN_SESSION_KEYRING, NULL) >= 0)
		return 0;
	/* No keyrings in this kernel, or keyctl refused to this process (a container engine's filter,
	 * or this filter on a re-exec): then the worker cannot reach any keyring either. */
	if (errno == ENOSYS || errno == EPERM) {
		status->keyring_errno = errno;
		return 0;
	}
	return fail(failure, "keyctl(KEYCTL_JOIN_SESSION_KEYRING): %s", strerror(errno));
}

/* linux/landlock.h */
#define LANDLOCK_CREATE_RULESET_VERSION 1U
#define LANDLOCK_RULE_PATH_BENEATH 1
enum {
	FS_EXECUTE = 1 << 0,
	FS_WRITE_FILE = 1 << 1, FS_REMOVE_DIR = 1 << 4, FS_REMOVE_FILE = 1 << 5, FS_MAKE_CHAR = 1 << 6,
	FS_MAKE_DIR = 1 << 7, FS_MAKE_REG = 1 << 8, FS_MAKE_SOCK = 1 << 9, FS_MAKE_FIFO = 1 << 10,
	FS_MAKE_BLOCK = 1 << 11, FS_MAKE_SYM = 1 << 12,
	FS_REFER = 1 << 13,    /* ABI 2 */
	FS_TRUNCATE = 1 << 14, /* ABI 3 */
};
/* ABI 4: TCP connect, by port (bind is not handled: the worker may still listen). */
#define NET_CONNECT_TCP (1U << 1)
#define LANDLOCK_RULE_NET_PORT 2
struct net_port_attr {
	uint64_t allowed_access;
	uint64_t port;
};
struct ruleset_attr {
	uint64_t handled_access_fs;
	uint64_t handled_access_net; /* ABI 4 */
	uint64_t scoped;             /* ABI 6 */
};
/* ABI 6: no signal to, and no abstract socket of, a process outside the worker's own domain. */
#define SCOPE_ABSTRACT_UNIX_SOCKET 1U
#define SCOPE_SIGNAL 2U
struct path_beneath_attr {
	uint64_t allowed_access;
	int32_t parent_fd;
} __attribute__((packed));

/* The dynamic loaders an interpreter may name (the kernel opens them for execution too). */
static const char *const loaders[] = {
	"/lib64/ld-linux-x86-64.so.2", "/lib/ld-linux-aarch64.so.1", "/lib/ld-musl-x86_64.so.1",
	"/lib/ld-musl-aarch64.so.1",
};

/* Files the worker writes but does not own: the bit buckets and its terminal, if any. */
static const char *const writable_devices[] = { "/dev/null", "/dev/zero", "/dev/full", "/dev/tty" };

static int allow_beneath(int ruleset, const char *path, uint64_t access, bool required, struct sandbox_failure *failure)
{
	struct path_beneath_attr rule = { .allowed_access = access };

	rule.parent_fd = open(path, O_PATH | O_CLOEXEC);
	if (rule.parent_fd < 0) {
		if (!required && errno == ENOENT)
			return 0;
		return fail(failure, "landlock: open(%s): %s", path, strerror(errno));
	}
	if (syscall(SYS_landlock_add_rule, ruleset, LANDLOCK_RULE_PATH_BENEATH, &rule, 0) != 0) {
		int error = errno;
		close(rule.parent_fd);
		return fail(failure, "landlock_add_rule(%s): %s", path, strerror(error));
	}
	close(rule.parent_fd);
	return 0;
}

/*
 * Every kind of write is handled, so each is refused outside the rules: the worker's TMPDIR,
 * /dev/shm (the worker's shared-memory transfers and Python's semaphores live there) and the
 * devices above. Execution is handled too: only the interpreter, this launcher (the worker
 * re-executes it) and the loader may be executed. Reads stay as the file modes say.
 */
/* Connections are the worker's only way to another token endpoint: refused but for its own ports. */
static int allow_ports(int ruleset, const struct egress *egress, struct sandbox_failure *failure)
{
	for (size_t i = 0; i < egress->n; i++) {
		struct net_port_attr rule = { .allowed_access = NET_CONNECT_TCP, .port = egress->port[i] };
		if (syscall(SYS_landlock_add_rule, ruleset, LANDLOCK_RULE_NET_PORT, &rule, 0) != 0)
			return fail(failure, "landlock_add_rule(port %u): %s", egress->port[i], strerror(errno));
	}
	return 0;
}

/* best-effort without network rules: one line, whether or not the policy audits. */
static void warn_connect_not_enforced(const char *why)
{
	char line[320];

	snprintf(line, sizeof line,
		 "launcher: warning: connect not enforced: %s; the worker may connect to any port, a metadata "
		 "endpoint's included (launcher/README.md, Egress)\n", why);
	if (write(STDERR_FILENO, line, strlen(line)) < 0) {
		/* Best effort, as the mode says; the audit line says it too. */
	}
}

/*
 * Every kind of write is handled, so each is refused outside the rules: the worker's TMPDIR,
 * /dev/shm (the worker's shared-memory transfers and Python's semaphores live there) and the
 * devices above. Execution is handled too: only the interpreter, this launcher (the worker
 * re-executes it) and the loader may be executed. With connect lines (ABI 4), TCP connections
 * too: only to the worker's ports. Reads stay as the file modes say.
 */
static int landlock(const struct policy *p, const char *tmpdir, const struct egress *egress,
		    struct sandbox_status *status, struct sandbox_failure *failure)
{
	struct ruleset_attr attr = { 0 };
	size_t attr_size = sizeof attr.handled_access_fs;
	bool connect = egress && egress->confined;
	uint64_t files, writes;
	long abi;
	int ruleset;

	status->landlock_abi = 0;
	status->landlock_errno = 0;
	status->egress = egress;
	status->connect_enforced = false;
	if (p->landlock == LANDLOCK_OFF)
		return 0;
	abi = syscall(SYS_landlock_create_ruleset, NULL, 0, LANDLOCK_CREATE_RULESET_VERSION);
	if (abi < 0) {
		/* ENOSYS: not built in; EOPNOTSUPP: not enabled at boot; anything else: refused by
		 * the container engine's own filter. */
		if (p->landlock == LANDLOCK_REQUIRED)
			return fail(failure, "landlock_create_ruleset(VERSION): %s (the policy says landlock required)",
				    strerror(errno));
		status->landlock_errno = errno;
		if (connect)
			warn_connect_not_enforced("no Landlock here");
		return 0;
	}
	if (connect && abi < 4) {
		if (p->landlock == LANDLOCK_REQUIRED)
			return fail(failure, "landlock ABI %ld has no network rules (connect needs ABI 4, Linux 6.7; "
				    "the policy says landlock required)", abi);
		warn_connect_not_enforced("Landlock has no network rules before ABI 4 (Linux 6.7)");
	}
	writes = FS_WRITE_FILE | FS_REMOVE_DIR | FS_REMOVE_FILE | FS_MAKE_CHAR | FS_MAKE_DIR | FS_MAKE_REG |
		 FS_MAKE_SOCK | FS_MAKE_FIFO | FS_MAKE_BLOCK | FS_MAKE_SYM | (abi >= 2 ? FS_REFER : 0) |
		 (abi >= 3 ? FS_TRUNCATE : 0);
	attr.handled_access_fs = writes | FS_EXECUTE;
	if (connect && abi >= 4) {
		attr.handled_access_net = NET_CONNECT_TCP;
		attr_size = sizeof attr.handled_access_fs + sizeof attr.handled_access_net;
	}
	if (abi >= 6) {
		attr.scoped = SCOPE_SIGNAL | SCOPE_ABSTRACT_UNIX_SOCKET;
		attr_size = sizeof attr;
	}
	files = FS_WRITE_FILE | (abi >= 3 ? FS_TRUNCATE : 0);
	ruleset = (int)syscall(SYS_landlock_create_ruleset, &attr, attr_size, 0);
	if (ruleset < 0)
		return fail(failure, "landlock_create_ruleset: %s", strerror(errno));
	if (allow_beneath(ruleset, tmpdir, writes, true, failure) != 0 ||
	    allow_beneath(ruleset, "/dev/shm", writes, false, failure) != 0 ||
	    allow_beneath(ruleset, p->exec, FS_EXECUTE, true, failure) != 0 ||
	    allow_beneath(ruleset, "/proc/self/exe", FS_EXECUTE, true, failure) != 0 ||
	    (attr.handled_access_net && allow_ports(ruleset, egress, failure) != 0))
		goto failed;
	for (size_t i = 0; i < sizeof loaders / sizeof loaders[0]; i++)
		if (allow_beneath(ruleset, loaders[i], FS_EXECUTE, false, failure) != 0)
			goto failed;
	for (size_t i = 0; i < sizeof writable_devices / sizeof writable_devices[0]; i++)
		if (allow_beneath(ruleset, writable_devices[i], files, false, failure) != 0)
			goto failed;
	if (syscall(SYS_landlock_restrict_self, ruleset, 0) != 0) {
		fail(failure, "landlock_restrict_self: %s", strerror(errno));
		goto failed;
	}
	close(ruleset);
	status->landlock_abi = (int)abi;
	status->connect_enforced = attr.handled_access_net != 0;
	return 0;
failed:
	close(ruleset);
	return -1;
}

bool sandbox_filter_in_place(void)
{
	return syscall(SANDBOX_PROBE_NR) == -1 && errno == SANDBOX_PROBE_ERRNO;
}

int sandbox_confine(const struct policy *p, const char *tmpdir, const struct egress *egress, int *listener,
		    struct sandbox_status *status, struct sandbox_failure *failure)
{
	static struct filter_insn insns[MAX_INSNS];
	struct filter_prog prog;
	long fd;

	status->filter = FILTER_PLAIN;
	status->filter_errno = 0;
	if (landlock(p, tmpdir, egress, status, failure) != 0)
		return -1;
	/* A re-exec inside a watched worker: a second copy would answer with EPERM, which wins over
	 * the first copy's RET_USER_NOTIF, and silence the events; the first already holds. */
	if (sandbox_filter_in_place()) {
		status->filter = FILTER_INHERITED;
		return 0;
	}
	prog.insns = insns;
	if (listener) {
		prog.len = (unsigned short)build_filter(insns, RET_USER_NOTIF);
		fd = syscall(SYS_seccomp, SECCOMP_SET_MODE_FILTER, SECCOMP_FILTER_FLAG_NEW_LISTENER, &prog);
		if (fd >= 0) {
			*listener = (int)fd;
			status->filter = FILTER_WATCHED;
			return 0;
		}
		/* A kernel before 5.0, or an engine that refuses the flag: the same refusals, unreported. */
		status->filter_errno = errno;
	}
	prog.len = (unsigned short)build_filter(insns, RET_ERRNO | EPERM);
	if (prctl(PR_SET_SECCOMP, SECCOMP_MODE_FILTER, &prog, 0, 0) != 0)
		return fail(failure, "prctl(PR_SET_SECCOMP): %s", strerror(errno));
	return 0;
}

const char *sandbox_call_name(uint32_t nr)
{
	for (size_t i = 0; i < REFUSED; i++)
		if (refused[i].nr == nr)
			return refused[i].name;
	for (size_t i = 0; i < SPECIAL; i++)
		if (by_arguments[i].nr == nr)
			return by_arguments[i].name;
	return "?";
}

/* "; connects: TCP 443 36427", or "; connects: any port" where the policy asked and it is not enforced. */
static void connect_text(const struct sandbox_status *status, char *text, size_t size)
{
	size_t used;

	text[0] = '\0';
	if (!status->egress || !status->egress->confined)
		return;
	if (!status->connect_enforced) {
		snprintf(text, size, "; connects: any port");
		return;
	}
	used = (size_t)snprintf(text, size, "; connects: TCP");
	for (size_t i = 0; i < status->egress->n && used < size; i++)
		used += (size_t)snprintf(text + used, size - used, " %u", status->egress->port[i]);
}

void sandbox_audit(const struct policy *p, const struct sandbox_status *status)
{
	char connects[200], landlock_text[360], filter_text[80], line[640];

	connect_text(status, connects, sizeof connects);
	if (p->landlock == LANDLOCK_OFF)
		snprintf(landlock_text, sizeof landlock_text, "landlock off%s%s%s", connects[0] ? " (" : "",
			 connects[0] ? connects + 2 : "", connects[0] ? ")" : "");
	else if (status->landlock_abi > 0)
		snprintf(landlock_text, sizeof landlock_text,
			 "landlock ABI %d (writes: TMPDIR, /dev/shm; runs: the interpreter%s%s)", status->landlock_abi,
			 status->landlock_abi >= 6 ? "; signals: its own" : "", connects);
	else
		snprintf(landlock_text, sizeof landlock_text, "landlock unavailable (%s), best-effort%s%s%s",
			 strerror(status->landlock_errno), connects[0] ? " (" : "", connects[0] ? connects + 2 : "",
			 connects[0] ? ")" : "");
	if (status->filter == FILTER_WATCHED)
		snprintf(filter_text, sizeof filter_text, "refusals reported");
	else if (status->filter == FILTER_INHERITED)
		snprintf(filter_text, sizeof filter_text, "the launch's own, inherited");
	else if (status->filter_errno)
		snprintf(filter_text, sizeof filter_text, "refusals not reported: %s", strerror(status->filter_errno));
	else
		snprintf(filter_text, sizeof filter_text, "refusals not reported");
	snprintf(line, sizeof line, "launcher: audit: sandbox: seccomp filter (%s, %s), %s, session keyring %s%s\n",
		 NATIVE_ARCH_NAME, filter_text, landlock_text, status->keyring_errno ? "kept: keyctl refused, " : "new",
		 status->keyring_errno ? strerror(status->keyring_errno) : "");
	if (write(STDERR_FILENO, line, strlen(line)) < 0) {
		/* Audit output is best effort; the sandbox itself is in place. */
	}
}
