"""Pages. Each view turns its request into one selector or service call and renders."""

from asgiref.sync import sync_to_async
from django.conf import settings
from django.contrib import messages as flash
from django.contrib.auth import login, update_session_auth_hash
from django.contrib.auth.decorators import login_required
from django.contrib.auth.forms import PasswordChangeForm
from django.contrib.auth.views import LoginView
from django.http import (
    FileResponse,
    Http404,
    HttpRequest,
    HttpResponse,
    HttpResponseBadRequest,
    HttpResponseBase,
)
from django.shortcuts import redirect, render
from django.urls import reverse
from django.utils.translation import gettext as _
from django.utils.translation import ngettext
from django.views.decorators.http import require_GET, require_http_methods, require_POST
from django_htmx.http import HttpResponseClientRedirect

from chatsite.http import AuthenticatedHttpRequest
from conversations import (
    chat_actions,
    limits,
    pages,
    presenters,
    selectors,
    services,
    usage,
    usage_csv,
)
from conversations.context import context_gauge, summary_latest
from conversations.errors import ChatError
from conversations.forms import (
    ConversationSettingsForm,
    NewConversationForm,
    PersonaForm,
    SignupForm,
)
from conversations.models import Attachment, Conversation
from conversations.providers import catalogue


def app_context(request: AuthenticatedHttpRequest, **extra) -> dict:
    return {
        "conversations": selectors.conversation_list_for_user(request.user),
        "chat_models": catalogue.chat_models_available(),
        # Shown near the composer from 80% of the month's budget.
        "budget": usage.budget_status(request.user),
        # The composer refuses a longer message itself, keeping it (static/js/chatsite.js).
        "message_max_chars": settings.MESSAGE_MAX_CHARS,
        **extra,
    }


@require_GET
@login_required
def home(request: AuthenticatedHttpRequest) -> HttpResponse:
    """The new-chat page, on the model last used (while it is still available)."""
    last_used = catalogue.chat_model_get_available(selectors.chat_model_last_used_id(request.user))
    context = app_context(request, selected_model=last_used or catalogue.default_chat_model())
    return render(request, "conversations/home.html", context)


@require_GET
@login_required
def conversation_detail(request: AuthenticatedHttpRequest, uuid) -> HttpResponse:
    """The latest page of the thread on screen, or with ?m=<message> a window around that
    message (a search hit). A message on another branch is not brought on screen by a GET:
    the page offers to (`message_open`), since switching changes what the next send
    continues."""
    conversation = selectors.conversation_get_for_user_or_404(request.user, uuid)
    target = selectors.message_in_conversation_or_none(conversation, request.GET.get("m", ""))
    page = pages.page_around(conversation, target) if target else None
    on_screen = target if page is not None else None
    page = page or pages.latest_page(conversation)
    context = app_context(
        request,
        **page.context(),
        jump_to=str(on_screen.uuid) if on_screen else "",
        other_version=target if target and not on_screen else None,
        personas=selectors.persona_list_for_user(request.user),
        gauge=context_gauge(conversation),
    )
    return render(request, "conversations/chat.html", context)


@require_POST
@login_required
def message_open(request: AuthenticatedHttpRequest, uuid) -> HttpResponse:
    """Open the message POSTed as `m` on its own branch, then show it (?m=)."""
    conversation = selectors.conversation_get_for_user_or_404(request.user, uuid)
    target = selectors.message_in_conversation_or_none(conversation, request.POST.get("m", ""))
    if target is None:
        raise Http404(_("No such message in this chat."))
    try:
        services.conversation_open_message(conversation=conversation, message=target)
    except ChatError as exc:
        flash.error(request, exc.message)
    url = f"{reverse('conversation', args=[conversation.uuid])}?m={target.uuid}#m-{target.uuid}"
    return HttpResponseClientRedirect(url) if request.htmx else redirect(url)


@require_GET
@login_required
def message_full(request: AuthenticatedHttpRequest, uuid) -> HttpResponse:
    """A collapsed message, whole ("Show all")."""
    message = selectors.message_get_for_user_or_404(request.user, uuid)
    return HttpResponse(pages.message_html(message, show_all=True))


@require_GET
@login_required
def conversation_messages(request: AuthenticatedHttpRequest, uuid) -> HttpResponse:
    """The page above ?before=<message> or below ?after=<message> (up to ?until=), fetched
    by htmx as the reader scrolls."""
    conversation = selectors.conversation_get_for_user_or_404(request.user, uuid)
    before = selectors.message_in_conversation_or_none(conversation, request.GET.get("before", ""))
    after = selectors.message_in_conversation_or_none(conversation, request.GET.get("after", ""))
    if before is not None:
        page = pages.older_page(conversation, before)
    elif after is not None:
        until = selectors.message_in_conversation_or_none(
            conversation, request.GET.get("until", "")
        )
        page = pages.newer_page(conversation, after, until)
    else:
        return HttpResponse(_("Say which message to page from."), status=400)
    return HttpResponse(presenters.render_thread(page))


@require_POST
@login_required
def attachment_upload(request: AuthenticatedHttpRequest, uuid) -> HttpResponse:
    """Store an image for the composer of this conversation; answers with its chip."""
    selectors.conversation_get_for_user_or_404(request.user, uuid)
    return _attachment_chip(request)


@require_POST
@login_required
def attachment_new(request: AuthenticatedHttpRequest) -> HttpResponse:
    """Store an image for the new-chat page's first message; answers with its chip."""
    return _attachment_chip(request)


def _attachment_chip(request: AuthenticatedHttpRequest) -> HttpResponse:
    upload = request.FILES.get("file")
    if upload is None:
        return HttpResponse(_("Choose an image to attach."), status=400)
    try:
        attachment = services.attachment_upload(owner=request.user, upload=upload)
    except ChatError as exc:
        return HttpResponse(exc.message, status=400)
    return render(request, "conversations/_attachment_chip.html", {"attachment": attachment})


@require_GET
@login_required
def attachment_file(request: AuthenticatedHttpRequest, uuid) -> FileResponse:
    """An image, to its owner only: uploads are never reachable through a public URL."""
    try:
        attachment = selectors.attachment_get_for_user(request.user, uuid)
    except Attachment.DoesNotExist:
        raise Http404(_("No such image")) from None
    response = FileResponse(attachment.file.open("rb"), content_type=attachment.content_type)
    response["Content-Disposition"] = "inline"
    response["X-Content-Type-Options"] = "nosniff"
    response["Cache-Control"] = "private, max-age=86400"
    return response


@require_POST
@login_required
def summary_regenerate(request: AuthenticatedHttpRequest, uuid) -> HttpResponse:
    conversation = selectors.conversation_get_for_user_or_404(request.user, uuid)
    summary = summary_latest(conversation)
    if summary is None or str(summary.pk) != request.POST.get("summary"):
        return HttpResponse(_("That summary is no longer the newest; reload the page."), status=409)
    services.summary_regenerate(summary=summary)
    if request.htmx:
        return render(
            request,
            "conversations/_summary_divider.html",
            {"conversation": conversation, "regenerating": True},
        )
    return redirect("conversation", uuid=conversation.uuid)


@require_POST
@login_required
def conversation_settings(request: AuthenticatedHttpRequest, uuid) -> HttpResponse:
    conversation = selectors.conversation_get_for_user_or_404(request.user, uuid)
    form = ConversationSettingsForm(request.POST)
    error = ""
    if form.is_valid():
        # A persona picked from the list replaces the prompt typed in the box.
        persona = selectors.persona_get_for_user(request.user, form.cleaned_data["persona"])
        prompt = persona.system_prompt if persona else form.cleaned_data["system_prompt"]
        # No model in the form (the header switches it): the conversation's own.
        model = form.cleaned_data["model"]
        chat_model = catalogue.chat_model_get_available(model) if model else conversation.chat_model
        try:
            conversation = services.conversation_update_settings(
                conversation=conversation,
                chat_model=chat_model,
                system_prompt=prompt,
                parameters=form.generation_settings(),
            )
        except ChatError as exc:
            error = exc.message
    else:
        error = _form_error(form)
    # A Save that went through closes the popover (static/js/controls.js).
    return _settings_response(request, conversation, error=error, saved=not error, close=not error)


@require_POST
@login_required
def persona_save(request: AuthenticatedHttpRequest, uuid) -> HttpResponse:
    """Save the settings form's system prompt as a named persona of the user."""
    conversation = selectors.conversation_get_for_user_or_404(request.user, uuid)
    form = PersonaForm(request.POST)
    error = ""
    if form.is_valid():
        try:
            services.persona_save(
                owner=request.user,
                name=form.cleaned_data["persona_name"],
                system_prompt=form.cleaned_data["system_prompt"],
            )
        except ChatError as exc:
            error = exc.message
    else:
        error = _form_error(form)
    return _settings_response(request, conversation, error=error, saved=not error)


def _form_error(form) -> str:
    problems = "; ".join(f"{name}: {' '.join(errs)}" for name, errs in form.errors.items())
    return _("Check the settings: %(problems)s") % {"problems": problems}


def _settings_response(
    request, conversation, *, error: str, saved: bool, close: bool = False
) -> HttpResponse:
    if not request.htmx:
        return redirect("conversation", uuid=conversation.uuid)
    context = app_context(
        request,
        conversation=conversation,
        personas=selectors.persona_list_for_user(request.user),
        settings_error=error,
        settings_saved=saved,
        settings_close=close,
        # The model, the system prompt or the reply's room may have changed the window.
        gauge_oob=context_gauge(conversation) if saved else None,
    )
    return render(request, "conversations/_settings.html", context)


@require_POST
@login_required
async def conversation_new(request: AuthenticatedHttpRequest) -> HttpResponse:
    """Start a conversation with the chosen model and, if given, its first message."""
    form = NewConversationForm(request.POST)
    user = await request.auser()
    if not form.is_valid():
        problems = _("Check the message: %(problems)s") % {"problems": form.errors.as_text()}
        return await _new_chat_refused(request, problems)
    thinking, json_mode = form.switches()
    try:
        conversation = await chat_actions.start_conversation(
            owner=user,
            chat_model_id=form.cleaned_data["model"],
            first_message=form.cleaned_data["message"],
            idempotency_key=form.cleaned_data["idempotency_key"] or None,
            attachment_ids=form.attachment_ids(),
            thinking=thinking,
            json_mode=json_mode,
        )
    except ChatError as exc:
        return await _new_chat_refused(request, exc.message)
    if request.htmx:
        return HttpResponseClientRedirect(conversation_url(conversation))
    return redirect(conversation_url(conversation))


async def _new_chat_refused(request: AuthenticatedHttpRequest, error: str) -> HttpResponse:
    """The new-chat page again with the reason, the typed message, its images and the
    chosen model: nothing was created, and nothing typed or attached is lost."""
    flash.error(request, error)

    def render_page() -> HttpResponse:
        chosen = catalogue.chat_model_get_available(request.POST.get("model"))
        thinking, json_mode = NewConversationForm(request.POST).switches()
        context = app_context(
            request,
            selected_model=chosen or catalogue.default_chat_model(),
            draft=request.POST.get("message", ""),
            draft_thinking=thinking,  # shown pressed where the chosen model honours it
            draft_json=json_mode,
            draft_attachments=selectors.attachments_unsent_for_user(
                request.user, request.POST.getlist("attachments")
            ),
        )
        return render(request, "conversations/home.html", context, status=400)

    return await sync_to_async(render_page)()


def conversation_url(conversation: Conversation) -> str:
    return f"/c/{conversation.uuid}/"


class ChatLoginView(LoginView):
    """Django's login, refusing a username from one address after repeated failures."""

    def get_context_data(self, **kwargs):
        return super().get_context_data(signup_enabled=settings.SIGNUP_ENABLED, **kwargs)

    def _attempt(self) -> tuple[str, str]:
        return self.request.POST.get("username", ""), self.request.META.get("REMOTE_ADDR", "")

    def post(self, request, *args, **kwargs):
        if limits.login_locked(*self._attempt()):
            # Checked before the form: a locked-out guess never reaches the password check.
            minutes = max(1, settings.LOGIN_FAILURE_WINDOW // 60)
            locked = ngettext(
                "Too many failed attempts to log in. Wait %(minutes)s minute and try again.",
                "Too many failed attempts to log in. Wait %(minutes)s minutes and try again.",
                minutes,
            ) % {"minutes": minutes}
            context = self.get_context_data(form=self.get_form_class()(request))
            return self.render_to_response({**context, "login_locked": locked}, status=429)
        return super().post(request, *args, **kwargs)

    def form_invalid(self, form):
        limits.login_failed(*self._attempt())
        return super().form_invalid(form)

    def form_valid(self, form):
        limits.login_succeeded(*self._attempt())
        return super().form_valid(form)


@require_http_methods(["GET", "POST"])
def signup(request: HttpRequest) -> HttpResponse:
    if not settings.SIGNUP_ENABLED:
        raise Http404(_("Sign-up is turned off on this site"))
    form = SignupForm(request.POST or None)
    if request.method == "POST" and form.is_valid():
        user = services.user_signup(
            username=form.cleaned_data["username"], password=form.cleaned_data["password1"]
        )
        login(request, user, backend="django.contrib.auth.backends.ModelBackend")
        return redirect("home")
    return render(request, "registration/signup.html", {"form": form})


@require_http_methods(["GET", "POST"])
@login_required
def password_change(request: AuthenticatedHttpRequest) -> HttpResponse:
    """The user's own password: the old one, then the new one twice. Other sessions are
    signed out; this one stays."""
    form = PasswordChangeForm(request.user, request.POST or None)
    if request.method == "POST" and form.is_valid():
        services.password_change(user=request.user, new_password=form.cleaned_data["new_password1"])
        update_session_auth_hash(request, request.user)
        flash.success(request, _("Password changed. Your other sessions were signed out."))
        return redirect("home")
    return render(request, "registration/password_change.html", app_context(request, form=form))


@require_GET
@login_required
def usage_page(request: AuthenticatedHttpRequest) -> HttpResponse:
    """This month's (or ?month=YYYY-MM's) usage by model and by day, and the budget."""
    # A month that is not one shows this month.
    asked = usage.month_from_text(request.GET.get("month", ""))
    month = usage.usage_month_for_user(request.user, asked)
    context = app_context(request, month=month)
    return render(request, "conversations/usage.html", context)


@require_GET
@login_required
def usage_statement_csv(request: AuthenticatedHttpRequest) -> HttpResponseBase:
    """The month's (?month=YYYY-MM, default this one) usage of this user as CSV, streamed."""
    start = usage_csv.month_asked(request.GET.get("month", ""))
    if start is None:
        return HttpResponseBadRequest(_("“month” must look like 2026-03."))
    return usage_csv.statement_download(request, start, request.user)
