# TEST FIXTURE, not part of the product: the stand-in of the 3.13 proxy worker's entry point.
"""Finds the runtime the way the real proxy worker does, then serves the host with it.

The real one looks through sys.path for the worker directory (the entry that contains
`python/<version>/LINUX`), whose azure_functions_runtime it imports (main.py, the front end, does). If the re-executed
interpreter lost that entry (PYTHONPATH dropped on the way), the worker must fail here, clearly.
"""

import sys


def start() -> None:
    version = f"{sys.version_info[0]}.{sys.version_info[1]}"
    marker = "/workers/python/"
    found = [entry for entry in sys.path if marker in entry and "/LINUX" in entry]
    if not found:
        raise SystemExit(
            f"proxy_worker: no worker directory (*{marker}<version>/LINUX/*) on sys.path "
            f"of Python {version}: was PYTHONPATH lost?"
        )
    from proxy_worker import main

    main.main("proxy_worker")
