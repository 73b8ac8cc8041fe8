"""`/auth`: check an email, send a code, register, log in, log out.

Spec: api-walkthrough Part 2 (2.1-2.4) and Part 14. The rules live in `odted.api.users`;
these handlers decode, call `Users`, encode. The unauthenticated routes are charged to
the client address (`ratelimit.client_*`); the ones that hash a password or send mail
cost more.
"""

from __future__ import annotations

from typing import Annotated

import msgspec
from quart import Response, g

from odted.api.codec import decode_body, json_response
from odted.api.errors import ApiError
from odted.api.routes import Api
from odted.api.services import Services

__all__ = ["register", "EmailRequest", "EmailStatus", "Registration", "Login", "SessionToken"]

Email = Annotated[str, msgspec.Meta(max_length=320, description="Trimmed and lower-cased by the server.")]
Code = Annotated[str, msgspec.Meta(pattern=r"^[0-9]{6}$", description="The 6-digit code from the email.")]
Password = Annotated[str, msgspec.Meta(description="At least auth.password_min_length (10) characters.")]

_HEAVY = 5  # hashes a password or sends mail


class EmailRequest(msgspec.Struct, frozen=True):
    email: Email


class EmailStatus(msgspec.Struct, frozen=True):
    hasPassword: bool  # noqa: N815 - the spec's name


class Registration(msgspec.Struct, frozen=True, kw_only=True):
    email: Email
    verification_code: Code
    password: Password | None = None
    """Omit for a passwordless account (it logs in with fresh codes)."""


class Login(msgspec.Struct, frozen=True, kw_only=True):
    """Email plus either the password or a fresh verification code."""

    email: Email
    password: Password | None = None
    verification_code: Code | None = None


class SessionToken(msgspec.Struct, frozen=True):
    token: str


def register(api: Api, services: Services) -> None:
    users = services.users

    @api.route("POST", "/auth/check-email", summary="Whether an email has an account, and a password",
               request=EmailRequest, response=EmailStatus, auth=False, errors=(404,), cost=1, tags=("auth",))
    async def check_email() -> Response:
        body = await decode_body(EmailRequest)
        has_password = await users.has_password(body.email)
        if has_password is None:
            raise ApiError(404, "not_found", "no account has this email; register")
        return json_response(EmailStatus(has_password))

    @api.route("POST", "/auth/verify-email", summary="Email a 6-digit verification code (once per 60 s)",
               request=EmailRequest, status=204, auth=False, cost=_HEAVY, tags=("auth",))
    async def verify_email() -> Response:
        body = await decode_body(EmailRequest)
        await users.send_code(body.email)
        return Response(b"", status=204)

    @api.route("POST", "/auth/register", summary="Create an account with a verification code; log in",
               request=Registration, response=SessionToken, status=201, auth=False, errors=(401, 409),
               cost=_HEAVY, tags=("auth",))
    async def register_user() -> Response:
        body = await decode_body(Registration)
        token = await users.register(body.email, body.password, body.verification_code)
        return json_response(SessionToken(token), status=201)

    @api.route("POST", "/auth/sessions", summary="Log in with a password or a fresh verification code",
               request=Login, response=SessionToken, status=201, auth=False, errors=(401,), cost=_HEAVY,
               tags=("auth",))
    async def log_in() -> Response:
        body = await decode_body(Login)
        if body.password is not None and body.verification_code is not None:
            raise ApiError(400, "invalid_input", "give either password or verification_code, not both",
                           {"field": "verification_code"})
        if body.verification_code is not None:
            token = await users.login_with_code(body.email, body.verification_code)
        elif body.password is not None:
            token = await users.login_with_password(body.email, body.password)
        else:
            raise ApiError(400, "invalid_input", "password: required (or a verification_code)",
                           {"field": "password"})
        return json_response(SessionToken(token), status=201)

    @api.route("DELETE", "/auth/sessions", summary="Log out: the token stops working", status=204,
               errors=(403,), tags=("auth",))
    async def log_out() -> Response:
        await users.logout(g.principal)
        return Response(b"", status=204)
