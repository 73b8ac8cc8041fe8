"""/strategies over real HTTP: save (content-addressed, shared, restorable), list, read
(public without a token, private of others 404), patch and unlink."""

import hashlib
import json
import uuid

import httpx
from bots_helpers import SPREAD, save_strategy, spread


async def test_save_returns_the_strategy_object_with_its_content_address(bots_env):
    _, token = await bots_env.user()
    c = bots_env.client(token)
    s = await save_strategy(c)
    assert set(s) == {"id", "source_hash", "config", "description", "generated_description", "summary",
                      "privacy", "is_owner", "created_at", "results", "results_status"}
    uuid.UUID(s["id"])
    assert s["privacy"] == "private" and s["is_owner"] is True
    assert s["results"] is None and s["results_status"] == "not_available"
    assert s["description"] == s["generated_description"] == (
        "Sell 1 30-delta put, buy 1 20-delta put at 10:00; take profit at 50%, exit by 15:55")
    canonical = json.dumps(s["config"], sort_keys=True, separators=(",", ":")).encode()
    assert hashlib.sha256(canonical).hexdigest() == s["source_hash"], "the hash is of the config shown"
    assert s["config"]["entry"] == {"max_entries": 1, "times": ["10:00"]}
    assert s["summary"] == {
        "legs": 2, "contracts": 2, "option_types": ["put"], "strike_methods": ["delta"], "entry_times": ["10:00"],
        "max_entries": 1, "profit_target_pct": "50", "stop_loss_pct": None, "exit_time": "15:55"}


async def test_the_same_config_in_another_spelling_is_the_same_strategy(bots_env):
    _, token = await bots_env.user()
    c = bots_env.client(token)
    first = await save_strategy(c)
    respelled = {
        "exit": {"time": "15:55", "profit_target_pct": "50.0"},
        "entry": {"times": ["10:00"], "max_entries": 1},
        "legs": [
            {"strike": {"value": "0.30", "method": "delta"}, "qty": 1, "type": "put", "direction": "sell"},
            {"qty": 1, "direction": "buy", "type": "put", "strike": {"method": "delta", "value": 0.2}},
        ],
    }
    again = await save_strategy(c, respelled, status=200)
    assert again["id"] == first["id"] and again["source_hash"] == first["source_hash"]
    assert (await c.get("/strategies")).json()["strategies"] == [again]


async def test_two_users_share_the_strategy_through_links_of_their_own(bots_env):
    _, t1 = await bots_env.user()
    _, t2 = await bots_env.user()
    a = await save_strategy(bots_env.client(t1))
    b = await save_strategy(bots_env.client(t2))
    assert a["source_hash"] == b["source_hash"] and a["id"] != b["id"]
    count = await bots_env.db.fetchval("SELECT count(*) FROM strategies")
    assert count == 1


async def test_a_different_config_is_a_different_strategy(bots_env):
    _, token = await bots_env.user()
    c = bots_env.client(token)
    a = await save_strategy(c)
    b = await save_strategy(c, spread(profit_target_pct=40))
    assert a["source_hash"] != b["source_hash"] and a["id"] != b["id"]
    listed = (await c.get("/strategies")).json()["strategies"]
    assert [s["id"] for s in listed] == [b["id"], a["id"]], "most recently saved first"


async def test_an_invalid_config_is_400_invalid_config_naming_every_field_and_creates_nothing(bots_env):
    _, token = await bots_env.user()
    c = bots_env.client(token)
    bad = spread(time="16:30")
    bad["legs"][0]["qty"] = 0
    r = await c.post("/strategies", json={"config": bad})
    assert r.status_code == 400 and r.text.startswith("invalid_config:"), r.text
    assert "legs[0].qty" in r.text and "exit.time" in r.text
    r = await c.post("/strategies", json={"config": bad}, headers={"Accept": "application/json"})
    body = r.json()
    assert body["code"] == "invalid_config"
    assert set(body["details"]["fields"]) == {"legs[0].qty", "exit.time"}
    for config in (None, [], "x", {}, {"legs": [], "entry": {"times": ["10:00"]}}):
        r = await c.post("/strategies", json={} if config is None else {"config": config})
        assert r.status_code == 400 and r.text.startswith("invalid_config:"), (config, r.text)
    assert (await c.get("/strategies")).json() == {"strategies": []}
    assert await bots_env.db.fetchval("SELECT count(*) FROM strategies") == 0


async def test_privacy_and_description_are_checked(bots_env):
    _, token = await bots_env.user()
    c = bots_env.client(token)
    r = await c.post("/strategies", json={"config": SPREAD, "privacy": "secret"})
    assert r.status_code == 400 and r.text.startswith("invalid_input:")
    for description in ("d" * 1001, "nul\x00"):
        r = await c.post("/strategies", json={"config": SPREAD, "description": description})
        assert r.status_code == 400 and r.text.startswith("invalid_input:")
    r = await c.post("/strategies", content=b"not json", headers={"Content-Type": "application/json"})
    assert r.status_code == 400 and r.text.startswith("invalid_input:")


async def test_saving_public_with_a_description(bots_env):
    _, token = await bots_env.user()
    s = await save_strategy(bots_env.client(token), privacy="public", description="my spread")
    assert s["privacy"] == "public" and s["description"] == "my spread"
    assert s["generated_description"].startswith("Sell 1 30-delta put")


async def test_a_public_strategy_is_readable_without_a_token_and_by_others(bots_env):
    _, owner = await bots_env.user()
    _, other = await bots_env.user()
    s = await save_strategy(bots_env.client(owner), privacy="public")
    async with httpx.AsyncClient(base_url=bots_env.url) as anon:
        r = await anon.get(f"/strategies/{s['id']}")
        assert r.status_code == 200, r.text
        assert r.json() == {**s, "is_owner": False}
        r = await anon.get(f"/strategies/{s['id']}", headers={"Authorization": "not-a-token"})
        assert r.status_code == 200 and r.json()["is_owner"] is False
    r = await bots_env.client(other).get(f"/strategies/{s['id']}")
    assert r.status_code == 200 and r.json()["is_owner"] is False
    assert (await bots_env.client(owner).get(f"/strategies/{s['id']}")).json()["is_owner"] is True


async def test_a_private_strategy_of_someone_else_is_404_with_or_without_a_token(bots_env):
    _, owner = await bots_env.user()
    _, other = await bots_env.user()
    s = await save_strategy(bots_env.client(owner))
    async with httpx.AsyncClient(base_url=bots_env.url) as anon:
        r = await anon.get(f"/strategies/{s['id']}")
        assert r.status_code == 404 and r.text.startswith("not_found:")
        assert (await anon.get("/strategies/not-a-uuid")).status_code == 404
        assert (await anon.get(f"/strategies/{uuid.uuid4()}")).status_code == 404
    assert (await bots_env.client(other).get(f"/strategies/{s['id']}")).status_code == 404
    c = bots_env.client(other)
    assert (await c.patch(f"/strategies/{s['id']}", json={"privacy": "public"})).status_code == 404
    assert (await c.delete(f"/strategies/{s['id']}")).status_code == 404
    assert (await c.get("/strategies")).json() == {"strategies": []}


async def test_a_public_strategy_of_someone_else_cannot_be_changed_or_unlinked(bots_env):
    _, owner = await bots_env.user()
    _, other = await bots_env.user()
    s = await save_strategy(bots_env.client(owner), privacy="public")
    c = bots_env.client(other)
    assert (await c.patch(f"/strategies/{s['id']}", json={"description": "mine"})).status_code == 404
    assert (await c.delete(f"/strategies/{s['id']}")).status_code == 404
    assert (await bots_env.client(owner).get(f"/strategies/{s['id']}")).json()["description"] == s["description"]


async def test_cloning_a_public_strategy_shares_its_hash(bots_env):
    _, owner = await bots_env.user()
    _, other = await bots_env.user()
    s = await save_strategy(bots_env.client(owner), privacy="public")
    async with httpx.AsyncClient(base_url=bots_env.url) as anon:
        config = (await anon.get(f"/strategies/{s['id']}")).json()["config"]
    clone = await save_strategy(bots_env.client(other), config)
    assert clone["source_hash"] == s["source_hash"] and clone["id"] != s["id"]
    assert clone["privacy"] == "private" and clone["is_owner"] is True


async def test_listing_and_changing_need_a_token(bots_env):
    async with httpx.AsyncClient(base_url=bots_env.url) as anon:
        assert (await anon.get("/strategies")).status_code == 401
        assert (await anon.post("/strategies", json={"config": SPREAD})).status_code == 401
        assert (await anon.patch(f"/strategies/{uuid.uuid4()}", json={"privacy": "public"})).status_code == 401
        assert (await anon.delete(f"/strategies/{uuid.uuid4()}")).status_code == 401


async def test_patch_changes_description_and_privacy_only(bots_env):
    _, token = await bots_env.user()
    c = bots_env.client(token)
    s = await save_strategy(c)
    r = await c.patch(f"/strategies/{s['id']}", json={"description": "my spread"})
    assert r.status_code == 200 and r.json()["description"] == "my spread" and r.json()["privacy"] == "private"
    r = await c.patch(f"/strategies/{s['id']}", json={"privacy": "public"})
    assert r.status_code == 200 and r.json()["privacy"] == "public" and r.json()["description"] == "my spread"
    r = await c.patch(f"/strategies/{s['id']}", json={"description": None})
    assert r.json()["description"] == s["generated_description"]
    assert r.json()["config"] == s["config"] and r.json()["source_hash"] == s["source_hash"]
    r = await c.patch(f"/strategies/{s['id']}", json={"config": spread(profit_target_pct=10)})
    assert r.status_code == 400 and r.text.startswith("invalid_input:"), "the logic is immutable"
    for body in ({"privacy": "everyone"}, {"description": "x" * 1001}, {"privacy": None}):
        r = await c.patch(f"/strategies/{s['id']}", json=body)
        assert r.status_code == 400 and r.text.startswith("invalid_input:"), body
    assert (await c.patch(f"/strategies/{uuid.uuid4()}", json={"privacy": "public"})).status_code == 404


async def test_resaving_a_live_strategy_applies_the_fields_sent(bots_env):
    _, token = await bots_env.user()
    c = bots_env.client(token)
    s = await save_strategy(c, description="mine")
    again = await save_strategy(c, status=200, privacy="public")
    assert again["id"] == s["id"] and again["privacy"] == "public" and again["description"] == "mine"


async def test_delete_unlinks_and_saving_again_restores_the_same_id(bots_env):
    _, token = await bots_env.user()
    _, other = await bots_env.user()
    c = bots_env.client(token)
    s = await save_strategy(c, privacy="public", description="mine")
    theirs = await save_strategy(bots_env.client(other))
    r = await c.delete(f"/strategies/{s['id']}")
    assert r.status_code == 204 and r.content == b""
    assert (await c.get(f"/strategies/{s['id']}")).status_code == 404
    assert (await c.delete(f"/strategies/{s['id']}")).status_code == 404
    assert (await c.patch(f"/strategies/{s['id']}", json={"privacy": "private"})).status_code == 404
    assert (await c.get("/strategies")).json() == {"strategies": []}
    async with httpx.AsyncClient(base_url=bots_env.url) as anon:
        assert (await anon.get(f"/strategies/{s['id']}")).status_code == 404, "an unlinked public link is gone"
    r = await bots_env.client(other).get(f"/strategies/{theirs['id']}")
    assert r.status_code == 200 and r.json()["source_hash"] == s["source_hash"], "the shared strategy survives"
    restored = await save_strategy(c)
    assert restored["id"] == s["id"] and restored["source_hash"] == s["source_hash"]
    assert restored["privacy"] == "private" and restored["description"] == s["generated_description"], (
        "a restored link takes the metadata of the new save")
