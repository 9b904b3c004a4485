"""The middleware that counts HTTP responses by method and status class, and times them."""

import time
from collections.abc import Callable
from typing import Any

from asgiref.sync import iscoroutinefunction
from django.http import HttpRequest, HttpResponseBase
from django.utils.decorators import sync_and_async_middleware

from conversations.observability import metrics


@sync_and_async_middleware
def count_responses(get_response: Callable[[HttpRequest], Any]) -> Callable:
    # Django runs the chain async under daphne and sync under the test client: one of each.
    if iscoroutinefunction(get_response):

        async def count_async(request: HttpRequest) -> HttpResponseBase:
            started = time.monotonic()
            response = await get_response(request)
            _count(request, response, started)
            return response

        return count_async

    def count(request: HttpRequest) -> HttpResponseBase:
        started = time.monotonic()
        response = get_response(request)
        _count(request, response, started)
        return response

    return count


def _count(request: HttpRequest, response: HttpResponseBase, started: float) -> None:
    metrics.http_responded(
        method=request.method or "", status=response.status_code, started=started
    )
