"""ASGI entry point: HTTP through Django, websockets through Channels.

The socket stack checks the page's full origin (chatsite/socket_origin.py: a page on another
site, or on another port of this host, cannot open a chat socket with the user's cookie) and
loads the session user.
"""

import gc
import os
import sys

from django.core.asgi import get_asgi_application

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "chatsite.settings")
django_asgi_app = get_asgi_application()

# Below: these need Django set up first.
from channels.auth import AuthMiddleware  # noqa: E402
from channels.routing import ProtocolTypeRouter, URLRouter  # noqa: E402
from channels.sessions import (  # noqa: E402
    CookieMiddleware,
    InstanceSessionWrapper,
    SessionMiddleware,
)

from chatsite import direct_writes, form_bodies, frame_logging  # noqa: E402
from chatsite.socket_origin import SameOriginValidator  # noqa: E402
from conversations.routing import websocket_urlpatterns  # noqa: E402


class SocketSessionMiddleware(SessionMiddleware):
    """Channels' SessionMiddleware without its wrapper around `send`. A chat socket reads
    the session (to know its user) and never changes it, yet the wrapper checked the lazy
    session on every frame sent: ~3% of a busy server's CPU."""

    async def __call__(self, scope, receive, send):
        wrapper = InstanceSessionWrapper(scope, send)
        await wrapper.resolve_session()
        return await self.inner(wrapper.scope, receive, send)


application = ProtocolTypeRouter(
    {
        "http": django_asgi_app,
        "websocket": SameOriginValidator(
            CookieMiddleware(
                # The stubs want patterns typed as ASGI routes; path() gives views (see routing.py).
                SocketSessionMiddleware(
                    AuthMiddleware(URLRouter(websocket_urlpatterns))  # type: ignore[arg-type]
                )
            )
        ),
    }
)


GC_THRESHOLDS = (700, 10, 100)


def _settle_for_long_running() -> None:
    """Tune the interpreter for one process holding hundreds of sockets.

    gc.freeze(): everything loaded so far (Django, the app, templates' code) lives as long as
    the process, yet every full collection walked it again; with it out of the way a full
    collection under load fell from 100-230 ms to under 100 ms, and each was a stall of
    every stream in the process.

    Collections less often: by default a full collection ran every few seconds under load
    (16 in a minute and a half of two busy processes, up to 260 ms each), each one a stall
    of every stream in the process and enough on its own to push the delta p99 past 250 ms.
    A full collection after 100 middle ones rather than 10 makes them minutes apart under
    load; young and middle collections keep their defaults, so short-lived cycles still go
    at once (young ones every 50,000 allocations held a 10 MiB reply's garbage: +129 MiB).

    A 0.5 ms GIL switch interval: the ORM runs on worker threads beside the event loop, and
    after each socket write the loop waited up to the default 5 ms to get the GIL back from
    a worker (the convoy effect), so busy servers showed latency with idle CPU.
    """
    gc.freeze()
    gc.set_threshold(*GC_THRESHOLDS)
    sys.setswitchinterval(0.0005)


_settle_for_long_running()
# Under daphne, websocket frames go to the socket at once, and autobahn formats its debug
# highlighting only for a debug line actually written (see the modules).
direct_writes.install()
frame_logging.install()
# Under daphne, request bodies are parsed by Django alone (see the module).
form_bodies.install()
