"""Auto-reply rules (collection `rules`): ordered conditions and actions that admins define.

Conditions: channel, keywords, regex, business hours with holidays and a time zone (inside or
outside), first contact, customer tags. Actions: reply (per locale), set category, priority or tags,
skip suggestions, hand straight to a person. A rule with `stop` ends the evaluation. The dry-run
endpoint calls the same `evaluate`, so what it shows is what live traffic gets.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping
from datetime import date, datetime, time
from typing import Any
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from pymongo.asynchronous.database import AsyncDatabase

from dialog.ports import RuleContext, RuleOutcome
from ticket_core.errors import InvalidInput
from ticket_core.model import PRIORITIES

CHANNELS = ("wechat", "telegram", "email", "webform", "fake")
MAX_REGEX = 500


def _hhmm(value: str, where: str) -> time:
    try:
        hours, minutes = value.split(":")
        return time(int(hours), int(minutes))
    except (ValueError, AttributeError) as exc:
        raise InvalidInput(f"{where} must be HH:MM", code="invalid_fields", fields={where: "HH:MM"}) from exc


def validate_rule(raw: Mapping[str, Any]) -> dict[str, Any]:
    """A rule from the API, checked field by field; InvalidInput names what is wrong."""
    errors: dict[str, str] = {}
    name = str(raw.get("name") or "").strip()
    if not name:
        errors["name"] = "is required"
    conditions = raw.get("conditions") or {}
    actions = raw.get("actions") or {}
    if not isinstance(conditions, dict) or not isinstance(actions, dict):
        raise InvalidInput("conditions and actions must be objects", code="invalid_fields")
    for key in ("channels", "keywords", "customer_tags"):
        value = conditions.get(key, [])
        if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
            errors[f"conditions.{key}"] = "must be a list of strings"
    unknown_channels = set(conditions.get("channels") or []) - set(CHANNELS)
    if unknown_channels:
        errors["conditions.channels"] = f"unknown channel(s): {', '.join(sorted(unknown_channels))}"
    pattern = conditions.get("regex")
    if pattern:
        if not isinstance(pattern, str) or len(pattern) > MAX_REGEX:
            errors["conditions.regex"] = f"must be a string of at most {MAX_REGEX} characters"
        else:
            try:
                re.compile(pattern)
            except re.error as exc:
                errors["conditions.regex"] = f"invalid regular expression: {exc}"
    hours = conditions.get("business_hours")
    if hours:
        try:
            ZoneInfo(str(hours.get("timezone", "Asia/Shanghai")))
        except (ZoneInfoNotFoundError, ValueError):
            errors["conditions.business_hours.timezone"] = "unknown time zone"
        for key in ("start", "end"):
            try:
                _hhmm(str(hours.get(key, "09:00" if key == "start" else "18:00")), key)
            except InvalidInput:
                errors[f"conditions.business_hours.{key}"] = "must be HH:MM"
        if hours.get("when", "outside") not in ("inside", "outside"):
            errors["conditions.business_hours.when"] = "inside or outside"
    priority = actions.get("set_priority")
    if priority and priority not in PRIORITIES:
        errors["actions.set_priority"] = f"one of {', '.join(PRIORITIES)}"
    reply = actions.get("reply")
    if reply is not None and not (
        isinstance(reply, dict) and all(isinstance(v, str) for v in reply.values())
    ):
        errors["actions.reply"] = "must map locales to text"
    if errors:
        raise InvalidInput("the rule has invalid fields", code="invalid_fields", fields=errors)
    return {
        "name": name,
        "enabled": bool(raw.get("enabled", True)),
        "order": int(raw.get("order", 100)),
        "stop": bool(raw.get("stop", False)),
        "conditions": conditions,
        "actions": actions,
    }


def _in_business_hours(spec: Mapping[str, Any], now: datetime) -> bool:
    local = now.astimezone(ZoneInfo(str(spec.get("timezone", "Asia/Shanghai"))))
    holidays = {date.fromisoformat(d) for d in spec.get("holidays", [])}
    if local.date() in holidays:
        return False
    if local.weekday() not in set(spec.get("days", [0, 1, 2, 3, 4])):
        return False
    start = _hhmm(str(spec.get("start", "09:00")), "start")
    end = _hhmm(str(spec.get("end", "18:00")), "end")
    return start <= local.time().replace(tzinfo=None) < end


def rule_matches(rule: Mapping[str, Any], ctx: RuleContext) -> tuple[bool, str]:
    """Whether the rule's conditions hold, and why not (for the dry run)."""
    cond = rule.get("conditions") or {}
    if cond.get("channels") and ctx.channel not in cond["channels"]:
        return False, f"channel {ctx.channel} not in {cond['channels']}"
    text = ctx.text.lower()
    keywords = [k.lower() for k in cond.get("keywords") or []]
    if keywords and not any(k in text for k in keywords):
        return False, "no keyword found"
    if cond.get("regex") and not re.search(cond["regex"], ctx.text, flags=re.IGNORECASE):
        return False, "regex did not match"
    hours = cond.get("business_hours")
    if hours:
        inside = _in_business_hours(hours, ctx.now)
        if (hours.get("when", "outside") == "outside") == inside:
            return False, "inside business hours" if inside else "outside business hours"
    if (
        "first_contact" in cond
        and cond["first_contact"] is not None
        and bool(cond["first_contact"]) != ctx.first_contact
    ):
        return False, "first contact" if ctx.first_contact else "not first contact"
    wanted = set(cond.get("customer_tags") or [])
    if wanted and not wanted & set(ctx.customer_tags):
        return False, "customer has none of the tags"
    return True, "all conditions hold"


class RuleEngine:
    def __init__(
        self, db: AsyncDatabase[dict[str, Any]], *, clock: Callable[[], datetime] | None = None
    ) -> None:
        self._db = db
        self._clock = clock

    async def rules(self) -> list[dict[str, Any]]:
        # Read each time: the collection is tiny, and an edit applies at once on every process.
        return [doc async for doc in self._db.rules.find({}).sort([("order", 1), ("_id", 1)])]

    async def evaluate(self, context: RuleContext) -> RuleOutcome:
        fired: list[str] = []
        replies: list[str] = []
        tags: list[str] = []
        details: list[dict[str, Any]] = []
        category = priority = None
        skip = handoff = False
        for rule in await self.rules():
            if not rule.get("enabled", True):
                details.append({"rule": rule["name"], "fired": False, "why": "disabled"})
                continue
            matched, why = rule_matches(rule, context)
            details.append({"rule": rule["name"], "fired": matched, "why": why})
            if not matched:
                continue
            fired.append(rule["name"])
            actions = rule.get("actions") or {}
            reply = actions.get("reply") or {}
            text = reply.get(context.locale) or reply.get("en") or next(iter(reply.values()), None)
            if text:
                replies.append(text)
            category = actions.get("set_category") or category
            priority = actions.get("set_priority") or priority
            tags += list(actions.get("add_tags") or [])
            skip = skip or bool(actions.get("skip_suggestions"))
            handoff = handoff or bool(actions.get("handoff"))
            if rule.get("stop"):
                break
        return RuleOutcome(
            fired=tuple(fired),
            replies=tuple(replies),
            category=category,
            priority=priority,
            tags=tuple(tags),
            skip_suggestions=skip,
            handoff=handoff,
            details=tuple(details),
        )


OUT_OF_HOURS_RULE = {
    "name": "Out of hours / 非工作时间",
    "enabled": True,
    "order": 10,
    "stop": False,
    "conditions": {
        "business_hours": {
            "when": "outside",
            "timezone": "Asia/Shanghai",
            "days": [0, 1, 2, 3, 4],
            "start": "09:00",
            "end": "18:00",
            "holidays": [],
        }
    },
    "actions": {
        "reply": {
            "zh-CN": "我们的人工客服时间为工作日 9:00-18:00（北京时间）。"
            "您的留言已收到，上班后会第一时间处理；您也可以先看看下面的解决办法。",
            "en": "Our agents work Monday to Friday, 9:00-18:00 (Beijing time). "
            "We have your message and will answer first thing; meanwhile the articles below may help.",
        }
    },
}


async def seed_demo_rules(db: AsyncDatabase[dict[str, Any]]) -> bool:
    if await db.rules.estimated_document_count() > 0:
        return False
    await db.rules.insert_one(dict(OUT_OF_HOURS_RULE))
    return True
