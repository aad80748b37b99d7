# TEST FIXTURE, not part of the product: the stand-in of the Python worker's start script,
# /azure-functions-host/workers/python/<version>/LINUX/X64/worker.py, which the host runs as
# `python [-X no_debug_ranges] worker.py --host ... --port ...`.
"""Does what the real start script of each version does before the worker proper starts.

Reproduced (README.md cites the upstream files), not copied: PYTHONPATH is set to the app's
packages then the worker directory, and on Azure (CONTAINER_NAME or WEBSITE_INSTANCE_ID set) the
interpreter is started again, `os.execve(sys.executable, [sys.executable, "-m", <module>, *args])`:
through whatever `sys.executable` is, which in a hardened image is the launcher once more. Elsewhere
the worker runs in this process. The module is azure_functions_worker up to 3.12 (prodV4
worker.py, which refuses minor versions outside 7 to 12) and proxy_worker from 3.13 (proxyV4
worker.py, 13 and 14): whichever package ships beside this file.
"""

import os
import sys
from pathlib import Path

USER_PACKAGES = "/home/site/wwwroot/.python_packages/lib/site-packages"
AZURE_MARKERS = ("CONTAINER_NAME", "WEBSITE_INSTANCE_ID")


def main() -> None:
    worker_dir = str(Path(__file__).absolute().parent)
    proxy = Path(worker_dir, "proxy_worker").is_dir()
    module = "proxy_worker" if proxy else "azure_functions_worker"
    supported = range(13, 15) if proxy else range(7, 13)
    if sys.version_info[1] not in supported:
        raise RuntimeError(f"Unsupported Python version: 3.{sys.version_info[1]}")
    os.environ["PYTHONPATH"] = f"{USER_PACKAGES}:{worker_dir}"
    if proxy and worker_dir not in sys.path:
        sys.path.append(worker_dir)
    if any(marker in os.environ for marker in AZURE_MARKERS):
        os.execve(sys.executable, [sys.executable, "-m", module, *sys.argv[1:]], os.environ)
    if not proxy:
        sys.path.insert(1, worker_dir)
    script_root = os.environ.get("AzureWebJobsScriptRoot")
    if script_root is not None:
        sys.path.append(script_root)
    if proxy:
        from proxy_worker import start_worker

        start_worker.start()
    else:
        from azure_functions_worker import main as worker_main

        worker_main.main(module)


if __name__ == "__main__":
    main()
