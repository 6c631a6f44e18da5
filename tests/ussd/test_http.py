"""The USSD channel through the HTTP surface the gateway uses, on memory and real Redis.

Balances come from the real SQLite ledger (demo subscribers); sessions from the
in-process store or a private redis-server. Nothing is mocked.
"""

from __future__ import annotations

import asyncio
import json
import os
import re
import signal
import subprocess
import sys
import time
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

import aiohttp
import pytest
import redis
from aiohttp import web
from aiohttp.test_utils import TestClient

from hotline.balance.ledger import LedgerRecord, LedgerStore
from hotline.base.config import Settings
from hotline.flow.services import Services
from hotline.store.sessions import session_key
from hotline.web.app import create_app
from hotline.web.keys import ENGINE
from tests.conftest import free_port
from ussd.budget import Limits, fits
from ussd.render import PREFIX_RESERVE
from ussd.routes import USSD_LAYOUT

ROOT = Path(__file__).resolve().parents[2]
PATH = "/ussd/africastalking"
PHONE = "+8613800138000"  # demo subscriber: 12.50元, 3 GB, 200 min, 100 SMS

MAIN_ZH = (
    "CON 话费查询\n1.话费余额\n2.流量余量\n3.通话和短信\n4.套餐摘要\n5.语言/Language\n6.退出"
    "\n7.套餐\n8.余额提醒"
)
BALANCE_ZH = "END 您的话费余额为12.50元。"

Client = TestClient[web.Request, web.Application]
MakeClient = Callable[..., Awaitable[Client]]


def make_settings(tmp_path: Path, redis_url: str | None, **extra: Any) -> Settings:
    values: dict[str, Any] = {
        "flows_dir": ROOT / "flows",
        "prompts_dir": ROOT / "prompts",
        "redis_url": redis_url,
        # Room for a busy test machine: a starved CPU must not turn a step into the busy
        # sentence. The tests of the timeout itself set the production 0.5 s.
        "redis_timeout": 2.0,
        "pseudonym_secret": "test-secret",
        "balance": {
            "ledger_path": tmp_path / "ledger.sqlite3",
            "fresh_ttl": 0,  # every lookup reaches the ledger: side effects are visible
            "subscriber_rate": "1000/minute",
        },
    }
    values.update(extra)
    return Settings(**values)


@pytest.fixture(params=["memory", "redis"])
def store_url(request: pytest.FixtureRequest) -> str | None:
    if request.param == "memory":
        return None
    url: str = request.getfixturevalue("redis_url")
    return url


@pytest.fixture
async def client(aiohttp_client: MakeClient, tmp_path: Path, store_url: str | None) -> Client:
    return await aiohttp_client(create_app(make_settings(tmp_path, store_url)))


class Phone:
    """A handset behind an Africa's Talking gateway: `text` accumulates every input."""

    def __init__(
        self, client: Client, session: str, phone: str = PHONE, code: str = "*100#"
    ) -> None:
        self.client = client
        self.session = session
        self.phone = phone
        self.code = code
        self.inputs: list[str] = []

    @property
    def text(self) -> str:
        return "*".join(self.inputs)

    async def send(self, text: str) -> str:
        response = await self.client.post(
            PATH,
            data={
                "sessionId": self.session,
                "serviceCode": self.code,
                "phoneNumber": self.phone,
                "networkCode": "46000",
                "text": text,
            },
        )
        assert response.status == 200, await response.text()
        assert response.headers["Content-Type"] == "text/plain; charset=utf-8"
        assert "|" not in response.headers["at-ussd-hop-metadata"]
        body = await response.text()
        assert body.startswith(("CON ", "END "))
        return body

    async def dial(self) -> str:
        self.inputs = []
        return await self.send("")

    async def press(self, key: str) -> str:
        self.inputs.append(key)
        return await self.send(self.text)


# ------------------------------------------------------------------ navigation


async def test_dial_shows_the_chinese_main_menu(client: Client) -> None:
    response = await client.post(
        PATH,
        data={"sessionId": "s1", "serviceCode": "*100#", "phoneNumber": PHONE, "text": ""},
    )
    assert response.status == 200
    assert await response.text() == MAIN_ZH
    assert response.headers["at-ussd-hop-metadata"] == "main"


async def test_dial_then_balance_from_the_ledger(client: Client) -> None:
    phone = Phone(client, "s1")
    assert await phone.dial() == MAIN_ZH
    assert await phone.press("1") == BALANCE_ZH


async def test_direct_dial_with_text_on_the_first_request(client: Client) -> None:
    assert await Phone(client, "s1").send("1") == BALANCE_ZH
    english = await Phone(client, "s2").send("5*2")
    assert english.startswith("CON Balance service\n1.Main balance")


async def test_back_then_choose(client: Client) -> None:
    phone = Phone(client, "s1")
    await phone.dial()
    assert (await phone.press("5")).startswith("CON 请选择语言")
    assert await phone.press("0") == MAIN_ZH  # text "5*0"
    assert (await phone.press("2")).startswith("END 剩余流量3.00GB")  # text "5*0*2"


async def test_back_then_choose_in_one_direct_dial(client: Client) -> None:
    assert (await Phone(client, "s1").send("5*0*2")).startswith("END 剩余流量3.00GB")


async def test_home(client: Client) -> None:
    phone = Phone(client, "s1")
    await phone.dial()
    await phone.press("5")
    assert await phone.press("00") == MAIN_ZH


async def test_more_pages_of_a_menu_and_back_a_page(
    aiohttp_client: MakeClient, tmp_path: Path, store_url: str | None
) -> None:
    # An operator with a tight screen (60 GSM-7 characters) gets the English menu in pages.
    settings = make_settings(tmp_path, store_url, ussd={"gsm7_limit": 60})
    client = await aiohttp_client(create_app(settings))
    phone = Phone(client, "s1", phone="+8613800138005")
    await phone.dial()
    await phone.press("5")
    first = await phone.press("2")
    assert first.startswith("CON Balance service\n")
    found = re.search(r"\n\(1/(\d)\) 98\.More$", first)
    assert found, first
    total = int(found.group(1))
    second = await phone.press("98")
    assert second.startswith("CON ") and f"\n(2/{total}) " in second and "0.Prev" in second
    assert await phone.press("0") == first
    pages = [first]
    while "98.More" in pages[-1]:
        pages.append(await phone.press("98"))
    assert len(pages) == total and "8.Balance reminder" in pages[-1]  # the last option
    assert sum("6.Exit" in page for page in pages) == 1
    for number, page in enumerate(pages, 1):
        assert fits(page.removeprefix("CON "), Limits(gsm7=60 - PREFIX_RESERVE, ucs2=80))
        assert page.split("\n")[-1].startswith(f"({number}/{total})")  # where it is
    assert await phone.press("6") == "END Thank you. Goodbye."


async def test_long_final_message_says_where_it_is_and_pages_back(client: Client) -> None:
    """A result of two pages: each page says which it is; the last one still offers the
    previous page (the session lives until the subscriber leaves it), and `0` on the
    first page goes back to the main menu."""
    phone = Phone(client, "s1")
    await phone.dial()
    first = await phone.press("4")
    assert first.startswith("CON 您的套餐摘要：\n您的话费余额为12.50元。")
    assert first.endswith("\n(1/2) 98.更多 0.返回")
    last = await phone.press("98")
    assert last.startswith("CON ") and "剩余短信100条" in last
    assert last.endswith("\n(2/2) 0.上页")
    # Nothing of the summary is lost at the page break.
    joined = first[4:].removesuffix("\n(1/2) 98.更多 0.返回") + last[4:].removesuffix(
        "\n(2/2) 0.上页"
    )
    for sentence in ("剩余流量3.00GB", "剩余通话200分钟", "剩余短信100条"):
        assert sentence in joined.replace("\n", "")
    for page in (first, last):
        assert fits(page[4:], Limits(gsm7=182 - PREFIX_RESERVE, ucs2=80 - PREFIX_RESERVE))
    assert await phone.press("0") == first  # back a page, identical
    assert await phone.press("98") == last
    assert await phone.press("0") == first
    assert await phone.press("0") == MAIN_ZH  # back from the result: the main menu
    assert await phone.press("1") == BALANCE_ZH  # a one-page result still ends at once


async def test_a_typed_star_is_one_invalid_input_not_two(client: Client) -> None:
    phone = Phone(client, "s1")
    await phone.dial()
    await phone.press("5")
    reply = await phone.send("5**")  # the subscriber typed "*": an empty segment appears
    assert reply.startswith("CON 输入有误，请重新选择。\n请选择语言")


async def test_invalid_choice_three_times_ends(client: Client) -> None:
    phone = Phone(client, "s1")
    await phone.dial()
    for _ in range(2):
        reply = await phone.press("9")
        assert reply == "CON 输入有误，请重新选择。\n" + MAIN_ZH.removeprefix("CON ")
    assert await phone.press("9") == "END 输入错误次数过多，请稍后再拨。"


async def test_more_on_the_last_page_is_an_invalid_choice(client: Client) -> None:
    phone = Phone(client, "s1")
    await phone.dial()
    assert await phone.press("98") == "CON 输入有误，请重新选择。\n" + MAIN_ZH.removeprefix("CON ")


# ----------------------------------------------------------------- idempotency


async def test_repeated_request_gets_the_identical_reply_and_no_second_lookup(
    aiohttp_client: MakeClient, tmp_path: Path, store_url: str | None
) -> None:
    app = create_app(make_settings(tmp_path, store_url))
    client = await aiohttp_client(app)
    engine = app[ENGINE]
    lookups: list[str] = []
    real = engine.services.balance
    assert real is not None

    class Observed:
        """The real balance service, with its calls written down."""

        fresh_for = real.fresh_for

        async def fetch(self, msisdn: str) -> Any:
            lookups.append(msisdn)
            return await real.fetch(msisdn)

    engine.services = Services(balance=Observed())

    phone = Phone(client, "s1")
    await phone.dial()
    first = await phone.press("1")
    assert first == BALANCE_ZH and len(lookups) == 1

    # The ledger changes; a repeat must not look again (it would show the new amount).
    ledger = LedgerStore(tmp_path / "ledger.sqlite3")
    ledger.put(LedgerRecord(msisdn="13800138000", status="active", main_minor=99900))
    ledger.close()
    for _ in range(3):
        assert await phone.send("1") == first
    assert len(lookups) == 1
    assert await Phone(client, "s2").send("1") == "END 您的话费余额为999.00元。"
    assert len(lookups) == 2


async def test_repeated_dial_gets_the_identical_menu(client: Client) -> None:
    phone = Phone(client, "s1")
    assert await phone.dial() == await phone.dial() == MAIN_ZH


# -------------------------------------------------------------------- budget


@pytest.mark.parametrize(
    "paths",
    [
        ["", "1"],
        ["", "2"],
        ["", "3"],
        ["", "4", "4*98"],
        ["", "5", "5*7", "5*0", "5*0*6"],
        ["", "7", "7*8", "7*8*9"],
    ],
)
async def test_every_reply_fits_the_budget_in_both_languages(
    aiohttp_client: MakeClient, tmp_path: Path, store_url: str | None, paths: list[str]
) -> None:
    app = create_app(make_settings(tmp_path, store_url))
    client = await aiohttp_client(app)
    page_limits = app[USSD_LAYOUT].page_limits
    assert page_limits == Limits(182 - PREFIX_RESERVE, 80 - PREFIX_RESERVE)
    for number, language_keys in (("+8613800138000", "5*1"), ("+8613800138004", "5*2")):
        switch = Phone(client, f"switch{number[1:]}", phone=number)
        await switch.dial()
        await switch.send("5")
        await switch.send(language_keys)
        for prefix in ("", "98"):  # and the same paths from the menu's second page
            phone = Phone(client, f"{number[1:]}-{prefix}", phone=number)
            for text in paths:
                full = f"{prefix}*{text}" if prefix and text else (prefix or text)
                reply = await phone.send(full)
                assert fits(reply, Limits()), reply
                assert fits(reply[4:], page_limits), reply


async def test_configured_limits_paginate_the_chinese_menu(
    aiohttp_client: MakeClient, tmp_path: Path, store_url: str | None
) -> None:
    settings = make_settings(tmp_path, store_url, ussd={"gsm7_limit": 160, "ucs2_limit": 40})
    client = await aiohttp_client(create_app(settings))
    phone = Phone(client, "s1")
    seen = []
    reply = await phone.dial()
    while True:
        assert fits(reply[4:], Limits(156, 36)), reply
        seen.append(reply)
        if "98.更多" not in reply:
            break
        reply = await phone.press("98")
    assert len(seen) >= 2
    assert "8.余额提醒" in seen[-1]  # every option is on exactly one page, the last one last
    for option in ("1.话费余额", "6.退出", "7.套餐", "8.余额提醒"):
        assert sum(option in page for page in seen) == 1, option


# -------------------------------------------------------------------- bad input


def _form(**changes: str) -> dict[str, str]:
    form = {"sessionId": "s1", "serviceCode": "*100#", "phoneNumber": PHONE, "text": ""}
    form.update(changes)
    return form


@pytest.mark.parametrize(
    ("kwargs", "reason"),
    [
        ({"data": {"sessionId": "s1", "serviceCode": "*100#", "text": ""}}, "phoneNumber"),
        ({"data": {}}, "missing form field(s): sessionId, serviceCode, phoneNumber, text"),
        ({"json": _form()}, "Content-Type must be application/x-www-form-urlencoded"),
        (
            {"data": b"text=&sessionId=s1", "headers": {"Content-Type": "text/plain"}},
            "Content-Type",
        ),
        ({"data": _form(text="1" * 9000)}, "body is larger than 8192 bytes"),
        ({"data": _form(text="*" * 2000)}, "text is longer than 480"),
        ({"data": _form(text="1*\x07")}, "control characters"),
        ({"data": _form(phoneNumber="<script>")}, "phoneNumber"),
        (
            {
                "data": b"sessionId=s1&serviceCode=*100%23&phoneNumber=%2B86138&text=\xff",
                "headers": {"Content-Type": "application/x-www-form-urlencoded"},
            },
            "not UTF-8",
        ),
        (
            {
                "data": b"sessionId=s1&serviceCode=*100%23&phoneNumber=%2B86138&text=%C3%28",
                "headers": {"Content-Type": "application/x-www-form-urlencoded"},
            },
            "not valid UTF-8",
        ),
        (
            {
                "data": b"sessionId=s1&sessionId=s2&serviceCode=*100%23&phoneNumber=1234&text=",
                "headers": {"Content-Type": "application/x-www-form-urlencoded"},
            },
            "appears more than once",
        ),
    ],
)
async def test_malformed_requests_get_400_with_a_reason(
    client: Client, kwargs: dict[str, Any], reason: str
) -> None:
    response = await client.post(PATH, **kwargs)
    body = await response.text()
    assert response.status == 400, body
    assert reason in body
    assert "Traceback" not in body


async def test_body_over_the_configured_limit_is_refused(
    aiohttp_client: MakeClient, tmp_path: Path
) -> None:
    client = await aiohttp_client(create_app(make_settings(tmp_path, None, max_body_bytes=512)))
    response = await client.post(PATH, data=_form(sessionId="x" * 100, text="1*" * 200))
    assert response.status == 400
    assert await response.text() == "body is larger than 512 bytes"
    chunked = await client.post(
        PATH,
        data=_chunks(b"text=" + b"1" * 2000),
        headers={"Content-Type": "application/x-www-form-urlencoded"},
    )
    assert chunked.status == 400
    assert "larger than 512" in await chunked.text()


async def _chunks(body: bytes) -> Any:
    for start in range(0, len(body), 100):
        yield body[start : start + 100]


async def test_too_many_inputs_on_a_first_request_end_politely(client: Client) -> None:
    reply = await Phone(client, "s1").send("*".join(["9"] * 200))
    assert reply == "END 会话已失效，请重新拨打。"


async def test_a_transcript_that_does_not_continue_the_session_ends_politely(
    client: Client,
) -> None:
    phone = Phone(client, "s1")
    await phone.dial()
    await phone.press("5")
    assert await phone.send("3*1") == "END 会话已失效，请重新拨打。"


async def test_garbage_session_record_ends_politely(
    aiohttp_client: MakeClient, tmp_path: Path, redis_url: str
) -> None:
    client = await aiohttp_client(create_app(make_settings(tmp_path, redis_url)))
    phone = Phone(client, "s1")
    await phone.dial()
    raw = redis.Redis.from_url(redis_url)
    raw.set(session_key("dev", "ussd", "s1"), b'{"flow": "balance", "state": 42')
    raw.close()
    assert await phone.press("1") == "END 会话已失效，请重新拨打。"


async def test_unknown_state_after_a_flow_change_ends_politely(
    aiohttp_client: MakeClient, tmp_path: Path, redis_url: str
) -> None:
    """A worker that only knows the new flow gets a session started on the old one."""
    old = tmp_path / "old"
    new = tmp_path / "new"
    old.mkdir()
    new.mkdir()
    source = (ROOT / "flows" / "balance.yaml").read_text(encoding="utf-8")
    (old / "balance.yaml").write_text(source, encoding="utf-8")
    changed = source.replace("  language:\n    kind: menu", "  language2:\n    kind: menu")
    changed = changed.replace("next: language }", "next: language2 }")
    (new / "balance.yaml").write_text(changed, encoding="utf-8")
    worker_old = await aiohttp_client(create_app(make_settings(tmp_path, redis_url, flows_dir=old)))
    worker_new = await aiohttp_client(create_app(make_settings(tmp_path, redis_url, flows_dir=new)))
    await Phone(worker_old, "s1").dial()
    await Phone(worker_old, "s1").send("5")
    reply = await Phone(worker_new, "s1").send("5*1")
    assert reply == "END 会话已失效，请重新拨打。"


# ------------------------------------------------------------- Redis and workers


async def test_a_session_continues_on_another_worker(
    aiohttp_client: MakeClient, tmp_path: Path, redis_url: str
) -> None:
    worker_a = await aiohttp_client(create_app(make_settings(tmp_path, redis_url)))
    worker_b = await aiohttp_client(create_app(make_settings(tmp_path, redis_url)))
    assert await Phone(worker_a, "s1").send("") == MAIN_ZH
    assert (await Phone(worker_b, "s1").send("5")).startswith("CON 请选择语言")
    english = await Phone(worker_a, "s1").send("5*2")
    assert english.startswith("CON Balance service")
    # The repeat lands on the other worker and still gets the identical reply.
    assert await Phone(worker_b, "s1").send("5*2") == english
    # The language choice is remembered for the number, on any worker.
    assert (await Phone(worker_b, "s2").send("")).startswith("CON Balance service")


async def _until_redis_answers(client: Client) -> None:
    """The precondition of the timeout tests: the app's first connection is up (on a
    busy machine connecting can take longer than the 0.5 s these tests keep)."""
    async with asyncio.timeout(10):
        n = 0
        while await Phone(client, f"warm-{n}").dial() != MAIN_ZH:
            n += 1
            await asyncio.sleep(0.05)


async def test_redis_down_gives_a_polite_end_at_once_and_recovers(
    aiohttp_client: MakeClient, tmp_path: Path, stoppable_redis: Any
) -> None:
    client = await aiohttp_client(
        create_app(make_settings(tmp_path, stoppable_redis.url, redis_timeout=0.5))
    )
    await _until_redis_answers(client)
    phone = Phone(client, "s1")
    assert await phone.dial() == MAIN_ZH
    stoppable_redis.stop()
    started = time.monotonic()
    assert await phone.press("5") == "END 系统繁忙，请稍后再试。"
    assert time.monotonic() - started < 1.0
    assert await Phone(client, "s2").dial() == "END 系统繁忙，请稍后再试。"
    stoppable_redis.start()
    deadline = time.monotonic() + 5
    while True:  # the client reconnects by itself; no restart of the service
        reply = await Phone(client, "s3").dial()
        if reply == MAIN_ZH or time.monotonic() > deadline:
            break
        await asyncio.sleep(0.05)
    assert reply == MAIN_ZH
    assert await Phone(client, "s3").send("1") == BALANCE_ZH


async def test_a_hung_redis_gets_an_apology_in_time_and_the_store_recovers(
    aiohttp_client: MakeClient, tmp_path: Path, stoppable_redis: Any
) -> None:
    """Redis alive but silent (SIGSTOP): the store's timeout answers, and after SIGCONT
    no reply meant for a cancelled command reaches a later one."""
    client = await aiohttp_client(
        create_app(make_settings(tmp_path, stoppable_redis.url, redis_timeout=0.5))
    )
    await _until_redis_answers(client)
    phone = Phone(client, "s1")
    assert await phone.dial() == MAIN_ZH
    os.kill(stoppable_redis.proc.pid, signal.SIGSTOP)
    try:
        started = time.monotonic()
        assert await phone.press("1") == "END 系统繁忙，请稍后再试。"
        assert time.monotonic() - started < 1.5
    finally:
        os.kill(stoppable_redis.proc.pid, signal.SIGCONT)
    for n in range(3):
        other = Phone(client, f"t{n}")
        assert await other.dial() == MAIN_ZH
        assert await other.send("1") == BALANCE_ZH


async def test_a_bug_in_a_step_is_answered_with_an_apology_never_a_500(
    aiohttp_client: MakeClient, tmp_path: Path, redis_url: str, caplog: pytest.LogCaptureFixture
) -> None:
    """A stored record of the right shape but wrong types (`back` is not a list)."""
    client = await aiohttp_client(create_app(make_settings(tmp_path, redis_url)))
    phone = Phone(client, "s1")
    await phone.dial()
    await phone.press("5")
    raw = redis.Redis.from_url(redis_url)
    key = session_key("dev", "ussd", "s1")
    record = json.loads(raw.get(key) or b"{}")
    record["back"] = 5
    raw.set(key, json.dumps(record))
    raw.close()
    response = await client.post(PATH, data=_form(text="5*0"))
    body = await response.text()
    assert response.status == 200
    assert body in ("END 系统繁忙，请稍后再试。", "END 会话已失效，请重新拨打。")
    assert "Traceback" not in body
    assert "13800138000" not in caplog.text


async def test_a_session_continues_in_another_process(
    aiohttp_client: MakeClient, tmp_path: Path, redis_url: str
) -> None:
    """`hotline serve` in a process of its own and this process's app share the session."""
    port = free_port()
    env = {
        **os.environ,
        "HOTLINE_REDIS_URL": redis_url,
        "HOTLINE_PORT": str(port),
        "HOTLINE_FLOWS_DIR": str(ROOT / "flows"),
        "HOTLINE_PROMPTS_DIR": str(ROOT / "prompts"),
        "HOTLINE_PSEUDONYM_SECRET": "test-secret",
        "HOTLINE_BALANCE__LEDGER_PATH": str(tmp_path / "ledger.sqlite3"),
        "HOTLINE_LOG_LEVEL": "WARNING",
    }
    command = [sys.executable, "-m", "hotline", "serve", "--port", str(port)]
    server = subprocess.Popen(command, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    try:
        url = f"http://127.0.0.1:{port}{PATH}"
        async with aiohttp.ClientSession() as http:
            form = _form(sessionId="proc1")
            deadline = time.monotonic() + 120  # start-up on a busy machine
            while True:
                try:
                    async with http.post(url, data=form) as response:
                        assert await response.text() == MAIN_ZH
                        break
                except aiohttp.ClientConnectionError:
                    assert server.poll() is None, server.stderr.read() if server.stderr else ""
                    assert time.monotonic() < deadline, "hotline serve did not start"
                    await asyncio.sleep(0.1)
            local = await aiohttp_client(create_app(make_settings(tmp_path, redis_url)))
            assert (await Phone(local, "proc1").send("5")).startswith("CON 请选择语言")
            async with http.post(url, data=_form(sessionId="proc1", text="5*0")) as response:
                assert await response.text() == MAIN_ZH
            assert await Phone(local, "proc1").send("5*0*1") == BALANCE_ZH
    finally:
        server.terminate()
        server.wait(timeout=10)
        if server.stderr is not None:
            server.stderr.close()


async def test_hop_metadata_names_each_step(client: Client) -> None:
    labels = []
    for text in ("", "5", "5*0", "5*0*1"):
        response = await client.post(PATH, data=_form(text=text))
        labels.append(response.headers["at-ussd-hop-metadata"])
    assert labels == ["main", "language", "main", "show_balance"]


async def test_a_new_dial_after_the_end_starts_afresh(client: Client) -> None:
    phone = Phone(client, "s1")
    await phone.dial()
    assert await phone.press("6") == "END 感谢使用，再见。"
    assert await phone.dial() == MAIN_ZH  # the gateway reused the session id


# ------------------------------------------------------- sessions belong to their subscriber

OTHER = "+8613800138005"  # demo subscriber: 30.00元


async def test_a_reused_session_id_never_shows_another_subscribers_balance(
    client: Client,
) -> None:
    """A gateway session id is bound to the subscriber (and entry) that started it."""
    owner = Phone(client, "reuse-a")
    await owner.dial()
    assert await owner.press("1") == BALANCE_ZH
    # Someone else posts the same (finished) session id: not the owner's screen.
    intruder = Phone(client, "reuse-a", phone=OTHER)
    intruder.inputs = ["1"]
    assert await intruder.send("1") == "END 会话已失效，请重新拨打。"
    # ... and the same for a live session: the intruder is refused, the owner unharmed.
    live = Phone(client, "reuse-b")
    assert await live.dial() == MAIN_ZH
    assert await Phone(client, "reuse-b", phone=OTHER).send("1") == "END 会话已失效，请重新拨打。"
    assert await Phone(client, "reuse-b", phone=OTHER).send("") == "END 会话已失效，请重新拨打。"
    assert await live.press("1") == BALANCE_ZH  # still the owner's own balance


async def test_a_session_id_reused_under_another_service_code_is_refused(client: Client) -> None:
    phone = Phone(client, "code-a")
    assert await phone.dial() == MAIN_ZH
    assert await Phone(client, "code-a", code="*101#").send("1") == "END 会话已失效，请重新拨打。"
    assert await phone.press("1") == BALANCE_ZH


@pytest.mark.parametrize("typed", ["a", " 9", "中", "1a", "#"])
async def test_whatever_a_subscriber_types_is_an_answer_not_an_http_error(
    client: Client, typed: str
) -> None:
    """An invalid choice re-prompts; only a malformed envelope is a 400."""
    phone = Phone(client, "typed")
    await phone.dial()
    assert await phone.press(typed) == "CON 输入有误，请重新选择。\n" + MAIN_ZH.removeprefix("CON ")
    assert await phone.press(" 1 ") == BALANCE_ZH


@pytest.mark.parametrize(
    ("typed", "expected"),
    [
        ("1*1", BALANCE_ZH),  # *100*1*1#: the balance; the extra key has nothing to do
        ("5*9", "CON 请选择语言"),  # the language menu, without an "invalid choice" line
        ("9*1", MAIN_ZH),  # nothing applies: the main menu as it is
    ],
)
async def test_direct_dial_applies_what_applies_then_shows_where_the_subscriber_is(
    client: Client, typed: str, expected: str
) -> None:
    reply = await Phone(client, "direct").send(typed)
    assert reply.startswith(expected) and "输入有误" not in reply


# ------------------------------------------------------------------ resume

OFFER_ZH = "CON 您上次的操作尚未完成\n1.继续上次操作\n2.重新开始"
LANGUAGE_ZH = "CON 请选择语言\n1.中文\n2.English\n0.返回"


async def test_a_dropped_session_can_be_continued_from_a_new_dial(client: Client) -> None:
    phone = Phone(client, "drop-1")
    await phone.dial()
    assert await phone.press("5") == LANGUAGE_ZH
    # The network drops the session; the subscriber dials again (a new gateway session).
    again = Phone(client, "drop-2")
    assert await again.dial() == OFFER_ZH
    assert await again.press("1") == LANGUAGE_ZH  # where they were, back stack and all
    assert await again.press("0") == MAIN_ZH
    # Back where a dial lands: nothing to continue any more.
    assert await Phone(client, "drop-3").dial() == MAIN_ZH


async def test_start_over_forgets_the_dropped_session(client: Client) -> None:
    phone = Phone(client, "over-1")
    await phone.dial()
    await phone.press("5")
    again = Phone(client, "over-2")
    assert await again.dial() == OFFER_ZH
    assert await again.press("9") == "CON 输入有误，请重新选择。\n" + OFFER_ZH[4:]
    assert await again.press("2") == MAIN_ZH
    assert await Phone(client, "over-3").dial() == MAIN_ZH
    # Another subscriber never sees the offer, and a direct dial goes where it says.
    await Phone(client, "over-4").press("5")  # a direct dial *100*5#: the language menu
    assert await Phone(client, "other", phone="+8613800138005").dial() == MAIN_ZH
    assert await Phone(client, "over-5").send("1") == BALANCE_ZH


RESUME_FLOW = """
spec: 1
id: deep
start: main
entries:
  - ussd: "*102#"
resume: {resume}
states:
  main:
    kind: menu
    prompt: main.title
    options:
      - {{ key: "1", label: main.language, next: sub }}
  sub:
    kind: menu
    prompt: language.title
    options:
      - {{ key: "1", label: main.exit, next: done }}
  done:
    kind: end
    prompt: common.goodbye
"""


def _deep_app(tmp_path: Path, store_url: str | None, resume: bool, **extra: Any) -> web.Application:
    flows = tmp_path / "flows"
    flows.mkdir(parents=True, exist_ok=True)
    (flows / "balance.yaml").write_text((ROOT / "flows" / "balance.yaml").read_text("utf-8"))
    (flows / "deep.yaml").write_text(
        RESUME_FLOW.format(resume="true" if resume else "false"), encoding="utf-8"
    )
    return create_app(make_settings(tmp_path, store_url, flows_dir=flows, **extra))


async def test_reaching_an_end_clears_what_could_be_resumed(
    aiohttp_client: MakeClient, tmp_path: Path, store_url: str | None
) -> None:
    client = await aiohttp_client(_deep_app(tmp_path, store_url, resume=True))
    phone = Phone(client, "end-1", code="*102#")
    await phone.dial()
    sub = await phone.press("1")
    assert sub.startswith("CON 请选择语言\n1.退出")
    again = Phone(client, "end-2", code="*102#")
    assert await again.dial() == OFFER_ZH
    assert await again.press("1") == sub
    assert await again.press("1") == "END 感谢使用，再见。"  # the flow's end
    assert (await Phone(client, "end-3", code="*102#").dial()).startswith("CON 话费查询\n1.")
    # The offer is per entry: a dropped *102# session is not offered on *100#.
    await Phone(client, "end-4", code="*102#").dial()
    await Phone(client, "end-4", code="*102#").send("1")
    assert await Phone(client, "end-5").dial() == MAIN_ZH


async def test_a_flow_or_a_window_of_zero_turns_resume_off(
    aiohttp_client: MakeClient, tmp_path: Path, store_url: str | None
) -> None:
    off = await aiohttp_client(_deep_app(tmp_path / "flow", store_url, resume=False))
    await Phone(off, "off-1", code="*102#").dial()
    await Phone(off, "off-1", code="*102#").send("1")
    assert (await Phone(off, "off-2", code="*102#").dial()).startswith("CON 话费查询\n1.")
    zero = await aiohttp_client(
        _deep_app(tmp_path / "window", store_url, resume=True, ussd={"resume_window": 0})
    )
    await Phone(zero, "zero-1", code="*102#").dial()
    await Phone(zero, "zero-1", code="*102#").send("1")
    assert (await Phone(zero, "zero-2", code="*102#").dial()).startswith("CON 话费查询\n1.")


async def test_resume_in_redis_one_read_a_pseudonymous_key_and_the_window_as_ttl(
    aiohttp_client: MakeClient, tmp_path: Path, redis_url: str
) -> None:
    client = await aiohttp_client(
        create_app(make_settings(tmp_path, redis_url, ussd={"resume_window": 90}))
    )
    phone = Phone(client, "ttl-1")
    await phone.dial()
    await phone.press("5")
    raw = redis.Redis.from_url(redis_url)
    try:
        keys = [key.decode() for key in raw.scan_iter("hotline:*:resume:*")]
        assert len(keys) == 1 and keys[0].startswith("hotline:") and ":resume:ussd:" in keys[0]
        assert "13800138000" not in keys[0] and "8613800138000" not in keys[0]
        assert 0 < raw.ttl(keys[0]) <= 90
        raw.config_resetstat()
        assert await Phone(client, "ttl-2").dial() == OFFER_ZH
        stats = raw.info("commandstats")
        # The dial read session, preferences and resume copy in one MGET, nothing else.
        assert stats["cmdstat_mget"]["calls"] == 1
        assert "cmdstat_get" not in stats and "cmdstat_exists" not in stats
        assert await Phone(client, "ttl-2").send("2") == MAIN_ZH
        assert list(raw.scan_iter("hotline:*:resume:*")) == []
    finally:
        raw.close()
