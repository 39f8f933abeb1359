"""`omnigate`: serve, token create, user add, doctor. `python -m gateway` is the same program."""

from __future__ import annotations

import argparse
import asyncio
import gc
import os
import socket
import sys
from pathlib import Path
from urllib.parse import urlparse

from aiohttp import web

from gateway import email_cli, kb_cli, logs, user_cli
from gateway.config import Settings, describe, load_settings
from gateway.database import Database
from gateway.install_telegram import telegram_modes
from gateway.tokens import ROLES, TokenService
from ticket_core.errors import OmnigateError


def _settings(args: argparse.Namespace) -> Settings:
    path = args.config
    if path is None and Path("omnigate.toml").is_file():
        path = "omnigate.toml"
    return load_settings(path)


async def _first_admin_setup_link(database: Database) -> str | None:
    """A one-time link to create the first admin, while nobody can log in as one. A fixed password
    would be shared and never changed; the link works once and expires."""
    from gateway.accounts.setup_links import FIRST_ADMIN, SetupLinks
    from gateway.accounts.store import AccountStore

    if await AccountStore(database.db).has_admin_login():
        return None
    return await SetupLinks(database.db).create(FIRST_ADMIN)


def serve(settings: Settings) -> None:
    from gateway.app import create_app

    data_folder = Path(settings.storage.path).resolve()

    async def make() -> web.Application:
        app = create_app(settings)

        async def announce(app: web.Application) -> None:
            from gateway.appkeys import DATABASE

            base = f"http://{settings.server.host}:{settings.server.port}"
            setup = await _first_admin_setup_link(app[DATABASE])
            print(f"Omnigate is running on {base}", flush=True)
            print(f"  web form:      {base}/forms/support", flush=True)
            print(
                f"  REST API:      {base}/api/v1/tickets  (OpenAPI: {base}/api/v1/openapi.json)", flush=True
            )
            print(f"  health:        {base}/healthz", flush=True)
            print(f"  admin console: {base}/admin/", flush=True)
            if setup:
                print(f"  first admin setup (one-time link): {base}/admin/setup/{setup}", flush=True)
            print(f"  data folder:   {data_folder}", flush=True)

        app.on_startup.append(announce)
        app.on_startup.append(_freeze_startup_heap)
        return app

    web.run_app(
        make(),
        host=settings.server.host,
        port=settings.server.port,
        print=None,
        access_log=None,
        handler_cancellation=True,
    )


async def _freeze_startup_heap(app: web.Application) -> None:
    """Move what start-up built (modules, the knowledge index, templates) out of the collector's sight.

    A full collection walked all of it, 40-50 ms each time, in the middle of requests: the largest part
    of the WeChat callback's p99 under load.
    """
    gc.collect()
    gc.freeze()


async def _token_create(settings: Settings, name: str, role: str) -> str:
    async with Database(settings, reuse_running=True) as database:
        return await TokenService(database.db).create(name=name, role=role)


def _reachable(host: str, port: int) -> str | None:
    try:
        with socket.create_connection((host, port), timeout=3):
            return None
    except OSError as exc:
        return str(exc)


def _url_target(url: str) -> tuple[str, int]:
    parsed = urlparse(url)
    return parsed.hostname or "", parsed.port or (443 if parsed.scheme == "https" else 80)


async def _doctor(settings: Settings) -> int:
    print("Configuration (secrets masked):")
    print(describe(settings))
    problems = 0
    try:
        async with Database(settings, reuse_running=True) as database:
            print(f"[ok]   database reachable ({'embedded' if settings.embedded else 'mongodb.uri'})")
            del database
    except OmnigateError as exc:
        problems += 1
        print(f"[FAIL] database: {exc}")
    checks: list[tuple[str, str, int]] = []
    for account in settings.wechat_accounts:
        checks.append((f"wechat/{account.name} API", *_url_target(account.api_base_url)))
    for bot in settings.telegram_bots:
        checks.append((f"telegram/{bot.name} Bot API ({bot.mode})", *_url_target(bot.base_url)))
    for box in settings.email_mailboxes:
        checks.append((f"email/{box.name} IMAP", box.imap_host, box.imap_port))
        checks.append((f"email/{box.name} SMTP", box.smtp_host, box.smtp_port))
    for label, host, port in checks:
        error = await asyncio.to_thread(_reachable, host, port)
        if error:
            problems += 1
        print(
            f"[{'FAIL' if error else 'ok'}]{' ' if error else '   '}{label}: {host}:{port}"
            + (f" ({error})" if error else "")
        )
    for line, ok in telegram_modes(settings):
        problems += 0 if ok else 1
        print(f"[{'info' if ok else 'FAIL'}]{'   ' if ok else ' '}{line}")
    if not checks:
        print("[info] no WeChat, Telegram or email channel is configured; the web form is always on")
    return 1 if problems else 0


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="omnigate", description="Omnichannel intake gateway for after-sales support"
    )
    parser.add_argument("--config", help="TOML configuration file (default: ./omnigate.toml when present)")
    sub = parser.add_subparsers(dest="command", required=True)
    sub.add_parser("serve", help="run the gateway")
    token = sub.add_parser("token", help="API tokens").add_subparsers(dest="token_command", required=True)
    create = token.add_parser("create", help="create a bearer token and print it")
    create.add_argument("--role", choices=ROLES, required=True)
    create.add_argument("--name", required=True)
    sub.add_parser("doctor", help="check the configuration and the reachability of each channel")
    kb_cli.add_parser(sub)
    user_cli.add_parser(sub)
    email_cli.add_parser(sub)
    args = parser.parse_args(argv)
    logs.configure(
        os.environ.get("OMNIGATE_LOG_LEVEL", "INFO"), os.environ.get("OMNIGATE_LOG_FORMAT", "auto")
    )

    try:
        settings = _settings(args)
        if args.command == "serve":
            serve(settings)
            return 0
        if args.command == "token":
            print(asyncio.run(_token_create(settings, args.name, args.role)))
            return 0
        if args.command == "doctor":
            return asyncio.run(_doctor(settings))
        if args.command == "kb":
            return asyncio.run(kb_cli.run(args, settings))
        if args.command == "user":
            return asyncio.run(user_cli.run(args, settings))
        if args.command == "email":
            return email_cli.run(args, settings)
    except OmnigateError as exc:
        print(f"omnigate: {exc}", file=sys.stderr)
        return 2
    return 0
