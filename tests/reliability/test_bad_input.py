"""Hand-written bad input for the trading and account routes (issue 8, item 4): each is a
clear 4xx with a code, and nothing changed — neither in the database nor in what the
API shows."""

from __future__ import annotations

import json
from contextlib import asynccontextmanager
from typing import Any, AsyncIterator

import pytest

from bots_helpers import SPREAD
from live_helpers import DAY, leg
from reliability_helpers import World, near_money, order_body, populate, snapshot

FEES = {
    "buy_equity": "0", "sell_equity": "0", "buy_to_open_option": "1", "sell_to_open_option": "1",
    "buy_to_close_option": "1", "sell_to_close_option": "1", "exercise_option": "1",
}


def body_routes(w: World, strike: int) -> list[tuple[str, str, dict[str, Any]]]:
    """(method, path, a valid body) of every trading and account route that takes a body."""
    s = f"/accounts/{w.account_id}/sessions/{w.session_id}"
    order = order_body(strike + 100)
    return [
        ("POST", "/live", {"starting_capital": "5000"}),
        ("POST", "/live/orders", order),
        ("POST", "/live/orders/dry-run", order),
        ("PUT", "/live/orders", {**order, "price": "0.10", "order_id": w.live_order_id}),
        ("POST", "/accounts", {"name": "another", "starting_capital": "5000"}),
        ("PATCH", f"/accounts/{w.account_id}", {"name": "renamed"}),
        ("POST", f"{s}/orders", order),
        ("POST", f"{s}/orders/dry-run", order),
        ("PUT", f"{s}/orders", {**order, "price": "0.10", "order_id": w.session_order_id}),
        ("PATCH", "/user", {"slippage": "0.10"}),
        ("POST", "/strategies", {"config": SPREAD}),
        ("PATCH", f"/strategies/{w.strategy_id}", {"privacy": "public"}),
        ("POST", "/bots", {"strategy_id": w.strategy_id, "name": "b2", "starting_capital": "5000"}),
        ("PATCH", f"/bots/{w.bot_id}", {"name": "renamed"}),
    ]


async def api_state(c, w: World) -> dict[str, Any]:
    """What the API shows of `w`'s objects (the marks move with no tick, so they are stable)."""
    s = f"/accounts/{w.account_id}/sessions/{w.session_id}"
    paths = ["/live", "/live/orders", "/live/positions", "/live/transactions", "/accounts", f"{s}/orders",
             f"{s}/positions", "/strategies", "/bots", f"/bots/{w.bot_id}", "/user"]
    out = {}
    for p in paths:
        r = await c.get(p)
        assert r.status_code == 200, (p, r.text)
        body = r.json()
        if p == "/user":
            body.pop("usage_percent")
        out[p] = body
    return out


@asynccontextmanager
async def nothing_changes(env, w: World) -> AsyncIterator[None]:
    """Assert that the database and the API's view of `w` are the same after the block."""
    async with env.client(w.token) as c:
        await env.service.history.flush()  # what the last tick left for the writer
        db_before, api_before = await snapshot(env.db), await api_state(c, w)
        yield
        await env.service.history.flush()
        db_after, api_after = await snapshot(env.db), await api_state(c, w)
    changed = [t for t in db_before if db_before[t] != db_after.get(t)]
    assert not changed, f"tables changed: {changed}"
    assert api_after == api_before


def assert_refused(r, status: int, code: str | None = None) -> None:
    assert r.status_code == status, (r.request.method, r.request.url, r.status_code, r.text[:300])
    if code is not None:
        assert r.text.startswith(f"{code}: "), r.text[:300]
    else:
        assert r.text.split(":")[0].isidentifier(), r.text[:300]  # `<code>: <message>`


@pytest.fixture
async def world(live_env) -> World:
    return await populate(live_env)


async def test_a_body_over_the_size_limit_is_413_body_too_large(live_env, world):
    limit = live_env.services.config.server.max_body_bytes
    huge = json.dumps({"name": "x" * limit, "starting_capital": "5000"}).encode()
    async with nothing_changes(live_env, world), live_env.client(world.token) as c:
        for method, path, _ in body_routes(world, near_money(live_env)):
            r = await c.request(method, path, content=huge, headers={"Content-Type": "application/json"})
            assert_refused(r, 413, "body_too_large")

            async def chunks():  # no Content-Length: the limit holds while the body streams in
                for i in range(0, len(huge), 65536):
                    yield huge[i:i + 65536]

            r = await c.request(method, path, content=chunks(), headers={"Content-Type": "application/json"})
            assert_refused(r, 413, "body_too_large")
        # the connection is still good for the next request
        assert (await c.get("/live")).status_code == 200


def nested(depth: int, inner: str = '"x"') -> str:
    return "[" * depth + inner + "]" * depth


@pytest.mark.parametrize("depth", [64, 100_000])
async def test_deeply_nested_json_is_400(live_env, world, depth):
    deep = nested(depth)
    async with nothing_changes(live_env, world), live_env.client(world.token) as c:
        for method, path, good in body_routes(world, near_money(live_env)):
            # in every field; in a field the body does not have only where the nesting is too deep to
            # read (elsewhere an unknown field is ignored, and the request would succeed)
            for field in [*good, *(["unknown_field"] if depth > 1000 else [])]:
                text = json.dumps({**good, field: "@"}).replace('"@"', deep)
                r = await c.request(method, path, content=text.encode(), headers={"Content-Type": "application/json"})
                assert_refused(r, 400)
                if field == "unknown_field":
                    assert "nested too deeply" in r.text or "unknown field" in r.text, r.text[:300]


async def test_a_body_that_is_not_json_by_its_content_type_is_415(live_env, world):
    async with nothing_changes(live_env, world), live_env.client(world.token) as c:
        for method, path, good in body_routes(world, near_money(live_env)):
            raw = json.dumps(good).encode()
            for ctype in ("text/plain", "application/x-www-form-urlencoded", "multipart/form-data; boundary=x",
                          "application/xml", ""):
                r = await c.request(method, path, content=raw, headers={"Content-Type": ctype})
                assert_refused(r, 415, "unsupported_media_type")


MALFORMED = [
    b"", b"   ", b"\xff\xfe\x00{", b'{"name": "\xc3\x28"}', b'{"zz": "\xed\xa0\x80"}', b"\xef\xbb\xbf{}", b"null",
    b"[]", b'"x"', b"{", b'{"a": 1}{"b": 2}', b"NaN", b'{"starting_capital": "1"' + b" " * 10 + b"\x00}",
    b'{"name": "\\ud800"}', b'{"config": {"legs": "\xc3\x28"}}', b'{"reprice": {"opening": "\xc3\x28"}}',
]


async def test_empty_malformed_and_non_utf8_bodies_are_400(live_env, world):
    async with nothing_changes(live_env, world), live_env.client(world.token) as c:
        for method, path, _ in body_routes(world, near_money(live_env)):
            for raw in MALFORMED:
                r = await c.request(method, path, content=raw, headers={"Content-Type": "application/json"})
                assert_refused(r, 400)


BAD_NUMBERS = ["-1", "-0.05", "NaN", "-NaN", "sNaN", "Infinity", "-Infinity", "inf", "1e999", "1E+999999999",
               "1e-999", "9" * 40, "0." + "0" * 39 + "5", "1" * 40 + ".05", "", " ", "1,000", "0x10", "1/2"]


async def test_bad_numbers_in_money_and_quantity_fields_are_400(live_env, world):
    strike = near_money(live_env)
    s = f"/accounts/{world.account_id}/sessions/{world.session_id}"
    order = order_body(strike + 100)
    cases: list[tuple[str, str, dict[str, Any], str]] = []  # method, path, body, field to spoil
    for path in ("/live/orders", "/live/orders/dry-run", f"{s}/orders", f"{s}/orders/dry-run"):
        cases += [("POST", path, order, "price")]
        cases += [("POST", path, {"type": "stop", "stop_trigger": "1.00", "price_effect": "debit",
                                  "legs": [leg(strike, "C", "buy to open")]}, "stop_trigger")]
        cases += [("POST", path, order, "legs.0.quantity")]
    cases += [("PUT", "/live/orders", {**order, "order_id": world.live_order_id}, "price")]
    cases += [("PUT", f"{s}/orders", {**order, "order_id": world.session_order_id}, "price")]
    cases += [("POST", "/accounts", {"name": "n", "starting_capital": "5000"}, "starting_capital")]
    cases += [("PATCH", f"/accounts/{world.account_id}", {"starting_capital": "5000"}, "starting_capital")]
    cases += [("PATCH", "/user", {"slippage": "0.05"}, "slippage")]
    cases += [("PATCH", "/user", {"fee_schedule": FEES}, "fee_schedule.exercise_option")]
    cases += [("POST", "/bots", {"strategy_id": world.strategy_id, "name": "b", "starting_capital": "5000"},
               "starting_capital")]
    cases += [("PATCH", f"/bots/{world.bot_id}", {"max_daily_loss_pct": "0.05"}, "max_daily_loss_pct")]
    cases += [("PATCH", f"/bots/{world.bot_id}", {"reprice": {"opening": {"max_concession": "0.10"}}},
               "reprice.opening.max_concession")]
    _, other = await live_env.user()  # world's /live is taken: POST /live would be 409 whatever the capital
    async with nothing_changes(live_env, world), live_env.client(world.token) as c:
        async with live_env.client(other) as fresh:
            for bad in BAD_NUMBERS:
                r = await fresh.post("/live", json={"starting_capital": bad})
                assert_refused(r, 400)
                r = await fresh.post("/live", content=f'{{"starting_capital": {bad}}}'.encode(),
                                     headers={"Content-Type": "application/json"})
                assert_refused(r, 400)
            assert (await fresh.get("/live")).json() is None
        for method, path, good, field in cases:
            for bad in BAD_NUMBERS:
                body = spoil(good, field, bad)
                r = await c.request(method, path, json=body)
                assert_refused(r, 400)
                if bad and bad.strip() and not bad.startswith(("N", "s", "I", "-N", "-I", "i", "0x")) \
                        and "," not in bad and "/" not in bad:
                    r = await c.request(method, path, content=json.dumps(body).replace(f'"{bad}"', bad).encode(),
                                        headers={"Content-Type": "application/json"})
                    assert_refused(r, 400)


def spoil(body: dict[str, Any], field: str, value: Any) -> dict[str, Any]:
    """`body` with the value at the dotted `field` (list indexes as numbers) replaced."""
    body = json.loads(json.dumps(body))
    *parents, last = field.split(".")
    node: Any = body
    for p in parents:
        node = node[int(p)] if isinstance(node, list) else node[p]
    node[int(last) if isinstance(node, list) else last] = value
    return body


BAD_SYMBOLS = [
    "", "SPXW", "SPXW 250115C05950000", "SPXW   250115C05950000", "spxw  250115c05950000",
    "SPXW  251315C05950000", "SPXW  250230C05950000", "SPXW  250115X05950000", "SPXW  250115C0595000A",
    "AAPL  250115C00150000", "SPX", "SPXW  250115C05950000\x00", "SPXW\u00a0\u00a0250115C05950000",
    "ＳＰＸＷ  250115C05950000", "SPXW  250115C-5950000", "SPXW  250115C99999999", "SPXW  250115C00000000",
    "SPXW  991231C05950000", "SPXW  000101C05950000", "x" * 10_000, "SPXW  250115C05950000" * 2,
]


async def test_bad_osi_symbols_are_400(live_env, world):
    s = f"/accounts/{world.account_id}/sessions/{world.session_id}"
    async with nothing_changes(live_env, world), live_env.client(world.token) as c:
        for path in ("/live/orders", "/live/orders/dry-run", f"{s}/orders", f"{s}/orders/dry-run"):
            for symbol in BAD_SYMBOLS:
                for kind in ("market", "limit"):
                    body = {"type": kind, "legs": [{"instrument": symbol, "quantity": "1", "action": "buy to open"}]}
                    if kind == "limit":
                        body |= {"price": "1.00", "price_effect": "debit"}
                    r = await c.post(path, json=body)
                    assert_refused(r, 400)
                    assert r.text.startswith(("invalid_instrument:", "unsupported_instrument:",
                                              "market_data_unavailable:", "invalid_input: strings may not contain")), r.text


NOT_UUIDS = ["not-a-uuid", "1", "00000000-0000-0000-0000-00000000000g", "%00", "%2e%2e", "null", "x" * 2000,
             "00000000-0000-0000-0000-000000000000-0", "%F0%9F%98%80", "'; DROP TABLE orders; --"]


async def test_path_ids_that_are_not_uuids_are_404(live_env, world):
    a, s, b = world.account_id, world.session_id, world.bot_id
    templates = [
        ("GET", "/live/orders/{}"), ("DELETE", "/live/orders/{}"),
        ("GET", "/accounts/{}"), ("PATCH", "/accounts/{}"), ("DELETE", "/accounts/{}"),
        ("GET", "/accounts/{}/sessions"), ("POST", "/accounts/{}/sessions"), ("GET", "/accounts/{}/sessions/head"),
        ("GET", "/accounts/{}/sessions/current"),
        ("GET", f"/accounts/{a}/sessions/{{}}"), ("DELETE", f"/accounts/{a}/sessions/{{}}"),
        ("GET", f"/accounts/{a}/sessions/{{}}/orders"), ("POST", f"/accounts/{a}/sessions/{{}}/orders"),
        ("GET", f"/accounts/{a}/sessions/{s}/orders/{{}}"), ("DELETE", f"/accounts/{a}/sessions/{s}/orders/{{}}"),
        ("GET", "/strategies/{}"), ("PATCH", "/strategies/{}"), ("DELETE", "/strategies/{}"),
        ("GET", "/bots/{}"), ("PATCH", "/bots/{}"), ("DELETE", "/bots/{}"), ("GET", "/bots/{}/summary"),
        ("GET", "/bots/{}/sessions"), ("POST", "/bots/{}/sessions"),
        ("GET", f"/bots/{b}/sessions/{{}}"), ("DELETE", f"/bots/{b}/sessions/{{}}"),
        ("POST", f"/bots/{b}/sessions/{{}}/cancel-all-orders"), ("GET", f"/bots/{b}/sessions/{{}}/decision-log"),
        ("GET", f"/bots/{b}/sessions/{{}}/financials"), ("GET", f"/bots/{b}/sessions/{{}}/orders"),
    ]
    body = {"name": "x", "privacy": "public", "type": "market", "legs": [leg(near_money(live_env), "C", "buy to open")]}
    async with nothing_changes(live_env, world), live_env.client(world.token) as c:
        for method, template in templates:
            for bad in NOT_UUIDS:
                r = await c.request(method, template.format(bad), json=body if method in ("POST", "PATCH") else None)
                assert_refused(r, 404)


async def test_bad_query_values_are_400(live_env, world):
    s = f"/accounts/{world.account_id}/sessions/{world.session_id}"
    async with nothing_changes(live_env, world), live_env.client(world.token) as c:
        for path in ("/live/history", f"{s}/history", f"/bots/{world.bot_id}/sessions/{world.bot_session_id}/financials"):
            for value in ("0", "3601", "-1", "1.5", "\u00b2", "\u0663", "1" * 5000, "", "%FF", "1e3"):
                assert_refused(await c.get(path, params={"interval": value}), 400, "invalid_input")
        r = await c.delete(f"/bots/{world.bot_id}/sessions/{world.bot_session_id}", params={"flatten": "yes please"})
        assert_refused(r, 400, "invalid_input")


def test_out_of_range_numbers_are_denied_by_the_domain_not_raised():
    from decimal import Decimal

    from odted.domain.orders import OrderLeg, OrderRequest, OrderDenied
    from odted.domain.tickets import parse_order

    call = leg(6000, "C", "buy to open")["instrument"]
    for price in ("1e999", "1E+999999999", "9" * 40, "100000", "1e-999", "0." + "0" * 39 + "5"):
        for kind, field in (("limit", "price"), ("stop", "stop_trigger")):
            request = OrderRequest(type=kind, legs=(OrderLeg(call, Decimal(1), "buy to open"),),
                                   price_effect="debit", **{field: Decimal(price)})
            denied = parse_order(request)
            assert isinstance(denied, OrderDenied) and denied.field == field, (price, denied)
    for quantity in ("1e999", "1E+999999999", "100001", "9" * 40):
        request = OrderRequest(type="market", legs=(OrderLeg(call, Decimal(quantity), "buy to open"),))
        denied = parse_order(request)
        assert isinstance(denied, OrderDenied) and denied.code == "invalid_quantity", (quantity, denied)


async def test_unknown_query_parameters_are_400_naming_them(live_env, world):
    b, bs = world.bot_id, world.bot_session_id
    async with nothing_changes(live_env, world), live_env.client(world.token) as c:
        for method, path in [("GET", "/live"), ("GET", "/live/orders"), ("GET", "/live/history"), ("GET", "/accounts"),
                             ("GET", "/user"), ("POST", "/live/orders/dry-run"), ("DELETE", f"/bots/{b}/sessions/{bs}")]:
            for query in ("flaten=true", "intervall=60", "x", "interval=1&interval=2&foo=1"):
                r = await c.request(method, f"{path}?{query}")
                assert_refused(r, 400, "invalid_input")
                assert "query parameter" in r.text
        # a misspelt flatten must not kill the session unflattened: nothing happened
        assert (await c.get(f"/bots/{b}/sessions/{bs}")).json()["status"] not in ("killing", "killed")


async def test_extremely_long_strings_are_400(live_env, world):
    long = "n" * 200_000
    s = f"/accounts/{world.account_id}/sessions/{world.session_id}"
    strike = near_money(live_env)
    async with nothing_changes(live_env, world), live_env.client(world.token) as c:
        for method, path, body in [
            ("POST", "/accounts", {"name": long, "starting_capital": "5000"}),
            ("POST", "/accounts", {"name": "ok", "starting_capital": "5000", "description": long}),
            ("PATCH", f"/accounts/{world.account_id}", {"name": long}),
            ("PATCH", f"/accounts/{world.account_id}", {"description": long}),
            ("POST", "/bots", {"strategy_id": world.strategy_id, "name": long, "starting_capital": "5000"}),
            ("PATCH", f"/bots/{world.bot_id}", {"description": long}),
            ("PATCH", f"/strategies/{world.strategy_id}", {"description": long}),
            ("POST", "/strategies", {"config": SPREAD, "description": long}),
            ("POST", "/live/orders", {"type": long, "legs": [leg(strike, "C", "buy to open")]}),
            ("POST", f"{s}/orders", {"type": "market", "legs": [leg(strike, "C", long)]}),
            ("POST", "/live/orders", {"type": "market", "underlying": long, "legs": [leg(strike, "C", "buy to open")]}),
            ("POST", "/live/orders", {"type": "limit", "price": "1.00", "price_effect": long,
                                      "legs": [leg(strike, "C", "buy to open")]}),
            ("POST", "/live/orders", {"type": "market", "client_order_id": long, "legs": [leg(strike, "C", "buy to open")]}),
        ]:
            assert_refused(await c.request(method, path, json=body), 400)

        # NUL (which PostgreSQL text cannot hold) and other control characters
        for method, path, body in [
            ("POST", "/accounts", {"name": "a\u0000b", "starting_capital": "5000"}),
            ("POST", "/accounts", {"name": "ok", "starting_capital": "5000", "description": "a\u0000b"}),
            ("PATCH", f"/accounts/{world.account_id}", {"description": "a\u0000b"}),
            ("POST", "/live", {"starting_capital": "5000", "description": "a\u0000b"}),
            ("POST", "/bots", {"strategy_id": world.strategy_id, "name": "a\u0000", "starting_capital": "5000"}),
            ("POST", "/bots", {"strategy_id": world.strategy_id, "name": "ok", "starting_capital": "5000",
                               "description": "a\u0000b"}),
            ("PATCH", f"/bots/{world.bot_id}", {"description": "a\u0000b"}),
            ("PATCH", f"/strategies/{world.strategy_id}", {"description": "a\u0000b"}),
            ("POST", "/strategies", {"config": SPREAD, "description": "a\u0000b"}),
        ]:
            assert_refused(await c.request(method, path, json=body), 400)
        market = {"type": "market", "legs": [leg(strike, "C", "buy to open")]}
        for key in ("k" * 256, "k" * 8000, "k" * 20_000, "a\tb"):
            r = await c.post("/live/orders", json=market, headers={"Idempotency-Key": key})
            assert_refused(r, 400, "invalid_idempotency_key")
        async with live_env.client(world.token) as fresh:  # headers past what the server reads: no app, no code
            r = await fresh.post("/live/orders", json=market, headers={"Idempotency-Key": "k" * 200_000})
            assert r.status_code == 431
        for email in ("a" * 300 + "@example.com", "x@" + "e" * 100_000):
            async with live_env.client() as anon:
                r = await anon.post("/auth/check-email", json={"email": email})
                assert_refused(r, 400)
                r = await anon.post("/auth/sessions", json={"email": email, "password": "p" * 100_000})
                assert_refused(r, 400)
