"""Refusals: how the runtime answers "no" (the API turns them into error responses)."""

from __future__ import annotations

from typing import Any

__all__ = ["Refusal"]


class Refusal(Exception):
    """A command was refused; nothing changed. `status` and `code` are the API's."""

    def __init__(self, status: int, code: str, message: str, details: dict[str, Any] | None = None) -> None:
        super().__init__(f"{code}: {message}")
        self.status = status
        self.code = code
        self.message = message
        self.details = details or {}

    @classmethod
    def invalid(cls, code: str, message: str, **details: Any) -> Refusal:
        return cls(400, code, message, details)

    @classmethod
    def not_found(cls, what: str) -> Refusal:
        return cls(404, "not_found", f"no such {what}")

    @classmethod
    def conflict(cls, code: str, message: str, **details: Any) -> Refusal:
        return cls(409, code, message, details)
