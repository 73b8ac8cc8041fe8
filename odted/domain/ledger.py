"""The ledger: transactions folded into positions, cash and buying power, marked to ticks.

Spec: api-walkthrough Part 4 (the simulation object's financial fields, including the
`equities_*` and `equity_options_*` splits), 6.2-6.3 (available buying power falls by
the debit plus fees; positions computed from the visible transactions), 7.1 (per-second
history rows), 8.1 (pending orders reserve buying power at placement, released on
delete), Part 9 (realized P&L moves into the simulation totals). DESIGN.md "Buying
power".

A `Book` is the incremental state one simulation's actor keeps: it folds each
transaction once (`apply`), keeps pending-order reservations (`reserve` / `release`),
and marks its open positions to each tick cheaply (`mark`: a bisect and two Decimal
operations per position). Everything shown to a client is derived from it:

    cash                    = deposits - withdrawals + credits - debits - fees
    maintenance_buying_power = buying_power.maintenance_requirement(open positions)
    available_buying_power  = cash - maintenance - reserved by pending orders
    net_liquidation_value   = cash + sum(signed marked value of open positions)
    unrealized_profit_loss  = sum(marked value - cost basis of open positions)
    realized_profit_loss    = sum(closing proceeds - average cost), settlement included
    profit_loss             = realized + unrealized - fees  (= NLV - deposits + withdrawals)

Marks are raw leg mids. A position whose quote is missing from a tick keeps its last
mark (and is listed in `MarkSummary.missing`); one never marked is valued at its entry
price. odted trades SPX options only, so every `equities_*` field is 0 and every
`equity_options_*` field equals its total (the split NLV is the positions' marked value,
cash excluded, as the spec's zero-position example shows).

Building a book from transactions (`Book.from_transactions`) and folding them one by one
are the same code path, so recovery after a restart rebuilds exactly the live state.
"""

from __future__ import annotations

import datetime as _dt
from collections.abc import Iterable
from decimal import Decimal
from uuid import UUID

import msgspec

from odted.domain.buying_power import MarginHolding, maintenance_requirement
from odted.domain.chain import Tick
from odted.domain.instruments import parse_osi
from odted.domain.money import ZERO, dollars
from odted.domain.positions import CorruptLedger, Position, PositionState
from odted.domain.transactions import OPENING, Transaction

__all__ = ["Book", "Financials", "HistoryRow", "MarkSummary", "Reservation", "PositionKey"]

PositionKey = tuple[str, str]
"""`(instrument symbol, direction)`."""


class Reservation(msgspec.Struct, frozen=True):
    """What a pending order holds: buying power, and the quantities its closing legs
    will take out of open positions."""

    amount: Decimal
    closing: tuple[tuple[PositionKey, int], ...] = ()


class MarkSummary(msgspec.Struct, frozen=True, gc=False):
    """The result of marking a book to a tick."""

    net_liquidation_value: Decimal
    unrealized_profit_loss: Decimal
    market_value: Decimal
    missing: tuple[str, ...] = ()


class Financials(msgspec.Struct, frozen=True):
    """The financial fields of the simulation object (spec Part 4), in its order."""

    deposits: Decimal
    withdrawals: Decimal
    credits: Decimal
    debits: Decimal
    fees: Decimal
    maintenance_buying_power: Decimal
    available_buying_power: Decimal
    net_liquidation_value: Decimal
    unrealized_profit_loss: Decimal
    realized_profit_loss: Decimal
    profit_loss: Decimal
    equities_credits: Decimal
    equities_debits: Decimal
    equities_fees: Decimal
    equities_unrealized_profit_loss: Decimal
    equities_realized_profit_loss: Decimal
    equities_profit_loss: Decimal
    equities_maintenance_buying_power: Decimal
    equities_net_liquidation_value: Decimal
    equity_options_credits: Decimal
    equity_options_debits: Decimal
    equity_options_fees: Decimal
    equity_options_unrealized_profit_loss: Decimal
    equity_options_realized_profit_loss: Decimal
    equity_options_profit_loss: Decimal
    equity_options_maintenance_buying_power: Decimal
    equity_options_net_liquidation_value: Decimal


class HistoryRow(msgspec.Struct, frozen=True, gc=False):
    """One per-second history sample (spec 7.1)."""

    @classmethod
    def of(cls, ts: _dt.datetime, values: tuple[Decimal, ...]) -> HistoryRow:
        """The row at `ts` from `Book.history_values()`, in canonical money form."""
        return cls(ts, *(dollars(v) for v in values))

    timestamp: _dt.datetime
    net_liquidation_value: Decimal
    profit_loss: Decimal
    unrealized_profit_loss: Decimal
    realized_profit_loss: Decimal
    credits: Decimal
    debits: Decimal
    fees: Decimal
    maintenance_buying_power: Decimal
    available_buying_power: Decimal


class Book:
    """One simulation's positions, cash and reservations (see the module docstring)."""

    __slots__ = (
        "simulation_id", "deposits", "withdrawals", "credits", "debits", "fees",
        "realized", "_positions", "_maintenance", "_reservations", "_reserved",
        "_market_value", "_open_cost", "_missing", "_holdings", "_cash", "revision",
    )  # fmt: skip

    def __init__(
        self, simulation_id: UUID, deposits: Decimal, withdrawals: Decimal = ZERO
    ) -> None:
        self.simulation_id = simulation_id
        self.deposits = deposits
        self.withdrawals = withdrawals
        self.credits = ZERO
        self.debits = ZERO
        self.fees = ZERO
        self._cash = deposits - withdrawals
        self.realized = ZERO
        self._positions: dict[PositionKey, PositionState] = {}
        self._maintenance: Decimal | None = ZERO
        self._reservations: dict[UUID, Reservation] = {}
        self._reserved = ZERO
        self._market_value = ZERO
        self._open_cost = ZERO
        self._missing: tuple[str, ...] = ()
        self._holdings: list[MarginHolding] | None = []
        self.revision = 0  # bumped by every change but a mark: a cheap "did anything change"

    @classmethod
    def from_transactions(
        cls,
        simulation_id: UUID,
        deposits: Decimal,
        transactions: Iterable[Transaction],
        withdrawals: Decimal = ZERO,
    ) -> Book:
        """A book with `transactions` applied in order (recovery, historical time)."""
        book = cls(simulation_id, deposits, withdrawals)
        for tx in transactions:
            book.apply(tx)
        return book

    # -- folding ---------------------------------------------------------------------

    def apply(self, tx: Transaction) -> None:
        """Fold one transaction; raise `CorruptLedger` if it closes more than is open."""
        value = tx.value
        if value is not None:
            if value > 0:
                self.debits += value
                self._cash -= value
            else:
                self.credits -= value
                self._cash -= value
        self.fees += tx.fees
        self._cash -= tx.fees
        key = (tx.instrument, tx.position_direction)
        state = self._positions.get(key)
        if tx.type in OPENING:
            if state is None:
                state = self._positions[key] = PositionState(parse_osi(tx.instrument), key[1])
            state.open(tx)
        else:
            if state is None:
                raise CorruptLedger(f"{tx.type} of {tx.instrument}: no {key[1]} position")
            self.realized += state.close(tx)
            if not state.quantity:
                del self._positions[key]
        self._maintenance = None
        self._holdings = None
        self.revision += 1
        self._refresh()

    def apply_all(self, transactions: Iterable[Transaction]) -> None:
        for tx in transactions:
            self.apply(tx)

    def _refresh(self) -> None:
        mv = ZERO
        cost = ZERO
        for state in self._positions.values():
            mv += state.value
            cost += state.cost_basis
        self._market_value = mv
        self._open_cost = cost

    # -- reservations ----------------------------------------------------------------

    def reserve(self, order_id: UUID, reservation: Reservation) -> None:
        """Hold `reservation` for a pending order (replacing any it held)."""
        self.release(order_id)
        self._reservations[order_id] = reservation
        self._reserved += reservation.amount
        self.revision += 1

    def release(self, order_id: UUID) -> None:
        """Free what a pending order held (cancel, expiry, fill, rejection)."""
        old = self._reservations.pop(order_id, None)
        if old is not None:
            self._reserved -= old.amount
            self.revision += 1

    def reserved(self, exclude: UUID | None = None) -> Decimal:
        """Buying power held by pending orders, optionally but one."""
        if exclude is not None and exclude in self._reservations:
            return self._reserved - self._reservations[exclude].amount
        return self._reserved

    def pending_closing(self, key: PositionKey, exclude: UUID | None = None) -> int:
        """Contracts of position `key` that pending orders (but `exclude`) will close."""
        total = 0
        for oid, res in self._reservations.items():
            if oid == exclude:
                continue
            for k, qty in res.closing:
                if k == key:
                    total += qty
        return total

    # -- reading ---------------------------------------------------------------------

    @property
    def cash(self) -> Decimal:
        """deposits - withdrawals + credits - debits - fees, kept as transactions fold in."""
        return self._cash

    @property
    def maintenance(self) -> Decimal:
        """The maintenance requirement of the open positions (cached until they change)."""
        if self._maintenance is None:
            self._maintenance = maintenance_requirement(self.holdings())
        return self._maintenance

    def available_buying_power(self, exclude: UUID | None = None) -> Decimal:
        """Cash less maintenance less what pending orders (but `exclude`) hold."""
        return self.cash - self.maintenance - self.reserved(exclude)

    def open_quantity(self, key: PositionKey) -> int:
        state = self._positions.get(key)
        return state.quantity if state is not None else 0

    def holdings(self) -> list[MarginHolding]:
        """Net signed quantity per open instrument, for margin (cached; do not mutate)."""
        if self._holdings is None:
            self._holdings = [
                (s.instrument.expiry, s.right, s.instrument.strike_milli, s.sign * s.quantity)
                for s in self._positions.values()
            ]
        return self._holdings

    def maintenance_with(self, changes: Iterable[MarginHolding]) -> Decimal:
        """The maintenance requirement after adding `changes` to the net holdings."""
        return maintenance_requirement([*self.holdings(), *changes])

    def copy(self) -> Book:
        """An independent copy (positions and reservations included), cheap enough to
        take per command: changes are decided on the copy, committed, then swapped in."""
        new = Book.__new__(Book)
        for name in Book.__slots__:
            setattr(new, name, getattr(self, name))
        new._positions = {k: state.copy() for k, state in self._positions.items()}
        new._reservations = dict(self._reservations)
        if isinstance(self._holdings, (list, dict)):
            new._holdings = self._holdings.copy()
        return new

    @property
    def has_positions(self) -> bool:
        return bool(self._positions)

    def open_positions(self) -> list[PositionState]:
        return list(self._positions.values())

    # -- marking ---------------------------------------------------------------------

    def mark(self, tick: Tick) -> MarkSummary:
        """Mark every open position to its mid in `tick`; keep the last mark when a
        quote is missing. Cost: one bisect and two Decimal operations per position."""
        mv = ZERO
        missing: list[str] | None = None
        for state in self._positions.values():
            q = tick.quote(state.strike, state.right) if state.strike is not None else None
            if q is None:
                if missing is None:
                    missing = []
                missing.append(state.instrument.symbol)
            else:
                s = q.bid + q.ask
                state.mark_sum = s
                state.delta = q.delta
                state.value = s * state.half_mult
            mv += state.value
        self._market_value = mv
        self._missing = tuple(missing) if missing else ()
        return MarkSummary(
            net_liquidation_value=self.cash + mv,
            unrealized_profit_loss=mv - self._open_cost,
            market_value=mv,
            missing=self._missing,
        )

    @property
    def net_liquidation_value(self) -> Decimal:
        return self.cash + self._market_value

    @property
    def unrealized_profit_loss(self) -> Decimal:
        return self._market_value - self._open_cost

    @property
    def profit_loss(self) -> Decimal:
        return self.realized + self.unrealized_profit_loss - self.fees

    def positions(self) -> list[Position]:
        """The open positions as of the last mark, as the spec's position objects."""
        return [state.view(self.simulation_id) for state in self._positions.values()]

    def financials(self) -> Financials:
        """The simulation's financial fields as of the last mark."""
        maintenance = dollars(self.maintenance)
        unrealized = dollars(self.unrealized_profit_loss)
        realized = dollars(self.realized)
        pl = dollars(self.profit_loss)
        credits = dollars(self.credits)
        debits = dollars(self.debits)
        fees = dollars(self.fees)
        mv = dollars(self._market_value)
        zero = ZERO
        return Financials(
            deposits=dollars(self.deposits),
            withdrawals=dollars(self.withdrawals),
            credits=credits,
            debits=debits,
            fees=fees,
            maintenance_buying_power=maintenance,
            available_buying_power=dollars(self.available_buying_power()),
            net_liquidation_value=dollars(self.net_liquidation_value),
            unrealized_profit_loss=unrealized,
            realized_profit_loss=realized,
            profit_loss=pl,
            equities_credits=zero,
            equities_debits=zero,
            equities_fees=zero,
            equities_unrealized_profit_loss=zero,
            equities_realized_profit_loss=zero,
            equities_profit_loss=zero,
            equities_maintenance_buying_power=zero,
            equities_net_liquidation_value=zero,
            equity_options_credits=credits,
            equity_options_debits=debits,
            equity_options_fees=fees,
            equity_options_unrealized_profit_loss=unrealized,
            equity_options_realized_profit_loss=realized,
            equity_options_profit_loss=pl,
            equity_options_maintenance_buying_power=maintenance,
            equity_options_net_liquidation_value=mv,
        )

    def history_values(self) -> tuple[Decimal, ...]:
        """The raw values of a history row as of the last mark, cheap to take on every
        tick; `HistoryRow.of(ts, values)` formats them (off the hot path)."""
        return (self.net_liquidation_value, self.profit_loss, self.unrealized_profit_loss, self.realized,
                self.credits, self.debits, self.fees, self.maintenance, self.available_buying_power())

    def history_row(self, ts: _dt.datetime) -> HistoryRow:
        """The per-second history sample at `ts`, as of the last mark."""
        return HistoryRow(
            timestamp=ts,
            net_liquidation_value=dollars(self.net_liquidation_value),
            profit_loss=dollars(self.profit_loss),
            unrealized_profit_loss=dollars(self.unrealized_profit_loss),
            realized_profit_loss=dollars(self.realized),
            credits=dollars(self.credits),
            debits=dollars(self.debits),
            fees=dollars(self.fees),
            maintenance_buying_power=dollars(self.maintenance),
            available_buying_power=dollars(self.available_buying_power()),
        )
