"""The bot risk policy and its checks (bots-api "Create a bot"; `odted.domain.risk`)."""

from __future__ import annotations

from datetime import timedelta
from decimal import Decimal as D

import msgspec
from domain_helpers import T0, book, credit_put_vertical, fill_now, q, spec_tick, tick

from odted.domain.orders import OrderDenied
from odted.domain.risk import (
    DrawdownGuard,
    ErrorBudget,
    RiskCode,
    RiskPolicy,
    check_new_order,
    check_staleness,
    holdings_of,
    is_sane_quote,
    record_error,
    risk_errors,
)

POLICY = RiskPolicy(max_daily_loss_pct=D("0.0050"))  # $500 of $100,000


def test_the_defaults_are_within_the_spec_bounds():
    assert RiskPolicy() == RiskPolicy(
        max_daily_loss_pct=D("0.0500"), max_open_positions=10, max_open_orders=10,
        data_staleness_threshold_ms=3000, auto_pause_on_error=True, error_budget=5,
    )
    assert risk_errors(RiskPolicy()) == {}


def test_a_policy_decodes_from_the_create_body_with_defaults_for_the_rest():
    p = msgspec.json.decode(b'{"max_daily_loss_pct": "0.0200", "max_open_positions": 4}', type=RiskPolicy)
    assert p.max_daily_loss_pct == D("0.0200") and p.max_open_positions == 4 and p.error_budget == 5


def test_every_bound_is_checked_and_reported_at_once():
    bad = RiskPolicy(max_daily_loss_pct=D("0.0049"), max_open_positions=0, max_open_orders=51,
                     data_staleness_threshold_ms=499, error_budget=101)
    assert set(risk_errors(bad)) == {
        "max_daily_loss_pct", "max_open_positions", "max_open_orders",
        "data_staleness_threshold_ms", "error_budget",
    }
    edges = RiskPolicy(max_daily_loss_pct=D("0.5000"), max_open_positions=100, max_open_orders=50,
                       data_staleness_threshold_ms=10000, error_budget=0)
    assert risk_errors(edges) == {}
    assert set(risk_errors(RiskPolicy(max_daily_loss_pct=D("0.5001"), max_open_orders=0,
                                      data_staleness_threshold_ms=10001))) == {
        "max_daily_loss_pct", "max_open_orders", "data_staleness_threshold_ms"}


def test_an_opening_order_past_max_open_orders_is_denied_not_raised():
    p = RiskPolicy(max_open_orders=2)
    assert check_new_order(p, 0, 1, opens=2) is None
    denied = check_new_order(p, 0, 2, opens=2)
    assert isinstance(denied, OrderDenied) and denied.code == RiskCode.MAX_OPEN_ORDERS


def test_an_opening_order_that_would_open_too_many_positions_is_denied():
    p = RiskPolicy(max_open_positions=4)
    assert check_new_order(p, 2, 0, opens=2) is None
    denied = check_new_order(p, 3, 0, opens=2)
    assert isinstance(denied, OrderDenied) and denied.code == RiskCode.MAX_OPEN_POSITIONS


def test_a_closing_order_is_never_refused_by_the_count_limits():
    p = RiskPolicy(max_open_positions=1, max_open_orders=1)
    assert check_new_order(p, 50, 50, intent="closing") is None


def test_orders_wait_while_data_is_staler_than_the_threshold():
    p = RiskPolicy(data_staleness_threshold_ms=3000)
    assert check_staleness(p, now=T0 + timedelta(seconds=3), last_data_at=T0) is None
    stale = check_staleness(p, now=T0 + timedelta(milliseconds=3001), last_data_at=T0)
    assert isinstance(stale, OrderDenied) and stale.code == RiskCode.STALE_DATA
    assert check_staleness(p, now=T0, last_data_at=None).code == RiskCode.STALE_DATA


def test_errors_past_the_budget_halt_only_with_auto_pause_on():
    p = RiskPolicy(error_budget=2)
    b = ErrorBudget()
    halts = []
    for _ in range(3):
        b, halt = record_error(b, p)
        halts.append(halt)
    assert halts == [False, False, True]
    b, halt = record_error(ErrorBudget(), RiskPolicy(error_budget=0))
    assert halt
    b = ErrorBudget()
    for _ in range(10):
        b, halt = record_error(b, RiskPolicy(error_budget=0, auto_pause_on_error=False))
        assert not halt


# -- quotes -----------------------------------------------------------------------------


def test_crossed_locked_absurdly_wide_and_below_intrinsic_quotes_are_not_sane():
    spx = D("5949.57")
    assert is_sane_quote(q("2.20", "2.30"), "P", 5900, spx)
    assert is_sane_quote(q("0.00", "0.05"), "P", 5800, spx)
    assert is_sane_quote(q("52.00", "53.00"), "C", 5900, spx)  # deep ITM, 1.00 wide
    assert not is_sane_quote(q("2.30", "2.20"), "P", 5900, spx)  # crossed
    assert not is_sane_quote(q("2.20", "2.20"), "P", 5900, spx)  # locked
    assert not is_sane_quote(q("0.05", "50.00"), "P", 5900, spx)  # absurdly wide
    assert not is_sane_quote(q("0.05", "0.10"), "C", 5900, spx)  # 49.57 in the money at a dime
    assert not is_sane_quote(q("6000", "6001"), "C", 5900, spx)  # worth more than SPX
    assert not is_sane_quote(q("-0.05", "0.05"), "P", 5900, spx)


# -- the drawdown rule ------------------------------------------------------------------


def _short_put_spread():
    """$100,000, short the 5900/5880 put vertical at a 1.05 credit."""
    bk = book()
    fill_now(credit_put_vertical("1.00"), bk)
    return bk


def _market(seq, spx, p5900, p5880):
    c = q("1.00", "1.10", 0.1)
    return tick({5880: (c, q(*p5880, 0.2)), 5900: (c, q(*p5900, 0.3))}, seq=seq, spx=spx)


NORMAL = ("2.20", "2.30"), ("1.10", "1.20")
CRASH = ("50.00", "50.60"), ("30.00", "30.60")  # SPX 5850: the spread is worth ~20


def _run(bk, ticks, policy=POLICY):
    guard = DrawdownGuard.start(D("100000"))
    readings = []
    for t in ticks:
        guard, r = guard.step(policy, tick=t, cash=bk.cash, holdings=holdings_of(bk))
        readings.append(r)
    return guard, readings


def test_a_quiet_market_shows_the_spread_at_its_mid_and_no_drawdown_to_speak_of():
    bk = _short_put_spread()
    _, [r] = _run(bk, [spec_tick()])
    assert r.robust_nlv == bk.mark(spec_tick()).net_liquidation_value
    assert not r.breached and not r.halt and r.suspect == ()


def test_one_garbage_quote_does_not_halt():
    bk = _short_put_spread()
    garbage = _market(2, "5949.57", ("0.05", "80.00"), NORMAL[1])  # a 0.05 x 80 short put
    _, readings = _run(bk, [_market(1, "5949.57", *NORMAL), garbage, _market(3, "5949.57", *NORMAL)])
    assert [r.halt for r in readings] == [False, False, False]
    assert not readings[1].breached
    assert readings[1].suspect == ("SPXW  250115P05900000",)
    assert readings[1].robust_nlv == readings[0].robust_nlv  # the last good mark stands


def test_one_sane_looking_but_wrong_tick_breaches_once_and_does_not_halt():
    bk = _short_put_spread()
    wrong = _market(2, "5949.57", ("45.00", "45.40"), NORMAL[1])  # tight, plausible, wrong
    ticks = [_market(1, "5949.57", *NORMAL), wrong] + [_market(s, "5949.57", *NORMAL) for s in range(3, 8)]
    _, readings = _run(bk, ticks)
    assert readings[1].breached and readings[1].breach_ticks == 1
    assert not any(r.halt for r in readings)
    assert readings[2].breach_ticks == 0


def test_a_real_crash_halts_after_three_consecutive_ticks_past_the_limit():
    bk = _short_put_spread()
    ticks = [_market(1, "5949.57", *NORMAL)] + [_market(s, "5850", *CRASH) for s in range(2, 6)]
    _, readings = _run(bk, ticks)
    assert [r.breach_ticks for r in readings] == [0, 1, 2, 3, 4]
    assert [r.halt for r in readings] == [False, False, False, True, True]
    assert readings[3].drawdown > D("0.0050")


def test_a_position_without_a_quote_keeps_its_last_good_mark():
    bk = _short_put_spread()
    only_5880 = tick({5880: (q("1.00", "1.10"), q(*NORMAL[1]))}, seq=2)
    _, readings = _run(bk, [_market(1, "5949.57", *NORMAL), only_5880])
    assert readings[1].robust_nlv == readings[0].robust_nlv
    assert readings[1].suspect == ()  # missing is not suspect, just unquoted


def test_a_memo_of_sane_mids_gives_the_guard_exactly_what_it_computes_itself():
    from odted.domain.risk import sane_mid

    bk = _short_put_spread()
    garbage = _market(2, "5949.57", ("0.05", "80.00"), NORMAL[1])
    ticks = [_market(1, "5949.57", *NORMAL), garbage] + [_market(s, "5850", *CRASH) for s in range(3, 7)]
    plain, memo = DrawdownGuard.start(D("100000")), DrawdownGuard.start(D("100000"))
    for t in ticks:
        seen: dict = {}

        def quotes(strike, right, t=t, seen=seen):
            if (strike, right) not in seen:
                seen[strike, right] = sane_mid(t, strike, right)
            return seen[strike, right]

        plain, a = plain.step(POLICY, tick=t, cash=bk.cash, holdings=holdings_of(bk))
        memo, b = memo.step(POLICY, tick=t, cash=bk.cash, holdings=holdings_of(bk), quotes=quotes)
        assert a == b and plain == memo
    assert sane_mid(garbage, 5900, "P") == (True, None)  # quoted, not sane
    assert sane_mid(garbage, 5880, "P") == (True, D("1.15"))
    assert sane_mid(garbage, 6000, "P") == (False, None)  # not quoted
