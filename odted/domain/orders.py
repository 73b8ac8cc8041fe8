"""Orders: the request, the order object, the parsed ticket, and the denial codes.

Spec: api-walkthrough 6.0-6.1 (request body: `type`, `price`, `price_effect`, `legs` of
`instrument` / `quantity` / `action`; the order object with `fees`, `status`,
`fill_price`, `fill_price_effect`, `execution_price`, `slippage`, `fill_datetime`,
`legs`, `transactions`, `buying-power-effect`), 8.1/8.3 (pending limit and stop orders,
`stop_trigger`), Part 12 and live-trading-api (`client_order_id`; statuses `pending`,
`filled`, `canceled`, `expired`, `rejected` with `rejection_reason`; cancel+replace may
change only `price` and `price_effect`, and replacing a non-limit order is a 400).

Every failed check is an `OrderDenied` value, never an exception (a risk engine denies
rather than throws). The API answers every code below with HTTP 400, as
`<code>: <message>`; the message says what to change. Codes are stable: clients match on
them. The checks run in the spec's order (walkthrough 6.1 "Validation order"), so an
order with two problems reports the earlier one:

| step | code                        | field                  | when                                                                 |
|------|-----------------------------|------------------------|----------------------------------------------------------------------|
| 1    | `invalid_order_type`        | `type`                 | type is not market, limit or stop                                    |
| 1    | `invalid_underlying`        | `underlying`           | an `underlying` other than SPX was sent                              |
| 1    | `no_legs`                   | `legs`                 | the order has no legs                                                |
| 1    | `too_many_legs`             | `legs`                 | more than 4 legs                                                     |
| 1    | `multi_leg_not_limit`       | `legs`                 | a market or stop order with more than one leg                        |
| 1    | `invalid_instrument`        | `legs[i].instrument`   | not a well-formed 21-character OSI option symbol                     |
| 1    | `unsupported_instrument`    | `legs[i].instrument`   | well-formed, but not an SPX option (an equity, another root)          |
| 1    | `invalid_action`            | `legs[i].action`       | not one of the four leg actions                                      |
| 1    | `invalid_quantity`          | `legs[i].quantity`     | not a positive whole number of contracts, or more than 100000        |
| 1    | `duplicate_leg`             | `legs[i].instrument`   | the same instrument in two legs                                      |
| 2    | `price_required`            | `price`                | a limit order without `price`                                        |
| 2    | `stop_trigger_required`     | `stop_trigger`         | a stop order without `stop_trigger`                                  |
| 2    | `price_effect_required`     | `price_effect`         | a limit or stop order without `price_effect`                         |
| 2    | `invalid_price_effect`      | `price_effect`         | neither debit nor credit                                             |
| 2    | `unexpected_field`          | `price`/`stop_trigger` | a field the order type does not take (price on market/stop, stop_trigger on market/limit) |
| 2    | `invalid_price`             | `price`                | negative, NaN, infinite, or 100000 or more                           |
| 2    | `invalid_stop_trigger`      | `stop_trigger`         | negative, NaN, infinite, or 100000 or more                           |
| 2    | `price_effect_mismatch`     | `price_effect`         | all legs buy but credit, or all legs sell but debit                  |
| 3    | `price_off_tick`            | `price`                | price not on the SPX tick for the order's shape                      |
| 3    | `stop_trigger_off_tick`     | `stop_trigger`         | stop_trigger not on the SPX tick                                     |
| 4    | `price_exceeds_max_profit`  | `price`                | a limit beyond what the structure can be worth (debit) or cost (credit) at expiration |
| 5    | `market_data_unavailable`   | `legs[i].instrument`   | no quote for a leg at the order's time (or no tick, or another expiry) |
| 6    | `stop_would_trigger`        | `stop_trigger`         | the stop is already triggered by the current mid                     |
| 6b   | `insufficient_position`     | `legs[i].quantity`     | a closing leg exceeds the open position less other pending closes    |
| 7    | `insufficient_buying_power` | None                   | the order would leave available buying power negative                |
| R    | `replace_not_limit`         | `order_id`             | replacing an order that is not a limit order                         |
| R    | `replace_type_changed`      | `type`                 | a replacement that changes the type                                  |
| R    | `replace_legs_changed`      | `legs`                 | a replacement that changes the legs                                  |

Step 6b is odted's: the spec lists no check for closing more than is open, and letting
it through would corrupt the book. `insufficient_position` and
`insufficient_buying_power` are also the fill-time re-checks; a failure there makes the
order `rejected` with the message as `rejection_reason`.

Quantities and prices: an order's legs keep their quantities; the order's *units* are
their greatest common divisor and each leg's *ratio* is its quantity over the units. The
limit price, fill price and execution price are per unit of the ratio (a 2 x 2 vertical
at 1.05 costs 2 x 105), the way a 1:2 ratio spread or a 1:2:1 butterfly is quoted.
"""

from __future__ import annotations

import datetime as _dt
from decimal import Decimal
from uuid import UUID

import msgspec

from odted.domain.buying_power import BuyingPowerEffect, MarginHolding
from odted.domain.instruments import Instrument
from odted.domain.transactions import Transaction

__all__ = [
    "ORDER_TYPES",
    "PRICE_EFFECTS",
    "STATUSES",
    "TERMINAL_STATUSES",
    "MAX_LEGS",
    "OrderLeg",
    "OrderRequest",
    "ReplaceOrderRequest",
    "Order",
    "OrderDenied",
    "DenialCode",
    "TicketLeg",
    "Ticket",
]

ORDER_TYPES = ("market", "limit", "stop")
PRICE_EFFECTS = ("debit", "credit")
STATUSES = ("pending", "filled", "canceled", "expired", "rejected")
TERMINAL_STATUSES = frozenset(("filled", "canceled", "expired", "rejected"))
MAX_LEGS = 4


class DenialCode:
    """The stable denial codes (see the module docstring's table)."""

    INVALID_ORDER_TYPE = "invalid_order_type"
    INVALID_UNDERLYING = "invalid_underlying"
    NO_LEGS = "no_legs"
    TOO_MANY_LEGS = "too_many_legs"
    MULTI_LEG_NOT_LIMIT = "multi_leg_not_limit"
    INVALID_INSTRUMENT = "invalid_instrument"
    UNSUPPORTED_INSTRUMENT = "unsupported_instrument"
    INVALID_ACTION = "invalid_action"
    INVALID_QUANTITY = "invalid_quantity"
    DUPLICATE_LEG = "duplicate_leg"
    PRICE_REQUIRED = "price_required"
    STOP_TRIGGER_REQUIRED = "stop_trigger_required"
    PRICE_EFFECT_REQUIRED = "price_effect_required"
    INVALID_PRICE_EFFECT = "invalid_price_effect"
    UNEXPECTED_FIELD = "unexpected_field"
    INVALID_PRICE = "invalid_price"
    INVALID_STOP_TRIGGER = "invalid_stop_trigger"
    PRICE_EFFECT_MISMATCH = "price_effect_mismatch"
    PRICE_OFF_TICK = "price_off_tick"
    STOP_TRIGGER_OFF_TICK = "stop_trigger_off_tick"
    PRICE_EXCEEDS_MAX_PROFIT = "price_exceeds_max_profit"
    MARKET_DATA_UNAVAILABLE = "market_data_unavailable"
    STOP_WOULD_TRIGGER = "stop_would_trigger"
    INSUFFICIENT_POSITION = "insufficient_position"
    INSUFFICIENT_BUYING_POWER = "insufficient_buying_power"
    REPLACE_NOT_LIMIT = "replace_not_limit"
    REPLACE_TYPE_CHANGED = "replace_type_changed"
    REPLACE_LEGS_CHANGED = "replace_legs_changed"

    ALL = (
        INVALID_ORDER_TYPE, INVALID_UNDERLYING, NO_LEGS, TOO_MANY_LEGS, MULTI_LEG_NOT_LIMIT,
        INVALID_INSTRUMENT, UNSUPPORTED_INSTRUMENT, INVALID_ACTION, INVALID_QUANTITY,
        DUPLICATE_LEG, PRICE_REQUIRED, STOP_TRIGGER_REQUIRED, PRICE_EFFECT_REQUIRED,
        INVALID_PRICE_EFFECT, UNEXPECTED_FIELD, INVALID_PRICE, INVALID_STOP_TRIGGER,
        PRICE_EFFECT_MISMATCH, PRICE_OFF_TICK, STOP_TRIGGER_OFF_TICK,
        PRICE_EXCEEDS_MAX_PROFIT, MARKET_DATA_UNAVAILABLE, STOP_WOULD_TRIGGER,
        INSUFFICIENT_POSITION, INSUFFICIENT_BUYING_POWER, REPLACE_NOT_LIMIT,
        REPLACE_TYPE_CHANGED, REPLACE_LEGS_CHANGED,
    )  # fmt: skip


class OrderDenied(msgspec.Struct, frozen=True):
    """Why an order was refused: a stable `code`, a message saying what to change, and
    the request field at fault (`legs[1].instrument`), or None for the order as a whole.
    """

    code: str
    message: str
    field: str | None = None

    def __str__(self) -> str:
        return f"{self.code}: {self.message}"


class OrderLeg(msgspec.Struct, frozen=True, forbid_unknown_fields=True):
    """One leg, as requested and as echoed on the order: `quantity` is a decimal string."""

    instrument: str
    quantity: Decimal
    action: str


class OrderRequest(msgspec.Struct, frozen=True, kw_only=True, forbid_unknown_fields=True):
    """The body of `POST .../orders` (and of the dry-run).

    Enumerations are plain strings so that validation, not decoding, reports a bad
    value with its own code. `underlying` may be sent (the replace text calls it fixed);
    it must be SPX. Slippage is the account's setting, never part of the body.
    """

    type: str
    legs: tuple[OrderLeg, ...]
    price: Decimal | None = None
    price_effect: str | None = None
    stop_trigger: Decimal | None = None
    underlying: str | None = None
    client_order_id: UUID | None = None


class ReplaceOrderRequest(OrderRequest, kw_only=True, forbid_unknown_fields=True):
    """The body of `PUT /live/orders`: the pending order to replace, and its new terms."""

    order_id: UUID

    def as_request(self) -> OrderRequest:
        return OrderRequest(
            type=self.type,
            legs=self.legs,
            price=self.price,
            price_effect=self.price_effect,
            stop_trigger=self.stop_trigger,
            underlying=self.underlying,
        )


class Order(
    msgspec.Struct,
    frozen=True,
    kw_only=True,
    omit_defaults=True,
    rename={"buying_power_effect": "buying-power-effect"},
):
    """The order object, in the spec's field order; absent fields are omitted.

    Money and prices are unsigned with their effect, as on the wire: `fill_price`
    with `fill_price_effect` (which can differ from the requested `price_effect` when a
    multi-leg combo's mid is on the other side of zero). `fees` is the schedule estimate
    while pending and the sum of the transactions' fees once filled. `transactions` is
    empty (omitted) unless filled; `buying_power_effect` is set at placement.
    """

    id: UUID
    datetime: _dt.datetime
    underlying: str
    type: str
    price: Decimal | None = None
    price_effect: str | None = None
    stop_trigger: Decimal | None = None
    fees: Decimal
    status: str
    fill_price: Decimal | None = None
    fill_price_effect: str | None = None
    execution_price: Decimal | None = None
    slippage: Decimal | None = None
    fill_datetime: _dt.datetime | None = None
    rejection_reason: str | None = None
    legs: tuple[OrderLeg, ...]
    transactions: tuple[Transaction, ...] = ()
    buying_power_effect: BuyingPowerEffect | None = None
    updated_at: _dt.datetime | None = None

    @property
    def is_pending(self) -> bool:
        return self.status == "pending"

    def request(self) -> OrderRequest:
        """The request this order was placed with (to rebuild its ticket on recovery)."""
        return OrderRequest(
            type=self.type,
            legs=self.legs,
            price=self.price,
            price_effect=self.price_effect,
            stop_trigger=self.stop_trigger,
        )


class TicketLeg(msgspec.Struct, frozen=True, gc=False):
    """A validated leg: parsed instrument, action, and its place in the structure.

    `sign` is +1 for a buy and -1 for a sell; `ratio` is the leg's quantity over the
    order's units; `direction` is the position the leg opens or closes.
    """

    index: int
    instrument: Instrument
    action: str
    quantity: int
    ratio: int
    sign: int
    direction: str
    opening: bool
    strike: int | None

    @property
    def signed_quantity(self) -> int:
        """The change this leg makes to the net (long minus short) holding."""
        return self.sign * self.quantity


class Ticket(msgspec.Struct, frozen=True):
    """An order that passed the stateless checks (steps 1-4), ready to price and match.

    `limit` and `trigger` are signed net prices per unit (debit positive): a credit limit
    of 1.50 is -1.50. `holdings` is what a fill adds to the book's net holdings. Rebuilt from the order's request on recovery by the same
    `parse_order`, so a restarted actor matches exactly as before.
    """

    type: str
    legs: tuple[TicketLeg, ...]
    units: int
    price_effect: str
    price: Decimal | None
    stop_trigger: Decimal | None
    limit: Decimal | None
    trigger: Decimal | None
    request: OrderRequest
    holdings: tuple[MarginHolding, ...] = ()
    """What the order adds to the net holdings when it fills, for margin."""

    @property
    def single_leg(self) -> bool:
        return len(self.legs) == 1

    @property
    def all_buys(self) -> bool:
        return all(leg.sign > 0 for leg in self.legs)

    @property
    def all_sells(self) -> bool:
        return all(leg.sign < 0 for leg in self.legs)
