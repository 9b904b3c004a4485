"""The loops every serving process runs beside its replies: the stale-reply sweeper (which
also fails import jobs whose worker died), the listener for stops aimed at replies of this
process, and the read-timeout watch of provider streams. `start()` is called by every
socket and every reply that starts (daphne runs no ASGI lifespan hook); the supervisor
starts each loop once per event loop."""

import asyncio
import logging
from typing import cast

from channels.db import database_sync_to_async
from channels.layers import BaseChannelLayer, get_channel_layer
from django.conf import settings

from conversations import services
from conversations.live import events
from conversations.live.fanout import fanout
from conversations.live.presence import presence, reset_presence
from conversations.live.registry import registry
from conversations.live.supervisor import supervisor
from conversations.providers import timeouts

log = logging.getLogger(__name__)


def start() -> None:
    # Alone (no Redis), this process owns every reply: any in flight at start-up is dead.
    shared = presence().shared
    supervisor.ensure("stale-sweeper", lambda: _sweep_forever(first_sweep_everything=not shared))
    if shared:
        supervisor.ensure("stop-listener", _listen_for_stops)
    supervisor.ensure("stream-read-timeouts", timeouts.watch_of_loop().run)


async def stop_listening(timeout: float = 5) -> None:
    """End this event loop's stop listener by a message, not a cancellation: cancelled in
    the middle of channels-redis's blocking read, its receive could hang the event loop's
    shutdown for minutes (a test's loop closes after every test; daphne's never does)."""
    channel = _listener_channels.pop(asyncio.get_running_loop(), None)
    if channel is None:
        return
    layer = cast(BaseChannelLayer, get_channel_layer())
    await layer.send(channel, {"type": STOP_LISTENING})
    listener = supervisor.running("stop-listener")
    if listener is not None:
        await asyncio.wait([listener], timeout=timeout)


def reset() -> None:
    """Forget this process's live state (tests run many event loops in one process)."""
    fanout.reset()
    registry.reset()
    reset_presence()
    supervisor.reset()


async def sweep(*, everything: bool = False) -> int:
    """End replies nobody generates any more, and tell their sockets."""
    ended = await database_sync_to_async(services.reply_interrupt_stale)(
        everything=everything, live_ids=registry.live_ids()
    )
    for reply in ended:
        await fanout.publish_final(reply)
    return len(ended)


async def _sweep_forever(*, first_sweep_everything: bool) -> None:
    everything = first_sweep_everything
    while True:
        try:
            await sweep(everything=everything)
        except Exception:
            log.exception("sweeping stale replies failed")
        try:
            # The process's one periodic housekeeping loop: a job's worker dies the same
            # deaths a reply's generator does, and is noticed the same way, by its heartbeat.
            await database_sync_to_async(services.import_jobs_fail_stale)()
        except Exception:
            log.exception("sweeping stale import jobs failed")
        everything = False
        await asyncio.sleep(settings.STREAM_STALE_AFTER / 2)


# The stop listener's channel, by event loop: stop_listening() wakes it there.
_listener_channels: dict[asyncio.AbstractEventLoop, str] = {}
STOP_LISTENING = "process.stop_listening"


async def _listen_for_stops() -> None:
    layer = cast(BaseChannelLayer, get_channel_layer())  # settings always name one
    channel = await layer.new_channel()
    _listener_channels[asyncio.get_running_loop()] = channel
    while True:
        try:
            await layer.group_add(events.GENERATORS_GROUP, channel)
            while True:
                message = await layer.receive(channel)
                if message.get("type") == events.REPLY_CANCEL:
                    registry.cancel(message["reply"])
                elif message.get("type") == STOP_LISTENING:
                    await layer.group_discard(events.GENERATORS_GROUP, channel)
                    return
        except Exception:
            # channels-redis can turn our own cancellation into a Redis error: tell them apart.
            task = asyncio.current_task()
            if task is not None and task.cancelling():
                raise
            log.warning("stop listener lost the channel layer; retrying", exc_info=True)
            await asyncio.sleep(1)
