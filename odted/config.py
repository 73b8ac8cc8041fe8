"""The daemon's configuration: one typed tree, loaded once, passed explicitly.

Sources, later wins: the defaults below, the TOML file (`config/odted.toml` documents
every key), then environment variables `ODTED_<SECTION>_<KEY>` (for nested sections
`ODTED_<SECTION>_<SUB>_<KEY>`, e.g. `ODTED_FEED_SYNTHETIC_SEED=7`). An unknown key or a
wrong type is a `ConfigError` naming the key.
"""

from __future__ import annotations

import os
import re
import tomllib
from decimal import Decimal
from pathlib import Path
from typing import Any, Literal, Mapping

import msgspec

from odted.market.replay import ReplayConfig
from odted.market.synthetic import SyntheticConfig
from odted.market.upstream import UpstreamConfig


__all__ = [
    "Config",
    "ConfigError",
    "load_config",
]


class Section(msgspec.Struct, frozen=True, forbid_unknown_fields=True, kw_only=True):
    """Base of every config section: immutable, and strict about unknown keys."""


class ServerConfig(Section):
    bind: str = "127.0.0.1:8080"
    """HOST:PORT the HTTP and WebSocket API listens on."""
    graceful_timeout: float = 5.0
    """Seconds in-flight requests get to finish on shutdown."""
    max_body_bytes: int = 1_048_576
    """Largest request body accepted; larger is 413."""
    ask_timeout: float = 2.0
    """Seconds a request waits on a busy session actor before 503."""
    echo_route: bool = False
    """Serve `POST /__echo` (decode an order body, encode it back, touch nothing): the
    bare ceiling the order benchmark compares with. Off in production."""

    def __post_init__(self) -> None:
        _parse_bind(self.bind)
        if self.max_body_bytes <= 0:
            raise ValueError("must be positive")


class DatabaseConfig(Section):
    url: str = ""
    """postgresql:// URL of the server to use. Empty: the embedded server under state.dir."""
    pool_min: int = 2
    pool_max: int = 10
    connect_timeout: float = 5.0
    """Seconds to wait for one connection attempt."""
    command_timeout: float = 10.0
    """Seconds one statement may run."""
    retry_attempts: int = 3
    """Attempts for a unit of work that failed on a transient connection error."""


class StateConfig(Section):
    dir: str = "./var"
    """Where odted keeps its data: embedded PostgreSQL, mail outbox, decision logs."""
    logs_dir: str = ""
    """Where bot decision logs are appended (`sessions/<session_id>.jsonl`); empty:
    `<dir>/logs`."""


class LoggingConfig(Section):
    format: Literal["human", "json"] = "human"
    level: Literal["debug", "info", "warning", "error"] = "info"


class FeedConfig(Section):
    source: Literal["synthetic", "replay", "upstream"] = "synthetic"
    stale_after_ms: int = 5000
    """Market-time milliseconds without a tick after which the feed is stale (/ready 503)."""
    synthetic: SyntheticConfig = msgspec.field(default_factory=SyntheticConfig)
    replay: ReplayConfig = msgspec.field(default_factory=ReplayConfig)
    upstream: UpstreamConfig = msgspec.field(default_factory=UpstreamConfig)
    record: bool = True
    """Store every tick the feed publishes (the recorder), whatever the source."""
    record_interval: float = 1.0
    """Seconds between the recorder's writes (sooner when record_batch ticks wait)."""
    record_batch: int = 512
    """Most ticks the recorder writes at once."""
    record_buffer: int = 1024
    """Most ticks the recorder holds unwritten; when full, a feed that can wait waits."""

    def __post_init__(self) -> None:
        if self.record_interval <= 0 or self.record_batch < 1 or self.record_buffer < self.record_batch:
            raise ValueError("record_interval must be > 0, record_batch >= 1, record_buffer >= record_batch")
        if self.source == "upstream" and not self.upstream.url:
            raise ValueError("source = \"upstream\" needs feed.upstream.url")


class WebSocketConfig(Section):
    auth_timeout: float = 5.0
    """Seconds a /__ws client has to send its auth message."""
    public_max_seconds: float = 300.0
    """Seconds a public (no token) /__ws connection streams before end_of_data."""
    outbox_frames: int = 256
    """Frames queued per connection; a client that falls this far behind is closed (1013)."""

    def __post_init__(self) -> None:
        if self.auth_timeout <= 0 or self.public_max_seconds <= 0 or self.outbox_frames < 1:
            raise ValueError("auth_timeout and public_max_seconds must be > 0, outbox_frames >= 1")


class AuthConfig(Section):
    static_tokens: list[str] = msgspec.field(default_factory=list)
    """Operator tokens: each acts as the account operator@localhost (created at start)."""
    token_cache_seconds: float = 5.0
    """Seconds a checked token is remembered in process; a logout elsewhere lands within this."""
    password_min_length: int = 10
    """Fewest characters a password may have."""

    def __post_init__(self) -> None:
        if self.token_cache_seconds < 0 or self.password_min_length < 1:
            raise ValueError("token_cache_seconds must be >= 0 and password_min_length >= 1")


class UsersConfig(Section):
    default_slippage: Decimal = Decimal("0.05")
    """Per-share slippage of a user who has not set one (a non-negative multiple of 0.05)."""

    def __post_init__(self) -> None:
        if not self.default_slippage.is_finite() or self.default_slippage < 0 or self.default_slippage % Decimal("0.05"):
            raise ValueError("default_slippage must be a non-negative multiple of 0.05")


class MailConfig(Section):
    transport: Literal["outbox", "smtp"] = "outbox"
    """"outbox": one .eml file per message under <state.dir>/outbox; "smtp": the server below."""
    from_address: str = "odted@localhost"
    smtp_host: str = "localhost"
    smtp_port: int = 25
    smtp_security: Literal["none", "starttls", "tls"] = "none"
    smtp_username: str = ""
    """Empty: no login."""
    smtp_password: str = ""
    smtp_timeout: float = 10.0


class RateLimitConfig(Section):
    user_capacity: int = 600
    """Credits a user's bucket holds; a request costs its route's cost (1 by default)."""
    user_refill_per_second: float = 10.0
    client_capacity: int = 60
    """Credits per client address for requests without a token (/auth/*)."""
    client_refill_per_second: float = 1.0
    login_failures: int = 10
    """Failed password or code submissions allowed per email per login_failure_window."""
    login_failure_window: float = 3600.0

    def __post_init__(self) -> None:
        if min(self.user_capacity, self.user_refill_per_second, self.client_capacity,
               self.client_refill_per_second, self.login_failures, self.login_failure_window) <= 0:
            raise ValueError("every rate limit must be positive")


class Config(Section):
    server: ServerConfig = msgspec.field(default_factory=ServerConfig)
    database: DatabaseConfig = msgspec.field(default_factory=DatabaseConfig)
    state: StateConfig = msgspec.field(default_factory=StateConfig)
    logging: LoggingConfig = msgspec.field(default_factory=LoggingConfig)
    feed: FeedConfig = msgspec.field(default_factory=FeedConfig)
    websocket: WebSocketConfig = msgspec.field(default_factory=WebSocketConfig)
    auth: AuthConfig = msgspec.field(default_factory=AuthConfig)
    users: UsersConfig = msgspec.field(default_factory=UsersConfig)
    mail: MailConfig = msgspec.field(default_factory=MailConfig)
    ratelimit: RateLimitConfig = msgspec.field(default_factory=RateLimitConfig)

    @property
    def state_dir(self) -> Path:
        return Path(self.state.dir).resolve()

    @property
    def logs_dir(self) -> Path:
        return Path(self.state.logs_dir).resolve() if self.state.logs_dir else self.state_dir / "logs"

    @property
    def bind_host_port(self) -> tuple[str, int]:
        return _parse_bind(self.server.bind)


class ConfigError(Exception):
    """The configuration cannot be used; the message names the key and the problem."""


def load_config(
    path: Path | None = None,
    *,
    env: Mapping[str, str] | None = None,
    overrides: Mapping[str, Any] | None = None,
) -> Config:
    """Load the config: defaults, then the TOML file, then `ODTED_*` env, then overrides.

    `overrides` maps dotted keys (`"server.bind"`) to values, for command-line flags.
    """
    raw: dict[str, Any] = {}
    if path is not None:
        try:
            raw = tomllib.loads(Path(path).read_text())
        except FileNotFoundError:
            raise ConfigError(f"{path}: no such file") from None
        except tomllib.TOMLDecodeError as e:
            raise ConfigError(f"{path}: not valid TOML: {e}") from None
    env = os.environ if env is None else env
    for dotted, value in _env_values(env).items():
        _set_dotted(raw, dotted, value)
    for dotted, value in (overrides or {}).items():
        _set_dotted(raw, dotted, value)
    try:
        return msgspec.convert(raw, type=Config, strict=False)
    except msgspec.ValidationError as e:
        raise ConfigError(_explain(e)) from None


def _env_values(env: Mapping[str, str]) -> dict[str, Any]:
    known = dict(_leaf_env_names(Config, ()))
    out: dict[str, Any] = {}
    for name, value in env.items():
        if not name.startswith("ODTED_"):
            continue
        dotted = known.get(name)
        if dotted is None:
            raise ConfigError(f"{name}: no such setting")
        out[dotted] = _parse_env_value(value)
    return out


def _leaf_env_names(tp: type, prefix: tuple[str, ...]):
    for f in msgspec.structs.fields(tp):
        path = prefix + (f.encode_name,)
        if isinstance(f.type, type) and issubclass(f.type, msgspec.Struct):
            yield from _leaf_env_names(f.type, path)
        else:
            yield "ODTED_" + "_".join(path).upper(), ".".join(path)


def _parse_env_value(value: str) -> Any:
    """A TOML value when it parses as one (numbers, booleans, arrays), else the string."""
    try:
        return tomllib.loads(f"v = {value}")["v"]
    except tomllib.TOMLDecodeError:
        return value


def _set_dotted(raw: dict[str, Any], dotted: str, value: Any) -> None:
    *parents, leaf = dotted.split(".")
    node = raw
    for p in parents:
        node = node.setdefault(p, {})
        if not isinstance(node, dict):
            raise ConfigError(f"{dotted}: {p} is not a section")
    node[leaf] = value


_AT = re.compile(r" - at `\$\.?(.*)`$")


def _explain(e: msgspec.ValidationError) -> str:
    msg = str(e)
    m = _AT.search(msg)
    where = m.group(1).replace("[", ".").replace("]", "") if m else ""
    text = _AT.sub("", msg)
    unknown = re.match(r"Object contains unknown field `(.+)`", text)
    if unknown:
        key = f"{where}.{unknown.group(1)}" if where else unknown.group(1)
        return f"{key}: unknown setting"
    return f"{where or 'config'}: {text}"


def _parse_bind(bind: str) -> tuple[str, int]:
    host, sep, port = bind.rpartition(":")
    if not sep or not host or not port.isdigit() or not 0 <= int(port) <= 65535:
        raise ValueError(f"expected HOST:PORT, got {bind!r}")
    return host.strip("[]"), int(port)
