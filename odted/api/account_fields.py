"""The fields a manual account and a bot (a `bot`-type account) check alike: the
engine names, the name, and the starting capital in dollars and cents."""

from __future__ import annotations

from decimal import Decimal

from odted.api.errors import ApiError
from odted.domain.money import CENT, dollars

__all__ = ["BROKER_ENGINES", "LIVE_SIM", "MIN_CAPITAL", "NAME_MAX", "check_capital", "check_name"]

LIVE_SIM = "live_sim"
"""The one engine that runs today."""
BROKER_ENGINES = frozenset({
    "broker_ibkr", "broker_schwab", "broker_tastytrade", "broker_tradestation", "broker_tradier", "broker_etrade",
})
"""Engines named by the spec that are not available yet."""
MIN_CAPITAL = Decimal(1000)
NAME_MAX = 80


def check_name(value: str) -> str:
    """`value` stripped; `400 invalid_input` unless 1 to `NAME_MAX` printable characters."""
    name = value.strip()
    if not name or len(name) > NAME_MAX or not name.isprintable():
        raise ApiError.bad_request("invalid_input", f"name must be 1 to {NAME_MAX} printable characters",
                                   field="name")
    return name


def check_capital(value: Decimal, maximum: Decimal) -> Decimal:
    """`value` in dollars; `400 invalid_starting_capital` unless whole cents from
    `MIN_CAPITAL` to `maximum`."""
    if not value.is_finite() or not (MIN_CAPITAL <= value <= maximum) or value != value.quantize(CENT):
        raise ApiError.bad_request("invalid_starting_capital",
                                   f"starting_capital must be between {MIN_CAPITAL} and {maximum},"
                                   " in dollars and cents",
                                   field="starting_capital")
    return dollars(value)
