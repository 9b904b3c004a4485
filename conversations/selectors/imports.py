"""Reads for the import: which of an export's conversations this user imported before, and
the user's background import jobs."""

from collections.abc import Iterable

from django.contrib.auth.models import User
from django.db.models import Q, QuerySet
from django.shortcuts import get_object_or_404

from conversations.models import ImportedConversation, ImportJob, Message


def imported_source_ids(owner: User, sources: Iterable[tuple[str, str]]) -> set[tuple[str, str]]:
    """Of these (format, source id) pairs, those already imported as one of `owner`'s
    conversations (through the unique index imported_conversation_unique)."""
    by_format: dict[str, list[str]] = {}
    for source, source_id in sources:
        by_format.setdefault(source, []).append(source_id)
    if not by_format:
        return set()
    wanted = Q()
    for source, ids in by_format.items():
        wanted |= Q(source=source, source_id__in=ids)
    found = ImportedConversation.objects.filter(wanted, owner=owner)
    return set(found.values_list("source", "source_id"))


def import_job_list_for_user(owner: User, *, limit: int = 5) -> QuerySet[ImportJob]:
    """The user's most recent import jobs, newest first (index import_job_owner_recent)."""
    return ImportJob.objects.filter(owner=owner).order_by("-created_at")[:limit]


def import_job_get_for_user_or_404(owner: User, uuid) -> ImportJob:
    return get_object_or_404(ImportJob, owner=owner, uuid=uuid)


def imported_conversation_ids(
    owner: User, sources: Iterable[tuple[str, str]]
) -> dict[tuple[str, str], int]:
    """Of these (format, source id) pairs, those imported before, with the conversation
    each became (to add a newer export's new messages to it)."""
    by_format: dict[str, list[str]] = {}
    for source, source_id in sources:
        by_format.setdefault(source, []).append(source_id)
    if not by_format:
        return {}
    wanted = Q()
    for source, ids in by_format.items():
        wanted |= Q(source=source, source_id__in=ids)
    found = ImportedConversation.objects.filter(wanted, owner=owner)
    return {
        (source, source_id): conversation_id
        for source, source_id, conversation_id in found.values_list(
            "source", "source_id", "conversation_id"
        )
    }


def conversation_tree_for_merge(conversation_id: int) -> list[tuple]:
    """Every message of the conversation as the import matches a newer export's messages
    against it: (id, parent_id, role, content, created_at), parents first."""
    messages = Message.objects.filter(conversation_id=conversation_id).order_by("id")
    return list(messages.values_list("id", "parent_id", "role", "content", "created_at"))
