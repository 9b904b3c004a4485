"""Request bodies are Django's to read, not twisted's.

twisted's `Request.requestReceived` parses every multipart POST into `request.args`, which
daphne never reads: an import was held in memory several times over (a 40 MB upload took
daphne's peak memory up by 470 MB; with this, by 120 MB), and a body twisted could not
parse (a multipart with no parts) was answered with a bare "400 Bad Request" and no body,
before Django or the API could answer it. `install()` makes daphne's requests skip that
parsing, so Django's parser alone reads the body and a malformed one gets the API's
`{"detail": ...}` answer.
"""

from daphne import http_protocol


class _DjangoReadsTheBody(http_protocol.WebRequest):
    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        # twisted's own switch for this parsing (Request(parsePOSTFormSubmission=False)).
        self._parsePOSTFormSubmission = False


def install() -> None:
    """Have daphne build its requests without twisted's form parsing (idempotent)."""
    if not issubclass(http_protocol.WebRequest, _DjangoReadsTheBody):
        http_protocol.WebRequest = _DjangoReadsTheBody
