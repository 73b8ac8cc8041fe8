"""`/user`: the caller's profile, fee schedule and slippage.

Spec: api-walkthrough 2.5 and 2.6. `fee_schedule` is the domain's `FeeSchedule`
(`odted.domain.fees`: all seven fields required, each non-negative and at most 10x the
platform default; its unknown fields are refused). Money is a decimal string on the
wire both ways: a JSON number for a fee or the slippage is `400 invalid_input`.
`null` restores the default (the platform schedule; `users.default_slippage`). A PATCH
that names neither field is 400, so a misspelt field is not silently ignored.
"""

from __future__ import annotations

import re
import uuid
from decimal import Decimal
from typing import Any

import msgspec
from msgspec import UNSET, UnsetType
from quart import Response, g

from odted.api.codec import decode_bytes, json_response, read_json_body
from odted.api.errors import ApiError
from odted.api.routes import Api
from odted.api.services import Services
from odted.domain.fees import FeeSchedule

__all__ = ["register", "UserProfile", "UserPatch", "SLIPPAGE_STEP"]

SLIPPAGE_STEP = Decimal("0.05")
_DIGITS = 12  # at most this many digits on either side of the point
_FEE_NAMED = re.compile(r"(?:fee_schedule\.|missing required field `)(\w+)")


class UserProfile(msgspec.Struct, frozen=True):
    id: uuid.UUID
    email: str
    usage_percent: int
    """How much of the rate-limit bucket is used, 0-100."""
    fee_schedule: FeeSchedule
    """The effective schedule: the platform default unless overridden."""
    slippage: Decimal
    """Per-share slippage applied to limit and stop fills (a multiple of 0.05)."""


class UserPatch(msgspec.Struct, frozen=True, kw_only=True):
    fee_schedule: FeeSchedule | None | UnsetType = UNSET
    """All seven fields; `null` restores the platform default."""
    slippage: Decimal | None | UnsetType = UNSET
    """A non-negative multiple of 0.05; `null` restores the configured default."""


def register(api: Api, services: Services) -> None:
    users = services.users

    @api.route("GET", "/user", summary="Your profile: usage, effective fee schedule, slippage",
               response=UserProfile, tags=("user",))
    async def get_user() -> Response:
        principal = g.principal
        row, settings = await users.profile(principal.user_id)
        return json_response(UserProfile(
            id=row.id, email=row.email, usage_percent=services.ratelimits.usage_percent(principal.user_id),
            fee_schedule=settings.fee_schedule, slippage=settings.slippage,
        ))

    @api.route("PATCH", "/user", summary="Override or restore your fee schedule and/or slippage",
               request=UserPatch, status=204, tags=("user",))
    async def patch_user() -> Response:
        body = await read_json_body()
        patch = _decode_patch(body)
        if patch.fee_schedule is UNSET and patch.slippage is UNSET:
            raise ApiError(400, "invalid_input", "give fee_schedule and/or slippage")
        if patch.fee_schedule is not UNSET and patch.fee_schedule is not None:
            for f in msgspec.structs.fields(FeeSchedule):
                _check_size(f"fee_schedule.{f.name}", getattr(patch.fee_schedule, f.name))
        if patch.slippage is not UNSET and patch.slippage is not None:
            _check_slippage(patch.slippage)
        await users.update_settings(g.principal.user_id, fee_schedule=patch.fee_schedule, slippage=patch.slippage)
        return Response(b"", status=204)


def _invalid(field: str, message: str) -> ApiError:
    return ApiError(400, "invalid_input", f"{field}: {message}", {"field": field})


def _decode_patch(body: bytes) -> UserPatch:
    try:
        patch = decode_bytes(body, UserPatch)
    except ApiError as e:
        # Name the fee, not just the schedule, when the message knows which one it was.
        m = _FEE_NAMED.search(e.message) if e.details.get("field") == "fee_schedule" else None
        if m is None:
            raise
        raise _invalid(f"fee_schedule.{m.group(1)}", e.message.removeprefix("fee_schedule: ")) from None
    _require_decimal_strings(body)
    return patch


def _require_decimal_strings(body: bytes) -> None:
    """Money arrives as strings: refuse JSON numbers where a decimal is expected."""
    raw: dict[str, Any] = decode_bytes(body, dict[str, Any])
    fees = raw.get("fee_schedule")
    if isinstance(fees, dict):
        for name, value in fees.items():
            if not isinstance(value, str):
                raise _invalid(f"fee_schedule.{name}", 'must be a decimal string, e.g. "1.72"')
    if raw.get("slippage") is not None and not isinstance(raw["slippage"], str):
        raise _invalid("slippage", 'must be a decimal string, e.g. "0.05"')


def _check_size(field: str, value: Decimal) -> None:
    if not value.is_finite() or value.adjusted() >= _DIGITS or value.as_tuple().exponent < -_DIGITS:  # type: ignore[operator]
        raise _invalid(field, f"must be a decimal with at most {_DIGITS} digits on either side of the point")


def _check_slippage(value: Decimal) -> None:
    _check_size("slippage", value)
    if value < 0 or value % SLIPPAGE_STEP != 0:
        raise _invalid("slippage", f"must be a non-negative multiple of {SLIPPAGE_STEP}")
