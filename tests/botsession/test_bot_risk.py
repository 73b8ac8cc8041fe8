"""Bot sessions under stress: a crash halts and flattens, a stall pauses, a crash of
the actor resumes without duplicates, kill and cancel-all."""

from decimal import Decimal

import pytest
import trio

from bot_helpers import bot_actor, decisions, goto, make_bot, settle
from odted.domain.risk import RiskPolicy
from odted.runtime.errors import Refusal


async def entered_bot(env, *, capital="100000", risk=None):
    """A running bot whose 10:00 entry has filled (quotes held flat until it does)."""
    uid, _ = await env.user()
    bot_id = await make_bot(env, uid, capital=capital, risk=risk)
    goto(env, 9, 59, 58)
    await settle(env)
    session = await env.services.bots.start_session(uid, bot_id)
    goto(env, 10, 0, 0)
    await settle(env)
    bot = bot_actor(env, session.id)
    entry = next(iter(bot.orders.values()))
    tick = env.market.current()
    frozen = {}
    for leg in entry.legs:
        k = int(leg.instrument[-8:]) // 1000
        q = tick.quote(k, "P")
        frozen[(k, "P")] = (str(q.bid), str(q.ask))
    for _ in range(60):
        env.market.with_quotes(frozen)
        await settle(env)
        if bot.book.has_positions:
            break
    assert bot.book.has_positions, "the entry filled"
    return uid, bot_id, session, bot, entry


async def test_a_crash_in_the_market_halts_the_bot_flat(live_env):
    env = live_env
    uid, bot_id, session, bot, entry = await entered_bot(env, capital="10000",
                                                         risk=RiskPolicy(max_daily_loss_pct=Decimal("0.02")))
    short = next(l for l in entry.legs if l.action == "sell to open")
    long = next(l for l in entry.legs if l.action == "buy to open")
    ks, kl = int(short.instrument[-8:]) // 1000, int(long.instrument[-8:]) // 1000
    width = Decimal(ks - kl)
    # SPX falls through both strikes: the spread is worth nearly its width, a loss of
    # several percent of 10,000; the guard halts after the breach holds for 3 ticks
    crashed = {(ks, "P"): (str(width + 20), str(width + 21)), (kl, "P"): ("19.50", "20.50")}
    for _ in range(6):
        env.market.with_quotes(crashed)
        await settle(env)
        if bot.status == "halted":
            break
    assert bot.status == "halted"
    assert not bot.book.has_positions, "halted flat: positions closed at market"
    assert not any(o.is_pending for o in bot.orders.values())
    row = await env.services.bots.session(uid, bot_id, session.id)
    assert row.status == "halted" and row.halt_reason == "max_daily_loss"
    log = [e["data"].get("event") for e in await decisions(env, uid, bot_id, session.id)]
    assert "halted" in log
    # a halted bot places nothing more, even when its strategy would
    count = len(bot.orders)
    for _ in range(3):
        env.market.step()
        await settle(env)
    assert len(bot.orders) == count


async def test_one_garbage_quote_does_not_halt_the_bot(live_env):
    env = live_env
    uid, bot_id, session, bot, entry = await entered_bot(env, capital="10000",
                                                         risk=RiskPolicy(max_daily_loss_pct=Decimal("0.02")))
    short = next(l for l in entry.legs if l.action == "sell to open")
    ks = int(short.instrument[-8:]) // 1000
    env.market.with_quotes({(ks, "P"): ("0.05", "80.00")})  # a crossed-out, absurd quote
    await settle(env)
    env.market.step()
    await settle(env)
    assert bot.status == "running"


async def test_a_stalled_feed_pauses_new_orders_and_fresh_data_resumes(live_env):
    env = live_env
    uid, _ = await env.user()
    bot_id = await make_bot(env, uid, risk=RiskPolicy(data_staleness_threshold_ms=500))
    goto(env, 9, 59, 50)
    await settle(env)
    session = await env.services.bots.start_session(uid, bot_id)
    env.market.step()
    await settle(env)
    bot = bot_actor(env, session.id)
    env.market.bus.set_speed(1.0)  # market time now runs on between ticks: the feed stalls
    with trio.fail_after(10):
        while not bot.stale:
            await trio.sleep(0.05)
    goto(env, 10, 0, 0)  # fresh data again, at the entry time
    env.market.bus.set_speed("max")
    await settle(env)
    assert not bot.stale
    events = [e["data"].get("event") for e in await decisions(env, uid, bot_id, session.id)]
    assert events.index("data_stale") < events.index("data_fresh") < events.index("entry_placed")


async def test_a_crashed_bot_actor_is_rebuilt_and_places_nothing_twice(live_env, monkeypatch):
    env = live_env
    uid, bot_id, session, bot, entry = await entered_bot(env)
    orders_before = {o.id: o.status for o in bot.orders.values()}
    boom = {"armed": True}
    original = type(bot).on_tick

    def crash_once(self, tick):
        if boom["armed"] and self is bot:
            boom["armed"] = False
            raise RuntimeError("injected crash")
        return original(self, tick)

    monkeypatch.setattr(type(bot), "on_tick", crash_once)
    env.market.step()
    with trio.fail_after(10):
        while bot_actor(env, session.id) in (None, bot):
            await trio.sleep(0.05)
    rebuilt = bot_actor(env, session.id)
    for _ in range(3):
        env.market.step()
        await settle(env)
    assert {o.id: o.status for o in rebuilt.orders.values()} == orders_before, "no second entry"
    assert rebuilt.state.entries == 1 and rebuilt.book.has_positions
    crashes = await env.db.run(lambda conn: conn.fetchval(
        "SELECT crashes FROM simulations WHERE id = $1", rebuilt.id))
    assert crashes == 1


async def test_kill_with_flatten_closes_out_and_cancel_all_keeps_running(live_env):
    env = live_env
    uid, bot_id, session, bot, entry = await entered_bot(env)
    await env.services.bots.cancel_all(uid, bot_id, session.id)
    assert bot.status == "running"
    killed = await env.services.bots.kill(uid, bot_id, session.id, flatten=True)
    assert killed.status == "killing"
    env.market.step()
    await settle(env)
    assert bot.status == "killed" and not bot.book.has_positions
    with pytest.raises(Refusal) as e:
        await env.services.bots.cancel_all(uid, bot_id, session.id)
    assert e.value.code == "session_terminal"
    env.market.close()
    await settle(env)
    row = await env.services.bots.session(uid, bot_id, session.id)
    assert row.status == "killed" and row.final_nlv is not None


async def test_auto_start_bots_get_their_session_at_the_open_and_others_do_not(live_env):
    env = live_env
    uid, _ = await env.user()
    other, _ = await env.user()
    auto = await make_bot(env, uid)
    manual = await make_bot(env, other)
    await env.db.run(lambda conn: conn.execute("UPDATE bots SET auto_start = true WHERE account_id = $1", auto))
    goto(env, 9, 45, 0)
    await settle(env)
    with trio.fail_after(10):
        while not await env.services.bots.sessions(uid, auto):
            await trio.sleep(0.1)
    assert await env.services.bots.sessions(other, manual) == []
    assert (await env.services.bots.sessions(uid, auto))[0].status == "waiting_for_data"
