"""Instrument symbols: the 21-character OSI option symbol and the equity symbol.

Spec: api-walkthrough Part 6 and "Reference: instrument strings". An equity option is
`<ROOT><YYMMDD><C|P><strike x 1000, 8 digits>`: the root left-justified and padded with
spaces to 6 characters, the expiry date, the side letter, and the strike times 1000
zero-padded to 8 digits. SPX 0DTE options use the weekly root `SPXW` (so `SPXW` and two
spaces): a 5950 call expiring 2025-01-15 is `SPXW  250115C05950000`. An option is
identified by root + date + side + strike; the session-close time is implied. The
equity itself is `SPX`.

Parsing is strict: the canonical 21-character form only. A symbol that lost a space of
its padding (as HTML renders the spec's examples) is refused with a message that shows
the corrected symbol, so a client learns the fix instead of trading a guess.
"""

from __future__ import annotations

import re
from datetime import date
from decimal import Decimal

import msgspec

__all__ = [
    "Instrument",
    "InvalidInstrument",
    "parse_osi",
    "format_osi",
    "is_equity_symbol",
    "SPX",
    "SPXW",
    "UNDERLYING_OF_ROOT",
]

SPX = "SPX"
"""The equity (index) symbol, and the underlying of every option traded here."""

SPXW = "SPXW"
"""The OSI root of SPX weekly (PM-settled) options: the 0DTE root."""

UNDERLYING_OF_ROOT = {"SPXW": "SPX", "SPX": "SPX"}
"""Option roots whose underlying is SPX (`SPX` is the AM-settled monthly root)."""

_OSI_LEN = 21
_ROOT_LEN = 6
_MAX_STRIKE_MILLI = 99_999_999
# With the length fixed at 21, the root and its padding take exactly 6 characters.
_OSI = re.compile(r"([A-Z0-9]{1,6}) *(\d\d)(\d\d)(\d\d)([CP])(\d{8})", re.ASCII)


class InvalidInstrument(ValueError):
    """A symbol that is not a well-formed OSI option symbol; the message says why."""


class Instrument(msgspec.Struct, frozen=True, gc=False):
    """One option contract, parsed from its OSI symbol.

    `strike_milli` is the strike times 1000, as the symbol encodes it, so strikes are
    exact integers for arithmetic; `strike` is the same as a Decimal. `chain_strike` is
    the integer strike a `Tick` indexes by, or None for a fractional strike (which no
    SPX chain lists).
    """

    symbol: str
    root: str
    expiry: date
    right: str
    strike_milli: int

    @property
    def strike(self) -> Decimal:
        return Decimal(self.strike_milli) / 1000

    @property
    def chain_strike(self) -> int | None:
        whole, frac = divmod(self.strike_milli, 1000)
        return None if frac else whole

    @property
    def underlying(self) -> str | None:
        return UNDERLYING_OF_ROOT.get(self.root)

    @property
    def is_call(self) -> bool:
        return self.right == "C"


def format_osi(root: str, expiry: date, right: str, strike: Decimal | int) -> str:
    """The canonical 21-character OSI symbol for an option.

    >>> format_osi("SPXW", date(2025, 1, 15), "C", 5950)
    'SPXW  250115C05950000'
    """
    if not root or len(root) > _ROOT_LEN or not root.isalnum() or not root.isupper():
        raise InvalidInstrument(f"root {root!r} must be 1-6 upper-case letters or digits")
    if right not in ("C", "P"):
        raise InvalidInstrument(f"right {right!r} must be 'C' or 'P'")
    milli = Decimal(strike) * 1000
    if milli != milli.to_integral_value() or not 0 < milli <= _MAX_STRIKE_MILLI:
        raise InvalidInstrument(f"strike {strike} must be positive with at most 3 decimals")
    if not 2000 <= expiry.year <= 2099:
        raise InvalidInstrument(f"expiry {expiry} is outside the years OSI encodes")
    return f"{root:<{_ROOT_LEN}}{expiry:%y%m%d}{right}{int(milli):08d}"


def parse_osi(symbol: str) -> Instrument:
    """Parse a 21-character OSI symbol; raise `InvalidInstrument` saying what is wrong."""
    m = _OSI.fullmatch(symbol) if len(symbol) == _OSI_LEN else None
    if m is not None:
        root, yy, mm, dd, right, digits = m.groups()
        milli = int(digits)
        if milli:
            try:
                expiry = date(2000 + int(yy), int(mm), int(dd))
            except ValueError:
                pass
            else:
                return Instrument(
                    symbol=symbol, root=root, expiry=expiry, right=right, strike_milli=milli
                )
    raise InvalidInstrument(_diagnose(symbol))


def _diagnose(symbol: str) -> str:
    """Why `symbol` is not a valid OSI symbol, in words a client can act on."""
    if len(symbol) != _OSI_LEN:
        return _length_message(symbol)
    root = symbol[:_ROOT_LEN].rstrip(" ")
    if not root or " " in root or not root.isalnum() or not root.isupper() or not root.isascii():
        return (
            f"{symbol!r}: the first 6 characters must be the root, upper-case and "
            f"left-justified with space padding, like 'SPXW  '"
        )
    ymd = symbol[6:12]
    if not (ymd.isascii() and ymd.isdigit()):
        return f"{symbol!r}: characters 7-12 must be the expiry as YYMMDD"
    try:
        date(2000 + int(ymd[:2]), int(ymd[2:4]), int(ymd[4:]))
    except ValueError:
        return f"{symbol!r}: {ymd} is not a valid YYMMDD date"
    if symbol[12] not in ("C", "P"):
        return f"{symbol!r}: character 13 must be C (call) or P (put)"
    digits = symbol[13:]
    if not (digits.isascii() and digits.isdigit()):
        return f"{symbol!r}: the last 8 characters must be the strike x 1000, zero-padded"
    return f"{symbol!r}: the strike must be positive"


def is_equity_symbol(symbol: str) -> bool:
    """True for an equity symbol such as `SPX` (1-6 upper-case letters, nothing else)."""
    return 0 < len(symbol) <= _ROOT_LEN and symbol.isalpha() and symbol.isupper()


def _length_message(symbol: str) -> str:
    base = f"{symbol!r} is {len(symbol)} characters; an OSI option symbol has 21"
    hint = _repad(symbol)
    if hint is not None:
        return f"{base}: the root is padded with spaces to 6 characters, so send {hint!r}"
    if is_equity_symbol(symbol):
        return f"{base}; {symbol!r} is an equity symbol, and only options trade here"
    return f"{base}, like 'SPXW  250115C05950000'"


def _repad(symbol: str) -> str | None:
    """The symbol with its root re-padded to 6 characters, when that makes it valid."""
    parts = symbol.split()
    if len(parts) != 2 or len(parts[0]) > _ROOT_LEN or len(parts[1]) != 15:
        return None
    candidate = f"{parts[0]:<{_ROOT_LEN}}{parts[1]}"
    try:
        parse_osi(candidate)
    except InvalidInstrument:
        return None
    return candidate
