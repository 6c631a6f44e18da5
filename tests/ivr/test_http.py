"""The voice channel through the HTTP surface the platforms use: real Redis, real ledger,
real eSpeak NG. What is spoken is read back from the clip URLs (sealed keys)."""

from __future__ import annotations

import asyncio
import io
import wave
import xml.etree.ElementTree as ET
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from aiohttp import web
from aiohttp.test_utils import TestClient
from pydantic import SecretStr
from yarl import URL

from hotline.base.config import Settings
from hotline.web.admin import reload_flows
from hotline.web.app import create_app
from hotline.web.keys import ENGINE
from ivr.audio import edge_silence, wav_duration
from ivr.clips import ClipSealer

ROOT = Path(__file__).resolve().parents[2]
SECRET = "test-secret"
SEALER = ClipSealer(SECRET)
VOICE = "/ivr/twilio/voice"
PHONE = "+8613800138000"  # demo subscriber: 12.50元, 3 GB, 200 min, 100 SMS
OWING = "+8613800138002"  # demo subscriber: owes 3.20元
MAIN_ZH = [
    "话费查询",
    "话费余额，请按一。",
    "流量余量，请按二。",
    "通话和短信，请按三。",
    "套餐摘要，请按四。",
    "语言/Language，请按五。",
    "退出，请按六。",
    "套餐，请按七。",
    "余额提醒，请按八。",
    "重听请按星号键。",
]
AFTER_RESULT_ZH = "重听请按星号键，返回主菜单请按零。"

Client = TestClient[web.Request, web.Application]
MakeClient = Callable[..., Awaitable[Client]]


def make_settings(tmp_path: Path, redis_url: str | None, audio: Path, **ivr: Any) -> Settings:
    return Settings(
        flows_dir=ROOT / "flows",
        prompts_dir=ROOT / "prompts",
        redis_url=redis_url,
        redis_timeout=2.0,  # as tests/ussd/test_http.py: room for a busy test host
        pseudonym_secret=SECRET,  # type: ignore[arg-type]
        balance={"ledger_path": tmp_path / "ledger.sqlite3", "subscriber_rate": "1000/minute"},  # type: ignore[arg-type]
        ivr={"audio_dir": audio, "warm_prompts": False, **ivr},  # type: ignore[arg-type]
    )


@pytest.fixture
async def client(
    aiohttp_client: MakeClient, tmp_path: Path, redis_url: str, audio_dir: Path
) -> Client:
    return await aiohttp_client(create_app(make_settings(tmp_path, redis_url, audio_dir)))


class Call:
    """A phone call through a Twilio-style platform: follows the document's URLs."""

    def __init__(self, client: Client, sid: str, phone: str = PHONE, to: str = "+8610000") -> None:
        self.client = client
        self.sid = sid
        self.phone = phone
        self.to = to
        self.doc: ET.Element | None = None

    def _path(self, url: str) -> str:
        parsed = URL(url)
        assert parsed.host == "127.0.0.1" and parsed.port == self.client.port, url
        return str(parsed.relative())

    async def post(self, path: str, **fields: str) -> ET.Element:
        form = {"CallSid": self.sid, "From": self.phone, "To": self.to, **fields}
        response = await self.client.post(path, data=form)
        assert response.status == 200, await response.text()
        assert response.content_type == "application/xml"
        body = await response.text()
        assert body.startswith('<?xml version="1.0" encoding="UTF-8"?><Response>')
        self.doc = ET.fromstring(body)
        return self.doc

    async def start(self) -> ET.Element:
        return await self.post(VOICE, CallStatus="ringing")

    async def press(self, digits: str) -> ET.Element:
        gather = self.gather
        assert gather is not None, "no Gather to press keys into"
        return await self.post(self._path(gather.attrib["action"]), Digits=digits)

    async def silence(self) -> ET.Element:
        assert self.doc is not None and self.doc[-1].tag == "Redirect"
        return await self.post(self._path(self.doc[-1].text or ""))

    @property
    def gather(self) -> ET.Element | None:
        assert self.doc is not None
        return self.doc.find("Gather")

    @property
    def plays(self) -> list[str]:
        assert self.doc is not None
        return [play.text or "" for play in self.doc.iter("Play")]

    @property
    def spoken(self) -> list[str]:
        return [SEALER.open(URL(url).name.removesuffix(".wav")).text for url in self.plays]

    @property
    def verbs(self) -> list[str]:
        assert self.doc is not None
        return [child.tag for child in self.doc]


def pcm_of(data: bytes) -> np.ndarray:
    with wave.open(io.BytesIO(data), "rb") as wav:
        return np.frombuffer(wav.readframes(wav.getnframes()), dtype="<i2")


async def fetch_wav(client: Client, url: str) -> bytes:
    response = await client.get(URL(url).path)
    assert response.status == 200
    assert response.headers["Content-Type"] == "audio/wav"
    data = await response.read()
    assert int(response.headers["Content-Length"]) == len(data)
    with wave.open(io.BytesIO(data), "rb") as wav:
        assert (wav.getframerate(), wav.getnchannels(), wav.getsampwidth()) == (8000, 1, 2)
    return data


async def test_call_start_menu_balance(client: Client) -> None:
    call = Call(client, "CA" + "a" * 32)
    await call.start()
    assert call.verbs == ["Gather", "Redirect"]
    gather = call.gather
    assert gather is not None
    base = f"http://127.0.0.1:{client.port}"
    assert gather.attrib == {
        "action": f"{base}/ivr/twilio/voice",
        "input": "dtmf",
        "method": "POST",
        "numDigits": "1",
        "timeout": "6",
    }
    assert call.doc is not None and call.doc[1].text == f"{base}/ivr/twilio/voice?timeout=1"
    assert call.spoken == MAIN_ZH
    for url in call.plays[:2]:
        assert url.startswith(f"{base}/ivr/audio/")
        assert wav_duration(await fetch_wav(client, url)) > 0.3

    await call.press("1")
    assert call.verbs == ["Gather", "Redirect"]  # the result, then "* again, 0 main menu"
    assert call.spoken == ["您的话费余额为", "十二元五角。", AFTER_RESULT_ZH]
    for url in call.plays:  # the amount is audio only, never in the URL
        key = URL(url).name
        assert "1250" not in key and "12.50" not in key and "%" not in key
    seconds = wav_duration(await fetch_wav(client, call.plays[1]))
    assert 0.8 < seconds < 4.0
    # No audible gap between the fixed text and the amount (was ~0.4 s of silence).
    fixed, amount = [pcm_of(await fetch_wav(client, url)) for url in call.plays[:2]]
    gap = edge_silence(fixed, 8000)[1] + edge_silence(amount, 8000)[0]
    assert gap <= 0.04, gap


async def test_owed_balance_and_english_after_choosing_it(client: Client) -> None:
    call = Call(client, "CA" + "b" * 32, OWING)
    await call.start()
    await call.press("5")
    assert call.spoken[0] == "请选择语言"
    await call.press("2")
    assert call.spoken[:2] == ["Balance service", "For Main balance, press one."]
    # A new call from the same number remembers English (the same preference USSD uses).
    second = Call(client, "CA" + "c" * 32, OWING)
    await second.start()
    assert second.spoken[0] == "Balance service"
    await second.press("1")
    assert second.spoken == [
        "You owe",
        "three yuan and twenty fen.",
        "Please top up.",
        "To hear it again, press star. For the main menu, press zero.",
    ]
    response = await client.post(
        "/ussd/africastalking",
        data={"sessionId": "ussd-1", "serviceCode": "*100#", "phoneNumber": OWING,
              "networkCode": "46000", "text": ""},
    )  # fmt: skip
    assert (await response.text()).startswith("CON Balance service")


async def test_no_input_repeats_then_goodbye(client: Client) -> None:
    call = Call(client, "CA" + "d" * 32)
    await call.start()
    first = call.spoken
    await call.silence()
    await call.silence()
    assert call.verbs == ["Gather", "Redirect"] and call.spoken == first
    await call.press("9")  # a wrong key is counted apart (and ends the run of silences)
    assert call.spoken[0] == "输入有误，请重新选择。"
    await call.silence()
    await call.silence()
    assert call.verbs == ["Gather", "Redirect"] and call.spoken == first
    await call.silence()
    assert call.verbs == ["Play", "Hangup"]
    assert call.spoken == ["感谢使用，再见。"]


async def test_star_repeats_and_wrong_keys_end_politely(client: Client) -> None:
    call = Call(client, "CA" + "e" * 32)
    await call.start()
    await call.press("9")
    assert call.spoken == ["输入有误，请重新选择。", *MAIN_ZH]
    await call.press("*")
    assert call.spoken == MAIN_ZH  # the current prompt, without the old notice
    await call.press("9")
    await call.press("0")  # back on the main menu is not a choice either
    assert call.verbs == ["Play", "Hangup"]
    assert call.spoken == ["输入错误次数过多，请稍后再拨。"]


async def test_the_agent_option_is_the_flows_and_follows_a_reload(
    aiohttp_client: MakeClient, tmp_path: Path, redis_url: str, audio_dir: Path
) -> None:
    """`0` for an agent is a flow option (`when: agent`) and a `call.transfer` state."""
    flows = tmp_path / "flows"
    flows.mkdir()
    source = (ROOT / "flows" / "balance.yaml").read_text(encoding="utf-8")
    (flows / "balance.yaml").write_text(source, encoding="utf-8")
    settings = make_settings(tmp_path, redis_url, audio_dir, agent_number="+8610086")
    client = await aiohttp_client(create_app(settings.model_copy(update={"flows_dir": flows})))
    first = Call(client, "CA" + "7" * 32)
    await first.start()
    assert "人工服务，请按零。" in first.spoken
    # The reloaded flow offers the agent only when a variable nobody sets is set.
    without = source.replace("next: agent, when: agent }", "next: agent, when: agents_on_duty }")
    assert without != source
    (flows / "balance.yaml").write_text(without, encoding="utf-8")
    await reload_flows(client.app)
    second = Call(client, "CA" + "8" * 32)
    await second.start()
    assert "人工服务，请按零。" not in second.spoken
    await second.press("0")  # not a choice in the reloaded flow
    assert second.spoken[0] == "输入有误，请重新选择。"
    # The call that started on the old version keeps it, agent option included.
    await first.press("0")
    assert first.verbs == ["Play", "Dial"]


async def test_unknown_call_with_digits_starts_fresh(client: Client) -> None:
    call = Call(client, "CA" + "f" * 32)
    await call.post(VOICE, Digits="1")
    assert call.verbs == ["Gather", "Redirect"]
    assert call.spoken == MAIN_ZH


async def test_zero_dials_the_agent_when_configured(
    aiohttp_client: MakeClient, tmp_path: Path, redis_url: str, audio_dir: Path
) -> None:
    settings = make_settings(tmp_path, redis_url, audio_dir, agent_number="+8610086")
    client = await aiohttp_client(create_app(settings))
    call = Call(client, "CA" + "1" * 32)
    await call.start()
    assert "人工服务，请按零。" in call.spoken
    await call.press("0")
    assert call.verbs == ["Play", "Dial"]
    assert call.doc is not None and call.doc[1].text == "+8610086"
    assert call.spoken == ["正在为您转接人工服务，请稍候。"]


async def test_without_an_agent_number_zero_is_no_choice(client: Client) -> None:
    call = Call(client, "CA" + "2" * 32)
    await call.start()
    assert "人工服务，请按零。" not in call.spoken
    await call.press("0")
    assert call.spoken[0] == "输入有误，请重新选择。"


@pytest.mark.parametrize(
    ("form", "reason"),
    [
        ({"From": PHONE}, "missing field CallSid"),
        ({"CallSid": "CA1"}, "missing field From"),
        ({"CallSid": "CA1", "From": PHONE, "Digits": "x"}, "malformed field Digits"),
    ],
)
async def test_bad_twilio_requests_get_400(
    client: Client, form: dict[str, str], reason: str
) -> None:
    response = await client.post(VOICE, data=form)
    assert response.status == 400
    assert (await response.text()).startswith(reason)


async def test_non_form_body_gets_400(client: Client) -> None:
    response = await client.post(VOICE, json={"CallSid": "CA1", "From": PHONE})
    assert response.status == 400
    assert "Content-Type" in await response.text()


async def test_africastalking_call(client: Client) -> None:
    form = {"isActive": "1", "sessionId": "ATVId_1", "callerNumber": PHONE}
    response = await client.post("/ivr/africastalking", data=form)
    assert response.status == 200
    root = ET.fromstring(await response.text())
    assert [c.tag for c in root] == ["GetDigits", "Redirect"]
    digits = root[0]
    assert digits.attrib["callbackUrl"] == f"http://127.0.0.1:{client.port}/ivr/africastalking"
    urls = [play.attrib["url"] for play in digits]
    assert [SEALER.open(URL(u).name[:-4]).text for u in urls] == MAIN_ZH
    response = await client.post("/ivr/africastalking", data={**form, "dtmfDigits": "1"})
    root = ET.fromstring(await response.text())
    assert [c.tag for c in root] == ["GetDigits", "Redirect"]
    assert root[0].attrib["numDigits"] == "1"
    said = [SEALER.open(URL(play.attrib["url"]).name[:-4]).text for play in root[0]]
    assert said == ["您的话费余额为", "十二元五角。", AFTER_RESULT_ZH]
    response = await client.post(
        "/ivr/africastalking", data={**form, "isActive": "0", "durationInSeconds": "12"}
    )
    assert response.status == 200 and ET.fromstring(await response.text()).tag == "Response"
    response = await client.post("/ivr/africastalking", data={"sessionId": "x"})
    assert response.status == 400


async def test_audio_route_head_range_etag_and_404(client: Client) -> None:
    call = Call(client, "CA" + "2" * 32)
    await call.start()
    path = URL(call.plays[0]).path
    full = await client.get(path)
    data = await full.read()
    etag = full.headers["ETag"]
    assert full.headers["Cache-Control"] == "public, max-age=31536000, immutable"
    head = await client.head(path)
    assert head.status == 200 and await head.read() == b""
    assert head.headers["Content-Length"] == str(len(data)) and head.headers["ETag"] == etag
    part = await client.get(path, headers={"Range": "bytes=0-43"})
    assert part.status == 206 and await part.read() == data[:44]
    assert part.headers["Content-Range"] == f"bytes 0-43/{len(data)}"
    tail = await client.get(path, headers={"Range": "bytes=-10"})
    assert tail.status == 206 and await tail.read() == data[-10:]
    bad = await client.get(path, headers={"Range": f"bytes={len(data) + 5}-"})
    assert bad.status == 416
    cached = await client.get(path, headers={"If-None-Match": etag})
    assert cached.status == 304
    forged = ClipSealer("another-secret").seal(SEALER.open(URL(path).name[:-4]))
    for key in ("A" * 40, forged, "short", "../../etc/passwd"):
        response = await client.get(f"/ivr/audio/{key}.wav")
        assert response.status == 404, key


async def test_any_worker_renders_a_clip_it_never_saw(
    aiohttp_client: MakeClient, tmp_path: Path, redis_url: str, audio_dir: Path, client: Client
) -> None:
    call = Call(client, "CA" + "3" * 32)
    await call.start()
    await call.press("1")
    value_url = call.plays[1]
    other_dir = tmp_path / "other-worker-audio"
    other = await aiohttp_client(create_app(make_settings(tmp_path, redis_url, other_dir)))
    response = await other.get(URL(value_url).path)
    assert response.status == 200, await response.text()
    data = await response.read()
    mine = await (await client.get(URL(value_url).path)).read()
    assert wav_duration(data) == pytest.approx(wav_duration(mine), abs=0.05)
    etag = (await client.get(URL(value_url).path)).headers["ETag"]
    assert response.headers["ETag"] == etag  # the same tag from every worker
    # ... and not the clip's unkeyed digest, from which the spoken balance could be guessed.
    assert SEALER.open(URL(value_url).name[:-4]).digest[:16] not in etag
    assert list(other_dir.rglob("*.wav"))


async def test_speech_failure_still_answers_valid_twiml(
    aiohttp_client: MakeClient, tmp_path: Path, redis_url: str
) -> None:
    audio = tmp_path / "fresh-audio"
    # The apology is pre-rendered (startup warm-up renders it first); then speech breaks.
    warm_settings = make_settings(tmp_path, redis_url, audio)
    warm_client = await aiohttp_client(create_app(warm_settings))
    await warm_client.post("/ivr/africastalking", data={"isActive": "1", "sessionId": "warm",
                                                        "callerNumber": "+8613800138005"})  # fmt: skip
    apology_text = "系统繁忙，请稍后再试。"
    broken = make_settings(tmp_path, redis_url, tmp_path / "broken-audio", tts_timeout=0.0001)
    client = await aiohttp_client(create_app(broken))
    call = Call(client, "CA" + "4" * 32)
    await call.start()
    assert call.verbs == ["Play", "Hangup"]
    assert call.spoken == [apology_text]


async def test_session_store_down_still_answers_valid_twiml(
    aiohttp_client: MakeClient, tmp_path: Path, stoppable_redis: Any, audio_dir: Path
) -> None:
    client = await aiohttp_client(
        create_app(make_settings(tmp_path, stoppable_redis.url, audio_dir))
    )
    stoppable_redis.stop()
    call = Call(client, "CA" + "5" * 32)
    await call.start()
    assert call.verbs == ["Play", "Hangup"]
    assert call.spoken == ["系统繁忙，请稍后再试。"]


@pytest.mark.parametrize(
    "body",
    [
        b"CallSid=%ff%fe&From=%2B8613800138000",  # not UTF-8
        b"CallSid=CA1&From=" + b"9" * 9000,  # over the body limit
        b"\x00\x01\x02",
    ],
)
async def test_garbled_bodies_get_400_never_500(client: Client, body: bytes) -> None:
    response = await client.post(
        VOICE, data=body, headers={"Content-Type": "application/x-www-form-urlencoded"}
    )
    assert response.status == 400, await response.text()
    assert await response.text()


async def test_an_unknown_charset_gets_400_never_an_apology(client: Client) -> None:
    response = await client.post(
        VOICE,
        data=b"CallSid=CA1&From=%2B8613800138000",
        headers={"Content-Type": "application/x-www-form-urlencoded; charset=bogus"},
    )
    assert response.status == 400
    assert (await response.text()).startswith("unreadable form")


async def test_public_base_url_names_every_follow_up_url(
    aiohttp_client: MakeClient, tmp_path: Path, redis_url: str, audio_dir: Path
) -> None:
    settings = make_settings(
        tmp_path, redis_url, audio_dir, public_base_url="https://ivr.example.com/"
    )
    client = await aiohttp_client(create_app(settings))
    response = await client.post(
        VOICE, data={"CallSid": "CA" + "6" * 32, "From": PHONE, "CallStatus": "ringing"}
    )
    root = ET.fromstring(await response.text())
    assert root[0].attrib["action"] == "https://ivr.example.com/ivr/twilio/voice"
    assert root[1].text == "https://ivr.example.com/ivr/twilio/voice?timeout=1"
    plays = [play.text or "" for play in root.iter("Play")]
    assert plays and all(p.startswith("https://ivr.example.com/ivr/audio/") for p in plays)
    # The platform fetches them from that host; here the path alone reaches the clip.
    assert (await client.get(URL(plays[0]).path)).status == 200


async def test_startup_warms_every_static_clip_in_the_background(
    aiohttp_client: MakeClient,
    tmp_path: Path,
    redis_url: str,
    audio_dir: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    import ivr.routes
    from ivr.warmup import static_specs

    monkeypatch.setattr(ivr.routes, "WARM_DELAY", 0.0)
    settings = make_settings(tmp_path, redis_url, audio_dir, warm_prompts=True)
    client = await aiohttp_client(create_app(settings))
    report = await client.app[ivr.routes.WARMUP]
    specs = static_specs(client.app[ivr.routes.SPEAKER], client.app[ENGINE].registry.flows())
    assert report.total == len(specs) > 60 and report.failed == 0
    assert report.rendered + report.cached == report.total
    assert all((audio_dir / s.digest[:2] / f"{s.digest}.wav").is_file() for s in specs)


async def test_a_reload_warms_the_new_flows_clips_in_the_background(
    aiohttp_client: MakeClient,
    tmp_path: Path,
    redis_url: str,
    audio_dir: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    import ivr.routes
    from hotline.flow.load import load_flow
    from hotline.web.admin import RELOAD_TASKS
    from ivr.warmup import static_specs

    monkeypatch.setattr(ivr.routes, "WARM_DELAY", 3600.0)  # keep the startup warm-up out
    flows = tmp_path / "flows"
    flows.mkdir()
    balance = flows / "balance.yaml"
    source = (ROOT / "flows" / "balance.yaml").read_text(encoding="utf-8")
    balance.write_text(source, encoding="utf-8")
    settings = make_settings(tmp_path, redis_url, audio_dir, warm_prompts=True)
    admin = settings.security.model_copy(update={"admin_token": SecretStr("admin-token-0123")})
    settings = settings.model_copy(update={"flows_dir": flows, "security": admin})
    client = await aiohttp_client(create_app(settings))
    speaker, speech = client.app[ivr.routes.SPEAKER], client.app[ivr.routes.SPEECH]
    before = {s.digest for s in static_specs(speaker, client.app[ENGINE].registry.flows())}

    # The exit option moves to key 9: "退出，请按九。" is a clip no loaded flow had.
    moved = source.replace('{ key: "6", label: main.exit', '{ key: "9", label: main.exit')
    assert moved != source
    balance.write_text(moved, encoding="utf-8")
    new = [s for s in static_specs(speaker, [load_flow(balance)]) if s.digest not in before]
    assert "退出，请按九。" in {s.text for s in new}
    assert not any(speech.has(s) for s in new)

    ok = await client.post("/admin/reload", headers={"Authorization": "Bearer admin-token-0123"})
    assert ok.status == 200
    await asyncio.gather(*client.app[RELOAD_TASKS])
    assert all(speech.has(s) for s in new)
    assert all((audio_dir / s.digest[:2] / f"{s.digest}.wav").is_file() for s in new)


async def test_a_repeated_call_start_gets_the_identical_document_from_any_worker(
    aiohttp_client: MakeClient, tmp_path: Path, redis_url: str, audio_dir: Path
) -> None:
    settings = make_settings(
        tmp_path, redis_url, audio_dir, public_base_url="https://ivr.example.com/"
    )
    first, second = [await aiohttp_client(create_app(settings)) for _ in range(2)]
    form = {"CallSid": "CA" + "9" * 32, "From": PHONE, "CallStatus": "ringing"}
    original = await (await first.post(VOICE, data=form)).text()
    for worker in (first, second):  # the platform sends the start again
        again = await worker.post(VOICE, data=form)
        assert again.status == 200 and await again.text() == original
    assert [c.tag for c in ET.fromstring(original)] == ["Gather", "Redirect"]


async def test_a_call_sid_from_another_caller_gets_no_one_elses_call(client: Client) -> None:
    """A CallSid is bound to the caller who started the call."""
    sid = "CA" + "b" * 32
    owner = Call(client, sid)
    await owner.start()
    intruder = Call(client, sid, phone="+8613800138005")
    await intruder.post(VOICE, Digits="1")
    assert intruder.spoken == ["会话已失效，请重新拨打。"]
    assert intruder.verbs == ["Play", "Hangup"]
    await owner.press("1")
    assert owner.spoken[0] == "您的话费余额为"  # the owner's call goes on, with the owner's balance
    assert "十二元五角" in "".join(owner.spoken)


CARD_FLOW = """
spec: 1
id: card
start: card
after_result: false
entries:
  - ivr: "+8610099"
states:
  card:
    kind: input
    prompt: main.title
    var: card
    min_length: 2
    max_length: 4
    error: nav.invalid
    next: done
  done:
    kind: end
    prompt: common.goodbye
"""


async def test_an_input_state_says_how_to_finish_and_finishes_at_max_length(
    aiohttp_client: MakeClient, tmp_path: Path, redis_url: str, audio_dir: Path
) -> None:
    flows = tmp_path / "flows"
    flows.mkdir()
    (flows / "balance.yaml").write_text((ROOT / "flows" / "balance.yaml").read_text("utf-8"))
    (flows / "card.yaml").write_text(CARD_FLOW, encoding="utf-8")
    settings = make_settings(tmp_path, redis_url, audio_dir)
    client = await aiohttp_client(create_app(settings.model_copy(update={"flows_dir": flows})))
    call = Call(client, "CA" + "9" * 32, to="+8610099")
    await call.start()
    assert call.spoken == ["话费查询", "输入完毕请按井号键。", "重听请按星号键。"]
    gather = call.gather
    assert gather is not None
    assert gather.attrib["finishOnKey"] == "#" and gather.attrib["numDigits"] == "4"
    await call.press("5#")  # finished early with #: one digit is too short
    assert call.spoken[0] == "输入有误，请重新选择。"
    await call.press("12#")  # finished early with #, long enough
    assert call.spoken == ["感谢使用，再见。"]
    again = Call(client, "CA" + "8" * 31 + "9", to="+8610099")
    await again.start()
    await again.press("1234")  # the platform finished at numDigits, no # needed
    assert again.spoken == ["感谢使用，再见。"]


async def test_after_the_balance_star_repeats_zero_goes_home_silence_says_goodbye(
    client: Client,
) -> None:
    """A result is followed by "press * to hear it again, 0 for the main menu"; `*` says
    the result again, `0` is the main menu; a silence says only the offer again (not the
    balance), and the flow's `max_no_input` silences end with a goodbye."""
    call = Call(client, "CA" + "3" * 32)
    await call.start()
    await call.press("1")
    result = ["您的话费余额为", "十二元五角。", AFTER_RESULT_ZH]
    assert call.spoken == result
    await call.press("*")
    assert call.verbs == ["Gather", "Redirect"] and call.spoken == result
    await call.press("0")
    assert call.spoken == MAIN_ZH
    await call.press("1")
    assert call.spoken == result
    await call.silence()
    assert call.verbs == ["Gather", "Redirect"] and call.spoken == [AFTER_RESULT_ZH]
    await call.press("*")  # a key ends the run of silences: the result again
    assert call.spoken == result
    for _ in range(2):
        await call.silence()
        assert call.spoken == [AFTER_RESULT_ZH]
    await call.silence()  # the third silence in a row (max_no_input: 3)
    assert call.verbs == ["Play", "Hangup"] and call.spoken == ["感谢使用，再见。"]


async def test_choosing_exit_hangs_up_at_once(client: Client) -> None:
    call = Call(client, "CA" + "4" * 32)
    await call.start()
    await call.press("6")  # goodbye is an end state with `after_result: false`
    assert call.verbs == ["Play", "Hangup"] and call.spoken == ["感谢使用，再见。"]


async def test_a_flow_can_turn_the_offer_off(
    aiohttp_client: MakeClient, tmp_path: Path, redis_url: str, audio_dir: Path
) -> None:
    flows = tmp_path / "flows"
    flows.mkdir()
    source = (ROOT / "flows" / "balance.yaml").read_text(encoding="utf-8")
    assert "\nafter_result: true\n" in source
    (flows / "balance.yaml").write_text(
        source.replace("\nafter_result: true\n", "\nafter_result: false\n"), encoding="utf-8"
    )
    settings = make_settings(tmp_path, redis_url, audio_dir)
    client = await aiohttp_client(create_app(settings.model_copy(update={"flows_dir": flows})))
    call = Call(client, "CA" + "5" * 32)
    await call.start()
    await call.press("1")
    assert call.verbs == ["Play", "Play", "Hangup"]
    assert call.spoken == ["您的话费余额为", "十二元五角。"]


async def test_an_africastalking_voice_session_from_another_caller_is_refused(
    client: Client,
) -> None:
    form = {"isActive": "1", "sessionId": "ATVId_bound", "callerNumber": PHONE}
    assert (await client.post("/ivr/africastalking", data=form)).status == 200
    other = {**form, "callerNumber": "+8613800138005", "dtmfDigits": "1"}
    root = ET.fromstring(await (await client.post("/ivr/africastalking", data=other)).text())
    texts = [SEALER.open(URL(p.attrib["url"]).name[:-4]).text for p in root]
    assert texts == ["会话已失效，请重新拨打。"]
    root = ET.fromstring(
        await (await client.post("/ivr/africastalking", data={**form, "dtmfDigits": "1"})).text()
    )
    assert SEALER.open(URL(root[0][1].attrib["url"]).name[:-4]).text == "十二元五角。"
