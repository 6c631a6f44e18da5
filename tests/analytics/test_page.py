"""`/admin/analytics`: the token guards the data; the page draws it in real headless
Chromium (Debian's, through Playwright's DevTools driver; no browser is downloaded)."""

from __future__ import annotations

import os
import re
import shutil
from collections.abc import Awaitable, Callable
from pathlib import Path

import pytest

from tests.analytics.conftest import ACTIVE, ADMIN_TOKEN, ROOT, Client, Ussd, sms
from tests.analytics.test_report import _ussd_day

MakeClient = Callable[..., Awaitable[Client]]
CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")
CHROMIUM_ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]
BEARER = {"Authorization": f"Bearer {ADMIN_TOKEN}"}


async def test_data_needs_the_admin_token_and_a_sane_range(make_client: MakeClient) -> None:
    client = await make_client()
    assert (await client.get("/admin/analytics/data")).status == 401
    wrong = await client.get("/admin/analytics/data", headers={"Authorization": "Bearer nope"})
    assert wrong.status == 401
    bad = await client.get("/admin/analytics/data?since=yesterday", headers=BEARER)
    assert bad.status == 400 and "7d" in await bad.text()
    backwards = await client.get("/admin/analytics/data?since=1d&until=2000-01-01", headers=BEARER)
    assert backwards.status == 400
    ok = await client.get("/admin/analytics/data?since=7d", headers=BEARER)
    assert ok.status == 200
    data = await ok.json()
    assert len(data["upstream"]) == 7 and data["min_group"] == 5 and data["rows"] == []
    page = await client.get("/admin/analytics")
    assert page.status == 200 and "analytics.js" in await page.text()
    assert "default-src 'self'" in page.headers["Content-Security-Policy"]


async def test_no_page_without_an_admin_token(make_client: MakeClient) -> None:
    client = await make_client(security={"admin_token": None})
    assert (await client.get("/admin/analytics")).status == 404
    assert (await client.get("/admin/analytics/data")).status == 404


async def test_page_draws_a_scripted_day(make_client: MakeClient, tmp_path: Path) -> None:
    if CHROMIUM is None:
        pytest.skip("chromium is not installed (make system-deps installs Debian's chromium)")
    from playwright.async_api import async_playwright

    client = await make_client(analytics={"enabled": True, "settle_after": 0})
    await _ussd_day(client)
    for phone, score in zip(ACTIVE, ("5", "4", "4", "3", "5"), strict=True):
        await sms(client, phone, f"PJ {score}")
    await Ussd(client, "late", ACTIVE[0]).send()  # still open: not counted yet
    base = str(client.make_url("")).rstrip("/")
    async with async_playwright() as pw:
        browser = await pw.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        page = await browser.new_page(viewport={"width": 1100, "height": 1400})
        errors: list[str] = []
        foreign: list[str] = []
        page.on("pageerror", lambda exc: errors.append(str(exc)))
        page.on("request", lambda r: None if r.url.startswith(base) else foreign.append(r.url))
        await page.goto(f"{base}/admin/analytics")
        await page.fill("#token", "wrong")
        await page.click("#load")
        await page.locator("#status", has_text="wrong token").wait_for()
        await page.fill("#token", ADMIN_TOKEN)
        await page.click("#load")
        await page.locator("body[data-loaded='1']").wait_for()
        # The USSD sessions settled as they ended; the abandoned ones wait for their
        # lifetime, so the page counts what has settled: 8 balance contacts + 5 surveys.
        contacts = await page.inner_text("[data-kpi='contacts'] b")
        assert int(contacts) == 13
        assert await page.inner_text("[data-kpi='satisfaction (1-5)'] b") == "4.20"
        assert await page.locator(".bar-result").count() == 1
        assert int(await page.get_attribute(".bar-result", "data-n") or 0) == 10  # 5 + 5 surveys
        main_bar = page.locator(".funnel-bar[data-state='main']")
        assert await main_bar.count() == 1
        assert [
            await b.get_attribute("data-n") for b in await page.locator(".score-bar").all()
        ] == ["0", "0", "1", "2", "2"]
        text = await page.inner_text("main")
        assert "suppressed" in text
        assert not re.search(r"13800138|12\.50", text)
        update = os.environ.get("HOTLINE_UPDATE_SCREENSHOTS") == "1"
        shot = (ROOT / "docs" / "img" if update else tmp_path) / "analytics.png"
        await page.screenshot(path=str(shot), full_page=True)
        await browser.close()
    assert not errors, errors
    assert not foreign, foreign
