"""What every open page of a user hears about their conversations, whichever tab, process or
background job changed them.

Each socket of a user (a chat page's, or the socket of a page without a chat) joins the
user's channel-layer group, `user-<id>`. Services call the functions below inside their
transaction; the event leaves once it commits, and never after a rollback. An event names
what changed, not how it looks: each socket reads the conversation afresh and renders its
own pieces (conversations/user_pushes.py), so events arriving out of order still end on
the truth. The group is the user's own: no other user's socket is ever in it.
"""

import asyncio
import logging
from enum import StrEnum
from typing import Any
from uuid import UUID

from asgiref.sync import async_to_sync
from channels.layers import get_channel_layer
from django.db import transaction

log = logging.getLogger(__name__)

# Event types; a socket's handler has the same name with dots as underscores.
CONVERSATION_CHANGED = "conversation.changed"
SUMMARY_CHANGED = "summary.changed"
CONTROLS_CHANGED = "controls.changed"


class Change(StrEnum):
    """What happened to a conversation (the sidebar list or its item is re-sent)."""

    CREATED = "created"  # also an import's batch: the list is re-sent whole
    RENAMED = "renamed"  # by the user, or a generated title
    ARCHIVED = "archived"
    UNARCHIVED = "unarchived"
    DELETED = "deleted"
    # Active again (a message sent) while another chat was above it: only its item moves,
    # to the top of Today (the list is not re-sent for every message).
    MOVED = "moved"


def user_group(user_id: int) -> str:
    return f"user-{user_id}"


def conversation_changed(*, user_id: int, conversation_uuid: UUID | str, change: Change) -> None:
    """Tell the user's pages, once the current transaction commits."""
    event = {"type": CONVERSATION_CHANGED, "conversation": str(conversation_uuid), "change": change}
    transaction.on_commit(lambda: send(user_id, event))


def summary_changed(
    *, user_id: int, conversation_uuid: UUID | str, summary_id: int | None = None
) -> None:
    """A summary was written (`summary_id`), or taken away to be written again (None)."""
    event = {
        "type": SUMMARY_CHANGED,
        "conversation": str(conversation_uuid),
        "summary": summary_id,
    }
    transaction.on_commit(lambda: send(user_id, event))


def controls_changed(*, user_id: int, conversation_uuid: UUID | str) -> None:
    """The conversation's model, thinking or JSON switch changed: its open pages show them."""
    event = {"type": CONTROLS_CHANGED, "conversation": str(conversation_uuid)}
    transaction.on_commit(lambda: send(user_id, event))


# --- delivery ------------------------------------------------------------------------

# The event loop this process's sockets run on, once one has connected. The in-memory layer
# (the embedded default) is plain asyncio queues, safe only on that loop: a send from a
# background job's thread is handed to it rather than run on a loop of the thread's own.
_sockets_loop: asyncio.AbstractEventLoop | None = None
# Sends started on the sockets' loop, kept until done (the loop holds tasks only weakly).
_pending: set[asyncio.Task] = set()


def sockets_served_on(loop: asyncio.AbstractEventLoop) -> None:
    """Called by every socket as it connects (tests run many loops: the latest wins)."""
    global _sockets_loop
    _sockets_loop = loop


def send(user_id: int, event: dict[str, Any]) -> None:
    """`event` to every socket of the user, in this process and (through Redis) others,
    from any thread. Never raises: a page missing an event is not worth a failed request."""
    if get_channel_layer() is None:
        return
    loop = _sockets_loop
    try:
        running: asyncio.AbstractEventLoop | None = asyncio.get_running_loop()
    except RuntimeError:  # the usual case: a request's or a job's thread
        running = None
    if loop is not None and loop.is_running() and not loop.is_closed():
        if running is loop:
            task = loop.create_task(_deliver(user_id, event))
            _pending.add(task)
            task.add_done_callback(_pending.discard)
        else:
            asyncio.run_coroutine_threadsafe(_deliver(user_id, event), loop)
    elif running is not None:  # no socket here yet, on a loop (a test driving a browser)
        task = running.create_task(_deliver(user_id, event))
        _pending.add(task)
        task.add_done_callback(_pending.discard)
    else:  # no socket in this process (a Celery worker): straight to the shared layer
        async_to_sync(_deliver)(user_id, event)


async def _deliver(user_id: int, event: dict[str, Any]) -> None:
    layer = get_channel_layer()
    try:
        await layer.group_send(user_group(user_id), event)  # type: ignore[union-attr]
    except Exception:
        log.warning("channel layer unavailable; open pages miss an update", exc_info=True)
