"""A customer types a problem into the web form, sees matching articles, reads one in the panel and
presses "this solved my problem": a deflection is recorded and no ticket is made. Headless Chromium."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from playwright.async_api import async_playwright

from tests.helpers import CHROMIUM_ARGS, eventually, running_app


@pytest.mark.browser
async def test_suggestions_while_typing_then_solved_records_a_deflection_without_a_ticket(
    make_settings: Any, mongo: Any, chromium_path: str, artifacts: Path
) -> None:
    settings = make_settings(seed_demo=True)
    async with running_app(settings) as client, async_playwright() as pw:
        base = str(client.make_url("/forms/support"))
        browser = await pw.chromium.launch(executable_path=chromium_path, args=CHROMIUM_ARGS)
        try:
            page = await browser.new_page(locale="zh-CN", viewport={"width": 420, "height": 1100})
            suggest_calls: list[str] = []
            page.on("request", lambda r: suggest_calls.append(r.url) if "/api/v1/suggest" in r.url else None)
            await page.goto(base)
            assert await page.is_hidden("#suggestions")
            # typed like a person: one request after the pause, not one per keystroke
            await page.locator("#f-description").press_sequentially("打印机老是卡纸怎么办", delay=40)
            first = page.locator("#kb-list a").first
            await first.wait_for(timeout=10000)
            assert 1 <= len(suggest_calls) <= 3, suggest_calls
            assert "locale=zh-CN" in suggest_calls[-1] and "form=support" in suggest_calls[-1]
            titles = await page.locator("#kb-list a").all_text_contents()
            assert titles[0] == "打印机卡纸如何处理"
            href = await first.get_attribute("href") or ""
            assert href.startswith("/kb/zh-printer-paper-jam?") and "form=support" in href
            live = await page.text_content("#kb-live") or ""
            assert "找到" in live and await page.get_attribute("#kb-live", "aria-live") == "polite"
            # keyboard: the link is reachable and opens the panel with Enter
            await first.focus()
            await page.keyboard.press("Enter")
            await page.wait_for_selector("#kb-panel .kb-title")
            assert await page.text_content("#kb-panel .kb-title") == "打印机卡纸如何处理"
            assert await page.evaluate("document.activeElement.id") == "kb-article-title"
            await page.screenshot(path=str(artifacts / "webform-suggestions.png"), full_page=True)
            await page.click("#kb-solved")
            await page.wait_for_selector("#kb-done:not([hidden])")
            assert "没有为此创建工单" in (await page.text_content("#kb-done") or "")
            assert await page.is_hidden("#support-form")
            await page.screenshot(path=str(artifacts / "webform-solved.png"), full_page=True)

            async def recorded() -> Any:
                return await mongo.deflections.find_one({"article_id": "zh-printer-paper-jam"})

            deflection = await eventually(recorded)
            assert deflection["channel"] == "webform" and "卡纸" in deflection["query"]
            article = await mongo.articles.find_one({"_id": "zh-printer-paper-jam"})
            assert article["stats"]["deflections_by_channel"] == {"webform": 1}
            assert article["stats"]["views"] == 1  # the panel counted a view
            assert await mongo.tickets.count_documents({}) == 0
            assert await mongo.inbox.count_documents({}) == 0
            # the customer can still send a request if they change their mind
            await page.click("#kb-resume")
            assert await page.is_visible("#support-form")
        finally:
            await browser.close()


@pytest.mark.browser
async def test_article_page_opened_from_the_form_records_a_deflection(
    make_settings: Any, mongo: Any, chromium_path: str
) -> None:
    """Without the panel (a link opened in a new tab): the article page has its own button."""
    settings = make_settings(seed_demo=True)
    async with running_app(settings) as client, async_playwright() as pw:
        browser = await pw.chromium.launch(executable_path=chromium_path, args=CHROMIUM_ARGS)
        try:
            page = await browser.new_page(locale="en")
            url = client.make_url("/kb/en-printer-offline").with_query(
                {"form": "support", "q": "printer offline", "key": "tab-key-0001", "lang": "en"}
            )
            await page.goto(str(url))
            assert await page.title() == "Printer shows as offline · Help centre"
            await page.click("#kb-solved")
            await page.wait_for_selector("#kb-status.ok")
            assert "No ticket was created" in (await page.text_content("#kb-status") or "")
            deflection = await eventually(lambda: mongo.deflections.find_one({}))
            assert deflection["conversation_key"] == "webform:support:tab-key-0001"
            assert await mongo.tickets.count_documents({}) == 0
        finally:
            await browser.close()
