"""How `hotline flows check` measures USSD screens: by the renderer's own budget.

An option line is never split (`ussd.render`), so it must fit a page beside the least
the page can carry: the `98` more line of its language, which pagination never sheds.
Measured as the renderer measures (`ussd.budget`: GSM-7 septets, extension characters
such as `€` or `[` costing two, or UTF-16 units once one character is outside GSM-7)
against the configured `ussd.gsm7_limit`/`ussd.ucs2_limit` less `PREFIX_RESERVE` for
`CON `. Placeholders are left out: their values are not known before a call.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

from hotline.base.config import Settings
from hotline.flow.screen import PromptPart
from hotline.i18n.catalog import Catalog, CatalogSet
from hotline.i18n.text import TextFormatter
from ussd.budget import Limits, cost, encoding_of
from ussd.render import NAV_KEYS, PREFIX_RESERVE

__all__ = ["UssdScreenCheck"]

_MORE_KEY = NAV_KEYS[0]  # `ussd.more`: "98.更多"
_UNITS = {"gsm7": "GSM-7 septets", "ucs2": "UCS-2 units"}


@dataclass(frozen=True, slots=True)
class UssdScreenCheck:
    """A `ScreenCheck` (`hotline.flow.check`) with the configured USSD limits."""

    limits: Limits
    more: Mapping[str, str]  # catalog language → its rendered `98` line

    @classmethod
    def from_settings(cls, catalogs: CatalogSet, settings: Settings) -> UssdScreenCheck:
        formatter = TextFormatter()
        more = {
            catalog.language: catalog.render(PromptPart(_MORE_KEY), formatter)
            for catalog in catalogs.catalogs.values()
            if _MORE_KEY in catalog  # else `flows check` reports it missing
        }
        return cls(Limits(settings.ussd.gsm7_limit, settings.ussd.ucs2_limit), more)

    def option(self, line: str, catalog: Catalog) -> str | None:
        more = self.more.get(catalog.language, "")
        nav = f"\n{more}" if more else ""
        encoding = encoding_of(line + nav)
        limit = self.limits.of(encoding)
        room = limit - PREFIX_RESERVE - cost(nav, encoding)
        used = cost(line, encoding)
        if used <= room:
            return None
        kept = f"less {PREFIX_RESERVE} for `CON `"
        if more:
            kept += f" and {cost(nav, encoding)} for the `{more}` line"
        return (
            f"{used} characters, over the {room} a USSD screen has for it "
            f"({limit} {_UNITS[encoding]} {kept})"
        )
