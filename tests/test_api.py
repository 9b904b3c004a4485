"""The REST API (/api/v1/) and the API settings page."""

import json
from datetime import timedelta
from pathlib import Path

import pytest
from asgiref.sync import async_to_sync
from django.core.cache import cache
from django.core.files.uploadedfile import SimpleUploadedFile
from django.http import StreamingHttpResponse
from django.test import AsyncClient
from django.utils import timezone
from rest_framework.test import APIClient

from api.models import ApiToken
from conversations.models import Conversation, Message
from tests.factories import ApiTokenFactory, ConversationFactory, MessageFactory, thread

CHATGPT_FILE = Path(__file__).parent / "data" / "chatgpt_conversations.json"


def _body(response) -> bytes:
    if isinstance(response, StreamingHttpResponse):
        return b"".join(response.streaming_content)
    return response.content


def _bearer(secret: str) -> APIClient:
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=f"Bearer {secret}")
    return client


# --- Authentication --------------------------------------------------------------------


@pytest.mark.django_db
def test_a_valid_token_authenticates_and_records_its_use(api_client, api_token):
    response = api_client.get("/api/v1/conversations/")
    assert response.status_code == 200
    api_token.refresh_from_db()
    assert api_token.last_used_at is not None


@pytest.mark.django_db
def test_no_credentials_are_refused_with_a_bearer_challenge():
    response = APIClient().get("/api/v1/conversations/")
    assert response.status_code == 401
    assert response["WWW-Authenticate"].startswith("Bearer")


@pytest.mark.django_db
@pytest.mark.parametrize("header", ["Bearer chs_wrong", "Bearer", "Bearer a b"])
def test_a_wrong_token_is_refused(db, header):
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=header)
    assert client.get("/api/v1/conversations/").status_code == 401


@pytest.mark.django_db
def test_a_revoked_token_no_longer_authenticates(api_client, api_token, user):
    from api import services

    assert services.api_token_revoke(user=user, token_id=api_token.pk)
    assert api_client.get("/api/v1/conversations/").status_code == 401


@pytest.mark.django_db
def test_tokens_are_stored_hashed(api_token):
    stored = ApiToken.objects.get(pk=api_token.pk)
    assert api_token.secret not in (stored.key_hash, stored.prefix)
    assert api_token.secret.startswith(stored.prefix)


@pytest.mark.django_db
def test_the_browser_session_authenticates_too(client, user, conversation):
    client.force_login(user)
    response = client.get("/api/v1/conversations/")
    assert response.status_code == 200
    assert response.json()["results"][0]["id"] == str(conversation.uuid)


# --- Another user's data ---------------------------------------------------------------


def _other_users_endpoints(uuid) -> list[str]:
    return [
        f"/api/v1/conversations/{uuid}/",
        f"/api/v1/conversations/{uuid}/messages/",
        f"/api/v1/conversations/{uuid}/export/?format=json",
        f"/api/v1/conversations/{uuid}/export/?format=md",
        f"/api/v1/conversations/{uuid}/export/?format=jsonl",
    ]


@pytest.mark.django_db
def test_every_endpoint_answers_404_for_another_users_conversation(api_client, other_user):
    theirs = ConversationFactory(owner=other_user, title="secret plans")
    thread(theirs, "the secret", "kept")
    for url in _other_users_endpoints(theirs.uuid):
        response = api_client.get(url)
        assert response.status_code == 404, url
        assert b"secret" not in _body(response), url


@pytest.mark.django_db
def test_lists_and_exports_of_everything_leave_out_other_users(api_client, other_user):
    theirs = ConversationFactory(owner=other_user, title="secret plans")
    thread(theirs, "the secret", "kept")
    assert api_client.get("/api/v1/conversations/").json()["count"] == 0
    assert api_client.get("/api/v1/conversations/?q=secret").json()["count"] == 0
    for export_format in ("json", "md", "jsonl"):
        body = _body(api_client.get(f"/api/v1/export/?format={export_format}"))
        assert b"secret" not in body


# --- Listing and reading ---------------------------------------------------------------


@pytest.mark.django_db
def test_conversations_are_listed_newest_first_in_pages(api_client, user):
    for index in range(3):
        ConversationFactory(owner=user, title=f"chat {index}")
    first = api_client.get("/api/v1/conversations/?page_size=2").json()
    assert first["count"] == 3
    assert [c["title"] for c in first["results"]] == ["chat 2", "chat 1"]
    second = api_client.get(first["next"]).json()
    assert [c["title"] for c in second["results"]] == ["chat 0"]


@pytest.mark.django_db
def test_updated_since_keeps_only_recently_active_conversations(api_client, user):
    old = ConversationFactory(owner=user, title="old")
    ConversationFactory(owner=user, title="new")
    Conversation.objects.filter(pk=old.pk).update(updated_at=timezone.now() - timedelta(days=3))
    since = (timezone.now() - timedelta(days=1)).isoformat()
    response = api_client.get("/api/v1/conversations/", {"updated_since": since})
    assert [c["title"] for c in response.json()["results"]] == ["new"]


@pytest.mark.django_db
def test_a_malformed_updated_since_is_a_clear_400(api_client):
    response = api_client.get("/api/v1/conversations/?updated_since=yesterday")
    assert response.status_code == 400
    assert response.json()["detail"] == "updated_since: Use an ISO 8601 date and time."


@pytest.mark.django_db
@pytest.mark.parametrize(
    ("query", "detail"),
    [
        (
            "updated_sinse=2026-01-01",
            "Unknown query parameter: updated_sinse. "
            "This takes: page, page_size, q, updated_since.",
        ),
        ("page=", "page: Give it a value, or leave it out."),
        ("page=0", "page: Ensure this value is greater than or equal to 1."),
        ("page_size=ten", "page_size: A valid integer is required."),
    ],
)
def test_a_query_the_operation_cannot_use_is_a_400_that_names_it(api_client, query, detail):
    response = api_client.get(f"/api/v1/conversations/?{query}")
    assert response.status_code == 400
    assert response.json() == {"detail": detail}


@pytest.mark.django_db
@pytest.mark.parametrize("cursor", ["garbage", "a\x00b"])
def test_a_cursor_that_is_not_ours_is_the_paginators_404(api_client, conversation, cursor):
    response = api_client.get(
        f"/api/v1/conversations/{conversation.uuid}/messages/", {"cursor": cursor}
    )
    assert response.status_code == 404
    assert response.json() == {"detail": "Invalid cursor"}


@pytest.mark.django_db
def test_an_operation_without_parameters_refuses_any(api_client, conversation):
    response = api_client.get(f"/api/v1/conversations/{conversation.uuid}/?format=xml")
    assert response.status_code == 400
    assert response.json() == {"detail": "Unknown query parameter: format. This takes none."}


@pytest.mark.django_db
def test_a_path_the_api_does_not_have_is_a_json_404(api_client):
    for path in (
        "/api/v1/conversations/not-a-uuid/",
        "/api/v1/nothing/",
        "/api/v1/",
        "/api/v1/a%0Ab/",
    ):
        response = api_client.get(path)
        assert response.status_code == 404, path
        assert "/api/v1/docs/" in response.json()["detail"]


@pytest.mark.django_db
def test_the_schema_documents_every_error_an_operation_can_answer(client):
    import yaml

    schema = yaml.safe_load(client.get("/api/v1/schema/").content)
    for path, operations in schema["paths"].items():
        for method, operation in operations.items():
            codes = set(operation["responses"])
            assert {"400", "401", "429"} <= codes, (method, path)
            if "{uuid}" in path or path.endswith(("/conversations/", "/messages/")):
                assert "404" in codes, (method, path)
            if method == "post":
                assert {"403", "413", "415"} <= codes, (method, path)
    export = schema["paths"]["/api/v1/export/"]["get"]["responses"]["200"]["content"]
    chatsite_json, openwebui = export["application/json"]["schema"]["oneOf"]
    assert chatsite_json["required"] == ["format", "version", "exported_at", "conversations"]
    assert openwebui["type"] == "array"


@pytest.mark.django_db
def test_search_matches_titles_and_message_text(api_client, user):
    ConversationFactory(owner=user, title="Trip to Lisbon")
    by_text = ConversationFactory(owner=user, title="Untitled")
    thread(by_text, "what to pack for lisbon?")
    ConversationFactory(owner=user, title="Taxes")
    response = api_client.get("/api/v1/conversations/?q=LISBON")
    assert {c["title"] for c in response.json()["results"]} == {"Trip to Lisbon", "Untitled"}


@pytest.mark.django_db
def test_one_conversation_shows_its_parameters_and_links(api_client, conversation):
    thread(conversation, "Hi", "Hello")
    data = api_client.get(f"/api/v1/conversations/{conversation.uuid}/").json()
    assert data["id"] == str(conversation.uuid)
    assert data["message_count"] == 2
    assert data["model"] == {"provider": "local", "name": "fake-model"}
    assert data["parameters"]["thinking_enabled"] is False
    assert data["messages_url"].endswith(f"/api/v1/conversations/{conversation.uuid}/messages/")
    assert data["export_urls"]["md"].endswith("/export/?format=md")


@pytest.mark.django_db
def test_messages_are_cursor_paginated_oldest_first_with_their_parents(api_client, conversation):
    messages = thread(conversation, *[f"turn {n}" for n in range(5)])
    url = f"/api/v1/conversations/{conversation.uuid}/messages/?page_size=2"
    seen = []
    while url:
        page = api_client.get(url).json()
        assert len(page["results"]) <= 2
        seen += page["results"]
        url = page["next"]
    assert [m["content"] for m in seen] == [f"turn {n}" for n in range(5)]
    assert seen[0]["parent"] is None
    assert seen[3]["parent"] == str(messages[2].uuid)
    assert seen[1]["usage"] == {
        "prompt_tokens": None,
        "completion_tokens": None,
        "reasoning_tokens": None,
        "cached_tokens": None,
        "time_to_first_token_ms": None,
        "duration_ms": None,
        "reasoning_ms": None,
    }


# --- Export ----------------------------------------------------------------------------


@pytest.mark.django_db
@pytest.mark.parametrize(
    ("export_format", "content_type", "check"),
    [
        ("json", "application/json", lambda body: json.loads(body)["conversations"]),
        ("md", "text/markdown", lambda body: body.startswith("# A conversation")),
        ("jsonl", "application/x-ndjson", lambda body: json.loads(body)["messages"]),
    ],
)
def test_one_conversation_downloads_in_each_format(
    api_client, conversation, export_format, content_type, check
):
    thread(conversation, "Hi", "Hello")
    response = api_client.get(
        f"/api/v1/conversations/{conversation.uuid}/export/", {"format": export_format}
    )
    assert response.status_code == 200
    assert response["Content-Type"].startswith(content_type)
    assert (
        f'filename="conversation-{conversation.uuid}.{export_format}"'
        in (response["Content-Disposition"])
    )
    assert check(_body(response).decode())


@pytest.mark.django_db
def test_an_unknown_export_format_is_a_clear_400(api_client, conversation):
    response = api_client.get(f"/api/v1/conversations/{conversation.uuid}/export/?format=pdf")
    assert response.status_code == 400
    assert response.json()["detail"] == "format: Choose one of: json, md, jsonl, openwebui."


@pytest.mark.django_db
def test_exporting_everything_is_a_streamed_download(api_client, user, chat_model):
    for index in range(3):
        thread(ConversationFactory(owner=user, chat_model=chat_model, title=f"c{index}"), "x")
    response = api_client.get("/api/v1/export/?format=jsonl")
    assert isinstance(response, StreamingHttpResponse)
    assert "attachment" in response["Content-Disposition"]
    assert len(_body(response).splitlines()) == 3


@pytest.mark.django_db
def test_under_asgi_the_export_streams_asynchronously_instead_of_being_buffered(user, chat_model):
    """Django buffers a synchronous iterator whole under ASGI; the export must not."""
    thread(ConversationFactory(owner=user, chat_model=chat_model), "Hi", "Hello")
    client = AsyncClient()
    client.force_login(user)

    async def download():
        response = await client.get("/api/v1/export/?format=jsonl")
        chunks = [chunk async for chunk in response.streaming_content]
        return response, b"".join(chunks)

    response, body = async_to_sync(download)()
    assert response.is_async
    assert json.loads(body)["messages"][1]["content"] == "Hello"


# --- Import ----------------------------------------------------------------------------


def _upload(name: str, data: bytes) -> SimpleUploadedFile:
    return SimpleUploadedFile(name, data, content_type="application/json")


@pytest.mark.django_db
def test_an_export_uploaded_again_comes_back_as_a_new_conversation(api_client, conversation):
    thread(conversation, "Hi", "Hello")
    exported = _body(api_client.get(f"/api/v1/conversations/{conversation.uuid}/export/"))
    response = api_client.post("/api/v1/import/", {"file": _upload("c.json", exported)})
    assert response.status_code == 201
    (imported,) = response.json()["imported"]
    copy = Conversation.objects.get(uuid=imported["id"])
    assert [m.content for m in copy.messages.order_by("id")] == ["Hi", "Hello"]


@pytest.mark.django_db
def test_a_chatgpt_export_imports_through_the_api(api_client, user):
    response = api_client.post(
        "/api/v1/import/", {"file": _upload("conversations.json", CHATGPT_FILE.read_bytes())}
    )
    assert response.status_code == 201
    assert [c["title"] for c in response.json()["imported"]] == [
        "Sourdough starter help",
        "Haiku about autumn",
    ]
    assert Conversation.objects.filter(owner=user).count() == 2


def _spliced(data: bytes, old: str, new: str) -> bytes:
    """`data` with one JSON text replaced as written: escapes JSON allows and Python's
    json.dumps would never write."""
    text = data.decode()
    assert old in text
    return text.replace(old, new, 1).encode()


# The two ways a JSON text can hold what PostgreSQL cannot: a lone surrogate, a NUL.
UNSTORABLE = [("surrogate", "\\ud800"), ("nul", "\\u0000")]


@pytest.mark.django_db
@pytest.mark.parametrize(("kind", "escape"), UNSTORABLE)
@pytest.mark.parametrize(
    ("format_name", "where"),
    [
        ("chatsite content", "Message 2 content"),
        ("chatsite context", "Message 1 context"),
        ("chatgpt content", "Message user-1 content"),
    ],
)
def test_text_the_database_cannot_store_is_a_400_naming_the_message(
    api_client, conversation, user, format_name, where, kind, escape
):
    thread(conversation, "Hi", "Hello")
    before = list(Message.objects.values_list("id", "content"))
    if format_name.startswith("chatsite"):
        message = _body(api_client.get(f"/api/v1/conversations/{conversation.uuid}/export/"))
        if format_name == "chatsite content":
            data = _spliced(message, '"content": "Hello"', f'"content": "Hel{escape}lo"')
        else:
            data = _spliced(message, '"context": {}', f'"context": {{"note": "a{escape}b"}}')
    else:
        data = _spliced(
            CHATGPT_FILE.read_bytes(),
            "My starter smells like nail polish.",
            f"My starter{escape} smells like nail polish.",
        )
    response = api_client.post("/api/v1/import/", {"file": _upload("x.json", data)})
    body = response.json()
    if kind == "nul" and format_name != "chatsite context":
        # A NUL in a message's text is dropped (the text is kept), as everywhere.
        assert response.status_code == 201, body
        return
    # The whole file is refused, the other conversation of the ChatGPT file too.
    assert response.status_code == 400, body
    assert body["imported"] == [] and not Conversation.objects.filter(title="Haiku about autumn")
    (failure,) = body["failed"]
    assert failure["error"].startswith(f"{where} has a character the database cannot store")
    assert list(Message.objects.values_list("id", "content"))[: len(before)] == before
    assert not Message.objects.filter(content__contains="nail polish").exists()


@pytest.mark.django_db
def test_a_title_the_database_cannot_store_is_reported_readably(api_client):
    data = _spliced(CHATGPT_FILE.read_bytes(), '"Sourdough starter help"', '"Sour\\udc00dough"')
    response = api_client.post("/api/v1/import/", {"file": _upload("x.json", data)})
    assert response.status_code == 400
    (failure,) = response.json()["failed"]
    assert failure["title"] == "Sour\ufffddough"
    assert "The conversation title has a character" in failure["error"]


@pytest.mark.django_db
def test_a_bad_upload_is_a_400_that_says_why(api_client):
    response = api_client.post("/api/v1/import/", {"file": _upload("x.json", b"{nope")})
    assert response.status_code == 400
    assert "not valid JSON" in response.json()["detail"]
    assert not Conversation.objects.exists()


@pytest.mark.django_db
def test_an_oversized_upload_is_refused_unread(api_client, settings):
    settings.API_IMPORT_MAX_BYTES = 10
    response = api_client.post("/api/v1/import/", {"file": _upload("x.json", b"[" * 100)})
    assert response.status_code == 413


@pytest.mark.django_db
def test_an_upload_without_a_file_is_refused_in_the_imports_own_shape(api_client):
    response = api_client.post("/api/v1/import/", {"upload": _upload("x.json", b"[]")})
    assert response.status_code == 400
    assert response.json() == {
        "detail": "file: No file was submitted.",
        "imported": [],
        "failed": [],
    }


@pytest.mark.django_db
def test_an_import_that_is_not_multipart_is_a_415(api_client):
    response = api_client.post("/api/v1/import/", {"file": "[]"}, format="json")
    assert response.status_code == 415
    assert response.json() == {"detail": 'Unsupported media type "application/json" in request.'}
    assert not Conversation.objects.exists()


# --- Throttling ------------------------------------------------------------------------


@pytest.mark.django_db
def test_each_token_has_its_own_rate_limit(settings, user):
    settings.REST_FRAMEWORK = {
        **settings.REST_FRAMEWORK,
        "DEFAULT_THROTTLE_RATES": {"api": "2/min"},
    }
    cache.clear()
    first = _bearer(ApiTokenFactory(user=user).secret)
    second = _bearer(ApiTokenFactory(user=user).secret)
    assert [first.get("/api/v1/conversations/").status_code for _ in range(3)] == [200, 200, 429]
    assert second.get("/api/v1/conversations/").status_code == 200
    cache.clear()


# --- Settings page ---------------------------------------------------------------------


@pytest.mark.django_db
def test_the_settings_page_needs_a_login(client):
    response = client.get("/settings/api/")
    assert response.status_code == 302 and "/accounts/login/" in response["Location"]


@pytest.mark.django_db
def test_a_new_token_is_shown_once_and_works(client, user):
    client.force_login(user)
    response = client.post(
        "/settings/api/tokens/", {"name": "backup"}, headers={"HX-Request": "true"}
    )
    assert response.status_code == 200
    secret = response.context["created"].secret
    assert secret in response.content.decode()
    assert secret not in client.get("/settings/api/").content.decode()
    assert _bearer(secret).get("/api/v1/conversations/").status_code == 200


@pytest.mark.django_db
def test_a_token_can_be_revoked_from_the_page_but_not_someone_elses(client, user, other_user):
    mine = ApiTokenFactory(user=user)
    theirs = ApiTokenFactory(user=other_user)
    client.force_login(user)
    client.post(f"/settings/api/tokens/{theirs.pk}/revoke/")
    response = client.post(f"/settings/api/tokens/{mine.pk}/revoke/")
    assert response.status_code == 302
    assert ApiToken.objects.get(pk=mine.pk).revoked_at is not None
    assert ApiToken.objects.get(pk=theirs.pk).revoked_at is None


@pytest.mark.django_db
def test_the_settings_page_offers_export_all_and_import(client, user):
    client.force_login(user)
    page = client.get("/settings/api/").content.decode()
    for export_format in ("json", "md", "jsonl"):
        assert f"/api/v1/export/?format={export_format}" in page
    assert 'enctype="multipart/form-data"' in page and "csrfmiddlewaretoken" in page


@pytest.mark.django_db
def test_importing_from_the_settings_page_reports_what_happened(client, user):
    client.force_login(user)
    response = client.post(
        "/settings/api/import/",
        {"file": _upload("conversations.json", CHATGPT_FILE.read_bytes())},
        headers={"HX-Request": "true"},
    )
    page = response.content.decode()
    assert "Imported 2 conversations" in page and "Haiku about autumn" in page
    bad = client.post("/settings/api/import/", {"file": _upload("x.json", b"nope")})
    assert "not valid JSON" in bad.content.decode()


@pytest.mark.django_db
def test_the_chat_page_links_to_each_export_format(client, user, conversation):
    client.force_login(user)
    page = client.get(f"/c/{conversation.uuid}/").content.decode()
    for export_format in ("json", "md", "jsonl"):
        assert f"/api/v1/conversations/{conversation.uuid}/export/?format={export_format}" in page
    assert "/settings/api/" in page


# --- Schema-driven fuzzing -------------------------------------------------------------


@pytest.fixture
def wsgi_app():
    """Django as a WSGI app that leaves the test's database connection open (as the test
    client does): the signal would otherwise close it mid-transaction."""
    from django.core import signals
    from django.core.handlers.wsgi import WSGIHandler
    from django.db import close_old_connections

    signals.request_started.disconnect(close_old_connections)
    signals.request_finished.disconnect(close_old_connections)
    yield WSGIHandler()
    signals.request_started.connect(close_old_connections)
    signals.request_finished.connect(close_old_connections)


@pytest.mark.django_db
def test_the_schema_is_served_with_local_interactive_docs(client):
    assert client.get("/api/v1/schema/").status_code == 200
    docs = client.get("/api/v1/docs/")
    assert docs.status_code == 200
    assert b"cdn" not in docs.content.lower() and b"/static/" in docs.content


def _fuzzed_statuses(schema, operation, mode, own_uuid: str) -> set[int]:
    """Runs `operation` in `mode` with every schemathesis check; the statuses it answered."""
    from hypothesis import HealthCheck, given
    from hypothesis import settings as hypothesis_settings
    from hypothesis import strategies as st
    from schemathesis import GenerationMode
    from schemathesis.checks import positive_data_acceptance

    # The schema can say the upload is a file, not that it is an export: random bytes are
    # schema-valid and rightly refused, with the documented 400.
    excluded = [positive_data_acceptance] if operation.method.upper() == "POST" else []
    statuses: set[int] = set()

    @hypothesis_settings(
        max_examples=30,
        deadline=None,
        database=None,
        derandomize=True,
        suppress_health_check=list(HealthCheck),
    )
    @given(
        case=operation.as_strategy(generation_mode=mode, auth_storage=schema.auth),
        own=st.booleans(),
    )
    def answers_as_documented(case, own):
        # Half the valid ids are a real conversation's, to reach its data.
        if mode is GenerationMode.POSITIVE and own and "uuid" in case.path_parameters:
            case.path_parameters["uuid"] = own_uuid
        statuses.add(case.call_and_validate(excluded_checks=excluded).status_code)

    answers_as_documented()
    return statuses


@pytest.mark.django_db
def test_every_answer_to_any_request_matches_the_schema(
    wsgi_app, settings, api_token, conversation
):
    """schemathesis, every check, over every operation: valid requests (positive) are
    answered as documented, invalid ones (negative: a bad id, an unknown parameter, a
    value of the wrong type) are refused with a documented status and body."""
    import schemathesis
    from schemathesis import GenerationMode

    settings.REST_FRAMEWORK = {
        **settings.REST_FRAMEWORK,
        "DEFAULT_THROTTLE_RATES": {"api": "100000/min"},
    }
    thread(conversation, "Hi", "Hello")
    MessageFactory(conversation=conversation, content="x", reasoning="thinking")
    schema = schemathesis.openapi.from_wsgi("/api/v1/schema/", wsgi_app)

    # Declared as the schema's auth, so negative cases never count a replaced bad token
    # as "invalid data accepted".
    @schema.auth.auth()
    class Token:
        def get(self, case, context):
            return api_token.secret

        def set(self, case, data, context):
            case.headers = {**(case.headers or {}), "Authorization": f"Bearer {data}"}

    operations = [result.ok() for result in schema.get_all_operations()]
    assert len(operations) == 7
    seen: dict[tuple[str, str], set[int]] = {}
    for operation in operations:
        for mode in (GenerationMode.POSITIVE, GenerationMode.NEGATIVE):
            statuses = _fuzzed_statuses(schema, operation, mode, str(conversation.uuid))
            seen[(operation.label, mode.value)] = statuses
    # The fuzzing reached real data (random uploads are not exports: the import's real
    # files are tested above), and the refusals were the API's own.
    for (label, mode), statuses in seen.items():
        reached = {200} if mode == "positive" and "import" not in label else {400, 404, 415}
        assert statuses & reached, (label, mode, statuses)
    assert Message.objects.filter(conversation=conversation).count() == 3
