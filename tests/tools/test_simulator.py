"""The web simulator: mounted only when enabled, and driven in real headless Chromium.

The browser tests use Debian's `chromium` (installed by `make system-deps`) through
Playwright's DevTools driver; they never download a browser. They take the screenshots
shown in the README; `HOTLINE_UPDATE_SCREENSHOTS=1` saves them to docs/img/ (otherwise a
test run would leave the checkout modified).
"""

from __future__ import annotations

import json
import os
import re
import shutil
from collections.abc import AsyncIterator
from pathlib import Path
from urllib.parse import parse_qs

import pytest
import yaml
from aiohttp.test_utils import TestClient

from hotline.base.config import load_settings
from hotline.dialogue.server import LocalServer, in_process
from hotline.flow.events import ChannelEvent
from hotline.flow.screen import Screen, Turn
from hotline.store.sessions import SessionRecord, session_key, subscriber_key
from hotline.web.app import FLOWS, create_app
from hotline.web.keys import SESSIONS, SETTINGS, TURN_OBSERVERS
from hotline.web.simulator.inspector import TURNS, StepLog

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
    assert await page.inner_text("#budget") == "64/80 UCS-2"  # type: ignore[attr-defined]
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


# ---- the inspector and the call transcript -----------------------------------------

USSD = "/ussd/africastalking"
INSPECTOR_ROUTES = (
    "/simulator/api/session?channel=ussd&session=s1",
    "/simulator/api/flow/balance",
    "/simulator/api/speech?url=http%3A%2F%2F127.0.0.1%2Fivr%2Faudio%2Fx.wav",
    "/simulator/static/inspector.js",
)


def _dial(session: str, text: str, code: str = "*100#") -> dict[str, str]:
    return {
        "sessionId": session,
        "serviceCode": code,
        "phoneNumber": "+8613800138000",
        "networkCode": "46000",
        "text": text,
    }


async def test_inspector_routes_404_and_nothing_recorded_when_off(
    aiohttp_client: type[TestClient],
) -> None:
    app = create_app(load_settings())
    client = await aiohttp_client(app)  # type: ignore[operator]
    answer = await client.post(USSD, data=_dial("s1", ""))
    assert (await answer.text()).startswith("CON ")
    for route in INSPECTOR_ROUTES:
        assert (await client.get(route)).status == 404, route
    # No observer, no step log: the core keeps nothing about turns.
    assert TURN_OBSERVERS not in app and TURNS not in app


def test_production_configs_leave_the_simulator_off(monkeypatch: pytest.MonkeyPatch) -> None:
    """The compose stack and the image never turn the simulator (and its inspector) on."""
    compose = yaml.safe_load((ROOT / "docker-compose.yml").read_text(encoding="utf-8"))
    env = compose["services"]["hotline"]["environment"]
    assert not any(name.startswith("HOTLINE_SIMULATOR") for name in env)
    assert "SIMULATOR" not in (ROOT / "Dockerfile").read_text(encoding="utf-8").upper()
    for name, value in env.items():
        monkeypatch.setenv(name, str(value))
    assert load_settings().simulator is False


async def test_inspector_session_is_decoded_masked_with_each_steps_events(
    aiohttp_client: type[TestClient],
) -> None:
    app = create_app(load_settings(simulator=True))
    client = await aiohttp_client(app)  # type: ignore[operator]
    await client.post(USSD, data=_dial("s1", ""))
    await client.post(USSD, data=_dial("s1", "9"))  # not an option: invalid
    assert (await (await client.post(USSD, data=_dial("s1", "9*1"))).text()).startswith("END ")

    got = await (await client.get("/simulator/api/session?channel=ussd&session=s1")).json()
    assert got["found"] is True
    flow = app[FLOWS].current("balance")
    assert flow is not None
    assert (got["flow"], got["version"], got["current"]) == ("balance", flow.version, True)
    assert (got["state"], got["kind"], got["ended"], got["back"]) == (
        "show_balance",
        "end",
        True,
        ["main"],
    )
    assert {"name": "balance", "type": "money", "value": "12.50元", "masked": None} in got["vars"]
    steps = got["steps"]
    assert [(s["n"], s["kind"], s["input"], s["state"]) for s in steps] == [
        (1, "start", None, "main"),
        (2, "input", "9", "main"),
        (3, "input", "1", "show_balance"),
    ]
    assert "started" in steps[0]["events"]
    assert steps[1]["events"] == ["invalid:main"]
    assert steps[2]["events"] == ["action:balance.lookup:ok", "ended:show_balance"]
    assert "owner" not in got  # the pseudonym-bearing owner stays inside

    # Whatever a record holds, the inspector shows phone numbers and secrets masked.
    record = SessionRecord(
        flow="balance",
        version=flow.version,
        state="main",
        language="en",
        vars={
            "target": "+8613912345678",
            "caller_number": "139 1234 5678",
            "card_pin": "123456",
            "amount": {"t": "money", "m": 123456, "c": "CNY", "e": 2},
            "data": {"t": "volume", "b": 3 * 1024**3},
            "note": "hello",
        },
    )
    env = app[SETTINGS].env
    await app[SESSIONS].save(
        session_key(env, "ussd", "crafted"), record.dumps(), 60, subscriber_key(env, "x"), None
    )
    got = await (await client.get("/simulator/api/session?channel=ussd&session=crafted")).json()
    shown = {v["name"]: (v["value"], v["masked"]) for v in got["vars"]}
    assert shown == {
        "target": ("139****5678", "phone"),
        "caller_number": ("139****5678", "phone"),
        "card_pin": ("••••", "secret"),
        "amount": ("CNY 1234.56", None),
        "data": ("3.00GB", None),
        "note": ("hello", None),
    }
    assert "12345678" not in json.dumps(got) and "123456" not in json.dumps(got)

    missing = await (await client.get("/simulator/api/session?channel=ivr&session=none")).json()
    assert (missing["found"], missing["steps"]) == (False, [])
    for bad in ("channel=web&session=s1", "channel=ussd&session=", "channel=ussd&session=a%20b"):
        assert (await client.get(f"/simulator/api/session?{bad}")).status == 400, bad


async def test_inspector_flow_graph_json_and_svg(aiohttp_client: type[TestClient]) -> None:
    app = create_app(load_settings(simulator=True))
    client = await aiohttp_client(app)  # type: ignore[operator]
    got = await (await client.get("/simulator/api/flow/balance?language=en")).json()
    flow = app[FLOWS].current("balance")
    assert flow is not None
    assert (got["id"], got["version"], got["start"], got["language"]) == (
        "balance",
        flow.version,
        "main",
        "en",
    )
    states = {n["name"]: n for n in got["nodes"] if n["kind"] != "entry"}
    assert set(states) == set(flow.states)
    assert states["main"] == {
        "name": "main",
        "kind": "menu",
        "text": "Balance service",
        "start": True,
    }
    assert {
        "source": "main",
        "target": "lookup_balance",
        "label": "1. Main balance",
        "error": False,
    } in got["edges"]
    if shutil.which("dot"):
        assert (
            got["svg"].lstrip().startswith("<?xml") and "<title>show_balance</title>" in got["svg"]
        )
    else:
        assert got["svg"] is None  # the page draws it
    assert (await client.get("/simulator/api/flow/nosuch")).status == 404
    assert (await client.get("/simulator/api/flow/balance?version=0000")).status == 404


async def test_inspector_speech_text_of_a_sealed_clip(aiohttp_client: type[TestClient]) -> None:
    app = create_app(load_settings(simulator=True))
    client = await aiohttp_client(app)  # type: ignore[operator]
    call = {"CallSid": "CA1", "From": "+8613800138000", "To": "+8610086", "CallStatus": "ringing"}
    twiml = await (await client.post("/ivr/twilio/voice", data=call)).text()
    first = re.search(r"<Play>([^<]+)</Play>", twiml)
    assert first is not None
    got = await (await client.get("/simulator/api/speech", params={"url": first[1]})).json()
    assert got == {"url": first[1], "text": "话费查询"}
    forged = first[1].replace("/ivr/audio/", "/ivr/audio/AAAA")
    assert (await client.get("/simulator/api/speech", params={"url": forged})).status == 404
    assert (await client.get("/simulator/api/speech")).status == 404


async def test_inspector_steps_mask_what_input_states_read(
    aiohttp_client: type[TestClient], tmp_path: Path
) -> None:
    """Keys typed at a `secret: true` input never show; nor do ones sent with a dial."""
    flows = tmp_path / "flows"
    flows.mkdir()
    for source in [*(ROOT / "flows").glob("*.yaml"), ROOT / "tests/flows/simulator/share.yaml"]:
        shutil.copy(source, flows / source.name)
    app = create_app(load_settings(simulator=True, flows_dir=flows))
    client = await aiohttp_client(app)  # type: ignore[operator]
    for text in ("", "13912345678", "13912345678*2580"):
        await client.post(USSD, data=_dial("typed", text, "*105#"))
    # `*105*13912345678*2580#`: the inputs arrive with the dial.
    answer = await client.post(USSD, data=_dial("dialled", "13912345678*2580", "*105#"))
    assert (await answer.text()).startswith("END ")
    typed = await (await client.get("/simulator/api/session?channel=ussd&session=typed")).json()
    assert [s["input"] for s in typed["steps"]] == [None, "139****5678", "••••"]
    dialled = await (await client.get("/simulator/api/session?channel=ussd&session=dialled")).json()
    assert [s["input"] for s in dialled["steps"]] == ["139****5678*••••"]
    for got in (typed, dialled):
        assert got["state"] == "done" and got["vars"][0]["value"] == "139****5678"
        assert "2580" not in json.dumps(got) and "13912345678" not in json.dumps(got)


def test_step_log_is_bounded() -> None:
    app = create_app(load_settings(simulator=True))
    log = StepLog(app, max_sessions=3, max_steps=2)
    for i in range(5):
        for _ in range(4):
            log(
                ChannelEvent("ussd", "africastalking", f"s{i}", "+8613800138000", "input", "1"),
                Turn(Screen("main", "zh-CN", ()), ("invalid:main",)),
                False,
            )
    assert len(log) == 3 and log.steps("ussd", "s0") == []
    assert [s.n for s in log.steps("ussd", "s4")] == [3, 4]  # numbered on, oldest dropped


@pytest.fixture
async def inspector_page(
    tmp_path: Path,
) -> AsyncIterator[tuple[object, LocalServer]]:
    """The simulator at 1280×800, with the shipped flows and one that asks for a phone
    number and a PIN (tests/flows/simulator/share.yaml, on `*105#`)."""
    if CHROMIUM is None:
        pytest.skip("chromium is not installed (make system-deps installs Debian's chromium)")
    from playwright.async_api import async_playwright

    flows = tmp_path / "flows"
    flows.mkdir()
    for source in [*(ROOT / "flows").glob("*.yaml"), ROOT / "tests/flows/simulator/share.yaml"]:
        shutil.copy(source, flows / source.name)
    async with (
        in_process(load_settings(), {"simulator": True, "flows_dir": str(flows)}) as server,
        async_playwright() as pw,
    ):
        browser = await pw.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        page = await browser.new_page(viewport={"width": 1280, "height": 800})
        errors: list[str] = []
        page.on("pageerror", lambda exc: errors.append(str(exc)))
        await page.goto(f"{server.url}/simulator")
        yield page, server
        await browser.close()
        assert not errors, errors


async def _current_node(page: object) -> dict[str, object]:
    """The highlighted graph node: its state name, fill, and whether it is in view."""
    return await page.evaluate(  # type: ignore[attr-defined,no-any-return]
        """() => {
          const graph = document.getElementById("graph");
          const nodes = graph.querySelectorAll("g.node.current");
          if (nodes.length !== 1) return { count: nodes.length };
          const node = nodes[0], box = node.getBoundingClientRect();
          const view = graph.getBoundingClientRect();
          const shape = node.querySelector("polygon, path, ellipse, rect");
          return {
            count: 1, name: node.querySelector("title").textContent,
            ariaCurrent: node.getAttribute("aria-current"),
            fill: getComputedStyle(shape).fill,
            inView: box.left >= view.left && box.right <= view.right
              && box.top >= view.top && box.bottom <= view.bottom,
            visited: Array.from(graph.querySelectorAll("g.node.visited"),
              (g) => g.querySelector("title").textContent),
          };
        }"""
    )


async def _steps(page: object) -> list[dict[str, object]]:
    return await page.evaluate(  # type: ignore[attr-defined,no-any-return]
        """() => Array.from(document.querySelectorAll("#steps > li"), (li) => ({
          head: li.querySelector(".step-head").textContent,
          input: li.querySelector("code.input")?.textContent ?? null,
          events: Array.from(li.querySelectorAll(".events li"), (e) => e.textContent),
        }))"""
    )


async def _vars(page: object) -> dict[str, str]:
    return await page.evaluate(  # type: ignore[attr-defined,no-any-return]
        """() => Object.fromEntries(Array.from(document.querySelectorAll("#vars tbody tr[data-name]"),
          (tr) => [tr.dataset.name, tr.querySelector("td.value").textContent]))"""
    )


HIGHLIGHT = "rgb(255, 213, 79)"  # inspector.css: the current state's fill


async def test_inspector_follows_a_ussd_session(
    inspector_page: tuple[object, LocalServer], tmp_path: Path
) -> None:
    page, server = inspector_page
    inspector = page.locator("#inspector")  # type: ignore[attr-defined]
    await page.click("#call")  # type: ignore[attr-defined]
    await page.locator("#inspector[data-state=main]").wait_for()  # type: ignore[attr-defined]
    assert (await _current_node(page))["name"] == "main"
    await _press(page, "4")
    await page.click("#call")  # type: ignore[attr-defined]
    await page.locator("#inspector[data-state=show_summary]").wait_for()  # type: ignore[attr-defined]

    flow = server.app[FLOWS].current("balance")
    assert flow is not None
    assert await page.inner_text("#insp-flow") == "balance"  # type: ignore[attr-defined]
    assert await page.get_attribute("#insp-version code", "title") == flow.version  # type: ignore[attr-defined]
    state = await page.inner_text("#insp-state")  # type: ignore[attr-defined]
    assert "show_summary" in state and "end" in state
    assert await page.inner_text("#insp-page") == "1 / 2"  # type: ignore[attr-defined]
    assert await page.inner_text("#insp-back") == "main"  # type: ignore[attr-defined]
    shown = await _vars(page)
    assert (shown["balance"], shown["data"], shown["voice"], shown["sms"]) == (
        "12.50元",
        "3.00GB",
        "200分钟",
        "100",
    )
    steps = await _steps(page)
    assert [s["input"] for s in steps] == [None, "4"]
    assert "started" in steps[0]["events"]  # type: ignore[operator]
    assert steps[1]["events"] == ["action:balance.lookup:ok", "ended:show_summary"]
    assert str(steps[1]["head"]).endswith("→ show_summary")

    node = await _current_node(page)
    assert node["count"] == 1 and node["name"] == "show_summary", node
    assert node["ariaCurrent"] == "step" and node["fill"] == HIGHLIGHT and node["inView"], node
    assert "main" in node["visited"]  # type: ignore[operator]
    assert await page.get_attribute("#graph", "data-current") == "show_summary"  # type: ignore[attr-defined]
    await _screenshot(page, "simulator-inspector.png", tmp_path)

    # The keyboard: the graph takes focus and zooms with +/-, without typing into the phone.
    width = float(await page.get_attribute("#graph svg", "width"))  # type: ignore[attr-defined,arg-type]
    await page.focus("#graph")  # type: ignore[attr-defined]
    await page.keyboard.press("+")  # type: ignore[attr-defined]
    assert float(await page.get_attribute("#graph svg", "width")) > width  # type: ignore[attr-defined,arg-type]
    assert await page.inner_text("#entry") == ""  # type: ignore[attr-defined]

    # A flow that asks for a phone number and a PIN: both masked, in variables and steps.
    await page.click("#hangup")  # type: ignore[attr-defined]
    await page.fill("#code", "*105#")  # type: ignore[attr-defined]
    await page.click("#call")  # type: ignore[attr-defined]
    await page.locator("#inspector[data-state=ask_number]").wait_for()  # type: ignore[attr-defined]
    await _press(page, "13912345678")
    await page.click("#call")  # type: ignore[attr-defined]
    await page.locator("#inspector[data-state=ask_pin]").wait_for()  # type: ignore[attr-defined]
    await _press(page, "2580")
    await page.click("#call")  # type: ignore[attr-defined]
    await page.locator("#inspector[data-state=done]").wait_for()  # type: ignore[attr-defined]
    assert await page.inner_text("#insp-flow") == "share"  # type: ignore[attr-defined]
    assert await _vars(page) == {"target": "139****5678 phone"}
    assert [s["input"] for s in await _steps(page)] == [None, "139****5678", "••••"]
    text = await inspector.inner_text()
    assert "13912345678" not in text and "2580" not in text
    node = await _current_node(page)
    assert node["name"] == "done" and node["fill"] == HIGHLIGHT, node
    await _screenshot(page, "simulator-inspector-masked.png", tmp_path, docs=False)


async def test_inspector_graph_drawn_by_the_page_without_graphviz(
    inspector_page: tuple[object, LocalServer],
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    from hotline.flow.graph import GraphvizError
    from hotline.web.simulator import inspector

    def no_dot(*args: object, **kwargs: object) -> str:
        raise GraphvizError("dot is not installed")

    monkeypatch.setattr(inspector, "to_svg", no_dot)
    page, _ = inspector_page
    await page.click("#call")  # type: ignore[attr-defined]
    await page.locator("#inspector[data-state=main]").wait_for()  # type: ignore[attr-defined]
    assert await page.get_attribute("#graph", "data-source") == "page"  # type: ignore[attr-defined]
    names = await page.evaluate(  # type: ignore[attr-defined]
        """() => Array.from(document.querySelectorAll("#graph g.node title"), (t) => t.textContent)"""
    )
    assert {"main", "lookup_balance", "show_balance", "goodbye"} <= set(names)
    node = await _current_node(page)
    assert node["name"] == "main" and node["fill"] == HIGHLIGHT and node["inView"], node
    await _press(page, "1")
    await page.click("#call")  # type: ignore[attr-defined]
    await page.locator("#inspector[data-state=show_balance]").wait_for()  # type: ignore[attr-defined]
    node = await _current_node(page)
    assert node["name"] == "show_balance" and node["visited"] == ["main"], node
    await _screenshot(page, "simulator-inspector-drawn.png", tmp_path, docs=False)


async def test_call_transcript_shows_sentences_and_keys(
    inspector_page: tuple[object, LocalServer], tmp_path: Path
) -> None:
    page, server = inspector_page
    card = page.locator("#transcript-card")  # type: ignore[attr-defined]
    assert not await card.is_visible()  # USSD mode: no transcript
    await page.check("input[name=mode][value=call]")  # type: ignore[attr-defined]
    assert await card.is_visible()
    await page.click("#call")  # type: ignore[attr-defined]
    await page.locator("#screen[data-gather=open]").wait_for(timeout=15_000)  # type: ignore[attr-defined]
    first = page.locator("#transcript li.said .what").first  # type: ignore[attr-defined]
    await page.locator("#transcript li.said", has_text="话费查询").wait_for()  # type: ignore[attr-defined]
    assert await first.inner_text() == "话费查询"
    await page.locator("#inspector[data-state=main]").wait_for()  # type: ignore[attr-defined]
    await _press(page, "1")
    await page.locator("#inspector[data-state=show_balance]").wait_for()  # type: ignore[attr-defined]
    # The balance, then the offer to hear it again: the call stays open (issue 14).
    await page.locator("#transcript li.said", has_text="重听请按星号键").wait_for(timeout=15_000)  # type: ignore[attr-defined]
    await page.wait_for_function(  # every clip's sentence has arrived
        """() => Array.from(document.querySelectorAll("#transcript li.said .what"))
          .every((w) => w.textContent !== "…")"""
    )
    lines = await page.evaluate(  # type: ignore[attr-defined]
        """() => Array.from(document.querySelectorAll("#transcript li"),
          (li) => [li.className.split(" ")[0], li.querySelector(".what").textContent])"""
    )
    kinds = [kind for kind, _ in lines]
    keys = kinds.index("keys")
    assert lines[keys] == ["keys", "1"]
    assert all(kind == "said" for kind in kinds[:keys])
    after = "".join(text for kind, text in lines[keys + 1 :] if kind == "said")
    assert after == "您的话费余额为十二元五角。重听请按星号键，返回主菜单请按零。"
    assert lines[-1][0] == "said"  # no "(call ended)": the call waits for * or 0
    # Each line is the sentence of the clip the phone played, in order.
    speech_text = server.speech_text()
    assert speech_text is not None
    heard = await page.evaluate("window.hotlineSim.heard")  # type: ignore[attr-defined]
    said = [text for kind, text in lines if kind == "said"]
    assert said == [speech_text(url) for url in heard]

    steps = await _steps(page)
    assert [s["input"] for s in steps] == [None, "1"]
    assert "action:call.agent_available:ok" in steps[0]["events"]  # type: ignore[operator]
    assert steps[1]["events"] == ["action:balance.lookup:ok", "ended:show_balance"]
    node = await _current_node(page)
    assert node["name"] == "show_balance" and node["fill"] == HIGHLIGHT, node
    await _screenshot(page, "simulator-call-transcript.png", tmp_path)
