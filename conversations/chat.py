"""Async entry points shared by the websocket consumer and the views.

Each call is one service call plus what must follow it in this process: tell every open
socket, start or stop the generator.
"""

from channels.db import database_sync_to_async
from channels.layers import get_channel_layer
from django.conf import settings

from conversations import events, generation, presenters, selectors, services
from conversations.errors import ValidationFailed
from conversations.hub import hub
from conversations.models import Conversation, Message


async def _announce_and_start(conversation: Conversation, messages: list[Message]) -> None:
    html = await database_sync_to_async(presenters.render_messages_appended)(messages)
    await hub.publish_messages(str(conversation.uuid), html, [str(m.uuid) for m in messages])
    reply = messages[-1]
    generation.start_reply(
        reply_id=reply.id,
        reply_uuid=str(reply.uuid),
        conversation_uuid=str(conversation.uuid),
        reply=reply,
    )


async def send_message(
    *,
    conversation: Conversation,
    content: str,
    idempotency_key: str | None,
    attachment_ids: list[str] | None = None,
) -> services.SentMessage:
    def _send() -> services.SentMessage:
        # Fresh: a socket's copy is as old as the socket, and the settings may have changed.
        current = selectors.conversation_fresh(conversation)
        return services.message_send(
            conversation=current,
            content=content,
            idempotency_key=idempotency_key,
            attachment_ids=attachment_ids,
        )

    sent = await database_sync_to_async(_send)()
    if sent.created:
        await _announce_and_start(conversation, [sent.user_message, sent.reply])
    return sent


async def start_conversation(
    *, owner, chat_model_id: int | None, first_message: str, idempotency_key: str | None
) -> Conversation:
    """A new conversation with the chosen model; its first message, if any, is sent."""

    def _create() -> Conversation:
        chat_model = selectors.chat_model_get_available(chat_model_id)
        if chat_model is None:
            raise ValidationFailed("Choose one of the available models.")
        return services.conversation_create(owner=owner, chat_model=chat_model)

    conversation = await database_sync_to_async(_create)()
    if first_message:
        await send_message(
            conversation=conversation, content=first_message, idempotency_key=idempotency_key
        )
    return conversation


async def retry_reply(*, conversation: Conversation, reply_uuid: str) -> Message:
    def _retry() -> Message:
        reply = selectors.message_get_in_conversation(conversation, reply_uuid)
        reply.conversation = selectors.conversation_fresh(conversation)
        return services.reply_retry(reply=reply)

    new_reply = await database_sync_to_async(_retry)()
    await _announce_and_start(conversation, [new_reply])
    return new_reply


async def stop_reply(*, conversation: Conversation) -> None:
    """Stop whatever reply is in flight in `conversation`, wherever it is generated."""
    live = hub.live_in_conversation(str(conversation.uuid))
    if live is not None and generation.cancel_local(live.uuid):
        return
    reply = await database_sync_to_async(selectors.conversation_in_flight_reply)(conversation)
    if reply is None:
        return
    if settings.REDIS_URL and not await database_sync_to_async(selectors.reply_is_stale)(reply):
        # Another process owns it: its control listener cancels the task there.
        await get_channel_layer().group_send(
            events.GENERATORS_GROUP, {"type": events.REPLY_CANCEL, "reply": str(reply.uuid)}
        )
        return
    ended = await database_sync_to_async(services.reply_cancel_orphan)(reply=reply)
    if ended is not None:
        await publish_final(ended)


async def publish_final(reply: Message) -> None:
    """Tell every socket that a reply ended outside a generator (a sweep, an orphan stop)."""

    def _render() -> tuple[str, presenters.ReplyState]:
        html = presenters.render_message_html(reply)
        return str(reply.conversation.uuid), presenters.final_state(reply, html)

    conversation_uuid, state = await database_sync_to_async(_render)()
    await hub.publish_state(conversation_uuid, state)
