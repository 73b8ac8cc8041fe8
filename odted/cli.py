"""The `odted` command.

    odted serve [--config FILE] [--bind HOST:PORT] [--state-dir DIR]
                [--feed synthetic|replay|upstream] [--date YYYY-MM-DD] [--speed N|max]
                [--start HH:MM[:SS]] [--upstream-url URL] [--upstream-token TOKEN]
    odted db migrate [--config FILE] [--state-dir DIR]
    odted db status  [--config FILE] [--state-dir DIR]
    odted users add EMAIL [--password-stdin] [--config FILE] [--state-dir DIR]
    odted users list  [--config FILE] [--state-dir DIR]
    odted users token EMAIL [--config FILE] [--state-dir DIR]
    odted bots list  [--url URL] [--token TOKEN]
    odted bots start BOT [--url URL] [--token TOKEN]
    odted bots stop  BOT [SESSION] [--flatten] [--url URL] [--token TOKEN]
    odted logs tail  BOT [SESSION] [--follow] [--url URL] [--token TOKEN]
    odted --version

Bad usage or a bad config exits 2 with a one-line reason on stderr.

`bots` and `logs` are clients of a running daemon's HTTP API (so they work while it
runs): the URL and token come from `--url` / `--token`, else `$ODTED_URL` /
`$ODTED_TOKEN`, else `url` / `token` in `$XDG_CONFIG_HOME/odted/cli.toml` (default
`~/.config/odted/cli.toml`); the URL defaults to `http://127.0.0.1:8080`. `BOT` is a
bot's id or its name. An error answered by the API exits 1 with its code and message.
"""

from __future__ import annotations

import argparse
import os
import sys
from datetime import date, time
from pathlib import Path
from typing import Any, Sequence

import msgspec
import trio

from odted import __version__
from odted.config import Config, ConfigError, load_config

__all__ = ["main"]

DEFAULT_URL = "http://127.0.0.1:8080"


class _Parser(argparse.ArgumentParser):
    def error(self, message: str) -> None:  # one line, exit 2
        self.exit(2, f"odted: {message} (see odted --help)\n")


def _common(p: argparse.ArgumentParser) -> None:
    p.add_argument("--config", metavar="FILE", type=Path,
                   help="TOML config file (default: $ODTED_CONFIG, else built-in defaults)")
    p.add_argument("--state-dir", metavar="DIR", help="data directory (overrides state.dir)")


def build_parser() -> argparse.ArgumentParser:
    parser = _Parser(prog="odted", description="Live paper trading and strategy bots for 0DTE SPX options.")
    parser.add_argument("--version", action="version", version=f"odted {__version__}")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND", parser_class=_Parser)

    serve = sub.add_parser("serve", help="run the daemon")
    _common(serve)
    serve.add_argument("--bind", metavar="HOST:PORT", help="listen address (overrides server.bind)")
    serve.add_argument("--feed", choices=("synthetic", "replay", "upstream"),
                       help="where ticks come from (overrides feed.source)")
    serve.add_argument("--date", metavar="YYYY-MM-DD", type=_date_arg,
                       help="synthetic, replay: the trading day (feed.<source>.date)")
    serve.add_argument("--speed", metavar="N|max", type=_speed_arg,
                       help="synthetic, replay: 1 real time, N times faster, 0 paused, max (feed.<source>.speed)")
    serve.add_argument("--start", metavar="HH:MM[:SS]", type=_time_arg,
                       help="synthetic, replay: New York time of day to start at (feed.<source>.start_time)")
    serve.add_argument("--upstream-url", metavar="URL", help="upstream: the /__ws URL (feed.upstream.url)")
    serve.add_argument("--upstream-token", metavar="TOKEN",
                       help="upstream: the token (feed.upstream.token; prefer ODTED_FEED_UPSTREAM_TOKEN)")

    db = sub.add_parser("db", help="database schema")
    db_sub = db.add_subparsers(dest="db_command", metavar="ACTION", parser_class=_Parser)
    for name, text in (("migrate", "apply pending migrations"), ("status", "list migrations and when applied")):
        _common(db_sub.add_parser(name, help=text))

    users = sub.add_parser("users", help="accounts of people (for hosts without mail)")
    users_sub = users.add_subparsers(dest="users_command", metavar="ACTION", parser_class=_Parser)
    add = users_sub.add_parser("add", help="create an account (passwordless unless --password-stdin)")
    _common(add)
    add.add_argument("email", metavar="EMAIL")
    add.add_argument("--password-stdin", action="store_true", help="read the password from standard input")
    _common(users_sub.add_parser("list", help="list the accounts"))
    token = users_sub.add_parser("token", help="mint a token for an account and print it")
    _common(token)
    token.add_argument("email", metavar="EMAIL")

    bots = sub.add_parser("bots", help="list, start and stop bots (through the HTTP API)")
    bots_sub = bots.add_subparsers(dest="bots_command", metavar="ACTION", parser_class=_Parser)
    _client(bots_sub.add_parser("list", help="your bots: id, runtime status, cash balance, name"))
    start = bots_sub.add_parser("start", help="start today's session of a bot")
    _client(start)
    start.add_argument("bot", metavar="BOT", help="the bot's id or name")
    stop = bots_sub.add_parser("stop", help="stop a bot's session (default: its active one)")
    _client(stop)
    stop.add_argument("bot", metavar="BOT", help="the bot's id or name")
    stop.add_argument("session", metavar="SESSION", nargs="?", help="a session id (default: the active session)")
    stop.add_argument("--flatten", action="store_true", help="close every position at market first")

    logs = sub.add_parser("logs", help="bot decision logs (through the HTTP API)")
    logs_sub = logs.add_subparsers(dest="logs_command", metavar="ACTION", parser_class=_Parser)
    tail = logs_sub.add_parser("tail", help="print a session's decision log, one entry a line")
    _client(tail)
    tail.add_argument("bot", metavar="BOT", help="the bot's id or name")
    tail.add_argument("session", metavar="SESSION", nargs="?",
                      help="a session id (default: the active session, else the latest)")
    tail.add_argument("--follow", "-f", action="store_true",
                      help="keep printing new entries (every second) until Ctrl-C")
    return parser


def _client(p: argparse.ArgumentParser) -> None:
    p.add_argument("--url", metavar="URL", help="the daemon's base URL (default: $ODTED_URL, cli.toml, "
                                               f"{DEFAULT_URL})")
    p.add_argument("--token", metavar="TOKEN", help="your token (default: $ODTED_TOKEN, cli.toml)")


def load(args: argparse.Namespace) -> Config:
    path = args.config or (Path(os.environ["ODTED_CONFIG"]) if os.environ.get("ODTED_CONFIG") else None)
    overrides: dict[str, Any] = {}
    if getattr(args, "bind", None):
        overrides["server.bind"] = args.bind
    if getattr(args, "state_dir", None):
        overrides["state.dir"] = args.state_dir
    env = {k: v for k, v in os.environ.items() if k != "ODTED_CONFIG"}
    feed = {name: getattr(args, attr, None) for name, attr in (
        ("feed.source", "feed"), ("feed.upstream.url", "upstream_url"), ("feed.upstream.token", "upstream_token"))}
    overrides.update({k: v for k, v in feed.items() if v is not None})
    per_source = {name: getattr(args, attr, None) for name, attr in (
        ("date", "date"), ("speed", "speed"), ("start_time", "start"))}
    per_source = {k: v for k, v in per_source.items() if v is not None}
    if per_source:
        source = overrides.get("feed.source") or load_config(path, env=env, overrides=overrides).feed.source
        if source == "upstream":
            raise ConfigError("--date, --speed and --start apply to the synthetic and replay feeds")
        overrides.update({f"feed.{source}.{k}": v for k, v in per_source.items()})
    return load_config(path, env=env, overrides=overrides)


def _date_arg(text: str) -> date:
    try:
        return date.fromisoformat(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected YYYY-MM-DD, got {text!r}") from None


def _time_arg(text: str) -> time:
    try:
        return time.fromisoformat(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected HH:MM or HH:MM:SS, got {text!r}") from None


def _speed_arg(text: str) -> float | str:
    if text == "max":
        return text
    try:
        speed = float(text)
    except ValueError:
        speed = -1.0
    if not 0 <= speed < float("inf"):
        raise argparse.ArgumentTypeError(f"expected a number >= 0 or max, got {text!r}")
    return speed


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    if args.command is None or (args.command == "db" and args.db_command is None) or (
            args.command == "users" and args.users_command is None) or (
            args.command == "bots" and args.bots_command is None) or (
            args.command == "logs" and args.logs_command is None):
        parser.error("a command is required")
    if args.command in ("bots", "logs"):
        return _client_command(args)
    try:
        cfg = load(args)
    except ConfigError as e:
        print(f"odted: config: {e}", file=sys.stderr)
        return 2

    from odted.logs import setup_logging

    setup_logging(cfg.logging.format, cfg.logging.level)
    from odted.store.embedded import EmbeddedPostgresError

    try:
        if args.command == "serve":
            from odted import daemon

            trio.run(daemon.run, cfg)
            return 0
        if args.command == "users":
            password = _read_password() if getattr(args, "password_stdin", False) else None
            return trio.run(_users_command, cfg, args, password)
        return trio.run(_db_command, cfg, args.db_command)
    except EmbeddedPostgresError as e:
        print(f"odted: database: {e}", file=sys.stderr)
        return 1


async def _db_command(cfg: Config, action: str) -> int:
    from odted.daemon import open_store
    from odted.store import migrate

    async with open_store(cfg, migrate=False) as db:
        if action == "migrate":
            applied = await migrate.migrate(db)
            print(f"applied {len(applied)} migration(s)" + "".join(f"\n  {m.version:04d}_{m.name}" for m in applied))
        else:
            for s in await migrate.status(db):
                when = s.applied_at.isoformat() if s.applied_at else "pending"
                print(f"{s.version:04d}_{s.name}  {when}")
    return 0


def _read_password() -> str:
    """Standard input, less one trailing newline."""
    text = sys.stdin.read()
    return text[:-1] if text.endswith("\n") else text


async def _users_command(cfg: Config, args: argparse.Namespace, password: str | None) -> int:
    from odted.api.errors import ApiError
    from odted.api.ratelimit import RateLimits
    from odted.api.users import Users
    from odted.daemon import open_store

    async with open_store(cfg) as db:
        users = Users.build(cfg, db, RateLimits(cfg.ratelimit))
        try:
            if args.users_command == "add":
                row = await users.add(args.email, password)
                print(f"{row.id}  {row.email}")
            elif args.users_command == "token":
                print(await users.mint_token(args.email))
            else:
                for row in await users.all():
                    kind = "password" if row.has_password else "passwordless"
                    print(f"{row.id}  {row.email}  {kind}  {row.created_at.isoformat()}")
        except ApiError as e:
            print(f"odted: {e.code}: {e.message}", file=sys.stderr)
            return 1
    return 0


# -- bots and logs: clients of the HTTP API ---------------------------------------------


class _CliFile(msgspec.Struct, frozen=True, forbid_unknown_fields=True):
    """`cli.toml`: where the client commands find the daemon and your token."""

    url: str | None = None
    token: str | None = None


class _Usage(Exception):
    """Bad usage or settings of a client command (exit 2)."""


class _Failed(Exception):
    """The API refused, or could not be reached (exit 1)."""


def _client_settings(args: argparse.Namespace) -> tuple[str, str]:
    """The base URL and token: flags, else the environment, else cli.toml."""
    url = args.url or os.environ.get("ODTED_URL")
    token = args.token or os.environ.get("ODTED_TOKEN")
    if not url or not token:
        base = os.environ.get("XDG_CONFIG_HOME") or str(Path.home() / ".config")
        path = Path(base) / "odted" / "cli.toml"
        if path.is_file():
            try:
                saved = msgspec.toml.decode(path.read_bytes(), type=_CliFile)
            except (msgspec.DecodeError, msgspec.ValidationError) as e:
                raise _Usage(f"{path}: {e}") from None
            url = url or saved.url
            token = token or saved.token
    if not token:
        raise _Usage("a token is required: --token, $ODTED_TOKEN or token in ~/.config/odted/cli.toml")
    return (url or DEFAULT_URL).rstrip("/"), token


def _client_command(args: argparse.Namespace) -> int:
    try:
        url, token = _client_settings(args)
        import httpx

        with httpx.Client(base_url=url, headers={"Authorization": token, "Accept": "application/json"},
                          timeout=10) as http:
            api = _ApiClient(http, url)
            if args.command == "logs":
                return _logs_tail(api, args)
            return _bots_command(api, args)
    except _Usage as e:
        print(f"odted: {e}", file=sys.stderr)
        return 2
    except _Failed as e:
        print(f"odted: {e}", file=sys.stderr)
        return 1


class _ApiClient:
    def __init__(self, http: Any, url: str) -> None:
        self._http = http
        self._url = url

    def call(self, method: str, path: str, **kwargs: Any) -> Any:
        import httpx

        try:
            r = self._http.request(method, path, **kwargs)
        except httpx.HTTPError as e:
            raise _Failed(f"cannot reach {self._url}: {e}") from None
        if r.status_code >= 400:
            try:
                body = r.json()
                reason = f"{body['code']}: {body['message']}"
            except (ValueError, KeyError, TypeError):
                reason = r.text.strip().splitlines()[0] if r.text.strip() else f"HTTP {r.status_code}"
            raise _Failed(reason)
        return r.json() if r.content else None

    def bot(self, ref: str) -> dict[str, Any]:
        """A bot by id, or by name (case-insensitive; an idle one before archived ones)."""
        import uuid

        try:
            uuid.UUID(ref)
        except ValueError:
            pass
        else:
            return self.call("GET", f"/bots/{ref}")["bot"]
        named = [b for b in self.call("GET", "/bots") if b["name"].casefold() == ref.strip().casefold()]
        idle = [b for b in named if b["status"] == "idle"]
        found = idle or named
        if not found:
            raise _Failed(f"not_found: you have no bot named {ref!r}")
        if len(found) > 1:
            raise _Failed(f"several bots are named {ref!r}; give its id")
        return found[0]


def _bots_command(api: _ApiClient, args: argparse.Namespace) -> int:
    if args.bots_command == "list":
        for b in api.call("GET", "/bots"):
            print(f"{b['id']}  {b['runtime_status']:<9}  {b['cash_balance']:>12}  {b['name']}")
        return 0
    bot = api.bot(args.bot)
    if args.bots_command == "start":
        s = api.call("POST", f"/bots/{bot['id']}/sessions")
        print(f"{s['session_id']}  {s['status']}  {s['date']}")
        return 0
    session = args.session
    if session is None:
        if bot["active_session"] is None:
            raise _Failed(f"bot {bot['name']!r} has no active session")
        session = bot["active_session"]["id"]
    params = {"flatten": "true"} if args.flatten else None
    s = api.call("DELETE", f"/bots/{bot['id']}/sessions/{session}", params=params)
    print(f"{s['session_id']}  {s['status']}")
    return 0


def _log_line(entry: dict[str, Any]) -> str:
    import json

    data = entry.get("data") or {}
    tail = f"  {json.dumps(data, separators=(',', ':'), sort_keys=True)}" if data else ""
    return f"{entry['ts']}  {entry['kind']:<6}  {entry['message']}{tail}"


def _logs_tail(api: _ApiClient, args: argparse.Namespace) -> int:
    import time as _time

    bot = api.bot(args.bot)
    session = args.session
    if session is None:
        current = bot["active_session"] or bot["last_session"]
        if current is None:
            raise _Failed(f"bot {bot['name']!r} has no sessions yet")
        session = current["id"]
    path = f"/bots/{bot['id']}/sessions/{session}/decision-log"
    shown = 0
    try:
        while True:
            entries = api.call("GET", path)
            for entry in entries[shown:]:
                print(_log_line(entry), flush=True)
            shown = max(shown, len(entries))
            if not args.follow:
                return 0
            _time.sleep(1.0)
    except KeyboardInterrupt:
        return 0


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
