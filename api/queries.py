"""The query strings the API takes, one serializer per operation.

Each serializer is both the operation's documented query parameters (drf-spectacular
explodes it into the schema) and the check of what arrives: a parameter the operation does
not take, or a value it cannot use, is a 400 that names it, never silently ignored (a typo
such as `updated_sinse` would otherwise return every conversation as if it had matched).
"""

from datetime import UTC

from django.utils import timezone
from django.utils.dateparse import parse_datetime
from django.utils.translation import gettext, gettext_lazy
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import extend_schema_field
from rest_framework import serializers
from rest_framework.exceptions import APIException
from rest_framework.request import Request

from api.serializers import errors_detail
from conversations import exports

# Searching more than this many characters of a query is never useful and costs a scan.
SEARCH_MAX_CHARS = 200


class InvalidQuery(APIException):
    """A 400 with the API's usual `{"detail": ...}` body."""

    status_code = 400
    default_code = "invalid_query"
    default_detail = gettext_lazy("The query string is not valid here.")


@extend_schema_field(OpenApiTypes.DATETIME)
class IsoDateTimeField(serializers.Field):
    """An ISO 8601 moment, read in UTC; a naive one is taken in the server's time zone."""

    default_error_messages = {"invalid": gettext_lazy("Use an ISO 8601 date and time.")}

    def to_internal_value(self, data):
        # A "+01:00" offset arrives as " 01:00" when the client did not encode the plus.
        try:
            moment = parse_datetime(str(data).strip().replace(" ", "+"))
            if moment is not None and timezone.is_naive(moment):
                moment = timezone.make_aware(moment)
            # In UTC: PostgreSQL refuses some offsets Python accepts (up to 24 hours).
            return moment.astimezone(UTC)
        except (AttributeError, ValueError, OverflowError):
            self.fail("invalid")

    def to_representation(self, value):
        return value.isoformat()


class SearchField(serializers.CharField):
    """Free text; NUL (which Postgres cannot compare) is dropped, the rest trimmed."""

    def to_internal_value(self, data):
        return super().to_internal_value(str(data).replace("\x00", ""))[:SEARCH_MAX_CHARS]


@extend_schema_field({"type": "string", "minLength": 1})
class CursorField(serializers.Field):
    """A pagination cursor, passed on as it came: one that is not ours (any text, NUL
    included) is the paginator's "Invalid cursor" 404, as the schema says."""

    def to_internal_value(self, data):
        return str(data)

    def to_representation(self, value):
        return value


class ExportFormatField(serializers.ChoiceField):
    def __init__(self, **kwargs):
        super().__init__(choices=exports.EXPORT_FORMATS, **kwargs)

    def to_internal_value(self, data):
        if data not in exports.EXPORT_FORMATS:
            choices = ", ".join(exports.EXPORT_FORMATS)
            raise serializers.ValidationError(
                gettext("Choose one of: %(choices)s.") % {"choices": choices}
            )
        return data


class NoQuery(serializers.Serializer):
    """An operation that takes no query parameters."""


class ConversationListQuery(serializers.Serializer):
    page = serializers.IntegerField(min_value=1, required=False, help_text="From 1.")
    page_size = serializers.IntegerField(
        min_value=1, required=False, help_text="50 by default; more than 200 is read as 200."
    )
    updated_since = IsoDateTimeField(
        required=False, help_text="Only those active since then (ISO 8601)."
    )
    q = SearchField(
        required=False, allow_blank=True, help_text="Words in the title or in any message."
    )


class MessageListQuery(serializers.Serializer):
    cursor = CursorField(
        required=False, help_text="From the `next` or `previous` link of an earlier page."
    )
    page_size = serializers.IntegerField(
        min_value=1, required=False, help_text="100 by default; more than 500 is read as 500."
    )


class ExportQuery(serializers.Serializer):
    format = ExportFormatField(
        default="json",
        help_text=(
            "json: lossless chatsite export (re-importable); md: readable Markdown; "
            'jsonl: one {"messages": [...]} line per conversation, for fine-tuning.'
        ),
    )


def query_validated(request: Request, query_class: type[serializers.Serializer]) -> dict:
    """The request's query parameters checked against `query_class`, or InvalidQuery."""
    query = query_class(data=request.query_params)
    unknown = sorted(set(request.query_params) - set(query.fields))
    if unknown:
        raise InvalidQuery(_unknown_sentence(unknown, sorted(query.fields)))
    # An empty value would otherwise count as left out (DRF reads a form that way).
    blank = sorted(
        name
        for name, value in request.query_params.items()
        if value == "" and not getattr(query.fields[name], "allow_blank", False)
    )
    if blank:
        give_a_value = gettext("Give it a value, or leave it out.")
        raise InvalidQuery(" ".join(f"{name}: {give_a_value}" for name in blank))
    if not query.is_valid():
        raise InvalidQuery(errors_detail(query.errors))
    return dict(query.validated_data)


def _unknown_sentence(unknown: list[str], known: list[str]) -> str:
    names = ", ".join(name[:50] for name in unknown[:5])
    if known:
        return gettext("Unknown query parameter: %(names)s. This takes: %(known)s.") % {
            "names": names,
            "known": ", ".join(known),
        }
    return gettext("Unknown query parameter: %(names)s. This takes none.") % {"names": names}
