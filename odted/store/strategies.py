"""Saved strategies in PostgreSQL: the shared, immutable `strategies` (keyed by
`source_hash`) and each user's `strategy_links` to them.

A link's id is what the API calls the strategy id. Unlinking stamps `deleted_at` and
keeps the row, so saving the same configuration again brings the same id back; the
shared strategy is never deleted (other users' links and bots pin it).

`StrategyStore` is the trio-facing repository; each method is one unit of work.
"""

from __future__ import annotations

import enum
import uuid
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from msgspec import UNSET, UnsetType

from odted.store.db import Conn, Database

__all__ = ["StrategyLinkRow", "StrategyStore", "Saved"]

_LINK = """
    l.id, l.user_id, l.source_hash, s.source, s.description AS generated_description, l.description,
    l.privacy, l.created_at
"""
_FROM = "strategy_links l JOIN strategies s ON s.source_hash = l.source_hash"


class Saved(enum.Enum):
    """What a save did to the user's link."""

    CREATED = "created"  # a new link
    RESTORED = "restored"  # an unlinked one came back, with its id
    EXISTING = "existing"  # the link was already there


@dataclass(frozen=True)
class StrategyLinkRow:
    """A user's saved strategy: the link and the shared strategy it points at."""

    id: uuid.UUID
    user_id: uuid.UUID
    source_hash: str
    source: str  # the canonical source (JSON of the normalized config)
    generated_description: str
    description: str | None  # the user's override, if any
    privacy: str
    created_at: datetime


def _link(row: Any) -> StrategyLinkRow:
    return StrategyLinkRow(**dict(row))


async def _fetch(conn: Conn, link_id: uuid.UUID) -> StrategyLinkRow | None:
    row = await conn.fetchrow(f"SELECT {_LINK} FROM {_FROM} WHERE l.id = $1 AND l.deleted_at IS NULL", link_id)
    return None if row is None else _link(row)


async def _save(conn: Conn, new_id: uuid.UUID, user_id: uuid.UUID, source_hash: str, source: str,
                generated: str, privacy: str | UnsetType,
                description: str | None | UnsetType) -> tuple[StrategyLinkRow, Saved]:
    await conn.execute(
        "INSERT INTO strategies (source_hash, source, config, description) VALUES ($1, $2::text, $2::text::jsonb, $3)"
        " ON CONFLICT (source_hash) DO NOTHING",
        source_hash, source, generated,
    )
    for _ in range(2):  # a concurrent first save of the same link wins the insert; then it exists
        found = await conn.fetchrow(
            "SELECT id, deleted_at IS NOT NULL AS deleted FROM strategy_links"
            " WHERE user_id = $1 AND source_hash = $2 FOR UPDATE",
            user_id, source_hash,
        )
        if found is None:
            link_id = await conn.fetchval(
                "INSERT INTO strategy_links (id, user_id, source_hash, description, privacy)"
                " VALUES ($1, $2, $3, $4, $5) ON CONFLICT (user_id, source_hash) DO NOTHING RETURNING id",
                new_id, user_id, source_hash, None if description is UNSET else description,
                "private" if privacy is UNSET else privacy,
            )
            if link_id is None:
                continue
            outcome = Saved.CREATED
        elif found["deleted"]:
            # Saved again after an unlink: the same id, with the metadata of this save.
            link_id = found["id"]
            await conn.execute(
                "UPDATE strategy_links SET deleted_at = NULL, created_at = now(), description = $2, privacy = $3"
                " WHERE id = $1",
                link_id, None if description is UNSET else description,
                "private" if privacy is UNSET else privacy,
            )
            outcome = Saved.RESTORED
        else:
            link_id = found["id"]
            await _update(conn, link_id, description, privacy)
            outcome = Saved.EXISTING
        row = await _fetch(conn, link_id)
        assert row is not None
        return row, outcome
    raise AssertionError("a link that exists could not be read")  # pragma: no cover


async def _update(conn: Conn, link_id: uuid.UUID, description: str | None | UnsetType,
                  privacy: str | UnsetType) -> None:
    if description is not UNSET:
        await conn.execute("UPDATE strategy_links SET description = $2 WHERE id = $1", link_id, description)
    if privacy is not UNSET:
        await conn.execute("UPDATE strategy_links SET privacy = $2 WHERE id = $1", link_id, privacy)


async def _list(conn: Conn, user_id: uuid.UUID) -> list[StrategyLinkRow]:
    rows = await conn.fetch(
        f"SELECT {_LINK} FROM {_FROM} WHERE l.user_id = $1 AND l.deleted_at IS NULL"
        " ORDER BY l.created_at DESC, l.id",
        user_id,
    )
    return [_link(r) for r in rows]


async def _patch(conn: Conn, user_id: uuid.UUID, link_id: uuid.UUID, description: str | None | UnsetType,
                 privacy: str | UnsetType) -> StrategyLinkRow | None:
    owned = await conn.fetchval(
        "SELECT id FROM strategy_links WHERE id = $1 AND user_id = $2 AND deleted_at IS NULL FOR UPDATE",
        link_id, user_id,
    )
    if owned is None:
        return None
    await _update(conn, link_id, description, privacy)
    return await _fetch(conn, link_id)


async def _unlink(conn: Conn, user_id: uuid.UUID, link_id: uuid.UUID) -> bool:
    done = await conn.fetchval(
        "UPDATE strategy_links SET deleted_at = now() WHERE id = $1 AND user_id = $2 AND deleted_at IS NULL"
        " RETURNING id",
        link_id, user_id,
    )
    return done is not None


class StrategyStore:
    """Users' saved strategies. Reads of one link return it whoever owns it (the API
    decides what a reader may see); changes check ownership."""

    def __init__(self, db: Database) -> None:
        self._db = db

    async def save(self, user_id: uuid.UUID, *, source_hash: str, source: str, generated_description: str,
                   privacy: str | UnsetType = UNSET,
                   description: str | None | UnsetType = UNSET) -> tuple[StrategyLinkRow, Saved]:
        """Upsert the shared strategy and the user's link to it.

        A new link takes `privacy` (default private) and `description`; an unlinked one
        comes back with its id and this save's metadata; a live one keeps its metadata
        except the fields given.
        """
        return await self._db.run(_save, uuid.uuid4(), user_id, source_hash, source, generated_description,
                                  privacy, description)

    async def list_of(self, user_id: uuid.UUID) -> list[StrategyLinkRow]:
        """The user's live links, most recently saved first."""
        return await self._db.run(_list, user_id, transaction=False)

    async def get(self, link_id: uuid.UUID) -> StrategyLinkRow | None:
        """A live link, whoever owns it."""
        return await self._db.run(_fetch, link_id, transaction=False)

    async def patch(self, user_id: uuid.UUID, link_id: uuid.UUID, *, description: str | None | UnsetType = UNSET,
                    privacy: str | UnsetType = UNSET) -> StrategyLinkRow | None:
        """Change the user's metadata of their link; None when it is not theirs (or unlinked)."""
        return await self._db.run(_patch, user_id, link_id, description, privacy)

    async def unlink(self, user_id: uuid.UUID, link_id: uuid.UUID) -> bool:
        """Remove the link from the user's list; False when there was no such live link."""
        return await self._db.run(_unlink, user_id, link_id)
