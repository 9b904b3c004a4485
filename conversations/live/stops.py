"""Stopping a reply in flight, wherever it is generated."""

import asyncio
import time

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


# How often a stop of another process's reply looks for its final save.
REMOTE_SAVE_CHECK_SECONDS = 0.05


async def stop_reply_and_wait(*, conversation: Conversation, timeout: float) -> None:
    """Stop the reply in flight and wait, at most `timeout` seconds, until it is saved with
    its usage (before its conversation is deleted, say). A reply of this process is waited
    for on its task; one of another process, in the database, where its final save shows. A
    generator that does not answer in time (a dead process) is not waited for."""
    live = registry.live_in_conversation(str(conversation.uuid))
    await stop_reply(conversation=conversation)
    if live is not None and live.task is not None:
        await asyncio.wait({live.task}, timeout=timeout)
        return
    in_flight = database_sync_to_async(selectors.conversation_in_flight_reply)
    deadline = time.monotonic() + timeout
    while await in_flight(conversation) is not None and time.monotonic() < deadline:
        await asyncio.sleep(REMOTE_SAVE_CHECK_SECONDS)
