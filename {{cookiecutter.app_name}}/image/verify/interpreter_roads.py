"""Every road to a Python interpreter in the image, found by content and started as the host would.

An app setting (`languageWorkers__python__defaultExecutablePath`, Azure/azure-functions-host
`RpcWorkerConfigFactory`) can make the host start any path as its worker, as root, with every
secret in its environment. So verify_image.py starts every path that leads to an executable
interpreter (an ELF program that links libpython or holds `Py_BytesMain`, whatever its name) or
to the launcher as root with the canaries in its environment: each must run the launcher,
confined, but the interpreter's own path (the policy's `exec`, which the launcher executes), and
that one, run around the launcher, must serve no function (confinement.py). The host's own
directory is the host's (verify_image.py checks that no `python` there comes first).
"""

import json
import subprocess

from rootfs import RootFS

Row = tuple[str, bool, str]
HOST_DIR = "/azure-functions-host"
LAUNCHER_POLICY_PATH = b"/etc/launcher/policy.conf"
ET_EXEC, PT_INTERP = 2, 3
PROBE = """
import json, os, sys
marker = sys.argv[1]
fields = dict(line.split(':', 1) for line in open('/proc/self/status') if ':' in line)
leaked = [name for name, value in os.environ.items() if marker in value]
os.chdir('/home/site/wwwroot')
sys.path.insert(0, '/home/site/wwwroot')
from function_app import app
print(json.dumps({'uid': os.geteuid(), 'nnp': fields['NoNewPrivs'].strip(),
                  'seccomp': fields['Seccomp'].strip(), 'leaked': len(leaked),
                  'served': len(app.get_functions())}))
"""


def is_program(data: bytes) -> bool:
    """A 64-bit little-endian ELF that runs: it names a loader (PT_INTERP) or is ET_EXEC."""
    if data[:5] != b"\x7fELF\x02":
        return False
    phoff = int.from_bytes(data[32:40], "little")
    size, count = int.from_bytes(data[54:56], "little"), int.from_bytes(data[56:58], "little")
    headers = range(phoff, phoff + size * count, size)
    kinds = {int.from_bytes(data[h : h + 4], "little") for h in headers}
    return PT_INTERP in kinds or int.from_bytes(data[16:18], "little") == ET_EXEC


def is_python_interpreter(data: bytes) -> bool:
    return is_program(data) and (b"Py_BytesMain" in data or b"libpython3" in data)


def is_launcher(data: bytes) -> bool:
    """The launcher: static (a static-pie is ET_DYN without a loader) and naming its policy."""
    return data[:4] == b"\x7fELF" and LAUNCHER_POLICY_PATH in data and b"libpython3" not in data


def interpreter_or_launcher(data: bytes) -> bool:
    """What export() keeps by content for roads()."""
    return is_python_interpreter(data) or is_launcher(data)


def roads(fs: RootFS) -> dict[str, str]:
    """Every path that leads to an executable interpreter or launcher -> its kind."""
    targets = {}
    for path, data in fs.contents.items():
        entry = fs.entries.get(path)
        if entry is None or entry.kind != "file" or not entry.mode & 0o111:
            continue
        if path.startswith(HOST_DIR + "/"):
            continue
        if is_launcher(data):
            targets[path] = "launcher"
        elif is_python_interpreter(data):
            targets[path] = "interpreter"
    found = {}
    for path, entry in fs.entries.items():
        lead: str | None
        if entry.kind in ("file", "symlink"):
            lead = fs.resolve(path)
        elif entry.kind == "hardlink":
            lead = entry.target
        else:
            continue
        if lead in targets:
            found[path] = targets[lead]
    return found


def loader(data: bytes) -> str | None:
    """The PT_INTERP of a 64-bit little-endian ELF program (its loader, ld.so), if it names one."""
    phoff = int.from_bytes(data[32:40], "little")
    size, count = int.from_bytes(data[54:56], "little"), int.from_bytes(data[56:58], "little")
    for header in range(phoff, phoff + size * count, size):
        if int.from_bytes(data[header : header + 4], "little") == PT_INTERP:
            offset = int.from_bytes(data[header + 8 : header + 16], "little")
            length = int.from_bytes(data[header + 32 : header + 40], "little")
            return data[offset : offset + length].rstrip(b"\0").decode()
    return None


def start(engine: str, container: str, road: str, marker: str) -> tuple[str, bool]:
    """What happens when the host starts this road (a path, or `ld.so path`): (what, fine)."""
    result = subprocess.run(
        [engine, "exec", "--user", "0:0", container, *road.split(" "), "-c", PROBE, marker],
        capture_output=True, text=True, timeout=120, check=False,
    )  # fmt: skip
    try:
        seen = json.loads(result.stdout.strip().splitlines()[-1])
    except (IndexError, json.JSONDecodeError):
        last = (result.stderr.strip().splitlines() or ["no output"])[-1][-160:]
        return f"refused (exit {result.returncode}: {last})", result.returncode != 0
    confined = seen["uid"] != 0 and seen["nnp"] == "1" and seen["seccomp"] == "2"
    if confined and not seen["leaked"]:
        return "confined", True
    how = f"uid {seen['uid']}, no_new_privs {seen['nnp']}, seccomp {seen['seccomp']}"
    if seen["served"] == 0:
        return f"unconfined ({how}), serves no function", True
    return f"UNCONFINED ({how}), serves {seen['served']} functions", False


def road_rows(engine: str, container: str, fs: RootFS, marker: str) -> list[Row]:
    """Every road but the interpreter's own path must run the launcher, confined (or be refused);
    the interpreter's own path, which the launcher must be able to execute, and the loader with it
    as its argument, must serve no function (README.md, "Roads to the interpreter")."""
    policy = (fs.read("/etc/launcher/policy.conf") or b"").decode().splitlines()
    words = [line.split() for line in policy]
    real = next((w[1] for w in words if w[:1] == ["exec"] and len(w) > 1), None)
    found = roads(fs)
    outcomes = {road: start(engine, container, road, marker) for road in sorted(found)}
    launchers = [road for road in sorted(found) if found[road] == "launcher"]
    others = [road for road in sorted(found) if found[road] == "interpreter" and road != real]
    confined = [road for road in launchers if outcomes[road][0] == "confined"]
    refused = [road for road in others if outcomes[road][0].startswith("refused")]
    all_ok = bool(launchers) and confined == launchers and refused == others
    detail = "; ".join(
        [f"{len(confined)} of {len(launchers)} to the launcher confined ({', '.join(launchers)})"]
        + [f"{road}: {outcomes[road][0]}" for road in launchers if road not in confined]
        + [f"{road}: {outcomes[road][0]}" for road in others]
        + ([f"{real}: its own path, next row"] if real in found else [])
    )  # fmt: skip
    if real is None:
        second = (False, "no launcher policy, so no interpreter to run around it")
    else:
        what, fine = outcomes.get(real) or start(engine, container, real, marker)
        second = (fine and what != "confined", f"{real} as root: {what}")
        through = loader(fs.read(real) or b"")
        if through:  # the loader runs a program given as its argument, execute bit or not
            what, fine = start(engine, container, f"{through} {real}", marker)
            second = (second[0] and fine and what != "confined", f"{second[1]}; {through}: {what}")
    return [
        ("every other road to the interpreter runs the launcher", all_ok, detail),
        ("the interpreter run around the launcher serves no function", *second),
    ]
