"""The flow file format (`flows/*.yaml`, `spec: 1`) as typed, frozen models.

These pydantic models are both what the loader validates with and the source of the
JSON Schema shipped for editors. A flow is a set of named states; `start` names the
first. State kinds: `menu`, `input`, `action`, `switch`, `end` (DESIGN.md §5).
Prompts are catalog keys, never raw text: a prompt is one key or a list of parts, each
part optionally shown only `when` a variable is set (or `unless` it is).
`entries` say where a contact enters the flow (DESIGN.md §12): USSD service codes,
called numbers, SMS keywords; `Flow.entry_points()` lists them one `Entry` per pattern.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Annotated, Any, ClassVar, Literal, get_args

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator
from pydantic.json_schema import SkipJsonSchema

__all__ = [
    "CHANNELS",
    "MAX_OPTIONS",
    "MAX_STATES",
    "MAX_STEPS_PER_TURN",
    "ActionState",
    "Channel",
    "EndState",
    "Entry",
    "EntrySpec",
    "Flow",
    "InputState",
    "MenuState",
    "Navigation",
    "Option",
    "PromptRef",
    "State",
    "SwitchCase",
    "SwitchState",
]

MAX_OPTIONS = 9
MAX_STATES = 500
MAX_STEPS_PER_TURN = 32

_NAME = r"^[a-z][a-z0-9_]{0,63}$"
_PROMPT_KEY = r"^[a-z0-9_]+(\.[a-z0-9_]+)*$"
_VAR = r"^[a-z][a-z0-9_]{0,63}$"
_KEYPRESS = r"^[0-9]{1,3}$"

StateName = Annotated[str, Field(pattern=_NAME, description="a state name in this flow")]
PromptKey = Annotated[str, Field(pattern=_PROMPT_KEY, description="a key in prompts/<lang>.yaml")]
VarName = Annotated[str, Field(pattern=_VAR, description="a session variable")]


class _Model(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")


class PromptRef(_Model):
    """One sentence of a prompt, optionally conditional on a session variable."""

    key: PromptKey
    when: VarName | None = Field(None, description="show only if this variable is set")
    unless: VarName | None = Field(None, description="show only if this variable is not set")

    def shown(self, variables: dict[str, Any]) -> bool:
        if self.when is not None and not variables.get(self.when):
            return False
        return not (self.unless is not None and variables.get(self.unless))


def _as_parts(value: Any) -> Any:
    """A bare key is shorthand for a one-part prompt."""
    if isinstance(value, str):
        return [{"key": value}]
    return value


#: What authors may write for a prompt (the schema shows both forms).
PromptInput = PromptKey | list[PromptRef]


class Option(_Model):
    """A numbered menu choice."""

    key: Annotated[str, Field(pattern=_KEYPRESS, description="what the subscriber presses")]
    label: PromptKey
    next: StateName
    when: VarName | None = Field(
        None, description="offer the option only if this variable is set (e.g. `agent`)"
    )


class _StateBase(_Model):
    waits: ClassVar[bool] = False
    description: str | None = Field(None, description="a note for flow authors; never shown")

    def targets(self) -> dict[str, str]:
        """Every state this state can lead to, by the field that names it."""
        return {}

    def prompt_keys(self) -> list[str]:
        return []


class MenuState(_StateBase):
    """Shows a prompt and numbered options; waits for a choice."""

    waits: ClassVar[bool] = True
    type: Literal["menu"] = Field(alias="kind")
    prompt: tuple[PromptRef, ...]
    options: tuple[Option, ...] = Field(min_length=1, max_length=MAX_OPTIONS)

    _parts = field_validator("prompt", mode="before", json_schema_input_type=PromptInput)(_as_parts)

    def targets(self) -> dict[str, str]:
        return {f"options[{i}].next": o.next for i, o in enumerate(self.options)}

    def prompt_keys(self) -> list[str]:
        return [p.key for p in self.prompt] + [o.label for o in self.options]


class InputState(_StateBase):
    """Asks for free input, validated by pattern and length; stores it in `var`.

    `as:` says what the value is when a prompt echoes it (`{card:digits}`).
    """

    waits: ClassVar[bool] = True
    type: Literal["input"] = Field(alias="kind")
    prompt: tuple[PromptRef, ...]
    var: VarName
    as_: Literal["text", "digits", "msisdn"] = Field(
        "text",
        alias="as",
        description="what the value is when a prompt shows it: `text` (as typed), `digits` "
        "(spoken digit by digit) or `msisdn` (masked, 138****8000); a placeholder "
        "`{var:<as>}` reads it (a `digits` value may also be read as `text`)",
    )
    pattern: str = Field(r"^[0-9]+$", description="a regular expression the whole input matches")
    min_length: int = Field(1, ge=1, le=64)
    max_length: int = Field(20, ge=1, le=64)
    error: PromptKey = Field(description="said when the input does not match")
    secret: bool = Field(False, description="never stored: only the next actions see it")
    next: StateName

    _parts = field_validator("prompt", mode="before", json_schema_input_type=PromptInput)(_as_parts)

    @field_validator("pattern")
    @classmethod
    def _compiles(cls, value: str) -> str:
        try:
            re.compile(value)
        except re.error as exc:
            raise ValueError(f"pattern does not compile: {exc}") from exc
        return value

    @model_validator(mode="after")
    def _lengths(self) -> InputState:
        if self.min_length > self.max_length:
            raise ValueError("min_length is greater than max_length")
        return self

    def targets(self) -> dict[str, str]:
        return {"next": self.next}

    def prompt_keys(self) -> list[str]:
        return [p.key for p in self.prompt] + [self.error]


#: One `args:` value of an action state.
ArgValue = str | int | bool | list[str] | dict[str, str]


class ActionState(_StateBase):
    """Runs a registered action; its outcome picks the next state."""

    type: Literal["action"] = Field(alias="kind")
    action: Annotated[str, Field(pattern=r"^[a-z_]+(\.[a-z_]+)+$")]
    args: dict[str, ArgValue] = Field(
        default_factory=dict,
        description="what the action reads (see `hotline actions`): scalars, or a list or "
        "mapping of strings (`http.request`'s `send:`, `receive:`, `errors:`)",
    )
    next: StateName = Field(description="where to go when the action succeeds")
    on: dict[str, StateName] = Field(
        default_factory=dict, description="outcome name → state, e.g. not_found: unknown_number"
    )
    on_error: StateName = Field(description="where to go on any failure not named in `on`")

    def targets(self) -> dict[str, str]:
        found = {"next": self.next, "on_error": self.on_error}
        found.update({f"on.{k}": v for k, v in self.on.items()})
        return found


class SwitchCase(_Model):
    """Route when `var` is set (or equals `equals`)."""

    var: VarName
    equals: str | int | bool | None = None
    next: StateName


class SwitchState(_StateBase):
    """Routes on session variables without waiting."""

    type: Literal["switch"] = Field(alias="kind")
    cases: tuple[SwitchCase, ...] = Field(min_length=1)
    default: StateName

    def targets(self) -> dict[str, str]:
        found = {f"cases[{i}].next": c.next for i, c in enumerate(self.cases)}
        found["default"] = self.default
        return found


class EndState(_StateBase):
    """The final word: shown, then the session ends.

    On a channel that can keep the line open (voice), a result is followed by an offer to
    hear it again or go to the main menu (`Flow.after_result`); `after_result: false`
    here hangs up at once after this state (an exit, a goodbye).
    """

    waits: ClassVar[bool] = True
    type: Literal["end"] = Field(alias="kind")
    prompt: tuple[PromptRef, ...]
    after_result: bool | None = Field(
        None, description="offer repeat / main menu after this state (default: the flow's)"
    )
    outcome: Literal["result", "error", "exit"] | None = Field(
        None,
        description="what reaching this state means in `hotline report`: a `result` (self-"
        "service done), an `error` said politely, or an `exit` the subscriber chose; default: "
        "`error` when only failing actions lead here, `exit` with `after_result: false`, "
        "else `result`",
    )

    _parts = field_validator("prompt", mode="before", json_schema_input_type=PromptInput)(_as_parts)

    def prompt_keys(self) -> list[str]:
        return [p.key for p in self.prompt]


State = Annotated[
    MenuState | InputState | ActionState | SwitchState | EndState,
    Field(discriminator="type"),
]


#: The channels a contact can enter a flow from (the YAML key of an `entries` item).
Channel = Literal["ussd", "ivr", "sms"]
CHANNELS: tuple[Channel, ...] = get_args(Channel)


@dataclass(frozen=True, slots=True)
class Entry:
    """One way into a flow: a USSD code, a called number or an SMS keyword, as written.

    `state` is where the session starts (the flow's start unless the entry names one);
    `line` is the pattern's line in the flow file (0 for a flow not read from a file).
    """

    channel: Channel
    pattern: str
    state: str
    line: int = 0


def _as_aliases(value: Any) -> Any:
    """One pattern is shorthand for a list of one."""
    if isinstance(value, str):
        return [value]
    if isinstance(value, int | float) and not isinstance(value, bool):
        # `ivr: +8610086` or `sms: 102` unquoted: YAML reads a number (and drops the +).
        raise ValueError('write it in quotes, e.g. "+8610086": unquoted, YAML reads a number')
    return value


#: What an `entries` item's channel key holds: one pattern, or aliases.
Aliases = Annotated[tuple[str, ...], Field(min_length=1)]
AliasesInput = str | Annotated[list[str], Field(min_length=1)]


class EntrySpec(_Model):
    """One item of `entries:` as written: exactly one of `ussd`, `ivr`, `sms`.

    What a pattern must look like (`*100*1#`, `+8610086` or `*`, one word) is checked by
    `hotline flows check` (rule `entry-pattern`), so that it can say which entry is wrong.
    """

    model_config = ConfigDict(
        json_schema_extra={"oneOf": [{"required": [name]} for name in CHANNELS]}
    )

    ussd: Aliases = Field(
        (), description='USSD service code(s), e.g. "*100#", or a direct dial "*100*1#"'
    )
    ivr: Aliases = Field(
        (), description='called number(s) (the voice platform\'s To), or "*" for any other'
    )
    sms: Aliases = Field(
        (), description="SMS keyword(s): the first word of a message, any case and width"
    )
    state: StateName | None = Field(None, description="where to start (default: the flow's start)")
    # Set by the loader, not by authors: the line of each pattern, for located errors.
    lines: SkipJsonSchema[tuple[int, ...]] = Field((), exclude=True)

    _aliases = field_validator(
        "ussd", "ivr", "sms", mode="before", json_schema_input_type=AliasesInput
    )(_as_aliases)

    @model_validator(mode="after")
    def _one_channel(self) -> EntrySpec:
        named = [name for name in CHANNELS if getattr(self, name)]
        if len(named) != 1:
            raise ValueError(
                "an entry names exactly one of ussd, ivr or sms"
                + (f" (this one names {' and '.join(named)})" if named else "")
            )
        return self

    @property
    def channel(self) -> Channel:
        return next(name for name in CHANNELS if getattr(self, name))

    @property
    def patterns(self) -> tuple[str, ...]:
        found: tuple[str, ...] = getattr(self, self.channel)
        return found


class Navigation(_Model):
    """Global keys; configurable per flow. IVR adds `repeat`."""

    back: str = Field("0", pattern=r"^[0-9#*]{1,3}$")
    home: str = Field("00", pattern=r"^[0-9#*]{1,3}$")
    more: str = Field("98", pattern=r"^[0-9#*]{1,3}$")
    repeat: str = Field("*", pattern=r"^[0-9#*]{1,3}$")

    @model_validator(mode="after")
    def _distinct(self) -> Navigation:
        keys = [self.back, self.home, self.more, self.repeat]
        if len(set(keys)) != len(keys):
            raise ValueError("navigation keys must all differ")
        return self


class Flow(_Model):
    """A whole flow file."""

    spec: Literal[1] = Field(description="flow format version")
    id: Annotated[str, Field(pattern=_NAME)]
    start: StateName
    entries: tuple[EntrySpec, ...] = Field(
        (), description="where contacts enter this flow: USSD codes, called numbers, SMS keywords"
    )
    max_invalid: int = Field(3, ge=1, le=10, description="invalid choices before a polite end")
    max_no_input: int = Field(3, ge=1, le=10, description="voice: silences before goodbye")
    after_result: bool = Field(
        True,
        description="after an end state, voice offers to hear it again (*) or go to the main "
        "menu (0) before a goodbye on silence; USSD keeps a many-page result open to page back",
    )
    resume: bool = Field(
        True,
        description="a subscriber whose USSD session dropped and who dials again within "
        "`ussd.resume_window` seconds may continue where they were",
    )
    navigation: Navigation = Navigation()
    states: dict[Annotated[str, Field(pattern=_NAME)], State] = Field(
        min_length=1, max_length=MAX_STATES
    )
    # Set by the loader, not by authors:
    version: SkipJsonSchema[str] = Field(
        "", exclude=True, description="content hash (set by the loader)"
    )
    path: SkipJsonSchema[str] = Field("", exclude=True)

    def entry_points(self) -> tuple[Entry, ...]:
        """Every entry of this flow, one per pattern (aliases apart), in file order."""
        found: list[Entry] = []
        for spec in self.entries:
            lines = spec.lines or (0,) * len(spec.patterns)
            state = spec.state or self.start
            found.extend(
                Entry(spec.channel, pattern, state, line)
                for pattern, line in zip(spec.patterns, lines, strict=True)
            )
        return tuple(found)
