"""Per-process background work: the stale-reply sweeper and the cross-process stop listener.

Started lazily by the first socket or request that needs generation, because daphne runs no
ASGI lifespan hook.
"""

import asyncio
import contextvars
import logging
import weakref
from typing import cast

from channels.db import database_sync_to_async
from channels.layers import BaseChannelLayer, get_channel_layer
from django.conf import settings

from conversations import events, generation, services
from conversations.chat import publish_final
from conversations.hub import hub

log = logging.getLogger(__name__)

_started_loops: "weakref.WeakSet[asyncio.AbstractEventLoop]" = weakref.WeakSet()
_tasks: set[asyncio.Task] = set()


def ensure_started() -> None:
    loop = asyncio.get_running_loop()
    if loop in _started_loops:
        return
    _started_loops.add(loop)
    _spawn(_sweep_forever(first_sweep_everything=not settings.REDIS_URL))
    if settings.REDIS_URL:
        _spawn(_listen_for_stops())


def _spawn(coro) -> None:
    task = asyncio.get_running_loop().create_task(coro, context=contextvars.Context())
    _tasks.add(task)  # keep a reference: the loop holds tasks only weakly
    task.add_done_callback(_tasks.discard)


async def sweep(*, everything: bool = False) -> int:
    """End replies nobody generates any more, and tell their sockets."""
    ended = await database_sync_to_async(services.reply_interrupt_stale)(
        everything=everything, live_ids=hub.live_ids()
    )
    for reply in ended:
        await publish_final(reply)
    return len(ended)


async def _sweep_forever(*, first_sweep_everything: bool) -> None:
    # Alone (no Redis), this process owns every reply: any in flight at start-up is dead.
    everything = first_sweep_everything
    while True:
        try:
            await sweep(everything=everything)
        except Exception:
            log.exception("sweeping stale replies failed")
        everything = False
        await asyncio.sleep(settings.STREAM_STALE_AFTER / 2)


async def _listen_for_stops() -> None:
    layer = cast(BaseChannelLayer, get_channel_layer())  # settings always name one
    channel = await layer.new_channel()
    while True:
        try:
            await layer.group_add(events.GENERATORS_GROUP, channel)
            while True:
                message = await layer.receive(channel)
                if message.get("type") == events.REPLY_CANCEL:
                    generation.cancel_local(message["reply"])
        except Exception:
            # channels-redis can turn our own cancellation into a Redis error: tell them apart.
            if cast(asyncio.Task, asyncio.current_task()).cancelling():
                raise
            log.warning("stop listener lost the channel layer; retrying", exc_info=True)
            await asyncio.sleep(1)
