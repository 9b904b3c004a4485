"""The one place a process's background loops are started.

Each loop belongs to an event loop (tests run many; daphne runs one and no ASGI lifespan
hook, so loops start when first needed, not at start-up). Every loop goes through `ensure`:
started at most once per event loop, in a fresh context (a loop started from an HTTP
request must not inherit that request's asgiref executor, gone once the response is sent),
held by a strong reference (the event loop holds tasks only weakly), and started again if it
ended. A loop may end by itself when it has nothing to do; the next `ensure` restarts it.

The loops: the stale-reply sweeper and the stop listener (`live.process`), the fragment
ticker and the watcher renewal (`live.fanout`), the sender of events for other processes
(`live.remote_sends`), the partial saver and its lookup of who watches elsewhere
(`live.saves`) and the read-timeout watch of provider streams (`providers.timeouts`).
"""

import asyncio
import contextvars
import weakref
from collections.abc import Callable, Coroutine
from typing import Any

LoopFactory = Callable[[], Coroutine[Any, Any, None]]


class Supervisor:
    def __init__(self) -> None:
        self._tasks: weakref.WeakKeyDictionary[
            asyncio.AbstractEventLoop, dict[str, asyncio.Task[None]]
        ] = weakref.WeakKeyDictionary()

    def ensure(self, name: str, factory: LoopFactory) -> asyncio.Task[None]:
        """The running loop `name` of this event loop, started from `factory` if it is not."""
        loop = asyncio.get_running_loop()
        tasks = self._tasks.get(loop)
        if tasks is None:
            tasks = self._tasks[loop] = {}
        task = tasks.get(name)
        if task is None or task.done():
            task = tasks[name] = loop.create_task(factory(), context=contextvars.Context())
        return task

    def running(self, name: str) -> asyncio.Task[None] | None:
        """The loop `name` of this event loop, if it was started."""
        return (self._tasks.get(asyncio.get_running_loop()) or {}).get(name)

    def reset(self) -> None:
        """Forget every loop (tests run many event loops in one process)."""
        self._tasks = weakref.WeakKeyDictionary()


supervisor = Supervisor()
