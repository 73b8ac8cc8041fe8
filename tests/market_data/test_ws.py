import json

import msgspec
import trio
import trio.testing

from md_fixtures import TOKEN, calendar, config, hub, market, ticks_of, ws_clients  # noqa: F401 - fixtures
from odted.api.market_data import aggregate_of
from odted.api.ws import Connection

AGG = "live_aggregate_data"
CHAIN = "live_option_chain"


async def settle() -> None:
    """Let the server and the clients (all in this process) process what was sent."""
    await trio.testing.wait_all_tasks_blocked(cushion=0.01)


def subscribers(hub, name: str) -> int:
    return hub.channel(name).subscribers


async def test_a_public_connection_gets_aggregates_and_never_the_chain(server, hub, market, calendar, ws_clients):
    ticks = ticks_of(calendar, n=3)
    market.bus.publish(ticks[0])
    c = await ws_clients({"auth": "public"})
    await c.send({"action": "subscribe", "channels": [AGG, CHAIN]})
    first = await c.receive()  # the latest tick's frame at once
    assert first == {"channel": AGG, "payload": json.loads(msgspec.json.encode(aggregate_of(ticks[0])))}
    assert set(first["payload"]) == {"datetime", "datetimeUnix", "spx", "vix", "spx_expected_move",
                                     "spx_otm_bids", "spx_extrinsic"}
    assert first["payload"]["spx"] == str(ticks[0].spx) and first["payload"]["datetime"].endswith("Z")
    market.bus.publish(ticks[1])
    second = await c.receive()
    assert second["channel"] == AGG and second["payload"]["datetimeUnix"] == int(ticks[1].ts.timestamp())
    assert subscribers(hub, CHAIN) == 0
    await c.ws.aclose()


async def test_a_token_connection_gets_the_chain_as_numbers_and_can_unsubscribe(server, hub, market, calendar,
                                                                               ws_clients):
    ticks = ticks_of(calendar, n=3)
    c = await ws_clients({"token": TOKEN})
    await c.send({"action": "subscribe", "channels": [AGG, CHAIN]})
    await settle()
    assert subscribers(hub, CHAIN) == 1 and subscribers(hub, AGG) == 1
    market.bus.publish(ticks[0])
    frames = {f["channel"]: f for f in [await c.receive(), await c.receive()]}
    chain = frames[CHAIN]["payload"]
    assert len(chain) == 241
    s = ticks[0].chain[120]
    assert chain[120] == {"strike": s.strike,
                          "call": {"bid": float(s.call.bid), "ask": float(s.call.ask), "delta": s.call.delta},
                          "put": {"bid": float(s.put.bid), "ask": float(s.put.ask), "delta": s.put.delta}}
    assert all(isinstance(x["call"]["bid"], (int, float)) for x in chain)

    await c.send({"action": "unsubscribe", "channel": CHAIN})
    for _ in range(50):  # resubscribing often keeps one close callback
        await c.send({"action": "subscribe", "channel": CHAIN})
        await c.send({"action": "unsubscribe", "channel": CHAIN})
    await settle()
    (conn,) = hub.connections
    assert len(conn._callbacks) == 2  # one per channel
    for _ in range(50):  # each subscribe sent the latest chain at once
        assert (await c.receive())["channel"] == CHAIN
    market.bus.publish(ticks[1])
    assert (await c.receive())["channel"] == AGG
    market.bus.publish(ticks[2])
    assert (await c.receive())["channel"] == AGG
    await c.ws.aclose()


async def test_each_tick_is_encoded_once_for_all_subscribers(server, hub, market, calendar, ws_clients):
    ticks = ticks_of(calendar, n=3)
    clients = [await ws_clients({"token": TOKEN}) for _ in range(5)]
    for c in clients:
        await c.send({"action": "subscribe", "channel": CHAIN})
    await settle()
    for t in ticks:
        market.bus.publish(t)
        got = [await c.receive() for c in clients]
        assert all(g == got[0] for g in got)
    assert hub.channel(CHAIN).frames_encoded == 3
    assert hub.channel(AGG).frames_encoded == 0  # nobody listens: nothing encoded


async def test_subscribes_before_auth_and_unknown_channels_are_silently_ignored(server, hub, market, ws_clients):
    c = await ws_clients()
    await c.send({"action": "subscribe", "channels": [AGG]})
    await c.send({"auth": "public"})
    await c.send({"action": "subscribe", "channels": ["no_such_channel", 7]})
    await c.send({"action": "subscribe"})
    await c.ws.send_message("not json")
    await c.send(["a", "list"])
    await settle()
    assert subscribers(hub, AGG) == 0
    assert len(hub.connections) == 1  # still open
    await c.send({"action": "subscribe", "channel": AGG})
    await settle()
    assert subscribers(hub, AGG) == 1


async def test_no_auth_within_the_window_closes_the_connection(server, hub, ws_clients):
    hub.auth_timeout = 0.2
    c = await ws_clients()
    await c.send({"action": "subscribe", "channels": [AGG]})
    reason = await c.closed()
    assert reason.code == 1008 and "auth" in reason.reason
    assert not hub.connections


async def test_a_token_that_does_not_authenticate_closes_the_connection(server, hub, ws_clients):
    c = await ws_clients({"token": "not-a-token"})
    reason = await c.closed()
    assert reason.code == 1008 and reason.reason == "the token is not valid"


async def test_public_connections_end_with_end_of_data_after_the_cap(server, hub, market, calendar, ws_clients):
    hub.public_max_seconds = 0.3
    market.bus.publish(ticks_of(calendar, n=1)[0])
    public = await ws_clients({"auth": "public"})
    token = await ws_clients({"token": TOKEN})
    await public.send({"action": "subscribe", "channel": AGG})
    assert (await public.receive())["channel"] == AGG
    assert await public.receive() == {"channel": "end_of_data"}
    assert (await public.closed()).code == 1000
    await settle()
    assert [c.public for c in hub.connections] == [False]  # the token connection stays


async def test_a_client_that_cannot_keep_up_is_closed_with_1013(server, hub, market, calendar, ws_clients):
    hub.outbox_frames = 4
    ticks = ticks_of(calendar, n=40, strikes_each_side=200)
    slow = await ws_clients({"token": TOKEN}, message_queue_size=1)
    await slow.send({"action": "subscribe", "channel": CHAIN})
    await settle()
    with trio.fail_after(30):
        for seq in range(1, 3000):  # up to ~140 MB of frames the client does not read
            market.bus.publish(msgspec.structs.replace(ticks[seq % 40], seq=seq))
            await trio.sleep(0)
            if hub.closed_slow:
                break
    assert hub.closed_slow == 1
    assert subscribers(hub, CHAIN) == 0 and not hub.connections  # dropped at once
    reason = await slow.closed(timeout=30)  # reading lets the backlog and the close through
    assert reason.code == 1013


class Recording:
    """A channel handler as another module would register one."""

    requires_token = True

    def __init__(self) -> None:
        self.events: list[tuple[str, Connection, dict | None]] = []

    def subscribe(self, conn, message):
        self.events.append(("subscribe", conn, message))
        conn.send(msgspec.json.encode({"channel": "custom", "id": 1, "payload": message.get("extra")}))

    def unsubscribe(self, conn, message):
        self.events.append(("unsubscribe", conn, message))

    def on_authenticated(self, conn):
        self.events.append(("authenticated", conn, None))
        conn.on_close(lambda: self.events.append(("closed", conn, None)))

    def on_message(self, conn, message):
        self.events.append(("message", conn, message))


async def test_a_registered_channel_gets_the_whole_message_and_the_lifecycle(services, ws_clients):
    custom = Recording()
    services.ws_hub.register_channel("custom", custom)
    public = await ws_clients({"auth": "public"})
    await public.send({"action": "subscribe", "channel": "custom"})
    c = await ws_clients({"token": TOKEN})
    await c.send({"action": "subscribe", "channel": "custom", "extra": {"last_event_by_sim": {"a": 3}}})
    assert await c.receive() == {"channel": "custom", "id": 1, "payload": {"last_event_by_sim": {"a": 3}}}
    await c.send({"channel": "custom", "ack": 1})
    await c.send({"action": "unsubscribe", "channels": ["custom"]})
    await c.ws.aclose()
    await settle()
    kinds = [(kind, msg) for kind, _, msg in custom.events]
    assert kinds == [
        ("authenticated", None),
        ("subscribe", {"action": "subscribe", "channel": "custom", "extra": {"last_event_by_sim": {"a": 3}}}),
        ("message", {"channel": "custom", "ack": 1}),
        ("unsubscribe", {"action": "unsubscribe", "channels": ["custom"]}),
        ("closed", None),
    ]
    assert all(conn.principal.user_id for _, conn, _ in custom.events)  # never the public one
    assert len({conn.id for _, conn, _ in custom.events}) == 1


async def test_a_handler_that_raises_closes_only_its_connection(services, ws_clients):

    class Broken:
        requires_token = False

        def subscribe(self, conn, message):
            raise RuntimeError("bug")

        def unsubscribe(self, conn, message):
            pass

    services.ws_hub.register_channel("broken", Broken())
    a = await ws_clients({"auth": "public"})
    b = await ws_clients({"auth": "public"})
    await a.send({"action": "subscribe", "channel": "broken"})
    assert (await a.closed()).code == 1011
    await settle()
    assert len(services.ws_hub.connections) == 1
    await b.ws.aclose()


async def test_shutdown_closes_every_connection_going_away(server, hub, ws_clients):
    clients = [await ws_clients({"token": TOKEN}) for _ in range(3)]
    await settle()
    hub.shutdown()
    for c in clients:
        assert (await c.closed()).code == 1001
