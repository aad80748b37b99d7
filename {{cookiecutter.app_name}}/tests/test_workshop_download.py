"""The workshop's download function: it serves its directory and, deliberately, more."""

import azure.functions as func

from blueprints.workshop_download import download


def fetch(file: str) -> func.HttpResponse:
    user_function = download.build().get_user_function()
    request = func.HttpRequest(method="GET", url="/api/download", params={"file": file}, body=b"")
    response = user_function(request)
    assert isinstance(response, func.HttpResponse)
    return response


def test_download_serves_a_file_from_its_directory() -> None:
    response = fetch("readme.txt")
    assert response.status_code == 200
    assert response.get_body().startswith(b"Workshop download directory")


def test_download_is_vulnerable_to_path_traversal() -> None:
    response = fetch("../host.json")
    assert response.status_code == 200
    assert b'"extensionBundle"' in response.get_body()


def test_download_answers_404_for_a_missing_file() -> None:
    assert fetch("no-such-file").status_code == 404
