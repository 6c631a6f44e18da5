"""Screens as voice: which sentences are spoken, cut into cacheable clips.

A screen is spoken as: the notice ("invalid choice"), the prompt parts, then one
sentence per option (`voice.option`: "话费余额，请按一。"), the agent option on the
main menu when an agent number is configured, and how to repeat (`voice.repeat`).

Every sentence with a value (money, volume, minutes, count, date, time) is cut at its
placeholders: the fixed text around the value is a static clip rendered ahead of time
(`hotline prompts build`), only the value's words are a new clip. Labels and keys
(`text` placeholders) are static, so a menu is entirely pre-rendered.

`VoiceLayout` is the engine's `ChannelLayout`: sync and pure, it computes clip URLs
(sealed keys, see `ivr.clips`) and lets the dialect write the XML document.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import TypeVar

from yarl import URL

from hotline.base.values import Clock, Text
from hotline.flow.screen import PromptPart, Screen
from hotline.i18n.catalog import CatalogSet
from hotline.i18n.speech import SpeechFormatter, spoken_key
from ivr.audio import AudioFormat
from ivr.clips import ClipSealer, ClipSpec

__all__ = [
    "AGENT_KEY",
    "AGENT_PARAM",
    "KEY_AGENT",
    "KEY_OPTION",
    "KEY_REPEAT",
    "KEY_TRANSFER",
    "VOICE_PROMPTS",
    "Clip",
    "Gather",
    "Speaker",
    "VoiceLayout",
    "VoicePlan",
    "fragments",
]

KEY_OPTION = "voice.option"
KEY_AGENT = "voice.agent"
KEY_REPEAT = "voice.repeat"
KEY_TRANSFER = "voice.transfer"
#: Catalog keys the voice channel itself speaks; every language must have them.
#: Keys every catalog must have for voice calls (`hotline flows check` requires them).
VOICE_PROMPTS = (KEY_OPTION, KEY_AGENT, KEY_REPEAT, KEY_TRANSFER)
AGENT_KEY = "0"
AGENT_PARAM = "agent"
_MEMO_SIZE = 1024
_SEALED_SIZE = 8192
_PARTS_SIZE = 4096
_K = TypeVar("_K")
_V = TypeVar("_V")


@dataclass(frozen=True, slots=True)
class Clip:
    """One `<Play>`: what is spoken and where the platform fetches it."""

    spec: ClipSpec
    url: str
    dynamic: bool = False


@dataclass(frozen=True, slots=True)
class Gather:
    """Collect keys: where to post them, how many, how long to wait."""

    action: str
    timeout_url: str
    timeout: int
    num_digits: int | None


@dataclass(frozen=True, slots=True)
class VoicePlan:
    """What one reply does, independent of the platform's XML dialect."""

    clips: tuple[Clip, ...]
    gather: Gather | None = None
    dial: str | None = None


_LEADING = " \t,.;:!?，。；：！？、"


def _speakable(text: str) -> bool:
    return any(char.isalnum() for char in text)


def fragments(
    catalogs: CatalogSet, part: PromptPart, language: str, formatter: SpeechFormatter
) -> list[tuple[str, bool]]:
    """A catalog sentence as `(text, dynamic)` pieces; fixed text stays whole."""
    sentence = catalogs[language].sentences.get(part.key)
    if sentence is None:
        raise KeyError(f"{language}: no prompt {part.key!r}")
    out: list[tuple[str, bool]] = []
    for piece in sentence.pieces:
        if isinstance(piece, str):
            text, dynamic = piece, False
        else:
            name, kind = piece
            value = part.values.get(name)
            text = "" if value is None else formatter.format(value, language)
            dynamic = kind != "text"
        if not text and not dynamic:
            continue
        # A value never merges with fixed text, even when absent (prompt enumeration
        # passes no values and must cut sentences exactly where a call will).
        if out and not dynamic and not out[-1][1]:
            out[-1] = (out[-1][0] + text, False)
        else:
            out.append((text, dynamic))
    # Punctuation belongs to the clip it ends: ". Please top up." → "… fen." + "Please
    # top up."; punctuation-only pieces ("。") are folded into the clip before them.
    merged: list[tuple[str, bool]] = []
    for text, dynamic in out:
        lead = len(text) - len(text.lstrip(_LEADING))
        if lead and merged:
            merged[-1] = (merged[-1][0] + text[:lead].strip(), merged[-1][1])
            text = text[lead:]
        if not _speakable(text) and not dynamic:
            continue
        merged.append((text, dynamic))
    return [(text, dynamic) for text, dynamic in merged if _speakable(text)]


class Speaker:
    """Per-app speech settings: catalogs, voices, rate, format and the clip sealer."""

    def __init__(
        self,
        *,
        catalogs: CatalogSet,
        sealer: ClipSealer,
        voices: Mapping[str, str],
        rate: int,
        audio_format: AudioFormat = "pcm16",
        formatter: SpeechFormatter | None = None,
    ) -> None:
        self.catalogs = catalogs
        self.sealer = sealer
        self.voices = dict(voices)
        self.rate = rate
        self.audio_format: AudioFormat = audio_format
        self.formatter = formatter or SpeechFormatter()
        # (text, language) → (spec, sealed key). Clips repeat on every call: build each
        # spec (a sha256) and seal it (AES-SIV) once per worker — ~8 µs a clip (measured).
        self._sealed: dict[tuple[str, str], tuple[ClipSpec, str]] = {}

    def spec(self, text: str, language: str) -> ClipSpec:
        voice = self.voices.get(language) or self.voices.get(self.catalogs.default, "en-us")
        return ClipSpec(text.strip(), voice, self.rate, self.audio_format)

    def sealed(self, text: str, language: str) -> tuple[ClipSpec, str]:
        """The clip spec of a piece of text and its URL key (remembered, bounded)."""
        memo = (text, language)
        found = self._sealed.get(memo)
        if found is None:
            spec = self.spec(text, language)
            if len(self._sealed) >= _SEALED_SIZE:
                self._sealed.clear()  # bounded: value clips are unbounded over time
            found = self._sealed[memo] = (spec, self.sealer.seal(spec))
        return found

    def part_texts(self, part: PromptPart, language: str) -> list[tuple[str, bool]]:
        return fragments(self.catalogs, part, language, self.formatter)

    def option_part(self, label: PromptPart, key: str, language: str) -> PromptPart:
        label_text = self.catalogs[language].render(label, self.formatter)
        return PromptPart(
            KEY_OPTION, {"label": Text(label_text), "key": Text(spoken_key(key, language))}
        )

    def spoken_parts(
        self,
        screen: Screen,
        agent: bool,
        option_part: Callable[[PromptPart, str, str], PromptPart] | None = None,
    ) -> list[PromptPart]:
        """The sentences this screen says, in order (each is cut into clips separately)."""
        language = screen.language
        option = option_part or self.option_part
        parts: list[PromptPart] = []
        if screen.notice is not None:
            parts.append(screen.notice)
        parts.extend(screen.parts)
        if not screen.ends:
            for choice in screen.options:
                parts.append(option(choice.label, choice.key, language))
            if agent:
                parts.append(option(PromptPart(KEY_AGENT), AGENT_KEY, language))
            if screen.expects_input:
                parts.append(PromptPart(KEY_REPEAT))
        return parts

    def sentences(self, screen: Screen, agent: bool) -> list[tuple[str, bool]]:
        """Everything this screen says, in order, as `(text, dynamic)` pieces."""
        pieces: list[tuple[str, bool]] = []
        for part in self.spoken_parts(screen, agent):
            pieces.extend(self.part_texts(part, screen.language))
        return pieces

    def clips(self, pieces: list[tuple[str, bool]], language: str, prefix: str) -> tuple[Clip, ...]:
        out = []
        for text, dynamic in pieces:
            spec, key = self.sealed(text, language)
            out.append(Clip(spec, f"{prefix}{key}.wav", dynamic))
        return tuple(out)


class _Bounded(dict[_K, _V]):
    """A memo that empties itself when full (the keys of value screens are unbounded)."""

    def __init__(self, size: int) -> None:
        super().__init__()
        self.size = size

    def put(self, key: _K, value: _V) -> _V:
        if len(self) >= self.size:
            self.clear()
        self[key] = value
        return value


class VoiceLayout:
    """The engine's `ChannelLayout` for one request (URLs depend on the host asked).

    Plans, documents and stored replies are remembered per screen — the screen's state,
    language, sentence keys and the values those sentences speak — so a menu, and a
    balance asked again, cost dictionary lookups. `stored` is the layout to give the
    engine: its replies are compact (`reply`), `document` turns them into XML.
    """

    channel = "ivr"

    def __init__(
        self,
        *,
        speaker: Speaker,
        write: Callable[[VoicePlan], str],
        action_url: URL,
        audio_prefix: str,
        session_ttl: int,
        gather_timeout: int,
        root_state: str | None = None,
        agent_number: str | None = None,
    ) -> None:
        self.speaker = speaker
        self.write = write
        self.action_url = action_url
        self.audio_prefix = audio_prefix
        self.session_ttl = session_ttl
        self.gather_timeout = gather_timeout
        self.root_state = root_state
        self.agent_number = agent_number
        self.stored = StoredReplies(self)
        # Measured before these memos: ~40 µs to plan and ~20 µs to write a balance
        # screen per step. Bounded: the values spoken over time are unbounded.
        self._plans: _Bounded[tuple[object, ...], VoicePlan] = _Bounded(_MEMO_SIZE)
        self._documents: _Bounded[tuple[object, ...], str] = _Bounded(_MEMO_SIZE)
        self._replies: _Bounded[tuple[object, ...], str] = _Bounded(_MEMO_SIZE)
        self._expanded: _Bounded[str, str] = _Bounded(_MEMO_SIZE)
        self._part_clips: _Bounded[tuple[object, ...], tuple[Clip, ...]] = _Bounded(_PARTS_SIZE)
        self._option_parts: _Bounded[tuple[object, ...], PromptPart] = _Bounded(_PARTS_SIZE)
        self._spoken: dict[tuple[str, str], tuple[str, ...] | None] = {}
        self._gathers: dict[tuple[str | None, bool], Gather] = {}
        self._last: tuple[Screen, VoicePlan] | None = None

    def page_count(self, screen: Screen) -> int:
        return 1  # speech is not paginated: the whole screen is spoken

    def offers_agent(self, screen: Screen) -> bool:
        return bool(
            self.agent_number
            and not screen.ends
            and screen.options
            and screen.state == self.root_state
        )

    # ------------------------------------------------------------ memo keys

    def _part_key(self, language: str, part: PromptPart) -> tuple[object, ...] | None:
        """What decides a sentence's clips: its key and the values it speaks (or None).

        The engine hands every part all the call's values; only those the sentence
        names matter. Equal values are spoken alike, except a `Clock`: two equal
        instants in different zones read different hours, so those are not remembered.
        """
        values = part.values
        if not values:
            return (part.key,)
        try:
            names = self._spoken[(language, part.key)]
        except KeyError:
            sentence = self.speaker.catalogs[language].sentences.get(part.key)
            names = None if sentence is None else tuple(sentence.placeholders)
            self._spoken[(language, part.key)] = names
        if names is None:
            return None  # an unknown sentence: planning it raises the error
        spoken = tuple(values.get(name) for name in names)
        if any(type(value) is Clock for value in spoken):
            return None
        return (part.key, *spoken)

    def _screen_key(self, screen: Screen) -> tuple[object, ...] | None:
        """A hashable key for everything the screen says and does (None: not remembered)."""
        language = screen.language
        parts: list[object] = []
        for part in screen.parts:
            key = self._part_key(language, part)
            if key is None:
                return None
            parts.append(key)
        notice = None
        if screen.notice is not None:
            notice = self._part_key(language, screen.notice)
            if notice is None:
                return None
        options: list[object] = []
        for option in screen.options:
            key = self._part_key(language, option.label)
            if key is None:
                return None
            options.append((option.key, key))
        memo = (
            screen.state,
            language,
            tuple(parts),
            notice,
            tuple(options),
            screen.ends,
            screen.expects_input,
        )
        try:
            hash(memo)
        except TypeError:  # a value that cannot be a key: plan it every time
            return None
        return memo

    # ------------------------------------------------------------------ plans

    def plan(self, screen: Screen) -> VoicePlan:
        last = self._last
        if last is not None and last[0] is screen:
            return last[1]
        return self._plan_for(screen, self._screen_key(screen))

    def _plan_for(self, screen: Screen, key: tuple[object, ...] | None) -> VoicePlan:
        plan = None if key is None else self._plans.get(key)
        if plan is None:
            plan = self._plan(screen)
            if key is not None:
                self._plans.put(key, plan)
        self._last = (screen, plan)
        return plan

    def _plan(self, screen: Screen) -> VoicePlan:
        agent = self.offers_agent(screen)
        language = screen.language
        clips: list[Clip] = []
        for part in self.speaker.spoken_parts(screen, agent, self._option_part):
            clips.extend(self._clips(part, language))
        if screen.ends:
            return VoicePlan(tuple(clips))
        single = bool(screen.options) and all(len(option.key) == 1 for option in screen.options)
        return VoicePlan(tuple(clips), self._gather(language if agent else None, single))

    def _clips(self, part: PromptPart, language: str) -> tuple[Clip, ...]:
        """One sentence's clips (remembered per sentence, values spoken and language)."""
        key = self._part_key(language, part)
        memo = None if key is None else (language, *key)
        found = None if memo is None else self._part_clips.get(memo)
        if found is None:
            pieces = self.speaker.part_texts(part, language)
            found = self.speaker.clips(pieces, language, self.audio_prefix)
            if memo is not None:
                self._part_clips.put(memo, found)
        return found

    def _option_part(self, label: PromptPart, key: str, language: str) -> PromptPart:
        label_key = self._part_key(language, label)
        memo = None if label_key is None else (language, key, *label_key)
        found = None if memo is None else self._option_parts.get(memo)
        if found is None:
            found = self.speaker.option_part(label, key, language)
            if memo is not None:
                self._option_parts.put(memo, found)
        return found

    def _gather(self, agent_language: str | None, single: bool) -> Gather:
        gather = self._gathers.get((agent_language, single))
        if gather is None:
            action = self.action_url
            if agent_language is not None:
                # Marks the main menu's Gather so `0` there can dial without a session read.
                action = action.update_query({AGENT_PARAM: agent_language})
            gather = self._gathers[(agent_language, single)] = Gather(
                action=str(action),
                timeout_url=str(self.action_url.update_query(timeout="1")),
                timeout=self.gather_timeout,
                num_digits=1 if single else None,
            )
        return gather

    def transfer(self, language: str, number: str) -> VoicePlan:
        """Tell the caller they are being connected, then dial the agent."""
        return VoicePlan(self._clips(PromptPart(KEY_TRANSFER), language), dial=number)

    # -------------------------------------------------------------- documents

    def render(self, screen: Screen) -> str:
        """The XML document of a screen."""
        return self._document_for(screen, self._screen_key(screen))

    def _document_for(self, screen: Screen, key: tuple[object, ...] | None) -> str:
        document = None if key is None else self._documents.get(key)
        if document is None:
            document = self.write(self._plan_for(screen, key))
            if key is not None:
                self._documents.put(key, document)
        return document

    def reply(self, screen: Screen) -> str:
        """The compact form of the screen's document that the session stores.

        The document itself is ~1.3 KB for a Chinese menu, ~2 KB in English, kept for an
        hour per call: the compact form is the language, the Gather's shape and the
        clips' texts (~250 bytes). Any worker turns it back into the identical document
        (`document`): a clip's URL key is a function of its text, voice and the secret.
        The texts are what the record's values already say, never a phone number.
        """
        key = self._screen_key(screen)
        reply = None if key is None else self._replies.get(key)
        if reply is None:
            plan = self._plan_for(screen, key)
            reply = _compact(plan, screen.language, self.offers_agent(screen))
            document = self._document_for(screen, key)
            if reply is None:  # a text the compact form cannot carry: store the document
                reply = document
            else:
                self._expanded.put(reply, document)
            if key is not None:
                self._replies.put(key, reply)
        else:
            self._last = (screen, self._plan_for(screen, key))
        return reply

    def document(self, reply: str) -> str:
        """The XML document of a stored reply; raises `ValueError` for a corrupt one.

        A document stored as such (the fallback of `reply`, or a record written before
        replies were compact) is returned unchanged.
        """
        if not reply.startswith(_COMPACT):
            return reply
        document = self._expanded.get(reply)
        if document is None:
            document = self._expanded.put(reply, self.write(self._expand(reply)))
        return document

    def _expand(self, reply: str) -> VoicePlan:
        head, *texts = reply.split("\n")
        try:
            _, language, digits, agent = head.split(" ")
        except ValueError:
            raise ValueError("malformed stored voice reply") from None
        if digits not in ("-", "1", "*") or agent not in ("-", "a"):
            raise ValueError("malformed stored voice reply")
        clips = []
        for text in texts:
            spec, key = self.speaker.sealed(text, language)  # ValueError for a bad text
            clips.append(Clip(spec, f"{self.audio_prefix}{key}.wav"))
        if digits == "-":
            return VoicePlan(tuple(clips))
        gather = self._gather(language if agent == "a" else None, digits == "1")
        return VoicePlan(tuple(clips), gather)


_COMPACT = "~1 "


def _compact(plan: VoicePlan, language: str, agent: bool) -> str | None:
    """`~1 <language> <digits> <agent>` and one clip text per line (None: not possible)."""
    texts = [clip.spec.text for clip in plan.clips]
    if any("\n" in text for text in texts) or " " in language or "\n" in language:
        return None
    gather = plan.gather
    digits = "-" if gather is None else "1" if gather.num_digits == 1 else "*"
    return "\n".join([f"{_COMPACT}{language} {digits} {'a' if agent else '-'}", *texts])


class StoredReplies:
    """The `ChannelLayout` the voice routes give the engine: replies in compact form."""

    channel = "ivr"

    def __init__(self, layout: VoiceLayout) -> None:
        self.layout = layout
        self.session_ttl = layout.session_ttl

    def page_count(self, screen: Screen) -> int:
        return 1

    def render(self, screen: Screen) -> str:
        return self.layout.reply(screen)
