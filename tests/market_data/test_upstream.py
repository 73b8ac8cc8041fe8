"""The upstream feed against real servers: a second odted serving the synthetic feed
(subprocess), and the in-process app for the public stream cap."""

import datetime as dt
import json
from decimal import Decimal

import httpx
import msgspec
import pytest
import trio
import trio.testing

from md_fixtures import DAY, calendar, config, hub, market, ticks_of, ws_url  # noqa: F401 - fixtures
from odted.domain.chain import Tick
from odted.market.bus import TickBus
from odted.market.upstream import UpstreamConfig, UpstreamFeed

UPSTREAM_TOKEN = "t"


class Proxy:
    """A TCP relay to `port` whose connections the test can cut."""

    def __init__(self, port: int) -> None:
        self.port = port
        self._scopes: set[trio.CancelScope] = set()
        self.accepted = 0

    async def run(self, *, task_status: trio.TaskStatus[int] = trio.TASK_STATUS_IGNORED) -> None:
        listeners = await trio.open_tcp_listeners(0, host="127.0.0.1")
        task_status.started(listeners[0].socket.getsockname()[1])
        await trio.serve_listeners(self._relay, listeners)

    def drop_all(self) -> None:
        for scope in list(self._scopes):
            scope.cancel()

    async def _relay(self, client: trio.SocketStream) -> None:
        self.accepted += 1
        with trio.CancelScope() as scope:
            self._scopes.add(scope)
            try:
                async with client, await trio.open_tcp_stream("127.0.0.1", self.port) as server:
                    async with trio.open_nursery() as nursery:
                        nursery.start_soon(_pump, client, server, nursery.cancel_scope)
                        nursery.start_soon(_pump, server, client, nursery.cancel_scope)
            finally:
                self._scopes.discard(scope)


async def _pump(src: trio.SocketStream, dst: trio.SocketStream, done: trio.CancelScope) -> None:
    """Copy `src` to `dst` until either side closes, then end the relay."""
    try:
        while data := await src.receive_some(65536):
            await dst.send_all(data)
    except (trio.BrokenResourceError, trio.ClosedResourceError):
        pass
    done.cancel()


async def collect(bus: TickBus, into: list[Tick]) -> None:
    seq = 0
    while True:
        tick = await bus.wait_tick_after(seq)
        into.append(tick)
        seq = tick.seq


async def wait_for(predicate, timeout: float = 20.0, every: float = 0.05) -> None:
    with trio.fail_after(timeout):
        while not await predicate():
            await trio.sleep(every)


def upstream(url: str, calendar, **kw) -> UpstreamFeed:
    cfg = {"url": url, "token": UPSTREAM_TOKEN, "reconnect_min": 0.05, "reconnect_max": 0.2,
           "silence_timeout": 5.0, **kw}
    return UpstreamFeed(UpstreamConfig(**cfg), calendar)


def assert_monotonic(ticks: list[Tick]) -> None:
    assert all(b.seq > a.seq for a, b in zip(ticks, ticks[1:]))
    assert all(b.ts > a.ts for a, b in zip(ticks, ticks[1:]))


@pytest.mark.slow
async def test_upstream_from_a_second_odted_survives_a_dropped_connection_records_and_replays(
        daemon_factory, tmp_path, calendar, nursery):
    env = {"ODTED_AUTH_STATIC_TOKENS": json.dumps([UPSTREAM_TOKEN]), "ODTED_FEED_SYNTHETIC_DATE": DAY.isoformat(),
           "ODTED_LOGGING_LEVEL": "warning"}
    a = daemon_factory(tmp_path / "a", env=env, args=["--speed", "20"])
    await trio.to_thread.run_sync(a.start)
    a_ws = ws_url(a.url)

    # `odted serve --feed upstream` from A: connected, latency reported, recording.
    b = daemon_factory(tmp_path / "b", env={"ODTED_LOGGING_LEVEL": "warning"},
                       args=["--feed", "upstream", "--upstream-url", a_ws, "--upstream-token", UPSTREAM_TOKEN])
    await trio.to_thread.run_sync(b.start)

    # The feed in process, through a relay we can cut.
    proxy = Proxy(a.port)
    proxy_port = await nursery.start(proxy.run)
    feed = upstream(f"ws://127.0.0.1:{proxy_port}/__ws", calendar)
    bus = TickBus()
    got: list[Tick] = []
    nursery.start_soon(collect, bus, got)
    await nursery.start(feed.run, bus)

    async def ticks_at_least(n: int):
        async def check() -> bool:
            return len(got) >= n
        return check

    await wait_for(await ticks_at_least(20))
    state = feed.state()
    assert state.connected and state.source == "upstream" and state.reconnects == 0
    assert state.latency_ms is not None and state.session_date == DAY
    assert len(got[-1].chain) == 241 and got[-1].strikes[0] == 5350
    assert all(t.ts.date() == DAY for t in got)

    # The assembled chain is A's chain for that second (A's recorder has written it).
    sample = got[5]
    async with httpx.AsyncClient(base_url=a.url, timeout=10, headers={"Authorization": UPSTREAM_TOKEN}) as http:
        async def recorded() -> bool:
            r = await http.get(f"/market-data/option-chain-snapshots/{sample.ts:%Y-%m-%dT%H:%M:%S}")
            return r.status_code == 200
        await wait_for(recorded)
        snap = (await http.get(f"/market-data/option-chain-snapshots/{sample.ts:%Y-%m-%dT%H:%M:%S}")).json()
        hist = (await http.get(f"/market-data/historical/{DAY}", params={"series": "spx,vix"})).json()
    for s in sample.chain:
        assert snap[f"call_{s.strike}"] == {"bid": float(s.call.bid), "ask": float(s.call.ask), "delta": s.call.delta}
        assert snap[f"put_{s.strike}"] == {"bid": float(s.put.bid), "ask": float(s.put.ask), "delta": s.put.delta}
    row = next(r for r in hist if r["datetimeUnix"] == int(sample.ts.timestamp()))
    assert (Decimal(row["spx"]), Decimal(row["vix"])) == (sample.spx, sample.vix)

    # Cut the connection: the feed connects again and carries on, never going back.
    before = len(got)
    proxy.drop_all()
    await wait_for(lambda: _true(feed.state().reconnects == 1))
    await wait_for(await ticks_at_least(before + 20))
    assert proxy.accepted >= 2
    assert_monotonic(got)
    assert [t.seq for t in got] == list(range(1, len(got) + 1))
    assert feed.state().connected and feed.state().error is not None  # why it had to reconnect

    # B, fed by A, reports the feed and records it.
    async with httpx.AsyncClient(base_url=b.url, timeout=10) as http:
        async def b_recorded() -> bool:
            status = (await http.get("/status")).json()["sections"]
            return status["feed"]["connected"] and status["recorder"]["stored"] >= 10
        await wait_for(b_recorded)
        status = (await http.get("/status")).json()["sections"]
        assert status["feed"]["source"] == "upstream" and status["feed"]["latency_ms"] is not None
        sessions = (await http.get("/market-data/sessions")).json()
        assert list(sessions) == [DAY.isoformat()]
    assert await trio.to_thread.run_sync(b.terminate) == 0

    # B's recording replays: `odted serve --feed replay --date ... --speed max`.
    b2 = daemon_factory(tmp_path / "b", env={"ODTED_LOGGING_LEVEL": "warning"},
                        args=["--feed", "replay", "--date", DAY.isoformat(), "--speed", "max", "--start", "09:30"])
    await trio.to_thread.run_sync(b2.start)
    async with httpx.AsyncClient(base_url=b2.url, timeout=10) as http:
        async def replayed() -> bool:
            return (await http.get("/status")).json()["sections"]["feed"]["ended"]
        await wait_for(replayed)
        status = (await http.get("/status")).json()["sections"]
        stored = sessions[DAY.isoformat()]
        assert status["feed"]["source"] == "replay" and status["feed"]["ticks_published"] >= 10
        assert status["feed"]["session_date"] == DAY.isoformat()
        assert (await http.get("/market-data/sessions")).json()[DAY.isoformat()]["data-start-time"] == \
            stored["data-start-time"]
    assert await trio.to_thread.run_sync(b2.terminate) == 0


async def _true(value: bool) -> bool:
    return value


async def test_a_public_upstream_gets_aggregates_and_reconnects_after_end_of_data(
        server, hub, market, calendar, nursery):
    hub.public_max_seconds = 0.5
    ticks = iter(ticks_of(calendar, n=1000))
    feed = upstream(ws_url(server), calendar, token="")
    bus = TickBus()
    got: list[Tick] = []
    nursery.start_soon(collect, bus, got)
    await nursery.start(feed.run, bus)
    with trio.fail_after(20):
        while not feed.state().reconnects:
            market.bus.publish(next(ticks))
            await trio.sleep(0.01)
        after = len(got)
        while len(got) < after + 3:
            market.bus.publish(next(ticks))
            await trio.sleep(0.01)
    assert "end_of_data" in feed.state().error
    assert all(t.chain == () for t in got)  # public: aggregates only
    assert_monotonic(got)
    published = {t.ts: t for t in ticks_of(calendar, n=1000)}
    assert all((t.spx, t.vix, t.spx_expected_move) ==
               (published[t.ts].spx, published[t.ts].vix, published[t.ts].spx_expected_move) for t in got)


async def test_a_refused_token_is_tried_again_with_backoff(server, hub, calendar, nursery):
    proxy = Proxy(int(server.rsplit(":", 1)[1]))
    port = await nursery.start(proxy.run)
    feed = upstream(f"ws://127.0.0.1:{port}/__ws", calendar, token="wrong", reconnect_min=0.05, reconnect_max=0.1)
    await nursery.start(feed.run, TickBus())
    await wait_for(lambda: _true(proxy.accepted >= 3), timeout=10)
    state = feed.state()
    assert not state.connected and state.reconnects == 0 and state.ticks_published == 0
    assert "1008" in state.error


def agg(ts: dt.datetime, spx: str = "5950.004") -> bytes:
    return msgspec.json.encode({"channel": "live_aggregate_data", "payload": {
        "datetime": ts.isoformat().replace("+00:00", "Z"), "spx": float(spx), "vix": 15.8,
        "spx_expected_move": 0.00481}})


def chain(bid: float = 4.2) -> bytes:
    return msgspec.json.encode({"channel": "live_option_chain", "payload": [
        {"strike": 5955, "call": {"bid": 1.7, "ask": 1.85, "delta": 0.41}, "put": {"bid": 5, "ask": 5.2, "delta": 0.59}},
        {"strike": 5950, "call": {"bid": bid, "ask": 4.4, "delta": 0.5234}, "put": {"bid": 2.6, "ask": 2.8, "delta": -0.477}},
    ]})


async def test_ticks_pair_an_aggregate_with_the_chain_in_either_order(calendar):
    feed = upstream("ws://127.0.0.1:1/__ws", calendar)
    bus = TickBus()
    t0 = dt.datetime(2025, 1, 15, 15, 0, tzinfo=dt.UTC)
    second = dt.timedelta(seconds=1)
    assert not feed._on_message(agg(t0), bus)
    assert feed._on_message(chain(), bus)  # aggregate first, then the chain
    assert not feed._on_message(chain(4.3), bus)
    assert feed._on_message(agg(t0 + second), bus)  # chain first, then the aggregate
    assert not feed._on_message(agg(t0 + second), bus)  # the same second again: ignored
    assert not feed._on_message(agg(t0), bus)  # an older second: ignored
    assert not feed._on_message(agg(t0 + 2 * second), bus)  # no chain yet: held...
    assert not feed._on_message(agg(t0 + 3 * second), bus)  # ...and overtaken
    assert feed._on_message(chain(), bus)
    assert not feed._on_message(b'{"channel": "live_option_chain", "payload": [{"strike": "x"}]}', bus)
    assert not feed._on_message(b"not json", bus)
    assert not feed._on_message(b'{"channel": "simulation_events", "payload": {}}', bus)

    last = bus.latest
    assert bus.published == 3 and last.seq == 3 and last.ts == t0 + 3 * second
    assert last.strikes == (5950, 5955)
    q = last.at(5950)
    assert (q.call.bid, q.call.delta, q.put.delta) == (Decimal("4.20"), 0.523, 0.477)  # cents, 3 places, unsigned
    assert (last.spx, last.vix, last.spx_expected_move) == (Decimal("5950.00"), Decimal("15.80"), Decimal("0.0048"))
    assert not last.closing


async def test_the_tick_at_the_close_is_marked_closing(calendar):
    feed = upstream("ws://127.0.0.1:1/__ws", calendar)
    bus = TickBus()
    feed._on_message(chain(), bus)
    assert feed._on_message(agg(dt.datetime(2025, 1, 15, 21, 0, tzinfo=dt.UTC)), bus)
    assert bus.latest.closing


def test_an_upstream_url_must_be_a_websocket_url():
    with pytest.raises(ValueError):
        UpstreamConfig(url="http://example.com/__ws")
