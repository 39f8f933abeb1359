"""A person's path through the web form, in headless Chromium: fill it in, submit, see the ticket number."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from playwright.async_api import async_playwright

from tests.helpers import CHROMIUM_ARGS, running_app


@pytest.mark.browser
async def test_person_submits_the_form_and_sees_the_ticket_number(
    settings: Any, mongo: Any, chromium_path: str, artifacts: Path, tmp_path: Path
) -> None:
    async with running_app(settings) as client, async_playwright() as pw:
        base = str(client.make_url("/forms/support"))
        browser = await pw.chromium.launch(executable_path=chromium_path, args=CHROMIUM_ARGS)
        try:
            page = await browser.new_page(locale="zh-CN", viewport={"width": 420, "height": 900})
            await page.goto(base)
            assert await page.title() == "联系售后"
            # submitting empty shows per-field errors, announced and focusable
            await page.click("#submit")
            await page.wait_for_selector("#e-subject:not(:empty)")
            assert await page.get_attribute("#f-subject", "aria-invalid") == "true"
            assert "必填" in (await page.text_content("#e-subject") or "")
            await page.fill("#f-name", "王小明")
            await page.fill("#f-email", "wang@example.com")
            await page.fill("#f-subject", "打印机卡纸")
            await page.fill("#f-description", "每次打印第二页都会卡纸，已经换过纸了。")
            await page.select_option("#f-category", "printer")
            photo = tmp_path / "jam.png"
            photo.write_bytes(b"\x89PNG\r\n\x1a\n" + b"\x00" * 64)
            await page.set_input_files("#f-attachments", str(photo))
            await page.screenshot(path=str(artifacts / "webform-filled.png"), full_page=True)
            await page.click("#submit")
            await page.wait_for_selector("#ticket-number:not(:empty)", timeout=15000)
            number = (await page.text_content("#ticket-number") or "").strip()
            await page.screenshot(path=str(artifacts / "webform-submitted.png"), full_page=True)
            assert number.startswith("T-")
            ticket = await mongo.tickets.find_one({"number": number})
            assert ticket is not None
            assert ticket["subject"] == "打印机卡纸" and ticket["category"] == "printer"
            assert ticket["locale"] == "zh-CN" and ticket["attachments"][0]["filename"] == "jam.png"
            # the English page for the same form
            await page.goto(base + "?lang=en")
            assert await page.title() == "Contact support"
        finally:
            await browser.close()
