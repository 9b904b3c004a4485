"""The REST API. Each view turns its request into one selector or service call."""

from collections.abc import AsyncIterator, Generator
from datetime import UTC
from typing import cast

from asgiref.sync import sync_to_async
from django.conf import settings
from django.contrib.auth.models import User
from django.core.handlers.asgi import ASGIRequest
from django.http import StreamingHttpResponse
from django.utils import timezone
from django.utils.dateparse import parse_datetime
from django.utils.translation import gettext
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import OpenApiParameter, OpenApiResponse, extend_schema
from rest_framework import generics, status
from rest_framework.exceptions import ValidationError
from rest_framework.negotiation import BaseContentNegotiation
from rest_framework.pagination import CursorPagination, PageNumberPagination
from rest_framework.parsers import FormParser, MultiPartParser
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from api import serializers
from conversations import exports, selectors, services


class ConversationPagination(PageNumberPagination):
    page_size = 50
    page_size_query_param = "page_size"
    max_page_size = 200


class MessageCursorPagination(CursorPagination):
    # Creation order: parents before children, stable while new messages arrive.
    ordering = "id"
    page_size = 100
    page_size_query_param = "page_size"
    max_page_size = 500


class IgnoreFormatNegotiation(BaseContentNegotiation):
    """Exports use `?format=` for their own formats (json, md, jsonl): answer with JSON
    (errors) or the stream, instead of DRF treating `format` as a renderer choice."""

    def select_parser(self, request, parsers):
        return parsers[0]

    def select_renderer(self, request, renderers, format_suffix=None):
        return renderers[0], renderers[0].media_type


def _export_format(request: Request) -> str:
    export_format = request.query_params.get("format", "json")
    if export_format not in exports.EXPORT_FORMATS:
        choices = ", ".join(exports.EXPORT_FORMATS)
        raise ValidationError(
            {"format": [gettext("Choose one of: %(choices)s.") % {"choices": choices}]}
        )
    return export_format


async def _async_blocks(blocks: Generator[bytes, None, None]) -> AsyncIterator[bytes]:
    """Under ASGI, Django buffers a synchronous iterator whole before sending it; pulling
    block by block through sync_to_async keeps the export streamed (and its queries in the
    request's database thread)."""
    take = sync_to_async(next, thread_sensitive=True)
    try:
        # sync_to_async keeps only the first overload of next(), the one without a default.
        while (block := await take(blocks, None)) is not None:  # type: ignore[call-arg]
            yield block
    finally:
        # A client that leaves early: close the generator so its server-side cursors close.
        await sync_to_async(blocks.close, thread_sensitive=True)()


def _download(
    request: Request, blocks: Generator[bytes, None, None], export_format: str, filename: str
):
    body = _async_blocks(blocks) if isinstance(request._request, ASGIRequest) else blocks
    response = StreamingHttpResponse(body, content_type=exports.MEDIA_TYPES[export_format])
    response["Content-Disposition"] = f'attachment; filename="{filename}"'
    return response


FORMAT_PARAMETER = OpenApiParameter(
    "format",
    str,
    enum=list(exports.EXPORT_FORMATS),
    default="json",
    description=(
        "json: lossless chatsite export (re-importable); md: readable Markdown; "
        'jsonl: one {"messages": [...]} line per conversation, for fine-tuning.'
    ),
)
EXPORT_RESPONSES = {
    (200, "application/json"): OpenApiTypes.BINARY,
    (200, "text/markdown"): OpenApiTypes.BINARY,
    (200, "application/x-ndjson"): OpenApiTypes.BINARY,
    400: serializers.ErrorSerializer,
}


@extend_schema(
    summary="List your conversations",
    parameters=[
        OpenApiParameter(
            "updated_since", OpenApiTypes.DATETIME, description="Only those active since then."
        ),
        OpenApiParameter("q", str, description="Words in the title or in any message."),
    ],
)
class ConversationListView(generics.ListAPIView):
    serializer_class = serializers.ConversationSerializer
    pagination_class = ConversationPagination

    def get_queryset(self):
        return selectors.conversation_search_for_user(
            self.request.user,
            updated_since=self._updated_since(),
            q=self.request.query_params.get("q", "").replace("\x00", "").strip()[:200],
        )

    def _updated_since(self):
        raw = self.request.query_params.get("updated_since")
        if not raw:
            return None
        # A "+01:00" offset arrives as " 01:00" when the client did not encode the plus.
        try:
            moment = parse_datetime(raw.strip().replace(" ", "+"))
            if moment is not None and timezone.is_naive(moment):
                moment = timezone.make_aware(moment)
            # In UTC: PostgreSQL refuses some offsets Python accepts (up to 24 hours).
            return moment.astimezone(UTC)
        except (AttributeError, ValueError, OverflowError):
            raise ValidationError(
                {"updated_since": [gettext("Use an ISO 8601 date and time.")]}
            ) from None


@extend_schema(summary="One conversation, with links to its messages and exports")
class ConversationDetailView(generics.RetrieveAPIView):
    serializer_class = serializers.ConversationDetailSerializer

    def get_object(self):
        conversation = selectors.conversation_get_for_user_or_404(
            self.request.user, self.kwargs["uuid"]
        )
        conversation.message_count = conversation.messages.count()
        return conversation


@extend_schema(summary="A conversation's messages, every branch, oldest first")
class MessageListView(generics.ListAPIView):
    serializer_class = serializers.MessageSerializer
    pagination_class = MessageCursorPagination

    def get_queryset(self):
        conversation = selectors.conversation_get_for_user_or_404(
            self.request.user, self.kwargs["uuid"]
        )
        return selectors.conversation_messages(conversation)


class ConversationExportView(APIView):
    content_negotiation_class = IgnoreFormatNegotiation

    @extend_schema(
        summary="Download one conversation",
        parameters=[FORMAT_PARAMETER],
        responses=EXPORT_RESPONSES,
    )
    def get(self, request: Request, uuid):
        user = cast(User, request.user)  # IsAuthenticated: never AnonymousUser
        conversation = selectors.conversation_get_for_user_or_404(user, uuid)
        export_format = _export_format(request)
        blocks = exports.export_conversations([conversation], export_format)
        filename = exports.export_filename(export_format, conversation)
        return _download(request, blocks, export_format, filename)


class ExportAllView(APIView):
    content_negotiation_class = IgnoreFormatNegotiation

    @extend_schema(
        summary="Download all your conversations (streamed)",
        parameters=[FORMAT_PARAMETER],
        responses=EXPORT_RESPONSES,
    )
    def get(self, request: Request):
        export_format = _export_format(request)
        blocks = exports.export_user_history(request.user, export_format)
        return _download(request, blocks, export_format, exports.export_filename(export_format))


class ImportView(APIView):
    parser_classes = [MultiPartParser, FormParser]

    @extend_schema(
        summary="Import a chatsite JSON export or ChatGPT's conversations.json",
        description=(
            "Each conversation imports whole or not at all; the ones that fail are listed "
            "with the reason, and the others still import."
        ),
        request=serializers.ImportUploadSerializer,
        responses={
            201: serializers.ImportResultSerializer,
            400: OpenApiResponse(serializers.ImportResultSerializer, "Nothing was imported."),
            413: serializers.ErrorSerializer,
        },
    )
    def post(self, request: Request):
        upload = serializers.ImportUploadSerializer(data=request.data)
        upload.is_valid(raise_exception=True)
        file = upload.validated_data["file"]
        if file.size > settings.API_IMPORT_MAX_BYTES:
            detail = gettext("The file is larger than %(limit)s bytes.") % {
                "limit": settings.API_IMPORT_MAX_BYTES
            }
            return Response({"detail": detail}, status=status.HTTP_413_REQUEST_ENTITY_TOO_LARGE)
        owner = cast(User, request.user)  # IsAuthenticated: never AnonymousUser
        try:
            result = services.conversations_import(owner=owner, data=file.read())
        except services.ImportRejected as exc:
            return Response({"detail": exc.message, "imported": [], "failed": []}, status=400)
        body = serializers.ImportResultSerializer(result).data
        if not result.conversations:
            return Response({"detail": gettext("Nothing was imported."), **body}, status=400)
        return Response(body, status=status.HTTP_201_CREATED)
