"""What the code directory must not hold: a dotfile, a key, a certificate or a credential file.

`.dockerignore` admits the app's files by kind, so none should get there; this checks the built
image (`make verify-image`), whatever the build context or a later Dockerfile change let in.
Python source and bytecode are code: `settings/secret.py` is the settings module, not a secret.
"""

import posixpath
import re

from rootfs import RootFS

CODE_DIRECTORY = "/home/site/wwwroot"
KEY_OR_CERTIFICATE = re.compile(
    r"\.(pem|key|p12|pfx|jks|keystore|ppk|crt|cer|der|csr|gpg|pgp|asc|kdbx|tfstate|tfvars)$"
    r"|^id_(rsa|dsa|ecdsa|ed25519)",
    re.IGNORECASE,
)
CREDENTIAL_WORD = re.compile(r"secret|credential|password|passwd|principal|token|local\.settings")
CODE = re.compile(r"\.pyc?$")

Row = tuple[str, bool, str]


def is_secret_file(path: str) -> bool:
    name = posixpath.basename(path)
    parts = path.removeprefix(CODE_DIRECTORY + "/").split("/")
    return (
        any(part.startswith(".") for part in parts)
        or bool(KEY_OR_CERTIFICATE.search(name))
        or (not CODE.search(name) and bool(CREDENTIAL_WORD.search(name.lower())))
    )


def secret_files_row(fs: RootFS) -> Row:
    found = sorted(
        path for path, entry in fs.entries.items()
        if path.startswith(CODE_DIRECTORY + "/") and entry.kind != "dir" and is_secret_file(path)
    )  # fmt: skip
    detail = ", ".join(found[:6]) + (f" and {len(found) - 6} more" if len(found) > 6 else "")
    name = "no dotfile, key, certificate or credential in the code directory"
    return name, not found, detail or f"none under {CODE_DIRECTORY}"
