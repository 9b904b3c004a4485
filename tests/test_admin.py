"""The admin answers "who used what": every page renders, figures agree with the ledger."""

import re
from datetime import timedelta
from decimal import Decimal

import pytest
from django.contrib import admin
from django.test import RequestFactory
from django.urls import reverse
from django.utils import timezone

from conversations import usage
from conversations.errors import ProviderOutOfCredit
from conversations.models import MessageStatus, Role, UsageRecord
from tests.factories import (
    ChatModelFactory,
    ConversationFactory,
    ConversationSummaryFactory,
    MessageFactory,
    UsageBudgetFactory,
    UsageRecordFactory,
    UserFactory,
    thread,
)

pytestmark = pytest.mark.django_db


@pytest.fixture
def ledger(user, other_user, conversation):
    """Two users, two currencies, two days, a summary, an estimated and a retried call."""
    messages = thread(conversation, "What is a ledger?", "A book of accounts.")
    qwen = ChatModelFactory(
        provider__slug="qwen", provider__name="Qwen", provider__currency="CNY", name="qwen-plus"
    )
    other = ConversationFactory(owner=other_user, chat_model=qwen, title="Other")
    ConversationSummaryFactory(conversation=conversation, covers_through=messages[1])
    records = [
        UsageRecordFactory(
            user=user,
            conversation=conversation,
            message=messages[1],
            prompt_tokens=1000,
            cached_tokens=600,
            completion_tokens=200,
            cost=Decimal("0.0027"),
        ),
        UsageRecordFactory(
            user=user,
            conversation=conversation,
            message=messages[1],
            retried=True,
            prompt_tokens=0,
            completion_tokens=0,
            cost=Decimal(0),
        ),
        UsageRecordFactory(
            user=user,
            conversation=conversation,
            kind="summary",
            prompt_tokens=500,
            completion_tokens=100,
            cost=Decimal("0.0018"),
        ),
        UsageRecordFactory(
            user=other_user,
            conversation=other,
            provider_slug="qwen",
            model_name="qwen-plus",
            currency="CNY",
            prompt_tokens=2000,
            completion_tokens=300,
            reported=False,
            cost=Decimal("0.0022"),
        ),
    ]
    # One of alice's calls was yesterday (same month unless today is the 1st).
    yesterday = max(records[0].created_at - timedelta(days=1), usage.month_start())
    UsageRecord.objects.filter(pk=records[2].pk).update(created_at=yesterday)
    UsageBudgetFactory(token_limit=2_000)
    _failed_reply(other, code="out_of_credit", text=str(ProviderOutOfCredit.default_message))
    return records


def _failed_reply(conversation, *, code: str, text: str = "", minutes_ago: int = 0):
    return MessageFactory(
        conversation=conversation,
        role=Role.ASSISTANT,
        status=MessageStatus.FAILED if code != "swept" else MessageStatus.INTERRUPTED,
        content="",
        chat_model=conversation.chat_model,
        model_name=conversation.chat_model.name,
        error_code=code,
        error_text=text or code,
        completed_at=timezone.now() - timedelta(minutes=minutes_ago),
    )


def _admin_urls() -> list[tuple[str, str]]:
    """(name, url) of every changelist, and the change page of each model's first row."""
    urls = []
    request = RequestFactory().get("/admin/")
    for model, model_admin in admin.site._registry.items():
        info = (model._meta.app_label, model._meta.model_name)
        urls.append((f"{info} list", reverse("admin:{}_{}_changelist".format(*info))))
        # What the admin lists (a proxy's admin may list a part of its model's rows).
        first = model_admin.get_queryset(request).order_by("pk").first()
        if first is not None:
            urls.append(
                (f"{info} change", reverse("admin:{}_{}_change".format(*info), args=[first.pk]))
            )
    return urls


def test_every_admin_page_renders_with_data(admin_client, ledger):
    for name, url in _admin_urls():
        response = admin_client.get(url)
        assert response.status_code == 200, name
    assert admin_client.get("/admin/").status_code == 200


def test_a_non_staff_user_is_sent_to_the_admin_login(client, user, ledger):
    client.force_login(user)
    for name, url in [("index", "/admin/"), *_admin_urls()]:
        response = client.get(url)
        assert response.status_code == 302, name
        assert response.url.startswith("/admin/login/"), name


def test_admin_never_shows_an_api_key(admin_client, chat_model):
    provider = chat_model.provider
    for url in [
        "/admin/conversations/provider/",
        f"/admin/conversations/provider/{provider.pk}/change/",
        f"/admin/conversations/chatmodel/{chat_model.pk}/change/",
    ]:
        assert "test-key" not in admin_client.get(url).content.decode()


def _row_of(page: str, text: str) -> str:
    row = next(r for r in re.findall(r"<tr.*?</tr>", page, re.S) if text in r)
    return re.sub(r"<[^>]+>", "|", row)


def test_conversation_list_shows_messages_tokens_cost_per_currency_and_activity(
    admin_client, ledger, conversation
):
    page = admin_client.get("/admin/conversations/conversation/").content.decode()
    assert "Cost (CNY)" in page and "Cost (USD)" in page and "Last activity" in page
    row = _row_of(page, "A conversation")
    cells = [c for c in row.split("|") if c.strip()]
    # title, owner, model, messages, tokens (1200 + 0 + 600), CNY, USD, last activity
    assert cells[1:7] == ["alice", "local/fake-model", "2", "1800", "0", "0.0045"]


def test_conversation_search_finds_message_text_and_filters_narrow_the_list(
    admin_client, ledger, user
):
    found = admin_client.get("/admin/conversations/conversation/", {"q": "book of accounts"})
    assert found.context["cl"].result_count == 1
    by_owner = admin_client.get("/admin/conversations/conversation/", {"owner__id__exact": user.pk})
    assert [c.owner for c in by_owner.context["cl"].result_list] == [user]
    qwen = admin_client.get(
        "/admin/conversations/conversation/",
        {"chat_model__id__exact": ledger[3].conversation.chat_model_id},
    )
    assert [c.title for c in qwen.context["cl"].result_list] == ["Other"]
    this_year = admin_client.get(
        "/admin/conversations/conversation/", {"updated_at__year": timezone.localdate().year}
    )
    assert this_year.context["cl"].result_count == 2
    long_ago = admin_client.get("/admin/conversations/conversation/", {"updated_at__year": 2001})
    assert long_ago.context["cl"].result_count == 0


def test_conversation_page_shows_each_messages_usage_read_only(admin_client, ledger, conversation):
    page = admin_client.get(
        f"/admin/conversations/conversation/{conversation.pk}/change/"
    ).content.decode()
    assert "A book of accounts." in page
    assert "1200 tokens, 0.0027 USD" in page


def test_ledger_totals_agree_with_the_records(admin_client, ledger, user):
    response = admin_client.get("/admin/conversations/usagerecord/")
    totals = response.context["totals"]
    records = UsageRecord.objects.all()
    assert totals.calls == records.count() == 4
    assert totals.tokens == sum(r.prompt_tokens + r.completion_tokens for r in records)
    assert totals.cost == {"USD": Decimal("0.0045"), "CNY": Decimal("0.0022")}
    by_user = {
        (r["user__username"], r["currency"]): r["tokens"]
        for r in response.context["totals_by_user"]
    }
    assert by_user == {("alice", "USD"): 1800, ("mallory", "CNY"): 2300}
    by_model = {r["model_name"]: r["cost"] for r in response.context["totals_by_model"]}
    assert by_model == {"fake-model": Decimal("0.0045"), "qwen-plus": Decimal("0.0022")}
    assert sum(r["calls"] for r in response.context["totals_by_day"]) == 4
    page = response.content.decode()
    assert "0.0045 USD" in page and "0.0022 CNY" in page


def test_ledger_totals_follow_the_filters(admin_client, ledger, user):
    response = admin_client.get("/admin/conversations/usagerecord/", {"user__id__exact": user.pk})
    assert response.context["totals"].tokens == 1800
    assert response.context["totals"].cost == {"USD": Decimal("0.0045")}


def test_the_usage_page_agrees_with_the_ledger_and_the_admin(client, admin_client, ledger, user):
    client.force_login(user)
    response = client.get("/usage/")
    assert response.status_code == 200
    month = response.context["month"]
    mine = UsageRecord.objects.filter(user=user)
    assert month.totals.calls == mine.count() == 3
    assert month.totals.tokens == sum(r.prompt_tokens + r.completion_tokens for r in mine) == 1800
    assert month.totals.cost == {"USD": Decimal("0.0045")}
    assert sum(bar.tokens for bar in month.by_day) == 1800
    admin_totals = admin_client.get(
        "/admin/conversations/usagerecord/", {"user__id__exact": user.pk}
    ).context["totals"]
    assert (admin_totals.tokens, admin_totals.cost) == (month.totals.tokens, month.totals.cost)
    page = response.content.decode()
    assert 'id="usage-chart"' in page and "<rect" in page
    assert "0.0045 USD" in page and "CNY" not in page


def test_the_usage_page_shows_only_the_users_own_usage(client, ledger, other_user):
    client.force_login(other_user)
    month = client.get("/usage/").context["month"]
    assert month.totals.cost == {"CNY": Decimal("0.0022")}


def test_the_usage_page_can_show_an_earlier_month(client, user):
    client.force_login(user)
    response = client.get("/usage/", {"month": "2020-02"})
    assert response.context["month"].start.date().isoformat() == "2020-02-01"
    assert len(response.context["month"].by_day) == 29
    assert client.get("/usage/", {"month": "nonsense"}).status_code == 200


def test_the_usage_page_needs_a_login(client):
    assert client.get("/usage/").status_code == 302


def test_admin_can_change_a_price_and_later_calls_use_it(admin_client, chat_model):
    url = f"/admin/conversations/chatmodel/{chat_model.pk}/change/"
    form = admin_client.get(url).context["adminform"].form
    data = {k: v for k, v in form.initial.items() if v is not None}
    data |= {"provider": chat_model.provider_id, "input_price": "4", "token_ratio": "1.0"}
    # The dated prices' inline, empty.
    data |= {"prices-TOTAL_FORMS": "0", "prices-INITIAL_FORMS": "0"}
    response = admin_client.post(url, data)
    assert response.status_code == 302, response.content.decode()[:3000]
    chat_model.refresh_from_db()
    assert chat_model.input_price == Decimal("4")


def test_users_without_rows_appear_in_the_budget_list_when_near(admin_client, ledger):
    UserFactory(username="quiet")
    page = admin_client.get("/admin/conversations/usagebudget/").content.decode()
    # Default 2,000 tokens: alice used 1,800 (90%), mallory 2,300 (over).
    flagged = re.search(r'id="budgets-near-or-over".*?</table>', page, re.S).group(0)
    assert "90%" in flagged and "115%" in flagged and "quiet" not in flagged, flagged


def test_recent_provider_errors_list_the_replies_a_provider_failed_newest_first(
    admin_client, conversation
):
    _failed_reply(conversation, code="rate_limited", minutes_ago=30)
    _failed_reply(conversation, code="out_of_credit", text="The provider account is out of credit")
    _failed_reply(conversation, code="swept")  # ended by a sweep: not the provider's doing
    MessageFactory(conversation=conversation, role=Role.ASSISTANT, content="Fine.")
    page = admin_client.get(reverse("admin:conversations_providerfailure_changelist"))
    assert page.status_code == 200
    rows = re.findall(r'<td class="field-error_code">([^<]+)</td>', page.content.decode())
    assert rows == ["out_of_credit", "rate_limited"]
    assert conversation.chat_model.provider.name in page.content.decode()
    narrowed = admin_client.get(
        reverse("admin:conversations_providerfailure_changelist"), {"error_code": "out_of_credit"}
    )
    assert re.findall(r'<td class="field-error_code">([^<]+)</td>', narrowed.content.decode()) == [
        "out_of_credit"
    ]
