"""`omnigate user add`: agent accounts, and the Telegram user each one acts as in the staff group."""

from __future__ import annotations

import argparse
from datetime import UTC, datetime
from typing import Any

from gateway.config import Settings
from gateway.database import Database
from ticket_core.errors import InvalidInput

USER_ROLES = ("admin", "agent", "viewer")


def add_parser(sub: Any) -> None:
    users = sub.add_parser("user", help="agent accounts").add_subparsers(dest="user_command", required=True)
    add = users.add_parser("add", help="add or update an agent (by name)")
    add.add_argument("--name", required=True)
    add.add_argument("--role", choices=USER_ROLES, required=True)
    add.add_argument("--telegram-id", type=int, help="numeric Telegram user id (acts in the staff group)")
    add.add_argument("--username", help="Telegram @username, for /assign @username")
    add.add_argument("--email")


async def run(args: argparse.Namespace, settings: Settings) -> int:
    name = args.name.strip()
    if not name:
        raise InvalidInput("--name must not be empty")
    fields: dict[str, Any] = {"role": args.role, "updated_at": datetime.now(UTC)}
    if args.telegram_id is not None:
        fields["telegram_user_id"] = args.telegram_id
    if args.username:
        fields["username"] = args.username.lstrip("@")
    if args.email:
        if "@" not in args.email:
            raise InvalidInput(f"not an email address: {args.email!r}")
        fields["email"] = args.email.strip().lower()
    async with Database(settings, reuse_running=True) as database:
        agents = database.db.agents
        if args.telegram_id is not None:
            other = await agents.find_one({"telegram_user_id": args.telegram_id, "name": {"$ne": name}})
            if other is not None:
                raise InvalidInput(f"Telegram user {args.telegram_id} already belongs to {other['name']!r}")
        result = await agents.update_one(
            {"name": name},
            {"$set": fields, "$setOnInsert": {"name": name, "created_at": datetime.now(UTC)}},
            upsert=True,
        )
    print(f"{'added' if result.upserted_id is not None else 'updated'} {args.role} {name!r}")
    return 0
