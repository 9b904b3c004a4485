"""The sidebar's actions (rename, archive, unarchive, delete), the archived list and search.

htmx requests get pieces: the renamed item (plus the chat title when that conversation is on
screen), or the refreshed conversation list out of band. Without htmx they redirect (or, for
search and the archived list, render a page), so nothing depends on JavaScript to work.
"""

from typing import cast
from urllib.parse import urlsplit

from asgiref.sync import sync_to_async
from django.contrib import messages as flash
from django.contrib.auth.decorators import login_required
from django.contrib.auth.models import User
from django.http import HttpResponse
from django.shortcuts import redirect, render
from django.urls import Resolver404, resolve, reverse
from django.views.decorators.http import require_GET, require_POST
from django_htmx.http import HttpResponseClientRedirect

from chatsite.http import AuthenticatedHttpRequest
from conversations import search, selectors, services
from conversations.errors import ChatError
from conversations.live import stops
from conversations.models import Conversation
from conversations.views import app_context


def _uuid_on_screen(request: AuthenticatedHttpRequest) -> str | None:
    """The conversation the requesting page shows, from the URL htmx sends (HX-Current-URL)."""
    path = request.htmx.current_url_abs_path if request.htmx else None
    if not path:
        return None
    try:
        match = resolve(urlsplit(path).path)
    except Resolver404:
        return None
    return str(match.kwargs["uuid"]) if match.url_name == "conversation" else None


def _on_screen(request: AuthenticatedHttpRequest, user) -> Conversation | None:
    uuid = _uuid_on_screen(request)
    if uuid is None:
        return None
    return selectors.conversation_get_for_user_or_none(user, uuid)


def _sidebar_refresh(request: AuthenticatedHttpRequest, user) -> HttpResponse:
    context = {
        "conversations": selectors.conversation_list_for_user(user),
        "conversation": _on_screen(request, user),
    }
    return render(request, "conversations/_sidebar_refresh.html", context)


@require_POST
@login_required
def conversation_rename(request: AuthenticatedHttpRequest, uuid) -> HttpResponse:
    conversation = selectors.conversation_get_for_user_or_404(request.user, uuid)
    title = request.POST.get("title", "")
    error = ""
    try:
        conversation = services.conversation_rename(conversation=conversation, title=title)
    except ChatError as exc:
        error = exc.message
    if not request.htmx:
        if error:
            flash.error(request, error)
        return redirect("conversation", uuid=conversation.uuid)
    on_screen = _uuid_on_screen(request) == str(conversation.uuid)
    context = {
        "item": conversation,
        "conversation": conversation if on_screen else None,
        "rename_current": on_screen,
        "rename_error": error,
        "rename_value": title[:200] if error else "",
    }
    return render(request, "conversations/_renamed.html", context)


def _archive_action(request: AuthenticatedHttpRequest, uuid, action) -> HttpResponse:
    action(conversation=selectors.conversation_get_for_user_or_404(request.user, uuid))
    if not request.htmx:
        return redirect("home")
    return _sidebar_refresh(request, request.user)


@require_POST
@login_required
def conversation_archive(request: AuthenticatedHttpRequest, uuid) -> HttpResponse:
    return _archive_action(request, uuid, services.conversation_archive)


@require_POST
@login_required
def conversation_unarchive(request: AuthenticatedHttpRequest, uuid) -> HttpResponse:
    return _archive_action(request, uuid, services.conversation_unarchive)


# How long a delete waits for a reply it stopped to be saved with its usage.
STOP_WAIT_SECONDS = 3.0


@require_POST
@login_required
async def conversation_delete(request: AuthenticatedHttpRequest, uuid) -> HttpResponse:
    """Delete for good (the page asked for confirmation). A reply still being written is
    stopped first, so the provider is not kept streaming text nobody will see."""
    user = cast(User, await request.auser())  # login_required: never AnonymousUser
    conversation = await sync_to_async(selectors.conversation_get_for_user_or_404)(user, uuid)
    await stops.stop_reply_and_wait(conversation=conversation, timeout=STOP_WAIT_SECONDS)
    await sync_to_async(services.conversation_delete)(conversation=conversation)
    if not request.htmx:
        return redirect("home")
    if _uuid_on_screen(request) == str(conversation.uuid):
        return HttpResponseClientRedirect(reverse("home"))
    return await sync_to_async(_sidebar_refresh)(request, user)


@require_GET
@login_required
def archived_list(request: AuthenticatedHttpRequest) -> HttpResponse:
    archived = selectors.conversation_list_archived_for_user(request.user)
    return render(request, "conversations/archived.html", app_context(request, archived=archived))


@require_GET
@login_required
def conversation_search(request: AuthenticatedHttpRequest) -> HttpResponse:
    """?q=: results under the sidebar's search box (htmx) or as a page."""
    q = " ".join(request.GET.get("q", "").split())[: search.QUERY_MAX_CHARS]
    hits = search.search_for_user(request.user, q) if q else []
    if request.htmx:
        return render(request, "conversations/_search_results.html", {"q": q, "hits": hits})
    context = app_context(request, q=q, hits=hits, sidebar_q=q)
    return render(request, "conversations/search.html", context)
