"""The web simulator's SMS mode in real headless Chromium: a message thread on the phone
that sends MOs to the channel's Kannel route (`GET /sms/kannel`, as smsbox does) and
shows the replies joined, with the parts they take over the air — `make run` needs
neither Kannel nor an SMSC. USSD still works after switching modes."""

from __future__ import annotations

import os
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest

from hotline.base.config import load_settings
from hotline.dialogue.server import LocalServer, in_process
from sms.segments import segment
from tests.sms.conftest import ROOT, sms_flows
from tests.tools.test_simulator import CHROMIUM, CHROMIUM_ARGS

SIG = "【hotline】"
BALANCE_ZH = "您的话费余额为12.50元。" + SIG
# A keyword whose answer takes two UCS-2 parts: the handset shows it as one message.
LONG_FLOW = """\
spec: 1
id: smslong
start: notice
entries:
  - sms: [ZD]
states:
  notice:
    kind: end
    prompt:
      - { key: main.title }
      - { key: result.balance_unknown }
      - { key: result.data_unknown }
      - { key: result.voice_unknown }
      - { key: result.sms_unknown }
"""
LONG_ZH = (
    "话费查询暂时无法查询您的话费余额，请稍后再试。暂时无法查询您的流量余量，请稍后再试。"
    "暂时无法查询您的通话余量，请稍后再试。暂时无法查询您的短信余量，请稍后再试。" + SIG
)


@pytest.fixture
async def sms_page(tmp_path: Path) -> AsyncIterator[tuple[Any, LocalServer]]:
    if CHROMIUM is None:
        pytest.skip("chromium is not installed (make system-deps installs Debian's chromium)")
    from playwright.async_api import async_playwright

    flows = sms_flows(tmp_path)
    (flows / "smslong.yaml").write_text(LONG_FLOW, "utf-8")
    overrides = {"simulator": True, "flows_dir": str(flows), "prompts_dir": str(ROOT / "prompts")}
    async with in_process(load_settings(), overrides) as server, async_playwright() as pw:
        browser = await pw.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        page = await browser.new_page(viewport={"width": 860, "height": 720})
        errors: list[str] = []
        page.on("pageerror", lambda exc: errors.append(str(exc)))
        await page.goto(f"{server.url}/simulator")
        await page.check("input[name=mode][value=sms]")
        yield page, server
        await browser.close()
        assert not errors, errors


async def _send(page: Any, text: str) -> Any:
    """Type `text` and press the green key; the reply bubble that answers it."""
    before = await page.locator("#thread li.mt").count()
    await page.fill("#compose", text)
    await page.click("#call")
    reply = page.locator("#thread li.mt").nth(before)
    await reply.wait_for()
    return reply


async def test_sms_mode_thread_keywords_menu_and_a_joined_long_reply(
    sms_page: tuple[Any, LocalServer], tmp_path: Path
) -> None:
    page, _ = sms_page
    assert await page.locator("#display").is_hidden()
    assert await page.locator("#thread").is_visible()

    reply = await _send(page, "YE")
    assert await reply.locator(".body").inner_text() == BALANCE_ZH
    assert await reply.locator(".meta").inner_text() == "1 part · UCS-2"
    assert await page.locator("#thread li.mo .body").first.inner_text() == "YE"

    menu = await _send(page, "CD")
    assert await menu.locator(".body").inner_text() == (
        "话费查询\n1.话费余额\n2.退出\n回复序号继续。" + SIG
    )
    # The inspector finds the SMS session by its message id and shows the menu state.
    await page.locator("#inspector[data-state=main]").wait_for()
    # The reply digit from the keypad continues the menu.
    await page.click("#keypad button[data-key='1']")
    assert await page.input_value("#compose") == "1"
    await page.click("#call")
    await page.locator("#thread li.mt").nth(2).filter(has_text="12.50元").wait_for()

    long = await _send(page, "ZD")
    assert await long.locator(".body").inner_text() == LONG_ZH
    assert segment(LONG_ZH).count == 2  # what Kannel would send: two UCS-2 parts
    assert await long.get_attribute("data-parts") == "2"
    assert await long.locator(".meta").inner_text() == "2 parts · UCS-2"
    # The page cuts texts as sms/segments.py does.
    for text in ("A" * 161, "€" * 81, "余" * 135, "😀" * 36, "Your balance"):
        split = await page.evaluate("t => window.hotlineSim.smsParts(t).parts", text)
        assert split == list(segment(text).parts), text

    update = os.environ.get("HOTLINE_UPDATE_SCREENSHOTS") == "1"
    shot = (ROOT / "docs" / "img" if update else tmp_path) / "simulator-sms.png"
    await page.screenshot(path=str(shot))
    assert shot.read_bytes().startswith(b"\x89PNG")


async def test_unknown_keyword_help_and_back_to_ussd(sms_page: tuple[Any, LocalServer]) -> None:
    page, _ = sms_page
    help_reply = await _send(page, "HELLO")
    assert (await help_reply.locator(".body").inner_text()).startswith("未识别的指令。")
    # USSD mode still works: the thread goes away and the menu shows.
    await page.check("input[name=mode][value=ussd]")
    assert await page.locator("#thread").is_hidden()
    await page.click("#call")
    await page.locator("#display").filter(has_text="6.退出").wait_for()
    # … and the thread is still there when SMS mode comes back.
    await page.check("input[name=mode][value=sms]")
    assert await page.locator("#thread li.mt").count() == 1
