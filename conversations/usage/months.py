"""Calendar months in the site's time zone, and the usage records that fall in one: the
period every usage figure and budget is counted over."""

from datetime import datetime

from django.db.models import QuerySet
from django.utils import timezone

from conversations.models import UsageRecord


def month_start(when: datetime | None = None) -> datetime:
    """Midnight on the first of the month containing `when` (default: now), site time."""
    local = timezone.localtime(when or timezone.now())
    return local.replace(day=1, hour=0, minute=0, second=0, microsecond=0)


def month_after(start: datetime) -> datetime:
    year, month = (start.year + 1, 1) if start.month == 12 else (start.year, start.month + 1)
    return start.replace(year=year, month=month)


def month_of(year: int, month: int) -> datetime:
    """The start of year-month in site time; ValueError for a month that does not exist."""
    return timezone.make_aware(datetime(year, month, 1))


def month_from_text(text: str) -> datetime | None:
    """`2026-03` as that month's start in site time; None for anything else."""
    try:
        year, month = (int(part) for part in text.split("-"))
        return month_of(year, month)
    except ValueError:
        return None


def records_in_month(start: datetime) -> QuerySet[UsageRecord]:
    return UsageRecord.objects.filter(created_at__gte=start, created_at__lt=month_after(start))
