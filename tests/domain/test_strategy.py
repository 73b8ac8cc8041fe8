"""Strategy Builder configs, strike selection and the compiled program (walkthrough
Part 13; `odted.domain.strategy`, `ctx`, `program`)."""

from __future__ import annotations

import functools
import json
import math
from datetime import UTC, date, datetime, timedelta
from decimal import Decimal as D
from itertools import count
from uuid import UUID
from zoneinfo import ZoneInfo

import msgspec
from domain_helpers import q, tick

from odted.domain.chain import OptionQuote, StrikeQuotes, Tick
from odted.domain.ctx import StrategyContext, StrategyOrder, select_strike
from odted.domain.fees import FeeSchedule
from odted.domain.fills import fill_on_tick
from odted.domain.ledger import Book
from odted.domain.lifecycle import cancel_order, fill_order, place_order
from odted.domain.orders import OrderDenied, OrderRequest
from odted.domain.pricing import quote_combo
from odted.domain.reprice import OpeningReprice, RepricePolicy, RepriceState, step
from odted.domain.strategy import (
    InvalidConfig,
    StrategyConfig,
    compile_strategy,
    describe,
    parse_config,
    source_hash,
)
from odted.domain.validation import validate_order

SPREAD = {
    "legs": [
        {"direction": "sell", "type": "put", "qty": 1, "strike": {"method": "delta", "value": 0.3}},
        {"direction": "buy", "type": "put", "qty": 1, "strike": {"method": "delta", "value": 0.2}},
    ],
    "entry": {"times": ["10:00"]},
    "exit": {"profit_target_pct": 50, "time": "15:55"},
}


def config(raw=None, **changes) -> StrategyConfig:
    data = json.loads(json.dumps(raw or SPREAD))
    data.update(changes)
    c = parse_config(data)
    assert isinstance(c, StrategyConfig), c
    return c


# -- the config -------------------------------------------------------------------------


def test_the_walkthrough_spread_parses_and_describes_itself():
    c = config()
    assert c.legs[0].strike.value == D("0.3") and c.entry.max_entries == 1
    assert describe(c) == "Sell 1 30-delta put, buy 1 20-delta put at 10:00; take profit at 50%, exit by 15:55"


def test_the_canonical_source_is_sorted_compact_json_with_normalized_numbers():
    assert compile_strategy(config()).source == (
        b'{"entry":{"max_entries":1,"times":["10:00"]},"exit":{"profit_target_pct":50,"time":"15:55"},'
        b'"legs":[{"direction":"sell","qty":1,"strike":{"method":"delta","value":0.3},"type":"put"},'
        b'{"direction":"buy","qty":1,"strike":{"method":"delta","value":0.2},"type":"put"}]}'
    )


def test_identical_configs_hash_the_same_whatever_their_spelling():
    a = source_hash(config())
    spelled = (
        b'{"exit":{"time":"15:55","profit_target_pct":50.0},"entry":{"max_entries":1,"times":["10:00"]},'
        b'"legs":[{"strike":{"value":0.30,"method":"delta"},"qty":1,"type":"put","direction":"sell"},'
        b'{"type":"put","direction":"buy","qty":1,"strike":{"method":"delta","value":"0.2000"}}]}'
    )
    b = parse_config(spelled)
    assert isinstance(b, StrategyConfig) and source_hash(b) == a
    assert len(a) == 64 and int(a, 16) >= 0
    assert source_hash(config(exit={"profit_target_pct": 40, "time": "15:55"})) != a


def test_entry_times_are_normalized_and_sorted_so_order_does_not_matter():
    a = config(entry={"times": ["11:00", "9:45"]})
    b = config(entry={"times": ["09:45", "11:00"], "max_entries": 2})
    assert a.entry.times == ("09:45", "11:00") and source_hash(a) == source_hash(b)


def test_an_invalid_config_reports_every_problem_at_once():
    bad = json.loads(json.dumps(SPREAD))
    bad["legs"][1]["strike"]["value"] = 1.2
    bad["legs"][0]["qty"] = 0
    bad["legs"][0]["direction"] = "short"
    bad["entry"] = {"times": ["16:30", "10:00", "10:00"], "max_entries": 5}
    bad["exit"] = {"profit_target_pct": -5, "stop_loss_pct": "abc", "time": "16:00", "trail": 1}
    bad["name"] = "x"
    result = parse_config(bad)
    assert isinstance(result, InvalidConfig)
    assert result.fields == {
        "name": "is not a field of the builder config",
        "legs[0].direction": "must be buy or sell",
        "legs[0].qty": "must be a whole number of contracts from 1 to 1000",
        "legs[1].strike.value": "must be between 0 and 1 (an unsigned delta such as 0.3)",
        "exit.trail": "is not a field of the builder config",
        "exit.profit_target_pct": "must be a percentage above 0 and at most 1000",
        "exit.stop_loss_pct": "must be a percentage above 0 and at most 1000",
        "exit.time": "must be an HH:MM New York time after 09:30 and before 16:00",
        "entry.times[0]": "must be an HH:MM New York time from 09:30 to before 16:00",
        "entry.times[2]": "repeats 10:00",
        "entry.max_entries": "must be a whole number from 1 to 3 (the number of times)",
    }


def test_missing_parts_and_non_objects_are_named():
    assert parse_config(b"[]").fields == {"config": "must be an object with legs, entry and exit"}
    assert set(parse_config(b"{").fields) == {"config"}
    assert parse_config({}).fields == {
        "legs": "is required; must be a list of 1 to 4 legs",
        "entry": "is required: an object with times",
    }
    r = parse_config({"legs": [{"direction": "buy", "type": "call", "qty": 1}], "entry": {"times": ["10:00"]}})
    assert r.fields == {"legs[0].strike": "is required: an object with method and value"}


def test_entry_times_must_come_before_the_exit_time():
    r = parse_config({**SPREAD, "entry": {"times": ["10:00", "15:55", "15:58"]}})
    assert r.fields == {"entry.times[1]": "must be before exit.time 15:55",
                        "entry.times[2]": "must be before exit.time 15:55"}


def test_strike_rules_are_bounded_by_method():
    def leg(method, value):
        return {"legs": [{"direction": "buy", "type": "call", "qty": 1,
                          "strike": {"method": method, "value": value}}], "entry": {"times": ["10:00"]}}

    assert isinstance(parse_config(leg("points", -50)), StrategyConfig)
    assert isinstance(parse_config(leg("premium", "1.50")), StrategyConfig)
    assert parse_config(leg("premium", 0)).fields == {
        "legs[0].strike.value": "must be an option price above 0 and at most 1000"}
    assert parse_config(leg("gamma", 0.1)).fields == {"legs[0].strike.method": "must be delta, points or premium"}
    assert parse_config(leg("delta", True)).fields == {"legs[0].strike.value": "must be a number"}


def test_two_legs_with_the_same_rule_on_the_same_side_are_refused():
    same = json.loads(json.dumps(SPREAD))
    same["legs"][1]["strike"]["value"] = "0.30"
    assert parse_config(same).fields == {
        "legs[1].strike": "selects the same put as legs[0]; merge the legs or choose another strike"}


def test_descriptions_cover_points_premium_several_times_and_stops():
    c = config({
        "legs": [
            {"direction": "sell", "type": "call", "qty": 2, "strike": {"method": "points", "value": 25}},
            {"direction": "buy", "type": "call", "qty": 2, "strike": {"method": "premium", "value": "0.50"}},
            {"direction": "sell", "type": "put", "qty": 2, "strike": {"method": "points", "value": 0}},
        ],
        "entry": {"times": ["10:00", "11:00", "12:30"], "max_entries": 2},
        "exit": {"stop_loss_pct": 200},
    })
    assert describe(c) == (
        "Sell 2 call 25 points above spot, buy 2 call priced nearest $0.5, sell 2 at-the-money put "
        "at 10:00, 11:00 and 12:30 (at most 2 entries); stop out at a 200% loss, hold to expiration"
    )


# -- strike selection -------------------------------------------------------------------


def _chain():
    return tick({
        5880: (q("70.00", "71.00", 0.90), q("1.10", "1.20", 0.10)),
        5900: (q("52.00", "53.00", 0.80), q("2.20", "2.30", 0.20)),
        5910: (q("44.00", "45.00", 0.75), q("2.90", "3.10", 0.25)),
        5920: (q("35.00", "36.00", 0.70), q("3.60", "3.80", 0.30)),
        5930: (q("26.00", "27.00", 0.65), q("4.30", "4.50", 0.40)),
        5970: (q("3.20", "3.30", 0.25), q("22.00", "22.60", 0.62)),
        5980: (q("2.00", "2.10", 0.20), q("30.00", "31.00", 0.70)),
    }, spx="5949.57")


def test_the_delta_rule_picks_the_strike_with_the_nearest_unsigned_delta():
    assert select_strike(_chain(), "P", "delta", D("0.3")) == 5920
    assert select_strike(_chain(), "P", "delta", D("0.19")) == 5900
    assert select_strike(_chain(), "C", "delta", D("0.21")) == 5980


def test_delta_ties_go_to_the_further_out_of_the_money_strike():
    assert select_strike(_chain(), "P", "delta", D("0.225")) == 5900  # 0.20 vs 0.25: the lower put
    assert select_strike(_chain(), "C", "delta", D("0.225")) == 5980  # the higher call


def test_the_points_rule_counts_signed_points_from_spot():
    assert select_strike(_chain(), "P", "points", D("-50")) == 5900  # 5899.57
    assert select_strike(_chain(), "C", "points", D("25")) == 5970  # 5974.57: 5970 is nearer
    assert select_strike(_chain(), "P", "points", D("-34.57")) == 5910  # 5915: tie, the lower put


def test_the_premium_rule_picks_the_nearest_mid():
    assert select_strike(_chain(), "P", "premium", D("3.00")) == 5910
    assert select_strike(_chain(), "C", "premium", D("2.60")) == 5980  # mids 3.25 and 2.05
    assert select_strike(_chain(), "C", "premium", D("2.65")) == 5980  # a tie: the higher call
    assert select_strike(_chain(), "P", "premium", D("3.00")) == 5910


def test_an_unquoted_or_crossed_strike_is_skipped():
    t = tick({
        5900: (q("52.00", "53.00"), q("0", "0", 0.30)),
        5910: (q("44.00", "45.00"), q("3.10", "2.90", 0.30)),
        5920: (q("35.00", "36.00"), q("3.60", "3.80", 0.45)),
    })
    assert select_strike(t, "P", "delta", D("0.3")) == 5920
    assert select_strike(tick({5900: (q("0", "0"), q("0", "0"))}), "P", "delta", D("0.3")) is None


# -- an in-memory bot -------------------------------------------------------------------

NY = ZoneInfo("America/New_York")
DAY = date(2025, 1, 15)
SIM = UUID("0b0b0b0b-0000-4000-8000-000000000001")


def ny(h: int, m: int, s: int = 0) -> datetime:
    return datetime(2025, 1, 15, h, m, s, tzinfo=NY).astimezone(UTC)


CLOSE = ny(16, 0)


class MemoryBot:
    """A tiny bot session in memory, implementing `StrategyContext`: orders are validated
    and filled by the domain's rules (slippage included), resting orders walk by
    re-pricing, and the program is stepped after matching, once per tick."""

    def __init__(self, compiled, *, slippage="0.05", reprice=RepricePolicy(), deny_all=False):
        self.program = compiled.program
        self.state = self.program.initial_state()
        self.book = Book(SIM, D("100000"))
        self.fees = FeeSchedule.default()
        self.slippage = D(slippage)
        self.reprice = reprice
        self.deny_all = deny_all
        self._orders: list[StrategyOrder] = []
        self._index: dict[UUID, int] = {}
        self._tickets = {}
        self._walks: dict[UUID, RepriceState] = {}
        self._ids = count(1)
        self._tick: Tick | None = None
        self.logs: list[tuple[datetime, str, dict]] = []
        self.signals: list[tuple[datetime, str, dict]] = []
        self.replacements: list[tuple[datetime, str, str]] = []

    # StrategyContext
    @property
    def now(self) -> datetime:
        return self._tick.ts

    @property
    def tick(self) -> Tick:
        return self._tick

    @property
    def positions(self):
        return self.book.positions()

    @property
    def orders(self):
        return tuple(self._orders)

    def quote(self, legs):
        return quote_combo(legs, self._tick)

    def place_order(self, request: OrderRequest, *, intent: str, tag: str):
        if self.deny_all:
            return OrderDenied(code="stale_data", message="market data is stale")
        a = validate_order(request, tick=self._tick, session_date=DAY, book=self.book,
                           fees=self.fees, slippage=self.slippage)
        if isinstance(a, OrderDenied):
            return a
        oid = UUID(int=next(self._ids))
        if self._add(a, oid, intent, tag):
            self._walks[oid] = RepriceState.start(
                intent, self.reprice, request.price, request.price_effect, len(request.legs), self.now,
                one_sided=a.ticket.all_buys or a.ticket.all_sells)
        return oid

    def cancel_order(self, order_id: UUID):
        so = self._orders[self._index[order_id]]
        if not so.order.is_pending:
            return OrderDenied(code="order_not_pending", message=f"the order is {so.order.status}")
        self._end(order_id, cancel_order(so.order, ts=self.now))
        return None

    def log(self, message: str, **data) -> None:
        self.logs.append((self.now, message, data))

    def signal(self, name: str, data: dict) -> None:
        self.signals.append((self.now, name, data))

    # the bot's side
    def _add(self, a, oid, intent, tag) -> bool:
        p = place_order(a, order_id=oid, ts=self.now, fees=self.fees)
        self._index[oid] = len(self._orders)
        self._orders.append(StrategyOrder(order=p.order, intent=intent, tag=tag))
        if p.transactions:
            self.book.apply_all(p.transactions)
            return False
        self.book.reserve(oid, p.reservation)
        self._tickets[oid] = a.ticket
        return True

    def _end(self, oid, order) -> None:
        i = self._index[oid]
        self._orders[i] = msgspec.structs.replace(self._orders[i], order=order)
        self.book.release(oid)
        self._tickets.pop(oid, None)
        self._walks.pop(oid, None)

    def on_tick(self, t: Tick) -> None:
        self._tick = t
        self.book.mark(t)
        for oid, ticket in list(self._tickets.items()):
            fill = fill_on_tick(ticket, t, self.slippage)
            if fill is not None:
                order, txs = fill_order(self._orders[self._index[oid]].order, ticket, fill, ts=t.ts, fees=self.fees)
                self._end(oid, order)
                self.book.apply_all(txs)
                self.book.mark(t)
        for oid, walk in list(self._walks.items()):
            ticket = self._tickets[oid]
            combo = quote_combo(ticket.legs, t)
            if combo is None:
                continue
            walk, new, reason = step(walk, t.ts, combo.raw_mid)
            self._walks[oid] = walk
            if new is None:
                continue
            so = self._orders[self._index[oid]]
            req = msgspec.structs.replace(so.order.request(), price=new.price, price_effect=new.price_effect)
            a = validate_order(req, tick=t, session_date=DAY, book=self.book, fees=self.fees,
                               slippage=self.slippage, replacing=oid)
            assert not isinstance(a, OrderDenied), a
            self._end(oid, cancel_order(so.order, ts=t.ts))
            new_id = UUID(int=next(self._ids))
            if self._add(a, new_id, so.intent, so.tag):
                self._walks[new_id] = walk
            self.replacements.append((t.ts, so.tag, f"{new.price} {new.price_effect} {reason}"))
        if not t.closing:
            self.state = self.program.step(self.state, self)

    def run(self, ticks) -> MemoryBot:
        for t in ticks:
            self.on_tick(t)
        return self

    def events(self, name: str) -> list[tuple[datetime, dict]]:
        return [(ts, data) for ts, _, data in self.logs if data.get("event") == name]


def test_the_in_memory_bot_is_a_strategy_context():
    bot: StrategyContext = MemoryBot(compile_strategy(config()))
    assert isinstance(bot.orders, tuple)


# -- a synthetic 0DTE day ---------------------------------------------------------------

STRIKES = range(5840, 6061, 5)
SIGMA = 0.20


def _n(x: float) -> float:
    return 0.5 * (1 + math.erf(x / math.sqrt(2)))


def _quote(mid: float, delta: float) -> OptionQuote:
    half = max(0.05, mid * 0.04) / 2
    bid = max(0, math.floor((mid - half) * 20))
    ask = max(bid + 1, math.ceil((mid + half) * 20))
    return OptionQuote(bid=D(bid) / 20, ask=D(ask) / 20, delta=round(delta, 4))


def chain_tick(seq: int, ts: datetime, spx: float) -> Tick:
    """Black-Scholes quotes (no rates, 20% vol on trading minutes) around `spx`."""
    minutes = max((CLOSE - ts).total_seconds() / 60, 0.25)
    sd = SIGMA * math.sqrt(minutes / (252 * 390))
    rows = []
    for k in STRIKES:
        d1 = (math.log(spx / k) + sd * sd / 2) / sd
        call = spx * _n(d1) - k * _n(d1 - sd)
        put = call - spx + k
        rows.append(StrikeQuotes(strike=k, call=_quote(max(call, 0), _n(d1)), put=_quote(max(put, 0), _n(-d1))))
    return Tick.build(seq, ts, D(f"{spx:.2f}"), D("15.00"), D("0.005"), rows, closing=ts >= CLOSE)


def _busy(ts: datetime) -> bool:
    return ny(9, 59) <= ts < ny(10, 5) or ny(15, 50) <= ts


@functools.cache
def day(path: str) -> tuple[Tick, ...]:
    """Ticks from 09:59 to the close, SPX following `path`: every 5 s around the entry
    and the exit time, every minute in between (the program needs no more)."""
    t0 = ny(10, 0)
    ticks = []
    ts = ny(9, 59)
    seq = 1
    while ts <= CLOSE:
        hours = (ts - t0).total_seconds() / 3600
        if path == "rally":  # +40 points over the first two hours
            spx = 5950 + 40 * min(max(hours, 0) / 2, 1)
        elif path == "slide":  # -45 points by 15:55
            spx = 5950 - 45 * min(max(hours, 0) / 5.9167, 1)
        else:
            spx = 5950.0
        ticks.append(chain_tick(seq, ts, spx))
        ts += timedelta(seconds=5 if _busy(ts) else 60)
        seq += 1
    return tuple(ticks)


def test_a_30_20_delta_put_spread_enters_at_10_and_takes_its_profit_in_a_rally():
    bot = MemoryBot(compile_strategy(config())).run(day("rally"))
    [(placed_at, placed)] = bot.events("entry_placed")
    assert placed_at == ny(10, 0) and placed["price_effect"] == "credit"
    first = next(t for t in day("rally") if t.ts == ny(10, 0))
    assert first.ts == ny(10, 0)
    assert placed["strikes"] == [select_strike(first, "P", "delta", D("0.3")),
                                 select_strike(first, "P", "delta", D("0.2"))]
    [(filled_at, entry)] = bot.events("entry_filled")
    assert ny(10, 0) < filled_at < ny(10, 2)  # the entry walked a tick past the slippage
    assert entry["entry_net"] < 0
    assert any(tag == "entry-1" and "conceded" in what for _, tag, what in bot.replacements)
    [(exit_at, exit_)] = bot.events("exit_placed")
    assert exit_["reason"] == "profit_target" and exit_at < ny(15, 55)
    assert exit_["pnl_per_unit"] >= -entry["entry_net"] / 2
    [(closed_at, closed)] = bot.events("exit_filled")
    assert closed_at >= exit_at and closed["reason"] == "profit_target"
    assert [name for _, name, _ in bot.signals] == ["entry", "exit"]
    assert bot.book.open_positions() == [] and not any(o.order.is_pending for o in bot.orders)
    assert bot.book.realized > 0


def test_a_30_20_delta_put_spread_that_never_reaches_its_target_exits_at_15_55():
    bot = MemoryBot(compile_strategy(config())).run(day("slide"))
    [(placed_at, _)] = bot.events("entry_placed")
    assert placed_at == ny(10, 0)
    assert len(bot.events("entry_filled")) == 1
    [(exit_at, exit_)] = bot.events("exit_placed")
    assert exit_at == ny(15, 55) and exit_["reason"] == "exit_time"
    [(closed_at, _)] = bot.events("exit_filled")
    assert ny(15, 55) < closed_at < CLOSE
    assert bot.book.open_positions() == []


def test_the_program_is_deterministic():
    a = MemoryBot(compile_strategy(config())).run(day("rally"))
    b = MemoryBot(compile_strategy(config())).run(day("rally"))
    assert a.logs == b.logs and a.state == b.state
    assert msgspec.json.decode(msgspec.json.encode(a.state), type=type(a.state)) == a.state


def test_a_stop_loss_closes_the_spread_in_a_slide():
    c = config(exit={"stop_loss_pct": 50, "time": "15:55"})
    bot = MemoryBot(compile_strategy(c)).run(day("slide"))
    [(exit_at, exit_)] = bot.events("exit_placed")
    assert exit_["reason"] == "stop_loss" and exit_at < ny(15, 55)
    assert -exit_["pnl_per_unit"] >= abs(bot.events("entry_filled")[0][1]["entry_net"]) / 2
    assert len(bot.events("exit_filled")) == 1 and bot.book.open_positions() == []


# -- entry timing -----------------------------------------------------------------------


def window(h, m, minutes, path="flat", every=5):
    start = ny(h, m)
    return tuple(chain_tick(i + 1, start + timedelta(seconds=every * i), 5950.0)
                 for i in range(minutes * 60 // every))


def test_nothing_is_entered_at_or_after_the_exit_time():
    bot = MemoryBot(compile_strategy(config(exit={"time": "15:55"}))).run(window(15, 56, 1))
    assert bot.orders == ()
    assert [d["entry_time"] for _, d in bot.events("entry_skipped")] == ["10:00"]


def test_a_late_start_takes_the_current_entry_window_and_logs_the_missed_ones():
    c = config(entry={"times": ["10:00", "11:00", "12:00"]})
    bot = MemoryBot(compile_strategy(c)).run(window(11, 30, 1))
    assert [d["entry_time"] for _, d in bot.events("entry_missed")] == ["10:00"]
    [(at, placed)] = bot.events("entry_placed")
    assert at == ny(11, 30) and placed["entry_time"] == "11:00"


def test_max_entries_limits_the_trades_of_a_day():
    c = config(entry={"times": ["10:00", "10:01"], "max_entries": 1})
    bot = MemoryBot(compile_strategy(c)).run(window(10, 0, 2))
    assert len(bot.events("entry_placed")) == 1
    assert [d["entry_time"] for _, d in bot.events("entry_skipped")] == ["10:01"]


def test_a_denied_entry_is_retried_every_5_seconds_for_a_minute_then_skipped():
    bot = MemoryBot(compile_strategy(config()), deny_all=True).run(window(10, 0, 2))
    denied = [at for at, _ in bot.events("entry_denied")]
    assert denied == [ny(10, 0) + timedelta(seconds=s) for s in range(0, 61, 5)]
    [(skipped_at, _)] = bot.events("entry_skipped")
    assert skipped_at == ny(10, 1)
    assert bot.orders == ()


def test_an_entry_still_unfilled_at_the_exit_time_is_canceled():
    c = config(exit={"time": "10:05"})
    never = RepricePolicy(opening=OpeningReprice(enabled=False))
    bot = MemoryBot(compile_strategy(c), reprice=never).run(window(10, 0, 7))
    [(at, _)] = bot.events("entry_canceled")
    assert at == ny(10, 5)
    assert [o.status for o in bot.orders] == ["canceled"]
    assert len(bot.events("entry_abandoned")) == 1 and bot.events("exit_placed") == []


# -- the program's quiet promise (what lets a bot skip its steps: ctx.py) ----------------


class PromiseChecked:
    """Wraps a compiled program: after every step that changed nothing and recorded
    nothing it takes `quiet_until`; on every later step with the same state, before
    that time, while the orders change only by re-pricing (each tag's pending/filled
    view unchanged), it asserts the step is quiet too."""

    def __init__(self, program) -> None:
        self.program = program
        self.promise = None  # (state, orders view, until)
        self.checked = 0

    def initial_state(self):
        return self.program.initial_state()

    def step(self, state, ctx):
        view = frozenset((o.tag, o.status == "pending", o.status == "filled") for o in ctx.orders)
        before = (len(ctx.orders), len(ctx.logs), len(ctx.signals))
        new = self.program.step(state, ctx)
        quiet = new is state and (len(ctx.orders), len(ctx.logs), len(ctx.signals)) == before
        promise = self.promise
        if promise is not None and promise[0] is state and promise[1] == view and ctx.now < promise[2]:
            assert quiet, (ctx.now, promise[2], ctx.logs[before[1]:])
            self.checked += 1
        if not quiet:
            self.promise = None
        elif promise is None or promise[0] is not state or promise[1] != view:
            until = self.program.quiet_until(state, ctx.now)
            self.promise = None if until is None else (state, view, until)
        return new


def test_a_quiet_program_stays_quiet_until_its_promise_ends():
    never = RepricePolicy(opening=OpeningReprice(enabled=False))
    runs = [
        (config(), {}, day("rally")),
        (config(), {}, day("slide")),
        (config(entry={"times": ["10:00", "10:01"], "max_entries": 1}), {}, window(10, 0, 2)),
        (config(entry={"times": ["10:00", "10:30", "11:00"]}), {}, window(10, 29, 3)),
        (config(), {"deny_all": True}, window(10, 0, 2, every=1)),  # retries every 5 s, quiet in between
        (config(exit={"time": "10:05"}), {"reprice": never}, window(10, 0, 7)),
        (config(exit={"time": "15:55"}), {}, window(15, 54, 2)),
    ]
    checked = 0
    for c, kw, ticks in runs:
        bot = MemoryBot(compile_strategy(c), **kw)
        bot.program = checked_program = PromiseChecked(bot.program)
        bot.run(ticks)
        checked += checked_program.checked
    assert checked > 500  # the promise was put to the test, not only taken


def test_the_promise_names_the_next_entry_time_the_exit_time_or_nothing():
    program = compile_strategy(config(entry={"times": ["10:00", "10:30"]}, exit={"time": "15:55"})).program
    state = program.initial_state()
    assert program.quiet_until(state, ny(9, 59, 30)) == ny(10, 0)
    bot = MemoryBot(compile_strategy(config(entry={"times": ["10:00", "10:30"]})),
                    reprice=RepricePolicy(opening=OpeningReprice(enabled=False))).run(window(10, 0, 1))
    assert [t.phase for t in bot.state.trades] == ["entering"]
    assert program.quiet_until(bot.state, ny(10, 0, 55)) == ny(10, 30), "the next entry comes before the exit"
    done = msgspec.structs.replace(bot.state, next_entry=2)
    assert program.quiet_until(done, ny(10, 31)) == ny(15, 55), "an entering trade is canceled at the exit time"
    opened = msgspec.structs.replace(done, trades=(msgspec.structs.replace(done.trades[0], phase="open"),))
    assert program.quiet_until(opened, ny(10, 31)) is None, "an open trade checks its exit every tick"
