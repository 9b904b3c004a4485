"""The nginx site config the stack ships (deploy/nginx/chatsite.conf), run by Debian's nginx in
front of a real daphne: replies stream through it unbuffered, static files never reach daphne,
/metrics is refused, and the app learns the client's scheme and address from nginx alone.

The file under test is the shipped one with only its addresses changed (the upstream, the
listen ports, the static root and, for HTTPS, the certificate folder of the lines its TLS note
says to uncomment); nginx runs as the test's own process, never the system service.
"""

import asyncio
import http.client
import ipaddress
import json
import os
import re
import ssl
import subprocess
import time
import urllib.error
import urllib.parse
import urllib.request
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from getpass import getuser
from pathlib import Path
from types import SimpleNamespace
from uuid import uuid4

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID
from django.db import connection

from tests.fake_provider import Reply
from tests.live_server import ROOT, DaphneServer, free_port
from tests.system_tools import system_tool
from tests.waits import wait_until
from tests.wsclient import LiveSocket

NGINX = "/usr/sbin/nginx"
SITE_CONFIG = ROOT / "deploy" / "nginx" / "chatsite.conf"
REDIS_URL = os.environ.get("REDIS_URL", "redis://127.0.0.1:6379/14")
STATIC_PROBE = "/* only in nginx's static root */\n"
# What a client may write into the headers daphne --proxy-headers believes.
CLAIMS = {"X-Forwarded-Proto": "https", "X-Forwarded-For": "203.0.113.7"}

# As the main nginx.conf of Debian's package and of the official image, with every path
# (pid, logs, temporary files) inside the test's prefix.
MAIN_CONFIG = """\
{user}worker_processes 1;
pid {prefix}/nginx.pid;
error_log {prefix}/error.log info;
events {{ worker_connections 256; }}
http {{
    include /etc/nginx/mime.types;
    default_type application/octet-stream;
    access_log {prefix}/access.log;
    client_body_temp_path {prefix}/client_body;
    proxy_temp_path {prefix}/proxy;
    fastcgi_temp_path {prefix}/fastcgi;
    uwsgi_temp_path {prefix}/uwsgi;
    scgi_temp_path {prefix}/scgi;
    include {prefix}/chatsite.conf;
}}
"""


@dataclass
class Tls:
    port: int
    folder: Path  # holds fullchain.pem and privkey.pem, the names the config uses

    @property
    def certificate(self) -> Path:
        return self.folder / "fullchain.pem"


def _replace(text: str, old: str, new: str, count: int = 1) -> str:
    """`old` must occur `count` times: a config reshaped under the test fails here, loudly."""
    found = len(re.findall(old, text))
    assert found == count, f"{SITE_CONFIG.name}: expected {old!r} {count} time(s), found {found}"
    return re.sub(old, new, text)


def site_config(*, upstream: str, port: int, static_root: Path, tls: Tls | None) -> str:
    text = SITE_CONFIG.read_text()
    text = _replace(text, r"server web:8000;", f"server {upstream};")
    text = _replace(text, r"listen 80;", f"listen 127.0.0.1:{port};")
    text = _replace(text, r"root /srv/chatsite;", f"root {static_root};")
    if tls:
        text = _replace(text, r"# listen 443 ssl;", f"listen 127.0.0.1:{tls.port} ssl;")
        text = _replace(
            text,
            r"# (ssl_certificate(?:_key)?\s+)/etc/nginx/certs/",
            rf"\g<1>{tls.folder}/",
            count=2,
        )
    return text


def write_self_signed_certificate(folder: Path) -> None:
    """A certificate for 127.0.0.1, made here: nothing is downloaded."""
    folder.mkdir(parents=True, exist_ok=True)
    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "127.0.0.1")])
    now = datetime.now(UTC)
    certificate = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - timedelta(minutes=5))
        .not_valid_after(now + timedelta(days=1))
        .add_extension(
            x509.SubjectAlternativeName([x509.IPAddress(ipaddress.ip_address("127.0.0.1"))]),
            critical=False,
        )
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
        .add_extension(x509.SubjectKeyIdentifier.from_public_key(key.public_key()), critical=False)
        .sign(key, hashes.SHA256())
    )
    (folder / "fullchain.pem").write_bytes(certificate.public_bytes(serialization.Encoding.PEM))
    (folder / "privkey.pem").write_bytes(
        key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )
    )


class Nginx:
    """nginx serving the shipped site from a prefix of its own, in the foreground."""

    def __init__(
        self, binary: str, prefix: Path, *, upstream: str, static_root: Path, tls: Tls | None
    ) -> None:
        self.binary, self.prefix, self.tls = binary, prefix, tls
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        prefix.mkdir(parents=True, exist_ok=True)
        (prefix / "chatsite.conf").write_text(
            site_config(upstream=upstream, port=self.port, static_root=static_root, tls=tls)
        )
        # Run as root, nginx's workers would become `nobody`, who cannot read pytest's
        # private temporary folders.
        user = f"user {getuser()};\n" if os.geteuid() == 0 else ""
        self.config = prefix / "nginx.conf"
        self.config.write_text(MAIN_CONFIG.format(user=user, prefix=prefix))
        self.process: subprocess.Popen | None = None

    def command(self, *args: str) -> list[str]:
        # -e: the log nginx writes before it has read the config.
        return [self.binary, "-p", f"{self.prefix}/", "-c", str(self.config),
                "-e", str(self.prefix / "error.log"), *args]  # fmt: skip

    def check(self) -> subprocess.CompletedProcess:
        return subprocess.run(self.command("-t"), capture_output=True, text=True, timeout=30)

    def start(self) -> "Nginx":
        self.process = subprocess.Popen(
            self.command("-g", "daemon off;"),
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        try:
            wait_until(self._listening, timeout=10, message=f"nginx is silent on {self.url}")
        except AssertionError:
            self.stop()
            raise
        return self

    def _listening(self) -> bool:
        if self.process.poll() is not None:
            log = self.prefix / "error.log"
            raise AssertionError(f"nginx exited: {log.read_text()[-2000:] if log.exists() else ''}")
        try:
            urllib.request.urlopen(f"{self.url}/static/", timeout=1)
        except urllib.error.HTTPError:
            return True  # answered (403 or 404): listening
        except OSError:
            return False
        return True

    def stop(self) -> None:
        if self.process and self.process.poll() is None:
            self.process.terminate()
            self.process.wait(timeout=10)


@pytest.fixture(scope="module")
def nginx_binary():
    return system_tool(NGINX, "nginx")


@pytest.fixture(scope="module")
def app_server(django_db_setup, fake_provider_server):
    """daphne as the compose stack runs it behind nginx (--proxy-headers); unbuffered, so its
    access log shows each request as it is answered."""
    server = DaphneServer(
        settings_dict=connection.settings_dict,
        provider_url=fake_provider_server.base_url,
        redis_url=REDIS_URL,
        daphne_args=("--proxy-headers",),
        PYTHONUNBUFFERED="1",
    )
    server.start()
    yield server
    server.stop()


@pytest.fixture(scope="module")
def static_root(tmp_path_factory):
    """A STATIC_ROOT of the test's own: what it holds exists nowhere daphne looks."""
    root = tmp_path_factory.mktemp("srv")
    (root / "static").mkdir()
    (root / "static" / "probe.css").write_text(STATIC_PROBE)
    (root / "static" / "probe.0123456789ab.css").write_text(STATIC_PROBE)
    return root


@pytest.fixture(scope="module")
def proxy(nginx_binary, app_server, static_root, tmp_path_factory):
    """The shipped site in front of `app_server`, on plain HTTP and, its TLS lines enabled,
    on HTTPS."""
    prefix = tmp_path_factory.mktemp("nginx")
    tls = Tls(port=free_port(), folder=prefix / "certs")
    write_self_signed_certificate(tls.folder)
    nginx = Nginx(
        nginx_binary,
        prefix,
        upstream=f"127.0.0.1:{app_server.port}",
        static_root=static_root,
        tls=tls,
    ).start()
    yield nginx
    nginx.stop()


def _get(url: str, *, headers: dict | None = None, source: str = "", tls: Tls | None = None):
    """One GET, from loopback address `source` when given; returns (status, headers, body)."""
    parts = urllib.parse.urlsplit(url)
    if tls:
        context = ssl.create_default_context(cafile=tls.certificate)
        conn = http.client.HTTPSConnection(parts.hostname, parts.port, context=context)
    else:
        address = (source, 0) if source else None
        conn = http.client.HTTPConnection(parts.hostname, parts.port, source_address=address)
    try:
        target = parts.path + (f"?{parts.query}" if parts.query else "")
        conn.request("GET", target, headers=headers or {})
        response = conn.getresponse()
        return response.status, response.headers, response.read()
    finally:
        conn.close()


@pytest.mark.parametrize("with_tls", [False, True], ids=["plain", "tls-enabled"])
def test_nginx_accepts_the_shipped_config_without_a_warning(nginx_binary, tmp_path, with_tls):
    tls = Tls(port=free_port(), folder=tmp_path / "certs") if with_tls else None
    if tls:
        write_self_signed_certificate(tls.folder)
    nginx = Nginx(nginx_binary, tmp_path, upstream="127.0.0.1:9", static_root=tmp_path, tls=tls)
    result = nginx.check()
    assert result.returncode == 0, result.stderr
    assert "syntax is ok" in result.stderr
    assert "[warn]" not in result.stderr, result.stderr


@pytest.mark.django_db(transaction=True)
def test_a_reply_streams_through_the_proxy_without_buffering(proxy, fake_provider, conversation):
    words = [f"w{i} " for i in range(20)]
    fake_provider.script(Reply(content=words, tokens_per_second=10))  # about two seconds
    socket = LiveSocket(SimpleNamespace(port=proxy.port, url=proxy.url), conversation)

    async def scenario() -> float:
        async with socket:
            await socket.say("Through nginx")
            await socket.read_until(lambda page: bool(page.last() and page.last().text))
            first_words_at = time.monotonic()
            await socket.read_until(lambda page: page.last().status == "complete")
            return first_words_at

    first_words_at = asyncio.run(scenario())
    last_word_sent_at = fake_provider.streams[0].emit_times[-1]
    # The provider was still a second short of its last word when the first reached the tab.
    assert first_words_at < last_word_sent_at - 1.0, "the reply was held back on the way"
    assert socket.page.last().text.strip() == "".join(words).strip()


def test_a_streamed_http_response_passes_through_as_it_is_sent(
    nginx_binary, fake_provider, static_root, tmp_path
):
    """Exports stream as HTTP: here the fake provider's SSE stands in for the upstream, as
    slow as a model, through the same config. (nginx 1.22 passes a stream this slow on even
    with proxy_buffering on; what fails this is anything holding it whole, like gzip.)"""
    upstream = f"127.0.0.1:{fake_provider.port}"
    nginx = Nginx(nginx_binary, tmp_path, upstream=upstream, static_root=static_root, tls=None)
    words = [f"w{i} " for i in range(20)]
    fake_provider.script(Reply(content=words, tokens_per_second=10))
    body = {"model": "fake-model", "messages": [{"role": "user", "content": "Hi"}], "stream": True}
    nginx.start()
    conn = http.client.HTTPConnection("127.0.0.1", nginx.port, timeout=10)
    try:
        # As a browser asks: a response nginx compressed would come out in one piece at the end.
        headers = {"Content-Type": "application/json", "Accept-Encoding": "gzip, deflate, br"}
        conn.request("POST", "/v1/chat/completions", json.dumps(body), headers)
        response = conn.getresponse()
        first_word_at = next(time.monotonic() for line in response if b'"content":"w0' in line)
        rest = response.read()
    finally:
        conn.close()
        nginx.stop()
    assert b"data: [DONE]" in rest
    assert first_word_at < fake_provider.streams[0].emit_times[-1] - 1.0, "nginx buffered it"


def test_static_files_are_served_by_nginx_from_the_collected_folder(proxy):
    status, headers, body = _get(f"{proxy.url}/static/probe.css")
    # The file exists only in nginx's root: daphne would have answered 404.
    assert (status, body.decode()) == (200, STATIC_PROBE)
    assert headers["Content-Type"] == "text/css"
    assert headers["X-Content-Type-Options"] == "nosniff"
    assert headers["Cache-Control"] == "public, max-age=60"
    _, hashed, _ = _get(f"{proxy.url}/static/probe.0123456789ab.css")
    assert "immutable" in hashed["Cache-Control"], "a hashed name is cached for good"


@pytest.mark.parametrize("path", ["/metrics", "/metrics/", "/metrics?format=text"])
def test_metrics_are_refused_at_the_proxy(proxy, path):
    for url, tls in ((proxy.url, None), (f"https://127.0.0.1:{proxy.tls.port}", proxy.tls)):
        status, _, body = _get(url + path, tls=tls)
        assert status == 403, (url, path)
        assert b"nginx" in body, "refused by nginx, not by the app"


@pytest.mark.django_db(transaction=True)
def test_the_app_sees_the_scheme_and_address_nginx_saw_not_what_a_client_claims(
    proxy, app_server, conversation, api_token
):
    def messages_url(base: str, *, headers: dict | None = None, tls: Tls | None = None) -> str:
        auth = {"Authorization": f"Bearer {api_token.secret}", **(headers or {})}
        url = f"{base}/api/v1/conversations/{conversation.uuid}/"
        status, _, body = _get(url, headers=auth, tls=tls)
        assert status == 200, body
        return json.loads(body)["messages_url"]  # absolute: built from the scheme and host

    https = f"https://127.0.0.1:{proxy.tls.port}"
    assert messages_url(https, tls=proxy.tls).startswith(f"{https}/api/")
    assert messages_url(proxy.url, headers=CLAIMS).startswith(f"{proxy.url}/api/")
    # Sent to daphne itself the same claim is believed: why only nginx may reach it.
    assert messages_url(app_server.url, headers=CLAIMS).startswith("https://")

    # From 127.0.0.2, so the address daphne logs tells nginx's (127.0.0.1), the client's and
    # the claimed one apart.
    probe = f"/proxy-probe-{uuid4().hex}/"
    _get(f"{proxy.url}{probe}", headers=CLAIMS, source="127.0.0.2")
    request = f'"GET {probe}"'  # its access log line, not the app's "Not Found" warning
    line = wait_until(
        lambda: next((x for x in app_server.log_path.read_text().splitlines() if request in x), ""),
        message="daphne never logged the request",
    )
    assert line.startswith("127.0.0.2:"), line


def test_an_import_as_large_as_the_apps_limit_gets_through_and_a_larger_body_does_not(
    proxy, settings
):
    def post(size: int, body: bytes | None) -> tuple[int, bytes]:
        # Without a body, an nginx that let the length through would wait for it: time out.
        conn = http.client.HTTPConnection("127.0.0.1", proxy.port, timeout=30 if body else 5)
        try:
            conn.putrequest("POST", "/api/v1/import/")
            conn.putheader("Content-Type", "multipart/form-data; boundary=b")
            conn.putheader("Content-Length", str(size))
            conn.endheaders(body)
            response = conn.getresponse()
            return response.status, response.read()
        finally:
            conn.close()

    # nginx takes the app's largest import plus the multipart framing around it...
    limit_mb = int(re.search(r"client_max_body_size (\d+)m;", SITE_CONFIG.read_text()).group(1))
    assert limit_mb * 1024 * 1024 >= settings.API_IMPORT_MAX_BYTES + 64 * 1024
    # ...and lets a large body through to the app: the app's answer, no token (sending the
    # whole limit would only take longer).
    large = 64 * 1024 * 1024
    status, body = post(large, b"x" * large)
    assert status == 401, body
    # Over its limit, nginx refuses on the declared length alone, before a byte is sent.
    status, body = post((limit_mb + 1) * 1024 * 1024, None)
    assert status == 413 and b"nginx" in body
