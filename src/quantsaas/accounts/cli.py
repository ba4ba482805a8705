"""Account commands of the CLI: `users`, `keys`, `tiers` and `audit`.

Secrets (a new API key, a generated password) are the only thing written to stdout, so
`KEY=$(quantsaas keys create a@b.c)` works; everything else goes to stderr or is a table.
"""

from __future__ import annotations

import argparse
import asyncio
import getpass
import secrets
import sys
from collections.abc import Callable, Coroutine
from datetime import datetime
from typing import TYPE_CHECKING, Any

from pydantic import ValidationError

from quantsaas.accounts.tiers import Tier, load_tiers
from quantsaas.config import Settings
from quantsaas.errors import AccountError, ConfigError, RevocationPending, StorageError
from quantsaas.logs import printable

if TYPE_CHECKING:  # `serve` builds its parser from here: SQLAlchemy loads with a command
    from quantsaas.accounts.service import Accounts

Action = Callable[["Accounts", argparse.Namespace], Coroutine[Any, Any, int]]
WRITE_ATTEMPTS = 10


def _with_db(parser: argparse.ArgumentParser) -> argparse.ArgumentParser:
    parser.add_argument(
        "--db",
        help="accounts database URL (default: setting accounts_url, else accounts/accounts.db)",
    )
    return parser


def add_commands(commands: Any) -> None:
    users = commands.add_parser("users", help="manage users (accounts database)")
    user_actions = users.add_subparsers(dest="action", required=True)
    add = _with_db(user_actions.add_parser("add", help="create a user"))
    add.add_argument("email")
    add.add_argument("--tier", default="free", help="tier name (default free; see `tiers`)")
    add.add_argument("--admin", action="store_true", help="may use the admin API")
    add.add_argument(
        "--password-stdin",
        action="store_true",
        help="read the password from the first line of stdin (else prompt on a terminal, "
        "or generate one and print it)",
    )
    _with_db(user_actions.add_parser("list", help="every user"))
    for action, text in (("disable", "disable (ends sessions, revokes access)"), ("enable", "")):
        _with_db(user_actions.add_parser(action, help=text or "enable again")).add_argument("email")
    set_tier = _with_db(user_actions.add_parser("set-tier", help="change a user's tier"))
    set_tier.add_argument("email")
    set_tier.add_argument("tier")

    keys = commands.add_parser("keys", help="manage API keys")
    key_actions = keys.add_subparsers(dest="action", required=True)
    create = _with_db(key_actions.add_parser("create", help="new key (printed once)"))
    create.add_argument("email")
    create.add_argument("--name", default="cli", help="a label for the key")
    _with_db(key_actions.add_parser("list", help="a user's keys")).add_argument("email")
    _with_db(key_actions.add_parser("revoke", help="revoke a key by id")).add_argument("key_id")

    _with_db(commands.add_parser("tiers", help="print the service tiers"))
    audit = _with_db(commands.add_parser("audit", help="recent security events, newest first"))
    audit.add_argument("--limit", type=int, default=50)


def _time(at: datetime | None) -> str:
    return "-" if at is None else at.strftime("%Y-%m-%dT%H:%M:%SZ")


def _table(header: list[str], rows: list[list[str]]) -> None:
    """Aligned columns; every cell made printable (logs.printable): an address or an audit
    detail holding escape sequences must not drive the admin's terminal."""
    rows = [[printable(cell) for cell in row] for row in rows]
    widths = [max(len(row[i]) for row in [header, *rows]) for i in range(len(header))]
    for row in [header, *rows]:
        print("  ".join(c.ljust(w) for c, w in zip(row, widths, strict=True)).rstrip())


def _names(values: tuple[str, ...] | None) -> str:
    return "all" if values is None else ",".join(values)


def print_tiers(tiers: dict[str, Tier]) -> None:
    header = ["tier", "venues", "symbols", "channels", "book_ms", "ws", "subs", "msg/s"]
    header += ["history_d", "requests", "keys"]
    rows = [
        [
            t.name,
            _names(t.venues),
            _names(t.symbols),
            _names(t.channels),
            str(t.book_interval_ms),
            str(t.ws_connections),
            str(t.ws_subscriptions),
            str(t.ws_inbound_per_s),
            f"{t.history_days:g}",
            f"{t.requests}/{t.window_s:g}s",
            str(t.api_keys),
        ]
        for t in tiers.values()
    ]
    _table(header, rows)


def _new_password(args: argparse.Namespace) -> tuple[str, bool]:
    """(password, generated)."""
    if args.password_stdin:
        return sys.stdin.readline().rstrip("\r\n"), False
    if sys.stdin.isatty():
        first = getpass.getpass("password (empty: generate one): ")
        if first:
            if getpass.getpass("again: ") != first:
                raise ConfigError("the passwords differ")
            return first, False
    return secrets.token_urlsafe(18), True


async def _users(accounts: Accounts, args: argparse.Namespace) -> int:
    if args.action == "add":
        password, generated = _new_password(args)
        user = await accounts.add_user(args.email, password, tier=args.tier, is_admin=args.admin)
        await accounts.audit("user.created", user_id=user.id, detail="cli")
        print(
            f"user {printable(user.email)} created (id {user.id}, tier {user.tier})",
            file=sys.stderr,
        )
        if generated:
            print(password)
    elif args.action == "list":
        users = await accounts.list_users()
        rows = [
            [str(u.id), u.email, u.tier, "yes" if u.is_admin else "", "yes" if u.disabled else ""]
            + [_time(u.created_at)]
            for u in users
        ]
        _table(["id", "email", "tier", "admin", "disabled", "created"], rows)
    elif args.action in ("disable", "enable"):
        try:
            user = await accounts.set_disabled(args.email, args.action == "disable")
        except RevocationPending:
            await _written(accounts)
            user = await accounts.find_user(args.email)
        await accounts.audit(f"user.{args.action}d", user_id=user.id, detail="cli")
        print(f"user {printable(user.email)} {args.action}d", file=sys.stderr)
    else:
        user = await accounts.set_tier(args.email, args.tier)
        await accounts.audit("user.tier_changed", user_id=user.id, detail=f"cli: {user.tier}")
        print(f"user {printable(user.email)} is now on tier {user.tier}", file=sys.stderr)
    return 0


async def _keys(accounts: Accounts, args: argparse.Namespace) -> int:
    if args.action == "revoke":
        try:
            key = await accounts.revoke_key(args.key_id, None)
        except RevocationPending:
            await _written(accounts)
            key = await accounts.revoke_key(args.key_id, None)  # now recorded: reads it back
        await accounts.audit("key.revoked", user_id=key.user_id, key_id=key.key_id, detail="cli")
        print(f"key {key.key_id} revoked", file=sys.stderr)
        return 0
    user = await accounts.find_user(args.email)
    if args.action == "create":
        text, key = await accounts.create_key(user.id, args.name)
        await accounts.audit("key.created", user_id=user.id, key_id=key.key_id, detail="cli")
        print(
            f"key {key.key_id} created for {printable(user.email)}; shown only now:",
            file=sys.stderr,
        )
        print(text)
        return 0
    rows = [
        [k.key_id, k.name, _time(k.created_at), _time(k.last_used_at)]
        + ["revoked " + _time(k.revoked_at) if k.revoked_at else "live"]
        for k in await accounts.list_keys(user.id)
    ]
    _table(["key_id", "name", "created", "last_used", "state"], rows)
    return 0


async def _written(accounts: Accounts, attempts: int = WRITE_ATTEMPTS) -> None:
    """Retry a revocation whose write failed, a few times; an AccountError if it never lands
    (this process ends, so nothing would retry it: the operator must know)."""
    for _ in range(attempts):
        await asyncio.sleep(1.0)
        if not await accounts.changes.retry():
            return
    raise RevocationPending(
        "NOT revoked: the accounts database refused the write (full disk? see the log); "
        "the service still accepts the credentials. Free space and run the command again"
    )


async def _audit(accounts: Accounts, args: argparse.Namespace) -> int:
    events = await accounts.audit_events(args.limit)
    rows = [
        [_time(e.at), e.event, str(e.user_id or "-"), e.key_id or "-", e.ip or "-", e.detail]
        for e in events
    ]
    _table(["at", "event", "user", "key", "ip", "detail"], rows)
    return 0


async def _with_accounts(url: str, tiers: dict[str, Tier], action: Action, args: Any) -> int:
    from quantsaas.accounts.service import Accounts

    accounts = await Accounts.open(url, tiers)
    try:
        return await action(accounts, args)
    finally:
        await accounts.close()


ACTIONS: dict[str, Action] = {"users": _users, "keys": _keys, "audit": _audit}


def run(args: argparse.Namespace) -> int:
    """Run one account command; errors are printed, exit status 2."""
    try:
        try:
            settings = Settings()
        except ValidationError as exc:
            raise ConfigError(str(exc)) from None
        tiers = dict(load_tiers(settings.tiers_file))
        if args.command == "tiers":
            print_tiers(tiers)
            return 0
        url = args.db or settings.accounts_database
        return asyncio.run(_with_accounts(url, tiers, ACTIONS[args.command], args))
    except (AccountError, ConfigError, StorageError) as exc:
        print(f"quantsaas: error: {printable(str(exc))}", file=sys.stderr)
        return 2


COMMANDS: dict[str, Callable[[argparse.Namespace], int]] = {
    name: run for name in ("users", "keys", "tiers", "audit")
}
