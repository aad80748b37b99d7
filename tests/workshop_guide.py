"""Reads a baked project's docs/workshop.md into runnable steps, and judges what they printed.

The guide marks each fenced `sh` block with an HTML comment (`<!-- lab: settings -->`,
`<!-- lab-step: NAME | stops: LAYER | unhardened: EXPECT | hardened: EXPECT -->`); this module is
the only place that knows that format, so the guide stays the single source of the lab's commands.
"""

import re
from dataclasses import dataclass, field
from pathlib import Path

TARGETS = ("unhardened", "hardened")
BLOCK = re.compile(r"^<!-- (lab(?:-step|-check)?): (.*?) -->\n```sh\n(.*?)\n```$", re.M | re.S)
SETTING = re.compile(r"^([A-Z_]+)=(.*)$", re.M)
CANARY_ARGUMENT = re.compile(r"-e '?([A-Za-z_][A-Za-z0-9_]*)=[^' ]*CANARY")
ANY_CANARY_TEXT = re.compile(r"[^\s\0]*CANARY[^\s\0]*")
HTTP_STATUS = re.compile(r"^HTTP (\d{3})$", re.M)


@dataclass(frozen=True)
class Step:
    name: str
    stops: str  # the defence layer the guide says stops it; "" for a plain check
    expect: dict[str, tuple[str, ...]]  # target -> expectation tokens
    script: str


@dataclass(frozen=True)
class Outcome:
    exit_code: int
    output: str  # stdout and stderr; may hold canary values, so never print it unmasked

    def __repr__(self) -> str:  # pytest shows a failing test's arguments
        return f"Outcome(exit_code={self.exit_code}, output={mask(self.output)!r})"


@dataclass
class Guide:
    settings: str
    build: str
    start: str = field(repr=False)  # holds the canary values
    stop: str
    steps: list[Step] = field(default_factory=list)

    @property
    def canary_names(self) -> list[str]:
        return CANARY_ARGUMENT.findall(self.start)

    @property
    def settings_declared(self) -> dict[str, str]:
        return dict(SETTING.findall(self.settings))

    def with_settings(self, overrides: dict[str, str]) -> str:
        """The settings block with some values replaced; every name must be one the guide declares."""
        missing = sorted(set(overrides) - set(self.settings_declared))
        assert not missing, f"docs/workshop.md no longer declares the settings {missing}"
        return SETTING.sub(
            lambda m: f"{m[1]}={overrides[m[1]]}" if m[1] in overrides else m[0], self.settings
        )

    def start_for(self, target: str) -> str:
        """The start block for one round: the guide says to set TARGET and repeat."""
        assert re.search(r"^TARGET=unhardened$", self.start, re.M), "start block sets no TARGET"
        return re.sub(r"^TARGET=unhardened$", f"TARGET={target}", self.start, flags=re.M)


def parse_guide(path: Path) -> Guide:
    blocks: dict[str, str] = {}
    steps: list[Step] = []
    for kind, header, script in BLOCK.findall(path.read_text()):
        if kind == "lab":
            blocks[header.strip()] = script
            continue
        name, *fields = (part.strip() for part in header.split("|"))
        attributes = dict(part.split(": ", 1) for part in fields)
        steps.append(Step(
            name=name,
            stops=attributes.get("stops", ""),
            expect={target: tuple(attributes[target].split()) for target in TARGETS},
            script=script,
        ))
    for required in ("settings", "build", "start", "stop"):
        assert required in blocks, f"docs/workshop.md has no `<!-- lab: {required} -->` block"
    return Guide(blocks["settings"], blocks["build"], blocks["start"], blocks["stop"], steps)


def mask(text: str) -> str:
    """Text safe to print: every word that contains a canary marker is replaced."""
    return ANY_CANARY_TEXT.sub("<canary masked>", text)


def leaked(outcome: Outcome, canary_names: list[str]) -> list[str]:
    """Names of the canaries that appear, with their value, as NAME=...CANARY... lines."""
    return [name for name in canary_names
            if re.search(rf"^{re.escape(name)}=.*CANARY", outcome.output, re.M)]


def unmet(token: str, outcome: Outcome, canary_names: list[str]) -> str | None:
    """Why the outcome does not meet one expectation token, or None if it does."""
    statuses = HTTP_STATUS.findall(outcome.output)
    found = leaked(outcome, canary_names)
    if token.startswith("http-"):
        return None if statuses == [token[5:]] else f"expected HTTP {token[5:]}, got {statuses}"
    if token == "canaries":
        missing = sorted(set(canary_names) - set(found))
        return None if not missing else f"canaries not leaked: {missing}"
    if token == "no-canaries":
        if found or "CANARY" in outcome.output:
            return f"canaries leaked: {found or 'unnamed CANARY text'}"
        return None
    if token == "ok":
        return None if outcome.exit_code == 0 else f"exited {outcome.exit_code}"
    if token == "fails":
        return None if outcome.exit_code != 0 else "exited 0"
    if token.startswith("says:"):
        return None if token[5:] in outcome.output else f"output does not say {token[5:]!r}"
    raise AssertionError(f"docs/workshop.md uses an unknown expectation {token!r}")


def summary(outcome: Outcome, step: Step, target: str, canary_names: list[str]) -> str:
    """What a step did on one target, in a few masked words for the before/after table."""
    tokens = set(step.expect[target])
    if any("canaries" in token for expect in step.expect.values() for token in expect):
        tokens.add("canaries")
    parts = [f"HTTP {status}" for status in HTTP_STATUS.findall(outcome.output)]
    if not parts:
        parts.append(f"exit {outcome.exit_code}")
    if tokens & {"canaries", "no-canaries"}:
        parts.append(f"{len(leaked(outcome, canary_names))}/{len(canary_names)} canaries")
    parts += [token[5:] for token in sorted(tokens)
              if token.startswith("says:") and token[5:] in outcome.output]
    return ", ".join(mask(part) for part in parts)
