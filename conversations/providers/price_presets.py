"""Built-in dated prices: the catalogue's price changes, with their time bands.

Copied into the database with the models (catalogue_sync_presets: only rows missing by
model and start, so admin edits stick). Rates are per million tokens in the provider's
currency; each schedule names its source.
"""

from dataclasses import dataclass, field
from datetime import datetime, time
from decimal import Decimal
from zoneinfo import ZoneInfo


@dataclass(frozen=True)
class BandPreset:
    label: str
    starts: str  # "HH:MM", local time in time_zone
    ends: str
    input_price: str
    cached_input_price: str
    output_price: str
    weekdays: str = "12345"
    time_zone: str = "Asia/Shanghai"

    def as_fields(self) -> dict:
        return {
            "label": self.label,
            "time_zone": self.time_zone,
            "weekdays": self.weekdays,
            "starts": time.fromisoformat(self.starts),
            "ends": time.fromisoformat(self.ends),
            "input_price": Decimal(self.input_price),
            "cached_input_price": Decimal(self.cached_input_price),
            "output_price": Decimal(self.output_price),
        }


@dataclass(frozen=True)
class DatedPricePreset:
    effective_from: datetime
    input_price: str
    cached_input_price: str
    output_price: str
    source: str
    bands: tuple[BandPreset, ...] = field(default_factory=tuple)

    def as_defaults(self) -> dict:
        return {
            "input_price": Decimal(self.input_price),
            "cached_input_price": Decimal(self.cached_input_price),
            "output_price": Decimal(self.output_price),
            "source": self.source,
        }


BEIJING = ZoneInfo("Asia/Shanghai")

# DeepSeek bills by the hour of Beijing time since 00:00 on 17 August 2026 (16:00 UTC on the
# 16th): peak 09:00-12:00 and 14:00-18:00, off-peak (half the peak rates) the rest of the
# day; from 23 August weekends are off-peak all day. Rates in CNY from the official page,
# https://api-docs.deepseek.com/zh-cn/quick_start/pricing (as read on 2026-12-06 through
# third-party copies of it: github.com/Oliver0804/dsh-peak-pricing src/pricing.ts, the
# DeepSeek notice quoted at docs.apiyi.com/en/live/2026-08/deepseek-price-peak-tier, and
# github.com/KhalilYamber/dsh-tidewatch for the weekend rule). deepseek-chat and
# deepseek-reasoner are DeepSeek's names for deepseek-v4-flash's two modes.
DEEPSEEK_SOURCE = "https://api-docs.deepseek.com/zh-cn/quick_start/pricing"


def _deepseek_peak_schedule(
    off_peak: tuple[str, str, str], peak: tuple[str, str, str]
) -> tuple[DatedPricePreset, ...]:
    """(cache-miss input, cache-hit input, output) off-peak and at peak."""

    def peak_bands(weekdays: str) -> tuple[BandPreset, ...]:
        return tuple(
            BandPreset("peak", starts, ends, *peak, weekdays=weekdays)
            for starts, ends in (("09:00", "12:00"), ("14:00", "18:00"))
        )

    return (
        DatedPricePreset(
            datetime(2026, 8, 17, tzinfo=BEIJING),
            *off_peak,
            source=DEEPSEEK_SOURCE,
            bands=peak_bands("1234567"),
        ),
        DatedPricePreset(
            datetime(2026, 8, 23, tzinfo=BEIJING),
            *off_peak,
            source=DEEPSEEK_SOURCE + " (weekends off-peak)",
            bands=peak_bands("12345"),
        ),
    )


DEEPSEEK_V4_FLASH_PRICES = _deepseek_peak_schedule(("1.5", "0.05", "4.5"), ("3", "0.1", "9"))
DEEPSEEK_V4_PRO_PRICES = _deepseek_peak_schedule(("4.5", "0.15", "13.5"), ("9", "0.3", "27"))
