"""SMS layout: a channel-neutral screen as the text of one SMS (of one or more parts).

The text is, in order: the notice (e.g. "输入有误，请重新选择。") if any, the prompt
sentences run together (Chinese sentences carry their own punctuation; other languages
get a space between sentences), then for a menu the options as a numbered list, one per
line (`1.话费余额`), and the `sms.reply_hint` line; last the signature (`【hotline】`,
`sms.signature`, per language `sms.signatures`), which operators require on every SMS.

An SMS does not paginate: the whole screen is one message, at most `max_parts` parts
(`sms.segments`). A screen that would need more is shortened with an ellipsis before the
signature (`flows check` refuses SMS wording that can get there).
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass

from hotline.base.config import SmsSettings
from hotline.base.values import Text
from hotline.flow.screen import PromptPart, Screen
from hotline.i18n.catalog import CatalogSet, ValueFormatter
from hotline.i18n.text import TextFormatter
from sms.segments import DEFAULT_MAX_PARTS, Segments, fit, segment

__all__ = [
    "HELP_KEY",
    "REPLY_HINT_KEY",
    "SMS_PROMPTS",
    "TOO_LONG_KEY",
    "UNREADABLE_KEY",
    "SmsLayout",
    "SmsText",
]

REPLY_HINT_KEY = "sms.reply_hint"
HELP_KEY = "sms.help"
#: An MO longer than `sms.max_text_chars`: the subscriber is told, with the keywords.
TOO_LONG_KEY = "sms.too_long"
#: An MO hotline cannot read (unknown coding, a broken header): told, with the keywords.
UNREADABLE_KEY = "sms.unreadable"
#: Catalog keys the SMS channel says by itself; required in every language.
SMS_PROMPTS = (REPLY_HINT_KEY, HELP_KEY, TOO_LONG_KEY, UNREADABLE_KEY)


@dataclass(frozen=True, slots=True)
class SmsText:
    """One SMS as it will be sent: its text, parts and encoding, and whether the
    conversation ends with it (a menu waits for a reply digit)."""

    text: str
    segments: Segments
    ends: bool = True

    @property
    def pages(self) -> int:
        """An SMS screen is one page whatever its parts (`Engine.commit`)."""
        return 1


def _is_zh(language: str) -> bool:
    return language.lower().startswith("zh")


class SmsLayout:
    """SMS text of screens and messages; built once at startup, pure and reentrant."""

    channel = "sms"

    def __init__(
        self,
        catalogs: CatalogSet,
        *,
        signature: str = "【hotline】",
        signatures: Mapping[str, str] | None = None,
        max_parts: int = DEFAULT_MAX_PARTS,
        formatter: ValueFormatter | None = None,
    ) -> None:
        self.catalogs = catalogs
        self.signature = signature
        self.signatures = dict(signatures or {})
        self.max_parts = max_parts
        self._formatter = formatter or TextFormatter()

    @classmethod
    def from_settings(cls, catalogs: CatalogSet, settings: SmsSettings) -> SmsLayout:
        return cls(
            catalogs,
            signature=settings.signature,
            signatures=settings.signatures,
            max_parts=settings.max_parts,
        )

    # ------------------------------------------------------------------ public

    def lay_out(self, screen: Screen) -> SmsText:
        """The SMS of a screen."""
        language = self._language(screen.language)
        return self._finish(self._body(screen, language), language, ends=screen.ends)

    def measure(self, screen: Screen) -> Segments:
        """The parts a screen's SMS takes before any shortening (`flows check`)."""
        language = self._language(screen.language)
        return segment(self._body(screen, language) + self.signature_of(language))

    def _body(self, screen: Screen, language: str) -> str:
        lines: list[str] = []
        sentences = [self._say(screen.notice, language)] if screen.notice else []
        sentences += [self._say(part, language) for part in screen.parts]
        paragraph = self._join(sentences, language)
        if paragraph:
            lines.append(paragraph)
        for option in screen.options:
            lines.append(f"{option.key}.{self._say(option.label, language)}")
        if screen.options:
            lines.append(self._say(PromptPart(REPLY_HINT_KEY), language))
        return "\n".join(lines)

    def message(self, part: PromptPart, language: str) -> SmsText:
        """One catalog sentence as an SMS of its own (the outbox's messages)."""
        language = self._language(language)
        return self._finish(self._say(part, language), language, ends=True)

    def help(self, keywords: Iterable[str], language: str, key: str = HELP_KEY) -> SmsText:
        """The short help an unknown keyword gets (or, with `key`, a refused message:
        `TOO_LONG_KEY`, `UNREADABLE_KEY`): the keywords there are."""
        language = self._language(language)
        separator = "、" if _is_zh(language) else ", "
        listed = separator.join(dict.fromkeys(keywords))
        return self.message(PromptPart(key, {"keywords": Text(listed)}), language)

    def signature_of(self, language: str) -> str:
        return self.signatures.get(language, self.signature)

    # ----------------------------------------------------------------- private

    def _language(self, language: str) -> str:
        return language if language in self.catalogs.languages else self.catalogs.default

    def _say(self, part: PromptPart, language: str) -> str:
        return self.catalogs[language].render(part, self._formatter).strip()

    @staticmethod
    def _join(sentences: list[str], language: str) -> str:
        said = [s for s in sentences if s]
        return ("" if _is_zh(language) else " ").join(said)

    def _finish(self, body: str, language: str, *, ends: bool) -> SmsText:
        text = fit(body, self.signature_of(language), self.max_parts)
        return SmsText(text, segment(text), ends)
