"""The simulator's inspector: what the engine holds for a session, for a flow author's eyes.

Mounted by `hotline.web.simulator.setup` only — that is, only when `simulator` is on;
a production config never has these routes (they answer 404 like any unknown path):

- `GET /simulator/api/session?channel=ussd&session=<id>` (or `channel=sms&message=<id>`:
  an SMS names no session, so the session is the one that message's turn stepped): the
  stored `SessionRecord`,
  decoded (typed values formatted as a screen shows them) and masked (phone numbers
  `138****8000`, secrets `••••`), with the steps of the session this worker took — each
  step's kind, input (masked alike) and the engine's events.
- `GET /simulator/api/flow/<id>[?version=…&language=…]`: the flow as states and edges
  (`hotline.flow.graph.build`), plus the Graphviz SVG when `dot` is installed.
- `GET /simulator/api/speech?url=<clip URL>`: the sentence a voice clip speaks (clip
  keys are sealed, so the page cannot read them itself).

The steps come from a turn observer registered into the core's optional `TURN_OBSERVERS`
list when the simulator is mounted; they live in this process only, bounded in sessions
and steps per session, and hold no phone number.
"""

from __future__ import annotations

import asyncio
import re
import time
from collections import OrderedDict, deque
from dataclasses import dataclass, field
from typing import Any

from aiohttp import web

from hotline.base.privacy import mask_msisdn
from hotline.base.values import decode_value
from hotline.flow.events import ChannelEvent
from hotline.flow.graph import GraphvizError, build, to_svg
from hotline.flow.model import Flow, InputState
from hotline.flow.screen import Turn
from hotline.i18n.text import TextFormatter
from hotline.store.sessions import SessionRecord, session_key, subscriber_key
from hotline.web.app import FLOWS
from hotline.web.keys import ENGINE, SESSIONS, SETTINGS, SPEECH_TEXT, TURN_OBSERVERS

__all__ = [
    "MAX_SESSIONS",
    "MAX_STEPS",
    "SECRET",
    "TURNS",
    "StepLog",
    "mask_value",
    "setup",
]

MAX_SESSIONS = 64  # sessions whose steps are kept (least recently stepped dropped first)
MAX_STEPS = 100  # steps kept per session (oldest dropped first)
SECRET = "••••"
_CHANNELS = frozenset({"ussd", "ivr", "sms", "api"})
_SESSION_ID = re.compile(r"^[A-Za-z0-9_.:-]{1,128}$")
_FLOW_ID = re.compile(r"^[A-Za-z0-9_-]{1,64}$")
# Variable names that hold something a bystander must not read, whatever the value.
_SECRET_NAME = re.compile(r"pin|pass|secret|token|otp|pwd|cvv|card", re.IGNORECASE)
# Variable names that hold a phone number.
_PHONE_NAME = re.compile(r"msisdn|phone|mobile|caller|callee|number", re.IGNORECASE)
# A value shaped like a phone number: 7 to 15 digits, maybe with a leading `+`.
_PHONE_VALUE = re.compile(r"^\+?[0-9]{7,15}$")
_TEXT = TextFormatter()


def mask_value(name: str, value: str, *, secret: bool = False) -> tuple[str, str | None]:
    """`(shown, why masked)`: secrets hidden whole, phone numbers `138****8000`."""
    if secret or _SECRET_NAME.search(name):
        return SECRET, "secret"
    if _PHONE_VALUE.fullmatch(value.strip()) or (
        _PHONE_NAME.search(name) and any(ch.isdigit() for ch in value)
    ):
        return mask_msisdn(value), "phone"
    return value, None


# ---------------------------------------------------------------- steps (turn observer)


def _replayed(value: str) -> str:
    """An input sent along with a dial, where we cannot tell which state reads it."""
    shown, why = mask_value("", value)
    return shown if why or len(value) <= 2 else SECRET


@dataclass(slots=True)
class Step:
    n: int
    kind: str
    input: str | None
    events: tuple[str, ...]
    state: str
    at: float

    def as_json(self) -> dict[str, Any]:
        return {
            "n": self.n,
            "kind": self.kind,
            "input": self.input,
            "events": list(self.events),
            "state": self.state,
            "at": self.at,
        }


@dataclass(slots=True)
class StepLog:
    """The steps of recent sessions, bounded: `MAX_SESSIONS` × `MAX_STEPS` at most."""

    app: web.Application
    max_sessions: int = MAX_SESSIONS
    max_steps: int = MAX_STEPS
    _sessions: OrderedDict[tuple[str, str], deque[Step]] = field(default_factory=OrderedDict)
    _counts: dict[tuple[str, str], int] = field(default_factory=dict)
    #: (channel, request id) → session id of the latest turns (an SMS names no session).
    _requests: OrderedDict[tuple[str, str], str] = field(default_factory=OrderedDict)

    def __call__(self, event: ChannelEvent, turn: Turn, ends: bool = False) -> None:
        events, state = turn.events, turn.screen.state
        key = (event.channel, event.session_id)
        if event.request_id is not None:
            self._requests[(event.channel, event.request_id)] = event.session_id
            while len(self._requests) > self.max_sessions * 4:
                self._requests.popitem(last=False)
        steps = self._sessions.get(key)
        if steps is None:
            steps = self._sessions[key] = deque(maxlen=self.max_steps)
            while len(self._sessions) > self.max_sessions:
                dropped, _ = self._sessions.popitem(last=False)
                self._counts.pop(dropped, None)
        else:
            self._sessions.move_to_end(key)
        shown = self._input(event, steps[-1].state if steps else None)
        n = self._counts.get(key, 0) + 1
        self._counts[key] = n
        steps.append(Step(n, event.kind, shown, events, state, round(time.time(), 3)))

    def _input(self, event: ChannelEvent, before: str | None) -> str | None:
        """What the subscriber typed this step, masked like a variable.

        A key pressed at an `input` state is masked as that state's variable (`secret:
        true` → `••••`). Inputs replayed with a dial (`*105*…#`) are each shown only when
        they are menu-sized (two characters at most), or as a masked phone number.
        """
        if event.kind == "input" and event.text and before is not None:
            name, secret = "", False
            for flow in self.app[FLOWS].flows():
                state = flow.states.get(before)
                if isinstance(state, InputState):
                    name, secret = state.var, secret or state.secret
            return mask_value(name, event.text, secret=secret)[0]
        # A session's first request (or one whose earlier steps this log no longer holds):
        # the gateway may have sent everything typed so far, which the engine replays.
        typed = event.inputs or ((event.text,) if event.text else ())
        return "*".join(_replayed(value) for value in typed) if typed else None

    def session_of(self, channel: str, request_id: str) -> str | None:
        """The session a recent turn with this request (message) id stepped."""
        return self._requests.get((channel, request_id))

    def steps(self, channel: str, session_id: str) -> list[Step]:
        return list(self._sessions.get((channel, session_id), ()))

    def __len__(self) -> int:
        return len(self._sessions)


TURNS: web.AppKey[StepLog] = web.AppKey("SIMULATOR_TURNS", StepLog)
_SVG: web.AppKey[dict[tuple[str, str, str], str | None]] = web.AppKey("SIMULATOR_SVG")


# ---------------------------------------------------------------- the endpoints


def _bad(reason: str) -> web.HTTPBadRequest:
    return web.HTTPBadRequest(text=reason, content_type="text/plain")


def _vars(record: SessionRecord, flow: Flow | None) -> list[dict[str, Any]]:
    secret_vars = {
        s.var
        for s in (flow.states.values() if flow else ())
        if isinstance(s, InputState) and s.secret
    }
    rows: list[dict[str, Any]] = []
    for name, stored in sorted(record.vars.items()):
        kind = "text"
        if isinstance(stored, dict):
            try:
                value = decode_value(stored)
            except ValueError:
                rows.append({"name": name, "type": "?", "value": "(unreadable)", "masked": None})
                continue
            kind = str(stored.get("t"))
            if kind in ("text",):
                shown, why = mask_value(name, _TEXT.format(value, record.language))
            elif _SECRET_NAME.search(name) or name in secret_vars:
                shown, why = SECRET, "secret"
            else:
                shown, why = _TEXT.format(value, record.language), None
        elif isinstance(stored, str):
            kind = "input"
            shown, why = mask_value(name, stored, secret=name in secret_vars)
        elif isinstance(stored, bool | int | float) or stored is None:
            kind = type(stored).__name__
            shown, why = mask_value(
                name, str(stored).lower() if isinstance(stored, bool) else str(stored)
            )
        else:
            kind = type(stored).__name__
            shown, why = SECRET, "secret"  # a structure we do not know: never shown raw
        rows.append({"name": name, "type": kind, "value": shown, "masked": why})
    return rows


async def _session(request: web.Request) -> web.Response:
    channel = request.query.get("channel", "")
    session_id = request.query.get("session", "")
    if channel not in _CHANNELS:
        raise _bad(f"channel must be one of {', '.join(sorted(_CHANNELS))}")
    message = request.query.get("message")
    if message is not None:
        if not _SESSION_ID.fullmatch(message):
            raise _bad("message must be a gateway message id")
        found = request.app[TURNS].session_of(channel, message)
        if found is None:
            return web.json_response(
                {"channel": channel, "session": "", "message": message, "steps": [], "found": False}
            )
        session_id = found
    if not _SESSION_ID.fullmatch(session_id):
        raise _bad("session must be a gateway session id")
    app = request.app
    env = app[SETTINGS].env
    raw, _ = await app[SESSIONS].load(
        session_key(env, channel, session_id), subscriber_key(env, "simulator")
    )
    steps = [s.as_json() for s in app[TURNS].steps(channel, session_id)]
    body: dict[str, Any] = {"channel": channel, "session": session_id, "steps": steps}
    if raw is None:
        return web.json_response({**body, "found": False})
    try:
        record = SessionRecord.loads(raw)
    except ValueError as exc:
        return web.json_response({**body, "found": False, "error": str(exc)})
    registry = app[FLOWS]
    flow = registry.get(record.flow, record.version)
    state = flow.states.get(record.state) if flow else None
    body.update(
        found=True,
        flow=record.flow,
        version=record.version,
        current=flow is not None and registry.current(record.flow) is flow,
        state=record.state,
        kind=state.type if state is not None else None,
        language=record.language,
        page=record.page,
        pages=record.pages,
        back=list(record.back),
        invalid=record.invalid,
        ended=record.ended,
        started=record.started,
        vars=_vars(record, flow),
    )
    return web.json_response(body)


async def _flow(request: web.Request) -> web.Response:
    flow_id = request.match_info["flow"]
    if not _FLOW_ID.fullmatch(flow_id):
        raise web.HTTPNotFound()
    registry = request.app[FLOWS]
    version = request.query.get("version", "")
    flow = registry.get(flow_id, version) if version else registry.current(flow_id)
    if flow is None:
        raise web.HTTPNotFound(text=f"no flow {flow_id!r} (version {version or 'current'})")
    catalogs = request.app[ENGINE].catalogs  # current: prompts reload with flows
    language = request.query.get("language") or catalogs.default
    catalog = catalogs[language]
    diagram = build(flow, catalog)
    cache = request.app[_SVG]
    key = (flow.id, flow.version, catalog.language)
    if key not in cache:
        try:
            cache[key] = await asyncio.to_thread(to_svg, diagram)
        except (GraphvizError, OSError, ValueError):
            cache[key] = None  # the page draws the graph itself
        if len(cache) > 32:
            cache.pop(next(iter(cache)))
    return web.json_response(
        {
            "id": flow.id,
            "version": flow.version,
            "language": catalog.language,
            "start": flow.start,
            "nodes": [
                {"name": n.name, "kind": n.kind, "text": n.text, "start": n.start}
                for n in diagram.nodes
            ],
            "edges": [
                {"source": e.source, "target": e.target, "label": e.label, "error": e.error}
                for e in diagram.edges
            ],
            "svg": cache[key],
        }
    )


async def _speech(request: web.Request) -> web.Response:
    url = request.query.get("url", "")
    speech_text = request.app.get(SPEECH_TEXT)
    if not url or len(url) > 4096 or speech_text is None:
        raise web.HTTPNotFound(text="no such clip")
    text = speech_text(url)
    if text is None:
        raise web.HTTPNotFound(text="no such clip")
    return web.json_response({"url": url, "text": text})


def setup(app: web.Application) -> None:
    """Mount the inspector's routes and register its turn observer (simulator on only)."""
    log = StepLog(app)
    app[TURNS] = log
    app[_SVG] = {}
    if TURN_OBSERVERS not in app:
        app[TURN_OBSERVERS] = []
    app[TURN_OBSERVERS].append(log)
    app.router.add_get("/simulator/api/session", _session, name="simulator-session")
    app.router.add_get("/simulator/api/flow/{flow}", _flow, name="simulator-flow")
    app.router.add_get("/simulator/api/speech", _speech, name="simulator-speech")
