"""Peg + concession re-pricing (bots-api "Automatic re-pricing"; `odted.domain.reprice`)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from decimal import Decimal as D

import msgspec
from hypothesis import given, settings
from hypothesis import strategies as st

from odted.domain.reprice import (
    ClosingReprice,
    LimitPrice,
    OpeningReprice,
    Reason,
    RepricePolicy,
    RepriceState,
    policy_errors,
    quiet,
    shift_ticks,
    step,
    tick_down,
    tick_up,
)
from odted.domain.ticks import is_on_tick, snap_mid

T0 = datetime(2025, 1, 15, 15, 0, tzinfo=UTC)
DEFAULTS = RepricePolicy()


def at(s: float) -> datetime:
    return T0 + timedelta(seconds=s)


def run(state: RepriceState, mids, *, every: int = 1, start: int = 1):
    """Step once per `every` seconds with the mids given (a list, or a function of t);
    return the final state and the replacements as (t, price, effect, reason)."""
    out = []
    reasons = []
    n = len(mids) if isinstance(mids, list) else None
    t = start
    i = 0
    while (n is None and t <= 600) or (n is not None and i < n):
        mid = mids[i] if n is not None else mids(t)
        state, new, reason = step(state, at(t), D(mid))
        reasons.append((t, reason))
        if new is not None:
            out.append((t, str(new.price), new.price_effect, reason))
        t += every
        i += 1
    return state, out, reasons


def opening(price="1.00", effect="debit", legs=2, policy=DEFAULTS, **kw) -> RepriceState:
    return RepriceState.start("opening", policy, D(price), effect, legs, T0, **kw)


def closing(price="0.50", effect="debit", legs=2, policy=DEFAULTS, **kw) -> RepriceState:
    return RepriceState.start("closing", policy, D(price), effect, legs, T0, **kw)


# -- the policy -------------------------------------------------------------------------


def test_the_defaults_are_the_specs():
    assert DEFAULTS.opening == OpeningReprice(
        enabled=True, nudge_after_seconds=20, min_interval_seconds=4, flat_tolerance_ticks=1,
        max_concession=D("0.20"),
    )
    assert DEFAULTS.closing == ClosingReprice(
        enabled=True, nudge_after_seconds=15, min_interval_seconds=4, flat_tolerance_ticks=1
    )
    assert policy_errors(DEFAULTS) == {}


def test_a_partial_reprice_object_keeps_the_other_defaults():
    p = msgspec.json.decode(b'{"opening": {"max_concession": "0.10"}}', type=RepricePolicy)
    assert p.opening.max_concession == D("0.10")
    assert p.opening.nudge_after_seconds == 20 and p.closing == ClosingReprice()


def test_the_closing_block_has_no_max_concession():
    try:
        msgspec.json.decode(b'{"closing": {"max_concession": "0.10"}}', type=RepricePolicy)
    except msgspec.ValidationError as e:
        assert "max_concession" in str(e)
    else:
        raise AssertionError("closing.max_concession was accepted")


def test_every_out_of_bounds_field_is_reported_at_once():
    bad = RepricePolicy(
        opening=OpeningReprice(nudge_after_seconds=0, min_interval_seconds=121,
                               flat_tolerance_ticks=21, max_concession=D("0.07")),
        closing=ClosingReprice(nudge_after_seconds=601, min_interval_seconds=0, flat_tolerance_ticks=0),
    )
    assert set(policy_errors(bad)) == {
        "reprice.opening.nudge_after_seconds", "reprice.opening.min_interval_seconds",
        "reprice.opening.flat_tolerance_ticks", "reprice.opening.max_concession",
        "reprice.closing.nudge_after_seconds", "reprice.closing.min_interval_seconds",
        "reprice.closing.flat_tolerance_ticks",
    }
    for mc in ("-0.05", "10.05"):
        assert "reprice.opening.max_concession" in policy_errors(
            RepricePolicy(opening=OpeningReprice(max_concession=D(mc))))
    for mc in ("0", "10", "0.05"):
        assert policy_errors(RepricePolicy(opening=OpeningReprice(max_concession=D(mc)))) == {}


# -- the grid ---------------------------------------------------------------------------


def test_a_single_leg_steps_by_nickels_up_to_3_and_dimes_above():
    assert tick_up(D("2.95"), 1) == D("3.00")
    assert tick_up(D("3.00"), 1) == D("3.10")
    assert tick_down(D("3.10"), 1) == D("3.00")
    assert tick_down(D("3.00"), 1) == D("2.95")
    assert tick_up(D("-3.10"), 1) == D("-3.00")
    assert tick_up(D("-3.00"), 1) == D("-2.95")
    assert tick_down(D("-2.95"), 1) == D("-3.00")
    assert tick_down(D("-3.00"), 1) == D("-3.10")


def test_a_multi_leg_structure_steps_by_nickels_everywhere():
    assert tick_up(D("3.00"), 2) == D("3.05")
    assert tick_down(D("-3.00"), 4) == D("-3.05")
    assert shift_ticks(D("1.00"), 4, 2) == D("1.20")


# -- entries ----------------------------------------------------------------------------


def test_an_entry_in_a_flat_market_concedes_a_tick_every_20_seconds_and_stops_at_the_cap():
    state, replaced, reasons = run(opening("1.00"), ["1.00"] * 200)
    assert replaced == [
        (20, "1.05", "debit", "conceded"),
        (40, "1.10", "debit", "conceded"),
        (60, "1.15", "debit", "conceded"),
        (80, "1.20", "debit", "conceded"),
    ]
    assert state.price == D("1.20") == state.cap
    assert (100, Reason.AT_CAP) in reasons and (120, Reason.AT_CAP) in reasons


def test_a_credit_entry_concedes_by_taking_less_credit():
    state, replaced, _ = run(opening("1.05", "credit"), ["-1.05"] * 200)
    assert [(t, p, e) for t, p, e, _ in replaced] == [
        (20, "1.00", "credit"), (40, "0.95", "credit"), (60, "0.90", "credit"), (80, "0.85", "credit"),
    ]


def test_a_flickering_mid_within_the_tolerance_still_counts_as_flat():
    mids = ["1.00" if t % 2 else "1.05" for t in range(1, 50)]
    _, replaced, _ = run(opening("1.00"), mids)
    assert [r[:2] for r in replaced] == [(20, "1.05"), (40, "1.10")]


def test_an_entry_does_not_concede_while_the_mid_moves():
    # The mid swings two ticks every 10 s: never flat for 20 s.
    mids = ["1.00" if (t // 10) % 2 == 0 else "0.90" for t in range(1, 200)]
    _, replaced, reasons = run(opening("1.00"), mids)
    assert all(reason == "peg_moved" for *_, reason in replaced)
    assert Reason.CONCEDED not in {r for _, r in reasons}


def test_a_runaway_mid_is_followed_only_to_the_cap_then_back_when_it_returns():
    def mid(t):
        return "1.00" if t < 5 else "1.10" if t < 10 else "1.60" if t < 30 else "0.95"

    state, replaced, reasons = run(opening("1.00"), mid, start=1)
    assert replaced[:3] == [
        (5, "1.10", "debit", "peg_moved"),
        (10, "1.20", "debit", "runaway_capped"),
        (30, "0.95", "debit", "peg_moved"),
    ]
    assert all(D(p) <= D("1.20") for _, p, _, _ in replaced)
    assert (15, Reason.HOLD) in reasons or (15, Reason.RUNAWAY_CAPPED) in reasons
    # Back in range and flat: it concedes again from the new peg, up to the cap.
    assert replaced[3:] == [(50, "1.00", "debit", "conceded"), (70, "1.05", "debit", "conceded"),
                            (90, "1.10", "debit", "conceded"), (110, "1.15", "debit", "conceded"),
                            (130, "1.20", "debit", "conceded")]


def test_an_entry_keeps_its_concessions_when_the_mid_improves():
    mids = ["1.00"] * 80 + ["0.80"] * 20
    state, replaced, _ = run(opening("1.00"), mids)
    # The fourth concession was at 80; four seconds later it follows the mid to 0.80,
    # keeping its four ticks of concession.
    assert replaced[-1] == (84, "1.00", "debit", "peg_moved")


def test_an_entry_with_no_concession_allowed_never_pays_more_than_it_intended():
    p = RepricePolicy(opening=OpeningReprice(max_concession=D("0")))
    _, replaced, reasons = run(opening("1.00", policy=p), ["1.00"] * 100 + ["1.50"] * 20 + ["0.90"] * 5)
    assert replaced == [(121, "0.90", "debit", "peg_moved")]
    assert (20, Reason.AT_CAP) in reasons


def test_a_single_leg_entry_concedes_across_3_00_onto_the_dime_grid():
    p = RepricePolicy(opening=OpeningReprice(max_concession=D("0.30")))
    state, replaced, _ = run(opening("2.95", legs=1, policy=p), ["2.95"] * 120)
    assert [r[1] for r in replaced] == ["3.00", "3.10", "3.20"]
    assert state.cap == D("3.20")  # 3.25 is off the dime grid: the cap rounds down


# -- exits ------------------------------------------------------------------------------


def test_an_exit_in_a_static_market_concedes_every_15_seconds_without_a_cap():
    _, replaced, _ = run(closing("0.50"), ["0.50"] * 200)
    assert [(t, p) for t, p, _, _ in replaced] == [
        (15 * k, str(D("0.50") + D("0.05") * k)) for k in range(1, 14)
    ]


def test_an_exit_in_a_falling_market_re_pegs_and_concedes_at_every_nudge():
    # Buying back a put spread while SPX falls: the debit mid rises a tick every 6 s.
    def mid(t):
        return str(D("0.50") + D("0.05") * (t // 6))

    state, replaced, reasons = run(closing("0.50"), mid)
    conceded = [t for t, _, _, r in replaced if r == "conceded"]
    # The k-th nudge falls due at 15k; a re-peg just before it may hold it back by
    # min_interval_seconds (4), never longer, and never delays the next one.
    assert len(conceded) == 40
    assert all(15 * k <= t < 15 * k + 4 for k, t in enumerate(conceded, start=1))
    assert any(t != 15 * k for k, t in enumerate(conceded, start=1))
    for t, p, _, _ in replaced:
        # never below the peg plus the nudges due, never more than one tick above that
        nudges = t // 15
        assert D(p) >= D(mid(t)) - D("0.05") + D("0.05") * nudges
    gaps = [b[0] - a[0] for a, b in zip(replaced, replaced[1:])]
    assert min(gaps) >= 4


def test_an_exit_never_passes_the_structures_maximum_value():
    state, replaced, _ = run(closing("4.80", max_price=D("5.00")), ["4.80"] * 200)
    assert [p for _, p, _, _ in replaced] == ["4.85", "4.90", "4.95", "5.00"]


def test_a_single_leg_exit_selling_stops_at_a_zero_credit():
    state, replaced, _ = run(closing("0.10", "credit", legs=1), ["-0.10"] * 100)
    assert [(p, e) for _, p, e, _ in replaced] == [("0.05", "credit"), ("0.00", "credit")]


# -- throttling and switches -------------------------------------------------------------


def test_replacements_are_never_closer_than_min_interval_seconds():
    p = RepricePolicy(closing=ClosingReprice(min_interval_seconds=10))
    # A mid that jumps two ticks every second.
    _, replaced, reasons = run(closing("0.50", policy=p), lambda t: str(D("0.50") + D("0.10") * t))
    times = [0] + [t for t, *_ in replaced]
    assert all(b - a >= 10 for a, b in zip(times, times[1:]))
    assert Reason.THROTTLED in {r for _, r in reasons}


def test_a_nudge_that_falls_due_while_throttled_waits_and_concedes_one_tick():
    p = RepricePolicy(closing=ClosingReprice(nudge_after_seconds=1, min_interval_seconds=30))
    _, replaced, _ = run(closing("0.50", policy=p), ["0.50"] * 100)
    assert replaced == [(30, "0.55", "debit", "conceded"), (60, "0.60", "debit", "conceded"),
                        (90, "0.65", "debit", "conceded")]


def test_a_disabled_block_never_re_prices():
    off = RepricePolicy(opening=OpeningReprice(enabled=False), closing=ClosingReprice(enabled=False))
    for state in (opening(policy=off), closing(policy=off)):
        _, replaced, reasons = run(state, lambda t: str(D("0.50") + D("0.05") * (t % 7)))
        assert replaced == []
        assert {r for _, r in reasons} == {Reason.DISABLED}


def test_the_state_shows_its_resting_limit():
    assert opening("1.05", "credit").limit() == LimitPrice(price=D("1.05"), price_effect="credit")


# -- properties -------------------------------------------------------------------------

legs_st = st.sampled_from([1, 2, 4])
nickels = st.integers(min_value=0, max_value=200)


@st.composite
def entries(draw):
    legs = draw(legs_st)
    effect = draw(st.sampled_from(["debit", "credit"]))
    price = shift_ticks(D("0"), draw(st.integers(1, 120)), legs)
    policy = RepricePolicy(opening=OpeningReprice(
        nudge_after_seconds=draw(st.integers(1, 30)),
        min_interval_seconds=draw(st.integers(1, 10)),
        flat_tolerance_ticks=draw(st.integers(1, 3)),
        max_concession=D("0.05") * draw(st.integers(0, 10)),
    ))
    state = RepriceState.start("opening", policy, price, effect, legs, T0)
    steps = draw(st.lists(st.tuples(st.integers(1, 25), st.integers(-8, 8)), max_size=80))
    return state, steps


@settings(max_examples=150, deadline=None)
@given(entries())
def test_an_entry_never_passes_its_cap_whatever_the_mid_does(case):
    state, steps = case
    cap = state.cap
    mid = state.price
    t = 0
    for dt, move in steps:
        t += dt
        mid = mid + D("0.025") * move  # raw mids, half ticks included
        state, new, _ = step(state, at(t), mid)
        assert state.price <= cap
        if new is not None:
            signed = new.price if new.price_effect == "debit" else -new.price
            assert signed <= cap
            assert is_on_tick(new.price, state.legs)


@settings(max_examples=150, deadline=None)
@given(
    legs=legs_st,
    start_ticks=st.integers(-60, 60),
    barrier_ticks=st.integers(0, 30),
    nudge=st.integers(1, 40),
    min_interval=st.integers(1, 40),
    tolerance=st.integers(1, 5),
)
def test_an_exit_in_a_static_market_reaches_any_fill_barrier_within_its_bound(
    legs, start_ticks, barrier_ticks, nudge, min_interval, tolerance
):
    """A barrier k grid steps above the peg is reached after exactly k nudges, each
    max(nudge, min_interval) seconds apart: by k * max(nudge, min_interval) seconds."""
    policy = RepricePolicy(closing=ClosingReprice(
        nudge_after_seconds=nudge, min_interval_seconds=min_interval, flat_tolerance_ticks=tolerance))
    signed = shift_ticks(D("0"), start_ticks, legs)
    effect = "debit" if signed >= 0 else "credit"
    state = RepriceState.start("closing", policy, abs(signed), effect, legs, T0)
    barrier = shift_ticks(signed, barrier_ticks, legs)
    while legs == 1 and signed < 0 < barrier:
        barrier_ticks -= 1  # a single sell never walks past a zero credit
        barrier = shift_ticks(signed, barrier_ticks, legs)
    bound = barrier_ticks * max(nudge, min_interval)
    replacements = 0
    for t in range(1, bound + 1):
        state, new, _ = step(state, at(t), signed)
        if new is not None:
            replacements += 1
            assert is_on_tick(new.price, legs)
    assert state.price >= barrier
    assert replacements <= barrier_ticks


@settings(max_examples=100, deadline=None)
@given(
    legs=legs_st,
    effect=st.sampled_from(["debit", "credit"]),
    start=st.integers(1, 100),
    path=st.lists(st.integers(-400, 400), min_size=1, max_size=60),
    min_interval=st.integers(1, 10),
)
def test_every_exit_price_is_on_the_grid_and_replacements_respect_the_interval(
    legs, effect, start, path, min_interval
):
    policy = RepricePolicy(closing=ClosingReprice(nudge_after_seconds=3, min_interval_seconds=min_interval))
    state = RepriceState.start("closing", policy, shift_ticks(D("0"), start, legs), effect, legs, T0)
    last = 0
    for t, raw in enumerate(path, start=1):
        state, new, _ = step(state, at(t), D(raw) / 100)
        if new is not None:
            assert is_on_tick(new.price, legs)
            assert t - last >= min_interval
            last = t


# -- quiet: how long a walk is left alone (what lets a resting bot sleep through ticks) ----


@st.composite
def walks_in_progress(draw):
    """A walk of either intent, driven some way along by a random market, and the time
    it was last stepped."""
    legs = draw(legs_st)
    intent = draw(st.sampled_from(["opening", "closing"]))
    block = dict(nudge_after_seconds=draw(st.integers(1, 30)), min_interval_seconds=draw(st.integers(1, 10)),
                 flat_tolerance_ticks=draw(st.integers(0, 3)), enabled=draw(st.booleans() | st.just(True)))
    policy = (RepricePolicy(opening=OpeningReprice(max_concession=D("0.05") * draw(st.integers(0, 6)), **block))
              if intent == "opening" else RepricePolicy(closing=ClosingReprice(**block)))
    effect = draw(st.sampled_from(["debit", "credit"]))
    state = RepriceState.start(intent, policy, shift_ticks(D("0"), draw(st.integers(1, 80)), legs), effect, legs, T0)
    signed = state.price
    t = 0
    for dt, move in draw(st.lists(st.tuples(st.integers(1, 12), st.integers(-6, 6)), max_size=40)):
        t += dt
        signed += D("0.025") * move
        state, _, _ = step(state, at(t), signed)
    return state, t


@settings(max_examples=300, deadline=None)
@given(walks_in_progress(), st.data())
def test_a_quiet_walk_holds_for_any_time_before_until_and_any_mid_in_its_band(case, data):
    state, t = case
    # stepped once more at t (the step a bot takes before it asks), with a mid in the band
    until, lo, hi = quiet(state)
    if not state.enabled:
        assert step(state, at(t + 3600), D("12.34"))[0] is state
        return
    assert lo <= state.peg <= hi
    for _ in range(5):
        ms = data.draw(st.integers(0, 40_000))
        now = at(t) + timedelta(milliseconds=ms)
        grid = data.draw(st.integers(-30, 30))
        mid = shift_ticks(state.peg, grid, state.legs) + data.draw(st.sampled_from([D(0), D("0.01"), D("-0.01")]))
        if now >= until or now < state.last_replace or not lo <= snap_mid(mid, state.legs) <= hi:
            continue
        after, new, _ = step(state, now, mid)
        assert after is state and new is None, (now, mid, until, lo, hi)


@settings(max_examples=200, deadline=None)
@given(walks_in_progress())
def test_a_quiet_walk_is_woken_no_later_than_its_next_change(case):
    """Stepping second by second in a market that stays at the peg: the first tick that
    changes the walk comes at or after `until` (a promise that ends too early only costs a
    step; one that ends too late would skip a nudge)."""
    state, t = case
    if not state.enabled:
        return
    until, _, _ = quiet(state)
    for s in range(1, 120):
        now = at(t) + timedelta(seconds=s)
        after, new, _ = step(state, now, state.peg)
        if after is not state or new is not None:
            assert now >= until
            return
