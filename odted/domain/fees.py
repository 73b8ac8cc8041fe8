"""The simulator fee schedule: seven rates, charged per contract per action.

Spec: api-walkthrough 2.5 and 2.6 (the `fee_schedule` object, its seven fields and the
platform defaults; user overrides must be non-negative and at most 10x the default),
6.1 ("$1.72 per option contract bought to open, $1.72 per option sold to open ... stored
on each transaction and rolled up to order.fees"), 8.1 (a pending order shows the
schedule-based estimate), Part 10 and DESIGN.md "Time and sessions" (exercise and
assignment fees from the schedule).

- An order leg pays `rate(action) x quantity`; the order's fees are the sum over legs.
  The estimate for a pending order and the actual on its fill use the same rule, so
  they are equal whenever the schedule did not change in between.
- At settlement every exercised (ITM long) and every assigned (ITM short) contract pays
  `exercise_option`; an option that expires worthless pays nothing.
- The two equity rates are carried so the schedule round-trips exactly, but odted
  trades no equities (accounts spec: "cash-only, no equities"), so nothing charges them.
"""

from __future__ import annotations

from collections.abc import Iterable
from decimal import Decimal

import msgspec

__all__ = ["FeeSchedule", "OPTION_ACTIONS", "order_fees"]

OPTION_ACTIONS = ("buy to open", "sell to open", "buy to close", "sell to close")

_DEFAULTS = {
    "buy_equity": Decimal("0.0008"),
    "sell_equity": Decimal("0.003986"),
    "buy_to_open_option": Decimal("1.72"),
    "sell_to_open_option": Decimal("1.72"),
    "buy_to_close_option": Decimal("0.72"),
    "sell_to_close_option": Decimal("0.72"),
    "exercise_option": Decimal("5"),
}
_MAX_MULTIPLE = 10


class FeeSchedule(msgspec.Struct, frozen=True, forbid_unknown_fields=True):
    """The seven rates of the spec's `fee_schedule` object, in its field order.

    Decoding checks what the spec requires of an override (every field present,
    non-negative, at most 10x the platform default) and fails with a message naming the
    field; `FeeSchedule.default()` is the platform schedule.
    """

    buy_equity: Decimal
    sell_equity: Decimal
    buy_to_open_option: Decimal
    sell_to_open_option: Decimal
    buy_to_close_option: Decimal
    sell_to_close_option: Decimal
    exercise_option: Decimal

    def __post_init__(self) -> None:
        for name, default in _DEFAULTS.items():
            value: Decimal = getattr(self, name)
            if not value.is_finite() or value < 0:
                raise ValueError(f"fee_schedule.{name} must be a non-negative decimal")
            if value > default * _MAX_MULTIPLE:
                raise ValueError(
                    f"fee_schedule.{name} must be at most {default * _MAX_MULTIPLE} "
                    f"(10x the platform default {default})"
                )

    @classmethod
    def default(cls) -> FeeSchedule:
        """The platform default schedule."""
        return cls(**_DEFAULTS)

    @classmethod
    def zero(cls) -> FeeSchedule:
        """A fee-free schedule (backtests run fee-free; tests use it for exact P&L)."""
        return cls(**{name: Decimal(0) for name in _DEFAULTS})

    def option_rate(self, action: str) -> Decimal:
        """The per-contract fee of one of the four option leg actions."""
        if action == "buy to open":
            return self.buy_to_open_option
        if action == "sell to open":
            return self.sell_to_open_option
        if action == "buy to close":
            return self.buy_to_close_option
        if action == "sell to close":
            return self.sell_to_close_option
        raise ValueError(f"unknown option action {action!r}")

    def leg_fee(self, action: str, quantity: Decimal | int) -> Decimal:
        """The fee of one order leg: the action's rate times the contracts."""
        return self.option_rate(action) * quantity

    def settlement_fee(self, kind: str, quantity: Decimal | int) -> Decimal:
        """The fee of a settlement transaction (`exercise`, `assignment`, `expiration`)."""
        if kind in ("exercise", "assignment"):
            return self.exercise_option * quantity
        if kind == "expiration":
            return Decimal(0)
        raise ValueError(f"unknown settlement kind {kind!r}")


def order_fees(schedule: FeeSchedule, legs: Iterable[tuple[str, Decimal | int]]) -> Decimal:
    """The fees of an order with `(action, quantity)` legs: the estimate and the actual."""
    total = Decimal(0)
    for action, quantity in legs:
        total += schedule.option_rate(action) * quantity
    return total
