"""Searching a user's conversations: titles and message text. Reads only.

Message text is matched by full-text search with the 'simple' configuration
(no stemming, no stop words) and websearch syntax: `fox den` (both words), `"red fox"`
(the phrase), `fox -den` (without den), `fox or wolf`. Message text is matched through its
stored `search_vector` (migration 0007), which the `message_search_vector` GIN index holds;
a reply still streaming has none yet, so it is found once it settles. Titles are parsed as
they are read (a user's own conversations only, and no index). Chinese and Japanese queries
also match by substring (every word or phrase must appear, `-word` must not).

Archived conversations are searched too (a result says it is archived): search is how an
archived chat is found again.

One result per conversation, at most `limit`: conversations whose title matches first
(most recently active first), then the best matching message of each other conversation,
by rank and then recency, then a few conversations found by meaning through recall's index
(marked as such).
"""

import re
from dataclasses import dataclass
from uuid import UUID

from django.conf import settings
from django.contrib.auth.models import User
from django.contrib.postgres.search import SearchQuery, SearchRank, SearchVectorField
from django.db.models import Expression, F, Func, Q, QuerySet
from django.db.models.expressions import Col
from django.urls import reverse
from django.utils.html import escape
from django.utils.safestring import SafeString, mark_safe

from conversations.models import Conversation, Message, MessageChunk, Role
from conversations.recall import embedders, rankings, store

QUERY_MAX_CHARS = 200
RESULT_LIMIT = 20
# Matching messages ranked per search: the newest ones, so a very common word costs a
# bounded amount of ranking work (ts_rank reads each candidate's stored vector).
CANDIDATES = 300
# Characters of context kept before the first hit and in the whole snippet.
SNIPPET_BEFORE = 40
SNIPPET_CHARS = 160
# Results by meaning after the word matches, and the cosine they must reach (the bundled
# e5's scores for related passages start around 0.8; unrelated ones sit near 0.7).
MEANING_LIMIT = 5
MEANING_MIN_SCORE = 0.8

# Han, kana, Hangul and CJK punctuation/compatibility blocks.
_CJK = re.compile(
    "[\u3000-\u303f\u3040-\u30ff\u3400-\u4dbf\u4e00-\u9fff\uac00-\ud7af\uf900-\ufaff"
    "\U00020000-\U0002ebef]"
)
# A websearch term: an optional "-", then a "quoted phrase" (closing quote optional) or a word.
_TERM = re.compile(r'(-?)"([^"]*)"?|(-?)(\S+)')


@dataclass(frozen=True)
class Terms:
    """The query as plain substrings, for CJK matching and highlighting."""

    include: tuple[str, ...]
    exclude: tuple[str, ...]


def parse_terms(q: str) -> Terms:
    include: list[str] = []
    exclude: list[str] = []
    for match in _TERM.finditer(q):
        negated = bool(match.group(1) or match.group(3))
        text = " ".join((match.group(2) if match.group(2) is not None else match.group(4)).split())
        if not text or text == "-" or (not negated and text.lower() == "or"):
            continue  # websearch's OR has no substring equivalent: the words are all required
        (exclude if negated else include).append(text)
    return Terms(tuple(include), tuple(exclude))


def has_cjk(text: str) -> bool:
    return bool(_CJK.search(text))


@dataclass(frozen=True)
class SearchHit:
    conversation: Conversation
    # None when the conversation's title matched: the link opens the conversation.
    message_uuid: UUID | None
    # Safe HTML: the escaped text around the hit, each hit wrapped in <mark>.
    snippet: SafeString
    # The title, highlighted the same way when it is what matched.
    title: SafeString
    # Found by meaning (recall's index), not by its words: shown as such.
    by_meaning: bool = False

    @property
    def url(self) -> str:
        url = reverse("conversation", args=[self.conversation.uuid])
        if self.message_uuid is None:
            return url
        return f"{url}?m={self.message_uuid}#m-{self.message_uuid}"


def search_for_user(user: User, q: str, *, limit: int = RESULT_LIMIT) -> list[SearchHit]:
    """The user's conversations matching `q` (see the module docstring); [] for a blank q."""
    q = " ".join((q or "").split())[:QUERY_MAX_CHARS]
    terms = parse_terms(q)
    if not q or not terms.include:
        return []
    hits = [_title_hit(c, terms) for c in _title_matches(user, q, terms, limit=limit)]
    if len(hits) >= limit:
        return hits
    seen = {hit.conversation.pk for hit in hits}
    for message in _ranked_messages(user, q, exclude_conversations=seen):
        if len(hits) >= limit:
            break
        if message.conversation_id not in seen:
            seen.add(message.conversation_id)
            hits.append(_message_hit(message, terms))
    room = min(MEANING_LIMIT, limit - len(hits))
    return hits + meaning_hits(user, q, exclude_conversations=seen, limit=room)


def meaning_hits(
    user: User, q: str, *, exclude_conversations: set[int], limit: int
) -> list[SearchHit]:
    """Conversations with a passage close in meaning to `q` that its words did not find,
    from recall's index: with the bundled embedder only (a provider's would bill every
    search), and above MEANING_MIN_SCORE (e5's cosines sit between 0.7 and 0.95)."""
    if limit <= 0 or not settings.RECALL_ENABLED or not store.vectors_available():
        return []
    embedder = embedders.current()
    if embedder.name != embedders.BUNDLED_NAME:
        return []
    vector = embedder.query(q, timeout=settings.RECALL_QUERY_TIMEOUT).vectors[0]
    found = rankings.nearest_for_owner(
        owner_id=user.pk,
        vector=vector,
        embedding_model=embedder.name,
        limit=limit * 8,
        exclude_conversations=list(exclude_conversations),
    )
    best: dict[int, rankings.Candidate] = {}
    chunks = {
        c.pk: c
        for c in MessageChunk.objects.filter(pk__in=[f.chunk_id for f in found]).select_related(
            "message__conversation"
        )
    }
    for candidate in found:
        chunk = chunks.get(candidate.chunk_id)
        if chunk is None or candidate.score < MEANING_MIN_SCORE:
            continue
        best.setdefault(chunk.conversation_id, candidate)
    return [_meaning_hit(chunks[c.chunk_id]) for c in list(best.values())[:limit]]


# --- Matching ------------------------------------------------------------------------


class _SimpleVector(Func):
    """to_tsvector('simple', <column>), the parse the message trigger stores.

    Not SearchVector: that wraps the column in COALESCE(..., '')."""

    function = "to_tsvector"
    template = "%(function)s('simple'::regconfig, %(expressions)s)"
    output_field = SearchVectorField()


_STORED_VECTOR = SearchVectorField()
_STORED_VECTOR.set_attributes_from_name("search_vector")


class _StoredVector(Expression):
    """A message's `search_vector` column, in whatever alias the query gives its table. The
    column is Postgres's alone (a trigger writes it), so the model does not declare it:
    every read of a message would otherwise carry its parsed text along."""

    output_field = SearchVectorField()

    def resolve_expression(self, query=None, allow_joins=True, reuse=None, *args, **kwargs):
        content = F("content").resolve_expression(query, allow_joins, reuse, *args, **kwargs)
        return Col(content.alias, _STORED_VECTOR)


def _vector(field: str) -> Expression:
    return _StoredVector() if field == "content" else _SimpleVector(F(field))


def _tsquery(q: str) -> SearchQuery:
    return SearchQuery(q, config="simple", search_type="websearch")


def _contains(field: str, text: str) -> Q:
    # Text without upper/lower case (Chinese) needs no case folding: plain LIKE is several
    # times cheaper than ILIKE/UPPER() on a scan.
    lookup = "contains" if text.lower() == text.upper() else "icontains"
    return Q(**{f"{field}__{lookup}": text})


def _substring_match(field: str, terms: Terms) -> Q:
    match = Q()
    for text in terms.include:
        match &= _contains(field, text)
    for text in terms.exclude:
        match &= ~_contains(field, text)
    return match


def _text_match(queryset: QuerySet, field: str, q: str, terms: Terms) -> QuerySet:
    if not has_cjk(q):
        return queryset.alias(search_vector=_vector(field)).filter(search_vector=_tsquery(q))
    matches_text = queryset.model.objects.alias(search_vector=_vector(field)).filter(
        search_vector=_tsquery(q)
    )
    # Chinese (and Japanese) is written without spaces, so the 'simple' parser keeps a whole
    # run of characters as one token and full-text search cannot find 世界 in 你好世界:
    # such queries also match by substring. That part reads every row of the user's
    # messages (a LIKE '%...%' has no index here; pg_trgm would give it one); the full-text
    # part stays an index lookup, a hashed subquery, so no row is parsed into a tsvector.
    return queryset.filter(Q(pk__in=matches_text.values("pk")) | _substring_match(field, terms))


def _title_matches(user: User, q: str, terms: Terms, *, limit: int) -> list[Conversation]:
    conversations = Conversation.objects.filter(owner=user).exclude(title="")
    matching = _text_match(conversations, "title", q, terms)
    return list(matching.order_by("-updated_at", "-id")[:limit])


def message_candidates(
    user: User, q: str, *, exclude_conversations: set[int] | None = None
) -> QuerySet[Message]:
    """The newest CANDIDATES matching user and assistant messages of the user's
    conversations, unevaluated (tests EXPLAIN it to see the index used)."""
    messages = Message.objects.filter(
        conversation__owner=user, role__in=[Role.USER, Role.ASSISTANT]
    ).exclude(conversation_id__in=exclude_conversations or set())
    matching = _text_match(messages, "content", q, parse_terms(q))
    return matching.order_by("-id")[:CANDIDATES]


def _ranked_messages(user: User, q: str, *, exclude_conversations: set[int]) -> list[Message]:
    """Matching messages, best first: rank, then newest."""
    candidates = message_candidates(user, q, exclude_conversations=exclude_conversations)
    ranked = Message.objects.filter(pk__in=candidates.values("pk")).select_related("conversation")
    rank = SearchRank(_StoredVector(), _tsquery(q))
    return list(ranked.annotate(rank=rank).order_by("-rank", "-id"))


# --- Snippets ------------------------------------------------------------------------


def _highlight_words(terms: Terms) -> list[str]:
    """Each phrase, then its words (a phrase may match across punctuation), longest first."""
    words = set(terms.include)
    for text in terms.include:
        words.update(text.split())
    return sorted(words, key=len, reverse=True)


def _pattern(words: list[str], *, whole_words: bool) -> re.Pattern:
    parts = []
    for word in words:
        escaped = re.escape(word)
        if whole_words and not has_cjk(word):
            escaped = rf"(?<!\w){escaped}(?!\w)"
        parts.append(escaped)
    return re.compile("|".join(parts), re.IGNORECASE)


def _marked(text: str, pattern: re.Pattern) -> str:
    """`text` escaped, with every match of `pattern` in <mark>. Escaping happens per piece,
    so nothing from the text can ever become markup."""
    out: list[str] = []
    position = 0
    for match in pattern.finditer(text):
        if match.end() == match.start():
            continue
        out.append(escape(text[position : match.start()]))
        out.append(f"<mark>{escape(match.group())}</mark>")
        position = match.end()
    out.append(escape(text[position:]))
    return "".join(out)


def _window(text: str, start: int) -> tuple[str, bool, bool]:
    """About SNIPPET_CHARS of `text` around position `start`, cut at spaces where possible."""
    begin = max(0, start - SNIPPET_BEFORE)
    if begin > 0:
        space = text.find(" ", begin, start)
        begin = space + 1 if space != -1 else begin
    end = min(len(text), begin + SNIPPET_CHARS)
    if end < len(text):
        space = text.rfind(" ", start, end)
        end = space if space > start else end
    return text[begin:end], begin > 0, end < len(text)


def _first_hit(text: str, terms: Terms) -> tuple[re.Pattern, re.Match | None]:
    """Whole words first, as full-text search matched them; substrings when that finds
    nothing (CJK matches substrings)."""
    words = _highlight_words(terms)
    pattern = _pattern(words, whole_words=True)
    first = pattern.search(text)
    if first is None:
        pattern = _pattern(words, whole_words=False)
        first = pattern.search(text)
    return pattern, first


def snippet(text: str, terms: Terms) -> SafeString:
    """A short, safe excerpt of `text` around the first hit, hits marked."""
    text = " ".join(text.split())
    pattern, first = _first_hit(text, terms)
    excerpt, cut_before, cut_after = _window(text, first.start() if first else 0)
    html = ("…" if cut_before else "") + _marked(excerpt, pattern) + ("…" if cut_after else "")
    return mark_safe(html)  # built from escaped pieces


def _title_hit(conversation: Conversation, terms: Terms) -> SearchHit:
    title = _marked(conversation.title, _first_hit(conversation.title, terms)[0])
    return SearchHit(
        conversation=conversation,
        message_uuid=None,
        snippet=mark_safe(""),
        title=mark_safe(title),
    )


def _meaning_hit(chunk: MessageChunk) -> SearchHit:
    message = chunk.message
    text = " ".join(chunk.text.split())
    cut = text[:SNIPPET_CHARS] + ("…" if len(text) > SNIPPET_CHARS else "")
    return SearchHit(
        conversation=message.conversation,
        message_uuid=message.uuid,
        snippet=mark_safe(escape(cut)),
        title=mark_safe(escape(message.conversation.display_title)),
        by_meaning=True,
    )


def _message_hit(message: Message, terms: Terms) -> SearchHit:
    return SearchHit(
        conversation=message.conversation,
        message_uuid=message.uuid,
        snippet=snippet(message.content, terms),
        title=mark_safe(escape(message.conversation.display_title)),
    )
