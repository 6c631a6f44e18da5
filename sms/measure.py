"""How `hotline flows check` measures SMS screens: whole, by the layout's own rules.

An SMS does not page: a screen is one message of at most `sms.max_parts` parts, and a
longer one is cut with `…` when it is sent (`sms.render`). So every state an SMS
keyword reaches is laid out at its widest (`hotline.flow.widest`: every part, every
option, the invalid-choice notice, placeholders at their widest) exactly as
`SmsLayout.lay_out` would, signature and reply hint included, and refused
(`screen-too-long`) when it would need more parts than allowed. An option line alone is
never the problem (the message has no page to fit it on): `option` answers None.
"""

from __future__ import annotations

from dataclasses import dataclass

from hotline.base.config import Settings
from hotline.flow.screen import Screen
from hotline.i18n.catalog import Catalog, CatalogSet
from sms.render import SmsLayout
from sms.segments import units

__all__ = ["SmsScreenCheck"]

_UNITS = {"gsm7": "GSM-7 septets", "ucs2": "UCS-2 units"}


@dataclass(frozen=True, slots=True)
class SmsScreenCheck:
    """A `ScreenCheck` and `WholeScreenCheck` (`hotline.flow.check`) for SMS."""

    layout: SmsLayout
    channel: str = "sms"

    @classmethod
    def from_settings(cls, catalogs: CatalogSet, settings: Settings) -> SmsScreenCheck:
        return cls(SmsLayout.from_settings(catalogs, settings.sms))

    def option(self, line: str, catalog: Catalog) -> str | None:
        return None

    def screen(self, screen: Screen, catalog: Catalog) -> str | None:
        segments = self.layout.measure(screen)
        cap = self.layout.max_parts
        if segments.count <= cap:
            return None
        used = units(segments.text, segments.encoding)
        return (
            f"{segments.count} SMS parts at its widest ({used} {_UNITS[segments.encoding]}), "
            f"over the {cap} allowed (sms.max_parts)"
        )
