"""Reads for the import: which of an export's conversations this user imported before."""

from collections.abc import Iterable

from django.contrib.auth.models import User
from django.db.models import Q

from conversations.models import ImportedConversation


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
