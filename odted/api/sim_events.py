"""The `simulation_events` channel of `/__ws` (api-walkthrough Part 12).

- A token connection that never subscribes explicitly follows the user's active manual
  (`/live`) simulation: whichever one is open when an event is published.
- `{"action":"subscribe","channel":"simulation_events","live_simulation_id":"<uuid>",
  "last_event_by_sim":{"<uuid>":<int>}}` subscribes to one of the user's simulations
  (a `/live` one, an account session, a bot session); it replaces the default. With
  `last_event_by_sim`, the events after that id are replayed from the database first,
  in order, then live ones follow; live events that arrive while the replay is read are
  held back and sent after it, so the client sees every id once, in increasing order.
- Envelope: `{"channel":"simulation_events","id":42,"live_simulation_id":"<uuid>",
  "type":"order_update","payload":{...}}`; ids are per simulation, from 1, gap-free.
- Unknown or foreign simulations, and malformed subscribes, are ignored silently (the
  hub's rule for unknown channels).
"""

from __future__ import annotations

import logging
from typing import Any
from uuid import UUID

import trio

from odted.runtime.events import EventHub, encode_envelope
from odted.runtime.service import LiveService
from odted.store import live as repo

log = logging.getLogger(__name__)

__all__ = ["SimulationEventsChannel"]

_REPLAY_LIMIT = 10_000


class _Subscription:
    """One connection's subscription to one simulation."""

    __slots__ = ("conn", "sim_id", "replaying", "held", "last_id", "cancel")

    def __init__(self, conn: Any, sim_id: UUID, after: int | None) -> None:
        self.conn = conn
        self.sim_id = sim_id
        self.replaying = after is not None
        self.held: list[tuple[int, bytes]] = []
        self.last_id = after or 0
        self.cancel = lambda: None

    def sink(self, frame: bytes, event_id: int) -> bool:
        if self.replaying:
            self.held.append((event_id, frame))
            return not self.conn.closed
        if event_id <= self.last_id:
            return True
        self.last_id = event_id
        return self.conn.send(frame)


class SimulationEventsChannel:
    requires_token = True

    def __init__(self, live: LiveService) -> None:
        self.live = live
        self.hub: EventHub = live.hub
        self._replays_send, self._replays = trio.open_memory_channel[_Subscription](1024)
        self._defaults: dict[int, Any] = {}  # connection id -> unfollow
        self._subs: dict[int, dict[UUID, _Subscription]] = {}  # connection id -> subscriptions

    # -- the hub's handler contract ----------------------------------------------------------

    def on_authenticated(self, conn: Any) -> None:
        user = _user_of(conn)
        if user is None:
            return
        unfollow = self.hub.follow_user(user, lambda frame, _id: conn.send(frame))
        self._defaults[conn.id] = unfollow
        conn.on_close(lambda: self._forget(conn))

    def subscribe(self, conn: Any, message: dict[str, Any]) -> None:
        user = _user_of(conn)
        sim_id = _uuid(message.get("live_simulation_id"))
        if user is None or sim_id is None:
            return
        actor = self.live.simulation(sim_id)
        if actor is None or actor.sim is None or actor.sim.user_id != user:
            return  # only running simulations of the user's own (an ended one has nothing live)
        after = None
        cursors = message.get("last_event_by_sim")
        if isinstance(cursors, dict):
            raw = cursors.get(str(sim_id))
            if isinstance(raw, int) and not isinstance(raw, bool) and raw >= 0:
                after = raw
        self._drop_default(conn)
        sub = _Subscription(conn, sim_id, after)
        sub.cancel = self.hub.subscribe(sim_id, sub.sink)
        subs = self._subs_of(conn)
        old = subs.pop(sim_id, None)
        if old is not None:
            old.cancel()
        subs[sim_id] = sub
        if after is not None:
            try:
                self._replays_send.send_nowait(sub)
            except trio.WouldBlock:
                conn.close(1013, "too many replays at once; reconnect")

    def unsubscribe(self, conn: Any, message: dict[str, Any]) -> None:
        sim_id = _uuid(message.get("live_simulation_id"))
        subs = self._subs_of(conn)
        targets = [sim_id] if sim_id is not None else list(subs)
        for s in targets:
            sub = subs.pop(s, None)
            if sub is not None:
                sub.cancel()
        self._drop_default(conn)

    async def run(self, *, task_status: trio.TaskStatus[None] = trio.TASK_STATUS_IGNORED) -> None:
        task_status.started()
        async for sub in self._replays:
            try:
                await self._replay(sub)
            except Exception:
                log.exception("replaying simulation events failed")
                sub.conn.close(1011, "could not replay missed events; reconnect")

    # -- internals ----------------------------------------------------------------------

    async def _replay(self, sub: _Subscription) -> None:
        if sub.conn.closed:
            return
        rows = await self.live.db.run(repo.events_after, sub.sim_id, sub.last_id, _REPLAY_LIMIT)
        for event_id, type_, payload in rows:
            if not sub.conn.send(encode_envelope(sub.sim_id, event_id, type_, payload)):
                return
            sub.last_id = event_id
        sub.replaying = False
        held, sub.held = sub.held, []
        for event_id, frame in held:
            if event_id > sub.last_id:
                sub.last_id = event_id
                if not sub.conn.send(frame):
                    return

    def _drop_default(self, conn: Any) -> None:
        unfollow = self._defaults.pop(conn.id, None)
        if unfollow is not None:
            unfollow()

    def _subs_of(self, conn: Any) -> dict[UUID, _Subscription]:
        subs = self._subs.get(conn.id)
        if subs is None:
            subs = self._subs[conn.id] = {}
            conn.on_close(lambda: self._forget(conn))
        return subs

    def _forget(self, conn: Any) -> None:
        self._drop_default(conn)
        for sub in self._subs.pop(conn.id, {}).values():
            sub.cancel()


def _user_of(conn: Any) -> UUID | None:
    principal = getattr(conn, "principal", None)
    try:
        return UUID(principal.user_id) if principal is not None else None
    except (AttributeError, ValueError):
        return None


def _uuid(value: Any) -> UUID | None:
    if not isinstance(value, str):
        return None
    try:
        return UUID(value)
    except ValueError:
        return None
