"""Entries: which flow, and which state, a contact starts in (DESIGN.md §12).

Each flow declares where it is entered (`entries:` in its YAML, `Flow.entry_points()`):
USSD service codes with direct-dial suffixes, called numbers, SMS keywords. The
`EntryTable` of all loaded flows answers one question for the engine, with no I/O:

- **ussd** — the dialect gives the base service code plus the inputs dialled with it
  (`*100*1*1#` arrives as `*100#` + `("1", "1")`). The longest declared code wins
  (`*100*1*1#`, then `*100*1#`, then `*100#`); the inputs it did not consume are handed
  back for the engine to replay. A full code given as the entry (`*100*1#`) is the same.
- **ivr** — the called number, compared in one canonical form (`+8610086`, `008610086`
  and `8610086` are one number); a `*` entry takes any number nobody else claims.
- **sms** — the first word of the message, NFKC-normalised and case-folded (`ＹＥ`,
  `ye`, `YE` are one keyword), against every alias; the other words are inputs.

`entry_problems` lists what `hotline flows check` and startup refuse: two claims on one
entry (`entry-duplicate`), an entry naming an unknown state (`entry-state`) and a
pattern that can never match (`entry-pattern`). `EntryTable.from_flows` raises the
first of them as a `FlowError`, so a table never routes ambiguously.
"""

from __future__ import annotations

import re
import unicodedata
from collections.abc import Iterable, Iterator
from dataclasses import dataclass

from hotline.base.errors import FlowError
from hotline.base.privacy import canonical_msisdn
from hotline.flow.model import CHANNELS, Channel, Entry, Flow

__all__ = [
    "ANY_NUMBER",
    "EntryMatch",
    "EntryProblem",
    "EntryTable",
    "entry_problems",
    "normalise_keyword",
    "normalise_number",
]

#: The `ivr` pattern that takes any called number no other entry claims.
ANY_NUMBER = "*"

_DIALS_MAX = 1024  # plain USSD dials remembered per table
_USSD_CODE = re.compile(r"\*[0-9]+(?:\*[0-9]+)*#")
_DECLARED_NUMBER = re.compile(r"\+?[0-9]{3,20}")
_INCOMING_NUMBER = re.compile(r"\+?[0-9]+")
_NUMBER_SEPARATORS = re.compile(r"[\s\-.()]+")


def normalise_keyword(text: str) -> str:
    """An SMS keyword in one form: NFKC (full-width `ＹＥ` → `YE`), stripped, case-folded."""
    return unicodedata.normalize("NFKC", text).strip().casefold()


def normalise_number(text: str) -> str:
    """A called number in one form: `+86 10086`, `008610086` and `8610086` → `8610086`.

    Separators (spaces, `-`, `.`, brackets) go; what remains must be digits with an
    optional leading `+`. The international forms are folded as subscriber numbers are
    (`hotline.base.privacy.canonical_msisdn`): no `00` prefix, and a Chinese mobile
    loses its `86`. Anything else (`sip:…`, `client:…`, `*`) comes back stripped, and
    so never equals a number.
    """
    raw = text.strip()
    compact = _NUMBER_SEPARATORS.sub("", raw)
    if not _INCOMING_NUMBER.fullmatch(compact):
        return raw
    try:
        return canonical_msisdn(compact)
    except ValueError:  # a short code (`110`) or a long one: digits as they are
        return compact.lstrip("+")


@dataclass(frozen=True, slots=True)
class EntryMatch:
    """Where a contact starts: flow id, state, and direct-dial inputs left to replay."""

    flow: str
    state: str
    inputs: tuple[str, ...] = ()


@dataclass(frozen=True, slots=True, order=True)
class EntryProblem:
    """A located reason an entry cannot be served; `code` is the `flows check` rule."""

    path: str
    line: int
    code: str
    message: str

    def __str__(self) -> str:
        return f"{self.path}:{self.line}: {self.message} [{self.code}]"


@dataclass(frozen=True, slots=True)
class _Claim:
    flow: Flow
    entry: Entry

    @property
    def where(self) -> str:
        return f"{_path(self.flow)}:{self.entry.line}"


def _path(flow: Flow) -> str:
    """The flow's file, or its id for a flow not read from one."""
    return flow.path or flow.id


def _pattern_problem(entry: Entry) -> str | None:
    """Why `entry.pattern` can never match, or None."""
    pattern = entry.pattern
    if entry.channel == "ussd" and not _USSD_CODE.fullmatch(pattern):
        return "a USSD code is * and digits, more *digits for a direct dial, then # (*100*1#)"
    if entry.channel == "ivr" and pattern != ANY_NUMBER and not _DECLARED_NUMBER.fullmatch(pattern):
        return 'a called number is 3 to 20 digits with an optional leading +, or "*" for any'
    if entry.channel == "sms":
        keyword = normalise_keyword(pattern)
        if not keyword:
            return "an SMS keyword is empty"
        if len(keyword.split()) > 1:
            return "an SMS keyword is the first word of a message, so it has no spaces"
    return None


def _key(entry: Entry) -> str:
    """What two entries of one channel must not share."""
    if entry.channel == "ivr":
        return normalise_number(entry.pattern)
    if entry.channel == "sms":
        return normalise_keyword(entry.pattern)
    return entry.pattern


def _describe(entry: Entry) -> str:
    return f"entry {entry.channel} {entry.pattern!r}"


def _claims(flows: Iterable[Flow]) -> tuple[list[_Claim], list[EntryProblem]]:
    """Every servable entry, and the problems of the others (bad pattern, unknown state)."""
    claims: list[_Claim] = []
    problems: list[EntryProblem] = []
    for flow in flows:
        for entry in flow.entry_points():
            reason = _pattern_problem(entry)
            if reason is not None:
                problems.append(
                    EntryProblem(
                        _path(flow),
                        entry.line,
                        "entry-pattern",
                        f"{_describe(entry)} can never match: {reason}",
                    )
                )
                continue
            # An entry without `state:` starts at `start`; if that is unknown, the
            # flow's own `unknown-start` issue says so once.
            named = entry.state != flow.start
            if entry.state not in flow.states and named:
                problems.append(
                    EntryProblem(
                        _path(flow),
                        entry.line,
                        "entry-state",
                        f"{_describe(entry)} names unknown state {entry.state!r}",
                    )
                )
                continue
            claims.append(_Claim(flow, entry))
    return claims, problems


def _duplicates(claims: list[_Claim]) -> Iterator[EntryProblem]:
    """Each claim on an entry that another claim (any flow, this one too) also makes."""
    by_key: dict[tuple[Channel, str], list[_Claim]] = {}
    for claim in claims:
        by_key.setdefault((claim.entry.channel, _key(claim.entry)), []).append(claim)
    for same in by_key.values():
        if len(same) < 2:
            continue
        for claim in same:
            others = ", ".join(
                f"{other.where} (flow {other.flow.id!r})" for other in same if other is not claim
            )
            yield EntryProblem(
                _path(claim.flow),
                claim.entry.line,
                "entry-duplicate",
                f"{_describe(claim.entry)} of flow {claim.flow.id!r} is also claimed by {others}",
            )


def entry_problems(flows: Iterable[Flow]) -> list[EntryProblem]:
    """Every reason the entries of `flows` cannot be served together, sorted."""
    claims, problems = _claims(flows)
    return sorted({*problems, *_duplicates(claims)})


class EntryTable:
    """Every entry of a set of flows, ready to resolve; immutable once built."""

    __slots__ = ("_dials", "_ivr", "_ivr_any", "_rows", "_sms", "_ussd", "_ussd_depth")

    def __init__(self, entries: Iterable[tuple[str, Entry]] = ()) -> None:
        """Prefer `from_flows`, which refuses duplicates and bad patterns; here the first
        of two equal entries wins and a bad pattern is simply never matched."""
        self._ussd: dict[str, EntryMatch] = {}
        self._ivr: dict[str, EntryMatch] = {}
        self._ivr_any: EntryMatch | None = None
        self._sms: dict[str, EntryMatch] = {}
        self._rows: list[tuple[str, str, str, str]] = []
        for flow_id, entry in entries:
            match = EntryMatch(flow_id, entry.state)
            self._rows.append((entry.channel, entry.pattern, flow_id, entry.state))
            if entry.channel == "ivr" and entry.pattern == ANY_NUMBER:
                self._ivr_any = self._ivr_any or match
            else:
                table = {"ussd": self._ussd, "ivr": self._ivr, "sms": self._sms}[entry.channel]
                table.setdefault(_key(entry), match)
        self._rows.sort(key=lambda row: CHANNELS.index(row[0]))  # stable: file order within
        # The most `*`-separated parts any declared code has: no longer prefix can match.
        self._ussd_depth = max((code.count("*") for code in self._ussd), default=0)
        # Plain dials resolved before, by service code: operators publish a few codes and
        # every session starts with one. Bounded: the code is the gateway's to send.
        self._dials: dict[str, EntryMatch | None] = {}

    def __bool__(self) -> bool:
        """Whether any flow declares an entry (`rows()` without the copy)."""
        return bool(self._rows)

    @classmethod
    def from_flows(cls, flows: Iterable[Flow]) -> EntryTable:
        """The table of `flows`; raises `FlowError` (`file:line: message [rule]`) at the
        first of `entry_problems`."""
        flows = list(flows)
        problems = entry_problems(flows)
        if problems:
            first = problems[0]
            raise FlowError(first.path, first.line, f"{first.message} [{first.code}]")
        return cls((flow.id, entry) for flow in flows for entry in flow.entry_points())

    def resolve(self, channel: str, entry: str, inputs: tuple[str, ...] = ()) -> EntryMatch | None:
        """Where a contact on `channel` that came in through `entry` starts; None if no
        flow claims it. `entry` is the service code (USSD), the called number (IVR) or
        the whole message (SMS); `inputs` are what the subscriber sent with it."""
        if channel == "ussd":
            return self._resolve_ussd(entry.strip(), inputs)
        if channel == "ivr":
            found = self._ivr.get(normalise_number(entry), self._ivr_any)
            return None if found is None else EntryMatch(found.flow, found.state, inputs)
        if channel == "sms":
            words = unicodedata.normalize("NFKC", entry).split()
            if not words:
                return None
            found = self._sms.get(normalise_keyword(words[0]))
            return (
                None
                if found is None
                else EntryMatch(found.flow, found.state, (*words[1:], *inputs))
            )
        return None

    def _resolve_ussd(self, code: str, inputs: tuple[str, ...]) -> EntryMatch | None:
        if inputs:
            return self._match_ussd(code, inputs)
        try:
            return self._dials[code]
        except KeyError:
            pass
        if len(self._dials) >= _DIALS_MAX:
            self._dials.clear()
        match = self._dials[code] = self._match_ussd(code, ())
        return match

    def _match_ussd(self, code: str, inputs: tuple[str, ...]) -> EntryMatch | None:
        if not _USSD_CODE.fullmatch(code):
            return None
        parts = (*code[1:-1].split("*"), *inputs)
        for size in range(min(len(parts), self._ussd_depth), 0, -1):
            found = self._ussd.get("*" + "*".join(parts[:size]) + "#")
            if found is not None:
                return EntryMatch(found.flow, found.state, parts[size:])
        return None

    def rows(self) -> list[tuple[str, str, str, str]]:
        """`(channel, pattern as written, flow id, state)` for every entry: USSD, then IVR,
        then SMS, each in flow and file order (for docs and `hotline flows entries`)."""
        return list(self._rows)
