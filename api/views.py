"""The REST API. Each view turns its request into one selector or service call."""

from collections.abc import Generator
from typing import cast

from django.conf import settings
from django.contrib.auth.models import User
from django.http import JsonResponse, StreamingHttpResponse
from django.utils.translation import gettext
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import OpenApiResponse, extend_schema
from rest_framework import generics, status
from rest_framework import serializers as drf_serializers
from rest_framework.negotiation import BaseContentNegotiation
from rest_framework.pagination import CursorPagination, PageNumberPagination
from rest_framework.parsers import MultiPartParser
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from api import queries, serializers
from chatsite.http import streamed_body
from conversations import exports, selectors, services
from conversations.sizes import human_size


def endpoint_not_found(request, *args, **kwargs) -> JsonResponse:
    detail = gettext("Nothing here: /api/v1/docs/ lists the API's endpoints.")
    return JsonResponse({"detail": detail}, status=404)


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


def _download(
    request: Request, blocks: Generator[bytes, None, None], export_format: str, filename: str
):
    body = streamed_body(request._request, blocks)
    response = StreamingHttpResponse(body, content_type=exports.MEDIA_TYPES[export_format])
    response["Content-Disposition"] = f'attachment; filename="{filename}"'
    return response


EXPORT_RESPONSES = {
    (200, "application/json"): {
        "oneOf": [
            serializers.JSON_EXPORT_SCHEMA,
            # format=openwebui: a list of chats in Open WebUI's export envelope.
            {"type": "array", "items": {"type": "object"}},
        ]
    },
    (200, "text/markdown"): OpenApiTypes.STR,
    (200, "application/x-ndjson"): OpenApiTypes.STR,
}


class QueryCheckedMixin:
    """Checks the query string against `query_class` once the request is authenticated
    (an anonymous client gets its 401 first); the view reads `self.query`."""

    query_class: type[drf_serializers.Serializer] = queries.NoQuery
    query: dict

    def initial(self, request: Request, *args, **kwargs) -> None:
        super().initial(request, *args, **kwargs)  # type: ignore[misc]
        self.query = queries.query_validated(request, self.query_class)


@extend_schema(summary="List your conversations", parameters=[queries.ConversationListQuery])
class ConversationListView(QueryCheckedMixin, generics.ListAPIView):
    serializer_class = serializers.ConversationSerializer
    pagination_class = ConversationPagination
    query_class = queries.ConversationListQuery

    def get_queryset(self):
        return selectors.conversation_search_for_user(
            self.request.user,
            updated_since=self.query.get("updated_since"),
            q=self.query.get("q", "").strip(),
        )


@extend_schema(summary="One conversation, with links to its messages and exports")
class ConversationDetailView(QueryCheckedMixin, generics.RetrieveAPIView):
    serializer_class = serializers.ConversationDetailSerializer

    def get_object(self):
        conversation = selectors.conversation_get_for_user_or_404(
            self.request.user, self.kwargs["uuid"]
        )
        conversation.message_count = conversation.messages.count()
        return conversation


@extend_schema(
    summary="A conversation's messages, every branch, oldest first",
    parameters=[queries.MessageListQuery],
)
class MessageListView(QueryCheckedMixin, generics.ListAPIView):
    serializer_class = serializers.MessageSerializer
    pagination_class = MessageCursorPagination
    query_class = queries.MessageListQuery

    def get_queryset(self):
        conversation = selectors.conversation_get_for_user_or_404(
            self.request.user, self.kwargs["uuid"]
        )
        return selectors.conversation_messages(conversation)


class ConversationExportView(QueryCheckedMixin, APIView):
    content_negotiation_class = IgnoreFormatNegotiation
    query_class = queries.ExportQuery

    @extend_schema(
        summary="Download one conversation",
        parameters=[queries.ExportQuery],
        responses=EXPORT_RESPONSES,
    )
    def get(self, request: Request, uuid):
        user = cast(User, request.user)  # IsAuthenticated: never AnonymousUser
        conversation = selectors.conversation_get_for_user_or_404(user, uuid)
        export_format = self.query["format"]
        blocks = exports.export_conversations([conversation], export_format)
        filename = exports.export_filename(export_format, conversation)
        return _download(request, blocks, export_format, filename)


class ExportAllView(QueryCheckedMixin, APIView):
    content_negotiation_class = IgnoreFormatNegotiation
    query_class = queries.ExportQuery

    @extend_schema(
        summary="Download all your conversations (streamed)",
        parameters=[queries.ExportQuery],
        responses=EXPORT_RESPONSES,
    )
    def get(self, request: Request):
        export_format = self.query["format"]
        blocks = exports.export_user_history(request.user, export_format)
        return _download(request, blocks, export_format, exports.export_filename(export_format))


class ImportView(QueryCheckedMixin, APIView):
    # A file needs multipart/form-data: a urlencoded form cannot carry one.
    parser_classes = [MultiPartParser]

    @extend_schema(
        summary="Import conversations from chatsite, ChatGPT, Claude or Open WebUI",
        description=(
            "The whole file is checked first: if any conversation is broken, nothing is "
            "imported and each failure names the conversation and the message. Conversations "
            "imported before are passed over. With dry_run, only the counts are answered. "
            "A file larger than IMPORT_JOB_MIN_BYTES (5 MB by default) is imported in the "
            "background: the answer is 202 with the job, whose url (also the Location "
            "header) tells its progress and outcome."
        ),
        request=serializers.ImportUploadSerializer,
        responses={
            200: OpenApiResponse(
                serializers.ImportResultSerializer,
                "A dry run's counts, or nothing new to import (every conversation imported "
                "before or empty).",
            ),
            201: serializers.ImportResultSerializer,
            202: OpenApiResponse(
                serializers.ImportJobSerializer,
                "A large file, saved and queued to be imported in the background.",
            ),
            400: OpenApiResponse(
                serializers.ImportRefusalSerializer,
                "Nothing was imported: the upload, or a conversation in it, was refused.",
            ),
            413: serializers.ErrorSerializer,
            415: OpenApiResponse(serializers.ErrorSerializer, "Not multipart/form-data."),
        },
    )
    def post(self, request: Request):
        upload = serializers.ImportUploadSerializer(data=request.data)
        if not upload.is_valid():
            return _import_refused(upload.errors)
        file = upload.validated_data["file"]
        if file.size > settings.API_IMPORT_MAX_BYTES:
            detail = gettext("The file is larger than %(limit)s.") % {
                "limit": human_size(settings.API_IMPORT_MAX_BYTES)
            }
            return Response({"detail": detail}, status=status.HTTP_413_REQUEST_ENTITY_TOO_LARGE)
        owner = cast(User, request.user)  # IsAuthenticated: never AnonymousUser
        if services.import_job_wanted(file.size):
            return _import_queued(request, owner, file, upload.validated_data["dry_run"])
        try:
            result = services.conversations_import(
                owner=owner, data=file.read(), dry_run=upload.validated_data["dry_run"]
            )
        except services.ImportRejected as exc:
            return _import_refused(exc.message)
        body = serializers.ImportResultSerializer(result).data
        if result.failures:
            return Response({"detail": gettext("Nothing was imported."), **body}, status=400)
        if result.dry_run or not result.conversations:
            return Response(body, status=status.HTTP_200_OK)
        return Response(body, status=status.HTTP_201_CREATED)


def _import_queued(request: Request, owner: User, file, dry_run: bool) -> Response:
    job = services.import_job_create(owner=owner, upload=file, dry_run=dry_run)
    body = serializers.ImportJobSerializer(job, context={"request": request}).data
    return Response(body, status=status.HTTP_202_ACCEPTED, headers={"Location": body["url"]})


@extend_schema(
    summary="A background import's progress and outcome",
    responses={
        200: serializers.ImportJobSerializer,
        404: OpenApiResponse(serializers.ErrorSerializer, "No import job of yours has this id."),
    },
)
class ImportJobView(QueryCheckedMixin, generics.RetrieveAPIView):
    serializer_class = serializers.ImportJobSerializer

    def get_object(self):
        return selectors.import_job_get_for_user_or_404(self.request.user, self.kwargs["uuid"])


def _import_refused(reason: str | dict) -> Response:
    """A 400 in the import's own shape: nothing imported, and why."""
    if isinstance(reason, dict):
        reason = serializers.errors_detail(reason)
    return Response({"detail": reason, "imported": [], "failed": []}, status=400)
