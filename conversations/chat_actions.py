"""What a user does to a conversation, for the websocket consumer and the views alike.

Each call is one service call plus what must follow it in this process: the HTML every open
socket shows (rendered here, by the presentation layer), and the reply started or stopped
(conversations.live).
"""

from typing import cast
from uuid import uuid4

from channels.db import database_sync_to_async
from django.utils.translation import gettext as _

from conversations import pages, presenters, selectors, services
from conversations.context import ReplyContext
from conversations.errors import ChatError, ValidationFailed
from conversations.live import run
from conversations.live.fanout import fanout
from conversations.live.threads import on_worker_thread
from conversations.models import Conversation, Message
from conversations.providers import catalogue


async def send_message(
    *,
    conversation: Conversation,
    content: str,
    idempotency_key: str | None,
    attachment_ids: list[str] | None = None,
) -> services.SentMessage:
    def _send() -> tuple[services.SentMessage, str, ReplyContext | None]:
        # Fresh: a socket's copy is as old as the socket, and the settings may have changed.
        # The same query answers the budget, in-flight and idempotency checks.
        current = selectors.conversation_for_send(conversation, idempotency_key=idempotency_key)
        sent = services.message_send(
            conversation=current,
            content=content,
            idempotency_key=idempotency_key,
            attachment_ids=attachment_ids,
        )
        if not sent.created:
            return sent, "", None
        if not attachment_ids:
            sent.user_message.loaded_images = []  # nothing attached: no query to find out
        reply = cast(Message, sent.reply)  # created: the reply was written with it
        html = pages.messages_appended_html([sent.user_message, reply])
        return sent, html, run.claim_on_send(reply)

    sent, html, claimed = await on_worker_thread(_send)()
    if sent.created:
        reply = cast(Message, sent.reply)  # created: the reply was written with it
        messages = [sent.user_message, reply]
        await fanout.publish_messages(str(conversation.uuid), html, [str(m.uuid) for m in messages])
        _start(conversation, reply, claimed)
    return sent


async def start_conversation(
    *,
    owner,
    chat_model_id: int | None,
    first_message: str,
    idempotency_key: str | None,
    attachment_ids: list[str] | None = None,
    thinking: bool = False,
    json_mode: bool = False,
) -> Conversation:
    """A new conversation with the chosen model; its first message (its text, its images
    or both), if any, is sent."""

    def _create() -> Conversation:
        chat_model = catalogue.chat_model_get_available(chat_model_id)
        if chat_model is None:
            raise ValidationFailed(_("Choose one of the available models."))
        return services.conversation_create(
            owner=owner, chat_model=chat_model, thinking=thinking, json_mode=json_mode
        )

    conversation = await database_sync_to_async(_create)()
    if first_message or attachment_ids:
        try:
            await send_message(
                conversation=conversation,
                content=first_message,
                idempotency_key=idempotency_key,
                attachment_ids=attachment_ids,
            )
        except ChatError:
            # Refused (budget, rate limit, bad input, images for a model without vision):
            # nothing is left behind, and the images, never claimed, are still the user's
            # to send.
            await database_sync_to_async(services.conversation_discard_unused)(
                conversation=conversation
            )
            raise
    return conversation


def _message_in(conversation: Conversation, uuid: str) -> Message:
    """A message of this conversation, with the conversation as the database has it now."""
    message = selectors.message_in_conversation_or_none(conversation, uuid)
    if message is None:
        raise ValidationFailed(_("That message is not in this conversation."))
    message.conversation = selectors.conversation_fresh(conversation)
    return message


async def _replace_thread(conversation: Conversation) -> None:
    """Show every socket the branch now on screen (after an edit, a regeneration or a
    switch between versions), from its latest page, with that branch's context gauge."""

    def _render() -> tuple[str, list[str]]:
        page = pages.latest_page(conversation)
        html = presenters.render_thread_replaced(page) + pages.gauge_html(conversation, oob=True)
        return html, [str(m.uuid) for m in page.messages]

    html, uuids = await database_sync_to_async(_render)()
    # A token of its own: a socket that has seen every one of these messages (paging back
    # to a version it showed before) must still swap the thread.
    await fanout.publish_messages(str(conversation.uuid), html, [*uuids, f"thread:{uuid4()}"])


def _start(
    conversation: Conversation,
    reply: Message,
    claimed: ReplyContext | None = None,
    *,
    continuing: bool = False,
) -> None:
    run.start_reply(
        reply_id=reply.id,
        reply_uuid=str(reply.uuid),
        conversation_uuid=str(conversation.uuid),
        reply=reply,
        claimed=claimed,
        continuing=continuing,
    )


async def retry_reply(*, conversation: Conversation, reply_uuid: str) -> Message:
    """Answer the same message again (Retry on an error, Regenerate on the last reply);
    the earlier reply stays as a sibling version."""

    def _retry() -> Message:
        return services.reply_retry(reply=_message_in(conversation, reply_uuid))

    new_reply = await database_sync_to_async(_retry)()
    await _replace_thread(conversation)
    _start(conversation, new_reply)
    return new_reply


async def continue_reply(*, conversation: Conversation, reply_uuid: str) -> Message:
    """Continue a reply cut off by its length limit: the same reply streams on from its
    text, on every socket, like any reply (stop, reload and resume alike)."""

    def _continue() -> Message:
        return services.reply_continue(reply=_message_in(conversation, reply_uuid))

    reply = await database_sync_to_async(_continue)()
    _start(conversation, reply, continuing=True)
    return reply


async def edit_message(*, conversation: Conversation, message_uuid: str, content: str) -> Message:
    """Send a new version of a user message and answer it; the branch on screen follows."""

    def _edit() -> services.SentMessage:
        return services.message_edit(
            message=_message_in(conversation, message_uuid), content=content
        )

    sent = await database_sync_to_async(_edit)()
    reply = cast(Message, sent.reply)  # an edit always writes a new reply
    await _replace_thread(conversation)
    _start(conversation, reply)
    return reply


async def switch_branch(*, conversation: Conversation, message_uuid: str) -> None:
    """Page to another version of a turn: the thread through it replaces the one shown."""

    def _switch() -> None:
        message = _message_in(conversation, message_uuid)
        services.conversation_switch_branch(conversation=message.conversation, message=message)

    await database_sync_to_async(_switch)()
    await _replace_thread(conversation)
