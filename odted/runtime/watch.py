"""Quiet actors: a promise that the coming ticks change nothing for an actor.

Most sessions do nothing on most ticks: a flat simulation resting a limit order waits for
its price, a bot waits for its entry time or for its walk's next nudge. Planning such a
tick in full costs tens of microseconds per session; ten thousand sessions cannot afford
it every second (DESIGN.md "What things cost").

So an actor that has just taken a tick with nothing to do may leave a `Watch`: the
conditions under which the next ticks would change nothing either. While the watch
holds, the actor takes a tick by noting it as its latest (`Actor.on_quiet_tick`) and
nothing else. The watch is exact, not a heuristic: it is derived from the same rules the
full tick runs (the fill rule of each resting limit, `reprice.quiet` for each walk,
`program.quiet_until` for the strategy), and it is dropped — the next tick taken in full
— as soon as anything else could have changed: a message or tick work handled, a
change of the user's settings, the closing tick.

A watch holds for a tick when all of these are true:
- the tick is not the closing one and is before `until`;
- the user settings have not changed since (`UserSettingsCache.version`);
- for each band, the structure's combo quote on the tick is missing (nothing fills or
  re-prices against a missing quote), or its value stays inside the band: the snapped
  mid above a limit's fill threshold (`FILL`), the re-pricing peg's snapped mid inside
  its tolerance (`PEG`).

Sessions in the same situation (bots of one strategy started together) leave equal
watches; `Watches.make` returns one shared object for them, and a watch answers a tick
once however many actors ask. When a tick breaks a shared watch, the actors holding it
are woken one by one (`Actor.on_woken`); an actor may `record` what it made of the tick
under a key that captures the rest of its situation, and the next ones in the same
situation take that `outcome` instead of working it out again (`BotSim.on_woken`).
"""

from __future__ import annotations

import weakref
from datetime import datetime
from decimal import Decimal
from typing import Any

from odted.domain.chain import Tick
from odted.domain.orders import TicketLeg
from odted.domain.ticks import snap_mid

__all__ = ["Band", "FILL", "PEG", "Watch", "Watches"]

FILL = 0
"""Band kind: quiet while the combo's snapped mid is above `lo` (a limit's fill
threshold, `limit - slippage`: `fills.decide` fills at or below it)."""
PEG = 1
"""Band kind: quiet while `snap_mid(raw mid, legs)` stays within [`lo`, `hi`] (a walk's
peg tolerance: `reprice.quiet`)."""

# (combo key, legs, kind, lo, hi, leg count)
Band = tuple[Any, tuple[TicketLeg, ...], int, Decimal, Decimal | None, int]


class Watch:
    """See the module docstring. Made by `Watches.make`; immutable but for its memos (the
    answer to the latest tick, the outcomes recorded on the latest tick that broke it)."""

    __slots__ = ("until", "bands", "_combos", "_settings", "_version", "_seq", "_holds", "_outcomes", "__weakref__")

    def __init__(self, until: datetime, bands: tuple[Band, ...], combos: Any, settings: Any) -> None:
        self.until = until
        self.bands = bands
        self._combos = combos
        self._settings = settings
        self._version = settings.version
        self._seq = -1
        self._holds = False
        self._outcomes: tuple[int, dict[Any, Any]] | None = None

    def holds(self, tick: Tick) -> bool:
        """Whether `tick` changes nothing for the actors that left this watch."""
        if tick.seq == self._seq:
            return self._holds
        self._seq = tick.seq
        self._holds = held = self._check(tick)
        return held

    def settings_current(self) -> bool:
        """Whether the user settings are still those this watch was made with."""
        return self._settings.version == self._version

    def outcome(self, seq: int, situation: Any) -> Any:
        """What the first holder in `situation` made of tick `seq`, which broke this
        watch (`record`); None when none has yet."""
        outcomes = self._outcomes
        if outcomes is None or outcomes[0] != seq:
            return None
        return outcomes[1].get(situation)

    def record(self, seq: int, situation: Any, outcome: Any) -> None:
        """Keep what a holder in `situation` made of tick `seq`, for the holders after it
        (only the latest tick's outcomes are kept)."""
        outcomes = self._outcomes
        if outcomes is None or outcomes[0] != seq:
            outcomes = self._outcomes = (seq, {})
        outcomes[1][situation] = outcome

    def _check(self, tick: Tick) -> bool:
        if tick.closing or tick.ts >= self.until or self._settings.version != self._version:
            return False
        combos = self._combos
        for key, legs, kind, lo, hi, n in self.bands:
            combo = combos.get(key, legs, tick)
            if combo is None:
                continue
            if kind == FILL:
                if combo.mid <= lo:
                    return False
            else:
                peg = snap_mid(combo.raw_mid, n)
                if peg < lo or peg > hi:  # type: ignore[operator]
                    return False
        return True


class Watches:
    """Makes watches, sharing one object among equal ones; a watch no actor holds any
    more is forgotten."""

    def __init__(self, combos: Any, settings: Any) -> None:
        self._combos = combos
        self._settings = settings
        self._made: weakref.WeakValueDictionary[tuple[Any, ...], Watch] = weakref.WeakValueDictionary()

    def __len__(self) -> int:
        return len(self._made)

    def make(self, until: datetime, bands: list[Band]) -> Watch:
        version = self._settings.version
        key = (until, version, tuple((b[0], b[2], b[3], b[4], b[5]) for b in bands))
        made = self._made.get(key)
        if made is None:
            made = self._made[key] = Watch(until, tuple(bands), self._combos, self._settings)
        return made
