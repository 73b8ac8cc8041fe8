"""Small builders for the domain tests: chains, ticks, requests, books."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta
from decimal import Decimal
from itertools import count
from uuid import UUID

import msgspec

from odted.domain.chain import OptionQuote, StrikeQuotes, Tick
from odted.domain.fees import FeeSchedule
from odted.domain.ledger import Book
from odted.domain.lifecycle import place_order
from odted.domain.orders import OrderLeg, OrderRequest
from odted.domain.validation import Assessment, validate_order

D = Decimal
SESSION = date(2025, 1, 15)
T0 = datetime(2025, 1, 15, 14, 35, tzinfo=UTC)
SIM = UUID("f3c88e1a-2d04-4a6b-9c12-7e8f5d6a4b3c")


def osi(strike: int, right: str = "C", day: date = SESSION) -> str:
    return f"SPXW  {day:%y%m%d}{right}{strike * 1000:08d}"


def q(bid: str, ask: str, delta: float = 0.5) -> OptionQuote:
    return OptionQuote(bid=D(bid), ask=D(ask), delta=delta)


def tick(
    quotes: dict[int, tuple[OptionQuote, OptionQuote]],
    *,
    seq: int = 1,
    spx: str = "5949.57",
    ts: datetime | None = None,
    closing: bool = False,
) -> Tick:
    """A tick from `{strike: (call, put)}`."""
    return Tick.build(
        seq=seq,
        ts=ts or T0 + timedelta(seconds=seq - 1),
        spx=D(spx),
        vix=D("15.83"),
        spx_expected_move=D("0.0048"),
        chain=[StrikeQuotes(strike=k, call=c, put=p) for k, (c, p) in quotes.items()],
        closing=closing,
    )


def spec_tick(**kw) -> Tick:
    """A chain that reproduces the walkthrough's examples (Parts 3.2, 6 and 8).

    5950 call 4.20/4.40 (delta 0.523) and 5970 call 3.20/3.30 make the debit vertical's
    legs 430 and 325; the 5900/5880 puts make a credit put vertical whose mid is 1.05.
    """
    return tick(
        {
            5880: (q("70.00", "71.00", 0.9), q("1.10", "1.20", 0.10)),
            5900: (q("52.00", "53.00", 0.8), q("2.20", "2.30", 0.17)),
            5950: (q("4.20", "4.40", 0.523), q("3.10", "3.30", 0.477)),
            5960: (q("3.70", "3.80", 0.45), q("13.00", "13.40", 0.55)),
            5970: (q("3.20", "3.30", 0.38), q("22.00", "22.60", 0.62)),
        },
        **kw,
    )


def wide_tick(n: int = 240, *, center: int = 5950, seq: int = 1, shift: str = "0") -> Tick:
    """A 5-point chain of `n` strikes around `center` with plausible prices."""
    quotes = {}
    lo = center - 5 * (n // 2)
    s = D(shift)
    for i in range(n):
        k = lo + 5 * i
        dist = D(k - center) / 5
        call_mid = max(D("0.10"), D("5.00") - dist * D("0.40") + s)
        put_mid = max(D("0.10"), D("5.00") + dist * D("0.40") - s)
        quotes[k] = (
            q(str(call_mid - D("0.05")), str(call_mid + D("0.05")), 0.5),
            q(str(put_mid - D("0.05")), str(put_mid + D("0.05")), 0.5),
        )
    return tick(quotes, seq=seq)


def leg(strike: int, right: str, action: str, quantity: str = "1") -> OrderLeg:
    return OrderLeg(instrument=osi(strike, right), quantity=D(quantity), action=action)


def request(type: str = "limit", *legs: OrderLeg, **fields) -> OrderRequest:
    for name in ("price", "stop_trigger"):
        if isinstance(fields.get(name), str):
            fields[name] = D(fields[name])
    return OrderRequest(type=type, legs=tuple(legs), **fields)


def decode(body: bytes) -> OrderRequest:
    return msgspec.json.decode(body, type=OrderRequest)


def debit_call_vertical(price: str = "10.50", qty: str = "1") -> OrderRequest:
    """The walkthrough's 6.1 order."""
    return request(
        "limit",
        leg(5950, "C", "buy to open", qty),
        leg(5970, "C", "sell to open", qty),
        price=price,
        price_effect="debit",
    )


def credit_put_vertical(price: str = "1.50", qty: str = "1") -> OrderRequest:
    """The walkthrough's 8.1 order."""
    return request(
        "limit",
        leg(5900, "P", "sell to open", qty),
        leg(5880, "P", "buy to open", qty),
        price=price,
        price_effect="credit",
    )


def book(capital: str = "100000") -> Book:
    return Book(SIM, D(capital))


def assess(req: OrderRequest, *, bk: Book | None = None, t: Tick | None = None,
           fees: FeeSchedule | None = None, slippage: str = "0", replacing=None):
    return validate_order(
        req,
        tick=t if t is not None else spec_tick(),
        session_date=SESSION,
        book=bk if bk is not None else book(),
        fees=fees or FeeSchedule.default(),
        slippage=D(slippage),
        replacing=replacing,
    )


def ids():
    """A deterministic uuid4 stand-in."""
    c = count(1)
    return lambda: UUID(int=next(c))


def fill_now(req: OrderRequest, bk: Book, t: Tick | None = None, *, fees=None,
             slippage: str = "0", order_id: UUID | None = None) -> Assessment:
    """Validate, place and apply an order that must fill at once; return the assessment."""
    fees = fees or FeeSchedule.default()
    t = t if t is not None else spec_tick()
    a = assess(req, bk=bk, t=t, fees=fees, slippage=slippage)
    assert isinstance(a, Assessment), a
    assert a.fill is not None, "expected an immediate fill"
    p = place_order(a, order_id=order_id or UUID(int=99), ts=t.ts, fees=fees)
    bk.apply_all(p.transactions)
    return a
