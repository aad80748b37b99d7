"""`make check-binary`: prove from readelf what the launcher's hardening claims.

static (no INTERP: no ld.so, so LD_PRELOAD and friends cannot touch it), position-independent (ELF
type DYN: the kernel loads it at a random address, so its code's addresses are not known in
advance), full RELRO (GNU_RELRO and BIND_NOW), a stack that is not executable, and the stack
protector compiled in (the symbol is linked and our objects record -fstack-protector-strong).
_FORTIFY_SOURCE is not checked: musl, the default libc, has no fortified functions.
"""

import re
import subprocess
import sys


def readelf(*args: str) -> str:
    return subprocess.run(
        ["readelf", "-W", *args], capture_output=True, text=True, check=True
    ).stdout


def main(binary: str) -> int:
    header, segments = readelf("-h", binary), readelf("-l", binary)
    dynamic, symbols = readelf("-d", binary), readelf("-s", binary)
    # -frecord-gcc-switches: the flags our own objects were compiled with (libc has its own).
    switches = readelf("-p", ".GCC.command.line", binary)
    stack = re.search(r"^\s*GNU_STACK\s.*\s(R?W?E?)\s+0x[0-9a-f]+$", segments, re.M)
    checks = {
        "static (no INTERP segment)": "INTERP" not in segments,
        "position-independent (ELF type DYN)": re.search(r"^\s*Type:\s+DYN\b", header, re.M)
        is not None,
        "RELRO segment (GNU_RELRO)": "GNU_RELRO" in segments,
        # A static non-PIE binary has no dynamic section at all: nothing is bound lazily, so
        # full RELRO needs no BIND_NOW there (it fails the PIE check above all the same).
        "immediate binding (BIND_NOW, or no dynamic section)": "no dynamic section" in dynamic
        or re.search(r"\(FLAGS\).*BIND_NOW|\(FLAGS_1\).*\bNOW\b", dynamic) is not None,
        "non-executable stack (GNU_STACK without E)": stack is not None
        and "E" not in stack.group(1),
        "stack protector (__stack_chk_fail)": "__stack_chk_fail" in symbols,
        "compiled with -fstack-protector-strong": "-fstack-protector-strong" in switches,
    }
    for name, ok in checks.items():
        print(f"{'ok  ' if ok else 'FAIL'} {name}")
    if not all(checks.values()):
        print(
            f"check-binary: {binary} lacks the hardening above; build it with `make`",
            file=sys.stderr,
        )
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1]))
