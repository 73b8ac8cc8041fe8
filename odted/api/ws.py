"""`/__ws`: the WebSocket hub, its connections, and the market-data channels.

Protocol (api-walkthrough Part 11, DESIGN.md):
- After the upgrade the client has `websocket.auth_timeout` seconds (5) to send
  `{"auth": "public"}` or `{"token": "<token>"}` (checked with `services.auth`). Anything
  else before that is ignored (subscribes too); no auth in time closes with 1008, a
  token that does not authenticate closes with 1008 at once.
- Then `{"action": "subscribe"|"unsubscribe", "channels": [...]}` or `"channel": "..."`
  (both may be given), with any extra fields the channel wants. Unknown channels,
  channels that need a token on a public connection, and malformed messages are
  silently ignored. A message with another `action` (or none) and a top-level `channel`
  goes to that channel's `on_message`, when it has one.
- Every server frame is `{"channel": ..., "payload": ...}` (a channel may add top-level
  siblings, as `simulation_events` does). A public connection is closed after
  `websocket.public_max_seconds` (300) with a final `{"channel": "end_of_data"}`; token
  connections have no cap.
- A connection whose outbox (`websocket.outbox_frames`, 256) is full is closed with
  1013: a client that cannot keep up is dropped, never buffered without bound.

Extending the hub: build a handler and `services.ws_hub.register_channel(name, handler)`
before the daemon starts `hub.run` (i.e. from a route module's `register`). A handler:
- `requires_token: bool` — when true, public connections never reach it (no
  `subscribe`, `unsubscribe`, `on_message` nor `on_authenticated`);
- `subscribe(conn, message) -> None` and `unsubscribe(conn, message) -> None` — called
  with the whole client message (a dict; e.g. `live_simulation_id`,
  `last_event_by_sim`); they must not block: keep the subscriber, send what is due with
  `conn.send(frame)`, and register cleanup with `conn.on_close(callback)`;
- optional `on_authenticated(conn) -> None` — called once, right after the connection
  authenticated (token or public), before any client message is dispatched: the place
  for default subscriptions;
- optional `on_message(conn, message) -> None` — a client message for this channel
  that is not a subscribe or unsubscribe;
- optional `async run(*, task_status)` — a background task: `hub.run` starts it with
  `await nursery.start(handler.run)` and it calls `task_status.started()` when ready.
A handler that raises closes that one connection with 1011 (the error is logged).

`Connection` (one per socket): `principal` (None when public), `authenticated`,
`public`, `remote`, `send(frame: bytes) -> bool` (non-blocking; the frame is sent as a
text frame; False when the connection is closing or its outbox is full — then it
closes with 1013), `close(code, reason)` (at once, dropping what is queued),
`close_after(code, reason)` (once the queued frames are sent), `on_close(callback)`
(callbacks run once, synchronously, when the connection ends; at once if it has), and
`closed`.

The market channels (`live_aggregate_data`, `live_option_chain`) are handlers like any
other, registered by `odted.api.market_data`.
"""

from __future__ import annotations

import itertools
import logging
from collections.abc import Awaitable, Callable
from typing import Any, Protocol

import msgspec
import trio
from quart import websocket


__all__ = ["ChannelHandler", "Connection", "Socket", "WebSocketHub", "register"]

log = logging.getLogger("odted.api.ws")

END_OF_DATA = b'{"channel":"end_of_data"}'

CLOSE_NORMAL = 1000
CLOSE_GOING_AWAY = 1001
CLOSE_POLICY = 1008
CLOSE_INTERNAL = 1011
CLOSE_TRY_AGAIN = 1013


class ChannelHandler(Protocol):
    """What `WebSocketHub.register_channel` takes; see the module docstring."""

    requires_token: bool

    def subscribe(self, conn: Connection, message: dict[str, Any]) -> None: ...

    def unsubscribe(self, conn: Connection, message: dict[str, Any]) -> None: ...


class Socket(Protocol):
    """The part of Quart's `websocket` the hub uses (a test can stand in for it)."""

    async def accept(self) -> None: ...

    async def receive(self) -> str | bytes: ...

    async def send(self, data: str | bytes) -> None: ...

    async def close(self, code: int, reason: str = "") -> None: ...


class _CloseAfter:
    __slots__ = ("code", "reason")

    def __init__(self, code: int, reason: str) -> None:
        self.code = code
        self.reason = reason


class Connection:
    """One `/__ws` socket as channel handlers see it; see the module docstring."""

    def __init__(self, conn_id: int, outbox_frames: int, remote: str = "") -> None:
        self.id = conn_id
        self.remote = remote
        self.principal: Any = None
        self.authenticated = False
        self._outbox, self._drain = trio.open_memory_channel[bytes | _CloseAfter](outbox_frames)
        self._callbacks: list[Callable[[], None]] = []
        self._close_requested = trio.Event()
        self.close_code: int | None = None
        self.close_reason = ""
        self.closed = False

    @property
    def public(self) -> bool:
        """Authenticated as `{"auth": "public"}`."""
        return self.authenticated and self.principal is None

    def send(self, frame: bytes) -> bool:
        """Queue `frame` (encoded JSON) for the client; never blocks.

        False when the connection is closing, or when its outbox is full: then it is
        closed with 1013 (the client cannot keep up).
        """
        if self.close_code is not None:
            return False
        try:
            self._outbox.send_nowait(frame)
        except trio.WouldBlock:
            self.close(CLOSE_TRY_AGAIN, "the client is not keeping up")
            return False
        return True

    def close(self, code: int = CLOSE_NORMAL, reason: str = "") -> None:
        """Close now with `code`; frames still queued are dropped."""
        if self.close_code is None:
            self.close_code = code
            self.close_reason = reason
        self._close_requested.set()

    def close_after(self, code: int = CLOSE_NORMAL, reason: str = "") -> None:
        """Close with `code` once every frame queued so far is sent."""
        if self.close_code is not None:
            return
        try:
            self._outbox.send_nowait(_CloseAfter(code, reason))
        except trio.WouldBlock:
            self.close(CLOSE_TRY_AGAIN, "the client is not keeping up")

    def on_close(self, callback: Callable[[], None]) -> None:
        """Run `callback()` once when the connection ends (at once if it has ended)."""
        if self.closed:
            callback()
        else:
            self._callbacks.append(callback)

    def _finish(self) -> None:
        if self.closed:
            return
        self.closed = True
        if self.close_code is None:
            self.close_code = CLOSE_NORMAL
        callbacks, self._callbacks = self._callbacks, []
        for cb in callbacks:
            try:
                cb()
            except Exception:
                log.exception("a close callback of connection %d failed", self.id)

    def __repr__(self) -> str:
        who = "public" if self.principal is None else getattr(self.principal, "user_id", "token")
        return f"<Connection {self.id} {who}>"


Authenticate = Callable[[str], Awaitable[Any]]


class WebSocketHub:
    """The channel registry and the `/__ws` protocol; see the module docstring."""

    def __init__(self, *, auth_timeout: float = 5.0, public_max_seconds: float = 300.0,
                 outbox_frames: int = 256) -> None:
        self.auth_timeout = auth_timeout
        self.public_max_seconds = public_max_seconds
        self.outbox_frames = outbox_frames
        self._channels: dict[str, ChannelHandler] = {}
        self._connections: set[Connection] = set()
        self._ids = itertools.count(1)
        self._running = False
        self.closed_slow = 0

    @classmethod
    def from_config(cls, cfg: Any) -> WebSocketHub:
        """A hub with the `[websocket]` settings of `cfg` (a `Config`)."""
        ws = cfg.websocket
        return cls(auth_timeout=ws.auth_timeout, public_max_seconds=ws.public_max_seconds,
                   outbox_frames=ws.outbox_frames)

    # -- registry -------------------------------------------------------------------

    def register_channel(self, name: str, handler: ChannelHandler) -> None:
        """Serve channel `name` with `handler`; before `run` starts."""
        if name in self._channels:
            raise ValueError(f"channel {name!r} is registered already")
        if self._running and hasattr(handler, "run"):
            raise RuntimeError(f"channel {name!r} has a background task but the hub runs already")
        self._channels[name] = handler

    def channel(self, name: str) -> ChannelHandler | None:
        """The handler of channel `name`, or None."""
        return self._channels.get(name)

    @property
    def channels(self) -> list[str]:
        """The registered channel names."""
        return list(self._channels)

    @property
    def connections(self) -> frozenset[Connection]:
        """The authenticated connections open now."""
        return frozenset(self._connections)

    def state(self) -> dict[str, Any]:
        """For `/status`."""
        public = sum(1 for c in self._connections if c.public)
        return {"connections": len(self._connections), "public": public,
                "channels": self.channels, "closed_slow": self.closed_slow}

    # -- lifetime -------------------------------------------------------------------

    async def run(self, *, task_status: trio.TaskStatus[None] = trio.TASK_STATUS_IGNORED) -> None:
        """Run the channels' background tasks until cancelled."""
        async with trio.open_nursery() as nursery:
            for handler in self._channels.values():
                run = getattr(handler, "run", None)
                if run is not None:
                    await nursery.start(run)
            self._running = True
            task_status.started()

    def shutdown(self) -> None:
        """Close every connection with 1001 (the server is going away)."""
        for conn in list(self._connections):
            conn.close(CLOSE_GOING_AWAY, "the server is shutting down")

    # -- one connection -------------------------------------------------------------

    async def serve(self, socket: Socket, authenticate: Authenticate, *, remote: str = "") -> None:
        """Speak the protocol on `socket` until either side closes it."""
        await socket.accept()
        conn = Connection(next(self._ids), self.outbox_frames, remote)
        try:
            await self._authenticate(conn, socket, authenticate)
            if conn.close_code is not None:
                await _close(socket, conn.close_code, conn.close_reason)
                return
            self._connections.add(conn)
            for handler in self._handlers_for(conn):
                hook = getattr(handler, "on_authenticated", None)
                if hook is not None:
                    self._call(conn, hook, conn)
            async with trio.open_nursery() as nursery:
                nursery.start_soon(self._write, conn, socket)
                nursery.start_soon(self._read, conn, socket)
                if conn.public:
                    nursery.start_soon(self._expire_public, conn)
                await conn._close_requested.wait()
                # Drop the subscriptions now: a writer stuck in a send (a client that
                # stopped reading) ends only when the client reads or goes away.
                self._connections.discard(conn)
                if conn.close_code == CLOSE_TRY_AGAIN:
                    self.closed_slow += 1
                conn._finish()
                nursery.cancel_scope.cancel()
            await _close(socket, conn.close_code or CLOSE_NORMAL, conn.close_reason)
        finally:
            self._connections.discard(conn)
            conn._finish()

    async def _authenticate(self, conn: Connection, socket: Socket, authenticate: Authenticate) -> None:
        with trio.move_on_after(self.auth_timeout):
            while True:
                message = _parse(await socket.receive())
                if message is None:
                    continue
                if message.get("auth") == "public":
                    conn.authenticated = True
                    return
                token = message.get("token")
                if isinstance(token, str) and token:
                    principal = await authenticate(token)
                    if principal is None:
                        conn.close(CLOSE_POLICY, "the token is not valid")
                        return
                    conn.principal = principal
                    conn.authenticated = True
                    return
        conn.close(CLOSE_POLICY, f"no auth message within {self.auth_timeout:g} s")

    async def _read(self, conn: Connection, socket: Socket) -> None:
        while True:
            try:
                raw = await socket.receive()
            except Exception:  # the peer is gone; Quart cancels us on a clean disconnect
                conn.close(CLOSE_NORMAL)
                return
            message = _parse(raw)
            if message is not None:
                self._dispatch(conn, message)

    async def _write(self, conn: Connection, socket: Socket) -> None:
        async for item in conn._drain:
            if type(item) is _CloseAfter:
                conn.close(item.code, item.reason)
                return
            try:
                await socket.send(item.decode())  # type: ignore[union-attr]
            except Exception:
                conn.close(CLOSE_NORMAL)
                return

    async def _expire_public(self, conn: Connection) -> None:
        await trio.sleep(self.public_max_seconds)
        conn.send(END_OF_DATA)
        conn.close_after(CLOSE_NORMAL, "the public stream limit was reached")

    # -- dispatch -------------------------------------------------------------------

    def _handlers_for(self, conn: Connection) -> list[ChannelHandler]:
        return [h for h in self._channels.values() if conn.principal is not None or not h.requires_token]

    def _dispatch(self, conn: Connection, message: dict[str, Any]) -> None:
        action = message.get("action")
        names: list[str] = []
        one = message.get("channel")
        if isinstance(one, str):
            names.append(one)
        many = message.get("channels")
        if isinstance(many, list):
            names.extend(n for n in many if isinstance(n, str))
        for name in dict.fromkeys(names):
            handler = self._channels.get(name)
            if handler is None or (handler.requires_token and conn.principal is None):
                continue
            if action == "subscribe":
                self._call(conn, handler.subscribe, conn, message)
            elif action == "unsubscribe":
                self._call(conn, handler.unsubscribe, conn, message)
            else:
                hook = getattr(handler, "on_message", None)
                if hook is not None:
                    self._call(conn, hook, conn, message)
            if conn.close_code is not None:
                return

    def _call(self, conn: Connection, fn: Callable[..., None], *args: Any) -> None:
        try:
            fn(*args)
        except Exception:
            log.exception("channel handler %r failed on %r", fn, conn)
            conn.close(CLOSE_INTERNAL, "internal error")


def _parse(raw: str | bytes) -> dict[str, Any] | None:
    try:
        message = msgspec.json.decode(raw)
    except msgspec.DecodeError:
        return None
    return message if isinstance(message, dict) else None


async def _close(socket: Socket, code: int, reason: str) -> None:
    with trio.move_on_after(1):
        try:
            await socket.close(code, reason)
        except Exception:  # closed already, or the peer is gone
            pass


def register(app: Any, services: Any) -> None:
    """Serve `/__ws` on `app` with `services.ws_hub` (channels register on the hub)."""
    hub: WebSocketHub = services.ws_hub
    services.status["websocket"] = hub.state

    @app.websocket("/__ws")
    async def ws() -> None:
        await hub.serve(websocket, services.auth.authenticate,
                        remote=websocket.headers.get("Remote-Addr", ""))
