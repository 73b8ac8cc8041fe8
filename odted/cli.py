"""The `odted` command.

    odted serve [--config FILE] [--bind HOST:PORT] [--state-dir DIR]
                [--feed synthetic|replay|upstream] [--date YYYY-MM-DD] [--speed N|max]
                [--start HH:MM[:SS]] [--upstream-url URL] [--upstream-token TOKEN]
    odted db migrate [--config FILE] [--state-dir DIR]
    odted db status  [--config FILE] [--state-dir DIR]
    odted users add EMAIL [--password-stdin] [--config FILE] [--state-dir DIR]
    odted users list  [--config FILE] [--state-dir DIR]
    odted users token EMAIL [--config FILE] [--state-dir DIR]
    odted --version

Bad usage or a bad config exits 2 with a one-line reason on stderr.
"""

from __future__ import annotations

import argparse
import os
import sys
from datetime import date, time
from pathlib import Path
from typing import Any, Sequence

import trio

from odted import __version__
from odted.config import Config, ConfigError, load_config

__all__ = ["main"]


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
    return parser


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
            args.command == "users" and args.users_command is None):
        parser.error("a command is required")
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


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
