"""Monthly budgets: a warning from 80%, a refusal at 100%, an admin can raise the limit."""

from datetime import timedelta
from decimal import Decimal

import pytest
from channels.db import database_sync_to_async
from django.db import connection
from django.test.utils import CaptureQueriesContext

from conversations import limits, selectors, services, usage
from conversations.errors import BudgetExceeded
from conversations.models import Message, UsageBudget, UsageRecord
from tests.factories import MessageFactory, UsageBudgetFactory, UsageRecordFactory
from tests.fake_provider import Reply
from tests.wsclient import ChatSocket


def _use(user, tokens: int, **fields):
    return UsageRecordFactory(user=user, prompt_tokens=tokens, completion_tokens=0, **fields)


@pytest.mark.django_db
def test_below_80_percent_the_chat_page_shows_no_warning(client, conversation, user):
    UsageBudgetFactory(token_limit=10_000)
    _use(user, 7_900)
    client.force_login(user)
    page = client.get(f"/c/{conversation.uuid}/").content.decode()
    assert 'id="budget-notice"' not in page


@pytest.mark.django_db
def test_at_80_percent_the_chat_page_warns_near_the_composer(client, conversation, user):
    UsageBudgetFactory(token_limit=10_000)
    _use(user, 8_000)
    client.force_login(user)
    page = client.get(f"/c/{conversation.uuid}/").content.decode()
    assert 'id="budget-notice"' in page
    assert "80% of this month" in page and "8,000 of 10,000 tokens" in page
    assert page.index('id="budget-notice"') < page.index('id="composer"')


@pytest.mark.django_db
def test_at_100_percent_sending_is_refused_and_nothing_is_written(conversation, user):
    UsageBudgetFactory(token_limit=10_000)
    _use(user, 10_000)
    with pytest.raises(BudgetExceeded, match="budget"):
        services.message_send(conversation=conversation, content="Hello", idempotency_key="k")
    assert not Message.objects.exists()


@pytest.mark.django_db
def test_retry_is_refused_too_when_over_budget(conversation, user):
    question = MessageFactory(conversation=conversation)
    failed = MessageFactory(
        conversation=conversation, parent=question, role="assistant", status="failed"
    )
    UsageBudgetFactory(token_limit=100)
    _use(user, 100)
    with pytest.raises(BudgetExceeded):
        services.reply_retry(reply=failed)
    assert Message.objects.count() == 2


@pytest.mark.django_db
def test_last_months_usage_does_not_count(conversation, user):
    UsageBudgetFactory(token_limit=10_000)
    old = _use(user, 50_000)
    last_month = usage.month_start() - timedelta(days=3)
    UsageRecord.objects.filter(pk=old.pk).update(created_at=last_month)
    assert not usage.budget_status(user).is_over
    services.message_send(conversation=conversation, content="Hello")


@pytest.mark.django_db
def test_a_money_limit_counts_only_its_own_currency(user):
    UsageBudgetFactory(token_limit=None, money_limit=Decimal("1.00"), currency="USD")
    UsageRecordFactory(user=user, cost=Decimal("0.85"), currency="USD")
    UsageRecordFactory(user=user, cost=Decimal("50"), currency="CNY", provider_slug="qwen")
    status = usage.budget_status(user)
    assert status.money_used == Decimal("0.85")
    assert status.is_near and not status.is_over
    assert "0.85 of 1.00 USD" in status.summary


@pytest.mark.django_db
def test_a_users_own_budget_replaces_the_site_default(user, other_user):
    UsageBudgetFactory(token_limit=1_000)
    UsageBudgetFactory(user=user, token_limit=100_000)
    _use(user, 5_000)
    _use(other_user, 5_000)
    assert not usage.budget_status(user).is_near
    assert usage.budget_status(other_user).is_over


@pytest.mark.django_db
def test_without_any_budget_nothing_is_limited(conversation, user):
    _use(user, 10_000_000)
    assert usage.budget_status(user).share == 0
    services.message_send(conversation=conversation, content="Hello")


@pytest.mark.django_db
def test_admin_lists_who_is_near_or_over(admin_client, user, other_user):
    UsageBudgetFactory(token_limit=10_000)
    _use(user, 8_500)
    _use(other_user, 12_000)
    flagged = usage.budgets_near_or_over()
    assert [(s.user, s.percent) for s in flagged] == [(other_user, 120), (user, 85)]
    page = admin_client.get("/admin/conversations/usagebudget/").content.decode()
    assert "mallory" in page and "alice" in page and "Over: sending refused" in page


@pytest.mark.django_db
def test_an_admin_raising_the_limit_lets_the_user_send_again(admin_client, conversation, user):
    default = UsageBudgetFactory(token_limit=10_000)
    _use(user, 10_000)
    with pytest.raises(BudgetExceeded):
        services.message_send(conversation=conversation, content="Hello")
    response = admin_client.post(
        "/admin/conversations/usagebudget/add/",
        {"user": user.pk, "token_limit": 50_000, "money_limit": "", "currency": "USD"},
    )
    assert response.status_code == 302, response.content.decode()[:2000]
    assert UsageBudget.objects.get(user=user).token_limit == 50_000
    sent = services.message_send(conversation=conversation, content="Hello")
    assert sent.created
    default.refresh_from_db()
    assert default.token_limit == 10_000


@pytest.mark.django_db(transaction=True)
async def test_over_budget_send_over_the_socket_gets_a_clear_notice(
    conversation, user, fake_provider
):
    await database_sync_to_async(UsageBudgetFactory)(token_limit=1_000)
    await database_sync_to_async(_use)(user, 1_000)
    fake_provider.script(Reply(content="never"))
    tab = ChatSocket(conversation, user)
    await tab.connect()
    await tab.say("Hello", "k1")
    await tab.read_until(lambda page: any("budget" in n for n in page.notices))
    await tab.close()
    assert await database_sync_to_async(Message.objects.count)() == 0
    assert fake_provider.chat_requests == []


def _checked_at_send(conversation):
    """The budget as a send sees it: read with the conversation in one query."""
    return usage.budget_status_of_owner(
        selectors.conversation_for_send(conversation, idempotency_key=None)
    )


@pytest.mark.django_db
def test_a_send_reads_the_same_budget_use_as_the_page(conversation, user, other_user):
    UsageBudgetFactory(token_limit=1_000)  # the site default...
    UsageBudgetFactory(user=user, token_limit=None, money_limit=Decimal("1.00"), currency="USD")
    UsageRecordFactory(user=user, prompt_tokens=700, completion_tokens=0, cost=Decimal("0.85"))
    UsageRecordFactory(user=user, cost=Decimal("50"), currency="CNY", provider_slug="qwen")
    old = UsageRecordFactory(user=user, cost=Decimal("9"))
    UsageRecord.objects.filter(pk=old.pk).update(created_at=usage.month_start() - timedelta(days=3))
    _use(other_user, 5_000)
    page, send = usage.budget_status(user), _checked_at_send(conversation)
    assert send.budget.pk == page.budget.pk and send.budget.user_id == user.pk  # ...replaced
    assert (send.tokens_used, send.money_used) == (page.tokens_used, page.money_used)
    assert send.money_used == Decimal("0.85") and send.tokens_used == 700 + 1_500
    assert send.is_near and not send.is_over
    assert send.summary == page.summary == "0.85 of 1.00 USD"


@pytest.mark.django_db
def test_a_send_sees_the_site_default_or_no_budget(conversation, user):
    _use(user, 2_000)
    assert _checked_at_send(conversation).budget is None
    assert _checked_at_send(conversation).share == 0
    UsageBudgetFactory(token_limit=2_000)
    assert _checked_at_send(conversation).is_over


@pytest.mark.django_db
def test_a_send_reads_its_checks_with_the_conversation_in_one_query(
    conversation, user, django_assert_num_queries
):
    UsageBudgetFactory(token_limit=10_000)
    services.message_send(conversation=conversation, content="First", idempotency_key="k1")
    with django_assert_num_queries(1):
        current = selectors.conversation_for_send(conversation, idempotency_key="k1")
        assert limits.replies_in_flight(current) == 1
        assert not usage.budget_status_of_owner(current).is_over
        assert current.chat_model.provider.slug  # loaded with it
    with CaptureQueriesContext(connection) as queries:
        again = services.message_send(conversation=current, content="First", idempotency_key="k1")
    assert not again.created
    read = " ".join(q["sql"] for q in queries.captured_queries)
    assert "usagebudget" not in read and "COUNT(" not in read
    assert '"idempotency_key" =' not in read  # the first send is loaded by its id
