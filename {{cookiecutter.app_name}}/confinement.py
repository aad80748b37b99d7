"""Whether this worker runs confined by the launcher; an unconfined worker serves nothing.

In the image the host must start the worker through the launcher (launcher/README.md): as an
unprivileged user, with no_new_privs, the system-call filter and an allow-listed environment.
Any other road to the interpreter (an app setting such as
`languageWorkers__python__defaultExecutablePath` naming the real python, say) runs the worker
as root with every platform secret, and the app would still work. `ConfinedFunctionApp` turns
that into an outage someone sees: it indexes no function and writes one line saying why to
stderr, which the host logs.

The switch for local development (`func start`, the unit tests) is the image's own layout: the
launcher's policy at /etc/launcher/policy.conf. Where it is absent there is no launcher to
check for, and the line says that nothing was checked. No app setting can create or remove a
file in the image, whereas any environment variable could be an app setting in Azure.
"""

import os
import sys
from collections.abc import Mapping
from pathlib import Path

import azure.functions as func

POLICY = Path("/etc/launcher/policy.conf")
# What the platform gives the host and the launcher never passes (the denies of
# launcher/src/policy.conf).
PLATFORM_SECRETS = (
    "APPSETTING_",
    "AZUREWEBJOBSSTORAGE",
    "CONTAINER_ENCRYPTION_KEY",
    "CONTAINER_START_CONTEXT",
    "WEBSITE_AUTH_ENCRYPTION_KEY",
    "MSI_SECRET",
)


def refusal(
    policy: Path = POLICY,
    status: Path = Path("/proc/self/status"),
    euid: int | None = None,
    environ: Mapping[str, str] = os.environ,
) -> str | None:
    """Why this worker must not serve, or None. Names only: never a variable's value."""
    if not policy.exists():
        return None
    reasons = []
    if (os.geteuid() if euid is None else euid) == 0:
        reasons.append("it runs as root")
    fields = dict(line.split(":", 1) for line in status.read_text().splitlines() if ":" in line)
    if fields.get("NoNewPrivs", "").strip() != "1":
        reasons.append("no_new_privs is not set")
    if fields.get("Seccomp", "").strip() != "2":
        reasons.append("no seccomp filter")
    leaked = sorted(name for name in environ if name.upper().startswith(PLATFORM_SECRETS))
    if leaked:
        reasons.append(f"the platform's secrets are in its environment ({', '.join(leaked[:3])})")
    return "; ".join(reasons) or None


class ConfinedFunctionApp(func.FunctionApp):
    """A FunctionApp that gives the worker no function to index when it runs unconfined."""

    def __init__(self, http_auth_level: func.AuthLevel = func.AuthLevel.FUNCTION) -> None:
        super().__init__(http_auth_level=http_auth_level)
        self.refusal = refusal()
        if self.refusal:
            line = (
                f"confinement: serving no function: the worker was not started through "
                f"the launcher ({self.refusal}), although {POLICY} is in this image"
            )
        elif not POLICY.exists():
            line = (
                f"confinement: not checked: {POLICY} is absent (local development, or "
                f"an image built without the launcher); every function is served unconfined"
            )
        else:
            return
        print(line, file=sys.stderr, flush=True)

    def get_functions(self) -> list[func.Function]:
        return [] if self.refusal else super().get_functions()
