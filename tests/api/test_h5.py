"""The H5 page in real headless Chromium: sign in with the SMS code from the real
outbox, see balance and allowances, switch to English, sign out.

Like tests/tools/test_simulator.py it uses Debian's `chromium` through Playwright's
DevTools driver (no browser download). `HOTLINE_UPDATE_SCREENSHOTS=1` keeps the
screenshot in docs/img/ for docs/api.md.
"""

from __future__ import annotations

import os
import shutil
from pathlib import Path

import pytest

from tests.api.conftest import PHONE, ROOT, running

CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")
ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]


@pytest.mark.skipif(CHROMIUM is None, reason="chromium is not installed (make system-deps)")
async def test_h5_sign_in_balance_and_language(tmp_path: Path, redis_url: str) -> None:
    from playwright.async_api import async_playwright

    async with running(tmp_path, redis_url) as api, async_playwright() as pw:
        base = str(api.client.make_url("/h5"))
        browser = await pw.chromium.launch(executable_path=CHROMIUM, args=ARGS)
        page = await browser.new_page(viewport={"width": 390, "height": 760}, locale="zh-CN")
        errors: list[str] = []
        outside: list[str] = []
        page.on("pageerror", lambda exc: errors.append(str(exc)))
        host = base.split("/h5")[0]
        page.on(
            "request", lambda req: None if req.url.startswith(host) else outside.append(req.url)
        )
        await page.goto(base)
        assert await page.inner_text("h1") == "话费查询"
        await page.fill("#phone", PHONE)
        await page.click("#send")
        await page.locator("#message").filter(has_text="验证码已发送").wait_for()
        await page.fill("#code", api.last_code())
        await page.click("#login")
        await page.locator("#balance").filter(has_text="12.50元").wait_for()
        assert await page.inner_text("#who") == "已登录：138****8000"
        assert not await page.is_visible("#signin")  # the form gives way to the account
        items = await page.locator("#allowances li").all_inner_texts()
        assert items[0].startswith("剩余流量3.00GB") and items[1].startswith("剩余通话200分钟")
        assert items[2].startswith("剩余短信100条")
        shot = tmp_path / "h5-zh.png"
        if os.environ.get("HOTLINE_UPDATE_SCREENSHOTS") == "1":
            shot = ROOT / "docs" / "img" / "h5-balance.png"
        await page.screenshot(path=str(shot))
        assert shot.read_bytes().startswith(b"\x89PNG")

        await page.click("#lang")
        await page.locator("#balance").filter(has_text="CNY 12.50").wait_for()
        assert await page.inner_text("h2 >> nth=0") == "Balance"
        items = await page.locator("#allowances li").all_inner_texts()
        assert items[1].startswith("Talk time left: 200 min")
        await page.screenshot(path=str(tmp_path / "h5-en.png"))

        await page.click("#logout")
        await page.locator("#signin").wait_for(state="visible")
        await browser.close()
        assert not errors, errors
        assert not outside, outside  # no external asset, font or script
