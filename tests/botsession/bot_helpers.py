"""Helpers for the bot-session tests: strategies and bots made straight in the database
(the HTTP API for them has its own tests), and ways to move the market."""

from __future__ import annotations

import uuid
from decimal import Decimal

import msgspec
import trio

from odted.domain.reprice import RepricePolicy
from odted.domain.risk import RiskPolicy
from odted.domain.strategy import canonical_source, compile_strategy, parse_config

PUT_SPREAD = {
    "legs": [
        {"direction": "sell", "type": "put", "qty": 1, "strike": {"method": "delta", "value": 0.3}},
        {"direction": "buy", "type": "put", "qty": 1, "strike": {"method": "delta", "value": 0.2}},
    ],
    "entry": {"times": ["10:00"]},
    "exit": {"profit_target_pct": 50, "time": "15:55"},
}


async def make_bot(env, user_id, *, capital="100000", config=PUT_SPREAD, risk: RiskPolicy | None = None,
                   reprice: RepricePolicy | None = None) -> uuid.UUID:
    compiled = compile_strategy(parse_config(config))
    source = canonical_source(compiled.config).decode()
    link_id, bot_id = uuid.uuid4(), uuid.uuid4()
    risk_json = msgspec.json.encode(risk or RiskPolicy()).decode()
    reprice_json = msgspec.json.encode(reprice or RepricePolicy()).decode()

    async def insert(conn):
        await conn.execute(
            "INSERT INTO strategies (source_hash, source, config, description) VALUES ($1, $2, $3::jsonb, $4) "
            "ON CONFLICT DO NOTHING", compiled.source_hash, source, source, compiled.description)
        await conn.execute("INSERT INTO strategy_links (id, user_id, source_hash) VALUES ($1, $2, $3)",
                           link_id, user_id, compiled.source_hash)
        await conn.execute(
            "INSERT INTO accounts (id, user_id, name, engine, type, starting_capital, cash_balance) "
            "VALUES ($1, $2, $3, 'live_sim', 'bot', $4, $4)", bot_id, user_id, f"bot {bot_id.hex[:6]}", Decimal(capital))
        await conn.execute(
            "INSERT INTO bots (account_id, strategy_link_id, source_hash, risk, reprice) "
            "VALUES ($1, $2, $3, $4::jsonb, $5::jsonb)", bot_id, link_id, compiled.source_hash, risk_json, reprice_json)

    await env.db.run(insert)
    return bot_id


def goto(env, hh: int, mm: int, ss: int = 0):
    """Publish the synthetic day's tick at New York hh:mm:ss (one tick, no replay)."""
    day = env.market.day
    open_ny = day.session.open_utc
    target = open_ny.replace(hour=open_ny.hour + (hh - 9), minute=mm, second=ss) if False else None
    import datetime as dt

    from odted.market.calendar import ny_datetime

    ts = ny_datetime(day.date, dt.time(hh, mm, ss)).astimezone(dt.timezone.utc)
    index = int((ts - day.session.open_utc).total_seconds())
    env.market.index = index - 1
    return env.market.step()


async def settle(env):
    with trio.fail_after(20):
        await env.service.supervisor.wait_tick_done(env.market.seq)


def bot_actor(env, session_id):
    for a in env.services.bots.bots():
        if a.session is not None and a.session.id == session_id:
            return a
    return None


async def decisions(env, user_id, bot_id, session_id) -> list[dict]:
    return msgspec.json.decode(await env.services.bots.decision_log(user_id, bot_id, session_id))
