"""Images on user messages: upload checks, owner-only serving, vision-only sending."""

import base64
import struct
import zlib

import pytest
from channels.db import database_sync_to_async
from django.core.files.uploadedfile import SimpleUploadedFile
from django.urls import reverse

from conversations import services
from conversations.errors import ValidationFailed
from conversations.models import Attachment, Message, Role
from conversations.services.replies import NO_VISION, NOT_YOURS
from tests.factories import ChatModelFactory, ConversationFactory
from tests.wsclient import ChatSocket

pytestmark = pytest.mark.django_db(transaction=True)


def tiny_png() -> bytes:
    """A real 1x1 red PNG, built here so no binary lives in the repository."""

    def chunk(kind: bytes, data: bytes) -> bytes:
        body = kind + data
        return struct.pack(">I", len(data)) + body + struct.pack(">I", zlib.crc32(body))

    header = struct.pack(">IIBBBBB", 1, 1, 8, 2, 0, 0, 0)
    pixels = zlib.compress(b"\x00\xff\x00\x00")
    return (
        b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", header) + chunk(b"IDAT", pixels) + chunk(b"IEND", b"")
    )


PNG = tiny_png()


@pytest.fixture(autouse=True)
def _media(settings, tmp_path):
    settings.MEDIA_ROOT = tmp_path


def upload(owner, data: bytes = PNG, name: str = "dot.png") -> Attachment:
    return services.attachment_upload(
        owner=owner, upload=SimpleUploadedFile(name, data, "image/png")
    )


def post_image(client, conversation, data: bytes = PNG, name: str = "dot.png"):
    url = reverse("attachment_upload", args=[conversation.uuid])
    return client.post(url, {"file": SimpleUploadedFile(name, data, "image/png")})


# --- Upload ----------------------------------------------------------------------------


def test_a_png_upload_answers_with_a_chip_for_the_composer(client, user, conversation):
    client.force_login(user)
    response = post_image(client, conversation)
    assert response.status_code == 200
    attachment = Attachment.objects.get()
    html = response.content.decode()
    assert f'name="attachments" value="{attachment.uuid}"' in html
    assert f'src="/attachments/{attachment.uuid}/"' in html
    assert attachment.owner == user and attachment.message is None
    assert attachment.content_type == "image/png" and attachment.size == len(PNG)
    assert "dot" not in attachment.file.name, "the client's file name never reaches the disk"


def test_a_text_file_named_png_is_refused_with_a_reason(client, user, conversation):
    client.force_login(user)
    response = post_image(client, conversation, b"hello, I am text", "evil.png")
    assert response.status_code == 400
    assert b"not an image we accept (PNG, JPEG, GIF or WebP)" in response.content
    assert not Attachment.objects.exists()


def test_an_oversized_image_is_refused_with_a_reason(client, user, conversation, settings):
    settings.ATTACHMENT_MAX_BYTES = 64
    client.force_login(user)
    response = post_image(client, conversation, PNG + b"\x00" * 100)
    assert response.status_code == 400
    assert "too large (the limit is 64\xa0bytes)" in response.content.decode()
    assert not Attachment.objects.exists()


@pytest.mark.parametrize(
    ("head", "content_type"),
    [
        (b"\xff\xd8\xff\xe0rest", "image/jpeg"),
        (b"GIF89a rest", "image/gif"),
        (b"RIFF\x10\x00\x00\x00WEBPVP8 ", "image/webp"),
    ],
)
def test_the_type_comes_from_the_magic_bytes(user, head, content_type):
    assert upload(user, head, "photo.txt").content_type == content_type


def test_uploading_into_another_users_conversation_is_404(client, other_user, conversation):
    client.force_login(other_user)
    assert post_image(client, conversation).status_code == 404
    assert not Attachment.objects.exists()


# --- Serving ---------------------------------------------------------------------------


def test_an_image_is_served_to_its_owner_only(client, user, other_user):
    attachment = upload(user)
    url = reverse("attachment", args=[attachment.uuid])
    anonymous = client.get(url)
    assert anonymous.status_code == 302 and "/accounts/login/" in anonymous["Location"]
    client.force_login(other_user)
    assert client.get(url).status_code == 404
    client.force_login(user)
    response = client.get(url)
    assert response.status_code == 200
    assert b"".join(response.streaming_content) == PNG
    assert response["Content-Type"] == "image/png"
    assert response["X-Content-Type-Options"] == "nosniff"
    assert response["Content-Disposition"] == "inline"


def test_media_files_have_no_public_url(client, user):
    attachment = upload(user)
    assert client.get(f"/media/{attachment.file.name}").status_code == 404


# --- Sending ---------------------------------------------------------------------------


@database_sync_to_async
def _upload(owner) -> Attachment:
    return upload(owner)


@database_sync_to_async
def _user_messages(conversation) -> list[Message]:
    return list(conversation.messages.filter(role=Role.USER).prefetch_related("attachments"))


async def test_an_image_reaches_a_vision_model_as_a_data_url(user, fake_provider):
    vision = await database_sync_to_async(ChatModelFactory)(
        name="fake-vision", supports_vision=True
    )
    conversation = await database_sync_to_async(ConversationFactory)(owner=user, chat_model=vision)
    attachment = await _upload(user)
    tab = ChatSocket(conversation, user)
    await tab.connect()
    ids = [str(attachment.uuid)]
    await tab.send(action="send", message="What is this?", idempotency_key="k", attachments=ids)
    page = await tab.read_until_reply("complete")
    await tab.close()
    body = fake_provider.chat_requests[-1].json
    text, image = body["messages"][-1]["content"]
    assert text == {"type": "text", "text": "What is this?"}
    prefix, _, data = image["image_url"]["url"].partition(",")
    assert image["type"] == "image_url" and prefix == "data:image/png;base64"
    assert base64.b64decode(data) == PNG
    (message,) = await _user_messages(conversation)
    assert [a.uuid for a in message.attachments.all()] == [attachment.uuid]
    thumbnail = f'<img class="message-image" src="/attachments/{attachment.uuid}/"'
    assert thumbnail in page.last("user").html


async def test_an_image_alone_is_a_message(user, fake_provider):
    vision = await database_sync_to_async(ChatModelFactory)(
        name="fake-vision", supports_vision=True
    )
    conversation = await database_sync_to_async(ConversationFactory)(owner=user, chat_model=vision)
    attachment = await _upload(user)
    tab = ChatSocket(conversation, user)
    await tab.connect()
    await tab.send(action="send", message="", idempotency_key="k", attachments=str(attachment.uuid))
    await tab.read_until_reply("complete")
    await tab.close()
    (image,) = fake_provider.chat_requests[-1].json["messages"][-1]["content"]
    assert image["type"] == "image_url"


async def test_a_model_without_vision_refuses_images_and_writes_nothing(
    conversation, fake_provider
):
    attachment = await _upload(conversation.owner)
    tab = ChatSocket(conversation, conversation.owner)
    await tab.connect()
    ids = [str(attachment.uuid)]
    await tab.send(action="send", message="Look", idempotency_key="k", attachments=ids)
    page = await tab.read_until(lambda page: any("cannot see images" in n for n in page.notices))
    await tab.close()
    assert page.last("user") is None
    assert await _user_messages(conversation) == []
    assert not fake_provider.chat_requests
    await database_sync_to_async(attachment.refresh_from_db)()
    assert attachment.message_id is None, "the image can still be sent to a vision model"


def test_another_users_image_is_refused(conversation, other_user):
    conversation.chat_model.supports_vision = True
    conversation.chat_model.save()
    theirs = upload(other_user)
    with pytest.raises(ValidationFailed, match=NOT_YOURS):
        services.message_send(
            conversation=conversation, content="Mine now", attachment_ids=[str(theirs.uuid)]
        )
    assert not conversation.messages.exists()
    theirs.refresh_from_db()
    assert theirs.message_id is None


def test_an_image_already_sent_is_not_sent_again(conversation):
    conversation.chat_model.supports_vision = True
    conversation.chat_model.save()
    mine = upload(conversation.owner)
    services.message_send(conversation=conversation, content="1", attachment_ids=[str(mine.uuid)])
    with pytest.raises(ValidationFailed, match=NOT_YOURS):
        services.message_send(
            conversation=conversation, content="2", attachment_ids=[str(mine.uuid)]
        )


def test_the_no_vision_message_names_vision_models(conversation):
    mine = upload(conversation.owner)
    with pytest.raises(ValidationFailed) as refused:
        services.message_send(conversation=conversation, content="", attachment_ids=[mine.uuid])
    assert refused.value.message == NO_VISION and "qwen3-vl-plus" in NO_VISION


def test_history_images_are_described_to_a_model_without_vision(conversation):
    from conversations.context import IMAGE_OMITTED, IMAGE_TOKENS, context_for_reply

    conversation.chat_model.supports_vision = True
    conversation.chat_model.save()
    mine = upload(conversation.owner)
    sent = services.message_send(
        conversation=conversation, content="See", attachment_ids=[str(mine.uuid)]
    )
    conversation.chat_model.supports_vision = False
    conversation.chat_model.save()
    sent.reply.refresh_from_db()
    context = context_for_reply(sent.reply)
    assert context.messages[-1]["content"] == f"See\n\n{IMAGE_OMITTED}"
    assert context.estimated_tokens > IMAGE_TOKENS


def test_a_request_reads_images_only_for_the_messages_that_have_them(
    conversation, django_assert_num_queries
):
    from conversations.context import RequestThread

    conversation.chat_model.supports_vision = True
    conversation.chat_model.save()
    first = services.message_send(conversation=conversation, content="Hello")
    Message.objects.filter(pk=first.reply.pk).update(status="complete", content="Hi")
    mine = upload(conversation.owner)
    sent = services.message_send(
        conversation=conversation, content="See", attachment_ids=[str(mine.uuid)]
    )
    with django_assert_num_queries(2):  # the thread, then the one message's images
        loaded = {m.id: m.loaded_images for m in RequestThread(conversation, sent.reply.id)}
    assert loaded[sent.user_message.id] == [mine]
    assert loaded[first.user_message.id] == [] == loaded[first.reply.id]


def test_the_thread_page_shows_thumbnails_from_our_own_origin(client, conversation):
    conversation.chat_model.supports_vision = True
    conversation.chat_model.save()
    mine = upload(conversation.owner)
    services.message_send(conversation=conversation, content="Hi", attachment_ids=[str(mine.uuid)])
    client.force_login(conversation.owner)
    html = client.get(f"/c/{conversation.uuid}/").content.decode()
    assert f'<img class="message-image" src="/attachments/{mine.uuid}/"' in html
    assert 'id="attach-input"' in html
