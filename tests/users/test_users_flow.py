"""The walkthrough's account story over real HTTP: check, verify, register, profile, fees,
logout (api-walkthrough Part 2 and Part 14)."""

import email
import email.policy
import uuid
from decimal import Decimal

import httpx

from users_fixtures import clock, config, config_overrides, services  # noqa: F401 - fixtures
from users_helpers import PASSWORD, auth, outbox, read_code, request_code, sign_up

DEFAULT_FEES = {
    "buy_equity": "0.0008",
    "sell_equity": "0.003986",
    "buy_to_open_option": "1.72",
    "sell_to_open_option": "1.72",
    "buy_to_close_option": "0.72",
    "sell_to_close_option": "0.72",
    "exercise_option": "5",
}
CUSTOM_FEES = {
    "buy_equity": "0.001",
    "sell_equity": "0.005",
    "buy_to_open_option": "2.000",
    "sell_to_open_option": "2.000",
    "buy_to_close_option": "0.250",
    "sell_to_close_option": "0.250",
    "exercise_option": "7.50",
}


async def test_the_whole_account_story_from_check_to_logout(client: httpx.AsyncClient, config, clock):
    who = "  Trader@Example.COM "
    r = await client.post("/auth/check-email", json={"email": who})
    assert r.status_code == 404, r.text

    r = await client.post("/auth/verify-email", json={"email": who})
    assert r.status_code == 204 and r.content == b""
    r = await client.post("/auth/verify-email", json={"email": "trader@example.com"})
    assert r.status_code == 429
    assert r.text.startswith("code_recently_sent:")
    assert r.headers["Retry-After"] == "60"
    clock.advance(45)
    r = await client.post("/auth/verify-email", json={"email": who})
    assert r.status_code == 429 and r.headers["Retry-After"] == "15"

    code = read_code(config, "trader@example.com")
    r = await client.post("/auth/register", json={"email": who, "password": PASSWORD, "verification_code": code})
    assert r.status_code == 201, r.text
    token = r.json()["token"]
    assert len(token) == 32 and int(token, 16) >= 0

    r = await client.post("/auth/check-email", json={"email": "trader@example.com"})
    assert r.json() == {"hasPassword": True}

    r = await client.get("/user", headers=auth(token))
    assert r.status_code == 200, r.text
    profile = r.json()
    assert uuid.UUID(profile["id"])
    assert profile == {"id": profile["id"], "email": "trader@example.com", "usage_percent": 0,
                       "fee_schedule": DEFAULT_FEES, "slippage": "0.05"}

    r = await client.patch("/user", headers=auth(token), json={"fee_schedule": CUSTOM_FEES})
    assert r.status_code == 204 and r.content == b""
    assert (await client.get("/user", headers=auth(token))).json()["fee_schedule"] == CUSTOM_FEES

    r = await client.patch("/user", headers=auth(token), json={"slippage": "0.10"})
    assert r.status_code == 204
    body = (await client.get("/user", headers=auth(token))).json()
    assert body["slippage"] == "0.10" and body["fee_schedule"] == CUSTOM_FEES, "a PATCH leaves the other field"

    r = await client.patch("/user", headers=auth(token), json={"fee_schedule": None, "slippage": None})
    assert r.status_code == 204
    body = (await client.get("/user", headers=auth(token))).json()
    assert body["fee_schedule"] == DEFAULT_FEES and body["slippage"] == "0.05"

    r = await client.delete("/auth/sessions", headers=auth(token))
    assert r.status_code == 204 and r.content == b""
    r = await client.get("/user", headers=auth(token))
    assert r.status_code == 401
    assert r.text.startswith("unauthorized:")
    assert (await client.delete("/auth/sessions", headers=auth(token))).status_code == 401


async def test_every_invalid_profile_patch_is_400_naming_the_field(client, config):
    token = await sign_up(client, config, "fees@example.com")
    missing = {k: v for k, v in CUSTOM_FEES.items() if k != "exercise_option"}
    cases = [
        ({"fee_schedule": missing}, "fee_schedule.exercise_option", "missing required field"),
        ({"fee_schedule": {**CUSTOM_FEES, "buy_to_open_option": "-0.01"}}, "fee_schedule.buy_to_open_option", "non-negative"),
        ({"fee_schedule": {**CUSTOM_FEES, "buy_to_open_option": "17.21"}}, "fee_schedule.buy_to_open_option", "at most 17.20"),
        ({"fee_schedule": {**CUSTOM_FEES, "sell_equity": "0.03987"}}, "fee_schedule.sell_equity", "10x"),
        ({"fee_schedule": {**CUSTOM_FEES, "exercise_option": "five"}}, "fee_schedule.exercise_option", "decimal"),
        ({"fee_schedule": {**CUSTOM_FEES, "exercise_option": 5}}, "fee_schedule.exercise_option", "decimal string"),
        ({"fee_schedule": {**CUSTOM_FEES, "exercise_option": "NaN"}}, "fee_schedule.exercise_option", "non-negative"),
        ({"fee_schedule": {**CUSTOM_FEES, "exercise_option": None}}, "fee_schedule.exercise_option", "Expected `decimal`"),
        ({"fee_schedule": "cheap"}, "fee_schedule", "object"),
        ({"slippage": "0.07"}, "slippage", "multiple of 0.05"),
        ({"slippage": "-0.05"}, "slippage", "non-negative"),
        ({"slippage": 0.1}, "slippage", "decimal string"),
        ({"slippage": "a dime"}, "slippage", "decimal"),
        ({"slippage": "1e40"}, "slippage", "digits"),
        ({"slippage": "Infinity"}, "slippage", "digits"),
        ({}, None, "fee_schedule and/or slippage"),
        ({"slipage": "0.10"}, None, "fee_schedule and/or slippage"),
    ]
    for body, field, words in cases:
        r = await client.patch("/user", headers={**auth(token), "Accept": "application/json"}, json=body)
        assert r.status_code == 400, (body, r.text)
        err = r.json()
        assert err["code"] == "invalid_input", (body, err)
        if field is not None:
            assert err["details"].get("field") == field, (body, err)
        assert words in err["message"], (body, err)
    r = await client.patch("/user", headers=auth(token), content=b'{"slippage": ')
    assert r.status_code == 400 and r.text.startswith("invalid_input: malformed JSON")
    r = await client.patch("/user", headers=auth(token), content=b"")
    assert r.status_code == 400
    body = (await client.get("/user", headers=auth(token))).json()
    assert body["fee_schedule"] == DEFAULT_FEES and body["slippage"] == "0.05", "nothing changed"


async def test_the_caps_are_inclusive_and_zero_is_allowed(client, config):
    token = await sign_up(client, config, "caps@example.com")
    tenfold = {k: str(Decimal(v) * 10) for k, v in DEFAULT_FEES.items()}
    r = await client.patch("/user", headers=auth(token), json={"fee_schedule": tenfold, "slippage": "0"})
    assert r.status_code == 204, r.text
    body = (await client.get("/user", headers=auth(token))).json()
    assert body["fee_schedule"] == tenfold and body["slippage"] == "0"
    zero = {k: "0" for k in DEFAULT_FEES}
    assert (await client.patch("/user", headers=auth(token), json={"fee_schedule": zero})).status_code == 204
    assert (await client.get("/user", headers=auth(token))).json()["fee_schedule"] == zero


async def test_request_bodies_are_decoded_strictly_and_unknown_fields_ignored(client, config):
    cases = [
        (b'{"email": 5}', "email", "Expected `str`"),
        (b'{}', None, "missing required field `email`"),
        (b'{"email": "a@b.c"', None, "malformed JSON"),
        (b'["a@b.c"]', None, "Expected `object`"),
        (b'{"email": "not an email"}', "email", "not an email address"),
        (b'{"email": "@example.com"}', "email", "not an email address"),
    ]
    for body, field, words in cases:
        r = await client.post("/auth/check-email", content=body, headers={"Accept": "application/json"})
        assert r.status_code == 400, (body, r.text)
        err = r.json()
        assert err["code"] == "invalid_input" and words in err["message"], (body, err)
        if field:
            assert err["details"]["field"] == field
    r = await client.post("/auth/check-email", json={"email": "nobody@example.com", "extra": [1, 2]})
    assert r.status_code == 404
    r = await client.post("/auth/register", json={"email": "x@example.com", "verification_code": "12345"},
                          headers={"Accept": "application/json"})
    assert r.status_code == 400 and r.json()["details"]["field"] == "verification_code"
    r = await client.post("/auth/register", json={"email": "x@example.com", "verification_code": 123456},
                          headers={"Accept": "application/json"})
    assert r.status_code == 400 and r.json()["details"]["field"] == "verification_code"


async def test_a_short_password_is_refused_before_the_code_is_spent(client, config):
    code = await request_code(client, config, "short@example.com")
    r = await client.post("/auth/register", json={"email": "short@example.com", "password": "123456789",
                                                   "verification_code": code})
    assert r.status_code == 400 and r.text == "invalid_input: password: must be at least 10 characters"
    r = await client.post("/auth/register", json={"email": "short@example.com", "password": "1234567890",
                                                   "verification_code": code})
    assert r.status_code == 201, r.text


async def test_registering_a_taken_email_is_409_and_spends_no_code(client, config, clock):
    await sign_up(client, config, "taken@example.com")
    clock.advance(60)
    code = await request_code(client, config, "taken@example.com")
    r = await client.post("/auth/register", json={"email": "TAKEN@example.com", "verification_code": code})
    assert r.status_code == 409
    assert r.text.startswith("email_already_registered:")
    r = await client.post("/auth/sessions", json={"email": "taken@example.com", "verification_code": code})
    assert r.status_code == 201, "the code still logs in"


async def test_a_passwordless_account_has_no_password_and_logs_in_by_code(client, config, clock):
    token = await sign_up(client, config, "nopass@example.com", password=None)
    r = await client.post("/auth/check-email", json={"email": "nopass@example.com"})
    assert r.json() == {"hasPassword": False}
    r = await client.post("/auth/sessions", json={"email": "nopass@example.com", "password": PASSWORD})
    assert r.status_code == 401 and r.text.startswith("invalid_credentials:")
    clock.advance(60)
    code = await request_code(client, config, "nopass@example.com")
    r = await client.post("/auth/sessions", json={"email": "nopass@example.com", "verification_code": code})
    assert r.status_code == 201
    second = r.json()["token"]
    assert second != token
    for t in (token, second):
        assert (await client.get("/user", headers=auth(t))).status_code == 200


async def test_the_bearer_prefix_is_accepted_too(client, config):
    token = await sign_up(client, config, "bearer@example.com")
    r = await client.get("/user", headers={"Authorization": f"Bearer {token}"})
    assert r.status_code == 200
    for bad in ("", "Bearer", token.upper(), token[:-1], token + "0", "x" * 32):
        r = await client.get("/user", headers={"Authorization": bad})
        assert r.status_code == 401, bad


async def test_the_outbox_holds_one_complete_message_per_code(client, config, clock):
    await client.post("/auth/verify-email", json={"email": "mail@example.com"})
    clock.advance(61)
    await client.post("/auth/verify-email", json={"email": "mail@example.com"})
    files = sorted(outbox(config).iterdir())
    assert [p.suffix for p in files] == [".eml", ".eml"], "no temporary files are left behind"
    msg = email.message_from_bytes(files[-1].read_bytes(), policy=email.policy.default)
    assert msg["To"] == "mail@example.com" and msg["From"] == "odted@localhost"
    assert "15 minutes" in msg.get_content()
    assert read_code(config, "mail@example.com") in msg["Subject"]


async def test_openapi_lists_the_user_routes_with_their_costs(client):
    text = (await client.get("/openapi.yaml")).text
    for path in ("/auth/check-email", "/auth/verify-email", "/auth/register", "/auth/sessions", "/user"):
        assert f'"{path}":' in text
    assert '"x-rate-limit-cost": 5' in text and '"x-rate-limit-cost": 1' in text
    assert '"FeeSchedule":' in text and '"UserProfile":' in text


async def test_a_settings_change_is_announced_after_it_commits(client, config, services):
    heard = []
    services.users.settings_listeners.append(lambda user_id, settings: heard.append((str(user_id), settings)))
    token = await sign_up(client, config, "listen@example.com")
    me = (await client.get("/user", headers=auth(token))).json()["id"]
    await client.patch("/user", headers=auth(token), json={"slippage": "0.15"})
    await client.patch("/user", headers=auth(token), json={"fee_schedule": CUSTOM_FEES})
    await client.patch("/user", headers=auth(token), json={"slippage": "0.33"})  # refused: no announcement
    assert [(u, str(s.slippage), str(s.fee_schedule.exercise_option)) for u, s in heard] == [
        (me, "0.15", "5"), (me, "0.15", "7.50")]
    settings = await services.users.store.settings(uuid.UUID(me))
    assert settings == heard[-1][1]
