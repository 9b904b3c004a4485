"""The API settings page: personal tokens, export all, import. Thin views over services."""

from django.conf import settings
from django.contrib import messages as flash
from django.contrib.auth.decorators import login_required
from django.http import HttpResponse
from django.shortcuts import redirect, render
from django.utils.translation import gettext
from django.views.decorators.http import require_GET, require_POST

from api import selectors, services
from api.forms import ImportForm, TokenCreateForm
from chatsite.http import AuthenticatedHttpRequest
from conversations import exports
from conversations import selectors as conversation_selectors
from conversations import services as conversation_services
from conversations.errors import ValidationFailed
from conversations.sizes import human_size


def _page_context(request: AuthenticatedHttpRequest, **extra) -> dict:
    return {
        "conversations": conversation_selectors.conversation_list_for_user(request.user),
        "tokens": selectors.api_token_list_for_user(request.user),
        "export_formats": exports.EXPORT_FORMATS,
        "import_jobs": conversation_selectors.import_job_list_for_user(request.user),
        **extra,
    }


def _tokens(request: AuthenticatedHttpRequest, **extra) -> HttpResponse:
    """The tokens section alone for htmx, the whole page otherwise."""
    template = "api/_tokens.html" if request.htmx else "api/settings.html"
    return render(request, template, _page_context(request, **extra))


@require_GET
@login_required
def api_settings(request: AuthenticatedHttpRequest) -> HttpResponse:
    return render(request, "api/settings.html", _page_context(request))


@require_POST
@login_required
def token_create(request: AuthenticatedHttpRequest) -> HttpResponse:
    form = TokenCreateForm(request.POST)
    if not form.is_valid():
        return _tokens(
            request, token_error=gettext("Give the token a name of at most 80 characters.")
        )
    try:
        created = services.api_token_create(user=request.user, name=form.cleaned_data["name"])
    except ValidationFailed as exc:
        return _tokens(request, token_error=exc.message)
    # Rendered, not redirected: the secret must never be stored to survive a redirect.
    return _tokens(request, created=created)


@require_POST
@login_required
def token_revoke(request: AuthenticatedHttpRequest, token_id: int) -> HttpResponse:
    if not services.api_token_revoke(user=request.user, token_id=token_id):
        return _tokens(
            request, token_error=gettext("That token does not exist or is already revoked.")
        )
    if request.htmx:
        return _tokens(request)
    flash.success(request, gettext("Token revoked."))
    return redirect("api_settings")


@require_POST
@login_required
def import_upload(request: AuthenticatedHttpRequest) -> HttpResponse:
    form = ImportForm(request.POST, request.FILES)
    context: dict = {}
    if not form.is_valid():
        context["import_error"] = gettext("Choose a file to import.")
    elif form.cleaned_data["file"].size > settings.API_IMPORT_MAX_BYTES:
        context["import_error"] = gettext("The file is larger than %(limit)s.") % {
            "limit": human_size(settings.API_IMPORT_MAX_BYTES)
        }
    elif conversation_services.import_job_wanted(form.cleaned_data["file"].size):
        context["job"] = conversation_services.import_job_create(
            owner=request.user,
            upload=form.cleaned_data["file"],
            dry_run=form.cleaned_data["dry_run"],
        )
    else:
        try:
            data = form.cleaned_data["file"].read()
            context["result"] = conversation_services.conversations_import(
                owner=request.user, data=data, dry_run=form.cleaned_data["dry_run"]
            )
        except conversation_services.ImportRejected as exc:
            context["import_error"] = exc.message
    template = "api/_import_result.html" if request.htmx else "api/settings.html"
    return render(request, template, _page_context(request, **context))


@require_GET
@login_required
def import_job(request: AuthenticatedHttpRequest, uuid) -> HttpResponse:
    """One background import's progress: what the page polls while it runs."""
    job = conversation_selectors.import_job_get_for_user_or_404(request.user, uuid)
    return render(request, "api/_import_job.html", {"job": job})
