"""Property tests of the domain's invariants (hypothesis)."""

from __future__ import annotations

import itertools
from decimal import Decimal as D
from uuid import UUID

from domain_helpers import SESSION, SIM, T0, leg, q, request, tick
from hypothesis import HealthCheck, assume, event, given, settings
from hypothesis import strategies as st

from odted.domain.buying_power import maintenance_requirement
from odted.domain.fees import FeeSchedule
from odted.domain.fills import decide, fill_on_tick, fill_transactions, split_leg_prices
from odted.domain.ledger import Book
from odted.domain.lifecycle import fill_order, place_order
from odted.domain.orders import OrderDenied, Ticket
from odted.domain.pricing import quote_combo
from odted.domain.settlement import intrinsic, settle
from odted.domain.ticks import NICKEL, tick_for
from odted.domain.validation import (
    parse_order,
    recheck_fill,
    validate_order,
)

STRIKES = (5900, 5925, 5950, 5975, 6000)
NICKELS = st.integers(min_value=0, max_value=200).map(lambda k: NICKEL * k)
SETTINGS = settings(max_examples=100, deadline=None, suppress_health_check=[HealthCheck.too_slow])


@st.composite
def quotes(draw, spread_step: D = NICKEL):
    bid = draw(NICKELS) if spread_step == NICKEL else draw(NICKELS) * 2
    ask = bid + spread_step * draw(st.integers(min_value=0, max_value=6))
    return q(str(bid), str(ask), draw(st.floats(min_value=0.0, max_value=1.0)))


@st.composite
def chains(draw, spread_step: D = NICKEL, seq: int = 1):
    return tick(
        {k: (draw(quotes(spread_step)), draw(quotes(spread_step))) for k in STRIKES},
        seq=seq,
    )


@st.composite
def structures(draw, max_legs: int = 4, max_qty: int = 3):
    """Opening legs: `(strike, right, sign, quantity)`, distinct instruments."""
    n = draw(st.integers(min_value=1, max_value=max_legs))
    keys = draw(st.lists(st.sampled_from([(k, r) for k in STRIKES for r in "CP"]), min_size=n, max_size=n, unique=True))
    return [
        (k, r, draw(st.sampled_from((1, -1))), draw(st.integers(min_value=1, max_value=max_qty)))
        for k, r in keys
    ]


def _request(structure, *, closing: bool = False, mirror: bool = False, type: str = "limit", price=None, effect=None):
    legs = []
    for k, r, sign, qty in structure:
        s = -sign if mirror else sign
        if closing:
            action = "buy to close" if s > 0 else "sell to close"
        else:
            action = "buy to open" if s > 0 else "sell to open"
        legs.append(leg(k, r, action, str(qty)))
    fields = {}
    if price is not None:
        fields = {"price": D(price), "price_effect": effect}
    return request(type, *legs, **fields)


def _limit_at(structure, combo_mid: D, **kw):
    effect = "debit" if combo_mid > 0 or (combo_mid == 0 and all(s > 0 for _, _, s, _ in structure)) else "credit"
    return _request(structure, price=abs(combo_mid), effect=effect, **kw)


# -- per-leg prices add up to the fill ------------------------------------------------------


@SETTINGS
@given(structures(), chains(), st.integers(min_value=-400, max_value=400))
def test_leg_prices_always_add_up_exactly_to_the_fill(structure, t, n):
    ticket = parse_order(_request(structure, price="0.05", effect="debit" if all(s > 0 for *_, s, _ in structure) else "credit"))
    assume(isinstance(ticket, Ticket))
    net = NICKEL * n
    if ticket.all_buys:
        net = abs(net)
    elif ticket.all_sells:
        net = -abs(net)
    combo = quote_combo(ticket.legs, t)
    prices = split_leg_prices(ticket.legs, combo.quotes, net)
    assert sum(leg.sign * leg.ratio * p for leg, p in zip(ticket.legs, prices, strict=True)) == net * 100
    assert all(p >= 0 and p == p.quantize(D("0.01")) for p in prices)
    fill = decide(ticket, combo, D(0))
    if fill is not None:
        txs = fill_transactions(ticket, fill, order_id=UUID(int=1), ts=T0, fees=FeeSchedule.default())
        assert sum(tx.value for tx in txs) == fill.net * 100 * ticket.units


# -- round trip at the same mid --------------------------------------------------------------


@SETTINGS
@given(structures(), chains(spread_step=D("0.20")))
def test_buying_and_selling_back_at_the_same_mid_without_fees_or_slippage_is_flat(structure, t):
    # Bids on the dime grid and leg spreads of whole 0.20s put every combo mid on its tick
    # (the dime too), so the mirrored structure's mid is exactly the negation: no
    # market-maker half tick.
    fees = FeeSchedule.zero()
    book = Book(SIM, D(10_000_000))
    ticket = parse_order(_request(structure, price="0.05", effect="debit" if all(s > 0 for *_, s, _ in structure) else "credit"))
    assume(isinstance(ticket, Ticket))
    mid = quote_combo(ticket.legs, t).mid
    for closing in (False, True):
        m = mid if not closing else -mid
        ticket = parse_order(_limit_at(structure, m, closing=closing, mirror=closing))
        assume(isinstance(ticket, Ticket))  # a mid past the structure's cap is no trade
        fill = fill_on_tick(ticket, t, D(0))
        assert fill is not None and fill.net == m
        book.apply_all(fill_transactions(ticket, fill, order_id=UUID(int=2 + closing), ts=T0, fees=fees))
        book.mark(t)
    assert book.positions() == []
    assert book.realized == 0 and book.profit_loss == 0
    assert book.cash == D(10_000_000) and book.net_liquidation_value == D(10_000_000)


# -- debit / credit mirror ------------------------------------------------------------------


@SETTINGS
@given(structures(), chains(), st.integers(min_value=0, max_value=200), st.integers(min_value=0, max_value=3))
def test_a_credit_order_is_the_exact_mirror_of_a_debit_order(structure, t, p_nickels, s_nickels):
    """Buying a structure for a debit p and selling it (its mirror) for a credit p are
    the two sides of one trade: each fills past its own side of the mid by the slippage,
    and the only asymmetry is the market maker's half tick on an odd spread."""
    p, s = NICKEL * p_nickels, NICKEL * s_nickels
    buy = parse_order(_request(structure, price=p, effect="debit"))
    sell = parse_order(_request(structure, price=p, effect="credit", mirror=True))
    assume(isinstance(buy, Ticket) and isinstance(sell, Ticket))
    assume(not buy.all_sells and not sell.all_buys)
    combo_buy = quote_combo(buy.legs, t)
    combo_sell = quote_combo(sell.legs, t)
    assert combo_sell.ask_side == -combo_buy.bid_side and combo_sell.bid_side == -combo_buy.ask_side
    m_buy = combo_buy.mid  # what the buyer's side of the mid is
    m_sell = -combo_sell.mid  # the same structure's mid as the seller sees it
    tick_size = tick_for(combo_buy.raw_mid, len(buy.legs))
    halfway = abs(combo_buy.raw_mid) / tick_size % 1 == D("0.5")
    assert m_buy - m_sell == (tick_size if halfway else 0)
    f_buy = decide(buy, combo_buy, s)
    f_sell = decide(sell, combo_sell, s)
    assert (f_buy is not None) == (m_buy <= p - s)
    assert (f_sell is not None) == (m_sell >= p + s)
    if f_buy is not None and not buy.all_buys:
        assert (f_buy.net, f_buy.execution) == (m_buy + s, p - s)
    if f_sell is not None and not sell.all_sells:
        assert (f_sell.net, f_sell.execution) == (-(m_sell - s), -(p + s))


# -- NLV ------------------------------------------------------------------------------------


@SETTINGS
@given(st.lists(structures(max_legs=2), min_size=1, max_size=4), chains(), chains(seq=2))
def test_net_liquidation_value_is_cash_plus_marked_positions(orders, t1, t2):
    book = Book(SIM, D(10_000_000))
    for i, structure in enumerate(orders):
        ticket = parse_order(_request(structure, type="limit", price="0.05", effect="debit" if all(s > 0 for *_, s, _ in structure) else "credit"))
        assume(isinstance(ticket, Ticket))
        fill = decide(msgspec_replace_limit(ticket), quote_combo(ticket.legs, t1), D("0.05"))
        book.apply_all(fill_transactions(ticket, fill, order_id=UUID(int=10 + i), ts=T0, fees=FeeSchedule.default()))
    summary = book.mark(t2)
    positions = book.positions()
    assert summary.net_liquidation_value == book.cash + sum(p.net_liquidity for p in positions)
    assert book.profit_loss == summary.net_liquidation_value - D(10_000_000)
    assert summary.unrealized_profit_loss == sum(p.unrealized_profit_loss for p in positions)
    f = book.financials()
    assert f.profit_loss == f.realized_profit_loss + f.unrealized_profit_loss - f.fees


def msgspec_replace_limit(ticket: Ticket) -> Ticket:
    """The ticket as a limit that fills on any tick (a huge signed limit)."""
    import msgspec

    return msgspec.structs.replace(ticket, limit=D(1_000_000))


# -- settlement -------------------------------------------------------------------------------


@SETTINGS
@given(st.lists(structures(max_legs=3), min_size=1, max_size=3), chains(), st.integers(min_value=580_000, max_value=602_500))
def test_settlement_moves_exactly_the_intrinsic_value(orders, t, spx_cents):
    spx = D(spx_cents) / 100
    fees = FeeSchedule.default()
    book = Book(SIM, D(10_000_000))
    for i, structure in enumerate(orders):
        ticket = parse_order(_request(structure, price="0.05", effect="debit" if all(s > 0 for *_, s, _ in structure) else "credit"))
        assume(isinstance(ticket, Ticket))
        fill = decide(msgspec_replace_limit(ticket), quote_combo(ticket.legs, t), D(0))
        book.apply_all(fill_transactions(ticket, fill, order_id=UUID(int=10 + i), ts=T0, fees=fees))
    expected = sum(
        s.sign * intrinsic(s.instrument.right, s.instrument.strike, spx) * 100 * s.quantity
        for s in book.open_positions()
    )
    contracts_itm = sum(
        s.quantity for s in book.open_positions() if intrinsic(s.instrument.right, s.instrument.strike, spx)
    )
    cash, realized, open_cost = book.cash, book.realized, sum(s.cost_basis for s in book.open_positions())
    book.apply_all(settle(book, underlying=spx, ts=T0, fees=fees))
    assert book.open_positions() == []
    assert book.cash - cash == expected - fees.exercise_option * contracts_itm
    assert book.realized - realized == expected - open_cost


# -- buying power never goes negative ----------------------------------------------------------


@settings(max_examples=80, deadline=None, suppress_health_check=[HealthCheck.too_slow, HealthCheck.filter_too_much])
@given(
    st.integers(min_value=1_000, max_value=300_000),
    st.lists(
        st.tuples(structures(max_legs=3), st.sampled_from(("limit", "market")), st.integers(min_value=-10, max_value=10), st.sampled_from((False, False, True))),
        min_size=1,
        max_size=8,
    ),
    st.lists(chains(), min_size=2, max_size=4),
)
def test_no_accepted_order_leaves_available_buying_power_negative(capital, orders, ticks):
    fees = FeeSchedule.default()
    slippage = D("0.05")
    book = Book(SIM, D(capital))
    pending: dict[UUID, tuple[object, Ticket]] = {}
    ids = itertools.count(1)
    for step, (structure, kind, offset, closing) in enumerate(orders):
        t = ticks[step % len(ticks)]
        if kind == "market":
            structure = structure[:1]
        req_kw = {}
        if kind == "limit":
            tk = parse_order(_request(structure, price="0.05", effect="debit" if all(s > 0 for *_, s, _ in structure) else "credit"))
            if isinstance(tk, OrderDenied):
                continue
            mid = quote_combo(tk.legs, t).mid + NICKEL * offset
            req_kw = {"price": abs(mid), "effect": "debit" if mid > 0 or tk.all_buys else "credit"}
        req = _request(structure, closing=closing, type=kind, **req_kw)
        a = validate_order(req, tick=t, session_date=SESSION, book=book, fees=fees, slippage=slippage)
        if isinstance(a, OrderDenied):
            event(f"denied: {a.code}")
            continue
        event("accepted, filled" if a.fill is not None else "accepted, pending")
        oid = UUID(int=next(ids))
        placed = place_order(a, order_id=oid, ts=t.ts, fees=fees)
        book.apply_all(placed.transactions)
        if placed.order.is_pending:
            book.reserve(oid, placed.reservation)
            pending[oid] = (placed.order, a.ticket)
        assert book.available_buying_power() >= 0, "an accepted order overdrew buying power"
        # The next tick matches every pending order with the fill-time re-check.
        nxt = ticks[(step + 1) % len(ticks)]
        for pid, (order, ticket) in list(pending.items()):
            fill = fill_on_tick(ticket, nxt, slippage)
            if fill is None:
                continue
            del pending[pid]
            denied = recheck_fill(ticket, fill, book=book, fees=fees, order_id=pid)
            event("fill rejected on recheck" if denied else "pending order filled")
            book.release(pid)
            if denied is None:
                _, txs = fill_order(order, ticket, fill, ts=nxt.ts, fees=fees)
                book.apply_all(txs)
            assert book.available_buying_power() >= 0, "a fill overdrew buying power"


# -- the margin rule against brute force ------------------------------------------------------


@SETTINGS
@given(st.lists(st.tuples(st.sampled_from("CP"), st.sampled_from(STRIKES), st.integers(min_value=-3, max_value=3)), min_size=1, max_size=5))
def test_maintenance_charges_the_costliest_choice_of_naked_shorts(holdings):
    """Brute force: every way to pick the uncovered short contracts, each charged
    naked, plus the covered rest's worst loss over a fine price grid."""
    net: dict[tuple[str, int], int] = {}
    for r, k, qty in holdings:
        net[(r, k)] = net.get((r, k), 0) + qty
    fast = maintenance_requirement([(SESSION, r, k * 1000, qty) for (r, k), qty in net.items()])
    shorts = {r: [key for key, qty in net.items() if key[0] == r for _ in range(-qty)] for r in "CP"}
    uncovered = {r: max(0, -sum(qty for key, qty in net.items() if key[0] == r)) for r in "CP"}
    best = 0
    grid = range(0, 6201, 5)  # every 5 points: all the strikes and between them
    for naked_c in set(itertools.combinations(sorted(shorts["C"]), uncovered["C"])):
        for naked_p in set(itertools.combinations(sorted(shorts["P"]), uncovered["P"])):
            covered = dict(net)
            for key in (*naked_c, *naked_p):
                covered[key] += 1
            worst = max(
                -sum(qty * max(0, (s - k) if r == "C" else (k - s)) for (r, k), qty in covered.items())
                for s in grid
            )
            charge = sum(k * 20 for _, k in (*naked_c, *naked_p)) + max(0, worst) * 100
            best = max(best, charge)
    assert fast == best
