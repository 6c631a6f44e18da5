"""Prompt catalogs: `prompts/<lang>.yaml` maps keys to sentences with typed placeholders.

```yaml
language: zh-CN
name: 中文
prompts:
  balance:
    main: "您的话费余额为{balance:money}。"
```

Nested keys flatten with dots (`balance.main`). A placeholder is `{name:type}` with type
one of `money volume duration int date time text`; `{{` and `}}` are literal braces.
Sentences are data, never templates evaluated from user input.
"""

from __future__ import annotations

import re
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Annotated, Any, Protocol

from pydantic import BaseModel, ConfigDict, Field, ValidationError
from typing_extensions import TypeAliasType

from hotline.base.errors import FlowError
from hotline.base.values import Value
from hotline.base.yamlsrc import Located, load_located
from hotline.flow.screen import PromptPart

__all__ = [
    "PLACEHOLDER_TYPES",
    "Catalog",
    "CatalogFile",
    "CatalogSet",
    "Sentence",
    "ValueFormatter",
    "load_catalog",
    "load_catalogs",
]

PLACEHOLDER_TYPES = frozenset({"money", "volume", "duration", "int", "date", "time", "text"})
_TOKEN = re.compile(r"\{\{|\}\}|\{([a-z_][a-z0-9_]*):([a-z]+)\}|\{|\}")
_KEY = re.compile(r"^[a-z0-9_]+(\.[a-z0-9_]+)*$")
MAX_SENTENCE_CHARS = 1000

_SentenceText = Annotated[
    str,
    Field(
        max_length=MAX_SENTENCE_CHARS,
        description="a sentence; placeholders are {name:type}, type one of "
        + ", ".join(sorted(PLACEHOLDER_TYPES)),
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
            raise FlowError(file, line, f"prompt {key!r}: stray {token!r} (write {token * 2})")
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


def _flatten(
    data: Mapping[str, Any], located: Located, prefix: tuple[str, ...]
) -> Iterator[tuple[str, str, int]]:
    for name, value in data.items():
        where = (*prefix, name)
        key = ".".join(where[1:])
        line = located.line_of(*where)
        if isinstance(value, Mapping):
            yield from _flatten(value, located, where)
        elif isinstance(value, str):
            if not _KEY.match(key):
                raise FlowError(located.path, line, f"prompt key {key!r}: use a-z, 0-9, _ and dots")
            yield key, value, line
        else:
            raise FlowError(located.path, line, f"prompt {key!r}: expected a sentence (text)")


def _document_path(located: Located, loc: tuple[str | int, ...]) -> tuple[str | int, ...]:
    """The parts of a pydantic error location that exist in the YAML (drops union tags)."""
    path: tuple[str | int, ...] = ()
    for part in loc:
        if (*path, part) in located.lines:
            path = (*path, part)
    return path


def load_catalog(file: Path) -> Catalog:
    """Load and validate one catalog file."""
    located = load_located(file)
    doc = located.data
    if not isinstance(doc, dict):
        raise FlowError(
            located.path, 1, "a prompt catalog is a mapping with `language` and `prompts`"
        )
    try:
        shape = CatalogFile.model_validate(doc)
    except ValidationError as exc:
        # The recursive union reports every branch; the deepest error is the useful one.
        located_errors = [(_document_path(located, e["loc"]), e) for e in exc.errors()]
        loc, error = max(located_errors, key=lambda pair: len(pair[0]))
        message = str(error["msg"])
        if error["type"] == "extra_forbidden":
            message = "unknown field"
        elif error["type"] == "missing":
            message = f"missing field {error['loc'][-1]!r}"
        where = ".".join(str(p) for p in loc)
        text = f"{where}: {message}" if where else message
        raise FlowError(located.path, located.line_of(*loc), text) from exc
    language = shape.language
    if file.stem != language:
        raise FlowError(
            located.path, located.line_of("language"), f"language {language!r} must match file name"
        )
    sentences: dict[str, Sentence] = {}
    for key, text, line in _flatten(doc["prompts"], located, ("prompts",)):
        if len(text) > MAX_SENTENCE_CHARS:
            raise FlowError(
                located.path, line, f"prompt {key!r} is over {MAX_SENTENCE_CHARS} chars"
            )
        sentences[key] = _parse_sentence(text, located.path, line, key)
    return Catalog(language, shape.name or language, located.path, sentences)


@dataclass(frozen=True, slots=True)
class CatalogSet:
    """The catalogs of every configured language; the first language is the default."""

    catalogs: Mapping[str, Catalog]
    default: str
    _placeholders: dict[str, tuple[str, ...]] = field(
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

    def __post_init__(self) -> None:
        names: dict[str, set[str]] = {}
        for catalog in self.catalogs.values():
            for key, sentence in catalog.sentences.items():
                names.setdefault(key, set()).update(sentence.placeholders)
        found = {key: tuple(sorted(n)) for key, n in names.items() if n}
        object.__setattr__(self, "_placeholders", found)  # frozen: set once, here


def load_catalogs(directory: Path, languages: tuple[str, ...], default: str) -> CatalogSet:
    """Load `directory/<lang>.yaml` for each language; a missing file is a `FlowError`."""
    catalogs = {lang: load_catalog(directory / f"{lang}.yaml") for lang in languages}
    return CatalogSet(catalogs, default)
