"""The other server processes: which conversations they watch, and how an event reaches them.

With Redis (REDIS_URL), several processes share the conversations: each announces the ones
its sockets watch in a Redis set per conversation (`chatsite:watch:<uuid>`), and events for
another process's sockets go through the channel layer. Alone (no REDIS_URL), this process
owns every socket and every reply, and each of these calls does nothing. The choice is made
here, once per process (`presence()`), and nowhere else.
"""

import logging
import os
import uuid
from typing import cast

# At import, not at the first socket: importing the client (and the metrics modules it
# loads) took ~100 ms on the event loop, a stall of every stream in the process.
import redis.asyncio as redis
from channels.layers import BaseChannelLayer, get_channel_layer
from django.conf import settings

from conversations.live import events

log = logging.getLogger(__name__)

# Identifies this process in the watcher sets and on events it sends itself through Redis.
PROCESS_ID = f"{os.getpid()}-{uuid.uuid4().hex[:8]}"
WATCH_TTL_SECONDS = 3600

# Which of KEYS (watcher sets) hold a process other than ARGV[1], as 1-based positions: one
# command however many conversations, where a pipeline of SMEMBERS cost ~0.1 ms of client
# CPU per conversation.
WATCHED_ELSEWHERE = """
local found = {}
for index, key in ipairs(KEYS) do
  for _, member in ipairs(redis.call('SMEMBERS', key)) do
    if member ~= ARGV[1] then
      found[#found + 1] = index
      break
    end
  end
end
return found
"""


def _layer() -> BaseChannelLayer:
    return cast(BaseChannelLayer, get_channel_layer())  # the settings always name one


def _watch_key(conversation_uuid: str) -> str:
    return f"chatsite:watch:{conversation_uuid}"


class LonePresence:
    """The only process: nobody else watches, nothing goes anywhere."""

    # Whether other processes may exist (and may own replies this one does not).
    shared = False

    async def join(self, conversation_uuid: str, channel_name: str) -> None:
        """Let a socket of this process hear events other processes send its conversation."""

    async def leave(self, conversation_uuid: str, channel_name: str) -> None:
        pass

    async def watch(self, conversation_uuid: str) -> None:
        """Announce that a socket of this process watches `conversation_uuid`."""

    async def unwatch(self, conversation_uuid: str) -> None:
        pass

    async def renew(self, conversation_uuids: list[str]) -> None:
        """Keep this process's announcements from expiring while its sockets stay open."""

    async def watched_elsewhere(self, conversation_uuids: list[str]) -> set[str]:
        """Which of these conversations a socket in another process watches."""
        return set()

    async def send(self, conversation_uuid: str, event: dict) -> None:
        """`event` to the sockets of other processes watching `conversation_uuid`."""

    async def send_stop(self, reply_uuid: str) -> None:
        """Ask whichever process generates `reply_uuid` to stop it."""


class RedisPresence(LonePresence):
    shared = True

    def __init__(self, redis_url: str) -> None:
        # Hundreds of sockets connecting at once must queue for a connection, not fail with
        # "Too many connections" as redis-py's default pool does past 100.
        pool = redis.BlockingConnectionPool.from_url(redis_url, max_connections=50, timeout=10)
        self._redis = redis.Redis(connection_pool=pool)
        self._watched_script = self._redis.register_script(WATCHED_ELSEWHERE)

    async def join(self, conversation_uuid: str, channel_name: str) -> None:
        group = events.conversation_group(conversation_uuid)
        await _layer().group_add(group, channel_name)

    async def leave(self, conversation_uuid: str, channel_name: str) -> None:
        group = events.conversation_group(conversation_uuid)
        await _layer().group_discard(group, channel_name)

    async def watch(self, conversation_uuid: str) -> None:
        try:
            await self.renew([conversation_uuid])
        except Exception:
            log.warning("could not record a watcher in Redis", exc_info=True)

    async def unwatch(self, conversation_uuid: str) -> None:
        try:
            await self._redis.srem(_watch_key(conversation_uuid), PROCESS_ID)
        except Exception:
            log.warning("could not record a watcher in Redis", exc_info=True)

    async def renew(self, conversation_uuids: list[str]) -> None:
        async with self._redis.pipeline(transaction=False) as pipe:
            for conversation_uuid in conversation_uuids:
                pipe.sadd(_watch_key(conversation_uuid), PROCESS_ID)
                pipe.expire(_watch_key(conversation_uuid), WATCH_TTL_SECONDS)
            await pipe.execute()

    async def watched_elsewhere(self, conversation_uuids: list[str]) -> set[str]:
        """One round trip to Redis for all of them."""
        if not conversation_uuids:
            return set()
        try:
            keys = [_watch_key(conversation_uuid) for conversation_uuid in conversation_uuids]
            found = await self._watched_script(keys=keys, args=[PROCESS_ID])
        except Exception:
            return set(conversation_uuids)  # unsure: better extra events than a missed tab
        return {conversation_uuids[index - 1] for index in found}

    async def send(self, conversation_uuid: str, event: dict) -> None:
        event["origin"] = PROCESS_ID
        try:
            await _layer().group_send(events.conversation_group(conversation_uuid), event)
        except Exception:
            log.warning("channel layer unavailable; other processes miss an update", exc_info=True)

    async def send_stop(self, reply_uuid: str) -> None:
        await _layer().group_send(
            events.GENERATORS_GROUP, {"type": events.REPLY_CANCEL, "reply": reply_uuid}
        )


_presence: LonePresence | None = None


def presence() -> LonePresence:
    """This process's presence, chosen from REDIS_URL at its first use."""
    global _presence
    if _presence is None:
        _presence = RedisPresence(settings.REDIS_URL) if settings.REDIS_URL else LonePresence()
    return _presence


def reset_presence() -> None:
    """Choose again at the next use (tests change settings and event loops)."""
    global _presence
    _presence = None
