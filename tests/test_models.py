"""Invariants the database itself holds."""

import pytest
from django.db import IntegrityError, transaction

from conversations.models import MessageStatus, Role
from tests.factories import MessageFactory


@pytest.mark.django_db
def test_database_refuses_a_second_reply_in_flight(conversation):
    MessageFactory(conversation=conversation, role=Role.ASSISTANT, status=MessageStatus.STREAMING)
    with pytest.raises(IntegrityError), transaction.atomic():
        MessageFactory(conversation=conversation, role=Role.ASSISTANT, status=MessageStatus.PENDING)


@pytest.mark.django_db
def test_finished_replies_do_not_count_as_in_flight(conversation):
    for status in (MessageStatus.COMPLETE, MessageStatus.FAILED, MessageStatus.CANCELLED):
        MessageFactory(conversation=conversation, role=Role.ASSISTANT, status=status)
    MessageFactory(conversation=conversation, role=Role.ASSISTANT, status=MessageStatus.PENDING)


@pytest.mark.django_db
def test_replies_in_flight_in_different_conversations_are_fine(user, chat_model):
    from tests.factories import ConversationFactory

    for _ in range(2):
        MessageFactory(
            conversation=ConversationFactory(owner=user, chat_model=chat_model),
            role=Role.ASSISTANT,
            status=MessageStatus.STREAMING,
        )


@pytest.mark.django_db
def test_database_refuses_a_reused_idempotency_key(conversation):
    MessageFactory(conversation=conversation, idempotency_key="k-1")
    with pytest.raises(IntegrityError), transaction.atomic():
        MessageFactory(conversation=conversation, idempotency_key="k-1")


@pytest.mark.django_db
def test_same_idempotency_key_is_fine_in_another_conversation(conversation, user, chat_model):
    from tests.factories import ConversationFactory

    MessageFactory(conversation=conversation, idempotency_key="k-1")
    other = ConversationFactory(owner=user, chat_model=chat_model)
    MessageFactory(conversation=other, idempotency_key="k-1")


@pytest.mark.django_db
def test_only_user_messages_carry_an_idempotency_key(conversation):
    with pytest.raises(IntegrityError), transaction.atomic():
        MessageFactory(conversation=conversation, role=Role.ASSISTANT, idempotency_key="k-2")


@pytest.mark.django_db
def test_built_in_catalogue_is_present_after_migrate():
    from conversations.models import ChatModel, Provider

    assert set(Provider.objects.values_list("slug", flat=True)) >= {
        "deepseek",
        "dashscope",
        "zhipu",
        "openai",
        "local",
    }
    reasoner = ChatModel.objects.get(provider__slug="deepseek", name="deepseek-reasoner")
    assert reasoner.always_thinks and reasoner.provider.currency == "CNY"
    assert ChatModel.objects.get(name="gpt-4o-mini").provider.currency == "USD"
