"""USSD text layout: a channel-neutral screen as pages of text within the USSD budget.

A page is, one item per line: the notice (e.g. "输入有误，请重新选择。") if any, the prompt
sentences, the options as `1.话费余额`, then one navigation line such as
`(2/3) 98.更多 0.上页 00.主页` built from the catalog keys `ussd.page`, `ussd.more`,
`ussd.back`, `ussd.prev` and `ussd.home`, each shown only when it means something here:

- `(2/3)` where this page is (`ussd.page`, `{page:int}`/`{pages:int}`): on every page of
  a screen of more than one page, the last included;
- `98` more: on every page but the last;
- `0` previous page on pages after the first, else `0` back when `screen.can_go_back`;
- `00` home when `screen.can_go_home`;
- nothing else on the last page of an ending screen that goes out as `END`.

Budget. Every page is measured whole, in the encoding that page ends up in (one Chinese
character makes it UCS-2), against the configured limits less `PREFIX_RESERVE` (4): the
wire body is `CON `/`END ` + page, and no source says whether gateways count the prefix,
so we budget as if they do (178 GSM-7 septets / 76 UCS-2 units with the defaults).

Pagination. A screen that does not fit becomes several pages; the notice repeats on each.
The page count is not known before the pages are cut, and the indicator takes room, so
the pages are cut for a total of 9 (then 99, …) and cut again with the real total: its
indicator is exactly as wide, so the pages come out the same.
An option line is never split; a sentence that fits a page of its own moves to the next
page whole; a longer one is broken only at a space, after CJK
punctuation or between two CJK ideographs (never inside `12.50元` or a date), preferring
a punctuation break up to six characters back to splitting a phrase. Only if a
single word cannot fit even an empty page is it cut between characters: over-budget is
worse than an ugly break, and `hotline flows check` rejects such prompts.

Ending screens. A long ending screen is paginated too: every page but the last is a
`CON` page with `98`. Its last page goes out as `CON` with `0.上页` (and `00.主页` where
it means something) when the screen is a flow's result (`screen.after_result`): the
subscriber can page back, and the session lives until they leave it (the handset's
cancel, or the gateway's session timeout). A closing sentence (an error, too many
invalid choices) or a flow with `after_result: false` ends on its last page (`END`, the
indicator kept). A screen of one page ends as it always did. `lay_out` says whether its
page ends the session; the engine learns it after the step (`Engine.commit`).

Speed. This runs on every request: text of sentences without placeholders is cached per
language, the pages of screens whose sentences have no placeholders are cached per
screen shape, and a screen that fits on one page is measured once.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Hashable
from dataclasses import dataclass
from functools import partial

from hotline.base.config import UssdSettings
from hotline.base.errors import FlowError
from hotline.base.values import Count
from hotline.flow.screen import PromptPart, Screen
from hotline.i18n.catalog import Catalog, CatalogSet, ValueFormatter
from hotline.i18n.text import TextFormatter
from ussd.budget import Limits, fits
from ussd.page import UssdPage

__all__ = ["NAV_KEYS", "PAGE_KEY", "PREFIX_RESERVE", "UssdLayout", "break_points", "page_mark"]

PREFIX_RESERVE = 4
NAV_KEYS = ("ussd.more", "ussd.back", "ussd.prev", "ussd.home")
#: Where a page is: `({page:int}/{pages:int})`; every catalog must have it.
PAGE_KEY = "ussd.page"
_CACHE_MAX = 4096
_PREFER_PUNCTUATION_WITHIN = 6

# Break after these (closing and pausing CJK punctuation), never before them.
_CJK_CLOSE = frozenset("，。、；：！？）」』》〉】…—,.;:!?)")
_CJK_OPEN = frozenset("（「『《〈【")
_IDEOGRAPH = re.compile(
    "[\u2e80-\u2fff\u3040-\u30ff\u3400-\u4dbf\u4e00-\u9fff\uf900-\ufaff\U00020000-\U0003ffff]"
)


def _is_ideograph(char: str) -> bool:
    return _IDEOGRAPH.match(char) is not None


def break_points(text: str) -> list[int]:
    """Indexes `k` where a line may break between `text[k-1]` and `text[k]`.

    A space before `k` (the space is dropped at the break), CJK punctuation before `k`
    unless more closing punctuation follows, an opening bracket at `k`, or two CJK
    ideographs around `k`.
    """
    points: list[int] = []
    for k in range(1, len(text)):
        before, after = text[k - 1], text[k]
        if after in _CJK_CLOSE or after == " ":
            continue
        if (
            before == " "
            or (before in _CJK_CLOSE and not before.isascii())
            or (after in _CJK_OPEN and before not in _CJK_OPEN)
            or (_is_ideograph(before) and _is_ideograph(after))
        ):
            points.append(k)
    return points


@dataclass(frozen=True, slots=True)
class _Nav:
    """The navigation entries of one language, already rendered."""

    more: str
    back: str
    prev: str
    home: str


#: A page before it is written out: header lines, content lines, navigation entries.
_Page = tuple[list[str], list[str], list[str]]


@dataclass(slots=True)
class _Unit:
    """One line of page content; options are never split."""

    text: str
    splittable: bool


def page_mark(catalog: Catalog, page: int, pages: int) -> str:
    """The page indicator, e.g. `(2/3)`, for page `page` (from 1) of `pages`."""
    part = PromptPart(PAGE_KEY, {"page": Count(page), "pages": Count(pages)})
    return catalog.render(part, TextFormatter())


def _compose(header: list[str], lines: list[str], footer: list[str]) -> str:
    nav = " ".join(footer)
    return "\n".join([*header, *lines, nav] if nav else [*header, *lines])


class UssdLayout:
    """USSD text layout of screens; built once at startup, pure and reentrant."""

    channel = "ussd"

    def __init__(
        self,
        catalogs: CatalogSet,
        limits: Limits | None = None,
        *,
        session_ttl: int = 180,
        reserve: int = PREFIX_RESERVE,
        formatter: ValueFormatter | None = None,
    ) -> None:
        self.catalogs = catalogs
        self.limits = limits or Limits()
        self.page_limits = self.limits.less(reserve)
        self.session_ttl = session_ttl
        self._formatter = formatter or TextFormatter()
        self._nav = {lang: self._nav_of(catalogs[lang]) for lang in catalogs.languages}
        # Sentences without placeholders render the same every time.
        self._static = {
            lang: frozenset(k for k, s in catalogs[lang].sentences.items() if not s.placeholders)
            for lang in catalogs.languages
        }
        self._languages = {lang: catalogs[lang].language for lang in catalogs.languages}
        self._default = catalogs[catalogs.default].language
        self._sentences = {lang: catalogs[lang].sentences for lang in catalogs.languages}
        self._texts: dict[tuple[str, str], str] = {}
        self._pages: dict[Hashable, tuple[str, ...]] = {}
        self._catalogs = {lang: catalogs[lang] for lang in catalogs.languages}

    @classmethod
    def from_settings(cls, catalogs: CatalogSet, settings: UssdSettings) -> UssdLayout:
        return cls(
            catalogs,
            Limits(settings.gsm7_limit, settings.ucs2_limit),
            session_ttl=settings.session_ttl,
        )

    @staticmethod
    def _nav_of(catalog: Catalog) -> _Nav:
        missing = [key for key in (*NAV_KEYS, PAGE_KEY) if key not in catalog]
        if missing:
            raise FlowError(catalog.path, 1, f"prompt {missing[0]!r} is missing (USSD navigation)")
        fmt = TextFormatter()
        more, back, prev, home = (catalog.render(PromptPart(k), fmt) for k in NAV_KEYS)
        return _Nav(more=more, back=back, prev=prev, home=home)

    # ------------------------------------------------------------------ public

    def lay_out(self, screen: Screen) -> UssdPage:
        """The page `screen.page` asks for (clamped), whether it ends, and the page count."""
        pages = self.pages(screen)
        last = len(pages) - 1
        number = min(max(screen.page, 0), last)
        ends = screen.ends and number == last and not (last > 0 and screen.after_result)
        return UssdPage(pages[number], ends, len(pages))

    def render(self, screen: Screen) -> str:
        """The text of the page `screen.page` asks for (clamped), without `CON `/`END `."""
        return self.lay_out(screen).text

    def pages(self, screen: Screen) -> tuple[str, ...]:
        """All pages of a screen, each within the budget."""
        lang = self._languages.get(screen.language, self._default)
        key = self._shape(screen, lang)
        pages = self._pages.get(key) if key is not None else None
        if pages is None:
            pages = self._paginate(screen, lang)
            if key is not None:
                if len(self._pages) >= _CACHE_MAX:
                    self._pages.clear()
                self._pages[key] = pages
        return pages

    # ----------------------------------------------------------------- private

    def _shape(self, screen: Screen, lang: str) -> Hashable | None:
        """A cache key if nothing on the screen depends on values, else None."""
        static = self._static[lang]
        for part in screen.parts:  # loops, not any(): this runs on every request
            if part.key not in static:
                return None
        for option in screen.options:
            if option.label.key not in static:
                return None
        notice = screen.notice
        if notice is not None and notice.key not in static:
            return None
        return (
            lang,
            tuple(part.key for part in screen.parts),
            tuple((option.key, option.label.key) for option in screen.options),
            notice.key if notice is not None else None,
            screen.ends,
            screen.after_result,
            screen.can_go_back,
            screen.can_go_home,
        )

    def _text(self, lang: str, part: PromptPart) -> str:
        cached = self._texts.get((lang, part.key))
        if cached is not None:
            return cached
        sentence = self._sentences[lang].get(part.key)
        if sentence is None:
            raise KeyError(f"{lang}: no prompt {part.key!r}")
        text = sentence.render(part.values, self._formatter, lang)
        if part.key in self._static[lang]:
            self._texts[(lang, part.key)] = text
        return text

    def _footer(
        self,
        nav: _Nav,
        screen: Screen,
        lang: str,
        page: int,
        last: bool,
        pages: int,
        mark: str | None = None,
    ) -> list[str]:
        """The navigation line's entries; with more than one page, the indicator first
        (`mark`, or page `page + 1` of `pages`)."""
        entries = []
        if pages > 1:
            entries.append(
                mark if mark is not None else page_mark(self._catalogs[lang], page + 1, pages)
            )
        if last and screen.ends and not (pages > 1 and screen.after_result):
            return entries
        if not last:
            entries.append(nav.more)
        if page > 0:
            entries.append(nav.prev)
        elif screen.can_go_back:
            entries.append(nav.back)
        if screen.can_go_home:
            entries.append(nav.home)
        return entries

    def _paginate(self, screen: Screen, lang: str) -> tuple[str, ...]:
        nav = self._nav[lang]
        text = self._text
        header = [] if screen.notice is None else [text(lang, screen.notice)]
        lines: list[str] = []
        for part in screen.parts:
            sentence = text(lang, part)
            if "\n" in sentence:
                lines.extend(line for line in sentence.split("\n") if line)
            elif sentence:
                lines.append(sentence)
        splittable = len(lines)  # sentence lines may be broken; option lines never
        for option in screen.options:
            lines.append(f"{option.key}.{text(lang, option.label)}")

        whole = _compose(header, lines, self._footer(nav, screen, lang, 0, True, 1))
        if fits(whole, self.page_limits):
            return (whole,)

        units = [_Unit(line, n < splittable) for n, line in enumerate(lines)]
        catalog = self._catalogs[lang]
        # Cut with room for the widest indicator of `width` digits — `(9/9)`, `(99/99)` —
        # until the page count fits that width; then each page gets its real `(n/N)`,
        # never wider than the room it was cut for.
        width = 1
        while True:
            widest = 10**width - 1
            room = page_mark(catalog, widest, widest)
            cut = self._cut(nav, screen, lang, header, units, room)
            if len(str(len(cut))) <= width:
                break
            width += 1
        total = len(cut)
        pages = []
        for number, (head, taken, foot) in enumerate(cut):
            if foot and foot[0] is room:
                foot = [page_mark(catalog, number + 1, total), *foot[1:]]
            pages.append(_compose(head, taken, foot))
        return tuple(pages)

    def _cut(
        self,
        nav: _Nav,
        screen: Screen,
        lang: str,
        header: list[str],
        units: list[_Unit],
        room: str,
    ) -> list[_Page]:
        """The pages of a many-page screen, each with `room` for its indicator."""
        pages: list[_Page] = []
        while True:
            number = len(pages)
            footer = self._footer(nav, screen, lang, number, True, 2, mark=room)
            last = self._last_page(header, units, footer)
            if last is not None:
                pages.append(last)
                return pages
            footer = self._footer(nav, screen, lang, number, False, 2, mark=room)
            page, units = self._fill(header, units, footer, kept=2)
            pages.append(page)

    def _last_page(self, header: list[str], units: list[_Unit], footer: list[str]) -> _Page | None:
        """The remaining units as the last page, if they fit on one."""
        lines = [u.text for u in units]
        if fits(_compose(header, lines, footer), self.page_limits):
            return header, lines, footer
        if lines:
            return None
        # Only the chrome is left (odd limits, a huge notice): shed it until it fits.
        shed: tuple[tuple[list[str], list[str]], ...] = (([], footer), ([], footer[:1]), ([], []))
        for head, foot in shed:
            if fits(_compose(head, [], foot), self.page_limits):
                return head, [], foot
        return [], [], []

    def _fill(
        self, header: list[str], units: list[_Unit], footer: list[str], kept: int = 1
    ) -> tuple[_Page, list[_Unit]]:
        """One non-final page: as many units as fit; returns the page and the rest.

        If the chrome leaves no room for the next unit, shed what can go — the notice,
        then all navigation but the first `kept` entries (the indicator and `98`), then
        the indicator too, keeping `98` (without it the other pages are unreachable) —
        before cutting anything between characters. So an option line that fits beside
        `98` is never split (what `flows check` measures, `ussd.measure`).
        """
        levels: tuple[tuple[list[str], list[str]], ...] = (
            (header, footer),
            ([], footer),
            ([], footer[:kept]),
            ([], footer[kept - 1 : kept]),
        )
        for cut in (False, True):
            for head, foot in levels:
                taken, rest = self._take(head, units, foot, cut=cut)
                if taken:
                    return (head, taken, foot), rest
        raise ValueError("USSD limits too small for even one character and the 98 line")

    def _take(
        self, head: list[str], units: list[_Unit], foot: list[str], *, cut: bool
    ) -> tuple[list[str], list[_Unit]]:
        limits = self.page_limits
        taken: list[str] = []
        rest = list(units)
        while rest:
            unit = rest[0]
            if fits(_compose(head, [*taken, unit.text], foot), limits):
                taken.append(unit.text)
                rest.pop(0)
                continue
            if taken and fits(_compose(head, [unit.text], foot), limits):
                break  # a sentence that fits whole on the next page is not broken here
            if unit.splittable or (cut and not taken):
                room = partial(_fits_after, head, tuple(taken), foot, limits)
                split = _split(unit.text, room, cut=cut and not taken)
                if split is not None:
                    taken.append(split[0])
                    rest[0] = _Unit(split[1], True)
            break
        return taken, rest


def _fits_after(
    header: list[str], taken: tuple[str, ...], footer: list[str], limits: Limits, text: str
) -> bool:
    return fits(_compose(header, [*taken, text], footer), limits)


def _split(text: str, room: Callable[[str], bool], *, cut: bool) -> tuple[str, str] | None:
    """The longest head of `text` ending at a break point that still fits, and the rest.

    With `cut` (the page is still empty), falls back to a cut between characters when no
    break point fits (a word longer than a page).
    """
    points = break_points(text)
    best: int | None = None
    found = -1
    low, high = 0, len(points) - 1
    while low <= high:  # cost grows with the head, so binary search the break points
        mid = (low + high) // 2
        if room(text[: points[mid]].rstrip(" ")):
            found = mid
            low = mid + 1
        else:
            high = mid - 1
    if found >= 0:
        best = points[found]
        # Between ideographs is allowed, but after punctuation reads better: take a
        # punctuation break a few characters back rather than split a phrase.
        for point in reversed(points[: found + 1]):
            if best - point > _PREFER_PUNCTUATION_WITHIN:
                break
            if text[point - 1] in _CJK_CLOSE or text[point - 1] == " ":
                best = point
                break
    if best is None and cut:
        low, high = 1, len(text) - 1
        while low <= high:
            mid = (low + high) // 2
            if room(text[:mid]):
                best = mid
                low = mid + 1
            else:
                high = mid - 1
    if best is None:
        return None
    head, tail = text[:best].rstrip(" "), text[best:].lstrip(" ")
    if not head or not tail:
        return None
    return head, tail
