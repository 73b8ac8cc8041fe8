"""API errors: a status, a stable code, a message that says what to change.

DESIGN.md "Errors": non-2xx bodies are `text/plain` `<code>: <message>`; a client that
sends `Accept: application/json` gets `{"code", "message", "details"}` instead.
"""

from __future__ import annotations

from typing import Any

import msgspec

__all__ = ["ApiError", "ErrorBody", "render_error"]


class ErrorBody(msgspec.Struct, frozen=True):
    """The JSON error shape (generic trading API)."""

    code: str
    message: str
    details: dict[str, Any] = msgspec.field(default_factory=dict)


class ApiError(Exception):
    """Raised by handlers; turned into the error response. Nothing was changed."""

    def __init__(self, status: int, code: str, message: str, details: dict[str, Any] | None = None,
                 headers: dict[str, str] | None = None) -> None:
        super().__init__(f"{code}: {message}")
        self.status = status
        self.code = code
        self.message = message
        self.details = details or {}
        self.headers = headers or {}

    @classmethod
    def bad_request(cls, code: str, message: str, **details: Any) -> ApiError:
        return cls(400, code, message, details)

    @classmethod
    def not_found(cls, what: str = "resource") -> ApiError:
        return cls(404, "not_found", f"no such {what}")

    @classmethod
    def conflict(cls, code: str, message: str, **details: Any) -> ApiError:
        return cls(409, code, message, details)

    @classmethod
    def unavailable(cls, code: str, message: str, retry_after: int = 1) -> ApiError:
        return cls(503, code, message, headers={"Retry-After": str(retry_after)})


_encode = msgspec.json.Encoder().encode


def render_error(err: ApiError, accept: str | None) -> tuple[bytes, str]:
    """The body and content type for `err`, honouring `Accept: application/json`."""
    if accept and "application/json" in accept:
        return _encode(ErrorBody(err.code, err.message, err.details)), "application/json"
    return f"{err.code}: {err.message}".encode(), "text/plain; charset=utf-8"
