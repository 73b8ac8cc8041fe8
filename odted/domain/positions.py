"""Positions: what the transactions of one instrument and direction add up to.

Spec: api-walkthrough 6.3 (the position object: `id`, `instrument`, `direction`,
`quantity`, `cost`, `cost_basis`, `debit`, `credit`, `unrealized_profit_loss`,
`realized_profit_loss`, `fees`, `total_profit_loss`, `net_liquidity`, `price`, `delta`;
ids derived from simulation + instrument + direction, computed on the fly from the
transactions; delta is `Abs(market delta) x direction_sign`), Part 9 (a closed position
is gone from the list; its realized P&L moves into the simulation totals).

Accounting, with the module-wide sign convention (debit positive, credit negative):
- `cost_basis` is the signed cost of the open quantity: +430 for a call bought at 4.30,
  -325 for a call sold at 3.25. Partial closes take the average cost, rounded to the
  cent (half-even) -- the last close takes whatever remains, so nothing is lost.
- `debit` / `credit` sum the position's debit and credit transactions (unsigned);
  `fees` its fees; `cost = cost_basis + fees` (431.72 in the spec's example).
- `net_liquidity = direction_sign x mark x 100 x quantity`; `unrealized_profit_loss =
  net_liquidity - cost_basis`; `total_profit_loss = unrealized + realized - fees`
  (5 + 0 - 1.72 = 3.28 in the spec's example).
- `price` is the mark: the raw mid of the leg's quote (not snapped). When the chain has
  no quote for the instrument the last known mark stays; a position never marked yet is
  marked at its own entry price, so it shows no unrealized P&L rather than a wrong one.
- `delta` is per contract: the quote's unsigned delta times the direction sign, as the
  spec defines it (a long 1 x 0.523 call shows 0.523, a short one -0.523); it is a
  decimal string on the wire, like the spec's example.
- A position that closes completely is removed; one reopened later starts afresh under
  the same id.
"""

from __future__ import annotations

from decimal import ROUND_HALF_EVEN, Decimal
from uuid import UUID

import msgspec

from odted.domain.ids import position_id
from odted.domain.instruments import Instrument
from odted.domain.money import CENT, ZERO, dollars, price
from odted.domain.transactions import Transaction

__all__ = ["Position", "PositionState", "CorruptLedger"]

_HALF = Decimal("0.5")
_FIFTY = Decimal(50)


class CorruptLedger(ValueError):
    """Transactions that cannot describe a real book (closing more than is open)."""


class Position(msgspec.Struct, frozen=True):
    """The position object of spec 6.3, field for field."""

    id: UUID
    instrument: str
    direction: str
    quantity: Decimal
    cost: Decimal
    cost_basis: Decimal
    debit: Decimal
    credit: Decimal
    unrealized_profit_loss: Decimal
    realized_profit_loss: Decimal
    fees: Decimal
    total_profit_loss: Decimal
    net_liquidity: Decimal
    price: Decimal
    delta: Decimal


class PositionState:
    """One open position, folded from its transactions and marked per tick.

    Mutable and owned by one `Book`; `view()` makes the immutable wire object.
    """

    __slots__ = (
        "instrument", "direction", "sign", "strike", "right", "quantity", "cost_basis",
        "debit", "credit", "fees", "realized", "mark_sum", "delta", "half_mult", "value",
    )  # fmt: skip

    def __init__(self, instrument: Instrument, direction: str) -> None:
        self.instrument = instrument
        self.direction = direction
        self.sign = 1 if direction == "long" else -1
        self.strike = instrument.chain_strike
        self.right = instrument.right
        self.quantity = 0
        self.cost_basis = ZERO
        self.debit = ZERO
        self.credit = ZERO
        self.fees = ZERO
        self.realized = ZERO
        self.mark_sum: Decimal | None = None  # bid + ask of the last mark
        self.delta: float | None = None
        self.half_mult = ZERO  # sign x 50 x quantity: value = (bid + ask) x half_mult
        self.value = ZERO  # signed net liquidity at the last mark

    def copy(self) -> PositionState:
        new = PositionState.__new__(PositionState)
        for name in PositionState.__slots__:
            setattr(new, name, getattr(self, name))
        return new

    def _flows(self, tx: Transaction) -> Decimal:
        value = tx.value if tx.value is not None else ZERO
        if value > 0:
            self.debit += value
        else:
            self.credit -= value
        self.fees += tx.fees
        return value

    def open(self, tx: Transaction) -> None:
        """Add an opening transaction."""
        qty = int(tx.quantity)
        value = self._flows(tx)
        self.quantity += qty
        self.cost_basis += value
        if self.mark_sum is None and tx.price is not None:
            self.mark_sum = tx.price / _FIFTY  # the entry price, as bid + ask
        self._revalue()

    def close(self, tx: Transaction) -> Decimal:
        """Apply a closing transaction; return the realized P&L it books (before fees)."""
        qty = int(tx.quantity)
        if qty > self.quantity:
            raise CorruptLedger(
                f"{tx.type} of {qty} {tx.instrument} but only {self.quantity} "
                f"{self.direction} are open"
            )
        value = self._flows(tx)
        if qty == self.quantity:
            portion = self.cost_basis
        else:
            portion = (self.cost_basis * qty / self.quantity).quantize(
                CENT, rounding=ROUND_HALF_EVEN
            )
        realized = -value - portion
        self.cost_basis -= portion
        self.quantity -= qty
        self.realized += realized
        self._revalue()
        return realized

    def _revalue(self) -> None:
        self.half_mult = Decimal(self.sign * 50 * self.quantity)
        self.value = self.mark_sum * self.half_mult if self.mark_sum is not None else ZERO

    @property
    def mark(self) -> Decimal:
        """The mark per share (the last mid, or the entry price)."""
        return self.mark_sum * _HALF if self.mark_sum is not None else ZERO

    def view(self, simulation_id: UUID) -> Position:
        """The wire position as of the last mark."""
        unrealized = self.value - self.cost_basis
        signed_delta = ZERO
        if self.delta is not None:
            signed_delta = Decimal(repr(round(abs(self.delta), 6))).normalize() * self.sign
        return Position(
            id=position_id(simulation_id, self.instrument.symbol, self.direction),
            instrument=self.instrument.symbol,
            direction=self.direction,
            quantity=Decimal(self.quantity),
            cost=dollars(self.cost_basis + self.fees),
            cost_basis=dollars(self.cost_basis),
            debit=dollars(self.debit),
            credit=dollars(self.credit),
            unrealized_profit_loss=dollars(unrealized),
            realized_profit_loss=dollars(self.realized),
            fees=dollars(self.fees),
            total_profit_loss=dollars(unrealized + self.realized - self.fees),
            net_liquidity=dollars(self.value),
            price=price(self.mark),
            delta=signed_delta if signed_delta else ZERO,
        )
