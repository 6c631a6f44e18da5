"""The flow engine: one request in, one channel-neutral screen out (DESIGN.md §3).

`Engine.step` loads the session (one pipelined read), applies the event — navigation,
an option, free input, a silence or a repeat — runs actions until a state needs the
subscriber, asks the channel's layout to render the screen, and saves the session with
that reply (one write). A repeated identical request returns the stored reply without
running anything again.

The engine never formats wire text; it only asks the layout how many pages a screen has
(so `98` on the last page is an invalid choice) and for the reply body it must store.
"""

from __future__ import annotations

import datetime as dt
import logging
import re
from dataclasses import dataclass, field
from typing import Any
from zoneinfo import ZoneInfo

from hotline.base.config import Settings
from hotline.base.errors import SessionStoreUnavailable
from hotline.base.logs import note, note_turn
from hotline.base.privacy import Pseudonymizer
from hotline.base.values import Value, decode_value
from hotline.flow.actions import ACTIONS, ActionContext, ActionRegistry
from hotline.flow.events import ChannelEvent
from hotline.flow.model import (
    MAX_STEPS_PER_TURN,
    ActionState,
    EndState,
    Flow,
    InputState,
    MenuState,
    SwitchState,
)
from hotline.flow.registry import FlowRegistry
from hotline.flow.screen import ChannelLayout, Option, PromptPart, Screen, Turn
from hotline.flow.services import Services
from hotline.i18n.catalog import CatalogSet
from hotline.store.sessions import SessionRecord, SessionStore, session_key, subscriber_key

__all__ = ["ENGINE_PROMPTS", "Engine"]

log = logging.getLogger(__name__)

KEY_INVALID = "nav.invalid"
KEY_TOO_MANY_INVALID = "nav.too_many_invalid"
KEY_GOODBYE = "common.goodbye"
KEY_SESSION = "error.session"
KEY_BUSY = "error.busy"
#: Catalog keys the engine itself may show; `flows check` requires them in every language.
ENGINE_PROMPTS = (KEY_INVALID, KEY_TOO_MANY_INVALID, KEY_GOODBYE, KEY_SESSION, KEY_BUSY)


@dataclass(slots=True)
class _Step:
    """Mutable working state of one `step` call."""

    event: ChannelEvent
    layout: ChannelLayout
    record: SessionRecord
    flow: Flow | None
    prefs: dict[str, str]
    prefs_changed: bool = False
    events: list[str] = field(default_factory=list)
    secrets: dict[str, str] = field(default_factory=dict)
    values: dict[str, Value] = field(default_factory=dict)  # set this step, already decoded


WaitingState = MenuState | InputState | EndState
_CACHE_MAX = 4096  # prepared states / screens kept; flows reloaded many times over: start afresh


def _utc_now() -> dt.datetime:
    return dt.datetime.now(dt.UTC)


@dataclass(frozen=True, slots=True)
class _PromptItem:
    """One sentence of a state's prompt, prepared for the hot path.

    `part` is the ready-made part when the sentence has no placeholder in any language;
    otherwise `names` are the variables its placeholders read (None: the sentence is in
    no catalog, so it gets every value, as before).
    """

    key: str
    when: str | None
    unless: str | None
    part: PromptPart | None
    names: tuple[str, ...] | None


@dataclass(frozen=True, slots=True)
class _Plan:
    """What a waiting state shows, prepared once per (frozen) state object.

    `static` holds every part when no sentence is conditional or needs a value: such a
    screen depends only on the record's language, notice, page and back depth, so the
    engine builds it once (the main menu is the same for every subscriber).
    """

    state: WaitingState  # held, so the id the plan is filed under stays this state's
    prompt: tuple[_PromptItem, ...]
    static: tuple[PromptPart, ...] | None
    options: tuple[Option, ...]


class _SavedRecords:
    """The records this process saved last, by session key, with the exact form saved.

    Parsing a session back cost ~3-7 µs a step. When the store returns exactly what this
    process wrote, the record object it was written from *is* that parse, so it is used
    instead. A record is taken out while a step works on it (a step that fails leaves
    nothing behind) and comes back only once saved again; any other content — another
    worker's write, an older or newer version — is parsed as usual.
    """

    def __init__(self, size: int = 4096) -> None:
        self._size = size
        self._records: dict[str, tuple[bytes, SessionRecord]] = {}

    def take(self, key: str, raw: bytes) -> SessionRecord | None:
        saved = self._records.pop(key, None)
        if saved is None:
            return None
        data, record = saved
        return record if raw is data or raw == data else None

    def keep(self, key: str, data: bytes, record: SessionRecord) -> None:
        if len(self._records) >= self._size:
            self._records.clear()  # sessions that went elsewhere or were abandoned
        self._records[key] = (data, record)

    def put_back(self, key: str, raw: bytes, record: SessionRecord) -> None:
        """Keep a record read as `raw` that the step did not change (a repeat)."""
        if not record.ended:
            self.keep(key, raw, record)


class Engine:
    """Runs flows for every channel."""

    def __init__(
        self,
        *,
        settings: Settings,
        registry: FlowRegistry,
        catalogs: CatalogSet,
        store: SessionStore,
        pseudonym: Pseudonymizer,
        services: Services,
        actions: ActionRegistry = ACTIONS,
    ) -> None:
        self.settings = settings
        self.registry = registry
        self.catalogs = catalogs
        self.store = store
        self.pseudonym = pseudonym
        self.services = services
        self.actions = actions
        self._zone = ZoneInfo(settings.timezone)
        self._languages = tuple(settings.languages)
        # Flow states are frozen: what a state shows is prepared once per state object.
        self._plans: dict[int, _Plan] = {}
        # Screens without values, by (state, name, layout, language, notice, page, back, home);
        # each entry holds its state and layout, so their ids stay their own.
        self._screens: dict[tuple[int, str, int, str, str, int, bool, bool], _CachedScreen] = {}
        self._saved = _SavedRecords()

    # ---------------------------------------------------------------- public

    def apology(self, language: str | None = None) -> Screen:
        """The polite final screen for when something beyond the subscriber failed."""
        note(outcome="apology")
        return Screen(
            state="_busy",
            language=language or self.settings.default_language,
            parts=(PromptPart(KEY_BUSY),),
            ends=True,
        )

    async def step(self, event: ChannelEvent, layout: ChannelLayout) -> Turn:
        """Apply one event to its session and return the screen and reply to send."""
        pseudonym = self.pseudonym(event.subscriber)
        skey = session_key(self.settings.env, event.channel, event.session_id)
        sub_key = subscriber_key(self.settings.env, pseudonym)
        raw, prefs = await self.store.load(skey, sub_key)
        record = self._parse(skey, raw)

        if record is not None and self._is_repeat(record, event):
            flow = self.registry.get(record.flow, record.version)
            screen = self._screen(flow, record, layout) if flow else self._final(record)
            if raw is not None:
                self._saved.put_back(skey, raw, record)
            note_turn(record.flow, screen.state, screen.ends, ("repeated",))
            return Turn(screen=screen, reply=record.reply, events=("repeated",))

        step = await self._advance(event, layout, record, prefs)
        screen = self._finish(step)
        reply = layout.render(screen)
        step.record.reply = reply
        step.record.hops += 1
        if event.kind == "transcript" or event.kind == "start":
            step.record.transcript = event.text
        data = step.record.dumps()
        await self.store.save(
            skey,
            data,
            layout.session_ttl,
            sub_key,
            step.prefs if step.prefs_changed else None,
        )
        if not step.record.ended:  # an ended session is only ever read again for a repeat
            self._saved.keep(skey, data, step.record)
        events = tuple(step.events)
        note_turn(step.record.flow, screen.state, screen.ends, events)
        return Turn(screen, reply, events)

    # ------------------------------------------------------------ the session

    def _parse(self, skey: str, raw: bytes | None) -> SessionRecord | None:
        if raw is None:
            return None
        saved = self._saved.take(skey, raw)
        if saved is not None:
            return saved
        try:
            return SessionRecord.loads(raw)
        except ValueError:
            # A record this version cannot read is treated like an unknown session state.
            return SessionRecord(flow="", version="", state="", language="", final=KEY_SESSION)

    @staticmethod
    def _is_repeat(record: SessionRecord, event: ChannelEvent) -> bool:
        if not record.reply:
            return False
        if event.kind == "transcript":
            return event.text == record.transcript
        # A duplicated session start (operators do send them) before anything was typed.
        return event.kind == "start" and record.transcript == "" and record.hops == 1

    def _new_record(self, prefs: dict[str, str]) -> tuple[SessionRecord, Flow | None]:
        flow = self.registry.current(self.settings.default_flow)
        language = prefs.get("lang", "")
        if language not in self._languages:
            language = self.settings.default_language
        if flow is None:
            record = SessionRecord(flow="", version="", state="", language=language)
            record.final = KEY_BUSY
            return record, None
        return SessionRecord(flow.id, flow.version, flow.start, language), flow

    async def _advance(
        self,
        event: ChannelEvent,
        layout: ChannelLayout,
        record: SessionRecord | None,
        prefs: dict[str, str],
    ) -> _Step:
        if record is None or (record.ended and event.kind == "start"):
            fresh, flow = self._new_record(prefs)
            step = _Step(event, layout, fresh, flow, prefs)
            step.events.append("started")
            if flow is None:
                return step
            await self._enter(step, flow.start)
            if event.kind == "transcript" and event.text:
                await self._direct_dial(step, event.text)
            return step

        flow = self.registry.get(record.flow, record.version)
        step = _Step(event, layout, record, flow, prefs)
        if record.final or record.ended or flow is None or record.state not in flow.states:
            # The session is over, or was started on a flow version this worker does not
            # have (a flow change): say so politely instead of guessing.
            self._end_with(step, KEY_SESSION)
            return step

        match event.kind:
            case "transcript":
                new = self._new_input(record.transcript, event.text)
                if new is None:
                    self._end_with(step, KEY_SESSION)
                else:
                    await self._apply(step, flow, new)
            case "input":
                await self._apply(step, flow, event.text)
            case "timeout":
                self._silence(step, flow)
            case "repeat":
                record.notice = ""
            case "start":
                pass  # a restart of a live session shows the current screen again
            case "hangup":
                record.ended = True
        return step

    @staticmethod
    def _new_input(previous: str, text: str) -> str | None:
        """The subscriber's newest input, from the gateway's `*`-joined transcript.

        Diffing against the stored transcript (rather than splitting on `*`) keeps a `*`
        typed by the subscriber intact. `None` means the transcript diverged.
        """
        if previous == "":
            return text
        if text.startswith(previous + "*"):
            return text[len(previous) + 1 :]
        return None

    async def _direct_dial(self, step: _Step, text: str) -> None:
        """A first request with inputs already in it (`*100*1#`): replay them in order."""
        inputs = text.split("*")
        if len(inputs) > self.settings.ussd.max_inputs_per_request:
            self._end_with(step, KEY_SESSION)
            return
        assert step.flow is not None
        for value in inputs:
            if step.record.ended or step.record.final:
                break
            await self._apply(step, step.flow, value)

    # ------------------------------------------------------------ transitions

    async def _apply(self, step: _Step, flow: Flow, value: str) -> None:
        record = step.record
        record.no_input = 0
        state = flow.states[record.state]
        nav = flow.navigation

        if value == nav.more:
            pages = step.layout.page_count(self._screen(flow, record, step.layout))
            if record.page + 1 < pages:
                record.page += 1
                record.notice = ""
                return
        elif value == nav.back:
            if record.page > 0:
                record.page -= 1
                record.notice = ""
                return
            if record.back:
                self._wait_at(record, record.back.pop())
                return
        elif value == nav.home:
            record.back.clear()
            await self._enter(step, flow.start)
            return
        elif isinstance(state, MenuState):
            for option in state.options:
                if option.key == value:
                    record.back.append(record.state)
                    await self._enter(step, option.next)
                    return
        elif isinstance(state, InputState) and self._valid_input(state, value):
            if state.secret:
                step.secrets[state.var] = value
            else:
                record.vars[state.var] = value
            record.back.append(record.state)
            await self._enter(step, state.next)
            return
        self._invalid(step, flow, state.error if isinstance(state, InputState) else KEY_INVALID)

    @staticmethod
    def _valid_input(state: InputState, value: str) -> bool:
        return (
            state.min_length <= len(value) <= state.max_length
            and re.fullmatch(state.pattern, value) is not None
        )

    def _invalid(self, step: _Step, flow: Flow, notice: str) -> None:
        record = step.record
        record.invalid += 1
        step.events.append(f"invalid:{record.state}")
        if record.invalid >= flow.max_invalid:
            self._end_with(step, KEY_TOO_MANY_INVALID)
        else:
            record.notice = notice

    def _silence(self, step: _Step, flow: Flow) -> None:
        record = step.record
        record.no_input += 1
        record.notice = ""
        step.events.append(f"no_input:{record.state}")
        if record.no_input >= flow.max_no_input:
            self._end_with(step, KEY_GOODBYE)

    @staticmethod
    def _wait_at(record: SessionRecord, state: str) -> None:
        record.state = state
        record.page = 0
        record.notice = ""
        record.invalid = 0

    @staticmethod
    def _end_with(step: _Step, key: str) -> None:
        step.record.final = key
        step.events.append(f"ended:{key}")

    async def _enter(self, step: _Step, name: str) -> None:
        """Run non-waiting states from `name` until one needs the subscriber."""
        flow = step.flow
        assert flow is not None
        for _ in range(MAX_STEPS_PER_TURN):
            state = flow.states.get(name)
            if state is None:
                log.error("flow %s has no state %r", flow.id, name)
                self._end_with(step, KEY_BUSY)
                return
            if isinstance(state, ActionState):
                name = await self._run_action(step, name, state)
            elif isinstance(state, SwitchState):
                name = self._switch(step.record.vars, state)
            else:
                if name == flow.start:
                    # Arriving home (after a language switch, say) leaves nothing to go back to.
                    step.record.back.clear()
                self._wait_at(step.record, name)
                return
        log.error("flow %s: more than %d steps without waiting", flow.id, MAX_STEPS_PER_TURN)
        self._end_with(step, KEY_BUSY)

    async def _run_action(self, step: _Step, name: str, state: ActionState) -> str:
        action = self.actions.get(state.action)
        record = step.record
        outcome = "error"
        if action is not None:
            ctx = ActionContext(
                subscriber=step.event.subscriber,
                language=record.language,
                languages=self._languages,
                args=dict(state.args),
                variables=record.vars,
                services=self.services,
                timezone=self._zone,
                now=_utc_now,
                secrets=step.secrets,
                values=step.values,
            )
            try:
                outcome = await action(ctx)
            except SessionStoreUnavailable:
                raise
            except Exception:
                log.exception("action %s failed in state %s", state.action, name)
                outcome = "error"
            if ctx.new_language:
                record.language = ctx.new_language
                step.prefs["lang"] = ctx.new_language
                step.prefs_changed = True
        step.events.append(f"action:{state.action}:{outcome}")
        if outcome == "ok":
            return state.next
        return state.on.get(outcome, state.on_error)

    @staticmethod
    def _switch(variables: dict[str, Any], state: SwitchState) -> str:
        for case in state.cases:
            value = variables.get(case.var)
            if case.equals is None and value:
                return case.next
            if case.equals is not None and value == case.equals:
                return case.next
        return state.default

    # ---------------------------------------------------------------- screens

    def _finish(self, step: _Step) -> Screen:
        record = step.record
        if record.final or step.flow is None:
            record.ended = True
            return self._final(record)
        screen = self._screen(step.flow, record, step.layout, step.values)
        if isinstance(step.flow.states[record.state], EndState) and screen.ends:
            record.ended = True
            step.events.append(f"ended:{record.state}")
        return screen

    def _final(self, record: SessionRecord) -> Screen:
        language = record.language or self.settings.default_language
        return Screen(
            state=f"_{record.final.split('.')[-1] or 'end'}",
            language=language,
            parts=(PromptPart(record.final or KEY_SESSION),),
            ends=True,
        )

    def _plan(self, state: WaitingState) -> _Plan:
        plan = self._plans.get(id(state))
        if plan is not None and plan.state is state:
            return plan
        prompt = tuple(self._prompt_item(ref.key, ref.when, ref.unless) for ref in state.prompt)
        static = None
        if all(item.part is not None and not item.when and not item.unless for item in prompt):
            static = tuple(item.part for item in prompt if item.part is not None)
        options: tuple[Option, ...] = ()
        if isinstance(state, MenuState):
            options = tuple(Option(o.key, PromptPart(o.label)) for o in state.options)
        plan = _Plan(state, prompt, static, options)
        if len(self._plans) >= _CACHE_MAX:
            self._plans.clear()
        self._plans[id(state)] = plan
        return plan

    def _prompt_item(self, key: str, when: str | None, unless: str | None) -> _PromptItem:
        names: set[str] = set()
        known = False
        for catalog in self.catalogs.catalogs.values():
            sentence = catalog.sentences.get(key)
            if sentence is not None:
                known = True
                names.update(sentence.placeholders)
        if not known:
            return _PromptItem(key, when, unless, None, None)
        if not names:
            return _PromptItem(key, when, unless, PromptPart(key), ())
        return _PromptItem(key, when, unless, None, tuple(sorted(names)))

    @staticmethod
    def _values(
        names: tuple[str, ...] | None, variables: dict[str, Any], known: dict[str, Value]
    ) -> dict[str, Value]:
        """The typed values of `names` (every variable's when None), decoded as needed."""
        values: dict[str, Value] = {}
        for name in variables if names is None else names:
            value = known.get(name)
            if value is None:
                raw = variables.get(name)
                if not isinstance(raw, dict):
                    continue
                try:
                    value = decode_value(raw)
                except ValueError:
                    continue
            values[name] = value
        return values

    def _parts(
        self, plan: _Plan, variables: dict[str, Any], known: dict[str, Value]
    ) -> tuple[PromptPart, ...]:
        parts: list[PromptPart] = []
        for item in plan.prompt:
            if item.when is not None and not variables.get(item.when):
                continue
            if item.unless is not None and variables.get(item.unless):
                continue
            part = item.part
            if part is None:
                part = PromptPart(item.key, self._values(item.names, variables, known))
            parts.append(part)
        return tuple(parts)

    def _screen(
        self,
        flow: Flow,
        record: SessionRecord,
        layout: ChannelLayout,
        known: dict[str, Value] | None = None,
    ) -> Screen:
        state = flow.states[record.state]
        assert isinstance(state, MenuState | InputState | EndState)
        plan = self._plan(state)
        if plan.static is None:
            parts = self._parts(plan, record.vars, known or {})
            return self._build(state, plan, parts, record, layout)
        depth = len(record.back)
        key = (
            id(state),
            record.state,
            id(layout),
            record.language,
            record.notice,
            record.page,
            depth > 0,
            depth > 1,
        )
        cached = self._screens.get(key)
        if cached is not None and cached.state is state and cached.layout is layout:
            return cached.screen
        screen = self._build(state, plan, plan.static, record, layout)
        if len(self._screens) >= _CACHE_MAX:
            self._screens.clear()
        self._screens[key] = _CachedScreen(state, layout, screen)
        return screen

    @staticmethod
    def _build(
        state: WaitingState,
        plan: _Plan,
        parts: tuple[PromptPart, ...],
        record: SessionRecord,
        layout: ChannelLayout,
    ) -> Screen:
        notice = PromptPart(record.notice) if record.notice else None
        depth = len(record.back)
        waits = not isinstance(state, EndState)
        screen = Screen(
            state=record.state,
            language=record.language,
            parts=parts,
            options=plan.options,
            ends=not waits,
            notice=notice,
            page=record.page,
            can_go_back=depth > 0,
            can_go_home=depth > 1,
            expects_input=waits,
        )
        if waits or record.page >= layout.page_count(screen) - 1:
            return screen
        # More pages follow: the conversation stays open until the last one is shown.
        return Screen(
            state=record.state,
            language=record.language,
            parts=parts,
            ends=False,
            notice=notice,
            page=record.page,
            can_go_back=depth > 0,
            can_go_home=depth > 1,
            expects_input=True,
        )


@dataclass(frozen=True, slots=True)
class _CachedScreen:
    state: WaitingState
    layout: ChannelLayout
    screen: Screen
