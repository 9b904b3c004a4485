"""Stopping a reply in flight, wherever it is generated."""

from channels.db import database_sync_to_async

from conversations import selectors, services
from conversations.live.fanout import fanout
from conversations.live.presence import presence
from conversations.live.registry import registry
from conversations.models import Conversation


async def stop_reply(*, conversation: Conversation) -> None:
    """Stop whatever reply is in flight in `conversation`; the text so far is kept."""
    live = registry.live_in_conversation(str(conversation.uuid))
    if live is not None and registry.cancel(live.uuid):
        return
    reply = await database_sync_to_async(selectors.conversation_in_flight_reply)(conversation)
    if reply is None:
        return
    if presence().shared and not await database_sync_to_async(selectors.reply_is_stale)(reply):
        # Another process owns it: its stop listener cancels the task there.
        await presence().send_stop(str(reply.uuid))
        return
    ended = await database_sync_to_async(services.reply_cancel_orphan)(reply=reply)
    if ended is not None:
        await fanout.publish_final(ended)
