"""Engine behaviour on plain data: the real flow, catalogs and stores, a line-per-page layout."""

from __future__ import annotations

from collections.abc import AsyncIterator
from dataclasses import dataclass, fields
from pathlib import Path
from typing import Any

import orjson
import pytest
import redis

from hotline.base.config import Settings
from hotline.base.errors import SessionStoreUnavailable
from hotline.base.privacy import Pseudonymizer
from hotline.flow.engine import Engine
from hotline.flow.events import ChannelEvent
from hotline.flow.registry import FlowRegistry
from hotline.flow.screen import Screen, Turn
from hotline.flow.services import Services
from hotline.i18n import TextFormatter, load_catalogs
from hotline.store.sessions import (
    PREFS_TTL,
    MemorySessionStore,
    RedisSessionStore,
    SessionRecord,
    SessionStore,
    session_key,
)
from ussd.dialects.africastalking import transcript_inputs

ROOT = Path(__file__).resolve().parents[2]


class LineLayout:
    """A channel layout for tests: one line per part/option, `lines_per_page` per page."""

    channel = "test"
    session_ttl = 60

    def __init__(self, engine_catalogs: object, lines_per_page: int = 50) -> None:
        self.catalogs = engine_catalogs
        self.lines_per_page = lines_per_page
        self.formatter = TextFormatter()

    def lines(self, screen: Screen) -> list[str]:
        catalog = self.catalogs[screen.language]  # type: ignore[index]
        out = [catalog.render(p, self.formatter) for p in screen.parts]
        out += [f"{o.key}.{catalog.render(o.label, self.formatter)}" for o in screen.options]
        return out

    def page_count(self, screen: Screen) -> int:
        return max(1, -(-len(self.lines(screen)) // self.lines_per_page))

    def render(self, screen: Screen) -> str:
        catalog = self.catalogs[screen.language]  # type: ignore[index]
        start = screen.page * self.lines_per_page
        body = self.lines(screen)[start : start + self.lines_per_page]
        if screen.notice:
            body.insert(0, catalog.render(screen.notice, self.formatter))
        last = screen.page >= self.page_count(screen) - 1
        return ("END " if screen.ends and last else "CON ") + "\n".join(body)


def settings(**extra: object) -> Settings:
    values: dict[str, object] = {"flows_dir": ROOT / "flows", "prompts_dir": ROOT / "prompts"}
    values.update(extra)
    return Settings(**values)  # type: ignore[arg-type]


def make_engine(store: SessionStore, **extra: object) -> Engine:
    s = settings(**extra)
    return Engine(
        settings=s,
        registry=FlowRegistry.from_directory(s.flows_dir),
        catalogs=load_catalogs(s.prompts_dir, s.languages, s.default_language),
        store=store,
        pseudonym=Pseudonymizer("test-secret"),
        services=Services(),
    )


@pytest.fixture(params=["memory", "redis"])
async def store(request: pytest.FixtureRequest) -> AsyncIterator[SessionStore]:
    if request.param == "memory":
        yield MemorySessionStore()
        return
    url = request.getfixturevalue("redis_url")
    redis_store = RedisSessionStore.from_url(url)
    yield redis_store
    await redis_store.close()


def ussd(session: str, text: str, phone: str = "+8613800138000") -> ChannelEvent:
    """An Africa's Talking style request: `text` is every input so far, joined by `*`."""
    inputs, follows = transcript_inputs(text)
    return ChannelEvent(
        "ussd",  # a channel the shipped flows' entries name (`*100#`)
        "at",
        session,
        phone,
        "input" if text else "start",
        inputs[-1] if inputs else "",
        entry="*100#",
        inputs=inputs,
        request_id=text,
        follows=follows,
    )


@dataclass(frozen=True)
class Done:
    """A turn as a channel sees it: the engine's turn and the reply laid out from it."""

    turn: Turn
    reply: str

    @property
    def screen(self) -> Screen:
        return self.turn.screen

    @property
    def events(self) -> tuple[str, ...]:
        return self.turn.events

    @property
    def repeated(self) -> bool:
        return self.turn.repeated


async def run(engine: Engine, event: ChannelEvent, layout: LineLayout) -> Done:
    """parse → step → lay out → commit, as a channel's handler does."""
    turn = await engine.step(event)
    reply = layout.render(turn.screen)
    await engine.commit(turn, layout.page_count(turn.screen))
    return Done(turn, reply)


async def test_dial_shows_main_menu_in_chinese(store: SessionStore) -> None:
    engine = make_engine(store)
    layout = LineLayout(engine.catalogs)
    turn = await run(engine, ussd("s1", ""), layout)
    assert turn.screen.state == "main"
    assert turn.reply.startswith("CON 话费查询\n1.话费余额")
    assert not turn.screen.ends
    assert "started" in turn.events


async def test_repeat_returns_identical_reply_without_side_effects(store: SessionStore) -> None:
    engine = make_engine(store)
    layout = LineLayout(engine.catalogs)
    await run(engine, ussd("s1", ""), layout)
    first = await run(engine, ussd("s1", "5"), layout)
    again = await run(engine, ussd("s1", "5"), layout)
    assert again.repeated and again.reply == first.reply
    assert again.events == ("repeated",)


async def test_invalid_choice_shows_notice_then_ends_after_three(store: SessionStore) -> None:
    engine = make_engine(store)
    layout = LineLayout(engine.catalogs)
    await run(engine, ussd("s1", ""), layout)
    turn = await run(engine, ussd("s1", "9"), layout)
    assert turn.reply.startswith("CON 输入有误，请重新选择。\n话费查询")
    turn = await run(engine, ussd("s1", "9*9"), layout)
    assert not turn.screen.ends
    turn = await run(engine, ussd("s1", "9*9*9"), layout)
    assert turn.screen.ends
    assert turn.reply == "END 输入错误次数过多，请稍后再拨。"


async def test_back_and_home_inside_the_transcript(store: SessionStore) -> None:
    engine = make_engine(store)
    layout = LineLayout(engine.catalogs)
    await run(engine, ussd("s1", ""), layout)
    assert (await run(engine, ussd("s1", "5"), layout)).screen.state == "language"
    back = await run(engine, ussd("s1", "5*0"), layout)
    assert back.screen.state == "main" and not back.screen.ends
    again = await run(engine, ussd("s1", "5*0*5"), layout)
    assert again.screen.state == "language"
    home = await run(engine, ussd("s1", "5*0*5*00"), layout)
    assert home.screen.state == "main"
    # `0` on the main menu has nowhere to go: an invalid choice, not an end.
    nowhere = await run(engine, ussd("s1", "5*0*5*00*0"), layout)
    assert nowhere.screen.notice is not None and not nowhere.screen.ends


async def test_language_switch_is_remembered_for_the_number(store: SessionStore) -> None:
    engine = make_engine(store)
    layout = LineLayout(engine.catalogs)
    await run(engine, ussd("s1", ""), layout)
    await run(engine, ussd("s1", "5"), layout)
    english = await run(engine, ussd("s1", "5*2"), layout)
    assert english.screen.state == "main"
    assert english.reply.startswith("CON Balance service\n1.Main balance")
    later = await run(engine, ussd("s2", ""), layout)
    assert later.reply.startswith("CON Balance service")
    other_number = await run(engine, ussd("s3", "", phone="+8613900139000"), layout)
    assert other_number.reply.startswith("CON 话费查询")


async def test_direct_dial_replays_inputs(store: SessionStore) -> None:
    engine = make_engine(store)
    layout = LineLayout(engine.catalogs)
    turn = await run(engine, ussd("s1", "5*2"), layout)
    assert turn.screen.state == "main" and turn.screen.language == "en"


async def test_user_typed_star_is_one_input(store: SessionStore) -> None:
    engine = make_engine(store)
    layout = LineLayout(engine.catalogs)
    await run(engine, ussd("s1", ""), layout)
    await run(engine, ussd("s1", "5"), layout)
    turn = await run(engine, ussd("s1", "5**"), layout)  # the subscriber typed "*"
    assert turn.screen.state == "language" and turn.screen.notice is not None


async def test_divergent_transcript_ends_politely(store: SessionStore) -> None:
    engine = make_engine(store)
    layout = LineLayout(engine.catalogs)
    await run(engine, ussd("s1", ""), layout)
    await run(engine, ussd("s1", "5"), layout)
    turn = await run(engine, ussd("s1", "3*1"), layout)
    assert turn.screen.ends and turn.reply == "END 会话已失效，请重新拨打。"


async def test_without_a_provider_the_balance_is_a_polite_busy(store: SessionStore) -> None:
    engine = make_engine(store)
    layout = LineLayout(engine.catalogs)
    await run(engine, ussd("s1", ""), layout)
    turn = await run(engine, ussd("s1", "1"), layout)
    assert turn.reply == "END 系统繁忙，请稍后再试。"
    assert "action:balance.lookup:error" in turn.events


async def test_pagination_keys(store: SessionStore) -> None:
    engine = make_engine(store)
    layout = LineLayout(engine.catalogs, lines_per_page=3)
    first = await run(engine, ussd("s1", ""), layout)
    assert first.screen.page == 0 and layout.page_count(first.screen) == 3
    second = await run(engine, ussd("s1", "98"), layout)
    assert (
        second.screen.page == 1 and second.reply == "CON 3.通话和短信\n4.套餐摘要\n5.语言/Language"
    )
    third = await run(engine, ussd("s1", "98*98"), layout)
    assert third.screen.page == 2
    beyond = await run(engine, ussd("s1", "98*98*98"), layout)
    assert beyond.screen.page == 2 and beyond.screen.notice is not None
    previous = await run(engine, ussd("s1", "98*98*98*0"), layout)
    assert previous.screen.page == 1


async def test_session_pinned_to_its_flow_version(store: SessionStore, tmp_path: Path) -> None:
    flows = tmp_path / "flows"
    flows.mkdir()
    source = (ROOT / "flows" / "balance.yaml").read_text(encoding="utf-8")
    (flows / "balance.yaml").write_text(source, encoding="utf-8")
    engine = make_engine(store, flows_dir=flows)
    layout = LineLayout(engine.catalogs)
    await run(engine, ussd("old", ""), layout)
    changed = source.replace('      - { key: "5", label: main.language, next: language }\n', "")
    (flows / "balance.yaml").write_text(changed, encoding="utf-8")
    engine.registry.reload(flows)
    old = await run(engine, ussd("old", "5"), layout)
    assert old.screen.state == "language"  # the old version still has option 5
    await run(engine, ussd("new", ""), layout)
    new = await run(engine, ussd("new", "5"), layout)
    assert new.screen.notice is not None  # the new version does not


async def test_unknown_flow_version_ends_politely(store: SessionStore) -> None:
    engine = make_engine(store)
    layout = LineLayout(engine.catalogs)
    await run(engine, ussd("s1", ""), layout)
    other = make_engine(store)
    other.registry._versions.clear()  # a worker that never saw this version
    other.registry._current.clear()
    turn = await run(other, ussd("s1", "1"), layout)
    assert turn.reply == "END 会话已失效，请重新拨打。"


async def test_a_session_advanced_by_another_worker_is_read_from_the_store(
    store: SessionStore,
) -> None:
    """Every worker reads the session from the store, whoever saved it last."""
    first, second = make_engine(store), make_engine(store)
    layout = LineLayout(first.catalogs)
    await run(first, ussd("s1", ""), layout)
    assert (await run(second, ussd("s1", "5"), layout)).screen.state == "language"
    turn = await run(first, ussd("s1", "5*2"), layout)
    assert turn.screen.state == "main" and turn.screen.language == "en"
    assert "invalid:main" not in turn.events


class FailingSaves:
    """An in-process store whose next save fails, as a Redis outage would.

    It wraps the store rather than subclassing it: the store may be a compiled class
    (setup.py), which Python classes cannot inherit from.
    """

    def __init__(self) -> None:
        self.inner = MemorySessionStore()
        self.fail = False
        self.load = self.inner.load
        self.load_step = self.inner.load_step
        self.ping = self.inner.ping
        self.close = self.inner.close

    async def save(self, *args: Any, **kwargs: Any) -> None:
        if self.fail:
            self.fail = False
            raise SessionStoreUnavailable("ConnectionError")
        await self.inner.save(*args, **kwargs)


async def test_a_step_that_could_not_be_saved_leaves_no_trace() -> None:
    memory = FailingSaves()
    engine = make_engine(memory)
    layout = LineLayout(engine.catalogs)
    await run(engine, ussd("s1", ""), layout)
    memory.fail = True
    with pytest.raises(SessionStoreUnavailable):
        await run(engine, ussd("s1", "5"), layout)
    retried = await run(engine, ussd("s1", "5"), layout)  # the gateway tries again
    assert retried.screen.state == "language" and not retried.repeated
    again = await run(engine, ussd("s1", "5"), layout)
    assert again.repeated and again.reply == retried.reply


async def test_redis_down_raises_store_unavailable(stoppable_redis: object) -> None:
    server = stoppable_redis
    redis_store = RedisSessionStore.from_url(server.url)  # type: ignore[attr-defined]
    engine = make_engine(redis_store)
    layout = LineLayout(engine.catalogs)
    await run(engine, ussd("s1", ""), layout)
    server.stop()  # type: ignore[attr-defined]
    with pytest.raises(SessionStoreUnavailable):
        await run(engine, ussd("s1", "5"), layout)
    server.start()  # type: ignore[attr-defined]
    turn = await run(engine, ussd("s1", "5"), layout)
    assert turn.screen.state == "language"
    await redis_store.close()


@pytest.mark.parametrize(
    "stored",
    [
        b'{"flow":"balance","version":"x","state":"main","language":"zh-CN","back":5}',
        b'{"flow":"balance","version":"x","state":"main","language":"zh-CN","vars":[]}',
        b'{"flow":"balance","version":"x","state":"main","language":"zh-CN","back":[1]}',
        b'{"flow":"balance","version":"x","state":"main","language":"zh-CN","page":true}',
        b"\xff\xfe not even utf-8",
    ],
)
async def test_corrupt_stored_record_ends_politely(redis_url: str, stored: bytes) -> None:
    redis_store = RedisSessionStore.from_url(redis_url)
    engine = make_engine(redis_store)
    layout = LineLayout(engine.catalogs)
    await run(engine, ussd("s1", ""), layout)
    client = redis.Redis.from_url(redis_url)
    client.set(session_key("dev", "ussd", "s1"), stored)
    client.close()
    turn = await run(engine, ussd("s1", "1"), layout)
    assert turn.screen.ends and turn.reply == "END 会话已失效，请重新拨打。"
    await redis_store.close()


def test_the_stored_record_has_every_field_in_order_and_reads_back_the_same() -> None:
    # `dumps` spells the fields out (a compiled class cannot be handed to orjson), so a
    # field added to the record and not to `dumps` would be lost on every save.
    record = SessionRecord(
        "balance",
        "v1",
        "main",
        "en",
        {"n": 1},
        1,
        2,
        ["a"],
        "r",
        1,
        "x",
        "y",
        1,
        True,
        "o",
        3.5,
        "saved",
    )
    stored = orjson.loads(record.dumps())
    assert list(stored) == [f.name for f in fields(SessionRecord)]
    assert SessionRecord.loads(record.dumps()) == record


async def test_in_process_preferences_expire() -> None:
    now = [0.0]
    memory = MemorySessionStore(clock=lambda: now[0])
    await memory.save("s", b"{}", 60, "sub", {"lang": "en"})
    assert (await memory.load("s", "sub"))[1] == {"lang": "en"}
    now[0] += PREFS_TTL + 1
    assert await memory.load("s", "sub") == (None, {})
