"""`odted users add/list/token` on a state dir, then a daemon on it honours what they made."""

import subprocess

import httpx
import pytest

from users_helpers import ODTED, PASSWORD, ROOT

pytestmark = pytest.mark.slow


def odted(*args: str, stdin: str | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run([ODTED, *args], input=stdin, capture_output=True, text=True, cwd=ROOT, timeout=60)


def test_operator_cli_makes_accounts_and_tokens_a_daemon_accepts(tmp_path, daemon_factory):
    state = tmp_path / "state"
    s = str(state)
    added = odted("users", "add", " Ops@Example.com ", "--password-stdin", "--state-dir", s, stdin=PASSWORD + "\n")
    assert added.returncode == 0, added.stderr
    ops_id, ops_email = added.stdout.split()
    assert ops_email == "ops@example.com"
    assert odted("users", "add", "viewer@example.com", "--state-dir", s).returncode == 0

    again = odted("users", "add", "OPS@example.com", "--state-dir", s)
    assert again.returncode == 1
    assert "odted: email_already_registered:" in again.stderr

    listed = odted("users", "list", "--state-dir", s)
    assert listed.returncode == 0
    rows = [line.split() for line in listed.stdout.splitlines()]
    assert [(r[1], r[2]) for r in rows] == [("ops@example.com", "password"), ("viewer@example.com", "passwordless")]
    assert rows[0][0] == ops_id

    minted = odted("users", "token", "ops@example.com", "--state-dir", s)
    assert minted.returncode == 0, minted.stderr
    token = minted.stdout.strip()
    assert len(token) == 32 and int(token, 16) >= 0
    assert odted("users", "token", "nobody@example.com", "--state-dir", s).returncode == 1

    d = daemon_factory(state, env={"ODTED_AUTH_STATIC_TOKENS": '["operator-secret"]'}).start()
    r = httpx.get(f"{d.url}/user", headers={"Authorization": token})
    assert r.status_code == 200, r.text
    assert r.json()["id"] == ops_id and r.json()["email"] == "ops@example.com"
    r = httpx.post(f"{d.url}/auth/sessions", json={"email": "ops@example.com", "password": PASSWORD})
    assert r.status_code == 201, "the password read from stdin (less its newline) logs in"
    r = httpx.get(f"{d.url}/user", headers={"Authorization": "operator-secret"})
    assert r.status_code == 200 and r.json()["email"] == "operator@localhost"
    r = httpx.delete(f"{d.url}/auth/sessions", headers={"Authorization": token})
    assert r.status_code == 204
    assert httpx.get(f"{d.url}/user", headers={"Authorization": token}).status_code == 401
    assert d.terminate() == 0
