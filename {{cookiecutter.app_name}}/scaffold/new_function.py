"""`make new-function NAME=orders TRIGGER=http|timer [SECRET=orders-api-key]`: a new function.

Writes `blueprints/<NAME>.py` and its test `tests/test_<NAME>.py`, registers the blueprint in
`function_app.py`, and with SECRET declares that secret in `settings/declared.py` (the only
place a secret is declared: the tests' fixtures and `make run` follow it). Every file it writes
or edits is the team's own; it refuses to overwrite anything.
"""

import argparse
import keyword
import re
import sys
from pathlib import Path
from string import Template
from typing import NoReturn

from scaffold import templates

PROJECT = Path(__file__).resolve().parent.parent
# Short enough for the written files to keep to 100-character lines (declare longer by hand).
VALID_NAME = re.compile(r"[a-z][a-z0-9_]{0,15}")
VALID_SECRET = re.compile(r"[a-z][a-z0-9-]{0,27}")
SECRETS_CLASS = "class Secrets:"


def fail(message: str) -> NoReturn:
    print(f"make new-function: {message}", file=sys.stderr)
    raise SystemExit(1)


def check(name: str, secret: str | None) -> None:
    if not VALID_NAME.fullmatch(name) or keyword.iskeyword(name):
        fail(
            f"NAME={name!r}: use 1-16 lowercase letters, digits and underscores, e.g. NAME=orders."
        )
    taken = [
        p.name for p in (PROJECT / "blueprints").glob("*.py") if f"def {name}(" in p.read_text()
    ]
    if (PROJECT / "blueprints" / f"{name}.py").exists() or taken:
        fail(f"NAME={name}: blueprints/ already has it ({', '.join(taken) or name + '.py'}).")
    if secret is not None:
        if not VALID_SECRET.fullmatch(secret) or "--" in secret:
            fail(f"SECRET={secret!r}: use 1-28 lowercase letters, digits and hyphens.")
        if f'key_vault("{secret}")' in (PROJECT / "settings" / "declared.py").read_text():
            fail(f"SECRET={secret}: already declared in settings/declared.py; use it there.")


def declare(secret: str) -> str:
    """Add the secret to `Secrets` in settings/declared.py; its field name."""
    path = PROJECT / "settings" / "declared.py"
    lines = path.read_text().splitlines(keepends=True)
    start = next((i for i, line in enumerate(lines) if line.startswith(SECRETS_CLASS)), None)
    end = start + 1 if start is not None else 0
    while end < len(lines) and (lines[end].startswith("    ") or not lines[end].strip()):
        end += 1  # the class body: indented or blank lines
    fields = [
        i for i in range(end) if start is not None and i > start and ": Secret = " in lines[i]
    ]
    if not fields:
        fail(
            f"settings/declared.py has no `{SECRETS_CLASS}` with fields: declare {secret} by hand."
        )
    field = secret.replace("-", "_")
    lines.insert(fields[-1] + 1, f'    {field}: Secret = field(metadata=key_vault("{secret}"))\n')
    path.write_text("".join(lines))
    return field


def register(name: str) -> None:
    path = PROJECT / "function_app.py"
    lines = path.read_text().splitlines(keepends=True)
    imports = [i for i, x in enumerate(lines) if x.startswith("from blueprints.")]
    registers = [i for i, x in enumerate(lines) if x.startswith("app.register_functions(")]
    if not imports or not registers:
        fail(f"function_app.py imports or registers no blueprint: register {name} there by hand.")
    lines.insert(registers[-1] + 1, f"app.register_functions({name}_bp)\n")
    line = f"from blueprints.{name} import bp as {name}_bp\n"
    later = [i for i in imports if lines[i] > line]  # keep isort's order
    lines.insert(later[0] if later else imports[-1] + 1, line)
    path.write_text("".join(lines))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--name", required=True)
    parser.add_argument("--trigger", required=True)
    parser.add_argument("--secret", default=None)
    args = parser.parse_args()
    secret = args.secret or None
    if args.trigger not in templates.FUNCTIONS:
        fail(f"TRIGGER={args.trigger!r}: use one of {', '.join(templates.FUNCTIONS)}.")
    check(args.name, secret)
    field = declare(secret) if secret else ""
    values = {"name": args.name, "secret": secret or "", "field": field}
    written = {
        f"blueprints/{args.name}.py": templates.FUNCTIONS[args.trigger][bool(secret)],
        f"tests/test_{args.name}.py": templates.tests_for(args.trigger, bool(secret)),
    }
    for path, text in written.items():
        (PROJECT / path).write_text(Template(text).substitute(values))
    register(args.name)
    changed = ["function_app.py", *(["settings/declared.py"] if secret else []), *written]
    print(f"make new-function: {args.trigger} function {args.name}: {', '.join(changed)}")
    if secret:
        print(
            f"  its secret {secret}: locally, add it to local.secrets.json (or delete that "
            f"file and `make run` makes a new one); in Azure, `make secret-set NAME={secret}`"
        )
    print("  next: make test (then make run, and curl the new route if HTTP)")


if __name__ == "__main__":
    main()
