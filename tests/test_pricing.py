"""Dated and time-banded prices: each call priced by the rates in force at its start, kept
as a snapshot that later edits never rewrite, and re-priced only on purpose."""

import re
from datetime import datetime, time, timedelta
from decimal import Decimal
from zoneinfo import ZoneInfo

import pytest
from django.db.models import Sum
from django.utils import timezone

from conversations import services, usage
from conversations.models import (
    ChatModel,
    ModelPrice,
    PriceBand,
    Provider,
    Repricing,
    UsageKind,
    UsageRecord,
)
from tests.factories import ChatModelFactory, UserFactory

pytestmark = pytest.mark.django_db

BEIJING = ZoneInfo("Asia/Shanghai")


def _band(price, label="peak", starts="09:00", ends="12:00", weekdays="12345", **rates):
    return PriceBand.objects.create(
        price=price,
        label=label,
        time_zone="Asia/Shanghai",
        weekdays=weekdays,
        starts=time.fromisoformat(starts),
        ends=time.fromisoformat(ends),
        input_price=rates.get("input", Decimal("4")),
        cached_input_price=rates.get("cached", Decimal("1")),
        output_price=rates.get("output", Decimal("16")),
    )


def _dated(chat_model, effective_from, input="3", cached="0.75", output="12"):
    return ModelPrice.objects.create(
        chat_model=chat_model,
        effective_from=effective_from,
        input_price=Decimal(input),
        cached_input_price=Decimal(cached),
        output_price=Decimal(output),
    )


def _call(chat_model, user, started_at, prompt=1_000_000, completion=0):
    outcome = services.CallOutcome(
        status="complete",
        content="ok",
        prompt_tokens=prompt,
        completion_tokens=completion,
        cached_tokens=0,
        started_at=started_at,
    )
    return services.usage_record_create(
        user_id=user.pk,
        conversation=None,
        message=None,
        chat_model=chat_model,
        model_name=chat_model.name,
        kind=UsageKind.CHAT,
        outcome=outcome,
    )


@pytest.fixture
def chat_model(db):
    return ChatModelFactory()  # base: 2 in, 0.5 cached, 8 out per million


# --- which rates are in force ---------------------------------------------------------


def test_a_price_change_mid_month_prices_each_call_by_its_own_date(chat_model, user):
    change = datetime(2026, 11, 15, tzinfo=BEIJING)
    _dated(chat_model, change, input="3")
    before = _call(chat_model, user, change - timedelta(seconds=1))
    after = _call(chat_model, user, change)
    assert (before.input_price, before.cost, before.price_id) == (Decimal("2"), Decimal("2"), None)
    assert (after.input_price, after.cost) == (Decimal("3"), Decimal("3"))
    assert after.price_id is not None and after.priced_at == change
    month = UsageRecord.objects.filter(user=user).aggregate(total=Sum("cost"))["total"]
    assert month == Decimal("5")


def test_a_call_that_straddles_a_band_edge_is_priced_by_its_start(chat_model, user):
    price = _dated(chat_model, datetime(2026, 1, 1, tzinfo=BEIJING))
    _band(price, starts="09:00", ends="12:00")
    # A Wednesday: started in the peak band, 20 seconds before it ends.
    started = datetime(2026, 11, 18, 11, 59, 50, tzinfo=BEIJING)
    record = _call(chat_model, user, started)
    assert record.price_band == "peak" and record.priced_at == started
    assert record.input_price == Decimal("4") and record.cost == Decimal("4")
    # A call starting as it ends is off-peak: the band's end is not in it.
    later = _call(chat_model, user, datetime(2026, 11, 18, 12, 0, tzinfo=BEIJING))
    assert (later.price_band, later.input_price) == ("", Decimal("3"))


def test_an_open_call_keeps_the_rates_of_its_start_when_it_closes_in_another_band(
    chat_model, user, conversation
):
    price = _dated(chat_model, timezone.now() - timedelta(days=1))
    # The whole day is "peak" now, as the call opens.
    band = _band(price, starts="00:00", ends="00:00", weekdays="1234567")
    record = services.ledger.usage_record_open(
        prompt_estimate=10,
        user_id=user.pk,
        conversation=conversation,
        message=None,
        chat_model=chat_model,
        model_name=chat_model.name,
        kind=UsageKind.SUMMARY,
    )
    band.delete()  # the band is gone by the time the answer arrives
    outcome = services.CallOutcome(
        status="complete", content="s", prompt_tokens=1_000_000, completion_tokens=0
    )
    services.ledger.usage_record_close(record, chat_model=chat_model, outcome=outcome)
    record.refresh_from_db()
    assert (record.price_band, record.cost) == ("peak", Decimal("4"))


def test_a_later_price_edit_never_rewrites_a_record(chat_model, user):
    price = _dated(chat_model, datetime(2026, 1, 1, tzinfo=BEIJING))
    record = _call(chat_model, user, datetime(2026, 11, 2, 20, 0, tzinfo=BEIJING))
    price.input_price = Decimal("30")
    price.save()
    record.refresh_from_db()
    assert (record.input_price, record.cost) == (Decimal("3"), Decimal("3"))
    # The saving process reads the new price at once for the next call.
    assert _call(chat_model, user, timezone.now()).input_price == Decimal("30")


@pytest.mark.parametrize(
    ("moment", "covered"),
    [
        (datetime(2026, 11, 16, 23, 30), True),  # Monday night, in Monday's band
        (datetime(2026, 11, 17, 1, 30), True),  # Tuesday 01:30: still Monday's band
        (datetime(2026, 11, 17, 2, 0), False),  # its end
        (datetime(2026, 11, 16, 1, 30), False),  # Monday 01:30 belongs to Sunday's band
        (datetime(2026, 11, 16, 12, 0), False),
    ],
)
def test_a_band_past_midnight_belongs_to_the_weekday_it_starts_on(chat_model, moment, covered):
    price = _dated(chat_model, datetime(2026, 1, 1, tzinfo=BEIJING))
    band = _band(price, label="night", starts="23:00", ends="02:00", weekdays="1")
    assert usage.band_covers(band, moment.replace(tzinfo=BEIJING)) is covered


def test_a_band_reads_the_hour_in_its_own_time_zone(chat_model):
    price = _dated(chat_model, datetime(2026, 1, 1, tzinfo=BEIJING))
    band = _band(price, starts="09:00", ends="12:00")
    # 02:00 UTC on a Wednesday is 10:00 in Beijing.
    assert usage.band_covers(band, datetime(2026, 11, 18, 2, 0, tzinfo=ZoneInfo("UTC")))
    assert not usage.band_covers(band, datetime(2026, 11, 18, 10, 0, tzinfo=ZoneInfo("UTC")))


def test_a_band_with_a_weekday_or_zone_that_is_not_one_is_refused(chat_model):
    from django.core.exceptions import ValidationError

    price = _dated(chat_model, datetime(2026, 1, 1, tzinfo=BEIJING))
    band = PriceBand(price=price, label="x", starts=time(9), ends=time(10))
    for field, value in (("weekdays", "08"), ("weekdays", "11"), ("time_zone", "Mars/Base")):
        setattr(band, field, value)
        with pytest.raises(ValidationError) as refused:
            band.full_clean()
        assert field in refused.value.message_dict
        band.weekdays, band.time_zone = "12345", "Asia/Shanghai"


# --- the catalogue's DeepSeek schedule -------------------------------------------------


@pytest.mark.parametrize(
    ("moment", "band", "rates"),
    [
        # Before peak billing began: the model's base rates.
        (datetime(2026, 8, 16, 10, 0), "", ("2", "0.2", "3")),
        # Tuesday 1 September, 10:00 Beijing: peak; 13:00: off-peak.
        (datetime(2026, 9, 1, 10, 0), "peak", ("3", "0.1", "9")),
        (datetime(2026, 9, 1, 13, 0), "", ("1.5", "0.05", "4.5")),
        (datetime(2026, 9, 1, 17, 59), "peak", ("3", "0.1", "9")),
        (datetime(2026, 9, 1, 18, 0), "", ("1.5", "0.05", "4.5")),
        # Saturday 22 August had peak hours; from 23 August weekends are off-peak.
        (datetime(2026, 8, 22, 10, 0), "peak", ("3", "0.1", "9")),
        (datetime(2026, 9, 5, 10, 0), "", ("1.5", "0.05", "4.5")),
    ],
)
def test_deepseeks_peak_hours_are_in_the_catalogue(moment, band, rates):
    deepseek_chat = ChatModel.objects.get(provider__slug="deepseek", name="deepseek-chat")
    quoted = usage.rates_at(deepseek_chat, moment.replace(tzinfo=BEIJING))
    assert quoted.band == band
    assert (quoted.input, quoted.cached_input, quoted.output) == tuple(map(Decimal, rates))


def test_the_catalogue_keeps_an_admins_edit_of_a_dated_price():
    flash = ChatModel.objects.get(provider__slug="deepseek", name="deepseek-v4-flash")
    first = flash.prices.order_by("effective_from").first()
    first.input_price = Decimal("1.6")
    first.save()
    services.catalogue_sync_presets()
    assert flash.prices.count() == 2
    first.refresh_from_db()
    assert first.input_price == Decimal("1.6")
    assert first.bands.count() == 2 and first.source.startswith("https://api-docs.deepseek.com")


def test_the_pro_model_costs_three_times_the_flash_one_at_peak():
    provider = Provider.objects.get(slug="deepseek")
    peak = datetime(2026, 9, 1, 10, 0, tzinfo=BEIJING)
    flash, pro = (
        usage.rates_at(ChatModel.objects.get(provider=provider, name=name), peak)
        for name in ("deepseek-v4-flash", "deepseek-v4-pro")
    )
    assert (pro.input, pro.output) == (flash.input * 3, flash.output * 3)


# --- re-pricing on purpose -------------------------------------------------------------


def test_repricing_a_period_applies_a_late_price_and_records_who_did_it(chat_model, user):
    staff = UserFactory(is_staff=True)
    inside = [_call(chat_model, user, timezone.now()) for _ in range(3)]
    outside = _call(chat_model, user, timezone.now())
    UsageRecord.objects.filter(pk=outside.pk).update(created_at=timezone.now() - timedelta(days=40))
    # A price announced late, in force since a month ago.
    _dated(chat_model, timezone.now() - timedelta(days=30), input="2.5")
    starts, ends = timezone.now() - timedelta(days=7), timezone.now() + timedelta(minutes=1)

    preview = usage.reprice_preview(chat_model, starts, ends)
    assert (preview.records, preview.changed) == (3, 3)
    assert preview.before == {"USD": Decimal("6")} and preview.after == {"USD": Decimal("7.5")}
    assert all(UsageRecord.objects.get(pk=r.pk).cost == Decimal("2") for r in inside), (
        "a preview writes nothing"
    )

    done = services.usage_reprice(chat_model=chat_model, starts=starts, ends=ends, done_by=staff)
    assert (done.records, done.done_by) == (3, staff)
    assert Decimal(done.cost_before["USD"]) == 6 and Decimal(done.cost_after["USD"]) == 7.5
    for record in inside:
        record.refresh_from_db()
        assert (record.input_price, record.cost, record.price_id is not None) == (
            Decimal("2.5"),
            Decimal("2.5"),
            True,
        )
    outside.refresh_from_db()
    assert outside.cost == Decimal("2"), "outside the period, nothing changes"
    assert Repricing.objects.count() == 1


# --- the admin ---------------------------------------------------------------------------


def test_the_model_list_shows_the_price_in_force_now(admin_client, chat_model):
    price = _dated(chat_model, timezone.now() - timedelta(days=1))
    _band(price, starts="00:00", ends="00:00", weekdays="1234567")
    page = admin_client.get("/admin/conversations/chatmodel/").content.decode()
    assert re.search(r"4[.0]* / 1[.0]* / 16[.0]* USD \(peak\)", page), re.findall(
        r"[^>]*\(peak\)", page
    )


def test_a_dated_price_and_its_bands_are_edited_on_its_own_page(admin_client, chat_model):
    price = _dated(chat_model, timezone.now())
    _band(price)
    page = admin_client.get(f"/admin/conversations/modelprice/{price.pk}/change/")
    assert page.status_code == 200 and "Asia/Shanghai" in page.content.decode()
    model_page = admin_client.get(f"/admin/conversations/chatmodel/{chat_model.pk}/change/")
    assert "effective_from" in model_page.content.decode()


def test_the_admin_repricing_previews_then_applies_and_records_who(admin_client, chat_model, user):
    record = _call(chat_model, user, timezone.now())
    _dated(chat_model, timezone.now() - timedelta(days=2), input="2.5")
    url = f"/admin/conversations/chatmodel/{chat_model.pk}/reprice/"
    today = timezone.localdate().isoformat()
    period = {"first_day": today, "last_day": today}

    preview = admin_client.post(url, {**period, "preview": "1"}).content.decode()
    assert 'id="reprice-preview"' in preview and "1 records in the period, 1 of them" in preview
    record.refresh_from_db()
    assert record.cost == Decimal("2"), "the preview changes nothing"

    done = admin_client.post(url, {**period, "confirm": "1"})
    assert done.status_code == 302 and done["Location"].endswith("/conversations/repricing/")
    record.refresh_from_db()
    assert record.cost == Decimal("2.5")
    repricing = Repricing.objects.get()
    assert repricing.done_by.username == "admin" and repricing.records == 1
    assert "admin" in admin_client.get("/admin/conversations/repricing/").content.decode()


def test_a_reversed_period_is_refused_and_nothing_is_repriced(admin_client, chat_model, user):
    record = _call(chat_model, user, timezone.now())
    _dated(chat_model, timezone.now() - timedelta(days=2), input="2.5")
    url = f"/admin/conversations/chatmodel/{chat_model.pk}/reprice/"
    response = admin_client.post(
        url, {"first_day": "2026-12-02", "last_day": "2026-12-01", "confirm": "1"}
    )
    assert response.status_code == 200 and "The last day is before the first." in (
        response.content.decode()
    )
    record.refresh_from_db()
    assert record.cost == Decimal("2") and not Repricing.objects.exists()


def test_the_repricing_action_takes_one_model(admin_client, chat_model):
    other = ChatModelFactory(name="other-model")
    changelist = "/admin/conversations/chatmodel/"
    one = admin_client.post(changelist, {"action": "reprice", "_selected_action": [chat_model.pk]})
    assert one["Location"].endswith(f"/chatmodel/{chat_model.pk}/reprice/")
    two = admin_client.post(
        changelist,
        {"action": "reprice", "_selected_action": [chat_model.pk, other.pk]},
        follow=True,
    )
    assert "Choose exactly one model to re-price." in two.content.decode()


# --- embeddings --------------------------------------------------------------------------


def test_an_embedding_call_is_priced_by_the_preset_or_the_catalogues_dated_price(user):
    from conversations.providers import presets

    preset = presets.embedding_preset("dashscope", "text-embedding-v4")
    call = {"user_id": user.pk, "conversation": None, "preset": preset}
    before = services.embedding_usage_record_create(prompt_tokens=1_000_000, **call)
    assert (before.input_price, before.cost, before.price_id) == (
        Decimal("0.5"),
        Decimal("0.5"),
        None,
    )
    # The admin keeps the model's prices as dated rows: a catalogue row of the same name.
    listed = ChatModel.objects.create(
        provider=Provider.objects.get(slug="dashscope"), name="text-embedding-v4", is_active=False
    )
    price = _dated(listed, timezone.now() - timedelta(days=1), input="0.7", output="0")
    after = services.embedding_usage_record_create(prompt_tokens=1_000_000, **call)
    assert (after.input_price, after.cost, after.price_id) == (
        Decimal("0.7"),
        Decimal("0.7"),
        price.pk,
    )
    assert after.currency == "CNY" and after.priced_at is not None
