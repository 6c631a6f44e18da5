"""Voice layout, dialect parsers and XML writers on plain data (no server, no engine)."""

from __future__ import annotations

import datetime as dt
import xml.etree.ElementTree as ET
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest
from yarl import URL

from hotline.base.errors import BadGatewayRequest
from hotline.base.values import Clock, Date, Money, Volume
from hotline.flow.registry import FlowRegistry
from hotline.flow.screen import Option, PromptPart, Screen
from hotline.i18n.catalog import load_catalogs
from ivr.clips import ClipSealer
from ivr.dialects import africastalking, twilio
from ivr.render import Gather, Speaker, VoiceLayout, VoicePlan, fragments
from ivr.voicexml import element
from ivr.warmup import static_specs

ROOT = Path(__file__).resolve().parents[2]
CATALOGS = load_catalogs(ROOT / "prompts", ("zh-CN", "en"), "zh-CN")
SEALER = ClipSealer("test-secret")
SPEAKER = Speaker(
    catalogs=CATALOGS, sealer=SEALER, voices={"zh-CN": "cmn", "en": "en-us"}, rate=150
)
ACTION = URL("https://ivr.example.com/ivr/twilio/voice")
PREFIX = "https://ivr.example.com/ivr/audio/"
MAIN = Screen(
    "main",
    "zh-CN",
    (PromptPart("main.title"),),
    tuple(Option(k, PromptPart(f"main.{n}")) for k, n in (("1", "balance"), ("2", "data"))),
    expects_input=True,
)


def layout(write=twilio.write) -> VoiceLayout:  # type: ignore[no-untyped-def]
    return VoiceLayout(
        speaker=SPEAKER, write=write, action_url=ACTION, audio_prefix=PREFIX, gather_timeout=6
    )


def spoken(plan: VoicePlan) -> list[str]:
    return [clip.spec.text for clip in plan.clips]


def test_menu_is_spoken_as_sentences() -> None:
    plan = layout().plan(MAIN)
    assert spoken(plan) == [
        "话费查询",
        "话费余额，请按一。",
        "流量余量，请按二。",
        "重听请按星号键。",
    ]
    assert not any(clip.dynamic for clip in plan.clips)
    en = layout().plan(Screen("main", "en", MAIN.parts, MAIN.options, expects_input=True))
    assert spoken(en)[1:3] == ["For Main balance, press one.", "For Data, press two."]
    assert {clip.spec.voice for clip in en.clips} == {"en-us"}


def test_notice_first_then_menu() -> None:
    screen = Screen(
        "main", "en", MAIN.parts, MAIN.options, notice=PromptPart("nav.invalid"), expects_input=True
    )
    assert spoken(layout().plan(screen))[:2] == [
        "Invalid choice, please try again.",
        "Balance service",
    ]


def test_values_are_separate_clips_and_urls_hide_them() -> None:
    part = PromptPart("result.balance", {"balance": Money(1250, "CNY", 2)})
    plan = layout().plan(Screen("show_balance", "zh-CN", (part,), ends=True))
    assert [(c.spec.text, c.dynamic) for c in plan.clips] == [
        ("您的话费余额为", False),
        ("十二元五角。", True),
    ]
    for clip in plan.clips:
        assert clip.url.startswith(PREFIX) and clip.url.endswith(".wav")
        key = clip.url[len(PREFIX) : -4]
        assert SEALER.open(key) == clip.spec
        assert "12" not in clip.url and "十二" not in clip.url


def test_two_values_in_one_sentence() -> None:
    part = PromptPart(
        "result.data_until",
        {"data": Volume(3 * 1024**3), "data_expiry": Date(dt.date(2026, 12, 31))},
    )
    pieces = fragments(CATALOGS, part, "zh-CN", SPEAKER.formatter)
    assert pieces == [
        ("剩余流量", False),
        ("三GB，", True),
        ("有效期至", False),
        ("二零二六年十二月三十一日。", True),
    ]
    # Without values the same sentence is cut in the same places (prompt enumeration).
    bare = fragments(CATALOGS, PromptPart("result.data_until"), "zh-CN", SPEAKER.formatter)
    assert bare == [("剩余流量", False), ("有效期至", False)]


def _twiml(body: str) -> ET.Element:
    assert body.startswith('<?xml version="1.0" encoding="UTF-8"?>')
    return ET.fromstring(body)


def test_twiml_menu_document() -> None:
    root = _twiml(layout().render(MAIN))
    assert root.tag == "Response"
    assert [child.tag for child in root] == ["Gather", "Redirect"]
    gather, redirect = root
    assert gather.attrib == {
        "action": str(ACTION),
        "input": "dtmf",
        "method": "POST",
        "numDigits": "1",
        "timeout": "6",
    }
    plays = list(gather)
    assert [p.tag for p in plays] == ["Play"] * 4
    assert all((p.text or "").startswith(PREFIX) for p in plays)
    assert redirect.attrib == {"method": "POST"}
    assert redirect.text == str(ACTION) + "?timeout=1"


def test_twiml_end_and_agent_documents() -> None:
    goodbye = Screen("goodbye", "en", (PromptPart("common.goodbye"),), ends=True)
    root = _twiml(layout().render(goodbye))
    assert [c.tag for c in root] == ["Play", "Hangup"]
    # The agent is a flow option like any other (offered by the flow's `when: agent`).
    agent = Option("0", PromptPart("voice.agent"))
    menu = Screen("main", "zh-CN", MAIN.parts, (*MAIN.options, agent), expects_input=True)
    gather = _twiml(layout().render(menu))[0]
    assert gather.attrib["action"] == str(ACTION)
    assert "人工服务，请按零。" in spoken(layout().plan(menu))
    # An ending screen that hands the call over speaks, then dials.
    handover = Screen(
        "transferring", "zh-CN", (PromptPart("voice.transfer"),), ends=True, transfer="+8610086"
    )
    dial = _twiml(layout().render(handover))
    assert [c.tag for c in dial] == ["Play", "Dial"] and dial[1].text == "+8610086"
    assert spoken(layout().plan(handover)) == ["正在为您转接人工服务，请稍候。"]


def test_golden_bytes_are_stable() -> None:
    body = twilio.write(VoicePlan((), dial="+100"))
    assert body == '<?xml version="1.0" encoding="UTF-8"?><Response><Dial>+100</Dial></Response>'
    at = africastalking.write(VoicePlan((), dial="+100"))
    assert (
        at
        == '<?xml version="1.0" encoding="UTF-8"?><Response><Dial phoneNumbers="+100" /></Response>'
    )


def test_africastalking_document() -> None:
    root = _twiml(layout(africastalking.write).render(MAIN))
    assert [c.tag for c in root] == ["GetDigits", "Redirect"]
    digits, redirect = root
    assert digits.attrib == {"callbackUrl": str(ACTION), "numDigits": "1", "timeout": "6"}
    assert [p.tag for p in digits] == ["Play"] * 4
    assert all(p.attrib["url"].startswith(PREFIX) and p.text is None for p in digits)
    assert redirect.text == str(ACTION) + "?timeout=1"
    end = _twiml(
        layout(africastalking.write).render(
            Screen("goodbye", "en", (PromptPart("common.goodbye"),), ends=True)
        )
    )
    assert [c.tag for c in end] == ["Play"]


CALL = {"CallSid": "CA" + "0" * 32, "From": "+8613800138000", "To": "+8610000"}


@pytest.mark.parametrize(
    ("extra", "query", "kind", "text"),
    [
        ({"CallStatus": "ringing"}, {}, "start", ""),
        ({"Digits": "1"}, {}, "input", "1"),
        ({"Digits": "*"}, {}, "repeat", ""),
        ({"Digits": "12#"}, {}, "input", "12"),
        ({}, {"timeout": "1"}, "timeout", ""),
        ({"Digits": ""}, {"timeout": "1"}, "timeout", ""),
        ({"CallStatus": "completed"}, {}, "hangup", ""),
    ],
)
def test_twilio_parse(extra: dict[str, str], query: dict[str, str], kind: str, text: str) -> None:
    event = twilio.parse({**CALL, **extra}, query)
    assert (event.channel, event.dialect, event.kind, event.text) == ("ivr", "twilio", kind, text)
    assert event.session_id == CALL["CallSid"] and event.subscriber == CALL["From"]


@pytest.mark.parametrize(
    ("form", "reason"),
    [
        ({"From": "+86138"}, "missing field CallSid"),
        ({"CallSid": "CA1"}, "missing field From"),
        ({**CALL, "CallSid": "CA 1/../x"}, "malformed field CallSid"),
        ({**CALL, "Digits": "1a"}, "malformed field Digits"),
        ({**CALL, "From": "+86\x00138"}, "malformed field From"),
        ({**CALL, "From": "1" * 65}, "malformed field From"),
    ],
)
def test_twilio_parse_rejects(form: dict[str, str], reason: str) -> None:
    with pytest.raises(BadGatewayRequest) as info:
        twilio.parse(form, {})
    assert info.value.reason.startswith(reason)


AT = {"isActive": "1", "sessionId": "ATVId_abc123", "callerNumber": "+254711000000"}


@pytest.mark.parametrize(
    ("extra", "query", "kind", "text"),
    [
        ({}, {}, "start", ""),
        ({"dtmfDigits": "2"}, {}, "input", "2"),
        ({"dtmfDigits": "*"}, {}, "repeat", ""),
        ({}, {"timeout": "1"}, "timeout", ""),
        ({"isActive": "0", "durationInSeconds": "30"}, {}, "hangup", ""),
    ],
)
def test_africastalking_parse(
    extra: dict[str, str], query: dict[str, str], kind: str, text: str
) -> None:
    event = africastalking.parse({**AT, **extra}, query)
    assert (event.dialect, event.kind, event.text, event.session_id) == (
        "africastalking",
        kind,
        text,
        "ATVId_abc123",
    )


@pytest.mark.parametrize(
    "form",
    [
        {"sessionId": "x", "callerNumber": "+254"},
        {**AT, "isActive": "yes"},
        {**AT, "sessionId": ""},
        {**AT, "callerNumber": " "},
        {**AT, "dtmfDigits": "one"},
    ],
)
def test_africastalking_parse_rejects(form: dict[str, str]) -> None:
    with pytest.raises(BadGatewayRequest):
        africastalking.parse(form, {})


def test_static_specs_cover_every_fixed_clip() -> None:
    flows = FlowRegistry.from_directory(ROOT / "flows").flows()
    specs = static_specs(SPEAKER, flows)
    texts = {(s.voice, s.text) for s in specs}
    assert len(texts) == len(specs)
    clips = set(specs)  # the exact specs, `joins` included: warm-up cuts as calls do
    assert specs[0].text == "系统繁忙，请稍后再试。"  # the apology comes first
    for language, voice in (("zh-CN", "cmn"), ("en", "en-us")):
        # Every clip a menu or a result can ask for is in the set.
        screens = [
            MAIN
            if language == "zh-CN"
            else Screen("main", "en", MAIN.parts, MAIN.options, expects_input=True),
            Screen(
                "x",
                language,
                (PromptPart("result.balance", {"balance": Money(5, "CNY")}),),
                ends=True,
            ),
        ]
        for screen in screens:
            for clip in layout().plan(screen).clips:
                assert clip.dynamic or clip.spec in clips, clip.spec
                assert clip.spec.voice == voice


@pytest.mark.parametrize(
    ("digits", "kind", "text"),
    [
        ("1", "input", "1"),
        ("12#", "input", "12"),
        ("#", "input", "#"),
        ("*", "repeat", ""),
        ("*#", "repeat", ""),
    ],
)
def test_both_dialects_read_keys_alike(digits: str, kind: str, text: str) -> None:
    twilio_event = twilio.parse({"CallSid": "CA1", "From": "+8613800138000", "Digits": digits}, {})
    at_event = africastalking.parse(
        {
            "isActive": "1",
            "sessionId": "AT1",
            "callerNumber": "+8613800138000",
            "dtmfDigits": digits,
        },
        {},
    )
    for event in (twilio_event, at_event):
        assert (event.kind, event.text) == (kind, text)


def test_xml_writer_writes_what_elementtree_writes() -> None:
    weird = "a&b<c>\"d'\r\n\te]]>é话"
    cases: list[tuple[str, dict[str, str | int | None], str | None]] = [
        ("Hangup", {}, None),
        ("Play", {}, weird),
        ("Play", {}, ""),
        ("Dial", {"phoneNumbers": weird, "unset": None, "count": 5}, None),
    ]
    for tag, attrs, text in cases:
        node = ET.Element(tag, {k: str(v) for k, v in sorted(attrs.items()) if v is not None})
        node.text = text
        assert element(tag, attrs, text) == ET.tostring(node, encoding="unicode"), tag
    inner = ET.Element("Gather", {"action": "https://x/?a=1&b=2"})
    ET.SubElement(inner, "Play").text = "https://x/<1>.wav"
    ET.SubElement(inner, "Play", {"url": 'https://x/"2".wav'})
    children = [element("Play", text="https://x/<1>.wav"), element("Play", {"url": 'https://x/"2".wav'})]  # fmt: skip
    assert element("Gather", {"action": "https://x/?a=1&b=2"}, children=children) == ET.tostring(
        inner, encoding="unicode"
    )


BALANCE = Screen(
    "show_balance",
    "zh-CN",
    (PromptPart("result.balance", {"balance": Money(1250, "CNY", 2)}),),
    ends=True,
)


def test_screens_are_spoken_from_the_values_they_say() -> None:
    mine = layout()
    first = mine.render(BALANCE)
    assert mine.render(BALANCE) == first
    other = Screen(
        "show_balance",
        "zh-CN",
        (PromptPart("result.balance", {"balance": Money(1205, "CNY", 2)}),),
        ends=True,
    )
    assert spoken(mine.plan(other)) == ["您的话费余额为", "十二元零五分。"]
    assert mine.render(other) != first and mine.render(BALANCE) == first
    # Values a sentence does not speak do not matter: the menu after a lookup is the menu.
    values = {"balance": Money(1250, "CNY", 2), "as_of": Clock(dt.datetime(2026, 1, 1, 9, 5))}
    busy_menu = Screen(
        "main",
        "zh-CN",
        (PromptPart("main.title", values),),
        tuple(Option(o.key, PromptPart(o.label.key, values)) for o in MAIN.options),
        expects_input=True,
    )
    assert mine.render(busy_menu) == mine.render(MAIN)
    # A time is spoken from its own zone's hours: equal instants, different words.
    utc = dt.datetime(2026, 1, 1, 1, 5, tzinfo=dt.UTC)
    for moment, words in ((utc, "一点零五分"), (utc.astimezone(ZoneInfo("Asia/Shanghai")), "九点零五分")):  # fmt: skip
        part = PromptPart("result.as_of", {"as_of": Clock(moment)})
        clips = spoken(mine.plan(Screen("x", "zh-CN", (part,), ends=True)))
        assert any(words in text for text in clips), clips


CARD = Screen("card", "zh-CN", (PromptPart("main.title"),), expects_input=True, max_input=16)


def test_an_input_screen_says_how_to_finish_and_finishes_by_itself() -> None:
    plan = layout().plan(CARD)
    assert spoken(plan) == ["话费查询", "输入完毕请按井号键。", "重听请按星号键。"]
    assert plan.gather is not None
    assert (plan.gather.num_digits, plan.gather.finish_on_key) == (16, "#")
    english = layout().plan(Screen("card", "en", CARD.parts, expects_input=True, max_input=4))
    assert spoken(english)[1] == "Press the hash key when you are done."


def test_golden_input_documents() -> None:
    plan = VoicePlan(
        (),
        Gather(
            action="https://h/ivr/twilio/voice",
            timeout_url="https://h/ivr/twilio/voice?timeout=1",
            timeout=6,
            num_digits=16,
            finish_on_key="#",
        ),
    )
    assert twilio.write(plan) == (
        '<?xml version="1.0" encoding="UTF-8"?><Response>'
        '<Gather action="https://h/ivr/twilio/voice" finishOnKey="#" input="dtmf" method="POST"'
        ' numDigits="16" timeout="6" />'
        '<Redirect method="POST">https://h/ivr/twilio/voice?timeout=1</Redirect></Response>'
    )
    assert africastalking.write(plan) == (
        '<?xml version="1.0" encoding="UTF-8"?><Response>'
        '<GetDigits callbackUrl="https://h/ivr/twilio/voice" finishOnKey="#" numDigits="16"'
        ' timeout="6" />'
        "<Redirect>https://h/ivr/twilio/voice?timeout=1</Redirect></Response>"
    )
    # The whole document of an input screen, clips included, is the same on every run.
    document = layout().render(CARD)
    urls = [clip.url for clip in layout().plan(CARD).clips]
    assert document == (
        '<?xml version="1.0" encoding="UTF-8"?><Response>'
        f'<Gather action="{ACTION}" finishOnKey="#" input="dtmf" method="POST" numDigits="16"'
        ' timeout="6">' + "".join(f"<Play>{url}</Play>" for url in urls) + "</Gather>"
        f'<Redirect method="POST">{ACTION}?timeout=1</Redirect></Response>'
    )
    # Menus keep the platforms' defaults (no finishOnKey).
    assert "finishOnKey" not in layout().render(MAIN)
