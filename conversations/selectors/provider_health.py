"""Provider health: each model's calls, failures, error rate, time to first token and
duration over the last hour, day and week, from the ledger and the reply rows.

Two aggregate queries answer every model and every window at once (one over the ledger,
one over the replies), each row of a window counted through a FILTER clause:

- calls and failures come from the ledger, which holds every upstream call (every attempt
  of a reply, summary or title): a call failed when it was sent again (`retried`: an attempt
  that failed before any reply, or a background call that failed) or when its reply ended
  failed. Calls still open (`in_flight`) have no outcome yet and are left out;
- first-token times (p50, p95: Postgres' percentile_cont) and the mean duration come from the
  replies that got a first token.
"""

from dataclasses import dataclass, field
from datetime import datetime, timedelta

from django.conf import settings
from django.contrib.auth import get_user_model
from django.core.cache import cache
from django.db.models import Aggregate, Avg, Count, FloatField, Q
from django.utils import timezone
from django.utils.translation import gettext_lazy as _

from conversations.models import (
    ChatModel,
    IncidentKind,
    Message,
    MessageStatus,
    ProviderIncident,
    Role,
    UsageKind,
    UsageRecord,
)

# The windows of the health page, shortest first: (key, length, heading).
WINDOWS = (
    ("1h", timedelta(hours=1), _("Last hour")),
    ("24h", timedelta(days=1), _("Last day")),
    ("7d", timedelta(days=7), _("Last week")),
)
# The ledger's kinds that are chat-completions calls of a catalogue model (embeddings go
# to an embedding preset, not to a chat model).
CHAT_CALLS = (UsageKind.CHAT, UsageKind.SUMMARY, UsageKind.TITLE)
FAILED_CALL = Q(retried=True) | Q(message__status=MessageStatus.FAILED)

# The banner's read is cached briefly; the check that opens or closes an incident drops it.
BANNER_CACHE_KEY = "provider-health:banner"
BANNER_CACHE_SECONDS = 15


class Percentile(Aggregate):
    """`percentile_cont(fraction) WITHIN GROUP (ORDER BY expression)`; a FILTER clause
    still applies (Django appends it to this template)."""

    function = "percentile_cont"
    template = "%(function)s(%(fraction)s) WITHIN GROUP (ORDER BY %(expressions)s)"
    output_field = FloatField()

    def __init__(self, expression: str, fraction: float, **extra) -> None:
        if not 0 <= fraction <= 1:
            raise ValueError(f"a percentile's fraction is within 0..1, got {fraction!r}")
        super().__init__(expression, fraction=float(fraction), **extra)


@dataclass(frozen=True)
class Thresholds:
    error_rate: float  # a fraction of calls
    ttft_p95_seconds: float
    # The fewest calls (or timed replies) a figure needs before it can cross a threshold.
    min_calls: int


@dataclass
class Figures:
    """One model over one window."""

    calls: int = 0
    failed: int = 0
    # Replies that got a first token: what the TTFT and duration figures are made of.
    timed: int = 0
    ttft_p50_ms: float | None = None
    ttft_p95_ms: float | None = None
    mean_duration_ms: float | None = None

    @property
    def error_rate(self) -> float | None:
        return self.failed / self.calls if self.calls else None

    @property
    def ttft_p95_seconds(self) -> float | None:
        return self.ttft_p95_ms / 1000 if self.ttft_p95_ms is not None else None

    def error_rate_over(self, thresholds: Thresholds) -> bool:
        rate = self.error_rate
        return (
            self.calls >= thresholds.min_calls and rate is not None and rate > thresholds.error_rate
        )

    def ttft_over(self, thresholds: Thresholds) -> bool:
        p95 = self.ttft_p95_seconds
        return (
            self.timed >= thresholds.min_calls
            and p95 is not None
            and p95 > thresholds.ttft_p95_seconds
        )


@dataclass
class WindowHealth:
    key: str
    heading: str
    figures: Figures
    error_rate_over: bool
    ttft_over: bool


@dataclass
class ModelHealth:
    chat_model: ChatModel
    thresholds: Thresholds
    windows: list[WindowHealth]
    open_incidents: list[ProviderIncident] = field(default_factory=list)


@dataclass(frozen=True)
class Condition:
    """One threshold of one model, over the alert window, as the check sees it."""

    kind: str
    value: float | None
    threshold: float
    samples: int
    # Over the threshold with enough samples: an incident opens.
    crossed: bool
    # Under it with enough samples, or nothing at all to judge by any more: an open
    # incident closes. Neither (a few calls only): an open incident stays open.
    cleared: bool


@dataclass(frozen=True)
class Unhealthy:
    """A model the banner names: which of its thresholds are crossed."""

    provider: str
    model: str
    error_rate: bool
    ttft: bool


def provider_health_thresholds(chat_model: ChatModel) -> Thresholds:
    """The model's own thresholds where it has them, the site's otherwise."""
    error_rate = chat_model.health_error_rate
    ttft = chat_model.health_ttft_p95_seconds
    return Thresholds(
        error_rate=settings.PROVIDER_HEALTH_ERROR_RATE if error_rate is None else error_rate,
        ttft_p95_seconds=settings.PROVIDER_HEALTH_TTFT_P95_SECONDS if ttft is None else ttft,
        min_calls=settings.PROVIDER_HEALTH_MIN_CALLS,
    )


def _window_filters(field_name: str, windows: dict[str, timedelta], now: datetime) -> dict:
    return {key: Q(**{f"{field_name}__gte": now - length}) for key, length in windows.items()}


def _calls(
    windows: dict[str, timedelta], now: datetime, only: ChatModel | None
) -> dict[tuple[str, str], dict]:
    """Calls and failures per (provider slug, model name) and window, in one query."""
    since = _window_filters("created_at", windows, now)
    records = UsageRecord.objects.filter(
        created_at__gte=now - max(windows.values()), in_flight=False, kind__in=CHAT_CALLS
    )
    if only is not None:
        records = records.filter(provider_slug=only.provider.slug, model_name=only.name)
    sums: dict[str, Aggregate] = {}
    for key, in_window in since.items():
        sums[f"calls_{key}"] = Count("id", filter=in_window)
        sums[f"failed_{key}"] = Count("id", filter=in_window & FAILED_CALL)
    rows = records.values("provider_slug", "model_name").annotate(**sums).order_by()
    return {(row["provider_slug"], row["model_name"]): dict(row) for row in rows}


def _timings(
    windows: dict[str, timedelta], now: datetime, only: ChatModel | None
) -> dict[int, dict]:
    """First-token percentiles and mean duration per chat model and window, in one query."""
    since = _window_filters("completed_at", windows, now)
    # role and completed_at: the partial index message_replies_completed.
    replies = Message.objects.filter(
        role=Role.ASSISTANT,
        completed_at__gte=now - max(windows.values()),
        status__in=MessageStatus.FINAL,
        time_to_first_token_ms__isnull=False,
        chat_model__isnull=False,
    )
    if only is not None:
        replies = replies.filter(chat_model=only)
    sums: dict[str, Aggregate] = {}
    for key, in_window in since.items():
        sums[f"timed_{key}"] = Count("id", filter=in_window)
        sums[f"p50_{key}"] = Percentile("time_to_first_token_ms", 0.5, filter=in_window)
        sums[f"p95_{key}"] = Percentile("time_to_first_token_ms", 0.95, filter=in_window)
        sums[f"duration_{key}"] = Avg("duration_ms", filter=in_window)
    rows = replies.values("chat_model_id").annotate(**sums).order_by()
    return {row["chat_model_id"]: dict(row) for row in rows}


def _figures(calls: dict | None, timings: dict | None, key: str) -> Figures:
    calls, timings = calls or {}, timings or {}
    return Figures(
        calls=calls.get(f"calls_{key}", 0),
        failed=calls.get(f"failed_{key}", 0),
        timed=timings.get(f"timed_{key}", 0),
        ttft_p50_ms=timings.get(f"p50_{key}"),
        ttft_p95_ms=timings.get(f"p95_{key}"),
        mean_duration_ms=timings.get(f"duration_{key}"),
    )


def _figures_by_model(
    chat_models: list[ChatModel], windows: dict[str, timedelta], only: ChatModel | None = None
) -> dict[int, dict[str, Figures]]:
    now = timezone.now()
    calls, timings = _calls(windows, now, only), _timings(windows, now, only)
    return {
        model.pk: {
            key: _figures(calls.get((model.provider.slug, model.name)), timings.get(model.pk), key)
            for key in windows
        }
        for model in chat_models
    }


def provider_health_report() -> list[ModelHealth]:
    """Every active model (and any other with calls this week or an open incident), by
    provider, with its figures over each window and its open incidents: four queries."""
    models = list(ChatModel.objects.select_related("provider").order_by("provider__name", "name"))
    windows = {key: length for key, length, _heading in WINDOWS}
    figures = _figures_by_model(models, windows)
    open_incidents: dict[int, list[ProviderIncident]] = {}
    for incident in ProviderIncident.objects.filter(closed_at__isnull=True):
        open_incidents.setdefault(incident.chat_model_id, []).append(incident)
    report = []
    for model in models:
        week = figures[model.pk]["7d"]
        if not (model.is_active or week.calls or week.timed or model.pk in open_incidents):
            continue
        thresholds = provider_health_thresholds(model)
        report.append(
            ModelHealth(
                chat_model=model,
                thresholds=thresholds,
                windows=[
                    _window_health(key, heading, figures[model.pk][key], thresholds)
                    for key, _length, heading in WINDOWS
                ],
                open_incidents=open_incidents.get(model.pk, []),
            )
        )
    return report


def _window_health(key: str, heading, figures: Figures, thresholds: Thresholds) -> WindowHealth:
    return WindowHealth(
        key=key,
        heading=str(heading),
        figures=figures,
        error_rate_over=figures.error_rate_over(thresholds),
        ttft_over=figures.ttft_over(thresholds),
    )


def provider_health_conditions(chat_models: list[ChatModel]) -> dict[int, list[Condition]]:
    """Each model's thresholds over the alert window (PROVIDER_HEALTH_ALERT_WINDOW): two
    queries, over one model's rows only when asked for one (the check after a reply)."""
    windows = {"alert": timedelta(seconds=settings.PROVIDER_HEALTH_ALERT_WINDOW)}
    only = chat_models[0] if len(chat_models) == 1 else None
    figures = _figures_by_model(chat_models, windows, only)
    return {
        model.pk: _conditions(figures[model.pk]["alert"], provider_health_thresholds(model))
        for model in chat_models
    }


def _conditions(figures: Figures, thresholds: Thresholds) -> list[Condition]:
    enough = thresholds.min_calls
    return [
        Condition(
            kind=IncidentKind.ERROR_RATE,
            value=figures.error_rate,
            threshold=thresholds.error_rate,
            samples=figures.calls,
            crossed=figures.error_rate_over(thresholds),
            cleared=figures.calls == 0
            or (figures.calls >= enough and not figures.error_rate_over(thresholds)),
        ),
        Condition(
            kind=IncidentKind.TTFT_P95,
            value=figures.ttft_p95_seconds,
            threshold=thresholds.ttft_p95_seconds,
            samples=figures.timed,
            crossed=figures.ttft_over(thresholds),
            cleared=figures.timed == 0
            or (figures.timed >= enough and not figures.ttft_over(thresholds)),
        ),
    ]


def provider_incidents_open(
    chat_models: list[ChatModel],
) -> dict[tuple[int, str], ProviderIncident]:
    """The open incidents of these models, by (model id, kind)."""
    incidents = ProviderIncident.objects.filter(
        closed_at__isnull=True, chat_model__in=[m.pk for m in chat_models]
    )
    return {(i.chat_model_id, i.kind): i for i in incidents}


def provider_health_banner() -> list[Unhealthy]:
    """The models with an open incident, for the banner staff see on every page: one small
    query (the open incidents' partial index), cached for a few seconds."""
    return cache.get_or_set(BANNER_CACHE_KEY, _unhealthy, BANNER_CACHE_SECONDS) or []


def _unhealthy() -> list[Unhealthy]:
    kinds: dict[tuple[str, str], set[str]] = {}
    incidents = ProviderIncident.objects.filter(closed_at__isnull=True).select_related(
        "chat_model__provider"
    )
    for incident in incidents.order_by("chat_model__provider__name", "chat_model__name"):
        model = incident.chat_model
        kinds.setdefault((model.provider.name, model.display_name), set()).add(incident.kind)
    return [
        Unhealthy(
            provider=provider,
            model=model,
            error_rate=IncidentKind.ERROR_RATE in crossed,
            ttft=IncidentKind.TTFT_P95 in crossed,
        )
        for (provider, model), crossed in kinds.items()
    ]


def provider_health_recipients() -> list[str]:
    """Where an incident's e-mail goes: every active staff account with an address, and
    ALERT_EMAILS; each address once."""
    staff = (
        get_user_model()
        .objects.filter(is_active=True, is_staff=True)
        .exclude(email="")
        .values_list("email", flat=True)
    )
    return sorted({*staff, *settings.ALERT_EMAILS})
