"""The report's figures from real sessions through the real USSD, voice and SMS routes."""

from __future__ import annotations

import json
import re
import time
from collections.abc import Awaitable, Callable

from hotline.analytics.recorder import RECORDER
from hotline.analytics.report import SUPPRESSED, Report
from tests.analytics.conftest import (
    ACTIVE,
    SUSPENDED,
    Call,
    Client,
    Ussd,
    settle_and_report,
    sms,
    unknown,
)

MakeClient = Callable[..., Awaitable[Client]]


def _row(report: Report, channel: str, flow: str, *, totals: bool = False) -> object:
    rows = [
        r
        for r in (report.totals if totals else report.rows)
        if (r.channel, r.flow) == (channel, flow)
    ]
    assert len(rows) == 1, rows
    return rows[0]


async def _ussd_day(client: Client) -> None:
    """Ten USSD contacts: 5 results, 2 errors, 1 exit, 2 abandoned after an invalid key."""
    for i, phone in enumerate(ACTIVE):
        s = Ussd(client, f"ok-{i}", phone)
        assert (await s.send()).startswith("CON ")
        assert (await s.send("1")).startswith("END ")
    s = Ussd(client, "suspended", SUSPENDED)
    await s.send()
    assert (await s.send("1")).startswith("END ")
    for n in (1, 2):
        s = Ussd(client, f"gone-{n}", unknown(n))
        await s.send()
        assert (await s.send("9")).startswith("CON ")  # invalid choice: the menu again
    s = Ussd(client, "exit", unknown(3))
    await s.send()
    assert (await s.send("6")).startswith("END ")
    s = Ussd(client, "nobody", unknown(4), code="*100*1#")
    assert (await s.send()).startswith("END ")


async def test_ussd_day_self_service_rate_funnel_and_steps(make_client: MakeClient) -> None:
    client = await make_client()
    await _ussd_day(client)
    report = await settle_and_report(client.app)

    row = _row(report, "ussd", "balance")
    assert not row.suppressed  # type: ignore[attr-defined]
    assert (row.contacts, row.result, row.error, row.exit, row.abandoned, row.transfer) == (  # type: ignore[attr-defined]
        10,
        5,
        2,
        1,
        2,
        0,
    )
    assert row.self_service_rate == 0.5 and row.deflection == 1.0  # type: ignore[attr-defined]
    assert (row.steps_median, row.steps_p95) == (2.0, 2.0)  # type: ignore[attr-defined]
    assert row.seconds_median is not None and row.seconds_median <= 5  # type: ignore[attr-defined]
    assert row.lookups == 7  # 5 results, the suspended one, the unknown direct dial  # type: ignore[attr-defined]

    funnel = {f.state: f for f in report.funnels if f.flow == "balance"}
    main = funnel["main"]
    assert (main.visits, main.inputs, main.invalid, main.dropoffs) == (9, 9, 2, 3)
    assert main.invalid_rate == round(2 / 9, 4)
    assert funnel["show_balance"].visits == 5 and funnel["show_balance"].dropoffs == 0
    # One subscriber each: suppressed, and saying so.
    for state in ("unknown_number", "account_suspended", "goodbye"):
        assert funnel[state].suppressed == SUPPRESSED(5) and funnel[state].visits is None
    upstream = report.upstream[0]
    assert upstream.lookups == 7 and upstream.lookup_errors == 2
    assert report.open_sessions == 0


async def test_small_groups_are_suppressed_and_exports_hold_no_number(
    make_client: MakeClient,
) -> None:
    client = await make_client()
    for i, phone in enumerate(ACTIVE[:4]):
        s = Ussd(client, f"few-{i}", phone)
        await s.send()
        await s.send("1")
    report = await settle_and_report(client.app)
    row = _row(report, "ussd", "balance")
    assert row.suppressed == "fewer than 5 subscribers: suppressed"  # type: ignore[attr-defined]
    assert row.contacts is None and row.result is None  # type: ignore[attr-defined]
    assert all(f.suppressed and f.visits is None for f in report.funnels)
    exported = json.dumps(report.to_dict(), ensure_ascii=False)
    assert not re.search(r"1380013800|\+86|12\.50|元", exported)


async def test_same_subscriber_five_times_is_still_one_subscriber(make_client: MakeClient) -> None:
    client = await make_client()
    for i in range(6):
        s = Ussd(client, f"same-{i}", ACTIVE[0])
        await s.send()
        await s.send("1")
    report = await settle_and_report(client.app)
    assert _row(report, "ussd", "balance").suppressed  # type: ignore[attr-defined]


async def test_voice_transfers_are_the_deflection_figure(make_client: MakeClient) -> None:
    client = await make_client(ivr={"agent_number": "+8610000"})
    for i, phone in enumerate(ACTIVE):
        call = Call(client, f"CA{i:032d}", phone)
        await call.start()
        if i < 2:
            assert "<Dial" in await call.press("0")  # the agent
        else:
            await call.press("1")  # the balance
            await call.hang_up()
    report = await settle_and_report(client.app)
    row = _row(report, "ivr", "balance")
    assert (row.contacts, row.result, row.transfer, row.abandoned) == (5, 3, 2, 0)  # type: ignore[attr-defined]
    assert row.transfer_share == 0.4 and row.deflection == 0.6  # type: ignore[attr-defined]
    assert row.self_service_rate == 0.6  # type: ignore[attr-defined]


async def test_survey_by_sms_and_ussd_gives_the_score_distribution(
    make_client: MakeClient,
) -> None:
    client = await make_client()
    for phone, score in zip(ACTIVE, ("5", "4", "4", "3", "5"), strict=True):
        reply = await sms(client, phone, f"PJ {score}")
        assert "感谢您的评价" in reply, reply
    s = Ussd(client, "rate-1", unknown(9), code="*101*5#")
    assert "1（很差）至5（很好）" in await s.send()
    assert "请输入1至5" in await s.send("7")  # not a score: asked again
    assert "感谢" in await s.send("2")
    report = await settle_and_report(client.app)
    (survey,) = [s for s in report.surveys if s.flow == "data"]
    assert survey.scores == {"2": 1, "3": 1, "4": 2, "5": 2} and survey.answers == 6
    assert survey.mean == round(23 / 6, 2)
    sms_row = _row(report, "sms", "data")
    assert (sms_row.contacts, sms_row.result) == (5, 5)  # type: ignore[attr-defined]
    funnel = {(f.channel, f.state): f for f in report.funnels if f.flow == "data"}
    assert funnel[("ussd", "survey_ask")].suppressed  # one subscriber on USSD


async def test_recorder_off_by_default_and_with_no_redis(
    aiohttp_client: Callable[..., Awaitable[Client]],
) -> None:
    from hotline.base.config import AnalyticsSettings, load_settings
    from hotline.web.app import create_app
    from hotline.web.keys import TURN_OBSERVERS

    app = create_app(load_settings())
    assert RECORDER not in app and TURN_OBSERVERS not in app
    app = create_app(load_settings(analytics=AnalyticsSettings(enabled=True)))  # no redis_url
    assert RECORDER not in app


async def test_redis_holds_no_number_before_or_after_settling(
    make_client: MakeClient, redis_url: str
) -> None:
    import redis.asyncio as aioredis

    client = await make_client()
    await _ussd_day(client)
    recorder = client.app[RECORDER]
    await recorder.flush()
    raw = aioredis.from_url(redis_url)

    async def dump() -> bytes:
        found = b""
        async for key in raw.scan_iter("hotline:*:an:*"):
            found += key
            kind = (await raw.type(key)).decode()
            if kind == "list":
                found += b"".join(await raw.lrange(key, 0, -1))
            elif kind == "hash":
                found += b"".join(k + v for k, v in (await raw.hgetall(key)).items())
            elif kind == "zset":
                found += b"".join(await raw.zrange(key, 0, -1))
            elif kind == "stream":
                for _, fields in await raw.xrange(key):
                    found += b"".join(k + v for k, v in fields.items())
        return found

    held = await dump()  # the sessions are held by the worker; Redis has their names
    assert b":workers" in held and b":turns:" not in held
    await recorder.stop()  # as at a graceful stop: what it holds goes to Redis
    live = await dump()
    assert b":turns:" in live  # the facts are there, by pseudonym
    await recorder.settle(now=time.time() + 100_000)
    settled = await dump()
    assert b":day:" in settled and b":turns:" not in settled
    for blob in (held, live, settled):
        for phone in (*ACTIVE, SUSPENDED, unknown(1)):
            assert phone.lstrip("+").encode() not in blob and phone[3:].encode() not in blob
        assert b"12.50" not in blob  # the balance the active subscriber saw
    await raw.aclose()


async def test_survey_by_voice_press_one_to_five(make_client: MakeClient) -> None:
    client = await make_client()
    for i, (phone, score) in enumerate(zip(ACTIVE, "54321", strict=True)):
        call = Call(client, f"CA{i:032d}", phone, to="+8610087")
        await call.start()
        gather = call.doc.find("Gather") if call.doc is not None else None
        assert gather is not None and gather.attrib.get("numDigits") == "1"
        await call.press(score)
        await call.hang_up()
    report = await settle_and_report(client.app)
    (survey,) = report.surveys
    assert survey.flow == "data" and survey.scores == {"1": 1, "2": 1, "3": 1, "4": 1, "5": 1}
    row = _row(report, "ivr", "data")
    assert (row.contacts, row.result) == (5, 5)  # type: ignore[attr-defined]
