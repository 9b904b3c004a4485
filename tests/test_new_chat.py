"""The new-chat page: images on the first message, like any later one, and a refused first
message that creates nothing and keeps what was typed and attached."""

import base64

import pytest
from channels.db import database_sync_to_async
from django.core.files.uploadedfile import SimpleUploadedFile
from django.urls import reverse

from conversations import limits
from conversations.models import Attachment, Conversation, Message, MessageStatus
from tests.factories import ChatModelFactory, UsageBudgetFactory, UsageRecordFactory
from tests.fake_provider import Reply
from tests.test_attachments import PNG, upload
from tests.waits import wait_until_async

pytestmark = pytest.mark.django_db(transaction=True)


@pytest.fixture(autouse=True)
def _media(settings, tmp_path):
    settings.MEDIA_ROOT = tmp_path


@pytest.fixture
def vision(db):
    return ChatModelFactory(name="fake-vision", supports_vision=True)


def test_the_new_chat_page_offers_the_same_image_control(client, user, chat_model):
    client.force_login(user)
    page = client.get(reverse("home")).content.decode()
    assert 'id="composer-attachments"' in page
    assert 'id="attach-input"' in page and 'data-upload-url="/attachments/"' in page


def test_an_image_for_a_new_chat_gets_a_chip_within_the_same_limits(client, user, settings):
    client.force_login(user)
    url = reverse("attachment_new")
    response = client.post(url, {"file": SimpleUploadedFile("dot.png", PNG, "image/png")})
    attachment = Attachment.objects.get()
    assert response.status_code == 200
    assert f'name="attachments" value="{attachment.uuid}"' in response.content.decode()
    assert attachment.owner == user and attachment.message is None
    settings.ATTACHMENT_MAX_BYTES = 64
    big = client.post(url, {"file": SimpleUploadedFile("big.png", PNG + b"\0" * 100)})
    assert big.status_code == 400 and b"too large" in big.content
    text = client.post(url, {"file": SimpleUploadedFile("a.png", b"plain text, not an image")})
    assert text.status_code == 400 and b"not an image we accept" in text.content
    assert Attachment.objects.count() == 1


def test_uploading_for_a_new_chat_needs_a_login(client):
    response = client.post(reverse("attachment_new"), {"file": SimpleUploadedFile("d.png", PNG)})
    assert response.status_code == 302 and not Attachment.objects.exists()


@database_sync_to_async
def _complete_reply(user) -> Message | None:
    return Message.objects.filter(
        conversation__owner=user, role="assistant", status=MessageStatus.COMPLETE
    ).first()


async def test_the_first_message_carries_its_image_to_a_vision_model(
    async_client, user, vision, fake_provider
):
    attachment = await database_sync_to_async(upload)(user)
    fake_provider.script(Reply(content="A red dot."))
    await async_client.aforce_login(user)
    fields = {"model": vision.pk, "message": "What is this?", "attachments": str(attachment.uuid)}
    response = await async_client.post(reverse("conversation_new"), fields)
    assert response.status_code == 302
    await wait_until_async(lambda: _complete_reply(user), message="the reply completes")
    text, image = fake_provider.chat_requests[-1].json["messages"][-1]["content"]
    assert text == {"type": "text", "text": "What is this?"}
    assert base64.b64decode(image["image_url"]["url"].split("base64,", 1)[1]) == PNG
    await database_sync_to_async(attachment.refresh_from_db)()
    conversation = await Conversation.objects.aget(owner=user)
    first = await Message.objects.filter(conversation=conversation, role="user").aget()
    assert attachment.message_id == first.pk


async def test_an_image_alone_starts_a_chat(async_client, user, vision, fake_provider):
    attachment = await database_sync_to_async(upload)(user)
    fake_provider.script(Reply(content="A dot."))
    await async_client.aforce_login(user)
    fields = {"model": vision.pk, "message": "", "attachments": str(attachment.uuid)}
    await async_client.post(reverse("conversation_new"), fields)
    await wait_until_async(lambda: _complete_reply(user), message="the reply completes")
    (image,) = fake_provider.chat_requests[-1].json["messages"][-1]["content"]
    assert image["type"] == "image_url"


# --- Refused: nothing is created, nothing typed or attached is lost -------------------


def _over_budget(user, settings):
    UsageBudgetFactory(token_limit=10)
    UsageRecordFactory(user=user, prompt_tokens=10, completion_tokens=0)


def _rate_limited(user, settings):
    settings.SEND_RATE_LIMIT_PER_MINUTE = 1
    limits.send_allowed(user.pk)  # this minute's one send is used


def _too_long(user, settings):
    settings.MESSAGE_MAX_CHARS = 5


REFUSALS = [
    ("budget", _over_budget, "fake-vision", "budget"),
    ("rate", _rate_limited, "fake-vision", "sending messages too quickly"),
    ("too-long", _too_long, "fake-vision", "That message is too long"),
    # An image for a model that cannot see it is bad input too.
    ("no-vision", None, "fake-model", "cannot see images"),
]
CASES = [
    pytest.param(refuse, model, reason, with_image, id=f"{name}-{with_image and 'image' or 'text'}")
    for name, refuse, model, reason in REFUSALS
    for with_image in (True, False)
    if with_image or name != "no-vision"
]


@pytest.mark.parametrize(("refuse", "model_name", "reason", "with_image"), CASES)
def test_a_refused_first_message_creates_nothing_and_keeps_text_and_image(
    client, user, settings, fake_provider, refuse, model_name, reason, with_image
):
    chat_model = ChatModelFactory(name=model_name, supports_vision=model_name == "fake-vision")
    attachment = upload(user)
    if refuse:
        refuse(user, settings)
    client.force_login(user)
    fields = {"model": chat_model.pk, "message": "Look at this"}
    if with_image:
        fields["attachments"] = str(attachment.uuid)
    response = client.post(reverse("conversation_new"), fields)
    page = response.content.decode()
    assert response.status_code == 400 and reason in page
    assert ">Look at this</textarea>" in page
    assert not Conversation.objects.exists(), "no empty New chat is left in the sidebar"
    assert not Message.objects.exists() and not fake_provider.chat_requests
    attachment.refresh_from_db()
    assert attachment.message_id is None
    assert attachment.file.storage.exists(attachment.file.name)
    chip = f'name="attachments" value="{attachment.uuid}"'
    # The image is back in the composer to send again, not left behind unseen.
    assert (chip in page) is with_image


def test_a_refused_page_shows_only_the_users_own_unsent_images(client, user, other_user, vision):
    mine, theirs = upload(user), upload(other_user)
    UsageBudgetFactory(token_limit=10)
    UsageRecordFactory(user=user, prompt_tokens=10, completion_tokens=0)
    client.force_login(user)
    ids = [str(mine.uuid), str(theirs.uuid)]
    fields = {"model": vision.pk, "message": "Hi", "attachments": ids}
    page = client.post(reverse("conversation_new"), fields).content.decode()
    assert str(mine.uuid) in page and str(theirs.uuid) not in page


# --- Think and JSON on the new-chat page ---------------------------------------------


@pytest.fixture
def capable(db):
    return ChatModelFactory(name="capable", supports_thinking=True, supports_json=True)


def test_the_new_chat_page_offers_the_switches_the_picked_model_honours(
    client, user, chat_model, capable
):
    client.force_login(user)
    url = reverse("new_chat_switches")
    plain = client.get(url, {"model": chat_model.pk}).content.decode()
    assert 'class="switch-button"' not in plain
    pressed = client.get(url, {"model": capable.pk, "thinking": "on"}).content.decode()
    assert 'id="switch-thinking" data-switch="thinking" aria-pressed="true"' in pressed
    assert 'id="switch-json" data-switch="json_mode" aria-pressed="false"' in pressed
    assert '<input type="hidden" name="thinking" value="on" form="composer">' in pressed
    home = client.get(reverse("home")).content.decode()
    assert f'hx-get="{url}"' in home, "a pick of the model brings its switches"


@pytest.mark.parametrize(("model_name", "kept"), [("capable", True), ("fake-model", False)])
def test_a_new_chat_keeps_the_switches_its_model_honours(
    client, user, capable, chat_model, model_name, kept
):
    chosen = capable if model_name == "capable" else chat_model
    client.force_login(user)
    fields = {"model": chosen.pk, "message": "", "thinking": "on", "json_mode": "on"}
    assert client.post(reverse("conversation_new"), fields).status_code == 302
    conversation = Conversation.objects.get(owner=user)
    assert (conversation.thinking_enabled, conversation.json_mode) == (kept, kept)


def test_a_refused_first_message_keeps_the_switches_pressed(client, user, capable):
    _over_budget(user, None)
    client.force_login(user)
    fields = {"model": capable.pk, "message": "Hi", "thinking": "on", "json_mode": "off"}
    page = client.post(reverse("conversation_new"), fields).content.decode()
    assert 'id="switch-thinking" data-switch="thinking" aria-pressed="true"' in page
    assert 'id="switch-json" data-switch="json_mode" aria-pressed="false"' in page
    assert not Conversation.objects.exists()
