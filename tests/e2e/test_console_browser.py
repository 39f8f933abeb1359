"""An agent's and an admin's path through the console, in headless Chromium: log in, find a web-form
ticket, reply publicly (the customer gets the email) and add an internal note with an @mention (the
customer gets nothing, the colleague gets a notice), change status, tune the threshold in "try a query",
edit a template and see the preview, and read the dashboard's charts. Screenshots go to tests/artifacts."""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Any

import pytest
from playwright.async_api import Page, async_playwright

from channels.settings import EmailMailbox
from gateway.appkeys import TICKET_SERVICE, TICKETS
from tests.console_helpers import PASSWORD, make_account
from tests.helpers import CHROMIUM_ARGS, eventually, running_app, smtp_server
from ticket_core.model import Actor

CUSTOMER = "wang@example.com"


def _bodies(smtp: Any, recipient: str) -> list[str]:
    out = []
    for mail in smtp.messages:
        if mail["To"] == recipient:
            part = mail.get_body(preferencelist=("plain",))
            out.append(part.get_content() if part else "")
    return out


async def _shot(page: Page, artifacts: Path, name: str) -> None:
    await page.screenshot(path=str(artifacts / f"console-{name}.png"), full_page=True)


@pytest.mark.browser
async def test_agent_and_admin_work_in_the_console(
    make_settings: Any, mongo: Any, chromium_path: str, artifacts: Path
) -> None:
    async with smtp_server() as (port, smtp):
        mailbox = EmailMailbox(
            name="support",
            address="support@example.com",
            smtp_host="127.0.0.1",
            smtp_port=port,
            smtp_security="none",
        )
        settings = make_settings(email_mailboxes=(mailbox,), seed_demo=True)
        async with running_app(settings) as client, async_playwright() as pw:
            await make_account(client, "root", "admin", email="root@example.com")
            await make_account(client, "li", "agent", email="li@example.com")
            created = await client.post(
                "/forms/support",
                json={
                    "name": "王小明",
                    "email": CUSTOMER,
                    "subject": "Printer jams on page two",
                    "description": "Every second page jams.",
                    "locale": "en",
                },
            )
            assert created.status == 201, await created.text()
            number = (await created.json())["ticket"]["number"]
            await eventually(lambda: asyncio.sleep(0, result=_bodies(smtp, CUSTOMER)))  # the confirmation
            confirmations = len(_bodies(smtp, CUSTOMER))

            base = str(client.make_url("")).rstrip("/")
            browser = await pw.chromium.launch(executable_path=chromium_path, args=CHROMIUM_ARGS)
            try:
                # The console forbids eval by its CSP; the test's own wait_for_function predicates need it.
                page = await browser.new_page(
                    locale="en-US", viewport={"width": 1280, "height": 900}, bypass_csp=True
                )
                # log in (the console sends anonymous people to the login page)
                await page.goto(base + "/admin/")
                assert "/admin/login" in page.url
                await page.fill("#login", "root")
                await page.fill("#password", PASSWORD)
                await _shot(page, artifacts, "login")
                await page.click("#login-submit")
                await page.wait_for_selector("#queue")
                # find the web-form ticket in the queue
                row = page.locator(f'#queue tr[data-number="{number}"]')
                await row.wait_for()
                assert "webform" in (await row.text_content() or "")
                await _shot(page, artifacts, "queue")
                await row.locator("a").first.click()
                await page.wait_for_selector("#reply-form")
                assert (await page.text_content("#ticket-number")) == number

                # public reply: the customer receives it by email
                await page.fill("#reply-text", "Please update the printer firmware and try again.")
                await page.click("#reply-send")
                await page.wait_for_selector(".ev-public_reply")
                mails = await eventually(
                    lambda: asyncio.sleep(0, result=[b for b in _bodies(smtp, CUSTOMER) if "firmware" in b])
                )
                assert len(mails) == 1

                # internal note with a mention: the colleague is told, the customer is not
                await page.check("#type-internal")
                await page.fill("#reply-text", "@li can you check the printer logs? secret-internal-words")
                await page.click("#reply-send")
                await page.wait_for_selector(".ev-internal_note")
                notice = await eventually(lambda: asyncio.sleep(0, result=_bodies(smtp, "li@example.com")))
                assert "secret-internal-words" in notice[0] and f"/admin/tickets/{number}" in notice[0]

                # change the status
                await page.select_option("#f-status", "pending")
                await page.click("#props-save")
                await page.wait_for_selector(".ev-status_changed >> text=pending")
                ticket = await mongo.tickets.find_one({"number": number})
                assert ticket["status"] == "pending"
                await eventually(
                    lambda: asyncio.sleep(0, result=len(_bodies(smtp, CUSTOMER)) >= confirmations + 2)
                )
                await asyncio.sleep(1.0)  # let the outbox drain: nothing more may arrive
                assert not any("secret-internal-words" in b for b in _bodies(smtp, CUSTOMER))
                # live: the customer writes again (by email) while the page is open; it appears unasked
                service = client.app[TICKET_SERVICE]
                current = await client.app[TICKETS].get_by_number(number)
                await service.add_customer_comment(
                    current,
                    "Still jams after the update.",
                    Actor("customer", "c1", "王小明"),
                    channel="email",
                    event_id=f"{number}:live-test",
                )
                await page.wait_for_selector(".ev-customer_comment >> text=Still jams after the update.")
                assert "email" in (await page.text_content(".ev-customer_comment .chan") or "")
                assert await page.is_visible("#live-banner")
                await _shot(page, artifacts, "ticket")

                # matching: the threshold changes what a customer would be offered
                await page.goto(base + "/admin/matching")
                await page.wait_for_function("document.querySelector('#try-threshold').value !== ''")
                await page.fill("#try-q", "paper is stuck in the printer")
                await page.select_option("#try-locale", "en")
                await page.eval_on_selector(
                    "#try-threshold",
                    "e => { e.value = '0'; e.dispatchEvent(new Event('input')); }",
                )
                await page.click("#try-run")
                await page.wait_for_selector("#try-proposed tr.hit")
                current_hits = await page.locator("#try-current tr.hit").count()
                low_hits = await page.locator("#try-proposed tr.hit").count()
                assert low_hits > current_hits
                await page.eval_on_selector(
                    "#try-threshold",
                    "e => { e.value = '100'; e.dispatchEvent(new Event('input'));"
                    " e.dispatchEvent(new Event('change')); }",
                )
                await page.wait_for_function("document.querySelectorAll('#try-proposed tr.hit').length === 0")
                assert await page.locator("#try-current tr.hit").count() == current_hits
                first = await page.locator("#try-current tr:nth-child(2) td:nth-child(2)").text_content()
                assert first == "How to clear a paper jam"
                await _shot(page, artifacts, "matching")

                # templates: edit the public reply email and see the preview
                await page.goto(base + "/admin/templates")
                await page.wait_for_function("document.querySelector('#tpl-text').value.length > 0")
                assert await page.input_value("#tpl-locale") == "en"  # the person's language
                await page.wait_for_function("document.querySelector('#pv-text').textContent.length > 0")
                await page.fill(
                    "#tpl-text", "Hello {{ customer_name }}, about {{ ticket.number }}: {{ event.text }}"
                )
                await page.wait_for_function(
                    "document.querySelector('#pv-text').textContent"
                    ".startsWith('Hello Alex Doe, about T-000123')"
                )
                await page.click("#tpl-save")
                await page.wait_for_selector("#tpl-state:text('customised')")
                stored = await mongo.templates.find_one(
                    {"event": "public_reply", "channel": "email", "locale": "en"}
                )
                assert stored["text"].startswith("Hello {{ customer_name }}")
                await _shot(page, artifacts, "templates")

                # dashboard with data
                await page.goto(base + "/admin/dashboard")
                await page.wait_for_selector("body[data-charts-ready='1']")
                assert await page.locator("#c-volume rect.bar").count() >= 1
                assert await page.locator("#c-times circle.point").count() >= 1
                assert await page.locator("#c-backlog rect.bar").count() >= 1
                await _shot(page, artifacts, "dashboard")

                for name in ("kb", "agents", "channels", "rules", "routing", "audit"):
                    await page.goto(base + f"/admin/{name}")
                    await page.wait_for_load_state("networkidle")
                    await _shot(page, artifacts, name)
                assert await page.locator("#audit tbody tr").count() >= 2
                audit_text = await page.text_content("#audit") or ""
                assert "template.update" in audit_text and "root" in audit_text

                # the console in Chinese, chosen per person
                await page.select_option("#lang-select", "zh-CN")
                await page.wait_for_selector("html[lang='zh-CN']")
                await page.goto(base + "/admin/tickets")
                assert "工单" in (await page.text_content("header nav") or "")
            finally:
                await browser.close()
