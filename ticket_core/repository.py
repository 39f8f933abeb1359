"""Ports for tickets and customers, and their MongoDB implementations.

Hot paths are inserts and `update_one` by `_id`; `find_one_and_update` only on the tiny `counters`.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from datetime import datetime
from typing import Any, Protocol

from bson import ObjectId
from bson.errors import InvalidId
from pymongo import ASCENDING, DESCENDING, ReturnDocument
from pymongo.asynchronous.database import AsyncDatabase
from pymongo.errors import DuplicateKeyError

from ticket_core.errors import InvalidInput, NotFound
from ticket_core.messages import CustomerIdentity
from ticket_core.model import OPEN_STATUSES, Customer, Ticket

Db = AsyncDatabase[dict[str, Any]]


def object_id(value: str) -> ObjectId:
    try:
        return ObjectId(value)
    except (InvalidId, TypeError) as exc:
        raise NotFound(f"no such id {value!r}") from exc


class TicketRepository(Protocol):
    async def next_number(self) -> str: ...
    async def insert(self, ticket: Ticket) -> tuple[Ticket, bool]: ...
    async def get(self, ticket_id: str) -> Ticket: ...
    async def get_by_number(self, number: str) -> Ticket: ...
    async def update(self, ticket_id: str, changes: Mapping[str, Any]) -> Ticket: ...
    async def open_for_conversation(self, conversation_key: str) -> Ticket | None: ...
    async def latest_for_conversation(self, conversation_key: str) -> Ticket | None: ...
    async def search(self, filters: Mapping[str, Any], *, after: str | None, limit: int) -> list[Ticket]: ...
    async def append_event(self, record: Mapping[str, Any]) -> bool: ...
    async def events(self, ticket_id: str) -> list[dict[str, Any]]: ...


class MongoTicketRepository:
    def __init__(self, db: Db, *, prefix: str = "T-") -> None:
        self._db = db
        self._prefix = prefix

    async def next_number(self) -> str:
        doc = await self._db.counters.find_one_and_update(
            {"_id": "ticket_number"}, {"$inc": {"seq": 1}}, upsert=True, return_document=ReturnDocument.AFTER
        )
        assert doc is not None
        return f"{self._prefix}{int(doc['seq']):06d}"

    async def insert(self, ticket: Ticket) -> tuple[Ticket, bool]:
        """Insert, or return the ticket the same source already created (a retried handler)."""
        doc = ticket.to_doc()
        doc["_id"] = object_id(ticket.id)
        try:
            await self._db.tickets.insert_one(doc)
            return ticket, True
        except DuplicateKeyError:
            if ticket.source_key is None:
                raise
            existing = await self._db.tickets.find_one({"source_key": ticket.source_key})
            if existing is None:
                raise
            return Ticket.from_doc(existing), False

    async def get(self, ticket_id: str) -> Ticket:
        doc = await self._db.tickets.find_one({"_id": object_id(ticket_id)})
        if doc is None:
            raise NotFound(f"no ticket with id {ticket_id}")
        return Ticket.from_doc(doc)

    async def get_by_number(self, number: str) -> Ticket:
        doc = await self._db.tickets.find_one({"number": number.upper()})
        if doc is None:
            raise NotFound(f"no ticket {number}")
        return Ticket.from_doc(doc)

    async def update(self, ticket_id: str, changes: Mapping[str, Any]) -> Ticket:
        oid = object_id(ticket_id)
        result = await self._db.tickets.update_one({"_id": oid}, {"$set": dict(changes)})
        if result.matched_count == 0:
            raise NotFound(f"no ticket with id {ticket_id}")
        return await self.get(ticket_id)

    async def open_for_conversation(self, conversation_key: str) -> Ticket | None:
        doc = await self._db.tickets.find_one(
            {"conversation_key": conversation_key, "status": {"$in": list(OPEN_STATUSES)}},
            sort=[("created_at", DESCENDING)],
        )
        return Ticket.from_doc(doc) if doc else None

    async def latest_for_conversation(self, conversation_key: str) -> Ticket | None:
        doc = await self._db.tickets.find_one(
            {"conversation_key": conversation_key}, sort=[("created_at", DESCENDING)]
        )
        return Ticket.from_doc(doc) if doc else None

    async def search(self, filters: Mapping[str, Any], *, after: str | None, limit: int) -> list[Ticket]:
        query: dict[str, Any] = dict(filters)
        if after:
            query["_id"] = {"$lt": object_id(after)}
        cursor = self._db.tickets.find(query).sort("_id", DESCENDING).limit(limit)
        return [Ticket.from_doc(doc) async for doc in cursor]

    async def append_event(self, record: Mapping[str, Any]) -> bool:
        """False when an event with the same `event_id` is already recorded (a retried handler)."""
        try:
            await self._db.ticket_events.insert_one(dict(record))
            return True
        except DuplicateKeyError:
            return False

    async def events(self, ticket_id: str) -> list[dict[str, Any]]:
        cursor = self._db.ticket_events.find({"ticket_id": ticket_id}).sort(
            [("at", ASCENDING), ("_id", ASCENDING)]
        )
        return [doc async for doc in cursor]


class CustomerRepository(Protocol):
    async def resolve(self, identity: CustomerIdentity, *, locale: str | None = None) -> Customer: ...
    async def get(self, customer_id: str) -> Customer: ...


class MongoCustomerRepository:
    """One customer, many channel identities; an identity is unique across customers."""

    def __init__(self, db: Db) -> None:
        self._db = db

    async def resolve(self, identity: CustomerIdentity, *, locale: str | None = None) -> Customer:
        doc = await self._db.customers.find_one({"identities.key": identity.key})
        if doc is not None:
            return Customer.from_doc(doc)
        if identity.email:
            # The same address seen on another channel (a web form, then a mail): same person.
            by_email = await self._db.customers.find_one({"email": identity.email.lower()})
            if by_email is not None:
                await self._db.customers.update_one(
                    {"_id": by_email["_id"]}, {"$addToSet": {"identities": _identity_doc(identity)}}
                )
                return Customer.from_doc(by_email)
        new = {
            "name": identity.display_name,
            "email": identity.email.lower() if identity.email else None,
            "phone": identity.phone,
            "locale": locale,
            "tags": [],
            "identities": [_identity_doc(identity)],
            "created_at": datetime.now().astimezone(),
        }
        try:
            result = await self._db.customers.insert_one(new)
        except DuplicateKeyError:
            doc = await self._db.customers.find_one({"identities.key": identity.key})
            if doc is None:
                raise
            return Customer.from_doc(doc)
        new["_id"] = result.inserted_id
        return Customer.from_doc(new)

    async def get(self, customer_id: str) -> Customer:
        doc = await self._db.customers.find_one({"_id": object_id(customer_id)})
        if doc is None:
            raise NotFound(f"no customer with id {customer_id}")
        return Customer.from_doc(doc)


def _identity_doc(identity: CustomerIdentity) -> dict[str, Any]:
    return {
        "key": identity.key,
        "channel": identity.channel,
        "account": identity.account,
        "external_id": identity.external_id,
        "display_name": identity.display_name,
    }


def validate_filters(raw: Mapping[str, str], allowed: Sequence[str]) -> dict[str, Any]:
    unknown = set(raw) - set(allowed)
    if unknown:
        raise InvalidInput(f"unknown filter(s): {', '.join(sorted(unknown))}", code="invalid_filter")
    return {k: v for k, v in raw.items() if v}
