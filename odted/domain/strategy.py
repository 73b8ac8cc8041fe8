"""The Strategy Builder `config`: its Structs, validation, canonical source and hash,
generated description, and compilation to a program.

Spec: api-walkthrough Part 13 (the builder `config`: `legs` of `direction`, `type`,
`qty`, `strike` {`method`, `value`}; `entry` {`times`}; `exit` {`profit_target_pct`,
`time`}; a bad config answers `400 invalid_config` with a `fields` map and creates
nothing; strategies are content-addressed: the config is compiled to a deterministic
program keyed by the hash of its source, so identical configurations are one strategy;
`GET /strategies/{id}` shows a generated description). bots-api (a bot pins a strategy).

The config, field by field (bounds are odted's where the spec names none):

| field | rule |
|---|---|
| `legs` | 1-4 legs (an order has at most 4) |
| `legs[i].direction` | `buy` or `sell` |
| `legs[i].type` | `call` or `put` |
| `legs[i].qty` | whole number of contracts, 1-1000 |
| `legs[i].strike.method` | `delta` (unsigned delta, 0 < value < 1), `points` (points from spot, signed, -1000..1000: -50 is 50 below), `premium` (a target option mid, 0 < value <= 1000) |
| `entry.times` | 1-20 distinct `HH:MM` New York times from 09:30 to before 16:00, before `exit.time` |
| `entry.max_entries` | optional, 1..len(times); default len(times) |
| `exit.profit_target_pct` | optional, 0 < pct <= 1000, of the entry premium |
| `exit.stop_loss_pct` | optional, 0 < pct <= 1000, of the entry premium |
| `exit.time` | optional `HH:MM` after 09:30 and before 16:00; without it positions are held to the close |

Numbers may be JSON numbers or decimal strings; they are exact `Decimal`s throughout.
`parse_config` checks everything and reports every problem at once, keyed by the path of
the field (`legs[1].strike.value`), or returns the normalized `StrategyConfig`.

Canonical source: the normalized config as JSON with sorted keys, no whitespace, every
number in its shortest exact decimal form (0.30 -> 0.3, 5E+1 -> 50), times as `HH:MM`,
entry times sorted, `max_entries` always present, absent optional fields omitted.
`source_hash` is the SHA-256 hex of those bytes, so configs that mean the same thing hash
the same whatever their key order or number spelling.
"""

from __future__ import annotations

import hashlib
import re
from collections.abc import Mapping
from decimal import Decimal, InvalidOperation
from typing import Any

import msgspec

from odted.domain.orders import MAX_LEGS
from odted.domain.program import BuilderProgram

__all__ = [
    "StrikeSelection",
    "LegConfig",
    "EntryConfig",
    "ExitConfig",
    "StrategyConfig",
    "InvalidConfig",
    "CompiledStrategy",
    "parse_config",
    "canonical_source",
    "source_hash",
    "describe",
    "compile_strategy",
    "minutes_of",
]

_ZERO = Decimal(0)
_ONE = Decimal(1)
_SESSION_OPEN = 9 * 60 + 30
_SESSION_CLOSE = 16 * 60
_TIME = re.compile(r"(\d{1,2}):(\d\d)", re.ASCII)
_ENCODER = msgspec.json.Encoder(decimal_format="number", order="sorted")
_DECODER = msgspec.json.Decoder(float_hook=Decimal)


class _Base(msgspec.Struct, frozen=True, kw_only=True, forbid_unknown_fields=True, omit_defaults=True):
    pass


class StrikeSelection(_Base):
    """How a leg's strike is chosen on the entry tick (`ctx.select_strike`)."""

    method: str
    value: Decimal


class LegConfig(_Base):
    direction: str
    type: str
    qty: int
    strike: StrikeSelection

    @property
    def right(self) -> str:
        return "C" if self.type == "call" else "P"

    @property
    def sign(self) -> int:
        return 1 if self.direction == "buy" else -1


class EntryConfig(_Base):
    times: tuple[str, ...]
    max_entries: int | None = None


class ExitConfig(_Base):
    profit_target_pct: Decimal | None = None
    stop_loss_pct: Decimal | None = None
    time: str | None = None


class StrategyConfig(_Base):
    """A normalized builder config (`parse_config` makes one)."""

    legs: tuple[LegConfig, ...]
    entry: EntryConfig
    exit: ExitConfig = ExitConfig()


class InvalidConfig(msgspec.Struct, frozen=True):
    """`400 invalid_config`: every problem, keyed by field path."""

    fields: dict[str, str]

    def __str__(self) -> str:
        return "invalid_config: " + "; ".join(f"{k} {v}" for k, v in self.fields.items())


class CompiledStrategy(msgspec.Struct, frozen=True):
    """A config with its canonical source, hash, description and program."""

    config: StrategyConfig
    source: bytes
    source_hash: str
    description: str
    program: BuilderProgram


# -- normalizing helpers ----------------------------------------------------------------


def _norm(d: Decimal) -> Decimal:
    """The shortest exact form of `d`, never with an exponent (5E+1 -> 50)."""
    d = d.normalize()
    if d.as_tuple().exponent > 0:  # type: ignore[operator]
        d = d.quantize(_ONE)
    return d + 0 if d else _ZERO  # no negative zero


def minutes_of(hhmm: str) -> int:
    """Minutes after midnight of a normalized `HH:MM`."""
    return int(hhmm[:2]) * 60 + int(hhmm[3:])


def _time(value: Any) -> str | None:
    if not isinstance(value, str):
        return None
    m = _TIME.fullmatch(value)
    if m is None:
        return None
    h, mi = int(m.group(1)), int(m.group(2))
    if h > 23 or mi > 59:
        return None
    return f"{h:02d}:{mi:02d}"


def _decimal(value: Any) -> Decimal | None:
    if isinstance(value, bool):
        return None
    if isinstance(value, float):
        value = repr(value)  # the shortest text that round-trips: 0.3, not 0.299...
    if isinstance(value, (int, str, Decimal)):
        try:
            d = Decimal(value)
        except (InvalidOperation, ValueError):
            return None
        return _norm(d) if d.is_finite() else None
    return None


def _integer(value: Any) -> int | None:
    if isinstance(value, bool):
        return None
    if isinstance(value, int):
        return value
    if isinstance(value, Decimal) and value.is_finite() and value == value.to_integral_value():
        return int(value)
    return None


def _need(obj: Mapping[str, Any], key: str, rule: str) -> str:
    return f"is required; {rule}" if obj.get(key) is None else rule


def _unknown(obj: Mapping[str, Any], known: tuple[str, ...], at: str, errors: dict[str, str]) -> None:
    for key in obj:
        if key not in known:
            errors[f"{at}.{key}" if at else str(key)] = "is not a field of the builder config"


# -- parsing ----------------------------------------------------------------------------


def parse_config(data: bytes | str | Mapping[str, Any]) -> StrategyConfig | InvalidConfig:
    """Validate a builder config (JSON bytes/str or an already decoded mapping) and
    return it normalized, or every problem at once."""
    if isinstance(data, (bytes, str)):
        try:
            data = _DECODER.decode(data)
        except msgspec.DecodeError as exc:
            return InvalidConfig(fields={"config": f"is not valid JSON: {exc}"})
    if not isinstance(data, Mapping):
        return InvalidConfig(fields={"config": "must be an object with legs, entry and exit"})
    errors: dict[str, str] = {}
    _unknown(data, ("legs", "entry", "exit"), "", errors)
    legs = _parse_legs(data.get("legs"), errors)
    exit_ = _parse_exit(data.get("exit", {}), errors)
    entry = _parse_entry(data.get("entry"), exit_, errors)
    if errors or legs is None or entry is None or exit_ is None:
        return InvalidConfig(fields=errors)
    return StrategyConfig(legs=legs, entry=entry, exit=exit_)


def _parse_legs(raw: Any, errors: dict[str, str]) -> tuple[LegConfig, ...] | None:
    if not isinstance(raw, list) or not 1 <= len(raw) <= MAX_LEGS:
        errors["legs"] = ("is required; " if raw is None else "") + f"must be a list of 1 to {MAX_LEGS} legs"
        return None
    out = []
    for i, leg in enumerate(raw):
        at = f"legs[{i}]"
        if not isinstance(leg, Mapping):
            errors[at] = "must be an object with direction, type, qty and strike"
            continue
        _unknown(leg, ("direction", "type", "qty", "strike"), at, errors)
        direction, kind = leg.get("direction"), leg.get("type")
        if direction not in ("buy", "sell"):
            errors[f"{at}.direction"] = _need(leg, "direction", "must be buy or sell")
        if kind not in ("call", "put"):
            errors[f"{at}.type"] = _need(leg, "type", "must be call or put")
        qty = _integer(leg.get("qty"))
        if qty is None or not 1 <= qty <= 1000:
            errors[f"{at}.qty"] = _need(leg, "qty", "must be a whole number of contracts from 1 to 1000")
        strike = _parse_strike(leg.get("strike"), f"{at}.strike", errors)
        if strike is not None and qty is not None and direction in ("buy", "sell") and kind in ("call", "put"):
            out.append(LegConfig(direction=direction, type=kind, qty=qty, strike=strike))
    if len(out) != len(raw):
        return None
    seen: dict[tuple[str, StrikeSelection], int] = {}
    for i, leg in enumerate(out):
        key = (leg.type, leg.strike)
        if key in seen:
            errors[f"legs[{i}].strike"] = (
                f"selects the same {leg.type} as legs[{seen[key]}]; merge the legs or choose another strike"
            )
        seen.setdefault(key, i)
    return tuple(out)


def _parse_strike(raw: Any, at: str, errors: dict[str, str]) -> StrikeSelection | None:
    if not isinstance(raw, Mapping):
        errors[at] = "is required: an object with method and value" if raw is None else (
            "must be an object with method and value")
        return None
    _unknown(raw, ("method", "value"), at, errors)
    method = raw.get("method")
    value = _decimal(raw.get("value"))
    ok = True
    if method not in ("delta", "points", "premium"):
        errors[f"{at}.method"] = _need(raw, "method", "must be delta, points or premium")
        ok = False
    if value is None:
        errors[f"{at}.value"] = _need(raw, "value", "must be a number")
        return None
    if method == "delta" and not _ZERO < value < _ONE:
        errors[f"{at}.value"] = "must be between 0 and 1 (an unsigned delta such as 0.3)"
        ok = False
    elif method == "points" and not abs(value) <= 1000:
        errors[f"{at}.value"] = "must be from -1000 to 1000 points from spot (-50 is 50 below)"
        ok = False
    elif method == "premium" and not _ZERO < value <= 1000:
        errors[f"{at}.value"] = "must be an option price above 0 and at most 1000"
        ok = False
    return StrikeSelection(method=method, value=value) if ok else None


def _parse_pct(raw: Mapping[str, Any], name: str, errors: dict[str, str]) -> Decimal | None:
    if raw.get(name) is None:
        return None
    value = _decimal(raw[name])
    if value is None or not _ZERO < value <= 1000:
        errors[f"exit.{name}"] = "must be a percentage above 0 and at most 1000"
        return None
    return value


def _parse_exit(raw: Any, errors: dict[str, str]) -> ExitConfig | None:
    if raw is None:
        raw = {}
    if not isinstance(raw, Mapping):
        errors["exit"] = "must be an object with profit_target_pct, stop_loss_pct and time"
        return None
    _unknown(raw, ("profit_target_pct", "stop_loss_pct", "time"), "exit", errors)
    before = len(errors)
    target = _parse_pct(raw, "profit_target_pct", errors)
    stop = _parse_pct(raw, "stop_loss_pct", errors)
    at = None
    if raw.get("time") is not None:
        at = _time(raw["time"])
        if at is None or not _SESSION_OPEN < minutes_of(at) < _SESSION_CLOSE:
            errors["exit.time"] = "must be an HH:MM New York time after 09:30 and before 16:00"
            at = None
    if len(errors) != before:
        return None
    return ExitConfig(profit_target_pct=target, stop_loss_pct=stop, time=at)


def _parse_entry(raw: Any, exit_: ExitConfig | None, errors: dict[str, str]) -> EntryConfig | None:
    if not isinstance(raw, Mapping):
        errors["entry"] = "is required: an object with times" if raw is None else "must be an object with times"
        return None
    _unknown(raw, ("times", "max_entries"), "entry", errors)
    times = raw.get("times")
    if not isinstance(times, list) or not 1 <= len(times) <= 20:
        errors["entry.times"] = "must be a list of 1 to 20 HH:MM New York times"
        return None
    before = len(errors)
    normalized: list[str] = []
    exit_at = minutes_of(exit_.time) if exit_ is not None and exit_.time else _SESSION_CLOSE
    for i, t in enumerate(times):
        at = f"entry.times[{i}]"
        hhmm = _time(t)
        if hhmm is None or not _SESSION_OPEN <= minutes_of(hhmm) < _SESSION_CLOSE:
            errors[at] = "must be an HH:MM New York time from 09:30 to before 16:00"
        elif hhmm in normalized:
            errors[at] = f"repeats {hhmm}"
        elif minutes_of(hhmm) >= exit_at:
            errors[at] = f"must be before exit.time {exit_.time if exit_ else ''}".rstrip()
        else:
            normalized.append(hhmm)
    max_entries = len(times)
    if raw.get("max_entries") is not None:
        m = _integer(raw["max_entries"])
        if m is None or not 1 <= m <= len(times):
            errors["entry.max_entries"] = f"must be a whole number from 1 to {len(times)} (the number of times)"
        else:
            max_entries = m
    if len(errors) != before:
        return None
    return EntryConfig(times=tuple(sorted(normalized)), max_entries=max_entries)


# -- source, hash, description, compilation --------------------------------------------


def canonical_source(config: StrategyConfig) -> bytes:
    """The canonical JSON of a normalized config (see the module docstring)."""
    return _ENCODER.encode(msgspec.to_builtins(config, builtin_types=(Decimal,)))


def source_hash(config: StrategyConfig) -> str:
    """The SHA-256 hex digest of the canonical source: the strategy's content address."""
    return hashlib.sha256(canonical_source(config)).hexdigest()


def _number(d: Decimal) -> str:
    return format(_norm(d), "f")


def _leg_phrase(leg: LegConfig) -> str:
    s = leg.strike
    head = f"{leg.direction} {leg.qty}"
    if s.method == "delta":
        return f"{head} {_number(s.value * 100)}-delta {leg.type}"
    if s.method == "points":
        if not s.value:
            return f"{head} at-the-money {leg.type}"
        side = "below" if s.value < 0 else "above"
        return f"{head} {leg.type} {_number(abs(s.value))} points {side} spot"
    return f"{head} {leg.type} priced nearest ${_number(s.value)}"


def _and(items: list[str]) -> str:
    return items[0] if len(items) == 1 else ", ".join(items[:-1]) + " and " + items[-1]


def describe(config: StrategyConfig) -> str:
    """A sentence for people: "Sell 1 30-delta put, buy 1 20-delta put at 10:00; take
    profit at 50%, exit by 15:55"."""
    legs = ", ".join(_leg_phrase(leg) for leg in config.legs)
    text = legs[0].upper() + legs[1:] + " at " + _and(list(config.entry.times))
    m = config.entry.max_entries
    if m is not None and m < len(config.entry.times):
        text += f" (at most {m} {'entry' if m == 1 else 'entries'})"
    ex = config.exit
    parts = []
    if ex.profit_target_pct is not None:
        parts.append(f"take profit at {_number(ex.profit_target_pct)}%")
    if ex.stop_loss_pct is not None:
        parts.append(f"stop out at a {_number(ex.stop_loss_pct)}% loss")
    parts.append(f"exit by {ex.time}" if ex.time else "hold to expiration")
    return text + "; " + ", ".join(parts)


def compile_strategy(config: StrategyConfig) -> CompiledStrategy:
    """Compile a normalized config: source, hash, description and its program."""
    source = canonical_source(config)
    return CompiledStrategy(
        config=config,
        source=source,
        source_hash=hashlib.sha256(source).hexdigest(),
        description=describe(config),
        program=BuilderProgram.compile(config),
    )
