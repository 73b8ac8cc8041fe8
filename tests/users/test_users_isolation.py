"""One user never sees or changes another's account; secrets are not stored in clear."""

from users_fixtures import clock, config, config_overrides, services  # noqa: F401 - fixtures
from users_helpers import PASSWORD, auth, read_code, request_code, sign_up

FEES = {
    "buy_equity": "0.001", "sell_equity": "0.005", "buy_to_open_option": "2", "sell_to_open_option": "2",
    "buy_to_close_option": "0.25", "sell_to_close_option": "0.25", "exercise_option": "7.5",
}


async def test_user_b_never_sees_or_changes_user_a(client, config):
    a = await sign_up(client, config, "alice@example.com")
    b = await sign_up(client, config, "bob@example.com")
    assert (await client.patch("/user", headers=auth(a), json={"fee_schedule": FEES, "slippage": "0.25"})).status_code == 204

    async def profile(token):
        body = (await client.get("/user", headers=auth(token))).json()
        del body["usage_percent"]
        return body

    alice = await profile(a)
    bob = (await client.get("/user", headers=auth(b))).json()
    assert bob["email"] == "bob@example.com" and bob["id"] != alice["id"]
    assert bob["fee_schedule"]["exercise_option"] == "5" and bob["slippage"] == "0.05"
    assert "alice" not in str(bob) and alice["id"] not in str(bob)

    assert (await client.patch("/user", headers=auth(b), json={"fee_schedule": None, "slippage": "0.5"})).status_code == 204
    assert await profile(a) == alice, "B's patch touched only B"

    assert (await client.delete("/auth/sessions", headers=auth(b))).status_code == 204
    assert await profile(a) == alice, "B's logout touched only B"


async def test_a_code_sent_to_one_email_does_not_work_for_another(client, config):
    code = await request_code(client, config, "alice@example.com")
    await request_code(client, config, "mallory@example.com")
    r = await client.post("/auth/register", json={"email": "mallory@example.com", "verification_code": code})
    if code != read_code(config, "mallory@example.com"):
        assert r.status_code == 401
    r = await client.post("/auth/register", json={"email": "alice@example.com", "verification_code": code})
    assert r.status_code == 201


async def test_tokens_passwords_and_codes_are_nowhere_in_the_database_in_clear(client, config, db):
    tokens = [await sign_up(client, config, f"user{i}@example.com") for i in range(2)]
    r = await client.post("/auth/sessions", json={"email": "user0@example.com", "password": PASSWORD})
    tokens.append(r.json()["token"])
    await client.post("/auth/verify-email", json={"email": "pending@example.com"})
    pending_code = read_code(config, "pending@example.com")
    secrets = [*tokens, PASSWORD]

    async def scan(conn):
        cols = await conn.fetch(
            "SELECT table_name, column_name, data_type FROM information_schema.columns"
            " WHERE table_schema = 'public' ORDER BY table_name, ordinal_position")
        hits, scanned = [], 0
        for c in cols:
            table, column = c["table_name"], c["column_name"]
            for secret in secrets:
                if c["data_type"] == "bytea":
                    sql = f'SELECT count(*) FROM "{table}" WHERE position($1::bytea in "{column}") > 0'
                    n = await conn.fetchval(sql, secret.encode())
                else:
                    sql = f'SELECT count(*) FROM "{table}" WHERE "{column}"::text LIKE $1'
                    n = await conn.fetchval(sql, f"%{secret}%")
                scanned += 1
                if n:
                    hits.append((table, column, secret))
        stored = await conn.fetchrow("SELECT * FROM verification_codes WHERE email = 'pending@example.com'")
        return hits, scanned, [str(v) for v in stored.values()]

    hits, scanned, code_row = await db.run(scan)
    assert scanned > 20
    assert hits == []
    assert not any(pending_code in v for v in code_row)


async def test_an_operator_token_acts_as_the_operator_account_and_cannot_log_out(client, services):
    await services.users.add_operator_tokens(["operator-secret"])
    r = await client.get("/user", headers=auth("operator-secret"))
    assert r.status_code == 200 and r.json()["email"] == "operator@localhost"
    r = await client.delete("/auth/sessions", headers=auth("operator-secret"))
    assert r.status_code == 403 and r.text.startswith("static_token:")
    r = await client.post("/auth/check-email", json={"email": "operator@localhost"})
    assert r.json() == {"hasPassword": False}
