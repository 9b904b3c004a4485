"""chatsite/form_bodies.py: under daphne, request bodies are Django's alone to parse."""

import json
import urllib.error
import urllib.request

import pytest
from daphne import http_protocol

from chatsite import form_bodies


def test_installing_twice_wraps_daphnes_request_once():
    form_bodies.install()
    installed = http_protocol.WebRequest
    form_bodies.install()
    assert http_protocol.WebRequest is installed
    assert installed.__mro__[1].__module__ == "daphne.http_protocol"


@pytest.mark.django_db(transaction=True)
def test_under_daphne_a_multipart_body_without_parts_gets_the_apis_answer(daphne_server, api_token):
    """twisted used to parse every multipart body before Django, and answered one it could
    not parse with a bare 400 and no body (chatsite/form_bodies.py)."""
    request = urllib.request.Request(
        f"{daphne_server.url}/api/v1/import/",
        data=b"--b--\r\n",
        method="POST",
        headers={
            "Authorization": f"Bearer {api_token.secret}",
            "Content-Type": "multipart/form-data; boundary=b",
        },
    )
    with pytest.raises(urllib.error.HTTPError) as refused:
        urllib.request.urlopen(request, timeout=10)
    assert refused.value.code == 400
    assert refused.value.headers["Content-Type"] == "application/json"
    assert json.loads(refused.value.read())["detail"] == "file: No file was submitted."
