"""Users in PostgreSQL: accounts, session tokens, verification codes, trading settings.

`UserStore` is the trio-facing repository; each method is one unit of work (one
transaction) on `Database.run`. Secrets arrive already hashed: the store sees SHA-256
digests of tokens and codes and argon2 hashes of passwords, never the secrets.

Time is passed in (`now`), never read here, so code expiry follows the caller's clock.
"""

from __future__ import annotations

import enum
import hmac
import uuid
from datetime import datetime, timedelta
from decimal import Decimal

import msgspec
from msgspec import UNSET, UnsetType

from odted.domain.fees import FeeSchedule
from odted.store.db import Conn, Database

__all__ = ["CodeCheck", "CodeResult", "EmailTaken", "UserRow", "UserSettings", "UserStore"]

_FEE_FIELDS = tuple(f.name for f in msgspec.structs.fields(FeeSchedule))
_FEE_COLUMNS = tuple(f"fee_{name}" for name in _FEE_FIELDS)

_USER_COLUMNS = ", ".join(("id", "email", "password_hash", "slippage", "created_at", *_FEE_COLUMNS))


class EmailTaken(Exception):
    """An account with this email exists already."""


class CodeCheck(enum.Enum):
    """What became of a submitted verification code."""

    OK = "ok"  # matched; consumed
    MISSING = "missing"  # none was sent, or it was used already
    WRONG = "wrong"  # did not match; the failure is counted
    EXPIRED = "expired"
    LOCKED = "locked"  # too many failed submissions
    NO_ACCOUNT = "no_account"  # a login for an email without an account; the code is untouched


class CodeResult(msgspec.Struct, frozen=True):
    check: CodeCheck
    attempts_left: int = 0
    user_id: uuid.UUID | None = None


class UserRow(msgspec.Struct, frozen=True):
    """An account as stored: `fee_schedule` and `slippage` are None when not overridden."""

    id: uuid.UUID
    email: str
    password_hash: str | None
    fee_schedule: FeeSchedule | None
    slippage: Decimal | None
    created_at: datetime

    @property
    def has_password(self) -> bool:
        return self.password_hash is not None


class UserSettings(msgspec.Struct, frozen=True):
    """The effective trading settings of a user: what fills and fees use."""

    fee_schedule: FeeSchedule
    slippage: Decimal


def _user(row: object) -> UserRow:
    fees = [row[c] for c in _FEE_COLUMNS]  # type: ignore[index]
    schedule = None if fees[0] is None else FeeSchedule(*fees)
    return UserRow(row["id"], row["email"], row["password_hash"], schedule, row["slippage"],  # type: ignore[index]
                   row["created_at"])  # type: ignore[index]


# -- units of work (asyncpg) ----------------------------------------------------------

async def _find(conn: Conn, email: str) -> UserRow | None:
    row = await conn.fetchrow(f"SELECT {_USER_COLUMNS} FROM users WHERE email = $1", email)
    return None if row is None else _user(row)


async def _get(conn: Conn, user_id: uuid.UUID) -> UserRow | None:
    row = await conn.fetchrow(f"SELECT {_USER_COLUMNS} FROM users WHERE id = $1", user_id)
    return None if row is None else _user(row)


async def _list(conn: Conn) -> list[UserRow]:
    return [_user(r) for r in await conn.fetch(f"SELECT {_USER_COLUMNS} FROM users ORDER BY created_at, email")]


async def _principal(conn: Conn, token_hash: bytes) -> tuple[uuid.UUID, str] | None:
    row = await conn.fetchrow(
        "SELECT t.token_hash, u.id, u.email FROM user_tokens t JOIN users u ON u.id = t.user_id"
        " WHERE t.token_hash = $1", token_hash)
    if row is None or not hmac.compare_digest(bytes(row["token_hash"]), token_hash):
        return None
    return row["id"], row["email"]


_SAVE_CODE = """
INSERT INTO verification_codes (email, code_hash, sent_at, expires_at, failed_attempts, consumed_at)
VALUES ($1, $2, $3, $4, 0, NULL)
ON CONFLICT (email) DO UPDATE
    SET code_hash = EXCLUDED.code_hash, sent_at = EXCLUDED.sent_at, expires_at = EXCLUDED.expires_at,
        failed_attempts = 0, consumed_at = NULL
    WHERE verification_codes.sent_at <= $5
RETURNING sent_at
"""


async def _save_code(conn: Conn, email: str, code_hash: bytes, now: datetime, expires_at: datetime,
                     resend_after: datetime) -> datetime | None:
    if await conn.fetchval(_SAVE_CODE, email, code_hash, now, expires_at, resend_after) is not None:
        return None
    return await conn.fetchval("SELECT sent_at FROM verification_codes WHERE email = $1", email)


async def _drop_code(conn: Conn, email: str, code_hash: bytes) -> None:
    await conn.execute("DELETE FROM verification_codes WHERE email = $1 AND code_hash = $2", email, code_hash)


async def _use_code(conn: Conn, email: str, code_hash: bytes, now: datetime, max_failures: int) -> CodeResult:
    row = await conn.fetchrow(
        "SELECT code_hash, expires_at, failed_attempts, consumed_at FROM verification_codes"
        " WHERE email = $1 FOR UPDATE", email)
    if row is None or row["consumed_at"] is not None:
        return CodeResult(CodeCheck.MISSING)
    if row["failed_attempts"] >= max_failures:
        return CodeResult(CodeCheck.LOCKED)
    if row["expires_at"] <= now:
        return CodeResult(CodeCheck.EXPIRED)
    if not hmac.compare_digest(bytes(row["code_hash"]), code_hash):
        failed = await conn.fetchval(
            "UPDATE verification_codes SET failed_attempts = failed_attempts + 1 WHERE email = $1"
            " RETURNING failed_attempts", email)
        return CodeResult(CodeCheck.WRONG, attempts_left=max(0, max_failures - failed))
    await conn.execute("UPDATE verification_codes SET consumed_at = $2 WHERE email = $1", email, now)
    return CodeResult(CodeCheck.OK)


async def _insert_token(conn: Conn, user_id: uuid.UUID, token_hash: bytes, now: datetime) -> None:
    await conn.execute("INSERT INTO user_tokens (token_hash, user_id, created_at) VALUES ($1, $2, $3)",
                       token_hash, user_id, now)


async def _insert_user(conn: Conn, email: str, password_hash: str | None, now: datetime) -> uuid.UUID:
    user_id = await conn.fetchval(
        "INSERT INTO users (id, email, password_hash, created_at) VALUES ($1, $2, $3, $4)"
        " ON CONFLICT (email) DO NOTHING RETURNING id", uuid.uuid4(), email, password_hash, now)
    if user_id is None:
        raise EmailTaken(email)
    return user_id


async def _register(conn: Conn, email: str, password_hash: str | None, code_hash: bytes, token_hash: bytes,
                    now: datetime, max_failures: int) -> CodeResult:
    result = await _use_code(conn, email, code_hash, now, max_failures)
    if result.check is not CodeCheck.OK:
        return result
    user_id = await _insert_user(conn, email, password_hash, now)  # EmailTaken rolls the code back
    await _insert_token(conn, user_id, token_hash, now)
    return CodeResult(CodeCheck.OK, user_id=user_id)


async def _login_with_code(conn: Conn, email: str, code_hash: bytes, token_hash: bytes, now: datetime,
                           max_failures: int) -> CodeResult:
    user_id = await conn.fetchval("SELECT id FROM users WHERE email = $1", email)
    if user_id is None:
        return CodeResult(CodeCheck.NO_ACCOUNT)
    result = await _use_code(conn, email, code_hash, now, max_failures)
    if result.check is CodeCheck.OK:
        await _insert_token(conn, user_id, token_hash, now)
        return CodeResult(CodeCheck.OK, user_id=user_id)
    return result


async def _ensure_user(conn: Conn, email: str, now: datetime) -> uuid.UUID:
    await conn.execute(
        "INSERT INTO users (id, email, created_at) VALUES ($1, $2, $3) ON CONFLICT (email) DO NOTHING",
        uuid.uuid4(), email, now)
    return await conn.fetchval("SELECT id FROM users WHERE email = $1", email)


async def _delete_token(conn: Conn, token_hash: bytes) -> bool:
    return await conn.fetchval("DELETE FROM user_tokens WHERE token_hash = $1 RETURNING true", token_hash) is True


async def _update_settings(conn: Conn, user_id: uuid.UUID, fees: list[Decimal | None] | None,
                           slippage: tuple[Decimal | None] | None) -> UserRow | None:
    sets: list[str] = []
    args: list[object] = [user_id]
    if fees is not None:
        for column, value in zip(_FEE_COLUMNS, fees):
            args.append(value)
            sets.append(f"{column} = ${len(args)}")
    if slippage is not None:
        args.append(slippage[0])
        sets.append(f"slippage = ${len(args)}")
    if not sets:
        return await _get(conn, user_id)
    row = await conn.fetchrow(f"UPDATE users SET {', '.join(sets)} WHERE id = $1 RETURNING {_USER_COLUMNS}", *args)
    return None if row is None else _user(row)


async def _set_password_hash(conn: Conn, user_id: uuid.UUID, password_hash: str) -> None:
    await conn.execute("UPDATE users SET password_hash = $2 WHERE id = $1", user_id, password_hash)


# -- the repository -------------------------------------------------------------------

class UserStore:
    """Accounts, tokens and codes, on `db`."""

    def __init__(self, db: Database, *, default_slippage: Decimal) -> None:
        self.db = db
        self.default_slippage = default_slippage

    async def find(self, email: str) -> UserRow | None:
        """The account of a normalized `email`."""
        return await self.db.run(_find, email, transaction=False)

    async def get(self, user_id: uuid.UUID) -> UserRow | None:
        return await self.db.run(_get, user_id, transaction=False)

    async def all(self) -> list[UserRow]:
        return await self.db.run(_list, transaction=False)

    async def settings(self, user_id: uuid.UUID) -> UserSettings | None:
        """The fee schedule and slippage that apply to `user_id` now (None: no such user)."""
        row = await self.get(user_id)
        return None if row is None else self.effective(row)

    def effective(self, row: UserRow) -> UserSettings:
        return UserSettings(row.fee_schedule or FeeSchedule.default(),
                            self.default_slippage if row.slippage is None else row.slippage)

    async def principal(self, token_hash: bytes) -> tuple[uuid.UUID, str] | None:
        """The user id and email a token hash belongs to."""
        return await self.db.run(_principal, token_hash, transaction=False)

    async def save_code(self, email: str, code_hash: bytes, *, now: datetime, ttl: timedelta,
                        resend_interval: timedelta) -> datetime | None:
        """Make `code_hash` the live code of `email`, unless one was sent within `resend_interval`.

        None when saved; else when the live code was sent.
        """
        return await self.db.run(_save_code, email, code_hash, now, now + ttl, now - resend_interval)

    async def drop_code(self, email: str, code_hash: bytes) -> None:
        """Forget the live code of `email` if it is still `code_hash` (it was never delivered)."""
        await self.db.run(_drop_code, email, code_hash)

    async def register(self, email: str, password_hash: str | None, code_hash: bytes, token_hash: bytes, *,
                       now: datetime, max_failures: int) -> CodeResult:
        """Consume the code, create the account and its first token, all or nothing.

        Raises `EmailTaken` (and consumes nothing) when the email has an account.
        """
        return await self.db.run(_register, email, password_hash, code_hash, token_hash, now, max_failures)

    async def login_with_code(self, email: str, code_hash: bytes, token_hash: bytes, *, now: datetime,
                              max_failures: int) -> CodeResult:
        """Consume the code and add a token to the account of `email`."""
        return await self.db.run(_login_with_code, email, code_hash, token_hash, now, max_failures)

    async def create_user(self, email: str, password_hash: str | None, *, now: datetime) -> uuid.UUID:
        """A new account without a code (operator use); `EmailTaken` when it exists."""
        return await self.db.run(_insert_user, email, password_hash, now)

    async def ensure_user(self, email: str, *, now: datetime) -> uuid.UUID:
        """The id of the account of `email`, created passwordless when missing."""
        return await self.db.run(_ensure_user, email, now)

    async def add_token(self, user_id: uuid.UUID, token_hash: bytes, *, now: datetime) -> None:
        await self.db.run(_insert_token, user_id, token_hash, now)

    async def delete_token(self, token_hash: bytes) -> bool:
        """Forget a token; False when it was not there."""
        return await self.db.run(_delete_token, token_hash)

    async def set_password_hash(self, user_id: uuid.UUID, password_hash: str) -> None:
        await self.db.run(_set_password_hash, user_id, password_hash)

    async def update_settings(self, user_id: uuid.UUID, *,
                              fee_schedule: FeeSchedule | None | UnsetType = UNSET,
                              slippage: Decimal | None | UnsetType = UNSET) -> UserRow | None:
        """Override (a value) or restore to the default (None) the fee schedule and/or slippage.

        The account as updated; None when it does not exist.
        """
        fees: list[Decimal | None] | None = None
        if fee_schedule is None:
            fees = [None] * len(_FEE_COLUMNS)
        elif fee_schedule is not UNSET:
            fees = [getattr(fee_schedule, name) for name in _FEE_FIELDS]
        slip = None if slippage is UNSET else (slippage,)
        return await self.db.run(_update_settings, user_id, fees, slip)
