"""Peg + concession re-pricing of a bot's resting limit orders, as a pure state machine.

Spec: bots-api "Automatic re-pricing". A bot places its limits at the spread mid; live,
an order exactly at the mid never fills once slippage applies (DESIGN.md "Fills"), so the
bot re-prices its own unfilled limits. A resting limit is modelled as

    price = peg + concession

where the *peg* follows the mid (snapped to the SPX tick, ties toward the market maker)
and the *concession* is a walk of whole ticks toward the market maker. Prices here are
signed, debit positive, so "toward the market maker" is always *up* (a bigger debit or
a smaller credit), for debits and credits alike.

The two blocks of the policy (`RepricePolicy.opening`, `.closing`) behave differently:

- **Entries** (`opening`): patient and capped. One tick is conceded per
  `nudge_after_seconds` of a *flat* mid, never past `cap = intended + max_concession`
  (the intended entry price is the price the order was first placed at; the cap is
  rounded down onto the grid). A mid that runs away is followed only up to the cap; the
  order then rests at the cap (`runaway_capped`) and follows the mid back when it
  returns. A mid that moves in the bot's favour is followed (price improvement kept).
- **Exits** (`closing`): relentless and uncapped. Re-pegged to the moving mid, and one
  tick conceded every `nudge_after_seconds` whether the mid is flat or not, until filled.

Shared rules, in both blocks:

- *Flat.* The mid is flat while its snapped value stays within `flat_tolerance_ticks`
  grid steps of the peg. When it leaves that band the peg jumps to it (`peg_moved`)
  and, for an entry, the wait for the next nudge starts again (the band is centred on
  the peg, i.e. on where the mid was when the current wait began, within the band).
  Moves inside the band never re-price: they are flicker, not information.
- *Nudges.* An entry's nudge falls due `nudge_after_seconds` after its current wait
  began (placement, its last nudge, or its last peg move). An exit's nudges keep a fixed
  cadence: the k-th falls due `k * nudge_after_seconds` after placement. A nudge that
  falls due while a replacement would break `min_interval_seconds` waits for it, so an
  order concedes at most one tick per replacement.
- *Throttle.* Never two replacements closer than `min_interval_seconds`; placement
  counts as the first. A change that is due but throttled is reported as `throttled`
  and applied at the first step allowed.
- A disabled block never re-prices (`disabled`).

So, with the defaults, a multi-leg entry placed at a 1.00 debit (cap 1.20) rests at
1.00, then 1.05 after 20 s of flat mid, 1.10 at 40 s, 1.15 at 60 s, 1.20 at 80 s, and
stays there; an exit placed at 0.50 walks 0.55, 0.60, ... every 15 s until it fills.
In a static market an exit whose fill barrier is `k` grid steps above its peg fills
after exactly `k` nudges, `k * max(nudge_after_seconds, min_interval_seconds)` seconds
after placement when stepped at least once a second.

The grid (spec: "Reference: SPX option price ticks"): multi-leg 0.05 everywhere;
single-leg 0.05 up to 3.00 and 0.10 above (so one tick up from 3.00 is 3.10). A
structure that only buys or only sells never crosses zero (`one_sided`), and an optional
`max_price` keeps the order inside the structure's maximum value (validation step 4).

Nothing here reads a clock: every call gets the market time and the current mid. The
state is a frozen, encodable Struct, so an actor may persist it with its order.
"""

from __future__ import annotations

import datetime as _dt
from decimal import ROUND_CEILING, ROUND_FLOOR, Decimal

import msgspec

from odted.domain.money import ZERO, price
from odted.domain.ticks import DIME, DIME_ABOVE, NICKEL, is_on_tick, snap_mid

__all__ = [
    "OPENING",
    "CLOSING",
    "INTENTS",
    "OpeningReprice",
    "ClosingReprice",
    "RepricePolicy",
    "policy_errors",
    "LimitPrice",
    "RepriceState",
    "Reason",
    "step",
    "quiet",
    "FOREVER",
    "tick_up",
    "tick_down",
    "shift_ticks",
]

OPENING = "opening"
CLOSING = "closing"
INTENTS = (OPENING, CLOSING)

_MAX_CONCESSION = Decimal(10)


class Reason:
    """The short codes `step` reports, for the decision log."""

    DISABLED = "disabled"  # the block is off: never re-prices
    HOLD = "hold"  # nothing to do (need not be logged)
    PEG_MOVED = "peg_moved"  # re-priced to follow a mid that left the flat band
    CONCEDED = "conceded"  # re-priced one tick toward the market maker
    AT_CAP = "at_cap"  # an entry's nudge fell due but the cap allows no more
    RUNAWAY_CAPPED = "runaway_capped"  # the mid ran past the cap; resting at the cap
    THROTTLED = "throttled"  # a change is due, held back by min_interval_seconds


class OpeningReprice(msgspec.Struct, frozen=True, kw_only=True, forbid_unknown_fields=True):
    """The `reprice.opening` block, with the spec's defaults."""

    enabled: bool = True
    nudge_after_seconds: int = 20
    min_interval_seconds: int = 4
    flat_tolerance_ticks: int = 1
    max_concession: Decimal = Decimal("0.20")


class ClosingReprice(msgspec.Struct, frozen=True, kw_only=True, forbid_unknown_fields=True):
    """The `reprice.closing` block: no `max_concession`, deliberately (spec)."""

    enabled: bool = True
    nudge_after_seconds: int = 15
    min_interval_seconds: int = 4
    flat_tolerance_ticks: int = 1


class RepricePolicy(msgspec.Struct, frozen=True, kw_only=True, forbid_unknown_fields=True):
    """The bot's `reprice` object. Omitted blocks and fields take the defaults."""

    opening: OpeningReprice = OpeningReprice()
    closing: ClosingReprice = ClosingReprice()

    def block(self, intent: str) -> OpeningReprice | ClosingReprice:
        if intent == OPENING:
            return self.opening
        if intent == CLOSING:
            return self.closing
        raise ValueError(f"intent must be opening or closing, not {intent!r}")


def _int_in(value: object, lo: int, hi: int) -> bool:
    return isinstance(value, int) and not isinstance(value, bool) and lo <= value <= hi


def policy_errors(policy: RepricePolicy, prefix: str = "reprice") -> dict[str, str]:
    """Every out-of-bounds field of `policy` (for `400 invalid_reprice`), all at once.

    Bounds (spec): `nudge_after_seconds` 1-600, `min_interval_seconds` 1-120,
    `flat_tolerance_ticks` 1-20, `max_concession` a multiple of 0.05 in 0-10.
    """
    errors: dict[str, str] = {}
    for name, block in (("opening", policy.opening), ("closing", policy.closing)):
        at = f"{prefix}.{name}"
        if not isinstance(block.enabled, bool):
            errors[f"{at}.enabled"] = "must be true or false"
        if not _int_in(block.nudge_after_seconds, 1, 600):
            errors[f"{at}.nudge_after_seconds"] = "must be a whole number from 1 to 600"
        if not _int_in(block.min_interval_seconds, 1, 120):
            errors[f"{at}.min_interval_seconds"] = "must be a whole number from 1 to 120"
        if not _int_in(block.flat_tolerance_ticks, 1, 20):
            errors[f"{at}.flat_tolerance_ticks"] = "must be a whole number from 1 to 20"
    mc = policy.opening.max_concession
    if not (
        isinstance(mc, Decimal) and mc.is_finite() and ZERO <= mc <= _MAX_CONCESSION
        and mc % NICKEL == 0
    ):
        errors[f"{prefix}.opening.max_concession"] = (
            "must be a USD amount from 0 to 10 in steps of 0.05, such as \"0.20\""
        )
    return errors


class LimitPrice(msgspec.Struct, frozen=True, gc=False):
    """A limit as an order carries it: unsigned `price` and its `price_effect`."""

    price: Decimal
    price_effect: str


# -- the grid ---------------------------------------------------------------------------


def tick_up(p: Decimal, legs: int) -> Decimal:
    """The next grid price above signed `p` (one tick toward the market maker)."""
    if legs == 1 and (p >= DIME_ABOVE or p < -DIME_ABOVE):
        return ((p / DIME).to_integral_value(rounding=ROUND_FLOOR) + 1) * DIME
    return ((p / NICKEL).to_integral_value(rounding=ROUND_FLOOR) + 1) * NICKEL


def tick_down(p: Decimal, legs: int) -> Decimal:
    """The next grid price below signed `p`."""
    if legs == 1 and (p > DIME_ABOVE or p <= -DIME_ABOVE):
        return ((p / DIME).to_integral_value(rounding=ROUND_CEILING) - 1) * DIME
    return ((p / NICKEL).to_integral_value(rounding=ROUND_CEILING) - 1) * NICKEL


def shift_ticks(p: Decimal, n: int, legs: int) -> Decimal:
    """`p` moved `n` grid steps (up when positive). `p` should be on the grid."""
    if legs > 1:
        return p + NICKEL * n
    for _ in range(n):
        p = tick_up(p, legs)
    for _ in range(-n):
        p = tick_down(p, legs)
    return p


def _grid_floor(x: Decimal, legs: int) -> Decimal:
    return x if is_on_tick(x, legs) else tick_down(x, legs)


# -- the state machine ------------------------------------------------------------------


class RepriceState(msgspec.Struct, frozen=True, kw_only=True):
    """One resting order's re-pricing state. Signed prices, debit positive.

    `price` is where the order rests now; `intended` the price it was placed at; `cap`
    the highest an entry may go (None for exits); `lo`/`hi` the hard bounds (zero for a
    one-sided structure, the structure's maximum value); `concession` the ticks conceded
    so far; `wait_since` when the current nudge wait began; `last_replace` the time of
    the last placement or replacement.
    """

    intent: str
    enabled: bool
    nudge_after: int
    min_interval: int
    tolerance: int
    legs: int
    effect: str
    intended: Decimal
    cap: Decimal | None
    lo: Decimal | None
    hi: Decimal | None
    peg: Decimal
    concession: int
    price: Decimal
    wait_since: _dt.datetime
    last_replace: _dt.datetime

    @classmethod
    def start(
        cls,
        intent: str,
        policy: RepricePolicy,
        entry_price: Decimal,
        price_effect: str,
        legs: int,
        now: _dt.datetime,
        *,
        one_sided: bool = False,
        max_price: Decimal | None = None,
    ) -> RepriceState:
        """The state of an order just placed at `now` at `entry_price` (`price_effect`).

        `legs` picks the grid (1: single-leg levels; more: 0.05). `one_sided` is true
        when every leg buys or every leg sells (the price never crosses zero; a single
        leg always is). `max_price` (unsigned, in the order's effect) bounds the walk,
        e.g. the width of a vertical bought to close.
        """
        block = policy.block(intent)
        sign = 1 if price_effect == "debit" else -1
        signed = sign * entry_price
        cap = None
        if intent == OPENING:
            assert isinstance(block, OpeningReprice)
            cap = _grid_floor(signed + block.max_concession, legs)
        lo = hi = None
        if one_sided or legs == 1:
            lo, hi = (ZERO, None) if sign > 0 else (None, ZERO)
        if max_price is not None:
            hi = sign * max_price if hi is None else min(hi, sign * max_price)
        return cls(
            intent=intent,
            enabled=block.enabled,
            nudge_after=block.nudge_after_seconds,
            min_interval=block.min_interval_seconds,
            tolerance=block.flat_tolerance_ticks,
            legs=legs,
            effect=price_effect,
            intended=signed,
            cap=cap,
            lo=lo,
            hi=hi,
            peg=signed,
            concession=0,
            price=signed,
            wait_since=now,
            last_replace=now,
        )

    def limit(self) -> LimitPrice:
        """The current resting price as the order carries it."""
        return _limit(self.price, self.effect)


def _limit(signed: Decimal, effect: str) -> LimitPrice:
    if signed > 0:
        return LimitPrice(price=price(signed), price_effect="debit")
    if signed < 0:
        return LimitPrice(price=price(-signed), price_effect="credit")
    return LimitPrice(price=price(ZERO), price_effect=effect)


def _seconds(a: _dt.datetime, b: _dt.datetime) -> float:
    return (a - b).total_seconds()


def _target(state: RepriceState, peg: Decimal, concession: int) -> tuple[Decimal, bool]:
    """Where the order should rest for `peg` and `concession`, and whether the entry cap
    held it back."""
    target = shift_ticks(peg, concession, state.legs)
    capped = False
    if state.cap is not None and target > state.cap:
        target = state.cap
        capped = True
    if state.hi is not None and target > state.hi:
        target = state.hi
    if state.lo is not None and target < state.lo:
        target = state.lo
    return target, capped


def quiet(state: RepriceState) -> tuple[_dt.datetime, Decimal, Decimal]:
    """How long `step` leaves `state` alone: `(until, lo, hi)` such that, for any `now`
    before `until` and any mid whose snapped value (`snap_mid(mid, state.legs)`) lies in
    `[lo, hi]`, `step(state, now, mid)` returns `state` itself and no replacement.

    The peg holds while the snapped mid stays within its tolerance. The next thing to
    happen is then the nudge that falls due `nudge_after` after `wait_since` once the
    throttle allows it (`min_interval` after `last_replace`) — never, for an entry at
    its cap — or, when the order does not rest where its walk wants it (a replacement
    the throttle held back), the throttle's release. A disabled walk never acts.
    """
    if not state.enabled:
        return FOREVER, _NO_LOW, _NO_HIGH
    legs = state.legs
    released = state.last_replace + _dt.timedelta(seconds=state.min_interval)
    if (state.intent == OPENING and state.cap is not None
            and shift_ticks(state.peg, state.concession + 1, legs) > state.cap):
        until = FOREVER  # at its cap: only a peg move (outside the band) changes anything
    else:
        until = max(state.wait_since + _dt.timedelta(seconds=state.nudge_after), released)
    target, _ = _target(state, state.peg, state.concession)
    if target != state.price and released < until:
        until = released
    # `step` compares (now - t).total_seconds() with whole seconds: stop a millisecond
    # early, so float rounding can only wake the order early, never late.
    tol = state.tolerance
    if until is not FOREVER:
        until -= _EARLY
    return until, shift_ticks(state.peg, -tol, legs), shift_ticks(state.peg, tol, legs)


_EARLY = _dt.timedelta(milliseconds=1)
FOREVER = _dt.datetime.max.replace(tzinfo=_dt.timezone.utc)
"""A time that never comes (aware): the end of a promise with no end."""
_NO_LOW = Decimal("-1e9")
_NO_HIGH = Decimal("1e9")


def step(
    state: RepriceState, now: _dt.datetime, mid: Decimal
) -> tuple[RepriceState, LimitPrice | None, str]:
    """Advance one order's re-pricing to market time `now` with the current signed net
    `mid` (debit positive; raw or snapped: it is snapped here, ties up).

    Returns the new state, the price to replace the order at (None: leave it), and a
    `Reason` code. Call it on every tick while the order is pending; stop when it fills
    or is canceled.
    """
    if not state.enabled:
        return state, None, Reason.DISABLED
    legs = state.legs
    opening = state.intent == OPENING
    peg = state.peg
    wait_since = state.wait_since
    concession = state.concession

    new_peg = snap_mid(mid, legs)
    tol = state.tolerance
    moved = new_peg > shift_ticks(peg, tol, legs) or new_peg < shift_ticks(peg, -tol, legs)
    if moved:
        peg = new_peg
        if opening:
            wait_since = now  # not flat: the wait for the next nudge starts again
    can_replace = _seconds(now, state.last_replace) >= state.min_interval
    due = _seconds(now, wait_since) >= state.nudge_after

    nudged = at_cap = throttled = False
    if due:
        if opening and state.cap is not None and shift_ticks(peg, concession + 1, legs) > state.cap:
            # Nothing to concede. The wait is not restarted: only a peg move can make
            # room under the cap, and a move restarts an entry's wait anyway.
            at_cap = True
        elif can_replace:
            concession += 1
            nudged = True
            # An entry's next wait starts now; an exit keeps its cadence, so a nudge
            # held back by the throttle does not delay the ones after it.
            wait_since = now if opening else wait_since + _dt.timedelta(seconds=state.nudge_after)
        else:
            throttled = True  # the nudge waits for the throttle

    target, capped = _target(state, peg, concession)

    if target == state.price and not (moved or due):  # the common case: nothing changed
        return state, None, Reason.HOLD
    if target != state.price and not can_replace:
        throttled = True
    replace = target != state.price and can_replace
    new_state = msgspec.structs.replace(
        state,
        peg=peg,
        concession=concession,
        wait_since=wait_since,
        price=target if replace else state.price,
        last_replace=now if replace else state.last_replace,
    )
    if replace:
        if nudged:
            reason = Reason.CONCEDED
        elif capped:
            reason = Reason.RUNAWAY_CAPPED
        else:
            reason = Reason.PEG_MOVED
        return new_state, _limit(target, state.effect), reason
    if throttled:
        reason = Reason.THROTTLED
    elif at_cap:
        reason = Reason.AT_CAP
    elif capped and moved:
        reason = Reason.RUNAWAY_CAPPED
    else:
        reason = Reason.HOLD
    if new_state == state:
        new_state = state
    return new_state, None, reason
