"""A number of bytes as people read it: "5 MB", "1.5 KB", "900 bytes".

The one way a size is shown (limits in messages, import jobs, anything else): binary units,
as the settings' defaults are written (5 * 1024 * 1024 is "5 MB"), at most one decimal and
none when it is zero, in the active language's number format; the space before the unit
does not break (as Django's filesizeformat), so "5" and "MB" never sit on two lines.
"""

from django.utils import formats
from django.utils.translation import gettext, ngettext

KB = 1024
# Each unit and the words for it, largest first.
_UNITS = (
    (KB**4, lambda n: gettext("%s TB") % n),
    (KB**3, lambda n: gettext("%s GB") % n),
    (KB**2, lambda n: gettext("%s MB") % n),
    (KB, lambda n: gettext("%s KB") % n),
)


def human_size(count: int | float | None) -> str:
    """`count` bytes in the largest unit that keeps the number at 1 or more."""
    count = int(count or 0)
    for unit, words in _UNITS:
        if abs(count) >= unit:
            return words(_number(count / unit)).replace(" ", "\xa0")
    shown = ngettext("%(count)d byte", "%(count)d bytes", count) % {"count": count}
    return shown.replace(" ", "\xa0")


def _number(value: float) -> str:
    rounded = round(value, 1)
    places = 0 if rounded == int(rounded) else 1
    return formats.number_format(rounded, decimal_pos=places, use_l10n=True)
