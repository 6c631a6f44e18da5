"""Every static clip of every flow and language, and rendering them ahead of calls.

Used by `hotline prompts build` and by the server's background warm-up. The set is
computed by speaking each waiting state of each flow the way a call would (menus with
their options, repeat hint and agent option; end states) with no values, plus every
catalog sentence (notices, errors, the engine's own prompts) — keeping only the fixed
pieces, which are exactly the clips a call asks for.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable, Iterable

from hotline.base.config import Settings
from hotline.base.metrics import Metrics
from hotline.flow.model import EndState, Flow, InputState, MenuState
from hotline.flow.screen import Option, PromptPart, Screen
from hotline.i18n.catalog import CatalogSet
from ivr.audio import AudioCache
from ivr.clips import ClipSealer, ClipSpec
from ivr.render import KEY_REPEAT, Speaker
from ivr.tts import SpeechService, Synthesizer, TtsError, voice_for

__all__ = [
    "FIRST_KEYS",
    "WarmReport",
    "speaker_from_settings",
    "speech_from_settings",
    "static_specs",
    "warm",
]

log = logging.getLogger(__name__)

#: Rendered first: what a caller hears when anything goes wrong, then goodbye.
FIRST_KEYS = ("error.busy", "common.goodbye", "nav.invalid")


def speaker_from_settings(settings: Settings, catalogs: CatalogSet) -> Speaker:
    """The speech settings every worker and `prompts build` must share (same clip keys)."""
    ivr = settings.ivr
    voices = {
        lang: voice_for(lang, ivr.voices, ivr.tts_system_espeak) for lang in settings.languages
    }
    return Speaker(
        catalogs=catalogs,
        sealer=ClipSealer(settings.pseudonym_secret.get_secret_value()),
        voices=voices,
        rate=ivr.tts_rate,
        audio_format=ivr.audio_format,
    )


def speech_from_settings(settings: Settings, metrics: Metrics | None = None) -> SpeechService:
    ivr = settings.ivr
    synthesizer = Synthesizer(timeout=ivr.tts_timeout, system_espeak=ivr.tts_system_espeak)
    return SpeechService(AudioCache(ivr.audio_dir), synthesizer, metrics)


def _screens(flow: Flow, language: str) -> Iterable[Screen]:
    for name, state in flow.states.items():
        if isinstance(state, MenuState):
            parts = tuple(PromptPart(ref.key) for ref in state.prompt)
            options = tuple(Option(o.key, PromptPart(o.label)) for o in state.options)
            yield Screen(name, language, parts, options, expects_input=True)
        elif isinstance(state, InputState):
            parts = tuple(PromptPart(ref.key) for ref in state.prompt)
            yield Screen(name, language, parts, expects_input=True, max_input=state.max_length)
        elif isinstance(state, EndState):
            parts = tuple(PromptPart(ref.key) for ref in state.prompt)
            after = flow.after_result if state.after_result is None else state.after_result
            yield Screen(name, language, parts, ends=True, after_result=after)


def static_specs(speaker: Speaker, flows: Iterable[Flow]) -> list[ClipSpec]:
    """Every fixed clip, most important first, without duplicates."""
    ordered: dict[str, ClipSpec] = {}
    flows = list(flows)

    def add(pieces: list[tuple[str, bool, bool]], language: str) -> None:
        """The fixed clips of one sentence, cut (and joined) exactly as a call cuts them."""
        for text, dynamic, joins in pieces:
            if not dynamic:
                spec = speaker.spec(text, language, joins)
                ordered.setdefault(spec.digest, spec)

    for language in speaker.catalogs.languages:
        for key in FIRST_KEYS:
            if key in speaker.catalogs[language]:
                add(speaker.part_pieces(PromptPart(key), language), language)
    for language in speaker.catalogs.languages:
        for flow in flows:
            for screen in _screens(flow, language):
                for part in speaker.spoken_parts(screen):
                    add(speaker.part_pieces(part, language), language)
        for key in speaker.catalogs[language].sentences:
            if key == KEY_REPEAT or key.startswith(("voice.option", "ussd.")):
                continue  # spoken whole above, or another channel's wording
            add(speaker.part_pieces(PromptPart(key), language), language)
    return list(ordered.values())


class WarmReport:
    """Counts of one warm-up or build run."""

    def __init__(self, total: int) -> None:
        self.total = total
        self.rendered = 0
        self.cached = 0
        self.failed = 0


async def warm(
    service: SpeechService,
    specs: list[ClipSpec],
    progress: Callable[[ClipSpec], None] | None = None,
) -> WarmReport:
    """Render whatever is missing, one clip at a time (calls can still get the engine)."""
    report = WarmReport(len(specs))
    for spec in specs:
        if service.has(spec):
            report.cached += 1
        else:
            try:
                await service.ensure(spec)
                report.rendered += 1
            except TtsError as exc:
                report.failed += 1
                log.warning("prompt clip failed to render: %s", exc)
        if progress is not None:
            progress(spec)
        await asyncio.sleep(0)
    return report
