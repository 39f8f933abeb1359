"""The dialog engine: self-service first, humans as the backstop, on every channel.

One turn per inbound message, in conversation order (the bus guarantees it). A new problem is matched
against the knowledge base; good matches are offered; the customer picks one and says whether it
solved the problem (a deflection: no ticket) or not (a ticket carrying the transcript and the
suggestions). A customer with an open ticket adds to it. State lives in `conversations`, so any
gateway process can take the next turn, and a turn re-run after a crash repeats nothing: replies are
keyed by the inbox record, and the record's result is remembered.
"""

from __future__ import annotations

import dataclasses
import logging
from collections.abc import Callable, Mapping, Sequence
from datetime import UTC, datetime, timedelta
from typing import Any

from dialog.conversations import Conversation, ConversationStore, DialogSettings, RequiredField
from dialog.knowledge import KnowledgeBase, Suggestion
from dialog.ports import Replier, RuleContext, RuleEvaluator, RuleOutcome
from dialog.texts import STATUS_NAMES, detect_locale, is_human, is_skip, is_status, number, say, yes_no
from ticket_core.messages import InboundMessage
from ticket_core.model import OPEN_STATUSES, Actor, Customer, Ticket
from ticket_core.repository import CustomerRepository, TicketRepository
from ticket_core.service import NewTicket, TicketService

log = logging.getLogger(__name__)

Result = dict[str, Any]


def _now() -> datetime:
    return datetime.now(UTC)


@dataclasses.dataclass
class _Turn:
    """What one message does: the replies it sends, collected for the bus result."""

    msg: InboundMessage
    record_id: str
    conv: Conversation
    customer: Customer
    now: datetime
    outbox_ids: list[str] = dataclasses.field(default_factory=list)
    result: Result = dataclasses.field(default_factory=dict)
    sent: int = 0
    rules: list[str] = dataclasses.field(default_factory=list)

    @property
    def locale(self) -> str:
        return self.conv.locale


class DialogEngine:
    def __init__(
        self,
        *,
        service: TicketService,
        tickets: TicketRepository,
        customers: CustomerRepository,
        knowledge: KnowledgeBase,
        conversations: ConversationStore,
        replier: Replier,
        rules: RuleEvaluator | None = None,
        settings: Callable[[], DialogSettings] = DialogSettings,
        clock: Callable[[], datetime] = _now,
    ) -> None:
        self._service = service
        self._tickets = tickets
        self._customers = customers
        self._kb = knowledge
        self._conversations = conversations
        self._replier = replier
        self._rules = rules
        self._settings = settings
        self.clock = clock  # public: tests and replays set the time the dialog sees

    # -- entry point ------------------------------------------------------------------------------------

    async def __call__(self, msg: InboundMessage, record_id: str) -> Result:
        now = self.clock()
        conv = await self._conversations.load(msg.conversation_key, msg.channel, msg.account)
        if record_id in conv.handled:  # a re-run after a crash: the turn already happened
            return conv.handled[record_id]
        customer = await self._customers.resolve(msg.identity, locale=msg.locale)
        if msg.kind == "form" and msg.locale:
            conv.locale = msg.locale  # the language the customer chose on the page
        elif msg.text.strip() or conv.new:
            conv.locale = detect_locale(msg.text, msg.locale or customer.locale or conv.locale)
        conv.identity = dataclasses.asdict(msg.identity)
        conv.reply_to = str(msg.meta.get("reply_to") or msg.identity.external_id)
        turn = _Turn(msg, record_id, conv, customer, now)
        await self._dispatch(turn)
        conv.turns += 1
        result = {**turn.result, "outbox_ids": turn.outbox_ids}
        if turn.rules:
            result["rules"] = turn.rules
        conv.remember(record_id, result)
        await self._conversations.save(conv, now)
        return result

    async def _dispatch(self, t: _Turn) -> None:
        msg = t.msg
        if msg.meta.get("ticket_number"):
            await self._append_to_number(t, str(msg.meta["ticket_number"]))
            return
        if msg.kind == "form":
            await self._form(t)
            return
        if msg.kind == "event":
            t.result = {"action": "recorded"}
            return
        if msg.kind == "action":
            await self._action(t, str(msg.fields.get("action", "")), str(msg.fields.get("value", "")))
            return
        if msg.kind == "edit":
            await self._edit(t)
            return
        await self._text(t)

    # -- replies ----------------------------------------------------------------------------------------

    async def _say(
        self,
        t: _Turn,
        text: str,
        *,
        buttons: Sequence[tuple[str, str]] = (),
        articles: Sequence[Mapping[str, Any]] = (),
    ) -> None:
        t.sent += 1
        t.conv.note("bot", text, t.now)
        record = await self._replier.reply(
            t.msg, text, key=f"{t.record_id}:{t.sent}", locale=t.locale, buttons=buttons, articles=articles
        )
        if record:
            t.outbox_ids.append(record)

    # -- customer text ----------------------------------------------------------------------------------

    async def _text(self, t: _Turn) -> None:
        text = t.msg.text.strip()
        conv = t.conv
        if text:
            conv.note("customer", text, t.now)
        if is_status(text):
            await self._status(t)
            return
        if is_human(text):
            await self._handoff(t)
            return
        if conv.state == "suggesting":
            await self._suggesting(t, text)
            return
        if conv.state == "confirming":
            answer = yes_no(text)
            if answer is not None:
                await self._solved(t, answer)
                return
            if number(text) is not None:  # picking another suggestion by number
                await self._suggesting(t, text)
                return
        if conv.state == "collecting":
            await self._collect(t, text)
            return
        current = await self._tickets.latest_for_conversation(conv.key)
        if current is not None and self._service.accepts_customer_reply(current):
            await self._append(t, current)
            return
        await self._new_problem(t, text)

    async def _new_problem(self, t: _Turn, text: str) -> None:
        conv = t.conv
        conv.reset()
        conv.problem = text or t.msg.text
        outcome = await self._apply_rules(t, text)
        if outcome.handoff:
            await self._handoff(t)
            return
        suggestions: list[Suggestion] = []
        if text and not outcome.skip_suggestions:
            suggestions = self._kb.suggest(text, locale=conv.locale)
            await self._kb.log_query(
                text, locale=conv.locale, channel=t.msg.channel, suggested=[s.article_id for s in suggestions]
            )
        if not suggestions:
            await self._create_or_collect(t)
            return
        conv.suggestions = [s.to_dict() for s in suggestions]
        conv.state = "suggesting"
        self._arm_timeout(t)
        lines = [say("suggest_intro", t.locale)]
        lines += [f"{i}. {s.title}" for i, s in enumerate(suggestions, 1)]
        lines.append(say("suggest_prompt", t.locale, n=len(suggestions)))
        buttons = [(f"{i}. {s.title}"[:60], f"pick:{s.article_id}") for i, s in enumerate(suggestions, 1)]
        buttons.append((say("button_human", t.locale), "human"))
        await self._say(t, "\n".join(lines), buttons=buttons, articles=conv.suggestions)
        t.result = {"action": "suggested", "articles": [s.article_id for s in suggestions]}

    async def _suggesting(self, t: _Turn, text: str) -> None:
        choice = number(text)
        count = len(t.conv.suggestions)
        if choice == 0:
            await self._handoff(t)
        elif choice is not None and 1 <= choice <= count:
            await self._pick(t, str(t.conv.suggestions[choice - 1]["id"]))
        elif choice is not None:
            await self._say(t, say("pick_again", t.locale, n=count))
            t.result = {"action": "asked_again"}
        else:
            # Not a choice: the customer says more about the problem; match again on all of it.
            t.conv.problem = f"{t.conv.problem}\n{text}".strip()
            problem = t.conv.problem
            t.conv.state = "idle"
            await self._new_problem(t, problem)

    async def _pick(self, t: _Turn, article_id: str) -> None:
        conv = t.conv
        known = {str(s["id"]): s for s in conv.suggestions}
        found = known.get(article_id) or next((s.to_dict() for s in self._kb.by_ids([article_id])), None)
        if found is None:
            await self._say(t, say("nothing_found", t.locale))
            t.result = {"action": "unknown_article"}
            return
        conv.picked = article_id
        conv.state = "confirming"
        self._arm_timeout(t)
        await self._kb.record_view(article_id)
        text = say(
            "article", t.locale, title=found["title"], summary=found.get("summary", ""), url=found["url"]
        )
        await self._say(t, text, articles=[found])
        await self._say(
            t,
            say("ask_solved", t.locale),
            buttons=[(say("button_yes", t.locale), "solved:yes"), (say("button_no", t.locale), "solved:no")],
        )
        t.result = {"action": "article_sent", "article": article_id}

    async def _solved(self, t: _Turn, solved: bool) -> None:
        conv = t.conv
        if not solved or conv.picked is None:
            if conv.picked:
                await self._kb.record_feedback(conv.picked, helpful=False)
            await self._create_or_collect(t)
            return
        await self._kb.record_deflection(
            conv.picked,
            channel=conv.channel,
            conversation_key=conv.key,
            query=conv.problem,
            key=f"deflection:{t.record_id}",
        )
        await self._say(t, say("deflected", t.locale))
        t.result = {"action": "deflected", "article": conv.picked}
        conv.reset()

    # -- tickets ----------------------------------------------------------------------------------------

    def _required(self, category: str | None) -> list[RequiredField]:
        return list(self._settings().required_fields.get(category or "", []))

    async def _create_or_collect(self, t: _Turn) -> None:
        conv = t.conv
        if conv.category is None and conv.suggestions:
            conv.category = str(conv.suggestions[0].get("category") or "") or None
        missing = [
            dataclasses.asdict(f) for f in self._required(conv.category) if f.name not in conv.collected
        ]
        if missing:
            conv.pending_fields = missing
            conv.state = "collecting"
            self._arm_timeout(t)
            await self._ask_field(t)
            t.result = {"action": "collecting", "field": missing[0]["name"]}
            return
        await self._create_ticket(t)

    async def _ask_field(self, t: _Turn) -> None:
        spec = RequiredField(**t.conv.pending_fields[0])
        label = spec.label.get(t.locale) or spec.label.get("en") or spec.name
        text = say("ask_field", t.locale, label=label)
        if spec.skippable:
            text += say("ask_field_skip", t.locale)
        await self._say(t, text)

    async def _collect(self, t: _Turn, text: str) -> None:
        conv = t.conv
        spec = RequiredField(**conv.pending_fields[0])
        label = spec.label.get(t.locale) or spec.label.get("en") or spec.name
        if is_skip(text) and spec.skippable:
            conv.collected[spec.name] = ""
        elif not text or not spec.valid(text) or (is_skip(text) and not spec.skippable):
            await self._say(t, say("field_invalid", t.locale, label=label))
            t.result = {"action": "collecting", "field": spec.name, "invalid": True}
            return
        else:
            conv.collected[spec.name] = text.strip()
        conv.pending_fields.pop(0)
        if conv.pending_fields:
            self._arm_timeout(t)
            await self._ask_field(t)
            t.result = {"action": "collecting", "field": conv.pending_fields[0]["name"]}
            return
        await self._create_ticket(t)

    async def _create_ticket(self, t: _Turn) -> Ticket:
        conv, msg = t.conv, t.msg
        problem = conv.problem or msg.text or msg.subject or ""
        lines = [problem]
        if conv.suggestions:
            lines += ["", "Suggested articles / 推荐文章:"]
            lines += [
                f"- {s['title']} ({s['url']})" + (" [opened]" if s["id"] == conv.picked else "")
                for s in conv.suggestions
            ]
        if conv.transcript:
            lines += ["", "Transcript / 对话记录:"]
            lines += [f"[{e['from']}] {e['text']}" for e in conv.transcript]
        fields = {k: v for k, v in {**dict(msg.fields), **conv.collected}.items() if isinstance(v, str)}
        if conv.suggestions:
            fields["suggested_articles"] = ",".join(str(s["id"]) for s in conv.suggestions)
        new = NewTicket(
            subject=(msg.subject or problem.splitlines()[0] if problem else "")[:120],
            description="\n".join(lines).strip(),
            channel=msg.channel,
            account=msg.account,
            customer=t.customer,
            conversation_key=conv.key,
            reply_to=conv.reply_to,
            locale=t.locale,
            category=conv.category,
            priority=conv.priority or "normal",
            tags=tuple(conv.tags),
            fields=fields,
            attachments=tuple(dataclasses.asdict(a) for a in msg.attachments),
            source_key=f"dialog:{t.record_id}",
        )
        ticket, created = await self._service.create(
            new, Actor("customer", t.customer.id, t.customer.name or "")
        )
        t.result = {
            "action": "ticket_created" if created else "ticket_existing",
            "ticket_number": ticket.number,
            "ticket_id": ticket.id,
        }
        conv.reset()
        return ticket

    async def _handoff(self, t: _Turn) -> None:
        current = await self._tickets.open_for_conversation(t.conv.key)
        if current is not None and t.conv.state == "idle":
            await self._say(t, say("handoff_existing", t.locale, number=current.number))
            t.result = {"action": "handoff_existing", "ticket_number": current.number}
            return
        if not t.conv.problem:
            t.conv.problem = t.msg.text if not is_human(t.msg.text) else ""
        await self._create_or_collect(t)

    async def _append(self, t: _Turn, ticket: Ticket) -> None:
        actor = Actor("customer", t.customer.id, t.customer.name or "")
        attachments = [dataclasses.asdict(a) for a in t.msg.attachments]
        updated = await self._service.add_customer_comment(
            ticket,
            t.msg.text,
            actor,
            channel=t.msg.channel,
            event_id=f"inbox:{t.msg.dedup_key}",
            attachments=attachments,
        )
        if updated is None:
            await self._new_problem(t, t.msg.text.strip())
            return
        t.result = {"action": "comment", "ticket_number": updated.number, "ticket_id": updated.id}

    async def _append_to_number(self, t: _Turn, number_: str) -> None:
        try:
            ticket = await self._tickets.get_by_number(number_)
        except LookupError:
            await self._text(t)
            return
        await self._append(t, ticket)

    async def _status(self, t: _Turn) -> None:
        tickets = await self._tickets.search(
            {"requester": t.customer.id, "status": {"$in": list(OPEN_STATUSES)}}, after=None, limit=10
        )
        if not tickets:
            await self._say(t, say("status_none", t.locale))
        else:
            names = STATUS_NAMES[t.locale if t.locale in STATUS_NAMES else "en"]
            lines = [say("status_head", t.locale)]
            lines += [f"{tk.number} {tk.subject} — {names.get(tk.status, tk.status)}" for tk in tickets]
            await self._say(t, "\n".join(lines))
        t.result = {"action": "status", "tickets": [tk.number for tk in tickets]}

    # -- forms, actions, edits ----------------------------------------------------------------------------

    async def _form(self, t: _Turn) -> None:
        """A form submission is a report already: rules may classify it, then it becomes a ticket."""
        msg, conv = t.msg, t.conv
        conv.reset()
        conv.problem = msg.text
        outcome = await self._apply_rules(t, f"{msg.subject or ''}\n{msg.text}")
        conv.category = str(msg.fields.get("category") or "") or outcome.category
        await self._create_ticket(t)

    async def _action(self, t: _Turn, action: str, value: str) -> None:
        if action == "welcome":
            await self._welcome(t)
        elif action == "start_report":
            t.conv.reset()
            await self._say(t, say("welcome", t.locale))
            t.result = {"action": "start_report"}
        elif action == "check_status":
            await self._status(t)
        elif action == "top_articles":
            await self._top(t, value)
        elif action == "human":
            await self._handoff(t)
        elif action == "pick":
            if t.conv.state not in ("suggesting", "confirming"):
                t.conv.suggestions = [s.to_dict() for s in self._kb.by_ids([value])]
            await self._pick(t, value)
        elif action == "solved":
            await self._solved(t, value == "yes")
        elif action == "timeout":
            await self._timeout(t)
        else:
            log.info("unknown dialog action %r on %s", action, t.conv.key)
            t.result = {"action": "ignored", "reason": f"unknown action {action!r}"}

    async def _welcome(self, t: _Turn) -> None:
        text = say("welcome", t.locale)
        categories = self._kb.categories(t.locale)
        if categories:
            text += "\n" + say(
                "categories",
                t.locale,
                names="、".join(categories) if t.locale == "zh-CN" else ", ".join(categories),
            )
        await self._say(t, text, buttons=[(c, f"top:{c}") for c in categories[:6]])
        t.result = {"action": "welcome"}

    async def _top(self, t: _Turn, category: str) -> None:
        found = self._kb.top(category, locale=t.locale) or self._kb.top(category)
        if not found:
            await self._say(t, say("nothing_found", t.locale))
            t.result = {"action": "top_articles", "articles": []}
            return
        t.conv.reset()
        t.conv.suggestions = [s.to_dict() for s in found]
        t.conv.state = "suggesting"
        self._arm_timeout(t)
        lines = [say("top_head", t.locale, category=category)]
        lines += [f"{i}. {s.title}" for i, s in enumerate(found, 1)]
        lines.append(say("suggest_prompt", t.locale, n=len(found)))
        await self._say(
            t,
            "\n".join(lines),
            buttons=[(s.title[:60], f"pick:{s.article_id}") for s in found],
            articles=t.conv.suggestions,
        )
        t.result = {"action": "top_articles", "articles": [s.article_id for s in found]}

    async def _timeout(self, t: _Turn) -> None:
        """No answer in time while we waited on the customer: a person takes over."""
        if t.conv.state == "idle" or (t.conv.expires_at and t.conv.expires_at > t.now):
            t.result = {"action": "ignored", "reason": "not waiting"}
            return
        await self._create_ticket(t)

    async def _edit(self, t: _Turn) -> None:
        current = await self._tickets.open_for_conversation(t.conv.key)
        if current is None:
            t.result = {"action": "recorded"}
            return
        actor = Actor("customer", t.customer.id, t.customer.name or "")
        await self._service.add_customer_comment(
            current,
            f"(edited) {t.msg.text}",
            actor,
            channel=t.msg.channel,
            event_id=f"inbox:{t.msg.dedup_key}",
        )
        t.result = {"action": "comment", "ticket_number": current.number}

    # -- helpers ----------------------------------------------------------------------------------------

    def _arm_timeout(self, t: _Turn) -> None:
        t.conv.expires_at = t.now + timedelta(minutes=self._settings().timeout_minutes)

    async def _apply_rules(self, t: _Turn, text: str) -> RuleOutcome:
        if self._rules is None:
            return RuleOutcome()
        outcome = await self._rules.evaluate(
            RuleContext(
                channel=t.msg.channel,
                text=text,
                now=t.now,
                first_contact=t.conv.new and t.conv.turns == 0,
                locale=t.locale,
                customer_tags=t.customer.tags,
            )
        )
        for reply in outcome.replies:
            await self._say(t, reply)
        t.conv.category = outcome.category or t.conv.category
        t.conv.priority = outcome.priority or t.conv.priority
        t.conv.tags = sorted({*t.conv.tags, *outcome.tags})
        t.rules += outcome.fired
        return outcome


__all__ = ["DialogEngine"]
