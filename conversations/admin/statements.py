"""The admin's month statement: every user's usage of a month as CSV (the ledger page links
to it), streamed like "My usage"'s own."""

from django.contrib.admin.views.decorators import staff_member_required
from django.http import HttpRequest, HttpResponseBadRequest, HttpResponseBase
from django.utils.translation import gettext as _
from django.views.decorators.http import require_GET

from conversations import usage_csv


@require_GET
@staff_member_required
def statement_csv(request: HttpRequest) -> HttpResponseBase:
    start = usage_csv.month_asked(request.GET.get("month", ""))
    if start is None:
        return HttpResponseBadRequest(_("“month” must look like 2026-03."))
    return usage_csv.statement_download(request, start, None)
