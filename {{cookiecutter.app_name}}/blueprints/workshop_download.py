"""WORKSHOP ONLY: a deliberately vulnerable function. Never deploy it.

`download` joins the caller's `file` parameter onto a directory without checking that the result
stays inside it: a classic path traversal. `?file=../../../proc/self/environ` reads the worker's
environment, `?file=/proc/1/environ` the host's. docs/workshop.md uses it to show what the
hardened image stops. The template adds it only when baked with `workshop=yes`.
"""

import logging
import os

import azure.functions as func

DOWNLOAD_DIR = os.path.join(os.path.dirname(os.path.dirname(__file__)), "downloads")

bp = func.Blueprint()

# ----- DELIBERATELY VULNERABLE: BEGIN ------------------------------------------------------
logging.getLogger(__name__).warning(
    "WORKSHOP MODE: /api/download is deliberately vulnerable to path traversal; never deploy it"
)


@bp.route(route="download", methods=["GET"], auth_level=func.AuthLevel.ANONYMOUS)
def download(req: func.HttpRequest) -> func.HttpResponse:
    path = os.path.join(DOWNLOAD_DIR, req.params.get("file", "readme.txt"))
    try:
        with open(path, "rb") as handle:  # the unchecked path is the lesson
            return func.HttpResponse(handle.read(), mimetype="application/octet-stream")
    except FileNotFoundError:
        return func.HttpResponse("not found", status_code=404)
    except PermissionError:
        return func.HttpResponse("permission denied", status_code=403)


# ----- DELIBERATELY VULNERABLE: END --------------------------------------------------------
