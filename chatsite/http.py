"""What middleware and login_required add to a request, spelled out for the type checker;
and a streamed body that stays streamed under ASGI."""

from collections.abc import AsyncIterator, Generator
from typing import TypeVar

from asgiref.sync import sync_to_async
from django.contrib.auth.models import User
from django.core.handlers.asgi import ASGIRequest
from django.http import HttpRequest
from django_htmx.middleware import HtmxDetails


class AuthenticatedHttpRequest(HttpRequest):
    """A request to a login_required view: `user` is signed in (never AnonymousUser), and
    HtmxMiddleware (in every request's MIDDLEWARE) has set `htmx`."""

    user: User
    htmx: HtmxDetails


Block = TypeVar("Block", str, bytes)


async def _async_blocks(blocks: Generator[Block, None, None]) -> AsyncIterator[Block]:
    """Under ASGI, Django buffers a synchronous iterator whole before sending it; pulling
    block by block through sync_to_async keeps the body streamed (and its queries in the
    request's database thread)."""
    take = sync_to_async(next, thread_sensitive=True)
    try:
        # sync_to_async keeps only the first overload of next(), the one without a default.
        while (block := await take(blocks, None)) is not None:  # type: ignore[call-arg]
            yield block
    finally:
        # A client that leaves early: close the generator so its server-side cursors close.
        await sync_to_async(blocks.close, thread_sensitive=True)()


def streamed_body(
    request: HttpRequest, blocks: Generator[Block, None, None]
) -> Generator[Block, None, None] | AsyncIterator[Block]:
    """`blocks` as a StreamingHttpResponse should get them for this request's handler."""
    return _async_blocks(blocks) if isinstance(request, ASGIRequest) else blocks
