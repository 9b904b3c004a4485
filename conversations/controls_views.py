"""The chat's controls outside the settings popover: the header's model switch and the
composer's thinking and JSON switches. Each view is one service call, then the pieces of
UI that depend on it (one template each, swapped by htmx)."""

from django.contrib import messages as flash
from django.contrib.auth.decorators import login_required
from django.http import HttpResponse
from django.shortcuts import redirect, render
from django.views.decorators.http import require_GET, require_POST

from chatsite.http import AuthenticatedHttpRequest
from conversations import selectors, services
from conversations.context import context_gauge
from conversations.errors import ChatError
from conversations.forms import switch_value
from conversations.providers import catalogue, profiles
from conversations.views import app_context


@require_POST
@login_required
def conversation_model(request: AuthenticatedHttpRequest, uuid) -> HttpResponse:
    """Switch the conversation's model for its next replies (the header's picker)."""
    conversation = selectors.conversation_get_for_user_or_404(request.user, uuid)
    error = ""
    try:
        conversation = services.conversation_switch_model(
            conversation=conversation,
            chat_model=catalogue.chat_model_get_available(request.POST.get("model")),
        )
    except ChatError as exc:
        error = exc.message
    if not request.htmx:
        if error:
            flash.error(request, error)
        return redirect("conversation", uuid=conversation.uuid)
    context = app_context(
        request,
        conversation=conversation,
        personas=selectors.persona_list_for_user(request.user),
        model_error=error,
        switched=not error,
        # The window, and the reply's room within it, are the model's.
        gauge=context_gauge(conversation) if not error else None,
    )
    return render(request, "conversations/_model_switched.html", context)


@require_POST
@login_required
def conversation_switches(request: AuthenticatedHttpRequest, uuid) -> HttpResponse:
    """Turn thinking or JSON mode on or off (the composer's switches)."""
    conversation = selectors.conversation_get_for_user_or_404(request.user, uuid)
    conversation = services.conversation_set_switches(
        conversation=conversation,
        thinking=switch_value(request.POST.get("thinking")),
        json_mode=switch_value(request.POST.get("json_mode")),
    )
    if not request.htmx:
        return redirect("conversation", uuid=conversation.uuid)
    # JSON mode adds its instruction to the request, which the gauge counts.
    context = {"conversation": conversation, "gauge_oob": context_gauge(conversation)}
    return render(request, "conversations/_composer_switches.html", context)


@require_GET
@login_required
def new_chat_switches(request: AuthenticatedHttpRequest) -> HttpResponse:
    """The new-chat page's switches for the model just picked (?model=), keeping those
    pressed (?thinking=on, ?json_mode=on) that it honours."""
    chat_model = catalogue.chat_model_get_available(request.GET.get("model"))
    thinking, json_mode = profiles.honoured_switches(
        chat_model,
        thinking=switch_value(request.GET.get("thinking")) is True,
        json_mode=switch_value(request.GET.get("json_mode")) is True,
    )
    context = {"chat_model": chat_model, "draft_thinking": thinking, "draft_json": json_mode}
    return render(request, "conversations/_new_chat_switches.html", context)
