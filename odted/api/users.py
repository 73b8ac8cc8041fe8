"""People's accounts: verification codes, registration, login, tokens, trading settings.

`Users` is the one service the `/auth` and `/user` routes and the `odted users` CLI all
call; routes stay thin adapters. `TokenAuthenticator` is the daemon's `Authenticator`.

Spec: api-walkthrough Part 2 and Part 14. The rules, and where the spec was silent:
- Emails are trimmed and lower-cased before anything else; that form is the account key.
- A code is 6 random digits, delivered by the mailer, stored only as the SHA-256 of
  (email, code). It expires 15 minutes after it was sent, is used once, and is locked
  after 5 failed submissions. An email has at most one live code: asking again (allowed
  once per 60 s, else `429 code_recently_sent`) replaces it. The hash alone would not
  resist an offline search of a million codes; the short life and the lock are what
  protect a code, the hash keeps it out of backups and logs.
- Tokens are 128 random bits in lower-case hex, stored only as their SHA-256.
- Passwords are hashed with argon2id (argon2-cffi's defaults, RFC 9106's low-memory
  profile) in a worker thread, at most two at once, so neither the event loop nor the
  host's memory is at the mercy of a login flood. Minimum length `auth.password_min_length`
  (10 by default), maximum 1024 characters.
- Every failed password or code submission is charged to the email's failure budget
  (`RateLimits.login_failed`); with the budget spent, logins for that email are 429.
- A wrong password, an unknown email or a code for an email without an account is
  `401 invalid_credentials`; code problems are `401 invalid_verification_code`,
  `verification_code_expired` or `verification_code_locked`; registering a taken email
  is `409 email_already_registered` (and consumes no code).
"""

from __future__ import annotations

import hashlib
import hmac
import logging
import re
import secrets
import time
import uuid
from datetime import datetime, timedelta, timezone
from decimal import Decimal
from typing import Callable, Iterable

import trio
from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError
from msgspec import UNSET, UnsetType

from odted.api.errors import ApiError
from odted.api.ratelimit import RateLimits, retry_after_header
from odted.api.services import Principal
from odted.config import Config
from odted.domain.fees import FeeSchedule
from odted.mail import Mailer, MailError, build_mailer
from odted.store.db import Database
from odted.store.users import CodeCheck, CodeResult, EmailTaken, UserRow, UserSettings, UserStore

__all__ = [
    "CODE_MAX_FAILURES", "CODE_RESEND_INTERVAL", "CODE_TTL", "OPERATOR_EMAIL",
    "TokenAuthenticator", "Users", "hash_token", "normalize_email", "utc_now",
]

log = logging.getLogger("odted.users")

CODE_TTL = timedelta(minutes=15)
CODE_MAX_FAILURES = 5
CODE_RESEND_INTERVAL = timedelta(seconds=60)
PASSWORD_MAX_LENGTH = 1024
OPERATOR_EMAIL = "operator@localhost"
"""The account `auth.static_tokens` act as; created passwordless at start when any is set."""

_TOKEN = re.compile(r"[0-9a-f]{32}")
_EMAIL = re.compile(r"[^@\s]{1,64}@[^@\s]{1,253}")
_CACHE_MAX = 50_000


def utc_now() -> datetime:
    """The wall clock, in UTC."""
    return datetime.now(timezone.utc)


def hash_token(token: str) -> bytes:
    return hashlib.sha256(token.encode()).digest()


def _hash_code(email: str, code: str) -> bytes:
    return hashlib.sha256(f"{email}\n{code}".encode()).digest()


def normalize_email(raw: str) -> str:
    """`raw` trimmed and lower-cased; 400 `invalid_input` when it is not an email address."""
    email = raw.strip().lower()
    if len(email) > 254 or not _EMAIL.fullmatch(email) or not email.isprintable():
        raise ApiError(400, "invalid_input", "email: not an email address", {"field": "email"})
    return email


class TokenAuthenticator:
    """Resolves tokens to principals: operator tokens from config, then user tokens.

    A resolved user token is remembered for `ttl` seconds (by its hash), so most
    requests never reach the database; `forget` drops it at logout. A logout in another
    process takes effect here within `ttl`.
    """

    def __init__(self, store: UserStore, *, ttl: float, clock: Callable[[], float] = time.monotonic) -> None:
        self._store = store
        self._ttl = ttl
        self._clock = clock
        self._cache: dict[bytes, tuple[Principal, float]] = {}
        self._forgotten: dict[bytes, float] = {}  # logged out lately: an in-flight lookup must not cache it
        self._static: dict[bytes, Principal] = {}

    def add_static(self, tokens: Iterable[str], principal: Principal) -> None:
        """Accept each of `tokens` as `principal` (operator tokens)."""
        for t in tokens:
            self._static[hash_token(t)] = principal

    async def authenticate(self, token: str) -> Principal | None:
        digest = hash_token(token)
        if self._static:
            found = None
            for known, principal in self._static.items():  # every entry, whatever matches
                if hmac.compare_digest(known, digest):
                    found = principal
            if found is not None:
                return found
        if not _TOKEN.fullmatch(token):
            return None
        now = self._clock()
        hit = self._cache.get(digest)
        if hit is not None:
            if now < hit[1]:
                return hit[0]
            del self._cache[digest]
        row = await self._store.principal(digest)
        if row is None:
            return None
        principal = Principal(user_id=str(row[0]), email=row[1], token_id=digest.hex())
        self._remember(digest, principal)
        return principal

    def forget(self, digest: bytes) -> None:
        """Stop accepting the token with this hash from the cache (it was logged out)."""
        self._cache.pop(digest, None)
        now = self._clock()
        self._forgotten[digest] = now + self._ttl
        if len(self._forgotten) > 1000:
            self._forgotten = {k: t for k, t in self._forgotten.items() if t > now}

    def _remember(self, digest: bytes, principal: Principal) -> None:
        if self._ttl <= 0:
            return
        now = self._clock()
        if self._forgotten.get(digest, 0.0) > now:
            return
        if len(self._cache) >= _CACHE_MAX:
            self._cache = {k: v for k, v in self._cache.items() if v[1] > now}
            if len(self._cache) >= _CACHE_MAX:
                self._cache.clear()
        self._cache[digest] = (principal, now + self._ttl)


class Users:
    """Accounts of people: the operations behind `/auth`, `/user` and `odted users`."""

    def __init__(self, store: UserStore, mailer: Mailer, limits: RateLimits, authenticator: TokenAuthenticator,
                 *, password_min_length: int, hasher: PasswordHasher | None = None,
                 now: Callable[[], datetime] = utc_now) -> None:
        self.store = store
        self.mailer = mailer
        self.limits = limits
        self.authenticator = authenticator
        self.password_min_length = password_min_length
        self._hasher = hasher or PasswordHasher()
        self._hashing = trio.CapacityLimiter(2)
        self._now = now
        self.settings_listeners: list[Callable[[uuid.UUID, UserSettings], None]] = []
        """Called with the effective settings after a change commits (the actors' settings cache)."""

    @classmethod
    def build(cls, config: Config, db: Database, limits: RateLimits, *, mailer: Mailer | None = None,
              hasher: PasswordHasher | None = None, now: Callable[[], datetime] = utc_now,
              clock: Callable[[], float] = time.monotonic) -> Users:
        """The service as `config` describes it; `now` (wall, UTC) and `clock` (monotonic) for tests."""
        store = UserStore(db, default_slippage=config.users.default_slippage)
        auth = TokenAuthenticator(store, ttl=config.auth.token_cache_seconds, clock=clock)
        return cls(store, mailer or build_mailer(config.mail, config.state_dir), limits, auth,
                   password_min_length=config.auth.password_min_length, hasher=hasher, now=now)

    # -- codes ----------------------------------------------------------------------

    async def has_password(self, email: str) -> bool | None:
        """Whether the account of `email` has a password; None when there is no account."""
        user = await self.store.find(normalize_email(email))
        return None if user is None else user.has_password

    async def send_code(self, email: str) -> None:
        """Mail a fresh code to `email`; 429 `code_recently_sent` within 60 s of the last."""
        email = normalize_email(email)
        code = f"{secrets.randbelow(1_000_000):06d}"
        digest = _hash_code(email, code)
        now = self._now()
        sent_at = await self.store.save_code(email, digest, now=now, ttl=CODE_TTL,
                                             resend_interval=CODE_RESEND_INTERVAL)
        if sent_at is not None:
            wait = (sent_at + CODE_RESEND_INTERVAL - now).total_seconds()
            raise ApiError(429, "code_recently_sent",
                           f"a code was sent to this email less than {CODE_RESEND_INTERVAL.seconds} s ago; "
                           f"retry in {max(1, int(wait + 0.999))} s", headers=retry_after_header(wait))
        minutes = int(CODE_TTL.total_seconds() // 60)
        try:
            await self.mailer.send(
                email, f"Your odted verification code: {code}",
                f"Your verification code is {code}.\n\nIt expires in {minutes} minutes and works once. "
                "If you did not ask for it, ignore this message.\n")
        except MailError as e:
            log.warning("verification code for %s not sent: %s", email, e)
            with trio.CancelScope(shield=True):
                await self.store.drop_code(email, digest)
            raise ApiError.unavailable("mail_unavailable", "the verification email could not be sent; retry") from None

    # -- accounts and tokens ----------------------------------------------------------

    async def register(self, email: str, password: str | None, code: str) -> str:
        """Create the account of `email` with the code it was sent; its first token."""
        email = normalize_email(email)
        if password is not None:
            self._check_password(password)
        self.limits.check_login(email)
        if await self.store.find(email) is not None:
            raise self._taken()
        password_hash = None if password is None else await self._hash(password)
        token = secrets.token_hex(16)
        try:
            result = await self.store.register(email, password_hash, _hash_code(email, code), hash_token(token),
                                               now=self._now(), max_failures=CODE_MAX_FAILURES)
        except EmailTaken:
            raise self._taken() from None
        self._require_code(email, result)
        return token

    async def login_with_password(self, email: str, password: str) -> str:
        email = normalize_email(email)
        self.limits.check_login(email)
        user = await self.store.find(email)
        if user is None or user.password_hash is None:
            self.limits.login_failed(email)
            raise ApiError(401, "invalid_credentials", "the email and password do not match an account"
                           + ("" if user is None else " (this account logs in with a verification code)"))
        if not await self._verify(user.password_hash, password):
            self.limits.login_failed(email)
            raise ApiError(401, "invalid_credentials", "the email and password do not match an account")
        if self._hasher.check_needs_rehash(user.password_hash):
            await self.store.set_password_hash(user.id, await self._hash(password))
        token = secrets.token_hex(16)
        await self.store.add_token(user.id, hash_token(token), now=self._now())
        return token

    async def login_with_code(self, email: str, code: str) -> str:
        email = normalize_email(email)
        self.limits.check_login(email)
        token = secrets.token_hex(16)
        result = await self.store.login_with_code(email, _hash_code(email, code), hash_token(token),
                                                  now=self._now(), max_failures=CODE_MAX_FAILURES)
        self._require_code(email, result)
        return token

    async def logout(self, principal: Principal) -> None:
        """Kill the token `principal` came with."""
        if principal.token_id is None:
            raise ApiError(403, "static_token", "an operator token from auth.static_tokens cannot be logged out")
        digest = bytes.fromhex(principal.token_id)
        await self.store.delete_token(digest)
        self.authenticator.forget(digest)

    async def mint_token(self, email: str) -> str:
        """A new token for the account of `email` (operator use)."""
        user = await self.store.find(normalize_email(email))
        if user is None:
            raise ApiError(404, "not_found", "no account has this email")
        token = secrets.token_hex(16)
        await self.store.add_token(user.id, hash_token(token), now=self._now())
        return token

    async def add(self, email: str, password: str | None) -> UserRow:
        """Create an account without a code (operator use)."""
        email = normalize_email(email)
        if password is not None:
            self._check_password(password)
        password_hash = None if password is None else await self._hash(password)
        try:
            await self.store.create_user(email, password_hash, now=self._now())
        except EmailTaken:
            raise self._taken() from None
        user = await self.store.find(email)
        assert user is not None
        return user

    async def all(self) -> list[UserRow]:
        return await self.store.all()

    async def add_operator_tokens(self, tokens: list[str]) -> None:
        """Accept `auth.static_tokens`, each acting as the operator account (created when missing)."""
        if not tokens:
            return
        user_id = await self.store.ensure_user(OPERATOR_EMAIL, now=self._now())
        self.authenticator.add_static(tokens, Principal(user_id=str(user_id), email=OPERATOR_EMAIL))

    # -- profile and settings -------------------------------------------------------------

    async def profile(self, user_id: str) -> tuple[UserRow, UserSettings]:
        """The account and its effective settings; 404 when there is none."""
        row = await self.store.get(self._uuid(user_id))
        if row is None:
            raise ApiError.not_found("user")
        return row, self.store.effective(row)

    async def update_settings(self, user_id: str, *, fee_schedule: FeeSchedule | None | UnsetType = UNSET,
                              slippage: Decimal | None | UnsetType = UNSET) -> None:
        """Override (a value) or restore (None) the fee schedule and/or the slippage."""
        row = await self.store.update_settings(self._uuid(user_id), fee_schedule=fee_schedule, slippage=slippage)
        if row is None:
            raise ApiError.not_found("user")
        settings = self.store.effective(row)
        for listener in self.settings_listeners:
            listener(row.id, settings)

    # -- helpers --------------------------------------------------------------------

    def _check_password(self, password: str) -> None:
        if len(password) < self.password_min_length:
            raise ApiError(400, "invalid_input",
                           f"password: must be at least {self.password_min_length} characters", {"field": "password"})
        if len(password) > PASSWORD_MAX_LENGTH:
            raise ApiError(400, "invalid_input",
                           f"password: must be at most {PASSWORD_MAX_LENGTH} characters", {"field": "password"})

    async def _hash(self, password: str) -> str:
        return await trio.to_thread.run_sync(self._hasher.hash, password, limiter=self._hashing)

    async def _verify(self, password_hash: str, password: str) -> bool:
        def verify() -> bool:
            try:
                return self._hasher.verify(password_hash, password)
            except (VerificationError, InvalidHashError):
                return False

        return await trio.to_thread.run_sync(verify, limiter=self._hashing)

    def _require_code(self, email: str, result: CodeResult) -> None:
        """Return when the code was accepted; else count the failure and raise the 401."""
        if result.check is CodeCheck.OK:
            return
        self.limits.login_failed(email)
        match result.check:
            case CodeCheck.WRONG:
                raise ApiError(401, "invalid_verification_code",
                               f"the verification code is wrong; {result.attempts_left} attempt(s) left",
                               {"attempts_left": result.attempts_left})
            case CodeCheck.EXPIRED:
                raise ApiError(401, "verification_code_expired",
                               "the verification code has expired; request a new one")
            case CodeCheck.LOCKED:
                raise ApiError(401, "verification_code_locked",
                               f"the verification code is locked after {CODE_MAX_FAILURES} failed submissions; "
                               "request a new one")
            case CodeCheck.NO_ACCOUNT:
                raise ApiError(401, "invalid_credentials", "no account has this email; register first")
            case _:
                raise ApiError(401, "invalid_verification_code",
                               "no verification code is pending for this email; request one first")

    @staticmethod
    def _taken() -> ApiError:
        return ApiError.conflict("email_already_registered", "an account with this email exists; log in instead")

    @staticmethod
    def _uuid(user_id: str) -> uuid.UUID:
        try:
            return uuid.UUID(user_id)
        except ValueError:
            raise ApiError.not_found("user") from None
