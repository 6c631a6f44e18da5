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
from functools import lru_cache

from yarl import URL

from hotline.i18n.catalog import CatalogSet
from hotline.i18n.speech import SpeechFormatter, spoken_key
from hotline.screen import PromptPart, Screen
from hotline.values import Text
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
_MEMO_SIZE = 512


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
        # Static clips repeat on every call: seal each once per worker.
        self.seal: Callable[[ClipSpec], str] = lru_cache(maxsize=4096)(sealer.seal)

    def spec(self, text: str, language: str) -> ClipSpec:
        voice = self.voices.get(language) or self.voices.get(self.catalogs.default, "en-us")
        return ClipSpec(text.strip(), voice, self.rate, self.audio_format)

    def part_texts(self, part: PromptPart, language: str) -> list[tuple[str, bool]]:
        return fragments(self.catalogs, part, language, self.formatter)

    def option_part(self, label: PromptPart, key: str, language: str) -> PromptPart:
        label_text = self.catalogs[language].render(label, self.formatter)
        return PromptPart(
            KEY_OPTION, {"label": Text(label_text), "key": Text(spoken_key(key, language))}
        )

    def sentences(self, screen: Screen, agent: bool) -> list[tuple[str, bool]]:
        """Everything this screen says, in order, as `(text, dynamic)` pieces."""
        language = screen.language
        parts: list[PromptPart] = []
        if screen.notice is not None:
            parts.append(screen.notice)
        parts.extend(screen.parts)
        if not screen.ends:
            for option in screen.options:
                parts.append(self.option_part(option.label, option.key, language))
            if agent:
                parts.append(self.option_part(PromptPart(KEY_AGENT), AGENT_KEY, language))
            if screen.expects_input:
                parts.append(PromptPart(KEY_REPEAT))
        pieces: list[tuple[str, bool]] = []
        for part in parts:
            pieces.extend(self.part_texts(part, language))
        return pieces

    def clips(self, pieces: list[tuple[str, bool]], language: str, prefix: str) -> tuple[Clip, ...]:
        out = []
        for text, dynamic in pieces:
            spec = self.spec(text, language)
            out.append(Clip(spec, f"{prefix}{self.seal(spec)}.wav", dynamic))
        return tuple(out)


class VoiceLayout:
    """The engine's `ChannelLayout` for one request (URLs depend on the host asked)."""

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
        # Menus and value-free screens repeat on every call: plan and write them once.
        self._plans: dict[tuple[object, ...], VoicePlan] = {}
        self._documents: dict[tuple[object, ...], str] = {}
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

    @staticmethod
    def _static_key(screen: Screen) -> tuple[object, ...] | None:
        """A hashable key for a screen without values (None if it has any)."""
        if any(part.values for part in screen.parts):
            return None
        if screen.notice is not None and screen.notice.values:
            return None
        if any(option.label.values for option in screen.options):
            return None
        return (
            screen.state,
            screen.language,
            tuple(part.key for part in screen.parts),
            screen.notice.key if screen.notice else None,
            tuple((option.key, option.label.key) for option in screen.options),
            screen.ends,
            screen.expects_input,
        )

    def plan(self, screen: Screen) -> VoicePlan:
        last = self._last
        if last is not None and last[0] is screen:
            return last[1]
        key = self._static_key(screen)
        if key is None:
            plan = self._plan(screen)
        else:
            cached = self._plans.get(key)
            if cached is None:
                if len(self._plans) >= _MEMO_SIZE:
                    self._plans.clear()
                cached = self._plans[key] = self._plan(screen)
            plan = cached
        self._last = (screen, plan)
        return plan

    def _plan(self, screen: Screen) -> VoicePlan:
        agent = self.offers_agent(screen)
        pieces = self.speaker.sentences(screen, agent)
        clips = self.speaker.clips(pieces, screen.language, self.audio_prefix)
        if screen.ends:
            return VoicePlan(clips)
        action = self.action_url
        if agent:
            # Marks the main menu's Gather so `0` there can dial without a session read.
            action = action.update_query({AGENT_PARAM: screen.language})
        keys = [option.key for option in screen.options]
        single = screen.options and all(len(key) == 1 for key in keys)
        gather = Gather(
            action=str(action),
            timeout_url=str(self.action_url.update_query(timeout="1")),
            timeout=self.gather_timeout,
            num_digits=1 if single else None,
        )
        return VoicePlan(clips, gather)

    def transfer(self, language: str, number: str) -> VoicePlan:
        """Tell the caller they are being connected, then dial the agent."""
        pieces = self.speaker.part_texts(PromptPart(KEY_TRANSFER), language)
        return VoicePlan(self.speaker.clips(pieces, language, self.audio_prefix), dial=number)

    def render(self, screen: Screen) -> str:
        key = self._static_key(screen)
        if key is None:
            return self.write(self.plan(screen))
        document = self._documents.get(key)
        if document is None:
            if len(self._documents) >= _MEMO_SIZE:
                self._documents.clear()
            document = self._documents[key] = self.write(self.plan(screen))
        return document
