"""`make secret-set NAME=<name>`: put one secret's value into the project's Key Vault.

The value is read from the terminal without echo, or from standard input when piped
(`... | make secret-set NAME=x`), and handed to `az keyvault secret set --file /dev/stdin`: it
never appears on a command line (where `ps` and shell history would show it). The Azure CLI
reads that file whole (Azure/azure-cli, `src/azure-cli/azure/cli/command_modules/keyvault/
_validators.py`, `process_secret_set_namespace`: `open(file_path, 'r')`, then `read()`).

Who may do this: a person (or pipeline) holding *Key Vault Secrets Officer* on the vault, a
data-plane role that Owner of the resource group does not include. The app's own identity holds
*Key Vault Secrets User* (read values) and can never write. Setting a name again is a rotation:
a new version, which the running app takes at its next refresh (SECRETS_REFRESH_SECONDS).
"""

import argparse
import getpass
import re
import subprocess
import sys
from typing import NoReturn

# Key Vault's rule for a secret's name (1-127 characters).
VALID_NAME = re.compile(r"[0-9A-Za-z-]{1,127}")


def fail(message: str) -> NoReturn:
    print(f"make secret-set: {message}", file=sys.stderr)
    raise SystemExit(1)


def read_value(name: str) -> str:
    if sys.stdin.isatty():
        value = getpass.getpass(f"value of {name} (not shown): ")
    else:
        value = sys.stdin.read().removesuffix("\n")  # `echo` or a file's last newline
    if not value:
        fail(f"no value for {name} on standard input: nothing set.")
    return value


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--vault", required=True)
    parser.add_argument("--name", required=True)
    parser.add_argument("--az", default="az")
    args = parser.parse_args()
    if not args.name:
        fail("name the secret: `make secret-set NAME=<its Key Vault name>` (settings/declared.py).")
    if not VALID_NAME.fullmatch(args.name):
        fail(
            f"{args.name!r} is not a Key Vault secret name (1-127 letters, digits, hyphens); "
            "use the name declared in settings/declared.py, e.g. NAME=greeting-signing-key."
        )
    value = read_value(args.name)
    command = [args.az, "keyvault", "secret", "set", "--vault-name", args.vault,
               "--name", args.name, "--file", "/dev/stdin", "--encoding", "utf-8",
               "--query", "id", "--output", "tsv"]  # fmt: skip
    try:
        done = subprocess.run(command, input=value, text=True, capture_output=True, check=False)
    except FileNotFoundError:
        fail(f"{args.az} is not installed: install the Azure CLI and `az login` first.")
    if done.returncode != 0:
        if "Forbidden" in done.stderr or "ForbiddenByRbac" in done.stderr:
            fail(
                f"{args.vault} refused the write: you need 'Key Vault Secrets Officer' on the "
                "vault (README: Settings and secrets, Putting a secret into Key Vault)."
            )
        fail(f"az keyvault secret set failed:\n{done.stderr.strip()}")
    print(f"make secret-set: {args.name} set in {args.vault}: {done.stdout.strip()}")


if __name__ == "__main__":
    main()
