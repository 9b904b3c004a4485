"""The chat socket reads every frame strictly and answers each: its effect, or a notice
naming what was wrong. No frame closes the socket or loses what was typed (one over daphne's
1 MiB ends the connection). On a running daphne, as a careless or hostile client sends."""

import asyncio
import json

import aiohttp
import pytest

from conversations.frames import MAX_FRAME_CHARS, BadFrame, id_list_field, read_frame, text_field
from conversations.models import Message, Role
from tests.factories import ChatModelFactory, ConversationFactory, UserFactory
from tests.fake_provider import Reply
from tests.wsclient import LiveSocket

pytestmark = pytest.mark.django_db(transaction=True)

DEEP = "[" * 100_000 + "]" * 100_000

BAD_FRAMES = [
    (DEEP, "could not read that request"),
    ('{"action": "sync", "last": "not-a-uuid"}', "“last” is not a valid id"),
    ('["send", "hello"]', "it is not a JSON object"),
    ('"hello"', "it is not a JSON object"),
    ('{"action": "send", "message": {"text": "hi"}}', "“message” must be text"),
    ('{"action": 5}', "“action” must be text"),
    ('{"action": "retry", "reply": ["x"]}', "“reply” must be text"),
    ('{"action": "send", "message": "hi", "attachments": ["../etc"]}', "“attachments” is not"),
    ('{"action": "send", "message": "' + "x" * MAX_FRAME_CHARS + '"}', "too large to send"),
    ("{not json", "could not read that request"),
]


@pytest.fixture
def conversation(db):
    return ConversationFactory(owner=UserFactory(), chat_model=ChatModelFactory())


def _user_texts() -> list[str]:
    return list(
        Message.objects.filter(role=Role.USER).order_by("id").values_list("content", flat=True)
    )


def test_each_bad_frame_gets_a_notice_and_the_socket_stays_open(
    daphne_server, fake_provider, conversation
):
    socket = LiveSocket(daphne_server, conversation)

    async def scenario():
        async with socket:
            for frame, notice in BAD_FRAMES:
                before = len(socket.page.notices)
                await socket.ws.send_str(frame)
                await socket.read_until(lambda page, n=before: len(page.notices) > n)
                assert notice in socket.page.notices[-1], (frame[:60], socket.page.notices[-1])
            # Still open, and still the user's: a plain message goes through.
            fake_provider.script(Reply(content="Still here."))
            await socket.say("After all that", key="after")
            await socket.read_until(
                lambda page: page.last() is not None and "Still here." in page.last().html
            )

    asyncio.run(scenario())
    assert _user_texts() == ["After all that"], "no bad frame sent anything"


def test_text_postgres_cannot_store_is_cleaned_not_a_crash(
    daphne_server, fake_provider, conversation
):
    socket = LiveSocket(daphne_server, conversation)

    async def scenario():
        async with socket:
            for number, text in enumerate(["nul\\u0000byte", "lone\\ud800surrogate"]):
                fake_provider.script(Reply(content=f"ok {number}"))
                frame = '{"action": "send", "idempotency_key": "k%d", "message": "%s"}'
                await socket.ws.send_str(frame % (number, text))
                await socket.read_until(
                    lambda page, n=number: f"ok {n}" in str(page.last() and page.last().html)
                )

    asyncio.run(scenario())
    assert _user_texts() == ["nulbyte", "lone\ufffdsurrogate"]


def test_a_frame_past_daphnes_limit_ends_the_socket_and_stores_nothing(daphne_server, conversation):
    """Past 1 MiB daphne (autobahn) fails the connection by dropping it, before the
    application sees the frame: the client sees 1006, or 1009 when the close frame arrives
    first. The page never sends one (its composer refuses a message over the limit) and
    restores what it sent when the connection drops (test_browser.py)."""
    socket = LiveSocket(daphne_server, conversation)

    async def scenario():
        async with socket:
            try:
                await socket.ws.send_str(json.dumps({"action": "send", "message": "x" * 1_100_000}))
            except ConnectionError:  # dropped while the frame was still being sent
                return 1006
            closing = await socket.ws.receive(timeout=10)
            while closing.type not in (aiohttp.WSMsgType.CLOSE, aiohttp.WSMsgType.CLOSED):
                closing = await socket.ws.receive(timeout=10)
            return socket.ws.close_code

    assert asyncio.run(scenario()) in (1006, 1009)
    assert _user_texts() == []


# --- Reading a frame, without a socket ---------------------------------------------------


def test_a_frame_is_a_json_object_of_text_fields():
    data = read_frame('{"action": "send", "message": "hi", "attachments": null}', None)
    assert text_field(data, "message") == "hi" and text_field(data, "missing") == ""
    assert id_list_field(data, "attachments") == []
    one = "0b9d6c1e-7c1a-4d0e-9a51-3f1f0c8d2b7a"
    assert id_list_field({"attachments": one}, "attachments") == [one]
    with pytest.raises(BadFrame, match="only reads text frames"):
        read_frame(None, b"\x00")
