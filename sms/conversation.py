"""An incoming SMS as a turn of the engine: keywords start sessions, replies continue them.

SMS has no session id, so the channel keeps a *thread* per subscriber and service
number (`hotline:{env}:sms:thread:{service}:{pseudonym}`, in the session store, with
the SMS session TTL): the session it is in, the entry (the keyword message) that
started it, whether it has ended and the ids of its latest messages. An incoming
message is, in this order:

1. a **duplicate** — its id is one of the thread's recent ids (the SMSC delivered it
   again): no second reply, nothing changes;
2. a **keyword** the entry table knows (`YE`, `ｙｅ`, `余额 1`): a new session at the
   entry's state, whatever the thread was doing, with the words after the keyword as
   inputs; the session id is derived from the message id, so a redelivery racing past
   step 1 meets the engine's own replay safety (same request id, same screen, no new
   side effects);
3. a **reply** while the thread's session waits (a menu sent by SMS): the text,
   NFKC-normalised (`１` is `1`), is the input;
4. anything else: the short **help** SMS listing the keywords (`sms.help`).

Nothing here logs a number or a text; the pseudonym is the only subscriber name used.
"""

from __future__ import annotations

import hashlib
import logging
import re
import unicodedata
import uuid
from dataclasses import dataclass, field

import orjson
from aiohttp import web

from hotline.base.config import SmsSettings
from hotline.base.errors import SessionStoreUnavailable
from hotline.flow.entries import EntryTable
from hotline.flow.events import ChannelEvent
from hotline.store.sessions import subscriber_key
from hotline.web.keys import ENGINE, PSEUDONYM, SESSIONS, SETTINGS
from hotline.web.turns import take_turn
from sms.render import SmsLayout, SmsText

__all__ = [
    "CHANNEL",
    "SERVICE_NUMBERS",
    "IncomingSms",
    "RefusedMo",
    "ServiceNumbers",
    "SmsAnswer",
    "Thread",
    "answer",
    "answer_or_apology",
    "refusal",
    "sms_keywords",
    "thread_key",
]

log = logging.getLogger(__name__)

CHANNEL = "sms"
RECENT_IDS = 8
_UNSAFE = re.compile(r"[^0-9A-Za-z+]")


@dataclass(frozen=True, slots=True)
class IncomingSms:
    """One mobile-originated message as a dialect read it (text already decoded)."""

    dialect: str
    sender: str
    receiver: str
    text: str
    message_id: str | None = None

    def __post_init__(self) -> None:
        if not self.sender:
            raise ValueError("IncomingSms.sender must not be empty")


class RefusedMo(Exception):
    """A message from a subscriber that hotline will not read — too long, an unknown
    coding, a broken header: the subscriber gets a polite SMS (`refusal`) with the
    keywords, the gateway a normal answer. `key` is the catalog key of that SMS;
    `reason` is for the log (no number, no text in it)."""

    def __init__(self, sender: str, receiver: str, key: str, reason: str) -> None:
        super().__init__(reason)
        self.sender = sender
        self.receiver = receiver
        self.key = key
        self.reason = reason


@dataclass(frozen=True, slots=True)
class SmsAnswer:
    """What to send back (None: nothing) and which of the four cases it was."""

    reply: SmsText | None
    outcome: str  # duplicate | started | continued | help


@dataclass(slots=True)
class Thread:
    """The SMS conversation of one subscriber with one service number."""

    session: str = ""
    entry: str = ""
    ended: bool = True
    ids: list[str] = field(default_factory=list)

    def dumps(self) -> bytes:
        return orjson.dumps({"s": self.session, "e": self.entry, "x": self.ended, "i": self.ids})

    @classmethod
    def loads(cls, raw: bytes | None) -> Thread | None:
        if raw is None:
            return None
        try:
            data = orjson.loads(raw)
            return cls(str(data["s"]), str(data["e"]), bool(data["x"]), [str(i) for i in data["i"]])
        except (orjson.JSONDecodeError, KeyError, TypeError):
            return None  # unreadable: as if there were none

    def saw(self, message_id: str | None) -> None:
        if message_id is not None:
            self.ids = [*self.ids, message_id][-RECENT_IDS:]


def thread_key(env: str, receiver: str, pseudonym: str) -> str:
    return f"hotline:{env}:sms:thread:{_UNSAFE.sub('', receiver)[:24]}:{pseudonym}"


def _digest(text: str) -> str:
    return hashlib.blake2b(text.encode("utf-8"), digest_size=8).hexdigest()


async def answer_or_apology(
    app: web.Application, sms: IncomingSms, layout: SmsLayout
) -> SmsText | None:
    """`answer`'s reply, or the engine's apology when something on our side failed (the
    subscriber still gets a sentence); None when there is nothing to send (a repeat)."""
    try:
        return (await answer(app, sms, layout)).reply
    except SessionStoreUnavailable as exc:
        log.warning("sms: session store unavailable (%s); apologized", exc)
    except Exception:
        log.exception("sms: answer failed for subscriber %s", app[PSEUDONYM](sms.sender))
    return layout.lay_out(app[ENGINE].apology())


async def refusal(app: web.Application, refused: RefusedMo, layout: SmsLayout) -> SmsText:
    """The polite SMS for a refused message, in the subscriber's language when the store
    knows it (else the default), listing the keywords."""
    settings = app[SETTINGS]
    pseudonym = app[PSEUDONYM](refused.sender)
    log.info("sms: message from subscriber %s refused (%s); told so", pseudonym, refused.reason)
    language = settings.default_language
    try:
        _, prefs = await app[SESSIONS].load(
            thread_key(settings.env, refused.receiver, pseudonym),
            subscriber_key(settings.env, pseudonym),
        )
    except SessionStoreUnavailable:
        prefs = {}
    if prefs.get("lang", "") in settings.languages:
        language = str(prefs["lang"])
    return layout.help(sms_keywords(app[ENGINE].registry.entries), language, refused.key)


@dataclass(frozen=True, slots=True)
class ServiceNumbers:
    """`sms.service_numbers`, normalised once when the app is built (a leading `+` does
    not matter), not for every message; none: every number is served."""

    numbers: frozenset[str] = frozenset()

    @classmethod
    def from_settings(cls, settings: SmsSettings) -> ServiceNumbers:
        return cls(frozenset(n.lstrip("+") for n in settings.service_numbers))

    def serves(self, receiver: str) -> bool:
        return not self.numbers or receiver.lstrip("+") in self.numbers


SERVICE_NUMBERS = web.AppKey("SMS_SERVICE_NUMBERS", ServiceNumbers)


def sms_keywords(table: EntryTable) -> list[str]:
    """The first SMS keyword of each entry (flow and state), as written, in flow and file
    order: the help names one keyword per service, so it stays one SMS as services grow
    (every alias still works)."""
    first: dict[tuple[str, str], str] = {}
    for channel, pattern, flow, state in table.rows():
        if channel == CHANNEL:
            first.setdefault((flow, state), pattern)
    return list(first.values())


async def answer(app: web.Application, sms: IncomingSms, layout: SmsLayout) -> SmsAnswer:
    """The reply to one incoming message (see the module docstring for the cases)."""
    settings = app[SETTINGS]
    engine = app[ENGINE]
    store = app[SESSIONS]
    pseudonym = app[PSEUDONYM](sms.sender)
    key = thread_key(settings.env, sms.receiver, pseudonym)
    sub_key = subscriber_key(settings.env, pseudonym)
    raw, prefs = await store.load(key, sub_key)
    thread = Thread.loads(raw)
    message_id = sms.message_id
    if thread is not None and message_id is not None and message_id in thread.ids:
        return SmsAnswer(None, "duplicate")

    text = unicodedata.normalize("NFKC", sms.text).strip()
    table = engine.registry.entries
    keyword = not table.rows() or table.resolve(CHANNEL, text) is not None
    if keyword and text:
        seed = message_id if message_id is not None else uuid.uuid4().hex
        session = f"{_UNSAFE.sub('', sms.receiver)[:24]}.{pseudonym}.{_digest(seed)}"
        thread = Thread(session=session, entry=text, ended=False, ids=thread.ids if thread else [])
        event = ChannelEvent(
            channel=CHANNEL,
            dialect=sms.dialect,
            session_id=session,
            subscriber=sms.sender,
            kind="start",
            entry=text,
            request_id=message_id,
        )
        outcome = "started"
    elif thread is not None and not thread.ended:
        event = ChannelEvent(
            channel=CHANNEL,
            dialect=sms.dialect,
            session_id=thread.session,
            subscriber=sms.sender,
            kind="input",
            text=text,
            entry=thread.entry,
            request_id=message_id,
        )
        outcome = "continued"
    else:
        language = prefs.get("lang", "")
        if language not in settings.languages:
            language = settings.default_language
        return SmsAnswer(layout.help(sms_keywords(table), language), "help")

    _, reply = await take_turn(app, event, layout.lay_out)
    thread.saw(message_id)
    thread.ended = reply.ends
    await store.save(key, thread.dumps(), settings.sms.session_ttl, sub_key, None)
    return SmsAnswer(reply, outcome)
