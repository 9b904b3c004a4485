"""Factories for chatsite's models. The default chat model points at the fake provider."""

from decimal import Decimal
from functools import cache

import factory
from django.contrib.auth import get_user_model
from django.contrib.auth.hashers import make_password
from django.db import connection
from django.utils import timezone

from conversations.models import (
    ChatModel,
    Conversation,
    ConversationSummary,
    IncidentKind,
    Message,
    MessageStatus,
    Provider,
    ProviderIncident,
    Role,
    UsageBudget,
    UsageKind,
    UsageRecord,
)
from conversations.recall.embedders import BUNDLED_DIMENSIONS, BUNDLED_NAME, Embedded, bundled


@cache
def password_hash(raw: str | None) -> str:
    """The real hasher's hash of `raw`, computed once per password per run: the hasher is
    deliberately slow (~0.7 s here) and every test's users would pay it again. Users
    made with the same password share one salt, which no test looks at; `check_password`
    and the login form verify them exactly as before."""
    return make_password(raw)


class UserFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = get_user_model()
        django_get_or_create = ("username",)

    username = factory.Sequence(lambda n: f"user{n}")
    password = factory.django.Password("correct horse battery", transform=password_hash)


class ProviderFactory(factory.django.DjangoModelFactory):
    """The `local` provider: enabled in tests by LOCAL_BASE_URL pointing at the fake server."""

    class Meta:
        model = Provider
        django_get_or_create = ("slug",)

    slug = "local"
    name = "Local server"
    base_url = "http://127.0.0.1:9/v1"
    currency = "USD"


class ChatModelFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = ChatModel
        django_get_or_create = ("provider", "name")

    provider = factory.SubFactory(ProviderFactory)
    name = "fake-model"
    context_window = 32_768
    max_output = 4_096
    input_price = Decimal("2")
    cached_input_price = Decimal("0.5")
    output_price = Decimal("8")


class ConversationFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = Conversation

    owner = factory.SubFactory(UserFactory)
    chat_model = factory.SubFactory(ChatModelFactory)
    title = "A conversation"


class MessageFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = Message

    conversation = factory.SubFactory(ConversationFactory)
    role = Role.USER
    content = factory.Sequence(lambda n: f"message {n}")
    status = MessageStatus.COMPLETE


def thread(conversation: Conversation, *texts: str) -> list[Message]:
    """Alternating user/assistant messages, each the child of the one before."""
    messages, parent = [], None
    for index, text in enumerate(texts):
        role = Role.USER if index % 2 == 0 else Role.ASSISTANT
        parent = MessageFactory(conversation=conversation, role=role, content=text, parent=parent)
        messages.append(parent)
    return messages


class ApiTokenFactory(factory.django.DjangoModelFactory):
    """A live token made by the real service; its one-time secret is on `.secret`."""

    class Meta:
        model = "api.ApiToken"

    user = factory.SubFactory(UserFactory)
    name = factory.Sequence(lambda n: f"token {n}")

    @classmethod
    def _create(cls, model_class, user, name):
        from api.services import api_token_create

        created = api_token_create(user=user, name=name)
        created.token.secret = created.secret
        return created.token


class UsageRecordFactory(factory.django.DjangoModelFactory):
    """A ledger row as the services write it (price snapshot of the default fake model)."""

    class Meta:
        model = UsageRecord

    user = factory.SubFactory(UserFactory)
    provider_slug = "local"
    model_name = "fake-model"
    kind = UsageKind.CHAT
    prompt_tokens = 1000
    completion_tokens = 500
    input_price = Decimal("2")
    cached_input_price = Decimal("0.5")
    output_price = Decimal("8")
    cost = Decimal("0.006")
    currency = "USD"


class UsageBudgetFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = UsageBudget

    user = None
    token_limit = 10_000
    currency = "USD"


class ProviderIncidentFactory(factory.django.DjangoModelFactory):
    """An open error-rate incident of the default fake model, e-mailed already."""

    class Meta:
        model = ProviderIncident

    chat_model = factory.SubFactory(ChatModelFactory)
    kind = IncidentKind.ERROR_RATE
    opened_at = factory.LazyFunction(timezone.now)
    value = 0.5
    threshold = 0.2
    samples = 10
    emailed_at = factory.LazyFunction(timezone.now)


class ConversationSummaryFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = ConversationSummary

    conversation = factory.SubFactory(ConversationFactory)
    covers_through = factory.LazyAttribute(lambda o: MessageFactory(conversation=o.conversation))
    text = "What was said so far."
    token_count = 12
    model_name = "fake-model"


def long_thread(conversation: Conversation, count: int, *, words: int = 12) -> list[int]:
    """`count` alternating finished messages, each the child of the one before, written in
    one statement (a factory per message would take minutes at 5,000): their ids are
    drawn from the table's sequence first, in ascending order, so each row names its
    parent as it is inserted. Returns the ids."""
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT nextval(pg_get_serial_sequence(%s, 'id')) FROM generate_series(1, %s)",
            [Message._meta.db_table, count],
        )
        ids = sorted(row[0] for row in cursor.fetchall())
    Message.objects.bulk_create(
        Message(
            id=message_id,
            parent_id=parent_id,
            conversation=conversation,
            role=Role.USER if index % 2 == 0 else Role.ASSISTANT,
            content=f"turn {index} " + "lorem " * words,
            status=MessageStatus.COMPLETE,
        )
        for index, (message_id, parent_id) in enumerate(zip(ids, [None, *ids[:-1]], strict=True))
    )
    return ids


# --- Recall: a long chat with a fact in its first turns, indexed ------------------------

FACT = "By the way, the code of my gym locker is 4711, please remember it."
QUESTION = "What was the code of my gym locker again?"


def long_chat_with_fact(owner, *, turns: int = 300, fact_turn: int = 5):
    """`turns` messages over a 2,400-token window, the fact in user turn `fact_turn`."""
    model = ChatModelFactory(name="small-window", context_window=2400, max_output=200)
    conversation = ConversationFactory(owner=owner, chat_model=model)
    texts = []
    for index in range(turns):
        if index == 2 * (fact_turn - 1):
            texts.append(FACT)
        elif index % 2 == 0:
            texts.append(f"Turn {index}: let us talk about the weather on day {index} instead.")
        else:
            texts.append(f"Reply {index}: the weather on day {index} was mild and grey.")
    messages = thread(conversation, *texts)
    from conversations import services
    from conversations.recall import embedders

    # Indexed as the service indexes any chat; the bundled embedder's vectors for these
    # texts (the same in every such chat: a 120-turn one is the start of the 300-turn one)
    # are computed once per run. A provider's embedder, when configured, is called as is.
    is_bundled = embedders.current() is embedders.bundled()
    services.messages_index(
        message_ids=[m.id for m in messages], embedder=_remembering if is_bundled else None
    )
    return conversation, messages


class RememberingEmbedder:
    """The bundled embedder, remembering each passage's vector for the rest of the run: it
    is deterministic, and ~0.05 s a passage made every long chat cost seconds to build.
    Queries go to it unremembered."""

    name = BUNDLED_NAME
    dimensions = BUNDLED_DIMENSIONS

    def __init__(self) -> None:
        self._vectors: dict[str, list[float]] = {}

    def passages(self, texts: list[str]) -> Embedded:
        new = [text for text in dict.fromkeys(texts) if text not in self._vectors]
        if new:
            self._vectors.update(zip(new, bundled().passages(new).vectors, strict=True))
        return Embedded([list(self._vectors[text]) for text in texts])

    def query(self, text: str, *, timeout: float) -> Embedded:
        return bundled().query(text, timeout=timeout)


_remembering = RememberingEmbedder()


def pending_reply_to(conversation, parent, text=QUESTION):
    question = MessageFactory(
        conversation=conversation, role=Role.USER, content=text, parent=parent
    )
    reply = MessageFactory(
        conversation=conversation,
        role=Role.ASSISTANT,
        status="pending",
        content="",
        parent=question,
    )
    return Message.objects.select_related("conversation__chat_model").get(pk=reply.pk)
