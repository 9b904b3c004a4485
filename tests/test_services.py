"""Writes and state changes."""

from decimal import Decimal

import pytest

from conversations import services
from conversations.errors import ReplyInFlight, ValidationFailed
from conversations.models import Message, MessageStatus, Role, UsageRecord
from tests.factories import ChatModelFactory, MessageFactory, UserFactory


@pytest.mark.django_db
def test_first_account_becomes_the_administrator():
    first = services.user_signup(username="first", password="a long passphrase 1")
    second = services.user_signup(username="second", password="a long passphrase 2")
    assert first.is_superuser and first.is_staff
    assert not second.is_superuser and not second.is_staff


@pytest.mark.django_db
def test_send_saves_user_message_and_pending_reply(conversation):
    sent = services.message_send(conversation=conversation, content="  Hi  ", idempotency_key="a")
    assert sent.created
    assert sent.user_message.content == "Hi"
    assert sent.reply.role == Role.ASSISTANT
    assert sent.reply.status == MessageStatus.PENDING
    assert sent.reply.parent_id == sent.user_message.id
    assert sent.reply.model_name == conversation.chat_model.name


@pytest.mark.django_db
def test_sending_twice_with_one_key_makes_one_message(conversation):
    first = services.message_send(conversation=conversation, content="Hi", idempotency_key="a")
    again = services.message_send(conversation=conversation, content="Hi", idempotency_key="a")
    assert not again.created
    assert again.user_message.pk == first.user_message.pk
    assert again.reply.pk == first.reply.pk
    assert Message.objects.filter(conversation=conversation).count() == 2


@pytest.mark.django_db
def test_a_second_send_while_a_reply_streams_is_refused_and_writes_nothing(conversation):
    services.message_send(conversation=conversation, content="one", idempotency_key="a")
    with pytest.raises(ReplyInFlight):
        services.message_send(conversation=conversation, content="two", idempotency_key="b")
    assert Message.objects.filter(conversation=conversation).count() == 2


@pytest.mark.django_db
@pytest.mark.parametrize("content", ["", "   ", "x" * 100_001])
def test_empty_or_oversized_messages_are_refused_with_a_reason(conversation, content):
    with pytest.raises(ValidationFailed) as error:
        services.message_send(conversation=conversation, content=content)
    assert error.value.message
    assert not Message.objects.exists()


@pytest.mark.django_db
def test_a_message_larger_than_the_models_window_is_refused_with_its_size(conversation):
    conversation.chat_model = ChatModelFactory(name="small", context_window=4_000, max_output=512)
    conversation.save()
    huge = "An English sentence of several words. " * 400  # 15,200 characters
    with pytest.raises(ValidationFailed) as error:
        services.message_send(conversation=conversation, content=huge, idempotency_key="k")
    assert "more than this model's window holds for one message" in error.value.message
    assert "about 3,1" in error.value.message  # (4,000 - 512) x 0.9, less the system prompt
    assert not Message.objects.exists()
    question = MessageFactory(conversation=conversation, content="A short question")
    with pytest.raises(ValidationFailed, match="window"):
        services.message_edit(message=question, content=huge)
    assert Message.objects.filter(conversation=conversation).count() == 1
    fits = services.message_send(conversation=conversation, content="Hi", idempotency_key="k2")
    assert fits.created


@pytest.mark.django_db
def test_new_message_continues_the_thread(conversation):
    first = services.message_send(conversation=conversation, content="one")
    services.reply_finish(
        reply_id=first.reply.id,
        outcome=services.CallOutcome(status=MessageStatus.COMPLETE, content="answer"),
    )
    second = services.message_send(conversation=conversation, content="two")
    assert second.user_message.parent_id == first.reply.id


@pytest.mark.django_db
def test_reply_claimed_twice_starts_once(conversation):
    sent = services.message_send(conversation=conversation, content="Hi")
    assert services.reply_start(reply_id=sent.reply.id, context={}) is True
    assert services.reply_start(reply_id=sent.reply.id, context={}) is False


@pytest.mark.django_db
def test_reply_finished_twice_writes_one_usage_record(conversation):
    sent = services.message_send(conversation=conversation, content="Hi")
    outcome = services.CallOutcome(
        status=MessageStatus.COMPLETE, content="Hello", prompt_tokens=10, completion_tokens=5
    )
    assert services.reply_finish(reply_id=sent.reply.id, outcome=outcome)
    assert not services.reply_finish(reply_id=sent.reply.id, outcome=outcome)
    assert UsageRecord.objects.count() == 1


@pytest.mark.django_db
def test_cost_prices_cached_prompt_tokens_at_the_cached_rate():
    model = ChatModelFactory(
        name="priced",
        input_price=Decimal("2"),
        cached_input_price=Decimal("0.5"),
        output_price=Decimal("8"),
    )
    cost = services.usage_cost(
        prompt=1_000_000, cached=400_000, completion=500_000, chat_model=model
    )
    # 600k uncached * 2 + 400k cached * 0.5 + 500k * 8, per million
    assert cost == Decimal("1.2") + Decimal("0.2") + Decimal("4")


@pytest.mark.django_db
def test_usage_record_snapshots_price_and_currency(conversation):
    sent = services.message_send(conversation=conversation, content="Hi")
    services.reply_finish(
        reply_id=sent.reply.id,
        outcome=services.CallOutcome(
            status=MessageStatus.COMPLETE,
            content="Hello",
            prompt_tokens=1000,
            completion_tokens=100,
            cached_tokens=200,
        ),
    )
    record = UsageRecord.objects.get()
    assert record.user == conversation.owner
    assert record.kind == "chat" and record.reported
    assert record.input_price == Decimal("2") and record.currency == "USD"
    assert record.cost == Decimal("0.0025")  # (800*2 + 200*0.5 + 100*8) / 1e6


@pytest.mark.django_db
def test_stale_replies_are_interrupted_and_keep_their_text(conversation, settings):
    from datetime import timedelta

    from django.utils import timezone

    old = timezone.now() - timedelta(seconds=settings.STREAM_STALE_AFTER * 3)
    reply = MessageFactory(
        conversation=conversation,
        role=Role.ASSISTANT,
        status=MessageStatus.STREAMING,
        content="partial",
    )
    Message.objects.filter(pk=reply.pk).update(heartbeat_at=old, created_at=old)
    ended = services.reply_interrupt_stale()
    reply.refresh_from_db()
    assert [m.pk for m in ended] == [reply.pk]
    assert reply.status == MessageStatus.INTERRUPTED and reply.content == "partial"


@pytest.mark.django_db
def test_live_replies_are_not_swept(conversation):
    from django.utils import timezone

    reply = MessageFactory(
        conversation=conversation, role=Role.ASSISTANT, status=MessageStatus.STREAMING
    )
    Message.objects.filter(pk=reply.pk).update(heartbeat_at=timezone.now())
    assert services.reply_interrupt_stale() == []


@pytest.mark.django_db
def test_retry_adds_a_sibling_reply_and_keeps_the_failed_one(conversation):
    sent = services.message_send(conversation=conversation, content="Hi")
    services.reply_finish(
        reply_id=sent.reply.id,
        outcome=services.CallOutcome(status=MessageStatus.FAILED, content="", error_text="x"),
    )
    sent.reply.refresh_from_db()
    retry = services.reply_retry(reply=sent.reply)
    assert retry.parent_id == sent.user_message.id and retry.status == MessageStatus.PENDING
    assert Message.objects.filter(pk=sent.reply.pk, status=MessageStatus.FAILED).exists()


@pytest.mark.django_db
def test_user_signup_is_separate_per_user():
    UserFactory(username="existing")
    user = services.user_signup(username="newbie", password="a long passphrase 3")
    assert not user.is_superuser
