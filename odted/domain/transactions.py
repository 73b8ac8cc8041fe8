"""The transaction: one leg of a fill, or one position's settlement at the close.

Spec: api-walkthrough 6.1 (the transaction object: `id`, `datetime`, `instrument`,
`type`, `quantity`, `price`, `value`, `effect`, `fees`; "value = price x quantity (price
already includes the x100 contract multiplier)"; the example's `"430"` for a buy and
`"-325"` for a sell), Part 10 (settlement types `expiration`, `exercise`, `assignment`;
an expiration has no price/value/effect; settlement transactions have no `order_id`).

Sign convention, used by every module here: a debit is positive and a credit negative.
`value` is signed that way; `price` is the unsigned dollars per contract (option price
x 100); `effect` names the sign.
"""

from __future__ import annotations

import datetime as _dt
from decimal import Decimal
from uuid import UUID

import msgspec

__all__ = [
    "Transaction",
    "TRADE_TYPES",
    "SETTLEMENT_TYPES",
    "OPENING",
    "CLOSING",
    "BUYS",
    "direction_of",
]

TRADE_TYPES = ("buy to open", "sell to open", "buy to close", "sell to close")
SETTLEMENT_TYPES = ("expiration", "exercise", "assignment")
OPENING = frozenset(("buy to open", "sell to open"))
CLOSING = frozenset(("buy to close", "sell to close", *SETTLEMENT_TYPES))
BUYS = frozenset(("buy to open", "buy to close"))


def direction_of(action: str) -> str:
    """The position (`long`/`short`) an action opens or closes (spec "leg actions")."""
    if action in ("buy to open", "sell to close"):
        return "long"
    if action in ("sell to open", "buy to close"):
        return "short"
    raise ValueError(f"{action!r} is not an order leg action")


class Transaction(msgspec.Struct, frozen=True, kw_only=True, omit_defaults=True):
    """One transaction, in the spec's field order.

    For a settlement, `direction` says which position it closes (`exercise` closes a
    long, `assignment` a short; an `expiration` closes either); it is None for trades,
    whose `type` already says it.
    """

    id: UUID
    datetime: _dt.datetime
    instrument: str
    type: str
    quantity: Decimal
    price: Decimal | None = None
    value: Decimal | None = None
    effect: str | None = None
    fees: Decimal
    order_id: UUID | None = None
    direction: str | None = None

    @property
    def position_direction(self) -> str:
        """The direction of the position this transaction opens or closes."""
        if self.direction is not None:
            return self.direction
        if self.type == "exercise":
            return "long"
        if self.type == "assignment":
            return "short"
        return direction_of(self.type)
