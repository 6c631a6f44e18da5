"""Screens as voice: which sentences are spoken, cut into cacheable clips.

A screen is spoken as: the notice ("invalid choice"), the prompt parts, then one
sentence per option (`voice.option`: "话费余额，请按一。"), on a free-input screen how to
finish (`voice.finish`: "输入完毕请按井号键。"), and how to repeat (`voice.repeat`). A
free-input screen gathers up to its `max_input` keys and finishes by itself there, or
earlier on `#`. A flow's result (`Screen.after_result`) is followed by the offer to hear
it again or go to the main menu (`voice.after_result`: "重听请按星号键，返回主菜单请按零。")
and waits for a key — the engine says goodbye after the flow's `max_no_input` silences;
any other ending screen hangs up once spoken; an ending screen that hands the call over (`Screen.transfer`, set by
a flow's `call.transfer`) dials the number once it is spoken.

Every sentence with a value (money, volume, minutes, count, date, time) is cut at its
placeholders: the fixed text around the value is a static clip rendered ahead of time
(`hotline prompts build`), only the value's words are a new clip. Labels and keys
(`text` placeholders) are static, so a menu is entirely pre-rendered. Every clip of a
sentence but its last `joins` the next (`ClipSpec.joins`): its trailing silence is
trimmed, so the value follows the fixed text without an audible gap.

`VoiceLayout` lays a screen out after the engine's step: sync and pure, it computes clip
URLs (sealed keys, see `ivr.clips`) and lets the dialect write the XML document.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass

from yarl import URL

from hotline.base.values import Text
from hotline.flow.screen import PromptPart, Screen
from hotline.i18n.catalog import CatalogSet
from hotline.i18n.speech import SpeechFormatter, spoken_key
from ivr.audio import AudioFormat
from ivr.clips import ClipSealer, ClipSpec

__all__ = [
    "FINISH_KEY",
    "KEY_AFTER_RESULT",
    "KEY_AGENT",
    "KEY_FINISH",
    "KEY_OPTION",
    "KEY_REPEAT",
    "KEY_TRANSFER",
    "VOICE_PROMPTS",
    "Clip",
    "Gather",
    "Speaker",
    "VoiceLayout",
    "VoicePlan",
    "VoiceReply",
    "fragments",
    "joined_fragments",
]

KEY_OPTION = "voice.option"
KEY_AGENT = "voice.agent"
KEY_REPEAT = "voice.repeat"
KEY_TRANSFER = "voice.transfer"
KEY_FINISH = "voice.finish"
KEY_AFTER_RESULT = "voice.after_result"
FINISH_KEY = "#"
#: Catalog keys the voice channel itself speaks; every language must have them.
#: Keys every catalog must have for voice calls (`hotline flows check` requires them).
VOICE_PROMPTS = (KEY_OPTION, KEY_AGENT, KEY_REPEAT, KEY_TRANSFER, KEY_FINISH, KEY_AFTER_RESULT)
_SEALED_SIZE = 8192
_FIXED_SIZE = 4096  # fixed sentences kept: catalog keys × languages × option keys


@dataclass(frozen=True, slots=True)
class Clip:
    """One `<Play>`: what is spoken and where the platform fetches it."""

    spec: ClipSpec
    url: str
    dynamic: bool = False


@dataclass(frozen=True, slots=True)
class Gather:
    """Collect keys: where to post them, how many, how long to wait, which key finishes."""

    action: str
    timeout_url: str
    timeout: int
    num_digits: int | None
    finish_on_key: str | None = None


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
    return [
        (text, dynamic)
        for text, dynamic, _ in joined_fragments(catalogs, part, language, formatter)
    ]


def joined_fragments(
    catalogs: CatalogSet, part: PromptPart, language: str, formatter: SpeechFormatter
) -> list[tuple[str, bool, bool]]:
    """`fragments` with a third flag: the piece `joins` the next piece of its sentence.

    A piece joins when a value follows it — even a value without words (prompt
    enumeration passes none), so warm-up and calls cut the same clips.
    """
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
    found: list[tuple[str, bool, bool]] = []
    for index, (text, dynamic) in enumerate(merged):
        if _speakable(text):
            joins = any(later or _speakable(rest) for rest, later in merged[index + 1 :])
            found.append((text, dynamic, joins))
    return found


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
        self.catalogs = catalogs.for_channel("voice")  # a key's `voice:` wording, if any
        self.sealer = sealer
        self.voices = dict(voices)
        self.rate = rate
        self.audio_format: AudioFormat = audio_format
        self.formatter = formatter or SpeechFormatter()
        # (text, language) → (spec, sealed key). Clips repeat on every call: build each
        # spec (a sha256) and seal it (AES-SIV) once per worker (measured: a balance
        # screen 78 µs without, 17 µs with; the fixed text around a value is sealed again).
        self._sealed: dict[tuple[str, str, bool], tuple[ClipSpec, str]] = {}
        # Menu options are the same sentence on every call: (label key, key, language).
        self._options: dict[tuple[str, str, str], PromptPart] = {}

    def spec(self, text: str, language: str, joins: bool = False) -> ClipSpec:
        voice = self.voices.get(language) or self.voices.get(self.catalogs.default, "en-us")
        return ClipSpec(text.strip(), voice, self.rate, self.audio_format, joins)

    def sealed(self, text: str, language: str, joins: bool = False) -> tuple[ClipSpec, str]:
        """The clip spec of a piece of text and its URL key (remembered, bounded)."""
        memo = (text, language, joins)
        found = self._sealed.get(memo)
        if found is None:
            spec = self.spec(text, language, joins)
            if len(self._sealed) >= _SEALED_SIZE:
                self._sealed.clear()  # bounded: value clips are unbounded over time
            found = self._sealed[memo] = (spec, self.sealer.seal(spec))
        return found

    def part_texts(self, part: PromptPart, language: str) -> list[tuple[str, bool]]:
        return fragments(self.catalogs, part, language, self.formatter)

    def part_pieces(self, part: PromptPart, language: str) -> list[tuple[str, bool, bool]]:
        """`(text, dynamic, joins)` pieces of one sentence (`joined_fragments`)."""
        return joined_fragments(self.catalogs, part, language, self.formatter)

    def option_part(self, label: PromptPart, key: str, language: str) -> PromptPart:
        memo = (label.key, key, language) if not label.values else None
        if memo is not None:
            found = self._options.get(memo)
            if found is not None:
                return found
        label_text = self.catalogs[language].render(label, self.formatter)
        part = PromptPart(
            KEY_OPTION, {"label": Text(label_text), "key": Text(spoken_key(key, language))}
        )
        if memo is not None:
            if len(self._options) >= _FIXED_SIZE:
                self._options.clear()
            self._options[memo] = part
        return part

    def spoken_parts(self, screen: Screen) -> list[PromptPart]:
        """The sentences this screen says, in order (each is cut into clips separately)."""
        language = screen.language
        parts: list[PromptPart] = []
        if screen.notice is not None:
            parts.append(screen.notice)
        parts.extend(screen.parts)
        if not screen.ends:
            for choice in screen.options:
                parts.append(self.option_part(choice.label, choice.key, language))
            if screen.max_input is not None:
                parts.append(PromptPart(KEY_FINISH))
            if screen.expects_input:
                parts.append(PromptPart(KEY_REPEAT))
        elif screen.after_result:
            parts.append(PromptPart(KEY_AFTER_RESULT))
        return parts

    def sentences(self, screen: Screen) -> list[tuple[str, bool]]:
        """Everything this screen says, in order, as `(text, dynamic)` pieces."""
        pieces: list[tuple[str, bool]] = []
        for part in self.spoken_parts(screen):
            pieces.extend(self.part_texts(part, screen.language))
        return pieces

    def clips(
        self, pieces: list[tuple[str, bool, bool]], language: str, prefix: str
    ) -> tuple[Clip, ...]:
        """The clips of one sentence's `(text, dynamic, joins)` pieces."""
        out = []
        for text, dynamic, joins in pieces:
            spec, key = self.sealed(text, language, joins)
            out.append(Clip(spec, f"{prefix}{key}.wav", dynamic))
        return tuple(out)


@dataclass(frozen=True, slots=True)
class VoiceReply:
    """A screen laid out for a call: the plan (clips to make sure of) and its document."""

    plan: VoicePlan
    document: str
    pages: int = 1  # speech is not paginated: the whole screen is spoken

    @property
    def ends(self) -> bool:
        """Whether the call ends with this reply (nothing gathers keys after it)."""
        return self.plan.gather is None


class VoiceLayout:
    """Screens as voice documents for one dialect and public base URL; pure.

    The clips' URLs depend on the host the platform called (or the configured public
    base URL), so the routes keep one layout per dialect and host.
    """

    def __init__(
        self,
        *,
        speaker: Speaker,
        write: Callable[[VoicePlan], str],
        action_url: URL,
        audio_prefix: str,
        gather_timeout: int,
    ) -> None:
        self.speaker = speaker
        self.write = write
        self.action_url = action_url
        self.audio_prefix = audio_prefix
        self.gather_timeout = gather_timeout
        self._timeout_url = str(action_url.update_query(timeout="1"))
        self._fixed: dict[tuple[object, ...], tuple[Clip, ...]] = {}

    def lay_out(self, screen: Screen) -> VoiceReply:
        plan = self.plan(screen)
        return VoiceReply(plan, self.write(plan))

    def render(self, screen: Screen) -> str:
        """The XML document of a screen."""
        return self.write(self.plan(screen))

    def plan(self, screen: Screen) -> VoicePlan:
        language = screen.language
        clips: list[Clip] = []
        for part in self.speaker.spoken_parts(screen):
            clips.extend(self._clips(part, language))
        if screen.ends and not screen.after_result:
            return VoicePlan(tuple(clips), dial=screen.transfer)
        # After a result the keys are the flow's one-key `repeat` and `back`.
        single = screen.ends or (
            bool(screen.options) and all(len(option.key) == 1 for option in screen.options)
        )
        if screen.max_input is not None:
            gather = Gather(
                action=str(self.action_url),
                timeout_url=self._timeout_url,
                timeout=self.gather_timeout,
                num_digits=screen.max_input,
                finish_on_key=FINISH_KEY,
            )
            return VoicePlan(tuple(clips), gather)
        gather = Gather(
            action=str(self.action_url),
            timeout_url=self._timeout_url,
            timeout=self.gather_timeout,
            num_digits=1 if single else None,
        )
        return VoicePlan(tuple(clips), gather)

    def _clips(self, part: PromptPart, language: str) -> tuple[Clip, ...]:
        """A sentence's clips; a fixed sentence's (no values, or only `Text` labels and
        keys: menus, options, notices) are kept, since every call speaks them again
        (measured: laying out the Chinese main menu 150-230 µs without, 31-35 µs with)."""
        memo = _fixed(part, language)
        if memo is not None:
            found = self._fixed.get(memo)
            if found is not None:
                return found
        pieces = self.speaker.part_pieces(part, language)
        clips = self.speaker.clips(pieces, language, self.audio_prefix)
        if memo is not None:
            if len(self._fixed) >= _FIXED_SIZE:
                self._fixed.clear()  # flows reloaded many times over: start afresh
            self._fixed[memo] = clips
        return clips


def _fixed(part: PromptPart, language: str) -> tuple[object, ...] | None:
    """A key for a sentence that says the same every time, or None if it speaks values."""
    if not part.values:
        return (language, part.key)
    texts: list[tuple[str, str]] = []
    for name, value in part.values.items():
        if type(value) is not Text:
            return None
        texts.append((name, value.value))
    return (language, part.key, *texts)
