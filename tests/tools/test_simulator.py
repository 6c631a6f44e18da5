"""The web simulator: mounted only when enabled, and driven in real headless Chromium.

The browser tests use Debian's `chromium` (installed by `make system-deps`) through
Playwright's DevTools driver; they never download a browser. They take the screenshots
shown in the README; `HOTLINE_UPDATE_SCREENSHOTS=1` saves them to docs/img/ (otherwise a
test run would leave the checkout modified).
"""

from __future__ import annotations

import os
import shutil
from collections.abc import AsyncIterator
from pathlib import Path
from urllib.parse import parse_qs

import pytest
from aiohttp.test_utils import TestClient

from hotline.base.config import load_settings
from hotline.dialogue.server import LocalServer, in_process
from hotline.web.app import create_app

ROOT = Path(__file__).resolve().parents[2]
IMG = ROOT / "docs" / "img"
CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")
CHROMIUM_ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--autoplay-policy=no-user-gesture-required",
]


@pytest.fixture(autouse=True)
def _at_root(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.chdir(ROOT)
    monkeypatch.setenv("HOTLINE_BALANCE__LEDGER_PATH", str(tmp_path / "ledger.sqlite3"))


async def _screenshot(page: object, name: str, tmp_path: Path, docs: bool = True) -> None:
    """Take a screenshot; keep it for the README only when asked to (and `docs`)."""
    update = docs and os.environ.get("HOTLINE_UPDATE_SCREENSHOTS") == "1"
    path = (IMG if update else tmp_path) / name
    path.parent.mkdir(parents=True, exist_ok=True)
    await page.screenshot(path=str(path))  # type: ignore[attr-defined]
    assert path.read_bytes().startswith(b"\x89PNG")


async def test_off_by_default(aiohttp_client: type[TestClient]) -> None:
    client = await aiohttp_client(create_app(load_settings()))  # type: ignore[operator]
    assert (await client.get("/simulator")).status == 404


async def test_page_and_static_files_when_enabled(aiohttp_client: type[TestClient]) -> None:
    settings = load_settings(simulator=True)
    client = await aiohttp_client(create_app(settings))  # type: ignore[operator]
    page = await client.get("/simulator")
    assert page.status == 200
    html = await page.text()
    for asset in ("/simulator/static/phone.css", "/simulator/static/phone.js"):
        assert asset in html
        served = await client.get(asset)
        assert served.status == 200, asset
    script = await (await client.get("/simulator/static/phone.js")).text()
    assert '"/ussd/africastalking"' in script and '"/ivr/twilio/voice"' in script
    assert (await client.get("/simulator/static/../__init__.py")).status in (403, 404)


@pytest.fixture
async def browser_page() -> AsyncIterator[tuple[object, LocalServer]]:
    if CHROMIUM is None:
        pytest.skip("chromium is not installed (make system-deps installs Debian's chromium)")
    from playwright.async_api import async_playwright

    async with (
        in_process(load_settings(), {"simulator": True}) as server,
        async_playwright() as pw,
    ):
        base_url = server.url
        browser = await pw.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        page = await browser.new_page(viewport={"width": 860, "height": 720})
        errors: list[str] = []
        page.on("pageerror", lambda exc: errors.append(str(exc)))
        await page.goto(f"{base_url}/simulator")
        yield page, server
        await browser.close()
        assert not errors, errors


async def _press(page: object, keys: str) -> None:
    for key in keys:
        await page.click(f"#keypad button[data-key='{key}']")  # type: ignore[attr-defined]


async def test_ussd_dial_balance_and_language(
    browser_page: tuple[object, LocalServer], tmp_path: Path
) -> None:
    page, _ = browser_page
    display = page.locator("#display")  # type: ignore[attr-defined]
    screen = page.locator("#screen")  # type: ignore[attr-defined]

    await page.click("#call")  # type: ignore[attr-defined]
    await display.filter(has_text="6.退出").wait_for()
    assert "话费查询" in await display.inner_text()
    assert await page.inner_text("#budget") == "52/80 UCS-2"  # type: ignore[attr-defined]
    await _press(page, "1")
    await _screenshot(page, "simulator-ussd.png", tmp_path)
    await page.click("#call")  # type: ignore[attr-defined]
    await display.filter(has_text="您的话费余额为12.50元。").wait_for()
    assert await screen.get_attribute("data-state") == "end"

    await page.click("#hangup")  # type: ignore[attr-defined]
    await page.click("#call")  # type: ignore[attr-defined]
    await display.filter(has_text="6.退出").wait_for()
    await _press(page, "5")
    await page.click("#call")  # type: ignore[attr-defined]
    await display.filter(has_text="请选择语言").wait_for()
    await _press(page, "2")
    await page.click("#call")  # type: ignore[attr-defined]
    await display.filter(has_text="Balance service").wait_for()
    await _press(page, "1")
    await page.click("#call")  # type: ignore[attr-defined]
    await display.filter(has_text="Your main balance is CNY 12.50.").wait_for()


async def test_call_reaches_the_balance_prompt(
    browser_page: tuple[object, LocalServer], tmp_path: Path
) -> None:
    page, server = browser_page
    log = page.locator("#log")  # type: ignore[attr-defined]
    await page.check("input[name=mode][value=call]")  # type: ignore[attr-defined]
    await page.click("#call")  # type: ignore[attr-defined]
    await page.locator("#screen[data-gather=open]").wait_for(timeout=15_000)  # type: ignore[attr-defined]
    await log.filter(has_text="♪ /ivr/audio/").wait_for()
    await _screenshot(page, "simulator-call.png", tmp_path)
    before = await page.evaluate("window.hotlineSim.heard.length")  # type: ignore[attr-defined]
    await _press(page, "1")
    await log.filter(has_text="Digits=1").wait_for()
    await page.wait_for_function(  # type: ignore[attr-defined]
        "n => window.hotlineSim.heard.length > n", arg=before, timeout=15_000
    )  # a clip after the key: the balance prompt
    assert "call failed" not in await page.inner_text("#display")  # type: ignore[attr-defined]
    speech_text = server.speech_text()
    assert speech_text is not None  # the in-process app publishes SPEECH_TEXT
    # What the caller heard, clip by clip: the balance, then the offer to hear it again.
    await page.wait_for_function(  # type: ignore[attr-defined]
        "n => window.hotlineSim.heard.length >= n + 3", arg=before, timeout=15_000
    )
    heard = await page.evaluate("window.hotlineSim.heard")  # type: ignore[attr-defined]
    said = "".join(speech_text(url) or "?" for url in heard)
    # The key cut the menu short (barge-in), as on a real call.
    assert said.startswith("话费查询")
    assert said.endswith("您的话费余额为十二元五角。重听请按星号键，返回主菜单请按零。")
    # The call stays open for `*` (again) or `0` (main menu).
    await page.locator("#screen[data-gather=open]").wait_for(timeout=15_000)  # type: ignore[attr-defined]


async def _log_lines(page: object) -> list[dict[str, object]]:
    """Each log line: its number box (text, clipped or not, inside the log) and its text."""
    return await page.evaluate(  # type: ignore[attr-defined,no-any-return]
        """() => {
          const log = document.getElementById("log").getBoundingClientRect();
          return Array.from(document.querySelectorAll("#log li"), (li) => {
            const n = li.querySelector(".n"), box = n.getBoundingClientRect();
            return {
              n: n.textContent, text: li.querySelector(".t").textContent, title: li.title,
              whole: n.scrollWidth <= n.clientWidth && box.left >= log.left - 0.5
                && box.right <= log.right + 0.5,
            };
          });
        }"""
    )


async def test_log_shows_numbers_from_10_and_complete_lines_whole(
    browser_page: tuple[object, LocalServer], tmp_path: Path
) -> None:
    page, _ = browser_page
    display = page.locator("#display")  # type: ignore[attr-defined]
    await page.click("#call")  # type: ignore[attr-defined]
    await display.filter(has_text="6.退出").wait_for()
    await _press(page, "1")
    await page.click("#call")  # type: ignore[attr-defined]
    await display.filter(has_text="您的话费余额为12.50元。").wait_for()
    # A second session, with a two-digit input (00: home) to push the log past 10 lines.
    for keys, shown in (("", "6.退出"), ("5", "请选择语言"), ("00", "6.退出"), ("1", "12.50元")):
        if keys:
            await _press(page, keys)
        elif await page.get_attribute("#screen", "data-state") == "end":  # type: ignore[attr-defined]
            await page.click("#hangup")  # type: ignore[attr-defined]
        await page.click("#call")  # type: ignore[attr-defined]
        await display.filter(has_text=shown).wait_for()
    await page.wait_for_function("document.querySelectorAll('#log li').length >= 12")  # type: ignore[attr-defined]
    await page.locator("#log li").nth(11).scroll_into_view_if_needed()  # type: ignore[attr-defined]
    await _screenshot(page, "simulator-log.png", tmp_path, docs=False)

    lines = await _log_lines(page)
    assert [line["n"] for line in lines] == [str(i) for i in range(1, len(lines) + 1)]
    assert all(line["whole"] for line in lines), [ln for ln in lines if not ln["whole"]]
    texts = [line["text"] for line in lines]
    assert '→ USSD *100# text="5*00"' in texts  # the two-digit input, whole
    # A one-line answer is complete: no "…"; a menu's first line says more follows.
    assert texts.count("← END 您的话费余额为12.50元。") == 2
    assert "← CON 话费查询 …" in texts
    menu = next(line for line in lines if line["text"] == "← CON 话费查询 …")
    assert str(menu["title"]).startswith("CON 话费查询\n1.话费余额")  # the whole answer on hover
    for line in lines:  # every answer: "…" exactly when the screen has more lines
        if str(line["text"]).startswith("← "):
            assert str(line["text"]).endswith(" …") == ("\n" in str(line["title"])), line


async def test_ussd_direct_dial_sends_the_rest_as_text(
    browser_page: tuple[object, LocalServer], tmp_path: Path
) -> None:
    """`*100*1#` typed is service code `*100#` with text `1`, as Africa's Talking sends it."""
    page, _ = browser_page
    display = page.locator("#display")  # type: ignore[attr-defined]
    sent: list[dict[str, list[str]]] = []

    def record(request: object) -> None:
        if request.url.endswith("/ussd/africastalking"):  # type: ignore[attr-defined]
            sent.append(parse_qs(request.post_data or "", keep_blank_values=True))  # type: ignore[attr-defined]

    page.on("request", record)  # type: ignore[attr-defined]

    await _press(page, "*100*1#")
    assert await page.inner_text("#entry") == "*100*1#"  # type: ignore[attr-defined]
    await page.click("#call")  # type: ignore[attr-defined]
    await display.filter(has_text="您的话费余额为12.50元。").wait_for()
    assert (sent[-1]["serviceCode"], sent[-1]["text"]) == (["*100#"], ["1"])

    await page.click("#hangup")  # type: ignore[attr-defined]
    await _press(page, "*100*5*2#")  # language menu, then English: two inputs at once
    await page.click("#call")  # type: ignore[attr-defined]
    await display.filter(has_text="Balance service").wait_for()
    assert (sent[-1]["serviceCode"], sent[-1]["text"]) == (["*100#"], ["5*2"])
    await _screenshot(page, "simulator-direct-dial.png", tmp_path, docs=False)
    assert len({s["sessionId"][0] for s in sent}) == 2  # each dial is a new session
    await _press(page, "1")  # the session goes on after the direct dial's inputs
    await page.click("#call")  # type: ignore[attr-defined]
    await display.filter(has_text="Your main balance is CNY 12.50.").wait_for()
    assert (sent[-1]["serviceCode"], sent[-1]["text"]) == (["*100#"], ["5*2*1"])
    assert sent[-1]["sessionId"] == sent[-2]["sessionId"]
    log = await page.inner_text("#log")  # type: ignore[attr-defined]
    assert '→ USSD *100# text="1"' in log and '→ USSD *100# text="5*2*1"' in log

    await page.click("#hangup")  # type: ignore[attr-defined]
    await _press(page, "*100#")  # the plain code still dials the main menu
    await page.click("#call")  # type: ignore[attr-defined]
    await display.filter(has_text="Balance service").wait_for()
    assert (sent[-1]["serviceCode"], sent[-1]["text"]) == (["*100#"], [""])

    split = "([typed, code]) => window.hotlineSim.directDial(typed, code)"
    for typed, registered, expected in (
        ("*384*55*1*2#", "*384*55#", {"code": "*384*55#", "inputs": ["1", "2"]}),  # shared code
        ("*384*55#", "*384*55#", {"code": "*384*55#", "inputs": []}),
        ("*101*3#", "*100#", {"code": "*101#", "inputs": ["3"]}),  # another code: first number
        ("*1000*1#", "*100#", {"code": "*1000#", "inputs": ["1"]}),  # not *100# + "0*1"
    ):
        got = await page.evaluate(split, [typed, registered])  # type: ignore[attr-defined]
        assert got == expected, (typed, registered)
