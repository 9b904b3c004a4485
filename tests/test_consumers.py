"""The chat socket: owner-only, streaming, reconnect, stop, two tabs, idempotent sends."""

import asyncio
import threading
import time

import pytest
from asgiref.sync import sync_to_async
from channels.db import database_sync_to_async
from channels.testing import WebsocketCommunicator
from django.conf import settings
from django.contrib.sessions.models import Session

from chatsite.asgi import application
from conversations.models import Message, MessageStatus, Role
from tests.fake_provider import Reply
from tests.waits import wait_until_async
from tests.wsclient import ChatSocket, session_cookie, tab_streaming

pytestmark = pytest.mark.django_db(transaction=True)

ANSWER = ["The ", "quick ", "brown ", "fox ", "jumps ", "over ", "the ", "lazy ", "dog."]


@database_sync_to_async
def reply_in_db(conversation) -> Message:
    return Message.objects.filter(conversation=conversation, role=Role.ASSISTANT).latest("id")


async def test_owner_connects_and_others_are_refused(conversation, other_user):
    owner = ChatSocket(conversation, conversation.owner)
    assert await owner.connect()
    await owner.close()
    stranger = ChatSocket(conversation, other_user)
    assert not await stranger.connect()


async def test_socket_from_another_origin_is_refused(conversation):
    communicator = WebsocketCommunicator(
        application,
        f"/ws/c/{conversation.uuid}/",
        headers=[(b"origin", b"https://evil.example"), (b"host", b"127.0.0.1")],
    )
    connected, _ = await communicator.connect()
    assert not connected


async def _connects_through_the_site_stack(conversation, cookie: str | None) -> bool:
    headers = [(b"origin", b"http://127.0.0.1"), (b"host", b"127.0.0.1")]
    if cookie is not None:
        headers.append((b"cookie", f"{settings.SESSION_COOKIE_NAME}={cookie}".encode()))
    communicator = WebsocketCommunicator(application, f"/ws/c/{conversation.uuid}/", headers)
    connected, _ = await communicator.connect()
    await communicator.disconnect()
    return connected


async def test_the_session_cookie_says_whose_socket_it_is(conversation, other_user):
    owner_cookie = await database_sync_to_async(session_cookie)(conversation.owner)
    stranger_cookie = await database_sync_to_async(session_cookie)(other_user)
    assert await _connects_through_the_site_stack(conversation, owner_cookie)
    assert not await _connects_through_the_site_stack(conversation, stranger_cookie)
    assert not await _connects_through_the_site_stack(conversation, None)
    await database_sync_to_async(Session.objects.all().delete)()  # signed out everywhere
    assert not await _connects_through_the_site_stack(conversation, owner_cookie)


async def test_reply_streams_progressively_and_is_saved(conversation, fake_provider):
    fake_provider.script(Reply(content=ANSWER, tokens_per_second=40))
    tab = ChatSocket(conversation, conversation.owner)
    await tab.connect()
    await tab.say("Tell me about foxes", "key-1")
    seen = set()
    await tab.read_until(
        lambda page: (
            bool(page.last() and seen.add(page.last().text) is None)
            and page.last().status == "complete"
        )
    )
    assert len(seen - {""}) >= 3, "the reply should arrive in several steps"
    assert tab.page.last("user").text == "Tell me about foxes"
    reply = await reply_in_db(conversation)
    assert reply.status == MessageStatus.COMPLETE
    assert reply.content == "".join(ANSWER)
    assert tab.page.last().text.strip() == "".join(ANSWER)
    assert reply.finish_reason == "stop"
    assert reply.completion_tokens and reply.time_to_first_token_ms is not None
    await tab.close()


async def test_a_send_does_not_wait_for_the_thread_that_thread_sensitive_calls_share(
    conversation, fake_provider
):
    fake_provider.script(Reply(content=ANSWER, tokens_per_second=40))
    tab = ChatSocket(conversation, conversation.owner)
    await tab.connect()
    await tab.drain()
    # Thread-sensitive calls all run on one thread; a busy one (a page render, a slow
    # query elsewhere in the process) must not hold up a frame from the browser.
    busy_started = threading.Event()

    def busy_for_three_seconds() -> None:
        busy_started.set()
        time.sleep(3)

    busy = asyncio.ensure_future(sync_to_async(busy_for_three_seconds)())
    assert await asyncio.to_thread(busy_started.wait, 5), "the shared thread is busy"
    started = time.monotonic()
    await tab.say("Still quick?", "key-1")
    await tab.read_until(lambda page: page.last("user") is not None, timeout=2)
    assert time.monotonic() - started < 1.5
    await tab.read_until_reply("complete")
    await busy
    await tab.close()


async def test_request_carries_system_prompt_history_and_usage_option(conversation, fake_provider):
    conversation.system_prompt = "Be brief."
    await database_sync_to_async(conversation.save)()
    tab = ChatSocket(conversation, conversation.owner)
    await tab.connect()
    await tab.say("Hi", "k1")
    await tab.read_until_reply("complete")
    body = fake_provider.chat_requests[-1].json
    assert body["stream"] is True
    assert body["stream_options"] == {"include_usage": True}
    assert body["messages"] == [
        {"role": "system", "content": "Be brief."},
        {"role": "user", "content": "Hi"},
    ]
    await tab.close()


async def test_reasoning_is_shown_apart_and_never_sent_back(conversation, fake_provider):
    fake_provider.script(
        Reply(reasoning="Let me think.", content="Forty-two."), Reply(content="Sure.")
    )
    tab = ChatSocket(conversation, conversation.owner)
    await tab.connect()
    await tab.say("Meaning of life?", "k1")
    await tab.read_until_reply("complete")
    assert tab.page.last().reasoning == "Let me think."
    reply = await reply_in_db(conversation)
    assert (reply.reasoning, reply.content) == ("Let me think.", "Forty-two.")
    await tab.say("Thanks", "k2")
    await tab.read_until(lambda page: len(page.order) == 4 and page.last().status == "complete")
    sent = fake_provider.chat_requests[-1].json["messages"]
    assert sent[1] == {"role": "assistant", "content": "Forty-two."}
    assert "Let me think." not in str(sent)
    await tab.close()


async def test_double_send_with_one_key_makes_one_message(conversation, fake_provider):
    tab = ChatSocket(conversation, conversation.owner)
    await tab.connect()
    await tab.say("Once", "same-key")
    await tab.say("Once", "same-key")
    await tab.read_until_reply("complete")
    await tab.drain()
    count = await database_sync_to_async(
        Message.objects.filter(conversation=conversation, role=Role.USER).count
    )()
    assert count == 1
    assert len(fake_provider.chat_requests) == 1
    await tab.close()


async def test_reconnect_mid_stream_shows_everything_once(conversation, fake_provider):
    tokens = [f"w{i} " for i in range(60)]
    fake_provider.script(Reply(content=tokens, tokens_per_second=60))
    first = await tab_streaming(conversation, "Count", chars=20)
    seen = len(first.page.last().text)
    await first.close()

    async def went_on_without_a_socket() -> bool:
        reply = await reply_in_db(conversation)
        return len(reply.content) > seen or reply.status == MessageStatus.COMPLETE

    # The reply goes on with no socket at all: its saved text grows past what the tab saw.
    await wait_until_async(went_on_without_a_socket, message="the reply stopped with the tab")
    # The reloaded page shows what the database has, then the socket catches up.
    reply = await reply_in_db(conversation)
    second = ChatSocket(conversation, conversation.owner)
    await second.connect(last=str(reply.uuid))
    page = await second.read_until_reply("complete", timeout=15)
    assert page.last().text.strip() == "".join(tokens).strip()
    await second.close()


async def test_closing_every_socket_does_not_stop_the_reply(conversation, fake_provider):
    fake_provider.script(Reply(content=ANSWER, tokens_per_second=30))
    tab = ChatSocket(conversation, conversation.owner)
    await tab.connect()
    await tab.say("Go", "k1")
    await tab.read_until(lambda page: page.last() is not None and page.last().text)
    await tab.close()

    async def ended():
        reply = await reply_in_db(conversation)
        return reply if reply.status not in MessageStatus.IN_FLIGHT else None

    reply = await wait_until_async(ended, message="the reply never ended")
    assert reply.status == MessageStatus.COMPLETE
    assert reply.content == "".join(ANSWER)


async def test_two_tabs_see_the_same_reply(conversation, fake_provider):
    fake_provider.script(Reply(content=ANSWER, tokens_per_second=40))
    one, two = (
        ChatSocket(conversation, conversation.owner),
        ChatSocket(conversation, conversation.owner),
    )
    await one.connect()
    await two.connect()
    await one.say("Hello", "k1")
    await one.read_until_reply("complete")
    await two.read_until_reply("complete")
    assert one.page.last("user").text == two.page.last("user").text == "Hello"
    assert one.page.last().text == two.page.last().text
    assert one.page.last().text.strip() == "".join(ANSWER)
    await one.close()
    await two.close()


async def test_stop_cancels_upstream_and_keeps_what_was_seen(conversation, fake_provider):
    tokens = [f"t{i} " for i in range(200)]
    fake_provider.script(Reply(content=tokens, tokens_per_second=40))
    tab = await tab_streaming(conversation, "Long one", chars=15)
    seen_before_stop = tab.page.last().text
    await tab.send(action="stop")
    await tab.read_until_reply("cancelled")
    stream = fake_provider.wait_for_disconnect(timeout=5)
    assert stream.client_disconnected and not stream.finished
    reply = await reply_in_db(conversation)
    assert reply.status == MessageStatus.CANCELLED
    assert reply.content.startswith(seen_before_stop.rstrip())
    assert len(reply.content) >= len(seen_before_stop.rstrip())
    assert tab.page.last().text.strip() == reply.content.strip()
    # The composer is usable at once: the next message goes through.
    await tab.say("Next", "k2")
    await tab.read_until(lambda page: len(page.order) == 4 and page.last().status == "complete")
    await tab.close()


async def test_a_send_while_a_reply_streams_gets_a_clear_notice(conversation, fake_provider):
    fake_provider.script(Reply(content=ANSWER, tokens_per_second=20))
    tab = ChatSocket(conversation, conversation.owner)
    await tab.connect()
    await tab.say("First", "k1")
    await tab.read_until(lambda page: page.last() is not None)
    await tab.say("Second", "k2")
    await tab.read_until(lambda page: any("still being written" in n for n in page.notices))
    await tab.send(action="stop")
    await tab.read_until_reply("cancelled")
    await tab.close()


async def test_malformed_frames_get_an_error_and_change_nothing(conversation):
    tab = ChatSocket(conversation, conversation.owner)
    await tab.connect()
    await tab.communicator.send_to(text_data="{not json")
    await tab.read_until(lambda page: any("could not read" in n for n in page.notices))
    await tab.say("   ", "k1")
    await tab.read_until(lambda page: any("Type a message" in n for n in page.notices))
    assert not await database_sync_to_async(Message.objects.exists)()
    await tab.close()


async def test_settings_changed_after_the_socket_opened_apply_to_the_next_reply(
    conversation, fake_provider
):
    from tests.factories import ChatModelFactory

    tab = ChatSocket(conversation, conversation.owner)
    await tab.connect()
    other_model = await database_sync_to_async(ChatModelFactory)(name="fake-reasoner")
    conversation.chat_model = other_model
    conversation.system_prompt = "Answer in French."
    await database_sync_to_async(conversation.save)()
    await tab.say("Bonjour", "k1")
    await tab.read_until_reply("complete")
    body = fake_provider.chat_requests[-1].json
    assert body["model"] == "fake-reasoner"
    assert body["messages"][0] == {"role": "system", "content": "Answer in French."}
    reply = await reply_in_db(conversation)
    assert reply.model_name == "fake-reasoner"
    await tab.close()


async def _opens(conversation, origin: bytes, *, host=b"127.0.0.1:8000", scheme="ws", headers=()):
    cookie = await database_sync_to_async(session_cookie)(conversation.owner)
    communicator = WebsocketCommunicator(
        application,
        f"/ws/c/{conversation.uuid}/",
        headers=[
            (b"origin", origin),
            (b"host", host),
            (b"cookie", f"{settings.SESSION_COOKIE_NAME}={cookie}".encode()),
            *headers,
        ],
    )
    communicator.scope["scheme"] = scheme
    connected, _ = await communicator.connect()
    await communicator.disconnect()
    return connected


async def test_the_origin_must_match_in_scheme_host_and_port(conversation):
    assert await _opens(conversation, b"http://127.0.0.1:8000")
    # Another service on this host, the same host over TLS, another port, no Origin at all.
    for origin in [b"http://127.0.0.1:9999", b"https://127.0.0.1:8000", b"http://127.0.0.1", b""]:
        assert not await _opens(conversation, origin), origin
    assert await _opens(conversation, b"https://127.0.0.1:8000", scheme="wss")


async def test_trusted_origins_and_a_tls_proxy_count_as_this_site(conversation, settings):
    settings.CSRF_TRUSTED_ORIGINS = ["https://chat.example.com", "https://*.example.org"]
    settings.ALLOWED_HOSTS = ["127.0.0.1", "chat.example.com"]
    assert await _opens(conversation, b"https://chat.example.com")
    assert await _opens(conversation, b"https://eu.example.org")
    assert not await _opens(conversation, b"http://eu.example.org")
    settings.SECURE_PROXY_SSL_HEADER = ("HTTP_X_FORWARDED_PROTO", "https")
    proxied = [(b"x-forwarded-proto", b"https")]
    host = b"chat.example.com"
    assert await _opens(conversation, b"https://chat.example.com", host=host, headers=proxied)
    assert not await _opens(conversation, b"http://chat.example.com", host=host, headers=proxied)
    assert not await _opens(conversation, b"https://evil.example", host=b"evil.example")
