"""Rate limits: the user's credit bucket, the client address's bucket, route costs."""

import pytest

from odted.api.ratelimit import CreditBuckets, retry_after_header
from odted.api.routes import Api
from users_fixtures import clock, config, config_overrides, services  # noqa: F401 - fixtures
from users_helpers import auth, sign_up

SMALL_USER_BUCKET = {"ratelimit.user_capacity": 10, "ratelimit.user_refill_per_second": 0.5}


@pytest.mark.parametrize("config_overrides", [SMALL_USER_BUCKET])
async def test_the_user_bucket_empties_to_429_and_refills(client, config, clock):
    token = await sign_up(client, config, "busy@example.com")
    seen = []
    for _ in range(10):
        r = await client.get("/user", headers=auth(token))
        assert r.status_code == 200
        seen.append(r.json()["usage_percent"])
    assert seen == [10, 20, 30, 40, 50, 60, 70, 80, 90, 100], "usage_percent moves with the bucket"

    r = await client.get("/user", headers=auth(token))
    assert r.status_code == 429
    assert r.text.startswith("rate_limited:")
    assert r.headers["Retry-After"] == "2"  # one credit at 0.5 per second

    clock.advance(2)
    r = await client.get("/user", headers=auth(token))
    assert r.status_code == 200 and r.json()["usage_percent"] == 100
    clock.advance(20)
    assert (await client.get("/user", headers=auth(token))).json()["usage_percent"] == 10


@pytest.mark.parametrize("config_overrides", [SMALL_USER_BUCKET])
async def test_each_user_has_a_bucket_of_their_own(client, config):
    a = await sign_up(client, config, "a@example.com")
    b = await sign_up(client, config, "b@example.com")
    for _ in range(10):
        await client.get("/user", headers=auth(a))
    assert (await client.get("/user", headers=auth(a))).status_code == 429
    r = await client.get("/user", headers=auth(b))
    assert r.status_code == 200 and r.json()["usage_percent"] == 10


@pytest.mark.parametrize("config_overrides", [{"ratelimit.client_capacity": 3, "ratelimit.client_refill_per_second": 1}])
async def test_requests_without_a_token_are_limited_per_client_address(client, clock):
    for _ in range(3):
        assert (await client.post("/auth/check-email", json={"email": "x@example.com"})).status_code == 404
    r = await client.post("/auth/check-email", json={"email": "x@example.com"})
    assert r.status_code == 429 and r.headers["Retry-After"] == "1"
    r = await client.post("/auth/verify-email", json={"email": "x@example.com"})
    assert r.status_code == 429 and r.headers["Retry-After"] == "3", "verify-email costs 5, capped at capacity"
    assert (await client.get("/health")).status_code == 200, "operational routes are free"
    clock.advance(1)
    assert (await client.post("/auth/check-email", json={"email": "x@example.com"})).status_code == 404


@pytest.mark.parametrize("config_overrides", [{"ratelimit.client_capacity": 3, "ratelimit.client_refill_per_second": 1}])
async def test_guessing_tokens_is_charged_to_the_client_address(client):
    for i in range(3):
        assert (await client.get("/user", headers=auth(f"{i:032x}"))).status_code == 401
    assert (await client.get("/user", headers=auth("f" * 32))).status_code == 429


def test_a_bucket_refills_continuously_up_to_its_capacity():
    now = [0.0]
    b = CreditBuckets(10, 2, clock=lambda: now[0])
    assert b.take("k", 4) == 0.0 and b.level("k") == 6
    assert b.take("k", 7) == pytest.approx(0.5)
    assert b.level("k") == 6, "a refused take takes nothing"
    now[0] += 0.5
    assert b.take("k", 7) == 0.0 and b.level("k") == 0
    now[0] += 100
    assert b.level("k") == 10 and b.usage_percent("k") == 0
    assert b.take("k", 25) == 0.0, "a cost above the capacity is taken from a full bucket"
    assert b.usage_percent("k") == 100


def test_retry_after_is_whole_seconds_never_zero():
    assert retry_after_header(0.01) == {"Retry-After": "1"}
    assert retry_after_header(2.0) == {"Retry-After": "2"}
    assert retry_after_header(2.2) == {"Retry-After": "3"}


def test_route_costs_default_to_one_with_a_token_and_free_without():
    from quart import Quart

    api = Api(Quart("t"))

    async def h():  # pragma: no cover
        return ""

    api.route("GET", "/a", summary="a")(h)
    api.route("GET", "/b", summary="b", auth=False)(h)
    api.route("GET", "/c", summary="c", cost=5)(h)
    api.route("POST", "/d", summary="d", auth=False, cost=2)(h)
    assert [r.cost for r in api.routes] == [1, 0, 5, 2]
