"""Quiet ticks change nothing: bots that sleep through ticks their watch covers, and
follow the first of their cohort when it breaks (`odted.runtime.watch`), decide exactly
as bots that take every tick in full.

Each strategy runs four times side by side on the same synthetic ticks: two bots as the
runtime runs them, and two that are never allowed a watch. Their decision logs, orders
and per-second history must be the same, through resting entries, re-pricing, fills,
exits, a change of the user's slippage, a cancel-all, a second entry time and an entry
canceled at the exit time."""

from __future__ import annotations

from collections import Counter
from decimal import Decimal

import msgspec

from bot_helpers import PUT_SPREAD, decisions, goto, make_bot, settle
from odted.domain.reprice import OpeningReprice, RepricePolicy
from odted.runtime.bot import BotSim
from odted.runtime.live import LiveSim
from odted.runtime.watch import Watch

RESTING = RepricePolicy(opening=OpeningReprice(nudge_after_seconds=5, min_interval_seconds=4))
NEVER = RepricePolicy(opening=OpeningReprice(enabled=False))
PATIENT = RepricePolicy(opening=OpeningReprice(nudge_after_seconds=600, flat_tolerance_ticks=20))
TWO_ENTRIES = {**PUT_SPREAD, "entry": {"times": ["10:00", "10:02"]}, "exit": {"time": "10:04"}}
EARLY_EXIT = {**PUT_SPREAD, "exit": {"time": "10:03"}}

STRATEGIES = {  # name: (config, reprice, slippage)
    "resting": (PUT_SPREAD, RESTING, "0.50"),
    "defaults": (PUT_SPREAD, None, None),
    "two-entries": (TWO_ENTRIES, NEVER, "5.00"),  # never fill: canceled at the exit time
    "exit-time": (EARLY_EXIT, None, None),
    "patient": (PUT_SPREAD, PATIENT, None),  # only the fill threshold wakes it: it fills asleep
    "cancel-all": (PUT_SPREAD, RESTING, "0.50"),
}


async def transcript(env, bot) -> dict:
    uid, bot_id, sid, actor_id = bot
    log = [(e["ts"], e["kind"], e["message"], {k: v for k, v in e["data"].items() if k != "order_id"})
           for e in await decisions(env, uid, bot_id, sid)]
    view = await env.services.bots.view(uid, bot_id, sid)
    orders = [(o.status, o.price, o.price_effect, o.datetime, o.fill_price) for o in view.orders.values()]
    await env.service.history.flush()
    rows = await env.db.run(lambda conn: conn.fetch(
        "SELECT ts, doc::text FROM simulation_history WHERE simulation_id = $1 ORDER BY ts", actor_id))
    return {"log": log, "orders": orders, "history": [(r[0], msgspec.json.decode(r[1])) for r in rows]}


async def test_bots_that_sleep_through_quiet_ticks_decide_as_bots_that_take_every_tick(live_env, monkeypatch):
    env = live_env
    full: set = set()  # the sessions never allowed a watch
    counts: Counter = Counter()
    quiet_watch, quiet_tick, outcome = BotSim._quiet_watch, LiveSim.on_quiet_tick, Watch.outcome

    def no_watch_for_full(self, tick):
        return None if self.session.id in full else quiet_watch(self, tick)

    def counted_quiet(self, tick):
        counts["quiet"] += 1
        quiet_tick(self, tick)

    def counted_outcome(self, seq, situation):
        seen = outcome(self, seq, situation)
        counts["followed"] += seen is not None
        return seen

    monkeypatch.setattr(BotSim, "_quiet_watch", no_watch_for_full)
    monkeypatch.setattr(LiveSim, "on_quiet_tick", counted_quiet)
    monkeypatch.setattr(Watch, "outcome", counted_outcome)

    goto(env, 9, 59, 50)
    await settle(env)
    runs: dict[str, list] = {}
    tokens = {}
    for name, (config, reprice, slippage) in STRATEGIES.items():
        for side in ("watched", "watched", "full", "full"):
            uid, token = await env.user()
            if slippage is not None:
                async with env.client(token) as c:
                    assert (await c.patch("/user", json={"slippage": slippage})).status_code == 204
            bot_id = await make_bot(env, uid, config=config, reprice=reprice)
            session = await env.services.bots.start_session(uid, bot_id)
            if side == "full":
                full.add(session.id)
            runs.setdefault(name, []).append((uid, bot_id, session.id, session.simulation_id))
            tokens[session.id] = token

    goto(env, 9, 59, 59)
    await settle(env)
    while env.market.current().ts < goto_ts(env, 10, 5):
        tick = env.market.step()
        await settle(env)
        local = tick.ts.astimezone(NY)
        if (local.hour, local.minute, local.second) == (10, 2, 0):  # the resting bots' users now accept 0.05
            for uid, _, sid, _ in runs["resting"]:
                async with env.client(tokens[sid]) as c:
                    assert (await c.patch("/user", json={"slippage": "0.05"})).status_code == 204
        if (local.hour, local.minute, local.second) == (10, 1, 30):
            for uid, bot_id, sid, _ in runs["cancel-all"]:
                await env.services.bots.cancel_all(uid, bot_id, sid)
                await settle(env)

    events = Counter()
    for name, bots in runs.items():
        ts = [await transcript(env, b) for b in bots]
        for t in ts[1:]:
            assert t == ts[0], name
        events.update(e[3].get("event") for e in ts[0]["log"])
    # the runs went through what they are meant to
    for expected in ("entry_placed", "reprice", "entry_filled", "entry_canceled", "cancel_all", "exit_placed"):
        assert events[expected], (expected, events)
    assert counts["quiet"] > 1000 and counts["followed"] > 20, counts


def goto_ts(env, hh, mm):
    import datetime as dt

    from odted.market.calendar import ny_datetime

    return ny_datetime(env.market.day.date, dt.time(hh, mm)).astimezone(dt.timezone.utc)


NY = __import__("zoneinfo").ZoneInfo("America/New_York")
