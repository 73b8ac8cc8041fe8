"""The event hub: per-simulation event streams for `/__ws` subscribers.

An actor commits an event (with its per-simulation `id`) in the same transaction as the
change it reports, then publishes the encoded envelope here. The hub hands the same
bytes to every sink subscribed to that simulation; a sink is a non-blocking callable (a
WebSocket connection's bounded outbox) that returns False when it cannot take more, and
the connection then closes itself (1013) rather than buffering without bound.

Envelope (api-walkthrough Part 12):
`{"channel":"simulation_events","id":42,"live_simulation_id":"<uuid>","type":"order_update","payload":{...}}`

The hub also knows each user's active manual (`/live`) simulation, so a token
connection that never subscribes explicitly follows it (`follow_user`).
"""

from __future__ import annotations

from collections import defaultdict
from typing import Any, Callable
from uuid import UUID

import msgspec

__all__ = ["EventHub", "Envelope", "Sink", "encode_envelope"]

Sink = Callable[[bytes, int], bool]
"""Takes an envelope's bytes and its event id; False when it can take no more."""


class Envelope(msgspec.Struct, frozen=True, omit_defaults=False):
    channel: str
    id: int
    live_simulation_id: UUID
    type: str
    payload: msgspec.Raw


_encoder = msgspec.json.Encoder(decimal_format="string")


def encode_envelope(sim_id: UUID, event_id: int, type_: str, payload: bytes) -> bytes:
    """The wire bytes of one event; `payload` is already-encoded JSON."""
    return _encoder.encode(Envelope("simulation_events", event_id, sim_id, type_, msgspec.Raw(payload or b"{}")))


class EventHub:
    def __init__(self) -> None:
        self._by_sim: dict[UUID, dict[int, Sink]] = defaultdict(dict)
        self._by_user: dict[UUID, dict[int, Sink]] = defaultdict(dict)
        self._active_live: dict[UUID, UUID] = {}  # user -> their open /live simulation
        self._owner: dict[UUID, UUID] = {}  # simulation -> user (for /live sims)
        self._next = 0
        self.published = 0
        self.dropped_sinks = 0

    # -- subscriptions ------------------------------------------------------------

    def subscribe(self, sim_id: UUID, sink: Sink) -> Callable[[], None]:
        """Deliver `sim_id`'s events to `sink`; returns the unsubscribe function."""
        token = self._next
        self._next += 1
        self._by_sim[sim_id][token] = sink

        def unsubscribe() -> None:
            subs = self._by_sim.get(sim_id)
            if subs is not None:
                subs.pop(token, None)
                if not subs:
                    del self._by_sim[sim_id]

        return unsubscribe

    def follow_user(self, user_id: UUID, sink: Sink) -> Callable[[], None]:
        """Deliver the events of whichever `/live` simulation `user_id` has open."""
        token = self._next
        self._next += 1
        self._by_user[user_id][token] = sink

        def unfollow() -> None:
            subs = self._by_user.get(user_id)
            if subs is not None:
                subs.pop(token, None)
                if not subs:
                    del self._by_user[user_id]

        return unfollow

    def set_active_live(self, user_id: UUID, sim_id: UUID | None) -> None:
        """Record which `/live` simulation a user has open (None: none)."""
        old = self._active_live.pop(user_id, None)
        if old is not None:
            self._owner.pop(old, None)
        if sim_id is not None:
            self._active_live[user_id] = sim_id
            self._owner[sim_id] = user_id

    def active_live(self, user_id: UUID) -> UUID | None:
        return self._active_live.get(user_id)

    # -- publishing ---------------------------------------------------------------

    def publish(self, sim_id: UUID, event_id: int, frame: bytes) -> None:
        self.published += 1
        for sinks in (self._by_sim.get(sim_id), self._followers(sim_id)):
            if not sinks:
                continue
            for token, sink in list(sinks.items()):
                if not sink(frame, event_id):
                    self.dropped_sinks += 1
                    sinks.pop(token, None)

    def _followers(self, sim_id: UUID) -> dict[int, Sink] | None:
        user = self._owner.get(sim_id)
        return None if user is None else self._by_user.get(user)

    def stats(self) -> dict[str, Any]:
        return {
            "simulations_watched": len(self._by_sim),
            "users_following": len(self._by_user),
            "published": self.published,
            "dropped_sinks": self.dropped_sinks,
        }
