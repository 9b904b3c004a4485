"""Factories for chatsite's models. The default chat model points at the fake provider."""

from decimal import Decimal

import factory
from django.contrib.auth import get_user_model

from conversations.models import (
    ChatModel,
    Conversation,
    ConversationSummary,
    Message,
    MessageStatus,
    Provider,
    Role,
    UsageBudget,
    UsageKind,
    UsageRecord,
)


class UserFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = get_user_model()
        django_get_or_create = ("username",)

    username = factory.Sequence(lambda n: f"user{n}")
    password = factory.django.Password("correct horse battery")


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
    a few statements (a factory per message would take minutes at 5,000). Returns the ids."""
    rows = Message.objects.bulk_create(
        Message(
            conversation=conversation,
            role=Role.USER if index % 2 == 0 else Role.ASSISTANT,
            content=f"turn {index} " + "lorem " * words,
            status=MessageStatus.COMPLETE,
        )
        for index in range(count)
    )
    for previous, message in zip(rows, rows[1:], strict=False):
        message.parent_id = previous.id
    Message.objects.bulk_update(rows[1:], ["parent"], batch_size=1000)
    return [m.id for m in rows]
