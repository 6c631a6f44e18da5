"""Prompt catalogs: `prompts/<lang>.yaml` maps keys to sentences with typed placeholders.

```yaml
language: zh-CN
name: 中文
prompts:
  balance:
    main: "您的话费余额为{balance:money}。"
```

Nested keys flatten with dots (`balance.main`). A placeholder is `{name:type}` with type
one of `money volume duration int date time text digits msisdn`; `{{` and `}}` are
literal braces. Sentences are data, never templates evaluated from user input.

Per-channel wording: a key may hold a `ussd:` and a `voice:` variant instead of one
sentence — short on a screen, natural when spoken (both are required, with the same
placeholders; a plain sentence serves both):

```yaml
  result:
    balance:
      ussd: "余额{balance:money}。"
      voice: "您的话费余额为{balance:money}，感谢您的使用。"
```

`Catalog.sentences` holds what screens show (the `ussd:` variant or the plain
sentence); `CatalogSet.for_channel("voice")` is the same set with the `voice:` variants
in their place, which the voice channel speaks.
"""

from __future__ import annotations

import re
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Annotated, Any, Protocol

from pydantic import BaseModel, ConfigDict, Field, ValidationError
from pydantic_core import ErrorDetails
from typing_extensions import TypeAliasType

from hotline.base.errors import FlowError
from hotline.base.values import Value
from hotline.base.yamlsrc import Located, load_located
from hotline.flow.screen import PromptPart

__all__ = [
    "PLACEHOLDER_TYPES",
    "PROMPT_RULES",
    "VARIANTS",
    "Catalog",
    "CatalogFile",
    "CatalogSet",
    "Sentence",
    "ValueFormatter",
    "inspect_catalog",
    "inspect_catalogs",
    "load_catalog",
    "load_catalogs",
]

MAX_SENTENCE_CHARS = 1000
PLACEHOLDER_TYPES = frozenset(
    {"money", "volume", "duration", "int", "date", "time", "text", "digits", "msisdn"}
)
#: The per-channel variants a key may hold instead of one sentence (screens, speech).
VARIANTS = ("ussd", "voice")

#: The rules a prompt file can break, as `hotline flows check` prints them (`[rule]`);
#: a file that is not YAML at all breaks `yaml` (hotline.base.yamlsrc.YAML_RULE).
PROMPT_RULES: Mapping[str, str] = {
    "prompt-file": "a mapping with `language`, `name` and `prompts`; each prompt is text",
    "prompt-language": "`language` is the file's name",
    "prompt-key": "prompt keys use a-z, 0-9, _ and dots",
    "prompt-too-long": f"a sentence is at most {MAX_SENTENCE_CHARS} characters",
    "prompt-brace": "a literal { or } is written twice",
    "placeholder-type": "placeholders are {name:type} with a known type",
    "placeholder-mismatch": "a key's `ussd:` and `voice:` variants have the same placeholders",
}
_TOKEN = re.compile(r"\{\{|\}\}|\{([a-z_][a-z0-9_]*):([a-z]+)\}|\{|\}")
_KEY = re.compile(r"^[a-z0-9_]+(\.[a-z0-9_]+)*$")

_SentenceText = Annotated[
    str,
    Field(
        max_length=MAX_SENTENCE_CHARS,
        description="a sentence; placeholders are {name:type}, type one of "
        + ", ".join(sorted(PLACEHOLDER_TYPES))
        + "; or `ussd:` and `voice:` variants of it",
    ),
]
_KeyPart = Annotated[str, Field(pattern=r"^[a-z0-9_]+$")]
PromptTree = TypeAliasType(
    "PromptTree",
    "dict[_KeyPart, _SentenceText | PromptTree]",  # nested keys join with dots
)


class CatalogFile(BaseModel):
    """The shape of `prompts/<lang>.yaml`; also the source of its JSON Schema."""

    model_config = ConfigDict(frozen=True, extra="forbid", title="Prompt catalog")

    language: str = Field(min_length=1, description="language tag; must match the file name")
    name: str | None = Field(None, description="the language's own name, e.g. 中文")
    prompts: PromptTree


class ValueFormatter(Protocol):
    """Turns a typed value into words for one channel style (text or speech)."""

    def format(self, value: Value, language: str) -> str: ...


@dataclass(frozen=True, slots=True)
class Sentence:
    """A parsed catalog sentence: literal pieces alternating with placeholders."""

    pieces: tuple[str | tuple[str, str], ...]
    line: int

    @property
    def placeholders(self) -> dict[str, str]:
        return {p[0]: p[1] for p in self.pieces if isinstance(p, tuple)}

    def render(self, values: Mapping[str, Value], formatter: ValueFormatter, lang: str) -> str:
        out: list[str] = []
        for piece in self.pieces:
            if isinstance(piece, str):
                out.append(piece)
                continue
            name, _ = piece
            value = values.get(name)
            # A missing value renders as nothing rather than a raw `{name}`; `flows check`
            # proves every placeholder is fed, so this only guards against bugs.
            out.append("" if value is None else formatter.format(value, lang))
        return "".join(out)


def _parse_sentence(text: str, file: str, line: int, key: str) -> Sentence:
    pieces: list[str | tuple[str, str]] = []
    pos = 0
    for match in _TOKEN.finditer(text):
        literal = text[pos : match.start()]
        token = match.group(0)
        pos = match.end()
        if token in ("{{", "}}"):
            literal += token[0]
        elif match.group(1) is None:
            raise FlowError(
                file, line, f"prompt {key!r}: stray {token!r} (write {token * 2})", "prompt-brace"
            )
        if literal:
            if pieces and isinstance(pieces[-1], str):
                pieces[-1] += literal
            else:
                pieces.append(literal)
        if match.group(1) is not None:
            kind = match.group(2)
            if kind not in PLACEHOLDER_TYPES:
                raise FlowError(
                    file,
                    line,
                    f"prompt {key!r}: placeholder {{{match.group(1)}:{kind}}} has unknown type "
                    f"(expected one of {', '.join(sorted(PLACEHOLDER_TYPES))})",
                    "placeholder-type",
                )
            pieces.append((match.group(1), kind))
    tail = text[pos:]
    if tail:
        if pieces and isinstance(pieces[-1], str):
            pieces[-1] += tail
        else:
            pieces.append(tail)
    return Sentence(tuple(pieces), line)


@dataclass(frozen=True, slots=True)
class Catalog:
    """All sentences of one language."""

    language: str
    name: str
    path: str
    sentences: Mapping[str, Sentence]
    #: The keys with a `voice:` variant, and that variant (`sentences` holds the `ussd:` one).
    voice: Mapping[str, Sentence] = field(default_factory=dict)

    def for_channel(self, variant: str) -> Catalog:
        """This catalog as a channel says it: `voice` puts the voice variants in place."""
        if variant != "voice" or not self.voice:
            return self
        return Catalog(self.language, self.name, self.path, {**self.sentences, **self.voice})

    def __contains__(self, key: object) -> bool:
        return key in self.sentences

    def render(self, part: PromptPart, formatter: ValueFormatter) -> str:
        sentence = self.sentences.get(part.key)
        if sentence is None:
            raise KeyError(f"{self.language}: no prompt {part.key!r}")
        return sentence.render(part.values, formatter, self.language)

    def line_of(self, key: str) -> int:
        sentence = self.sentences.get(key)
        return sentence.line if sentence else 1


def _is_variants(value: Any) -> bool:
    """`{ussd: "…", voice: "…"}`: one key's per-channel wording, not two nested keys."""
    return (
        isinstance(value, Mapping)
        and set(value) == set(VARIANTS)
        and all(isinstance(text, str) for text in value.values())
    )


def _flatten(
    data: Mapping[str, Any], located: Located, prefix: tuple[str, ...]
) -> Iterator[tuple[str, str, int, str]]:
    """`(key, sentence, line, variant)`; variant is "" for a plain sentence."""
    for name, value in data.items():
        where = (*prefix, name)
        key = ".".join(where[1:])
        line = located.line_of(*where)
        if _is_variants(value):
            if not _KEY.match(key):
                raise FlowError(
                    located.path,
                    line,
                    f"prompt key {key!r}: use a-z, 0-9, _ and dots",
                    "prompt-key",
                )
            for variant in VARIANTS:
                yield key, value[variant], located.line_of(*where, variant), variant
        elif isinstance(value, Mapping):
            yield from _flatten(value, located, where)
        elif isinstance(value, str):
            if not _KEY.match(key):
                raise FlowError(
                    located.path,
                    line,
                    f"prompt key {key!r}: use a-z, 0-9, _ and dots",
                    "prompt-key",
                )
            yield key, value, line, ""
        else:
            raise FlowError(
                located.path, line, f"prompt {key!r}: expected a sentence (text)", "prompt-file"
            )


def _document_path(located: Located, loc: tuple[str | int, ...]) -> tuple[str | int, ...]:
    """The parts of a pydantic error location that exist in the YAML (drops union tags)."""
    path: tuple[str | int, ...] = ()
    for part in loc:
        if (*path, part) in located.lines:
            path = (*path, part)
    return path


def _shape_problems(located: Located, exc: ValidationError) -> list[FlowError]:
    """One problem per place the file's shape is wrong. The recursive union reports every
    branch it tried: an error whose place holds a deeper error is that noise."""
    by_path: dict[tuple[str | int, ...], list[ErrorDetails]] = {}
    for error in exc.errors():
        by_path.setdefault(_document_path(located, error["loc"]), []).append(error)
    problems = []
    for loc, errors in by_path.items():
        if any(other[: len(loc)] == loc and len(other) > len(loc) for other in by_path):
            continue
        error, kinds = errors[0], {e["type"] for e in errors}
        where = ".".join(str(p) for p in loc)
        key = ".".join(str(p) for p in loc[1:])
        code, message = "prompt-file", str(error["msg"])
        if error["type"] == "extra_forbidden":
            message = "unknown field"
        elif error["type"] == "missing":
            message = f"missing field {error['loc'][-1]!r}"
        elif error["type"] == "string_pattern_mismatch" and "[key]" in error["loc"]:
            code, message = "prompt-key", f"prompt key {key!r}: use a-z, 0-9, _ and dots"
            where = ""
        elif "string_too_long" in kinds:
            code, where = "prompt-too-long", ""
            message = f"prompt {key!r} is over {MAX_SENTENCE_CHARS} characters"
        elif {"string_type", "dict_type"} <= kinds and loc[:1] == ("prompts",):
            message = "expected a sentence (text) or keys under it"
        text = f"{where}: {message}" if where else message
        problems.append(FlowError(located.path, located.line_of(*loc), text, code))
    return problems


def inspect_catalog(file: Path) -> tuple[Catalog | None, list[FlowError]]:
    """Load one catalog file and every problem in it, each with its `[rule]` code.

    A file that is not YAML, or not shaped like a catalog, stops there (one problem per
    misshapen place); otherwise every sentence is parsed and each broken one reported.
    """
    try:
        located = load_located(file)
    except FlowError as exc:
        code = exc.code if exc.code != "load" else "prompt-file"
        return None, [FlowError(exc.path, exc.line, exc.message, code)]
    doc = located.data
    if not isinstance(doc, dict):
        message = "a prompt catalog is a mapping with `language` and `prompts`"
        return None, [FlowError(located.path, 1, message, "prompt-file")]
    try:
        shape = CatalogFile.model_validate(doc)
    except ValidationError as exc:
        return None, _shape_problems(located, exc)
    problems: list[FlowError] = []
    language = shape.language
    if file.stem != language:
        problems.append(
            FlowError(
                located.path,
                located.line_of("language"),
                f"language {language!r} must match file name",
                "prompt-language",
            )
        )
    sentences: dict[str, Sentence] = {}
    voice: dict[str, Sentence] = {}
    try:
        for key, text, line, variant in _flatten(doc["prompts"], located, ("prompts",)):
            if len(text) > MAX_SENTENCE_CHARS:
                problems.append(
                    FlowError(
                        located.path,
                        line,
                        f"prompt {key!r} is over {MAX_SENTENCE_CHARS} characters",
                        "prompt-too-long",
                    )
                )
                continue
            try:
                sentence = _parse_sentence(text, located.path, line, key)
            except FlowError as exc:
                problems.append(exc)
                continue
            if variant != "voice":
                sentences[key] = sentence
                continue
            voice[key] = sentence
            screen = sentences.get(key)
            if screen is not None and screen.placeholders != sentence.placeholders:
                problems.append(
                    FlowError(
                        located.path,
                        line,
                        f"prompt {key!r}: the voice variant has placeholders "
                        f"{sentence.placeholders} but the ussd one has {screen.placeholders}",
                        "placeholder-mismatch",
                    )
                )
    except FlowError as exc:  # a key or value the shape check let through: stops the walk
        problems.append(exc)
    if problems:
        return None, problems
    return Catalog(language, shape.name or language, located.path, sentences, voice), []


def load_catalog(file: Path) -> Catalog:
    """Load and validate one catalog file; raises `FlowError` for its first problem."""
    catalog, problems = inspect_catalog(file)
    if problems:
        raise min(problems, key=lambda p: p.line)
    assert catalog is not None
    return catalog


@dataclass(frozen=True, slots=True)
class CatalogSet:
    """The catalogs of every configured language; the first language is the default."""

    catalogs: Mapping[str, Catalog]
    default: str
    _placeholders: dict[str, tuple[str, ...]] = field(
        default_factory=dict, init=False, repr=False, compare=False
    )
    _types: dict[str, dict[str, str]] = field(
        default_factory=dict, init=False, repr=False, compare=False
    )
    _views: dict[str, CatalogSet] = field(
        default_factory=dict, init=False, repr=False, compare=False
    )

    def __getitem__(self, language: str) -> Catalog:
        return self.catalogs.get(language) or self.catalogs[self.default]

    @property
    def languages(self) -> tuple[str, ...]:
        return tuple(self.catalogs)

    def placeholders(self, key: str) -> tuple[str, ...]:
        """The variable names a sentence reads in any language (sorted; () if none)."""
        return self._placeholders.get(key, ())

    def placeholder_types(self, key: str) -> Mapping[str, str]:
        """Variable name → placeholder type a sentence reads, in any language or variant
        (`flows check` makes them agree; where they do not, the default language wins)."""
        return self._types.get(key, {})

    def for_channel(self, variant: str) -> CatalogSet:
        """The catalogs as a channel says them (`voice`: with the voice variants)."""
        view = self._views.get(variant)
        if view is None:
            catalogs = {lang: c.for_channel(variant) for lang, c in self.catalogs.items()}
            if all(catalogs[lang] is c for lang, c in self.catalogs.items()):
                view = self
            else:
                view = CatalogSet(catalogs, self.default)
                view._views[variant] = view
            self._views[variant] = view
        return view

    def __post_init__(self) -> None:
        types: dict[str, dict[str, str]] = {}
        ordered = sorted(self.catalogs.values(), key=lambda c: c.language == self.default)
        for catalog in ordered:  # the default language last: it wins a disagreement
            for sentences in (catalog.voice, catalog.sentences):
                for key, sentence in sentences.items():
                    if sentence.placeholders:
                        types.setdefault(key, {}).update(sentence.placeholders)
        found = {key: tuple(sorted(kinds)) for key, kinds in types.items()}
        object.__setattr__(self, "_placeholders", found)  # frozen: set once, here
        object.__setattr__(self, "_types", types)


def inspect_catalogs(
    directory: Path, languages: tuple[str, ...], default: str
) -> tuple[CatalogSet | None, list[FlowError]]:
    """Every problem of `directory/<lang>.yaml` for each language (`hotline flows check`);
    the catalogs only when all of them loaded."""
    catalogs: dict[str, Catalog] = {}
    problems: list[FlowError] = []
    for lang in languages:
        catalog, found = inspect_catalog(directory / f"{lang}.yaml")
        problems.extend(found)
        if catalog is not None:
            catalogs[lang] = catalog
    if problems:
        return None, sorted(problems, key=lambda p: (p.path, p.line, p.message))
    return CatalogSet(catalogs, default), []


def load_catalogs(directory: Path, languages: tuple[str, ...], default: str) -> CatalogSet:
    """Load `directory/<lang>.yaml` for each language; a missing file is a `FlowError`."""
    catalogs = {lang: load_catalog(directory / f"{lang}.yaml") for lang in languages}
    return CatalogSet(catalogs, default)
