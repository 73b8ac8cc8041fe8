"""Logging in by password or by a fresh code; logging out one token; guessing is bounded."""

from users_fixtures import clock, config, config_overrides, services  # noqa: F401 - fixtures
from users_helpers import PASSWORD, auth, request_code, sign_up


async def _login(client, **body):
    return await client.post("/auth/sessions", json=body, headers={"Accept": "application/json"})


async def test_login_by_password_gives_a_new_working_token(client, config):
    first = await sign_up(client, config, "pw@example.com")
    r = await _login(client, email=" PW@example.com", password=PASSWORD)
    assert r.status_code == 201, r.text
    second = r.json()["token"]
    assert second != first
    assert (await client.get("/user", headers=auth(second))).json()["email"] == "pw@example.com"


async def test_a_wrong_password_or_unknown_email_is_401(client, config):
    await sign_up(client, config, "pw@example.com")
    r = await _login(client, email="pw@example.com", password=PASSWORD + "!")
    assert r.status_code == 401 and r.json()["code"] == "invalid_credentials"
    r = await _login(client, email="nobody@example.com", password=PASSWORD)
    assert r.status_code == 401 and r.json()["code"] == "invalid_credentials"


async def test_login_by_a_fresh_code(client, config, clock):
    await sign_up(client, config, "code@example.com")
    clock.advance(60)
    code = await request_code(client, config, "code@example.com")
    r = await _login(client, email="code@example.com", verification_code=code)
    assert r.status_code == 201
    assert (await client.get("/user", headers=auth(r.json()["token"]))).status_code == 200


async def test_a_code_for_an_email_without_an_account_does_not_log_in_and_still_registers(client, config):
    code = await request_code(client, config, "new@example.com")
    r = await _login(client, email="new@example.com", verification_code=code)
    assert r.status_code == 401 and r.json()["code"] == "invalid_credentials"
    r = await client.post("/auth/register", json={"email": "new@example.com", "verification_code": code})
    assert r.status_code == 201


async def test_login_needs_exactly_one_of_password_and_code(client):
    r = await _login(client, email="x@example.com")
    assert r.status_code == 400 and r.json()["details"]["field"] == "password"
    r = await _login(client, email="x@example.com", password=PASSWORD, verification_code="123456")
    assert r.status_code == 400 and r.json()["code"] == "invalid_input"


async def test_logout_kills_only_the_token_it_came_with(client, config):
    a = await sign_up(client, config, "two@example.com")
    b = (await _login(client, email="two@example.com", password=PASSWORD)).json()["token"]
    assert (await client.get("/user", headers=auth(a))).status_code == 200  # cached now
    assert (await client.delete("/auth/sessions", headers=auth(a))).status_code == 204
    assert (await client.get("/user", headers=auth(a))).status_code == 401
    assert (await client.get("/user", headers=auth(b))).status_code == 200


async def test_failed_logins_are_bounded_per_email_and_recover(client, config, clock):
    await sign_up(client, config, "target@example.com")
    for _ in range(config.ratelimit.login_failures):
        r = await _login(client, email="target@example.com", password="wrong password")
        assert r.status_code == 401
        clock.advance(5)  # spread out, so the client's own bucket is not what stops it
    r = await _login(client, email="target@example.com", password=PASSWORD)
    assert r.status_code == 429, "even the right password waits"
    assert r.json()["code"] == "too_many_failures"
    wait = int(r.headers["Retry-After"])
    assert 0 < wait <= 360
    clock.advance(wait)
    assert (await _login(client, email="target@example.com", password=PASSWORD)).status_code == 201


async def test_code_guesses_count_against_the_same_budget(client, config, clock):
    code = await request_code(client, config, "guess@example.com")
    wrong = f"{(int(code) + 1) % 1_000_000:06d}"
    for i in range(config.ratelimit.login_failures):
        if i % 5 == 0 and i:
            clock.advance(60)
            code = await request_code(client, config, "guess@example.com")
            wrong = f"{(int(code) + 1) % 1_000_000:06d}"
        r = await client.post("/auth/register", json={"email": "guess@example.com", "verification_code": wrong})
        assert r.status_code == 401, r.text
    r = await client.post("/auth/register", json={"email": "guess@example.com", "verification_code": code})
    assert r.status_code == 429
