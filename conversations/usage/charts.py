"""The "My usage" chart: a month's cost by day and model, one chart per currency, laid out
for a server-rendered SVG (templates/conversations/_usage_chart.html).

Money is never added across currencies, so each currency gets a chart of its own; each day
is a stack of one bar per model, and a model has the same colour (a series number, styled
by static/css/usage-chart.css) in every chart of the month.
"""

from calendar import monthrange
from dataclasses import dataclass, field
from datetime import date, datetime
from decimal import Decimal

# The SVG's own units: the page scales it to its width.
WIDTH = 720
HEIGHT = 260
LEFT, RIGHT, TOP, BOTTOM = 64, 12, 12, 28
PLOT_WIDTH = WIDTH - LEFT - RIGHT
PLOT_HEIGHT = HEIGHT - TOP - BOTTOM
# Of a day's column, what its bar takes (the rest is the gap between days).
BAR_SHARE = 0.7
# Series colours available (usage-chart.css defines one custom property each); models past
# this many share colours again, in order.
SERIES = 10
Y_TICKS = 4
TIP_WIDTH = 200
TIP_LINE = 14
ZERO = Decimal(0)


@dataclass(frozen=True)
class Model:
    key: str  # "provider/model", as the tables show it
    series: int  # its colour, the same in every chart of the month


@dataclass
class Segment:
    """One model's part of one day's bar."""

    model: Model
    cost: Decimal
    y: float = 0
    height: float = 0


@dataclass
class Day:
    day: date
    x: float
    segments: list[Segment] = field(default_factory=list)
    tip_x: float = 0
    tip_y: float = TOP

    @property
    def total(self) -> Decimal:
        return sum((s.cost for s in self.segments), ZERO)

    @property
    def label_x(self) -> float:
        return round(self.x + bar_width() / 2, 1)

    @property
    def tip_height(self) -> int:
        return (len(self.segments) + 2) * TIP_LINE + 6

    @property
    def tip_text_x(self) -> float:
        return round(self.tip_x + 8, 1)

    @property
    def tip_text_y(self) -> float:
        return round(self.tip_y + 16, 1)


@dataclass(frozen=True)
class Tick:
    value: Decimal
    y: float


@dataclass
class CostChart:
    """One currency's chart: a column per day of the month, y ticks, and its models."""

    currency: str
    days: list[Day]
    ticks: list[Tick]
    models: list[Model]
    top: Decimal

    width = WIDTH
    height = HEIGHT
    left = LEFT
    plot_top = TOP
    plot_bottom = TOP + PLOT_HEIGHT
    plot_right = LEFT + PLOT_WIDTH
    plot_height = PLOT_HEIGHT
    label_y = TOP + PLOT_HEIGHT + 16
    tick_label_x = LEFT - 6
    tip_width = TIP_WIDTH

    @property
    def bar_width(self) -> float:
        return bar_width()

    @property
    def column_width(self) -> float:
        return round(PLOT_WIDTH / max(len(self.days), 1), 1)


def bar_width() -> float:
    return round(PLOT_WIDTH / 31 * BAR_SHARE, 1)


def nice_ceiling(peak: Decimal) -> Decimal:
    """The smallest of 1, 2, 2.5 or 5 times a power of ten, times Y_TICKS, at or above
    `peak`: ticks at round amounts."""
    if peak <= 0:
        return Decimal(1)
    step_wanted = peak / Y_TICKS
    power = Decimal(10) ** step_wanted.adjusted()
    for factor in (1, 2, Decimal("2.5"), 5, 10):
        if factor * power >= step_wanted:
            return (factor * power * Y_TICKS).normalize()
    return (10 * power * Y_TICKS).normalize()


def cost_charts(rows: list[dict], start: datetime) -> list[CostChart]:
    """One chart per currency from rows by day, provider, model and currency (usage_totals_by),
    currencies in alphabetical order."""
    models = _models(rows)
    currencies = sorted({row["currency"] for row in rows})
    return [_chart(currency, rows, models, start) for currency in currencies]


def _models(rows: list[dict]) -> dict[str, Model]:
    keys = sorted({f"{row['provider_slug']}/{row['model_name']}" for row in rows})
    return {key: Model(key, index % SERIES) for index, key in enumerate(keys)}


def _chart(currency: str, rows: list[dict], models: dict[str, Model], start: datetime) -> CostChart:
    first = start.date()
    count = monthrange(first.year, first.month)[1]
    step = PLOT_WIDTH / count
    days = [
        Day(day=first.replace(day=n + 1), x=round(LEFT + n * step + (step - bar_width()) / 2, 1))
        for n in range(count)
    ]
    used: set[str] = set()
    for row in rows:
        if row["currency"] != currency or not row["cost"]:
            continue
        key = f"{row['provider_slug']}/{row['model_name']}"
        used.add(key)
        days[row["day"].day - 1].segments.append(Segment(models[key], row["cost"]))
    top = nice_ceiling(max((d.total for d in days), default=ZERO))
    for day in days:
        _stack(day, top)
    ticks = [_tick(top * n / Y_TICKS, top) for n in range(Y_TICKS + 1)]
    chart_models = [model for key, model in models.items() if key in used]
    return CostChart(currency=currency, days=days, ticks=ticks, models=chart_models, top=top)


def _y(value: Decimal, top: Decimal) -> float:
    return round(TOP + PLOT_HEIGHT - float(value / top) * PLOT_HEIGHT, 1)


def _tick(value: Decimal, top: Decimal) -> Tick:
    return Tick(value=value.normalize() if value else ZERO, y=_y(value, top))


def _stack(day: Day, top: Decimal) -> None:
    """Bars one on another in series order, bottom up; the day's tooltip beside them, kept
    inside the plot."""
    day.segments.sort(key=lambda s: s.model.series)
    below = ZERO
    for segment in day.segments:
        segment.y = _y(below + segment.cost, top)
        segment.height = round(_y(below, top) - segment.y, 1)
        below += segment.cost
    right_room = LEFT + PLOT_WIDTH - (day.x + bar_width() + 4)
    day.tip_x = day.x + bar_width() + 4 if right_room >= TIP_WIDTH else day.x - TIP_WIDTH - 4
    day.tip_x = round(max(day.tip_x, LEFT), 1)
