"""A container's file system, read from `ENGINE export` (a tar stream), and engine calls.

Reading the exported tar instead of running tools inside the container works the same on Docker
and Podman, and on an image that has no shell or `find` left to run.
"""

import json
import posixpath
import stat
import subprocess
import tarfile
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

MAX_SYMLINK_HOPS = 40
HEAD_BYTES = 4


def normalize(name: str) -> str:
    """A tar member's name as an absolute path (`./usr/bin` and `usr/bin` are `/usr/bin`)."""
    return posixpath.normpath("/" + name.removeprefix("./"))


def engine_run(engine: str, *args: str, timeout: float = 300) -> str:
    """Run one engine command; its stdout, or SystemExit with the engine's own error."""
    result = subprocess.run(
        [engine, *args], capture_output=True, text=True, timeout=timeout, check=False
    )
    if result.returncode != 0:
        raise SystemExit(f"`{engine} {args[0]}` failed: {result.stderr.strip()[-500:]}")
    return result.stdout


def inspect(engine: str, kind: str, name: str) -> dict[str, Any]:
    """`ENGINE <kind> inspect` as JSON: Docker and Podman share the fields used here."""
    found: list[dict[str, Any]] = json.loads(engine_run(engine, kind, "inspect", name))
    return found[0]


def image_env(engine: str, image: str) -> dict[str, str]:
    pairs = inspect(engine, "image", image)["Config"].get("Env") or []
    return dict(pair.split("=", 1) for pair in pairs)


@dataclass(frozen=True)
class Entry:
    path: str
    mode: int  # permission bits, setuid/setgid included
    kind: str  # file, dir, symlink, hardlink or other
    target: str  # a symlink's text, or a hard link's first path
    uid: int


class RootFS:
    """Paths, modes and link targets of every entry, and the contents of the files asked for."""

    def __init__(self) -> None:
        self.entries: dict[str, Entry] = {"/": Entry("/", 0o755, "dir", "", 0)}
        self.contents: dict[str, bytes] = {}
        # The first bytes of every regular file with an executable bit: what kind of program
        # it is (`\x7fELF`, `#!`), without keeping whole files.
        self.heads: dict[str, bytes] = {}

    def add(self, member: tarfile.TarInfo, data: bytes | None, head: bytes = b"") -> None:
        path = normalize(member.name)
        kind = (
            "dir" if member.isdir() else "symlink" if member.issym()
            else "hardlink" if member.islnk() else "file" if member.isreg() else "other"
        )  # fmt: skip
        target = member.linkname
        if member.islnk():
            target = normalize(target)
        self.entries[path] = Entry(path, member.mode, kind, target, member.uid)
        if data is not None:
            self.contents[path] = data
        if member.isreg() and member.mode & 0o111:
            self.heads[path] = head

    def programs(self) -> dict[str, bytes]:
        """Executable files (hard links as their target) and their first bytes."""
        found = dict(self.heads)
        for entry in self.entries.values():
            if entry.kind == "hardlink" and entry.mode & 0o111 and entry.target in self.heads:
                found[entry.path] = self.heads[entry.target]
        return found

    def resolve(self, path: str) -> str | None:
        """The path with every symbolic link followed, inside this file system; None if dangling."""
        parts = [p for p in path.split("/") if p]
        current, hops = "/", 0
        while parts:
            part = parts.pop(0)
            if part in (".", ".."):
                current = posixpath.dirname(current) if part == ".." else current
                continue
            candidate = posixpath.join(current, part)
            entry = self.entries.get(candidate)
            if entry is None:
                return None
            if entry.kind == "symlink":
                hops += 1
                if hops > MAX_SYMLINK_HOPS:
                    return None
                current = "/" if entry.target.startswith("/") else current
                parts = [p for p in entry.target.split("/") if p] + parts
                continue
            current = candidate
        return current

    def file(self, path: str) -> Entry | None:
        """The regular file a path leads to (through links), or None."""
        resolved = self.resolve(path)
        entry = self.entries.get(resolved) if resolved else None
        if entry is not None and entry.kind == "hardlink":
            entry = self.entries.get(entry.target)
        return entry if entry is not None and entry.kind == "file" else None

    def read(self, path: str) -> bytes | None:
        resolved = self.resolve(path)
        entry = self.entries.get(resolved) if resolved else None
        if entry is not None and entry.kind == "hardlink":
            return self.contents.get(entry.target)
        return self.contents.get(resolved) if resolved else None

    def which(self, name: str, search_path: str) -> str | None:
        """Where `name` is found on PATH, as the host's process start finds it."""
        for directory in search_path.split(":"):
            entry = self.file(posixpath.join(directory or ".", name))
            if entry is not None and entry.mode & 0o111:
                return posixpath.join(directory, name)
        return None

    def executables_on_path(self, search_path: str) -> set[str]:
        """Names that PATH resolves to an executable file (what a shell could run by name)."""
        dirs = {self.resolve(d) for d in search_path.split(":") if d}
        names = {posixpath.basename(p) for p in self.entries if posixpath.dirname(p) in dirs}
        return {name for name in names if self.which(name, search_path)}

    def privileged(self) -> list[str]:
        """Files with a setuid or setgid bit."""
        bits = stat.S_ISUID | stat.S_ISGID
        return sorted(e.path for e in self.entries.values() if e.kind == "file" and e.mode & bits)


def export(
    engine: str,
    container: str,
    wanted: Callable[[str], bool],
    keep_if: Callable[[bytes], bool] | None = None,
) -> RootFS:
    """Stream `ENGINE export` and keep the contents of the files `wanted` picks by path, and of
    the executable ELF files that `keep_if` picks by content."""
    fs = RootFS()
    with subprocess.Popen([engine, "export", container], stdout=subprocess.PIPE) as proc:
        assert proc.stdout is not None  # noqa: S101 - Popen with stdout=PIPE always has it
        with tarfile.open(fileobj=proc.stdout, mode="r|") as tar:
            for member in tar:
                data, head = None, b""
                if member.isreg() and (wanted(normalize(member.name)) or member.mode & 0o111):
                    extracted = tar.extractfile(member)
                    if extracted is not None and wanted(normalize(member.name)):
                        data = extracted.read()
                        head = data[:HEAD_BYTES]
                    elif extracted is not None:
                        head = extracted.read(HEAD_BYTES)
                        if keep_if is not None and head == b"\x7fELF":
                            whole = head + extracted.read()
                            data = whole if keep_if(whole) else None
                fs.add(member, data, head)
    if proc.returncode != 0:
        raise SystemExit(f"`{engine} export {container}` failed (exit {proc.returncode}).")
    return fs


def image_rootfs(engine: str, image: str, wanted: Callable[[str], bool]) -> RootFS:
    """The file system of an image, through a container that is created but never started."""
    container = engine_run(engine, "create", image).strip()
    try:
        return export(engine, container, wanted)
    finally:
        subprocess.run([engine, "rm", "-f", container], capture_output=True, check=False)
