"""A reply in flight: its run, its fan-out to sockets and other processes, and the loops a
serving process keeps beside it.

- `run`: a reply's generation, from the claim to the final save (one asyncio task each).
- `registry`: the replies this process generates, with their whole text so far.
- `fanout`: their updates to every socket, coalesced into fragments.
- `presence`: the other processes (Redis): who watches what, and events to them.
- `remote_sends`: events for other processes, sent by a task of their own (never awaited).
- `saves`: the partial text of every live reply, saved together (their heartbeat).
- `stops`: a stop, wherever the reply is generated.
- `process`: the loops every serving process runs (stale-reply sweeper, stop listener).
- `supervisor`: the one place a background loop is started.

- `rendering`: the final HTML's renderer, handed over by the presentation layer.
- `threads`: where database work runs (the thread pool, not the shared sync thread).
- `events`: channel-layer group names and event types.

Imports run one way: transports (consumer, views) -> live -> services / selectors -> models.
"""
