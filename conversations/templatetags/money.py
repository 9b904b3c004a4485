"""`{{ amount|money }}`: an amount of money without trailing zeros, never in scientific form."""

from decimal import Decimal

from django import template

register = template.Library()


@register.filter
def money(amount) -> str:
    """Up to 6 decimals for the fractions of a cent that API calls cost, e.g. 0.00096."""
    if amount is None or amount == "":
        return ""
    text = f"{Decimal(amount):,.6f}".rstrip("0").rstrip(".")
    return text if "." in text else f"{text}.00" if text not in ("0", "-0") else "0"
