"""Verification codes: 15-minute expiry, single use, locked after 5 failed submissions,
one per email per 60 s, and what a failed delivery leaves behind."""

import pytest

from odted.mail import MailError
from users_fixtures import clock, config, config_overrides, services  # noqa: F401 - fixtures
from users_helpers import PASSWORD, read_code, request_code


def _wrong(code: str) -> str:
    return f"{(int(code) + 1) % 1_000_000:06d}"


async def _register(client, email, code):
    return await client.post("/auth/register", json={"email": email, "password": PASSWORD, "verification_code": code},
                             headers={"Accept": "application/json"})


async def test_a_code_works_until_fifteen_minutes_after_it_was_sent(client, config, clock):
    code = await request_code(client, config, "late@example.com")
    clock.advance(15 * 60 - 1)
    r = await _register(client, "late@example.com", code)
    assert r.status_code == 201, r.text


async def test_a_code_expires_after_fifteen_minutes(client, config, clock):
    code = await request_code(client, config, "late@example.com")
    clock.advance(15 * 60)
    r = await _register(client, "late@example.com", code)
    assert r.status_code == 401
    assert r.json()["code"] == "verification_code_expired"
    r = await client.post("/auth/verify-email", json={"email": "late@example.com"})
    assert r.status_code == 204, "a new code can be asked for"
    r = await _register(client, "late@example.com", read_code(config, "late@example.com"))
    assert r.status_code == 201


async def test_a_code_is_used_once(client, config):
    code = await request_code(client, config, "once@example.com")
    assert (await _register(client, "once@example.com", code)).status_code == 201
    r = await client.post("/auth/sessions", json={"email": "once@example.com", "verification_code": code},
                          headers={"Accept": "application/json"})
    assert r.status_code == 401
    assert r.json()["code"] == "invalid_verification_code"


async def test_a_code_locks_after_five_failed_submissions(client, config, clock):
    code = await request_code(client, config, "lock@example.com")
    for left in (4, 3, 2, 1, 0):
        r = await _register(client, "lock@example.com", _wrong(code))
        assert r.status_code == 401
        assert r.json()["code"] == "invalid_verification_code"
        assert r.json()["details"] == {"attempts_left": left}
    r = await _register(client, "lock@example.com", code)
    assert r.status_code == 401
    assert r.json()["code"] == "verification_code_locked", "even the right code"
    clock.advance(60)
    fresh = await request_code(client, config, "lock@example.com")
    assert (await _register(client, "lock@example.com", fresh)).status_code == 201


async def test_a_new_code_replaces_the_old_one(client, config, clock):
    old = await request_code(client, config, "again@example.com")
    clock.advance(60)
    new = await request_code(client, config, "again@example.com")
    if old != new:
        r = await _register(client, "again@example.com", old)
        assert r.status_code == 401 and r.json()["code"] == "invalid_verification_code"
    assert (await _register(client, "again@example.com", new)).status_code == 201


async def test_without_a_code_sent_registration_is_refused(client):
    r = await _register(client, "never@example.com", "123456")
    assert r.status_code == 401 and r.json()["code"] == "invalid_verification_code"


async def test_the_resend_limit_is_per_email(client, config, clock):
    await request_code(client, config, "a@example.com")
    await request_code(client, config, "b@example.com")
    clock.advance(59)
    r = await client.post("/auth/verify-email", json={"email": "a@example.com"})
    assert r.status_code == 429 and r.headers["Retry-After"] == "1"
    clock.advance(1)
    assert (await client.post("/auth/verify-email", json={"email": "a@example.com"})).status_code == 204


async def test_a_failed_delivery_is_503_and_can_be_retried_at_once(client, config, services):
    class Down:
        async def send(self, to, subject, body):
            raise MailError("connection refused")

    working, services.users.mailer = services.users.mailer, Down()
    r = await client.post("/auth/verify-email", json={"email": "down@example.com"})
    assert r.status_code == 503 and r.text.startswith("mail_unavailable:")
    services.users.mailer = working
    await request_code(client, config, "down@example.com")


@pytest.mark.parametrize("config_overrides", [{"mail.transport": "smtp", "mail.smtp_host": "127.0.0.1",
                                               "mail.smtp_port": 9, "mail.smtp_timeout": 2.0}])
async def test_smtp_that_cannot_connect_is_503(client):
    r = await client.post("/auth/verify-email", json={"email": "smtp@example.com"})
    assert r.status_code == 503 and r.text.startswith("mail_unavailable:")
