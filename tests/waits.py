"""Waiting on a condition instead of sleeping a fixed time: the wait ends as soon as the
condition holds, and a condition that never holds fails the test with a message."""

import asyncio
import inspect
import time


def wait_until(predicate, *, timeout: float = 10.0, interval: float = 0.05, message: str = ""):
    """Poll `predicate()` until it returns something truthy, and return that.

    Raises AssertionError (with `message`) when `timeout` seconds pass first.
    """
    deadline = time.monotonic() + timeout
    while True:
        if result := predicate():
            return result
        if time.monotonic() >= deadline:
            raise AssertionError(message or f"condition not reached in {timeout} s")
        time.sleep(interval)


async def wait_until_async(
    predicate, *, timeout: float = 10.0, interval: float = 0.02, message: str = ""
):
    """`wait_until` for async tests: `predicate()` may return a value or an awaitable, and
    the event loop runs on between polls."""
    deadline = time.monotonic() + timeout
    while True:
        result = predicate()
        if inspect.isawaitable(result):
            result = await result
        if result:
            return result
        if time.monotonic() >= deadline:
            raise AssertionError(message or f"condition not reached in {timeout} s")
        await asyncio.sleep(interval)


def wait_for_socket(page, *, timeout: float = 10_000) -> None:
    """Wait until the chat page's socket is open: static/js/chatsite.js marks the element
    holding it with data-socket="open" once the socket has opened and the sync request has
    gone out. The server answers that sync before anything the page sends afterwards, so a
    message sent from now on lands on a synced, subscribed socket."""
    from playwright.sync_api import expect

    expect(page.locator("[ws-connect]")).to_have_attribute("data-socket", "open", timeout=timeout)
