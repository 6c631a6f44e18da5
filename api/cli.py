"""`hotline api …`: register, list and revoke API clients; revoke a token.

    hotline api clients add NAME --scopes balance:read,allowances:read
    hotline api clients list
    hotline api clients revoke NAME
    hotline api tokens revoke JTI

`add` prints the client id and secret once; only the secret's hash is stored. A
revocation is written to the API store (durable) and, when `redis_url` is set, to
Redis, which every worker checks on every call: it holds at once.
"""

from __future__ import annotations

import argparse
import asyncio
import datetime as dt
import re
import secrets
import sys
import time
from pathlib import Path
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from api.store import ApiStore
    from hotline.base.config import Settings

__all__ = ["register"]

_NAME = re.compile(r"[a-z0-9][a-z0-9._-]{0,63}")


def register(sub: argparse._SubParsersAction[Any]) -> None:
    """Add `hotline api`."""
    api = sub.add_parser("api", help="API clients and tokens")
    api_sub = api.add_subparsers(dest="api_command", required=True, metavar="WHAT")
    clients = api_sub.add_parser("clients", help="register, list and revoke API clients")
    clients_sub = clients.add_subparsers(dest="clients_command", required=True, metavar="ACTION")
    add = clients_sub.add_parser("add", help="register a client; prints its secret once")
    add.add_argument("name", help="a-z 0-9 . _ -, e.g. wechat-miniprogram")
    add.add_argument("--scopes", required=True, help="comma-separated, e.g. balance:read")
    add.set_defaults(func=run_add)
    listing = clients_sub.add_parser("list", help="every client, live and revoked")
    listing.set_defaults(func=run_list)
    revoke = clients_sub.add_parser("revoke", help="revoke a client (by name or id), at once")
    revoke.add_argument("client")
    revoke.set_defaults(func=run_revoke)
    tokens = api_sub.add_parser("tokens", help="revoke one token")
    tokens_sub = tokens.add_subparsers(dest="tokens_command", required=True, metavar="ACTION")
    token_revoke = tokens_sub.add_parser("revoke", help="revoke a token by its jti (audit log)")
    token_revoke.add_argument("jti")
    token_revoke.set_defaults(func=run_token_revoke)
    sim = api_sub.add_parser(
        "identity-sim", help="serve a local WeChat + one-tap identity provider (offline)"
    )
    sim.add_argument("--host", default="127.0.0.1")
    sim.add_argument("--port", type=int, default=8098)
    sim.add_argument("--app-id", default="sim-app")
    sim.add_argument("--secret", default="sim-secret")
    sim.set_defaults(func=run_identity_sim)
    for parser in (add, listing, revoke, token_revoke):
        parser.add_argument("--config", type=Path, help="settings file (default: ./hotline.yaml)")


def _store(args: argparse.Namespace) -> tuple[Settings, ApiStore]:
    from api.store import ApiStore
    from hotline.cli import settings_from_args

    settings = settings_from_args(args)
    return settings, ApiStore(settings.api.db_url, path=settings.api.db_path)


def _known_scopes() -> set[str]:
    from api.openapi import SCOPES
    from api.routing import installed_routes

    return set(SCOPES) | {r.scope for r in installed_routes() if r.scope}


def run_add(args: argparse.Namespace) -> int:
    if not _NAME.fullmatch(args.name):
        print(f"client name {args.name!r}: expected 1-64 of a-z 0-9 . _ -", file=sys.stderr)
        return 2
    scopes = sorted({s.strip() for s in args.scopes.split(",") if s.strip()})
    unknown = set(scopes) - _known_scopes()
    if not scopes or unknown:
        known = ", ".join(sorted(_known_scopes()))
        print(
            f"unknown scope(s) {', '.join(sorted(unknown)) or '(none given)'}; known: {known}",
            file=sys.stderr,
        )
        return 2
    _, store = _store(args)
    ident = "cl_" + secrets.token_hex(8)
    secret = secrets.token_urlsafe(32)
    try:
        store.add_client(ident, args.name, secret, scopes)
    except ValueError as exc:
        print(exc, file=sys.stderr)
        return 1
    print(f"client_id:     {ident}")
    print(f"client_secret: {secret}")
    print(f"scopes:        {' '.join(scopes)}")
    print("The secret is shown only now; hotline keeps only its hash.")
    return 0


def run_list(args: argparse.Namespace) -> int:
    _, store = _store(args)
    rows = store.clients()
    if not rows:
        print("no clients (hotline api clients add NAME --scopes …)")
        return 0
    for c in rows:
        created = dt.datetime.fromtimestamp(c.created_at, dt.UTC).strftime("%Y-%m-%d %H:%M")
        state = "live" if c.revoked_at is None else "revoked"
        print(f"{c.name:24} {c.id:20} {state:8} {created}Z  {' '.join(c.scopes)}")
    return 0


def _remember(settings: Settings, key: str, ttl: int) -> None:
    """Set `key` for `ttl` seconds in the configured Redis (any URL form), if any."""
    if not settings.redis_url:
        return
    url = settings.redis_url

    async def put() -> None:
        from hotline.store.redisurl import open_redis

        client = open_redis(url)
        try:
            await client.set(key, "1", ex=ttl)
        finally:
            await client.aclose()

    asyncio.run(put())


def run_revoke(args: argparse.Namespace) -> int:
    settings, store = _store(args)
    found = store.revoke_client(args.client)
    if found is None:
        print(f"no client {args.client!r}", file=sys.stderr)
        return 1
    ttl = max(settings.api.client_token_ttl, settings.api.subscriber_token_ttl)
    _remember(settings, f"hotline:{settings.env}:api:rev-client:{found.id}", ttl)
    print(f"revoked {found.name} ({found.id}); its tokens are refused from now on")
    return 0


def run_token_revoke(args: argparse.Namespace) -> int:
    if not re.fullmatch(r"[0-9a-f]{32}", args.jti):
        print("a token id (jti) is 32 hex digits, as in the audit log", file=sys.stderr)
        return 2
    settings, store = _store(args)
    ttl = max(settings.api.client_token_ttl, settings.api.subscriber_token_ttl)
    store.revoke_token_sync(args.jti, time.time() + ttl, "operator")
    _remember(settings, f"hotline:{settings.env}:api:rev:{args.jti}", ttl)
    print(f"revoked token {args.jti}")
    return 0


def run_identity_sim(args: argparse.Namespace) -> int:
    from aiohttp import web

    from api.identity.sim import make_app

    print(f"identity simulator on http://{args.host}:{args.port} (app id {args.app_id})")
    web.run_app(make_app(args.app_id, args.secret), host=args.host, port=args.port, print=None)
    return 0
