"""A bot session on the synthetic day: entry, re-pricing, exit, the close, the roll-up."""

from decimal import Decimal

import msgspec
import pytest

from bot_helpers import bot_actor, decisions, goto, make_bot, settle
from odted.runtime.errors import Refusal


def spread_quotes(tick, legs, net_credit: Decimal, width: Decimal = Decimal("0.10")):
    """Quotes for the short and long put of `legs` whose credit mid is `net_credit`."""
    short = next(l for l in legs if l.action == "sell to open")
    long = next(l for l in legs if l.action == "buy to open")
    ks = int(short.instrument[-8:]) // 1000
    kl = int(long.instrument[-8:]) // 1000
    lq = tick.quote(kl, "P")
    long_mid = (lq.bid + lq.ask) / 2
    short_mid = long_mid + net_credit
    return {(ks, "P"): (str(short_mid - width / 2), str(short_mid + width / 2)),
            (kl, "P"): (str(long_mid - width / 2), str(long_mid + width / 2))}


async def test_a_put_credit_spread_bot_enters_walks_fills_exits_and_settles(live_env):
    env = live_env
    uid, _ = await env.user()
    bot_id = await make_bot(env, uid)
    goto(env, 9, 59, 50)
    await settle(env)
    session = await env.services.bots.start_session(uid, bot_id)
    assert session.status == "waiting_for_data"
    with pytest.raises(Refusal) as again:
        await env.services.bots.start_session(uid, bot_id)
    assert again.value.code == "bot_not_idle"
    env.market.step()
    await settle(env)
    bot = bot_actor(env, session.id)
    assert bot.status == "running"

    goto(env, 10, 0, 0)
    await settle(env)
    entries = [o for o in bot.orders.values()]
    assert len(entries) == 1 and entries[0].status == "pending", "the entry rests at the mid"
    entry = entries[0]
    assert entry.price_effect == "credit" and len(entry.legs) == 2

    # a flat market at the entry's mid: after nudge_after_seconds (20 s) the entry concedes
    # one tick toward the market maker, which crosses the fill barrier (mid >= limit + 0.05)
    tick = env.market.current()
    frozen = spread_quotes(tick, entry.legs, entry.price)
    for _ in range(22):
        env.market.with_quotes(frozen)
        await settle(env)
    orders = list(bot.orders.values())
    assert [o.status for o in orders] == ["canceled", "filled"]
    assert orders[1].price == entry.price - Decimal("0.05")
    assert orders[1].fill_price == entry.price - Decimal("0.05"), "filled at the mid less slippage"
    assert len(bot.book.open_positions()) == 2

    # the spread decays: profit target reached, the exit walks until it fills
    for _ in range(40):
        env.market.with_quotes(spread_quotes(env.market.current(), entry.legs, Decimal("0.05"), Decimal("0.10")))
        await settle(env)
        if not bot.book.has_positions:
            break
    assert not bot.book.has_positions, "the exit filled: flat"
    env.market.step()  # the program sees its exit filled on its next step
    await settle(env)

    env.market.close()
    await settle(env)
    row = await env.services.bots.session(uid, bot_id, session.id)
    assert row.status == "completed"
    assert row.final_nlv is not None and row.total_pl is not None and row.fill_count == 2
    log = await decisions(env, uid, bot_id, session.id)
    events = [e["data"].get("event") for e in log]
    for expected in ("running", "entry_placed", "reprice", "entry_filled", "exit_placed", "exit_filled"):
        assert expected in events, (expected, events)
    assert [e["kind"] for e in log].count("signal") == 2
    lines = (env.services.config.logs_dir / "sessions" / f"{session.id}.jsonl").read_bytes().splitlines()
    assert [msgspec.json.decode(l)["message"] for l in lines] == [e["message"] for e in log]
    with pytest.raises(Refusal) as done:
        await env.services.bots.start_session(uid, bot_id)
    assert done.value.code in ("bot_session_exists", "outside_rth")
