"""The flow engine: one channel event in, one channel-neutral screen out (DESIGN.md §3).

`Engine.step` loads the session and the subscriber's preferences (one read), applies
the event — navigation, an option, free input, a silence or a repeat — and runs actions
until a state needs the subscriber. It returns a `Turn`: the `Screen` to show and the
events of the step. It calls nothing of the channel: the channel renders the screen
afterwards and hands the number of pages it made to `Engine.commit`, which saves the
session (one write). The session stores what is needed to show the same screen again —
state, variables, page, language, notice — never wire text, so a repeated request is
rendered again, byte for byte, from the record.

A new session starts where the entry table says (DESIGN.md §12): the flow that claims
the event's entry (service code, called number, keyword), at the entry's state, with
the inputs typed along with the dial replayed. A session is bound to the channel,
dialect, entry and subscriber that started it: a request for the same session id from
anyone else is refused politely and changes nothing.

Resume (`hotline.flow.resume`): on a channel with a resume window a plain dial may find
the subscriber's dropped session and offer to continue it; the copy is read in the dial's
`MGET` and written in the step's pipeline, so a step still costs two round trips.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import logging
import re
from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from typing import Any
from zoneinfo import ZoneInfo

from hotline.base.config import Settings
from hotline.base.errors import SessionStoreUnavailable
from hotline.base.logs import note, note_turn
from hotline.base.privacy import Pseudonymizer
from hotline.base.values import Value, decode_value, input_value
from hotline.flow import resume
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
from hotline.flow.model import Option as FlowOption
from hotline.flow.registry import FlowRegistry
from hotline.flow.screen import Option, PromptPart, Screen, Turn
from hotline.flow.services import Services
from hotline.i18n.catalog import CatalogSet
from hotline.store.sessions import (
    SessionRecord,
    SessionStore,
    resume_key,
    session_key,
    subscriber_key,
)

__all__ = ["ENGINE_PROMPTS", "TRANSFER_VAR", "Engine", "PendingSave"]

log = logging.getLogger(__name__)


def _utc_now() -> dt.datetime:
    return dt.datetime.now(dt.UTC)


KEY_INVALID = "nav.invalid"
KEY_TOO_MANY_INVALID = "nav.too_many_invalid"
KEY_GOODBYE = "common.goodbye"
KEY_SESSION = "error.session"
KEY_BUSY = "error.busy"
KEY_NO_ENTRY = "error.no_entry"
#: Catalog keys the engine itself may show; `flows check` requires them in every language.
ENGINE_PROMPTS = (
    KEY_INVALID,
    KEY_TOO_MANY_INVALID,
    KEY_GOODBYE,
    KEY_SESSION,
    KEY_BUSY,
    KEY_NO_ENTRY,
    *resume.PROMPTS,
)
#: The session variable a `call.transfer` action sets; an end screen carries it as
#: `Screen.transfer`, so the call is handed over after the screen is spoken.
TRANSFER_VAR = "transfer_to"
DEFAULT_TTL = 300  # seconds; for a channel the engine was given no lifetime for
_PREPARED_MAX = 4096  # prepared options kept (flow definitions: few and bounded)

WaitingState = MenuState | InputState | EndState


@dataclass(frozen=True, slots=True)
class PendingSave:
    """The session write a turn still owes (performed by `Engine.commit`)."""

    key: str
    sub_key: str
    record: SessionRecord
    ttl: int
    prefs: dict[str, str] | None
    resume: tuple[str, int] | None = None  # (resume key, window): save or clear a copy


@dataclass(slots=True)
class _FixedScreen:
    """A waiting state's parts and options where no session can change them (None: built
    on each visit), for the catalogs they were checked against."""

    state: WaitingState
    catalogs: CatalogSet
    parts: tuple[PromptPart, ...] | None
    options: tuple[Option, ...] | None


@dataclass(slots=True)
class _Step:
    """Mutable working state of one `step` call."""

    event: ChannelEvent
    record: SessionRecord
    flow: Flow | None
    prefs: dict[str, str]
    prefs_changed: bool = False
    events: list[str] = field(default_factory=list)
    secrets: dict[str, str] = field(default_factory=dict)
    values: dict[str, Value] = field(default_factory=dict)  # set this step, already decoded
    arrived: str | None = None  # the waiting state `_enter` reached this step, if any
    saved: bytes | None = None  # the resume key's record, read with a plain dial


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
        session_ttls: Mapping[str, int] | None = None,
        resume_windows: Mapping[str, int] | None = None,
        actions: ActionRegistry = ACTIONS,
    ) -> None:
        self.settings = settings
        self.registry = registry
        self.catalogs = catalogs
        self.store = store
        self.pseudonym = pseudonym
        self.services = services
        self.actions = actions
        self.session_ttls = dict(session_ttls or {})
        self.resume_windows = {k: v for k, v in (resume_windows or {}).items() if v > 0}
        self._zone = ZoneInfo(settings.timezone)
        self._digest_key = hashlib.sha256(
            settings.pseudonym_secret.get_secret_value().encode("utf-8")
        ).digest()
        self._languages = tuple(settings.languages)
        self._max_replay = settings.ussd.max_inputs_per_request
        # Screens are built from immutable flow definitions: the sentences without values
        # and the options are the same objects every time (measured, min of 4 alternating
        # runs: step + lay-out + commit 68 → 61 µs a request).
        self._fixed_parts: dict[str, PromptPart] = {}
        self._options: dict[tuple[str, str], Option] = {}
        # Per waiting state: its parts and options when nothing in them depends on the
        # session (no `when`/`unless`, no placeholders), built once (`_fixed_screen`).
        self._fixed_screens: dict[int, _FixedScreen] = {}

    # ---------------------------------------------------------------- public

    def apology(self, language: str | None = None) -> Screen:
        """The polite final screen for when something beyond the subscriber failed."""
        note(outcome="apology")
        return self._closing(KEY_BUSY, language)

    async def step(self, event: ChannelEvent) -> Turn:
        """Apply one event to its session; the caller renders, then `commit`s."""
        pseudonym = self.pseudonym(event.subscriber)
        skey = session_key(self.settings.env, event.channel, event.session_id)
        sub_key = subscriber_key(self.settings.env, pseudonym)
        window = self.resume_windows.get(event.channel, 0)
        rkey = resume_key(self.settings.env, event.channel, pseudonym) if window else ""
        saved = None
        if rkey and event.kind == "start" and not event.inputs:
            # A plain dial: the resume key comes in the same round trip.
            raw, prefs, saved = await self.store.load_step(skey, sub_key, rkey)
        else:
            raw, prefs = await self.store.load(skey, sub_key)
        owner = f"{event.channel}/{event.dialect}/{event.entry}/{pseudonym}"
        record = self._parse(raw)

        if record is not None and record.owner != owner:
            # Someone else's session id: never their screen, and leave it alone.
            log.warning("refused a request for a session another subscriber or entry started")
            screen = self._closing(KEY_SESSION, self._language(prefs))
            note_turn(record.flow, screen.state, True, ("refused",))
            return Turn(screen, ("refused",))
        if record is None and event.kind == "hangup":
            # The gateway ends a session we never had (its dial was lost, or it ends one
            # twice): nothing to close, so nothing is started, counted or stored.
            return Turn(self._closing(KEY_GOODBYE, self._language(prefs)), ("refused",))
        # Digested once a step: compared with the record's, then kept in its place.
        request = None if event.request_id is None else self._request_digest(event.request_id)
        if record is not None and request is not None and request == record.request_id:
            screen = self._show(record)
            note_turn(record.flow, screen.state, screen.ends, ("repeated",))
            return Turn(screen, ("repeated",))

        step = await self._advance(event, record, prefs, owner, saved)
        screen = self._finish(step)
        record = step.record
        if request is not None:
            record.request_id = request
        ttl = self.session_ttls.get(event.channel, DEFAULT_TTL)
        pending = PendingSave(
            skey,
            sub_key,
            record,
            ttl,
            step.prefs if step.prefs_changed else None,
            (rkey, window) if rkey and step.flow is not None and step.flow.resume else None,
        )
        events = tuple(step.events)
        note_turn(record.flow, screen.state, screen.ends, events)
        return Turn(screen, events, pending)

    async def commit(self, turn: Turn, pages: int = 1, ends: bool | None = None) -> None:
        """Save the session of a turn, once the channel made `pages` pages of its screen.

        `ends` is whether the channel's reply closed the conversation (`END`, a hang-up):
        then the session is over. A channel may keep an ending screen open — its earlier
        pages, the last page of a many-page result, a result on a call followed by "press
        * to hear it again" (`Screen.after_result`) — and the session stays open for the
        flow's keys. Without `ends`, an ending screen ends the session on its last page.
        """
        pending = turn.pending
        if pending is None:
            return
        record = pending.record
        record.pages = max(pages, 1)
        screen = turn.screen
        if ends is None:
            ends = screen.ends and screen.page >= record.pages - 1
        if ends:
            record.ended = True
        keep = resume.copy_write(pending.resume, record, screen)
        data = record.dumps()
        if keep is None or pending.resume is None:
            await self.store.save(pending.key, data, pending.ttl, pending.sub_key, pending.prefs)
        else:
            await self.store.save(
                pending.key,
                data,
                pending.ttl,
                pending.sub_key,
                pending.prefs,
                resume=resume.write(pending.resume, keep, data),
            )

    # ------------------------------------------------------------ the session

    @staticmethod
    def _parse(raw: bytes | None) -> SessionRecord | None:
        if raw is None:
            return None
        try:
            return SessionRecord.loads(raw)
        except ValueError:
            # A record this version cannot read belongs to no one: whoever asks is
            # refused politely, and nothing is guessed from it.
            return SessionRecord(flow="", version="", state="", language="", final=KEY_SESSION)

    def _request_digest(self, request_id: str) -> str:
        """What the session keeps of a request id: a keyed digest. A USSD transcript
        (`7*1*1*246810`) carries every input so far, a secret input's too, and the
        session must never hold a service password in clear."""
        return hashlib.blake2b(
            request_id.encode("utf-8"), key=self._digest_key, digest_size=16
        ).hexdigest()

    def _new_session(
        self, event: ChannelEvent, prefs: dict[str, str], owner: str
    ) -> tuple[_Step, str | None, tuple[str, ...]]:
        """A fresh record for this event's entry; the state to enter and inputs to replay."""
        language = self._language(prefs)
        record = SessionRecord(flow="", version="", state="", language=language, owner=owner)
        inputs = event.inputs
        table = self.registry.entries  # rebuilt by the registry when flows are installed
        if not table:
            # No flow declares entries (a one-flow deployment from before entries
            # existed): the default flow serves every entry.
            flow = self.registry.current(self.settings.default_flow)
            state = flow.start if flow else None
        else:
            match = table.resolve(event.channel, event.entry, inputs)
            if match is None:
                step = _Step(event, record, None, prefs)
                self._end_with(step, KEY_NO_ENTRY)
                return step, None, ()
            flow = self.registry.current(match.flow)
            state, inputs = match.state, match.inputs
        if flow is None or state is None:
            step = _Step(event, record, None, prefs)
            self._end_with(step, KEY_BUSY)
            return step, None, ()
        record.flow, record.version, record.state = flow.id, flow.version, flow.start
        return _Step(event, record, flow, prefs), state, inputs

    async def _advance(
        self,
        event: ChannelEvent,
        record: SessionRecord | None,
        prefs: dict[str, str],
        owner: str,
        saved: bytes | None = None,
    ) -> _Step:
        if record is None or (record.ended and event.kind == "start"):
            offer = resume.resumable(self.registry, saved, owner)
            if offer is not None:
                step = _Step(event, offer, self.registry.get(offer.flow, offer.version), prefs)
                step.events.extend(("started", "resume_offered"))
                return step
            step, state, inputs = self._new_session(event, prefs, owner)
            if saved is not None:
                step.record.resume = resume.SAVED  # a copy is there: cleared when this one ends
            step.events.append("started")
            if step.flow is None or state is None:
                return step
            await self._enter(step, state)
            if len(inputs) > self._max_replay:
                self._end_with(step, KEY_SESSION)
                return step
            await self._replay(step, step.flow, inputs)
            return step

        flow = self.registry.get(record.flow, record.version)
        step = _Step(event, record, flow, prefs)
        if record.final or record.ended or flow is None or record.state not in flow.states:
            # The session is over, or was started on a flow version this worker does not
            # have (a flow change): say so politely instead of guessing.
            self._end_with(step, KEY_SESSION)
            return step
        if event.follows is not None and self._request_digest(event.follows) != record.request_id:
            # The gateway's history does not continue this session's: don't guess.
            self._end_with(step, KEY_SESSION)
            return step

        if record.resume == resume.OFFERED and event.kind == "input":
            await self._answer_offer(step, flow, event.text, owner)
            return step
        match event.kind:
            case "input":
                await self._apply(step, flow, event.text)
            case "timeout":
                self._silence(step, flow)
            case "repeat":
                record.notice = ""
                record.no_input = 0  # a key was pressed: the run of silences is over
            case "start":
                pass  # a restart of a live session shows the current screen again
            case "hangup":
                record.ended = True
        return step

    # ------------------------------------------------------------------ resume

    async def _answer_offer(self, step: _Step, flow: Flow, value: str, owner: str) -> None:
        """`1` continues where the subscriber was; `2` starts as a plain dial would."""
        record = step.record
        if value == resume.CONTINUE:
            record.resume = resume.SAVED
            record.notice, record.invalid = "", 0
            step.events.append("resumed")
            return
        if value == resume.RESTART:
            event = replace(step.event, kind="start", text="", inputs=())
            fresh, state, _ = self._new_session(event, step.prefs, owner)
            fresh.record.resume = resume.SAVED  # the old copy goes once this one moves on
            step.record, step.flow = fresh.record, fresh.flow
            step.events.append("restarted")
            if fresh.flow is not None and state is not None:
                await self._enter(step, state)
            return
        self._invalid(step, flow, KEY_INVALID)

    # ------------------------------------------------------------ transitions

    async def _replay(self, step: _Step, flow: Flow, inputs: tuple[str, ...]) -> None:
        """A direct dial (`*100*1*2#`): apply the inputs that came with it, in order.

        Replay stops at the first input that does not apply where the subscriber has got
        to (or at a final screen), and shows that screen as it is — no "invalid choice"
        notice for keys the subscriber typed before seeing it.
        """
        record = step.record
        for value in inputs:
            if record.ended or record.final or isinstance(flow.states[record.state], EndState):
                return
            invalid, events = record.invalid, len(step.events)
            await self._apply(step, flow, value)
            if record.invalid > invalid and not record.final:
                record.invalid, record.notice = invalid, ""
                del step.events[events:]
                return

    async def _apply(self, step: _Step, flow: Flow, value: str) -> None:
        record = step.record
        record.no_input = 0
        state = flow.states[record.state]
        nav = flow.navigation
        if self._navigate(step, flow, value):
            return
        if isinstance(state, MenuState):
            for option in state.options:
                if option.key == value and _offered(option, record.vars):
                    record.back.append(record.state)
                    await self._enter(step, option.next)
                    return
        elif isinstance(state, InputState) and _valid_input(state, value):
            if state.secret:
                step.secrets[state.var] = value
            else:
                record.vars[state.var] = value
            record.back.append(record.state)
            await self._enter(step, state.next)
            return
        if value == nav.home and not record.back:
            record.notice = ""  # home, at home: show it again
            return
        self._invalid(step, flow, state.error if isinstance(state, InputState) else KEY_INVALID)

    def _navigate(self, step: _Step, flow: Flow, value: str) -> bool:
        """The flow's page and history keys, where they mean something; True if applied."""
        record = step.record
        nav = flow.navigation
        if value == nav.more and record.page + 1 < record.pages:
            record.page += 1
            record.notice = ""
            return True
        if value == nav.back:
            if record.page > 0:
                record.page -= 1
                record.notice = ""
                return True
            if isinstance(flow.states.get(record.state), EndState) and isinstance(
                flow.states.get(flow.start), MenuState | InputState
            ):
                # After a result there is nothing to go back into (the state before was
                # an action, an input already applied): back is the main menu.
                record.back.clear()
                _wait_at(record, flow.start)
                return True
            if record.back:
                _wait_at(record, record.back.pop())
                return True
        if value == nav.home and record.back:
            record.back.clear()
            _wait_at(record, flow.start)
            return True
        return False

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
                name = _switch(step.record.vars, state)
            else:
                if name == flow.start:
                    # Arriving home (after a language switch, say) leaves nothing to go back to.
                    step.record.back.clear()
                _wait_at(step.record, name)
                step.arrived = name
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
                channel=step.event.channel,
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

    # ---------------------------------------------------------------- screens

    def _finish(self, step: _Step) -> Screen:
        record = step.record
        if record.final or step.flow is None:
            record.ended = True
            return self._closing(record.final or KEY_SESSION, record.language)
        if record.resume == resume.OFFERED:
            return resume.offer_screen(record)
        state = step.flow.states[record.state]
        assert isinstance(state, MenuState | InputState | EndState)
        if isinstance(state, EndState) and step.arrived == record.state:
            step.events.append(f"ended:{record.state}")
        return self._screen(step.flow, state, record, step.values)

    def _show(self, record: SessionRecord) -> Screen:
        """The screen a record last showed, built again from it (for a repeat)."""
        flow = self.registry.get(record.flow, record.version)
        if record.final or flow is None or record.state not in flow.states:
            return self._closing(record.final or KEY_SESSION, record.language)
        if record.resume == resume.OFFERED:
            return resume.offer_screen(record)
        state = flow.states[record.state]
        assert isinstance(state, MenuState | InputState | EndState)
        return self._screen(flow, state, record, {})

    def _language(self, prefs: dict[str, str]) -> str:
        """The subscriber's remembered language, if this deployment still offers it."""
        language = prefs.get("lang", "")
        return language if language in self._languages else self.settings.default_language

    def _closing(self, key: str, language: str | None) -> Screen:
        return Screen(
            state=f"_{key.split('.')[-1]}",
            language=language or self.settings.default_language,
            parts=(PromptPart(key),),
            ends=True,
        )

    def _screen(
        self, flow: Flow, state: WaitingState, record: SessionRecord, known: dict[str, Value]
    ) -> Screen:
        variables = record.vars
        waits = not isinstance(state, EndState)
        transfer = variables.get(TRANSFER_VAR) if not waits else None
        after_result = (
            isinstance(state, EndState)
            and transfer is None
            and (flow.after_result if state.after_result is None else state.after_result)
        )
        fixed = self._fixed_screen(state)
        parts: tuple[PromptPart, ...] = ()
        if after_result and record.no_input:
            pass  # after a silence, a result is not said again: only the offer to hear it
        elif fixed.parts is not None:
            parts = fixed.parts
        else:
            parts = tuple(
                self._part(ref.key, variables, known)
                for ref in state.prompt
                if ref.shown(variables)
            )
        options: tuple[Option, ...] = ()
        if fixed.options is not None:
            options = fixed.options
        elif isinstance(state, MenuState):
            options = tuple(
                self._option(o.key, o.label) for o in state.options if _offered(o, variables)
            )
        depth = len(record.back)
        return Screen(
            state=record.state,
            language=record.language,
            parts=parts,
            options=options,
            ends=not waits,
            notice=PromptPart(record.notice) if record.notice else None,
            page=record.page,
            can_go_back=depth > 0,
            can_go_home=depth > 1,
            expects_input=waits,
            transfer=transfer if isinstance(transfer, str) else None,
            max_input=state.max_length if isinstance(state, InputState) else None,
            after_result=after_result,
        )

    def _fixed_screen(self, state: WaitingState) -> _FixedScreen:
        """What of `state`'s screen is the same on every visit, for these catalogs (a
        prompt reload may add placeholders). Measured: the parts and options of the main
        menu were ~2 % of a USSD step's samples, built again on every visit."""
        catalogs = self.catalogs
        found = self._fixed_screens.get(id(state))
        if found is not None and found.state is state and found.catalogs is catalogs:
            return found
        parts: tuple[PromptPart, ...] | None = None
        if all(
            ref.when is None and ref.unless is None and not catalogs.placeholders(ref.key)
            for ref in state.prompt
        ):
            parts = tuple(self._part(ref.key, {}, {}) for ref in state.prompt)
        options: tuple[Option, ...] | None = None
        if isinstance(state, MenuState) and all(o.when is None for o in state.options):
            options = tuple(self._option(o.key, o.label) for o in state.options)
        if len(self._fixed_screens) >= _PREPARED_MAX:
            self._fixed_screens.clear()  # flows reloaded many times over: start afresh
        # The entry holds the state: its id is not reused while the entry lives.
        found = self._fixed_screens[id(state)] = _FixedScreen(state, catalogs, parts, options)
        return found

    def _part(self, key: str, variables: dict[str, Any], known: dict[str, Value]) -> PromptPart:
        """A prompt sentence with the values its placeholders read (shared when none)."""
        if self.catalogs.placeholders(key):
            return PromptPart(key, self._values(key, variables, known))
        part = self._fixed_parts.get(key)
        if part is None:
            part = self._fixed_parts[key] = PromptPart(key)
        return part

    def _option(self, key: str, label: str) -> Option:
        """A menu option; the same object every time (flow definitions are immutable)."""
        option = self._options.get((key, label))
        if option is None:
            if len(self._options) >= _PREPARED_MAX:
                self._options.clear()  # flows reloaded many times over: start afresh
            option = self._options[(key, label)] = Option(key, self._part(label, {}, {}))
        return option

    def _values(
        self, key: str, variables: dict[str, Any], known: dict[str, Value]
    ) -> dict[str, Value]:
        """The typed values a sentence's placeholders read, decoded from the session; an
        input state's value (a plain string) shows as the placeholder's type says."""
        kinds = self.catalogs.placeholder_types(key)
        if not kinds:
            return {}
        values: dict[str, Value] = {}
        for name, kind in kinds.items():
            value = known.get(name)
            if value is None:
                raw = variables.get(name)
                if isinstance(raw, str):
                    value = input_value(raw, kind)
                    if value is None:
                        continue
                elif not isinstance(raw, dict):
                    continue
                else:
                    try:
                        value = decode_value(raw)
                    except ValueError:
                        continue
            values[name] = value
        return values


def _wait_at(record: SessionRecord, state: str) -> None:
    record.state = state
    record.page = 0
    record.pages = 1
    record.notice = ""
    record.invalid = 0


def _valid_input(state: InputState, value: str) -> bool:
    return (
        state.min_length <= len(value) <= state.max_length
        and re.fullmatch(state.pattern, value) is not None
    )


def _offered(option: FlowOption, variables: dict[str, Any]) -> bool:
    """Whether a menu option is shown (and may be chosen) with these variables."""
    return option.when is None or bool(variables.get(option.when))


def _switch(variables: dict[str, Any], state: SwitchState) -> str:
    for case in state.cases:
        value = variables.get(case.var)
        if case.equals is None and value:
            return case.next
        if case.equals is not None and value == case.equals:
            return case.next
    return state.default
